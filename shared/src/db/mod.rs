//! The CA database: OpenSSL `ca`'s layout, with the locking and durability
//! `openssl ca` lacks. One database per CA, as `openssl ca` assumes.
//!
//! ```text
//! DIR/index.txt        one line per certificate, tab-separated:
//!                      status (V/R/E), expiry, revocation[,reason], serial
//!                      (upper-case hex), file name ("unknown"), subject
//!                      (OpenSSL's escaped one-line form)
//! DIR/index.txt.attr   unique_subject = no (yes when the file is missing,
//!                      as for openssl ca)
//! DIR/issuer.der       the DER Name of the CA whose database this is
//! DIR/certs/SERIAL.pem each certificate cardca recorded
//! DIR/crlnumber        the next CRL number, hex
//! DIR/.lock            flock'd while anyone changes the above
//! ```
//! Certificates are recorded in batches: every certificate file of the
//! batch is written and made durable (one syncfs), then all their index
//! lines are appended in one write and made durable (one fdatasync). A
//! crash at any point leaves whole lines whose files exist (a torn last
//! line, which nobody was told about, is cut off on the next open), and a
//! full disk rolls the index back to where it was.
//!
//! index.txt is the only source of truth: serial uniqueness, unique
//! subjects and CRLs come from it, read once per run and then only as it
//! grows, so the cost per certificate does not grow with the database.
//! Nothing inside DIR is followed if it is a symbolic link: every file is
//! opened relative to DIR with O_NOFOLLOW, created with O_EXCL, and whole
//! files are replaced by renaming a temporary file in DIR. Nor is anything
//! but a regular file read, or one larger than its bound (a FIFO in a
//! file's place would block the run; a huge file would exhaust memory):
//! `crate::dirfd` does all of this, once.
//!
//! Here: `Db` (lock, refresh, check and commit, revoke, CRL numbers);
//! `index` the index.txt format; `record` a certificate to record;
//! `adopt` one database per CA; `rules` the record's checks, the same
//! for both backends; `pg` the record on PostgreSQL; `store` the one
//! type the tools use, over either.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

use crate::dirfd::Dir;
use crate::error::{Context, Error, Result};

pub mod adopt;
mod index;
mod lines;
pub mod pg;
mod record;
mod reserve;
mod rules;
mod store;

pub use adopt::{create_of, open_of};
pub use index::{parse_serial, parse_time_text, reason_code, time_text, CrlEntry, Entry, REASONS};
pub use record::Record;
pub use reserve::{Ask, Cleared, Reservation};
pub use store::{Location, Store};

/// What this run knows of index.txt and reserved.txt: read whole once,
/// then only what was appended since (under the lock, so nothing else is
/// appending then).
#[derive(Default)]
struct Known {
    index: lines::Tail,
    /// Every serial of index.txt, with its line number.
    serials: HashMap<String, usize>,
    /// The subjects of valid (V) lines, for unique_subject, with their serial.
    valid_subjects: HashMap<String, String>,
    /// The revoked (R) lines, for what an OCSP response must say.
    revoked: HashMap<String, Entry>,
    reserved_tail: lines::Tail,
    /// Every reserved serial: its line in reserved.txt and TBS hash.
    reserved: HashMap<String, (usize, String)>,
}

impl Known {
    fn add(&mut self, line: usize, e: &Entry) {
        self.serials.insert(e.serial.clone(), line);
        match e.status {
            'V' => {
                self.valid_subjects.insert(e.subject.clone(), e.serial.clone());
            }
            'R' => {
                self.revoked.insert(e.serial.clone(), e.clone());
            }
            _ => {}
        }
    }
}

pub struct Db {
    dir: Dir,
    certs: Dir,
    known: Known,
}

/// The exclusive lock on a database, released on drop.
pub struct DbLock(#[allow(dead_code)] File);

/// How a link inside the database is refused: nothing is followed.
const LINKS: &str = " (or not a plain file or directory): refused, nothing inside a CA database is followed";

/// The most each file of the database may hold: index.txt enough for a
/// CA of millions of certificates (about 100 bytes a line), the others
/// what they could sensibly hold. Anything larger is refused before it
/// is read, as is anything but a regular file (a FIFO would block).
const INDEX_MAX: u64 = 512 << 20;
const ATTR_MAX: u64 = 64 << 10;
const ISSUER_MAX: u64 = 64 << 10;
const CRLNUMBER_MAX: u64 = 4 << 10;
/// A certificate file (PEM, or openssl's text and PEM) when adopting.
const CERT_FILE_MAX: u64 = 4 << 20;

impl Db {
    /// Opens the database in `dir`, creating it on first use. `dir` itself
    /// may be reached through a link; nothing inside it is.
    pub fn open(dir: &Path) -> Result<Db> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the database {}", dir.display()))?;
        let dir = Dir::open(dir, false, LINKS)?;
        let certs = dir.make_subdir("certs")?;
        let db = Db { dir, certs, known: Known::default() };
        let _lock = db.lock()?;
        // A new database says unique_subject = no; an existing one without
        // index.txt.attr keeps openssl's default, yes.
        if db.dir.create_new("index.txt", b"")? {
            db.dir.create_new("index.txt.attr", b"unique_subject = no\n")?;
        }
        Ok(db)
    }

    /// Opens the database in `dir`, which must already be one: for the
    /// runs that read or change a record and never start one.
    pub fn open_existing(dir: &Path) -> Result<Db> {
        if !dir.join("index.txt").exists() {
            return Err(Error::new(format!("{} holds no CA database", dir.display())));
        }
        Db::open(dir)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads a whole file of the database, at most `max` bytes; None if it
    /// does not exist.
    fn read_file(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>> {
        self.dir.read(name, max)
    }

    pub fn lock(&self) -> Result<DbLock> {
        let file = self.dir.open_file(".lock", OFlags::RDWR | OFlags::CREATE)?;
        file.lock().with_context(|| format!("locking {}", self.dir.path().display()))?;
        Ok(DbLock(file))
    }

    fn open_index(&self) -> Result<File> {
        self.dir.open_file("index.txt", OFlags::RDWR | OFlags::APPEND)
    }

    /// Brings `known` up to date with index.txt (and reserved.txt, when
    /// given): the whole file the first time (or after it was replaced),
    /// then only what was appended. Under the lock. Every complete line
    /// must parse, or this fails naming it; only a torn last line
    /// (unparsable and without its newline: a write that was interrupted)
    /// is cut off (`lines`).
    fn refresh(&mut self, index: &File) -> Result<()> {
        let read = self.known.index.read(&self.dir, index, "index.txt", INDEX_MAX, 6, Entry::parse)?;
        if read.restart {
            self.known.serials.clear();
            self.known.valid_subjects.clear();
            self.known.revoked.clear();
        }
        for (line, e) in &read.lines {
            self.known.add(*line, e);
        }
        Ok(())
    }

    /// Takes the lock and brings both index.txt and reserved.txt up to
    /// date; returns the lock and the two files, open for appending.
    /// reserved.txt is created only by those who reserve (`create`):
    /// without it, nothing is reserved.
    fn refresh_all(&mut self, create: bool) -> Result<(DbLock, File, Option<File>)> {
        let lock = self.lock()?;
        let index = self.open_index()?;
        self.refresh(&index)?;
        let name = "reserved.txt";
        let reserved = if create {
            Some(self.dir.open_append(name)?)
        } else if self.dir.open_read(name)?.is_some() {
            Some(self.dir.open_file(name, OFlags::RDWR | OFlags::APPEND)?)
        } else {
            None
        };
        if let Some(file) = &reserved {
            let read = self.known.reserved_tail.read(
                &self.dir,
                file,
                name,
                reserve::RESERVED_MAX,
                5,
                Reservation::parse,
            )?;
            if read.restart {
                self.known.reserved.clear();
            }
            for (line, r) in read.lines {
                self.known.reserved.insert(r.serial, (line, r.tbs_sha256));
            }
        }
        Ok((lock, index, reserved))
    }

    /// index.txt.attr's unique_subject.
    fn unique_subject(&self) -> Result<bool> {
        Ok(rules::unique_subject(self.read_file("index.txt.attr", ATTR_MAX)?.as_deref()))
    }

    /// The CA this database belongs to (its DER Name), if recorded.
    pub fn issuer(&self) -> Result<Option<Vec<u8>>> {
        self.read_file("issuer.der", ISSUER_MAX)
    }

    /// Takes the lock and checks a batch against the database: how many of
    /// it may be recorded, and the error that stops the rest (a serial
    /// already present, one reserved for another TBS, a subject already
    /// valid under unique_subject, or another CA's certificate). Nothing
    /// is written until [`Pending::commit`]; [`Pending::commit_with`]'s
    /// hook lets a caller do its other steps (the log, the token) in the
    /// middle of it, under the same lock.
    ///
    /// A certificate that arrives after `--reconcile` revoked its
    /// reservation (the same serial and TBS hash, a revoked line, no file
    /// yet) is late, not a duplicate: its file is recorded, its line
    /// stays as it is.
    pub fn check(&mut self, batch: &[Record]) -> Result<Pending<'_>> {
        let (lock, index, _) = self.refresh_all(false)?;
        let unique = self.unique_subject()?;
        let mut owner = self.issuer()?;
        let adopt = owner.is_none();
        let (late, refused) = rules::check_batch(&Files(self), batch, unique, |r| match &owner {
            Some(o) if *o != r.issuer => Ok(Some(self.other_ca(&r.entry.serial, &r.issuer, o))),
            Some(_) => Ok(None),
            None => {
                // First certificate cardca records here: the files of
                // what is already recorded must agree.
                self.check_files_issued_by(&r.issuer)?;
                owner = Some(r.issuer.clone());
                Ok(None)
            }
        })?;
        let owner = owner.filter(|_| adopt && !late.is_empty());
        Ok(Pending { db: self, _lock: lock, index, late, refused, adopt: owner })
    }

    /// Every line of index.txt, read under the lock.
    pub fn entries(&mut self) -> Result<Vec<Entry>> {
        let _lock = self.lock()?;
        let index = self.open_index()?;
        self.refresh(&index)?;
        self.read_entries()
    }

    fn read_entries(&self) -> Result<Vec<Entry>> {
        let text = self.read_file("index.txt", INDEX_MAX)?.unwrap_or_default();
        let text = String::from_utf8(text).map_err(|_| Error::new("index.txt is not ASCII"))?;
        text.lines()
            .enumerate()
            .map(|(i, line)| {
                Entry::parse(line)
                    .map_err(|e| e.context(format!("{} line {}", self.path("index.txt").display(), i + 1)))
            })
            .collect()
    }

    /// Marks certificates revoked, all or none: every serial must be in
    /// the database and not yet revoked. index.txt is rewritten to a new
    /// file and renamed over the old one, so a crash leaves one or the other.
    /// `before_replace` gets the entries as revoked, once they are checked
    /// and before index.txt is replaced (the audit log records them
    /// first); an error there changes nothing.
    pub fn revoke(
        &mut self,
        serials: &[String],
        when: &str,
        reason: Option<&str>,
        before_replace: impl FnOnce(&[Entry]) -> Result<()>,
    ) -> Result<Vec<Entry>> {
        let (_lock, _index, _reserved) = self.refresh_all(false)?;
        let path = self.path("index.txt");
        let mut entries = self.read_entries()?;
        let mut done = Vec::new();
        for serial in serials {
            let entry = entries.iter_mut().find(|e| &e.serial == serial).ok_or_else(|| {
                let e = Error::new(format!("serial {serial} is not in {}", path.display()));
                match self.known.reserved.get(serial) {
                    Some((line, _)) => e.hint(format!(
                        "{} line {line} reserved it and no certificate was recorded: cert-store --reconcile \
                         revokes it",
                        self.path("reserved.txt").display()
                    )),
                    None => e,
                }
            })?;
            if entry.status == 'R' {
                return Err(Error::new(format!("serial {serial} is already revoked ({})", entry.revocation)));
            }
            entry.status = 'R';
            entry.revocation = index::revocation_text(when, reason);
            done.push(entry.clone());
        }
        let text: String = entries.iter().map(Entry::line).collect();
        before_replace(&done)?;
        self.dir.replace("index.txt", text.as_bytes())?;
        Ok(done)
    }

    /// For a CRL, under one lock: the next CRL number, taken (the one
    /// after it stored durably), and every line of index.txt, so that a
    /// CRL with a higher number never lists less than one before it.
    pub fn crl(&mut self) -> Result<(Vec<u8>, Vec<Entry>)> {
        let _lock = self.lock()?;
        let index = self.open_index()?;
        self.refresh(&index)?;
        let entries = self.read_entries()?;
        let current = rules::crl_number_of(self.read_file("crlnumber", CRLNUMBER_MAX)?.as_deref())?;
        self.dir.replace("crlnumber", rules::crl_number_text(&rules::next_number(&current)).as_bytes())?;
        Ok((current, entries))
    }

    /// Writes a certificate file that no line names: created with O_EXCL
    /// (a planted link is never written through); a regular file already
    /// there is an orphan a crash left before its line, replaced.
    fn write_certificate(&self, r: &Record) -> Result<()> {
        let name = format!("{}.pem", r.entry.serial);
        let written =
            self.certs.create_fresh(&name)?.write_all(crate::io::pem("CERTIFICATE", &r.der).as_bytes());
        if let Err(e) = written {
            let _ = self.certs.remove(&name);
            return Err(Error::from(e).context(format!("writing {}", self.certs.join(&name).display())));
        }
        Ok(())
    }
}

/// A checked batch, under the database's lock until committed or dropped.
pub struct Pending<'a> {
    db: &'a mut Db,
    _lock: DbLock,
    index: File,
    /// For each of the accepted prefix: whether it is late (its revoked
    /// line is there already; only its file is written).
    late: Vec<bool>,
    refused: Option<Error>,
    /// The issuer to record in issuer.der with this batch (first use).
    adopt: Option<Vec<u8>>,
}

impl Pending<'_> {
    /// For each of the accepted prefix (how many of the batch may be
    /// recorded), whether it arrives after `--reconcile` revoked it.
    pub fn late_flags(&self) -> &[bool] {
        &self.late
    }

    /// Why the rest of the batch is refused, if it is.
    pub fn refused(&self) -> Option<&Error> {
        self.refused.as_ref()
    }

    /// Records the accepted prefix of the batch. Returns the error that
    /// refused the rest, if any.
    pub fn commit(self, batch: &[Record]) -> Result<Option<Error>> {
        self.commit_with(batch, || Ok(()))
    }

    /// [`Pending::commit`], calling `before_index` once the certificate
    /// files are durable and before any index line is written (cert-store
    /// writes the audit log there, then the card: whatever the card or
    /// index.txt records is logged, a file that cannot be written is never
    /// logged as stored, and a card that fails leaves no index line).
    pub fn commit_with(
        self,
        batch: &[Record],
        before_index: impl FnOnce() -> Result<()>,
    ) -> Result<Option<Error>> {
        let batch = &batch[..self.late.len().min(batch.len())];
        if batch.is_empty() {
            before_index()?;
            return Ok(self.refused);
        }
        let db = self.db;
        // 1. Every certificate file, then one syncfs for all of them: the
        //    files are durable before any line names them.
        for r in batch {
            db.write_certificate(r)?;
        }
        rustix::fs::syncfs(&self.index).map_err(|e| Error::new(format!("syncfs: {e}")))?;
        if let Some(issuer) = &self.adopt {
            db.dir.create_new("issuer.der", issuer)?;
        }
        before_index()?;
        // 2. All index lines in one append, made durable; on failure the
        //    index is cut back to where it was. A late certificate has its
        //    line already.
        let new: Vec<&Record> =
            batch.iter().zip(&self.late).filter(|(_, late)| !**late).map(|(r, _)| r).collect();
        if !new.is_empty() {
            let lines: String = new.iter().map(|r| r.entry.line()).collect();
            db.known.index.append(&self.index, "index.txt", &lines, new.len())?;
            let first = db.known.index.lines - new.len();
            for (i, r) in new.iter().enumerate() {
                db.known.add(first + i + 1, &r.entry);
            }
        }
        Ok(self.refused)
    }
}

/// index.txt and reserved.txt as the record's rules ask them (`rules`).
struct Files<'a>(&'a Db);

impl rules::View for Files<'_> {
    fn issued(&self, serial: &str) -> Option<String> {
        let line = self.0.known.serials.get(serial)?;
        Some(format!("{} line {line}", self.0.path("index.txt").display()))
    }
    fn reservation(&self, serial: &str) -> Option<(String, String)> {
        let (line, hash) = self.0.known.reserved.get(serial)?;
        Some((format!("{} line {line}", self.0.path("reserved.txt").display()), hash.clone()))
    }
    fn revoked(&self, serial: &str) -> Option<&Entry> {
        self.0.known.revoked.get(serial)
    }
    fn valid_subject(&self, subject: &str) -> Option<String> {
        self.0.known.valid_subjects.get(subject).cloned()
    }
    fn has_certificate(&self, serial: &str) -> Result<bool> {
        Ok(self.0.certs.open_read(&format!("{serial}.pem"))?.is_some())
    }
    fn attr_place(&self) -> String {
        self.0.path("index.txt.attr").display().to_string()
    }
    fn shown(&self) -> String {
        self.0.dir().display().to_string()
    }
    fn index_place(&self) -> String {
        self.0.path("index.txt").display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cardca-db-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    const LINE: &str = "V\t270101000000Z\t\t01\tunknown\t/CN=a\n";

    /// Adopting a database reads its serials as every reader does: a
    /// serial field that is a path never names a file.
    #[test]
    fn adoption_refuses_a_serial_that_is_a_path() {
        let dir = scratch("adopt");
        let db = Db::open(&dir).expect("open");
        std::fs::write(dir.join("secret.pem"), "not a certificate").expect("write");
        std::fs::write(dir.join("index.txt"), "V\t270101000000Z\t\t../secret\tunknown\t/CN=a\n")
            .expect("write");
        let e = db.check_files_issued_by(b"issuer").expect_err("refused");
        assert!(e.to_string().contains("index.txt line 1"), "{e}");
        std::fs::write(dir.join("index.txt"), LINE).expect("write");
        db.check_files_issued_by(b"issuer").expect("no file for serial 01");
    }

    #[test]
    fn links_are_refused() {
        let dir = scratch("links");
        let mut db = Db::open(&dir).expect("open");
        let elsewhere = scratch("links-elsewhere");
        std::fs::create_dir_all(&elsewhere).expect("mkdir");
        std::os::unix::fs::symlink(elsewhere.join("crlnumber"), dir.join("crlnumber")).expect("link");
        let e = db.crl().expect_err("link").to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!elsewhere.join("crlnumber").exists());
        std::fs::remove_dir(dir.join("certs")).expect("rmdir");
        std::os::unix::fs::symlink(&elsewhere, dir.join("certs")).expect("link");
        assert!(Db::open(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&elsewhere);
    }

    /// A FIFO or an oversized file in place of a database file is refused
    /// at once (on a thread, so that a regression fails, not hangs).
    #[test]
    fn fifos_and_huge_files_are_refused() {
        let dir = scratch("fifo");
        drop(Db::open(&dir).expect("open"));
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.clone();
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            for name in ["index.txt", "issuer.der", "crlnumber"] {
                let saved = std::fs::read(path.join(name)).ok();
                let _ = std::fs::remove_file(path.join(name));
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    path.join(name),
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o644),
                    0,
                )
                .expect("mkfifo");
                let mut db = Db::open(&path).expect("open");
                // The read of `name` each refusal is about.
                let mut read = |db: &mut Db| {
                    let e = match name {
                        "index.txt" => db.entries().map(|_| ()),
                        "issuer.der" => db.issuer().map(|_| ()),
                        _ => db.crl().map(|_| ()),
                    };
                    errors.push(e.map_err(|e| e.to_string()));
                };
                read(&mut db);
                std::fs::remove_file(path.join(name)).expect("rm");
                File::create(path.join(name)).and_then(|f| f.set_len(1 << 30)).expect("sparse");
                read(&mut db);
                std::fs::remove_file(path.join(name)).expect("rm");
                if let Some(data) = saved {
                    std::fs::write(path.join(name), data).expect("restore");
                }
            }
            let _ = tx.send(errors);
        });
        let errors = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("it blocked");
        assert_eq!(errors.len(), 6);
        for (i, e) in errors.into_iter().enumerate() {
            let e = e.expect_err("refused");
            let why = if i % 2 == 0 { "is a FIFO, not a regular file: refused" } else { "is larger than" };
            assert!(e.contains(why), "{e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
