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
//! The workspace denies unsafe code; this module alone allows it, and every
//! unsafe block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{c_void, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki_sys::{CKF_CLOCK_ON_TOKEN, CKR_OK, CK_FUNCTION_LIST, CK_RV, CK_TOKEN_INFO};

use crate::error::{Error, Result};

/// Every init string handed to a module, kept for the life of the process:
/// PKCS#11 does not say how long a module may keep `pReserved`, and the
/// module itself is never unloaded (`token::KEPT`), so the string never is
/// either. An equal string is reused rather than leaked again.
static INIT_STRINGS: Mutex<Vec<&'static CStr>> = Mutex::new(Vec::new());

/// A NUL-terminated copy of `text` that lives until the process exits.
fn kept_c_string(text: &str) -> Result<&'static CStr> {
    let owned =
        CString::new(text).map_err(|_| Error::new("the module's init arguments contain a NUL byte"))?;
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
/// NUL-terminated string in `pReserved`.
pub fn initialize_args(flags: CInitializeFlags, init: Option<&str>) -> Result<CInitializeArgs> {
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

/// The signature of C_GetFunctionList, PKCS#11 section 5.2.
type GetFunctionList = unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV;

/// The token info of `slot` as the module at `module` reports it, with
/// CKF_CLOCK_ON_TOKEN cleared, so a clock cryptoki cannot parse reads as
/// no clock. The module is loaded already (by `token::load`): opening it
/// again only takes another reference to the same library, whose
/// function table is the one cryptoki calls.
pub fn token_info_without_clock(module: &Path, slot: Slot) -> Result<TokenInfo> {
    let fail = |what: String| Error::new(format!("reading the token in slot {} directly: {what}", slot.id()));
    // SAFETY: loading a library runs its initialisers; this is the module
    // that is loaded and initialised in this process already, so they have
    // run and nothing new happens.
    let lib = unsafe { libloading::Library::new(module) }.map_err(|e| fail(e.to_string()))?;
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: every PKCS#11 module exports C_GetFunctionList with this
    // signature; it writes a pointer to a table the module owns into
    // `list`, a valid place for one.
    let rv = unsafe {
        let get: libloading::Symbol<GetFunctionList> =
            lib.get(b"C_GetFunctionList\0").map_err(|e| fail(e.to_string()))?;
        get(&mut list)
    };
    if rv != CKR_OK || list.is_null() {
        return Err(fail(format!("C_GetFunctionList returned {rv:#x}")));
    }
    // SAFETY: checked non-null; the table stays valid while the library is
    // loaded, which is for the whole process (see below).
    let get_token_info =
        unsafe { (*list).C_GetTokenInfo }.ok_or_else(|| fail("the module has no C_GetTokenInfo".into()))?;
    let mut raw = CK_TOKEN_INFO::default();
    // SAFETY: the module was initialised by token::load; `raw` is a
    // CK_TOKEN_INFO the module may fill in completely.
    let rv = unsafe { get_token_info(slot.id(), &mut raw) };
    // Dropping the handle would only take back our extra reference, but
    // the module's code must stay mapped while any thread may run it
    // (token::KEPT); the cheapest certainty is to keep this one too.
    std::mem::forget(lib);
    if rv != CKR_OK {
        return Err(fail(format!("C_GetTokenInfo returned {rv:#x}")));
    }
    raw.flags &= !CKF_CLOCK_ON_TOKEN;
    // cryptoki's own conversion, so every other field reads exactly as
    // `get_token_info` would have read it. The impl is public but
    // `#[doc(hidden)]` (0.12.1 and upstream as of 2026-08): a cryptoki
    // upgrade that drops it fails to compile here, loudly.
    TokenInfo::try_from(raw)
        .map_err(|e| Error::from(e).context(format!("reading the token in slot {}", slot.id())))
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
}
