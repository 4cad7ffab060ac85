//! The only unsafe code of cardca: what the PKCS#11 crate (cryptoki 0.12)
//! does not wrap safely.
//!
//! - C_Initialize's init string. NSS softokn refuses to start without one
//!   in `pReserved` (`configdir='sql:DIR' certPrefix='' keyPrefix=''
//!   secmod='secmod.db' flags=`), and cryptoki takes it only as a raw
//!   pointer (`CInitializeArgs::new_with_reserved`).
//! - Token info whose clock does not parse. openCryptoki fills utcTime with
//!   `"        19:44:54"`, and cryptoki's `get_token_info` then fails for
//!   the whole token. Here the module's C_GetTokenInfo is called directly,
//!   CKF_CLOCK_ON_TOKEN is cleared, and cryptoki converts the rest: the
//!   token reads as one without a clock.
//!
//! A crate of its own so that the rest of the workspace can forbid unsafe
//! code outright (a `forbid` no module can lift). Here each unsafe block
//! does one unsafe operation and says why it is sound (the crate's lints
//! deny anything else). Errors are cryptoki's, so a module's return code
//! stays a value (`Error::Pkcs11(RvError, Function)`) for cardca to decide
//! on, never text.

use std::ffi::{c_void, CStr, CString, NulError};
use std::fmt;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function};
use cryptoki::error::Rv;
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki_sys::{CKF_CLOCK_ON_TOKEN, CK_FUNCTION_LIST, CK_RV, CK_TOKEN_INFO};
use libloading::os::unix::{Library, Symbol, RTLD_LAZY};

/// Every init string handed to a module, kept for the life of the process:
/// PKCS#11 does not say how long a module may keep `pReserved`, and the
/// module itself is never unloaded (cardca's `module::KEPT`), so the string
/// never is either. An equal string is reused rather than leaked again.
static INIT_STRINGS: Mutex<Vec<&'static CStr>> = Mutex::new(Vec::new());

/// A NUL-terminated copy of `text` that lives until the process exits.
fn kept_c_string(text: &str) -> Result<&'static CStr, NulError> {
    let owned = CString::new(text)?;
    // A poisoned lock only means another thread panicked while pushing.
    let mut kept = INIT_STRINGS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(same) = kept.iter().find(|k| **k == owned.as_c_str()) {
        return Ok(same);
    }
    let leaked: &'static CStr = Box::leak(owned.into_boxed_c_str());
    kept.push(leaked);
    Ok(leaked)
}

/// C_Initialize's arguments: `flags`, and `init` (when given) as the
/// NUL-terminated string in `pReserved`. Fails only when `init` holds a
/// NUL byte, which a C string cannot carry.
pub fn initialize_args(flags: CInitializeFlags, init: Option<&str>) -> Result<CInitializeArgs, NulError> {
    let Some(text) = init else { return Ok(CInitializeArgs::new(flags)) };
    let kept = kept_c_string(text)?;
    // The module reads the string through a `void *`; it never writes it
    // (NSS parses it, others ignore it).
    let pointer = NonNull::from(kept).cast::<c_void>();
    // SAFETY: `new_with_reserved` asks that the pointer be valid for as
    // long as the module may use it and point to what the module expects:
    // it points to a NUL-terminated string that is never freed (leaked
    // above), which is what NSS and p11-kit's `x-init-reserved` pass.
    Ok(unsafe { CInitializeArgs::new_with_reserved(flags, pointer) })
}

/// Why [`token_info_without_clock`] could not read the token.
#[derive(Debug)]
pub enum Error {
    /// No library at this path is loaded in the process, so cryptoki never
    /// initialised it: it is refused rather than loaded and called
    /// uninitialised.
    NotLoaded(PathBuf),
    /// What cryptoki would have said: a module's return code as a value
    /// (`Pkcs11`), a missing symbol or table entry, or token info that does
    /// not convert.
    Cryptoki(cryptoki::error::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotLoaded(path) => write!(f, "{} is not loaded in this process", path.display()),
            Error::Cryptoki(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<cryptoki::error::Error> for Error {
    fn from(e: cryptoki::error::Error) -> Error {
        Error::Cryptoki(e)
    }
}

/// The signature of C_GetFunctionList, PKCS#11 section 5.2.
type GetFunctionList = unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV;

/// The token info of `slot` as the module at `module` reports it, with
/// CKF_CLOCK_ON_TOKEN cleared, so a clock cryptoki cannot parse reads as
/// no clock. `module` must be the path of a PKCS#11 module that cryptoki
/// loaded and initialised in this process (cardca passes only those, from
/// its `module::KEPT`): it is only looked up (RTLD_NOLOAD), never loaded,
/// so the function table called here is the one cryptoki calls. A path
/// that names no loaded library is refused; one that names a loaded
/// library that is no PKCS#11 module is trusted to be one, as cryptoki
/// trusted it when it loaded it.
pub fn token_info_without_clock(module: &Path, slot: Slot) -> Result<TokenInfo, Error> {
    // SAFETY: `open` is unsafe because loading a library runs its
    // initialisers. With RTLD_NOLOAD nothing is loaded: dlopen either
    // returns another reference to the library already in the process
    // (whose initialisers ran when cryptoki loaded it) or fails.
    let opened = unsafe { Library::open(Some(module), libc::RTLD_NOLOAD | RTLD_LAZY) };
    // Never closed: the reference is only an extra one, but the module's
    // code must stay mapped while any thread may run it (cardca's
    // `module::KEPT`), and not closing it is the cheapest certainty.
    let lib = ManuallyDrop::new(opened.map_err(|_| Error::NotLoaded(module.to_path_buf()))?);
    // SAFETY: a PKCS#11 module (see above) exports C_GetFunctionList with
    // the signature `GetFunctionList` gives it, the one cryptoki called it
    // with, so the symbol has the right type; it borrows `lib`, which
    // stays open.
    let found: Result<Symbol<GetFunctionList>, _> = unsafe { lib.get(b"C_GetFunctionList\0") };
    // cryptoki's own error for a library without it.
    let get_function_list = found.map_err(|_| cryptoki::error::Error::MissingSymbol("C_GetFunctionList"))?;
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: C_GetFunctionList (section 5.2) writes a pointer to a table
    // the module owns into `list`, a valid place for one, and may be
    // called at any time, initialised or not.
    let rv = unsafe { get_function_list(&mut list) };
    Rv::from(rv).into_result(Function::GetFunctionList)?;
    let table = NonNull::new(list).ok_or(cryptoki::error::Error::NullFunctionPointer)?;
    // SAFETY: `table` is non-null and points to the module's
    // CK_FUNCTION_LIST, which the module keeps valid and unchanged while
    // it is loaded: for the whole process (see above).
    let functions: &CK_FUNCTION_LIST = unsafe { table.as_ref() };
    let get_token_info = functions.C_GetTokenInfo.ok_or(cryptoki::error::Error::NullFunctionPointer)?;
    let mut raw = CK_TOKEN_INFO::default();
    // SAFETY: the module is initialised (cryptoki initialised it and has
    // just called this function for `slot`); `raw` is a CK_TOKEN_INFO the
    // module may fill in completely, and it writes nothing else.
    let rv = unsafe { get_token_info(slot.id(), &mut raw) };
    // The return code as a value: cardca skips a token pulled out here
    // (CKR_TOKEN_NOT_PRESENT) as it does on cryptoki's path.
    Rv::from(rv).into_result(Function::GetTokenInfo)?;
    raw.flags &= !CKF_CLOCK_ON_TOKEN;
    // cryptoki's own conversion, so every other field reads exactly as
    // `get_token_info` would have read it. The impl is public but
    // `#[doc(hidden)]` (0.12.1 and upstream as of 2026-08): a cryptoki
    // upgrade that drops it fails to compile here, loudly.
    Ok(TokenInfo::try_from(raw)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_strings_are_kept_and_shared() {
        let a = kept_c_string("configdir='sql:/x' flags=").expect("kept");
        let b = kept_c_string("configdir='sql:/x' flags=").expect("kept");
        assert_eq!(a.as_ptr(), b.as_ptr(), "an equal string is not leaked twice");
        assert_eq!(a.to_bytes(), b"configdir='sql:/x' flags=");
        assert!(kept_c_string("a\0b").is_err());
        assert!(initialize_args(CInitializeFlags::OS_LOCKING_OK, Some("x\0")).is_err());
        assert!(initialize_args(CInitializeFlags::OS_LOCKING_OK, None).is_ok());
    }

    fn slot() -> Slot {
        Slot::try_from(0u64).expect("slot 0")
    }

    /// A module no one loaded is refused, not loaded and run uninitialised.
    #[test]
    fn a_module_not_loaded_is_refused() {
        let path = Path::new("/nonexistent/libcardca-not-a-module.so");
        match token_info_without_clock(path, slot()) {
            Err(Error::NotLoaded(p)) => assert_eq!(p, path),
            other => panic!("expected NotLoaded, got {other:?}"),
        }
    }

    /// A library that exists but that no one loaded (libresolv ships with
    /// every glibc; nothing in this test binary loads it) is refused too,
    /// not loaded: without RTLD_NOLOAD it would be found and loaded.
    #[test]
    #[cfg(target_env = "gnu")]
    fn an_existing_library_not_loaded_is_refused() {
        for _ in 0..2 {
            match token_info_without_clock(Path::new("libresolv.so.2"), slot()) {
                Err(Error::NotLoaded(_)) => {}
                other => panic!("expected NotLoaded, got {other:?}"),
            }
        }
    }

    /// RTLD_NOLOAD finds a library the process has loaded (every test
    /// links libc); one that is no PKCS#11 module fails as cryptoki fails.
    #[test]
    #[cfg(target_env = "gnu")]
    fn a_loaded_library_is_found_and_must_be_a_module() {
        match token_info_without_clock(Path::new("libc.so.6"), slot()) {
            Err(Error::Cryptoki(cryptoki::error::Error::MissingSymbol("C_GetFunctionList"))) => {}
            other => panic!("expected a missing C_GetFunctionList, got {other:?}"),
        }
    }
}
