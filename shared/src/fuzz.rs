//! The bodies of the fuzz targets in `fuzz/`: one function per parser that
//! takes arbitrary bytes and must return without panicking, whatever they
//! are. They live here, not in the libFuzzer crate, so that the committed
//! corpus (crashes found included) is replayed by an ordinary test
//! (`shared/tests/fuzz_corpus.rs`) on the stable toolchain, without
//! libFuzzer or cargo-fuzz.
//!
//! Results are deliberately dropped: refusing the input is a fine outcome,
//! only a panic (or a hang) is a finding. Where a parser accepts, the
//! target goes on to what the tools do next with the value, so that the
//! checks after the parse are fuzzed too.

use der::asn1::ObjectIdentifier;
use der::Decode;
use secrecy::SecretString;
use x509_cert::crl::TbsCertList;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::KeyUsages;
use x509_cert::time::Time;

use crate::cert::{self, CaCert, TbsCert};
use crate::io::{Object, Reader};
use crate::oid;
use crate::policy::{self, Issuer};
use crate::{csr, db, import, names, ocsp as ocsp_mod, sign, time, uri};

/// The fixed issuer of the `tbs` and `crl` targets: a P-256 root CA made
/// with `openssl req -x509` from tests/fixtures/keys/p256.pem (keyCertSign,
/// cRLSign, SKI), the shape of the CAs the tools issue under.
const CA_DER: &[u8] = include_bytes!("fuzz-ca.der");

/// The password the corpus's encrypted key files use (that of
/// tests/fixtures/keys), so the fuzzer reaches past the decryption.
const PASSWORD: &str = "test";

/// Extensions a profile may add beyond cardca's own, as `--allow` would.
const ALLOW: &[ObjectIdentifier] = &[oid::TLS_FEATURE];

/// A target's body: any bytes in, nothing out, never a panic.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("io", io),
    ("csr", csr),
    ("tbs", tbs),
    ("cert", cert),
    ("crl", crl),
    ("index_line", index_line),
    ("dn", dn),
    ("general_names", general_names),
    ("uri", uri),
    ("time", time),
    ("import", import),
    ("audit_log", audit_log),
    ("ocsp", ocsp),
];

fn fixed_ca() -> CaCert {
    // A test of this module proves the constant parses.
    CaCert::parse(CA_DER.to_vec()).unwrap_or_else(|e| panic!("fuzz-ca.der: {e}"))
}

fn der_object(data: &[u8]) -> Object {
    Object { label: None, der: data.to_vec(), index: 1 }
}

/// The PEM/DER stream reader, as every tool reads stdin.
pub fn io(data: &[u8]) {
    let mut reader = Reader::new(data);
    while let Ok(Some(object)) = reader.next_object() {
        let _ = object.expect_label(&["CERTIFICATE", "CERTIFICATE REQUEST"]);
    }
}

/// A CSR as tbs-build reads it: parse, key rules, signature, SAN request.
pub fn csr(data: &[u8]) {
    if let Ok(csr) = csr::read(&der_object(data)) {
        let _ = names::check_name(&csr.subject);
        let _ = names::openssl_oneline(&csr.subject);
        for name in &csr.requested_san {
            let _ = names::check_general_name(name);
            let _ = names::general_name_text(name);
        }
    }
}

/// A TBSCertificate as card-sign checks it, self-signed and under a CA.
pub fn tbs(data: &[u8]) {
    let Ok(tbs) = cert::decode_exact::<TbsCert>(data, "TBSCertificate") else { return };
    if cert::check_tbs(&tbs).is_err() {
        return;
    }
    let _ = policy::check_certificate(&tbs, Issuer::SelfSigned, ALLOW);
    let ca = fixed_ca();
    let _ = policy::check_certificate(&tbs, Issuer::Ca { ca: &ca, above: &[] }, ALLOW);
}

/// A certificate as `--ca` and cert-store read it, and its signature when
/// it claims to be self-issued.
pub fn cert(data: &[u8]) {
    let Ok(parsed) = CaCert::parse(data.to_vec()) else { return };
    let _ = parsed.subject_text();
    let _ = cert::check_tbs(&parsed.tbs);
    let _ = policy::may_sign(&parsed, KeyUsages::KeyCertSign, "certificates");
    if parsed.tbs.issuer == parsed.tbs.subject {
        if let Ok(signed) = cert::split_signed(data, "certificate") {
            if let Ok(alg) = sign::SigAlg::from_identifier(&signed.algorithm) {
                let spki = &parsed.tbs.subject_public_key_info;
                let _ = sign::verify(spki, alg, signed.tbs, &signed.signature);
            }
        }
    }
}

/// A signed CRL: decode, DER sanity, the fixed CA's policy and signature.
pub fn crl(data: &[u8]) {
    let Ok(signed) = cert::split_signed(data, "CRL") else { return };
    let Ok(tbs) = cert::decode_exact::<TbsCertList>(signed.tbs, "TBSCertList") else { return };
    let Ok(alg) = cert::check_tbs_crl(&tbs) else { return };
    let ca = fixed_ca();
    let _ = policy::check_crl(&tbs, &ca, ALLOW);
    let _ = sign::verify(&ca.tbs.subject_public_key_info, alg, signed.tbs, &signed.signature);
}

/// An OCSP ResponseData as card-sign checks it before signing (the fixed
/// CA for itself, and as its own "responder", which must be refused), and
/// a signed OCSPResponse as cert-store --ocsp-dir checks it before filing.
pub fn ocsp(data: &[u8]) {
    let ca = fixed_ca();
    // The clock, as the tools read it (0 if CARDCA_NOW is malformed).
    let now = time::now().unwrap_or_default();
    let _ = ocsp_mod::looks_like_response_data(data);
    if let Ok(rd) = cert::decode_exact::<ocsp_mod::ResponseData>(data, "ResponseData") {
        let _ = policy::check_ocsp(&rd, &ca, None, ALLOW, now);
        if let Ok(itself) = policy::check_ocsp_responder(&ca, &ca) {
            let _ = policy::check_ocsp(&rd, &ca, Some(itself), ALLOW, now);
        }
    }
    let _ = policy::check_signed(data.to_vec(), &ca, now);
}

/// index.txt, line by line, and what a CRL takes from each line.
pub fn index_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for line in text.split('\n') {
        if let Ok(entry) = db::Entry::parse(line) {
            let _ = entry.line();
            let _ = entry.crl_entry();
            let _ = db::parse_time_text(&entry.expiry);
        }
    }
}

/// `--subject` text, then what is done with the Name it gives.
pub fn dn(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(name) = names::parse_dn(text) {
        let _ = names::check_name(&name);
        let _ = names::openssl_oneline(&name);
        let _ = names::common_name(&name);
    }
}

/// `--san` text, and the same bytes as DER GeneralNames (what a CSR's
/// request or a CA's certificate carries).
pub fn general_names(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(list) = names::parse_general_names(text) {
            for name in &list {
                let _ = names::check_general_name(name);
                let _ = names::general_name_text(name);
            }
        }
    }
    if let Ok(list) = Vec::<GeneralName>::from_der(data) {
        for name in &list {
            let _ = names::check_general_name(name);
            let _ = names::general_name_text(name);
        }
    }
}

/// A PKCS#11 URI, its display (which redacts the PIN) and its token part.
pub fn uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = uri::redact(text);
    if let Ok(parsed) = uri::Uri::parse(text) {
        let _ = parsed.to_string();
        let _ = parsed.names_token();
        let _ = parsed.token_part().to_string();
    }
}

/// `--not-before`/`CARDCA_NOW` text, and X.509 times as DER.
pub fn time(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(secs) = time::parse_rfc3339(text) {
            let _ = time::display(secs);
            if let Ok(t) = time::x509_time(secs) {
                let _ = db::time_text(&t);
            }
        }
        let _ = db::parse_time_text(text);
    }
    if let Ok(t) = Time::from_der(data) {
        let _ = time::check_encoding(&t);
        let _ = time::display(time::seconds(&t));
        let _ = db::time_text(&t);
    }
}

/// A key file for `card-keygen --import`, as card-keygen reads it.
pub fn import(data: &[u8]) {
    if import::check_limits(data).is_err() {
        return;
    }
    let password = SecretString::from(PASSWORD);
    let password = match import::needs_password(data) {
        Ok(true) => Some(&password),
        Ok(false) => None,
        Err(_) => return,
    };
    if let Ok(imported) = import::parse(data, password) {
        let _ = imported.key.spki();
    }
}

/// An audit log: the verifier and the append's tail reader on any bytes,
/// and the writer's escaping checked against the reader on any text.
pub fn audit_log(data: &[u8]) {
    use crate::audit::append::tail_of;
    use crate::audit::line::{format_line, parse_line, Who, GENESIS, MAX_VALUE};
    use crate::audit::{verify::verify, Event, Value};
    use crate::json::Json;

    let _ = verify(data, None);
    let _ = tail_of(data, true);
    let _ = tail_of(data, false);
    for line in data.split(|&b| b == b'\n') {
        let _ = parse_line(line);
    }
    let text = String::from_utf8_lossy(data);
    let e = Event::new("fuzz").field("text", text.as_ref()).field("bytes", Value::Bytes(data.to_vec()));
    let who = Who { tool: "fuzz".into(), pid: 1, uid: 0, user: None, host: None };
    let line = format_line(&who, 1, &e, GENESIS);
    let parsed = match parse_line(line.as_bytes()) {
        Ok(p) => p,
        Err(err) => panic!("a line the writer made does not parse: {err}: {line}"),
    };
    // The writer cuts at MAX_VALUE bytes of UTF-8, which lossy decoding
    // can make of fewer input bytes (one bad byte, three of U+FFFD).
    if text.len() <= MAX_VALUE {
        assert_eq!(parsed.json.get("text").and_then(Json::as_str), Some(text.as_ref()), "{line}");
    }
    assert!(line.is_ascii() && !line.contains('\n'), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_ca_parses_and_may_sign() {
        let ca = fixed_ca();
        assert!(policy::may_sign(&ca, KeyUsages::CRLSign, "CRLs").is_ok());
        assert_eq!(ca.subject_text(), "/C=NL/O=ewak.net/CN=ewak.net Root CA");
    }
}
