//! Reservations: what `card-sign --db` is about to sign, recorded before
//! the token signs it, so that no certificate can exist that the record
//! does not know (Boulder's "serials recorded before signing").
//!
//! ```text
//! DIR/reserved.txt   one line per serial card-sign reserved, tab-separated:
//!                    serial (as index.txt), SHA-256 of the TBSCertificate,
//!                    notAfter (as index.txt), when (RFC 3339), subject
//! ```
//! A file of its own beside index.txt, not lines in it: `openssl ca` reads
//! every index.txt line as a certificate (a reservation there would be a
//! valid certificate to `-status`, a CRL gap to `-gencrl`), and ignores
//! files it does not know. Append-only, like index.txt, and written the
//! same way (one write and one fdatasync for a batch, under the
//! database's lock, a torn last line cut off on the next read): a
//! reservation is durable before C_Sign, and a crash before its fdatasync
//! returned leaves no signature either.
//!
//! A reservation is resolved when index.txt holds its serial (cert-store
//! recorded the certificate, or `--reconcile` recorded it as revoked);
//! every other one is left over: signed (or about to be) and not
//! recorded. The file is never rewritten: a late certificate is matched to
//! its reservation by the TBS hash, whenever it arrives.

use crate::cert::TbsCert;
use crate::error::{Error, Result};
use crate::ocsp::CertStatus;
use crate::time::{self, Seconds};

use super::index::{check_serial_text, time_text, Entry};
use super::Db;

/// The most reserved.txt may hold (like index.txt's bound).
pub(super) const RESERVED_MAX: u64 = 512 << 20;

/// One line of reserved.txt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub serial: String,
    /// Lower-case hex, as the audit log's `tbs_sha256`.
    pub tbs_sha256: String,
    /// notAfter, as index.txt writes it: the expiry of a revoked line.
    pub expiry: String,
    /// When it was reserved.
    pub at: Seconds,
    pub subject: String,
}

impl Reservation {
    /// The reservation of a TBSCertificate about to be signed now.
    pub fn of(tbs: &TbsCert, tbs_der: &[u8], now: Seconds) -> Result<Reservation> {
        Ok(Reservation {
            serial: crate::cert::serial_text(tbs.serial_number.as_bytes()),
            tbs_sha256: crate::hex::encode(&crate::sign::Hash::Sha256.digest(tbs_der)),
            expiry: time_text(&tbs.validity.not_after)?,
            at: now,
            subject: crate::names::openssl_oneline(&tbs.subject),
        })
    }

    pub(super) fn parse(line: &str) -> Result<Reservation> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 5 {
            return Err(Error::new(format!(
                "{} tab-separated fields, not 5 (serial, tbs_sha256, expiry, time, subject)",
                f.len()
            )));
        }
        check_serial_text(f[0])?;
        if f[1].len() != 64 || !f[1].bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::new(format!("tbs_sha256 {:?} is not 64 lower-case hex digits", f[1])));
        }
        super::index::parse_time_text(f[2])?;
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(Error::new(format!("a raw control character {c:?}")));
        }
        Ok(Reservation {
            serial: f[0].into(),
            tbs_sha256: f[1].into(),
            expiry: f[2].into(),
            at: time::parse_rfc3339(f[3])?,
            subject: f[4].into(),
        })
    }

    /// The revoked line `--reconcile` records for it: revoked `when`,
    /// for `reason`, its serial never to be used again.
    pub(super) fn revoked(self, when: &str, reason: Option<&str>) -> Entry {
        Entry {
            status: 'R',
            expiry: self.expiry,
            revocation: super::index::revocation_text(when, reason),
            serial: self.serial,
            file: "unknown".into(),
            subject: self.subject,
        }
    }

    pub(super) fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\n",
            self.serial,
            self.tbs_sha256,
            self.expiry,
            time::display(self.at),
            self.subject
        )
    }
}

/// What card-sign asks the record before the token signs a block.
pub enum Ask {
    /// A certificate: its serial must be new (neither issued nor
    /// reserved); it is reserved.
    Certificate(Reservation),
    /// An OCSP response: its status must be what the record says.
    Ocsp { serial: String, status: CertStatus },
}

/// The answer for a batch of [`Ask`]s: how many of it (a prefix) may be
/// signed, their certificates reserved durably, and why the next one may
/// not.
pub struct Cleared {
    pub count: usize,
    pub refused: Option<Error>,
}

impl Db {
    /// Under the lock: checks each ask against index.txt and reserved.txt
    /// up to the first refusal, then reserves the certificates of those
    /// before it in one durable append. Nothing is signed that this did
    /// not clear; a failure to append clears nothing.
    pub fn clear_to_sign(&mut self, asks: &[Ask]) -> Result<Cleared> {
        let (_lock, _index, reserved) = self.refresh_all(true)?;
        let reserved = reserved.ok_or_else(|| Error::new("reserved.txt was not opened"))?;
        let cleared = super::rules::clear_batch(&super::Files(self), asks);
        let new = reservations(&asks[..cleared.count]);
        if !new.is_empty() {
            let text: String = new.iter().map(|r| r.line()).collect();
            self.known.reserved_tail.append(&reserved, "reserved.txt", &text, new.len())?;
            let first = self.known.reserved_tail.lines - new.len();
            for (i, r) in new.into_iter().enumerate() {
                self.known.reserved.insert(r.serial.clone(), (first + i + 1, r.tbs_sha256.clone()));
            }
        }
        Ok(cleared)
    }

    /// Every reservation whose serial index.txt does not hold, oldest
    /// first: what was signed (or was about to be) and never recorded.
    pub fn left_over(&mut self) -> Result<Vec<Reservation>> {
        let (_lock, _index, _reserved) = self.refresh_all(false)?;
        self.read_left_over()
    }

    fn read_left_over(&self) -> Result<Vec<Reservation>> {
        let text = self.read_file("reserved.txt", RESERVED_MAX)?.unwrap_or_default();
        let text = String::from_utf8(text).map_err(|_| Error::new("reserved.txt is not ASCII"))?;
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let r = Reservation::parse(line)
                .map_err(|e| e.context(format!("{} line {}", self.path("reserved.txt").display(), i + 1)))?;
            if !self.known.serials.contains_key(&r.serial) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// `--reconcile`: every left-over reservation made before `before`
    /// gets a revoked line in index.txt (revoked `when`, for `reason`),
    /// appended in one durable write, so the next CRL and OCSP responses
    /// cover whatever was signed. `before_append` gets the lines first
    /// (the audit log records them); an error there changes nothing.
    pub fn revoke_left_over(
        &mut self,
        before: Seconds,
        when: &str,
        reason: Option<&str>,
        before_append: impl FnOnce(&[Entry]) -> Result<()>,
    ) -> Result<Vec<Entry>> {
        let (_lock, index, _reserved) = self.refresh_all(false)?;
        let entries: Vec<Entry> = self
            .read_left_over()?
            .into_iter()
            .filter(|r| r.at < before)
            .map(|r| r.revoked(when, reason))
            .collect();
        if entries.is_empty() {
            return Ok(entries);
        }
        before_append(&entries)?;
        let text: String = entries.iter().map(Entry::line).collect();
        self.known.index.append(&index, "index.txt", &text, entries.len())?;
        for e in &entries {
            self.known.add(self.known.index.lines, e);
        }
        Ok(entries)
    }
}

/// The certificates' reservations among what card-sign asks.
pub(super) fn reservations(asks: &[Ask]) -> Vec<&Reservation> {
    asks.iter()
        .filter_map(|a| match a {
            Ask::Certificate(r) => Some(r),
            Ask::Ocsp { .. } => None,
        })
        .collect()
}

/// A status in words, for a refusal.
pub(super) fn describe(status: &CertStatus) -> String {
    match status {
        CertStatus::Revoked(info) => {
            let when = time::display(info.revocation_time.to_unix_duration().as_secs());
            let reason = info.revocation_reason.map(|r| r as u8);
            match super::REASONS.iter().find(|(_, code)| Some(*code) == reason) {
                Some((name, _)) => format!("revoked at {when} ({name})"),
                None => match reason {
                    Some(code) => format!("revoked at {when} (reason code {code})"),
                    None => format!("revoked at {when} (no reason)"),
                },
            }
        }
        other => other.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cardca-reserve-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn reservation(serial: &str, at: Seconds) -> Reservation {
        Reservation {
            serial: serial.into(),
            tbs_sha256: "ab".repeat(32),
            expiry: "270101000000Z".into(),
            at,
            subject: "/CN=a".into(),
        }
    }

    #[test]
    fn a_line_reads_back() {
        let r = reservation("0A", 1_780_000_000);
        assert_eq!(Reservation::parse(r.line().trim_end()).expect("parse"), r);
        for bad in ["0a\t", "00\tab\t270101000000Z\t2026-01-01T00:00:00Z\t/CN=a"] {
            assert!(Reservation::parse(bad).is_err(), "{bad}");
        }
    }

    /// A serial is cleared once: then it is reserved, and after its
    /// index.txt line it is issued; --reconcile revokes only what is left
    /// over and old enough.
    #[test]
    fn reserve_then_issue_or_reconcile() {
        let dir = scratch("cycle");
        let mut db = Db::open(&dir).expect("open");
        let asks = [Ask::Certificate(reservation("01", 100)), Ask::Certificate(reservation("02", 200))];
        let c = db.clear_to_sign(&asks).expect("clear");
        assert_eq!((c.count, c.refused.is_none()), (2, true));
        let again = db.clear_to_sign(&[Ask::Certificate(reservation("02", 300))]).expect("clear");
        assert_eq!(again.count, 0);
        assert!(again.refused.expect("refused").to_string().contains("already reserved"));
        // Another process's view: read from the file.
        let mut other = Db::open(&dir).expect("open");
        assert_eq!(other.left_over().expect("left").len(), 2);
        std::fs::write(dir.join("index.txt"), "V\t270101000000Z\t\t01\tunknown\t/CN=a\n").expect("write");
        let left = other.left_over().expect("left");
        assert_eq!(left.iter().map(|r| r.serial.as_str()).collect::<Vec<_>>(), ["02"]);
        let issued = other.clear_to_sign(&[Ask::Certificate(reservation("01", 300))]).expect("clear");
        assert!(issued.refused.expect("refused").to_string().contains("already issued"));
        // Too young to reconcile, then old enough.
        let none = other.revoke_left_over(200, "260101000000Z", None, |_| Ok(())).expect("reconcile");
        assert!(none.is_empty());
        let done =
            other.revoke_left_over(201, "260101000000Z", Some("superseded"), |_| Ok(())).expect("reconcile");
        assert_eq!(done.len(), 1);
        assert!(other.left_over().expect("left").is_empty());
        let index = std::fs::read_to_string(dir.join("index.txt")).expect("read");
        assert!(
            index.ends_with("R\t270101000000Z\t260101000000Z,superseded\t02\tunknown\t/CN=a\n"),
            "{index}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An OCSP status is cleared only when it is what index.txt says.
    #[test]
    fn ocsp_status_as_the_record_says() {
        let dir = scratch("ocsp");
        let mut db = Db::open(&dir).expect("open");
        std::fs::write(
            dir.join("index.txt"),
            "V\t270101000000Z\t\t01\tunknown\t/CN=a\nR\t270101000000Z\t260101000000Z,keyCompromise\t02\tunknown\t/CN=b\n",
        )
        .expect("write");
        let good = || CertStatus::Good(der::asn1::Null);
        let ask = |serial: &str, status| Ask::Ocsp { serial: serial.into(), status };
        assert_eq!(db.clear_to_sign(&[ask("01", good())]).expect("clear").count, 1);
        let revoked = db.clear_to_sign(&[ask("02", good())]).expect("clear");
        let e = revoked.refused.expect("refused").to_string();
        assert!(e.contains("is good") && e.contains("keyCompromise"), "{e}");
        let unknown = db.clear_to_sign(&[ask("03", good())]).expect("clear");
        assert!(unknown.refused.expect("refused").to_string().contains("not in"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
