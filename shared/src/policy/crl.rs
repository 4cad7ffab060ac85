//! The rules of a TBSCertList (RFC 5280 section 5), the one CRL gate that
//! card-sign runs on what it is given and tbs-build on what it built.

use der::asn1::ObjectIdentifier;
use x509_cert::crl::TbsCertList;
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber, KeyUsages};

use super::extensions::{criticality, ext_error, strict, unknown_extension};
use super::rules::OID_INVALIDITY_DATE;
use super::{may_sign, who};
use crate::cert::{CaCert, OID_AUTHORITY_KEY_ID, OID_CRL_NUMBER, OID_CRL_REASON};
use crate::error::{Error, Result};

/// Every rule a TBSCertList must pass before a CA key signs it, beyond the
/// DER sanity of [`crate::cert::check_tbs_crl`] (which callers run first):
/// a CA that may sign CRLs, an authorityKeyIdentifier naming its key, and
/// only extensions that can be checked, each well-formed.
pub fn check_crl(tbs: &TbsCertList, ca: &CaCert, allow: &[ObjectIdentifier]) -> Result<()> {
    may_sign(ca, KeyUsages::CRLSign, "CRLs")?;
    let mut aki = None;
    for ext in tbs.crl_extensions.as_deref().unwrap_or(&[]) {
        match ext.extn_id {
            OID_AUTHORITY_KEY_ID => {
                criticality(ext, Some(false))?;
                aki = Some(strict::<AuthorityKeyIdentifier>(ext)?);
            }
            OID_CRL_NUMBER => {
                criticality(ext, Some(false))?;
                let n: CrlNumber = strict(ext)?;
                if n.0.as_bytes().len() > 20 {
                    return Err(ext_error(&ext.extn_id, "longer than 20 octets (RFC 5280 section 5.2.3)"));
                }
            }
            _ => unknown_extension(ext, allow)?,
        }
    }
    match aki.as_ref().and_then(|a| a.key_identifier.as_ref()) {
        Some(id) if id.as_bytes() == ca.key_id.as_slice() => {}
        Some(_) => {
            return Err(ext_error(&OID_AUTHORITY_KEY_ID, format!("does not name the key of {}", who(ca))))
        }
        None => return Err(Error::new("authorityKeyIdentifier (keyIdentifier) is missing from the CRL")),
    }
    for entry in tbs.revoked_certificates.as_deref().unwrap_or(&[]) {
        for ext in entry.crl_entry_extensions.as_deref().unwrap_or(&[]) {
            match ext.extn_id {
                OID_CRL_REASON => {
                    criticality(ext, Some(false))?;
                    let _: CrlReason = strict(ext)?;
                }
                OID_INVALIDITY_DATE => {
                    criticality(ext, Some(false))?;
                    let _: der::asn1::GeneralizedTime = strict(ext)?;
                }
                _ => unknown_extension(ext, allow)?,
            }
        }
    }
    Ok(())
}
