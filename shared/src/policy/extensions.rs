//! The extensions of a TBSCertificate as the policy reads them: each
//! decoded strictly and at most once, its criticality as RFC 5280 wants
//! it, unknown extensions refused unless the operator allowed them, and
//! the bases of a CA's own name constraints in forms a verifier can match.
//! The CRL and OCSP rules reuse the same strict decoding and the same
//! unknown-extension rule.

use der::asn1::ObjectIdentifier;
use der::Decode;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;

use crate::cert::*;
use crate::error::{Error, Result};
use crate::names;
use crate::oid;

/// The extensions of a TBSCertificate, each decoded strictly (DER that
/// re-encodes to the same bytes) and at most once.
#[derive(Default)]
pub(super) struct Parsed {
    pub(super) basic: Option<(BasicConstraints, bool)>,
    pub(super) key_usage: Option<KeyUsage>,
    pub(super) eku: Option<ExtendedKeyUsage>,
    pub(super) san: Option<(Vec<GeneralName>, bool)>,
    pub(super) name_constraints: Option<NameConstraints>,
    pub(super) ski: Option<Vec<u8>>,
    pub(super) aki: Option<AuthorityKeyIdentifier>,
}

/// The extensions cardca knows, by name, for messages.
pub fn extension_name(oid: &ObjectIdentifier) -> String {
    let name = match *oid {
        oid::BASIC_CONSTRAINTS => "basicConstraints",
        oid::KEY_USAGE => "keyUsage",
        oid::EXT_KEY_USAGE => "extKeyUsage",
        oid::SUBJECT_ALT_NAME => "subjectAltName",
        oid::NAME_CONSTRAINTS => "nameConstraints",
        oid::SUBJECT_KEY_ID => "subjectKeyIdentifier",
        oid::AUTHORITY_KEY_ID => "authorityKeyIdentifier",
        oid::CRL_DISTRIBUTION_POINTS => "cRLDistributionPoints",
        oid::AUTHORITY_INFO_ACCESS => "authorityInfoAccess",
        oid::CERTIFICATE_POLICIES => "certificatePolicies",
        oid::OCSP_NOCHECK => "ocspNoCheck",
        oid::CRL_NUMBER => "cRLNumber",
        oid::CRL_REASON => "reasonCode",
        oid::INVALIDITY_DATE => "invalidityDate",
        _ => return oid.to_string(),
    };
    format!("{name} ({oid})")
}

pub(super) fn ext_error(oid: &ObjectIdentifier, why: impl std::fmt::Display) -> Error {
    Error::new(format!("extension {}: {why}", extension_name(oid)))
}

pub(super) fn strict<'a, T: der::Decode<'a> + der::Encode>(ext: &'a Extension) -> Result<T>
where
    Error: From<<T as der::Decode<'a>>::Error>,
{
    decode_exact(ext.extn_value.as_bytes(), "value").map_err(|e| ext_error(&ext.extn_id, e))
}

/// RFC 5280 section 4.2: what must not be critical, what must be.
pub(super) fn criticality(ext: &Extension, must: Option<bool>) -> Result<()> {
    match must {
        Some(true) if !ext.critical => Err(ext_error(&ext.extn_id, "must be critical (RFC 5280)")),
        Some(false) if ext.critical => Err(ext_error(&ext.extn_id, "must not be critical (RFC 5280)")),
        _ => Ok(()),
    }
}

/// An extension nobody here can check: refused when critical (no relying
/// party could process it either), and when not critical unless the
/// operator named it with `--allow-extension`.
pub(super) fn unknown_extension(ext: &Extension, allow: &[ObjectIdentifier]) -> Result<()> {
    if ext.critical {
        return Err(ext_error(&ext.extn_id, "an unknown critical extension"));
    }
    if !allow.contains(&ext.extn_id) {
        return Err(ext_error(
            &ext.extn_id,
            "an unknown extension (sign it only after checking it, with --allow-extension OID)",
        ));
    }
    der::Any::from_der(ext.extn_value.as_bytes()).map_err(|e| ext_error(&ext.extn_id, e))?;
    Ok(())
}

fn check_uris(names: &[GeneralName], oid: &ObjectIdentifier) -> Result<()> {
    for name in names {
        match name {
            GeneralName::UniformResourceIdentifier(u) => {
                names::check_uri(u.as_str()).map_err(|e| ext_error(oid, e))?
            }
            other => {
                return Err(ext_error(
                    oid,
                    format!("{} where a URI belongs", names::general_name_text(other)),
                ))
            }
        }
    }
    Ok(())
}

pub(super) fn parse_extensions(tbs: &TbsCert, allow: &[ObjectIdentifier]) -> Result<Parsed> {
    let mut p = Parsed::default();
    for ext in tbs.extensions.as_deref().unwrap_or(&[]) {
        let oid = &ext.extn_id;
        match *oid {
            oid::BASIC_CONSTRAINTS => p.basic = Some((strict(ext)?, ext.critical)),
            oid::KEY_USAGE => p.key_usage = Some(strict(ext)?),
            oid::EXT_KEY_USAGE => {
                let eku: ExtendedKeyUsage = strict(ext)?;
                if eku.0.is_empty() {
                    return Err(ext_error(oid, "an empty list"));
                }
                p.eku = Some(eku);
            }
            oid::SUBJECT_ALT_NAME => {
                let san: SubjectAltName = strict(ext)?;
                if san.0.is_empty() {
                    return Err(ext_error(oid, "an empty list"));
                }
                for name in &san.0 {
                    names::check_general_name(name).map_err(|e| ext_error(oid, e))?;
                }
                p.san = Some((san.0, ext.critical));
            }
            oid::NAME_CONSTRAINTS => {
                criticality(ext, Some(true))?;
                let nc: NameConstraints = strict(ext)?;
                check_constraint_values(&nc).map_err(|e| ext_error(oid, e))?;
                p.name_constraints = Some(nc);
            }
            oid::SUBJECT_KEY_ID => {
                criticality(ext, Some(false))?;
                let ski: SubjectKeyIdentifier = strict(ext)?;
                p.ski = Some(ski.0.as_bytes().to_vec());
            }
            oid::AUTHORITY_KEY_ID => {
                criticality(ext, Some(false))?;
                p.aki = Some(strict(ext)?);
            }
            oid::CRL_DISTRIBUTION_POINTS => {
                let dps: CrlDistributionPoints = strict(ext)?;
                for dp in &dps.0 {
                    match &dp.distribution_point {
                        Some(DistributionPointName::FullName(n))
                            if dp.reasons.is_none() && dp.crl_issuer.is_none() =>
                        {
                            check_uris(n, oid)?
                        }
                        _ => return Err(ext_error(oid, "only distribution points that are full URIs")),
                    }
                }
            }
            oid::AUTHORITY_INFO_ACCESS => {
                criticality(ext, Some(false))?;
                let aia: AuthorityInfoAccessSyntax = strict(ext)?;
                for ad in &aia.0 {
                    if ad.access_method != oid::AD_OCSP && ad.access_method != oid::AD_CA_ISSUERS {
                        return Err(ext_error(oid, format!("access method {}", ad.access_method)));
                    }
                    check_uris(std::slice::from_ref(&ad.access_location), oid)?;
                }
            }
            oid::CERTIFICATE_POLICIES => {
                let policies: CertificatePolicies = strict(ext)?;
                let mut seen = std::collections::HashSet::new();
                for p in &policies.0 {
                    if !seen.insert(p.policy_identifier) {
                        return Err(ext_error(oid, format!("policy {} twice", p.policy_identifier)));
                    }
                }
            }
            oid::OCSP_NOCHECK => {
                criticality(ext, Some(false))?;
                let _: der::asn1::Null = strict(ext)?;
            }
            _ => unknown_extension(ext, allow)?,
        }
    }
    Ok(p)
}

/// The bases of a CA's own name constraints must be forms a verifier can
/// match: RFC 5280 section 4.2.1.10 also fixes minimum 0 and no maximum.
fn check_constraint_values(nc: &NameConstraints) -> Result<()> {
    let all = nc.permitted_subtrees.iter().chain(nc.excluded_subtrees.iter()).flatten();
    for subtree in all {
        if subtree.minimum != 0 || subtree.maximum.is_some() {
            return Err(Error::new("a subtree with minimum or maximum (RFC 5280: minimum 0, no maximum)"));
        }
        match &subtree.base {
            GeneralName::DnsName(d) => {
                let d = d.as_str().trim_start_matches('.');
                if !d.is_empty() {
                    names::check_dns(d, false)?
                }
            }
            GeneralName::Rfc822Name(m) => {
                let m = m.as_str();
                if m.contains('@') {
                    names::check_email(m)?
                } else {
                    names::check_dns(m.trim_start_matches('.'), false)?
                }
            }
            GeneralName::UniformResourceIdentifier(u) => {
                names::check_dns(u.as_str().trim_start_matches('.'), false)?
            }
            GeneralName::IpAddress(o) if matches!(o.as_bytes().len(), 8 | 32) => {}
            GeneralName::IpAddress(_) => {
                return Err(Error::new("an iPAddress constraint is an address and a mask"))
            }
            GeneralName::DirectoryName(n) => names::check_name(n)?,
            other => {
                return Err(Error::new(format!(
                    "{} constraints are not supported",
                    names::general_name_text(other)
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use x509_cert::ext::pkix::constraints::name::GeneralSubtree;

    use super::*;
    use crate::policy::testing::*;

    /// The bases a CA may put in its own name constraints: forms a
    /// verifier can match, minimum 0 and no maximum.
    #[test]
    fn constraint_values() {
        let tree = |base| GeneralSubtree { base, minimum: 0, maximum: None };
        let other_name = GeneralName::RegisteredId(ObjectIdentifier::new_unwrap("1.2.3.4"));
        // What it checks; the base (or a whole subtree); refusal or None.
        let rows: Vec<(&str, GeneralSubtree, Option<&str>)> = vec![
            ("a DNS name", tree(dns("ewak.net")), None),
            ("a DNS domain with a dot", tree(dns(".ewak.net")), None),
            ("an empty DNS base (every name)", tree(dns("")), None),
            (
                "a DNS base that is no host name",
                tree(dns("ewak_net!")),
                Some("labels hold letters, digits and hyphens only"),
            ),
            ("a mailbox", tree(email("ca@ewak.net")), None),
            ("a mail host", tree(email("ewak.net")), None),
            ("a mail domain", tree(email(".ewak.net")), None),
            ("a URI host", tree(uri("www.ewak.net")), None),
            ("a URI domain", tree(uri(".ewak.net")), None),
            ("an IPv4 address and mask", tree(ip(&[10, 0, 0, 0, 255, 0, 0, 0])), None),
            ("an IPv6 address and mask", tree(ip(&[0; 32])), None),
            (
                "an address without a mask",
                tree(ip(&[10, 0, 0, 1])),
                Some("an iPAddress constraint is an address and a mask"),
            ),
            ("a directoryName", tree(GeneralName::DirectoryName(dn("/C=NL/O=ewak.net"))), None),
            ("a registeredID", tree(other_name), Some("constraints are not supported")),
            (
                "minimum 1",
                GeneralSubtree { base: dns("ewak.net"), minimum: 1, maximum: None },
                Some("a subtree with minimum or maximum (RFC 5280: minimum 0, no maximum)"),
            ),
            (
                "a maximum",
                GeneralSubtree { base: dns("ewak.net"), minimum: 0, maximum: Some(3) },
                Some("a subtree with minimum or maximum"),
            ),
        ];
        for (what, subtree, want) in rows {
            let permitted =
                NameConstraints { permitted_subtrees: Some(vec![subtree.clone()]), excluded_subtrees: None };
            expect(what, check_constraint_values(&permitted), want);
            let excluded =
                NameConstraints { permitted_subtrees: None, excluded_subtrees: Some(vec![subtree]) };
            expect(what, check_constraint_values(&excluded), want);
        }
    }

    /// RFC 5280 section 4.2: nameConstraints critical, the key
    /// identifiers and AIA not.
    #[test]
    fn criticalities() {
        let value = der::asn1::Null;
        let rows: &[(&str, Extension, Option<bool>, Option<&str>)] = &[
            ("critical where it must be", ext(oid::NAME_CONSTRAINTS, true, &value), Some(true), None),
            (
                "not critical where it must be",
                ext(oid::NAME_CONSTRAINTS, false, &value),
                Some(true),
                Some("extension nameConstraints (2.5.29.30): must be critical (RFC 5280)"),
            ),
            ("not critical where it must not be", ext(oid::SUBJECT_KEY_ID, false, &value), Some(false), None),
            (
                "critical where it must not be",
                ext(oid::SUBJECT_KEY_ID, true, &value),
                Some(false),
                Some("extension subjectKeyIdentifier (2.5.29.14): must not be critical (RFC 5280)"),
            ),
            ("either, where either will do", ext(oid::KEY_USAGE, true, &value), None, None),
        ];
        for (what, e, must, want) in rows {
            expect(what, criticality(e, *must), *want);
        }
        assert_eq!(extension_name(&oid::OCSP_NOCHECK), "ocspNoCheck (1.3.6.1.5.5.7.48.1.5)");
        assert_eq!(extension_name(&ObjectIdentifier::new_unwrap("1.2.3.4")), "1.2.3.4");
    }
}
