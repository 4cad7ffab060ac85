//! The audit log: one JSON line per key or record event, each carrying the
//! SHA-256 of the line before it, so an edited, deleted, inserted or
//! reordered line breaks the chain where it happened.
//!
//! ```text
//! {"v":1,"seq":7,"time":"2026-12-01T00:12:03.517Z","tool":"card-sign",
//!  "version":"0.1.0","pid":4242,"uid":1000,"user":"ca","host":"ca1",
//!  "event":"sign","token":"pkcs11:...;token=ewak.net%20PKI",
//!  "key_id":"53f7...","key_label":"ewak.net Root CA","kind":"certificate",
//!  "tbs_sha256":"...","serial":"5A3F...","result":"ok","prev":"<64 hex>"}
//! ```
//! (one line in the file). `seq` is the line's number in the file, `prev`
//! the SHA-256 of the previous line's bytes without its newline, 64 zeros
//! for the first line. Every value is ASCII: non-ASCII text is written as
//! `\uXXXX`, and bytes that are not UTF-8 (a token label can be anything)
//! as `{"hex":"..."}`.
//!
//! Appending: the file is opened with O_APPEND and O_NOFOLLOW for each
//! batch, flock'd exclusively (and opened again if the name was moved to
//! another file before the lock was held), its tail read (never the whole
//! file) for the last line's hash and number, the batch written in one
//! write(2) and fdatasync'd before the lock is released and before the
//! caller releases the output the events describe. Readers (the verifier)
//! take a shared lock. A crash can leave only torn lines at the end: the
//! next append ends them and writes one `torn-line` record naming them
//! (`torn_line` to `torn_last`) whose `prev` is their bytes' hash, so the
//! chain stays verifiable and the tear stays visible. A crash while that
//! append runs leaves torn lines again, which the next one records (see
//! `append::compose` for why this is safe to repeat).
//!
//! Which file: `--audit FILE`, else `$CARDCA_AUDIT`, else the database's
//! `DIR/audit.log` for the tools given `--db DIR`; `--no-audit` turns it
//! off. Tools run without one log nothing (see cardca(7) for why).
//!
//! The parts: `event` (what happened), `line` (the format), `append` (the
//! writer), `verify` (the verifier), `scan` (what the log says was
//! released, for reconciliation). This module owns the process's log
//! (which file, set up once per run) and [`write_ahead`], the protocol of
//! logging a change before it is made.

pub(crate) mod append;
pub(crate) mod event;
pub(crate) mod line;
pub(crate) mod scan;
pub(crate) mod verify;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

pub use append::Log;
pub use event::{Event, Signed, Value};
pub use line::checkpoint_message;
pub use scan::{released_certificates, Released};
pub use verify::{verify_file, Break, Report};

/// Which log a tool writes to: its flags' part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Choice {
    /// Neither `--audit` nor `--no-audit`: `$CARDCA_AUDIT`, else the
    /// database's.
    #[default]
    Default,
    File(PathBuf),
    Off,
}

static LOG: OnceLock<Option<Log>> = OnceLock::new();

/// The file `choice` means: the flag, else `$CARDCA_AUDIT`, else
/// `DIR/audit.log` of the database the tool was given.
pub fn resolve(choice: &Choice, db: Option<&Path>) -> Option<PathBuf> {
    match choice {
        Choice::File(p) => Some(p.clone()),
        Choice::Off => None,
        Choice::Default => std::env::var_os("CARDCA_AUDIT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| db.map(|d| d.join("audit.log"))),
    }
}

/// Sets the process's log, once, at the start of a tool's run.
pub fn setup(choice: &Choice, db: Option<&Path>) {
    let tool = crate::report::tool_name();
    let _ = LOG.set(resolve(choice, db).map(|p| Log::new(p, tool)));
}

/// The process's log, if there is one.
pub fn log() -> Option<&'static Log> {
    LOG.get().and_then(Option::as_ref)
}

pub fn enabled() -> bool {
    log().is_some()
}

/// Appends events now (one fsync); nothing without a log.
pub fn record_all(events: &[Event]) -> Result<()> {
    match log() {
        Some(log) => log.append(events),
        None => Ok(()),
    }
}

pub fn record(event: Event) -> Result<()> {
    record_all(std::slice::from_ref(&event))
}

/// Records the event of an operation that failed with `e`, and returns
/// `e`, with the log's own failure added if it failed too.
pub fn record_failure(event: Event, e: Error) -> Error {
    let logged = record(event.failed(&e));
    and_log_failure(e, logged)
}

/// `e`, with the log's own failure added if writing its failure line
/// failed too.
fn and_log_failure(e: Error, logged: Result<()>) -> Error {
    match logged {
        Ok(()) => e,
        Err(a) => Error::new(format!("{e}; and the audit log failed: {a}")).with_ckr_of(&e),
    }
}

/// Records `event` with `result`'s outcome, then returns `result`; a
/// failing log turns success into failure (the operation is done but
/// unrecorded: the tool must not report it as done).
pub fn record_result<T>(event: Event, result: Result<T>) -> Result<T> {
    match result {
        Ok(v) => {
            record(event)?;
            Ok(v)
        }
        Err(e) => Err(record_failure(event, e)),
    }
}

// ---------------------------------------------------------------------------
// Log before commit.

/// Where a failed commit stopped, seen from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before its events were logged: the log holds nothing of it, and
    /// its events, marked failed, say what was not done.
    Unlogged,
    /// After its events were logged as done: the log must now say that
    /// the commit failed after all (a `step` field names where).
    Logged,
}

/// The handle a commit logs its events through, at the one point where
/// they must be durable before the change takes effect (see
/// [`write_ahead`]).
#[must_use]
pub struct Intent<'a> {
    log: Option<&'a Log>,
    /// None: the commit has not reached the log; Some(ok): it has, and
    /// whether the events were written.
    logged: Cell<Option<bool>>,
}

impl Intent<'_> {
    /// Logs the commit's events (nothing without a log). The commit calls
    /// this once, where its hook for the log is (after its files are
    /// durable, before what names them is written), and stops on an
    /// error, so nothing unlogged takes effect.
    pub fn log(&self, events: &[Event]) -> Result<()> {
        let written = match self.log {
            Some(log) => log.append(events),
            None => Ok(()),
        };
        self.logged.set(Some(written.is_ok()));
        written
    }
}

/// The log-before-commit protocol: runs `commit`, which logs its events
/// with [`Intent::log`] before its change takes effect. If the commit
/// fails, the log gets the failure line `failed` gives for the stage it
/// stopped at (each event marked failed with the commit's error), or
/// nothing when the log itself failed (it is not written to again: one
/// message, not two). A failure line that cannot be written is added to
/// the error.
pub fn write_ahead<T>(
    commit: impl FnOnce(&Intent) -> Result<T>,
    failed: impl FnOnce(Stage) -> Vec<Event>,
) -> Result<T> {
    write_ahead_to(log(), commit, failed)
}

/// [`write_ahead`] to a given log rather than the process's.
fn write_ahead_to<T>(
    log: Option<&Log>,
    commit: impl FnOnce(&Intent) -> Result<T>,
    failed: impl FnOnce(Stage) -> Vec<Event>,
) -> Result<T> {
    let intent = Intent { log, logged: Cell::new(None) };
    let e = match commit(&intent) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let stage = match intent.logged.get() {
        // The log itself failed: its error is the commit's.
        Some(false) => return Err(e),
        Some(true) => Stage::Logged,
        None => Stage::Unlogged,
    };
    let events: Vec<Event> = failed(stage).into_iter().map(|event| event.failed(&e)).collect();
    let logged = match log {
        Some(log) => log.append(&events),
        None => Ok(()),
    };
    Err(and_log_failure(e, logged))
}

/// Helpers for the tests of every part.
#[cfg(test)]
pub(crate) mod testing {
    use super::line::{format_line, line_hash, Who, GENESIS};
    use super::verify::{verify, Break};
    use super::{Event, Signed};

    pub(crate) fn who() -> Who {
        Who {
            tool: "test".into(),
            pid: 1,
            uid: 0,
            user: Some(b"root".to_vec()),
            host: Some(vec![0xff, b'h']),
        }
    }

    pub(crate) fn log_of(events: &[Event]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_string();
        for (i, e) in events.iter().enumerate() {
            let line = format_line(&who(), i as u64 + 1, e, &prev);
            prev = line_hash(line.as_bytes());
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out
    }

    pub(crate) fn lines(log: &[u8]) -> Vec<Vec<u8>> {
        log.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
    }

    pub(crate) fn join(lines: &[Vec<u8>]) -> Vec<u8> {
        lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect()
    }

    pub(crate) fn sample(n: usize) -> Vec<u8> {
        let events: Vec<Event> = (0..n)
            .map(|i| Event::signature(Signed::Certificate, &[i as u8]).field("serial", format!("{i:02X}")))
            .collect();
        log_of(&events)
    }

    pub(crate) fn broken(log: &[u8]) -> Break {
        verify(log, None).expect("read").expect_err("should break")
    }

    /// A fresh directory for a test's files.
    pub(crate) fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cardca-audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{self, Json};

    /// The events of a log, as (event, result, step) per line.
    fn read(path: &Path) -> Vec<(String, String, Option<String>)> {
        let text = std::fs::read(path).unwrap_or_default();
        testing::lines(&text)
            .iter()
            .map(|l| {
                let j = json::parse(l).expect("a line");
                let text = |k: &str| j.get(k).and_then(Json::as_str).map(str::to_string);
                (text("event").expect("event"), text("result").expect("result"), text("step"))
            })
            .collect()
    }

    fn failed(stage: Stage) -> Vec<Event> {
        match stage {
            Stage::Unlogged => vec![Event::new("x")],
            Stage::Logged => vec![Event::new("x").field("step", "commit")],
        }
    }

    #[test]
    fn write_ahead_logs_then_commits() {
        let dir = testing::temp_dir("intent-ok");
        let log = Log::new(dir.join("audit.log"), "test");
        let done = write_ahead_to(
            Some(&log),
            |intent| {
                intent.log(&[Event::new("x"), Event::new("y")])?;
                Ok(7)
            },
            failed,
        );
        assert_eq!(done.expect("committed"), 7);
        let ok = |e: &str| (e.to_string(), "ok".to_string(), None);
        assert_eq!(read(log.path()), vec![ok("x"), ok("y")]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_commit_failing_before_the_log_is_logged_as_failed() {
        let dir = testing::temp_dir("intent-before");
        let log = Log::new(dir.join("audit.log"), "test");
        let e = write_ahead_to(Some(&log), |_| -> Result<()> { Err(Error::new("disk full")) }, failed)
            .expect_err("failed");
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(read(log.path()), vec![("x".into(), "disk full".into(), None)]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_commit_failing_after_the_log_gets_a_failure_line() {
        let dir = testing::temp_dir("intent-after");
        let log = Log::new(dir.join("audit.log"), "test");
        let e = write_ahead_to(
            Some(&log),
            |intent| -> Result<()> {
                intent.log(&[Event::new("x")])?;
                Err(Error::new("index.txt: disk full"))
            },
            failed,
        )
        .expect_err("failed");
        assert_eq!(e.to_string(), "index.txt: disk full");
        assert_eq!(
            read(log.path()),
            vec![
                ("x".into(), "ok".into(), None),
                ("x".into(), "index.txt: disk full".into(), Some("commit".into()))
            ]
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_log_that_fails_is_not_written_again() {
        let dir = testing::temp_dir("intent-log-fails");
        // A directory where the log should be: every append fails.
        let path = dir.join("audit.log");
        std::fs::create_dir(&path).expect("dir");
        let log = Log::new(path, "test");
        let mut committed = false;
        let e = write_ahead_to(
            Some(&log),
            |intent| -> Result<()> {
                intent.log(&[Event::new("x")])?;
                committed = true;
                Ok(())
            },
            |_| panic!("no failure line after the log failed"),
        )
        .expect_err("failed");
        assert!(!committed);
        assert!(e.to_string().starts_with("audit log "), "{e}");
        assert!(!e.to_string().contains("and the audit log failed"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_failure_line_that_fails_is_reported() {
        let dir = testing::temp_dir("intent-both-fail");
        let path = dir.join("audit.log");
        std::fs::create_dir(&path).expect("dir");
        let log = Log::new(path, "test");
        let e = write_ahead_to(Some(&log), |_| -> Result<()> { Err(Error::new("refused")) }, failed)
            .expect_err("failed");
        assert!(e.to_string().starts_with("refused; and the audit log failed: audit log "), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn without_a_log_write_ahead_only_commits() {
        let done = write_ahead_to(None, |intent| intent.log(&[Event::new("x")]).map(|()| 1), failed);
        assert_eq!(done.expect("committed"), 1);
        let e =
            write_ahead_to(None, |_| -> Result<()> { Err(Error::new("no")) }, failed).expect_err("failed");
        assert_eq!(e.to_string(), "no");
    }
}
