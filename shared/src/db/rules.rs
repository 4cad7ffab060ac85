//! The record's rules, the same whichever backend keeps it (index.txt or
//! PostgreSQL): what a batch of certificates may be recorded, and what
//! card-sign may sign. Each backend answers the questions of [`View`]
//! about the serials and subjects at hand, under its own lock (the
//! database's flock, or the CA row's lock in a transaction); the
//! decisions and their messages are made here, once.

use std::collections::{HashMap, HashSet};

use super::index::Entry;
use super::record::Record;
use super::reserve::{Ask, Cleared};
use crate::error::{Error, Result};
use crate::ocsp::CertStatus;

/// What a record knows of the serials and subjects a batch asks about.
pub(super) trait View {
    /// Where the record holds a serial ("DIR/index.txt line 4"), if it does.
    fn issued(&self, serial: &str) -> Option<String>;
    /// A serial's reservation: where, and the SHA-256 of its TBS.
    fn reservation(&self, serial: &str) -> Option<(String, String)>;
    /// The revoked entry of a serial, if it is revoked.
    fn revoked(&self, serial: &str) -> Option<&Entry>;
    /// The serial of a valid certificate with this subject, if any.
    fn valid_subject(&self, subject: &str) -> Option<String>;
    /// Whether the certificate of a serial is kept (its file or DER).
    fn has_certificate(&self, serial: &str) -> Result<bool>;
    /// Where unique_subject is set, for a refusal.
    fn attr_place(&self) -> String;
    /// The record as `--db` names it, for hints.
    fn shown(&self) -> String;
    /// Where the certificates are recorded ("DIR/index.txt"), for a refusal.
    fn index_place(&self) -> String;
}

/// Checks a batch of certificates to record, up to the first refusal:
/// for each of the accepted prefix, whether it is late (it arrives after
/// `--reconcile` revoked its reservation: the same serial and TBS hash, a
/// revoked entry, no certificate yet; only the certificate is kept), and
/// the refusal of the next. `owner` says why a certificate is not this
/// record's CA's, if it is not.
pub(super) fn check_batch(
    view: &impl View,
    batch: &[Record],
    unique: bool,
    mut owner: impl FnMut(&Record) -> Result<Option<String>>,
) -> Result<(Vec<bool>, Option<Error>)> {
    let mut fresh = HashSet::new();
    let mut subjects: HashMap<&str, &str> = HashMap::new();
    let mut late = Vec::new();
    for r in batch {
        let serial = &r.entry.serial;
        let reservation = view.reservation(serial);
        let is_late = match (view.revoked(serial), &reservation) {
            (Some(_), Some((_, hash))) if *hash == r.tbs_sha256 => !view.has_certificate(serial)?,
            _ => false,
        };
        let problem = if !fresh.insert(serial.as_str()) {
            Some(format!("serial {serial} comes twice"))
        } else if let (Some(place), false) = (view.issued(serial), is_late) {
            Some(format!("serial {serial} is already in {place}"))
        } else if let Some((place, hash)) = reservation.filter(|(_, hash)| *hash != r.tbs_sha256) {
            Some(format!(
                "serial {serial} was reserved for another TBSCertificate ({place}, SHA-256 {hash}): this is not \
                 the certificate card-sign --db signed with it"
            ))
        } else if let Some(other) = (unique && !is_late)
            .then(|| {
                view.valid_subject(&r.entry.subject)
                    .or(subjects.get(r.entry.subject.as_str()).map(|s| s.to_string()))
            })
            .flatten()
        {
            Some(format!(
                "subject {} already has a valid certificate (serial {other}) and {} says unique_subject = yes",
                r.entry.subject,
                view.attr_place()
            ))
        } else {
            owner(r)?
        };
        if let Some(p) = problem {
            return Ok((late, Some(Error::new(format!("{p}; nothing was recorded for it")))));
        }
        if !is_late {
            subjects.insert(&r.entry.subject, serial);
        }
        late.push(is_late);
    }
    Ok((late, None))
}

/// Checks what card-sign asks, up to the first refusal: a certificate's
/// serial must be new (neither issued nor reserved, nor twice in the
/// stream); an OCSP status must be what the record says. The caller
/// reserves the certificates of the cleared prefix.
pub(super) fn clear_batch(view: &impl View, asks: &[Ask]) -> Cleared {
    let mut fresh: HashSet<&str> = HashSet::new();
    for (count, ask) in asks.iter().enumerate() {
        let problem = match ask {
            Ask::Certificate(r) if !fresh.insert(&r.serial) => {
                Some(Error::new(format!("serial {} comes twice in this stream", r.serial)))
            }
            Ask::Certificate(r) => serial_is_new(view, &r.serial).err(),
            Ask::Ocsp { serial, status } => check_status(view, serial, status).err(),
        };
        if problem.is_some() {
            return Cleared { count, refused: problem };
        }
    }
    Cleared { count: asks.len(), refused: None }
}

/// A serial neither issued nor reserved.
fn serial_is_new(view: &impl View, serial: &str) -> Result<()> {
    if let Some(place) = view.issued(serial) {
        return Err(Error::new(format!(
            "serial {serial} is already issued ({place}): a second certificate with it would be misissuance"
        )));
    }
    if let Some((place, _)) = view.reservation(serial) {
        return Err(Error::new(format!(
            "serial {serial} is already reserved ({place}): card-sign signed it, or is signing it, for another \
             block"
        ))
        .hint(format!("cert-store --db {} --reserved lists what was signed and not recorded", view.shown())));
    }
    Ok(())
}

/// An OCSP status must be what the record says: good for a valid (or
/// expired) certificate or a lifted hold, revoked with the entry's time
/// and reason for a revoked one; nothing for a serial it does not hold.
fn check_status(view: &impl View, serial: &str, status: &CertStatus) -> Result<()> {
    let Some(place) = view.issued(serial) else {
        let reserved = match view.reservation(serial) {
            Some((place, _)) => format!(
                "; {place} reserved it, so it may have been signed: cert-store --reconcile records it as revoked"
            ),
            None => String::new(),
        };
        return Err(Error::new(format!(
            "an OCSP response ({}) for serial {serial}, which is not in {}{reserved}",
            status.name(),
            view.index_place()
        )));
    };
    let expected = match view.revoked(serial) {
        Some(entry) => entry.cert_status()?,
        None => CertStatus::Good(der::asn1::Null),
    };
    if *status != expected {
        return Err(Error::new(format!(
            "an OCSP response says serial {serial} is {}, but {place} says {}",
            super::reserve::describe(status),
            super::reserve::describe(&expected)
        )));
    }
    Ok(())
}

/// index.txt.attr's unique_subject, read as openssl reads it: missing
/// file or key means yes; a value starting with y/Y/t/T is yes.
pub(super) fn unique_subject(attr: Option<&[u8]>) -> bool {
    let Some(data) = attr else { return true };
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "unique_subject" {
                return matches!(value.trim().bytes().next(), Some(b'y' | b'Y' | b't' | b'T'));
            }
        }
    }
    true
}

/// The CRL number after `current` (big-endian, one more).
pub(super) fn next_number(current: &[u8]) -> Vec<u8> {
    let mut next = current.to_vec();
    let mut i = next.len();
    loop {
        if i == 0 {
            next.insert(0, 1);
            break;
        }
        i -= 1;
        next[i] = next[i].wrapping_add(1);
        if next[i] != 0 {
            break;
        }
    }
    next
}

/// The number a crlnumber file (or the record's copy of one) holds; 1
/// when there is none yet, as for openssl ca.
pub(super) fn crl_number_of(file: Option<&[u8]>) -> Result<Vec<u8>> {
    match file {
        Some(data) => {
            crate::hex::decode(String::from_utf8_lossy(data).trim()).map_err(|e| e.context("crlnumber"))
        }
        None => Ok(vec![1]),
    }
}

/// A crlnumber file's text for a number, as openssl writes it.
pub(super) fn crl_number_text(number: &[u8]) -> String {
    format!("{}\n", crate::cert::serial_text(number))
}
