//! Process-wide reporting: the running tool's name, and the two kinds of
//! line a tool writes to stderr besides its final error (warnings and
//! status lines). Every such line is prefixed with the tool's name here, so
//! no tool spells its own name and no library module has to reach up to
//! the command-line wrapper (which sets the name) to learn it.
//!
//! A leaf: it depends on nothing in the crate, so every module may use it.

use std::fmt;
use std::sync::OnceLock;

/// The running tool's name, set once by [`set_tool`] (from the tools'
/// common `main` wrapper).
static TOOL: OnceLock<&'static str> = OnceLock::new();

/// Names the running tool. The first name wins: a process is one tool.
pub fn set_tool(tool: &'static str) {
    let _ = TOOL.set(tool);
}

/// The running tool's name ("cardca" before [`set_tool`], as in unit tests).
pub fn tool_name() -> &'static str {
    TOOL.get().copied().unwrap_or("cardca")
}

/// The one way to report what is not an error but needs attention (a PIN
/// with few tries left, a repaired file): `tool: warning: message`.
pub fn warn(message: impl fmt::Display) {
    eprintln!("{}: warning: {message}", tool_name());
}

/// A status line, what a tool did to something the operator cannot see
/// on stdout (a token initialised, a certificate stored):
/// `tool: message`. Stdout stays for data.
pub fn note(message: impl fmt::Display) {
    eprintln!("{}: {message}", tool_name());
}
