//! PINs: where they come from and how they are kept. Using one (the
//! login, and the token's PIN-flag checks before it) is the `login`
//! module's job: this one knows nothing of tokens' PIN policy.
//!
//! A PIN is never a command-line value (it would show in `ps` and shell
//! history). It comes from `--pin-source` (`file:PATH`, `env:VAR`, `fd:N`),
//! from the URI's `pin-source`, or from a prompt on /dev/tty; it lives in a
//! [`SecretString`], which zeroizes on drop. Every read turns core dumps off
//! first and fills a buffer allocated once at its final size, so neither a
//! core file nor a reallocated buffer leaves a copy behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Context, Error, Result};
use crate::uri::Uri;

/// Largest PIN or password we read from a file or descriptor. PKCS#11 PINs
/// are short; a larger read means the wrong file was named.
const MAX_SECRET: usize = 4096;

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
                .map_err(|_| Error::usage("pin source fd: needs a number (the value is not repeated)"))
        } else if s.starts_with('/') {
            Ok(PinSource::File(PathBuf::from(s)))
        } else {
            // Not repeated: what was typed may be the PIN itself.
            Err(Error::usage("bad pin source (not repeated: it may be the PIN itself): expected file:PATH, env:VAR or fd:N"))
        }
    }

    /// Reads the secret. One trailing newline (LF or CRLF) is stripped from
    /// files and descriptors, so `echo 1234 > pin` works.
    pub fn read(&self) -> Result<SecretString> {
        // A descriptor may be a pipe someone writes to later.
        crate::lock::unlocked(|| self.read_now())
    }

    fn read_now(&self) -> Result<SecretString> {
        forbid_core_dumps()?;
        let too_long = |e: Error| e.context("not a PIN");
        match self {
            PinSource::Env(var) => {
                let value = Zeroizing::new(
                    std::env::var(var)
                        .map_err(|_| Error::new(format!("environment variable {var} is not set")))?,
                );
                Ok(SecretString::from(value.as_str()))
            }
            PinSource::File(path) => File::open(path)
                .map_err(Error::from)
                .and_then(|f| read_secret(f, MAX_SECRET).map_err(too_long))
                .and_then(|raw| one_line(&raw))
                .with_context(|| format!("reading PIN file {}", path.display())),
            // /dev/fd/N opens the inherited descriptor without unsafe code.
            PinSource::Fd(fd) => File::open(format!("/dev/fd/{fd}"))
                .map_err(Error::from)
                .and_then(|f| read_secret(f, MAX_SECRET).map_err(too_long))
                .and_then(|raw| one_line(&raw))
                .with_context(|| format!("reading PIN from descriptor {fd}")),
        }
    }
}

/// The secret in a file's bytes: one trailing LF or CRLF dropped.
fn one_line(raw: &[u8]) -> Result<SecretString> {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = std::str::from_utf8(raw).map_err(|_| Error::new("the PIN is not UTF-8"))?;
    Ok(SecretString::from(text))
}

/// Reads all of `source`, at most `max` bytes, into a zeroizing buffer
/// allocated once at `max`: `read_to_end` would grow the buffer and leave
/// the secret behind in each freed allocation.
pub fn read_secret(mut source: impl Read, max: usize) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; max + 1]);
    let mut len = 0;
    while len < buf.len() {
        match source.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    if len > max {
        return Err(Error::new(format!("longer than {max} bytes")));
    }
    // Shortening never reallocates; the tail is zero already.
    buf.truncate(len);
    Ok(buf)
}

/// Turns core dumps off for the rest of the process, before any secret is
/// read: a core file, or a crash handler reading the process, would carry
/// the PIN or key material out of zeroized memory onto disk. RLIMIT_CORE 0
/// stops core files; PR_SET_DUMPABLE 0 also stops piped core handlers and
/// ptrace by other processes of the same user. Idempotent and cheap.
pub fn forbid_core_dumps() -> Result<()> {
    use rustix::process::{set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit};
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })
        .map_err(|e| Error::new(format!("cannot turn core dumps off (RLIMIT_CORE): {e}")))?;
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| Error::new(format!("cannot turn core dumps off (PR_SET_DUMPABLE): {e}")))
}

/// Resolves the PIN for a login: the flag first, then the URI's
/// pin-source. A URI's pin-value is never used: every URI comes from a
/// command line, where the PIN is readable by others (the tools refuse it
/// while parsing their arguments; this is the second lock on that door).
pub fn resolve(source: Option<&PinSource>, uri: Option<&Uri>) -> Result<Option<SecretString>> {
    if uri.is_some_and(|u| u.pin_value.is_some()) {
        return Err(Error::usage("refusing the URI's pin-value: the command line shows it to others")
            .hint("give the PIN with --pin-source file:PATH, env:VAR or fd:N, or pin-source= in the URI"));
    }
    if let Some(src) = source {
        return src.read().map(Some);
    }
    if let Some(src) = uri.and_then(|u| u.pin_source.as_ref()) {
        return PinSource::parse(src)?.read().context("the URI's pin-source").map(Some);
    }
    Ok(None)
}

/// Whether /dev/tty can be opened: a prompt is only possible with a
/// controlling terminal.
pub fn have_tty() -> bool {
    OpenOptions::new().read(true).write(true).open("/dev/tty").is_ok()
}

/// Asks on /dev/tty with echo off. Stdout and stdin stay free for the
/// data stream. The answer is read into one buffer of its final size (a
/// line-reading library grows a String and keeps a read buffer, leaving
/// copies of the PIN in freed memory).
pub fn prompt(what: &str) -> Result<SecretString> {
    // Nobody waits on the token lock while a person types.
    crate::lock::unlocked(|| prompt_now(what))
}

fn prompt_now(what: &str) -> Result<SecretString> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions, SpecialCodeIndex as Code};
    forbid_core_dumps()?;
    let mut tty = OpenOptions::new().read(true).write(true).open("/dev/tty").context("opening /dev/tty")?;
    let saved = tcgetattr(&tty).map_err(|e| Error::new(format!("reading the terminal's mode: {e}")))?;
    // Key by key, with no echo and no signals from the keyboard: Ctrl-C
    // then arrives as a byte and ends the prompt through the code below,
    // which turns echo back on. Killed by SIGINT instead, the tool would
    // leave the person's shell without echo (no signal handler can be
    // installed without unsafe code).
    let mut raw = saved.clone();
    raw.local_modes.remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
    raw.special_codes[Code::VMIN] = 1;
    raw.special_codes[Code::VTIME] = 0;
    tcsetattr(&tty, OptionalActions::Flush, &raw)
        .map_err(|e| Error::new(format!("turning the terminal's echo off: {e}")))?;
    let keys = Keys {
        interrupt: saved.special_codes[Code::VINTR],
        end: saved.special_codes[Code::VEOF],
        erase: saved.special_codes[Code::VERASE],
        kill: saved.special_codes[Code::VKILL],
    };
    let answer = write!(tty, "{what}: ").map_err(Error::from).and_then(|()| read_keys(&mut tty, &keys));
    // The line the person ended: the next output starts on a line of its own.
    let _ = tty.write_all(b"\n");
    // Echo back on whatever happened.
    let restored = tcsetattr(&tty, OptionalActions::Flush, &saved);
    let answer = answer?;
    restored.map_err(|e| Error::new(format!("turning the terminal's echo back on: {e}")))?;
    Ok(answer)
}

/// The terminal's editing keys, as `stty` set them.
struct Keys {
    interrupt: u8,
    end: u8,
    erase: u8,
    kill: u8,
}

/// One line typed on a terminal in raw mode, into one buffer of its final
/// size: Enter ends it; the erase and kill keys edit it; the interrupt key
/// (Ctrl-C) and the end-of-file key on an empty line cancel.
fn read_keys(tty: &mut File, keys: &Keys) -> Result<SecretString> {
    let mut buf = Zeroizing::new(vec![0u8; MAX_SECRET]);
    let mut len: usize = 0;
    let mut key = [0u8; 1];
    loop {
        match tty.read(&mut key) {
            Ok(0) => return Err(Error::new("the terminal closed before the line ended")),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::from(e).context("reading from /dev/tty")),
        }
        let k = key[0];
        key[0] = 0;
        match k {
            b'\n' | b'\r' => break,
            k if k == keys.interrupt => {
                return Err(Error::new("interrupted at the prompt; nothing was done"))
            }
            k if k == keys.end && len == 0 => {
                return Err(Error::new("no PIN typed (end of input at the prompt)"))
            }
            // Backspace sends DEL or BS depending on the terminal.
            k if k == keys.erase || k == 0x7f || k == 0x08 => {
                len = len.saturating_sub(1);
                buf[len] = 0;
            }
            k if k == keys.kill => {
                buf[..len].fill(0);
                len = 0;
            }
            k => {
                if len == buf.len() {
                    return Err(Error::new(format!("longer than {MAX_SECRET} bytes: not a PIN")));
                }
                buf[len] = k;
                len += 1;
            }
        }
    }
    one_line(&buf[..len])
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
        assert_eq!(PinSource::File(path.clone()).read().expect("read").expose_secret(), "1234");
        std::fs::write(&path, "x".repeat(MAX_SECRET + 1)).expect("write");
        let e = PinSource::File(path).read().expect_err("too long");
        assert!(e.to_string().ends_with("not a PIN: longer than 4096 bytes"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn secrets_read_into_one_allocation() {
        let buf = read_secret(&b"1234\n"[..], MAX_SECRET).expect("read");
        assert_eq!(&buf[..], b"1234\n");
        // Allocated once at the bound and only shortened since: no
        // reallocation left a copy anywhere.
        assert_eq!(buf.capacity(), MAX_SECRET + 1);
        assert!(read_secret(&[b'x'; 11][..], 10).is_err());
        assert_eq!(read_secret(&[b'x'; 10][..], 10).expect("at the bound").len(), 10);
    }

    #[test]
    fn core_dumps_off() {
        use rustix::process::{dumpable_behavior, getrlimit, DumpableBehavior, Resource};
        forbid_core_dumps().expect("forbid");
        forbid_core_dumps().expect("twice is fine");
        let limit = getrlimit(Resource::Core);
        assert_eq!((limit.current, limit.maximum), (Some(0), Some(0)));
        assert_eq!(dumpable_behavior().expect("prctl"), DumpableBehavior::NotDumpable);
    }

    #[test]
    fn pin_value_is_never_used() {
        let uri = Uri::parse("pkcs11:token=t?pin-value=1234").expect("parse");
        let e = resolve(None, Some(&uri)).expect_err("pin-value");
        assert_eq!(e.kind(), crate::error::Kind::Usage);
        assert!(!e.to_string().contains("1234"));
    }
}
