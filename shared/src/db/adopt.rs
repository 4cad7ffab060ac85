//! One database per CA. index.txt has no issuer column, so a database
//! belongs to one CA: issuer.der names it once cardca has recorded a
//! certificate there. A database without issuer.der (made by `openssl ca`
//! or an older cardca) is adopted only if every certificate file of its
//! lines was issued by the same CA. Every tool that opens a database for
//! a CA comes through here ([`open_of`]) or through [`Db::check`].
//!
//! The CA's certificate is kept too (`DIR/ca.pem`, from the first
//! `--ca` a tool was given for the database, or the root's own
//! certificate stored in its database): cert-store checks every
//! certificate's signature against it, `--ca` or not, so nothing enters
//! the record that this CA's key did not sign. A renewed CA certificate
//! (the same name and key) is the same CA; another key is another CA.

use std::path::Path;

use der::{Decode, Encode};
use x509_cert::name::Name;

use super::record::name_text;
use super::{Db, CERT_FILE_MAX};
use crate::cert::CaCert;
use crate::error::{Context, Error, Result};

/// The database in `dir`, which must exist and be `ca`'s: a CRL or OCSP
/// response from a database that holds another CA's certificates would
/// speak for them. `what` names the run in a refusal of an old database.
pub fn open_of(dir: &Path, ca: &CaCert, what: &str) -> Result<Db> {
    let db = Db::open_existing(dir)?;
    db.check_kept(ca)?;
    let issuer = ca.tbs.subject.to_der()?;
    match db.issuer()? {
        Some(owner) if owner != issuer => {
            let owner = Name::from_der(&owner)
                .map(|n| crate::names::openssl_oneline(&n))
                .unwrap_or_else(|_| "?".into());
            return Err(Error::new(format!(
                "{} is the database of {owner}, not of {} (one database per CA)",
                dir.display(),
                crate::names::openssl_oneline(&ca.tbs.subject)
            )));
        }
        Some(_) => {}
        // Made by openssl ca or an older cardca: the certificate files it
        // has must all be this CA's.
        None => db.check_files_issued_by(&issuer).context(what)?,
    }
    Ok(db)
}

/// [`open_of`], creating the database on first use (card-sign --db
/// reserves the first serial of a new CA before cert-store records it).
pub fn create_of(dir: &Path, ca: &CaCert, what: &str) -> Result<Db> {
    if !dir.join("index.txt").exists() {
        Db::open(dir)?;
    }
    open_of(dir, ca, what)
}

impl Db {
    /// The CA certificate the database keeps, if it keeps one.
    pub fn kept_ca(&self) -> Result<Option<CaCert>> {
        let Some(text) = self.read_file("ca.pem", CERT_FILE_MAX)? else { return Ok(None) };
        let path = self.dir.join("ca.pem");
        let der = pem_certificate(&text, &path.display())?;
        CaCert::parse(der).with_context(|| path.display().to_string()).map(Some)
    }

    /// `ca` must be the CA the database keeps (its name and key), if it
    /// keeps one.
    fn check_kept(&self, ca: &CaCert) -> Result<()> {
        let Some(kept) = self.kept_ca()? else { return Ok(()) };
        same_ca(&kept, ca, &self.dir().display(), &self.dir.join("ca.pem").display())
    }

    /// Keeps `ca` as the database's CA certificate, unless it keeps one:
    /// then `ca` must be that CA. A database already holding another
    /// CA's certificates is refused (issuer.der, or their files). Under
    /// the lock, and written whole (a temporary file renamed into place):
    /// a reader sees no ca.pem or all of it, and two runs keeping it at
    /// once keep it once.
    pub fn keep_ca(&self, ca: &CaCert) -> Result<()> {
        let _lock = self.lock()?;
        if self.kept_ca()?.is_some() {
            return self.check_kept(ca);
        }
        let issuer = ca.tbs.subject.to_der()?;
        match self.issuer()? {
            Some(owner) if owner != issuer => {
                return Err(Error::new(format!(
                    "{} is the database of {}, not of {} (one database per CA)",
                    self.dir().display(),
                    name_text(&owner),
                    ca.subject_text()
                ))
                .hint("give each CA its own database directory"))
            }
            Some(_) => {}
            None => self.check_files_issued_by(&issuer)?,
        }
        self.dir.replace("ca.pem", crate::io::pem("CERTIFICATE", &ca.der).as_bytes())
    }

    /// The refusal of a certificate of `issuer` in the database of `owner`.
    pub(super) fn other_ca(&self, serial: &str, issuer: &[u8], owner: &[u8]) -> String {
        format!(
            "serial {serial} is issued by {}, but {} is the database of {} (one database per CA)",
            name_text(issuer),
            self.dir().display(),
            name_text(owner)
        )
    }

    /// For a database that does not yet say whose it is (made by openssl
    /// ca, or by an older cardca): every certificate file found for its
    /// lines (`certs/` or openssl's `newcerts/`) must be issued by
    /// `issuer`. Once per database, when it is adopted.
    pub fn check_files_issued_by(&self, issuer: &[u8]) -> Result<()> {
        // Parsed as every reader parses it: a serial that is not hex (say
        // `../x`) never becomes a file name here.
        for entry in self.read_entries()? {
            let serial = entry.serial;
            if let Some(der) = self.certificate(&serial)? {
                let c = x509_cert::Certificate::from_der(&der)
                    .with_context(|| format!("the certificate file of serial {serial}"))?;
                let theirs = c.tbs_certificate().issuer().to_der()?;
                if theirs != issuer {
                    return Err(Error::new(format!(
                        "{} already holds serial {serial}, issued by {}: it is not the database of {} (one database per CA)",
                        self.dir().display(),
                        name_text(&theirs),
                        name_text(issuer)
                    ))
                    .hint("give each CA its own database directory"));
                }
            }
        }
        Ok(())
    }

    /// The certificate file of a serial (DER), where cardca (`certs/`) or
    /// openssl ca (`newcerts/`, its usual new_certs_dir) puts it; None if
    /// neither has it. For adopting a database and for telling a renewal
    /// (the same key again) from another key under the same subject
    /// (`cert-store --expiring`): index.txt is the record, not the files.
    pub fn certificate(&self, serial: &str) -> Result<Option<Vec<u8>>> {
        for dir in ["certs", "newcerts"] {
            let Some(dir) = self.dir.subdir(dir)? else { continue };
            let name = format!("{serial}.pem");
            let Some(text) = dir.read(&name, CERT_FILE_MAX)? else { continue };
            let der = pem_certificate(&text, &dir.join(&name).display())?;
            return Ok(Some(der));
        }
        Ok(None)
    }
}

/// The DER of a PEM certificate file (ca.pem, certs/SERIAL.pem, or the
/// record's copy of one), named `place` in an error.
pub(super) fn pem_certificate(text: &[u8], place: &dyn std::fmt::Display) -> Result<Vec<u8>> {
    let (label, der) = pem_rfc7468::decode_vec(text).map_err(|e| Error::new(format!("{place}: {e}")))?;
    if label != "CERTIFICATE" {
        return Err(Error::new(format!("{place} is not a certificate")));
    }
    Ok(der)
}

/// `ca` must be the CA a record keeps (`kept`, in `place`, from
/// `file`): the same name and key (a renewed CA certificate is the same
/// CA; another key is another CA).
pub(super) fn same_ca(
    kept: &CaCert,
    ca: &CaCert,
    place: &dyn std::fmt::Display,
    file: &dyn std::fmt::Display,
) -> Result<()> {
    if kept.tbs.subject == ca.tbs.subject
        && kept.tbs.subject_public_key_info == ca.tbs.subject_public_key_info
    {
        return Ok(());
    }
    let same_name = kept.tbs.subject == ca.tbs.subject;
    Err(Error::new(format!(
        "{place} keeps the certificate of {}{}, not of this CA {} (one database per CA)",
        kept.subject_text(),
        if same_name { " with another key" } else { "" },
        ca.subject_text()
    ))
    .hint(format!("{file} is the CA certificate the database was made for")))
}
