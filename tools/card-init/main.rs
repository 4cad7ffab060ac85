//! card-init: initialises a token and manages its PINs.
//!
//! Reads nothing from stdin and writes nothing to stdout; the new token's
//! URI goes to stderr. Touches the token: C_InitToken erases it.

use std::ffi::OsString;

use cardca::audit::{self, Event};
use cardca::cli::{self, set_once, value};
use cardca::cryptoki::context::Pkcs11;
use cardca::cryptoki::error::RvError;
use cardca::cryptoki::session::{Session, UserType};
use cardca::login;
use cardca::module;
use cardca::pin::{self, PinSource};
use cardca::secrecy::SecretString;
use cardca::session;
use cardca::token::{self, Token};
use cardca::uri::Uri;
use cardca::{report, Context, Error, Result};
use lexopt::{Arg, Parser};

const USAGE: &str = "\
card-init: initialise a PKCS#11 token and manage its PINs

Usage:
  card-init (--slot ID | --slot free | --token URI) --label LABEL [--erase]
            [--so-pin-source SRC] [--pin-source SRC] [--module PATH]
  card-init --token URI --change-pin [--pin-source SRC] [--new-pin-source SRC]
  card-init --token URI --unblock [--so-pin-source SRC] [--new-pin-source SRC]
  card-init --token URI --change-so-pin [--so-pin-source SRC]
            [--new-so-pin-source SRC]

The first form is the seed article's `pkcs15-init --erase-card
--create-pkcs15`: it initialises the token with a label and a security
officer (SO) PIN, then sets the user PIN. A token that is already
initialised is only re-initialised with --erase, which destroys every key
and certificate on it. --change-pin changes the user PIN; --unblock sets a
new user PIN with the SO PIN (after too many wrong PINs, or when none was
set); --change-so-pin changes the SO PIN (a token that keeps its factory SO
PIN through initialisation, as openCryptoki's does, needs it). Reads nothing from stdin, writes nothing to stdout; the token's URI
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
      --new-so-pin-source SRC
                            where the new SO PIN comes from (--change-so-pin)
      --change-pin          change the user PIN (user login, then C_SetPIN)
      --unblock             set a new user PIN by SO login (C_InitPIN)
      --change-so-pin       change the SO PIN (SO login, then C_SetPIN)
      --module PATH         the PKCS#11 module (default: $CARDCA_MODULE, then
                            p11-kit's proxy, then SoftHSM2)
      --module-args STR     the module's C_Initialize init string, which NSS
                            softokn needs (default: the URI's x-module-args,
                            then $CARDCA_MODULE_ARGS)
      --audit FILE          append a line per run (initialisation, PIN change,
                            unblock, SO PIN change, with the result) to this
                            audit log (default: $CARDCA_AUDIT; none without it)
      --no-audit            write no audit log, even with $CARDCA_AUDIT set
  -h, --help                print this help
  -V, --version             print the version

Environment:
  CARDCA_AUDIT              the audit log when --audit is not given

Examples:
  $ card-init --slot free --label 'ewak.net PKI' \\
      --so-pin-source file:so.pin --pin-source file:user.pin
  $ card-init --token 'pkcs11:token=ewak.net%20PKI' --change-pin
  $ card-init --token 'pkcs11:token=ewak.net%20PKI' --change-so-pin \\
      --so-pin-source file:factory-so.pin --new-so-pin-source file:so.pin
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
    ChangeSoPin(Uri),
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    flags: session::Options,
    so_pin_source: Option<PinSource>,
    new_pin_source: Option<PinSource>,
    new_so_pin_source: Option<PinSource>,
}

fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Args> {
    let mut parser = Parser::from_args(args);
    let mut flags = session::Options::default();
    let (mut slot, mut token, mut label) = (None, None, None);
    let (mut erase, mut change, mut unblock, mut change_so) = (false, false, false, false);
    let (mut so_pin_source, mut new_pin_source, mut new_so_pin_source) = (None, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Long(f) if cli::token_flag(f) => {
                let f = f.to_owned();
                cli::parse_token_flag(&mut flags, &f, &mut parser)?;
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
            Arg::Long("change-so-pin") => change_so = true,
            Arg::Long("so-pin-source") => {
                let s = cli::value_with(&mut parser, "--so-pin-source", PinSource::parse)?;
                set_once(&mut so_pin_source, s, "--so-pin-source")?;
            }
            Arg::Long("new-pin-source") => {
                let s = cli::value_with(&mut parser, "--new-pin-source", PinSource::parse)?;
                set_once(&mut new_pin_source, s, "--new-pin-source")?;
            }
            Arg::Long("new-so-pin-source") => {
                let s = cli::value_with(&mut parser, "--new-so-pin-source", PinSource::parse)?;
                set_once(&mut new_so_pin_source, s, "--new-so-pin-source")?;
            }
            Arg::Short('h') | Arg::Long("help") => return Err(Error::info(USAGE)),
            Arg::Short('V') | Arg::Long("version") => return Err(cli::version("card-init")),
            other => return Err(cli::unexpected(other)),
        }
    }
    let modes = [change, unblock, change_so].iter().filter(|&&m| m).count();
    if modes > 1 {
        return Err(Error::usage("--change-pin, --unblock and --change-so-pin exclude each other"));
    }
    if new_so_pin_source.is_some() && !change_so {
        return Err(Error::usage("--new-so-pin-source applies to --change-so-pin only"));
    }
    let mode = if modes == 1 {
        let uri = token
            .ok_or_else(|| Error::usage("--change-pin, --unblock and --change-so-pin need --token URI"))?;
        if slot.is_some() || label.is_some() || erase {
            return Err(Error::usage("--slot, --label and --erase only apply to initialisation"));
        }
        if change_so && (new_pin_source.is_some() || flags.pin_source.is_some()) {
            return Err(Error::usage(
                "--change-so-pin takes --so-pin-source and --new-so-pin-source; the user PIN is not involved",
            ));
        }
        if change {
            Mode::ChangePin(uri)
        } else if unblock {
            Mode::Unblock(uri)
        } else {
            Mode::ChangeSoPin(uri)
        }
    } else {
        let target = match (slot, token) {
            (Some(s), None) => s,
            (None, Some(t)) => Target::Token(Box::new(t)),
            (None, None) => return Err(Error::usage("name the token to initialise with --slot or --token")),
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
    };
    Ok(Args { mode, flags, so_pin_source, new_pin_source, new_so_pin_source })
}

fn run(args: Vec<OsString>) -> Result<()> {
    let args = parse_args(args)?;
    audit::setup(&args.flags.audit, None);
    let uri = match &args.mode {
        Mode::Init { target: Target::Token(u), .. } => Some(&**u),
        Mode::ChangePin(u) | Mode::Unblock(u) | Mode::ChangeSoPin(u) => Some(u),
        _ => None,
    };
    let _lock = module::lock(args.flags.module.as_deref(), uri);
    let ctx = module::load(args.flags.module.as_deref(), args.flags.module_args.as_deref(), uri)?;
    if let Some(opensc) = module::opensc(&ctx).filter(|o| o.before_0_24()) {
        if let Mode::Init { .. } | Mode::Unblock(_) = args.mode {
            return Err(pkcs15_card(opensc, matches!(args.mode, Mode::Init { .. })));
        }
    }
    // One audit line per run, with its result: the initialisation (named
    // by the new label), the PIN change, the unblock, the SO PIN change.
    let (event, result) = match &args.mode {
        Mode::Init { target, label, erase } => (
            Event::token_init(&Uri { token: Some(label.clone()), ..Uri::default() })
                .field("erase", u64::from(*erase)),
            init(&ctx, &args, target, label, *erase),
        ),
        Mode::ChangePin(uri) => (Event::pin_change(uri), change_pin(&ctx, &args, uri)),
        Mode::Unblock(uri) => (Event::pin_unblock(uri), unblock(&ctx, &args, uri)),
        Mode::ChangeSoPin(uri) => (Event::so_pin_change(uri), change_so_pin(&ctx, &args, uri)),
    };
    audit::record_result(event, result)
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
        login::check_so_flags(chosen, args.so_pin_source.is_some())?;
    }
    // Both PINs are read before the token is touched, so a missing or
    // mistyped PIN cannot leave a token half initialised.
    let so_pin = pin::obtain(args.so_pin_source.as_ref(), "SO PIN", "--so-pin-source", !was_initialized)?;
    let user_pin = pin::obtain(args.flags.pin_source.as_ref(), "user PIN", "--pin-source", true)?;

    ctx.init_token(chosen.slot, &so_pin, label).map_err(|e| {
        let e = Error::from(e);
        let factory = !was_initialized && e.is_ckr(RvError::PinIncorrect);
        let e = login::pin_error(e, "SO", chosen).context(format!("initialising slot {}", chosen.slot.id()));
        let refused = was_initialized
            && [RvError::ArgumentsBad, RvError::FunctionNotSupported, RvError::FunctionFailed]
                .into_iter()
                .any(|rv| e.is_ckr(rv));
        if refused {
            // tpm2-pkcs11 initialises a token once, in the empty slot it
            // always offers; it answers CKR_ARGUMENTS_BAD to a second time.
            return e.hint(
                "this token may not be re-initialised through PKCS#11 (tpm2-pkcs11 cannot): remove it \
                 with the module's own tool (tpm2_ptool rmtoken) and initialise the free slot with \
                 card-init --slot free",
            );
        }
        if factory {
            // openCryptoki checks C_InitToken's PIN against the SO PIN the
            // token was made with, and keeps it.
            e.hint(format!(
                "this token may need its factory SO PIN to be initialised (some, such as openCryptoki's, \
                 check it and keep it): pass it with --so-pin-source, then set your own with \
                 card-init --token '{}' --change-so-pin",
                Uri { token: Some(label.to_string()), ..Uri::default() }
            ))
        } else {
            e
        }
    })?;
    if was_initialized {
        report::note(format_args!("erased {} (serial {})", chosen.describe(), chosen.info.serial_number()));
    }
    let fresh = find_initialised(ctx, chosen, &all, label)?;
    let session = ctx.open_rw_session(fresh.slot).context("C_OpenSession")?;
    so_login(&session, &fresh, &so_pin, "no SO can set its user PIN").map_err(|e| {
        if !e.is_ckr(RvError::PinIncorrect) {
            return e;
        }
        // C_InitToken took this SO PIN a moment ago: the module does not
        // keep it. NSS softokn accepts any and keeps an empty one.
        Error::new(format!(
            "slot {}: the token is initialised, but its SO refuses the SO PIN that C_InitToken was \
             given (C_Login: CKR_PIN_INCORRECT), so its user PIN is not set",
            fresh.slot.id()
        ))
        .with_ckr_of(&e)
        .hint(format!(
            "initialise it again with the SO PIN the module keeps (NSS softokn's is empty): \
             card-init --slot {} --label ... --erase --so-pin-source file:/dev/null",
            fresh.slot.id()
        ))
    })?;
    session.init_pin(&user_pin).map_err(|e| new_pin_error(e.into(), "user", &fresh))?;
    session.logout().context("C_Logout")?;
    if was_initialized {
        remove_left_over(&session, &fresh, &user_pin)?;
    }
    report::note(format_args!("initialised {}", fresh.uri()));
    Ok(())
}

/// What C_InitToken left behind: NSS softokn's clears the private keys and
/// the password but keeps the certificates and public keys. --erase
/// promises an empty token, so they are destroyed now, logged in with the
/// new user PIN; what cannot be destroyed is named.
fn remove_left_over(session: &Session, token: &Token, user_pin: &SecretString) -> Result<()> {
    let left = session.find_objects(&[]).context("C_FindObjects")?;
    if left.is_empty() {
        return Ok(());
    }
    session.login(UserType::User, Some(user_pin)).map_err(|e| login::pin_error(e.into(), "user", token))?;
    let all = session.find_objects(&[]).context("C_FindObjects")?;
    let mut kept = Vec::new();
    for &h in &all {
        let uri = token::object_uri(session, token, h);
        if let Err(e) = session.destroy_object(h) {
            kept.push(format!("\n  {uri} ({})", Error::from(e)));
        }
    }
    session.logout().context("C_Logout")?;
    report::note(format_args!(
        "destroyed {} object(s) that C_InitToken left on the token in slot {} (NSS softokn \
         keeps certificates and public keys)",
        all.len() - kept.len(),
        token.slot.id()
    ));
    if !kept.is_empty() {
        kept.sort();
        return Err(Error::new(format!(
            "the token in slot {} is initialised, but {} object(s) C_InitToken left could not be destroyed:{}",
            token.slot.id(),
            kept.len(),
            kept.concat()
        ))
        .hint("remove them with the module's own tools"));
    }
    Ok(())
}

/// The token C_InitToken just initialised, found by its slot. Modules
/// differ in what they do to it: SoftHSM2 moves the token to a new slot
/// (its id derived from the new serial) and puts a fresh uninitialised
/// token where it was; NSS softokn keeps the slot but ignores the label
/// (and reports the token uninitialised until it has a user PIN);
/// tpm2-pkcs11 lists slot ids twice (one slot, see `token::tokens`). So:
/// the same slot with the new label; else the one new slot with it; else,
/// when no slot came or went, the same slot under whatever label the
/// module gave it. Looking the label up alone would find nothing on NSS
/// and may find two entries on tpm2-pkcs11.
fn find_initialised(ctx: &Pkcs11, chosen: &Token, before: &[Token], label: &str) -> Result<Token> {
    let after = token::tokens(ctx).context("listing the tokens after C_InitToken")?;
    let slot = chosen.slot.id();
    if let Some(t) = after.iter().find(|t| t.slot.id() == slot && t.label() == label) {
        return Ok(t.clone());
    }
    let was_there = |id: u64| before.iter().any(|b| b.slot.id() == id);
    let moved: Vec<&Token> = after.iter().filter(|t| t.label() == label && !was_there(t.slot.id())).collect();
    if let [one] = moved.as_slice() {
        return Ok((*one).clone());
    }
    let mut slots_before: Vec<u64> = before.iter().map(|t| t.slot.id()).collect();
    let mut slots_after: Vec<u64> = after.iter().map(|t| t.slot.id()).collect();
    slots_before.sort_unstable();
    slots_after.sort_unstable();
    if moved.is_empty() && slots_before == slots_after {
        if let Some(t) = after.iter().find(|t| t.slot.id() == slot) {
            report::warn(format_args!(
                "the module did not set the label {label:?}: the token in slot {slot} reads {:?} \
                 (NSS softokn ignores it)",
                t.label()
            ));
            return Ok(t.clone());
        }
    }
    Err(token::ambiguous(
        &format!("cannot tell which token C_InitToken initialised in slot {slot}"),
        after.iter().map(|t| format!("slot {}: {}", t.slot.id(), t.uri())),
    )
    .hint("set the user PIN with card-init --token URI --unblock"))
}

/// C_Login as the security officer, with what a refusal means. NSS softokn
/// has no SO once the token has a user PIN (CKR_USER_TYPE_INVALID); then
/// `without` says what cannot be done.
fn so_login(session: &Session, token: &Token, so_pin: &SecretString, without: &str) -> Result<()> {
    match session.login(UserType::So, Some(so_pin)).map_err(Error::from) {
        Ok(()) => Ok(()),
        Err(e) if e.is_ckr(RvError::UserAlreadyLoggedIn) => Ok(()),
        Err(e) if e.is_ckr(RvError::UserTypeInvalid) => {
            Err(Error::new(format!("{} has no security officer ({e}): {without}", token.describe()))
                .with_ckr_of(&e)
                .hint(
                    "change the user PIN with --change-pin while it is known; a forgotten one can only be \
             replaced by re-initialising the token (card-init --erase, which destroys every key on it)",
                ))
        }
        Err(e) => Err(login::pin_error(e, "SO", token).context("logging in as SO")),
    }
}

/// OpenSC before 0.24 has no working security officer on a PKCS#15 card:
/// the card has one user PIN and a PUK that unblocks it, C_InitPIN after
/// an SO login answers CKR_DATA_INVALID, and C_InitToken is off unless
/// opensc.conf enables it (and then pads the label wrongly). Refused
/// before the card is touched, so nothing is left half initialised; the
/// card is personalised and unblocked with OpenSC's own tools, and
/// --change-pin (C_SetPIN as the user) works.
fn pkcs15_card(opensc: module::OpenSc, init: bool) -> Error {
    let (what, tool) = if init {
        (
            "initialise a PKCS#15 card and set its user PIN",
            "personalise the card with OpenSC's tools: pkcs15-init --create-pkcs15 --label LABEL \
             (it asks for the user PIN and its PUK); a personalised card is first erased with \
             pkcs15-init --erase-card, where its driver can (IsoApplet's cannot)",
        )
    } else {
        (
            "set a new user PIN as the security officer",
            "unblock the PIN with the card's PUK: pkcs15-tool --unblock-pin",
        )
    };
    Error::new(format!(
        "{opensc} cannot {what} through PKCS#11: a PKCS#15 card has a user PIN and a PUK, not a \
         security officer (C_InitPIN answers CKR_DATA_INVALID)"
    ))
    .hint(tool)
}

/// A failed C_InitPIN or C_SetPIN: a new PIN the token does not accept
/// (too short or long, or a rule of its own: openCryptoki refuses the
/// current PIN as the new one) is said as such.
fn new_pin_error(e: Error, who: &str, token: &Token) -> Error {
    if e.is_ckr(RvError::PinInvalid) || e.is_ckr(RvError::PinLenRange) {
        return Error::new(format!(
            "{} refuses the new {who} PIN ({e}): it is too short or too long for the token, or breaks a \
             rule of its own (some refuse the current PIN again)",
            token.describe()
        ))
        .with_ckr_of(&e);
    }
    login::pin_error(e, who, token).context(format!("setting the {who} PIN"))
}

/// C_SetPIN changes the PIN of whoever is logged in (PKCS#11 section
/// 5.6). Logging in first is what NSS softokn requires, and it is the same
/// on every token: one check of the current PIN (a wrong one fails here,
/// not retried), then the change.
fn change_pin(ctx: &Pkcs11, args: &Args, uri: &Uri) -> Result<()> {
    let token = token::select(ctx, uri)?;
    let old_source = pin::resolve(args.flags.pin_source.as_ref(), Some(uri))?;
    login::check_user_flags(&token, old_source.is_some())?;
    let old = match old_source {
        Some(p) => p,
        None => {
            pin::obtain(None, &format!("current user PIN of {}", token.describe()), "--pin-source", false)?
        }
    };
    let new = pin::obtain(args.new_pin_source.as_ref(), "user PIN", "--new-pin-source", true)?;
    let session = ctx.open_rw_session(token.slot).context("C_OpenSession")?;
    match session.login(UserType::User, Some(&old)).map_err(Error::from) {
        Ok(()) => {}
        Err(e) if e.is_ckr(RvError::UserAlreadyLoggedIn) => {}
        Err(e) => return Err(login::pin_error(e, "user", &token)),
    }
    session.set_pin(&old, &new).map_err(|e| new_pin_error(e.into(), "user", &token))?;
    session.logout().context("C_Logout")?;
    report::note(format_args!("changed the user PIN of {}", token.describe()));
    Ok(())
}

fn unblock(ctx: &Pkcs11, args: &Args, uri: &Uri) -> Result<()> {
    let token = token::select(ctx, uri)?;
    login::check_so_flags(&token, args.so_pin_source.is_some())?;
    let so = pin::obtain(args.so_pin_source.as_ref(), "SO PIN", "--so-pin-source", false)?;
    let new = pin::obtain(args.new_pin_source.as_ref(), "user PIN", "--new-pin-source", true)?;
    let session = ctx.open_rw_session(token.slot).context("C_OpenSession")?;
    so_login(&session, &token, &so, "no SO PIN can set a new user PIN")?;
    session.init_pin(&new).map_err(|e| new_pin_error(e.into(), "user", &token))?;
    session.logout().context("C_Logout")?;
    report::note(format_args!("set a new user PIN on {}", token.describe()));
    Ok(())
}

/// The SO logs in with the current SO PIN, then C_SetPIN sets the new one:
/// the way off a factory SO PIN that C_InitToken kept.
fn change_so_pin(ctx: &Pkcs11, args: &Args, uri: &Uri) -> Result<()> {
    let token = token::select(ctx, uri)?;
    login::check_so_flags(&token, args.so_pin_source.is_some())?;
    let old = pin::obtain(
        args.so_pin_source.as_ref(),
        &format!("current SO PIN of {}", token.describe()),
        "--so-pin-source",
        false,
    )?;
    let new = pin::obtain(args.new_so_pin_source.as_ref(), "SO PIN", "--new-so-pin-source", true)?;
    let session = ctx.open_rw_session(token.slot).context("C_OpenSession")?;
    so_login(&session, &token, &old, "there is no SO PIN to change")?;
    session.set_pin(&old, &new).map_err(|e| new_pin_error(e.into(), "SO", &token))?;
    session.logout().context("C_Logout")?;
    report::note(format_args!("changed the SO PIN of {}", token.describe()));
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
        let a = parse_args(args(&[
            "--token",
            "pkcs11:token=x",
            "--change-so-pin",
            "--so-pin-source",
            "file:old",
            "--new-so-pin-source",
            "env:NEW",
        ]))
        .expect("change SO PIN");
        assert!(matches!(a.mode, Mode::ChangeSoPin(_)));
        assert_eq!(a.new_so_pin_source, Some(PinSource::Env("NEW".into())));
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
                &["--token", "pkcs11:", "--change-pin", "--change-so-pin"],
                &["--change-so-pin"],
                &["--token", "pkcs11:", "--change-pin", "--new-so-pin-source", "env:X"],
                &["--token", "pkcs11:", "--change-so-pin", "--new-pin-source", "env:X"],
                &["--token", "pkcs11:", "--change-so-pin", "--pin-source", "env:X"],
                &["--token", "pkcs11:", "--change-so-pin", "--new-so-pin-source", "1234"],
                &["--slot", "1", "--label", "x", "--pin", "1234"],
                &["--slot", "1", "--label", "x", "--pin-source", "1234"],
                &["--slot", "1", "--label", "x", "--label", "y"],
                &["--bogus"],
            ],
        );
        assert_eq!(parse_args(args(&["--help"])).expect_err("help").kind(), Kind::Info);
    }
}
