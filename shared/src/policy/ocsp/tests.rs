//! Table tests of the OCSP rules: the interval and time edges, the content
//! of a ResponseData, delegated responder certificates, and signed
//! responses as cert-store checks them. Ed25519 keys from fixed seeds sign
//! what must carry a real signature.

use der::asn1::{Null, OctetString};
use der::Decode;
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, KeyUsages as K};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::*;
use crate::ocsp::{RevokedInfo, SingleResponse};
use crate::oid;
use crate::policy::testing::*;

/// "Now" in these tests: a hundred days into the CA's ten years.
const NOW: u64 = T0 + 100 * DAY;
const H: u64 = 3600;

struct Fixture {
    ca: CaCert,
    ca_key: ed25519_dalek::SigningKey,
}

fn fixture() -> Fixture {
    let (ca_key, spki) = ed25519(1);
    let ca = root(&spki);
    let ca = signed(&ca.tbs, &ca_key);
    Fixture { ca, ca_key }
}

/// A ResponseData for serial 42 of `ca`, signed (by responderID) by
/// the key `signer`: good, with these thisUpdate, nextUpdate and
/// producedAt.
fn response(ca: &CaCert, signer: &SubjectPublicKeyInfoOwned, times: (u64, Option<u64>, u64)) -> ResponseData {
    let (this, next, produced) = times;
    let key = OctetString::new(ocsp::key_hash(signer, IdHash::Sha1)).expect("key hash");
    ResponseData {
        version: None,
        responder_id: ResponderId::ByKey(key),
        produced_at: ocsp::generalized(produced).expect("t"),
        responses: vec![SingleResponse {
            cert_id: ocsp::cert_id(ca, SerialNumber::new(&[0x42]).expect("serial")).expect("id"),
            cert_status: CertStatus::Good(Null),
            this_update: ocsp::generalized(this).expect("t"),
            next_update: next.map(|n| ocsp::generalized(n).expect("t")),
            single_extensions: None,
        }],
        response_extensions: None,
    }
}

/// The BRs' interval counts both ends: 8 hours to 10 days from
/// thisUpdate to nextUpdate inclusive. And the times against `now`
/// (a response may be made up to an hour ahead) and the signer.
#[test]
fn intervals_and_times() {
    let f = fixture();
    let spki = &f.ca.tbs.subject_public_key_info;
    let ca_end = T0 + 3650 * DAY;
    // What it checks; thisUpdate, nextUpdate, producedAt; now; refusal or None.
    type Row = (&'static str, (u64, Option<u64>, u64), u64, Option<&'static str>);
    let rows: &[Row] = &[
        ("a day, produced at thisUpdate", (NOW, Some(NOW + DAY), NOW), NOW, None),
        ("10 days less a second: 10 days with both ends", (NOW, Some(NOW + 10 * DAY - 1), NOW), NOW, None),
        (
            "nextUpdate 10 days on: 10 days and a second",
            (NOW, Some(NOW + 10 * DAY), NOW),
            NOW,
            Some("thisUpdate to nextUpdate, both included, is 864001 s: at most 10 days, 864000 s"),
        ),
        ("8 hours with both ends", (NOW, Some(NOW + 8 * H - 1), NOW), NOW, None),
        (
            "7:59:59 with both ends",
            (NOW, Some(NOW + 8 * H - 2), NOW),
            NOW,
            Some("is 28799 s: at least 8 hours"),
        ),
        (
            "thisUpdate equal to nextUpdate: one second",
            (NOW, Some(NOW), NOW),
            NOW,
            Some("is 1 s: at least 8 hours"),
        ),
        (
            "nextUpdate before thisUpdate",
            (NOW, Some(NOW - 1), NOW),
            NOW,
            Some("thisUpdate is after nextUpdate"),
        ),
        ("no nextUpdate", (NOW, None, NOW), NOW, Some("no nextUpdate (RFC 5019 section 2.2.4 requires it)")),
        (
            "producedAt a second before thisUpdate",
            (NOW, Some(NOW + DAY), NOW - 1),
            NOW,
            Some("producedAt lies outside"),
        ),
        ("producedAt at nextUpdate", (NOW, Some(NOW + DAY), NOW + DAY), NOW + DAY - 1, None),
        (
            "producedAt after nextUpdate",
            (NOW, Some(NOW + DAY), NOW + DAY + 1),
            NOW,
            Some("producedAt lies outside"),
        ),
        ("producedAt an hour ahead of now", (NOW, Some(NOW + DAY), NOW + H), NOW, None),
        (
            "producedAt an hour and a second ahead",
            (NOW, Some(NOW + DAY), NOW + H + 1),
            NOW,
            Some("producedAt 2026-04-11T01:00:01Z is in the future"),
        ),
        ("producedAt two hours ahead", (NOW, Some(NOW + DAY), NOW + 2 * H), NOW, Some("is in the future")),
        ("thisUpdate an hour ahead of now", (NOW + H, Some(NOW + DAY), NOW + H), NOW, None),
        (
            "thisUpdate an hour and a second ahead",
            (NOW + H + 1, Some(NOW + DAY), NOW + H + 1),
            NOW,
            Some("thisUpdate 2026-04-11T01:00:01Z is in the future"),
        ),
        ("nextUpdate a second from now", (NOW - DAY, Some(NOW + 1), NOW - DAY), NOW, None),
        (
            "nextUpdate now: passed",
            (NOW - DAY, Some(NOW), NOW - DAY),
            NOW,
            Some("nextUpdate 2026-04-11T00:00:00Z has passed"),
        ),
        ("from the signer's first second", (T0, Some(T0 + DAY), T0), T0, None),
        (
            "thisUpdate before the signer is valid",
            (T0 - 1, Some(T0 + DAY), T0),
            T0,
            Some("is not within the validity of the signer /C=NL/O=ewak.net/CN=Root"),
        ),
        ("to the signer's last second", (ca_end - DAY, Some(ca_end), ca_end - DAY), ca_end - DAY, None),
        (
            "nextUpdate after the signer expires",
            (ca_end - DAY, Some(ca_end + 1), ca_end - DAY),
            ca_end - DAY,
            Some("is not within the validity of the signer"),
        ),
    ];
    for (what, times, now, want) in rows {
        expect(what, check_ocsp(&response(&f.ca, spki, *times), &f.ca, None, &[], *now), *want);
    }
}

/// The content of a response: version, responderID, CertID, status
/// and extensions.
#[test]
fn response_content() {
    let f = fixture();
    let spki = &f.ca.tbs.subject_public_key_info;
    let ok = || response(&f.ca, spki, (NOW, Some(NOW + DAY), NOW));
    let revoked = |at: u64, reason| {
        let mut rd = ok();
        rd.responses[0].cert_status = CertStatus::Revoked(RevokedInfo {
            revocation_time: ocsp::generalized(at).expect("t"),
            revocation_reason: reason,
        });
        rd
    };
    let nonce = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
    let allow_nonce = [nonce];
    let with_ext = |critical| {
        let mut rd = ok();
        rd.response_extensions = Some(vec![ext(nonce, critical, &OctetString::new([7u8; 8]).expect("o"))]);
        rd
    };
    let sha256_id = {
        let mut rd = ok();
        let id = &mut rd.responses[0].cert_id;
        id.hash_algorithm.oid = oid::SHA256;
        id.issuer_name_hash =
            OctetString::new(IdHash::Sha256.digest(&f.ca.tbs.subject.to_der().expect("n"))).expect("o");
        id.issuer_key_hash = OctetString::new(ocsp::key_hash(spki, IdHash::Sha256)).expect("o");
        rd
    };
    let edit = |change: &dyn Fn(&mut ResponseData)| {
        let mut rd = ok();
        change(&mut rd);
        rd
    };
    let (_, other) = ed25519(9);
    // What it checks; the ResponseData; --allow-extension; refusal or None.
    let rows: Vec<(&str, ResponseData, &[ObjectIdentifier], Option<&str>)> = vec![
        ("good (control)", ok(), &[], None),
        ("a SHA-256 CertID naming this CA", sha256_id, &[], None),
        (
            "revoked before thisUpdate, keyCompromise",
            revoked(NOW - DAY, Some(CrlReason::KeyCompromise)),
            &[],
            None,
        ),
        ("revoked at thisUpdate, no reason", revoked(NOW, None), &[], None),
        ("revoked after thisUpdate", revoked(NOW + 1, None), &[], Some("revocationTime is after thisUpdate")),
        (
            "reason unspecified",
            revoked(NOW, Some(CrlReason::Unspecified)),
            &[],
            Some("revocationReason unspecified"),
        ),
        ("reason removeFromCRL", revoked(NOW, Some(CrlReason::RemoveFromCRL)), &[], Some("or removeFromCRL")),
        (
            "status unknown",
            edit(&|rd| rd.responses[0].cert_status = CertStatus::Unknown(Null)),
            &[],
            Some("certStatus unknown"),
        ),
        ("an explicit version", edit(&|rd| rd.version = Some(0)), &[], Some("explicit version")),
        (
            "responderID byKey of another key",
            response(&f.ca, &other, (NOW, Some(NOW + DAY), NOW)),
            &[],
            Some("is not the key of the signer /C=NL/O=ewak.net/CN=Root"),
        ),
        (
            "responderID byName",
            edit(&|rd| rd.responder_id = ResponderId::ByName(f.ca.tbs.subject.clone())),
            &[],
            Some("cardca's responses name their responder byKey"),
        ),
        (
            "issuerNameHash of another name",
            edit(&|rd| rd.responses[0].cert_id.issuer_name_hash = OctetString::new([0u8; 20]).expect("o")),
            &[],
            Some("CertID issuerNameHash is not the hash of the CA's name"),
        ),
        (
            "issuerKeyHash of another key",
            edit(&|rd| rd.responses[0].cert_id.issuer_key_hash = OctetString::new([0u8; 20]).expect("o")),
            &[],
            Some("CertID issuerKeyHash is not the hash of the key of issuer"),
        ),
        (
            "serial 0",
            edit(&|rd| rd.responses[0].cert_id.serial_number = SerialNumber::new(&[0]).expect("s")),
            &[],
            Some("CertID: serial number 0"),
        ),
        ("no SingleResponse", edit(&|rd| rd.responses.clear()), &[], Some("no SingleResponse")),
        (
            "two SingleResponses",
            edit(&|rd| rd.responses.push(rd.responses[0].clone())),
            &[],
            Some("2 SingleResponses"),
        ),
        (
            "an unknown response extension",
            with_ext(false),
            &[],
            Some("responseExtensions: extension 1.3.6.1.5.5.7.48.1.2: an unknown extension"),
        ),
        ("the same, allowed", with_ext(false), &allow_nonce, None),
        (
            "an unknown critical one, allowed or not",
            with_ext(true),
            &allow_nonce,
            Some("an unknown critical extension"),
        ),
    ];
    for (what, rd, allow, want) in rows {
        expect(what, check_ocsp(&rd, &f.ca, None, allow, NOW), want);
    }
    let leaf = ca("/CN=leaf", spki, (T0, T0 + DAY), vec![]);
    expect(
        "a CA that is no CA",
        check_ocsp(&ok(), &leaf, None, &[], NOW),
        Some("issuer /CN=leaf is not a CA certificate: only a CA (or its responder) answers"),
    );
}

/// A delegated responder certificate for `f.ca`, valid `days` from
/// T0 (notAfter inclusive), with these extended key usages, keyUsage
/// and ocspNoCheck or not, signed by `signer`.
fn responder(
    f: &Fixture,
    days: u64,
    eku: Vec<ObjectIdentifier>,
    ku: &[K],
    nocheck: bool,
    signer: &ed25519_dalek::SigningKey,
) -> CaCert {
    let (_, spki) = ed25519(2);
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(f.ca.key_id.clone()).expect("aki")),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let mut exts = vec![
        ext(oid::BASIC_CONSTRAINTS, true, &basic(false, None)),
        ext(oid::KEY_USAGE, true, &usages(ku)),
        ext(oid::EXT_KEY_USAGE, false, &ExtendedKeyUsage(eku)),
        ext(oid::AUTHORITY_KEY_ID, false, &aki),
    ];
    if nocheck {
        exts.push(ext(oid::OCSP_NOCHECK, false, &der::asn1::Null));
    }
    let tbs = tbs(&f.ca.tbs.subject, &dn("/CN=Root OCSP"), &spki, (T0, T0 + days * DAY - 1), exts);
    signed(&tbs, signer)
}

#[test]
fn responder_certificates() {
    let f = fixture();
    let (other_key, _) = ed25519(3);
    let sig = &[K::DigitalSignature][..];
    let ocsp_only = || vec![oid::OCSP_SIGNING];
    // What it checks; the responder certificate; refusal or None.
    let rows: Vec<(&str, CaCert, Option<&str>)> = vec![
        ("30 days (control)", responder(&f, 30, ocsp_only(), sig, true, &f.ca_key), None),
        ("90 days: the longest", responder(&f, 90, ocsp_only(), sig, true, &f.ca_key), None),
        (
            "91 days",
            responder(&f, 91, ocsp_only(), sig, true, &f.ca_key),
            Some("an OCSP responder certificate valid 91 days: at most 90"),
        ),
        (
            "without ocspNoCheck",
            responder(&f, 30, ocsp_only(), sig, false, &f.ca_key),
            Some("ocspNoCheck (1.3.6.1.5.5.7.48.1.5) is missing"),
        ),
        (
            "OCSPSigning and serverAuth",
            responder(&f, 30, vec![oid::OCSP_SIGNING, oid::SERVER_AUTH], sig, true, &f.ca_key),
            Some("OCSPSigning as its only usage"),
        ),
        (
            "keyUsage beyond digitalSignature",
            responder(&f, 30, ocsp_only(), &[K::DigitalSignature, K::NonRepudiation], true, &f.ca_key),
            Some("has digitalSignature only"),
        ),
        (
            "no OCSPSigning",
            responder(&f, 30, vec![oid::CLIENT_AUTH], sig, false, &f.ca_key),
            Some("responder /CN=Root OCSP does not hold extKeyUsage OCSPSigning"),
        ),
        (
            "signed by another key",
            responder(&f, 30, ocsp_only(), sig, true, &other_key),
            Some("responder /CN=Root OCSP: checked with the key of /C=NL/O=ewak.net/CN=Root"),
        ),
    ];
    for (what, cert, want) in rows {
        expect(what, check_ocsp_responder(&cert, &f.ca).map(|_| ()), want);
    }
    let stranger = {
        let (key, spki) = ed25519(4);
        let other = root(&spki);
        let mut tbs = responder(&f, 30, ocsp_only(), sig, true, &key).tbs;
        tbs.issuer = dn("/CN=Another CA");
        (signed(&tbs, &key), other)
    };
    expect(
        "issued by another CA",
        check_ocsp_responder(&stranger.0, &f.ca).map(|_| ()),
        Some("responder /CN=Root OCSP is issued by /CN=Another CA, not by the CA /C=NL/O=ewak.net/CN=Root"),
    );

    // A response signed by the responder names the responder's key
    // and lies within the responder's validity.
    let cert = responder(&f, 30, ocsp_only(), sig, true, &f.ca_key);
    let checked = check_ocsp_responder(&cert, &f.ca).expect("responder");
    let by_responder = response(&f.ca, &cert.tbs.subject_public_key_info, (T0, Some(T0 + DAY), T0));
    expect("signed by the responder", check_ocsp(&by_responder, &f.ca, Some(checked), &[], T0), None);
    let by_ca = response(&f.ca, &f.ca.tbs.subject_public_key_info, (T0, Some(T0 + DAY), T0));
    expect(
        "the CA's responderID with a responder",
        check_ocsp(&by_ca, &f.ca, Some(checked), &[], T0),
        Some("is not the key of the signer /CN=Root OCSP"),
    );
    let late = response(
        &f.ca,
        &cert.tbs.subject_public_key_info,
        (T0 + 29 * DAY, Some(T0 + 30 * DAY), T0 + 29 * DAY),
    );
    expect(
        "past the responder's notAfter",
        check_ocsp(&late, &f.ca, Some(checked), &[], T0 + 29 * DAY),
        Some("is not within the validity of the signer /CN=Root OCSP"),
    );
}

/// Which certificates count as delegated responders (whose EKUs need
/// no room in the CA's): a leaf with OCSPSigning alone.
#[test]
fn responders_are_leaves_with_ocsp_signing_alone() {
    let eku = |list: Vec<ObjectIdentifier>| Some(ExtendedKeyUsage(list));
    let rows: &[(&str, Option<ExtendedKeyUsage>, bool, bool)] = &[
        ("a leaf with OCSPSigning", eku(vec![oid::OCSP_SIGNING]), false, true),
        ("a CA with OCSPSigning", eku(vec![oid::OCSP_SIGNING]), true, false),
        ("a leaf with OCSPSigning and more", eku(vec![oid::OCSP_SIGNING, oid::CLIENT_AUTH]), false, false),
        ("a leaf without EKU", None, false, false),
    ];
    for (what, eku, ca, want) in rows {
        assert_eq!(is_ocsp_responder(eku.as_ref(), *ca), *want, "{what}");
    }
}

/// A signed response as cert-store checks it: the whole envelope,
/// the rules above, and the signature.
#[test]
fn signed_responses() {
    let f = fixture();
    let rd = response(&f.ca, &f.ca.tbs.subject_public_key_info, (NOW, Some(NOW + DAY), NOW));
    let alg = SigAlg::Ed25519.identifier().expect("alg");
    let sign = |rd: &ResponseData, key: &ed25519_dalek::SigningKey| {
        use ed25519_dalek::Signer as _;
        key.sign(&rd.to_der().expect("rd")).to_bytes().to_vec()
    };
    let good = ocsp::assemble(&rd, &alg, &sign(&rd, &f.ca_key), None).expect("assemble");
    let checked = check_signed(good.clone(), &f.ca, NOW).expect("a good response");
    assert_eq!((checked.serial.as_str(), checked.this_update), ("42", NOW));
    assert_eq!(checked.der, good);

    let (other, _) = ed25519(5);
    let cert = responder(&f, 30, vec![oid::OCSP_SIGNING], &[K::DigitalSignature], true, &f.ca_key);
    let by_responder = response(&f.ca, &cert.tbs.subject_public_key_info, (T0, Some(T0 + DAY), T0));
    let (responder_key, _) = ed25519(2);
    // The CA's response with these certificates in certs.
    let envelope = |certs: Option<Vec<Vec<u8>>>| {
        let basic = BasicOcspResponse {
            tbs_response_data: rd.clone(),
            signature_algorithm: alg.clone(),
            signature: der::asn1::BitString::from_bytes(&sign(&rd, &f.ca_key)).expect("bits"),
            certs: certs.map(|list| list.iter().map(|c| der::Any::from_der(c).expect("any")).collect()),
        };
        let bytes = crate::ocsp::ResponseBytes {
            response_type: oid::OCSP_BASIC,
            response: OctetString::new(basic.to_der().expect("basic")).expect("o"),
        };
        let response =
            OcspResponse { response_status: ResponseStatus::Successful, response_bytes: Some(bytes) };
        response.to_der().expect("response")
    };
    let try_later = OcspResponse { response_status: ResponseStatus::TryLater, response_bytes: None }
        .to_der()
        .expect("response");
    let mut trailing = good.clone();
    trailing.push(0);
    // What it checks; the DER; now; refusal or None.
    let rows: Vec<(&str, Vec<u8>, u64, Option<&str>)> = vec![
        ("signed by the CA (control)", good.clone(), NOW, None),
        (
            "signed by its responder, certificate included",
            ocsp::assemble(&by_responder, &alg, &sign(&by_responder, &responder_key), Some(&cert.der))
                .expect("assemble"),
            T0,
            None,
        ),
        (
            "signed by another key",
            ocsp::assemble(&rd, &alg, &sign(&rd, &other), None).expect("assemble"),
            NOW,
            Some("the response's signature"),
        ),
        ("stale by the time it is filed", good.clone(), NOW + DAY, Some("has passed")),
        ("a trailing byte", trailing, NOW, Some("malformed OCSPResponse")),
        (
            "two certificates in certs",
            envelope(Some(vec![cert.der.clone(), cert.der.clone()])),
            NOW,
            Some("2 certificates in certs: only the responder's belongs there"),
        ),
        ("responseStatus tryLater", try_later, NOW, Some("responseStatus TryLater: nothing to serve")),
    ];
    for (what, der, now, want) in rows {
        expect(what, check_signed(der, &f.ca, now).map(|_| ()), want);
    }
}
