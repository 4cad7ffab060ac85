//! cert-store: the record. Keeps every issued certificate in an
//! OpenSSL-`ca`-compatible database and, on request, on the card.
//!
//! Reads certificates (PEM or DER, any number) from stdin; writes each to
//! stdout only after it is recorded durably. Touches the token only with
//! --token (read-write, to store certificates).

mod card;
mod expiring;
mod reserve;

use std::cell::Cell;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::mpsc;

use cardca::audit::{self, Event, Stage};
use cardca::cert::CaCert;
use cardca::cli::{self, set_once, value, value_with};
use cardca::db::{self, Location, Record, Store};
use cardca::uri::Uri;
use cardca::{hex, io, report, session, time, Error, Result};
use lexopt::{Arg, Parser};

const USAGE: &str = "\
cert-store: record issued certificates (CA database, token) and revoke them

Usage:
  cert-store [--db DIR|URI] [--ca FILE] [--token URI [--label LABEL] [--id HEX]]
             [--der] [--pin-source SRC] [--module PATH]
             [--audit FILE | --no-audit]
  cert-store --db DIR|URI [--ca FILE] --revoke SERIAL|- [--reason REASON]
             [--audit FILE | --no-audit]
  cert-store --db DIR|URI [--ca FILE] --reserved [--audit FILE | --no-audit]
  cert-store --db DIR|URI [--ca FILE] --reconcile [--reason REASON]
             [--min-age SECONDS]
             [--audit FILE | --no-audit]
  cert-store --expiring DAYS [--db DIR|URI [--ca FILE]] [--cert FILE]... [--crl FILE]...
             [--ocsp-dir DIR] [--json]
  cert-store --audit-verify FILE [--audit-ca FILE]
  cert-store --db postgresql://... (--import DIR | --export DIR [--ca FILE])
  cert-store --ocsp-dir DIR --ca FILE [--der] [--audit FILE | --no-audit]

Reads certificates (PEM or DER, any number) from stdin and passes each to
stdout only after it is recorded. --db keeps an OpenSSL-ca-compatible
database of one CA in DIR (index.txt, index.txt.attr, issuer.der,
certs/SERIAL.pem, crlnumber), created on first use: writes are locked,
fsynced and atomic, so parallel runs and crashes never leave a torn line or
a line without its file. A serial already in index.txt is refused, so is a
subject that already has a valid certificate when index.txt.attr says
unique_subject = yes, and so is another CA's certificate. No symbolic link
inside DIR is followed. Certificates waiting on stdin are recorded
together, with one sync for the batch. Each certificate must be issued
and signed by the CA before anything is recorded: --ca names it, and the
database keeps it (DIR/ca.pem) for every later run, so --ca may then be
left out (and, if given, must be the same CA); a database that keeps no
CA yet takes only a self-signed certificate (a root's own), which it
then keeps. A certificate whose serial card-sign --db reserved must be
the one it reserved (the same TBS hash). --token
stores each certificate on the card with the CKA_ID of the private key it
certifies (the seed's `pkcs15-init --store-certificate`); a certificate
already there is not stored twice. The card is written only once the
audit log has the certificates; with --db, after the database's checks and
the certificate files and before the index lines, so a failure on the card
leaves no index line (the log gets a failure line) and the same
certificates can be stored again.

Every certificate stored and every revocation is an audit event: a JSON
line, hash-chained to the one before it, appended under a lock and made
durable before the card or the index line is written (cardca(7)).
--audit-verify checks a whole log: the chain, the JSON, the sequence
numbers; it prints the line count, the chain head and the events, or
names the first broken line and why (edited, deleted, inserted,
reordered, cut off at the start, torn by a crash) and exits 1.

--revoke marks certificates revoked in the database, with the time (now)
and an optional reason, as `openssl ca -revoke` does; `-` revokes the
certificates read from stdin. Nothing is written to stdout then.

--reserved lists what card-sign --db reserved and no cert-store
recorded (a cert-store killed, a full disk, a pipe cut after card-sign),
one line each with its age and what the audit log says: signed and
released (someone may hold the certificate), or never released (a crash
or refusal before card-sign wrote it). --reconcile records each one
older than --min-age as revoked (a revoked line in index.txt, now, with
--reason), logged first, so the next CRL and OCSP responses cover it; if
its certificate turns up later, cert-store still records it (its file;
it stays revoked).

--expiring DAYS lists, soonest first, what ends within DAYS days of now
(CARDCA_NOW): the certificates of --db that are not revoked and not
renewed (no other certificate with the same subject and key, not
revoked, ends later), from DAYS days ago on; the certificates in each --cert file and
each --crl's nextUpdate, however long past; the pre-signed responses in
--ocsp-dir by nextUpdate (with --db, not those for certificates that have
expired). One tab-separated line each: the end, the kind (certificate,
crl, ocsp), the serial or CRL number, the subject or issuer, the file,
how long is left; --json prints the same as one JSON object. The exit
status is 0 whether anything is listed or not (cron and make test the
output); a count goes to stderr. Nothing is changed.

--db postgresql://[USER@][HOST][:PORT]/DATABASE[?host=SOCKETDIR] keeps
the record in PostgreSQL instead (host, port, user and database else
from PGHOST, PGPORT, PGUSER and PGDATABASE), for several issuing hosts
at once: the same record and the same checks, one transaction per batch
with the CA's row locked instead of the lock file; a certificate is
passed on only once its transaction committed. The record holds several
CAs: --ca chooses one (else the certificates' issuer, or the only one);
the audit log is --audit FILE or $CARDCA_AUDIT, one per host. tbs-build
and card-sign take the same --db. --import copies the index.txt database DIR as it is (every
line in its order, every certificate file, reserved.txt, index.txt.attr,
crlnumber, the kept CA) in one transaction, and never merges into a CA
the record already holds; --export writes one CA's record (--ca chooses
it when the record holds several) into the new directory DIR, byte for
byte what was imported, for openssl ca. The password comes from
PGPASSWORD or a .pgpass file (PGPASSFILE, else ~/.pgpass, mode 0600),
never from the URI, and no message shows it; sslmode=verify-full (require
and verify-ca too) connects with TLS, verifying the chain up to
sslrootcert=FILE (else PGSSLROOTCERT, ~/.postgresql/root.crt) and the
host name. The schema is created or
brought up to date under an advisory lock; one newer than this cardca's
is refused.

--ocsp-dir reads OCSP RESPONSE blocks from card-sign instead and files
each as DIR/SERIAL.der (DER, the serial in upper-case hex: what nginx's
ssl_stapling_file and openssl s_server -status_file read), after checking
it against --ca as a relying party would (its CertID names the CA, the
responder is the CA or one it delegated to, the times are current, the
signature verifies), then passes it on. Each file is replaced atomically
(a temporary file in DIR, fsync, audit line, rename), so a server never
reads half a response; never by an older response (thisUpdate) or over a
file that is not this CA's response (one DIR per CA); no symbolic link
inside DIR is followed.

Options:
      --db DIR|URI        the CA database: a directory (one per CA), or
                          postgresql://... (the record several hosts share)
      --ocsp-dir DIR      file OCSP responses for serving in DIR (with --ca)
      --ca FILE           check each certificate's issuer and signature
                          against this CA certificate first (default with
                          --db: the CA the database keeps); with --revoke,
                          --reserved, --reconcile, --expiring: the CA whose
                          record it is (it chooses among a PostgreSQL
                          record's CAs)
      --token URI         also store the certificates on this token
      --label LABEL       the certificates' CKA_LABEL (default: subject CN)
      --id HEX            the CKA_ID to use when no key on the token matches
      --der               write DER instead of PEM (not to a terminal)
      --revoke SERIAL|-   revoke the certificate with this serial (hex), or
                          those on stdin
      --reason REASON     keyCompromise, CACompromise, affiliationChanged,
                          superseded, cessationOfOperation, certificateHold
      --reserved          list the reservations no certificate was recorded
                          for (on stdout; a count on stderr)
      --reconcile         record those as revoked
      --min-age SECONDS   with --reconcile: leave younger reservations alone
                          (they may still be on their way); default 600
      --pin-source SRC    where the user PIN comes from for --token
                          (file:PATH, env:VAR, fd:N; default: the tty)
      --module PATH       the PKCS#11 module (default: $CARDCA_MODULE, then
                          p11-kit's proxy, then SoftHSM2)
      --module-args STR   the module's C_Initialize init string, which NSS
                          softokn needs (default: the URI's x-module-args,
                          then $CARDCA_MODULE_ARGS)
      --audit FILE        append a line per certificate stored or revoked
                          (or OCSP response filed) to this audit log, made
                          durable first (default: $CARDCA_AUDIT, then
                          DIR/audit.log with --db)
      --no-audit          write no audit log
      --expiring DAYS     list what ends within DAYS days (0 to 3000000)
      --cert FILE         with --expiring: the certificates in FILE (repeatable)
      --crl FILE          with --expiring: the CRLs in FILE (repeatable)
      --json              with --expiring: one JSON object instead of lines
      --import DIR        with --db postgresql://...: copy the index.txt
                          database DIR into the PostgreSQL record
      --export DIR        with --db postgresql://...: write a CA's record to
                          the new directory DIR as an index.txt database
      --audit-verify FILE check the whole hash chain and JSON of an audit log;
                          name the first broken line and why (exit 1)
      --audit-ca FILE     with --audit-verify: check every checkpoint's
                          signature with this CA certificate's key; a log
                          with no checkpoint is refused
  -h, --help              print this help
  -V, --version           print the version

Environment:
  CARDCA_NOW              \"now\" as RFC 3339, for revocation times and
                          --expiring
  CARDCA_AUDIT            the audit log when --audit is not given
  PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGPASSFILE, PGSSLROOTCERT
                          the PostgreSQL record's connection, as for libpq

Examples:
  $ tbs-build --ca servers.pem --profile server --san dns:www.ewak.net < www.csr \\
      | card-sign --ca servers.pem | cert-store --db db/servers --ca servers.pem > www.pem
  $ card-sign --ca root.pem < servers.tbs \\
      | cert-store --db db/root --token 'pkcs11:token=ewak.net%20PKI' > servers.pem
  $ cert-store --db db/servers --revoke 5A3F09C1D2E4F60718293A4B5C6D7E8F --reason keyCompromise
  $ cert-store --db db/servers --reserved
  $ cert-store --db db/servers --reconcile --reason superseded
  $ cert-store --audit-verify db/servers/audit.log
  $ cert-store --expiring 30 --db db/servers --crl servers.crl --ocsp-dir ocsp/servers
  $ cert-store --db postgresql:///cardca --import db/servers
";

enum Mode {
    Store {
        db: Option<Location>,
        ca: Option<String>,
        token: Option<Box<Uri>>,
        label: Option<String>,
        id: Option<Vec<u8>>,
        der: bool,
    },
    Revoke {
        db: Location,
        ca: Option<String>,
        serial: Option<String>,
        reason: Option<String>,
    },
    /// `--reserved`: list what card-sign --db reserved and nobody recorded.
    Reserved {
        db: Location,
        ca: Option<String>,
    },
    /// `--reconcile`: record those as revoked.
    Reconcile {
        db: Location,
        ca: Option<String>,
        reason: Option<String>,
        min_age: u64,
    },
    AuditVerify {
        file: PathBuf,
        ca: Option<String>,
    },
    /// `--expiring DAYS`: what ends within DAYS, soonest first.
    Expiring {
        days: u64,
        from: expiring::Sources,
        json: bool,
    },
    /// `--db postgresql://... --import DIR`: an index.txt database into
    /// the PostgreSQL record.
    Import {
        uri: String,
        dir: PathBuf,
    },
    /// `--db postgresql://... --export DIR [--ca FILE]`: one CA's record
    /// out to an index.txt database.
    Export {
        uri: String,
        dir: PathBuf,
        ca: Option<String>,
    },
    /// `--ocsp-dir DIR --ca FILE`: file signed OCSP responses for serving.
    Ocsp {
        dir: PathBuf,
        ca: String,
        der: bool,
    },
}

struct Args {
    flags: session::Options,
    mode: Mode,
}

fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Args> {
    let mut parser = Parser::from_args(args);
    let mut flags = session::Options::default();
    let (mut db, mut ca, mut token, mut label, mut id, mut revoke, mut reason, mut der) =
        (None, None, None, None, None, None, None, false);
    let (mut verify, mut audit_ca) = (None, None);
    let mut ocsp_dir = None;
    let (mut reserved, mut reconcile, mut min_age) = (false, false, None);
    let (mut expiring, mut json, mut certs, mut crls) = (None, false, Vec::new(), Vec::new());
    let (mut import, mut export) = (None, None);
    // Every long flag given, for the modes that take only some.
    let mut seen: Vec<String> = Vec::new();
    while let Some(arg) = parser.next()? {
        if let Arg::Long(f) = &arg {
            seen.push(f.to_string());
        }
        match arg {
            Arg::Long(f) if cli::token_flag(f) => {
                let f = f.to_owned();
                cli::parse_token_flag(&mut flags, &f, &mut parser)?;
            }
            Arg::Long("db") => set_once(&mut db, cli::db_location(&mut parser)?, "--db")?,
            Arg::Long("import") => set_once(&mut import, PathBuf::from(value(&mut parser)?), "--import")?,
            Arg::Long("export") => set_once(&mut export, PathBuf::from(value(&mut parser)?), "--export")?,
            Arg::Long("ocsp-dir") => set_once(&mut ocsp_dir, PathBuf::from(parser.value()?), "--ocsp-dir")?,
            Arg::Long("ca") => set_once(&mut ca, value(&mut parser)?, "--ca")?,
            Arg::Long("token") => set_once(&mut token, cli::uri_value(&mut parser, "--token")?, "--token")?,
            Arg::Long("label") => set_once(&mut label, value(&mut parser)?, "--label")?,
            Arg::Long("id") => set_once(&mut id, value_with(&mut parser, "--id", hex::decode)?, "--id")?,
            Arg::Long("revoke") => {
                let v = value_with(&mut parser, "--revoke", |s| {
                    if s == "-" {
                        Ok(None)
                    } else {
                        db::parse_serial(s).map(Some)
                    }
                })?;
                set_once(&mut revoke, v, "--revoke")?
            }
            Arg::Long("reason") => {
                let r = value_with(&mut parser, "--reason", |s| {
                    db::reason_code(s).map(|_| s.to_string()).ok_or_else(|| {
                        let names: Vec<&str> = db::REASONS.iter().map(|(n, _)| *n).collect();
                        let hint = if s.eq_ignore_ascii_case("unspecified") {
                            "; RFC 5280 says to leave the reason out instead of unspecified"
                        } else {
                            ""
                        };
                        Error::new(format!("unknown reason {s:?} ({}){hint}", names.join(", ")))
                    })
                })?;
                // Stored with OpenSSL's spelling.
                let canonical =
                    db::REASONS.iter().find(|(n, _)| n.eq_ignore_ascii_case(&r)).map(|(n, _)| n.to_string());
                set_once(&mut reason, canonical.unwrap_or(r), "--reason")?
            }
            Arg::Long("der") => der = true,
            Arg::Long("reserved") => reserved = true,
            Arg::Long("reconcile") => reconcile = true,
            Arg::Long("min-age") => {
                let n = value_with(&mut parser, "--min-age", |s| {
                    s.parse::<u64>().map_err(|_| Error::new("expected a number of seconds"))
                })?;
                set_once(&mut min_age, n, "--min-age")?
            }
            Arg::Long("expiring") => {
                let n = value_with(&mut parser, "--expiring", |s| {
                    s.parse::<u64>()
                        .ok()
                        .filter(|&n| n <= 3_000_000)
                        .ok_or_else(|| Error::new("expected a number of days, 0 to 3000000"))
                })?;
                set_once(&mut expiring, n, "--expiring")?
            }
            Arg::Long("json") => json = true,
            Arg::Long("cert") => certs.push(PathBuf::from(value(&mut parser)?)),
            Arg::Long("crl") => crls.push(PathBuf::from(value(&mut parser)?)),
            Arg::Long("audit-ca") => set_once(&mut audit_ca, value(&mut parser)?, "--audit-ca")?,
            Arg::Long("audit-verify") => {
                let v = parser.value()?;
                if v.is_empty() {
                    return Err(Error::usage("--audit-verify: an empty file name"));
                }
                set_once(&mut verify, PathBuf::from(v), "--audit-verify")?
            }
            Arg::Short('h') | Arg::Long("help") => return Err(Error::info(USAGE)),
            Arg::Short('V') | Arg::Long("version") => return Err(cli::version("cert-store")),
            other => return Err(cli::unexpected(other)),
        }
    }
    // A PostgreSQL record is moved in and out (--import, --export).
    if import.is_some() || export.is_some() {
        let Some(Location::Pg(uri)) = db else {
            return Err(Error::usage(
                "--import and --export go with --db postgresql://...: the record to move into or out of",
            ));
        };
        if import.is_some() == export.is_some()
            || beyond(&seen, &["import", "export", "db", "ca"])
            || (import.is_some() && ca.is_some())
        {
            return Err(Error::usage("--import DIR takes only --db; --export DIR only --db and --ca"));
        }
        let mode = match (import, export) {
            (Some(dir), _) => Mode::Import { uri, dir },
            (_, Some(dir)) => Mode::Export { uri, dir, ca },
            _ => unreachable!("one of them, checked above"),
        };
        return Ok(Args { flags, mode });
    }
    if let Some(file) = verify {
        if beyond(&seen, &["audit-verify", "audit-ca"]) {
            return Err(Error::usage("--audit-verify FILE takes no other option"));
        }
        return Ok(Args { flags, mode: Mode::AuditVerify { file, ca: audit_ca } });
    }
    if audit_ca.is_some() {
        return Err(Error::usage("--audit-ca goes with --audit-verify"));
    }
    if let Some(days) = expiring {
        let from = expiring::Sources { db, ca, certs, crls, ocsp_dir };
        if beyond(&seen, &["expiring", "db", "ca", "cert", "crl", "ocsp-dir", "json"]) {
            return Err(Error::usage(
                "--expiring takes only --db, --ca, --cert, --crl, --ocsp-dir and --json",
            ));
        }
        if from.is_empty() {
            return Err(Error::usage(
                "--expiring needs --db DIR, --cert FILE, --crl FILE or --ocsp-dir DIR: where to look",
            ));
        }
        return Ok(Args { flags, mode: Mode::Expiring { days, from, json } });
    }
    if json || !certs.is_empty() || !crls.is_empty() {
        return Err(Error::usage("--json, --cert and --crl go with --expiring"));
    }
    if let Some(dir) = ocsp_dir {
        if beyond(&seen, &["ocsp-dir", "ca", "der", "audit", "no-audit"]) {
            return Err(Error::usage("--ocsp-dir takes only --ca, --der and the audit flags"));
        }
        let ca = ca.ok_or_else(|| {
            Error::usage(
                "--ocsp-dir needs --ca FILE: each response is checked against its CA before it is served",
            )
        })?;
        return Ok(Args { flags, mode: Mode::Ocsp { dir, ca, der } });
    }
    if reserved || reconcile {
        let what = if reserved { "--reserved" } else { "--reconcile" };
        let allowed: &[&str] = match reserved {
            true => &["reserved", "db", "ca", "audit", "no-audit"],
            false => &["reconcile", "db", "ca", "reason", "min-age", "audit", "no-audit"],
        };
        if beyond(&seen, allowed) {
            return Err(Error::usage(if reserved {
                "--reserved takes only --db, --ca and the audit flags"
            } else {
                "--reconcile takes only --db, --ca, --reason, --min-age and the audit flags"
            }));
        }
        let db = db.ok_or_else(|| Error::usage(format!("{what} needs --db DIR")))?;
        let mode = match reserved {
            true => Mode::Reserved { db, ca },
            false => Mode::Reconcile { db, ca, reason, min_age: min_age.unwrap_or(DEFAULT_MIN_AGE) },
        };
        return Ok(Args { flags, mode });
    }
    if min_age.is_some() {
        return Err(Error::usage("--min-age goes with --reconcile"));
    }
    let mode = match revoke {
        Some(serial) => {
            if token.is_some() || label.is_some() || id.is_some() || der {
                return Err(Error::usage("--revoke takes only --db, --ca and --reason"));
            }
            let db = db.ok_or_else(|| Error::usage("--revoke needs --db DIR"))?;
            Mode::Revoke { db, ca, serial, reason }
        }
        None => {
            if reason.is_some() {
                return Err(Error::usage("--reason goes with --revoke or --reconcile"));
            }
            if db.is_none() && token.is_none() {
                return Err(Error::usage(
                    "give --db DIR, --token URI or both: where to record the certificates",
                ));
            }
            if token.is_none() && (label.is_some() || id.is_some()) {
                return Err(Error::usage("--label and --id go with --token"));
            }
            Mode::Store { db, ca, token: token.map(Box::new), label, id, der }
        }
    };
    Ok(Args { flags, mode })
}

/// Whether a flag was given (`seen`, without its dashes) that a mode
/// taking only `allowed` does not take.
fn beyond(seen: &[String], allowed: &[&str]) -> bool {
    seen.iter().any(|f| !allowed.contains(&f.as_str()))
}

/// How old a reservation must be before `--reconcile` revokes it, by
/// default: a younger one may be a certificate still on its way from
/// card-sign to cert-store in a pipeline that is running now.
const DEFAULT_MIN_AGE: u64 = 600;

/// Largest batch recorded with one sync: bounds memory, and a reader that
/// keeps up still sees certificates promptly.
const MAX_BATCH: usize = 1024;

fn run(args: Vec<OsString>) -> Result<()> {
    let args = parse_args(args)?;
    match &args.mode {
        Mode::AuditVerify { file, ca } => audit_verify(file, ca.as_deref()),
        Mode::Revoke { db, ca, serial, reason } => {
            audit::setup(&args.flags.audit, db.dir());
            revoke(open_existing(db, ca)?, serial.as_ref(), reason.as_deref())
        }
        Mode::Reserved { db, ca } => {
            audit::setup(&args.flags.audit, db.dir());
            reserve::list(open_existing(db, ca)?, audit::log().map(|l| l.path()))
        }
        Mode::Reconcile { db, ca, reason, min_age } => {
            audit::setup(&args.flags.audit, db.dir());
            reserve::reconcile(
                open_existing(db, ca)?,
                reason.as_deref(),
                *min_age,
                audit::log().map(|l| l.path()),
            )
        }
        Mode::Expiring { days, from, json } => expiring::list(*days, from, *json),
        Mode::Import { uri, dir } => {
            let mut pg = db::pg::Pg::connect(uri)?;
            let moved = pg.import(dir)?;
            report::note(format_args!(
                "imported {} ({} certificates, {} reservations) from {} into {}",
                moved.ca,
                moved.certificates,
                moved.reservations,
                dir.display(),
                pg.shown()
            ));
            Ok(())
        }
        Mode::Export { uri, dir, ca } => {
            let issuer =
                ca.as_deref().map(|f| CaCert::read(f).and_then(|c| Ok(der::Encode::to_der(&c.tbs.subject)?)));
            let issuer = issuer.transpose()?;
            let mut pg = db::pg::Pg::connect(uri)?;
            let moved = pg.export(issuer.as_deref(), dir)?;
            report::note(format_args!(
                "exported {} ({} certificates, {} reservations) from {} into {}",
                moved.ca,
                moved.certificates,
                moved.reservations,
                pg.shown(),
                dir.display()
            ));
            Ok(())
        }
        Mode::Ocsp { dir, ca, der } => {
            audit::setup(&args.flags.audit, None);
            store_ocsp(dir, ca, *der)
        }
        Mode::Store { db, ca, token, label, id, der } => {
            audit::setup(&args.flags.audit, db.as_ref().and_then(Location::dir));
            let mut out = io::Writer::stdout(*der)?;
            let given = ca.as_deref().map(CaCert::read).transpose()?;
            let mut db = db.as_ref().map(|at| Store::open(at, given.as_ref())).transpose()?;
            // Without --ca, the CA the database keeps.
            let kept = match (&mut db, &given) {
                (Some(db), None) => db.kept_ca()?,
                _ => None,
            };
            let mut to = Places {
                keep: given.is_some() && db.is_some(),
                kept: kept.is_some(),
                ca: given.or(kept),
                db,
                card: token.as_ref().map(|uri| card::Card::new(&args.flags, uri, label.clone(), id.clone())),
            };
            let input = Batches::stdin();
            while let Some((batch, failure)) = input.next(|o| record_of(&o)) {
                store_batch(&mut to, batch, failure, &mut out)?;
            }
            Ok(())
        }
    }
}

/// Where certificates are recorded, and the CA they are checked against
/// first.
struct Places {
    /// `--ca`, else the CA the database keeps (DIR/ca.pem).
    ca: Option<CaCert>,
    /// Whether the database is still to keep `ca` (given with --ca).
    keep: bool,
    /// Whether `ca` is the one the database keeps (no --ca).
    kept: bool,
    db: Option<Store>,
    card: Option<card::Card>,
}

/// Records one batch, then passes on what was recorded. What came before
/// a bad object (`failure`, or a certificate the CA did not issue, or one
/// the database refuses) is recorded, and the stream stops at it. The
/// steps: the database checked (and locked), the certificate files made
/// durable, the batch logged, the card written, the index lines. The card
/// is written only once the log has the batch, so no certificate reaches
/// the card unlogged; and before the index, so a failure on the card
/// leaves no line that would refuse the certificates next time.
fn store_batch(
    to: &mut Places,
    mut batch: Vec<Record>,
    mut failure: Option<Error>,
    out: &mut io::Writer,
) -> Result<()> {
    let place = match (to.db.is_some(), to.card.is_some()) {
        (true, true) => "db,token",
        (true, false) => "db",
        _ => "token",
    };
    // A certificate the CA did not issue stops the stream there (its
    // refusal is logged once what came before it is recorded).
    let mut not_issued = None;
    if let Some((i, e)) =
        batch.iter().enumerate().find_map(|(i, r)| check_issuer(to, r).err().map(|e| (i, e)))
    {
        let r = &batch[i];
        not_issued = Some(Event::stored(&r.entry.serial, &r.entry.subject, place));
        batch.truncate(i);
        failure = Some(e);
    }
    if let (Some(db), Some(ca), true) = (&mut to.db, &to.ca, !batch.is_empty()) {
        if std::mem::take(&mut to.keep) {
            db.keep_ca(ca)?;
        }
    }
    let card = to.card.as_mut();
    let count = match to.db.as_mut() {
        Some(db) => {
            let index = db.step();
            let pending = db.check(&batch)?;
            let count = pending.count();
            let late: Vec<String> = pending.late(&batch).iter().map(|r| r.entry.serial.clone()).collect();
            let refused_one = batch.get(count).zip(pending.refused().map(|e| Error::new(e.message())));
            let events = stored(&batch[..count], place, refused_one.as_ref());
            // The step a commit that fails after the log stopped at, for
            // its failure line: the card until it is written, then the
            // index.
            let step = Cell::new("token");
            // Logged (one fsync for the batch) once the certificate files
            // are durable, then the card, then the index lines, and only
            // then is anything passed on: whatever the card or the
            // database records, the log has (a crash or a full disk in
            // between leaves a logged store they lack, never the reverse).
            let refused = audit::write_ahead(
                |intent| {
                    pending.commit_with(&batch, || {
                        log_then_card(intent, &events, card, &batch[..count])?;
                        step.set(index);
                        Ok(())
                    })
                },
                |stage| failure_line(&batch, place, stage, step.get(), count),
            )?;
            // The database's refusal comes first in the stream: it is the
            // one to report (logged with the batch).
            if refused.is_some() {
                failure = refused;
                not_issued = None;
            }
            for serial in late {
                report::note(format_args!(
                    "serial {serial} arrived after --reconcile revoked its reservation: its certificate is \
                     recorded, and it stays revoked"
                ));
            }
            count
        }
        None => {
            let events = stored(&batch, place, None);
            audit::write_ahead(
                |intent| log_then_card(intent, &events, card, &batch),
                |stage| failure_line(&batch, place, stage, "token", batch.len()),
            )?;
            batch.len()
        }
    };
    for r in &batch[..count] {
        out.write("CERTIFICATE", &r.der)?;
    }
    match (failure, not_issued) {
        (Some(e), Some(event)) => Err(audit::record_failure(event, e)),
        (Some(e), None) => Err(e),
        (None, _) => Ok(()),
    }
}

/// Whether the CA issued `r`: `--ca`, else the CA the database keeps. A
/// database that keeps none yet takes only a self-signed certificate (a
/// root's own, stored in its database), which becomes the CA it keeps.
/// Without a database (`--token` alone) and without `--ca`, nothing is
/// checked: the card's key pair is the check.
fn check_issuer(to: &mut Places, r: &Record) -> Result<()> {
    if to.ca.is_none() {
        // Kept since the run began (card-sign --db keeps it with its
        // first reservation, in the same pipeline)?
        if let Some(db) = to.db.as_mut() {
            // A PostgreSQL record opened without --ca: the record of the
            // certificate's issuer, if it holds one.
            db.bind(&r.issuer, false)?;
        }
        if let Some(kept) = to.db.as_mut().map(Store::kept_ca).transpose()?.flatten() {
            to.ca = Some(kept);
            to.kept = true;
        }
    }
    if let Some(ca) = &to.ca {
        return r.check_issued_by(ca).map_err(|e| match (&to.db, to.kept) {
            (Some(db), true) => e.hint(format!(
                "{} keeps the certificate of {} (ca.pem), and takes only what that CA signed: one database per CA",
                db.shown(),
                ca.subject_text()
            )),
            _ => e,
        });
    }
    let Some(db) = &to.db else { return Ok(()) };
    let no_ca = || {
        Error::new(format!(
            "serial {}: {} keeps no CA certificate to check its signature against",
            r.entry.serial,
            db.shown()
        ))
        .hint("give the issuing CA with --ca FILE once: the database keeps it (ca.pem) for every later store")
    };
    let own = CaCert::parse(r.der.clone()).map_err(|_| no_ca())?;
    if own.tbs.subject != own.tbs.issuer {
        return Err(no_ca());
    }
    r.check_issued_by(&own)
        .map_err(|e| e.context("a self-signed certificate that does not verify with its own key"))?;
    to.ca = Some(own);
    to.keep = true;
    Ok(())
}

/// A batch's events logged, then its certificates put on the card (with
/// `--token`): a certificate never reaches the card without its line, and
/// a card that fails after it leaves the log a failure line (see
/// [`failure_line`]).
fn log_then_card(
    intent: &audit::Intent,
    events: &[Event],
    card: Option<&mut card::Card>,
    batch: &[Record],
) -> Result<()> {
    intent.log(events)?;
    match card {
        Some(card) => card.store(batch),
        None => Ok(()),
    }
}

/// The failure line of a batch whose commit failed at `stage`: its first
/// certificate's store, marked failed by `audit::write_ahead`. After the
/// log said stored, the line names the `step` that failed (`token`, or
/// `index.txt`, which was cut back) and the size of the batch.
fn failure_line(batch: &[Record], place: &'static str, stage: Stage, step: &str, count: usize) -> Vec<Event> {
    match batch.first() {
        None => Vec::new(),
        Some(r) => {
            let event = Event::stored(&r.entry.serial, &r.entry.subject, place);
            vec![match stage {
                Stage::Unlogged => event,
                Stage::Logged => event.field("step", step).field("batch", count as u64),
            }]
        }
    }
}

/// The events of a batch recorded in `place`, and of the certificate
/// after it that the database refused, if one was.
fn stored(batch: &[Record], place: &'static str, refused: Option<&(&Record, Error)>) -> Vec<Event> {
    batch
        .iter()
        .map(|r| Event::stored(&r.entry.serial, &r.entry.subject, place))
        .chain(refused.map(|(r, e)| Event::stored(&r.entry.serial, &r.entry.subject, "db").failed(e)))
        .collect()
}

fn record_of(object: &io::Object) -> Result<Record> {
    object.expect_label(&["CERTIFICATE"])?;
    Record::from_der(object.der.clone()).map_err(|e| e.context(format!("certificate {}", object.index)))
}

/// The record of --revoke, --reserved, --reconcile and --expiring, which
/// must exist; `--ca` (which must be its CA) chooses among a PostgreSQL
/// record's CAs.
fn open_existing(at: &Location, ca: &Option<String>) -> Result<Store> {
    let ca = ca.as_deref().map(CaCert::read).transpose()?;
    Store::open_existing(at, ca.as_ref())
}

fn revoke(mut db: Store, serial: Option<&String>, reason: Option<&str>) -> Result<()> {
    let serials = match serial {
        Some(s) => vec![s.clone()],
        None => {
            let mut list = Vec::new();
            for object in io::stdin() {
                list.push(record_of(&object?)?.entry.serial);
            }
            list
        }
    };
    if serials.is_empty() {
        return Err(Error::new("no certificates on stdin to revoke"));
    }
    let now = time::now()?;
    let when = db::time_text(&time::x509_time(now)?)?;
    let step = db.step();
    // Logged before index.txt changes: a revocation is never in the
    // database without its line. A failure after the log gets a line too.
    let revoked = audit::write_ahead(
        |intent| {
            db.revoke(&serials, &when, reason, |list| {
                let events: Vec<Event> = list
                    .iter()
                    .map(|e| Event::revoked(&e.serial, reason).field("subject", e.subject.as_str()))
                    .collect();
                intent.log(&events)
            })
        },
        |stage| {
            let event = Event::revoked(&serials.join(","), reason);
            vec![match stage {
                Stage::Unlogged => event,
                Stage::Logged => event.field("step", step),
            }]
        },
    );
    let revoked = revoked?;
    for e in revoked {
        report::note(format_args!(
            "revoked {} {}{}",
            e.serial,
            e.subject,
            reason.map(|r| format!(" ({r})")).unwrap_or_default()
        ));
    }
    Ok(())
}

/// `--audit-verify FILE`: the whole chain, or the first line that breaks
/// it and why.
fn audit_verify(path: &std::path::Path, ca: Option<&str>) -> Result<()> {
    let ca = ca.map(CaCert::read).transpose()?;
    match audit::verify_file(path, ca.as_ref().map(|c| &c.tbs.subject_public_key_info))? {
        Ok(report) => {
            for t in &report.tears {
                let lines = match (t.start(), t.end()) {
                    (first, last) if first == last => format!("line {first}: torn by an interrupted write (a crash)"),
                    (first, last) => format!(
                        "lines {first} to {last}: torn by an interrupted write (a crash) and the appends that \
                         crashed while recording it"
                    ),
                };
                report::warn(format_args!("{} {lines}, recorded by line {}", path.display(), t.end() + 1));
            }
            let signed = match (&ca, report.checkpoints.last()) {
                // Without one, a log rewritten from the first line on
                // verifies too: --audit-ca asks for more than the chain.
                (Some(_), None) => {
                    return Err(Error::new(format!(
                        "{}: the chain verifies, but no checkpoint: a rewritten log would verify too",
                        path.display()
                    ))
                    .hint("sign one with card-sign --audit-checkpoint, and keep the line it prints"))
                }
                (None, None) => "none".to_string(),
                (Some(ca), Some(last)) => {
                    format!(
                        "{}, the last at line {last}, signed by {}; {} lines after it",
                        report.checkpoints.len(),
                        ca.subject_text(),
                        report.lines - last
                    )
                }
                (None, Some(last)) => format!(
                    "{}, the last at line {last} (signatures not checked: give --audit-ca FILE)",
                    report.checkpoints.len()
                ),
            };
            let mut out = std::io::stdout().lock();
            use std::io::Write;
            writeln!(out, "{}: {} lines, the chain verifies", path.display(), report.lines)?;
            writeln!(out, "head: line {} sha256 {}", report.lines, report.head)?;
            let list: Vec<String> = report.events.iter().map(|(e, n)| format!("{e} {n}")).collect();
            writeln!(out, "events: {}", if list.is_empty() { "none".to_string() } else { list.join(", ") })?;
            writeln!(out, "checkpoints: {signed}")?;
            Ok(())
        }
        Err(b) => {
            let good = match b.good {
                0 => String::new(),
                1 => "; line 1 verifies".to_string(),
                n => format!("; lines 1 to {n} verify"),
            };
            Err(Error::new(format!("{} line {}: {}{good}", path.display(), b.line, b.why)))
        }
    }
}

/// Files each OCSP response as DIR/SERIAL.der (the serial in index.txt's
/// upper-case hex; DER, what nginx's ssl_stapling_file and openssl
/// s_server -status_file read) after checking it as a relying party
/// would, and passes it on. Responses waiting on stdin are filed as one
/// batch with one sync, as certificates are recorded; on a bad response,
/// those before it are filed and nothing after.
fn store_ocsp(dir: &std::path::Path, ca: &str, der: bool) -> Result<()> {
    let mut out = io::Writer::stdout(der)?;
    let ca = CaCert::read(ca)?;
    let files = cardca::serve::ServeDir::open(dir)?;
    // thisUpdate of what each file will hold once this run's earlier
    // batches are in place: a response never replaces a newer one.
    let mut newest: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut check = |object: io::Object| -> Result<cardca::policy::Checked> {
        let index = object.index;
        (|| {
            object.expect_label(&[cardca::ocsp::LABEL])?;
            let c = cardca::policy::check_signed(object.der, &ca, time::now()?)?;
            let name = format!("{}.der", c.serial);
            let path = dir.join(&name);
            let served = match newest.get(&c.serial) {
                Some(&t) => Some(t),
                None => match files.read(&name, io::MAX_OBJECT)? {
                    None => None,
                    Some(old) => Some(cardca::ocsp::served_this_update(&old, &ca).map_err(|e| {
                        Error::new(format!("{} is served already, and {e}: not replaced", path.display()))
                            .hint("one --ocsp-dir per CA; remove a file that is no response of this CA")
                    })?),
                },
            };
            if let Some(t) = served.filter(|&t| t > c.this_update) {
                return Err(Error::new(format!(
                    "{} holds a newer response (thisUpdate {}) than this one ({}): an older response never \
                     replaces a newer one",
                    path.display(),
                    time::display(t),
                    time::display(c.this_update)
                )));
            }
            newest.insert(c.serial.clone(), c.this_update);
            Ok(c)
        })()
        .map_err(|e| e.context(format!("OCSP response {index}")))
    };
    let input = Batches::stdin();
    while let Some((batch, failure)) = input.next(&mut check) {
        let named: Vec<(String, &[u8])> =
            batch.iter().map(|c| (format!("{}.der", c.serial), c.der.as_slice())).collect();
        // Each response is logged once its new file is durable and before
        // it is renamed to where a server reads it; a batch that cannot be
        // written is logged as failed, and a rename that fails after the
        // log gets a failure line of its own.
        let events = || -> Vec<Event> {
            named
                .iter()
                .zip(&batch)
                .map(|((name, _), c)| Event::ocsp_published(&c.serial, &dir.join(name)))
                .collect()
        };
        audit::write_ahead(
            |intent| files.replace_all(&named, || intent.log(&events())),
            |stage| match stage {
                Stage::Unlogged => events(),
                Stage::Logged => vec![Event::ocsp_dir(dir)],
            },
        )?;
        for c in &batch {
            out.write(cardca::ocsp::LABEL, &c.der)?;
        }
        if let Some(e) = failure {
            // A refused response is an event too (its serial may be
            // unreadable: the directory names where it was headed).
            return Err(audit::record_failure(Event::ocsp_dir(dir), e));
        }
    }
    Ok(())
}

/// A reader thread queues the objects of stdin as they arrive; each batch
/// is whatever is already waiting (at most MAX_BATCH), so a fast producer
/// gets one sync per batch and a slow one gets every object at once.
struct Batches(mpsc::Receiver<Result<io::Object>>);

impl Batches {
    fn stdin() -> Batches {
        let (tx, rx) = mpsc::sync_channel::<Result<io::Object>>(MAX_BATCH);
        std::thread::spawn(move || {
            for object in io::stdin() {
                let stop = object.is_err();
                if tx.send(object).is_err() || stop {
                    break;
                }
            }
        });
        Batches(rx)
    }

    /// The next batch, each object through `take`, up to the first that
    /// fails (returned beside what came before it); None at the end.
    fn next<T>(&self, mut take: impl FnMut(io::Object) -> Result<T>) -> Option<(Vec<T>, Option<Error>)> {
        let first = self.0.recv().ok()?;
        let mut batch = Vec::new();
        for object in std::iter::once(first).chain(std::iter::from_fn(|| self.0.try_recv().ok())) {
            match object.and_then(&mut take) {
                Ok(t) => batch.push(t),
                Err(e) => return Some((batch, Some(e))),
            }
            if batch.len() == MAX_BATCH {
                break;
            }
        }
        Some((batch, None))
    }
}

fn main() -> std::process::ExitCode {
    cli::main("cert-store", run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardca::cli::args;

    #[test]
    fn forms() {
        let a = parse_args(args(&["--db", "ca", "--token", "pkcs11:token=t", "--label", "x", "--id", "01"]))
            .expect("store");
        assert!(matches!(a.mode, Mode::Store { db: Some(_), token: Some(_), .. }));
        let a = parse_args(args(&["--db", "ca", "--revoke", "0a:bc", "--reason", "keycompromise"]))
            .expect("revoke");
        match a.mode {
            Mode::Revoke { serial, reason, .. } => {
                assert_eq!(serial.as_deref(), Some("0ABC"));
                assert_eq!(reason.as_deref(), Some("keyCompromise"));
            }
            _ => panic!("not revoke"),
        }
        let a = parse_args(args(&["--audit-verify", "audit.log"])).expect("verify");
        assert!(
            matches!(a.mode, Mode::AuditVerify { file, ca: None } if file == std::path::Path::new("audit.log"))
        );
        let a = parse_args(args(&["--db", "ca", "--no-audit"])).expect("no audit");
        assert_eq!(a.flags.audit, audit::Choice::Off);
        let a = parse_args(args(&["--db", "ca", "--audit", "x.log"])).expect("audit");
        assert_eq!(a.flags.audit, audit::Choice::File("x.log".into()));
        assert!(matches!(
            parse_args(args(&["--db", "ca", "--revoke", "-"])).expect("-").mode,
            Mode::Revoke { serial: None, .. }
        ));
        let a = parse_args(args(&[
            "--expiring",
            "30",
            "--db",
            "ca",
            "--cert",
            "a.pem",
            "--cert",
            "b.pem",
            "--crl",
            "c.crl",
            "--ocsp-dir",
            "ocsp",
            "--json",
        ]))
        .expect("expiring");
        match a.mode {
            Mode::Expiring { days: 30, from, json: true } => {
                assert_eq!(from.db, Some(Location::Dir("ca".into())));
                assert_eq!(from.certs.len(), 2);
                assert_eq!(from.crls.len(), 1);
                assert!(from.ocsp_dir.is_some());
            }
            _ => panic!("not expiring"),
        }
        let a = parse_args(args(&["--db", "postgresql:///ca", "--import", "db"])).expect("import");
        assert!(
            matches!(a.mode, Mode::Import { uri, dir } if uri == "postgresql:///ca" && dir == std::path::Path::new("db"))
        );
        let a = parse_args(args(&["--db", "postgres://h/ca", "--export", "out", "--ca", "ca.pem"]))
            .expect("export");
        assert!(matches!(a.mode, Mode::Export { ca: Some(_), .. }));
    }

    #[test]
    fn usage_errors() {
        cardca::cli::assert_usage_errors(
            parse_args,
            &[
                &[][..],
                &["--label", "x", "--db", "ca"],
                &["--revoke", "01"],
                &["--db", "ca", "--revoke", "zz"],
                &["--db", "ca", "--revoke", "01", "--reason", "unspecified"],
                &["--db", "ca", "--reason", "superseded"],
                &["--db", "ca", "--revoke", "01", "--der"],
                &["--audit-verify", "log", "--db", "ca"],
                &["--audit-verify", ""],
                &["--db", "ca", "--audit", "a", "--no-audit"],
                &["--db", "ca", "--audit", ""],
                &["--ocsp-dir", "ocsp"],
                &["--ocsp-dir", "ocsp", "--ca", "ca.pem", "--db", "ca"],
                &["--ocsp-dir", "ocsp", "--ca", "ca.pem", "--revoke", "01"],
                &["--ocsp-dir", "ocsp", "--ca", "ca.pem", "--module-args", "x"],
                &["--audit-verify", "log", "--label", "x"],
                &["--expiring", "30"],
                &["--expiring", "x", "--db", "ca"],
                &["--expiring", "-1", "--db", "ca"],
                &["--expiring", "3000001", "--db", "ca"],
                &["--expiring", "30", "--db", "ca", "--no-audit"],
                &["--expiring", "30", "--db", "ca", "--module", "m.so"],
                &["--db", "ca", "--json"],
                &["--db", "ca", "--cert", "a.pem"],
                &["--db", "ca", "--crl", "a.crl"],
                &["--audit-verify", "log", "--expiring", "30"],
                &["--audit-verify", "log", "--json"],
                &["--audit-verify", "log", "--cert", "a.pem"],
                &["--db", "db", "--import", "x"],
                &["--import", "x"],
                &["--db", "postgresql:///ca", "--import", "x", "--export", "y"],
                &["--db", "postgresql:///ca", "--import", "x", "--ca", "ca.pem"],
                &["--db", "postgresql:///ca", "--export", "x", "--revoke", "01"],
                &["--db", ""],
            ],
        );
    }

    /// A PostgreSQL --db is taken wherever a directory is.
    #[test]
    fn postgresql_records() {
        let uri = || Location::Pg("postgresql:///ca".into());
        let a = parse_args(args(&["--db", "postgresql:///ca", "--revoke", "01", "--ca", "ca.pem"]))
            .expect("revoke");
        assert!(matches!(a.mode, Mode::Revoke { db, ca: Some(_), .. } if db == uri()));
        let a = parse_args(args(&["--db", "postgresql:///ca"])).expect("store");
        assert!(matches!(a.mode, Mode::Store { db: Some(db), .. } if db == uri()));
        let a = parse_args(args(&["--expiring", "30", "--db", "postgresql:///ca", "--ca", "ca.pem"]))
            .expect("expiring");
        assert!(matches!(a.mode, Mode::Expiring { from, .. } if from.db == Some(uri()) && from.ca.is_some()));
    }
}
