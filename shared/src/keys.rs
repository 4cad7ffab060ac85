//! Key types, public keys read off the token as SubjectPublicKeyInfo, key
//! identifiers, and the complete templates a CA key is made with.

use std::fmt;

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;
use der::asn1::{BitString, ObjectIdentifier, OctetString, PrintableStringRef, UintRef};
use der::{Any, Decode, Encode, Sequence};
use sha1::{Digest, Sha1};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::{Context, Error, Result};
use crate::oid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => oid::P256,
            Curve::P384 => oid::P384,
            Curve::P521 => oid::P521,
        }
    }

    /// Bytes in one coordinate (or in the scalar).
    pub fn field_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Bits in the field, as PKCS#11 gives EC key sizes.
    pub fn field_bits(self) -> usize {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Curve> {
        [Curve::P256, Curve::P384, Curve::P521].into_iter().find(|c| c.oid() == *oid)
    }
}

/// The key types cardca makes and signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    Rsa(usize),
    Ec(Curve),
    Ed25519,
}

impl KeySpec {
    pub const CHOICES: &'static str = "rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384, ec:p521, ed25519";

    pub fn parse(s: &str) -> Result<KeySpec> {
        Ok(match s {
            "rsa:2048" => KeySpec::Rsa(2048),
            "rsa:3072" => KeySpec::Rsa(3072),
            "rsa:4096" => KeySpec::Rsa(4096),
            "ec:p256" | "ec:prime256v1" | "ec:secp256r1" => KeySpec::Ec(Curve::P256),
            "ec:p384" | "ec:secp384r1" => KeySpec::Ec(Curve::P384),
            "ec:p521" | "ec:secp521r1" => KeySpec::Ec(Curve::P521),
            "ed25519" => KeySpec::Ed25519,
            _ => {
                return Err(Error::usage(format!(
                    "unsupported key type {s:?}; choose one of {}",
                    KeySpec::CHOICES
                )))
            }
        })
    }

    /// The DER of CKA_EC_PARAMS: the curve's OID.
    pub fn ec_params(self) -> Option<Vec<u8>> {
        let oid = match self {
            KeySpec::Ec(c) => c.oid(),
            KeySpec::Ed25519 => oid::ED25519,
            KeySpec::Rsa(_) => return None,
        };
        oid.to_der().ok()
    }

    /// The key type a CKA_EC_PARAMS value names: an OID, or for Edwards keys
    /// also the PrintableString "edwards25519" some modules use.
    pub fn from_ec_params(params: &[u8]) -> Option<KeySpec> {
        if let Ok(oid) = ObjectIdentifier::from_der(params) {
            if oid == oid::ED25519 {
                return Some(KeySpec::Ed25519);
            }
            return Curve::from_oid(&oid).map(KeySpec::Ec);
        }
        match PrintableStringRef::from_der(params).ok()?.as_str() {
            "edwards25519" => Some(KeySpec::Ed25519),
            _ => None,
        }
    }

    /// The key type a SubjectPublicKeyInfo carries, for keys we can use.
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<KeySpec> {
        let alg = &spki.algorithm;
        if alg.oid == oid::RSA_ENCRYPTION {
            let key =
                RsaPublicKey::from_der(spki.subject_public_key.raw_bytes()).context("RSA public key")?;
            return Ok(KeySpec::Rsa(bit_len(key.modulus.as_bytes())));
        }
        if alg.oid == oid::ED25519 {
            return Ok(KeySpec::Ed25519);
        }
        if alg.oid == oid::EC_PUBLIC_KEY {
            let curve = alg
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or_else(|| Error::new("EC public key without a named curve"))?;
            return Curve::from_oid(&curve)
                .map(KeySpec::Ec)
                .ok_or_else(|| Error::new(format!("unsupported curve {curve}")));
        }
        Err(Error::new(format!("unsupported public key algorithm {}", alg.oid)))
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::Rsa(bits) => write!(f, "rsa:{bits}"),
            KeySpec::Ec(Curve::P256) => f.write_str("ec:p256"),
            KeySpec::Ec(Curve::P384) => f.write_str("ec:p384"),
            KeySpec::Ec(Curve::P521) => f.write_str("ec:p521"),
            KeySpec::Ed25519 => f.write_str("ed25519"),
        }
    }
}

/// ```text
/// RSAPublicKey ::= SEQUENCE {            -- RFC 8017 appendix A.1.1
///     modulus           INTEGER,  -- n
///     publicExponent    INTEGER   -- e
/// }
/// ```
#[derive(Sequence)]
pub struct RsaPublicKey<'a> {
    pub modulus: UintRef<'a>,
    pub public_exponent: UintRef<'a>,
}

pub fn bit_len(unsigned: &[u8]) -> usize {
    let trimmed: &[u8] = match unsigned.iter().position(|&b| b != 0) {
        Some(i) => &unsigned[i..],
        None => return 0,
    };
    trimmed.len() * 8 - trimmed[0].leading_zeros() as usize
}

pub fn spki_rsa(modulus: &[u8], exponent: &[u8]) -> Result<SubjectPublicKeyInfoOwned> {
    let key = RsaPublicKey { modulus: UintRef::new(modulus)?, public_exponent: UintRef::new(exponent)? };
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: oid::RSA_ENCRYPTION,
            // RFC 3279 section 2.3.1: the parameters field MUST be NULL.
            parameters: Some(Any::from(der::asn1::Null)),
        },
        subject_public_key: BitString::from_bytes(&key.to_der()?)?,
    })
}

/// An EC or Ed25519 SPKI from the raw public point.
pub fn spki_point(spec: KeySpec, point: &[u8]) -> Result<SubjectPublicKeyInfoOwned> {
    let algorithm = match spec {
        KeySpec::Ec(curve) => AlgorithmIdentifierOwned {
            oid: oid::EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&curve.oid())?),
        },
        // RFC 8410 section 3: the parameters MUST be absent.
        KeySpec::Ed25519 => AlgorithmIdentifierOwned { oid: oid::ED25519, parameters: None },
        KeySpec::Rsa(_) => return Err(Error::new("an RSA key has no EC point")),
    };
    Ok(SubjectPublicKeyInfoOwned { algorithm, subject_public_key: BitString::from_bytes(point)? })
}

/// The raw point from CKA_EC_POINT. PKCS#11 says it is a DER OCTET STRING,
/// and SoftHSM2 wraps it so, but some modules return the bare point; the
/// expected length tells the two apart.
pub fn unwrap_ec_point(spec: KeySpec, value: &[u8]) -> Result<Vec<u8>> {
    let raw_len = match spec {
        KeySpec::Ec(c) => 1 + 2 * c.field_len(),
        KeySpec::Ed25519 => 32,
        KeySpec::Rsa(_) => return Err(Error::new("an RSA key has no EC point")),
    };
    let plausible = |p: &[u8]| p.len() == raw_len && (spec == KeySpec::Ed25519 || p[0] == 0x04);
    if let Ok(inner) = OctetString::from_der(value) {
        if plausible(inner.as_bytes()) {
            return Ok(inner.as_bytes().to_vec());
        }
    }
    if plausible(value) {
        return Ok(value.to_vec());
    }
    Err(Error::new(format!("CKA_EC_POINT of {} bytes is not a {spec} point", value.len())))
}

/// The key type of a key object, from CKA_KEY_TYPE and its size attributes.
pub fn key_spec(session: &Session, handle: ObjectHandle) -> Result<KeySpec> {
    let attrs = session
        .get_attributes(handle, &[AttributeType::KeyType, AttributeType::Modulus, AttributeType::EcParams])
        .context("C_GetAttributeValue")?;
    let mut key_type = None;
    let mut modulus = None;
    let mut params = None;
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::EcParams(p) => params = Some(p),
            _ => {}
        }
    }
    match key_type {
        Some(KeyType::RSA) => modulus
            .map(|m| KeySpec::Rsa(bit_len(&m)))
            .ok_or_else(|| Error::new("RSA key without CKA_MODULUS")),
        Some(KeyType::EC) | Some(KeyType::EC_EDWARDS) => params
            .as_deref()
            .and_then(KeySpec::from_ec_params)
            .ok_or_else(|| Error::new("key on an unsupported curve")),
        Some(other) => Err(Error::new(format!("unsupported key type {other}"))),
        None => Err(Error::new("object has no CKA_KEY_TYPE")),
    }
}

/// The SubjectPublicKeyInfo of a public key object (or of an RSA private
/// key, which carries its modulus and exponent).
pub fn public_key_info(
    session: &Session,
    handle: ObjectHandle,
) -> Result<(KeySpec, SubjectPublicKeyInfoOwned)> {
    let spec = key_spec(session, handle)?;
    let wanted = match spec {
        KeySpec::Rsa(_) => [AttributeType::Modulus, AttributeType::PublicExponent],
        _ => [AttributeType::EcPoint, AttributeType::EcParams],
    };
    let attrs = session.get_attributes(handle, &wanted).context("C_GetAttributeValue")?;
    let (mut modulus, mut exponent, mut point) = (None, None, None);
    for a in attrs {
        match a {
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::PublicExponent(e) => exponent = Some(e),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let spki = match spec {
        KeySpec::Rsa(_) => match (modulus, exponent) {
            (Some(n), Some(e)) => spki_rsa(&n, &e)?,
            _ => return Err(Error::new("RSA key without modulus or public exponent")),
        },
        _ => {
            let point = point.ok_or_else(|| Error::new("EC key without CKA_EC_POINT"))?;
            spki_point(spec, &unwrap_ec_point(spec, &point)?)?
        }
    };
    Ok((spec, spki))
}

/// RFC 5280 section 4.2.1.2 method 1: the SHA-1 of the subjectPublicKey
/// BIT STRING's value. The card's CKA_ID equals the certificates' SKI/AKI.
pub fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// CKA_PUBLIC_EXPONENT for every key we generate: 65537, the only exponent
/// tbs-build accepts.
pub const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// The private key attributes a CA key must have. Sensitive, never
/// extractable, and it only signs: a CA key has no business decrypting,
/// unwrapping or deriving.
pub fn private_policy() -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::SignRecover(false),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]
}

/// The public half only verifies.
pub fn public_policy() -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
    ]
}

/// The public half with nothing but what makes it a token object: for a
/// token that refuses [`public_policy`]. tpm2-pkcs11 maps CKA_VERIFY onto
/// the TPM key's decrypt bit and CKA_ENCRYPT onto its sign bit, and
/// answers CKR_GENERAL_ERROR when they disagree with the key it makes.
/// What the public key may do matters little (the private half is what
/// must only sign, and that is read back as strictly as ever).
pub fn public_minimal() -> Vec<Attribute> {
    vec![Attribute::Token(true), Attribute::Private(false)]
}

/// Whether C_GenerateKeyPair's failure may be the token refusing the
/// public template: the codes PKCS#11 gives for a template (section 5.1)
/// and the one tpm2-pkcs11 gives, CKR_GENERAL_ERROR. Anything else (a
/// missing mechanism, a removed device, no login) is not retried.
pub fn template_refused(e: &Error) -> bool {
    use cryptoki::error::RvError as Rv;
    [
        Rv::GeneralError,
        Rv::AttributeTypeInvalid,
        Rv::AttributeValueInvalid,
        Rv::AttributeReadOnly,
        Rv::TemplateInconsistent,
    ]
    .into_iter()
    .any(|rv| e.is_ckr(rv))
}

/// Reads `expected`'s boolean attributes back from the object and names
/// the first that differs. Modules are free to ignore template attributes
/// (SoftHSM2 makes a bare template a non-sensitive session key), so what was
/// asked for proves nothing until it is read back.
pub fn check_attributes(session: &Session, handle: ObjectHandle, expected: &[Attribute]) -> Result<()> {
    let types: Vec<AttributeType> = expected.iter().map(Attribute::attribute_type).collect();
    let actual = session.get_attributes(handle, &types).context("reading the key's attributes back")?;
    for want in expected {
        let got = actual.iter().find(|a| a.attribute_type() == want.attribute_type());
        if got != Some(want) {
            // Derive and SignRecover are optional for some key types: a
            // module that does not know them cannot let the key derive.
            let optional = matches!(
                want,
                Attribute::Derive(false)
                    | Attribute::SignRecover(false)
                    | Attribute::Encrypt(false)
                    | Attribute::Wrap(false)
                    | Attribute::Decrypt(false)
                    | Attribute::Unwrap(false)
            );
            if got.is_none() && optional {
                continue;
            }
            return Err(Error::new(format!(
                "the token did not apply {:?}: it reads back {}",
                want,
                got.map_or("nothing".to_string(), |g| format!("{g:?}"))
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        for s in ["rsa:2048", "rsa:3072", "rsa:4096", "ec:p256", "ec:p384", "ec:p521", "ed25519"] {
            assert_eq!(KeySpec::parse(s).expect(s).to_string(), s);
        }
        assert!(KeySpec::parse("rsa:1024").is_err());
        assert!(KeySpec::parse("dsa").is_err());
    }

    #[test]
    fn ec_params_forms() {
        let p256 = KeySpec::Ec(Curve::P256).ec_params().expect("params");
        assert_eq!(KeySpec::from_ec_params(&p256), Some(KeySpec::Ec(Curve::P256)));
        let ed = KeySpec::Ed25519.ec_params().expect("params");
        assert_eq!(ed, [0x06, 0x03, 0x2b, 0x65, 0x70]);
        let printable = PrintableStringRef::new("edwards25519").expect("str").to_der().expect("der");
        assert_eq!(KeySpec::from_ec_params(&printable), Some(KeySpec::Ed25519));
    }

    #[test]
    fn points_wrapped_or_bare() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let wrapped = OctetString::new(point.clone()).expect("os").to_der().expect("der");
        let spec = KeySpec::Ec(Curve::P256);
        assert_eq!(unwrap_ec_point(spec, &wrapped).expect("wrapped"), point);
        assert_eq!(unwrap_ec_point(spec, &point).expect("bare"), point);
        let ed = [9u8; 32];
        let wrapped = OctetString::new(ed.to_vec()).expect("os").to_der().expect("der");
        assert_eq!(unwrap_ec_point(KeySpec::Ed25519, &wrapped).expect("ed"), ed);
        assert_eq!(unwrap_ec_point(KeySpec::Ed25519, &ed).expect("ed bare"), ed);
        assert!(unwrap_ec_point(spec, &[4, 1, 2]).is_err());
    }

    #[test]
    fn bits() {
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0x01, 0]), 9);
    }
}
