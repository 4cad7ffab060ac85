//! Loading the PKCS#11 module: which one (flags, URI, environment, the
//! system's defaults), its init arguments, loading and initialising it,
//! keeping it loaded until the process exits, whether it may be called from
//! several threads, and loading it ahead of time ([`Preload`]).
//!
//! The one door to `cardca-ffi`, the unsafe code cryptoki needs help with:
//! the init string, and token info read from the module directly.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::slot::{Slot, TokenInfo};

use crate::error::{Error, Result};
use crate::lock::{lock_module, Lock};
use crate::uri::Uri;

/// Where p11-kit's proxy module and SoftHSM2 live on Debian (multiarch),
/// Fedora and /usr/local builds.
const LIB_DIRS: &[&str] =
    &["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"];

/// The module to load: `--module`, the URI's `module-path`, `$CARDCA_MODULE`,
/// p11-kit's proxy (every module registered with p11-kit), SoftHSM2.
pub fn module_path(explicit: Option<&Path>, uri: Option<&Uri>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(u) = uri {
        if let Some(p) = &u.module_path {
            return Ok(PathBuf::from(p));
        }
        if let Some(name) = &u.module_name {
            return find_named_module(name);
        }
    }
    if let Some(p) = std::env::var_os("CARDCA_MODULE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let candidates = LIB_DIRS.iter().flat_map(|d| {
        [
            format!("{d}/p11-kit-proxy.so"),
            format!("{d}/softhsm/libsofthsm2.so"),
            format!("{d}/libsofthsm2.so"),
        ]
    });
    // Proxy first for all directories, then SoftHSM2.
    let mut found: Vec<String> = candidates.filter(|c| Path::new(c).exists()).collect();
    found.sort_by_key(|c| !c.ends_with("p11-kit-proxy.so"));
    found.into_iter().next().map(PathBuf::from).ok_or_else(|| {
        Error::new("no PKCS#11 module found (neither p11-kit's proxy nor SoftHSM2)")
            .hint("install one (apt-get install p11-kit softhsm2 opensc) or pass --module PATH")
    })
}

/// RFC 7512 `module-name`: the module's file name without `lib` and `.so`,
/// looked up in the system's module directories.
fn find_named_module(name: &str) -> Result<PathBuf> {
    for dir in LIB_DIRS {
        for sub in ["", "/pkcs11", "/softhsm"] {
            for file in [format!("{name}.so"), format!("lib{name}.so")] {
                let p = PathBuf::from(format!("{dir}{sub}/{file}"));
                if p.exists() {
                    return Ok(p);
                }
            }
        }
    }
    Err(Error::new(format!("no PKCS#11 module named {name:?} found")).hint("use module-path= or --module"))
}

/// The lock for the module `--module`, the URI or the environment names
/// (see [`module_path()`]); none when it names none.
pub fn lock(explicit: Option<&Path>, uri: Option<&Uri>) -> Lock {
    module_path(explicit, uri).map_or_else(|_| Lock::default(), |m| lock_module(&m))
}

/// Every module this process initialised, kept until it exits: a module is
/// never finalised or unloaded (dlclose) while a thread that called into
/// it may still be running. kryoptic, which links OpenSSL statically,
/// crashed at exit in a few percent of card-sign runs when it was unloaded
/// before a signing thread's thread-exit destructors (OpenSSL's) had run;
/// kept loaded, 0 crashes in 760 runs. PKCS#11 does not require
/// C_Finalize; the operating system closes what the module holds.
///
/// The path is kept too: reading a token whose info cryptoki cannot parse
/// goes to the module directly ([`token_info_without_clock`]).
static KEPT: std::sync::Mutex<Vec<(PathBuf, Pkcs11)>> = std::sync::Mutex::new(Vec::new());

/// The one module this process loaded. The tools load one module each; a
/// process that loaded two different ones cannot tell which a context is.
fn loaded_module() -> Option<PathBuf> {
    let kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    let first = kept.first()?.0.clone();
    kept.iter().all(|(p, _)| *p == first).then_some(first)
}

/// The token info of `slot` read from the loaded module directly, for a
/// token whose info cryptoki cannot parse: the one field it parses is the
/// clock (utcTime), which openCryptoki fills with `"        19:44:54"`. The
/// token reads as one without a clock. A failing module's return code stays
/// a value ([`Error::ckr`]), so callers can tell a token pulled out.
pub(crate) fn token_info_without_clock(slot: Slot) -> Result<TokenInfo> {
    let Some(module) = loaded_module() else {
        return Err(Error::new(format!(
            "reading the token in slot {}: its clock (utcTime) is not in the PKCS#11 form",
            slot.id()
        )));
    };
    cardca_ffi::token_info_without_clock(&module, slot).map_err(|e| {
        let e = match e {
            cardca_ffi::Error::Cryptoki(e) => Error::from(e),
            not_loaded @ cardca_ffi::Error::NotLoaded(_) => Error::new(not_loaded),
        };
        e.context(format!("reading the token in slot {} directly", slot.id()))
    })
}

/// The module this process loaded, for what is decided deep down (a
/// message, a re-read) without a context at hand.
fn loaded() -> Option<Pkcs11> {
    Some(KEPT.lock().unwrap_or_else(|p| p.into_inner()).first()?.1.clone())
}

/// The token info of `slot` read again through the module this process
/// loaded: after a wrong PIN, its retry flags have changed.
pub(crate) fn token_info_again(slot: Slot) -> Option<TokenInfo> {
    loaded()?.get_token_info(slot).ok()
}

/// [`opensc`] of the module this process loaded.
pub(crate) fn loaded_opensc() -> Option<OpenSc> {
    opensc(&loaded()?)
}

/// Set when a module answered CKF_OS_LOCKING_OK with CKR_CANT_LOCK: it was
/// initialised for one thread, and nothing may call it from two.
static SINGLE_THREADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the loaded module may be called from several threads at once
/// (`card-sign --jobs`). Only what the module says can be known: one that
/// accepts CKF_OS_LOCKING_OK promises to be thread-safe.
pub fn threads_ok() -> bool {
    !SINGLE_THREADED.load(std::sync::atomic::Ordering::SeqCst)
}

/// A module known to crash when one process calls it from several threads
/// although it accepts CKF_OS_LOCKING_OK, told by C_GetInfo; its name, or
/// None. Measured, not guessed (`make check-tokens`): openCryptoki 3.8's
/// soft token died of SIGSEGV in 2 of 5 runs of `card-sign --jobs 2` over
/// 20 blocks. Later versions are untested and not refused.
pub fn known_thread_crash(info: &cryptoki::context::Info) -> Option<String> {
    let v = info.library_version();
    let opencryptoki = info.manufacturer_id().trim() == "IBM"
        && info.library_description().trim().starts_with("Meta PKCS11 LIBRARY");
    (opencryptoki && (v.major(), v.minor()) <= (3, 8))
        .then(|| format!("openCryptoki {}.{}", v.major(), v.minor()))
}

/// OpenSC's own module (opensc-pkcs11.so), told by C_GetInfo: its version
/// as "0.23", or None for any other module. What it cannot do is refused
/// by version, each measured on a PKCS#15 card (`make check-tokens`,
/// cardca(7) "OpenSC cards").
pub fn opensc(ctx: &Pkcs11) -> Option<OpenSc> {
    let info = ctx.get_library_info().ok()?;
    let v = info.library_version();
    (info.manufacturer_id().trim() == "OpenSC Project").then_some(OpenSc(v.major(), v.minor()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenSc(u8, u8);

impl OpenSc {
    /// Before 0.24 (measured on 0.23 with an IsoApplet card): a key pair
    /// generated through PKCS#11 gets neither CKA_SENSITIVE nor
    /// CKA_NEVER_EXTRACTABLE (OpenSC commit b88c3ffc8 passes the
    /// template's flags on to PKCS#15 from 0.24 on), and a PKCS#15 card
    /// has no working security officer (C_InitPIN: CKR_DATA_INVALID).
    pub fn before_0_24(self) -> bool {
        (self.0, self.1) < (0, 24)
    }
}

impl std::fmt::Display for OpenSc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenSC {}.{}", self.0, self.1)
    }
}

/// C_Initialize's init string (PKCS#11 `pReserved`, which NSS softokn
/// needs): `--module-args`, the URI's `x-module-args`,
/// `$CARDCA_MODULE_ARGS`, in that order, as for the module's path. An
/// empty value at any level means "none" and still wins over the levels
/// below it, so `--module-args ''` turns off a variable set for another
/// module.
pub fn module_args(explicit: Option<&str>, uri: Option<&Uri>) -> Option<String> {
    let chosen = explicit
        .map(str::to_string)
        .or_else(|| uri.and_then(|u| u.module_args.clone()))
        .or_else(|| std::env::var("CARDCA_MODULE_ARGS").ok());
    chosen.filter(|a| !a.is_empty())
}

/// Loads and initialises the module, and keeps it loaded until the process
/// exits (see [`KEPT`]). A module that another part of the process already
/// initialised is fine (CKR_CRYPTOKI_ALREADY_INITIALIZED). `args` is the
/// `--module-args` value (see [`module_args`]).
pub fn load(explicit: Option<&Path>, args: Option<&str>, uri: Option<&Uri>) -> Result<Pkcs11> {
    let path = module_path(explicit, uri)?;
    let init_string = module_args(args, uri);
    let ctx = Pkcs11::new(&path).map_err(|e| {
        Error::from(e)
            .context("cannot load the PKCS#11 module")
            .hint("check --module, module-path= or $CARDCA_MODULE")
    })?;
    let init = |flags| {
        cardca_ffi::initialize_args(flags, init_string.as_deref())
            .map_err(|_| Error::new("the module's init arguments contain a NUL byte"))
            .and_then(|a| ctx.initialize(a).map_err(Error::from))
    };
    let done = match init(CInitializeFlags::OS_LOCKING_OK) {
        // PKCS#11 section 5.4: a module that cannot use the system's locks
        // may still be used by one thread at a time.
        Err(e) if e.is_ckr(RvError::CantLock) => {
            SINGLE_THREADED.store(true, std::sync::atomic::Ordering::SeqCst);
            init(CInitializeFlags::empty())
        }
        other => other,
    };
    match done {
        Ok(()) => {}
        Err(e) if e.is_ckr(RvError::CryptokiAlreadyInitialized) => {}
        // NSS softokn's answer to a missing or wrong init string.
        Err(e) if e.is_ckr(RvError::ArgumentsBad) => {
            let hint = if init_string.is_some() {
                "check the init arguments (--module-args, x-module-args= or $CARDCA_MODULE_ARGS)"
            } else {
                "this module may need init arguments (NSS softokn: --module-args \
                 \"configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' flags=\")"
            };
            return Err(e.context(format!("initialising {}", path.display())).hint(hint));
        }
        Err(e) => return Err(e.context(format!("initialising {}", path.display()))),
    }
    // A poisoned lock only means another thread panicked while pushing:
    // the list is still a list.
    KEPT.lock().unwrap_or_else(|p| p.into_inner()).push((path, ctx.clone()));
    Ok(ctx)
}

/// The module, loaded and initialised on a thread of its own while the
/// tool waits for its first input. Loading SoftHSM2 costs ~12 ms of CPU
/// (dynamic linking of it, libcrypto and libstdc++), which a pipeline of
/// one certificate then spends while the upstream tool works. Nothing is
/// logged in here: bad input still fails without a login.
pub struct Preload(Option<std::thread::JoinHandle<Result<Pkcs11>>>);

impl Preload {
    pub fn start(explicit: Option<&Path>, args: Option<&str>, uri: Option<&Uri>) -> Preload {
        let (explicit, args, uri) = (explicit.map(Path::to_path_buf), args.map(str::to_string), uri.cloned());
        Preload(Some(std::thread::spawn(move || {
            let _lock = lock(explicit.as_deref(), uri.as_ref());
            load(explicit.as_deref(), args.as_deref(), uri.as_ref())
        })))
    }

    /// The loaded module, or why it did not load. Call it without the
    /// token lock held: the loading thread takes it.
    pub fn wait(mut self) -> Result<Pkcs11> {
        match self.0.take().map(|h| h.join()) {
            Some(Ok(loaded)) => loaded,
            _ => Err(Error::new("loading the PKCS#11 module failed (its thread panicked)")),
        }
    }
}

impl Drop for Preload {
    /// Not used (empty or bad input): the loading thread is joined, so no
    /// thread that used the module outlives the process's work.
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}
