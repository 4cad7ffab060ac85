//! `tbs-build --ocsp`: one ResponseData per certificate of the database,
//! for card-sign to sign as a pre-signed OCSP response (RFC 5019's
//! lightweight profile; the ASN.1 is quoted in `cardca::ocsp`).
//!
//! What it answers, from index.txt: `R` lines are revoked (with the time
//! and reason code a CRL would list; a hold lifted with removeFromCRL is
//! good again), `V` and `E` lines good. A serial that is not in the
//! database is refused, never answered "good" (RFC 6960 section 2.2 would
//! allow "unknown"; a pre-signed file for a certificate that does not
//! exist has no use). Expired certificates: RFC 6960 allows answering for
//! them, so a serial named with `--serial` is answered whatever its
//! expiry (a revoked one stays revoked); without `--serial`, expired
//! certificates are left out, since no server staples a response for a
//! certificate it can no longer present.

use cardca::cert::CaCert;
use cardca::db::{self, Entry};
use cardca::der::asn1::OctetString;
use cardca::der::Encode;
use cardca::ocsp::{self, IdHash, ResponderId, ResponseData, SingleResponse};
use cardca::x509_cert::serial_number::SerialNumber;
use cardca::{hex, policy, time, Context, Error, Result};

/// Every block, built and checked before the first is written, so a bad
/// serial leaves stdout empty.
pub fn build(
    ca: &CaCert,
    at: &db::Location,
    serials: &[String],
    responder: Option<&CaCert>,
    days: u64,
) -> Result<Vec<Vec<u8>>> {
    policy::may_answer(ca)?;
    let mut db = db::Store::open_of(at, ca, "building OCSP responses")?;
    let checked = responder.map(|r| policy::check_ocsp_responder(r, ca)).transpose()?;
    let entries = db.entries()?;
    let now = time::now()?;
    let chosen: Vec<&Entry> = if serials.is_empty() {
        entries
            .iter()
            .filter(|e| db::parse_time_text(&e.expiry).map(|t| time::seconds(&t) >= now).unwrap_or(true))
            .collect()
    } else {
        let mut chosen = Vec::new();
        for serial in serials {
            let entry = entries.iter().find(|e| &e.serial == serial).ok_or_else(|| {
                Error::new(format!(
                    "serial {serial} is not in {}: no response for a certificate this CA did not record \
                     (it would not be \"good\")",
                    db.index_place()
                ))
            })?;
            chosen.push(entry);
        }
        chosen
    };
    let signer = responder.unwrap_or(ca);
    let responder_id = ResponderId::ByKey(OctetString::new(ocsp::key_hash(
        &signer.tbs.subject_public_key_info,
        IdHash::Sha1,
    ))?);
    let mut out = Vec::new();
    for entry in chosen {
        let rd = response(ca, entry, &responder_id, now, days)
            .with_context(|| format!("serial {}", entry.serial))?;
        policy::check_ocsp(&rd, ca, checked, &[], now).with_context(|| format!("serial {}", entry.serial))?;
        out.push(rd.to_der()?);
    }
    Ok(out)
}

fn response(
    ca: &CaCert,
    entry: &Entry,
    responder_id: &ResponderId,
    now: u64,
    days: u64,
) -> Result<ResponseData> {
    // index.txt's serials are two digits an octet (db refuses others).
    let mut bytes = hex::decode(&entry.serial)?;
    // index.txt holds the value; DER wants a sign octet before a high bit.
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    let status = entry.cert_status()?;
    Ok(ResponseData {
        version: None,
        responder_id: responder_id.clone(),
        produced_at: ocsp::generalized(now)?,
        responses: vec![SingleResponse {
            cert_id: ocsp::cert_id(ca, SerialNumber::new(&bytes)?)?,
            cert_status: status,
            this_update: ocsp::generalized(now)?,
            // Both ends count (BRs 4.9.10): N days end a second early.
            next_update: Some(ocsp::generalized(now + days * 86400 - 1)?),
            single_extensions: None,
        }],
        response_extensions: None,
    })
}
