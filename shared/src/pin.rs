//! PINs: where they come from, how they are kept, and the one login path.
//!
//! A PIN is never a command-line value (it would show in `ps` and shell
//! history). It comes from `--pin-source` (`file:PATH`, `env:VAR`, `fd:N`),
//! from the URI's `pin-source`/`pin-value`, or from a prompt on /dev/tty;
//! it lives in a [`SecretString`], which zeroizes on drop.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::PathBuf;

use cryptoki::session::{Session, UserType};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Context, Error, Result};
use crate::token::Token;
use crate::uri::Uri;

/// Largest PIN or password we read from a file or descriptor. PKCS#11 PINs
/// are short; a larger read means the wrong file was named.
const MAX_SECRET: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    File(PathBuf),
    Env(String),
    Fd(u32),
}

impl PinSource {
    /// `file:PATH`, `env:VAR` or `fd:N`. RFC 7512's `pin-source` may also be
    /// a bare absolute path.
    pub fn parse(s: &str) -> Result<PinSource> {
        if let Some(path) = s.strip_prefix("file:") {
            // RFC 8089 file URIs: file:///etc/pin as well as file:/etc/pin.
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(Error::usage("pin source file: needs a path"));
            }
            Ok(PinSource::File(PathBuf::from(path)))
        } else if let Some(var) = s.strip_prefix("env:") {
            if var.is_empty() {
                return Err(Error::usage("pin source env: needs a variable name"));
            }
            Ok(PinSource::Env(var.to_string()))
        } else if let Some(fd) = s.strip_prefix("fd:") {
            fd.parse()
                .map(PinSource::Fd)
                .map_err(|_| Error::usage(format!("pin source {s:?}: fd: needs a number")))
        } else if s.starts_with('/') {
            Ok(PinSource::File(PathBuf::from(s)))
        } else {
            Err(Error::usage(format!("bad pin source {s:?}: expected file:PATH, env:VAR or fd:N")))
        }
    }

    /// Reads the secret. One trailing newline (LF or CRLF) is stripped from
    /// files and descriptors, so `echo 1234 > pin` works.
    pub fn read(&self) -> Result<SecretString> {
        let mut raw = Zeroizing::new(Vec::new());
        match self {
            PinSource::Env(var) => {
                let value = std::env::var(var)
                    .map_err(|_| Error::new(format!("environment variable {var} is not set")))?;
                raw.extend_from_slice(value.as_bytes());
                drop(Zeroizing::new(value));
            }
            PinSource::File(path) => read_bounded(path, &mut raw)
                .with_context(|| format!("reading PIN file {}", path.display()))?,
            // /dev/fd/N opens the inherited descriptor without unsafe code.
            PinSource::Fd(fd) => read_bounded(&PathBuf::from(format!("/dev/fd/{fd}")), &mut raw)
                .with_context(|| format!("reading PIN from descriptor {fd}"))?,
        }
        if !matches!(self, PinSource::Env(_)) {
            if raw.ends_with(b"\n") {
                raw.pop();
            }
            if raw.ends_with(b"\r") {
                raw.pop();
            }
        }
        let text = std::str::from_utf8(&raw).map_err(|_| Error::new("the PIN is not UTF-8"))?;
        Ok(SecretString::from(text))
    }
}

fn read_bounded(path: &PathBuf, into: &mut Vec<u8>) -> Result<()> {
    let file = std::fs::File::open(path)?;
    file.take(MAX_SECRET + 1).read_to_end(into)?;
    if into.len() as u64 > MAX_SECRET {
        return Err(Error::new("longer than 4096 bytes: not a PIN"));
    }
    Ok(())
}

/// Where a PIN will come from, decided before the token is touched.
pub enum Pin {
    /// Read without asking anyone: a file, a variable, a descriptor or the
    /// URI's pin-value. Refused on a token whose PIN is on its final try.
    Automatic(SecretString),
    /// A person types it at /dev/tty.
    Prompt,
    /// The reader has a PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH).
    PinPad,
}

/// Resolves the PIN for a login: the flag first, then the URI.
pub fn resolve(source: Option<&PinSource>, uri: Option<&Uri>) -> Result<Option<SecretString>> {
    if let Some(src) = source {
        return src.read().map(Some);
    }
    if let Some(uri) = uri {
        if let Some(src) = &uri.pin_source {
            return PinSource::parse(src)?.read().context("the URI's pin-source").map(Some);
        }
        if let Some(value) = &uri.pin_value {
            return Ok(Some(value.clone()));
        }
    }
    Ok(None)
}

/// Whether /dev/tty can be opened: a prompt is only possible with a
/// controlling terminal.
pub fn have_tty() -> bool {
    OpenOptions::new().read(true).write(true).open("/dev/tty").is_ok()
}

/// Asks on /dev/tty. Stdout and stdin stay free for the data stream.
pub fn prompt(what: &str) -> Result<SecretString> {
    let answer =
        Zeroizing::new(rpassword::prompt_password(format!("{what}: ")).context("reading from /dev/tty")?);
    Ok(SecretString::from(answer.as_str()))
}

/// Asks twice for a new PIN and insists both agree.
pub fn prompt_new(what: &str) -> Result<SecretString> {
    let first = prompt(&format!("New {what}"))?;
    let second = prompt(&format!("Repeat the new {what}"))?;
    if first.expose_secret() != second.expose_secret() {
        return Err(Error::new("the two PINs differ; nothing was changed"));
    }
    Ok(first)
}

/// A secret from a source, or a prompt when there is a terminal, or an
/// error that says how to give it.
pub fn obtain(source: Option<&PinSource>, what: &str, flag: &str, new: bool) -> Result<SecretString> {
    if let Some(src) = source {
        return src.read().with_context(|| format!("reading the {what}"));
    }
    if !have_tty() {
        return Err(Error::new(format!("no {what} given and no terminal to ask on"))
            .hint(format!("pass {flag} file:PATH, env:VAR or fd:N")));
    }
    if new {
        prompt_new(what)
    } else {
        prompt(what)
    }
}

/// Refuses what must not be tried unattended: a locked PIN, or one on its
/// final try when nobody is typing it. Warns when tries are running low.
pub fn check_user_flags(token: &Token, automatic: bool) -> Result<()> {
    let info = &token.info;
    let name = token.describe();
    if info.user_pin_locked() {
        return Err(Error::new(format!("the user PIN of {name} is locked"))
            .hint(format!("unblock it with the SO PIN: card-init --token '{}' --unblock", token.uri())));
    }
    if !info.user_pin_initialized() {
        return Err(Error::new(format!("{name} has no user PIN yet"))
            .hint(format!("set one with the SO PIN: card-init --token '{}' --unblock", token.uri())));
    }
    warn_or_refuse(&name, "user", info.user_pin_final_try(), info.user_pin_count_low(), automatic)
}

/// The same checks for the security officer's PIN.
pub fn check_so_flags(token: &Token, automatic: bool) -> Result<()> {
    let info = &token.info;
    let name = token.describe();
    if info.so_pin_locked() {
        return Err(Error::new(format!("the SO PIN of {name} is locked"))
            .hint("a token with a locked SO PIN can only be reset by its vendor's tools"));
    }
    warn_or_refuse(&name, "SO", info.so_pin_final_try(), info.so_pin_count_low(), automatic)
}

fn warn_or_refuse(name: &str, who: &str, final_try: bool, low: bool, automatic: bool) -> Result<()> {
    if final_try && automatic {
        return Err(Error::new(format!(
            "the {who} PIN of {name} is on its final try; refusing to use a PIN nobody typed"
        ))
        .hint("enter it at the prompt (run without a PIN source, on a terminal) after checking it"));
    }
    if final_try {
        eprintln!("warning: the {who} PIN of {name} is on its final try: a wrong PIN locks it");
    } else if low {
        eprintln!("warning: {name} has counted wrong {who} PINs; few tries remain before it locks");
    }
    Ok(())
}

/// What a failed C_Login or C_SetPIN means to the operator.
pub fn pin_error(e: Error, who: &str, token: &Token) -> Error {
    if e.is_ckr("CKR_PIN_INCORRECT") {
        Error::new(format!("wrong {who} PIN for {} ({e}); not retried", token.describe()))
    } else if e.is_ckr("CKR_PIN_LOCKED") {
        Error::new(format!("the {who} PIN of {} is locked ({e})", token.describe()))
    } else {
        e
    }
}

/// Logs the user in once, after reading the token's PIN flags so a login can
/// never burn the last try unattended. A failed login is not retried: a
/// second wrong PIN brings a token one step closer to locking. Returns the
/// PIN (None for a PIN pad) for keys that need it again before each
/// signature.
pub fn login(
    session: &Session,
    token: &Token,
    source: Option<&PinSource>,
    uri: Option<&Uri>,
) -> Result<Option<SecretString>> {
    let pin = choose(token, source, uri)?;
    check_user_flags(token, matches!(pin, Pin::Automatic(_)))?;
    let secret = match pin {
        Pin::PinPad => None,
        Pin::Automatic(secret) => Some(secret),
        Pin::Prompt => Some(prompt(&format!("PIN for {}", token.describe()))?),
    };
    match session.login(UserType::User, secret.as_ref()).map_err(Error::from) {
        Ok(()) => Ok(secret),
        Err(e) if e.is_ckr("CKR_USER_ALREADY_LOGGED_IN") => Ok(secret),
        Err(e) => Err(pin_error(e, "user", token)),
    }
}

fn choose(token: &Token, source: Option<&PinSource>, uri: Option<&Uri>) -> Result<Pin> {
    if let Some(secret) = resolve(source, uri)? {
        return Ok(Pin::Automatic(secret));
    }
    if token.info.protected_authentication_path() {
        return Ok(Pin::PinPad);
    }
    if have_tty() {
        return Ok(Pin::Prompt);
    }
    Err(Error::new(format!("no PIN given for {} and no terminal to ask on", token.describe()))
        .hint("pass --pin-source file:PATH, env:VAR or fd:N, or pin-source= in the URI"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(PinSource::parse("file:/a").expect("file"), PinSource::File("/a".into()));
        assert_eq!(PinSource::parse("file:///a").expect("file url"), PinSource::File("/a".into()));
        assert_eq!(PinSource::parse("env:PIN").expect("env"), PinSource::Env("PIN".into()));
        assert_eq!(PinSource::parse("fd:3").expect("fd"), PinSource::Fd(3));
        assert_eq!(PinSource::parse("/etc/pin").expect("path"), PinSource::File("/etc/pin".into()));
        for bad in ["1234", "fd:x", "env:", "file:", "pin:1234"] {
            assert!(PinSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_strips_one_newline() {
        let dir = std::env::temp_dir().join(format!("cardca-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("pin");
        std::fs::write(&path, "1234\n\n").expect("write");
        let pin = PinSource::File(path.clone()).read().expect("read");
        assert_eq!(pin.expose_secret(), "1234\n");
        std::fs::write(&path, "1234\r\n").expect("write");
        assert_eq!(PinSource::File(path).read().expect("read").expose_secret(), "1234");
        std::fs::remove_dir_all(dir).ok();
    }
}
