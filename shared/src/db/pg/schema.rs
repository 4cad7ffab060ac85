//! The record's schema and its migrations: each step from the version
//! before it, applied in one transaction under an advisory lock, so that
//! several hosts starting at once apply each step once (`CREATE TABLE IF
//! NOT EXISTS` is not safe under concurrency); a schema newer than this
//! cardca's is refused and left alone.

use super::{sql_error, Pg};
use crate::error::{Error, Result};

/// The schema this cardca writes and reads.
pub const SCHEMA_VERSION: i32 = 2;

/// The advisory lock key of migrations: "cardca", then 1.
const MIGRATION_LOCK: i64 = 0x6361_7264_6361_0001;

/// Each migration, from the version before it: MIGRATIONS[0] makes
/// version 1. Version 1 moved records in and out; version 2 issues into
/// them (the subject index unique_subject asks, and the CRL numbers
/// taken).
const MIGRATIONS: &[&str] = &[
    "
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
",
    "
    CREATE INDEX cardca_cert_valid_subject ON cardca_cert (ca_id, subject) WHERE status = 'V';
    CREATE TABLE cardca_crl (
        ca_id integer NOT NULL REFERENCES cardca_ca (id),
        seq bigserial,
        number bytea NOT NULL,
        taken_at bigint NOT NULL,
        revoked integer NOT NULL,
        PRIMARY KEY (ca_id, number)
    );
",
];

impl Pg {
    /// Brings the schema to SCHEMA_VERSION, in one transaction under the
    /// migration lock (so concurrent first runs apply each step once);
    /// refuses a schema newer than this cardca's.
    pub(super) fn migrate(&mut self) -> Result<()> {
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
            tx.batch_execute(step).map_err(|e| {
                // A role that may only issue cannot take a step: said as such.
                let owner = e.as_db_error().is_some_and(|d| d.code().code() == "42501");
                match owner {
                    true => Error::new(format!(
                        "{shown}: the record's schema is version {version} and this cardca's is {SCHEMA_VERSION}; \
                         bringing it up to date needs the tables' owner: nothing was changed"
                    ))
                    .hint("run one cardca command as the owner of the tables, once (cardca(7), the grants)"),
                    false => sql(e),
                }
            })?;
            tx.execute("UPDATE cardca_schema SET version = $1", &[&(i as i32 + 1)]).map_err(sql)?;
        }
        tx.commit().map_err(sql)
    }
}
