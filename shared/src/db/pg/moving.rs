//! Moving a record in and out: a lossless import of an index.txt database
//! (with its openssl-written history) and an export back to one that
//! `openssl ca` reads, byte for byte what was imported.

use std::io::Write;
use std::path::Path;

use super::super::record::name_text;
use super::super::{Db, Entry, Reservation, ATTR_MAX, CERT_FILE_MAX, CRLNUMBER_MAX};
use super::record::{entry_of, reservation_of};
use super::{sql_error, Pg};
use crate::error::{Context, Error, Result};

/// What an import or export moved.
pub struct Moved {
    pub ca: String,
    pub certificates: usize,
    pub reservations: usize,
}

impl Pg {
    /// Copies the index.txt database in `dir` into the record as it is:
    /// every line in its order, every certificate file, reserved.txt,
    /// index.txt.attr, crlnumber, the kept CA. One transaction; a CA the
    /// record already holds is refused (nothing is merged).
    pub fn import(&mut self, dir: &Path) -> Result<Moved> {
        let mut db = Db::open_existing(dir)?;
        let entries = db.entries()?;
        let issuer = match db.issuer()? {
            Some(i) => i,
            None => match db.kept_ca()? {
                Some(ca) => der::Encode::to_der(&ca.tbs.subject)?,
                None => first_issuer(&db, &entries)?.ok_or_else(|| {
                    Error::new(format!(
                        "{}: whose database this is cannot be told (no issuer.der, ca.pem or certificate file)",
                        dir.display()
                    ))
                })?,
            },
        };
        let name = name_text(&issuer);
        let ca_pem = db.read_file("ca.pem", CERT_FILE_MAX)?;
        let attr = db.read_file("index.txt.attr", ATTR_MAX)?;
        let crlnumber = db.read_file("crlnumber", CRLNUMBER_MAX)?;
        let reservations = reservations(&db)?;
        let mut files = Vec::with_capacity(entries.len());
        for e in &entries {
            files.push(cert_file(&db, &e.serial)?);
        }
        let shown = self.shown.clone();
        let sql = |e: postgres::Error| sql_error(&shown, "importing", e);
        let mut tx = self.client.transaction().map_err(sql)?;
        let taken = tx.query_opt("SELECT 1 FROM cardca_ca WHERE issuer = $1", &[&issuer]).map_err(sql)?;
        if taken.is_some() {
            return Err(Error::new(format!(
                "{shown} already holds the record of {name}: nothing was imported (an import never merges)"
            )));
        }
        let id: i32 = tx
            .query_one(
                "INSERT INTO cardca_ca (issuer, ca_pem, index_attr, crlnumber) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&issuer, &ca_pem, &attr, &crlnumber],
            )
            .map_err(sql)?
            .get(0);
        let insert = tx
            .prepare(
                "INSERT INTO cardca_cert (ca_id, serial, status, expiry, revocation, file, subject, cert_dir, \
                 cert_file) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .map_err(sql)?;
        for (e, (cert_dir, file)) in entries.iter().zip(&files) {
            tx.execute(
                &insert,
                &[
                    &id,
                    &e.serial,
                    &e.status.to_string(),
                    &e.expiry,
                    &e.revocation,
                    &e.file,
                    &e.subject,
                    cert_dir,
                    file,
                ],
            )
            .map_err(sql)?;
        }
        let insert = tx
            .prepare(
                "INSERT INTO cardca_reservation (ca_id, serial, tbs_sha256, expiry, reserved_at, subject) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .map_err(sql)?;
        for r in &reservations {
            let at = i64::try_from(r.at).map_err(|_| Error::new("a reservation time past 2^63 s"))?;
            tx.execute(&insert, &[&id, &r.serial, &r.tbs_sha256, &r.expiry, &at, &r.subject]).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(Moved { ca: name, certificates: entries.len(), reservations: reservations.len() })
    }

    /// Writes one CA's record to `dir`, which must not exist yet, as the
    /// index.txt database it was imported from (or as one `openssl ca`
    /// reads): the lines in their order, the certificate files, and the
    /// files beside them. `issuer` chooses the CA (its DER Name); without
    /// it the record must hold exactly one.
    pub fn export(&mut self, issuer: Option<&[u8]>, dir: &Path) -> Result<Moved> {
        let shown = self.shown.clone();
        let sql = |e: postgres::Error| sql_error(&shown, "exporting", e);
        let rows = match issuer {
            Some(i) => self.client.query(
                "SELECT id, issuer, ca_pem, index_attr, crlnumber FROM cardca_ca WHERE issuer = $1",
                &[&i],
            ),
            None => self.client.query("SELECT id, issuer, ca_pem, index_attr, crlnumber FROM cardca_ca", &[]),
        }
        .map_err(sql)?;
        let ca = match rows.as_slice() {
            [one] => one,
            [] => return Err(Error::new(format!("{shown} holds no record of that CA"))),
            _ => {
                return Err(Error::new(format!("{shown} holds the records of {} CAs", rows.len()))
                    .hint("name the CA with --ca FILE"))
            }
        };
        let id: i32 = ca.get(0);
        let issuer: Vec<u8> = ca.get(1);
        std::fs::create_dir(dir).with_context(|| {
            format!("creating {} (an export goes into a directory that does not exist yet)", dir.display())
        })?;
        let write = |name: &str, data: &[u8]| -> Result<()> {
            let path = dir.join(name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(data).with_context(|| format!("writing {}", path.display()))
        };
        write("issuer.der", &issuer)?;
        for (column, name) in [(2, "ca.pem"), (3, "index.txt.attr"), (4, "crlnumber")] {
            if let Some(data) = ca.get::<_, Option<Vec<u8>>>(column) {
                write(name, &data)?;
            }
        }
        let certs = self
            .client
            .query(
                "SELECT serial, status, expiry, revocation, file, subject, cert_dir, cert_file FROM cardca_cert \
                 WHERE ca_id = $1 ORDER BY seq",
                &[&id],
            )
            .map_err(sql)?;
        let mut index = String::new();
        for row in &certs {
            let entry = entry_of(row, &shown)?;
            index.push_str(&entry.line());
            if let (Some(sub), Some(data)) =
                (row.get::<_, Option<String>>(6), row.get::<_, Option<Vec<u8>>>(7))
            {
                if sub != "certs" && sub != "newcerts" {
                    return Err(Error::new(format!("a certificate file in {sub:?}, not certs or newcerts")));
                }
                let _ = std::fs::create_dir(dir.join(&sub));
                write(&format!("{sub}/{}.pem", entry.serial), &data)?;
            }
        }
        write("index.txt", index.as_bytes())?;
        let reserved = self
            .client
            .query(
                "SELECT serial, tbs_sha256, expiry, reserved_at, subject FROM cardca_reservation WHERE ca_id = $1 \
                 ORDER BY seq",
                &[&id],
            )
            .map_err(sql)?;
        if !reserved.is_empty() {
            let mut text = String::new();
            for row in &reserved {
                text.push_str(&reservation_of(row, &shown)?.line());
            }
            write("reserved.txt", text.as_bytes())?;
        }
        let d = std::fs::File::open(dir)?;
        rustix::fs::syncfs(&d).map_err(|e| Error::new(format!("syncfs: {e}")))?;
        Ok(Moved { ca: name_text(&issuer), certificates: certs.len(), reservations: reserved.len() })
    }
}

/// The certificate file of a serial as it is (cardca's certs/ or openssl
/// ca's newcerts/): the directory and the bytes.
fn cert_file(db: &Db, serial: &str) -> Result<(Option<String>, Option<Vec<u8>>)> {
    for sub in ["certs", "newcerts"] {
        let Some(d) = db.dir.subdir(sub)? else { continue };
        if let Some(data) = d.read(&format!("{serial}.pem"), CERT_FILE_MAX)? {
            return Ok((Some(sub.to_string()), Some(data)));
        }
    }
    Ok((None, None))
}

/// The issuer of the first certificate file, for a database that names
/// its CA nowhere else.
fn first_issuer(db: &Db, entries: &[Entry]) -> Result<Option<Vec<u8>>> {
    for e in entries {
        if let Some(der) = db.certificate(&e.serial)? {
            let c = <x509_cert::Certificate as der::Decode>::from_der(&der)
                .with_context(|| format!("the certificate file of serial {}", e.serial))?;
            return Ok(Some(der::Encode::to_der(c.tbs_certificate().issuer())?));
        }
    }
    Ok(None)
}

/// Every whole line of reserved.txt (a torn last line, which nobody was
/// told about, is left out, as on every read).
fn reservations(db: &Db) -> Result<Vec<Reservation>> {
    let Some(data) = db.read_file("reserved.txt", super::super::reserve::RESERVED_MAX)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8(data).map_err(|_| Error::new("reserved.txt is not ASCII"))?;
    let mut out = Vec::new();
    let whole = text.rfind('\n').map_or("", |i| &text[..=i]);
    for (i, line) in whole.lines().enumerate() {
        out.push(Reservation::parse(line).with_context(|| format!("reserved.txt line {}", i + 1))?);
    }
    Ok(out)
}
