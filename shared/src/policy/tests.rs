//! The certificate rules of `check_certificate`, through one edit of a
//! good TBS at a time.

use der::asn1::{Null, OctetString};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, CertificatePolicies,
    ExtendedKeyUsage, KeyUsages as K, NameConstraints, SubjectAltName,
};
use x509_cert::ext::Extension;

use super::*;
use crate::cert::*;
use crate::time;
use testing::*;

/// The issuing CA of these tests: Ed25519, ten years from T0, limited
/// to serverAuth and clientAuth (so OCSPSigning is outside its EKUs).
fn issuer() -> CaCert {
    let (_, spki) = ed25519(1);
    let mut exts = ca_extensions(&spki, Some(1), &[K::KeyCertSign, K::CRLSign]);
    exts.push(ext(oid::EXT_KEY_USAGE, false, &ExtendedKeyUsage(vec![oid::SERVER_AUTH, oid::CLIENT_AUTH])));
    ca("/C=NL/O=ewak.net/CN=Sub", &spki, (T0, T0 + 3650 * DAY), exts)
}

fn aki(ca: &CaCert) -> Extension {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(ca.key_id.clone()).expect("aki")),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    ext(oid::AUTHORITY_KEY_ID, false, &aki)
}

/// A TLS server certificate for www.ewak.net under `ca`: P-256, a year.
fn server(ca: &CaCert) -> TbsCert {
    let exts = vec![
        ext(oid::BASIC_CONSTRAINTS, true, &basic(false, None)),
        ext(oid::KEY_USAGE, true, &usages(&[K::DigitalSignature])),
        ext(oid::EXT_KEY_USAGE, false, &ExtendedKeyUsage(vec![oid::SERVER_AUTH])),
        ext(oid::SUBJECT_ALT_NAME, false, &SubjectAltName(vec![dns("www.ewak.net"), ip(&[192, 0, 2, 1])])),
        aki(ca),
    ];
    let spki = fixture_spki("p256.pem");
    tbs(&ca.tbs.subject, &dn("/CN=www.ewak.net"), &spki, (T0 + DAY, T0 + 366 * DAY), exts)
}

/// `tbs` with the extension `e` in place of the one of its type (or
/// added), or with that type removed when `e` has no value.
fn with(mut tbs: TbsCert, oid: ObjectIdentifier, e: Option<Extension>) -> TbsCert {
    let list = tbs.extensions.get_or_insert_with(Vec::new);
    let at = list.iter().position(|x| x.extn_id == oid);
    match (at, e) {
        (Some(i), Some(e)) => list[i] = e,
        (None, Some(e)) => list.push(e),
        (Some(i), None) => {
            list.remove(i);
        }
        (None, None) => {}
    }
    tbs
}

/// Every rule of a certificate in the order check_certificate runs
/// them, each through one edit of a good server certificate.
#[test]
fn certificates() {
    let ca = issuer();
    let ok = || server(&ca);
    let san =
        |names: Vec<GeneralName>, critical| ext(oid::SUBJECT_ALT_NAME, critical, &SubjectAltName(names));
    let eku = |list: Vec<ObjectIdentifier>| ext(oid::EXT_KEY_USAGE, false, &ExtendedKeyUsage(list));
    let ku = |bits: &[K]| ext(oid::KEY_USAGE, true, &usages(bits));
    let subject = |t: TbsCert, name: &str| TbsCert {
        subject: if name.is_empty() { Default::default() } else { dn(name) },
        ..t
    };
    let sub_ca = |path_len| {
        let t = with(
            ok(),
            oid::BASIC_CONSTRAINTS,
            Some(ext(oid::BASIC_CONSTRAINTS, true, &basic(true, path_len))),
        );
        let t = with(t, oid::KEY_USAGE, Some(ku(&[K::KeyCertSign, K::CRLSign])));
        let spki = t.subject_public_key_info.clone();
        let ski = x509_cert::ext::pkix::SubjectKeyIdentifier(
            OctetString::new(crate::keys::key_id(&spki)).expect("ski"),
        );
        with(
            subject(t, "/C=NL/O=ewak.net/CN=Issuing"),
            oid::SUBJECT_KEY_ID,
            Some(ext(oid::SUBJECT_KEY_ID, false, &ski)),
        )
    };
    let responder = || {
        let t = with(ok(), oid::EXT_KEY_USAGE, Some(eku(vec![oid::OCSP_SIGNING])));
        let t = with(t, oid::SUBJECT_ALT_NAME, None);
        let t = with(t, oid::OCSP_NOCHECK, Some(ext(oid::OCSP_NOCHECK, false, &Null)));
        let validity = x509_cert::time::Validity::new(
            time::x509_time(T0).expect("t"),
            time::x509_time(T0 + 30 * DAY - 1).expect("t"),
        );
        TbsCert { validity, ..subject(t, "/CN=Sub OCSP") }
    };
    let unknown = ObjectIdentifier::new_unwrap("1.2.3.4");
    let policy = |oid| PolicyInformation { policy_identifier: oid, policy_qualifiers: None };
    let aia = |method| {
        let ad = AccessDescription { access_method: method, access_location: uri("http://ocsp.ewak.net/") };
        ext(oid::AUTHORITY_INFO_ACCESS, false, &AuthorityInfoAccessSyntax(vec![ad]))
    };
    let allow = [unknown];
    // What it checks; the TBSCertificate; --allow-extension; refusal or None.
    let rows: Vec<(&str, TbsCert, &[ObjectIdentifier], Option<&str>)> = vec![
        ("a TLS server certificate (control)", ok(), &[], None),
        (
            "basicConstraints missing",
            with(ok(), oid::BASIC_CONSTRAINTS, None),
            &[],
            Some("basicConstraints is missing"),
        ),
        (
            "pathLenConstraint in a leaf",
            with(
                ok(),
                oid::BASIC_CONSTRAINTS,
                Some(ext(oid::BASIC_CONSTRAINTS, true, &basic(false, Some(0)))),
            ),
            &[],
            Some("pathLenConstraint without cA TRUE"),
        ),
        ("a sub CA with pathLen 0 under pathLen 1", sub_ca(Some(0)), &[], None),
        ("a sub CA with pathLen 1 under pathLen 1", sub_ca(Some(1)), &[], Some("at most 0")),
        (
            "a sub CA with basicConstraints not critical",
            with(
                sub_ca(Some(0)),
                oid::BASIC_CONSTRAINTS,
                Some(ext(oid::BASIC_CONSTRAINTS, false, &basic(true, Some(0)))),
            ),
            &[],
            Some("must be critical in a CA certificate"),
        ),
        (
            "a sub CA without SKI",
            with(sub_ca(Some(0)), oid::SUBJECT_KEY_ID, None),
            &[],
            Some("subjectKeyIdentifier is missing from a CA certificate"),
        ),
        (
            "a sub CA without a subject",
            subject(sub_ca(Some(0)), ""),
            &[],
            Some("subject: a CA certificate needs a subject"),
        ),
        (
            "validity ending after the issuer",
            TbsCert {
                validity: x509_cert::time::Validity::new(
                    time::x509_time(T0).expect("t"),
                    time::x509_time(T0 + 3651 * DAY).expect("t"),
                ),
                ..ok()
            },
            &[],
            Some("validity ends"),
        ),
        (
            "an EKU outside the issuer's",
            with(ok(), oid::EXT_KEY_USAGE, Some(eku(vec![oid::CODE_SIGNING]))),
            &[],
            Some("extended key usage codeSigning is outside"),
        ),
        (
            "an empty EKU list",
            with(ok(), oid::EXT_KEY_USAGE, Some(eku(vec![]))),
            &[],
            Some("extKeyUsage (2.5.29.37): an empty list"),
        ),
        (
            "a delegated OCSP responder: OCSPSigning needs no room in the issuer's EKUs",
            responder(),
            &[],
            None,
        ),
        (
            "OCSPSigning in a CA",
            with(sub_ca(Some(0)), oid::EXT_KEY_USAGE, Some(eku(vec![oid::OCSP_SIGNING]))),
            &[],
            Some("OCSPSigning in a CA certificate would make it a responder"),
        ),
        (
            "ocspNoCheck in a server certificate",
            with(ok(), oid::OCSP_NOCHECK, Some(ext(oid::OCSP_NOCHECK, false, &Null))),
            &[],
            Some("only an OCSP responder certificate (extKeyUsage OCSPSigning) may carry it"),
        ),
        (
            "keyAgreement for a P-256 key",
            with(ok(), oid::KEY_USAGE, Some(ku(&[K::DigitalSignature, K::KeyAgreement]))),
            &[],
            None,
        ),
        (
            "keyEncipherment for a P-256 key",
            with(ok(), oid::KEY_USAGE, Some(ku(&[K::KeyEncipherment]))),
            &[],
            Some("keyEncipherment cannot be done with a ec:p256 key"),
        ),
        (
            "keyCertSign in a leaf",
            with(ok(), oid::KEY_USAGE, Some(ku(&[K::DigitalSignature, K::KeyCertSign]))),
            &[],
            Some("keyCertSign or cRLSign in a certificate that is not a CA"),
        ),
        (
            "a server certificate with no host SAN",
            with(ok(), oid::SUBJECT_ALT_NAME, Some(san(vec![email("a@ewak.net")], false))),
            &[],
            Some("a TLS server certificate needs a dns: or ip: name"),
        ),
        (
            "a CN that is not among the SANs",
            subject(ok(), "/CN=mail.ewak.net"),
            &[],
            Some("CN \"mail.ewak.net\" of a TLS server certificate is not one of its dns: or ip: names"),
        ),
        ("a CN in another case", subject(ok(), "/CN=WWW.ewak.net"), &[], None),
        ("a CN that is the IP SAN", subject(ok(), "/CN=192.0.2.1"), &[], None),
        (
            "an empty subject with a SAN that is not critical",
            subject(with(ok(), oid::EXT_KEY_USAGE, Some(eku(vec![oid::CLIENT_AUTH]))), ""),
            &[],
            Some("subject: empty, so subjectAltName must be present and critical"),
        ),
        (
            "an empty subject with a critical SAN",
            subject(
                with(
                    with(ok(), oid::EXT_KEY_USAGE, Some(eku(vec![oid::CLIENT_AUTH]))),
                    oid::SUBJECT_ALT_NAME,
                    Some(san(vec![dns("www.ewak.net")], true)),
                ),
                "",
            ),
            &[],
            None,
        ),
        (
            "an empty SAN list",
            with(ok(), oid::SUBJECT_ALT_NAME, Some(san(vec![], false))),
            &[],
            Some("subjectAltName (2.5.29.17): an empty list"),
        ),
        (
            "authorityKeyIdentifier missing",
            with(ok(), oid::AUTHORITY_KEY_ID, None),
            &[],
            Some("authorityKeyIdentifier (keyIdentifier) is missing"),
        ),
        (
            "authorityKeyIdentifier of another key",
            with(ok(), oid::AUTHORITY_KEY_ID, Some(aki(&root(&fixture_spki("p384.pem"))))),
            &[],
            Some("does not name the key of issuer /C=NL/O=ewak.net/CN=Sub"),
        ),
        (
            "a weak subject key",
            TbsCert {
                subject_public_key_info: crate::keys::spki_rsa(&[0xc5; 128], &crate::keys::RSA_EXPONENT)
                    .expect("spki"),
                ..ok()
            },
            &[],
            Some("weak key"),
        ),
        (
            "an unknown extension",
            with(ok(), unknown, Some(ext(unknown, false, &Null))),
            &[],
            Some("extension 1.2.3.4: an unknown extension"),
        ),
        ("the same, allowed", with(ok(), unknown, Some(ext(unknown, false, &Null))), &allow, None),
        (
            "an unknown critical extension, allowed",
            with(ok(), unknown, Some(ext(unknown, true, &Null))),
            &allow,
            Some("an unknown critical extension"),
        ),
        (
            "a critical SKI",
            with(
                ok(),
                oid::SUBJECT_KEY_ID,
                Some(ext(oid::SUBJECT_KEY_ID, true, &OctetString::new([1u8; 20]).expect("o"))),
            ),
            &[],
            Some("extension subjectKeyIdentifier (2.5.29.14): must not be critical"),
        ),
        (
            "a policy twice",
            with(
                ok(),
                oid::CERTIFICATE_POLICIES,
                Some(ext(
                    oid::CERTIFICATE_POLICIES,
                    false,
                    &CertificatePolicies(vec![policy(oid::ANY_EKU), policy(oid::ANY_EKU)]),
                )),
            ),
            &[],
            Some("policy 2.5.29.37.0 twice"),
        ),
        ("AIA with id-ad-ocsp", with(ok(), oid::AUTHORITY_INFO_ACCESS, Some(aia(oid::AD_OCSP))), &[], None),
        (
            "AIA with another access method",
            with(ok(), oid::AUTHORITY_INFO_ACCESS, Some(aia(unknown))),
            &[],
            Some("access method 1.2.3.4"),
        ),
    ];
    for (what, tbs, allow, want) in rows {
        expect(what, check_certificate(&tbs, Issuer::Ca { ca: &ca, above: &[] }, allow), want);
    }
}

/// Which rule refused, for the refusals a tool's flags can cause; the
/// message is check_certificate's either way.
#[test]
fn refusals_name_their_rule() {
    let ca = issuer();
    let ok = || server(&ca);
    let validity = |days| {
        x509_cert::time::Validity::new(
            time::x509_time(T0).expect("t"),
            time::x509_time(T0 + days * DAY - 1).expect("t"),
        )
    };
    let responder = |days| {
        let t = with(
            ok(),
            oid::EXT_KEY_USAGE,
            Some(ext(oid::EXT_KEY_USAGE, false, &ExtendedKeyUsage(vec![oid::OCSP_SIGNING]))),
        );
        let t = with(t, oid::OCSP_NOCHECK, Some(ext(oid::OCSP_NOCHECK, false, &Null)));
        TbsCert { validity: validity(days), ..t }
    };
    let rows = [
        ("validity past the issuer's", TbsCert { validity: validity(3651), ..ok() }, Rule::Validity),
        ("a responder of 91 days", responder(91), Rule::ResponderValidity),
        (
            "an EKU outside the issuer's",
            with(
                ok(),
                oid::EXT_KEY_USAGE,
                Some(ext(oid::EXT_KEY_USAGE, false, &ExtendedKeyUsage(vec![oid::CODE_SIGNING]))),
            ),
            Rule::Eku,
        ),
        (
            "no host name",
            with(
                ok(),
                oid::SUBJECT_ALT_NAME,
                Some(ext(oid::SUBJECT_ALT_NAME, false, &SubjectAltName(vec![email("a@ewak.net")]))),
            ),
            Rule::ServerNames,
        ),
        ("no basicConstraints", with(ok(), oid::BASIC_CONSTRAINTS, None), Rule::Extensions),
    ];
    for (what, tbs, rule) in rows {
        let issuer = || Issuer::Ca { ca: &ca, above: &[] };
        let refusal = check_certificate_rules(&tbs, issuer(), &[]).expect_err(what);
        assert_eq!(refusal.rule, rule, "{what}: {}", refusal.error);
        let plain = check_certificate(&tbs, issuer(), &[]).expect_err(what);
        assert_eq!(plain.message(), refusal.error.message(), "{what}");
    }
    assert!(check_certificate_rules(&responder(90), Issuer::Ca { ca: &ca, above: &[] }, &[]).is_ok());
}

/// A self-signed root is its own issuer: its keyUsage must allow
/// keyCertSign; pathLen, validity and EKU nesting do not apply.
#[test]
fn self_signed() {
    let (_, spki) = ed25519(7);
    let name = dn("/CN=Root");
    let root = |ku: &[K]| {
        tbs(&name, &name, &spki, (T0, T0 + 3650 * DAY), {
            let mut exts = ca_extensions(&spki, None, ku);
            exts.push(ext(
                oid::AUTHORITY_KEY_ID,
                false,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(crate::keys::key_id(&spki)).expect("aki")),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
            ));
            exts
        })
    };
    expect("a root", check_certificate(&root(&[K::KeyCertSign, K::CRLSign]), Issuer::SelfSigned, &[]), None);
    expect(
        "a root without keyCertSign",
        check_certificate(&root(&[K::CRLSign]), Issuer::SelfSigned, &[]),
        Some("issuer /CN=Root may not sign certificates (no keyCertSign in its keyUsage)"),
    );
}

/// Name constraints of every CA above the issuer apply (`--chain`).
#[test]
fn constraints_from_above() {
    let ca = issuer();
    let (_, spki) = ed25519(8);
    let nc = NameConstraints {
        permitted_subtrees: None,
        excluded_subtrees: Some(vec![GeneralSubtree {
            base: dns("www.ewak.net"),
            minimum: 0,
            maximum: None,
        }]),
    };
    let mut exts = ca_extensions(&spki, None, &[K::KeyCertSign]);
    exts.push(ext(oid::NAME_CONSTRAINTS, true, &nc));
    let above = [crate::policy::testing::ca("/CN=Root", &spki, (T0, T0 + 3650 * DAY), exts)];
    expect(
        "without the chain",
        check_certificate(&server(&ca), Issuer::Ca { ca: &ca, above: &[] }, &[]),
        None,
    );
    expect(
        "with the chain",
        check_certificate(&server(&ca), Issuer::Ca { ca: &ca, above: &above }, &[]),
        Some("name constraints: dns:www.ewak.net is within an excluded subtree of issuer /CN=Root"),
    );
}
