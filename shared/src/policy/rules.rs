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
use crate::oid;
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
    let oid = &oid::KEY_USAGE;
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
    subject.iter().filter(|a| a.oid == oid::CN).filter_map(names::atv_text)
}

/// A TLS server certificate names its hosts in SANs, and its CN, if any,
/// is one of them (CA/B Forum BR 7.1.4.3; clients ignore a CN anyway).
pub(super) fn server_names(subject: &Name, p: &Parsed, ca: bool) -> Result<()> {
    if ca || !p.eku.as_ref().is_some_and(|e| e.0.contains(&oid::SERVER_AUTH)) {
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
        Some(_) => Err(ext_error(&oid::AUTHORITY_KEY_ID, format!("does not name the key of {}", who(ca)))),
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
    let Some(limit) = ca.eku.as_ref().filter(|e| !e.0.contains(&oid::ANY_EKU)) else { return Ok(()) };
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

pub const EKU_NAMES: &[(&str, ObjectIdentifier)] = &[
    ("serverAuth", oid::SERVER_AUTH),
    ("clientAuth", oid::CLIENT_AUTH),
    ("codeSigning", oid::CODE_SIGNING),
    ("emailProtection", oid::EMAIL_PROTECTION),
    ("timeStamping", oid::TIME_STAMPING),
    ("ocspSigning", oid::OCSP_SIGNING),
];

pub fn eku_name(oid: &ObjectIdentifier) -> String {
    EKU_NAMES.iter().find(|(_, o)| o == oid).map_or_else(|| oid.to_string(), |(n, _)| n.to_string())
}

#[cfg(test)]
mod tests {
    use der::Any;
    use x509_cert::ext::pkix::KeyUsages as K;

    use super::*;
    use crate::policy::testing::*;

    /// An RSA modulus of `bytes` octets, top bit set, that is no real key:
    /// the rule looks at size, exponent and parity, not at primes.
    fn modulus(bytes: usize, last: u8) -> Vec<u8> {
        let mut n = vec![0xc5; bytes];
        n[bytes - 1] = last;
        n
    }

    #[test]
    fn subject_keys() {
        let secp256k1 = {
            let mut spki = fixture_spki("p256.pem");
            let oid = ObjectIdentifier::new_unwrap("1.3.132.0.10");
            spki.algorithm.parameters = Some(Any::encode_from(&oid).expect("oid"));
            spki
        };
        let mut off_curve = vec![0x04];
        off_curve.extend([1u8; 64]);
        let rows: Vec<(&str, SubjectPublicKeyInfoOwned, Option<&str>)> = vec![
            ("RSA 2048", fixture_spki("rsa2048.pem"), None),
            ("RSA 4096", fixture_spki("rsa4096.pem"), None),
            ("P-256", fixture_spki("p256.pem"), None),
            ("P-384", fixture_spki("p384.pem"), None),
            ("P-521", fixture_spki("p521.pem"), None),
            ("Ed25519", fixture_spki("ed25519.pem"), None),
            (
                "RSA 1024",
                keys::spki_rsa(&modulus(128, 0x01), &keys::RSA_EXPONENT).expect("spki"),
                Some("weak key: RSA with 1024 bits (at least 2048 required)"),
            ),
            (
                "RSA 2047: one bit short",
                keys::spki_rsa(&[&[0x7f][..], &modulus(255, 0x01)].concat(), &keys::RSA_EXPONENT)
                    .expect("spki"),
                Some("RSA with 2047 bits"),
            ),
            (
                "RSA with exponent 3",
                keys::spki_rsa(&modulus(256, 0x01), &[3]).expect("spki"),
                Some("weak key: RSA public exponent 03 (65537 required)"),
            ),
            (
                "RSA with an even modulus",
                keys::spki_rsa(&modulus(256, 0x02), &keys::RSA_EXPONENT).expect("spki"),
                Some("invalid RSA key: even modulus"),
            ),
            (
                "a P-256 point off the curve",
                keys::spki_point(KeySpec::Ec(Curve::P256), &off_curve).expect("spki"),
                Some("invalid ec:p256 key: not a point on the curve"),
            ),
            (
                "Ed25519 of 31 bytes",
                keys::spki_point(KeySpec::Ed25519, &[9u8; 31]).expect("spki"),
                Some("Ed25519 key is not 32 bytes"),
            ),
            ("secp256k1, a curve we do not certify", secp256k1, Some("the subject public key")),
        ];
        for (what, spki, want) in rows {
            expect(what, check_subject_key(&spki).map(|_| ()), want);
        }
    }

    /// keyUsage for each key type, leaf and CA: RSA signs and encrypts
    /// but does not agree keys, EC signs and agrees but does not encrypt
    /// (RFC 5480), Ed25519 only signs (RFC 8410).
    #[test]
    fn key_usage_per_key_type() {
        let rsa = KeySpec::Rsa(2048);
        let ec = KeySpec::Ec(Curve::P256);
        let ed = KeySpec::Ed25519;
        let leaf = false;
        let ca = true;
        // What it checks; keyUsage bits; a CA?; key type; refusal or None.
        type Row = (&'static str, &'static [K], bool, KeySpec, Option<&'static str>);
        let rows: &[Row] = &[
            ("RSA leaf: digitalSignature", &[K::DigitalSignature], leaf, rsa, None),
            ("RSA leaf: TLS with key transport", &[K::DigitalSignature, K::KeyEncipherment], leaf, rsa, None),
            ("RSA leaf: dataEncipherment", &[K::DataEncipherment], leaf, rsa, None),
            ("RSA leaf: nonRepudiation", &[K::NonRepudiation], leaf, rsa, None),
            (
                "RSA leaf: keyAgreement",
                &[K::KeyAgreement],
                leaf,
                rsa,
                Some("keyAgreement cannot be done with a rsa:2048 key"),
            ),
            (
                "RSA leaf: encipherOnly",
                &[K::KeyEncipherment, K::EncipherOnly],
                leaf,
                rsa,
                Some("encipherOnly cannot be done"),
            ),
            ("RSA CA", &[K::KeyCertSign, K::CRLSign], ca, rsa, None),
            ("EC leaf: digitalSignature", &[K::DigitalSignature], leaf, ec, None),
            ("EC leaf: keyAgreement", &[K::DigitalSignature, K::KeyAgreement], leaf, ec, None),
            ("EC leaf: keyAgreement with encipherOnly", &[K::KeyAgreement, K::EncipherOnly], leaf, ec, None),
            ("EC leaf: keyAgreement with decipherOnly", &[K::KeyAgreement, K::DecipherOnly], leaf, ec, None),
            (
                "EC leaf: decipherOnly alone",
                &[K::DecipherOnly],
                leaf,
                ec,
                Some("encipherOnly or decipherOnly without keyAgreement"),
            ),
            (
                "EC leaf: keyEncipherment",
                &[K::DigitalSignature, K::KeyEncipherment],
                leaf,
                ec,
                Some("keyEncipherment cannot be done with a ec:p256 key"),
            ),
            (
                "EC leaf: dataEncipherment",
                &[K::DataEncipherment],
                leaf,
                ec,
                Some("dataEncipherment cannot be done"),
            ),
            ("EC CA with digitalSignature", &[K::DigitalSignature, K::KeyCertSign, K::CRLSign], ca, ec, None),
            ("Ed25519 leaf: digitalSignature", &[K::DigitalSignature], leaf, ed, None),
            ("Ed25519 leaf: nonRepudiation", &[K::DigitalSignature, K::NonRepudiation], leaf, ed, None),
            (
                "Ed25519 leaf: keyAgreement",
                &[K::KeyAgreement],
                leaf,
                ed,
                Some("keyAgreement cannot be done with a ed25519 key"),
            ),
            (
                "Ed25519 leaf: keyEncipherment",
                &[K::KeyEncipherment],
                leaf,
                ed,
                Some("keyEncipherment cannot be done"),
            ),
            (
                "Ed25519 leaf: every refused bit named",
                &[K::DigitalSignature, K::KeyEncipherment, K::KeyAgreement],
                leaf,
                ed,
                Some("keyEncipherment, keyAgreement cannot be done"),
            ),
            ("Ed25519 CA", &[K::KeyCertSign, K::CRLSign], ca, ed, None),
            (
                "a CA without keyCertSign",
                &[K::DigitalSignature, K::CRLSign],
                ca,
                ec,
                Some("a CA certificate without keyCertSign"),
            ),
            (
                "a leaf with keyCertSign",
                &[K::DigitalSignature, K::KeyCertSign],
                leaf,
                ec,
                Some("keyCertSign or cRLSign in a certificate that is not a CA"),
            ),
            (
                "a leaf with cRLSign",
                &[K::CRLSign],
                leaf,
                rsa,
                Some("keyCertSign or cRLSign in a certificate that is not a CA"),
            ),
            ("no bit set", &[], leaf, rsa, Some("keyUsage (2.5.29.15): no bit set")),
        ];
        for (what, bits, is_ca, spec, want) in rows {
            expect(what, key_usage(Some(&usages(bits)), *is_ca, *spec), *want);
        }
        expect("keyUsage missing", key_usage(None, false, rsa), Some("keyUsage is missing"));
    }

    fn issuer(path_len: Option<u8>, eku: Option<Vec<ObjectIdentifier>>) -> CaCert {
        let spki = fixture_spki("p256.pem");
        let mut exts = ca_extensions(&spki, path_len, &[K::KeyCertSign]);
        if let Some(list) = eku {
            exts.push(ext(oid::EXT_KEY_USAGE, false, &ExtendedKeyUsage(list)));
        }
        ca("/CN=Issuer", &spki, (T0, T0 + 365 * DAY), exts)
    }

    #[test]
    fn path_lengths() {
        let (leaf, ca) = (false, true);
        // What it checks; the issuer's pathLen; a CA?; its own pathLen;
        // refusal or None.
        type Row = (&'static str, Option<u8>, bool, Option<u8>, Option<&'static str>);
        let rows: &[Row] = &[
            ("no limit above: any sub CA", None, ca, None, None),
            ("no limit above: pathLen 5", None, ca, Some(5), None),
            ("limit 0: a leaf", Some(0), leaf, None, None),
            ("limit 0: no sub CA at all", Some(0), ca, Some(0), Some("has pathLen 0: it may not issue CA certificates")),
            ("limit 1: sub CA with pathLen 0", Some(1), ca, Some(0), None),
            ("limit 1: sub CA with pathLen 1", Some(1), ca, Some(1), Some("pathLen 1 does not fit under the pathLen 1 of issuer /CN=Issuer: at most 0")),
            ("limit 2: sub CA with pathLen 1", Some(2), ca, Some(1), None),
            ("limit 2: sub CA without pathLen", Some(2), ca, None, Some("a CA certificate without pathLen under the pathLen 2 of issuer /CN=Issuer: give it 1 or less")),
        ];
        for (what, limit, is_ca, own, want) in rows {
            expect(what, path_len(&issuer(*limit, None), &basic(*is_ca, *own)), *want);
        }
    }

    /// The child's validity within the issuer's, both edges inclusive.
    #[test]
    fn validity_nesting() {
        let ca = issuer(None, None);
        let (nb, na) = (T0, T0 + 365 * DAY);
        let spki = fixture_spki("p256.pem");
        let rows: &[(&str, u64, u64, Option<&str>)] = &[
            ("exactly the issuer's validity", nb, na, None),
            ("strictly inside", nb + 1, na - 1, None),
            (
                "starts a second before the issuer",
                nb - 1,
                na,
                Some("validity starts 2025-12-31T23:59:59Z before issuer /CN=Issuer is valid"),
            ),
            (
                "ends a second after the issuer",
                nb,
                na + 1,
                Some("validity ends 2027-01-01T00:00:01Z after issuer /CN=Issuer expires"),
            ),
            ("both outside: the end is named first", nb - 1, na + 1, Some("validity ends")),
        ];
        for (what, from, to, want) in rows {
            let child = tbs(&dn("/CN=Issuer"), &dn("/CN=leaf"), &spki, (*from, *to), vec![]);
            expect(what, validity_within(&child, &ca), *want);
        }
    }

    /// A child's extended key usages lie within the issuer's; an issuer
    /// with none, or with anyExtendedKeyUsage, limits nothing.
    #[test]
    fn eku_nesting() {
        let web = Some(vec![oid::SERVER_AUTH, oid::CLIENT_AUTH]);
        // What it checks; the issuer's EKUs; the child's; refusal or None.
        type Ekus = Option<Vec<ObjectIdentifier>>;
        let rows: &[(&str, Ekus, Ekus, Option<&str>)] = &[
            ("issuer without EKU: anything", None, Some(vec![oid::CODE_SIGNING]), None),
            ("issuer without EKU: no EKU", None, None, None),
            ("issuer with anyEKU: anything", Some(vec![oid::SERVER_AUTH, oid::ANY_EKU]), Some(vec![oid::CODE_SIGNING]), None),
            ("issuer with anyEKU: no EKU", Some(vec![oid::ANY_EKU]), None, None),
            ("a subset", web.clone(), Some(vec![oid::SERVER_AUTH]), None),
            ("the same set", web.clone(), web.clone(), None),
            ("one usage outside", web.clone(), Some(vec![oid::SERVER_AUTH, oid::CODE_SIGNING]), Some("extended key usage codeSigning is outside issuer /CN=Issuer's (serverAuth,clientAuth)")),
            ("an unnamed usage outside", web.clone(), Some(vec![ObjectIdentifier::new_unwrap("1.2.3.4")]), Some("extended key usage 1.2.3.4 is outside")),
            ("no EKU (every usage) under a limited issuer", web.clone(), None, Some("extKeyUsage is missing (every usage) but issuer /CN=Issuer is limited to serverAuth,clientAuth")),
        ];
        for (what, above, own, want) in rows {
            let own = own.clone().map(ExtendedKeyUsage);
            expect(what, eku_within(own.as_ref(), &issuer(None, above.clone())), *want);
        }
        assert_eq!(eku_name(&oid::OCSP_SIGNING), "ocspSigning");
        assert_eq!(eku_name(&oid::ANY_EKU), "2.5.29.37.0");
    }
}
