//! `tbs-build --crl`: a TBSCertList from the database's revocations.
//!
//! ```text
//! TBSCertList  ::=  SEQUENCE  {                -- RFC 5280 section 5.1
//!      version                 Version OPTIONAL,   -- v2
//!      signature               AlgorithmIdentifier,
//!      issuer                  Name,
//!      thisUpdate              Time,
//!      nextUpdate              Time OPTIONAL,
//!      revokedCertificates     SEQUENCE OF SEQUENCE  {
//!           userCertificate         CertificateSerialNumber,
//!           revocationDate          Time,
//!           crlEntryExtensions      Extensions OPTIONAL } OPTIONAL,
//!      crlExtensions           [0] Extensions OPTIONAL }
//! ```

use cardca::cert::{self, CaCert};
use cardca::db::{self, CrlEntry};
use cardca::der::asn1::{OctetString, UintRef};
use cardca::der::{Any, Encode, Tag};
use cardca::keys::KeySpec;
use cardca::oid;
use cardca::sign::{Hash, SigAlg};
use cardca::x509_cert::certificate::Version;
use cardca::x509_cert::crl::{RevokedCert, TbsCertList};
use cardca::x509_cert::ext::pkix::{AuthorityKeyIdentifier, KeyUsages};
use cardca::x509_cert::serial_number::SerialNumber;
use cardca::{hex, policy, time, Context, Result};

pub fn build(ca: &CaCert, at: &db::Location, days: u64, hash: Option<Hash>, pss: bool) -> Result<Vec<u8>> {
    // The policy's gate, before the CRL number is taken: a CA that cannot
    // sign CRLs never uses one up.
    policy::may_sign(ca, KeyUsages::CRLSign, "CRLs")?;
    let now = time::now()?;
    let alg = SigAlg::for_key(KeySpec::from_spki(&ca.tbs.subject_public_key_info)?, hash, pss)?;
    // The number and the entries together: a CRL with a higher number
    // never lists less than one before it, whichever host made it.
    let (number, entries) = db::Store::open_of(at, ca, "building the CRL")?.crl(now)?;
    let mut revoked = Vec::new();
    for entry in entries.into_iter().filter(|e| e.status == 'R') {
        let CrlEntry::Listed { time: when, reason } = entry.crl_entry()? else {
            continue;
        };
        let mut exts = Vec::new();
        if let Some(code) = reason {
            // CRLReason ::= ENUMERATED; never unspecified (RFC 5280 5.3.1).
            exts.push(cert::extension(oid::CRL_REASON, false, &Any::new(Tag::Enumerated, [code])?)?);
        }
        // index.txt's serials are two digits an octet (db refuses others).
        let serial = SerialNumber::new(&hex::decode(&entry.serial)?)
            .with_context(|| format!("serial {}", entry.serial))?;
        revoked.push(RevokedCert {
            serial_number: serial,
            revocation_date: db::parse_time_text(when).with_context(|| format!("serial {}", entry.serial))?,
            crl_entry_extensions: (!exts.is_empty()).then_some(exts),
        });
    }
    revoked.sort_by(|a, b| a.serial_number.as_bytes().cmp(b.serial_number.as_bytes()));
    // Taken durably: a number used, even if this CRL is never signed.
    cardca::audit::record(
        cardca::audit::Event::crl_number(&cert::serial_text(&number))
            .field("issuer", cardca::names::openssl_oneline(&ca.tbs.subject)),
    )?;
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(ca.key_id.clone())?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let tbs = TbsCertList {
        version: Version::V2,
        signature: alg.identifier()?,
        issuer: ca.tbs.subject.clone(),
        this_update: time::x509_time(now)?,
        next_update: Some(time::x509_time(now + days * 86400)?),
        // RFC 5280 section 5.1.2.6: absent, not empty, when nothing is revoked.
        revoked_certificates: (!revoked.is_empty()).then_some(revoked),
        crl_extensions: Some(vec![
            cert::extension(oid::AUTHORITY_KEY_ID, false, &aki)?,
            cert::extension(oid::CRL_NUMBER, false, &UintRef::new(&number)?)?,
        ]),
    };
    cert::check_tbs_crl(&tbs)?;
    // What card-sign will check before signing it, checked as built.
    policy::check_crl(&tbs, ca, &[])?;
    Ok(tbs.to_der()?)
}
