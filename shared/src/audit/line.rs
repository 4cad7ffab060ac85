//! The line format: who writes, the fields every line has and their
//! order, the limits on a line, its hash, and reading a line back. Both
//! the writer ([`super::append`]) and the verifier ([`super::verify`])
//! take the format from here.

use sha2::{Digest, Sha256};

use super::event::{Event, Value};
use crate::error::{Error, Result};
use crate::json::{self, Json};

/// The `prev` of the first line.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// No line cardca writes comes near this (values are cut at
/// [`MAX_VALUE`]); a longer one was not written by cardca.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Longest text value, in bytes before escaping (at most 6 times as many
/// after): error messages can list many objects. With the dozen text
/// fields a line has at most, a line stays under [`MAX_LINE`].
pub(crate) const MAX_VALUE: usize = 1024;

/// How every line begins, before its `seq`: a line a crash cut short
/// begins so too, or is a beginning of this.
const LINE_START: &str = "{\"v\":1,\"seq\":";

/// The most lines at the end of a log that one `torn-line` record names.
/// A crash tears one line; each further crash while the next append is
/// recording it cuts that append's record short too and adds one. More
/// than this in a row was not left by crashes.
pub(crate) const MAX_TORN_RUN: usize = 8;

/// Whether `line` (ended by a newline, but no audit line) is one a crash
/// cut short, ended by the append that came after: it begins as every
/// line does, or is a beginning of that. Garbage is not.
pub(crate) fn cut_short(line: &[u8]) -> bool {
    let start = LINE_START.as_bytes();
    !line.is_empty() && (line.starts_with(start) || start.starts_with(line))
}

/// Who writes: the same for every line of a run.
#[derive(Debug, Clone)]
pub(crate) struct Who {
    pub(crate) tool: String,
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    pub(crate) user: Option<Vec<u8>>,
    pub(crate) host: Option<Vec<u8>>,
}

impl Who {
    pub(crate) fn current(tool: &str) -> Who {
        let uid = rustix::process::getuid().as_raw();
        Who {
            tool: tool.to_string(),
            pid: std::process::id(),
            uid,
            user: user_name(uid),
            host: std::fs::read("/proc/sys/kernel/hostname")
                .ok()
                .map(|mut h| {
                    h.truncate(h.iter().position(|&b| b == b'\n').unwrap_or(h.len()));
                    h
                })
                .filter(|h| !h.is_empty() && h.len() <= 255),
        }
    }
}

/// The name /etc/passwd gives a uid (not $USER, which anyone sets).
fn user_name(uid: u32) -> Option<Vec<u8>> {
    let passwd = std::fs::read("/etc/passwd").ok()?;
    let uid = uid.to_string();
    passwd.split(|&b| b == b'\n').find_map(|line| {
        let mut f = line.split(|&b| b == b':');
        let name = f.next()?;
        let _password = f.next()?;
        (f.next()? == uid.as_bytes()).then(|| name.to_vec())
    })
}

/// `2026-12-01T00:12:03.517Z` from the system clock. Not `CARDCA_NOW`:
/// that variable prepares certificates in advance, and an audit log must
/// say when things happened.
fn timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let text = crate::time::display(now.as_secs());
    match text.strip_suffix('Z') {
        Some(t) => format!("{t}.{:03}Z", now.subsec_millis()),
        None => text,
    }
}

/// A text value, cut after [`MAX_VALUE`] bytes (whole characters) and
/// marked so.
fn push_text(out: &mut String, s: &str) {
    if s.len() <= MAX_VALUE {
        return json::push_str(out, s);
    }
    let mut end = MAX_VALUE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    json::push_str(out, &format!("{}...[cut]", &s[..end]));
}

fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Text(s) => push_text(out, s),
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => push_text(out, s),
            Err(_) => {
                out.push_str("{\"hex\":");
                push_text(out, &crate::hex::encode(&b[..b.len().min(MAX_VALUE / 2)]));
                out.push('}');
            }
        },
    }
}

fn push_field(out: &mut String, name: &str, v: &Value) {
    out.push(',');
    push_text(out, name);
    out.push(':');
    push_value(out, v);
}

/// One line, without its newline.
pub(crate) fn format_line(who: &Who, seq: u64, e: &Event, prev: &str) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(LINE_START);
    out.push_str(&seq.to_string());
    push_field(&mut out, "time", &Value::Text(timestamp()));
    push_field(&mut out, "tool", &Value::Text(who.tool.clone()));
    push_field(&mut out, "version", &Value::Text(env!("CARGO_PKG_VERSION").into()));
    push_field(&mut out, "pid", &Value::Int(who.pid.into()));
    push_field(&mut out, "uid", &Value::Int(who.uid.into()));
    if let Some(u) = &who.user {
        push_field(&mut out, "user", &Value::Bytes(u.clone()));
    }
    if let Some(h) = &who.host {
        push_field(&mut out, "host", &Value::Bytes(h.clone()));
    }
    push_field(&mut out, "event", &Value::Text(e.event.into()));
    for (name, v) in &e.fields {
        push_field(&mut out, name, v);
    }
    let result = e.error.clone().unwrap_or_else(|| "ok".into());
    push_field(&mut out, "result", &Value::Text(crate::uri::redact(&result)));
    push_field(&mut out, "prev", &Value::Text(prev.into()));
    out.push('}');
    out
}

pub(crate) fn line_hash(line: &[u8]) -> String {
    crate::hex::encode(&Sha256::digest(line))
}

/// The fields of an audit line the chain is checked by.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) seq: u64,
    pub(crate) prev: String,
    pub(crate) event: String,
    pub(crate) json: Json,
}

/// Parses one line as an audit line: JSON, an object, the fields every
/// line has with the right types.
pub(crate) fn parse_line(line: &[u8]) -> Result<Line> {
    let json = json::parse(line)?;
    if !matches!(json, Json::Obj(_)) {
        return Err(Error::new("not a JSON object"));
    }
    if json.get("v").and_then(Json::as_u64) != Some(1) {
        return Err(Error::new("no \"v\":1 (not a cardca audit line, or another version)"));
    }
    let text = |k: &str| {
        json.get(k)
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| Error::new(format!("no text {k:?}")))
    };
    let seq = json.get("seq").and_then(Json::as_u64).ok_or_else(|| Error::new("no number \"seq\""))?;
    for k in ["time", "tool", "version", "result"] {
        text(k)?;
    }
    let event = text("event")?;
    let prev = text("prev")?;
    if prev.len() != 64 || !prev.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::new("\"prev\" is not 64 lower-case hex digits"));
    }
    Ok(Line { seq, prev, event, json })
}

/// What a checkpoint line's signature covers: its own number and the
/// hash of the line before it, i.e. the whole chain up to it.
pub fn checkpoint_message(seq: u64, prev: &str) -> Vec<u8> {
    format!("cardca audit checkpoint v1\nseq {seq}\nprev {prev}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::testing::who;

    #[test]
    fn escapes_round_trip() {
        let nasty = "q\"b\\s/\n\r\t\u{1}\u{7f}é\u{202e}😀";
        let e = Event::new("x").field("a", nasty).field("b", Value::Bytes(vec![0xff, 0x00])).field("n", 7u64);
        let line = format_line(&who(), 1, &e, GENESIS);
        assert!(line.is_ascii() && !line.contains('\n'), "{line}");
        let parsed = parse_line(line.as_bytes()).expect("parse");
        assert_eq!(parsed.json.get("a").and_then(Json::as_str), Some(nasty));
        assert_eq!(parsed.json.get("b").and_then(|b| b.get("hex")).and_then(Json::as_str), Some("ff00"));
        assert_eq!(parsed.json.get("host").and_then(|b| b.get("hex")).and_then(Json::as_str), Some("ff68"));
        assert_eq!(parsed.json.get("n").and_then(Json::as_u64), Some(7));
        assert_eq!(parsed.json.get("result").and_then(Json::as_str), Some("ok"));
    }

    #[test]
    fn long_values_are_cut() {
        // Cut on a character boundary: 'é' is two bytes and straddles MAX_VALUE.
        let long = format!("{}é{}", "a".repeat(MAX_VALUE - 1), "b".repeat(10));
        let line = format_line(&who(), 1, &Event::new("x").field("a", long.as_str()), GENESIS);
        let parsed = parse_line(line.as_bytes()).expect("parse");
        let cut = format!("{}...[cut]", "a".repeat(MAX_VALUE - 1));
        assert_eq!(parsed.json.get("a").and_then(Json::as_str), Some(cut.as_str()));
        let exact = "a".repeat(MAX_VALUE);
        let line = format_line(&who(), 1, &Event::new("x").field("a", exact.as_str()), GENESIS);
        let parsed = parse_line(line.as_bytes()).expect("parse");
        assert_eq!(parsed.json.get("a").and_then(Json::as_str), Some(exact.as_str()));
    }

    #[test]
    fn pins_are_redacted_from_results() {
        let e = Event::new("x").failed(&Error::new("bad URI pkcs11:token=a?pin-value=s3cr3t"));
        let line = format_line(&who(), 1, &e, GENESIS);
        assert!(!line.contains("s3cr3t"), "{line}");
    }
}
