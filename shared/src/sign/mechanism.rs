//! The mechanism map: which PKCS#11 mechanisms make each [`SigAlg`]
//! (the combined one that hashes on the token, the raw one that signs a
//! hash made on the host) and each `Hash`'s mechanism and MGF for the
//! PSS parameters; and [`Mechanisms`], a token's mechanism list, which
//! decides the [`Route`] and whether the token makes a kind and size of
//! key.

use cryptoki::mechanism::rsa::PkcsMgfType;
use cryptoki::mechanism::{Mechanism, MechanismType};

use super::alg::{Hash, SigAlg};
use crate::error::{Context, Error, Result};
use crate::keys::KeySpec;

impl Hash {
    pub(super) fn mechanism(self) -> MechanismType {
        match self {
            Hash::Sha256 => MechanismType::SHA256,
            Hash::Sha384 => MechanismType::SHA384,
            Hash::Sha512 => MechanismType::SHA512,
        }
    }

    pub(super) fn mgf(self) -> PkcsMgfType {
        match self {
            Hash::Sha256 => PkcsMgfType::MGF1_SHA256,
            Hash::Sha384 => PkcsMgfType::MGF1_SHA384,
            Hash::Sha512 => PkcsMgfType::MGF1_SHA512,
        }
    }
}

impl SigAlg {
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
}

/// Mechanisms that hash on the token: they take their data in parts.
pub(super) fn hashes_on_token(m: &Mechanism) -> bool {
    !matches!(m, Mechanism::RsaPkcs | Mechanism::RsaPkcsPss(_) | Mechanism::Ecdsa | Mechanism::Eddsa(_))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Curve;

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
}
