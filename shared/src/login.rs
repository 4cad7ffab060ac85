//! The login: reading a token's PIN flags, deciding where the PIN comes
//! from, C_Login, and the audit event every attempt leaves. Where a PIN is
//! read from, and how it is kept, is [`crate::pin`]; this module decides
//! whether and how it may be used on a given token.
//!
//! The rule it owns: a login must never burn a token's last PIN try
//! unattended, and a failed login is never retried.

use cryptoki::error::RvError;
use cryptoki::session::{Session, UserType};
use secrecy::SecretString;

use crate::audit;
use crate::error::{Error, Result};
use crate::pin::{self, PinSource};
use crate::report;
use crate::token::Token;
use crate::uri::Uri;

/// Where a PIN will come from, decided before the token is touched.
pub enum Pin {
    /// Read without asking anyone: a file, a variable or a descriptor.
    /// Refused on a token whose PIN is on its final try.
    Automatic(SecretString),
    /// A person types it at /dev/tty.
    Prompt,
    /// The reader has a PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH).
    PinPad,
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
        report::warn(format_args!("the {who} PIN of {name} is on its final try: a wrong PIN locks it"));
    } else if low {
        report::warn(format_args!("{name} has counted wrong {who} PINs; few tries remain before it locks"));
    }
    Ok(())
}

/// What a failed C_Login or C_SetPIN means to the operator. After a wrong
/// PIN, what the token now says of the tries left (PKCS#11 gives flags,
/// not a number).
pub fn pin_error(e: Error, who: &str, token: &Token) -> Error {
    let e = reword(e, who, &token.describe());
    // An uninitialised token's flags say nothing of a PIN it does not have.
    if !e.is_ckr(RvError::PinIncorrect) || !token.info.token_initialized() {
        return e;
    }
    let Some(info) = crate::module::token_info_again(token.slot) else { return e };
    let (locked, final_try, low) = if who == "SO" {
        (info.so_pin_locked(), info.so_pin_final_try(), info.so_pin_count_low())
    } else {
        (info.user_pin_locked(), info.user_pin_final_try(), info.user_pin_count_low())
    };
    let flag = |f: &str| format!("CKF_{}_PIN_{f}", if who == "SO" { "SO" } else { "USER" });
    let left = if locked {
        format!("the {who} PIN is now locked ({})", flag("LOCKED"))
    } else if final_try {
        format!("one try is left: the next wrong {who} PIN locks it ({})", flag("FINAL_TRY"))
    } else if low {
        format!("the token counts wrong {who} PINs: few tries are left ({})", flag("COUNT_LOW"))
    } else {
        return e;
    };
    Error::new(format!("{e}; {left}")).with_ckr_of(&e)
}

/// [`pin_error`] for a token by name. The return code stays on the error:
/// callers decide by it, never by the wording.
fn reword(e: Error, who: &str, name: &str) -> Error {
    if e.is_ckr(RvError::PinIncorrect) {
        Error::new(format!("wrong {who} PIN for {name} ({e}); not retried")).with_ckr_of(&e)
    } else if e.is_ckr(RvError::PinLocked) {
        Error::new(format!("the {who} PIN of {name} is locked ({e})")).with_ckr_of(&e)
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
        Pin::Prompt => Some(pin::prompt(&format!("PIN for {}", token.describe()))?),
    };
    // Every login attempt is an audit event, failures above all (someone
    // guessing PINs); the success is one line per run.
    let event = audit::Event::login(&token.uri(), "user");
    match session.login(UserType::User, secret.as_ref()).map_err(Error::from) {
        Ok(()) => audit::record(event).map(|()| secret),
        Err(e) if e.is_ckr(RvError::UserAlreadyLoggedIn) => Ok(secret),
        Err(e) => Err(audit::record_failure(event, pin_error(e, "user", token))),
    }
}

fn choose(token: &Token, source: Option<&PinSource>, uri: Option<&Uri>) -> Result<Pin> {
    if let Some(secret) = pin::resolve(source, uri)? {
        return Ok(Pin::Automatic(secret));
    }
    if token.info.protected_authentication_path() {
        return Ok(Pin::PinPad);
    }
    if pin::have_tty() {
        return Ok(Pin::Prompt);
    }
    Err(Error::new(format!("no PIN given for {} and no terminal to ask on", token.describe()))
        .hint("pass --pin-source file:PATH, env:VAR or fd:N, or pin-source= in the URI"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_try_is_refused_only_unattended() {
        let e = warn_or_refuse("t", "user", true, true, true).expect_err("automatic on the final try");
        assert!(e.to_string().contains("final try"), "{e}");
        assert!(e.hint_text().is_some_and(|h| h.contains("prompt")));
        // A person typing it is warned, not refused; so is a low count.
        assert!(warn_or_refuse("t", "user", true, true, false).is_ok());
        assert!(warn_or_refuse("t", "SO", false, true, true).is_ok());
        assert!(warn_or_refuse("t", "SO", false, false, true).is_ok());
    }

    #[test]
    fn wrong_and_locked_pins_keep_their_return_code() {
        use cryptoki::context::Function;
        let failed = |rv| Error::from(cryptoki::error::Error::Pkcs11(rv, Function::Login));
        for rv in [RvError::PinIncorrect, RvError::PinLocked] {
            let e = reword(failed(rv), "user", "token t");
            assert!(e.is_ckr(rv), "{e}");
            assert!(e.to_string().contains("user PIN"), "{e}");
        }
        let other = reword(failed(RvError::DeviceError), "user", "token t");
        assert!(other.is_ckr(RvError::DeviceError) && !other.to_string().contains("user PIN"), "{other}");
    }
}
