//! "Now", RFC 3339 times, and X.509 Time values.
//!
//! "Now" is the system clock unless `CARDCA_NOW` is set, so tests and
//! ceremonies that prepare a certificate in advance get exact validity.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::{GeneralizedTime, UtcTime};
use der::DateTime;
use x509_cert::time::Time;

use crate::error::{Error, Result};

/// Seconds since the Unix epoch.
pub type Seconds = u64;

pub fn now() -> Result<Seconds> {
    match std::env::var("CARDCA_NOW") {
        Ok(text) if !text.is_empty() => parse_rfc3339(&text).map_err(|e| e.context("CARDCA_NOW")),
        _ => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::new("the system clock is before 1970"))?
            .as_secs()),
    }
}

/// `2026-01-01T00:00:00Z`, `2026-01-01T01:00:00+01:00`; fractions of a
/// second are dropped (X.509 times have none).
pub fn parse_rfc3339(text: &str) -> Result<Seconds> {
    let bad = || Error::new(format!("{text:?} is not an RFC 3339 time like 2026-01-01T00:00:00Z"));
    // RFC 3339 times are ASCII; checking that first makes every byte offset
    // below a character boundary, so no slice can panic on `é` or `٣`.
    if !text.is_ascii() {
        return Err(bad());
    }
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32> {
        text.get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &frac[digits..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            // Exactly two digits each (`num`, not `parse`, which takes a
            // sign: `+-1:00`), and an offset that names a real one: RFC 3339
            // section 5.6 time-numoffset is hours 00-23, minutes 00-59.
            let at = text.len() - rest.len();
            let (h, m) = (num(at + 1..at + 3)?, num(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * i64::from(h * 3600 + m * 60)
        }
        _ => return Err(bad()),
    };
    let year = u16::try_from(year).map_err(|_| bad())?;
    let dt = DateTime::new(year, month as u8, day as u8, hour as u8, minute as u8, second as u8)
        .map_err(|_| bad())?;
    let local = dt.unix_duration().as_secs() as i64;
    u64::try_from(local - offset).map_err(|_| bad())
}

/// RFC 5280 section 4.1.2.5: UTCTime through 2049, GeneralizedTime from
/// 2050 on.
pub fn x509_time(secs: Seconds) -> Result<Time> {
    let dt = DateTime::from_unix_duration(Duration::from_secs(secs))
        .map_err(|_| Error::new("time out of range for X.509"))?;
    if dt.year() < 2050 {
        Ok(Time::UtcTime(UtcTime::from_date_time(dt)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

pub fn seconds(time: &Time) -> Seconds {
    time.to_unix_duration().as_secs()
}

/// The encoding rule above, for times read from certificates.
pub fn check_encoding(time: &Time) -> Result<()> {
    let year = time.to_date_time().year();
    match time {
        Time::GeneralTime(_) if year < 2050 => {
            Err(Error::new(format!("GeneralizedTime for {year}: RFC 5280 requires UTCTime before 2050")))
        }
        _ => Ok(()),
    }
}

/// `2026-01-01T00:00:00Z`, for messages.
pub fn display(secs: Seconds) -> String {
    match DateTime::from_unix_duration(Duration::from_secs(secs)) {
        Ok(dt) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minutes(),
            dt.seconds()
        ),
        Err(_) => format!("{secs} s after 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").expect("epoch"), 0);
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z").expect("2026"), 1767225600);
        assert_eq!(parse_rfc3339("2026-01-01T01:00:00+01:00").expect("offset"), 1767225600);
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00.5Z").expect("fraction"), 1767225600);
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00-23:59").expect("offset"), 1767225600 + 86340);
        for bad in [
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "yesterday",
            // The offset: a sign where a digit belongs, and out of range.
            "2026-01-01T00:00:00+-1:00",
            "2026-01-01T00:00:00++1:00",
            "2026-01-01T00:00:00+01:99",
            "2026-01-01T00:00:00+99:00",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+01:60",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert_eq!(display(1767225600), "2026-01-01T00:00:00Z");
    }

    /// Flag values and CARDCA_NOW are anyone's text: every character
    /// (ASCII or not) at every place, and every cut, is an error or a
    /// time, never a panic.
    #[test]
    fn no_panic_on_any_text() {
        let good = "2026-01-01T01:00:00.5+01:00";
        for (i, _) in good.char_indices().chain([(good.len(), ' ')]) {
            let _ = parse_rfc3339(&good[..i]);
            for c in ['é', '٣', '\u{10ffff}', '\0', '9', '+', ':', 'Z', '.'] {
                let mut s = good.to_string();
                s.insert(i, c);
                let _ = parse_rfc3339(&s);
                if i < good.len() {
                    s.remove(i + c.len_utf8());
                    let _ = parse_rfc3339(&s);
                }
            }
        }
        for bad in [
            "2026-01-01T00:00:0é",
            "2026-01-01T00:00:00é",
            "2026-01-01T00:00:00+0é:00",
            "２０２６-01-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn utc_until_2049() {
        let t = x509_time(parse_rfc3339("2049-12-31T23:59:59Z").expect("t")).expect("x509");
        assert!(matches!(t, Time::UtcTime(_)));
        let t = x509_time(parse_rfc3339("2050-01-01T00:00:00Z").expect("t")).expect("x509");
        assert!(matches!(t, Time::GeneralTime(_)));
    }
}
