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
//! files are replaced by renaming a temporary file in DIR.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use x509_cert::name::Name;
use x509_cert::time::Time;

use crate::cert::{self, CaCert, TbsCert};
use crate::error::{Context, Error, Result};
use crate::sign::{self, SigAlg};

/// RFC 5280 section 5.3.1 reason codes that `--revoke --reason` may
/// write, with the names OpenSSL writes into index.txt. `unspecified` is
/// left out: RFC 5280 says to omit the reason code instead.
pub const REASONS: &[(&str, u8)] = &[
    ("keyCompromise", 1),
    ("CACompromise", 2),
    ("affiliationChanged", 3),
    ("superseded", 4),
    ("cessationOfOperation", 5),
    ("certificateHold", 6),
];

/// Every reason `openssl ca` may write (apps/ca.c `crl_reasons`); the last
/// three carry a third, comma-separated field (an OID or a time).
const OPENSSL_REASONS: &[&str] = &[
    "unspecified",
    "keyCompromise",
    "CACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "removeFromCRL",
    "holdInstruction",
    "keyTime",
    "CAkeyTime",
];

pub fn reason_code(name: &str) -> Option<u8> {
    REASONS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, c)| *c)
}

/// A serial as index.txt writes it: the integer's value in upper-case hex,
/// an even number of digits, no sign octet.
pub fn serial_hex(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len().saturating_sub(1));
    crate::hex::encode_upper(&bytes[start..])
}

/// A serial typed by an operator: hex, any case, colons allowed.
pub fn parse_serial(text: &str) -> Result<String> {
    Ok(serial_hex(&crate::hex::decode(text).map_err(|e| e.context("serial"))?))
}

/// The text of an X.509 time as OpenSSL stores it: `YYMMDDHHMMSSZ` for
/// UTCTime, `YYYYMMDDHHMMSSZ` for GeneralizedTime.
pub fn time_text(time: &Time) -> Result<String> {
    let der = time.to_der()?;
    String::from_utf8(der[2..].to_vec()).map_err(|_| Error::new("time is not ASCII"))
}

/// The reverse of [`time_text`]: index.txt's time as an X.509 time.
pub fn parse_time_text(text: &str) -> Result<Time> {
    let tag = match text.len() {
        13 => 0x17,
        15 => 0x18,
        _ => return Err(Error::new(format!("time {text:?} is neither UTCTime nor GeneralizedTime"))),
    };
    let mut der = vec![tag, text.len() as u8];
    der.extend_from_slice(text.as_bytes());
    Time::from_der(&der).map_err(|e| Error::new(format!("time {text:?}: {e}")))
}

/// A DER Name in one-line form, for messages.
fn name_text(der: &[u8]) -> String {
    Name::from_der(der)
        .map(|n| crate::names::openssl_oneline(&n))
        .unwrap_or_else(|_| "an unreadable name".into())
}

/// One index.txt line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: char,
    pub expiry: String,
    /// `TIME`, `TIME,reason` or `TIME,reason,extra`; empty unless revoked.
    pub revocation: String,
    pub serial: String,
    pub file: String,
    pub subject: String,
}

/// What a revoked line puts into a full CRL.
#[derive(Debug, PartialEq, Eq)]
pub enum CrlEntry<'a> {
    /// Listed, with the RFC 5280 reason code (none for no reason and for
    /// `unspecified`, which RFC 5280 says to omit).
    Listed { time: &'a str, reason: Option<u8> },
    /// `removeFromCRL`: a hold was lifted; the certificate is valid again
    /// and stays out of a full CRL (RFC 5280 section 5.3.1).
    Lifted,
}

impl Entry {
    /// One line, without its newline. Refuses anything `openssl ca` would
    /// not have written.
    pub fn parse(line: &str) -> Result<Entry> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 6 {
            return Err(Error::new(format!(
                "{} tab-separated fields, not 6 (status, expiry, revocation, serial, file, subject)",
                f.len()
            )));
        }
        let status = match f[0] {
            "V" => 'V',
            "R" => 'R',
            "E" => 'E',
            other => return Err(Error::new(format!("status {other:?} is not V, R or E"))),
        };
        parse_time_text(f[1]).context("expiry")?;
        if f[3].is_empty() || !f[3].bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::new(format!("serial {:?} is not hex", f[3])));
        }
        if f[4].is_empty() {
            return Err(Error::new("the file name field is empty (openssl writes \"unknown\")"));
        }
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(Error::new(format!("a raw control character {c:?}")));
        }
        let entry = Entry {
            status,
            expiry: f[1].into(),
            revocation: f[2].into(),
            serial: f[3].to_ascii_uppercase(),
            file: f[4].into(),
            subject: f[5].into(),
        };
        match (status, entry.revocation.is_empty()) {
            ('R', true) => return Err(Error::new("a revoked line without a revocation time")),
            ('R', false) => {
                entry.crl_entry()?;
            }
            (_, false) => return Err(Error::new(format!("a revocation on a line with status {status}"))),
            (_, true) => {}
        }
        Ok(entry)
    }

    pub fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            self.status, self.expiry, self.revocation, self.serial, self.file, self.subject
        )
    }

    /// The revocation as a CRL lists it: time and reason code. Every
    /// reason `openssl ca` writes is read; `holdInstruction` (with its
    /// OID) is a hold, `keyTime`/`CAkeyTime` (with their invalidity time)
    /// are key and CA compromises; the extra field is checked, not listed
    /// (the hold instruction code left RFC 5280).
    pub fn crl_entry(&self) -> Result<CrlEntry<'_>> {
        let mut parts = self.revocation.splitn(3, ',');
        let time = parts.next().unwrap_or_default();
        parse_time_text(time).context("revocation time")?;
        let (reason, extra) = (parts.next(), parts.next());
        let Some(reason) = reason else {
            return Ok(CrlEntry::Listed { time, reason: None });
        };
        let name = OPENSSL_REASONS
            .iter()
            .find(|n| n.eq_ignore_ascii_case(reason))
            .ok_or_else(|| Error::new(format!("unknown revocation reason {reason:?}")))?;
        let needs_extra = matches!(*name, "holdInstruction" | "keyTime" | "CAkeyTime");
        match extra {
            None if needs_extra => return Err(Error::new(format!("reason {name} without its third field"))),
            Some(x) if !needs_extra => {
                return Err(Error::new(format!("reason {name} with an extra field {x:?}")))
            }
            Some(x) if *name != "holdInstruction" => {
                parse_time_text(x).with_context(|| format!("{name} time"))?;
            }
            // openssl writes the hold instruction's name or OID.
            Some("") => return Err(Error::new("holdInstruction without its instruction")),
            Some(_) => {}
            None => {}
        }
        let reason = match *name {
            "unspecified" => None,
            "removeFromCRL" => return Ok(CrlEntry::Lifted),
            "holdInstruction" => Some(6),
            "keyTime" => Some(1),
            "CAkeyTime" => Some(2),
            other => reason_code(other),
        };
        Ok(CrlEntry::Listed { time, reason })
    }
}

/// A certificate ready to be recorded.
pub struct Record {
    pub der: Vec<u8>,
    pub entry: Entry,
    /// The DER of the certificate's issuer Name.
    pub issuer: Vec<u8>,
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
            serial: serial_hex(tbs.serial_number.as_bytes()),
            file: "unknown".into(),
            subject: crate::names::openssl_oneline(&tbs.subject),
        };
        Ok(Record { issuer: tbs.issuer.to_der()?, der, entry })
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

/// What this run knows of index.txt: read whole once, then only what was
/// appended since (under the lock, so nothing else is appending then).
#[derive(Default)]
struct Known {
    /// The index file this describes (device, inode) and how far it was read.
    file: Option<(u64, u64)>,
    len: u64,
    lines: usize,
    /// Every serial, with its line number.
    serials: HashMap<String, usize>,
    /// The subjects of valid (V) lines, for unique_subject, with their serial.
    valid_subjects: HashMap<String, String>,
}

impl Known {
    fn add(&mut self, e: &Entry) {
        self.lines += 1;
        self.serials.insert(e.serial.clone(), self.lines);
        if e.status == 'V' {
            self.valid_subjects.insert(e.subject.clone(), e.serial.clone());
        }
    }
}

pub struct Db {
    dir: PathBuf,
    fd: OwnedFd,
    certs: OwnedFd,
    known: Known,
    notes: Vec<String>,
}

/// The exclusive lock on a database, released on drop.
pub struct DbLock(#[allow(dead_code)] File);

/// Replaces `name` in the directory `fd` (shown as `dir`) so that a
/// reader sees the old file or the new one, never half of either: the
/// content goes to `tmp` (created with O_EXCL, never through a link),
/// is fsynced, and is renamed over `name`. The caller fsyncs the
/// directory when the rename must be durable. A target that is a symbolic
/// link or not a plain file is refused, not replaced.
fn replace_at(fd: &OwnedFd, dir: &Path, name: &str, tmp: &str, content: &[u8]) -> Result<()> {
    let path = dir.join(name);
    if let Ok(st) = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW) {
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(refuse_links(Errno::LOOP, &path));
        }
    }
    // unlink removes a link itself, never its target.
    let _ = rustix::fs::unlinkat(fd, tmp, AtFlags::empty());
    let result = (|| -> Result<()> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut f = File::from(
            rustix::fs::openat(fd, tmp, flags, Mode::from_raw_mode(FILE_MODE))
                .map_err(|e| refuse_links(e, &dir.join(tmp)))?,
        );
        f.write_all(content)?;
        f.sync_all()?;
        rustix::fs::renameat(fd, tmp, fd, name).map_err(std::io::Error::from)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(fd, tmp, AtFlags::empty());
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// A directory of files served as they are (OCSP responses for a web
/// server's stapling), replaced in batches so that a reader sees each
/// file's old content or its new one, never half of either: every new
/// file goes to a temporary name of this process (O_EXCL, never through a
/// link), all are fsynced (several at once), each is renamed over its
/// target, and one fsync of the directory makes the renames durable.
/// Nothing inside is followed if it is a link.
pub struct ServeDir {
    dir: PathBuf,
    fd: OwnedFd,
}

impl ServeDir {
    /// Opens `dir`, creating it if needed; `dir` itself may be a link.
    pub fn open(dir: &Path) -> Result<ServeDir> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let fd = rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| refuse_links(e, dir))?;
        Ok(ServeDir { dir: dir.to_path_buf(), fd })
    }

    /// The content of the plain file `name` in the directory, or None when
    /// there is none; a link or anything but a plain file is refused. At
    /// most `max` bytes.
    pub fn read(&self, name: &str, max: usize) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(name);
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(Error::new(format!(
                    "{} is a symbolic link (or not a plain file): refused, not replaced or followed",
                    path.display()
                )))
            }
            Err(e) => return Err(Error::from(std::io::Error::from(e)).context(path.display().to_string())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::from(std::io::Error::from(e)))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Error::new(format!("{} is not a plain file", path.display())));
        }
        let mut content = Vec::new();
        File::from(fd)
            .take(max as u64 + 1)
            .read_to_end(&mut content)
            .with_context(|| format!("reading {}", path.display()))?;
        if content.len() > max {
            return Err(Error::new(format!("{} is larger than {max} bytes", path.display())));
        }
        Ok(Some(content))
    }

    /// Replaces each `(name, content)`, names plain (no slash, no leading
    /// dot); a later entry for the same name wins. `before_rename` runs
    /// once every new file is durable and before any is renamed into place
    /// (where a server may read it): an error there replaces nothing. On
    /// an error, the files renamed before it stay replaced and no temporary
    /// file is left.
    pub fn replace_all(
        &self,
        files: &[(String, &[u8])],
        before_rename: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mut temps: Vec<(String, &str)> = Vec::new();
        let mut written: Vec<File> = Vec::new();
        let result = (|| -> Result<()> {
            for (i, (name, content)) in files.iter().enumerate() {
                if name.is_empty() || name.contains('/') || name.starts_with('.') {
                    return Err(Error::new(format!("{name:?} is not a plain file name")));
                }
                let path = self.dir.join(name);
                if let Ok(st) = rustix::fs::statat(&self.fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                        return Err(Error::new(format!(
                            "{} is a symbolic link (or not a plain file): refused, not replaced or followed",
                            path.display()
                        )));
                    }
                }
                let tmp = format!(".{name}.{}.{i}.tmp", std::process::id());
                // One a crashed run of the same pid left behind is ours.
                let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
                let flags =
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(&self.fd, tmp.as_str(), flags, Mode::from_raw_mode(FILE_MODE))
                    .map_err(|e| refuse_links(e, &self.dir.join(&tmp)))?;
                temps.push((tmp, name));
                let mut file = File::from(fd);
                file.write_all(content).with_context(|| format!("writing {}", path.display()))?;
                written.push(file);
            }
            sync_files(&written)
                .with_context(|| format!("syncing the new files in {}", self.dir.display()))?;
            drop(written);
            before_rename()?;
            while let Some((tmp, name)) = temps.first() {
                rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, *name)
                    .map_err(|e| Error::from(std::io::Error::from(e)))
                    .with_context(|| format!("renaming into {}", self.dir.join(name).display()))?;
                temps.remove(0);
            }
            rustix::fs::fsync(&self.fd)
                .map_err(|e| Error::from(std::io::Error::from(e)))
                .with_context(|| format!("syncing {}", self.dir.display()))
        })();
        for (tmp, _) in temps {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        result
    }
}

/// fsync of every file, from a few threads at once: the disk then
/// completes many small writes per round trip, and the files of a batch
/// are durable in a fraction of the time one after another would take
/// (a syncfs would also wait for everything else dirty on the file
/// system, which on a busy machine is far more).
fn sync_files(files: &[File]) -> std::io::Result<()> {
    const THREADS: usize = 8;
    let per = files.len().div_ceil(THREADS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per)
            .map(|chunk| scope.spawn(move || chunk.iter().try_for_each(File::sync_all)))
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().unwrap_or_else(|_| Err(std::io::Error::other("sync thread panicked"))))
    })
}

/// Nothing inside the database is followed: a link in it is an error.
fn refuse_links(e: Errno, path: &Path) -> Error {
    if e == Errno::LOOP || e == Errno::NOTDIR {
        Error::new(format!(
            "{} is a symbolic link (or not a plain file or directory): refused, nothing inside a CA database is followed",
            path.display()
        ))
    } else {
        Error::from(std::io::Error::from(e)).context(path.display().to_string())
    }
}

const FILE_MODE: u32 = 0o644;

impl Db {
    /// Opens the database in `dir`, creating it on first use. `dir` itself
    /// may be reached through a link; nothing inside it is.
    pub fn open(dir: &Path) -> Result<Db> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the database {}", dir.display()))?;
        let fd = rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| refuse_links(e, dir))?;
        match rustix::fs::mkdirat(&fd, "certs", Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(refuse_links(e, &dir.join("certs"))),
        }
        let certs = rustix::fs::openat(
            &fd,
            "certs",
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| refuse_links(e, &dir.join("certs")))?;
        let db = Db { dir: dir.to_path_buf(), fd, certs, known: Known::default(), notes: Vec::new() };
        let _lock = db.lock()?;
        // A new database says unique_subject = no; an existing one without
        // index.txt.attr keeps openssl's default, yes.
        if db.create_new("index.txt", b"")? {
            db.create_new("index.txt.attr", b"unique_subject = no\n")?;
        }
        Ok(db)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Warnings for the tool to print (repairs made): the library never prints.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn open_file(&self, name: &str, flags: OFlags) -> Result<File> {
        rustix::fs::openat(
            &self.fd,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(FILE_MODE),
        )
        .map(File::from)
        .map_err(|e| refuse_links(e, &self.path(name)))
    }

    /// Reads a whole file of the database; None if it does not exist.
    fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                let mut data = Vec::new();
                File::from(fd)
                    .read_to_end(&mut data)
                    .with_context(|| format!("reading {}", self.path(name).display()))?;
                Ok(Some(data))
            }
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(refuse_links(e, &self.path(name))),
        }
    }

    /// Creates a file that must not exist yet, durably; false if it existed.
    fn create_new(&self, name: &str, content: &[u8]) -> Result<bool> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let mut file = match rustix::fs::openat(
            &self.fd,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(FILE_MODE),
        ) {
            Ok(fd) => File::from(fd),
            Err(Errno::EXIST) => return Ok(false),
            Err(e) => return Err(refuse_links(e, &self.path(name))),
        };
        let ctx = || format!("creating {}", self.path(name).display());
        file.write_all(content).and_then(|_| file.sync_all()).with_context(ctx)?;
        rustix::fs::fsync(&self.fd).map_err(|e| Error::from(std::io::Error::from(e))).with_context(ctx)?;
        Ok(true)
    }

    /// Replaces a whole file so that a crash leaves the old or the new
    /// one: a temporary file in DIR (O_EXCL), fsync, rename, fsync of DIR.
    /// A target that is a symbolic link is refused, not replaced.
    fn replace(&self, name: &str, content: &[u8]) -> Result<()> {
        // Under the database lock, so one fixed temporary name will do; a
        // temporary file a crash left behind is ours to remove.
        let tmp = format!("{name}.tmp");
        replace_at(&self.fd, &self.dir, name, &tmp, content)?;
        rustix::fs::fsync(&self.fd)
            .map_err(|e| Error::from(std::io::Error::from(e)))
            .with_context(|| format!("writing {}", self.path(name).display()))
    }

    pub fn lock(&self) -> Result<DbLock> {
        let file = self.open_file(".lock", OFlags::RDWR | OFlags::CREATE)?;
        file.lock().with_context(|| format!("locking {}", self.dir.display()))?;
        Ok(DbLock(file))
    }

    fn open_index(&self) -> Result<File> {
        self.open_file("index.txt", OFlags::RDWR | OFlags::APPEND)
    }

    /// Brings `known` up to date with index.txt: the whole file the first
    /// time (or after it was replaced), then only what was appended. Under
    /// the lock. Every complete line must parse, or this fails naming it;
    /// only a torn last line (unparsable and without its newline: a write
    /// that was interrupted) is cut off. A complete last line that lacks
    /// its newline (a hand edit) is kept and terminated.
    fn refresh(&mut self, index: &File) -> Result<()> {
        let st = rustix::fs::fstat(index).map_err(std::io::Error::from)?;
        let id = (st.st_dev, st.st_ino);
        let len = st.st_size as u64;
        if self.known.file != Some(id) || len < self.known.len {
            self.known = Known { file: Some(id), ..Known::default() };
        }
        let mut reader = index;
        reader.seek(SeekFrom::Start(self.known.len))?;
        let mut data = Vec::new();
        reader.read_to_end(&mut data).context("reading index.txt")?;
        let mut parsed = Vec::new();
        let mut line_no = self.known.lines;
        let mut rest = &data[..];
        while !rest.is_empty() {
            line_no += 1;
            let (line, terminated) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[(line.len() + 1).min(rest.len())..];
            let entry = std::str::from_utf8(line).map_err(|_| Error::new("not ASCII")).and_then(Entry::parse);
            match (entry, terminated) {
                (Ok(e), true) => parsed.push(e),
                (Ok(e), false) => {
                    (&*index)
                        .write_all(b"\n")
                        .and_then(|_| index.sync_data())
                        .context("terminating index.txt")?;
                    self.notes.push(format!(
                        "{} line {line_no} lacked its final newline; kept it and added the newline",
                        self.path("index.txt").display()
                    ));
                    parsed.push(e);
                }
                (Err(_), false) => {
                    let keep = self.known.len + (data.len() - line.len()) as u64;
                    index.set_len(keep).and_then(|_| index.sync_data()).context("cutting index.txt")?;
                    self.notes.push(format!(
                        "{} ended in a torn line {line_no} (an interrupted write); cut it off",
                        self.path("index.txt").display()
                    ));
                }
                (Err(e), true) => {
                    return Err(e
                        .context(format!("{} line {line_no}", self.path("index.txt").display()))
                        .hint("nothing was changed; correct or remove that line by hand"))
                }
            }
        }
        for e in &parsed {
            self.known.add(e);
        }
        self.known.len = rustix::fs::fstat(index).map_err(std::io::Error::from)?.st_size as u64;
        Ok(())
    }

    /// index.txt.attr's unique_subject, read as openssl reads it: missing
    /// file or key means yes; a value starting with y/Y/t/T is yes.
    fn unique_subject(&self) -> Result<bool> {
        let Some(data) = self.read_file("index.txt.attr")? else {
            return Ok(true);
        };
        let text = String::from_utf8_lossy(&data);
        for line in text.lines() {
            if let Some((key, value)) = line.split_once('=') {
                if key.trim() == "unique_subject" {
                    return Ok(matches!(value.trim().bytes().next(), Some(b'y' | b'Y' | b't' | b'T')));
                }
            }
        }
        Ok(true)
    }

    /// The CA this database belongs to (its DER Name), if recorded.
    pub fn issuer(&self) -> Result<Option<Vec<u8>>> {
        self.read_file("issuer.der")
    }

    /// Takes the lock and checks a batch against the database: how many of
    /// it may be recorded, and the error that stops the rest (a serial
    /// already present, a subject already valid under unique_subject, or
    /// another CA's certificate). Nothing is written until
    /// [`Pending::commit`], so a caller can do its other steps (the
    /// token) in between, under the same lock.
    pub fn check(&mut self, batch: &[Record]) -> Result<Pending<'_>> {
        let lock = self.lock()?;
        let index = self.open_index()?;
        self.refresh(&index)?;
        let unique = self.unique_subject()?;
        let mut owner = self.issuer()?;
        let adopt = owner.is_none();
        let mut fresh = HashSet::new();
        let mut subjects = HashMap::new();
        let mut refused = None;
        let mut count = 0;
        let index_path = self.path("index.txt");
        for r in batch {
            let problem = if let Some(line) = self.known.serials.get(&r.entry.serial) {
                Some(format!(
                    "serial {} is already in {} (line {line})",
                    r.entry.serial,
                    index_path.display()
                ))
            } else if !fresh.insert(r.entry.serial.clone()) {
                Some(format!("serial {} comes twice", r.entry.serial))
            } else if let Some(other) = unique
                .then(|| self.known.valid_subjects.get(&r.entry.subject).or(subjects.get(&r.entry.subject)))
                .flatten()
            {
                Some(format!(
                    "subject {} already has a valid certificate (serial {other}) and {} says unique_subject = yes",
                    r.entry.subject,
                    self.path("index.txt.attr").display()
                ))
            } else {
                match &owner {
                    Some(o) if *o != r.issuer => Some(self.other_ca(&r.entry.serial, &r.issuer, o)),
                    Some(_) => None,
                    None => {
                        // First certificate cardca records here: the files
                        // of what is already recorded must agree.
                        self.check_files_issued_by(&r.issuer)?;
                        owner = Some(r.issuer.clone());
                        None
                    }
                }
            };
            if let Some(p) = problem {
                refused = Some(Error::new(format!("{p}; nothing was recorded for it")));
                break;
            }
            subjects.insert(r.entry.subject.clone(), r.entry.serial.clone());
            count += 1;
        }
        let owner = owner.filter(|_| adopt && count > 0);
        Ok(Pending { db: self, _lock: lock, index, count, refused, adopt: owner })
    }

    fn other_ca(&self, serial: &str, issuer: &[u8], owner: &[u8]) -> String {
        format!(
            "serial {serial} is issued by {}, but {} is the database of {} (one database per CA)",
            name_text(issuer),
            self.dir.display(),
            name_text(owner)
        )
    }

    /// For a database that does not yet say whose it is (made by openssl
    /// ca, or by an older cardca): every certificate file found for its
    /// lines (`certs/` or openssl's `newcerts/`) must be issued by
    /// `issuer`. Once per database, when it is adopted.
    pub fn check_files_issued_by(&self, issuer: &[u8]) -> Result<()> {
        let text = self.read_file("index.txt")?.unwrap_or_default();
        for line in String::from_utf8_lossy(&text).lines() {
            let Some(serial) = line.split('\t').nth(3) else { continue };
            let serial = serial.to_ascii_uppercase();
            if let Some(der) = self.certificate(&serial)? {
                let c = x509_cert::Certificate::from_der(&der)
                    .with_context(|| format!("the certificate file of serial {serial}"))?;
                let theirs = c.tbs_certificate().issuer().to_der()?;
                if theirs != issuer {
                    return Err(Error::new(format!(
                        "{} already holds serial {serial}, issued by {}: it is not the database of {} (one database per CA)",
                        self.dir.display(),
                        name_text(&theirs),
                        name_text(issuer)
                    ))
                    .hint("give each CA its own database directory"));
                }
            }
        }
        Ok(())
    }

    /// Every line of index.txt, read under the lock.
    pub fn entries(&mut self) -> Result<Vec<Entry>> {
        let _lock = self.lock()?;
        let index = self.open_index()?;
        self.refresh(&index)?;
        self.read_entries()
    }

    fn read_entries(&self) -> Result<Vec<Entry>> {
        let text = self.read_file("index.txt")?.unwrap_or_default();
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
        let _lock = self.lock()?;
        let index = self.open_index()?;
        self.refresh(&index)?;
        let path = self.path("index.txt");
        let mut entries = self.read_entries()?;
        let mut done = Vec::new();
        for serial in serials {
            let entry = entries
                .iter_mut()
                .find(|e| &e.serial == serial)
                .ok_or_else(|| Error::new(format!("serial {serial} is not in {}", path.display())))?;
            if entry.status == 'R' {
                return Err(Error::new(format!("serial {serial} is already revoked ({})", entry.revocation)));
            }
            entry.status = 'R';
            entry.revocation = match reason {
                Some(r) => format!("{when},{r}"),
                None => when.to_string(),
            };
            done.push(entry.clone());
        }
        let text: String = entries.iter().map(Entry::line).collect();
        before_replace(&done)?;
        self.replace("index.txt", text.as_bytes())?;
        Ok(done)
    }

    /// Takes the next CRL number and stores the one after it durably.
    pub fn next_crl_number(&self) -> Result<Vec<u8>> {
        let _lock = self.lock()?;
        let current = match self.read_file("crlnumber")? {
            Some(data) => crate::hex::decode(String::from_utf8_lossy(&data).trim()).context("crlnumber")?,
            None => vec![1],
        };
        let mut next = current.clone();
        // Big-endian increment.
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
        self.replace("crlnumber", format!("{}\n", serial_hex(&next)).as_bytes())?;
        Ok(current)
    }

    /// The certificate file of a serial, where cardca (`certs/`) or
    /// openssl ca (`newcerts/`, its usual new_certs_dir) puts it; None if
    /// neither has it. Only for adopting a database: nothing else needs
    /// the files, index.txt is the record.
    fn certificate(&self, serial: &str) -> Result<Option<Vec<u8>>> {
        for dir in ["certs", "newcerts"] {
            let name = format!("{dir}/{serial}.pem");
            let dirfd = match rustix::fs::openat(
                &self.fd,
                dir,
                OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(refuse_links(e, &self.path(dir))),
            };
            let file = match rustix::fs::openat(
                &dirfd,
                format!("{serial}.pem").as_str(),
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(refuse_links(e, &self.path(&name))),
            };
            let mut text = Vec::new();
            File::from(file)
                .read_to_end(&mut text)
                .with_context(|| format!("reading {}", self.path(&name).display()))?;
            let (label, der) = pem_rfc7468::decode_vec(&text)
                .map_err(|e| Error::new(format!("{}: {e}", self.path(&name).display())))?;
            if label != "CERTIFICATE" {
                return Err(Error::new(format!("{} is not a certificate", self.path(&name).display())));
            }
            return Ok(Some(der));
        }
        Ok(None)
    }

    /// Writes a certificate file that no line names: created with O_EXCL
    /// (a planted link is never written through); a regular file already
    /// there is an orphan a crash left before its line, replaced.
    fn write_certificate(&self, r: &Record) -> Result<()> {
        let name = format!("{}.pem", r.entry.serial);
        let path = self.path(&format!("certs/{name}"));
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(FILE_MODE);
        let fd = match rustix::fs::openat(&self.certs, name.as_str(), flags, mode) {
            Err(Errno::EXIST) => {
                // An orphan is a file this database wrote; anything else
                // there (a planted link) is refused, not replaced.
                let st = rustix::fs::statat(&self.certs, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| refuse_links(e, &path))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                    return Err(refuse_links(Errno::LOOP, &path));
                }
                rustix::fs::unlinkat(&self.certs, name.as_str(), AtFlags::empty())
                    .map_err(|e| refuse_links(e, &path))?;
                rustix::fs::openat(&self.certs, name.as_str(), flags, mode)
            }
            other => other,
        }
        .map_err(|e| refuse_links(e, &path))?;
        let written = File::from(fd).write_all(crate::io::pem("CERTIFICATE", &r.der).as_bytes());
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(&self.certs, name.as_str(), AtFlags::empty());
            return Err(Error::from(e).context(format!("writing {}", path.display())));
        }
        Ok(())
    }
}

/// A checked batch, under the database's lock until committed or dropped.
pub struct Pending<'a> {
    db: &'a mut Db,
    _lock: DbLock,
    index: File,
    count: usize,
    refused: Option<Error>,
    /// The issuer to record in issuer.der with this batch (first use).
    adopt: Option<Vec<u8>>,
}

impl Pending<'_> {
    /// How many of the batch may be recorded (a prefix of it).
    pub fn count(&self) -> usize {
        self.count
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
    /// writes the audit log there: whatever index.txt records is logged,
    /// and a file that cannot be written is never logged as stored).
    pub fn commit_with(
        self,
        batch: &[Record],
        before_index: impl FnOnce() -> Result<()>,
    ) -> Result<Option<Error>> {
        let batch = &batch[..self.count.min(batch.len())];
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
            db.create_new("issuer.der", issuer)?;
        }
        before_index()?;
        // 2. All index lines in one append, made durable; on failure the
        //    index is cut back to where it was.
        let before = self.index.metadata()?.len();
        let lines: String = batch.iter().map(|r| r.entry.line()).collect();
        let appended = (&self.index).write_all(lines.as_bytes()).and_then(|_| self.index.sync_data());
        if let Err(e) = appended {
            let _ = self.index.set_len(before).and_then(|_| self.index.sync_data());
            return Err(Error::from(e).context("appending to index.txt"));
        }
        for r in batch {
            db.known.add(&r.entry);
        }
        db.known.len = before + lines.len() as u64;
        Ok(self.refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn lines_round_trip() {
        let line = "R\t270101000000Z\t260301120000Z,keyCompromise\t0123AB\tunknown\t/C=NL/CN=x\n";
        let e = Entry::parse(line.trim_end()).expect("parse");
        assert_eq!(e.line(), line);
        assert_eq!(e.crl_entry().expect("crl"), CrlEntry::Listed { time: "260301120000Z", reason: Some(1) });
        for bad in [
            "V\t270101000000Z\t\t01\tunknown",
            "X\t270101000000Z\t\t01\tunknown\t/CN=x",
            "R\t270101000000Z\t\t01\tunknown\t/CN=x",
            "V\t270101000000Z\t\tzz\tunknown\t/CN=x",
            "V\t2701010000Z\t\t01\tunknown\t/CN=x",
            "V\t270101000000Z\t260301120000Z\t01\tunknown\t/CN=x",
            "R\t270101000000Z\t260301120000Z,nonsense\t01\tunknown\t/CN=x",
            "R\t270101000000Z\t260301120000Z,keyTime\t01\tunknown\t/CN=x",
            "R\t270101000000Z\t260301120000Z,superseded,x\t01\tunknown\t/CN=x",
            "V\t270101000000Z\t\t01\tunknown\t/CN=x\r",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad}");
        }
    }

    /// Every reason string `openssl ca -revoke -crl_reason` writes.
    #[test]
    fn openssl_reasons() {
        let crl = |rev: &str| {
            let line = format!("R\t270101000000Z\t{rev}\t01\tunknown\t/CN=x");
            Entry::parse(&line).expect(rev).crl_entry().map(|c| format!("{c:?}")).expect(rev)
        };
        assert!(crl("260301120000Z,unspecified").contains("reason: None"));
        assert!(crl("260301120000Z,certificateHold").contains("reason: Some(6)"));
        assert!(crl("260301120000Z,holdInstruction,holdInstructionReject").contains("reason: Some(6)"));
        assert!(crl("260301120000Z,keyTime,20260101000000Z").contains("reason: Some(1)"));
        assert!(crl("260301120000Z,CAkeyTime,20260101000000Z").contains("reason: Some(2)"));
        assert_eq!(crl("260301120000Z,removeFromCRL"), "Lifted");
        for name in OPENSSL_REASONS {
            let extra = match *name {
                "holdInstruction" => ",1.2.840.10040.2.1",
                "keyTime" | "CAkeyTime" => ",20260101000000Z",
                _ => "",
            };
            crl(&format!("260301120000Z,{name}{extra}"));
        }
    }

    #[test]
    fn oneline_escapes_as_openssl() {
        // The subject `openssl ca` was seen to write for this CSR subject:
        // /O=x+OU=y/CN=a\x09b\x01 \xC3\xA9\x7F~\/c\x0A
        let name = Name::from_str("CN=a\\+b=c,O=x+OU=y").expect("name");
        assert_eq!(crate::names::openssl_oneline(&name), "/O=x+OU=y/CN=a\\+b=c");
        let mut der = name.to_der().expect("der");
        // Put raw control and non-ASCII octets into the CN's value.
        let pos = der.windows(5).position(|w| w == b"a+b=c").expect("value");
        der[pos..pos + 5].copy_from_slice(b"\t\n/\xc3\xa9");
        let name = Name::from_der(&der).expect("decode");
        let text = crate::names::openssl_oneline(&name);
        assert_eq!(text, "/O=x+OU=y/CN=\\x09\\x0A\\/\\xC3\\xA9");
        assert!(!text.bytes().any(|b| b.is_ascii_control()));
    }

    #[test]
    fn times_round_trip() {
        for text in ["260301120000Z", "20510301120000Z"] {
            assert_eq!(time_text(&parse_time_text(text).expect("parse")).expect("text"), text);
        }
        assert!(parse_time_text("2603011200Z").is_err());
    }

    #[test]
    fn serials() {
        assert_eq!(serial_hex(&[0x00, 0x80]), "80");
        assert_eq!(serial_hex(&[0x01, 0xab]), "01AB");
        assert_eq!(parse_serial("01:ab").expect("hex"), "01AB");
        assert_eq!(parse_serial("0001ab").expect("hex"), "01AB");
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cardca-db-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    const LINE: &str = "V\t270101000000Z\t\t01\tunknown\t/CN=a\n";

    #[test]
    fn torn_and_unterminated_last_lines() {
        let dir = scratch("torn");
        let mut db = Db::open(&dir).expect("open");
        // A complete last line without its newline is kept and terminated.
        std::fs::write(dir.join("index.txt"), LINE.trim_end()).expect("write");
        assert_eq!(db.entries().expect("entries").len(), 1);
        assert_eq!(std::fs::read_to_string(dir.join("index.txt")).expect("read"), LINE);
        assert_eq!(db.take_notes().len(), 1);
        // A torn one is cut off.
        std::fs::write(dir.join("index.txt"), format!("{LINE}V\t2701")).expect("write");
        let mut db = Db::open(&dir).expect("open");
        assert_eq!(db.entries().expect("entries").len(), 1);
        assert_eq!(std::fs::read_to_string(dir.join("index.txt")).expect("read"), LINE);
        // A complete line that does not parse is an error naming it; nothing changes.
        let bad = format!("{LINE}V\tjunk\n{LINE}");
        std::fs::write(dir.join("index.txt"), &bad).expect("write");
        let mut db = Db::open(&dir).expect("open");
        let e = db.entries().expect_err("bad line").to_string();
        assert!(e.contains("line 2"), "{e}");
        assert_eq!(std::fs::read_to_string(dir.join("index.txt")).expect("read"), bad);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn links_are_refused() {
        let dir = scratch("links");
        let db = Db::open(&dir).expect("open");
        let elsewhere = scratch("links-elsewhere");
        std::fs::create_dir_all(&elsewhere).expect("mkdir");
        std::os::unix::fs::symlink(elsewhere.join("crlnumber"), dir.join("crlnumber")).expect("link");
        let e = db.next_crl_number().expect_err("link").to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!elsewhere.join("crlnumber").exists());
        std::fs::remove_dir(dir.join("certs")).expect("rmdir");
        std::os::unix::fs::symlink(&elsewhere, dir.join("certs")).expect("link");
        assert!(Db::open(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&elsewhere);
    }
}
