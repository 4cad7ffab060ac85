//! What every tool's `main` shares: the exit-status contract, error
//! printing, and parsing the token flags into [`session::Options`]. The top
//! floor of the library: nothing else in it uses this module. Warnings and
//! status lines go through [`crate::report`].

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use lexopt::{Arg, Parser, ValueExt};

use crate::error::{Error, Kind, Result};
use crate::pin::PinSource;
use crate::session;
use crate::uri::Uri;

/// Runs a tool: `tool: context: cause` on stderr and exit 1 on failure,
/// exit 2 on a usage error, help and version on stdout with exit 0, and a
/// quiet exit 0 when the reader of stdout has gone away.
pub fn main(tool: &'static str, run: fn(Vec<OsString>) -> Result<()>) -> ExitCode {
    crate::report::set_tool(tool);
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
            if let Some(hint) = e.hint_text() {
                eprintln!("hint: {hint}");
            }
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

/// `--db DIR` or `--db postgresql://...`: the CA's record. An empty
/// value is refused (it would be the current directory).
pub fn db_location(parser: &mut Parser) -> Result<crate::db::Location> {
    let v = value(parser)?;
    if v.is_empty() {
        return Err(Error::usage("--db: an empty value (a directory, or postgresql://...)"));
    }
    Ok(crate::db::Location::parse(&v))
}

/// A PKCS#11 URI from the command line (`--token`, `--key`). A
/// `pin-value` in it is refused: the command line is readable by every user
/// (ps, /proc/PID/cmdline) and lands in shell history. Neither the refusal
/// nor a parse error repeats the PIN.
pub fn uri_value(parser: &mut Parser, flag: &str) -> Result<Uri> {
    // Not lexopt's `string()`: its error would print the whole value.
    let raw = parser.value()?;
    let text = raw.to_str().ok_or_else(|| Error::usage(format!("{flag}: the URI is not UTF-8")))?;
    let uri = Uri::parse(text).map_err(|e| Error::usage(format!("{flag}: {}", e.message())))?;
    if uri.pin_value.is_some() {
        return Err(Error::usage(format!(
            "{flag}: refusing a pin-value on the command line (ps, /proc/PID/cmdline and shell \
             history show it to others)"
        ))
        .hint("give the PIN with --pin-source file:PATH, env:VAR or fd:N, or pin-source= in the URI"));
    }
    Ok(uri)
}

/// A flag given twice is a mistake in a script, not a preference.
pub fn set_once<T>(slot: &mut Option<T>, value: T, flag: &str) -> Result<()> {
    if slot.replace(value).is_some() {
        return Err(Error::usage(format!("{flag} given twice")));
    }
    Ok(())
}

/// Whether `--name` is one of the token flags, which fill a
/// [`session::Options`]. lexopt's `Arg` borrows the parser, so a tool matches
/// `Arg::Long(f) if cli::token_flag(f)`, copies `f`, and hands it to
/// [`parse_token_flag`].
pub fn token_flag(name: &str) -> bool {
    matches!(name, "module" | "module-args" | "pin-source" | "pin" | "audit" | "no-audit")
}

/// Parses the token flag `--name` (one [`token_flag`] claimed) into `options`.
pub fn parse_token_flag(options: &mut session::Options, name: &str, parser: &mut Parser) -> Result<()> {
    match name {
        "module" => {
            let v = parser.value()?;
            set_once(&mut options.module, PathBuf::from(v), "--module")
        }
        "module-args" => {
            // Not lexopt's `string()`, whose error repeats the value.
            let v = parser.value()?;
            let text = v.to_str().ok_or_else(|| Error::usage("--module-args: not UTF-8"))?;
            set_once(&mut options.module_args, text.to_string(), "--module-args")
        }
        "pin-source" => {
            let src = value_with(parser, "--pin-source", PinSource::parse)?;
            set_once(&mut options.pin_source, src, "--pin-source")
        }
        "audit" | "no-audit" => audit_flag(&mut options.audit, name, parser),
        _ => Err(Error::usage(
            "PINs are never given on the command line (ps and shell history show them); \
             use --pin-source file:PATH, env:VAR or fd:N",
        )),
    }
}

/// `--audit FILE` or `--no-audit`, for [`parse_token_flag`] and the tools that
/// touch only the database: one of them, once.
pub fn audit_flag(slot: &mut crate::audit::Choice, name: &str, parser: &mut Parser) -> Result<()> {
    use crate::audit::Choice;
    if *slot != Choice::Default {
        return Err(Error::usage("--audit and --no-audit: give one, once"));
    }
    *slot = match name {
        "audit" => {
            let v = parser.value()?;
            if v.is_empty() {
                return Err(Error::usage("--audit: an empty file name"));
            }
            Choice::File(PathBuf::from(v))
        }
        _ => Choice::Off,
    };
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn uri_arg(text: &str) -> Result<Uri> {
        let mut parser = Parser::from_args(args(&["--token", text]));
        parser.next()?;
        uri_value(&mut parser, "--token")
    }

    #[test]
    fn pin_value_refused_and_never_repeated() {
        for text in
            ["pkcs11:token=a?pin-value=s3cr3t-PIN", "pkcs11:token=a?pin-source=file:/p&pin-value=s3cr3t-PIN"]
        {
            let e = uri_arg(text).expect_err(text);
            assert_eq!(e.kind(), Kind::Usage);
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
            assert!(e.hint_text().is_some_and(|h| h.contains("--pin-source")));
        }
        // A URI that fails to parse for another reason still hides it.
        let e = uri_arg("pkcs11:bogus=1?pin-value=s3cr3t-PIN").expect_err("bogus");
        assert!(!e.to_string().contains("s3cr3t") && e.to_string().contains("bogus"), "{e}");
        assert!(uri_arg("pkcs11:token=a?pin-source=file:/p").is_ok());
    }
}
