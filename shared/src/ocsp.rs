//! OCSP responses (RFC 6960) in RFC 5019's lightweight profile: the few
//! ASN.1 types a pre-signed response needs, built by tbs-build, wrapped
//! and signed by card-sign, checked and filed by cert-store. This module
//! only builds and takes apart; every trust rule (who may sign for whom,
//! what a response may say, a signed response as a relying party checks
//! it) is in `policy::ocsp`.
//!
//! ```text
//! OCSPResponse ::= SEQUENCE {                        -- RFC 6960 4.2.1
//!    responseStatus         OCSPResponseStatus,
//!    responseBytes          [0] EXPLICIT ResponseBytes OPTIONAL }
//! ResponseBytes ::= SEQUENCE {
//!    responseType   OBJECT IDENTIFIER,             -- id-pkix-ocsp-basic
//!    response       OCTET STRING }                 -- BasicOCSPResponse
//! BasicOCSPResponse ::= SEQUENCE {
//!    tbsResponseData      ResponseData,
//!    signatureAlgorithm   AlgorithmIdentifier,
//!    signature            BIT STRING,
//!    certs            [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//! ResponseData ::= SEQUENCE {
//!    version              [0] EXPLICIT Version DEFAULT v1,
//!    responderID              ResponderID,
//!    producedAt               GeneralizedTime,
//!    responses                SEQUENCE OF SingleResponse,
//!    responseExtensions   [1] EXPLICIT Extensions OPTIONAL }
//! ResponderID ::= CHOICE {
//!    byName   [1] Name,
//!    byKey    [2] KeyHash }     -- SHA-1 of the responder's public key
//!                               -- BIT STRING value
//! SingleResponse ::= SEQUENCE {
//!    certID                       CertID,
//!    certStatus                   CertStatus,
//!    thisUpdate                   GeneralizedTime,
//!    nextUpdate         [0]       EXPLICIT GeneralizedTime OPTIONAL,
//!    singleExtensions   [1]       EXPLICIT Extensions OPTIONAL }
//! CertStatus ::= CHOICE {
//!    good        [0]     IMPLICIT NULL,
//!    revoked     [1]     IMPLICIT RevokedInfo,
//!    unknown     [2]     IMPLICIT UnknownInfo }
//! RevokedInfo ::= SEQUENCE {
//!    revocationTime              GeneralizedTime,
//!    revocationReason    [0]     EXPLICIT CRLReason OPTIONAL }
//! CertID ::= SEQUENCE {
//!    hashAlgorithm       AlgorithmIdentifier,
//!    issuerNameHash      OCTET STRING, -- Hash of issuer's DN
//!    issuerKeyHash       OCTET STRING, -- Hash of issuer's public key
//!    serialNumber        CertificateSerialNumber }
//! ```
//! The OCSP module is EXPLICIT-tagged by default, so ResponderID's tags
//! are explicit.

use der::asn1::{Any, BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Choice, Decode, Encode, Enumerated, Sequence, Tagged};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::Extensions;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::cert::CaCert;
use crate::error::{Error, Result};
use crate::oid;

/// The PEM label of tbs-build's output and card-sign's input.
pub const TBS_LABEL: &str = "TBS OCSP RESPONSE";
/// The PEM label of card-sign's output (DER is what servers read).
pub const LABEL: &str = "OCSP RESPONSE";

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertId {
    pub hash_algorithm: AlgorithmIdentifierOwned,
    pub issuer_name_hash: OctetString,
    pub issuer_key_hash: OctetString,
    pub serial_number: SerialNumber,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RevokedInfo {
    pub revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub revocation_reason: Option<CrlReason>,
}

#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum CertStatus {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    /// UnknownInfo ::= NULL
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

impl CertStatus {
    /// RFC 6960's name for the status, as the audit log records it.
    pub fn name(&self) -> &'static str {
        match self {
            CertStatus::Good(_) => "good",
            CertStatus::Revoked(_) => "revoked",
            CertStatus::Unknown(_) => "unknown",
        }
    }
}

#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum ResponderId {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SingleResponse {
    pub cert_id: CertId,
    pub cert_status: CertStatus,
    pub this_update: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub single_extensions: Option<Extensions>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseData {
    /// Only v1 exists, and DER leaves a DEFAULT value out: Some is refused.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub version: Option<u8>,
    pub responder_id: ResponderId,
    pub produced_at: GeneralizedTime,
    pub responses: Vec<SingleResponse>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub response_extensions: Option<Extensions>,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct BasicOcspResponse {
    pub tbs_response_data: ResponseData,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitString,
    /// Kept as received: the responder certificate is checked, not rebuilt.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub certs: Option<Vec<Any>>,
}

#[derive(Clone, Copy, Debug, Eq, PartialEq, Enumerated)]
#[repr(u32)]
pub enum ResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseBytes {
    pub response_type: ObjectIdentifier,
    pub response: OctetString,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspResponse {
    pub response_status: ResponseStatus,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub response_bytes: Option<ResponseBytes>,
}

/// The CertID hash algorithms card-sign accepts: SHA-1, which RFC 5019
/// section 2.1.1 makes the one every client sends (and tbs-build writes),
/// and SHA-256, which RFC 6960 clients may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdHash {
    Sha1,
    Sha256,
}

impl IdHash {
    /// The hash of a CertID's AlgorithmIdentifier: parameters NULL or
    /// absent (both are seen in the wild for SHA-1).
    pub fn from_identifier(alg: &AlgorithmIdentifierOwned) -> Result<IdHash> {
        let hash = match alg.oid {
            oid::SHA1 => IdHash::Sha1,
            oid::SHA256 => IdHash::Sha256,
            other => {
                return Err(Error::new(format!(
                    "CertID hash algorithm {other} (SHA-1 or SHA-256 expected, RFC 5019 section 2.1.1)"
                )))
            }
        };
        match &alg.parameters {
            None => {}
            Some(p) if p.tag() == der::Tag::Null && p.value().is_empty() => {}
            Some(_) => {
                return Err(Error::new("CertID hash algorithm parameters are neither NULL nor absent"))
            }
        }
        Ok(hash)
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            IdHash::Sha1 => Sha1::digest(data).to_vec(),
            IdHash::Sha256 => Sha256::digest(data).to_vec(),
        }
    }
}

/// The responderID byKey and CertID's issuerKeyHash: SHA-1 of the public
/// key's BIT STRING value (RFC 6960 4.1.1 and 4.2.1), whatever the
/// certificate's subjectKeyIdentifier says.
pub fn key_hash(spki: &SubjectPublicKeyInfoOwned, hash: IdHash) -> Vec<u8> {
    hash.digest(spki.subject_public_key.raw_bytes())
}

/// The CertID of `serial` under `ca`, with SHA-1 as RFC 5019 requires.
pub fn cert_id(ca: &CaCert, serial: SerialNumber) -> Result<CertId> {
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned { oid: oid::SHA1, parameters: Some(Any::from(Null)) },
        issuer_name_hash: OctetString::new(IdHash::Sha1.digest(&ca.tbs.subject.to_der()?))?,
        issuer_key_hash: OctetString::new(key_hash(&ca.tbs.subject_public_key_info, IdHash::Sha1))?,
        serial_number: serial,
    })
}

/// Seconds since the epoch as a GeneralizedTime (OCSP has no UTCTime).
pub fn generalized(secs: u64) -> Result<GeneralizedTime> {
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|e| Error::new(format!("time out of range: {e}")))
}

pub fn seconds(t: &GeneralizedTime) -> u64 {
    t.to_unix_duration().as_secs()
}

/// Whether DER without a PEM label is a ResponseData rather than a
/// TBSCertificate or TBSCertList: its first element is a responderID
/// ([1] or [2]), where theirs is a [0] version, an INTEGER or a SEQUENCE.
/// (An explicit [0] version, which DER never has, is refused later as a
/// malformed TBSCertificate.)
pub fn looks_like_response_data(der: &[u8]) -> bool {
    let mut reader = match der::SliceReader::new(der) {
        Ok(r) => r,
        Err(_) => return false,
    };
    use der::Reader;
    match der::Header::decode(&mut reader) {
        Ok(h) if h.tag() == der::Tag::Sequence => matches!(reader.peek_byte(), Some(0xa1 | 0xa2)),
        _ => false,
    }
}

/// The one SingleResponse of a pre-signed response.
pub fn single(rd: &ResponseData) -> Result<&SingleResponse> {
    match rd.responses.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::new("no SingleResponse")),
        more => Err(Error::new(format!(
            "{} SingleResponses: a pre-signed response answers for one certificate (one file per serial)",
            more.len()
        ))),
    }
}

/// A signed ResponseData wrapped as a successful OCSPResponse: the
/// BasicOCSPResponse with the responder's certificate when it is not the
/// CA itself (RFC 6960 4.2.2.2).
pub fn assemble(
    tbs: &ResponseData,
    algorithm: &AlgorithmIdentifierOwned,
    signature: &[u8],
    responder_cert: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let certs = responder_cert.map(|der| Any::from_der(der).map(|a| vec![a])).transpose()?;
    let basic = BasicOcspResponse {
        tbs_response_data: tbs.clone(),
        signature_algorithm: algorithm.clone(),
        signature: BitString::from_bytes(signature)?,
        certs,
    };
    let response = OcspResponse {
        response_status: ResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: oid::OCSP_BASIC,
            response: OctetString::new(basic.to_der()?)?,
        }),
    };
    Ok(response.to_der()?)
}

/// The one SingleResponse of a pre-signed response as it is served (an
/// OCSPResponse file): decoded only, neither its CA nor its signature
/// checked.
pub fn served_single(der: &[u8]) -> Result<SingleResponse> {
    let response =
        OcspResponse::from_der(der).map_err(|e| Error::new(format!("not an OCSP response: {e}")))?;
    let bytes = response.response_bytes.ok_or_else(|| Error::new("a response without responseBytes"))?;
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| Error::new(format!("not a BasicOCSPResponse: {e}")))?;
    single(&basic.tbs_response_data).cloned()
}

/// Of a response already being served: its thisUpdate, when its CertID
/// names `ca`; an error when it names another CA or is no response. Only
/// decoded, not checked: an expired or badly signed one is still what a
/// server is reading, and a newer one may replace it.
pub fn served_this_update(der: &[u8], ca: &CaCert) -> Result<u64> {
    let one = served_single(der)?;
    let id = &one.cert_id;
    let hash = IdHash::from_identifier(&id.hash_algorithm)?;
    if id.issuer_name_hash.as_bytes() != hash.digest(&ca.tbs.subject.to_der()?)
        || id.issuer_key_hash.as_bytes() != key_hash(&ca.tbs.subject_public_key_info, hash)
    {
        return Err(Error::new(format!("it answers for another CA than {}", ca.subject_text())));
    }
    Ok(seconds(&one.this_update))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_tags() {
        // good [0] IMPLICIT NULL is 80 00; revoked [1] is constructed.
        assert_eq!(CertStatus::Good(Null).to_der().expect("good"), [0x80, 0x00]);
        let revoked = CertStatus::Revoked(RevokedInfo {
            revocation_time: generalized(0).expect("t"),
            revocation_reason: Some(CrlReason::KeyCompromise),
        });
        let der = revoked.to_der().expect("revoked");
        assert_eq!(der[0], 0xa1);
        assert_eq!(CertStatus::from_der(&der).expect("round trip"), revoked);
        let by_key = ResponderId::ByKey(OctetString::new([1u8; 20]).expect("o"));
        assert_eq!(by_key.to_der().expect("key")[..4], [0xa2, 22, 0x04, 20]);
    }

    #[test]
    fn hash_parameters() {
        let null = AlgorithmIdentifierOwned { oid: oid::SHA1, parameters: Some(Any::from(Null)) };
        assert_eq!(IdHash::from_identifier(&null).expect("null"), IdHash::Sha1);
        let absent = AlgorithmIdentifierOwned { oid: oid::SHA256, parameters: None };
        assert_eq!(IdHash::from_identifier(&absent).expect("absent"), IdHash::Sha256);
        let md5 = AlgorithmIdentifierOwned { oid: oid::MD5, parameters: None };
        assert!(IdHash::from_identifier(&md5).is_err());
    }
}
