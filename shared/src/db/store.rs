//! The record a tool's `--db` names, whichever keeps it: an index.txt
//! database in a directory ([`Db`]) or a CA's record on PostgreSQL
//! ([`pg::CaRecord`]). The tools speak only to [`Store`]; each operation
//! goes to the backend, whose rules are the same (`rules`).

use std::path::{Path, PathBuf};

use der::Encode;

use super::pg::{self, CaRecord};
use super::{Ask, Cleared, Db, Entry, Record, Reservation};
use crate::cert::CaCert;
use crate::error::Result;
use crate::time::Seconds;

/// What `--db` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    /// A PostgreSQL URI (never shown as given: see [`Location::shown`]).
    Pg(String),
}

impl Location {
    pub fn parse(value: &str) -> Location {
        match pg::is_uri(value) {
            true => Location::Pg(value.to_string()),
            false => Location::Dir(PathBuf::from(value)),
        }
    }

    /// As messages show it: a URI without a password.
    pub fn shown(&self) -> String {
        match self {
            Location::Dir(d) => d.display().to_string(),
            Location::Pg(uri) => pg::redact(uri),
        }
    }

    /// The directory, for an index.txt database: where its audit log is
    /// by default. A PostgreSQL record has none (each host logs to its own
    /// `--audit FILE` or CARDCA_AUDIT).
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Location::Dir(d) => Some(d),
            Location::Pg(_) => None,
        }
    }
}

pub enum Store {
    Files(Db),
    Pg(CaRecord),
}

impl Store {
    /// The record at `at`, created on first use (a directory, or `ca`'s
    /// record in PostgreSQL), for recording certificates. Without `ca`,
    /// a PostgreSQL record is chosen later, by the first certificate's
    /// issuer ([`Store::bind`]).
    pub fn open(at: &Location, ca: Option<&CaCert>) -> Result<Store> {
        match (at, ca) {
            (Location::Dir(d), _) => Ok(Store::Files(Db::open(d)?)),
            (Location::Pg(uri), Some(ca)) => Ok(Store::Pg(pg_of(uri, ca, true, "opening the record")?)),
            (Location::Pg(uri), None) => Ok(Store::Pg(pg::Pg::connect(uri)?.any_ca()?)),
        }
    }

    /// The record at `at`, which must exist; with `ca`, it must be `ca`'s
    /// (in PostgreSQL, `ca` chooses among the CAs; without it the
    /// database must hold one).
    pub fn open_existing(at: &Location, ca: Option<&CaCert>) -> Result<Store> {
        match (at, ca) {
            (Location::Dir(d), Some(ca)) => Ok(Store::Files(super::open_of(d, ca, "opening the record")?)),
            (Location::Dir(d), None) => Ok(Store::Files(Db::open_existing(d)?)),
            (Location::Pg(uri), Some(ca)) => Ok(Store::Pg(pg_of(uri, ca, false, "opening the record")?)),
            (Location::Pg(uri), None) => Ok(Store::Pg(pg::Pg::connect(uri)?.only_ca()?)),
        }
    }

    /// `ca`'s record, which must exist (`open_of`): for a CRL or OCSP
    /// responses, which would speak for every certificate in it.
    pub fn open_of(at: &Location, ca: &CaCert, what: &str) -> Result<Store> {
        match at {
            Location::Dir(d) => Ok(Store::Files(super::open_of(d, ca, what)?)),
            Location::Pg(uri) => Ok(Store::Pg(pg_of(uri, ca, false, what)?)),
        }
    }

    /// [`Store::open_of`], creating the record on first use (card-sign
    /// --db reserves the first serial of a new CA before cert-store
    /// records it).
    pub fn create_of(at: &Location, ca: &CaCert, what: &str) -> Result<Store> {
        match at {
            Location::Dir(d) => Ok(Store::Files(super::create_of(d, ca, what)?)),
            Location::Pg(uri) => Ok(Store::Pg(pg_of(uri, ca, true, what)?)),
        }
    }

    /// As messages show it.
    pub fn shown(&self) -> String {
        match self {
            Store::Files(db) => db.dir().display().to_string(),
            Store::Pg(r) => r.shown().to_string(),
        }
    }

    /// Where the certificates are recorded ("DIR/index.txt"), for a refusal.
    pub fn index_place(&self) -> String {
        match self {
            Store::Files(db) => db.dir().join("index.txt").display().to_string(),
            Store::Pg(r) => r.shown().to_string(),
        }
    }

    /// What a failure after the audit log said "stored" names as the step
    /// that failed.
    pub fn step(&self) -> &'static str {
        match self {
            Store::Files(_) => "index.txt",
            Store::Pg(_) => "postgresql",
        }
    }

    /// The CA certificate the record keeps, if any (none yet for a
    /// PostgreSQL record whose CA is not chosen).
    pub fn kept_ca(&mut self) -> Result<Option<CaCert>> {
        match self {
            Store::Files(db) => db.kept_ca(),
            Store::Pg(r) => r.kept_ca(),
        }
    }

    pub fn keep_ca(&mut self, ca: &CaCert) -> Result<()> {
        match self {
            Store::Files(db) => db.keep_ca(ca),
            Store::Pg(r) => r.keep_ca(ca),
        }
    }

    /// For a PostgreSQL record opened without a CA: chooses the record of
    /// the CA named `issuer` (DER), if it has one, or makes it with
    /// `create`. A directory is one CA's already.
    pub fn bind(&mut self, issuer: &[u8], create: bool) -> Result<()> {
        match self {
            Store::Files(_) => Ok(()),
            Store::Pg(r) => r.bind(issuer, create),
        }
    }

    pub fn check(&mut self, batch: &[Record]) -> Result<Pending<'_>> {
        match self {
            Store::Files(db) => Ok(Pending::Files(db.check(batch)?)),
            Store::Pg(r) => Ok(Pending::Pg(r.check(batch)?)),
        }
    }

    pub fn entries(&mut self) -> Result<Vec<Entry>> {
        match self {
            Store::Files(db) => db.entries(),
            Store::Pg(r) => r.entries(),
        }
    }

    /// The certificate of a serial (DER), if the record keeps it.
    pub fn certificate(&mut self, serial: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Store::Files(db) => db.certificate(serial),
            Store::Pg(r) => r.certificate(serial),
        }
    }

    pub fn revoke(
        &mut self,
        serials: &[String],
        when: &str,
        reason: Option<&str>,
        before: impl FnOnce(&[Entry]) -> Result<()>,
    ) -> Result<Vec<Entry>> {
        match self {
            Store::Files(db) => db.revoke(serials, when, reason, before),
            Store::Pg(r) => r.revoke(serials, when, reason, before),
        }
    }

    /// The next CRL number, taken, and every entry, read together (see
    /// `Db::crl`, `CaRecord::crl`).
    pub fn crl(&mut self, now: Seconds) -> Result<(Vec<u8>, Vec<Entry>)> {
        match self {
            Store::Files(db) => db.crl(),
            Store::Pg(r) => r.crl(now),
        }
    }

    pub fn clear_to_sign(&mut self, asks: &[Ask]) -> Result<Cleared> {
        match self {
            Store::Files(db) => db.clear_to_sign(asks),
            Store::Pg(r) => r.clear_to_sign(asks),
        }
    }

    pub fn left_over(&mut self) -> Result<Vec<Reservation>> {
        match self {
            Store::Files(db) => db.left_over(),
            Store::Pg(r) => r.left_over(),
        }
    }

    pub fn revoke_left_over(
        &mut self,
        before: Seconds,
        when: &str,
        reason: Option<&str>,
        before_write: impl FnOnce(&[Entry]) -> Result<()>,
    ) -> Result<Vec<Entry>> {
        match self {
            Store::Files(db) => db.revoke_left_over(before, when, reason, before_write),
            Store::Pg(r) => r.revoke_left_over(before, when, reason, before_write),
        }
    }
}

/// `ca`'s record in PostgreSQL; `create` makes it on first use. The CA
/// it keeps, if it keeps one, must be `ca` (the same name and key).
fn pg_of(uri: &str, ca: &CaCert, create: bool, what: &str) -> Result<CaRecord> {
    let mut record =
        pg::Pg::connect(uri)?.ca(&ca.tbs.subject.to_der()?, create).map_err(|e| e.context(what))?;
    if let Some(kept) = record.kept_ca()? {
        let place = format!("{} (cardca_ca.ca_pem)", record.shown());
        super::adopt::same_ca(&kept, ca, &record.shown(), &place)?;
    }
    Ok(record)
}

/// A checked batch, until committed or dropped (see `Db::check`).
pub enum Pending<'a> {
    Files(super::Pending<'a>),
    Pg(pg::Pending<'a>),
}

impl Pending<'_> {
    /// How many of the batch may be recorded (a prefix of it).
    pub fn count(&self) -> usize {
        self.late_flags().len()
    }

    fn late_flags(&self) -> &[bool] {
        match self {
            Pending::Files(p) => p.late_flags(),
            Pending::Pg(p) => p.late_flags(),
        }
    }

    /// Those of the accepted prefix that arrive after `--reconcile`
    /// revoked their reservation.
    pub fn late<'b>(&self, batch: &'b [Record]) -> Vec<&'b Record> {
        batch.iter().zip(self.late_flags()).filter(|(_, late)| **late).map(|(r, _)| r).collect()
    }

    /// Why the rest of the batch is refused, if it is.
    pub fn refused(&self) -> Option<&crate::Error> {
        match self {
            Pending::Files(p) => p.refused(),
            Pending::Pg(p) => p.refused(),
        }
    }

    /// Records the accepted prefix, calling `before` at the point where
    /// nothing is recorded yet and the rest cannot fail for lack of room
    /// (the certificate files durable; the rows written, not committed).
    pub fn commit_with(
        self,
        batch: &[Record],
        before: impl FnOnce() -> Result<()>,
    ) -> Result<Option<crate::Error>> {
        match self {
            Pending::Files(p) => p.commit_with(batch, before),
            Pending::Pg(p) => p.commit_with(batch, before),
        }
    }
}
