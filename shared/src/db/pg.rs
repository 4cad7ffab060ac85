//! The CA record on PostgreSQL (`--db postgresql://...`), for a CA whose
//! record several issuing hosts share. This first part moves a record in
//! and out: the schema and its migrations, the connection (secrets kept
//! off the command line and out of every message; TLS always verified in
//! full), and a lossless import of an index.txt database and export back
//! to one that `openssl ca` reads. Issuing into it comes next; until then the tools refuse a
//! PostgreSQL `--db` everywhere else.
//!
//! ```text
//! cardca_schema       one row: the schema version
//! cardca_ca           one row per CA: its DER Name (issuer.der), the kept CA
//!                     certificate (ca.pem), index.txt.attr and crlnumber as
//!                     the files held them
//! cardca_cert         one row per index.txt line, in its order (seq), with
//!                     the certificate file it had (certs/ or newcerts/), as
//!                     it was
//! cardca_reservation  one row per reserved.txt line, in its order
//! ```
//! Everything of a CA is keyed by its row; serials are unique per CA, as
//! in index.txt. Migrations run in one transaction under an advisory
//! lock, so several hosts starting at once apply each once.

use std::io::Write;
use std::path::Path;

use postgres::{Client, Config, NoTls};

use super::{Db, Entry, Reservation, ATTR_MAX, CERT_FILE_MAX, CRLNUMBER_MAX};
use crate::error::{Context, Error, Result};

/// The schema this cardca writes and reads.
pub const SCHEMA_VERSION: i32 = 1;

/// The advisory lock key of migrations: "cardca", then 1.
const MIGRATION_LOCK: i64 = 0x6361_7264_6361_0001;

/// Each migration, from the version before it: MIGRATIONS[0] makes
/// version 1.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE cardca_schema (version integer NOT NULL);
    INSERT INTO cardca_schema VALUES (0);
    CREATE TABLE cardca_ca (
        id serial PRIMARY KEY,
        issuer bytea NOT NULL UNIQUE,
        ca_pem bytea,
        index_attr bytea,
        crlnumber bytea
    );
    CREATE TABLE cardca_cert (
        ca_id integer NOT NULL REFERENCES cardca_ca (id),
        seq bigserial,
        serial text NOT NULL,
        status char(1) NOT NULL,
        expiry text NOT NULL,
        revocation text NOT NULL,
        file text NOT NULL,
        subject text NOT NULL,
        cert_dir text,
        cert_file bytea,
        PRIMARY KEY (ca_id, serial)
    );
    CREATE TABLE cardca_reservation (
        ca_id integer NOT NULL REFERENCES cardca_ca (id),
        seq bigserial,
        serial text NOT NULL,
        tbs_sha256 text NOT NULL,
        expiry text NOT NULL,
        reserved_at bigint NOT NULL,
        subject text NOT NULL,
        PRIMARY KEY (ca_id, serial)
    );
"];

/// Whether a `--db` value names a PostgreSQL record.
pub fn is_uri(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// The URI as a message may show it: without a password, should one have
/// been written into it.
pub fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else { return uri.to_string() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:[redacted]@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k == "password" => format!("{k}=[redacted]"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Whether the URI carries a password (which would be on a command line).
fn has_password(uri: &str) -> bool {
    redact(uri) != uri
}

/// A connection to the record.
pub struct Pg {
    client: Client,
    /// The URI as messages show it.
    shown: String,
}

/// What an import or export moved.
pub struct Moved {
    pub ca: String,
    pub certificates: usize,
    pub reservations: usize,
}

impl Pg {
    /// Connects, as libpq would, with the URI's host (a Unix socket
    /// directory or a host name), port, user and database, each else from
    /// PGHOST, PGPORT, PGUSER (else USER) and PGDATABASE; the password
    /// from PGPASSWORD or the .pgpass file (PGPASSFILE, else
    /// ~/.pgpass), never from the URI. Then applies the migrations.
    pub fn connect(uri: &str) -> Result<Pg> {
        let shown = redact(uri);
        if has_password(uri) {
            return Err(Error::new(format!(
                "{shown}: a password in the URI would be on the command line and in the process list"
            ))
            .hint("give it in a .pgpass file (PGPASSFILE, else ~/.pgpass, mode 0600) or PGPASSWORD"));
        }
        // sslmode and sslrootcert are ours to read: the client knows only
        // some sslmodes (it would call verify-full an invalid string) and
        // no root file.
        let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
        let (mut mode, mut root) = (None, None);
        let mut rest = Vec::new();
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            if let Some(v) = kv.strip_prefix("sslmode=") {
                mode = Some(v.to_string());
            } else if let Some(v) = kv.strip_prefix("sslrootcert=") {
                root = Some(v.to_string());
            } else {
                rest.push(kv);
            }
        }
        let tls = match mode.as_deref() {
            None | Some("disable") | Some("prefer") => false,
            Some("require") | Some("verify-ca") | Some("verify-full") => true,
            Some(other) => {
                return Err(Error::new(format!("{shown}: sslmode={other} is not a PostgreSQL sslmode")))
            }
        };
        let plain = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
        let mut config: Config =
            plain.parse().map_err(|e| Error::new(format!("{shown}: not a PostgreSQL URI: {e}")))?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if config.get_hosts().is_empty() {
            config.host(&env("PGHOST").unwrap_or_else(|| "/var/run/postgresql".into()));
        }
        if config.get_ports().is_empty() {
            if let Some(p) = env("PGPORT") {
                config.port(p.parse().map_err(|_| Error::new(format!("PGPORT {p:?} is not a port")))?);
            }
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .ok_or_else(|| Error::new(format!("{shown}: no user (in the URI, PGUSER or USER)")))?;
            config.user(&user);
        }
        if config.get_dbname().is_none() {
            let name = env("PGDATABASE").unwrap_or_else(|| config.get_user().unwrap_or_default().to_string());
            config.dbname(&name);
        }
        if let Some(pw) = env("PGPASSWORD") {
            config.password(pw);
        } else if let Some(pw) = pgpass(&config)? {
            config.password(pw);
        }
        let client = if tls {
            config.ssl_mode(postgres::config::SslMode::Require);
            let connector = tls_connector(&shown, root.or_else(|| env("PGSSLROOTCERT")))?;
            config.connect(connector)
        } else {
            config.connect(NoTls)
        }
        .map_err(|e| connect_error(&shown, &config, &e))?;
        let mut pg = Pg { client, shown };
        pg.migrate()?;
        Ok(pg)
    }

    /// The URI as messages show it.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Brings the schema to SCHEMA_VERSION, in one transaction under the
    /// migration lock (so concurrent first runs apply each step once);
    /// refuses a schema newer than this cardca's.
    fn migrate(&mut self) -> Result<()> {
        let shown = self.shown.clone();
        let sql = |e: postgres::Error| sql_error(&shown, "setting up the schema", e);
        let mut tx = self.client.transaction().map_err(sql)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(sql)?;
        let exists: bool =
            tx.query_one("SELECT to_regclass('cardca_schema') IS NOT NULL", &[]).map_err(sql)?.get(0);
        let version: i32 = if exists {
            tx.query_one("SELECT version FROM cardca_schema", &[]).map_err(sql)?.get(0)
        } else {
            0
        };
        if version > SCHEMA_VERSION {
            return Err(Error::new(format!(
                "{shown}: the record's schema is version {version}, newer than this cardca's \
                 {SCHEMA_VERSION}: nothing was changed"
            ))
            .hint("run the cardca that wrote it, or a newer one"));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(step).map_err(sql)?;
            tx.execute("UPDATE cardca_schema SET version = $1", &[&(i as i32 + 1)]).map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }

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
        let name = issuer_text(&issuer);
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
            let status: String = row.get(1);
            let entry = Entry {
                status: status.chars().next().unwrap_or('V'),
                expiry: row.get(2),
                revocation: row.get(3),
                serial: row.get(0),
                file: row.get(4),
                subject: row.get(5),
            };
            // What the record holds is checked as index.txt is on reading.
            let line = entry.line();
            Entry::parse(line.trim_end_matches('\n')).context("a row of cardca_cert")?;
            index.push_str(&line);
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
                let at: i64 = row.get(3);
                let r = Reservation {
                    serial: row.get(0),
                    tbs_sha256: row.get(1),
                    expiry: row.get(2),
                    at: u64::try_from(at).map_err(|_| Error::new("a negative reservation time"))?,
                    subject: row.get(4),
                };
                // Checked as reserved.txt is on reading, like the index lines.
                let line = r.line();
                Reservation::parse(line.trim_end_matches('\n')).context("a row of cardca_reservation")?;
                text.push_str(&line);
            }
            write("reserved.txt", text.as_bytes())?;
        }
        let d = std::fs::File::open(dir)?;
        rustix::fs::syncfs(&d).map_err(|e| Error::new(format!("syncfs: {e}")))?;
        Ok(Moved { ca: issuer_text(&issuer), certificates: certs.len(), reservations: reserved.len() })
    }
}

/// TLS to the server, always verified in full, whatever the sslmode that
/// asked for it (require and verify-ca too): the chain up to a CA in
/// `root` (sslrootcert, PGSSLROOTCERT, else ~/.postgresql/root.crt) and
/// the host name. A record is no place for an unauthenticated server.
fn tls_connector(shown: &str, root: Option<String>) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let path = match root {
        Some(p) => std::path::PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(h) => Path::new(&h).join(".postgresql/root.crt"),
            None => std::path::PathBuf::from(".postgresql/root.crt"),
        },
    };
    if let Err(e) = std::fs::metadata(&path) {
        return Err(Error::new(format!(
            "{shown}: TLS needs the CA that issued the server's certificate, and {} cannot be read: {e}",
            path.display()
        ))
        .hint("name it with sslrootcert=FILE in the URI or PGSSLROOTCERT"));
    }
    let mut roots = rustls::RootCertStore::empty();
    for o in crate::io::read_file(&path, &["CERTIFICATE"])? {
        roots
            .add(o.der.into())
            .map_err(|e| Error::new(format!("{}: not a CA certificate for TLS: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(Error::new(format!("{} holds no certificate", path.display())));
    }
    // ring: already here for verification; rustls deprecates it for
    // lacking post-quantum key exchange, which aws-lc-rs (a C build) has.
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
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
    let Some(data) = db.read_file("reserved.txt", super::reserve::RESERVED_MAX)? else {
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

/// A DER Name as OpenSSL's one-line text, for messages.
fn issuer_text(der: &[u8]) -> String {
    <x509_cert::name::Name as der::Decode>::from_der(der)
        .map(|n| crate::names::openssl_oneline(&n))
        .unwrap_or_else(|_| "a CA whose name does not decode".into())
}

/// The password for `config` from the .pgpass file (PGPASSFILE, else
/// ~/.pgpass), as libpq reads it: lines host:port:database:user:password,
/// `*` matching anything, `\` escaping `:` and `\`; a Unix socket is host
/// "localhost"; a file others may read is ignored, with a warning.
fn pgpass(config: &Config) -> Result<Option<String>> {
    let path = match std::env::var_os("PGPASSFILE") {
        Some(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => match std::env::var_os("HOME") {
            Some(h) => Path::new(&h).join(".pgpass"),
            None => return Ok(None),
        },
    };
    let Ok(meta) = std::fs::metadata(&path) else { return Ok(None) };
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o077 != 0 {
        crate::report::warn(format_args!(
            "{}: others may read it; ignored, as libpq ignores it (chmod 600)",
            path.display()
        ));
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let want = [
        host,
        port,
        config.get_dbname().unwrap_or_default().into(),
        config.get_user().unwrap_or_default().into(),
    ];
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let fields = pgpass_fields(line);
        if fields.len() == 5 && fields[..4].iter().zip(&want).all(|(f, w)| f == "*" || f == w) {
            return Ok(Some(fields[4].clone()));
        }
    }
    Ok(None)
}

fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one field").push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

/// A failed connection, named without the secret: the server cannot be
/// reached, or refused the credentials, or the database does not exist.
fn connect_error(shown: &str, config: &Config, e: &postgres::Error) -> Error {
    let user = config.get_user().unwrap_or_default();
    if let Some(db) = e.as_db_error() {
        let why = match db.code().code() {
            "28P01" => format!("the server refused the credentials of user {user}"),
            // pg_hba.conf's refusal names the rule's reason (no TLS, say).
            "28000" => format!("the server refused the connection: {}", db.message()),
            "3D000" => format!("no database {:?} on the server", config.get_dbname().unwrap_or_default()),
            _ => db.message().to_string(),
        };
        return Error::new(format!("{shown}: {why}"));
    }
    // The client's own text is terse ("error connecting to server"): the
    // causes say what happened.
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    if text.contains("password missing") {
        return Error::new(format!("{shown}: the server asks user {user} for a password and none was given"))
            .hint("give it in a .pgpass file (PGPASSFILE, else ~/.pgpass, mode 0600) or PGPASSWORD");
    }
    Error::new(format!("{shown}: cannot reach the PostgreSQL server: {text}"))
}

fn sql_error(shown: &str, doing: &str, e: postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::new(format!("{shown}: {doing}: {}", db.message())),
        None => Error::new(format!("{shown}: {doing}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(redact("postgresql://ca@db.example/ca"), "postgresql://ca@db.example/ca");
        assert_eq!(
            redact("postgresql://ca:s3cret@db.example/ca"),
            "postgresql://ca:[redacted]@db.example/ca"
        );
        assert_eq!(redact("postgres://ca:s3:c@h:5432"), "postgres://ca:[redacted]@h:5432");
        assert_eq!(
            redact("postgresql:///ca?host=/run/pg&password=s3cret&sslmode=disable"),
            "postgresql:///ca?host=/run/pg&password=[redacted]&sslmode=disable"
        );
        assert!(has_password("postgresql://u:p@h/d"));
        assert!(!has_password("postgresql://u@h/d?host=/x"));
        assert!(is_uri("postgres://h") && is_uri("postgresql:///d") && !is_uri("db/servers"));
    }

    #[test]
    fn pgpass_lines() {
        assert_eq!(pgpass_fields("*:*:*:ca:pw"), ["*", "*", "*", "ca", "pw"]);
        assert_eq!(pgpass_fields(r"h:5432:d:u:p\:w\\x:y"), ["h", "5432", "d", "u", r"p:w\x:y"]);
        assert_eq!(pgpass_fields("too:few").len(), 2);
    }
}
