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
//! batch, flock'd exclusively, its tail read (never the whole file) for
//! the last line's hash and number, the batch written in one write(2) and
//! fdatasync'd before the lock is released and before the caller releases
//! the output the events describe. Readers (the verifier) take a shared
//! lock. A crash can leave only a torn last line (no newline): the next
//! append ends it and writes a `torn-line` record whose `prev` is the torn
//! bytes' hash, so the chain stays verifiable and the tear stays visible.
//!
//! Which file: `--audit FILE`, else `$CARDCA_AUDIT`, else the database's
//! `DIR/audit.log` for the tools given `--db DIR`; `--no-audit` turns it
//! off. Tools run without one log nothing (see cardca(7) for why).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Result};
use crate::uri::Uri;

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// No line cardca writes comes near this (values are cut at
/// [`MAX_VALUE`]); a longer one was not written by cardca.
pub const MAX_LINE: usize = 64 * 1024;

/// Longest text value, in bytes before escaping (at most 6 times as many
/// after): error messages can list many objects. With the dozen text
/// fields a line has at most, a line stays under [`MAX_LINE`].
const MAX_VALUE: usize = 1024;

/// How much of the end of the file an append reads at first; it reads
/// more (up to [`TAIL_MAX`]) only when the last line does not fit.
const TAIL: u64 = 8 * 1024;

/// The last complete line and a torn one after it always fit in this.
const TAIL_MAX: u64 = 2 * MAX_LINE as u64 + 2;

const LOG_MODE: u32 = 0o644;

/// A value of an event field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    /// Bytes that may not be UTF-8: written as text when they are,
    /// otherwise as `{"hex":"..."}`.
    Bytes(Vec<u8>),
    Int(u64),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}

/// What a signature was made over: the `kind` of a `sign` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    Certificate,
    Crl,
    /// A BasicOCSPResponse's ResponseData (issue 12, part 1).
    OcspResponse,
    /// A PKCS#10 CertificationRequestInfo (csr-make).
    Csr,
}

impl Signed {
    pub fn name(self) -> &'static str {
        match self {
            Signed::Certificate => "certificate",
            Signed::Crl => "crl",
            Signed::OcspResponse => "ocsp-response",
            Signed::Csr => "csr",
        }
    }
}

/// One event, before the log adds who, when and the chain.
#[derive(Debug, Clone)]
#[must_use]
pub struct Event {
    event: &'static str,
    fields: Vec<(&'static str, Value)>,
    /// None: "ok".
    error: Option<String>,
}

impl Event {
    pub fn new(event: &'static str) -> Event {
        Event { event, fields: Vec::new(), error: None }
    }

    /// `card-init`: C_InitToken and the first user PIN.
    pub fn token_init(token: &Uri) -> Event {
        Event::new("token-init").token(token)
    }

    pub fn pin_change(token: &Uri) -> Event {
        Event::new("pin-change").token(token)
    }

    pub fn pin_unblock(token: &Uri) -> Event {
        Event::new("pin-unblock").token(token)
    }

    /// A C_Login as `who` ("user", "so"), whatever its outcome.
    pub fn login(token: &Uri, who: &str) -> Event {
        Event::new("login").token(token).field("user_type", who)
    }

    /// A key pair made on the token (`key` is its private key's URI).
    pub fn key_generated(key: &Uri, spec: impl std::fmt::Display) -> Event {
        Event::new("key-generate").key(key).field("key_type", spec.to_string())
    }

    pub fn key_imported(key: &Uri, spec: impl std::fmt::Display) -> Event {
        Event::new("key-import").key(key).field("key_type", spec.to_string())
    }

    /// One signature on the token over `tbs` (the DER the key signed:
    /// a TBSCertificate, TBSCertList, ResponseData or
    /// CertificationRequestInfo). Add the serial or CRL number with
    /// [`Event::field`].
    pub fn signature(what: Signed, tbs: &[u8]) -> Event {
        Event::new("sign")
            .field("kind", what.name())
            .field("tbs_sha256", crate::hex::encode(&Sha256::digest(tbs)))
    }

    /// A certificate recorded in a database (`place` "db") or on a token
    /// ("token").
    pub fn stored(serial: &str, subject: &str, place: &'static str) -> Event {
        Event::new("store").field("serial", serial).field("subject", subject).field("in", place)
    }

    pub fn revoked(serial: &str, reason: Option<&str>) -> Event {
        let e = Event::new("revoke").field("serial", serial);
        match reason {
            Some(r) => e.field("reason", r),
            None => e,
        }
    }

    /// `tbs-build --crl` took this CRL number from the database.
    pub fn crl_number(number_hex: &str) -> Event {
        Event::new("crl-number").field("crl_number", number_hex)
    }

    /// A signed checkpoint: `card-sign --audit-checkpoint` signs
    /// [`checkpoint_message`] of this line's own `seq` and `prev` with
    /// the CA key; `alg` is the DER AlgorithmIdentifier in hex.
    pub fn checkpoint(key: &Uri, alg_der_hex: &str, signature_hex: &str) -> Event {
        Event::new("checkpoint").key(key).field("alg", alg_der_hex).field("signature", signature_hex)
    }

    /// An OCSP response written where it is served (issue 12, part 1).
    pub fn ocsp_published(serial: &str, path: &Path) -> Event {
        Event::new("ocsp-publish")
            .field("serial", serial)
            .field("path", Value::Bytes(path.as_os_str().as_encoded_bytes().to_vec()))
    }

    /// The token a URI names (its token part: never a PIN, never the query).
    pub fn token(self, uri: &Uri) -> Event {
        self.field("token", uri.token_part().to_string())
    }

    /// The token, CKA_ID and CKA_LABEL of a key named by its object URI.
    pub fn key(self, uri: &Uri) -> Event {
        let mut e = self.token(uri);
        if let Some(id) = &uri.id {
            e = e.field("key_id", crate::hex::encode(id));
        }
        if let Some(label) = &uri.object {
            e = e.field("key_label", label.as_str());
        }
        e
    }

    pub fn field(mut self, name: &'static str, value: impl Into<Value>) -> Event {
        self.fields.push((name, value.into()));
        self
    }

    /// The result: "ok", or the error's message.
    pub fn outcome<T>(mut self, result: &Result<T>) -> Event {
        self.error = result.as_ref().err().map(|e| e.message().to_string());
        self
    }

    pub fn failed(mut self, e: &Error) -> Event {
        self.error = Some(e.message().to_string());
        self
    }

    pub fn name(&self) -> &'static str {
        self.event
    }
}

/// Who writes: the same for every line of a run.
#[derive(Debug, Clone)]
struct Who {
    tool: String,
    pid: u32,
    uid: u32,
    user: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
}

impl Who {
    fn current(tool: &str) -> Who {
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

// ---------------------------------------------------------------------------
// Writing JSON.

fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let mut taken = 0;
    for c in s.chars() {
        taken += c.len_utf8();
        if taken > MAX_VALUE {
            out.push_str("...[cut]");
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Control characters, DEL and everything beyond ASCII as
            // \u escapes: the log stays plain ASCII, so no terminal
            // escape or bidi override reaches whoever reads it.
            c if (c as u32) < 0x20 || (c as u32) >= 0x7f => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Text(s) => push_str(out, s),
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => push_str(out, s),
            Err(_) => {
                out.push_str("{\"hex\":");
                push_str(out, &crate::hex::encode(&b[..b.len().min(MAX_VALUE / 2)]));
                out.push('}');
            }
        },
    }
}

fn push_field(out: &mut String, name: &str, v: &Value) {
    out.push(',');
    push_str(out, name);
    out.push(':');
    push_value(out, v);
}

/// One line, without its newline.
fn format_line(who: &Who, seq: u64, e: &Event, prev: &str) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(&format!("{{\"v\":1,\"seq\":{seq}"));
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

pub fn line_hash(line: &[u8]) -> String {
    crate::hex::encode(&Sha256::digest(line))
}

// ---------------------------------------------------------------------------
// Reading JSON: a strict RFC 8259 parser for one line.

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number's text; `as_u64` reads non-negative integers.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok(),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
}

/// Nesting cardca never writes beyond 2; a deep line is refused, not
/// recursed into.
const MAX_DEPTH: usize = 16;

impl Parser<'_> {
    fn fail<T>(&self, what: &str) -> Result<T> {
        Err(Error::new(format!("invalid JSON at byte {}: {what}", self.at + 1)))
    }

    fn ws(&mut self) {
        while matches!(self.s.get(self.at), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.at) == Some(&b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Json> {
        self.ws();
        let v = match self.s.get(self.at) {
            None => return self.fail("unexpected end"),
            Some(b'{') => self.object()?,
            Some(b'[') => self.array()?,
            Some(b'"') => Json::Str(self.string()?),
            Some(b't') => self.literal("true", Json::Bool(true))?,
            Some(b'f') => self.literal("false", Json::Bool(false))?,
            Some(b'n') => self.literal("null", Json::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return self.fail("expected a value"),
        };
        self.ws();
        Ok(v)
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json> {
        if self.s[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(v)
        } else {
            self.fail("expected a value")
        }
    }

    fn nest(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail("nested too deeply");
        }
        self.at += 1;
        Ok(())
    }

    fn object(&mut self) -> Result<Json> {
        self.nest()?;
        let mut fields: Vec<(String, Json)> = Vec::new();
        self.ws();
        if !self.eat(b'}') {
            loop {
                self.ws();
                if self.s.get(self.at) != Some(&b'"') {
                    return self.fail("expected a key");
                }
                let key = self.string()?;
                if fields.iter().any(|(k, _)| *k == key) {
                    return self.fail(&format!("key {key:?} twice"));
                }
                self.ws();
                if !self.eat(b':') {
                    return self.fail("expected ':'");
                }
                let v = self.value()?;
                fields.push((key, v));
                if self.eat(b'}') {
                    break;
                }
                if !self.eat(b',') {
                    return self.fail("expected ',' or '}'");
                }
            }
        }
        self.depth -= 1;
        Ok(Json::Obj(fields))
    }

    fn array(&mut self) -> Result<Json> {
        self.nest()?;
        let mut items = Vec::new();
        self.ws();
        if !self.eat(b']') {
            loop {
                items.push(self.value()?);
                if self.eat(b']') {
                    break;
                }
                if !self.eat(b',') {
                    return self.fail("expected ',' or ']'");
                }
            }
        }
        self.depth -= 1;
        Ok(Json::Arr(items))
    }

    fn number(&mut self) -> Result<Json> {
        let start = self.at;
        self.eat(b'-');
        let digits = |p: &mut Self| {
            let from = p.at;
            while matches!(p.s.get(p.at), Some(b'0'..=b'9')) {
                p.at += 1;
            }
            p.at - from
        };
        match self.s.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return self.fail("bad number"),
        }
        if self.eat(b'.') && digits(self) == 0 {
            return self.fail("bad number");
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if digits(self) == 0 {
                return self.fail("bad number");
            }
        }
        // ASCII by construction.
        Ok(Json::Num(String::from_utf8_lossy(&self.s[start..self.at]).into_owned()))
    }

    fn hex4(&mut self) -> Result<u32> {
        let Some(digits) = self.s.get(self.at..self.at + 4) else { return self.fail("short \\u escape") };
        let text = std::str::from_utf8(digits).ok().filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(n) = text.and_then(|t| u32::from_str_radix(t, 16).ok()) else {
            return self.fail("bad \\u escape");
        };
        self.at += 4;
        Ok(n)
    }

    fn string(&mut self) -> Result<String> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let Some(&b) = self.s.get(self.at) else { return self.fail("unterminated string") };
            match b {
                b'"' => {
                    self.at += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.at += 1;
                    let Some(&e) = self.s.get(self.at) else { return self.fail("unterminated string") };
                    self.at += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xd800..0xdc00).contains(&hi) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return self.fail("lone surrogate");
                                }
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return self.fail("lone surrogate");
                                }
                                char::from_u32(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
                            } else {
                                char::from_u32(hi)
                            };
                            match c {
                                Some(c) => out.push(c),
                                None => return self.fail("lone surrogate"),
                            }
                        }
                        _ => return self.fail("bad escape"),
                    }
                }
                0..=0x1f => return self.fail("raw control character in a string"),
                _ => {
                    // The line was checked to be UTF-8: copy one character.
                    let len = match b {
                        0x00..=0x7f => 1,
                        0xc0..=0xdf => 2,
                        0xe0..=0xef => 3,
                        _ => 4,
                    };
                    let Some(bytes) = self.s.get(self.at..self.at + len) else {
                        return self.fail("truncated character");
                    };
                    match std::str::from_utf8(bytes) {
                        Ok(c) => out.push_str(c),
                        Err(_) => return self.fail("not UTF-8"),
                    }
                    self.at += len;
                }
            }
        }
    }
}

/// Parses one JSON text (a whole line).
pub fn parse_json(line: &[u8]) -> Result<Json> {
    if std::str::from_utf8(line).is_err() {
        return Err(Error::new("not UTF-8"));
    }
    let mut p = Parser { s: line, at: 0, depth: 0 };
    let v = p.value()?;
    if p.at != line.len() {
        return p.fail("text after the JSON value");
    }
    Ok(v)
}

/// The fields of an audit line the chain is checked by.
#[derive(Debug, Clone)]
pub struct Line {
    pub seq: u64,
    pub prev: String,
    pub event: String,
    pub json: Json,
}

/// Parses one line as an audit line: JSON, an object, the fields every
/// line has with the right types.
pub fn parse_line(line: &[u8]) -> Result<Line> {
    let json = parse_json(line)?;
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

// ---------------------------------------------------------------------------
// The end of the file, for an append.

/// Where the next line goes on from.
#[derive(Debug, PartialEq, Eq)]
pub struct Tail {
    /// `seq` of the next line.
    pub next_seq: u64,
    /// `prev` of the next line.
    pub prev: String,
    /// A torn last line: its number and bytes (to be ended and recorded).
    pub torn: Option<(u64, Vec<u8>)>,
    /// The SHA-256 of the last complete line (the torn line's own prev):
    /// the tear record carries it, so the line before a tear stays chained.
    pub before_torn: String,
}

/// Reads where the chain ends from the last bytes of the file: `window`
/// is the file's last bytes, `whole` says whether it is the whole file.
/// None: the last line does not fit in the window; read more.
pub fn tail_of(window: &[u8], whole: bool) -> Result<Option<Tail>> {
    let too_long =
        || Error::new(format!("its last line is longer than {MAX_LINE} bytes: not written by cardca"));
    if window.is_empty() {
        return Ok(Some(Tail { next_seq: 1, prev: GENESIS.into(), torn: None, before_torn: GENESIS.into() }));
    }
    // Split off a torn last line (no newline).
    let (complete, torn) = match window.iter().rposition(|&b| b == b'\n') {
        Some(i) => (&window[..=i], &window[i + 1..]),
        None if whole => (&window[..0], window),
        None => return Ok(None),
    };
    if torn.len() > MAX_LINE {
        return Err(too_long());
    }
    let (last_seq, last_hash) = if complete.is_empty() {
        (0, GENESIS.to_string())
    } else {
        let body = &complete[..complete.len() - 1];
        let start = match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if whole => 0,
            None => return Ok(None),
        };
        let last = &body[start..];
        let parsed = parse_line(last).map_err(|e| {
            e.context("its last line is not an audit line")
                .hint("run cert-store --audit-verify FILE; nothing was appended")
        })?;
        (parsed.seq, line_hash(last))
    };
    // A seq near u64::MAX was not written by cardca: refused, not wrapped.
    let after = |k: u64| {
        last_seq
            .checked_add(k)
            .ok_or_else(|| Error::new(format!("the last line's seq {last_seq} cannot be followed")))
    };
    if torn.is_empty() {
        return Ok(Some(Tail {
            next_seq: after(1)?,
            prev: last_hash.clone(),
            torn: None,
            before_torn: last_hash,
        }));
    }
    Ok(Some(Tail {
        next_seq: after(2)?,
        prev: line_hash(torn),
        torn: Some((after(1)?, torn.to_vec())),
        before_torn: last_hash,
    }))
}

// ---------------------------------------------------------------------------
// The log.

/// An audit log file and who writes to it.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    who: Who,
}

fn io_error(e: Errno) -> Error {
    Error::from(std::io::Error::from(e))
}

impl Log {
    pub fn new(path: PathBuf, tool: &str) -> Log {
        Log { path, who: Who::current(tool) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file for appending, creating it (and making its
    /// directory entry durable) on first use. The last component is never
    /// followed; anything but a regular file is refused.
    fn open(&self) -> Result<File> {
        let flags = OFlags::RDWR | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(LOG_MODE);
        let refused = |e: Errno| {
            if e == Errno::LOOP {
                Error::new(format!("{} is a symbolic link: refused", self.path.display()))
            } else {
                io_error(e).context(self.path.display())
            }
        };
        let file = match rustix::fs::open(&self.path, flags, mode) {
            Ok(fd) => File::from(fd),
            Err(Errno::NOENT) => {
                match rustix::fs::open(&self.path, flags | OFlags::CREATE | OFlags::EXCL, mode) {
                    Ok(fd) => {
                        let dir = match self.path.parent() {
                            Some(p) if !p.as_os_str().is_empty() => p,
                            _ => Path::new("."),
                        };
                        File::open(dir)
                            .and_then(|d| d.sync_all())
                            .with_context(|| format!("making the new {} durable", self.path.display()))?;
                        File::from(fd)
                    }
                    // Another run created it meanwhile.
                    Err(Errno::EXIST) => {
                        File::from(rustix::fs::open(&self.path, flags, mode).map_err(refused)?)
                    }
                    Err(e) => return Err(refused(e)),
                }
            }
            Err(e) => return Err(refused(e)),
        };
        let st = rustix::fs::fstat(&file).map_err(io_error)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Error::new(format!("{} is not a regular file: refused", self.path.display())));
        }
        Ok(file)
    }

    /// Appends the events as one batch: locked, chained, one write, made
    /// durable before this returns. Nothing the events describe may be
    /// released before it has returned Ok.
    pub fn append(&self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.append_with(|_, _| Ok(events.to_vec())).map(drop)
    }

    /// Appends the events `make` returns, given the `seq` and `prev` the
    /// first of them gets, under the same lock (a checkpoint signs them).
    /// Returns the lines written.
    pub fn append_with(&self, make: impl FnOnce(u64, &str) -> Result<Vec<Event>>) -> Result<Vec<String>> {
        self.append_locked(make).with_context(|| format!("audit log {}", self.path.display()))
    }

    fn append_locked(&self, make: impl FnOnce(u64, &str) -> Result<Vec<Event>>) -> Result<Vec<String>> {
        let file = self.open()?;
        file.lock().context("locking")?;
        let len = file.metadata()?.len();
        // The end of the file, read again larger only when its last line
        // is longer than the first read: never the whole file.
        let mut want = TAIL;
        let tail = loop {
            let start = len.saturating_sub(want);
            let mut window = vec![0u8; (len - start) as usize];
            file.read_exact_at(&mut window, start).context("reading its end")?;
            match tail_of(&window, start == 0)? {
                Some(tail) => break tail,
                None if want < TAIL_MAX => want = (want * 4).min(TAIL_MAX),
                None => {
                    return Err(Error::new(format!(
                        "its last line is longer than {MAX_LINE} bytes: not written by cardca"
                    ))
                    .hint("run cert-store --audit-verify FILE; nothing was appended"))
                }
            }
        };
        let (mut seq, mut prev) = (tail.next_seq, tail.prev);
        let mut text = String::new();
        if let Some((number, torn)) = &tail.torn {
            // End the torn line and say so in the chain: its hash is the
            // tear record's prev, so the verifier checks the torn bytes too.
            text.push('\n');
            let record = Event::new("torn-line")
                .field("torn_line", *number)
                .field("torn_bytes", torn.len() as u64)
                .field("torn_prev", tail.before_torn.clone())
                .failed(&Error::new("the line before was torn by an interrupted write"));
            let line = format_line(&self.who, seq, &record, &prev);
            prev = line_hash(line.as_bytes());
            text.push_str(&line);
            text.push('\n');
            seq += 1;
        }
        let events = make(seq, &prev)?;
        let mut lines = Vec::with_capacity(events.len());
        for e in &events {
            let line = format_line(&self.who, seq, e, &prev);
            prev = line_hash(line.as_bytes());
            text.push_str(&line);
            text.push('\n');
            lines.push(line);
            seq += 1;
        }
        let written = (&file).write_all(text.as_bytes());
        if let Err(e) = written {
            // A full disk: cut back to where it was, so no torn line stays.
            let _ = file.set_len(len).and_then(|_| file.sync_data());
            return Err(Error::from(e).context("appending"));
        }
        file.sync_data().context("fsync")?;
        Ok(lines)
    }
}

// ---------------------------------------------------------------------------
// The process's log.

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
    let tool = crate::cli::tool_name();
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
    match record(event.failed(&e)) {
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
// Verification.

/// What a checkpoint line's signature covers: its own number and the
/// hash of the line before it, i.e. the whole chain up to it.
pub fn checkpoint_message(seq: u64, prev: &str) -> Vec<u8> {
    format!("cardca audit checkpoint v1\nseq {seq}\nprev {prev}\n").into_bytes()
}

/// Checks a checkpoint line's signature with the CA's public key.
fn check_checkpoint(line: &Line, ca: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Result<()> {
    use der::Decode;
    let field = |k: &str| {
        line.json
            .get(k)
            .and_then(Json::as_str)
            .ok_or_else(|| Error::new(format!("no {k:?}")))
            .and_then(crate::hex::decode)
    };
    let alg = x509_cert::spki::AlgorithmIdentifierOwned::from_der(&field("alg")?)?;
    let alg = crate::sign::SigAlg::from_identifier(&alg)?;
    crate::sign::verify(ca, alg, &checkpoint_message(line.seq, &line.prev), &field("signature")?)
}

/// A log that verifies.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub lines: u64,
    /// SHA-256 of the last line: what the next line's prev will be.
    pub head: String,
    /// Lines torn by a crash and recorded by the line after them.
    pub tears: Vec<u64>,
    /// How many lines of each event.
    pub events: std::collections::BTreeMap<String, u64>,
    /// The lines of the checkpoints (their signatures checked when a CA
    /// key was given).
    pub checkpoints: Vec<u64>,
}

/// The first break: its line number and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Break {
    pub line: u64,
    pub why: String,
    /// Only the last line is torn (an interrupted write; the next append
    /// records it): a crash, not tampering.
    pub torn_last: bool,
    /// The lines before the break, which verify.
    pub good: u64,
}

/// A line as read: bytes without the newline, and whether it had one.
struct RawLine {
    bytes: Vec<u8>,
    terminated: bool,
}

fn read_raw(input: &mut impl BufRead) -> Result<Option<RawLine>> {
    let mut bytes = Vec::new();
    let n = std::io::Read::take(input.by_ref(), (MAX_LINE + 2) as u64).read_until(b'\n', &mut bytes)?;
    if n == 0 {
        return Ok(None);
    }
    let terminated = bytes.last() == Some(&b'\n');
    if terminated {
        bytes.pop();
    }
    Ok(Some(RawLine { bytes, terminated }))
}

/// Verifies a whole log read from `input`; with `ca`, every checkpoint's
/// signature too.
pub fn verify(
    mut input: impl BufRead,
    ca: Option<&x509_cert::spki::SubjectPublicKeyInfoOwned>,
) -> Result<std::result::Result<Report, Break>> {
    let mut checkpoints = Vec::new();
    // Hash (its first 64 bits) -> line number, to name where a line that
    // breaks the chain belongs: 16 bytes a line however long the log, and
    // no accidental match among billions of lines.
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let key = |hex: &str| -> u64 { hex.get(..16).and_then(|h| u64::from_str_radix(h, 16).ok()).unwrap_or(0) };
    let mut prev = GENESIS.to_string();
    let mut tears = Vec::new();
    let mut events = std::collections::BTreeMap::new();
    let mut n: u64 = 0;
    let mut next = read_raw(&mut input)?;
    let mut prev_torn = false;
    let broken = |line: u64, good: u64, why: String| Break { line, why, torn_last: false, good };
    while let Some(raw) = next.take() {
        n += 1;
        next = read_raw(&mut input)?;
        let hash = line_hash(&raw.bytes);
        if raw.bytes.len() > MAX_LINE {
            return Ok(Err(broken(n, n - 1, format!("longer than {MAX_LINE} bytes: not written by cardca"))));
        }
        if !raw.terminated {
            return Ok(Err(Break {
                line: n,
                why:
                    "torn last line (no newline): a write interrupted by a crash; the next append records it"
                        .into(),
                torn_last: true,
                good: n - 1,
            }));
        }
        // A line the next one records as torn is checked through that
        // record's prev, not by its content.
        let tear = next
            .as_ref()
            .and_then(|r| parse_line(&r.bytes).ok())
            .filter(|l| l.event == "torn-line" && l.json.get("torn_line").and_then(Json::as_u64) == Some(n));
        if let Some(record) = tear {
            // The torn line's own prev may be lost with its end: the
            // record carries it, so the line before stays chained.
            if record.json.get("torn_prev").and_then(Json::as_str) != Some(prev.as_str()) {
                return Ok(Err(broken(
                    n + 1,
                    n - 1,
                    format!(
                        "its torn_prev is not the SHA-256 of line {}: line {} or this record was edited",
                        n - 1,
                        n - 1
                    ),
                )));
            }
            tears.push(n);
            seen.insert(key(&hash), n);
            prev = hash;
            prev_torn = true;
            continue;
        }
        let line = match parse_line(&raw.bytes) {
            Ok(l) => l,
            Err(e) => {
                return Ok(Err(broken(n, n - 1, format!("not an audit line ({e}): edited or inserted"))))
            }
        };
        if line.event == "torn-line" && !prev_torn {
            return Ok(Err(broken(n, n - 1, "a torn-line record, but no torn line precedes it".into())));
        }
        prev_torn = false;
        if line.prev != prev || line.seq != n {
            return Ok(Err(diagnose(n, &line, &prev, &hash, next.as_ref(), &seen, key)));
        }
        if seen.insert(key(&hash), n).is_some() {
            // Equal first 64 bits of two hashes: a copy made to agree
            // would have broken the chain above already; nothing to say.
        }
        if line.event == "checkpoint" {
            if let Some(ca) = ca {
                if let Err(e) = check_checkpoint(&line, ca) {
                    return Ok(Err(broken(
                        n,
                        n - 1,
                        format!(
                            "a checkpoint whose signature does not verify with the CA's key ({e}): forged, or \
                             the log was rewritten"
                        ),
                    )));
                }
            }
            checkpoints.push(n);
        }
        *events.entry(line.event).or_insert(0) += 1;
        prev = hash;
    }
    Ok(Ok(Report { lines: n, head: prev, tears, events, checkpoints }))
}

/// Why line `n` breaks the chain: the most specific story its `seq` and
/// `prev` tell.
fn diagnose(
    n: u64,
    line: &Line,
    prev: &str,
    hash: &str,
    next: Option<&RawLine>,
    seen: &HashMap<u64, u64>,
    key: impl Fn(&str) -> u64,
) -> Break {
    let b = |at: u64, why: String| Break { line: at, why, torn_last: false, good: at.saturating_sub(1) };
    if line.prev == prev {
        return b(n, format!("edited: its seq is {}, not {n}", line.seq));
    }
    if let Some(&k) = seen.get(&key(hash)) {
        return b(n, format!("a copy of line {k} (an inserted line)"));
    }
    if n == 1 {
        let from = if line.seq > 1 {
            format!(" (it is entry {}: entries 1 to {} are gone)", line.seq, line.seq - 1)
        } else {
            String::new()
        };
        return b(1, format!("does not start the chain (its prev is not the genesis value): the start of the log was cut off{from}"));
    }
    if next.is_some_and(|r| line_hash(&r.bytes) == line.prev) {
        return b(n, format!("reordered: it belongs after line {}, which records it as its prev", n + 1));
    }
    if let Some(&j) = seen.get(&key(&line.prev)) {
        if j + 1 < n {
            let inserted = if j + 2 == n {
                format!("line {} was inserted", j + 1)
            } else {
                format!("lines {} to {} were inserted", j + 1, n - 1)
            };
            return b(j + 1, format!("{inserted}: line {n} records line {j} as its prev"));
        }
    }
    if line.seq > n {
        let missing = line.seq - n;
        let what = if missing == 1 { "1 line was".to_string() } else { format!("{missing} lines were") };
        return b(n, format!("{what} deleted before it (it is entry {}, at line {n})", line.seq));
    }
    if line.seq < n {
        return b(n, format!("it is entry {}, which belongs earlier: inserted or reordered", line.seq));
    }
    b(n - 1, format!("edited: its SHA-256 is not the prev line {n} records (or line {n}'s prev was edited)"))
}

/// Verifies the log at `path` under a shared lock (no append half-seen).
pub fn verify_file(
    path: &Path,
    ca: Option<&x509_cert::spki::SubjectPublicKeyInfoOwned>,
) -> Result<std::result::Result<Report, Break>> {
    // O_NONBLOCK: a FIFO in its place must not hang the open; it is
    // refused below as no regular file.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| {
        if e == Errno::LOOP {
            Error::new(format!("{} is a symbolic link: refused", path.display()))
        } else {
            io_error(e).context(path.display())
        }
    })?;
    let file = File::from(fd);
    let st = rustix::fs::fstat(&file).map_err(io_error)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::new(format!("{} is not a regular file", path.display())));
    }
    file.lock_shared().with_context(|| format!("locking {}", path.display()))?;
    verify(std::io::BufReader::with_capacity(1 << 16, &file), ca)
        .with_context(|| format!("reading {}", path.display()))
}

/// The fuzz target's body (`cardca::fuzz::audit_log`): the verifier and
/// the append's tail reader on any bytes, and the writer's escaping
/// checked against the reader on any text.
#[cfg(feature = "fuzz")]
pub(crate) fn fuzz(data: &[u8]) {
    let _ = verify(data, None);
    let _ = tail_of(data, true);
    let _ = tail_of(data, false);
    for line in data.split(|&b| b == b'\n') {
        let _ = parse_line(line);
    }
    let text = String::from_utf8_lossy(data);
    let e = Event::new("fuzz").field("text", text.as_ref()).field("bytes", Value::Bytes(data.to_vec()));
    let who = Who { tool: "fuzz".into(), pid: 1, uid: 0, user: None, host: None };
    let line = format_line(&who, 1, &e, GENESIS);
    let parsed = match parse_line(line.as_bytes()) {
        Ok(p) => p,
        Err(err) => panic!("a line the writer made does not parse: {err}: {line}"),
    };
    // The writer cuts at MAX_VALUE bytes of UTF-8, which lossy decoding
    // can make of fewer input bytes (one bad byte, three of U+FFFD).
    if text.len() <= MAX_VALUE {
        assert_eq!(parsed.json.get("text").and_then(Json::as_str), Some(text.as_ref()), "{line}");
    }
    assert!(line.is_ascii() && !line.contains('\n'), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Who {
        Who {
            tool: "test".into(),
            pid: 1,
            uid: 0,
            user: Some(b"root".to_vec()),
            host: Some(vec![0xff, b'h']),
        }
    }

    fn log_of(events: &[Event]) -> Vec<u8> {
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

    fn lines(log: &[u8]) -> Vec<Vec<u8>> {
        log.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
    }

    fn join(lines: &[Vec<u8>]) -> Vec<u8> {
        lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect()
    }

    fn sample(n: usize) -> Vec<u8> {
        let events: Vec<Event> = (0..n)
            .map(|i| Event::signature(Signed::Certificate, &[i as u8]).field("serial", format!("{i:02X}")))
            .collect();
        log_of(&events)
    }

    fn broken(log: &[u8]) -> Break {
        verify(log, None).expect("read").expect_err("should break")
    }

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
    fn pins_are_redacted_from_results() {
        let e = Event::new("x").failed(&Error::new("bad URI pkcs11:token=a?pin-value=s3cr3t"));
        let line = format_line(&who(), 1, &e, GENESIS);
        assert!(!line.contains("s3cr3t"), "{line}");
    }

    #[test]
    fn strict_json() {
        for bad in [
            &b"{\"a\":1,}"[..],
            b"{\"a\":01}",
            b"{\"a\":1}x",
            b"{\"a\":\"\\ud800\"}",
            b"{\"a\":\"\x01\"}",
            b"{\"a\":1,\"a\":2}",
            b"{\"a\":\xff}",
            b"{\"a\":-}",
            b"{\"a\":1.}",
            b"[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]",
            b"{\"a\":tru}",
            b"",
        ] {
            assert!(parse_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_json(b" {\"a\":[1,-2.5e3,true,null,\"\\u00e9\\ud83d\\ude00\"]} ").is_ok());
    }

    #[test]
    fn intact_log_verifies() {
        let log = sample(5);
        let r = verify(&log[..], None).expect("read").expect("intact");
        assert_eq!(r.lines, 5);
        assert_eq!(r.head, line_hash(&lines(&log)[4]));
        assert_eq!(verify(&b""[..], None).expect("read").expect("empty").lines, 0);
    }

    #[test]
    fn tampering_is_named() {
        let l = lines(&sample(8));
        // Edited line 4.
        let mut e = l.clone();
        e[3] = String::from_utf8(e[3].clone()).expect("utf8").replace("\"03\"", "\"FF\"").into_bytes();
        let b = broken(&join(&e));
        assert_eq!(b.line, 4, "{b:?}");
        assert!(b.why.contains("edited"), "{b:?}");
        // Deleted line 4.
        let mut d = l.clone();
        d.remove(3);
        let b = broken(&join(&d));
        assert_eq!((b.line, b.why.contains("deleted")), (4, true), "{b:?}");
        // Lines 4 and 5 swapped.
        let mut s = l.clone();
        s.swap(3, 4);
        let b = broken(&join(&s));
        assert_eq!((b.line, b.why.contains("reordered")), (4, true), "{b:?}");
        // A copy of line 2 inserted as line 5.
        let mut i = l.clone();
        i.insert(4, l[1].clone());
        let b = broken(&join(&i));
        assert_eq!((b.line, b.why.contains("inserted")), (5, true), "{b:?}");
        // A forged line, correctly chained, inserted as line 5.
        let forged = format_line(&who(), 5, &Event::new("x"), &line_hash(&l[3]));
        let mut f = l.clone();
        f.insert(4, forged.into_bytes());
        let b = broken(&join(&f));
        assert_eq!((b.line, b.why.contains("inserted")), (5, true), "{b:?}");
        // The first two lines cut off.
        let b = broken(&join(&l[2..]));
        assert_eq!((b.line, b.why.contains("start of the log")), (1, true), "{b:?}");
        // Truncated inside the last line.
        let whole = join(&l);
        let b = broken(&whole[..whole.len() - 10]);
        assert_eq!((b.line, b.torn_last), (8, true), "{b:?}");
        // Garbage.
        let mut g = l.clone();
        g[2] = b"hello".to_vec();
        assert_eq!(broken(&join(&g)).line, 3);
    }

    #[test]
    fn tails() {
        let log = sample(3);
        let t = tail_of(&log, true).expect("tail").expect("fits");
        assert_eq!((t.next_seq, t.torn.is_none()), (4, true));
        assert_eq!(t.prev, line_hash(&lines(&log)[2]));
        // Only the end of a large file: the last line is found all the same.
        let t2 = tail_of(&log[log.len() - lines(&log)[2].len() - 2..], false).expect("window").expect("fits");
        assert_eq!(t2, t);
        let mut torn = log.clone();
        torn.extend_from_slice(b"{\"v\":1,\"se");
        let t = tail_of(&torn, true).expect("torn").expect("fits");
        assert_eq!(t.torn.as_ref().map(|(n, b)| (*n, b.len())), Some((4, 10)));
        assert_eq!(t.next_seq, 5);
        // A complete last line that is no audit line: refused.
        let mut bad = log.clone();
        bad.extend_from_slice(b"junk\n");
        assert!(tail_of(&bad, true).is_err());
        // Not the whole file and no whole line in the window: read more.
        assert!(tail_of(b"no newline in a window", false).expect("more").is_none());
        assert!(tail_of(&log[log.len() - 20..], false).expect("more").is_none());
        assert_eq!(tail_of(b"", true).expect("empty").expect("fits").prev, GENESIS);
    }

    #[test]
    fn appends_chain_and_record_tears() {
        let dir = std::env::temp_dir().join(format!("cardca-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("audit.log");
        let _ = std::fs::remove_file(&path);
        let log = Log::new(path.clone(), "test");
        log.append(&[Event::new("a"), Event::new("b")]).expect("append");
        // A crash in the middle of the next write.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"v\":1,\"seq\":3,\"ti").expect("tear");
        let b = verify_file(&path, None).expect("read").expect_err("torn");
        assert!(b.torn_last && b.line == 3, "{b:?}");
        log.append(&[Event::new("c")]).expect("append after the tear");
        // Lines longer than the first read of the tail: it reads more.
        let long = "\u{1}".repeat(4 * MAX_VALUE);
        let big = Event::new("big").field("a", long.as_str()).field("b", long.as_str());
        log.append(std::slice::from_ref(&big)).expect("a long line");
        log.append(&[big]).expect("after a long line");
        let r = verify_file(&path, None).expect("read").expect("verifies");
        assert_eq!((r.lines, r.tears.clone()), (7, vec![3]));
        let longest = std::fs::read(&path).expect("read").split(|&b| b == b'\n').map(<[u8]>::len).max();
        assert!(longest.is_some_and(|n| n as u64 > TAIL && n <= MAX_LINE), "{longest:?}");
        // A forged tear record on an intact line is a break.
        let text = std::fs::read(&path).expect("read");
        let l = lines(&text);
        let forged =
            format_line(&who(), 2, &Event::new("torn-line").field("torn_line", 1u64), &line_hash(&l[0]));
        let mut f = l.clone();
        f[1] = forged.into_bytes();
        assert_eq!(broken(&join(&f)).line, 2);
        #[cfg(unix)]
        {
            let link = dir.join("link.log");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&path, &link).expect("symlink");
            let e = Log::new(link.clone(), "test").append(&[Event::new("x")]).expect_err("link");
            assert!(e.to_string().contains("symbolic link"), "{e}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
