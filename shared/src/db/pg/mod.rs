//! The CA record on PostgreSQL (`--db postgresql://...`), for a CA whose
//! record several issuing hosts share: the same record as index.txt (one
//! row per line, the certificate file it had), with PostgreSQL's
//! transactions and row locks instead of the lock file.
//!
//! ```text
//! cardca_schema       one row: the schema version
//! cardca_ca           one row per CA: its DER Name (issuer.der), the kept CA
//!                     certificate (ca.pem), index.txt.attr and crlnumber as
//!                     the files hold them
//! cardca_cert         one row per index.txt line, in its order (seq), with
//!                     the certificate file it has (certs/ or newcerts/)
//! cardca_reservation  one row per reserved.txt line, in its order
//! cardca_crl          one row per CRL number taken: when, and how many it lists
//! ```
//! Everything of a CA is keyed by its row; serials are unique per CA, as
//! in index.txt. Here: the connection (secrets kept off the command line
//! and out of every message; TLS always verified in full); `schema` the
//! tables and their migrations; `record` one CA's record, as the tools
//! use it; `moving` import from and export to an index.txt database.

use std::path::Path;

use postgres::{Client, Config, NoTls};

use crate::error::{Context, Error, Result};

mod moving;
mod record;
mod schema;

pub use moving::Moved;
pub use record::{CaRecord, Pending};
pub use schema::SCHEMA_VERSION;

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

/// A failed statement, named by what was being done: the server's own
/// message, or a lost connection said as such (a server that went away
/// mid-stream).
fn sql_error(shown: &str, doing: &str, e: postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::new(format!("{shown}: {doing}: {}", db.message())),
        None => {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            let lost = if e.is_closed() || text.contains("connection") || text.contains("unexpected EOF") {
                "the connection to the PostgreSQL server was lost: "
            } else {
                ""
            };
            Error::new(format!("{shown}: {doing}: {lost}{text}"))
        }
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
