//! Loading the PKCS#11 module and choosing tokens and objects.
//!
//! A selector that matches several tokens or objects is an error that lists
//! them: a CA must never sign with "the first key that matched".

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::{Slot, SlotInfo, TokenInfo};

use crate::error::{Context, Error, Result};
use crate::uri::{ObjectType, Uri};

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

/// Serialises the token work of cardca processes on one SoftHSM2 token
/// store.
///
/// SoftHSM2's file store rewrites its token files on login and on object
/// changes, and a second process reading them meanwhile gets
/// CKR_GENERAL_ERROR or misses the token altogether (measured: 9 of 30
/// parallel `card-ls --login`). The tools hold this lock while they
/// enumerate, log in and create or destroy objects, never while they write
/// to stdout, read stdin, or wait for a PIN (see [`unlocked`]), so
/// pipelines of several token users cannot deadlock on it. Signing runs
/// outside it.
///
/// Only modules that may reach that store take it: SoftHSM2 itself and
/// p11-kit's proxy or client, which load it for the user. Other modules
/// (smart cards, HSMs, TPMs) do their own locking. The lock file lives
/// beside the store it protects (`.cardca.lock` in SoftHSM2's tokendir),
/// so every user of one store meets on it, and in `$XDG_RUNTIME_DIR` when
/// the store is not writable.
pub struct Lock(Option<std::fs::File>);

thread_local! {
    /// The lock this thread holds, for [`unlocked`].
    static HELD: std::cell::RefCell<Option<std::fs::File>> = const { std::cell::RefCell::new(None) };
}

/// The lock for the module `--module`, the URI or the environment names
/// (see [`module_path`]); none when it names none.
pub fn lock(explicit: Option<&Path>, uri: Option<&Uri>) -> Lock {
    module_path(explicit, uri).map_or(Lock(None), |m| lock_module(&m))
}

pub fn lock_module(module: &Path) -> Lock {
    let Some(path) = lock_path(module) else { return Lock(None) };
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
    // Without a lock file the tools still work; they are only exposed to
    // the module's own concurrency again.
    let file = file.ok().filter(|f| f.lock().is_ok());
    if let Some(f) = &file {
        HELD.with(|h| *h.borrow_mut() = f.try_clone().ok());
    }
    Lock(file)
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.0.is_some() {
            HELD.with(|h| h.borrow_mut().take());
        }
    }
}

/// Runs `f` (reading a PIN, a password, stdin) with this thread's token
/// lock released, so a person typing slowly or an upstream tool that has
/// not written yet never holds up other cardca processes.
pub fn unlocked<T>(f: impl FnOnce() -> T) -> T {
    let held = HELD.with(|h| h.borrow().as_ref().and_then(|f| f.try_clone().ok()));
    if let Some(file) = &held {
        let _ = file.unlock();
    }
    let out = f();
    if let Some(file) = &held {
        let _ = file.lock();
    }
    out
}

/// The lock file for `module`, or None when the module needs no lock.
fn lock_path(module: &Path) -> Option<PathBuf> {
    let name = module.file_name()?.to_string_lossy().to_lowercase();
    if !(name.contains("softhsm") || name.contains("p11-kit")) {
        return None;
    }
    let store = softhsm_file_store()?;
    let beside = store.join(".cardca.lock");
    if std::fs::OpenOptions::new().append(true).create(true).open(&beside).is_ok() {
        return Some(beside);
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    Some(
        PathBuf::from(runtime)
            .join(format!("cardca-{:016x}.lock", fnv1a(store.as_os_str().as_encoded_bytes()))),
    )
}

/// SoftHSM2's token directory when it keeps tokens in files (its default
/// backend), from `$SOFTHSM2_CONF` or its default configuration; None for
/// its SQLite backend, which locks for itself.
fn softhsm_file_store() -> Option<PathBuf> {
    let conf = std::env::var_os("SOFTHSM2_CONF")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/softhsm/softhsm2.conf"));
    let text = std::fs::read_to_string(conf).ok()?;
    let setting = |key: &str| {
        text.lines().filter(|l| !l.trim_start().starts_with('#')).find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    if setting("objectstore.backend").is_some_and(|b| b != "file") {
        return None;
    }
    setting("directories.tokendir").map(PathBuf::from)
}

/// A stable name for a path (the lock file's in `$XDG_RUNTIME_DIR`):
/// FNV-1a, 64 bits, the same in every build, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
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
fn token_info_without_clock(slot: Slot) -> Result<TokenInfo> {
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

/// A slot with a token present.
#[derive(Debug, Clone)]
pub struct Token {
    pub slot: Slot,
    pub slot_info: SlotInfo,
    pub info: TokenInfo,
}

impl Token {
    pub fn label(&self) -> &str {
        self.info.label()
    }

    /// `token "ewak.net PKI"` for messages.
    pub fn describe(&self) -> String {
        if self.info.token_initialized() {
            format!("token {:?}", self.label())
        } else {
            format!("the uninitialised token in slot {}", self.slot.id())
        }
    }

    /// The token's URI, with the attributes p11tool prints.
    pub fn uri(&self) -> Uri {
        Uri {
            model: Some(self.info.model().to_string()),
            manufacturer: Some(self.info.manufacturer_id().to_string()),
            serial: Some(self.info.serial_number().to_string()),
            token: Some(self.label().to_string()),
            ..Uri::default()
        }
    }

    pub fn matches(&self, uri: &Uri) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&uri.token, self.info.label())
            && eq(&uri.manufacturer, self.info.manufacturer_id())
            && eq(&uri.serial, self.info.serial_number())
            && eq(&uri.model, self.info.model())
            && eq(&uri.slot_description, self.slot_info.slot_description())
            && eq(&uri.slot_manufacturer, self.slot_info.manufacturer_id())
            && uri.slot_id.is_none_or(|id| id == self.slot.id())
    }
}

/// Every slot with a token, sorted by label then serial so listings are
/// stable. A slot id the module lists twice (tpm2-pkcs11 does) is one
/// slot: every PKCS#11 call names a slot by its id alone.
pub fn tokens(ctx: &Pkcs11) -> Result<Vec<Token>> {
    let mut slots = ctx.get_slots_with_token().context("listing slots")?;
    slots.sort_by_key(|s| s.id());
    slots.dedup_by_key(|s| s.id());
    let mut out = Vec::new();
    for slot in slots {
        let info = match ctx.get_token_info(slot) {
            Ok(info) => info,
            // The module answered, but cryptoki could not parse the
            // answer (its clock): read the token as one without a clock.
            Err(cryptoki::error::Error::ParseInt(_) | cryptoki::error::Error::Utf8(_)) => {
                match token_info_without_clock(slot) {
                    Ok(info) => info,
                    // Pulled out between the two calls, as below.
                    Err(e) if e.is_ckr(RvError::TokenNotPresent) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => match Error::from(e) {
                // A token pulled out between the two calls is simply gone.
                e if e.is_ckr(RvError::TokenNotPresent) => continue,
                e => return Err(e.context(format!("reading the token in slot {}", slot.id()))),
            },
        };
        let slot_info = ctx.get_slot_info(slot).context("reading slot info")?;
        out.push(Token { slot, slot_info, info });
    }
    out.sort_by(|a, b| {
        (a.info.label(), a.info.serial_number(), a.slot.id()).cmp(&(
            b.info.label(),
            b.info.serial_number(),
            b.slot.id(),
        ))
    });
    Ok(out)
}

/// Tokens the URI's token part matches (initialised tokens only).
pub fn matching_tokens(ctx: &Pkcs11, uri: &Uri) -> Result<Vec<Token>> {
    Ok(tokens(ctx)?.into_iter().filter(|t| t.info.token_initialized() && t.matches(uri)).collect())
}

/// Exactly one initialised token, or an error naming what matched.
pub fn select(ctx: &Pkcs11, uri: &Uri) -> Result<Token> {
    let mut found = matching_tokens(ctx, uri)?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            Err(Error::new(format!("no token matches {}", uri.token_part()))
                .hint("list the tokens with card-ls"))
        }
        _ => Err(ambiguous(
            &format!("{} tokens match {}", found.len(), uri.token_part()),
            found.iter().map(|t| format!("slot {}: {}", t.slot.id(), t.uri())),
        )),
    }
}

/// An error listing every candidate, one per line.
pub fn ambiguous(what: &str, candidates: impl Iterator<Item = String>) -> Error {
    let list: Vec<String> = candidates.map(|c| format!("\n  {c}")).collect();
    Error::new(format!("{what}; refusing to choose one:{}", list.concat()))
        .hint("add attributes (serial=, id=, object=, type=) until one matches")
}

pub fn object_class(t: ObjectType) -> ObjectClass {
    match t {
        ObjectType::Cert => ObjectClass::CERTIFICATE,
        ObjectType::Data => ObjectClass::DATA,
        ObjectType::Private => ObjectClass::PRIVATE_KEY,
        ObjectType::Public => ObjectClass::PUBLIC_KEY,
        ObjectType::SecretKey => ObjectClass::SECRET_KEY,
    }
}

pub fn object_type(class: ObjectClass) -> Option<ObjectType> {
    Some(match class {
        ObjectClass::CERTIFICATE => ObjectType::Cert,
        ObjectClass::DATA => ObjectType::Data,
        ObjectClass::PRIVATE_KEY => ObjectType::Private,
        ObjectClass::PUBLIC_KEY => ObjectType::Public,
        ObjectClass::SECRET_KEY => ObjectType::SecretKey,
        _ => return None,
    })
}

/// "private key", "certificate", for messages.
pub fn class_name(class: ObjectClass) -> &'static str {
    match object_type(class) {
        Some(ObjectType::Cert) => "certificate",
        Some(ObjectType::Data) => "data object",
        Some(ObjectType::Private) => "private key",
        Some(ObjectType::Public) => "public key",
        Some(ObjectType::SecretKey) => "secret key",
        None => "object",
    }
}

/// The search template for the URI's object attributes; `class` overrides
/// `type=` when the caller needs one class (a signing key is private).
pub fn template(uri: &Uri, class: Option<ObjectClass>) -> Vec<Attribute> {
    let mut t = Vec::new();
    if let Some(c) = class.or(uri.object_type.map(object_class)) {
        t.push(Attribute::Class(c));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    if let Some(label) = &uri.object {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    t
}

/// The one object of `class` the URI names, or an error listing them all.
pub fn select_object(
    session: &Session,
    token: &Token,
    uri: &Uri,
    class: ObjectClass,
) -> Result<ObjectHandle> {
    if let Some(t) = uri.object_type {
        if object_class(t) != class {
            return Err(Error::new(format!("{uri} names a {} object, not a {class}", t.name())));
        }
    }
    let found = session.find_objects(&template(uri, Some(class))).context("C_FindObjects")?;
    match found.len() {
        1 => Ok(found[0]),
        0 => Err(Error::new(format!("no {} on {} matches {uri}", class_name(class), token.describe())).hint(
            if uri.id.is_none() && uri.object.is_none() {
                "name the key with object= or id=; list them with card-ls --objects --login"
            } else {
                "list the objects with card-ls --objects --login"
            },
        )),
        n => {
            let mut uris: Vec<String> =
                found.iter().map(|&h| object_uri(session, token, h).to_string()).collect();
            uris.sort();
            Err(ambiguous(&format!("{n} objects on {} match {uri}", token.describe()), uris.into_iter()))
        }
    }
}

/// The full URI of an object: the token's attributes plus id, label, type.
pub fn object_uri(session: &Session, token: &Token, handle: ObjectHandle) -> Uri {
    let mut uri = token.uri();
    let attrs = session
        .get_attributes(handle, &[AttributeType::Class, AttributeType::Id, AttributeType::Label])
        .unwrap_or_default();
    for a in attrs {
        match a {
            Attribute::Class(c) => uri.object_type = object_type(c),
            Attribute::Id(id) if !id.is_empty() => uri.id = Some(id),
            Attribute::Label(l) if !l.is_empty() => {
                uri.object = Some(String::from_utf8_lossy(&l).into_owned())
            }
            _ => {}
        }
    }
    uri
}

/// Stores a certificate on the token as a public CKO_CERTIFICATE with the
/// attributes PKCS#11 section 4.6.3 lists for X.509 certificates, so other
/// software (OpenSC, p11-kit, browsers) finds it by subject, issuer and id.
pub fn create_certificate(
    session: &Session,
    cert_der: &[u8],
    label: &str,
    id: &[u8],
) -> Result<ObjectHandle> {
    use cryptoki::object::CertificateType;
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der).context("parsing the certificate")?;
    let tbs = cert.tbs_certificate();
    let template = vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
        Attribute::Subject(tbs.subject().to_der()?),
        Attribute::Issuer(tbs.issuer().to_der()?),
        Attribute::SerialNumber(tbs.serial_number().to_der()?),
        Attribute::Value(cert_der.to_vec()),
    ];
    session.create_object(&template).context("storing the certificate (C_CreateObject)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock file's name in $XDG_RUNTIME_DIR must be the same in every
    /// build: FNV-1a's published test vectors.
    #[test]
    fn fnv1a_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    /// Only modules that can reach SoftHSM2's file store take the lock.
    #[test]
    fn lock_only_for_softhsm_and_p11_kit() {
        assert!(lock_path(Path::new("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")).is_none());
        assert!(lock_path(Path::new("/usr/lib/x86_64-linux-gnu/libtpm2_pkcs11.so.1")).is_none());
    }
}
