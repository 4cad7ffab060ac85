//! The shared library of the cardca tools. Loading the PKCS#11 module,
//! choosing tokens and keys, logging in, signing, URIs, PINs, PEM/DER
//! streams and errors each live in one module here, so every tool does each
//! hard thing the same way. The tools that manage a token (card-init,
//! card-keygen, card-ls, cert-store's card.rs) also call cryptoki
//! themselves for what only they do (C_InitToken and C_SetPIN, key
//! generation, listing and finding objects), on a module loaded and a
//! token chosen here.

pub mod audit;
pub mod cert;
pub mod cli;
pub mod csr;
pub mod db;
pub mod dirfd;
pub mod error;
/// Fuzz target bodies, shared by `fuzz/` and the corpus replay test; only
/// with the `fuzz` feature, so the tools never carry them.
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz;
pub mod hex;
pub mod import;
pub mod io;
pub mod json;
pub mod keys;
pub mod lock;
pub mod login;
pub mod module;
pub mod names;
pub mod ocsp;
pub mod oid;
pub mod pin;
pub mod policy;
pub mod report;
pub mod serve;
pub mod session;
pub mod sign;
pub mod time;
pub mod token;
pub mod uri;

pub use cryptoki;
pub use der;
pub use secrecy;
pub use x509_cert;

pub use error::{Context, Error, Result};
