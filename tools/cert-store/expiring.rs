//! `--expiring DAYS`: what ends within DAYS of now, soonest first, so that
//! cron (and the issuing directory's `make expiring`, `make renew` and
//! `make status`) can act before a client refuses it: certificates of a
//! CA's database and certificate files by notAfter, CRLs and pre-signed
//! OCSP responses by nextUpdate. A lapsed CRL locks out every client of
//! the CA, so nothing here is left out for being long past; only the
//! database's history is: its certificates count from DAYS ago on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cardca::cert::{self, CaCert};
use cardca::db;
use cardca::der::{self, Decode, Encode};
use cardca::ocsp;
use cardca::serve::ServeDir;
use cardca::x509_cert;
use cardca::x509_cert::crl::CertificateList;
use cardca::{io, json, oid, time, Context, Error, Result};

/// Where to look: `--db`, `--cert`, `--crl`, `--ocsp-dir`.
#[derive(Default)]
pub struct Sources {
    pub db: Option<db::Location>,
    /// `--ca`: which CA's record, in a PostgreSQL record of several.
    pub ca: Option<String>,
    pub certs: Vec<PathBuf>,
    pub crls: Vec<PathBuf>,
    pub ocsp_dir: Option<PathBuf>,
}

impl Sources {
    pub fn is_empty(&self) -> bool {
        self.db.is_none() && self.certs.is_empty() && self.crls.is_empty() && self.ocsp_dir.is_none()
    }
}

/// One thing that ends.
struct Item {
    /// Seconds since 1970: notAfter or nextUpdate.
    end: u64,
    kind: &'static str,
    /// The serial (certificates, OCSP responses) or the CRL number.
    id: String,
    /// The subject (certificates) or empty.
    subject: String,
    /// The file it was read from, or empty for a database entry.
    file: String,
}

const DAY: u64 = 86_400;

/// A served OCSP response is a few kilobytes; this bounds a stray file.
const RESPONSE_MAX: usize = 64 << 10;

pub fn list(days: u64, from: &Sources, json_out: bool) -> Result<()> {
    let now = time::now()?;
    let until = now.saturating_add(days.saturating_mul(DAY));
    let mut items = Vec::new();
    // Serial -> notAfter of every database certificate, so that a served
    // response for a certificate that has expired is not reported.
    let mut expiries: Option<HashMap<String, u64>> = None;
    if let Some(at) = &from.db {
        let (found, all) = database(
            crate::open_existing(at, &from.ca)?,
            now.saturating_sub(days.saturating_mul(DAY)),
            until,
        )?;
        items.extend(found);
        expiries = Some(all);
    }
    for path in &from.certs {
        items.extend(cert_file(path)?.into_iter().filter(|i| i.end < until));
    }
    for path in &from.crls {
        items.extend(crl_file(path)?.into_iter().filter(|i| i.end < until));
    }
    if let Some(dir) = &from.ocsp_dir {
        let lapsed =
            |serial: &str| expiries.as_ref().and_then(|e| e.get(serial)).is_some_and(|&end| end <= now);
        items.extend(ocsp_dir(dir)?.into_iter().filter(|i| i.end < until && !lapsed(&i.id)));
    }
    // Ties in name order: what an operator reads down.
    items.sort_by(|a, b| {
        (a.end, a.kind, &a.subject, &a.file, &a.id).cmp(&(b.end, b.kind, &b.subject, &b.file, &b.id))
    });
    let text = if json_out { as_json(&items, now) } else { as_text(&items, now) };
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    cardca::report::note(format_args!(
        "{} within {days} day{} of {}",
        match items.len() {
            0 => "nothing ends".to_string(),
            1 => "1 ends".to_string(),
            n => format!("{n} end"),
        },
        if days == 1 { "" } else { "s" },
        time::display(now)
    ));
    Ok(())
}

/// The database's certificates that are not revoked and end between
/// `from` and `until`, leaving out each one that was renewed: another
/// certificate with the same subject and the same key, not revoked, ends
/// later. (Another key under the same subject is another holder, or a
/// replaced key whose old certificate still counts until it ends or is
/// revoked.) Also every certificate's notAfter by serial.
fn database(mut db: db::Store, from: u64, until: u64) -> Result<(Vec<Item>, HashMap<String, u64>)> {
    let entries = db.entries()?;
    let mut ends = HashMap::with_capacity(entries.len());
    let mut by_subject: HashMap<&str, Vec<(&str, u64)>> = HashMap::new();
    for e in &entries {
        let end = time::seconds(&db::parse_time_text(&e.expiry)?);
        ends.insert(e.serial.clone(), end);
        if e.status != 'R' {
            by_subject.entry(e.subject.as_str()).or_default().push((e.serial.as_str(), end));
        }
    }
    // Keys are read only where a later certificate shares the subject.
    let mut keys = Keys { db: &mut db, read: HashMap::new() };
    let mut items = Vec::new();
    for e in entries.iter().filter(|e| e.status != 'R') {
        let end = ends[&e.serial];
        if end < from || end >= until {
            continue;
        }
        let mut renewed = false;
        for &(later, _) in by_subject[e.subject.as_str()].iter().filter(|(_, other)| *other > end) {
            let mine = keys.of(&e.serial)?;
            renewed |= mine.is_some() && keys.of(later)? == mine;
        }
        if renewed {
            continue;
        }
        items.push(Item {
            end,
            kind: "certificate",
            id: e.serial.clone(),
            subject: e.subject.clone(),
            file: String::new(),
        });
    }
    Ok((items, ends))
}

/// The public keys (SPKI DER) of the database's certificates, each file
/// read once; None for a serial without a readable certificate file.
struct Keys<'a> {
    db: &'a mut db::Store,
    read: HashMap<String, Option<Vec<u8>>>,
}

impl Keys<'_> {
    fn of(&mut self, serial: &str) -> Result<Option<Vec<u8>>> {
        if let Some(k) = self.read.get(serial) {
            return Ok(k.clone());
        }
        let key = self.db.certificate(serial)?.and_then(|der| {
            let c = x509_cert::Certificate::from_der(&der).ok()?;
            c.tbs_certificate().subject_public_key_info().to_der().ok()
        });
        self.read.insert(serial.to_string(), key.clone());
        Ok(key)
    }
}

/// Every object of a PEM or DER file, with one of `labels`.
fn objects(path: &Path, labels: &[&str]) -> Result<Vec<io::Object>> {
    let out = io::read_file(path, labels)?;
    if out.is_empty() {
        return Err(Error::new(format!("{} holds no {}", path.display(), labels[0])));
    }
    Ok(out)
}

fn cert_file(path: &Path) -> Result<Vec<Item>> {
    objects(path, &["CERTIFICATE"])?
        .into_iter()
        .map(|o| {
            let c = CaCert::parse(o.der).with_context(|| format!("reading {}", path.display()))?;
            Ok(Item {
                end: time::seconds(&c.tbs.validity.not_after),
                kind: "certificate",
                id: cert::serial_text(c.tbs.serial_number.as_bytes()),
                subject: c.subject_text(),
                file: path.display().to_string(),
            })
        })
        .collect()
}

/// A CRL without a nextUpdate never ends; RFC 5280 requires one, and
/// tbs-build always writes it.
fn crl_file(path: &Path) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for o in objects(path, &["X509 CRL"])? {
        let crl: CertificateList =
            cert::decode_exact(&o.der, "CRL").with_context(|| format!("reading {}", path.display()))?;
        let tbs = &crl.tbs_cert_list;
        let number = tbs
            .crl_extensions
            .as_deref()
            .and_then(|exts| cert::find(exts, oid::CRL_NUMBER))
            .map(|e| der::asn1::Uint::from_der(e.extn_value.as_bytes()))
            .transpose()
            .map_err(|e| Error::new(format!("{}: its cRLNumber: {e}", path.display())))?
            .map(|n| number_text(n.as_bytes()))
            .unwrap_or_default();
        if let Some(next) = &tbs.next_update {
            items.push(Item {
                end: time::seconds(next),
                kind: "crl",
                id: number,
                subject: cardca::names::openssl_oneline(&tbs.issuer),
                file: path.display().to_string(),
            });
        }
    }
    Ok(items)
}

/// A CRL number in decimal, as `openssl crl -text` shows it; in hex
/// when it is too long for that (RFC 5280 allows 20 octets).
fn number_text(bytes: &[u8]) -> String {
    let digits = bytes.iter().skip_while(|&&b| b == 0).count();
    if digits > 8 {
        return cardca::hex::encode(bytes);
    }
    bytes.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)).to_string()
}

/// Every `SERIAL.der` in an OCSP serve directory (cert-store --ocsp-dir).
fn ocsp_dir(dir: &Path) -> Result<Vec<Item>> {
    let serve = ServeDir::open_existing(dir)?;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".der"))
        .collect();
    names.sort();
    let mut items = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let Some(der) = serve.read(&name, RESPONSE_MAX)? else { continue };
        let (serial, next) = response_end(&der).with_context(|| format!("reading {}", path.display()))?;
        // A response without nextUpdate says newer information is
        // always available (RFC 6960 4.2.2.1): nothing to refresh.
        if let Some(end) = next {
            items.push(Item {
                end,
                kind: "ocsp",
                id: serial,
                subject: String::new(),
                file: path.display().to_string(),
            });
        }
    }
    Ok(items)
}

/// The serial a pre-signed response answers for, and its nextUpdate.
fn response_end(der: &[u8]) -> Result<(String, Option<u64>)> {
    let one = ocsp::served_single(der)?;
    Ok((cert::serial_text(one.cert_id.serial_number.as_bytes()), one.next_update.as_ref().map(ocsp::seconds)))
}

/// Whole days from now to `end`, rounded down; negative once past.
fn days_left(end: u64, now: u64) -> i64 {
    if end >= now {
        ((end - now) / DAY) as i64
    } else {
        -(((now - end).div_ceil(DAY)) as i64)
    }
}

fn left_text(end: u64, now: u64) -> String {
    let s = |n: u64| if n == 1 { "" } else { "s" };
    if end <= now {
        return match (now - end) / DAY {
            0 => "ended less than a day ago".into(),
            d => format!("ended {d} day{} ago", s(d)),
        };
    }
    match (end - now) / DAY {
        0 => "ends within a day".into(),
        d => format!("ends in {d} day{}", s(d)),
    }
}

/// One line each, tab-separated: end, kind, serial or CRL number,
/// subject or issuer, file, how long is left.
fn as_text(items: &[Item], now: u64) -> String {
    let mut out = String::new();
    for i in items {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            time::display(i.end),
            i.kind,
            if i.id.is_empty() { "-" } else { &i.id },
            if i.subject.is_empty() { "-" } else { &i.subject },
            if i.file.is_empty() { "-" } else { &i.file },
            left_text(i.end, now)
        ));
    }
    out
}

fn as_json(items: &[Item], now: u64) -> String {
    let mut out = String::from("{\"now\": ");
    out.push_str(&json::string(&time::display(now)));
    out.push_str(", \"expiring\": [");
    for (n, i) in items.iter().enumerate() {
        out.push_str(if n == 0 { "\n  {" } else { ",\n  {" });
        out.push_str(&format!("\"kind\": {}, ", json::string(i.kind)));
        let id_key = if i.kind == "crl" { "crl_number" } else { "serial" };
        out.push_str(&format!("\"{id_key}\": {}, ", json::string(&i.id)));
        let end_key = if i.kind == "certificate" { "not_after" } else { "next_update" };
        out.push_str(&format!("\"{end_key}\": {}, ", json::string(&time::display(i.end))));
        out.push_str(&format!("\"days_left\": {}", days_left(i.end, now)));
        if !i.subject.is_empty() {
            let key = if i.kind == "crl" { "issuer" } else { "subject" };
            out.push_str(&format!(", \"{key}\": {}", json::string(&i.subject)));
        }
        if !i.file.is_empty() {
            out.push_str(&format!(", \"file\": {}", json::string(&i.file)));
        }
        out.push('}');
    }
    out.push_str(if items.is_empty() { "]}\n" } else { "\n]}\n" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crl_numbers() {
        assert_eq!(number_text(&[0x01]), "1");
        assert_eq!(number_text(&[0x00, 0x80]), "128");
        assert_eq!(number_text(&[0x01, 0x00]), "256");
        assert_eq!(number_text(&[0xff; 8]), u64::MAX.to_string());
        assert_eq!(number_text(&[0x01; 9]), "010101010101010101");
    }

    #[test]
    fn days_and_words() {
        let now = 1_000 * DAY;
        assert_eq!(days_left(now + 30 * DAY, now), 30);
        assert_eq!(days_left(now + 30 * DAY - 1, now), 29);
        assert_eq!(days_left(now, now), 0);
        assert_eq!(days_left(now - 1, now), -1);
        assert_eq!(days_left(now - DAY, now), -1);
        assert_eq!(days_left(now - DAY - 1, now), -2);
        assert_eq!(left_text(now + DAY, now), "ends in 1 day");
        assert_eq!(left_text(now + 2 * DAY + 5, now), "ends in 2 days");
        assert_eq!(left_text(now + 5, now), "ends within a day");
        assert_eq!(left_text(now, now), "ended less than a day ago");
        assert_eq!(left_text(now - DAY, now), "ended 1 day ago");
        assert_eq!(left_text(now - 3 * DAY - 7, now), "ended 3 days ago");
    }
}
