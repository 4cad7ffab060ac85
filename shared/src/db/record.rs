//! A certificate as the database records it: its index.txt line and its
//! issuer, from the DER, and the check that a given CA issued it.

use der::{Decode, Encode};
use x509_cert::name::Name;

use super::index::{time_text, Entry};
use crate::cert::{self, CaCert, TbsCert};
use crate::error::{Error, Result};
use crate::sign::{self, SigAlg};

/// A DER Name in one-line form, for messages.
pub(super) fn name_text(der: &[u8]) -> String {
    Name::from_der(der)
        .map(|n| crate::names::openssl_oneline(&n))
        .unwrap_or_else(|_| "an unreadable name".into())
}

/// A certificate ready to be recorded.
pub struct Record {
    pub der: Vec<u8>,
    pub entry: Entry,
    /// The DER of the certificate's issuer Name.
    pub issuer: Vec<u8>,
    /// The SHA-256 of its TBSCertificate, in lower-case hex: what
    /// card-sign reserved it by.
    pub tbs_sha256: String,
}

impl Record {
    pub fn from_der(der: Vec<u8>) -> Result<Record> {
        let signed = cert::split_signed(&der, "certificate")?;
        let tbs: TbsCert = cert::decode_exact(signed.tbs, "TBSCertificate")?;
        cert::check_serial(&tbs.serial_number)?;
        let entry = Entry {
            status: 'V',
            expiry: time_text(&tbs.validity.not_after)?,
            revocation: String::new(),
            serial: cert::serial_text(tbs.serial_number.as_bytes()),
            file: "unknown".into(),
            subject: crate::names::openssl_oneline(&tbs.subject),
        };
        let tbs_sha256 = crate::hex::encode(&sign::Hash::Sha256.digest(signed.tbs));
        Ok(Record { issuer: tbs.issuer.to_der()?, der, entry, tbs_sha256 })
    }

    /// Whether `ca` issued this certificate: its issuer is the CA's
    /// subject and its signature verifies with the CA's key.
    pub fn check_issued_by(&self, ca: &CaCert) -> Result<()> {
        let subject = ca.tbs.subject.to_der()?;
        if self.issuer != subject {
            let (issuer, subject) = (name_text(&self.issuer), name_text(&subject));
            // Compared as DER, as the record keeps it: the same text in
            // other string types is another name here.
            let why = if issuer == subject { " (the same text, encoded differently)" } else { "" };
            return Err(Error::new(format!(
                "serial {}: issued by {issuer}, not by {subject}{why}",
                self.entry.serial
            )));
        }
        let signed = cert::split_signed(&self.der, "certificate")?;
        let alg = SigAlg::from_identifier(&signed.algorithm)?;
        sign::verify(&ca.tbs.subject_public_key_info, alg, signed.tbs, &signed.signature).map_err(|e| {
            e.context(format!(
                "serial {}: checked with the key of {}",
                self.entry.serial,
                crate::names::openssl_oneline(&ca.tbs.subject)
            ))
        })
    }
}
