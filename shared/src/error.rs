//! The one error type of cardca.
//!
//! Messages are lower-case fragments composed as `context: cause`, so the
//! tool wrapper can print `card-sign: context: cause` on one line. A hint is
//! attached only when there is a concrete fix the operator can apply.

use std::fmt;

use cryptoki::error::RvError;

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
    /// The PKCS#11 return value when a PKCS#11 call failed: callers decide
    /// on the value (a wrong PIN, an initialised module), never on the text.
    ckr: Option<RvError>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(message: impl fmt::Display) -> Error {
        Error { kind: Kind::Failure, message: message.to_string(), hint: None, ckr: None }
    }

    pub fn usage(message: impl fmt::Display) -> Error {
        Error { kind: Kind::Usage, message: message.to_string(), hint: None, ckr: None }
    }

    /// Help or version text, printed on stdout with exit status 0.
    pub fn info(text: impl fmt::Display) -> Error {
        Error { kind: Kind::Info, message: text.to_string(), hint: None, ckr: None }
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

    /// The PKCS#11 return value, when this error came from a PKCS#11 call.
    pub fn ckr(&self) -> Option<RvError> {
        self.ckr
    }

    /// Whether a PKCS#11 call failed with `rv` (`RvError::PinIncorrect`).
    pub fn is_ckr(&self, rv: RvError) -> bool {
        self.ckr == Some(rv)
    }

    /// Keeps `from`'s PKCS#11 return value on an error that rewords it.
    pub fn with_ckr_of(mut self, from: &Error) -> Error {
        self.ckr = from.ckr;
        self
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
pub fn ckr_name(rv: &RvError) -> String {
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
            E::Pkcs11(rv, function) => {
                Error { ckr: Some(rv), ..Error::new(format!("C_{function:?} failed: {}", ckr_name(&rv))) }
            }
            E::LibraryLoading(e) => Error::new(e),
            other => Error::new(other.to_string().to_lowercase()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Error { kind: Kind::BrokenPipe, ..Error::new("broken pipe") };
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
        assert_eq!(ckr_name(&RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(ckr_name(&RvError::SlotIdInvalid), "CKR_SLOT_ID_INVALID");
        assert_eq!(ckr_name(&RvError::CryptokiAlreadyInitialized), "CKR_CRYPTOKI_ALREADY_INITIALIZED");
    }

    #[test]
    fn context_composes() {
        let e = Error::new("cause").context("inner").context("outer");
        assert_eq!(e.to_string(), "outer: inner: cause");
    }

    #[test]
    fn ckr_is_a_value_not_text() {
        use cryptoki::context::Function;
        use cryptoki::error::Error as P11;
        let e = Error::from(P11::Pkcs11(RvError::PinIncorrect, Function::Login)).context("logging in");
        assert!(e.is_ckr(RvError::PinIncorrect), "the code survives context");
        assert!(!e.is_ckr(RvError::PinLocked));
        assert_eq!(e.to_string(), "logging in: C_Login failed: CKR_PIN_INCORRECT");
        // Text that merely ends in a CKR name is not a PKCS#11 failure.
        let forged = Error::new("label CKR_PIN_INCORRECT");
        assert!(!forged.is_ckr(RvError::PinIncorrect) && forged.ckr().is_none());
        let reworded = Error::new("wrong PIN").with_ckr_of(&e);
        assert_eq!(reworded.ckr(), Some(RvError::PinIncorrect));
    }
}
