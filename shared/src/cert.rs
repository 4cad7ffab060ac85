//! Signed objects (certificates, CRLs, CSRs) taken apart and put together,
//! and the sanity checks every TBSCertificate must pass before it is signed.
//!
//! ```text
//! Certificate  ::= SEQUENCE {              -- RFC 5280 section 4.1
//!     tbsCertificate       TBSCertificate,
//!     signatureAlgorithm   AlgorithmIdentifier,
//!     signatureValue       BIT STRING }
//! ```
//! CertificateList (section 5.1) and CertificationRequest (RFC 2986) share
//! this shape, so one splitter serves all three. Signatures are always
//! checked over the bytes as received, never over a re-encoding.

use std::collections::HashSet;

use der::asn1::{BitString, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Header, Reader, Sequence, SliceReader, Tag};
use x509_cert::certificate::Version;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, NameConstraints};
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::Validity;

use crate::error::{Context, Error, Result};
use crate::keys;
use crate::oid;
use crate::sign::SigAlg;

/// TBSCertificate with public fields, for building and for checking: the
/// same ASN.1 as x509-cert's, whose fields are private.
#[derive(Clone, Debug, Sequence)]
pub struct TbsCert {
    #[asn1(context_specific = "0", default = "Default::default")]
    pub version: Version,
    pub serial_number: SerialNumber,
    pub signature: AlgorithmIdentifierOwned,
    pub issuer: Name,
    pub validity: Validity,
    pub subject: Name,
    pub subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub issuer_unique_id: Option<BitString>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    pub subject_unique_id: Option<BitString>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub extensions: Option<Extensions>,
}

impl TbsCert {
    pub fn extension(&self, oid: ObjectIdentifier) -> Option<&Extension> {
        find(self.extensions.as_deref().unwrap_or(&[]), oid)
    }
}

pub fn find(exts: &[Extension], oid: ObjectIdentifier) -> Option<&Extension> {
    exts.iter().find(|e| e.extn_id == oid)
}

/// An extension from a value.
pub fn extension(oid: ObjectIdentifier, critical: bool, value: &impl Encode) -> Result<Extension> {
    Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
}

/// Decodes DER and insists it re-encodes to the same bytes: the der crate
/// sorts SET OF, drops explicit DEFAULT values and accepts some non-DER
/// forms while decoding, and what we sign or verify must be exactly what
/// came in.
pub fn decode_exact<'a, T: Decode<'a> + Encode>(der: &'a [u8], what: &str) -> Result<T>
where
    Error: From<<T as Decode<'a>>::Error>,
{
    let value = T::from_der(der).map_err(|e| Error::from(e).context(format!("malformed {what}")))?;
    if value.to_der()? != der {
        return Err(Error::new(format!(
            "{what} is not in canonical DER (it does not re-encode to the same bytes: \
             unsorted SET OF, an explicit DEFAULT value or a non-minimal encoding)"
        )));
    }
    Ok(value)
}

/// The three parts of a signed object; `tbs` is the raw first element.
pub struct Signed<'a> {
    pub tbs: &'a [u8],
    pub algorithm: AlgorithmIdentifierOwned,
    pub signature: Vec<u8>,
}

pub fn split_signed<'a>(der: &'a [u8], what: &str) -> Result<Signed<'a>> {
    let inner = || -> der::Result<Signed<'a>> {
        let mut reader = SliceReader::new(der)?;
        let header = Header::decode(&mut reader)?;
        header.tag().assert_eq(Tag::Sequence)?;
        let tbs = reader.tlv_bytes()?;
        let algorithm = AlgorithmIdentifierOwned::decode(&mut reader)?;
        let bits = BitString::decode(&mut reader)?;
        reader.finish()?;
        let signature = bits.as_bytes().ok_or(der::Tag::BitString.value_error())?.to_vec();
        Ok(Signed { tbs, algorithm, signature })
    };
    inner().map_err(|e| Error::from(e).context(format!("malformed {what}")))
}

/// `SEQUENCE { tbs, algorithm, BIT STRING signature }` around raw TBS bytes.
pub fn assemble(tbs: &[u8], algorithm: &AlgorithmIdentifierOwned, signature: &[u8]) -> Result<Vec<u8>> {
    let alg = algorithm.to_der()?;
    let sig = BitString::from_bytes(signature)?.to_der()?;
    let len = der::Length::try_from(tbs.len() + alg.len() + sig.len())?;
    let mut out = Header::new(Tag::Sequence, len).to_der()?;
    out.extend_from_slice(tbs);
    out.extend_from_slice(&alg);
    out.extend_from_slice(&sig);
    Ok(out)
}

/// A serial as text, the way index.txt, the OCSP directory's file names
/// and the audit log write it: the integer's value in upper-case hex, an
/// even number of digits, no sign octet.
pub fn serial_text(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len().saturating_sub(1));
    crate::hex::encode_upper(&bytes[start..])
}

/// RFC 5280 section 4.1.2.2: a positive integer of at most 20 octets, and
/// never zero (section 4.1.2.2 forbids non-positive serials).
pub fn check_serial(serial: &SerialNumber) -> Result<()> {
    let bytes = serial.as_bytes();
    if bytes.len() > 20 {
        return Err(Error::new(format!(
            "serial number of {} octets: RFC 5280 allows at most 20",
            bytes.len()
        )));
    }
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(Error::new("negative serial number"));
    }
    if bytes.iter().all(|&b| b == 0) {
        return Err(Error::new("serial number 0"));
    }
    Ok(())
}

/// Each extension at most once (RFC 5280 section 4.2).
pub fn check_unique(exts: &[Extension]) -> Result<()> {
    let mut seen = HashSet::new();
    for e in exts {
        if !seen.insert(e.extn_id) {
            return Err(Error::new(format!("extension {} appears twice", e.extn_id)));
        }
    }
    Ok(())
}

/// The checks a TBSCertificate must pass before anyone signs it: what
/// tbs-build guarantees, and what card-sign re-checks on its input.
pub fn check_tbs(tbs: &TbsCert) -> Result<SigAlg> {
    if tbs.version != Version::V3 {
        return Err(Error::new("not a version 3 certificate"));
    }
    check_serial(&tbs.serial_number)?;
    for t in [&tbs.validity.not_before, &tbs.validity.not_after] {
        crate::time::check_encoding(t)?;
    }
    if crate::time::seconds(&tbs.validity.not_before) >= crate::time::seconds(&tbs.validity.not_after) {
        return Err(Error::new("notBefore is not before notAfter"));
    }
    if tbs.issuer.is_empty() {
        return Err(Error::new("empty issuer name"));
    }
    if tbs.issuer_unique_id.is_some() || tbs.subject_unique_id.is_some() {
        return Err(Error::new("unique identifiers are not allowed (RFC 5280 section 4.1.2.8)"));
    }
    check_unique(tbs.extensions.as_deref().unwrap_or(&[]))?;
    SigAlg::from_identifier(&tbs.signature)
}

/// The checks a TBSCertList must pass before it is signed.
pub fn check_tbs_crl(tbs: &x509_cert::crl::TbsCertList) -> Result<SigAlg> {
    if tbs.version != Version::V2 {
        return Err(Error::new("not a version 2 CRL"));
    }
    for t in [Some(&tbs.this_update), tbs.next_update.as_ref()].into_iter().flatten() {
        crate::time::check_encoding(t)?;
    }
    let next =
        tbs.next_update.as_ref().ok_or_else(|| Error::new("no nextUpdate (RFC 5280 section 5.1.2.5)"))?;
    if crate::time::seconds(&tbs.this_update) >= crate::time::seconds(next) {
        return Err(Error::new("thisUpdate is not before nextUpdate"));
    }
    check_unique(tbs.crl_extensions.as_deref().unwrap_or(&[]))?;
    if let Some(list) = &tbs.revoked_certificates {
        if list.is_empty() {
            return Err(Error::new(
                "an empty revokedCertificates list must be left out (RFC 5280 section 5.1.2.6)",
            ));
        }
        for entry in list {
            check_serial(&entry.serial_number)?;
            check_unique(entry.crl_entry_extensions.as_deref().unwrap_or(&[]))?;
        }
    }
    SigAlg::from_identifier(&tbs.signature)
}

/// What tbs-build and card-sign need to know about an issuing CA.
pub struct CaCert {
    pub der: Vec<u8>,
    pub tbs: TbsCert,
    pub key_id: Vec<u8>,
    pub basic: Option<BasicConstraints>,
    pub key_usage: Option<KeyUsage>,
    pub eku: Option<ExtendedKeyUsage>,
    pub name_constraints: Option<NameConstraints>,
}

impl CaCert {
    /// Reads the first certificate of a PEM or DER file.
    pub fn read(path: impl AsRef<std::path::Path>) -> Result<CaCert> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut reader = crate::io::Reader::new(std::io::BufReader::new(file));
        let reading = || format!("reading {}", path.display());
        let object = reader
            .next_object()
            .with_context(reading)?
            .ok_or_else(|| Error::new(format!("{} holds no certificate", path.display())))?;
        object.expect_label(&["CERTIFICATE"]).with_context(reading)?;
        CaCert::parse(object.der).with_context(reading)
    }

    /// Every certificate of a PEM or DER file: the CAs above an issuer.
    pub fn read_all(path: impl AsRef<std::path::Path>) -> Result<Vec<CaCert>> {
        let path = path.as_ref();
        crate::io::read_file(path, &["CERTIFICATE"])?
            .into_iter()
            .map(|o| CaCert::parse(o.der).with_context(|| format!("reading {}", path.display())))
            .collect()
    }

    /// The CAs above `self` from `candidates`, issuer first, up to a
    /// self-signed root or the last one that links: a `--chain` file in
    /// any order. A certificate that is not on the path is an error, so a
    /// wrong file is not silently ignored.
    pub fn path_above(&self, mut candidates: Vec<CaCert>) -> Result<Vec<CaCert>> {
        let mut path: Vec<CaCert> = Vec::new();
        loop {
            let last = path.last().unwrap_or(self);
            if last.tbs.issuer == last.tbs.subject {
                break;
            }
            let Some(i) = candidates.iter().position(|c| c.tbs.subject == last.tbs.issuer) else { break };
            path.push(candidates.swap_remove(i));
        }
        if let Some(stray) = candidates.first() {
            return Err(Error::new(format!(
                "--chain: {} is not on the path above {}",
                stray.subject_text(),
                self.subject_text()
            )));
        }
        Ok(path)
    }

    pub fn parse(der: Vec<u8>) -> Result<CaCert> {
        let signed = split_signed(&der, "certificate")?;
        let tbs: TbsCert = decode_exact(signed.tbs, "TBSCertificate")?;
        CaCert::from_tbs(der, tbs)
    }

    /// The issuer view of a TBSCertificate (for a self-signed root, its own).
    pub fn from_tbs(der: Vec<u8>, tbs: TbsCert) -> Result<CaCert> {
        let exts = tbs.extensions.clone().unwrap_or_default();
        let get = |oid| find(&exts, oid).map(|e| e.extn_value.as_bytes().to_vec());
        let key_id = match get(oid::SUBJECT_KEY_ID) {
            Some(v) => OctetString::from_der(&v).context("subjectKeyIdentifier")?.as_bytes().to_vec(),
            None => keys::key_id(&tbs.subject_public_key_info),
        };
        let basic = get(oid::BASIC_CONSTRAINTS)
            .map(|v| BasicConstraints::from_der(&v))
            .transpose()
            .context("basicConstraints")?;
        let key_usage =
            get(oid::KEY_USAGE).map(|v| KeyUsage::from_der(&v)).transpose().context("keyUsage")?;
        let eku = get(oid::EXT_KEY_USAGE)
            .map(|v| ExtendedKeyUsage::from_der(&v))
            .transpose()
            .context("extKeyUsage")?;
        let name_constraints = get(oid::NAME_CONSTRAINTS)
            .map(|v| NameConstraints::from_der(&v))
            .transpose()
            .context("nameConstraints")?;
        Ok(CaCert { der, tbs, key_id, basic, key_usage, eku, name_constraints })
    }

    pub fn subject_text(&self) -> String {
        crate::names::openssl_oneline(&self.tbs.subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials() {
        assert_eq!(serial_text(&[0x00, 0x80]), "80");
        assert_eq!(serial_text(&[0x01, 0xab]), "01AB");
        assert!(check_serial(&SerialNumber::new(&[0x01]).expect("s")).is_ok());
        assert!(check_serial(&SerialNumber::new(&[0x7f; 20]).expect("s")).is_ok());
        assert!(check_serial(&SerialNumber::new(&[0x00]).expect("s")).is_err());
    }

    #[test]
    fn split_and_assemble() {
        let alg = SigAlg::Ed25519.identifier().expect("alg");
        let tbs = [0x30, 0x00];
        let der = assemble(&tbs, &alg, &[1, 2, 3]).expect("assemble");
        let s = split_signed(&der, "test").expect("split");
        assert_eq!(s.tbs, tbs);
        assert_eq!(s.algorithm, alg);
        assert_eq!(s.signature, [1, 2, 3]);
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(split_signed(&trailing, "test").is_err());
    }
}
