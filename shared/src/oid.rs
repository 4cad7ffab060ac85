//! Every object identifier cardca names, in one place. Each is const-oid's
//! database entry (compiled in already: x509-cert enables it), so the
//! numbers are written nowhere in cardca; the few the database lacks are
//! spelled out below with the document that assigns them.

use der::asn1::ObjectIdentifier;
use der::oid::db::{rfc2985, rfc4519, rfc5280, rfc5911, rfc5912, rfc6960, rfc8410};

// Certificate and CRL extensions (RFC 5280 section 4.2, 5.2, 5.3).
pub const SUBJECT_KEY_ID: ObjectIdentifier = rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER;
pub const KEY_USAGE: ObjectIdentifier = rfc5280::ID_CE_KEY_USAGE;
pub const SUBJECT_ALT_NAME: ObjectIdentifier = rfc5280::ID_CE_SUBJECT_ALT_NAME;
pub const BASIC_CONSTRAINTS: ObjectIdentifier = rfc5280::ID_CE_BASIC_CONSTRAINTS;
pub const CRL_NUMBER: ObjectIdentifier = rfc5280::ID_CE_CRL_NUMBER;
pub const CRL_REASON: ObjectIdentifier = rfc5280::ID_CE_CRL_REASONS;
pub const INVALIDITY_DATE: ObjectIdentifier = rfc5280::ID_CE_INVALIDITY_DATE;
pub const NAME_CONSTRAINTS: ObjectIdentifier = rfc5280::ID_CE_NAME_CONSTRAINTS;
pub const CRL_DISTRIBUTION_POINTS: ObjectIdentifier = rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS;
pub const CERTIFICATE_POLICIES: ObjectIdentifier = rfc5280::ID_CE_CERTIFICATE_POLICIES;
pub const AUTHORITY_KEY_ID: ObjectIdentifier = rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER;
pub const EXT_KEY_USAGE: ObjectIdentifier = rfc5280::ID_CE_EXT_KEY_USAGE;
pub const AUTHORITY_INFO_ACCESS: ObjectIdentifier = rfc5280::ID_PE_AUTHORITY_INFO_ACCESS;
/// The TLS feature extension (RFC 7633 section 6: id-pe-tlsfeature), which
/// the fuzz targets allow as a named unknown extension.
pub const TLS_FEATURE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.24");

// Extended key usages and access methods (RFC 5280 section 4.2.1.12, 4.2.2.1).
pub const ANY_EKU: ObjectIdentifier = rfc5280::ANY_EXTENDED_KEY_USAGE;
pub const SERVER_AUTH: ObjectIdentifier = rfc5280::ID_KP_SERVER_AUTH;
pub const CLIENT_AUTH: ObjectIdentifier = rfc5280::ID_KP_CLIENT_AUTH;
pub const CODE_SIGNING: ObjectIdentifier = rfc5280::ID_KP_CODE_SIGNING;
pub const EMAIL_PROTECTION: ObjectIdentifier = rfc5280::ID_KP_EMAIL_PROTECTION;
pub const TIME_STAMPING: ObjectIdentifier = rfc5280::ID_KP_TIME_STAMPING;
pub const OCSP_SIGNING: ObjectIdentifier = rfc5280::ID_KP_OCSP_SIGNING;
pub const AD_OCSP: ObjectIdentifier = rfc5280::ID_AD_OCSP;
pub const AD_CA_ISSUERS: ObjectIdentifier = rfc5280::ID_AD_CA_ISSUERS;

// OCSP (RFC 6960 section 4.2.1, 4.2.2.2.1).
pub const OCSP_BASIC: ObjectIdentifier = rfc6960::ID_PKIX_OCSP_BASIC;
pub const OCSP_NOCHECK: ObjectIdentifier = rfc6960::ID_PKIX_OCSP_NOCHECK;

// Name attributes.
pub const CN: ObjectIdentifier = rfc4519::CN;
pub const EMAIL_ADDRESS: ObjectIdentifier = rfc2985::PKCS_9_AT_EMAIL_ADDRESS;
pub const EXTENSION_REQUEST: ObjectIdentifier = rfc2985::PKCS_9_AT_EXTENSION_REQUEST;

// Keys and curves.
pub const RSA_ENCRYPTION: ObjectIdentifier = rfc5912::RSA_ENCRYPTION;
pub const EC_PUBLIC_KEY: ObjectIdentifier = rfc5912::ID_EC_PUBLIC_KEY;
pub const P256: ObjectIdentifier = rfc5912::SECP_256_R_1;
pub const P384: ObjectIdentifier = rfc5912::SECP_384_R_1;
pub const P521: ObjectIdentifier = rfc5912::SECP_521_R_1;
pub const ED25519: ObjectIdentifier = rfc8410::ID_ED_25519;

// Hashes and signature algorithms.
pub const MD5: ObjectIdentifier = rfc5912::ID_MD_5;
pub const SHA1: ObjectIdentifier = rfc5912::ID_SHA_1;
pub const SHA256: ObjectIdentifier = rfc5912::ID_SHA_256;
pub const SHA384: ObjectIdentifier = rfc5912::ID_SHA_384;
pub const SHA512: ObjectIdentifier = rfc5912::ID_SHA_512;
pub const RSA_SHA1: ObjectIdentifier = rfc5912::SHA_1_WITH_RSA_ENCRYPTION;
pub const RSA_SHA256: ObjectIdentifier = rfc5912::SHA_256_WITH_RSA_ENCRYPTION;
pub const RSA_SHA384: ObjectIdentifier = rfc5912::SHA_384_WITH_RSA_ENCRYPTION;
pub const RSA_SHA512: ObjectIdentifier = rfc5912::SHA_512_WITH_RSA_ENCRYPTION;
pub const RSA_PSS: ObjectIdentifier = rfc5912::ID_RSASSA_PSS;
pub const MGF1: ObjectIdentifier = rfc5912::ID_MGF_1;
pub const ECDSA_SHA256: ObjectIdentifier = rfc5912::ECDSA_WITH_SHA_256;
pub const ECDSA_SHA384: ObjectIdentifier = rfc5912::ECDSA_WITH_SHA_384;
pub const ECDSA_SHA512: ObjectIdentifier = rfc5912::ECDSA_WITH_SHA_512;

// PKCS#7 content types and PKCS#12 bags (RFC 7292 section 4.2, 4.2.3).
pub const PKCS7_DATA: ObjectIdentifier = rfc5911::ID_DATA;
pub const PKCS7_ENCRYPTED: ObjectIdentifier = rfc5911::ID_ENCRYPTED_DATA;
pub const KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
pub const SHROUDED_KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
pub const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
/// certTypes x509Certificate (RFC 7292 section 4.2.3).
pub const X509_CERT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");

#[cfg(test)]
mod tests {
    use super::*;

    /// The database's names are easy to mix up (rfc5280's CRL_REASONS is
    /// the reasonCode extension): pin the numbers once.
    #[test]
    fn numbers() {
        for (oid, text) in [
            (KEY_USAGE, "2.5.29.15"),
            (CRL_REASON, "2.5.29.21"),
            (ANY_EKU, "2.5.29.37.0"),
            (AD_OCSP, "1.3.6.1.5.5.7.48.1"),
            (OCSP_NOCHECK, "1.3.6.1.5.5.7.48.1.5"),
            (EMAIL_ADDRESS, "1.2.840.113549.1.9.1"),
            (EXTENSION_REQUEST, "1.2.840.113549.1.9.14"),
            (P256, "1.2.840.10045.3.1.7"),
            (ED25519, "1.3.101.112"),
            (SHA256, "2.16.840.1.101.3.4.2.1"),
            (RSA_PSS, "1.2.840.113549.1.1.10"),
            (PKCS7_ENCRYPTED, "1.2.840.113549.1.7.6"),
        ] {
            assert_eq!(oid.to_string(), text);
        }
    }
}
