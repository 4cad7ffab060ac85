//! Signing on the token and verifying on the host: the one place that
//! knows mechanisms, hashes, DigestInfo, ECDSA encodings and RSA-PSS
//! parameters.
//!
//! Every signature the token makes is verified with the public key before
//! it is returned, so a faulty token (an RSA-CRT fault, a bad firmware)
//! can never put an invalid or key-leaking signature into a certificate.
//!
//! The parts: `alg` (the algorithms as X.509 names them: hashes,
//! AlgorithmIdentifiers, PSS parameters, DigestInfo), `mechanism` (as
//! PKCS#11 names them, and a token's mechanism list), `verify` (host
//! verification). This module owns the signing path: [`Signer`] on a
//! session, [`SignerSpec`] to make one per thread, the ECDSA r||s the
//! token returns made DER, and [`Unverified`], the token's signature until
//! it verifies.

mod alg;
mod mechanism;
mod verify;

use std::sync::Arc;

use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::PkcsPssParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use der::asn1::UintRef;
use der::{Encode, Sequence};
use secrecy::SecretString;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::error::{Context, Error, Result};
use crate::keys::KeySpec;
use mechanism::hashes_on_token;

pub use alg::{Hash, SigAlg};
pub use mechanism::{Mechanisms, Route};
pub use verify::verify;

/// ```text
/// Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }   -- RFC 3279 2.2.3
/// ```
#[derive(Sequence)]
struct EcdsaSig<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// PKCS#11 returns ECDSA signatures as r||s; X.509 wants DER.
fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(Error::new(format!("ECDSA signature of odd length {}", raw.len())));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Ok(EcdsaSig { r: UintRef::new(r)?, s: UintRef::new(s)? }.to_der()?)
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
    fn ecdsa_conversion() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80;
        raw[63] = 1;
        let der = ecdsa_raw_to_der(&raw).expect("der");
        assert_eq!(&der[..4], &[0x30, 0x26, 0x02, 0x21]);
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
    }
}
