//! The one error type of cardca.
//!
//! Messages are lower-case fragments composed as `context: cause`, so the
//! tool wrapper can print `card-sign: context: cause` on one line. A hint is
//! attached only when there is a concrete fix the operator can apply.

use std::fmt;

/// What the tool wrapper does with an error: exit 1, exit 2, print help, or
/// exit quietly because the reader of stdout went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Token, policy, bad input or I/O failure: exit status 1.
    Failure,
    /// The command line is wrong: exit status 2.
    Usage,
    /// `--help` or `--version`: the message goes to stdout, exit status 0.
    Info,
    /// stdout was closed by its reader: exit quietly.
    BrokenPipe,
}

#[derive(Debug)]
pub struct Error {
    kind: Kind,
    message: String,
    hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(message: impl fmt::Display) -> Error {
        Error { kind: Kind::Failure, message: message.to_string(), hint: None }
    }

    pub fn usage(message: impl fmt::Display) -> Error {
        Error { kind: Kind::Usage, message: message.to_string(), hint: None }
    }

    /// Help or version text, printed on stdout with exit status 0.
    pub fn info(text: impl fmt::Display) -> Error {
        Error { kind: Kind::Info, message: text.to_string(), hint: None }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Prefixes the message with what was being done: `context: message`.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        if matches!(self.kind, Kind::Failure | Kind::Usage) {
            self.message = format!("{context}: {}", self.message);
        }
        self
    }

    pub fn hint(mut self, hint: impl fmt::Display) -> Error {
        self.hint = Some(hint.to_string());
        self
    }

    /// The PKCS#11 return value name (`CKR_PIN_INCORRECT`) when this error
    /// came from a PKCS#11 call.
    pub fn is_ckr(&self, name: &str) -> bool {
        self.message.ends_with(name)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `CKR_PIN_INCORRECT` from cryptoki's `PinIncorrect`: the crate's Display
/// is a paragraph of prose, while operators and vendor manuals speak in CKR
/// names.
pub fn ckr_name(rv: &cryptoki::error::RvError) -> String {
    use cryptoki::error::RvError;
    match rv {
        RvError::VendorDefined(code) => format!("CKR_VENDOR_DEFINED+{code:#x}"),
        RvError::UnknownErrorCode(code) => format!("CKR {code:#x}"),
        other => format!("CKR{}", screaming_snake(&format!("{other:?}"))),
    }
}

/// `SlotIdInvalid` -> `_SLOT_ID_INVALID`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

impl From<cryptoki::error::Error> for Error {
    fn from(e: cryptoki::error::Error) -> Error {
        use cryptoki::error::Error as E;
        match e {
            E::Pkcs11(rv, function) => Error::new(format!("C_{function:?} failed: {}", ckr_name(&rv))),
            E::LibraryLoading(e) => Error::new(e),
            other => Error::new(other.to_string().to_lowercase()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Error { kind: Kind::BrokenPipe, message: "broken pipe".into(), hint: None };
        }
        Error::new(e)
    }
}

impl From<der::Error> for Error {
    fn from(e: der::Error) -> Error {
        Error::new(format!("malformed DER: {e}"))
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error::usage(e)
    }
}

/// `.context("reading the CA certificate")` on any result whose error
/// converts into [`Error`].
pub trait Context<T> {
    fn context(self, context: impl fmt::Display) -> Result<T>;
    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<C: fmt::Display>(self, f: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names() {
        use cryptoki::error::RvError;
        assert_eq!(ckr_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(ckr_name(&RvError::SlotIdInvalid), "CKR_SLOT_ID_INVALID");
        assert_eq!(ckr_name(&RvError::CryptokiAlreadyInitialized), "CKR_CRYPTOKI_ALREADY_INITIALIZED");
    }

    #[test]
    fn context_composes() {
        let e = Error::new("cause").context("inner").context("outer");
        assert_eq!(e.to_string(), "outer: inner: cause");
    }
}
