//! The algorithms as X.509 names them: `Hash` and [`SigAlg`], their
//! AlgorithmIdentifiers (the fixed RSASSA-PSS parameters among them) and
//! the way back from one, the weak algorithms refusals name, and the
//! DigestInfo a raw RSA signature signs. What PKCS#11 calls each one is in
//! `mechanism.rs`.

use der::asn1::ObjectIdentifier;
use der::{Any, Encode, Sequence};
use sha2::Digest;
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::error::{Error, Result};
use crate::keys::{Curve, KeySpec};
use crate::oid;

/// Signature algorithms nobody should accept any more, named in refusals.
const WEAK: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.2.840.113549.1.1.14", "sha224WithRSAEncryption"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10045.4.3.1", "ecdsa-with-SHA224"),
    ("1.2.840.10040.4.3", "dsa-with-sha1"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub fn parse(s: &str) -> Result<Hash> {
        match s {
            "sha256" => Ok(Hash::Sha256),
            "sha384" => Ok(Hash::Sha384),
            "sha512" => Ok(Hash::Sha512),
            _ => Err(Error::usage(format!("unsupported hash {s:?} (sha256, sha384, sha512)"))),
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            Hash::Sha256 => oid::SHA256,
            Hash::Sha384 => oid::SHA384,
            Hash::Sha512 => oid::SHA512,
        }
    }

    /// The hash's AlgorithmIdentifier with NULL parameters, as RFC 4055
    /// section 2.1 requires inside RSASSA-PSS parameters.
    fn identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned { oid: self.oid(), parameters: Some(Any::from(der::asn1::Null)) }
    }

    /// ```text
    /// DigestInfo ::= SEQUENCE {                  -- RFC 8017 section 9.2
    ///     digestAlgorithm AlgorithmIdentifier,
    ///     digest OCTET STRING }
    /// ```
    pub(super) fn digest_info(self, digest: &[u8]) -> Result<Vec<u8>> {
        #[derive(Sequence)]
        struct DigestInfo {
            algorithm: AlgorithmIdentifierOwned,
            digest: der::asn1::OctetString,
        }
        Ok(DigestInfo { algorithm: self.identifier(), digest: der::asn1::OctetString::new(digest)? }
            .to_der()?)
    }
}

/// ```text
/// RSASSA-PSS-params ::= SEQUENCE {           -- RFC 4055 section 3.1
///     hashAlgorithm      [0] HashAlgorithm DEFAULT sha1Identifier,
///     maskGenAlgorithm   [1] MaskGenAlgorithm DEFAULT mgf1SHA1Identifier,
///     saltLength         [2] INTEGER DEFAULT 20,
///     trailerField       [3] INTEGER DEFAULT 1 }
/// ```
/// cardca writes and accepts one form per hash: MGF1 with the same hash and
/// a salt as long as the hash, the encodings the CA/B Forum requires.
#[derive(Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_length: u32,
}

fn pss_params(hash: Hash) -> Result<Any> {
    let mask_gen =
        AlgorithmIdentifierOwned { oid: oid::MGF1, parameters: Some(Any::encode_from(&hash.identifier())?) };
    Ok(Any::encode_from(&PssParams {
        hash: hash.identifier(),
        mask_gen,
        salt_length: hash.output_len() as u32,
    })?)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    Ecdsa(Hash),
    Ed25519,
}

impl SigAlg {
    /// The algorithm a key signs with by default: SHA-256 for RSA, the
    /// curve's own size for ECDSA (RFC 5480 section 4), pure Ed25519.
    pub fn for_key(spec: KeySpec, hash: Option<Hash>, pss: bool) -> Result<SigAlg> {
        match spec {
            KeySpec::Rsa(_) => {
                let h = hash.unwrap_or(Hash::Sha256);
                Ok(if pss { SigAlg::RsaPss(h) } else { SigAlg::RsaPkcs1(h) })
            }
            _ if pss => Err(Error::usage(format!("--pss needs an RSA key, not {spec}"))),
            KeySpec::Ec(curve) => Ok(SigAlg::Ecdsa(hash.unwrap_or(match curve {
                Curve::P256 => Hash::Sha256,
                Curve::P384 => Hash::Sha384,
                Curve::P521 => Hash::Sha512,
            }))),
            KeySpec::Ed25519 if hash.is_some() => {
                Err(Error::usage("Ed25519 has its hash built in; --hash does not apply"))
            }
            KeySpec::Ed25519 => Ok(SigAlg::Ed25519),
        }
    }

    pub fn fits(self, spec: KeySpec) -> bool {
        matches!(
            (self, spec),
            (SigAlg::RsaPkcs1(_) | SigAlg::RsaPss(_), KeySpec::Rsa(_))
                | (SigAlg::Ecdsa(_), KeySpec::Ec(_))
                | (SigAlg::Ed25519, KeySpec::Ed25519)
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            SigAlg::RsaPkcs1(Hash::Sha256) => "sha256WithRSAEncryption",
            SigAlg::RsaPkcs1(Hash::Sha384) => "sha384WithRSAEncryption",
            SigAlg::RsaPkcs1(Hash::Sha512) => "sha512WithRSAEncryption",
            SigAlg::RsaPss(Hash::Sha256) => "RSASSA-PSS with SHA-256",
            SigAlg::RsaPss(Hash::Sha384) => "RSASSA-PSS with SHA-384",
            SigAlg::RsaPss(Hash::Sha512) => "RSASSA-PSS with SHA-512",
            SigAlg::Ecdsa(Hash::Sha256) => "ecdsa-with-SHA256",
            SigAlg::Ecdsa(Hash::Sha384) => "ecdsa-with-SHA384",
            SigAlg::Ecdsa(Hash::Sha512) => "ecdsa-with-SHA512",
            SigAlg::Ed25519 => "Ed25519",
        }
    }

    /// The AlgorithmIdentifier: NULL parameters for PKCS#1 v1.5 (RFC 4055
    /// section 5), none for ECDSA (RFC 5758 section 3.2) and Ed25519 (RFC
    /// 8410 section 3), the fixed PSS parameters for RSASSA-PSS.
    pub fn identifier(self) -> Result<AlgorithmIdentifierOwned> {
        let null = || Some(Any::from(der::asn1::Null));
        Ok(match self {
            SigAlg::RsaPkcs1(h) => AlgorithmIdentifierOwned {
                oid: match h {
                    Hash::Sha256 => oid::RSA_SHA256,
                    Hash::Sha384 => oid::RSA_SHA384,
                    Hash::Sha512 => oid::RSA_SHA512,
                },
                parameters: null(),
            },
            SigAlg::RsaPss(h) => {
                AlgorithmIdentifierOwned { oid: oid::RSA_PSS, parameters: Some(pss_params(h)?) }
            }
            SigAlg::Ecdsa(h) => AlgorithmIdentifierOwned {
                oid: match h {
                    Hash::Sha256 => oid::ECDSA_SHA256,
                    Hash::Sha384 => oid::ECDSA_SHA384,
                    Hash::Sha512 => oid::ECDSA_SHA512,
                },
                parameters: None,
            },
            SigAlg::Ed25519 => AlgorithmIdentifierOwned { oid: oid::ED25519, parameters: None },
        })
    }

    /// The algorithm an AlgorithmIdentifier names, refusing weak hashes,
    /// unknown algorithms and any parameter encoding but the canonical one.
    pub fn from_identifier(alg: &AlgorithmIdentifierOwned) -> Result<SigAlg> {
        let oid = alg.oid.to_string();
        if let Some((_, name)) = WEAK.iter().find(|(o, _)| *o == oid) {
            return Err(Error::new(format!("weak signature algorithm {name}")));
        }
        let candidates = [
            SigAlg::RsaPkcs1(Hash::Sha256),
            SigAlg::RsaPkcs1(Hash::Sha384),
            SigAlg::RsaPkcs1(Hash::Sha512),
            SigAlg::RsaPss(Hash::Sha256),
            SigAlg::RsaPss(Hash::Sha384),
            SigAlg::RsaPss(Hash::Sha512),
            SigAlg::Ecdsa(Hash::Sha256),
            SigAlg::Ecdsa(Hash::Sha384),
            SigAlg::Ecdsa(Hash::Sha512),
            SigAlg::Ed25519,
        ];
        let mut known_oid = false;
        for c in candidates {
            let id = c.identifier()?;
            if id.oid == alg.oid {
                known_oid = true;
                if id == *alg {
                    return Ok(c);
                }
            }
        }
        if known_oid {
            Err(Error::new(format!("signature algorithm {oid} with non-canonical parameters")))
        } else {
            Err(Error::new(format!("unsupported signature algorithm {oid}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pss_sha256_is_the_cabf_encoding() {
        let id = SigAlg::RsaPss(Hash::Sha256).identifier().expect("id").to_der().expect("der");
        let want = "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120";
        assert_eq!(crate::hex::encode(&id), want);
    }

    #[test]
    fn identifiers_round_trip() {
        for alg in [
            SigAlg::RsaPkcs1(Hash::Sha256),
            SigAlg::RsaPkcs1(Hash::Sha512),
            SigAlg::RsaPss(Hash::Sha384),
            SigAlg::Ecdsa(Hash::Sha384),
            SigAlg::Ed25519,
        ] {
            let id = alg.identifier().expect("id");
            assert_eq!(SigAlg::from_identifier(&id).expect("parse"), alg);
        }
        let sha1 =
            AlgorithmIdentifierOwned { oid: oid::RSA_SHA1, parameters: Some(Any::from(der::asn1::Null)) };
        assert!(SigAlg::from_identifier(&sha1).expect_err("weak").to_string().contains("sha1WithRSA"));
        let no_null = AlgorithmIdentifierOwned { oid: oid::RSA_SHA256, parameters: None };
        assert!(SigAlg::from_identifier(&no_null).is_err());
    }
}
