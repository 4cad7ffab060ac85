//! A PKCS#11 module for tests that wraps a real one (SoftHSM2) and injects
//! the faults a real token shows only rarely, so the golden cases can show
//! what cardca promises when they happen.
//!
//! `C_GetFunctionList` loads the module named by `FAULTY_REAL_MODULE`,
//! copies its function table and replaces a few entries with the wrappers
//! below; every other call goes straight to the real module. The faults
//! come from environment variables, read once:
//!
//! | variable | effect |
//! |---|---|
//! | `FAULTY_PIN_FLAGS` | `count-low`, `final-try`, `locked` (comma list): the CKF_USER_PIN_* flags C_GetTokenInfo reports |
//! | `FAULTY_UTC_TIME` | C_GetTokenInfo reports CKF_CLOCK_ON_TOKEN and this utcTime (16 bytes, padded with spaces) |
//! | `FAULTY_LOGIN` | `[so:\|user:]CKR_NAME`: what C_Login returns without asking the real module (for that user type only, with a prefix) |
//! | `FAULTY_INITIALIZE` | a CKR name C_Initialize returns when the caller asks for OS locking |
//! | `FAULTY_SIGN_FAIL` | `N:CKR_NAME`: the Nth C_Sign returns that code |
//! | `FAULTY_SIGN_FLIP` | `N`: the Nth signature comes back with one bit flipped |
//! | `FAULTY_SIGN_DELAY_MS` | every C_Sign waits this long first |
//! | `FAULTY_CREATE_OBJECT_FAIL` | `N:CKR_NAME`: the Nth C_CreateObject returns that code, creating nothing |
//! | `FAULTY_HIDE_MECHANISMS` | CKM names or numbers left out of C_GetMechanismList and refused (CKR_MECHANISM_INVALID) by C_SignInit and C_GenerateKeyPair |
//! | `FAULTY_KEYGEN_REFUSE_ATTR` | `CKA_NAME[,CKA_NAME...][:CKR_NAME]`: C_GenerateKeyPair returns that code (default CKR_GENERAL_ERROR, as tpm2-pkcs11 does for CKA_VERIFY) when the public template holds one of these attributes |
//! | `FAULTY_LOCAL_FALSE` | `1`: C_GetAttributeValue reads CKA_LOCAL as FALSE on every object (NSS softokn on the keys it generates) |
//! | `FAULTY_DUPLICATE_SLOTS` | `1`: C_GetSlotList lists every slot twice (tpm2-pkcs11 lists one id twice) |
//! | `FAULTY_INIT_TOKEN_SO_PIN` | C_InitToken returns CKR_PIN_INCORRECT for any other SO PIN: a token that checks a factory SO PIN (openCryptoki's) |
//! | `FAULTY_REINIT` | a CKR name C_InitToken returns for a token that is initialised already (tpm2-pkcs11: CKR_ARGUMENTS_BAD) |
//! | `FAULTY_LOG` | a file that gets one line per wrapped call, so a test can count logins |
//!
//! "The Nth C_Sign" counts the calls that produce a signature (not the
//! length queries with a NULL buffer) in the whole process, from 1; "the
//! Nth C_CreateObject" counts every call in the process, from 1.
//! A variable that does not parse makes every call return
//! CKR_GENERAL_ERROR and says why on stderr: a test must not pass because
//! its fault was silently ignored.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use cryptoki_sys::*;

/// What the environment asks for.
#[derive(Default)]
struct Faults {
    pin_flags: CK_FLAGS,
    utc_time: Option<[u8; 16]>,
    login: Option<(Option<CK_USER_TYPE>, CK_RV)>,
    keygen_refuse: Vec<CK_ATTRIBUTE_TYPE>,
    keygen_refuse_rv: CK_RV,
    local_false: bool,
    duplicate_slots: bool,
    init_token_so_pin: Option<Vec<u8>>,
    reinit: Option<CK_RV>,
    initialize: Option<CK_RV>,
    sign_fail: Option<(u64, CK_RV)>,
    create_object_fail: Option<(u64, CK_RV)>,
    sign_flip: Option<u64>,
    sign_delay: Option<Duration>,
    hidden: Vec<CK_MECHANISM_TYPE>,
    log: Option<String>,
}

/// The real module's table and ours. The real library is never unloaded:
/// its functions are called until the process ends.
struct Loaded {
    real: CK_FUNCTION_LIST,
    ours: CK_FUNCTION_LIST,
    faults: Faults,
}

static LOADED: OnceLock<Result<Loaded, String>> = OnceLock::new();
static SIGNATURES: AtomicU64 = AtomicU64::new(0);
static CREATED: AtomicU64 = AtomicU64::new(0);

const RETURN_CODES: &[(&str, CK_RV)] = &[
    ("CKR_OK", CKR_OK),
    ("CKR_GENERAL_ERROR", CKR_GENERAL_ERROR),
    ("CKR_DEVICE_ERROR", CKR_DEVICE_ERROR),
    ("CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED),
    ("CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID),
    ("CKR_PIN_LOCKED", CKR_PIN_LOCKED),
    ("CKR_PIN_INCORRECT", CKR_PIN_INCORRECT),
    ("CKR_CANT_LOCK", CKR_CANT_LOCK),
    ("CKR_ARGUMENTS_BAD", CKR_ARGUMENTS_BAD),
    ("CKR_USER_TYPE_INVALID", CKR_USER_TYPE_INVALID),
    ("CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN),
    ("CKR_TEMPLATE_INCONSISTENT", CKR_TEMPLATE_INCONSISTENT),
    ("CKR_ATTRIBUTE_VALUE_INVALID", CKR_ATTRIBUTE_VALUE_INVALID),
    ("CKR_ATTRIBUTE_TYPE_INVALID", CKR_ATTRIBUTE_TYPE_INVALID),
];

const ATTRIBUTES: &[(&str, CK_ATTRIBUTE_TYPE)] = &[
    ("CKA_TOKEN", CKA_TOKEN),
    ("CKA_PRIVATE", CKA_PRIVATE),
    ("CKA_LABEL", CKA_LABEL),
    ("CKA_ID", CKA_ID),
    ("CKA_VERIFY", CKA_VERIFY),
    ("CKA_VERIFY_RECOVER", CKA_VERIFY_RECOVER),
    ("CKA_ENCRYPT", CKA_ENCRYPT),
    ("CKA_WRAP", CKA_WRAP),
    ("CKA_DERIVE", CKA_DERIVE),
    ("CKA_MODULUS_BITS", CKA_MODULUS_BITS),
    ("CKA_PUBLIC_EXPONENT", CKA_PUBLIC_EXPONENT),
    ("CKA_EC_PARAMS", CKA_EC_PARAMS),
];

const MECHANISMS: &[(&str, CK_MECHANISM_TYPE)] = &[
    ("CKM_RSA_PKCS_KEY_PAIR_GEN", CKM_RSA_PKCS_KEY_PAIR_GEN),
    ("CKM_RSA_PKCS", CKM_RSA_PKCS),
    ("CKM_RSA_PKCS_PSS", CKM_RSA_PKCS_PSS),
    ("CKM_SHA256_RSA_PKCS", CKM_SHA256_RSA_PKCS),
    ("CKM_SHA384_RSA_PKCS", CKM_SHA384_RSA_PKCS),
    ("CKM_SHA512_RSA_PKCS", CKM_SHA512_RSA_PKCS),
    ("CKM_SHA256_RSA_PKCS_PSS", CKM_SHA256_RSA_PKCS_PSS),
    ("CKM_SHA384_RSA_PKCS_PSS", CKM_SHA384_RSA_PKCS_PSS),
    ("CKM_SHA512_RSA_PKCS_PSS", CKM_SHA512_RSA_PKCS_PSS),
    ("CKM_EC_KEY_PAIR_GEN", CKM_EC_KEY_PAIR_GEN),
    ("CKM_ECDSA", CKM_ECDSA),
    ("CKM_ECDSA_SHA256", CKM_ECDSA_SHA256),
    ("CKM_ECDSA_SHA384", CKM_ECDSA_SHA384),
    ("CKM_ECDSA_SHA512", CKM_ECDSA_SHA512),
    ("CKM_EC_EDWARDS_KEY_PAIR_GEN", CKM_EC_EDWARDS_KEY_PAIR_GEN),
    ("CKM_EDDSA", CKM_EDDSA),
];

fn lookup<T: Copy>(table: &[(&str, T)], name: &str, what: &str) -> Result<T, String> {
    table.iter().find(|(n, _)| *n == name).map(|&(_, v)| v).ok_or_else(|| format!("unknown {what} {name:?}"))
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A switch: unset, or `1`; anything else is a mistake in the test.
fn flag(name: &str) -> Result<bool, String> {
    match var(name).as_deref() {
        None => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(format!("{name}: {other:?} is not 1")),
    }
}

fn number(name: &str, text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("{name}: {text:?} is not a number"))
}

impl Faults {
    fn from_env() -> Result<Faults, String> {
        let mut f = Faults { log: var("FAULTY_LOG"), ..Faults::default() };
        for flag in var("FAULTY_PIN_FLAGS").iter().flat_map(|v| v.split(',')) {
            f.pin_flags |= match flag {
                "count-low" => CKF_USER_PIN_COUNT_LOW,
                "final-try" => CKF_USER_PIN_FINAL_TRY,
                "locked" => CKF_USER_PIN_LOCKED,
                _ => return Err(format!("FAULTY_PIN_FLAGS: unknown flag {flag:?}")),
            };
        }
        if let Some(t) = var("FAULTY_UTC_TIME") {
            if t.len() > 16 {
                return Err("FAULTY_UTC_TIME: longer than 16 bytes".into());
            }
            let mut time = [b' '; 16];
            time[..t.len()].copy_from_slice(t.as_bytes());
            f.utc_time = Some(time);
        }
        if let Some(v) = var("FAULTY_LOGIN") {
            let (user, name) = match v.split_once(':') {
                Some(("so", name)) => (Some(CKU_SO), name),
                Some(("user", name)) => (Some(CKU_USER), name),
                Some((other, _)) => {
                    return Err(format!("FAULTY_LOGIN: unknown user type {other:?} (so, user)"))
                }
                None => (None, v.as_str()),
            };
            f.login = Some((
                user,
                lookup(RETURN_CODES, name, "return code").map_err(|e| format!("FAULTY_LOGIN: {e}"))?,
            ));
        }
        if let Some(v) = var("FAULTY_KEYGEN_REFUSE_ATTR") {
            let (names, rv) = match v.split_once(':') {
                Some((names, rv)) => (
                    names,
                    lookup(RETURN_CODES, rv, "return code")
                        .map_err(|e| format!("FAULTY_KEYGEN_REFUSE_ATTR: {e}"))?,
                ),
                None => (v.as_str(), CKR_GENERAL_ERROR),
            };
            for name in names.split(',') {
                f.keygen_refuse.push(
                    lookup(ATTRIBUTES, name, "attribute")
                        .map_err(|e| format!("FAULTY_KEYGEN_REFUSE_ATTR: {e}"))?,
                );
            }
            f.keygen_refuse_rv = rv;
        }
        f.local_false = flag("FAULTY_LOCAL_FALSE")?;
        f.duplicate_slots = flag("FAULTY_DUPLICATE_SLOTS")?;
        f.init_token_so_pin = var("FAULTY_INIT_TOKEN_SO_PIN").map(String::into_bytes);
        f.reinit = var("FAULTY_REINIT")
            .map(|v| lookup(RETURN_CODES, &v, "return code").map_err(|e| format!("FAULTY_REINIT: {e}")))
            .transpose()?;
        f.initialize =
            var("FAULTY_INITIALIZE").map(|v| lookup(RETURN_CODES, &v, "return code")).transpose()?;
        if let Some(v) = var("FAULTY_SIGN_FAIL") {
            let (n, rv) = v.split_once(':').ok_or("FAULTY_SIGN_FAIL: want N:CKR_NAME")?;
            f.sign_fail = Some((number("FAULTY_SIGN_FAIL", n)?, lookup(RETURN_CODES, rv, "return code")?));
        }
        if let Some(v) = var("FAULTY_CREATE_OBJECT_FAIL") {
            let (n, rv) = v.split_once(':').ok_or("FAULTY_CREATE_OBJECT_FAIL: want N:CKR_NAME")?;
            f.create_object_fail = Some((
                number("FAULTY_CREATE_OBJECT_FAIL", n)?,
                lookup(RETURN_CODES, rv, "return code")
                    .map_err(|e| format!("FAULTY_CREATE_OBJECT_FAIL: {e}"))?,
            ));
        }
        f.sign_flip = var("FAULTY_SIGN_FLIP").map(|n| number("FAULTY_SIGN_FLIP", &n)).transpose()?;
        f.sign_delay = var("FAULTY_SIGN_DELAY_MS")
            .map(|n| number("FAULTY_SIGN_DELAY_MS", &n).map(Duration::from_millis))
            .transpose()?;
        for m in var("FAULTY_HIDE_MECHANISMS").iter().flat_map(|v| v.split(',')) {
            let parsed = match m.strip_prefix("0x") {
                Some(hex) => CK_MECHANISM_TYPE::from_str_radix(hex, 16).map_err(|e| format!("{m:?}: {e}")),
                None => lookup(MECHANISMS, m, "mechanism"),
            };
            f.hidden.push(parsed.map_err(|e| format!("FAULTY_HIDE_MECHANISMS: {e}"))?);
        }
        Ok(f)
    }

    fn log(&self, line: std::fmt::Arguments) {
        if let Some(path) = &self.log {
            if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
                let _ = writeln!(file, "{line}");
            }
        }
    }
}

fn load() -> Result<Loaded, String> {
    let faults = Faults::from_env()?;
    let path = var("FAULTY_REAL_MODULE").ok_or("FAULTY_REAL_MODULE is not set")?;
    // SAFETY: loading a PKCS#11 module runs its initialisers; the module
    // the test names is a real one (SoftHSM2).
    let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| format!("{path}: {e}"))?;
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: C_GetFunctionList has this signature in every PKCS#11
    // module, and fills in a pointer to a table the module owns.
    let rv = unsafe {
        let get: libloading::Symbol<unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV> =
            lib.get(b"C_GetFunctionList\0").map_err(|e| format!("{path}: {e}"))?;
        get(&mut list)
    };
    if rv != CKR_OK || list.is_null() {
        return Err(format!("{path}: C_GetFunctionList returned {rv:#x}"));
    }
    // SAFETY: the module returned a valid table, which stays valid while
    // the library is loaded, that is for ever (forgotten below).
    let real = unsafe { *list };
    std::mem::forget(lib);
    let mut ours = real;
    ours.C_GetFunctionList = Some(C_GetFunctionList);
    ours.C_Initialize = Some(initialize);
    ours.C_Finalize = Some(finalize);
    ours.C_GetTokenInfo = Some(get_token_info);
    ours.C_GetMechanismList = Some(get_mechanism_list);
    ours.C_Login = Some(login);
    ours.C_SignInit = Some(sign_init);
    ours.C_Sign = Some(sign);
    ours.C_GenerateKeyPair = Some(generate_key_pair);
    ours.C_GetAttributeValue = Some(get_attribute_value);
    ours.C_GetSlotList = Some(get_slot_list);
    ours.C_InitToken = Some(init_token);
    ours.C_CreateObject = Some(create_object);
    Ok(Loaded { real, ours, faults })
}

fn loaded() -> Option<&'static Loaded> {
    match LOADED.get_or_init(load) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("faulty-module: {e}");
            None
        }
    }
}

/// Calls the real module's function `$f`, or fails as a broken module.
macro_rules! real {
    ($l:expr, $f:ident ( $($arg:expr),* )) => {
        match $l.real.$f {
            // SAFETY: the arguments are the caller's, passed on unchanged
            // to the function the real module put in its table.
            Some(f) => unsafe { f($($arg),*) },
            None => CKR_FUNCTION_NOT_SUPPORTED,
        }
    };
}

/// # Safety
/// As PKCS#11 section 5.2: `list` points to writable memory for a pointer.
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: *mut *mut CK_FUNCTION_LIST) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    if list.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    // The callers only read the table (it is `CK_FUNCTION_LIST_PTR` for
    // historical reasons), so handing out the shared one is sound.
    // SAFETY: checked non-null above.
    unsafe { *list = &l.ours as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST };
    CKR_OK
}

unsafe extern "C" fn initialize(args: CK_VOID_PTR) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    // SAFETY: PKCS#11 says `args` is NULL or a CK_C_INITIALIZE_ARGS.
    let init = unsafe { (args as *const CK_C_INITIALIZE_ARGS).as_ref() };
    let (flags, reserved) = init.map_or((0, std::ptr::null_mut()), |a| (a.flags, a.pReserved));
    let reserved_text = if reserved.is_null() {
        "none".to_string()
    } else {
        // SAFETY: an init string in pReserved is NUL-terminated (NSS's
        // convention, the one cardca follows).
        unsafe { std::ffi::CStr::from_ptr(reserved as *const std::ffi::c_char) }
            .to_string_lossy()
            .into_owned()
    };
    l.faults.log(format_args!("C_Initialize flags={flags:#x} reserved={reserved_text}"));
    if let Some(rv) = l.faults.initialize.filter(|_| flags & CKF_OS_LOCKING_OK != 0) {
        return rv;
    }
    // The real module (SoftHSM2) would misread an init string meant for
    // another module: it gets the arguments without it.
    match init {
        Some(a) if !reserved.is_null() => {
            let mut plain = *a;
            plain.pReserved = std::ptr::null_mut();
            real!(l, C_Initialize(&mut plain as *mut CK_C_INITIALIZE_ARGS as CK_VOID_PTR))
        }
        _ => real!(l, C_Initialize(args)),
    }
}

unsafe extern "C" fn finalize(reserved: CK_VOID_PTR) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    l.faults.log(format_args!("C_Finalize"));
    real!(l, C_Finalize(reserved))
}

unsafe extern "C" fn get_token_info(slot: CK_SLOT_ID, info: *mut CK_TOKEN_INFO) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    let rv = real!(l, C_GetTokenInfo(slot, info));
    // SAFETY: the real module filled it in; the caller owns it.
    if let (CKR_OK, Some(info)) = (rv, unsafe { info.as_mut() }) {
        info.flags |= l.faults.pin_flags;
        if let Some(time) = l.faults.utc_time {
            info.flags |= CKF_CLOCK_ON_TOKEN;
            info.utcTime = time;
        }
    }
    rv
}

unsafe extern "C" fn get_mechanism_list(
    slot: CK_SLOT_ID,
    list: *mut CK_MECHANISM_TYPE,
    count: *mut CK_ULONG,
) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    if l.faults.hidden.is_empty() {
        return real!(l, C_GetMechanismList(slot, list, count));
    }
    if count.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    // The real list in full, then filtered, then the PKCS#11 section 5.2
    // buffer convention on the filtered list.
    let mut n: CK_ULONG = 0;
    let rv = real!(l, C_GetMechanismList(slot, std::ptr::null_mut(), &mut n));
    if rv != CKR_OK {
        return rv;
    }
    let mut all = vec![0 as CK_MECHANISM_TYPE; n as usize];
    let rv = real!(l, C_GetMechanismList(slot, all.as_mut_ptr(), &mut n));
    if rv != CKR_OK {
        return rv;
    }
    all.truncate(n as usize);
    all.retain(|m| !l.faults.hidden.contains(m));
    // SAFETY: `count` checked non-null above; `list` is the caller's.
    unsafe { hand_out(&all, list, count) }
}

/// PKCS#11 section 5.2's buffer convention for a list the wrapper made:
/// the length always, the items when `list` is given and has room.
///
/// # Safety
/// `count` is non-null and valid; `list` is null or has room for `*count`
/// items, as the caller of the wrapped function promised.
unsafe fn hand_out<T: Copy>(items: &[T], list: *mut T, count: *mut CK_ULONG) -> CK_RV {
    // SAFETY: the caller's promise above.
    let room = unsafe { *count } as usize;
    // SAFETY: as above.
    unsafe { *count = items.len() as CK_ULONG };
    if list.is_null() {
        return CKR_OK;
    }
    if room < items.len() {
        return CKR_BUFFER_TOO_SMALL;
    }
    // SAFETY: the caller said `list` has room for `room` entries.
    unsafe { std::ptr::copy_nonoverlapping(items.as_ptr(), list, items.len()) };
    CKR_OK
}

unsafe extern "C" fn login(
    session: CK_SESSION_HANDLE,
    user: CK_USER_TYPE,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    l.faults.log(format_args!("C_Login user={user}"));
    match l.faults.login {
        Some((who, rv)) if who.is_none_or(|w| w == user) => rv,
        _ => real!(l, C_Login(session, user, pin, len)),
    }
}

unsafe extern "C" fn get_slot_list(present: CK_BBOOL, list: *mut CK_SLOT_ID, count: *mut CK_ULONG) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    if !l.faults.duplicate_slots {
        return real!(l, C_GetSlotList(present, list, count));
    }
    if count.is_null() {
        return CKR_ARGUMENTS_BAD;
    }
    let mut n: CK_ULONG = 0;
    let rv = real!(l, C_GetSlotList(present, std::ptr::null_mut(), &mut n));
    if rv != CKR_OK {
        return rv;
    }
    let mut real = vec![0 as CK_SLOT_ID; n as usize];
    let rv = real!(l, C_GetSlotList(present, real.as_mut_ptr(), &mut n));
    if rv != CKR_OK {
        return rv;
    }
    real.truncate(n as usize);
    // Each id twice, the second copy after all the first ones.
    let doubled: Vec<CK_SLOT_ID> = real.iter().chain(real.iter()).copied().collect();
    // SAFETY: `count` checked non-null above; `list` is the caller's.
    unsafe { hand_out(&doubled, list, count) }
}

unsafe extern "C" fn init_token(
    slot: CK_SLOT_ID,
    pin: *mut CK_UTF8CHAR,
    len: CK_ULONG,
    label: *mut CK_UTF8CHAR,
) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    l.faults.log(format_args!("C_InitToken"));
    if let Some(rv) = l.faults.reinit {
        let mut info = CK_TOKEN_INFO::default();
        if real!(l, C_GetTokenInfo(slot, &mut info)) == CKR_OK && info.flags & CKF_TOKEN_INITIALIZED != 0 {
            return rv;
        }
    }
    if let Some(factory) = &l.faults.init_token_so_pin {
        let given = if pin.is_null() {
            &[][..]
        } else {
            // SAFETY: PKCS#11 says `pin` points to `len` bytes.
            unsafe { std::slice::from_raw_parts(pin, len as usize) }
        };
        if given != factory.as_slice() {
            return CKR_PIN_INCORRECT;
        }
    }
    real!(l, C_InitToken(slot, pin, len, label))
}

unsafe extern "C" fn get_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    let rv = real!(l, C_GetAttributeValue(session, object, template, count));
    if !l.faults.local_false || template.is_null() {
        return rv;
    }
    // SAFETY: the caller passes `count` attributes at `template`.
    let attrs = unsafe { std::slice::from_raw_parts_mut(template, count as usize) };
    for a in attrs.iter_mut().filter(|a| a.type_ == CKA_LOCAL) {
        // Only a value the real module wrote (not a length query, not an
        // attribute it does not have) is turned FALSE.
        if !a.pValue.is_null() && a.ulValueLen == 1 {
            // SAFETY: the real module wrote one CK_BBOOL there.
            unsafe { *(a.pValue as *mut CK_BBOOL) = CK_FALSE };
        }
    }
    rv
}

/// A hidden mechanism is one the token does not have: refused as a token
/// without it would refuse it.
fn hidden(l: &Loaded, mechanism: *const CK_MECHANISM, call: &str) -> bool {
    // SAFETY: the caller passes NULL or a valid CK_MECHANISM.
    let Some(m) = (unsafe { mechanism.as_ref() }) else { return false };
    let hide = l.faults.hidden.contains(&m.mechanism);
    if hide {
        l.faults.log(format_args!("{call} hidden mechanism {:#x}", m.mechanism));
    }
    hide
}

unsafe extern "C" fn sign_init(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    if hidden(l, mechanism, "C_SignInit") {
        return CKR_MECHANISM_INVALID;
    }
    real!(l, C_SignInit(session, mechanism, key))
}

unsafe extern "C" fn generate_key_pair(
    session: CK_SESSION_HANDLE,
    mechanism: *mut CK_MECHANISM,
    public: *mut CK_ATTRIBUTE,
    public_count: CK_ULONG,
    private: *mut CK_ATTRIBUTE,
    private_count: CK_ULONG,
    public_key: *mut CK_OBJECT_HANDLE,
    private_key: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    if hidden(l, mechanism, "C_GenerateKeyPair") {
        return CKR_MECHANISM_INVALID;
    }
    let refused = if public.is_null() {
        None
    } else {
        // SAFETY: the caller passes `public_count` attributes at `public`.
        let template = unsafe { std::slice::from_raw_parts(public, public_count as usize) };
        template.iter().find(|a| l.faults.keygen_refuse.contains(&a.type_)).map(|a| a.type_)
    };
    l.faults.log(format_args!("C_GenerateKeyPair public attributes={public_count}"));
    if let Some(attr) = refused {
        l.faults.log(format_args!("C_GenerateKeyPair refused attribute {attr:#x}"));
        return l.faults.keygen_refuse_rv;
    }
    real!(
        l,
        C_GenerateKeyPair(
            session,
            mechanism,
            public,
            public_count,
            private,
            private_count,
            public_key,
            private_key
        )
    )
}

unsafe extern "C" fn sign(
    session: CK_SESSION_HANDLE,
    data: *mut CK_BYTE,
    data_len: CK_ULONG,
    signature: *mut CK_BYTE,
    signature_len: *mut CK_ULONG,
) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    if signature.is_null() {
        // A length query: not a signature, not counted.
        return real!(l, C_Sign(session, data, data_len, signature, signature_len));
    }
    let n = SIGNATURES.fetch_add(1, Ordering::SeqCst) + 1;
    l.faults.log(format_args!("C_Sign {n}"));
    if let Some(delay) = l.faults.sign_delay {
        std::thread::sleep(delay);
    }
    if let Some((_, rv)) = l.faults.sign_fail.filter(|&(at, _)| at == n) {
        return rv;
    }
    let rv = real!(l, C_Sign(session, data, data_len, signature, signature_len));
    if rv == CKR_OK && l.faults.sign_flip == Some(n) {
        // SAFETY: the real module wrote at least one byte there (an empty
        // signature is left alone).
        unsafe {
            if *signature_len > 0 {
                *signature.add(*signature_len as usize / 2) ^= 0x01;
            }
        }
    }
    rv
}

unsafe extern "C" fn create_object(
    session: CK_SESSION_HANDLE,
    template: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    object: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    let Some(l) = loaded() else { return CKR_GENERAL_ERROR };
    let n = CREATED.fetch_add(1, Ordering::SeqCst) + 1;
    l.faults.log(format_args!("C_CreateObject {n}"));
    if let Some((_, rv)) = l.faults.create_object_fail.filter(|&(at, _)| at == n) {
        return rv;
    }
    real!(l, C_CreateObject(session, template, count, object))
}
