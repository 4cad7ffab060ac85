//! The SoftHSM2 store lock: serialises the token work of cardca processes
//! that share one SoftHSM2 file store, and lets go of it while a thread
//! waits for a person or a pipe ([`unlocked`]).
//!
//! It starts from a module's path; which module the flags name is for
//! [`crate::module::module_path`], and [`crate::module::lock`] joins the two.

use std::path::{Path, PathBuf};

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
///
/// The default holds nothing: the lock of a module that needs none.
#[derive(Default)]
pub struct Lock(Option<std::fs::File>);

thread_local! {
    /// The lock this thread holds, for [`unlocked`].
    static HELD: std::cell::RefCell<Option<std::fs::File>> = const { std::cell::RefCell::new(None) };
}

/// The lock for `module`, held until the [`Lock`] is dropped; none for a
/// module that needs none.
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
