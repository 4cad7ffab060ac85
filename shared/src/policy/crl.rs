//! The rules of a TBSCertList (RFC 5280 section 5), the one CRL gate that
//! card-sign runs on what it is given and tbs-build on what it built.

use der::asn1::ObjectIdentifier;
use x509_cert::crl::TbsCertList;
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, KeyUsages};

use super::extensions::{criticality, ext_error, strict, unknown_extension};
use super::{may_sign, who};
use crate::cert::CaCert;
use crate::error::{Error, Result};
use crate::oid;

/// Every rule a TBSCertList must pass before a CA key signs it, beyond the
/// DER sanity of [`crate::cert::check_tbs_crl`] (which callers run first):
/// a CA that may sign CRLs, an authorityKeyIdentifier naming its key, and
/// only extensions that can be checked, each well-formed.
pub fn check_crl(tbs: &TbsCertList, ca: &CaCert, allow: &[ObjectIdentifier]) -> Result<()> {
    may_sign(ca, KeyUsages::CRLSign, "CRLs")?;
    let mut aki = None;
    for ext in tbs.crl_extensions.as_deref().unwrap_or(&[]) {
        match ext.extn_id {
            oid::AUTHORITY_KEY_ID => {
                criticality(ext, Some(false))?;
                aki = Some(strict::<AuthorityKeyIdentifier>(ext)?);
            }
            oid::CRL_NUMBER => {
                criticality(ext, Some(false))?;
                let n: CrlNumber = strict(ext)?;
                if n.0.as_bytes().len() > 20 {
                    return Err(ext_error(&ext.extn_id, "longer than 20 octets (RFC 5280 section 5.2.3)"));
                }
            }
            _ => unknown_extension(ext, allow)?,
        }
    }
    match aki.as_ref().and_then(|a| a.key_identifier.as_ref()) {
        Some(id) if id.as_bytes() == ca.key_id.as_slice() => {}
        Some(_) => {
            return Err(ext_error(&oid::AUTHORITY_KEY_ID, format!("does not name the key of {}", who(ca))))
        }
        None => return Err(Error::new("authorityKeyIdentifier (keyIdentifier) is missing from the CRL")),
    }
    for entry in tbs.revoked_certificates.as_deref().unwrap_or(&[]) {
        for ext in entry.crl_entry_extensions.as_deref().unwrap_or(&[]) {
            match ext.extn_id {
                oid::CRL_REASON => {
                    criticality(ext, Some(false))?;
                    let _: CrlReason = strict(ext)?;
                }
                oid::INVALIDITY_DATE => {
                    criticality(ext, Some(false))?;
                    let _: der::asn1::GeneralizedTime = strict(ext)?;
                }
                _ => unknown_extension(ext, allow)?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use der::asn1::{GeneralizedTime, OctetString, UintRef};
    use der::{Any, Tag};
    use x509_cert::certificate::Version;
    use x509_cert::crl::RevokedCert;
    use x509_cert::ext::Extension;
    use x509_cert::serial_number::SerialNumber;

    use super::*;
    use crate::policy::testing::*;
    use crate::sign::SigAlg;
    use crate::time;

    const NOW: u64 = T0 + 100 * DAY;

    fn aki(id: &[u8], critical: bool) -> Extension {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(id).expect("id")),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        ext(oid::AUTHORITY_KEY_ID, critical, &aki)
    }

    fn number(octets: &[u8], critical: bool) -> Extension {
        ext(oid::CRL_NUMBER, critical, &UintRef::new(octets).expect("number"))
    }

    fn entry(exts: Vec<Extension>) -> RevokedCert {
        RevokedCert {
            serial_number: SerialNumber::new(&[0x42]).expect("serial"),
            revocation_date: time::x509_time(NOW - DAY).expect("t"),
            crl_entry_extensions: (!exts.is_empty()).then_some(exts),
        }
    }

    /// A TBSCertList of `ca` as tbs-build writes one, with these
    /// extensions, entries and nextUpdate.
    fn crl(
        ca: &CaCert,
        exts: Vec<Extension>,
        revoked: Option<Vec<RevokedCert>>,
        next: Option<u64>,
    ) -> TbsCertList {
        TbsCertList {
            version: Version::V2,
            signature: SigAlg::Ed25519.identifier().expect("alg"),
            issuer: ca.tbs.subject.clone(),
            this_update: time::x509_time(NOW).expect("t"),
            next_update: next.map(|n| time::x509_time(n).expect("t")),
            revoked_certificates: revoked,
            crl_extensions: Some(exts),
        }
    }

    /// The CRL gate as card-sign and tbs-build run it: the DER sanity of
    /// cert::check_tbs_crl, then the policy.
    fn gate(tbs: &TbsCertList, ca: &CaCert, allow: &[ObjectIdentifier]) -> Result<()> {
        crate::cert::check_tbs_crl(tbs)?;
        check_crl(tbs, ca, allow)
    }

    #[test]
    fn crl_rules() {
        let (_, spki) = ed25519(1);
        let ca = root(&spki);
        let id = ca.key_id.clone();
        let std = || vec![aki(&id, false), number(&[1], false)];
        let with = |extra: Extension| {
            let mut e = std();
            e.push(extra);
            e
        };
        let week = Some(NOW + 7 * DAY);
        let reason = |code: u8, critical| {
            ext(oid::CRL_REASON, critical, &Any::new(Tag::Enumerated, [code]).expect("reason"))
        };
        let invalidity = ext(
            oid::INVALIDITY_DATE,
            false,
            &GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(NOW - 2 * DAY)).expect("t"),
        );
        let unknown = ObjectIdentifier::new_unwrap("1.2.3.4");
        let allow_unknown = [unknown];
        let odd = ext(unknown, false, &der::asn1::Null);
        let odd_critical = ext(unknown, true, &der::asn1::Null);
        // What it checks; the TBSCertList; --allow-extension; refusal or None.
        let rows: Vec<(&str, TbsCertList, &[ObjectIdentifier], Option<&str>)> = vec![
            ("nothing revoked (control)", crl(&ca, std(), None, week), &[], None),
            ("nextUpdate a second after thisUpdate", crl(&ca, std(), None, Some(NOW + 1)), &[], None),
            ("nextUpdate equal to thisUpdate", crl(&ca, std(), None, Some(NOW)), &[], Some("thisUpdate is not before nextUpdate")),
            ("nextUpdate before thisUpdate", crl(&ca, std(), None, Some(NOW - 1)), &[], Some("thisUpdate is not before nextUpdate")),
            ("no nextUpdate", crl(&ca, std(), None, None), &[], Some("no nextUpdate (RFC 5280 section 5.1.2.5)")),
            ("an empty revokedCertificates", crl(&ca, std(), Some(vec![]), week), &[], Some("must be left out")),
            ("a CRL number of 20 octets", crl(&ca, vec![aki(&id, false), number(&[0x7f; 20], false)], None, week), &[], None),
            (
                "a CRL number of 21 octets",
                crl(&ca, vec![aki(&id, false), number(&[0x7f; 21], false)], None, week),
                &[],
                Some("cRLNumber (2.5.29.20): longer than 20 octets (RFC 5280 section 5.2.3)"),
            ),
            (
                "a critical CRL number",
                crl(&ca, vec![aki(&id, false), number(&[1], true)], None, week),
                &[],
                Some("extension cRLNumber (2.5.29.20): must not be critical"),
            ),
            ("no CRL number: not required by the policy", crl(&ca, vec![aki(&id, false)], None, week), &[], None),
            (
                "no authorityKeyIdentifier",
                crl(&ca, vec![number(&[1], false)], None, week),
                &[],
                Some("authorityKeyIdentifier (keyIdentifier) is missing from the CRL"),
            ),
            (
                "an authorityKeyIdentifier of another key",
                crl(&ca, vec![aki(&[9; 20], false), number(&[1], false)], None, week),
                &[],
                Some("authorityKeyIdentifier (2.5.29.35): does not name the key of issuer /C=NL/O=ewak.net/CN=Root"),
            ),
            (
                "a critical authorityKeyIdentifier",
                crl(&ca, vec![aki(&id, true), number(&[1], false)], None, week),
                &[],
                Some("must not be critical"),
            ),
            ("an unknown extension", crl(&ca, with(odd.clone()), None, week), &[], Some("extension 1.2.3.4: an unknown extension")),
            ("the same, allowed", crl(&ca, with(odd.clone()), None, week), &allow_unknown, None),
            (
                "an unknown critical extension, allowed or not",
                crl(&ca, with(odd_critical.clone()), None, week),
                &allow_unknown,
                Some("an unknown critical extension"),
            ),
            ("an entry with no extension", crl(&ca, std(), Some(vec![entry(vec![])]), week), &[], None),
            ("an entry with keyCompromise", crl(&ca, std(), Some(vec![entry(vec![reason(1, false)])]), week), &[], None),
            (
                "an entry with a critical reasonCode",
                crl(&ca, std(), Some(vec![entry(vec![reason(1, true)])]), week),
                &[],
                Some("extension reasonCode (2.5.29.21): must not be critical"),
            ),
            (
                "an entry with a reasonCode that is no CRLReason",
                crl(&ca, std(), Some(vec![entry(vec![reason(7, false)])]), week),
                &[],
                Some("extension reasonCode (2.5.29.21): malformed value"),
            ),
            ("an entry with an invalidityDate", crl(&ca, std(), Some(vec![entry(vec![invalidity])]), week), &[], None),
            (
                "an entry with an unknown extension",
                crl(&ca, std(), Some(vec![entry(vec![odd.clone()])]), week),
                &[],
                Some("extension 1.2.3.4: an unknown extension"),
            ),
        ];
        for (what, tbs, allow, want) in rows {
            expect(what, gate(&tbs, &ca, allow), want);
        }
    }

    /// The issuer's own gate, which tbs-build runs before it takes a CRL
    /// number and check_crl runs again.
    #[test]
    fn who_may_sign_crls() {
        let spki = fixture_spki("p256.pem");
        let week = Some(NOW + 7 * DAY);
        // What it checks; the CA's cA flag and keyUsage; refusal or None.
        let rows: &[(&str, bool, &[KeyUsages], Option<&str>)] = &[
            ("a CA with cRLSign", true, &[KeyUsages::KeyCertSign, KeyUsages::CRLSign], None),
            ("a CA with cRLSign only", true, &[KeyUsages::CRLSign], None),
            (
                "a CA without cRLSign",
                true,
                &[KeyUsages::KeyCertSign],
                Some("issuer /CN=CA may not sign CRLs (no cRLSign in its keyUsage)"),
            ),
            (
                "not a CA",
                false,
                &[KeyUsages::CRLSign],
                Some("issuer /CN=CA is not a CA certificate (basicConstraints cA is not TRUE)"),
            ),
        ];
        for (what, is_ca, ku, want) in rows {
            let exts = vec![
                ext(oid::BASIC_CONSTRAINTS, true, &basic(*is_ca, None)),
                ext(oid::KEY_USAGE, true, &usages(ku)),
            ];
            let ca = ca("/CN=CA", &spki, (T0, T0 + 365 * DAY), exts);
            expect(what, may_sign(&ca, KeyUsages::CRLSign, "CRLs"), *want);
            let tbs = crl(&ca, vec![aki(&ca.key_id, false), number(&[1], false)], None, week);
            expect(what, gate(&tbs, &ca, &[]), *want);
        }
        let no_usage =
            ca("/CN=CA", &spki, (T0, T0 + DAY), vec![ext(oid::BASIC_CONSTRAINTS, true, &basic(true, None))]);
        expect("a CA without keyUsage", may_sign(&no_usage, KeyUsages::CRLSign, "CRLs"), Some("no cRLSign"));
        expect(
            "certificates need keyCertSign",
            may_sign(&no_usage, KeyUsages::KeyCertSign, "certificates"),
            Some("issuer /CN=CA may not sign certificates (no keyCertSign in its keyUsage)"),
        );
    }
}
