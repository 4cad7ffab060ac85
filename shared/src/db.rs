//! The CA database: OpenSSL `ca`'s layout, with the locking and durability
//! `openssl ca` lacks.
//!
//! ```text
//! DIR/index.txt        one line per certificate, tab-separated:
//!                      status (V/R/E), expiry, revocation[,reason], serial
//!                      (upper-case hex), file name ("unknown"), subject
//! DIR/index.txt.attr   unique_subject = no
//! DIR/certs/SERIAL.pem each certificate
//! DIR/crlnumber        the next CRL number, hex
//! DIR/.lock            flock'd while anyone changes the above
//! ```
//! Certificates are recorded in batches: every certificate file of the
//! batch is written and made durable (one syncfs), then all their index
//! lines are appended in one write and made durable (one fdatasync). A
//! crash at any point leaves whole lines whose files exist (a torn last
//! line, which nobody was told about, is cut off on the next open), and a
//! full disk rolls the index back to where it was.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use x509_cert::time::Time;

use crate::cert::{self, TbsCert};
use crate::error::{Context, Error, Result};

/// RFC 5280 section 5.3.1 reason codes that a revocation may carry, with
/// the names OpenSSL writes into index.txt. `unspecified` is left out: RFC
/// 5280 says to omit the reason code instead.
pub const REASONS: &[(&str, u8)] = &[
    ("keyCompromise", 1),
    ("CACompromise", 2),
    ("affiliationChanged", 3),
    ("superseded", 4),
    ("cessationOfOperation", 5),
    ("certificateHold", 6),
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

/// One index.txt line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: char,
    pub expiry: String,
    /// `YYMMDDHHMMSSZ` or `YYMMDDHHMMSSZ,reason`; empty unless revoked.
    pub revocation: String,
    pub serial: String,
    pub file: String,
    pub subject: String,
}

impl Entry {
    pub fn parse(line: &str) -> Result<Entry> {
        let f: Vec<&str> = line.split('\t').collect();
        let bad = || {
            Error::new(format!(
                "index.txt line {line:?} is not status, expiry, revocation, serial, file, subject"
            ))
        };
        if f.len() != 6 {
            return Err(bad());
        }
        let status = match f[0] {
            "V" => 'V',
            "R" => 'R',
            "E" => 'E',
            _ => return Err(bad()),
        };
        if f[3].is_empty()
            || !f[3].bytes().all(|b| b.is_ascii_hexdigit())
            || (status == 'R') == f[2].is_empty()
        {
            return Err(bad());
        }
        Ok(Entry {
            status,
            expiry: f[1].into(),
            revocation: f[2].into(),
            serial: f[3].to_ascii_uppercase(),
            file: f[4].into(),
            subject: f[5].into(),
        })
    }

    pub fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            self.status, self.expiry, self.revocation, self.serial, self.file, self.subject
        )
    }

    /// The revocation time and reason code, for a CRL entry.
    pub fn revocation_parts(&self) -> (&str, Option<&str>) {
        match self.revocation.split_once(',') {
            Some((t, r)) => (t, Some(r)),
            None => (&self.revocation, None),
        }
    }
}

/// A certificate ready to be recorded.
pub struct Record {
    pub der: Vec<u8>,
    pub entry: Entry,
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
        Ok(Record { der, entry })
    }
}

pub struct Db {
    dir: PathBuf,
}

/// The exclusive lock on a database, released on drop.
pub struct DbLock(#[allow(dead_code)] File);

impl Db {
    /// Opens the database in `dir`, creating it on first use.
    pub fn open(dir: &Path) -> Result<Db> {
        let ctx = |what: &str| format!("{what} {}", dir.display());
        std::fs::create_dir_all(dir.join("certs")).with_context(|| ctx("creating the database"))?;
        let db = Db { dir: dir.to_path_buf() };
        let _lock = db.lock()?;
        for (name, content) in [("index.txt", ""), ("index.txt.attr", "unique_subject = no\n")] {
            let path = dir.join(name);
            if !path.exists() {
                write_durably(&path, content.as_bytes()).with_context(|| ctx("creating"))?;
            }
        }
        Ok(db)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn lock(&self) -> Result<DbLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path(".lock"))
            .with_context(|| format!("opening the lock of {}", self.dir.display()))?;
        file.lock().with_context(|| format!("locking {}", self.dir.display()))?;
        Ok(DbLock(file))
    }

    /// Cuts a torn last line (a crash in the middle of an append) off
    /// index.txt. Only under the lock: then nobody is appending.
    fn repair(&self, index: &File) -> Result<()> {
        let len = index.metadata()?.len();
        if len == 0 {
            return Ok(());
        }
        let mut reader = index;
        let tail_start = len.saturating_sub(64 * 1024);
        reader.seek(SeekFrom::Start(tail_start))?;
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail)?;
        if tail.last() == Some(&b'\n') {
            return Ok(());
        }
        let keep = match tail.iter().rposition(|&b| b == b'\n') {
            Some(i) => tail_start + i as u64 + 1,
            None if tail_start == 0 => 0,
            None => return Err(Error::new("index.txt ends in a line longer than 64 KiB")),
        };
        crate::cli::warn("index.txt ended in a torn line (an interrupted write); cut it off");
        index.set_len(keep)?;
        index.sync_data()?;
        Ok(())
    }

    /// Whether a serial is recorded. Its certificate file is written
    /// before its line, so no file means no line: the common case costs
    /// one stat, whatever the size of the database. A file without a line
    /// (left by a crash before the append) is an orphan: only then is
    /// index.txt read.
    fn is_recorded(&self, serial: &str) -> Result<bool> {
        if !self.path(&format!("certs/{serial}.pem")).exists() {
            return Ok(false);
        }
        let index = self.path("index.txt");
        let text = std::fs::read_to_string(&index).with_context(|| format!("reading {}", index.display()))?;
        Ok(text.lines().any(|line| line.split('\t').nth(3).is_some_and(|s| s.eq_ignore_ascii_case(serial))))
    }

    fn open_index(&self) -> Result<File> {
        OpenOptions::new().read(true).append(true).open(self.path("index.txt")).context("opening index.txt")
    }

    /// Records a batch. Returns how many of them were recorded, durably,
    /// and the error that stopped the rest (a serial already present).
    pub fn record(&self, batch: &[Record]) -> Result<(usize, Option<Error>)> {
        let _lock = self.lock()?;
        let index = self.open_index()?;
        self.repair(&index)?;
        let mut refused = None;
        let mut fresh = HashSet::new();
        let mut count = 0;
        for r in batch {
            if !fresh.insert(r.entry.serial.clone()) || self.is_recorded(&r.entry.serial)? {
                refused = Some(Error::new(format!(
                    "serial {} is already in {}; nothing was recorded for it",
                    r.entry.serial,
                    self.path("index.txt").display()
                )));
                break;
            }
            count += 1;
        }
        let batch = &batch[..count];
        if batch.is_empty() {
            return Ok((0, refused));
        }
        // 1. Every certificate file, then one syncfs for all of them: the
        //    files are durable before any line names them. No temporary
        //    name and rename: a file no line names yet is read by nobody,
        //    and one a crash left half-written is an orphan, overwritten
        //    when its serial comes again.
        for r in batch {
            let path = self.path(&format!("certs/{}.pem", r.entry.serial));
            let written = File::create(&path)
                .and_then(|mut f| f.write_all(crate::io::pem("CERTIFICATE", &r.der).as_bytes()));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&path);
                return Err(Error::from(e).context(format!("writing {}", path.display())));
            }
        }
        rustix::fs::syncfs(&index).map_err(|e| Error::new(format!("syncfs: {e}")))?;
        // 2. All index lines in one append, made durable; on failure the
        //    index is cut back to where it was.
        let before = index.metadata()?.len();
        let lines: String = batch.iter().map(|r| r.entry.line()).collect();
        let appended = (&index).write_all(lines.as_bytes()).and_then(|_| index.sync_data());
        if let Err(e) = appended {
            let _ = index.set_len(before).and_then(|_| index.sync_data());
            return Err(Error::from(e).context("appending to index.txt"));
        }
        Ok((count, refused))
    }

    /// Every line of index.txt, read under the lock.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let _lock = self.lock()?;
        let index = self.open_index()?;
        self.repair(&index)?;
        read_entries(&self.path("index.txt"))
    }

    /// Marks certificates revoked, all or none: every serial must be in
    /// the database and not yet revoked. index.txt is rewritten to a new
    /// file and renamed over the old one, so a crash leaves one or the other.
    pub fn revoke(&self, serials: &[String], when: &str, reason: Option<&str>) -> Result<Vec<Entry>> {
        let _lock = self.lock()?;
        let path = self.path("index.txt");
        self.repair(&self.open_index()?)?;
        let mut entries = read_entries(&path)?;
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
        write_durably(&path, text.as_bytes()).context("rewriting index.txt")?;
        Ok(done)
    }

    /// Takes the next CRL number and stores the one after it durably.
    pub fn next_crl_number(&self) -> Result<Vec<u8>> {
        let _lock = self.lock()?;
        let path = self.path("crlnumber");
        let current = match std::fs::read_to_string(&path) {
            Ok(text) => crate::hex::decode(text.trim()).context("crlnumber")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![1],
            Err(e) => return Err(Error::from(e).context("reading crlnumber")),
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
        write_durably(&path, format!("{}\n", serial_hex(&next)).as_bytes()).context("writing crlnumber")?;
        Ok(current)
    }

    /// The certificate recorded under a serial.
    pub fn certificate(&self, serial: &str) -> Result<Vec<u8>> {
        let path = self.path(&format!("certs/{serial}.pem"));
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let (label, der) =
            pem_rfc7468::decode_vec(&text).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
        if label != "CERTIFICATE" {
            return Err(Error::new(format!("{} is not a certificate", path.display())));
        }
        x509_cert::Certificate::from_der(&der).with_context(|| format!("parsing {}", path.display()))?;
        Ok(der)
    }
}

fn read_entries(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines().map(Entry::parse).collect()
}

/// Writes a whole file so that a crash leaves the old or the new one:
/// temporary file, fsync, rename, fsync of the directory.
pub fn write_durably(path: &Path, content: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let line = "R\t270101000000Z\t260301120000Z,keyCompromise\t0123AB\tunknown\t/C=NL/CN=x\n";
        let e = Entry::parse(line.trim_end()).expect("parse");
        assert_eq!(e.line(), line);
        assert_eq!(e.revocation_parts(), ("260301120000Z", Some("keyCompromise")));
        for bad in [
            "V\t270101000000Z\t\t01\tunknown",
            "X\t1\t\t01\tunknown\t/CN=x",
            "R\t1\t\t01\tunknown\t/CN=x",
            "V\t1\t\tzz\tunknown\t/CN=x",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad}");
        }
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
}
