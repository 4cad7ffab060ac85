//! Inputs for the policy's unit tests, built in Rust with x509-cert types:
//! names, extensions, small TBSCertificates and the CAs above them, keys
//! from tests/fixtures/keys (read at test time) or Ed25519 keys from a
//! fixed seed where a test needs a real signature. No token is involved.

use der::asn1::{Ia5String, OctetString};
use der::flagset::FlagSet;
use der::Encode;
use ed25519_dalek::Signer as _;
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

use crate::cert::{self, CaCert, TbsCert};
use crate::keys::{self, KeySpec};
use crate::oid;
use crate::sign::SigAlg;
use crate::{import, names, time};

/// 2026-01-01T00:00:00Z: the start of every test CA's validity.
pub const T0: u64 = 1_767_225_600;
pub const DAY: u64 = 86_400;

/// The public key of a committed test key, tests/fixtures/keys/`file`.
pub fn fixture_spki(file: &str) -> SubjectPublicKeyInfoOwned {
    let path = format!("{}/../tests/fixtures/keys/{file}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let key = import::parse(&bytes, None).unwrap_or_else(|e| panic!("{path}: {e}"));
    key.key.spki().expect("spki")
}

/// An Ed25519 key from a fixed seed (tests that check a signature).
pub fn ed25519(seed: u8) -> (ed25519_dalek::SigningKey, SubjectPublicKeyInfoOwned) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let spki = keys::spki_point(KeySpec::Ed25519, key.verifying_key().as_bytes()).expect("spki");
    (key, spki)
}

pub fn dn(text: &str) -> Name {
    names::parse_dn(text).expect("dn")
}

pub fn ia5(text: &str) -> Ia5String {
    Ia5String::new(text).expect("ia5")
}

pub fn dns(text: &str) -> GeneralName {
    GeneralName::DnsName(ia5(text))
}

pub fn email(text: &str) -> GeneralName {
    GeneralName::Rfc822Name(ia5(text))
}

pub fn uri(text: &str) -> GeneralName {
    GeneralName::UniformResourceIdentifier(ia5(text))
}

pub fn ip(bytes: &[u8]) -> GeneralName {
    GeneralName::IpAddress(OctetString::new(bytes).expect("ip"))
}

pub fn ext(oid: der::asn1::ObjectIdentifier, critical: bool, value: &impl Encode) -> Extension {
    cert::extension(oid, critical, value).expect("extension")
}

pub fn usages(bits: &[KeyUsages]) -> KeyUsage {
    KeyUsage(bits.iter().fold(FlagSet::default(), |set, &b| set | b))
}

pub fn basic(ca: bool, path_len: Option<u8>) -> BasicConstraints {
    BasicConstraints { ca, path_len_constraint: path_len }
}

/// A TBSCertificate with the given names, key, validity and extensions.
pub fn tbs(
    issuer: &Name,
    subject: &Name,
    spki: &SubjectPublicKeyInfoOwned,
    validity: (u64, u64),
    extensions: Vec<Extension>,
) -> TbsCert {
    TbsCert {
        version: Version::V3,
        serial_number: SerialNumber::new(&[0x01]).expect("serial"),
        signature: SigAlg::Ed25519.identifier().expect("alg"),
        issuer: issuer.clone(),
        validity: Validity::new(
            time::x509_time(validity.0).expect("time"),
            time::x509_time(validity.1).expect("time"),
        ),
        subject: subject.clone(),
        subject_public_key_info: spki.clone(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    }
}

/// The extensions of a CA: basicConstraints (critical), keyUsage, SKI.
pub fn ca_extensions(
    spki: &SubjectPublicKeyInfoOwned,
    path_len: Option<u8>,
    ku: &[KeyUsages],
) -> Vec<Extension> {
    vec![
        ext(oid::BASIC_CONSTRAINTS, true, &basic(true, path_len)),
        ext(oid::KEY_USAGE, true, &usages(ku)),
        ext(
            oid::SUBJECT_KEY_ID,
            false,
            &SubjectKeyIdentifier(OctetString::new(keys::key_id(spki)).expect("ski")),
        ),
    ]
}

/// A self-signed CA named `name`, valid `validity`, unsigned (the rules
/// that take a CaCert read its fields, not its signature).
pub fn ca(
    name: &str,
    spki: &SubjectPublicKeyInfoOwned,
    validity: (u64, u64),
    exts: Vec<Extension>,
) -> CaCert {
    let name = dn(name);
    CaCert::from_tbs(Vec::new(), tbs(&name, &name, spki, validity, exts)).expect("ca")
}

/// A root CA for ten years from [`T0`], keyCertSign and cRLSign.
pub fn root(spki: &SubjectPublicKeyInfoOwned) -> CaCert {
    let exts = ca_extensions(spki, None, &[KeyUsages::KeyCertSign, KeyUsages::CRLSign]);
    ca("/C=NL/O=ewak.net/CN=Root", spki, (T0, T0 + 3650 * DAY), exts)
}

/// A certificate signed with `key` (Ed25519), parsed back as the tools
/// parse one: for rules that verify the issuer's signature.
pub fn signed(tbs: &TbsCert, key: &ed25519_dalek::SigningKey) -> CaCert {
    let der = tbs.to_der().expect("tbs");
    let signature = key.sign(&der).to_bytes();
    let alg = SigAlg::Ed25519.identifier().expect("alg");
    CaCert::parse(cert::assemble(&der, &alg, &signature).expect("assemble")).expect("parse")
}

/// The message of an error, for a table row that expects a refusal.
pub fn refusal<T>(result: crate::Result<T>) -> Option<String> {
    result.err().map(|e| e.to_string())
}

/// Checks one table row: `Ok` when `want` is None, else an error whose
/// message contains `want`.
#[track_caller]
pub fn expect(what: &str, got: crate::Result<()>, want: Option<&str>) {
    match (refusal(got), want) {
        (None, None) => {}
        (Some(e), Some(w)) => assert!(e.contains(w), "{what}: refused with {e:?}, expected {w:?}"),
        (None, Some(w)) => panic!("{what}: accepted, expected a refusal with {w:?}"),
        (Some(e), None) => panic!("{what}: refused with {e:?}, expected it accepted"),
    }
}
