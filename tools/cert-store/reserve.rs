//! `--reserved` and `--reconcile`: what `card-sign --db` reserved and no
//! cert-store recorded (a cert-store killed, a full disk, a pipeline cut
//! after card-sign), and recording it as revoked so that the next CRL
//! and OCSP responses cover whatever was signed.
//!
//! The audit log tells the two kinds of leftover apart: card-sign logs a
//! certificate's `sign` line before it writes the certificate, so a
//! reservation with such a line was released (someone may hold the
//! certificate), and one without it never left card-sign (a crash or a
//! refusal after the reservation, before or after C_Sign). Revoking
//! either is harmless: the serial is never used again.

use std::collections::HashMap;
use std::path::Path;

use cardca::audit::{self, Event, Released, Stage};
use cardca::db::{self, Reservation, Store};
use cardca::{report, time, Result};

/// `--reserved`: one line per left-over reservation on stdout, oldest
/// first; a count on stderr.
pub fn list(mut db: Store, log: Option<&Path>) -> Result<()> {
    let left = db.left_over()?;
    let released = released(log)?;
    let now = time::now()?;
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    for r in &left {
        writeln!(
            out,
            "{} {}: reserved {} ({} ago), expires {}; {}",
            r.serial,
            r.subject,
            time::display(r.at),
            age(now.saturating_sub(r.at)),
            expiry(&r.expiry),
            what_happened(r, released.as_ref()),
        )?;
    }
    report::note(format_args!(
        "{}",
        count_text(left.len(), "left over (signed or about to be, not recorded)")
    ));
    Ok(())
}

/// `--reconcile`: every left-over reservation older than `min_age`
/// seconds gets a revoked line in index.txt (now, for `reason`), logged
/// first; younger ones are named and left alone.
pub fn reconcile(mut db: Store, reason: Option<&str>, min_age: u64, log: Option<&Path>) -> Result<()> {
    let step = db.step();
    let released = released(log)?;
    let found = db.left_over()?;
    let now = time::now()?;
    let when = db::time_text(&time::x509_time(now)?)?;
    let before = now.saturating_sub(min_age).saturating_add(u64::from(min_age == 0));
    let revoked = audit::write_ahead(
        |intent| {
            db.revoke_left_over(before, &when, reason, |list| {
                let events: Vec<Event> = list
                    .iter()
                    .map(|e| {
                        Event::revoked(&e.serial, reason)
                            .field("subject", e.subject.as_str())
                            .field("reconciled", "reserved, not recorded")
                    })
                    .collect();
                intent.log(&events)
            })
        },
        |stage| {
            let event = Event::revoked("reserved", reason);
            vec![match stage {
                Stage::Unlogged => event,
                Stage::Logged => event.field("step", step),
            }]
        },
    )?;
    let by_serial: HashMap<&str, &Reservation> = found.iter().map(|r| (r.serial.as_str(), r)).collect();
    for e in &revoked {
        report::note(format_args!(
            "revoked {} {}{}: reserved, not recorded; {}",
            e.serial,
            e.subject,
            reason.map(|r| format!(" ({r})")).unwrap_or_default(),
            by_serial.get(e.serial.as_str()).map(|r| what_happened(r, released.as_ref())).unwrap_or_default()
        ));
    }
    // What was found and not revoked (younger than --min-age): the same
    // list, no second read.
    let left = found.iter().filter(|r| !revoked.iter().any(|e| e.serial == r.serial));
    for r in left {
        report::note(format_args!(
            "left {} alone: reserved {} ago, less than --min-age {min_age} s (it may still be on its way to \
             cert-store); {}",
            r.serial,
            age(now.saturating_sub(r.at)),
            what_happened(r, released.as_ref())
        ));
    }
    report::note(format_args!("{}", count_text(revoked.len(), "revoked")));
    Ok(())
}

/// The certificates the log says card-sign released, if there is a log.
fn released(log: Option<&Path>) -> Result<Option<HashMap<String, Released>>> {
    match log {
        Some(path) => audit::released_certificates(path),
        None => Ok(None),
    }
}

/// What the log says of a reservation.
fn what_happened(r: &Reservation, released: Option<&HashMap<String, Released>>) -> String {
    match released.map(|m| m.get(&r.serial)) {
        None => "no audit log to tell whether it was signed".into(),
        Some(Some(s)) if s.tbs_sha256 == r.tbs_sha256 => {
            format!("signed and released (audit log line {})", s.line)
        }
        Some(Some(s)) => format!("the audit log's line {} signed another TBS with this serial", s.line),
        Some(None) => "never released by card-sign (no sign line in the audit log)".into(),
    }
}

fn count_text(n: usize, what: &str) -> String {
    match n {
        0 => format!("no reservation {what}"),
        1 => format!("1 reservation {what}"),
        n => format!("{n} reservations {what}"),
    }
}

/// index.txt's notAfter text as RFC 3339.
fn expiry(text: &str) -> String {
    db::parse_time_text(text).map(|t| time::display(time::seconds(&t))).unwrap_or_else(|_| text.to_string())
}

/// An age in the two largest units: `3d 4h`, `5m 2s`.
fn age(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages() {
        assert_eq!(super::age(5), "5s");
        assert_eq!(super::age(125), "2m 5s");
        assert_eq!(super::age(7260), "2h 1m");
        assert_eq!(super::age(90000), "1d 1h");
    }
}
