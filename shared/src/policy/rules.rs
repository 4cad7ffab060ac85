//! The rules of a certificate's own content, and of its place under the
//! issuer: the subject key, keyUsage per key type, the subject and SAN
//! names, key identifiers, and the nesting of pathLen, validity and
//! extended key usages inside the issuing CA's.

use std::net::IpAddr;

use der::asn1::ObjectIdentifier;
use der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use super::extensions::{ext_error, Parsed};
use super::who;
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

/// keyUsage present, not empty, and fitting the certificate: keyCertSign
/// exactly when it is a CA (RFC 5280 section 4.2.1.9), and only the bits
/// the key type can do (RFC 8410 for Ed25519, RFC 5480 for EC).
pub(super) fn key_usage(ku: Option<&KeyUsage>, ca: bool, spec: KeySpec) -> Result<()> {
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
pub(super) fn names_of(tbs: &TbsCert, p: &Parsed, ca: bool) -> Result<()> {
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
pub(super) fn server_names(subject: &Name, p: &Parsed, ca: bool) -> Result<()> {
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
pub(super) fn key_ids(p: &Parsed, ca: &CaCert, is_ca: bool) -> Result<()> {
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
pub(super) fn path_len(ca: &CaCert, basic: &BasicConstraints) -> Result<()> {
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
pub(super) fn validity_within(tbs: &TbsCert, ca: &CaCert) -> Result<()> {
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
pub(super) fn eku_within(eku: Option<&ExtendedKeyUsage>, ca: &CaCert) -> Result<()> {
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
pub(super) const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
pub(super) const OID_EMAIL_ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.1");

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
