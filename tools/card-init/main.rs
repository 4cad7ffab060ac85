//! card-init: initialises a token and manages its PINs.
//!
//! Reads nothing from stdin and writes nothing to stdout; the new token's
//! URI goes to stderr. Touches the token: C_InitToken erases it.

use std::ffi::OsString;

use cardca::audit::{self, Event};
use cardca::cli::{self, set_once, value, TokenFlags};
use cardca::cryptoki::context::Pkcs11;
use cardca::cryptoki::session::UserType;
use cardca::pin::{self, PinSource};
use cardca::token::{self, Token};
use cardca::uri::Uri;
use cardca::{Context, Error, Result};
use lexopt::{Arg, Parser};

const USAGE: &str = "\
card-init: initialise a PKCS#11 token and manage its PINs

Usage:
  card-init (--slot ID | --slot free | --token URI) --label LABEL [--erase]
            [--so-pin-source SRC] [--pin-source SRC] [--module PATH]
  card-init --token URI --change-pin [--pin-source SRC] [--new-pin-source SRC]
  card-init --token URI --unblock [--so-pin-source SRC] [--new-pin-source SRC]

The first form is the seed article's `pkcs15-init --erase-card
--create-pkcs15`: it initialises the token with a label and a security
officer (SO) PIN, then sets the user PIN. A token that is already
initialised is only re-initialised with --erase, which destroys every key
and certificate on it. --change-pin changes the user PIN; --unblock sets a
new user PIN with the SO PIN (after too many wrong PINs, or when none was
set). Reads nothing from stdin, writes nothing to stdout; the token's URI
is reported on stderr.

PINs are never command-line values. SRC is file:PATH (one trailing newline
stripped), env:VAR or fd:N. Without a source, the PIN is asked for on
/dev/tty (new PINs twice).

Options:
      --slot ID             the slot to initialise, as card-ls lists it; `free`
                            picks the one slot whose token is not initialised
      --token URI           the token to re-initialise or whose PINs to manage
      --label LABEL         the new token label (at most 32 bytes)
      --erase               allow re-initialising a token, destroying its objects
      --so-pin-source SRC   where the SO PIN comes from (for a new token: the
                            SO PIN to set)
      --pin-source SRC      where the user PIN comes from (for a new token: the
                            user PIN to set; with --change-pin: the current one)
      --new-pin-source SRC  where the new user PIN comes from
      --change-pin          change the user PIN (C_SetPIN)
      --unblock             set a new user PIN by SO login (C_InitPIN)
      --module PATH         the PKCS#11 module (default: $CARDCA_MODULE, then
                            p11-kit's proxy, then SoftHSM2)
      --audit FILE          append a line per event (initialisation, PIN change
                            or unblock, SO login) to this audit log (default:
                            $CARDCA_AUDIT; none without it)
      --no-audit            write no audit log, even with $CARDCA_AUDIT set
  -h, --help                print this help
  -V, --version             print the version

Environment:
  CARDCA_AUDIT              the audit log when --audit is not given

Examples:
  $ card-init --slot free --label 'ewak.net PKI' \\
      --so-pin-source file:so.pin --pin-source file:user.pin
  $ card-init --token 'pkcs11:token=ewak.net%20PKI' --change-pin
";

#[derive(Debug, PartialEq)]
enum Target {
    Slot(u64),
    FreeSlot,
    Token(Box<Uri>),
}

#[derive(Debug, PartialEq)]
enum Mode {
    Init { target: Target, label: String, erase: bool },
    ChangePin(Uri),
    Unblock(Uri),
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    flags: TokenFlags,
    so_pin_source: Option<PinSource>,
    new_pin_source: Option<PinSource>,
}

fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Args> {
    let mut parser = Parser::from_args(args);
    let mut flags = TokenFlags::default();
    let (mut slot, mut token, mut label) = (None, None, None);
    let (mut erase, mut change, mut unblock) = (false, false, false);
    let (mut so_pin_source, mut new_pin_source) = (None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Long(f) if TokenFlags::claims(f) => {
                let f = f.to_owned();
                flags.parse(&f, &mut parser)?;
            }
            Arg::Long("slot") => {
                let v = value(&mut parser)?;
                let t = if v == "free" {
                    Target::FreeSlot
                } else {
                    Target::Slot(v.parse().map_err(|_| {
                        Error::usage(format!("--slot {v:?}: expected a slot number or `free`"))
                    })?)
                };
                set_once(&mut slot, t, "--slot")?;
            }
            Arg::Long("token") => {
                let uri = cli::uri_value(&mut parser, "--token")?;
                set_once(&mut token, uri, "--token")?;
            }
            Arg::Long("label") => set_once(&mut label, value(&mut parser)?, "--label")?,
            Arg::Long("erase") => erase = true,
            Arg::Long("change-pin") => change = true,
            Arg::Long("unblock") => unblock = true,
            Arg::Long("so-pin-source") => {
                let s = cli::value_with(&mut parser, "--so-pin-source", PinSource::parse)?;
                set_once(&mut so_pin_source, s, "--so-pin-source")?;
            }
            Arg::Long("new-pin-source") => {
                let s = cli::value_with(&mut parser, "--new-pin-source", PinSource::parse)?;
                set_once(&mut new_pin_source, s, "--new-pin-source")?;
            }
            Arg::Short('h') | Arg::Long("help") => return Err(Error::info(USAGE)),
            Arg::Short('V') | Arg::Long("version") => return Err(cli::version("card-init")),
            other => return Err(cli::unexpected(other)),
        }
    }
    let mode = match (change, unblock) {
        (true, true) => return Err(Error::usage("--change-pin and --unblock exclude each other")),
        (true, false) | (false, true) => {
            let uri = token.ok_or_else(|| Error::usage("--change-pin and --unblock need --token URI"))?;
            if slot.is_some() || label.is_some() || erase {
                return Err(Error::usage("--slot, --label and --erase only apply to initialisation"));
            }
            if change {
                Mode::ChangePin(uri)
            } else {
                Mode::Unblock(uri)
            }
        }
        (false, false) => {
            let target = match (slot, token) {
                (Some(s), None) => s,
                (None, Some(t)) => Target::Token(Box::new(t)),
                (None, None) => {
                    return Err(Error::usage("name the token to initialise with --slot or --token"))
                }
                (Some(_), Some(_)) => return Err(Error::usage("--slot and --token exclude each other")),
            };
            let label = label.ok_or_else(|| Error::usage("--label LABEL is required"))?;
            // CK_TOKEN_INFO.label is 32 bytes, blank padded.
            if label.is_empty() || label.len() > 32 {
                return Err(Error::usage(format!("--label {label:?}: must be 1 to 32 bytes")));
            }
            if new_pin_source.is_some() {
                return Err(Error::usage(
                    "--new-pin-source applies to --change-pin and --unblock; a new token takes --pin-source",
                ));
            }
            Mode::Init { target, label, erase }
        }
    };
    Ok(Args { mode, flags, so_pin_source, new_pin_source })
}

fn run(args: Vec<OsString>) -> Result<()> {
    let args = parse_args(args)?;
    audit::setup(&args.flags.audit, None);
    let uri = match &args.mode {
        Mode::Init { target: Target::Token(u), .. } => Some(&**u),
        Mode::ChangePin(u) | Mode::Unblock(u) => Some(u),
        _ => None,
    };
    let _lock = token::lock(args.flags.module.as_deref(), uri);
    let ctx = token::load(args.flags.module.as_deref(), uri)?;
    match &args.mode {
        Mode::Init { target, label, erase } => init(&ctx, &args, target, label, *erase),
        Mode::ChangePin(uri) => change_pin(&ctx, &args, uri),
        Mode::Unblock(uri) => unblock(&ctx, &args, uri),
    }
}

fn init(ctx: &Pkcs11, args: &Args, target: &Target, label: &str, erase: bool) -> Result<()> {
    let all = token::tokens(ctx)?;
    let candidates: Vec<&Token> = all
        .iter()
        .filter(|t| match target {
            Target::Slot(id) => t.slot.id() == *id,
            Target::FreeSlot => !t.info.token_initialized(),
            Target::Token(uri) => t.info.token_initialized() && t.matches(uri),
        })
        .collect();
    let chosen = match candidates.as_slice() {
        [one] => *one,
        [] => {
            return Err(match target {
                Target::Slot(id) => Error::new(format!("no token in slot {id}")),
                Target::FreeSlot => Error::new("no slot holds an uninitialised token"),
                Target::Token(uri) => Error::new(format!("no token matches {}", uri.token_part())),
            }
            .hint("list the slots with card-ls"))
        }
        many => {
            return Err(token::ambiguous(
                &format!("{} slots match", many.len()),
                many.iter().map(|t| format!("slot {}: {}", t.slot.id(), t.uri())),
            ))
        }
    };
    let was_initialized = chosen.info.token_initialized();
    if was_initialized && !erase {
        return Err(Error::new(format!(
            "{} in slot {} is already initialised; re-initialising destroys every key and certificate on it",
            chosen.describe(),
            chosen.slot.id()
        ))
        .hint("add --erase if that is what you want"));
    }
    if let Some(other) = all
        .iter()
        .find(|t| t.info.token_initialized() && t.label() == label && t.slot.id() != chosen.slot.id())
    {
        return Err(Error::new(format!(
            "another token (slot {}, serial {}) is already labelled {label:?}; URIs could not tell them apart",
            other.slot.id(),
            other.info.serial_number()
        )));
    }
    if was_initialized {
        pin::check_so_flags(chosen, args.so_pin_source.is_some())?;
    }
    // Both PINs are read before the token is touched, so a missing or
    // mistyped PIN cannot leave a token half initialised.
    let so_pin = pin::obtain(args.so_pin_source.as_ref(), "SO PIN", "--so-pin-source", !was_initialized)?;
    let user_pin = pin::obtain(args.flags.pin_source.as_ref(), "user PIN", "--pin-source", true)?;

    ctx.init_token(chosen.slot, &so_pin, label).map_err(|e| {
        let e =
            pin::pin_error(e.into(), "SO", chosen).context(format!("initialising slot {}", chosen.slot.id()));
        audit::record_failure(Event::token_init(&chosen.uri()).field("label", label), e)
    })?;
    if was_initialized {
        eprintln!("card-init: erased {} (serial {})", chosen.describe(), chosen.info.serial_number());
    }

    // C_InitToken may move the token to another slot (SoftHSM2 does): find
    // it again by its new label, which we just made unique.
    let by_label = Uri { token: Some(label.to_string()), ..Uri::default() };
    let event = Event::token_init(&by_label).field("label", label).field("erased", was_initialized as u64);
    let fresh = token::select(ctx, &by_label).context("finding the token after C_InitToken");
    let fresh = fresh.map_err(|e| audit::record_failure(event.clone(), e))?;
    let event = Event::token_init(&fresh.uri()).field("erased", was_initialized as u64);
    let set = (|| -> Result<()> {
        let session = ctx.open_rw_session(fresh.slot).context("C_OpenSession")?;
        session.login(UserType::So, Some(&so_pin)).context("logging in as SO")?;
        session.init_pin(&user_pin).context("setting the user PIN (C_InitPIN)")?;
        session.logout().context("C_Logout")?;
        Ok(())
    })();
    audit::record_result(event, set)?;
    eprintln!("card-init: initialised {}", fresh.uri());
    Ok(())
}

fn change_pin(ctx: &Pkcs11, args: &Args, uri: &Uri) -> Result<()> {
    let token = token::select(ctx, uri)?;
    let old_source = pin::resolve(args.flags.pin_source.as_ref(), Some(uri))?;
    pin::check_user_flags(&token, old_source.is_some())?;
    let old = match old_source {
        Some(p) => p,
        None => {
            pin::obtain(None, &format!("current user PIN of {}", token.describe()), "--pin-source", false)?
        }
    };
    let new = pin::obtain(args.new_pin_source.as_ref(), "user PIN", "--new-pin-source", true)?;
    let changed = ctx.open_rw_session(token.slot).context("C_OpenSession").and_then(|session| {
        session.set_pin(&old, &new).map_err(|e| pin::pin_error(e.into(), "user", &token))
    });
    audit::record_result(Event::pin_change(&token.uri()), changed)?;
    eprintln!("card-init: changed the user PIN of {}", token.describe());
    Ok(())
}

fn unblock(ctx: &Pkcs11, args: &Args, uri: &Uri) -> Result<()> {
    let token = token::select(ctx, uri)?;
    pin::check_so_flags(&token, args.so_pin_source.is_some())?;
    let so = pin::obtain(args.so_pin_source.as_ref(), "SO PIN", "--so-pin-source", false)?;
    let new = pin::obtain(args.new_pin_source.as_ref(), "user PIN", "--new-pin-source", true)?;
    let session = ctx.open_rw_session(token.slot).context("C_OpenSession")?;
    let login = session.login(UserType::So, Some(&so)).map_err(|e| pin::pin_error(e.into(), "SO", &token));
    audit::record_result(Event::login(&token.uri(), "so"), login)?;
    let set = (|| -> Result<()> {
        session.init_pin(&new).context("setting the user PIN (C_InitPIN)")?;
        session.logout().context("C_Logout")?;
        Ok(())
    })();
    audit::record_result(Event::pin_unblock(&token.uri()), set)?;
    eprintln!("card-init: set a new user PIN on {}", token.describe());
    Ok(())
}

fn main() -> std::process::ExitCode {
    cli::main("card-init", run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardca::cli::args;
    use cardca::error::Kind;

    #[test]
    fn init_forms() {
        let a = parse_args(args(&["--slot", "free", "--label", "ewak.net PKI", "--pin-source", "env:P"]))
            .expect("free");
        assert_eq!(
            a.mode,
            Mode::Init { target: Target::FreeSlot, label: "ewak.net PKI".into(), erase: false }
        );
        assert_eq!(a.flags.pin_source, Some(PinSource::Env("P".into())));
        let a = parse_args(args(&["--slot", "7", "--label", "x", "--erase"])).expect("slot");
        assert!(matches!(a.mode, Mode::Init { target: Target::Slot(7), erase: true, .. }));
        let a = parse_args(args(&["--token", "pkcs11:token=x", "--label", "y", "--erase"])).expect("token");
        assert!(matches!(a.mode, Mode::Init { target: Target::Token(_), .. }));
    }

    #[test]
    fn pin_forms() {
        let a = parse_args(args(&["--token", "pkcs11:token=x", "--change-pin", "--new-pin-source", "fd:3"]))
            .expect("change");
        assert!(matches!(a.mode, Mode::ChangePin(_)));
        assert_eq!(a.new_pin_source, Some(PinSource::Fd(3)));
        let a = parse_args(args(&["--token", "pkcs11:token=x", "--unblock"])).expect("unblock");
        assert!(matches!(a.mode, Mode::Unblock(_)));
    }

    #[test]
    fn usage_errors() {
        cardca::cli::assert_usage_errors(
            parse_args,
            &[
                &["--label", "x"][..],
                &["--slot", "1"],
                &["--slot", "x", "--label", "y"],
                &["--slot", "1", "--token", "pkcs11:", "--label", "y"],
                &["--slot", "1", "--label", "123456789012345678901234567890123"],
                &["--change-pin"],
                &["--token", "pkcs11:", "--change-pin", "--unblock"],
                &["--slot", "1", "--label", "x", "--pin", "1234"],
                &["--slot", "1", "--label", "x", "--pin-source", "1234"],
                &["--slot", "1", "--label", "x", "--label", "y"],
                &["--bogus"],
            ],
        );
        assert_eq!(parse_args(args(&["--help"])).expect_err("help").kind(), Kind::Info);
    }
}
