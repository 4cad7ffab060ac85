//! The shared library of the cardca tools: the only code that talks
//! PKCS#11. Token access, URIs, PINs, keys, PEM/DER streams and errors each
//! live in one module here, so every tool does each hard thing the same way.

pub mod audit;
pub mod cert;
pub mod cli;
pub mod csr;
pub mod db;
pub mod error;
/// Fuzz target bodies, shared by `fuzz/` and the corpus replay test.
#[doc(hidden)]
pub mod fuzz;
pub mod hex;
pub mod import;
pub mod io;
pub mod keys;
pub mod lock;
pub mod module;
pub mod names;
pub mod ocsp;
pub mod pin;
pub mod policy;
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
