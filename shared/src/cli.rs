//! What every tool's `main` shares: the exit-status contract, error
//! printing, and the token flags.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use lexopt::{Arg, Parser, ValueExt};

use crate::error::{Error, Kind, Result};
use crate::pin::PinSource;

/// Runs a tool: `tool: context: cause` on stderr and exit 1 on failure,
/// exit 2 on a usage error, help and version on stdout with exit 0, and a
/// quiet exit 0 when the reader of stdout has gone away.
pub fn main(tool: &str, run: fn(Vec<OsString>) -> Result<()>) -> ExitCode {
    let args = std::env::args_os().skip(1).collect();
    let Err(e) = run(args) else { return ExitCode::SUCCESS };
    match e.kind() {
        Kind::Info => {
            let mut out = std::io::stdout().lock();
            // A closed stdout while printing help is not worth a message.
            let _ = out.write_all(e.message().as_bytes()).and_then(|_| out.flush());
            ExitCode::SUCCESS
        }
        Kind::BrokenPipe => ExitCode::SUCCESS,
        Kind::Usage => {
            eprintln!("{tool}: {}", e.message());
            eprintln!("Try '{tool} --help' for more information.");
            ExitCode::from(2)
        }
        Kind::Failure => {
            eprintln!("{tool}: {}", e.message());
            if let Some(hint) = e.hint_text() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(1)
        }
    }
}

/// `-V/--version` text.
pub fn version(tool: &str) -> Error {
    Error::info(format!("{tool} (cardca) {}\n", env!("CARGO_PKG_VERSION")))
}

/// A flag's value as UTF-8 text.
pub fn value(parser: &mut Parser) -> Result<String> {
    Ok(parser.value()?.string()?)
}

/// A flag's value parsed with `f`, with the flag named in the error.
pub fn value_with<T>(parser: &mut Parser, flag: &str, f: impl FnOnce(&str) -> Result<T>) -> Result<T> {
    let v = value(parser)?;
    f(&v).map_err(|e| Error::usage(format!("{flag}: {}", e.message())))
}

/// A flag given twice is a mistake in a script, not a preference.
pub fn set_once<T>(slot: &mut Option<T>, value: T, flag: &str) -> Result<()> {
    if slot.replace(value).is_some() {
        return Err(Error::usage(format!("{flag} given twice")));
    }
    Ok(())
}

/// The flags every tool that touches a token takes.
#[derive(Debug, Default)]
pub struct TokenFlags {
    pub module: Option<PathBuf>,
    pub pin_source: Option<PinSource>,
}

impl TokenFlags {
    /// Whether `--name` is one of the token flags. lexopt's `Arg` borrows
    /// the parser, so a tool matches `Arg::Long(f) if TokenFlags::claims(f)`,
    /// copies `f`, and hands it to [`TokenFlags::parse`].
    pub fn claims(name: &str) -> bool {
        matches!(name, "module" | "pin-source" | "pin")
    }

    pub fn parse(&mut self, name: &str, parser: &mut Parser) -> Result<()> {
        match name {
            "module" => {
                let v = parser.value()?;
                set_once(&mut self.module, PathBuf::from(v), "--module")
            }
            "pin-source" => {
                let src = value_with(parser, "--pin-source", PinSource::parse)?;
                set_once(&mut self.pin_source, src, "--pin-source")
            }
            _ => Err(Error::usage(
                "PINs are never given on the command line (ps and shell history show them); \
                 use --pin-source file:PATH, env:VAR or fd:N",
            )),
        }
    }
}

/// The usage error for an argument no flag claimed.
pub fn unexpected(arg: Arg) -> Error {
    Error::usage(arg.unexpected())
}

/// Test helper: argv from a string list.
pub fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

/// Test helper for every tool's argument parser: each of `cases` must be
/// refused as a usage error (exit status 2), not accepted or failed later.
pub fn assert_usage_errors<T>(parse: impl Fn(Vec<OsString>) -> Result<T>, cases: &[&[&str]]) {
    for case in cases {
        match parse(args(case)) {
            Ok(_) => panic!("{case:?} was accepted"),
            Err(e) => assert_eq!(e.kind(), Kind::Usage, "{case:?}: {e}"),
        }
    }
}
