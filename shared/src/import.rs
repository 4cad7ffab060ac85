//! Reading an existing private key for `card-keygen --import`: PKCS#8
//! (plain and encrypted), PKCS#1 RSA, SEC1 EC, PEM or DER, and PKCS#12.
//!
//! Key material lives in zeroizing buffers only, and the file is never
//! copied anywhere: it is read into memory, parsed, sent to the token.

use crate::der::asn1::{ObjectIdentifier, OctetString};
use crate::der::{Decode, Encode};
use crate::io::Reader;
use crate::keys::{self, Curve, KeySpec};
use crate::oid;
use crate::secrecy::{ExposeSecret, SecretString};
use crate::x509_cert::spki::SubjectPublicKeyInfoOwned;
use crate::{Context, Error, Result};
use hmac::{Hmac, KeyInit, Mac};
use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
use zeroize::Zeroizing;

type Secret = Zeroizing<Vec<u8>>;

/// The private key, as the token's C_CreateObject needs it.
pub enum Material {
    Rsa { n: Vec<u8>, e: Vec<u8>, d: Secret, p: Secret, q: Secret, dp: Secret, dq: Secret, qinv: Secret },
    Ec { curve: Curve, scalar: Secret, point: Vec<u8> },
    Ed25519 { seed: Secret, public: Vec<u8> },
}

pub struct Imported {
    pub key: Material,
    /// Certificates that came with the key (PKCS#12), DER.
    pub certs: Vec<Vec<u8>>,
}

impl Material {
    pub fn spec(&self) -> KeySpec {
        match self {
            Material::Rsa { n, .. } => KeySpec::Rsa(keys::bit_len(n)),
            Material::Ec { curve, .. } => KeySpec::Ec(*curve),
            Material::Ed25519 { .. } => KeySpec::Ed25519,
        }
    }

    pub fn spki(&self) -> Result<SubjectPublicKeyInfoOwned> {
        match self {
            Material::Rsa { n, e, .. } => keys::spki_rsa(n, e),
            Material::Ec { point, .. } | Material::Ed25519 { public: point, .. } => {
                keys::spki_point(self.spec(), point)
            }
        }
    }
}

/// The most work a password-protected file may ask of us before its
/// password is even checked. OpenSSL 3 writes 2048 PBKDF2 and PKCS#12 MAC
/// iterations and scrypt with N = 2^14..2^20, r = 8, p = 1; a file asking
/// for more than these bounds would hold the tool for minutes (2^31 - 1
/// PBKDF2 iterations) or exhaust memory (scrypt needs 128 * N * r bytes).
pub const MAX_ITERATIONS: u64 = 10_000_000;
pub const MAX_SCRYPT_MEMORY: u128 = 1 << 30;
pub const MAX_SCRYPT_P: u16 = 16;

/// Refuses key derivations beyond the bounds above, before any is run.
fn check_kdf(scheme: &pkcs5::EncryptionScheme) -> Result<()> {
    use pkcs5::pbes2::Kdf;
    let params = match scheme {
        // PBES1 counts iterations in 16 bits: bounded by its format.
        pkcs5::EncryptionScheme::Pbes1(_) => return Ok(()),
        pkcs5::EncryptionScheme::Pbes2(params) => params,
        _ => return Err(Error::new("unsupported password-based encryption scheme in the key file")),
    };
    match &params.kdf {
        Kdf::Pbkdf2(p) => check_iterations("PBKDF2", i64::from(p.iteration_count)),
        Kdf::Scrypt(p) => {
            let (n, r, par) = (p.cost_parameter, p.block_size, p.parallelization);
            let memory = 128 * u128::from(n) * u128::from(r);
            if memory > MAX_SCRYPT_MEMORY || par > MAX_SCRYPT_P {
                return Err(Error::new(format!(
                    "scrypt with N={n}, r={r}, p={par} asks for more than cardca allows \
                     (128*N*r at most 1 GiB, p at most {MAX_SCRYPT_P})"
                ))
                .hint("re-encrypt the key with OpenSSL's defaults: openssl pkcs8 -topk8 -v2 aes-256-cbc"));
            }
            Ok(())
        }
        _ => Err(Error::new("unsupported key derivation function in the key file")),
    }
}

/// PBKDF2 and PKCS#12 MAC iteration counts: positive and bounded.
fn check_iterations(what: &str, count: i64) -> Result<()> {
    if count < 1 || count as u64 > MAX_ITERATIONS {
        return Err(Error::new(format!(
            "{what} with {count} iterations: cardca accepts 1 to {MAX_ITERATIONS}"
        ))
        .hint("re-encrypt the key with OpenSSL's defaults (openssl pkcs8 -topk8, openssl pkcs12 -export)"));
    }
    Ok(())
}

/// What kind of container the bytes are, told by PEM label or DER shape.
enum Form {
    Pkcs8(Secret),
    EncryptedPkcs8(Vec<u8>),
    Pkcs1(Secret),
    Sec1(Secret),
    Pkcs12(Vec<u8>),
}

fn classify(bytes: &[u8]) -> Result<Form> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    if bytes.get(start) == Some(&b'-') {
        for object in Reader::secret(bytes, bytes.len()) {
            let object = object?;
            let der = Zeroizing::new(object.der);
            return Ok(match object.label.as_deref().unwrap_or("") {
                // openssl ecparam -genkey writes the curve first.
                "EC PARAMETERS" => continue,
                "PRIVATE KEY" => Form::Pkcs8(der),
                "ENCRYPTED PRIVATE KEY" => Form::EncryptedPkcs8(der.to_vec()),
                "RSA PRIVATE KEY" => Form::Pkcs1(der),
                "EC PRIVATE KEY" => Form::Sec1(der),
                "PKCS12" => Form::Pkcs12(der.to_vec()),
                other => {
                    return Err(Error::new(format!(
                        "PEM label {other:?} is not a private key (PRIVATE KEY, ENCRYPTED PRIVATE KEY, \
                         RSA PRIVATE KEY, EC PRIVATE KEY)"
                    )))
                }
            });
        }
        return Err(Error::new("no private key in the PEM input"));
    }
    let mut reader = Reader::secret(bytes, bytes.len());
    let der = Zeroizing::new(reader.next_object()?.ok_or_else(|| Error::new("the key file is empty"))?.der);
    if reader.next_object()?.is_some() {
        return Err(Error::new("trailing data after the key"));
    }
    if pkcs12::pfx::Pfx::from_der(&der).is_ok() {
        return Ok(Form::Pkcs12(der.to_vec()));
    }
    if pkcs8::PrivateKeyInfoRef::from_der(&der).is_ok() {
        return Ok(Form::Pkcs8(der));
    }
    if pkcs8::EncryptedPrivateKeyInfoRef::from_der(&der).is_ok() {
        return Ok(Form::EncryptedPkcs8(der.to_vec()));
    }
    if pkcs1::RsaPrivateKeyRef::from_der(&der).is_ok() {
        return Ok(Form::Pkcs1(der));
    }
    if sec1::EcPrivateKey::from_der(&der).is_ok() {
        return Ok(Form::Sec1(der));
    }
    Err(Error::new("not a private key: neither PKCS#8, PKCS#1, SEC1 nor PKCS#12 DER"))
}

/// Whether reading these bytes will need a password.
pub fn needs_password(bytes: &[u8]) -> Result<bool> {
    Ok(matches!(classify(bytes)?, Form::EncryptedPkcs8(_) | Form::Pkcs12(_)))
}

pub fn parse(bytes: &[u8], password: Option<&SecretString>) -> Result<Imported> {
    let pass = || {
        password
            .map(|p| p.expose_secret())
            .ok_or_else(|| Error::new("the key is encrypted and no password was given"))
    };
    let key_only = |key| Imported { key, certs: Vec::new() };
    let imported = match classify(bytes)? {
        Form::Pkcs8(der) => pkcs8_key(&der).map(key_only),
        Form::EncryptedPkcs8(der) => decrypt_pkcs8(&der, pass()?).map(key_only),
        Form::Pkcs1(der) => rsa_key(&der).map(key_only),
        Form::Sec1(der) => ec_key(&der, None).map(key_only),
        Form::Pkcs12(der) => pkcs12_contents(&der, pass()?),
    }?;
    // A CA key must be one tbs-build would certify: the same rules (RSA
    // size and exponent 65537, a point on the curve) in the same place.
    crate::policy::check_subject_key(&imported.key.spki()?)?;
    Ok(imported)
}

/// The work a file's key derivations ask for, checked without a password:
/// card-keygen asks for the password only after this passed.
pub fn check_limits(bytes: &[u8]) -> Result<()> {
    match classify(bytes)? {
        Form::EncryptedPkcs8(der) => {
            let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&der).context("encrypted PKCS#8")?;
            check_kdf(&info.encryption_algorithm)
        }
        Form::Pkcs12(der) => {
            let pfx = pkcs12::pfx::Pfx::from_der(&der).context("PKCS#12")?;
            match &pfx.mac_data {
                Some(mac) => check_iterations("the PKCS#12 MAC's key derivation", i64::from(mac.iterations)),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn decrypt_pkcs8(der: &[u8], password: &str) -> Result<Material> {
    let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(der).context("encrypted PKCS#8")?;
    check_kdf(&info.encryption_algorithm)?;
    let plain = info.decrypt(password).map_err(|e| {
        Error::new(format!("cannot decrypt the key: wrong password or unsupported cipher ({e})"))
    })?;
    pkcs8_key(plain.as_bytes())
}

fn pkcs8_key(der: &[u8]) -> Result<Material> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der).context("PKCS#8 PrivateKeyInfo")?;
    let oid = info.algorithm.oid;
    let private = info.private_key.as_bytes();
    if oid == oid::RSA_ENCRYPTION {
        return rsa_key(private);
    }
    if oid == oid::EC_PUBLIC_KEY {
        let curve_oid = info
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or_else(|| Error::new("EC key without a named curve"))?;
        return ec_key(private, Some(curve_oid));
    }
    if oid == oid::ED25519 {
        // RFC 8410 section 7: CurvePrivateKey ::= OCTET STRING (the seed).
        let seed = Zeroizing::new(
            OctetString::from_der(private).context("Ed25519 private key")?.as_bytes().to_vec(),
        );
        let seed_array: [u8; 32] =
            seed.as_slice().try_into().map_err(|_| Error::new("Ed25519 private key is not 32 bytes"))?;
        let public = ed25519_dalek::SigningKey::from_bytes(&seed_array).verifying_key().to_bytes().to_vec();
        drop(Zeroizing::new(seed_array));
        return Ok(Material::Ed25519 { seed, public });
    }
    Err(Error::new(format!("unsupported key algorithm {oid}; cardca imports RSA, P-256/384/521 and Ed25519")))
}

fn rsa_key(der: &[u8]) -> Result<Material> {
    let k = pkcs1::RsaPrivateKeyRef::from_der(der).context("PKCS#1 RSAPrivateKey")?;
    if k.other_prime_infos.is_some() {
        return Err(Error::new("multi-prime RSA keys are not supported"));
    }
    // Size and exponent are checked with every other key type, by the
    // policy tbs-build applies to CSRs (see `parse`).
    let secret = |u: crate::der::asn1::UintRef<'_>| Zeroizing::new(u.as_bytes().to_vec());
    Ok(Material::Rsa {
        n: k.modulus.as_bytes().to_vec(),
        e: k.public_exponent.as_bytes().to_vec(),
        d: secret(k.private_exponent),
        p: secret(k.prime1),
        q: secret(k.prime2),
        dp: secret(k.exponent1),
        dq: secret(k.exponent2),
        qinv: secret(k.coefficient),
    })
}

fn ec_key(der: &[u8], curve_oid: Option<ObjectIdentifier>) -> Result<Material> {
    let k = sec1::EcPrivateKey::from_der(der).context("SEC1 ECPrivateKey")?;
    let named = k.parameters.and_then(|p| p.named_curve());
    let oid = curve_oid.or(named).ok_or_else(|| Error::new("EC key without a named curve"))?;
    let curve = Curve::from_oid(&oid).ok_or_else(|| Error::new(format!("unsupported curve {oid}")))?;
    // Left-pad the scalar: SEC1 says it is exactly the field length, but
    // some writers drop leading zeros.
    let len = curve.field_len();
    if k.private_key.len() > len {
        return Err(Error::new("EC private key longer than its curve"));
    }
    let mut scalar = Zeroizing::new(vec![0u8; len - k.private_key.len()]);
    scalar.extend_from_slice(k.private_key);
    let point = public_point(curve, &scalar)?;
    if let Some(given) = k.public_key {
        if given != point.as_slice() {
            return Err(Error::new("the EC key's public key does not belong to its private key"));
        }
    }
    Ok(Material::Ec { curve, scalar, point })
}

/// The uncompressed public point for a scalar, which also proves the scalar
/// is a valid key for the curve.
fn public_point(curve: Curve, scalar: &[u8]) -> Result<Vec<u8>> {
    let bad = |_| Error::new("the EC private key is not a valid scalar for its curve");
    Ok(match curve {
        Curve::P256 => {
            p256::SecretKey::from_slice(scalar).map_err(bad)?.public_key().to_sec1_bytes().to_vec()
        }
        Curve::P384 => {
            p384::SecretKey::from_slice(scalar).map_err(bad)?.public_key().to_sec1_bytes().to_vec()
        }
        Curve::P521 => {
            p521::SecretKey::from_slice(scalar).map_err(bad)?.public_key().to_sec1_bytes().to_vec()
        }
    })
}

/// ```text
/// PFX ::= SEQUENCE {                    -- RFC 7292 section 4
///     version     INTEGER {v3(3)}(v3,...),
///     authSafe    ContentInfo,
///     macData     MacData OPTIONAL
/// }
/// AuthenticatedSafe ::= SEQUENCE OF ContentInfo
///     -- Data if unencrypted, EncryptedData if password-encrypted
/// ```
fn pkcs12_contents(der: &[u8], password: &str) -> Result<Imported> {
    let pfx = pkcs12::pfx::Pfx::from_der(der).context("PKCS#12")?;
    if pfx.auth_safe.content_type != oid::PKCS7_DATA {
        return Err(Error::new("PKCS#12 with public-key integrity mode is not supported"));
    }
    let auth_safe = OctetString::from_der(&pfx.auth_safe.content.to_der()?).context("PKCS#12 authSafe")?;
    let mac = pfx
        .mac_data
        .as_ref()
        .ok_or_else(|| Error::new("PKCS#12 without a MAC: its integrity cannot be checked"))?;
    verify_mac(mac, password, auth_safe.as_bytes())?;
    let contents =
        Vec::<cms::content_info::ContentInfo>::from_der(auth_safe.as_bytes()).context("AuthenticatedSafe")?;
    let mut key = None;
    let mut certs = Vec::new();
    for info in contents {
        let safe_contents: Secret = if info.content_type == oid::PKCS7_DATA {
            Zeroizing::new(OctetString::from_der(&info.content.to_der()?)?.as_bytes().to_vec())
        } else if info.content_type == oid::PKCS7_ENCRYPTED {
            let data = cms::encrypted_data::EncryptedData::from_der(&info.content.to_der()?)
                .context("EncryptedData")?;
            let eci = data.enc_content_info;
            let scheme = pkcs5::EncryptionScheme::from_der(&eci.content_enc_alg.to_der()?).map_err(|_| {
                Error::new(format!(
                    "PKCS#12 encrypted with legacy {}; re-export it with OpenSSL 3's defaults (PBES2, AES)",
                    eci.content_enc_alg.oid
                ))
            })?;
            check_kdf(&scheme)?;
            let cipher = eci.encrypted_content.ok_or_else(|| Error::new("EncryptedData without content"))?;
            Zeroizing::new(
                scheme
                    .decrypt(password, cipher.as_bytes())
                    .map_err(|e| Error::new(format!("decrypting PKCS#12 contents: {e}")))?,
            )
        } else {
            return Err(Error::new(format!(
                "PKCS#12 content of type {} is not supported",
                info.content_type
            )));
        };
        for bag in pkcs12::safe_bag::SafeContents::from_der(&safe_contents).context("SafeContents")? {
            let value = bag_value(&bag)?;
            if bag.bag_id == oid::CERT_BAG {
                let cert_bag = pkcs12::CertBag::from_der(value).context("CertBag")?;
                if cert_bag.cert_id == oid::X509_CERT {
                    certs.push(cert_bag.cert_value.as_bytes().to_vec());
                }
                continue;
            }
            let material = if bag.bag_id == oid::KEY_BAG {
                pkcs8_key(value)?
            } else if bag.bag_id == oid::SHROUDED_KEY_BAG {
                decrypt_pkcs8(value, password)?
            } else {
                continue;
            };
            if key.replace(material).is_some() {
                return Err(Error::new(
                    "the PKCS#12 holds more than one private key; import them one at a time",
                ));
            }
        }
    }
    let key = key.ok_or_else(|| Error::new("the PKCS#12 holds no private key"))?;
    Ok(Imported { key, certs })
}

/// The bag inside `bagValue [0] EXPLICIT`: the pkcs12 crate hands over the
/// whole tagged TLV.
fn bag_value(bag: &pkcs12::SafeBag) -> Result<&[u8]> {
    let tagged = crate::der::AnyRef::from_der(&bag.bag_value).context("SafeBag")?;
    let explicit_zero =
        crate::der::Tag::ContextSpecific { constructed: true, number: crate::der::TagNumber(0) };
    if crate::der::Tagged::tag(&tagged) != explicit_zero {
        return Err(Error::new("SafeBag value is not [0] EXPLICIT"));
    }
    Ok(tagged.value())
}

/// RFC 7292 appendix B: the MAC key comes from the password through the
/// PKCS#12 KDF with the MAC's own hash. A mismatch means a wrong password
/// (or a corrupted file); either way nothing is imported.
fn verify_mac(mac: &pkcs12::MacData, password: &str, data: &[u8]) -> Result<()> {
    check_iterations("the PKCS#12 MAC's key derivation", i64::from(mac.iterations))?;
    let salt = mac.mac_salt.as_bytes();
    let rounds = mac.iterations;
    let alg = mac.mac.algorithm.oid;
    let expected = mac.mac.digest.as_bytes();
    macro_rules! check {
        ($hash:ty, $len:expr) => {{
            let key = Zeroizing::new(
                derive_key_utf8::<$hash>(password, salt, Pkcs12KeyType::Mac, rounds, $len)
                    .map_err(|e| Error::new(format!("PKCS#12 password: {e}")))?,
            );
            let mut m = <Hmac<$hash> as KeyInit>::new_from_slice(&key).map_err(|_| Error::new("HMAC key"))?;
            m.update(data);
            m.verify_slice(expected).is_ok()
        }};
    }
    let ok = if alg == oid::SHA256 {
        check!(sha2::Sha256, 32)
    } else if alg == oid::SHA384 {
        check!(sha2::Sha384, 48)
    } else if alg == oid::SHA512 {
        check!(sha2::Sha512, 64)
    } else if alg == oid::SHA1 {
        check!(sha1::Sha1, 20)
    } else {
        return Err(Error::new(format!("PKCS#12 MAC with unsupported hash {alg}")));
    };
    if !ok {
        return Err(Error::new("wrong PKCS#12 password (the MAC does not verify)"));
    }
    Ok(())
}
