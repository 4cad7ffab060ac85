//! One CA's record on PostgreSQL, as the tools use it: the same
//! operations as the index.txt database (`super::super::Db`), the same
//! rules (`rules`), with a transaction where the files have the lock.
//!
//! Every transaction that changes a CA's record first locks the CA's row
//! (`SELECT ... FOR UPDATE`): recording, revoking, reserving and taking a
//! CRL number are one at a time per CA across every host, as they are
//! under the lock file on one host, and each sees what the one before it
//! committed. Reading (OCSP statuses, listings) takes no lock. The
//! statements work on a whole batch at once (`= ANY($n)`, `unnest`): a
//! round trip per batch, not per certificate.
//!
//! A certificate is passed on only after its transaction committed; a
//! connection lost before COMMIT answered leaves the outcome to the next
//! run (the reservation's TBS hash tells a recorded certificate from a
//! lost one, as on files).

use std::collections::{HashMap, HashSet};

use der::Encode;
use postgres::{GenericClient, Transaction};

use super::super::adopt::{pem_certificate, same_ca};
use super::super::index::revocation_text;
use super::super::record::name_text;
use super::super::reserve::reservations;
use super::super::rules::{self, View};
use super::super::{Ask, Cleared, Entry, Record, Reservation};
use super::{sql_error, Pg};
use crate::cert::CaCert;
use crate::error::{Context, Error, Result};
use crate::time::Seconds;

/// The record of one CA in a PostgreSQL database.
pub struct CaRecord {
    pg: Pg,
    /// The CA's row and DER Name; None until chosen (cert-store without
    /// --ca chooses by the first certificate's issuer).
    ca: Option<(i32, Vec<u8>)>,
}

const ENTRY_COLUMNS: &str = "serial, status, expiry, revocation, file, subject";

impl Pg {
    /// The record of the CA whose DER Name is `issuer`; with `create`, a
    /// new one on first use (unique_subject = no, as a new index.txt
    /// database says).
    pub fn ca(self, issuer: &[u8], create: bool) -> Result<CaRecord> {
        let mut record = CaRecord { pg: self, ca: None };
        record.bind(issuer, create)?;
        match record.ca {
            Some(_) => Ok(record),
            None => Err(Error::new(format!("{} holds no record of {}", record.pg.shown, name_text(issuer)))),
        }
    }

    fn find(&mut self, issuer: &[u8]) -> Result<Option<i32>> {
        let row = self
            .client
            .query_opt("SELECT id FROM cardca_ca WHERE issuer = $1", &[&issuer])
            .map_err(|e| sql_error(&self.shown, "finding the CA's record", e))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// The record of the only CA this database holds.
    pub fn only_ca(mut self) -> Result<CaRecord> {
        let shown = self.shown.clone();
        let rows = self
            .client
            .query("SELECT id, issuer FROM cardca_ca", &[])
            .map_err(|e| sql_error(&shown, "finding the CA's record", e))?;
        match rows.as_slice() {
            [one] => Ok(CaRecord { ca: Some((one.get(0), one.get(1))), pg: self }),
            [] => Err(Error::new(format!("{shown} holds no CA's record yet"))),
            _ => Err(Error::new(format!("{shown} holds the records of {} CAs", rows.len()))
                .hint("name the CA with --ca FILE")),
        }
    }

    /// The record of the only CA this database holds, or one to be
    /// chosen later ([`CaRecord::bind`]) when it holds none or several.
    pub fn any_ca(self) -> Result<CaRecord> {
        let mut record = CaRecord { pg: self, ca: None };
        let rows = record
            .pg
            .client
            .query("SELECT id, issuer FROM cardca_ca", &[])
            .map_err(|e| sql_error(&record.pg.shown, "finding the CA's record", e))?;
        if let [one] = rows.as_slice() {
            record.ca = Some((one.get(0), one.get(1)));
        }
        Ok(record)
    }
}

impl CaRecord {
    /// The record as messages show it (the URI without a password).
    pub fn shown(&self) -> &str {
        &self.pg.shown
    }

    /// The CA's row and DER Name.
    fn bound(&self) -> Result<(i32, Vec<u8>)> {
        self.ca.clone().ok_or_else(|| {
            Error::new(format!("{}: which CA's record is meant cannot be told", self.pg.shown))
                .hint("name the CA with --ca FILE")
        })
    }

    /// Chooses the record of the CA named `issuer`, if none is chosen
    /// yet: the existing one, or with `create` a new one.
    pub fn bind(&mut self, issuer: &[u8], create: bool) -> Result<()> {
        if self.ca.is_some() {
            return Ok(());
        }
        if create {
            self.pg
                .client
                .execute(
                    "INSERT INTO cardca_ca (issuer, index_attr) VALUES ($1, $2) ON CONFLICT (issuer) DO NOTHING",
                    &[&issuer, &b"unique_subject = no\n".as_slice()],
                )
                .map_err(|e| sql_error(&self.pg.shown, "making the CA's record", e))?;
        }
        self.ca = self.pg.find(issuer)?.map(|id| (id, issuer.to_vec()));
        Ok(())
    }

    fn sql(&self, doing: &'static str) -> impl Fn(postgres::Error) -> Error + '_ {
        move |e| sql_error(&self.pg.shown, doing, e)
    }

    /// A transaction with the CA's row locked: what it changes, no other
    /// host changes until it ends. Returns the row's index_attr and
    /// crlnumber.
    fn locked(&mut self, doing: &'static str) -> Result<Locked<'_>> {
        let (id, _) = self.bound()?;
        let shown = self.pg.shown.clone();
        let sql = |e| sql_error(&shown, doing, e);
        let mut tx = self.pg.client.transaction().map_err(sql)?;
        let row = tx
            .query_one("SELECT index_attr, crlnumber FROM cardca_ca WHERE id = $1 FOR UPDATE", &[&id])
            .map_err(sql)?;
        Ok(Locked { tx, attr: row.get(0), crlnumber: row.get(1) })
    }

    /// The CA certificate the record keeps, if it keeps one.
    pub fn kept_ca(&mut self) -> Result<Option<CaCert>> {
        let Some((id, _)) = self.ca.clone() else { return Ok(None) };
        let row = self
            .pg
            .client
            .query_one("SELECT ca_pem FROM cardca_ca WHERE id = $1", &[&id])
            .map_err(self.sql("reading the kept CA"))?;
        let Some(text) = row.get::<_, Option<Vec<u8>>>(0) else { return Ok(None) };
        let place = format!("{} (cardca_ca.ca_pem)", self.pg.shown);
        CaCert::parse(pem_certificate(&text, &place)?).context(place).map(Some)
    }

    /// Keeps `ca` as the record's CA certificate, unless it keeps one:
    /// then `ca` must be that CA.
    pub fn keep_ca(&mut self, ca: &CaCert) -> Result<()> {
        let name = ca.tbs.subject.to_der()?;
        self.bind(&name, true)?;
        let (id, issuer) = self.bound()?;
        if name != issuer {
            return Err(Error::new(format!(
                "{} is the record of {}, not of {}",
                self.pg.shown,
                name_text(&issuer),
                ca.subject_text()
            )));
        }
        let shown = self.pg.shown.clone();
        let sql = |e| sql_error(&shown, "keeping the CA certificate", e);
        let Locked { mut tx, .. } = self.locked("keeping the CA certificate")?;
        let row = tx.query_one("SELECT ca_pem FROM cardca_ca WHERE id = $1", &[&id]).map_err(sql)?;
        if let Some(text) = row.get::<_, Option<Vec<u8>>>(0) {
            let place = format!("{shown} (cardca_ca.ca_pem)");
            let kept = CaCert::parse(pem_certificate(&text, &place)?).context(place.clone())?;
            return same_ca(&kept, ca, &shown, &place);
        }
        let pem = crate::io::pem("CERTIFICATE", &ca.der).into_bytes();
        tx.execute("UPDATE cardca_ca SET ca_pem = $2 WHERE id = $1", &[&id, &pem]).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Checks a batch to record, in a transaction with the CA's row
    /// locked; nothing is written until [`Pending::commit_with`].
    pub fn check(&mut self, batch: &[Record]) -> Result<Pending<'_>> {
        let shown = self.pg.shown.clone();
        let (id, issuer) = self.bound()?;
        let Locked { mut tx, attr, .. } = self.locked("checking a batch")?;
        let unique = rules::unique_subject(attr.as_deref());
        let serials: Vec<&str> = batch.iter().map(|r| r.entry.serial.as_str()).collect();
        let subjects: Vec<&str> = match unique {
            true => batch.iter().map(|r| r.entry.subject.as_str()).collect(),
            false => Vec::new(),
        };
        let rows = Rows::read(&mut tx, id, &shown, &serials, &subjects)?;
        let (late, refused) = rules::check_batch(&rows, batch, unique, |r| {
            Ok((r.issuer != issuer).then(|| {
                format!(
                    "serial {} is issued by {}, but {shown} is the record of {} (one record per CA)",
                    r.entry.serial,
                    name_text(&r.issuer),
                    name_text(&issuer)
                )
            }))
        })?;
        Ok(Pending { tx, id, shown, late, refused })
    }

    /// Every entry of the record, in its order (index.txt's lines).
    pub fn entries(&mut self) -> Result<Vec<Entry>> {
        let shown = self.pg.shown.clone();
        let (id, _) = self.bound()?;
        entries(&mut self.pg.client, id, &shown)
    }

    /// The certificate of a serial (DER), if the record keeps it.
    pub fn certificate(&mut self, serial: &str) -> Result<Option<Vec<u8>>> {
        let (id, _) = self.bound()?;
        let row = self
            .pg
            .client
            .query_opt("SELECT cert_file FROM cardca_cert WHERE ca_id = $1 AND serial = $2", &[&id, &serial])
            .map_err(self.sql("reading a certificate"))?;
        match row.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)) {
            Some(text) => pem_certificate(&text, &format!("{} serial {serial}", self.pg.shown)).map(Some),
            None => Ok(None),
        }
    }

    /// Marks certificates revoked, all or none (as `Db::revoke`), in one
    /// transaction; `before_commit` gets the entries as revoked (the
    /// audit log records them first).
    pub fn revoke(
        &mut self,
        serials: &[String],
        when: &str,
        reason: Option<&str>,
        before_commit: impl FnOnce(&[Entry]) -> Result<()>,
    ) -> Result<Vec<Entry>> {
        let shown = self.pg.shown.clone();
        let (id, _) = self.bound()?;
        let sql = |e| sql_error(&shown, "revoking", e);
        let Locked { mut tx, .. } = self.locked("revoking")?;
        let rows = tx
            .query(
                &format!("SELECT {ENTRY_COLUMNS} FROM cardca_cert WHERE ca_id = $1 AND serial = ANY($2)"),
                &[&id, &serials],
            )
            .map_err(sql)?;
        let found: HashMap<String, Entry> =
            rows.iter().map(|r| entry_of(r, &shown).map(|e| (e.serial.clone(), e))).collect::<Result<_>>()?;
        let mut done = Vec::new();
        for serial in serials {
            let Some(entry) = found.get(serial) else {
                let reserved = tx
                    .query_opt(
                        "SELECT 1 FROM cardca_reservation WHERE ca_id = $1 AND serial = $2",
                        &[&id, serial],
                    )
                    .map_err(sql)?;
                let e = Error::new(format!("serial {serial} is not in {shown}"));
                return Err(match reserved {
                    Some(_) => e.hint(
                        "card-sign reserved it and no certificate was recorded: cert-store --reconcile revokes it",
                    ),
                    None => e,
                });
            };
            if entry.status == 'R' {
                return Err(Error::new(format!("serial {serial} is already revoked ({})", entry.revocation)));
            }
            let mut entry = entry.clone();
            entry.status = 'R';
            entry.revocation = revocation_text(when, reason);
            done.push(entry);
        }
        before_commit(&done)?;
        let list: Vec<&str> = done.iter().map(|e| e.serial.as_str()).collect();
        let text = revocation_text(when, reason);
        tx.execute(
            "UPDATE cardca_cert SET status = 'R', revocation = $3 WHERE ca_id = $1 AND serial = ANY($2)",
            &[&id, &list, &text],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(done)
    }

    /// For a CRL, in one transaction with the CA's row locked (so one
    /// host at a time takes a number): the next CRL number, taken (the
    /// one after it committed), and every entry. Numbers rise in the
    /// order they are taken across every host, and each CRL lists every
    /// revocation committed before its number was taken: a CRL with a
    /// higher number never lists less than one before it.
    pub fn crl(&mut self, now: Seconds) -> Result<(Vec<u8>, Vec<Entry>)> {
        let shown = self.pg.shown.clone();
        let (id, _) = self.bound()?;
        let sql = |e| sql_error(&shown, "taking a CRL number", e);
        let Locked { mut tx, crlnumber: file, .. } = self.locked("taking a CRL number")?;
        let current = rules::crl_number_of(file.as_deref())?;
        let list = entries(&mut tx, id, &shown)?;
        let next = rules::crl_number_text(&rules::next_number(&current)).into_bytes();
        tx.execute("UPDATE cardca_ca SET crlnumber = $2 WHERE id = $1", &[&id, &next]).map_err(sql)?;
        let revoked = list.iter().filter(|e| e.status == 'R').count() as i32;
        tx.execute(
            "INSERT INTO cardca_crl (ca_id, number, taken_at, revoked) VALUES ($1, $2, $3, $4)",
            &[&id, &current, &(now as i64), &revoked],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok((current, list))
    }

    /// What card-sign asks before the token signs (as `Db::clear_to_sign`):
    /// the cleared prefix's certificates reserved, committed before any
    /// of them is signed.
    pub fn clear_to_sign(&mut self, asks: &[Ask]) -> Result<Cleared> {
        let shown = self.pg.shown.clone();
        let (id, _) = self.bound()?;
        let sql = |e| sql_error(&shown, "reserving serials", e);
        let Locked { mut tx, .. } = self.locked("reserving serials")?;
        let serials: Vec<&str> = asks
            .iter()
            .map(|a| match a {
                Ask::Certificate(r) => r.serial.as_str(),
                Ask::Ocsp { serial, .. } => serial.as_str(),
            })
            .collect();
        let rows = Rows::read(&mut tx, id, &shown, &serials, &[])?;
        let cleared = rules::clear_batch(&rows, asks);
        let new = reservations(&asks[..cleared.count]);
        if !new.is_empty() {
            let col = |f: fn(&Reservation) -> &str| new.iter().map(|r| f(r)).collect::<Vec<&str>>();
            let at: Vec<i64> = new.iter().map(|r| r.at as i64).collect();
            tx.execute(
                "INSERT INTO cardca_reservation (ca_id, serial, tbs_sha256, expiry, reserved_at, subject) \
                 SELECT $1, s, h, e, a, j FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) \
                 WITH ORDINALITY AS t(s, h, e, a, j, n) ORDER BY n",
                &[
                    &id,
                    &col(|r| &r.serial),
                    &col(|r| &r.tbs_sha256),
                    &col(|r| &r.expiry),
                    &at,
                    &col(|r| &r.subject),
                ],
            )
            .map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(cleared)
    }

    /// Every reservation no certificate row resolves, oldest first.
    pub fn left_over(&mut self) -> Result<Vec<Reservation>> {
        let shown = self.pg.shown.clone();
        let (id, _) = self.bound()?;
        left_over(&mut self.pg.client, id, &shown)
    }

    /// `--reconcile` (as `Db::revoke_left_over`): every left-over
    /// reservation made before `before` gets a revoked row, in one
    /// transaction; `before_commit` gets them first (the audit log).
    pub fn revoke_left_over(
        &mut self,
        before: Seconds,
        when: &str,
        reason: Option<&str>,
        before_commit: impl FnOnce(&[Entry]) -> Result<()>,
    ) -> Result<Vec<Entry>> {
        let shown = self.pg.shown.clone();
        let (id, _) = self.bound()?;
        let sql = |e| sql_error(&shown, "reconciling", e);
        let Locked { mut tx, .. } = self.locked("reconciling")?;
        let entries: Vec<Entry> = left_over(&mut tx, id, &shown)?
            .into_iter()
            .filter(|r| r.at < before)
            .map(|r| r.revoked(when, reason))
            .collect();
        if entries.is_empty() {
            return Ok(entries);
        }
        before_commit(&entries)?;
        insert_entries(&mut tx, id, &entries, None).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(entries)
    }
}

/// A transaction with the CA's row locked, and what the row holds.
struct Locked<'a> {
    tx: Transaction<'a>,
    /// index.txt.attr, as the file held it.
    attr: Option<Vec<u8>>,
    /// crlnumber, as the file held it.
    crlnumber: Option<Vec<u8>>,
}

/// A checked batch, in its transaction (the CA's row locked) until
/// committed or dropped (rolled back).
pub struct Pending<'a> {
    tx: Transaction<'a>,
    id: i32,
    shown: String,
    late: Vec<bool>,
    refused: Option<Error>,
}

impl Pending<'_> {
    /// For each of the accepted prefix, whether it arrives after
    /// `--reconcile` revoked it (as `Db`'s `Pending::late_flags`).
    pub fn late_flags(&self) -> &[bool] {
        &self.late
    }

    pub fn refused(&self) -> Option<&Error> {
        self.refused.as_ref()
    }

    /// Records the accepted prefix: its rows (a late certificate's file
    /// on its revoked row), then `before_commit` (the audit log, the
    /// card), then COMMIT. Nothing of it is recorded unless COMMIT
    /// answered.
    pub fn commit_with(
        mut self,
        batch: &[Record],
        before_commit: impl FnOnce() -> Result<()>,
    ) -> Result<Option<Error>> {
        let shown = self.shown.clone();
        let sql = |e| sql_error(&shown, "recording", e);
        let batch = &batch[..self.late.len().min(batch.len())];
        let (mut new, mut late) = (Vec::new(), Vec::new());
        for (r, is_late) in batch.iter().zip(&self.late) {
            match is_late {
                false => new.push(r),
                true => late.push(r),
            }
        }
        let entries: Vec<Entry> = new.iter().map(|r| r.entry.clone()).collect();
        let files: Vec<Vec<u8>> =
            new.iter().map(|r| crate::io::pem("CERTIFICATE", &r.der).into_bytes()).collect();
        if !entries.is_empty() {
            insert_entries(&mut self.tx, self.id, &entries, Some(&files)).map_err(sql)?;
        }
        for r in late {
            let file = crate::io::pem("CERTIFICATE", &r.der).into_bytes();
            self.tx
                .execute(
                    "UPDATE cardca_cert SET cert_dir = 'certs', cert_file = $3 WHERE ca_id = $1 AND serial = $2",
                    &[&self.id, &r.entry.serial, &file],
                )
                .map_err(sql)?;
        }
        before_commit()?;
        self.tx.commit().map_err(|e| {
            sql_error(&shown, "committing", e).hint(
                "whether the batch was recorded cannot be told from here: nothing of it was passed on; \
                 cert-store --reserved lists what was signed and not recorded",
            )
        })?;
        Ok(self.refused)
    }
}

/// Appends entries in their order, each with its certificate file
/// (certs/SERIAL.pem) when `files` has it.
fn insert_entries(
    tx: &mut Transaction<'_>,
    id: i32,
    entries: &[Entry],
    files: Option<&[Vec<u8>]>,
) -> std::result::Result<u64, postgres::Error> {
    let col = |f: fn(&Entry) -> &str| entries.iter().map(f).collect::<Vec<&str>>();
    let status: Vec<String> = entries.iter().map(|e| e.status.to_string()).collect();
    let (dirs, files): (Vec<Option<&str>>, Vec<Option<&[u8]>>) = match files {
        Some(f) => f.iter().map(|f| (Some("certs"), Some(f.as_slice()))).unzip(),
        None => entries.iter().map(|_| (None, None)).unzip(),
    };
    tx.execute(
        "INSERT INTO cardca_cert (ca_id, serial, status, expiry, revocation, file, subject, cert_dir, cert_file) \
         SELECT $1, s, st, e, rv, f, sj, d, c FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::bytea[]) WITH ORDINALITY AS t(s, st, e, rv, f, sj, d, c, n) \
         ORDER BY n",
        &[
            &id,
            &col(|e| &e.serial),
            &status,
            &col(|e| &e.expiry),
            &col(|e| &e.revocation),
            &col(|e| &e.file),
            &col(|e| &e.subject),
            &dirs,
            &files,
        ],
    )
}

/// The CA's entries in their order.
fn entries(client: &mut impl GenericClient, id: i32, shown: &str) -> Result<Vec<Entry>> {
    let rows = client
        .query(&format!("SELECT {ENTRY_COLUMNS} FROM cardca_cert WHERE ca_id = $1 ORDER BY seq"), &[&id])
        .map_err(|e| sql_error(shown, "reading the record", e))?;
    rows.iter().map(|r| entry_of(r, shown)).collect()
}

/// A row as an index.txt line, checked as index.txt's lines are on reading.
pub(super) fn entry_of(row: &postgres::Row, shown: &str) -> Result<Entry> {
    let status: String = row.get(1);
    let entry = Entry {
        status: status.chars().next().unwrap_or('?'),
        expiry: row.get(2),
        revocation: row.get(3),
        serial: row.get(0),
        file: row.get(4),
        subject: row.get(5),
    };
    let line = entry.line();
    Entry::parse(line.trim_end_matches('\n')).with_context(|| format!("{shown}: a row of cardca_cert"))
}

fn left_over(client: &mut impl GenericClient, id: i32, shown: &str) -> Result<Vec<Reservation>> {
    let rows = client
        .query(
            "SELECT r.serial, r.tbs_sha256, r.expiry, r.reserved_at, r.subject FROM cardca_reservation r \
             WHERE r.ca_id = $1 AND NOT EXISTS (SELECT 1 FROM cardca_cert c WHERE c.ca_id = r.ca_id AND \
             c.serial = r.serial) ORDER BY r.seq",
            &[&id],
        )
        .map_err(|e| sql_error(shown, "reading reservations", e))?;
    rows.iter().map(|r| reservation_of(r, shown)).collect()
}

/// A row as a reserved.txt line, checked as reserved.txt's lines are.
pub(super) fn reservation_of(row: &postgres::Row, shown: &str) -> Result<Reservation> {
    let at: i64 = row.get(3);
    let r = Reservation {
        serial: row.get(0),
        tbs_sha256: row.get(1),
        expiry: row.get(2),
        at: u64::try_from(at).map_err(|_| Error::new(format!("{shown}: a negative reservation time")))?,
        subject: row.get(4),
    };
    let line = r.line();
    Reservation::parse(line.trim_end_matches('\n'))
        .with_context(|| format!("{shown}: a row of cardca_reservation"))
}

/// What the record holds of the serials and subjects a batch asks about,
/// read in the batch's transaction.
struct Rows {
    shown: String,
    issued: HashSet<String>,
    revoked: HashMap<String, Entry>,
    with_certificate: HashSet<String>,
    reserved: HashMap<String, String>,
    valid: HashMap<String, String>,
}

impl Rows {
    fn read(
        tx: &mut Transaction<'_>,
        id: i32,
        shown: &str,
        serials: &[&str],
        subjects: &[&str],
    ) -> Result<Rows> {
        let sql = |e| sql_error(shown, "reading the record", e);
        let mut rows = Rows {
            shown: shown.to_string(),
            issued: HashSet::new(),
            revoked: HashMap::new(),
            with_certificate: HashSet::new(),
            reserved: HashMap::new(),
            valid: HashMap::new(),
        };
        let found = tx
            .query(
                &format!(
                    "SELECT {ENTRY_COLUMNS}, cert_file IS NOT NULL FROM cardca_cert WHERE ca_id = $1 AND \
                     serial = ANY($2)"
                ),
                &[&id, &serials],
            )
            .map_err(sql)?;
        for row in &found {
            let e = entry_of(row, shown)?;
            if row.get::<_, bool>(6) {
                rows.with_certificate.insert(e.serial.clone());
            }
            rows.issued.insert(e.serial.clone());
            if e.status == 'R' {
                rows.revoked.insert(e.serial.clone(), e);
            }
        }
        let found = tx
            .query(
                "SELECT serial, tbs_sha256 FROM cardca_reservation WHERE ca_id = $1 AND serial = ANY($2)",
                &[&id, &serials],
            )
            .map_err(sql)?;
        rows.reserved = found.iter().map(|r| (r.get(0), r.get(1))).collect();
        if !subjects.is_empty() {
            let found = tx
                .query(
                    "SELECT subject, serial FROM cardca_cert WHERE ca_id = $1 AND status = 'V' AND subject = ANY($2)",
                    &[&id, &subjects],
                )
                .map_err(sql)?;
            rows.valid = found.iter().map(|r| (r.get(0), r.get(1))).collect();
        }
        Ok(rows)
    }
}

impl View for Rows {
    fn issued(&self, serial: &str) -> Option<String> {
        self.issued.contains(serial).then(|| format!("{} (cardca_cert)", self.shown))
    }
    fn reservation(&self, serial: &str) -> Option<(String, String)> {
        let hash = self.reserved.get(serial)?;
        Some((format!("{} (cardca_reservation)", self.shown), hash.clone()))
    }
    fn revoked(&self, serial: &str) -> Option<&Entry> {
        self.revoked.get(serial)
    }
    fn valid_subject(&self, subject: &str) -> Option<String> {
        self.valid.get(subject).cloned()
    }
    fn has_certificate(&self, serial: &str) -> Result<bool> {
        Ok(self.with_certificate.contains(serial))
    }
    fn attr_place(&self) -> String {
        format!("{}'s index.txt.attr (cardca_ca.index_attr)", self.shown)
    }
    fn shown(&self) -> String {
        self.shown.clone()
    }
    fn index_place(&self) -> String {
        self.shown.clone()
    }
}
