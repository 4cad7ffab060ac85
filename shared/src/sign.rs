//! Signing on the token and verifying on the host: the one place that
//! knows mechanisms, hashes, DigestInfo, ECDSA encodings and RSA-PSS
//! parameters.
//!
//! Every signature the token makes is verified with the public key before
//! it is returned, so a faulty token (an RSA-CRT fault, a bad firmware)
//! can never put an invalid or key-leaking signature into a certificate.

use std::sync::Arc;

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use der::asn1::{ObjectIdentifier, UintRef};
use der::{Any, Encode, Sequence};
use secrecy::SecretString;
use sha2::Digest;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::{Context, Error, Result};
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

    fn mechanism(self) -> MechanismType {
        match self {
            Hash::Sha256 => MechanismType::SHA256,
            Hash::Sha384 => MechanismType::SHA384,
            Hash::Sha512 => MechanismType::SHA512,
        }
    }

    fn mgf(self) -> PkcsMgfType {
        match self {
            Hash::Sha256 => PkcsMgfType::MGF1_SHA256,
            Hash::Sha384 => PkcsMgfType::MGF1_SHA384,
            Hash::Sha512 => PkcsMgfType::MGF1_SHA512,
        }
    }

    /// ```text
    /// DigestInfo ::= SEQUENCE {                  -- RFC 8017 section 9.2
    ///     digestAlgorithm AlgorithmIdentifier,
    ///     digest OCTET STRING }
    /// ```
    fn digest_info(self, digest: &[u8]) -> Result<Vec<u8>> {
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

    /// The mechanism that hashes on the token, if PKCS#11 has one, and the
    /// one that signs a hash made on the host (Ed25519 has only one).
    fn mechanism_types(self) -> (Option<MechanismType>, MechanismType) {
        use MechanismType as M;
        match self {
            SigAlg::RsaPkcs1(h) => (
                Some(match h {
                    Hash::Sha256 => M::SHA256_RSA_PKCS,
                    Hash::Sha384 => M::SHA384_RSA_PKCS,
                    Hash::Sha512 => M::SHA512_RSA_PKCS,
                }),
                M::RSA_PKCS,
            ),
            SigAlg::RsaPss(h) => (
                Some(match h {
                    Hash::Sha256 => M::SHA256_RSA_PKCS_PSS,
                    Hash::Sha384 => M::SHA384_RSA_PKCS_PSS,
                    Hash::Sha512 => M::SHA512_RSA_PKCS_PSS,
                }),
                M::RSA_PKCS_PSS,
            ),
            SigAlg::Ecdsa(h) => (
                Some(match h {
                    Hash::Sha256 => M::ECDSA_SHA256,
                    Hash::Sha384 => M::ECDSA_SHA384,
                    Hash::Sha512 => M::ECDSA_SHA512,
                }),
                M::ECDSA,
            ),
            SigAlg::Ed25519 => (None, M::EDDSA),
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

/// ```text
/// Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }   -- RFC 3279 2.2.3
/// ```
#[derive(Sequence)]
struct EcdsaSig<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// Mechanisms that hash on the token: they take their data in parts.
fn hashes_on_token(m: &Mechanism) -> bool {
    !matches!(m, Mechanism::RsaPkcs | Mechanism::RsaPkcsPss(_) | Mechanism::Ecdsa | Mechanism::Eddsa(_))
}

/// PKCS#11 returns ECDSA signatures as r||s; X.509 wants DER.
fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(Error::new(format!("ECDSA signature of odd length {}", raw.len())));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Ok(EcdsaSig { r: UintRef::new(r)?, s: UintRef::new(s)? }.to_der()?)
}

/// Verifies `signature` over `message` with the public key, on the host.
///
/// RSA and ECDSA on P-256/P-384 go through ring, whose assembly verifies
/// five times faster than the pure-Rust crates on x86-64 (P-256: 85 µs
/// against 430 µs here); every certificate costs two verifications, the
/// CSR's and the token's signature. The rest (P-521, ECDSA with a hash
/// ring does not pair with the curve, compressed points, Ed25519) goes
/// through RustCrypto.
pub fn verify(spki: &SubjectPublicKeyInfoOwned, alg: SigAlg, message: &[u8], signature: &[u8]) -> Result<()> {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let spec = KeySpec::from_spki(spki)?;
    if !alg.fits(spec) {
        return Err(Error::new(format!("a {spec} key cannot make {} signatures", alg.name())));
    }
    let bad = || Error::new(format!("the {} signature does not verify", alg.name()));
    // RSAPublicKey for RSA, the SEC 1 point for EC, the 32 bytes for Ed25519.
    let key = spki.subject_public_key.raw_bytes();
    if let Some(ring_alg) = ring_algorithm(alg, spec, key) {
        return ring::signature::UnparsedPublicKey::new(ring_alg, key)
            .verify(message, signature)
            .map_err(|_| bad());
    }
    let point_err = |_| Error::new("the EC public key is not a point on its curve");
    match (alg, spec) {
        (SigAlg::Ecdsa(h), KeySpec::Ec(curve)) => {
            let digest = h.digest(message);
            match curve {
                Curve::P256 => {
                    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(point_err)?;
                    let sig = p256::ecdsa::DerSignature::try_from(signature).map_err(|_| bad())?;
                    key.verify_prehash(&digest, &sig).map_err(|_| bad())
                }
                Curve::P384 => {
                    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(point_err)?;
                    let sig = p384::ecdsa::DerSignature::try_from(signature).map_err(|_| bad())?;
                    key.verify_prehash(&digest, &sig).map_err(|_| bad())
                }
                Curve::P521 => {
                    let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(key).map_err(point_err)?;
                    let sig = p521::ecdsa::DerSignature::try_from(signature).map_err(|_| bad())?;
                    key.verify_prehash(&digest, &sig).map_err(|_| bad())
                }
            }
        }
        (SigAlg::Ed25519, _) => {
            let bytes: [u8; 32] = key.try_into().map_err(|_| Error::new("Ed25519 key is not 32 bytes"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| Error::new("the Ed25519 public key is not a valid point"))?;
            let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| bad())?;
            key.verify_strict(message, &sig).map_err(|_| bad())
        }
        _ => Err(Error::new(format!(
            "{spec} signatures cannot be verified (RSA keys of 2048 to 8192 bits only)"
        ))),
    }
}

/// The ring algorithm for a signature and key, if ring has one: RSA of
/// 2048 to 8192 bits, ECDSA on P-256/P-384 with SHA-256/384 and an
/// uncompressed point (the only form ring reads).
fn ring_algorithm(
    alg: SigAlg,
    spec: KeySpec,
    key: &[u8],
) -> Option<&'static dyn ring::signature::VerificationAlgorithm> {
    use ring::signature as r;
    let uncompressed = key.first() == Some(&0x04);
    Some(match (alg, spec) {
        (_, KeySpec::Rsa(bits)) if !(2048..=8192).contains(&bits) => return None,
        (SigAlg::RsaPkcs1(Hash::Sha256), _) => &r::RSA_PKCS1_2048_8192_SHA256,
        (SigAlg::RsaPkcs1(Hash::Sha384), _) => &r::RSA_PKCS1_2048_8192_SHA384,
        (SigAlg::RsaPkcs1(Hash::Sha512), _) => &r::RSA_PKCS1_2048_8192_SHA512,
        (SigAlg::RsaPss(Hash::Sha256), _) => &r::RSA_PSS_2048_8192_SHA256,
        (SigAlg::RsaPss(Hash::Sha384), _) => &r::RSA_PSS_2048_8192_SHA384,
        (SigAlg::RsaPss(Hash::Sha512), _) => &r::RSA_PSS_2048_8192_SHA512,
        (_, KeySpec::Ec(_)) if !uncompressed => return None,
        (SigAlg::Ecdsa(Hash::Sha256), KeySpec::Ec(Curve::P256)) => &r::ECDSA_P256_SHA256_ASN1,
        (SigAlg::Ecdsa(Hash::Sha384), KeySpec::Ec(Curve::P256)) => &r::ECDSA_P256_SHA384_ASN1,
        (SigAlg::Ecdsa(Hash::Sha256), KeySpec::Ec(Curve::P384)) => &r::ECDSA_P384_SHA256_ASN1,
        (SigAlg::Ecdsa(Hash::Sha384), KeySpec::Ec(Curve::P384)) => &r::ECDSA_P384_SHA384_ASN1,
        _ => return None,
    })
}

/// Where a signature's hash is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The token has the combined mechanism (CKM_SHA256_RSA_PKCS, ...).
    OnToken,
    /// The token signs a hash made here (CKM_RSA_PKCS, CKM_ECDSA, ...).
    OnHost,
}

/// A token's mechanism list (C_GetMechanismList): cardca uses only the
/// mechanisms in it, and a refusal names the one that is missing, because
/// a token asked for another one fails later with a bare
/// CKR_MECHANISM_INVALID (or, worse, in the middle of a stream).
#[derive(Debug, Clone, Default)]
pub struct Mechanisms(Vec<MechanismType>);

impl Mechanisms {
    pub fn read(ctx: &cryptoki::context::Pkcs11, slot: cryptoki::slot::Slot) -> Result<Mechanisms> {
        Ok(Mechanisms(ctx.get_mechanism_list(slot).context("C_GetMechanismList")?))
    }

    pub fn has(&self, m: MechanismType) -> bool {
        self.0.contains(&m)
    }

    /// How the token can make `alg` signatures, or which mechanisms it
    /// lacks for them.
    pub fn route(&self, alg: SigAlg) -> Result<Route> {
        let (combined, raw) = alg.mechanism_types();
        match combined {
            Some(c) if self.has(c) => Ok(Route::OnToken),
            _ if self.has(raw) => Ok(Route::OnHost),
            Some(c) => Err(Error::new(format!(
                "this token has neither {c} nor {raw}: it cannot make {} signatures",
                alg.name()
            ))),
            None => {
                Err(Error::new(format!("this token has no {raw}: it cannot make {} signatures", alg.name())))
            }
        }
    }

    /// Whether the token makes `spec` keys, by the key sizes
    /// C_GetMechanismInfo gives for its pair generation mechanism (`min`
    /// and `max`): a token asked for a size outside them fails with a
    /// bare CKR_ATTRIBUTE_VALUE_INVALID or CKR_KEY_SIZE_RANGE, after the
    /// login. PKCS#11 gives RSA sizes in modulus bits and EC sizes in
    /// field bits, but some modules give bytes; a range that is no
    /// plausible range of bits (RSA below 1024, EC below 160) is read as
    /// bytes. No range (0, or min above max) and Ed25519, whose sizes
    /// modules report every which way, pass unchecked.
    pub fn keygen_size(spec: KeySpec, min: usize, max: usize) -> Result<()> {
        let (size, kind, plausible_bits) = match spec {
            KeySpec::Rsa(bits) => (bits, "RSA", 1024),
            KeySpec::Ec(curve) => (curve.field_bits(), "EC", 160),
            KeySpec::Ed25519 => return Ok(()),
        };
        if max == 0 || min > max {
            return Ok(());
        }
        let (min_bits, max_bits) =
            if max < plausible_bits { (min.saturating_mul(8), max.saturating_mul(8)) } else { (min, max) };
        // A byte count rounds a P-521 field (66 bytes) up to 528 bits.
        let fits = (min_bits..=max_bits).contains(&size)
            || (max < plausible_bits && (min..=max).contains(&size.div_ceil(8)));
        if fits {
            return Ok(());
        }
        Err(Error::new(format!(
            "this token makes {kind} keys of {min_bits} to {max_bits} bits (C_GetMechanismInfo): it cannot make {spec} keys"
        )))
    }

    /// The key pair generation mechanism for `spec`, if the token has it.
    pub fn keygen(&self, spec: KeySpec) -> Result<Mechanism<'static>> {
        let (m, mechanism, kind) = match spec {
            KeySpec::Rsa(_) => (MechanismType::RSA_PKCS_KEY_PAIR_GEN, Mechanism::RsaPkcsKeyPairGen, "RSA"),
            KeySpec::Ec(_) => (MechanismType::ECC_KEY_PAIR_GEN, Mechanism::EccKeyPairGen, "EC"),
            KeySpec::Ed25519 => {
                (MechanismType::ECC_EDWARDS_KEY_PAIR_GEN, Mechanism::EccEdwardsKeyPairGen, "Ed25519")
            }
        };
        if self.has(m) {
            Ok(mechanism)
        } else {
            Err(Error::new(format!("this token has no {m}: it cannot make {kind} keys")))
        }
    }
}

/// What a signer needs besides a session, owned and sendable, so that
/// each signing thread can make a signer on its own session.
#[derive(Clone)]
pub struct SignerSpec {
    pub key: ObjectHandle,
    pub spki: Arc<SubjectPublicKeyInfoOwned>,
    pub mechanisms: Mechanisms,
    pub pin: Option<SecretString>,
}

impl SignerSpec {
    pub fn on<'s>(&self, session: &'s Session) -> Result<Signer<'s>> {
        Signer::new(session, self.key, Arc::clone(&self.spki), self.mechanisms.clone(), self.pin.clone())
    }
}

/// A private key on a logged-in session, ready to sign.
pub struct Signer<'s> {
    session: &'s Session,
    key: ObjectHandle,
    pub spec: KeySpec,
    pub spki: Arc<SubjectPublicKeyInfoOwned>,
    /// CKA_ALWAYS_AUTHENTICATE keys need the PIN again before every
    /// signature (PKCS#11 section 5.2, context-specific login).
    context_pin: Option<SecretString>,
    mechanisms: Mechanisms,
}

impl<'s> Signer<'s> {
    /// `spki` is the key's public half, from its public key object or
    /// certificate; `pin` is kept only for an always-authenticate key.
    pub fn new(
        session: &'s Session,
        key: ObjectHandle,
        spki: Arc<SubjectPublicKeyInfoOwned>,
        mechanisms: Mechanisms,
        pin: Option<SecretString>,
    ) -> Result<Signer<'s>> {
        let spec = KeySpec::from_spki(&spki)?;
        let attrs = session
            .get_attributes(key, &[AttributeType::AlwaysAuthenticate, AttributeType::Sign])
            .context("reading the key's attributes")?;
        if !attrs.contains(&Attribute::Sign(true)) {
            return Err(Error::new("the key is not allowed to sign (CKA_SIGN is false)"));
        }
        let always = attrs.contains(&Attribute::AlwaysAuthenticate(true));
        if always && pin.is_none() {
            return Err(Error::new(
                "the key needs its PIN before every signature (CKA_ALWAYS_AUTHENTICATE), but no PIN is at hand",
            )
            .hint("give the PIN with --pin-source instead of a PIN pad"));
        }
        Ok(Signer { session, key, spec, spki, context_pin: if always { pin } else { None }, mechanisms })
    }

    /// PKCS#11 section 5.2: the context-specific login comes after
    /// C_SignInit and before the data. cryptoki's single-part `sign` makes
    /// both calls at once, so these keys sign in parts, which tokens offer
    /// for the mechanisms that hash on the token.
    fn sign_always_authenticate(
        &self,
        mechanism: &Mechanism,
        data: &[u8],
        pin: &SecretString,
    ) -> Result<Vec<u8>> {
        if !hashes_on_token(mechanism) {
            return Err(Error::new(format!(
                "the key needs its PIN before every signature (CKA_ALWAYS_AUTHENTICATE), which cardca can give \
                 only with a mechanism that hashes on the token, and this token has none for {}",
                self.spec
            )));
        }
        self.session.sign_init(mechanism, self.key).context("C_SignInit")?;
        self.session
            .login(UserType::ContextSpecific, Some(pin))
            .context("context-specific login for an always-authenticate key")?;
        self.session.sign_update(data).context("signing on the token")?;
        self.session.sign_final().context("signing on the token")
    }

    /// Signs on the token, verifies on the host, and returns the signature
    /// as it goes into the BIT STRING.
    pub fn sign(&self, alg: SigAlg, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.sign_on_token(alg, message.to_vec())?.verify()?.1)
    }

    /// Signs on the token only. The signature comes back sealed in an
    /// [`Unverified`], whose one way out is verification: so the token can
    /// sign the next block while another thread checks this one.
    pub fn sign_on_token(&self, alg: SigAlg, message: Vec<u8>) -> Result<Unverified> {
        if !alg.fits(self.spec) {
            return Err(Error::new(format!("a {} key cannot make {} signatures", self.spec, alg.name())));
        }
        // Hash on the token when it has the combined mechanism, else on the
        // host for the raw one; the mechanism list decided which exists.
        let on_token = self.mechanisms.route(alg)? == Route::OnToken;
        let pss = |h: Hash| PkcsPssParams {
            hash_alg: h.mechanism(),
            mgf: h.mgf(),
            s_len: (h.output_len() as u64).into(),
        };
        let (mechanism, data): (Mechanism, Vec<u8>) = match (alg, on_token) {
            (SigAlg::RsaPkcs1(Hash::Sha256), true) => (Mechanism::Sha256RsaPkcs, message.clone()),
            (SigAlg::RsaPkcs1(Hash::Sha384), true) => (Mechanism::Sha384RsaPkcs, message.clone()),
            (SigAlg::RsaPkcs1(Hash::Sha512), true) => (Mechanism::Sha512RsaPkcs, message.clone()),
            (SigAlg::RsaPkcs1(h), false) => (Mechanism::RsaPkcs, h.digest_info(&h.digest(&message))?),
            (SigAlg::RsaPss(h @ Hash::Sha256), true) => {
                (Mechanism::Sha256RsaPkcsPss(pss(h)), message.clone())
            }
            (SigAlg::RsaPss(h @ Hash::Sha384), true) => {
                (Mechanism::Sha384RsaPkcsPss(pss(h)), message.clone())
            }
            (SigAlg::RsaPss(h @ Hash::Sha512), true) => {
                (Mechanism::Sha512RsaPkcsPss(pss(h)), message.clone())
            }
            (SigAlg::RsaPss(h), false) => (Mechanism::RsaPkcsPss(pss(h)), h.digest(&message)),
            (SigAlg::Ecdsa(Hash::Sha256), true) => (Mechanism::EcdsaSha256, message.clone()),
            (SigAlg::Ecdsa(Hash::Sha384), true) => (Mechanism::EcdsaSha384, message.clone()),
            (SigAlg::Ecdsa(Hash::Sha512), true) => (Mechanism::EcdsaSha512, message.clone()),
            (SigAlg::Ecdsa(h), false) => (Mechanism::Ecdsa, h.digest(&message)),
            (SigAlg::Ed25519, _) => {
                (Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)), message.clone())
            }
        };
        let raw = match &self.context_pin {
            None => self.session.sign(&mechanism, self.key, &data).context("signing on the token")?,
            Some(pin) => self.sign_always_authenticate(&mechanism, &data, pin)?,
        };
        let signature = match alg {
            SigAlg::Ecdsa(_) => ecdsa_raw_to_der(&raw)?,
            _ => raw,
        };
        Ok(Unverified { spki: Arc::clone(&self.spki), alg, message, signature })
    }
}

/// A signature straight from the token, with what it must verify
/// against. Nothing reads the signature without [`Unverified::verify`].
#[must_use = "a token's signature is used only once verified"]
pub struct Unverified {
    /// Shared with the signer: one public key for the whole stream.
    spki: Arc<SubjectPublicKeyInfoOwned>,
    alg: SigAlg,
    message: Vec<u8>,
    signature: Vec<u8>,
}

impl Unverified {
    /// Verifies the signature with the key's public key, on the host;
    /// returns the message and the signature as it goes into the BIT
    /// STRING.
    pub fn verify(self) -> Result<(Vec<u8>, Vec<u8>)> {
        verify(&self.spki, self.alg, &self.message, &self.signature).map_err(|_| {
            Error::new(format!(
                "the token's {} signature does not verify with the key's public key; nothing was written",
                self.alg.name()
            ))
            .hint("the token or the key object is faulty; do not use it for issuance")
        })?;
        Ok((self.message, self.signature))
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

    /// ring reads only uncompressed points; a compressed one takes the
    /// RustCrypto path. Both must accept the same signature and refuse a
    /// tampered message.
    #[test]
    fn ecdsa_verifies_with_either_point_form() {
        use p256::ecdsa::signature::Signer as _;
        use p256::elliptic_curve::sec1::ToSec1Point;
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key");
        let sig: p256::ecdsa::DerSignature = key.sign(b"cardca");
        for compress in [false, true] {
            let point = key.verifying_key().as_affine().to_sec1_point(compress);
            let spki = crate::keys::spki_point(KeySpec::Ec(Curve::P256), point.as_bytes()).expect("spki");
            let alg = SigAlg::Ecdsa(Hash::Sha256);
            assert_eq!(ring_algorithm(alg, KeySpec::Ec(Curve::P256), point.as_bytes()).is_some(), !compress);
            verify(&spki, alg, b"cardca", sig.as_bytes()).expect("verifies");
            assert!(verify(&spki, alg, b"cardcA", sig.as_bytes()).is_err());
        }
    }

    /// Combined mechanism first, then the raw one, never one not listed.
    #[test]
    fn mechanism_routes() {
        use MechanismType as M;
        let list = |ms: &[MechanismType]| Mechanisms(ms.to_vec());
        let pss = SigAlg::RsaPss(Hash::Sha256);
        assert_eq!(list(&[M::SHA256_RSA_PKCS_PSS, M::RSA_PKCS_PSS]).route(pss).expect("on"), Route::OnToken);
        assert_eq!(list(&[M::RSA_PKCS_PSS]).route(pss).expect("host"), Route::OnHost);
        let e = list(&[M::RSA_PKCS, M::SHA256_RSA_PKCS]).route(pss).expect_err("no pss");
        assert!(e.to_string().contains("neither CKM_SHA256_RSA_PKCS_PSS nor CKM_RSA_PKCS_PSS"), "{e}");
        let e = list(&[M::ECDSA]).route(SigAlg::Ed25519).expect_err("no eddsa");
        assert!(e.to_string().contains("no CKM_EDDSA: it cannot make Ed25519 signatures"), "{e}");
        let e = list(&[M::RSA_PKCS_KEY_PAIR_GEN]).keygen(KeySpec::Ec(Curve::P256)).expect_err("no ec");
        assert!(e.to_string().contains("no CKM_EC_KEY_PAIR_GEN: it cannot make EC keys"), "{e}");
        assert!(list(&[M::RSA_PKCS_KEY_PAIR_GEN]).keygen(KeySpec::Rsa(2048)).is_ok());
    }

    /// Key sizes in bits, in bytes, or not given at all.
    #[test]
    fn keygen_sizes() {
        let fits = |spec, min, max| Mechanisms::keygen_size(spec, min, max).is_ok();
        // The TPM's module: RSA 1024 to 3072 bits.
        assert!(fits(KeySpec::Rsa(3072), 1024, 3072));
        let e = Mechanisms::keygen_size(KeySpec::Rsa(4096), 1024, 3072).expect_err("too big");
        assert!(e
            .to_string()
            .contains("RSA keys of 1024 to 3072 bits (C_GetMechanismInfo): it cannot make rsa:4096"));
        assert!(!fits(KeySpec::Rsa(2048), 3072, 8192));
        // The same range in bytes.
        assert!(fits(KeySpec::Rsa(3072), 128, 384));
        assert!(!fits(KeySpec::Rsa(4096), 128, 384));
        // EC in field bits, and in bytes (P-521's 66 bytes).
        assert!(fits(KeySpec::Ec(Curve::P384), 256, 521));
        assert!(!fits(KeySpec::Ec(Curve::P521), 256, 384));
        assert!(fits(KeySpec::Ec(Curve::P521), 32, 66));
        assert!(!fits(KeySpec::Ec(Curve::P521), 32, 48));
        // No range given, and Ed25519's sizes, are not checked.
        assert!(fits(KeySpec::Rsa(4096), 0, 0));
        assert!(fits(KeySpec::Rsa(4096), 4096, 1024));
        assert!(fits(KeySpec::Ed25519, 1, 1));
    }

    #[test]
    fn ecdsa_conversion() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80;
        raw[63] = 1;
        let der = ecdsa_raw_to_der(&raw).expect("der");
        assert_eq!(&der[..4], &[0x30, 0x26, 0x02, 0x21]);
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
    }
}
