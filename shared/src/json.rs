//! JSON for the whole library: the string escaping every JSON writer uses
//! (the audit log, `card-ls --json`) and the strict reader the audit log's
//! verifier parses lines with. Hand-written: the rules are few, and both
//! halves are fuzzed (`cardca::fuzz::audit_log`) against each other.
//!
//! Escaping keeps the output plain ASCII: every control character (C0,
//! DEL, C1) and everything beyond ASCII, the bidi controls included, is
//! written as `\uXXXX` (a UTF-16 pair beyond the BMP), so no terminal
//! escape or bidi override reaches whoever reads the output, whatever a
//! token label or a subject holds.

use crate::error::{Error, Result};

/// Appends `s` as a JSON string literal, quotes included (RFC 8259
/// section 7), in ASCII only.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
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

/// `s` as a JSON string literal: [`push_str`] into a new string.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_str(&mut out, s);
    out
}

/// A parsed JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number's text; `as_u64` reads non-negative integers.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object's field (None for a missing key or a non-object).
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok(),
            _ => None,
        }
    }
}

/// Parses one JSON text (a whole line), strictly (RFC 8259): no trailing
/// comma, no leading zero, no lone surrogate, no raw control character,
/// no key twice in an object, nothing after the value, and UTF-8 only.
pub(crate) fn parse(text: &[u8]) -> Result<Json> {
    if std::str::from_utf8(text).is_err() {
        return Err(Error::new("not UTF-8"));
    }
    let mut p = Parser { s: text, at: 0, depth: 0 };
    let v = p.value()?;
    if p.at != text.len() {
        return p.fail("text after the JSON value");
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
}

/// Nesting cardca never writes beyond 2; a deep text is refused, not
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict() {
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
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b" {\"a\":[1,-2.5e3,true,null,\"\\u00e9\\ud83d\\ude00\"]} ").is_ok());
    }

    #[test]
    fn escapes_stay_ascii() {
        assert_eq!(string("a\"b\\c\n\r\t\u{1}"), "\"a\\\"b\\\\c\\n\\r\\t\\u0001\"");
        // DEL, a C1 control (NEL), a bidi override (RLO).
        assert_eq!(string("\u{7f}"), "\"\\u007f\"");
        assert_eq!(string("\u{85}"), "\"\\u0085\"");
        assert_eq!(string("x\u{202e}y"), "\"x\\u202ey\"");
        // Beyond the BMP: a UTF-16 surrogate pair.
        assert_eq!(string("é😀"), "\"\\u00e9\\ud83d\\ude00\"");
        assert_eq!(string("plain ASCII / ~"), "\"plain ASCII / ~\"");
    }

    #[test]
    fn escapes_round_trip() {
        let nasty = "q\"b\\s/\n\r\t\u{1}\u{7f}\u{85}é\u{202e}\u{2066}😀";
        let text = string(nasty);
        assert!(text.is_ascii(), "{text}");
        assert_eq!(parse(text.as_bytes()).expect("parse"), Json::Str(nasty.into()));
    }
}
