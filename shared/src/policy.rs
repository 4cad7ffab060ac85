//! The issuance policy: the rules a certificate, CRL or subject key must
//! meet before a CA key signs it. tbs-build uses them to build, card-sign
//! to refuse; each rule is one small function whose error names the rule
//! and the field it refuses.

use der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::error::{Context, Error, Result};
use crate::keys::{self, Curve, KeySpec, RsaPublicKey};

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
