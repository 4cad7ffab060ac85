//! The issuance policy: the rules a certificate, CRL or subject key must
//! meet before a CA key signs it. tbs-build uses them to build, card-sign
//! to refuse; each rule is one small function whose error names the rule
//! and the field it refuses.

use std::net::IpAddr;

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use x509_cert::crl::TbsCertList;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, CrlNumber, ExtendedKeyUsage, KeyUsage, KeyUsages, NameConstraints, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::cert::*;
use crate::error::{Context, Error, Result};
use crate::keys::{self, Curve, KeySpec, RsaPublicKey};
use crate::{names, time};

/// Keys we certify (and import): RSA of 2048 bits or more with exponent
/// 65537, the NIST curves P-256/384/521 with a point on the curve, Ed25519.
pub fn check_subject_key(spki: &SubjectPublicKeyInfoOwned) -> Result<KeySpec> {
    let spec = KeySpec::from_spki(spki).context("the subject public key")?;
    let bits = spki.subject_public_key.raw_bytes();
    match spec {
        KeySpec::Rsa(n) => {
            let key = RsaPublicKey::from_der(bits).context("RSA public key")?;
            if n < 2048 {
                return Err(Error::new(format!("weak key: RSA with {n} bits (at least 2048 required)")));
            }
            if key.public_exponent.as_bytes() != keys::RSA_EXPONENT {
                return Err(Error::new(format!(
                    "weak key: RSA public exponent {} (65537 required)",
                    crate::hex::encode(key.public_exponent.as_bytes())
                )));
            }
            if key.modulus.as_bytes().last().is_some_and(|b| b % 2 == 0) {
                return Err(Error::new("invalid RSA key: even modulus"));
            }
        }
        KeySpec::Ec(curve) => {
            let valid = match curve {
                Curve::P256 => p256::PublicKey::from_sec1_bytes(bits).is_ok(),
                Curve::P384 => p384::PublicKey::from_sec1_bytes(bits).is_ok(),
                Curve::P521 => p521::PublicKey::from_sec1_bytes(bits).is_ok(),
            };
            if !valid {
                return Err(Error::new(format!("invalid {spec} key: not a point on the curve")));
            }
        }
        KeySpec::Ed25519 => {
            let bytes: [u8; 32] = bits.try_into().map_err(|_| Error::new("Ed25519 key is not 32 bytes"))?;
            ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| Error::new("invalid Ed25519 key"))?;
        }
    }
    Ok(spec)
}

/// Whose rules apply to a TBSCertificate: its own (a self-signed root), or
/// an issuing CA's, with the CAs above it (`--chain`) for name constraints.
pub enum Issuer<'a> {
    SelfSigned,
    Ca { ca: &'a CaCert, above: &'a [CaCert] },
}

/// The extensions of a TBSCertificate, each decoded strictly (DER that
/// re-encodes to the same bytes) and at most once.
#[derive(Default)]
struct Parsed {
    basic: Option<(BasicConstraints, bool)>,
    key_usage: Option<KeyUsage>,
    eku: Option<ExtendedKeyUsage>,
    san: Option<(Vec<GeneralName>, bool)>,
    name_constraints: Option<NameConstraints>,
    ski: Option<Vec<u8>>,
    aki: Option<AuthorityKeyIdentifier>,
}

/// The extensions cardca knows, by name, for messages.
pub fn extension_name(oid: &ObjectIdentifier) -> String {
    let name = match *oid {
        OID_BASIC_CONSTRAINTS => "basicConstraints",
        OID_KEY_USAGE => "keyUsage",
        OID_EXT_KEY_USAGE => "extKeyUsage",
        OID_SUBJECT_ALT_NAME => "subjectAltName",
        OID_NAME_CONSTRAINTS => "nameConstraints",
        OID_SUBJECT_KEY_ID => "subjectKeyIdentifier",
        OID_AUTHORITY_KEY_ID => "authorityKeyIdentifier",
        OID_CRL_DISTRIBUTION_POINTS => "cRLDistributionPoints",
        OID_AUTHORITY_INFO_ACCESS => "authorityInfoAccess",
        OID_CERTIFICATE_POLICIES => "certificatePolicies",
        OID_OCSP_NOCHECK => "ocspNoCheck",
        OID_CRL_NUMBER => "cRLNumber",
        OID_CRL_REASON => "reasonCode",
        OID_INVALIDITY_DATE => "invalidityDate",
        _ => return oid.to_string(),
    };
    format!("{name} ({oid})")
}

fn ext_error(oid: &ObjectIdentifier, why: impl std::fmt::Display) -> Error {
    Error::new(format!("extension {}: {why}", extension_name(oid)))
}

fn strict<'a, T: der::Decode<'a> + der::Encode>(ext: &'a Extension) -> Result<T>
where
    Error: From<<T as der::Decode<'a>>::Error>,
{
    decode_exact(ext.extn_value.as_bytes(), "value").map_err(|e| ext_error(&ext.extn_id, e))
}

/// RFC 5280 section 4.2: what must not be critical, what must be.
fn criticality(ext: &Extension, must: Option<bool>) -> Result<()> {
    match must {
        Some(true) if !ext.critical => Err(ext_error(&ext.extn_id, "must be critical (RFC 5280)")),
        Some(false) if ext.critical => Err(ext_error(&ext.extn_id, "must not be critical (RFC 5280)")),
        _ => Ok(()),
    }
}

/// An extension nobody here can check: refused when critical (no relying
/// party could process it either), and when not critical unless the
/// operator named it with `--allow-extension`.
fn unknown_extension(ext: &Extension, allow: &[ObjectIdentifier]) -> Result<()> {
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

fn parse_extensions(tbs: &TbsCert, allow: &[ObjectIdentifier]) -> Result<Parsed> {
    let mut p = Parsed::default();
    for ext in tbs.extensions.as_deref().unwrap_or(&[]) {
        let oid = &ext.extn_id;
        match *oid {
            OID_BASIC_CONSTRAINTS => p.basic = Some((strict(ext)?, ext.critical)),
            OID_KEY_USAGE => p.key_usage = Some(strict(ext)?),
            OID_EXT_KEY_USAGE => {
                let eku: ExtendedKeyUsage = strict(ext)?;
                if eku.0.is_empty() {
                    return Err(ext_error(oid, "an empty list"));
                }
                p.eku = Some(eku);
            }
            OID_SUBJECT_ALT_NAME => {
                let san: SubjectAltName = strict(ext)?;
                if san.0.is_empty() {
                    return Err(ext_error(oid, "an empty list"));
                }
                for name in &san.0 {
                    names::check_general_name(name).map_err(|e| ext_error(oid, e))?;
                }
                p.san = Some((san.0, ext.critical));
            }
            OID_NAME_CONSTRAINTS => {
                criticality(ext, Some(true))?;
                let nc: NameConstraints = strict(ext)?;
                check_constraint_values(&nc).map_err(|e| ext_error(oid, e))?;
                p.name_constraints = Some(nc);
            }
            OID_SUBJECT_KEY_ID => {
                criticality(ext, Some(false))?;
                let ski: SubjectKeyIdentifier = strict(ext)?;
                p.ski = Some(ski.0.as_bytes().to_vec());
            }
            OID_AUTHORITY_KEY_ID => {
                criticality(ext, Some(false))?;
                p.aki = Some(strict(ext)?);
            }
            OID_CRL_DISTRIBUTION_POINTS => {
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
            OID_AUTHORITY_INFO_ACCESS => {
                criticality(ext, Some(false))?;
                let aia: AuthorityInfoAccessSyntax = strict(ext)?;
                for ad in &aia.0 {
                    if ad.access_method != OID_AD_OCSP && ad.access_method != OID_AD_CA_ISSUERS {
                        return Err(ext_error(oid, format!("access method {}", ad.access_method)));
                    }
                    check_uris(std::slice::from_ref(&ad.access_location), oid)?;
                }
            }
            OID_CERTIFICATE_POLICIES => {
                let policies: CertificatePolicies = strict(ext)?;
                let mut seen = std::collections::HashSet::new();
                for p in &policies.0 {
                    if !seen.insert(p.policy_identifier) {
                        return Err(ext_error(oid, format!("policy {} twice", p.policy_identifier)));
                    }
                }
            }
            OID_OCSP_NOCHECK => {
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

/// Every rule a TBSCertificate must pass before a CA key signs it: the
/// DER sanity of [`cert::check_tbs`], then the issuer's policy. tbs-build
/// runs it on what it built, card-sign on what it is given.
pub fn check_certificate(tbs: &TbsCert, issuer: Issuer<'_>, allow: &[ObjectIdentifier]) -> Result<()> {
    let own;
    let (ca, above, self_signed) = match issuer {
        Issuer::Ca { ca, above } => (ca, above, false),
        Issuer::SelfSigned => {
            own = CaCert::from_tbs(Vec::new(), tbs.clone())?;
            (&own, &[][..], true)
        }
    };
    let p = parse_extensions(tbs, allow)?;
    let (basic, basic_critical) =
        p.basic.as_ref().ok_or_else(|| Error::new("basicConstraints is missing"))?;
    if basic.ca && !basic_critical {
        return Err(ext_error(&OID_BASIC_CONSTRAINTS, "must be critical in a CA certificate (RFC 5280)"));
    }
    if !basic.ca && basic.path_len_constraint.is_some() {
        return Err(ext_error(&OID_BASIC_CONSTRAINTS, "pathLenConstraint without cA TRUE"));
    }
    may_sign(ca, KeyUsages::KeyCertSign, "certificates")?;
    ocsp_responder_rules(tbs, &p, basic.ca)?;
    if !self_signed {
        path_len(ca, basic)?;
        validity_within(tbs, ca)?;
        // A delegated OCSP responder is the CA's own agent (RFC 6960
        // section 4.2.2.2), so OCSPSigning needs no room in the CA's
        // extended key usages, which the CA/B Forum forbids it in anyway.
        if !is_ocsp_responder(p.eku.as_ref(), basic.ca) {
            eku_within(p.eku.as_ref(), ca)?;
        }
    }
    let spec = check_subject_key(&tbs.subject_public_key_info)?;
    key_usage(p.key_usage.as_ref(), basic.ca, spec)?;
    names_of(tbs, &p, basic.ca)?;
    server_names(&tbs.subject, &p, basic.ca)?;
    key_ids(&p, ca, basic.ca)?;
    let san = p.san.as_ref().map_or(&[][..], |(s, _)| s.as_slice());
    for c in std::iter::once(ca).chain(above).filter(|_| !self_signed) {
        within_constraints(&tbs.subject, san, c)?;
    }
    Ok(())
}

fn who(ca: &CaCert) -> String {
    format!("issuer {}", ca.subject_text())
}

/// The issuer is a CA (basicConstraints cA TRUE) whose keyUsage allows
/// what it is about to sign.
pub fn may_sign(ca: &CaCert, usage: KeyUsages, what: &str) -> Result<()> {
    if !ca.basic.as_ref().is_some_and(|b| b.ca) {
        return Err(Error::new(format!(
            "{} is not a CA certificate (basicConstraints cA is not TRUE)",
            who(ca)
        )));
    }
    if !ca.key_usage.as_ref().is_some_and(|ku| ku.0.contains(usage)) {
        let bit = if usage == KeyUsages::CRLSign { "cRLSign" } else { "keyCertSign" };
        return Err(Error::new(format!("{} may not sign {what} (no {bit} in its keyUsage)", who(ca))));
    }
    Ok(())
}

/// keyUsage present, not empty, and fitting the certificate: keyCertSign
/// exactly when it is a CA (RFC 5280 section 4.2.1.9), and only the bits
/// the key type can do (RFC 8410 for Ed25519, RFC 5480 for EC).
fn key_usage(ku: Option<&KeyUsage>, ca: bool, spec: KeySpec) -> Result<()> {
    let oid = &OID_KEY_USAGE;
    let ku = ku.ok_or_else(|| Error::new("keyUsage is missing"))?.0;
    if ku.is_empty() {
        return Err(ext_error(oid, "no bit set"));
    }
    if ca && !ku.contains(KeyUsages::KeyCertSign) {
        return Err(ext_error(oid, "a CA certificate without keyCertSign"));
    }
    if !ca && (ku.contains(KeyUsages::KeyCertSign) || ku.contains(KeyUsages::CRLSign)) {
        return Err(ext_error(
            oid,
            "keyCertSign or cRLSign in a certificate that is not a CA (basicConstraints cA FALSE)",
        ));
    }
    let encipher = KeyUsages::KeyEncipherment | KeyUsages::DataEncipherment;
    let agree = KeyUsages::KeyAgreement | KeyUsages::EncipherOnly | KeyUsages::DecipherOnly;
    let refused = match spec {
        KeySpec::Rsa(_) => agree,
        KeySpec::Ec(_) => encipher,
        KeySpec::Ed25519 => encipher | agree,
    };
    if !(ku & refused).is_empty() {
        let bits: Vec<String> = (ku & refused).into_iter().map(usage_name).collect();
        return Err(ext_error(oid, format!("{} cannot be done with a {spec} key", bits.join(", "))));
    }
    if (ku.contains(KeyUsages::EncipherOnly) || ku.contains(KeyUsages::DecipherOnly))
        && !ku.contains(KeyUsages::KeyAgreement)
    {
        return Err(ext_error(oid, "encipherOnly or decipherOnly without keyAgreement"));
    }
    Ok(())
}

/// RFC 5280's name of a keyUsage bit.
fn usage_name(bit: KeyUsages) -> String {
    // The variants are RFC 5280's names with a capital first letter.
    let name = format!("{bit:?}");
    let mut chars = name.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// The subject and the SANs, each name checked as if typed on the command
/// line; an empty subject needs a critical SAN (RFC 5280 section 4.2.1.6).
fn names_of(tbs: &TbsCert, p: &Parsed, ca: bool) -> Result<()> {
    names::check_name(&tbs.subject).map_err(|e| e.context("subject"))?;
    if tbs.subject.is_empty() {
        if ca {
            return Err(Error::new("subject: a CA certificate needs a subject"));
        }
        match &p.san {
            Some((_, true)) => {}
            _ => return Err(Error::new("subject: empty, so subjectAltName must be present and critical")),
        }
    }
    Ok(())
}

fn common_names(subject: &Name) -> impl Iterator<Item = String> + '_ {
    subject.iter().filter(|a| a.oid == OID_CN).filter_map(names::atv_text)
}

/// A TLS server certificate names its hosts in SANs, and its CN, if any,
/// is one of them (CA/B Forum BR 7.1.4.3; clients ignore a CN anyway).
fn server_names(subject: &Name, p: &Parsed, ca: bool) -> Result<()> {
    if ca || !p.eku.as_ref().is_some_and(|e| e.0.contains(&OID_SERVER_AUTH)) {
        return Ok(());
    }
    let san = p.san.as_ref().map_or(&[][..], |(s, _)| s.as_slice());
    let hosts: Vec<String> = san
        .iter()
        .filter_map(|n| match n {
            GeneralName::DnsName(d) => Some(d.as_str().to_ascii_lowercase()),
            GeneralName::IpAddress(ip) => Some(names::ip_text(ip.as_bytes())),
            _ => None,
        })
        .collect();
    if hosts.is_empty() {
        return Err(Error::new("subjectAltName: a TLS server certificate needs a dns: or ip: name"));
    }
    for cn in common_names(subject) {
        let as_ip = cn.parse::<IpAddr>().map(|ip| ip.to_string()).ok();
        if !hosts.contains(&cn.to_ascii_lowercase()) && !as_ip.is_some_and(|ip| hosts.contains(&ip)) {
            return Err(Error::new(format!(
                "subject: CN {cn:?} of a TLS server certificate is not one of its dns: or ip: names"
            )));
        }
    }
    Ok(())
}

/// SKI in every CA certificate, AKI naming the issuer's key in every
/// certificate it issues (RFC 5280 sections 4.2.1.1 and 4.2.1.2).
fn key_ids(p: &Parsed, ca: &CaCert, is_ca: bool) -> Result<()> {
    if is_ca && p.ski.is_none() {
        return Err(Error::new("subjectKeyIdentifier is missing from a CA certificate"));
    }
    match p.aki.as_ref().and_then(|a| a.key_identifier.as_ref()) {
        Some(id) if id.as_bytes() == ca.key_id.as_slice() => Ok(()),
        Some(_) => Err(ext_error(&OID_AUTHORITY_KEY_ID, format!("does not name the key of {}", who(ca)))),
        None => Err(Error::new("authorityKeyIdentifier (keyIdentifier) is missing")),
    }
}

/// A sub CA fits under the issuer's pathLenConstraint.
fn path_len(ca: &CaCert, basic: &BasicConstraints) -> Result<()> {
    let Some(limit) = ca.basic.as_ref().and_then(|b| b.path_len_constraint) else { return Ok(()) };
    if !basic.ca {
        return Ok(());
    }
    if limit == 0 {
        return Err(Error::new(format!("{} has pathLen 0: it may not issue CA certificates", who(ca))));
    }
    match basic.path_len_constraint {
        Some(n) if n < limit => Ok(()),
        Some(n) => Err(Error::new(format!(
            "pathLen {n} does not fit under the pathLen {limit} of {}: at most {}",
            who(ca),
            limit - 1
        ))),
        None => Err(Error::new(format!(
            "a CA certificate without pathLen under the pathLen {limit} of {}: give it {} or less",
            who(ca),
            limit - 1
        ))),
    }
}

/// The validity lies within the issuer's.
fn validity_within(tbs: &TbsCert, ca: &CaCert) -> Result<()> {
    let (nb, na) = (time::seconds(&tbs.validity.not_before), time::seconds(&tbs.validity.not_after));
    let (ca_nb, ca_na) =
        (time::seconds(&ca.tbs.validity.not_before), time::seconds(&ca.tbs.validity.not_after));
    if na > ca_na {
        return Err(Error::new(format!(
            "validity ends {} after {} expires ({})",
            time::display(na),
            who(ca),
            time::display(ca_na)
        )));
    }
    if nb < ca_nb {
        return Err(Error::new(format!(
            "validity starts {} before {} is valid ({})",
            time::display(nb),
            who(ca),
            time::display(ca_nb)
        )));
    }
    Ok(())
}

/// The extended key usages lie within the issuer's (no EKU at all would
/// mean every usage).
fn eku_within(eku: Option<&ExtendedKeyUsage>, ca: &CaCert) -> Result<()> {
    let Some(limit) = ca.eku.as_ref().filter(|e| !e.0.contains(&OID_ANY_EKU)) else { return Ok(()) };
    let list = |e: &ExtendedKeyUsage| e.0.iter().map(eku_name).collect::<Vec<_>>().join(",");
    let Some(eku) = eku else {
        return Err(Error::new(format!(
            "extKeyUsage is missing (every usage) but {} is limited to {}",
            who(ca),
            list(limit)
        )));
    };
    for oid in &eku.0 {
        if !limit.0.contains(oid) {
            return Err(Error::new(format!(
                "extended key usage {} is outside {}'s ({}): a sub CA issues only for its own area",
                eku_name(oid),
                who(ca),
                list(limit)
            )));
        }
    }
    Ok(())
}

pub const OID_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
pub const OID_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
pub const OID_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
pub const OID_EMAIL_PROTECTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
pub const OID_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
pub const OID_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
pub const OID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
pub const OID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");
pub const OID_OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");
pub const OID_INVALIDITY_DATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.24");
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_EMAIL_ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");

pub const EKU_NAMES: &[(&str, ObjectIdentifier)] = &[
    ("serverAuth", OID_SERVER_AUTH),
    ("clientAuth", OID_CLIENT_AUTH),
    ("codeSigning", OID_CODE_SIGNING),
    ("emailProtection", OID_EMAIL_PROTECTION),
    ("timeStamping", OID_TIME_STAMPING),
    ("ocspSigning", OID_OCSP_SIGNING),
];

pub fn eku_name(oid: &ObjectIdentifier) -> String {
    EKU_NAMES.iter().find(|(_, o)| o == oid).map_or_else(|| oid.to_string(), |(n, _)| n.to_string())
}

/// A name as name constraints see it (RFC 5280 section 4.2.1.10).
enum Form {
    Dns(String),
    Email(String),
    Ip(Vec<u8>),
    /// A URI's host; None for a URI without one (a URN).
    Uri(Option<String>),
    Dir(Name),
}

impl Form {
    fn of(name: &GeneralName) -> Option<Form> {
        Some(match name {
            GeneralName::DnsName(d) => Form::Dns(d.as_str().to_ascii_lowercase()),
            GeneralName::Rfc822Name(m) => Form::Email(m.as_str().to_string()),
            GeneralName::IpAddress(ip) => Form::Ip(unmap(ip.as_bytes())),
            GeneralName::UniformResourceIdentifier(u) => Form::Uri(names::uri_host(u.as_str())),
            GeneralName::DirectoryName(n) => Form::Dir(n.clone()),
            _ => return None,
        })
    }

    fn same_form(&self, base: &GeneralName) -> bool {
        matches!(
            (self, base),
            (Form::Dns(_), GeneralName::DnsName(_))
                | (Form::Email(_), GeneralName::Rfc822Name(_))
                | (Form::Ip(_), GeneralName::IpAddress(_))
                | (Form::Uri(_), GeneralName::UniformResourceIdentifier(_))
                | (Form::Dir(_), GeneralName::DirectoryName(_))
        )
    }

    fn text(&self) -> String {
        match self {
            Form::Dns(d) => format!("dns:{d}"),
            Form::Email(m) => format!("email:{m}"),
            Form::Ip(ip) => format!("ip:{}", names::ip_text(ip)),
            Form::Uri(h) => format!("uri host {}", h.as_deref().unwrap_or("(none)")),
            Form::Dir(n) => format!("dirname:{}", names::openssl_oneline(n)),
        }
    }
}

/// An IPv4-mapped IPv6 address is its IPv4 address to a constraint.
fn unmap(ip: &[u8]) -> Vec<u8> {
    if ip.len() == 16 && ip[..10].iter().all(|&b| b == 0) && ip[10..12] == [0xff, 0xff] {
        return ip[12..].to_vec();
    }
    ip.to_vec()
}

/// `name` equals `base` or lies below it (`www.ewak.net` in `ewak.net`).
fn dns_in(name: &str, base: &str) -> bool {
    let base = base.trim_start_matches('.').to_ascii_lowercase();
    base.is_empty() || name == base || name.ends_with(&format!(".{base}"))
}

/// Whether every name `name` stands for lies inside `base` (`overlap`
/// false), or whether any does (`overlap` true, for excluded subtrees). A
/// wildcard `*.D` stands for the names one label below D.
fn matches(name: &Form, base: &GeneralName, overlap: bool) -> bool {
    match (name, base) {
        (Form::Dns(n), GeneralName::DnsName(b)) => match n.strip_prefix("*.") {
            Some(parent) if overlap => {
                dns_in(parent, b.as_str())
                    || dns_in(&b.as_str().trim_start_matches('.').to_ascii_lowercase(), parent)
            }
            Some(parent) => dns_in(parent, b.as_str()),
            None => dns_in(n, b.as_str()),
        },
        (Form::Email(n), GeneralName::Rfc822Name(b)) => {
            let b = b.as_str();
            let (local, host) = n.rsplit_once('@').unwrap_or(("", n));
            let host = host.to_ascii_lowercase();
            match b.rsplit_once('@') {
                Some((bl, bh)) => local == bl && host == bh.to_ascii_lowercase(),
                None if b.starts_with('.') => host.ends_with(&b.to_ascii_lowercase()),
                None => host == b.to_ascii_lowercase(),
            }
        }
        (Form::Ip(n), GeneralName::IpAddress(b)) => {
            let b = b.as_bytes();
            b.len() == 2 * n.len() && {
                let (net, mask) = b.split_at(n.len());
                n.iter().zip(net).zip(mask).all(|((a, net), m)| a & m == net & m)
            }
        }
        (Form::Uri(Some(host)), GeneralName::UniformResourceIdentifier(b)) => {
            let b = b.as_str().to_ascii_lowercase();
            if b.starts_with('.') {
                host.ends_with(&b)
            } else {
                *host == b
            }
        }
        // A URI without a host cannot be shown to be inside a subtree;
        // for an excluded subtree, count it in (refuse rather than guess).
        (Form::Uri(None), GeneralName::UniformResourceIdentifier(_)) => overlap,
        (Form::Dir(n), GeneralName::DirectoryName(b)) => dir_in(n, b),
        _ => false,
    }
}

/// A directoryName subtree: the name begins with the base's RDNs. Values
/// compare case-insensitively with white space folded (a simplification
/// of RFC 4518 that errs towards a match, so an excluded subtree is not
/// dodged by case).
fn dir_in(name: &Name, base: &Name) -> bool {
    let fold = |a: &x509_cert::attr::AttributeTypeAndValue| {
        let text = names::atv_text(a).unwrap_or_default();
        (a.oid, text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase())
    };
    let rdns = |n: &Name| -> Vec<Vec<_>> {
        n.iter_rdn()
            .map(|r| {
                let mut v: Vec<_> = r.iter().map(fold).collect();
                v.sort();
                v
            })
            .collect()
    };
    let (n, b) = (rdns(name), rdns(base));
    b.len() <= n.len() && n[..b.len()] == b[..]
}

/// Every name of the certificate against one CA's name constraints: the
/// SANs, and from the subject the name itself (directoryName), its
/// emailAddress attributes (rfc822Name, as RFC 5280 section 4.2.1.10
/// requires) and CNs that are DNS names or IP addresses (as browsers
/// treat them).
fn within_constraints(subject: &Name, san: &[GeneralName], ca: &CaCert) -> Result<()> {
    let Some(nc) = &ca.name_constraints else { return Ok(()) };
    let mut forms: Vec<Form> = san.iter().filter_map(Form::of).collect();
    if !subject.is_empty() {
        forms.push(Form::Dir(subject.clone()));
    }
    for atv in subject.iter() {
        let Some(text) = names::atv_text(atv) else { continue };
        if atv.oid == OID_EMAIL_ADDRESS {
            forms.push(Form::Email(text));
        } else if atv.oid == OID_CN {
            if let Ok(ip) = text.parse::<IpAddr>() {
                forms.push(Form::Ip(unmap(&names::ip_bytes(ip))));
            } else if text.contains('.') && names::valid_dns(&text, true) {
                forms.push(Form::Dns(text.to_ascii_lowercase()));
            }
        }
    }
    let permitted: &[GeneralSubtree] = nc.permitted_subtrees.as_deref().unwrap_or(&[]);
    let excluded: &[GeneralSubtree] = nc.excluded_subtrees.as_deref().unwrap_or(&[]);
    for form in &forms {
        let mut bases = permitted.iter().map(|s| &s.base).filter(|b| form.same_form(b)).peekable();
        if bases.peek().is_some() && !bases.any(|b| matches(form, b, false)) {
            return Err(Error::new(format!(
                "name constraints: {} is outside the permitted subtrees of {}",
                form.text(),
                who(ca)
            )));
        }
        if excluded.iter().any(|s| form.same_form(&s.base) && matches(form, &s.base, true)) {
            return Err(Error::new(format!(
                "name constraints: {} is within an excluded subtree of {}",
                form.text(),
                who(ca)
            )));
        }
    }
    Ok(())
}

/// Every rule a TBSCertList must pass before a CA key signs it: the DER
/// sanity of [`cert::check_tbs_crl`], a CA that may sign CRLs, and only
/// extensions that can be checked, each well-formed.
pub fn check_crl(tbs: &TbsCertList, ca: &CaCert, allow: &[ObjectIdentifier]) -> Result<()> {
    may_sign(ca, KeyUsages::CRLSign, "CRLs")?;
    let mut aki = None;
    for ext in tbs.crl_extensions.as_deref().unwrap_or(&[]) {
        match ext.extn_id {
            OID_AUTHORITY_KEY_ID => {
                criticality(ext, Some(false))?;
                aki = Some(strict::<AuthorityKeyIdentifier>(ext)?);
            }
            OID_CRL_NUMBER => {
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
            return Err(ext_error(&OID_AUTHORITY_KEY_ID, format!("does not name the key of {}", who(ca))))
        }
        None => return Err(Error::new("authorityKeyIdentifier (keyIdentifier) is missing from the CRL")),
    }
    for entry in tbs.revoked_certificates.as_deref().unwrap_or(&[]) {
        for ext in entry.crl_entry_extensions.as_deref().unwrap_or(&[]) {
            match ext.extn_id {
                OID_CRL_REASON => {
                    criticality(ext, Some(false))?;
                    let _: CrlReason = strict(ext)?;
                }
                OID_INVALIDITY_DATE => {
                    criticality(ext, Some(false))?;
                    let _: der::asn1::GeneralizedTime = strict(ext)?;
                }
                _ => unknown_extension(ext, allow)?,
            }
        }
    }
    Ok(())
}

fn is_ocsp_responder(eku: Option<&ExtendedKeyUsage>, ca: bool) -> bool {
    !ca && eku.is_some_and(|e| e.0 == [OID_OCSP_SIGNING])
}

/// The longest a delegated responder's certificate may be valid. It
/// carries id-pkix-ocsp-nocheck (RFC 6960 section 4.2.2.2.1), so no
/// relying party checks whether it was revoked: its validity is the only
/// limit on what a stolen responder key can do. 90 days lets a weekly
/// signing schedule renew it monthly with room to spare, and is well under
/// the CA/B Forum's 398 days for any leaf.
pub const OCSP_RESPONDER_MAX_DAYS: u64 = 90;

/// The longest thisUpdate..nextUpdate of a response: the CA/B Forum's
/// Baseline Requirements (section 4.9.10) allow at most 10 days, and a
/// relying party trusts a pre-signed "good" that long after a revocation.
pub const OCSP_MAX_DAYS: u64 = 10;

/// The shortest validity interval of a response (BRs section 4.9.10: eight
/// hours).
pub const OCSP_MIN_SECONDS: u64 = 8 * 3600;

/// An OCSP responder certificate (extKeyUsage id-kp-OCSPSigning), the
/// delegated responder of RFC 6960 section 4.2.2.2: a leaf with
/// OCSPSigning as its only usage, id-pkix-ocsp-nocheck, keyUsage
/// digitalSignature only, valid at most [`OCSP_RESPONDER_MAX_DAYS`]. And
/// nocheck only in such a certificate: elsewhere it would exempt an
/// ordinary certificate from revocation checking.
fn ocsp_responder_rules(tbs: &TbsCert, p: &Parsed, ca: bool) -> Result<()> {
    let signing = p.eku.as_ref().is_some_and(|e| e.0.contains(&OID_OCSP_SIGNING));
    let nocheck = tbs.extension(OID_OCSP_NOCHECK).is_some();
    if !signing {
        if nocheck {
            return Err(ext_error(
                &OID_OCSP_NOCHECK,
                "only an OCSP responder certificate (extKeyUsage OCSPSigning) may carry it",
            ));
        }
        return Ok(());
    }
    if ca {
        return Err(ext_error(
            &OID_EXT_KEY_USAGE,
            "OCSPSigning in a CA certificate would make it a responder for its issuer \
             (forbidden by the CA/B Forum BRs, section 7.1.2.2)",
        ));
    }
    if p.eku.as_ref().is_some_and(|e| e.0.len() != 1) {
        return Err(ext_error(
            &OID_EXT_KEY_USAGE,
            "an OCSP responder certificate has OCSPSigning as its only usage",
        ));
    }
    if !nocheck {
        return Err(Error::new(
            "ocspNoCheck (1.3.6.1.5.5.7.48.1.5) is missing from an OCSP responder certificate (RFC 6960 section 4.2.2.2.1)",
        ));
    }
    if p.key_usage.as_ref().is_some_and(|ku| ku.0 != der::flagset::FlagSet::from(KeyUsages::DigitalSignature))
    {
        return Err(ext_error(&OID_KEY_USAGE, "an OCSP responder certificate has digitalSignature only"));
    }
    // notAfter is inclusive: N days end one second before the Nth day.
    let span = time::seconds(&tbs.validity.not_after).saturating_sub(time::seconds(&tbs.validity.not_before));
    let days = (span + 1).div_ceil(86400);
    if days > OCSP_RESPONDER_MAX_DAYS {
        return Err(Error::new(format!(
            "an OCSP responder certificate valid {days} days: at most {OCSP_RESPONDER_MAX_DAYS} (it carries ocspNoCheck, so it cannot be revoked)"
        )));
    }
    Ok(())
}

/// A delegated responder certificate that [`check_ocsp_responder`] passed:
/// checked once per stream (its signature is a verification), not once per
/// response.
#[derive(Clone, Copy)]
pub struct Responder<'r>(&'r CaCert);

impl<'r> Responder<'r> {
    pub fn cert(self) -> &'r CaCert {
        self.0
    }
}

/// Whose key signs an OCSP response for `ca`: the CA itself, or a
/// delegated responder `ca` issued (RFC 6960 section 4.2.2.2). The
/// responder certificate is checked as a relying party would: issued and
/// signed by `ca`, the responder rules of a certificate (see
/// `ocsp_responder_rules`, which both gates apply when it is issued).
pub fn check_ocsp_responder<'r>(responder: &'r CaCert, ca: &CaCert) -> Result<Responder<'r>> {
    let what = format!("responder {}", responder.subject_text());
    if responder.tbs.issuer.to_der()? != ca.tbs.subject.to_der()? {
        return Err(Error::new(format!(
            "{what} is issued by {}, not by the CA {}",
            names::openssl_oneline(&responder.tbs.issuer),
            ca.subject_text()
        )));
    }
    let signed = split_signed(&responder.der, "responder certificate")?;
    let alg = crate::sign::SigAlg::from_identifier(&signed.algorithm)?;
    crate::sign::verify(&ca.tbs.subject_public_key_info, alg, signed.tbs, &signed.signature)
        .map_err(|e| e.context(format!("{what}: checked with the key of {}", ca.subject_text())))?;
    let p = parse_extensions(&responder.tbs, &[]).map_err(|e| e.context(what.clone()))?;
    if !p.eku.as_ref().is_some_and(|e| e.0.contains(&OID_OCSP_SIGNING)) {
        return Err(Error::new(format!("{what} does not hold extKeyUsage OCSPSigning")));
    }
    let is_ca = p.basic.as_ref().is_some_and(|(b, _)| b.ca);
    ocsp_responder_rules(&responder.tbs, &p, is_ca).map_err(|e| e.context(what))?;
    Ok(Responder(responder))
}

/// Every rule a ResponseData must pass before a key signs it as the OCSP
/// response of `ca` (signed by `ca` itself, or by `responder` when given):
/// version v1; responderID byKey, naming the signer's key; one
/// SingleResponse (one file per certificate); its CertID naming this CA
/// (issuer name and key hash, SHA-1 or SHA-256) and a valid serial;
/// status good or revoked (never unknown: a pre-signed response is for a
/// certificate the CA issued); thisUpdate <= nextUpdate at most
/// [`OCSP_MAX_DAYS`] apart and not over; producedAt between them; times
/// within the signer's validity; no extension cardca cannot check.
pub fn check_ocsp(
    rd: &crate::ocsp::ResponseData,
    ca: &CaCert,
    responder: Option<Responder<'_>>,
    allow: &[ObjectIdentifier],
) -> Result<()> {
    use crate::ocsp::{self, CertStatus, IdHash, ResponderId};
    if !ca.basic.as_ref().is_some_and(|b| b.ca) {
        return Err(Error::new(format!(
            "{} is not a CA certificate: only a CA (or its responder) answers for certificates",
            who(ca)
        )));
    }
    let signer = responder.map_or(ca, Responder::cert);
    if rd.version.is_some() {
        return Err(Error::new(
            "ResponseData carries an explicit version (v1 is the DEFAULT, left out in DER)",
        ));
    }
    let want = ocsp::key_hash(&signer.tbs.subject_public_key_info, IdHash::Sha1);
    match &rd.responder_id {
        ResponderId::ByKey(h) if h.as_bytes() == want.as_slice() => {}
        ResponderId::ByKey(h) => {
            return Err(Error::new(format!(
                "responderID byKey {} is not the key of the signer {} ({})",
                crate::hex::encode(h.as_bytes()),
                signer.subject_text(),
                crate::hex::encode(&want)
            )))
        }
        ResponderId::ByName(n) => {
            return Err(Error::new(format!(
                "responderID byName {}: cardca's responses name their responder byKey",
                names::openssl_oneline(n)
            )))
        }
    }
    for ext in rd.response_extensions.as_deref().unwrap_or(&[]) {
        unknown_extension(ext, allow).map_err(|e| e.context("responseExtensions"))?;
    }
    check_unique(rd.response_extensions.as_deref().unwrap_or(&[]))?;
    let single = ocsp::single(rd)?;
    let id = &single.cert_id;
    let hash = IdHash::from_identifier(&id.hash_algorithm)?;
    if id.issuer_name_hash.as_bytes() != hash.digest(&ca.tbs.subject.to_der()?) {
        return Err(Error::new(format!(
            "CertID issuerNameHash is not the hash of the CA's name {}",
            ca.subject_text()
        )));
    }
    if id.issuer_key_hash.as_bytes() != ocsp::key_hash(&ca.tbs.subject_public_key_info, hash) {
        return Err(Error::new(format!("CertID issuerKeyHash is not the hash of the key of {}", who(ca))));
    }
    check_serial(&id.serial_number).map_err(|e| e.context("CertID"))?;
    let this = ocsp::seconds(&single.this_update);
    let next = single
        .next_update
        .as_ref()
        .map(ocsp::seconds)
        .ok_or_else(|| Error::new("no nextUpdate (RFC 5019 section 2.2.4 requires it)"))?;
    match &single.cert_status {
        CertStatus::Good(_) => {}
        CertStatus::Revoked(info) => {
            if ocsp::seconds(&info.revocation_time) > this {
                return Err(Error::new("revocationTime is after thisUpdate"));
            }
            use x509_cert::ext::pkix::crl::CrlReason;
            if matches!(info.revocation_reason, Some(CrlReason::Unspecified | CrlReason::RemoveFromCRL)) {
                return Err(Error::new(
                    "revocationReason unspecified or removeFromCRL (RFC 5280 section 5.3.1: omit the former; the latter is no revocation)",
                ));
            }
        }
        CertStatus::Unknown(_) => return Err(Error::new(
            "certStatus unknown: pre-signed responses are for certificates the CA issued (good or revoked)",
        )),
    }
    if this > next {
        return Err(Error::new("thisUpdate is after nextUpdate"));
    }
    // The BRs count the validity interval with both ends (section 4.9.10:
    // "inclusive"), so ten days end one second before thisUpdate + 10 days.
    let interval = next - this + 1;
    if interval > OCSP_MAX_DAYS * 86400 {
        return Err(Error::new(format!(
            "thisUpdate to nextUpdate, both included, is {} s: at most {OCSP_MAX_DAYS} days, {} s \
             (CA/B Forum BRs section 4.9.10)",
            interval,
            OCSP_MAX_DAYS * 86400
        )));
    }
    if interval < OCSP_MIN_SECONDS {
        return Err(Error::new(format!(
            "thisUpdate to nextUpdate, both included, is {interval} s: at least 8 hours \
             (CA/B Forum BRs section 4.9.10)"
        )));
    }
    let produced = ocsp::seconds(&rd.produced_at);
    if produced < this || produced > next {
        return Err(Error::new("producedAt lies outside thisUpdate..nextUpdate"));
    }
    let now = time::now()?;
    // A response made ahead of time by a clock a little fast is fine; one
    // from the far future, or already stale, is a mistake or a replay.
    if this > now + 3600 {
        return Err(Error::new(format!("thisUpdate {} is in the future", time::display(this))));
    }
    if produced > now + 3600 {
        return Err(Error::new(format!("producedAt {} is in the future", time::display(produced))));
    }
    if next <= now {
        return Err(Error::new(format!("nextUpdate {} has passed", time::display(next))));
    }
    let (nb, na) =
        (time::seconds(&signer.tbs.validity.not_before), time::seconds(&signer.tbs.validity.not_after));
    if this < nb || next > na {
        return Err(Error::new(format!(
            "thisUpdate..nextUpdate ({} to {}) is not within the validity of the signer {} ({} to {})",
            time::display(this),
            time::display(next),
            signer.subject_text(),
            time::display(nb),
            time::display(na)
        )));
    }
    for ext in single.single_extensions.as_deref().unwrap_or(&[]) {
        unknown_extension(ext, allow).map_err(|e| e.context("singleExtensions"))?;
    }
    check_unique(single.single_extensions.as_deref().unwrap_or(&[]))?;
    Ok(())
}
