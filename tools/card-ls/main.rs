//! card-ls: lists slots, tokens, objects and mechanisms.
//!
//! Reads nothing; writes the listing (text, `--uri`, `--json`) or the
//! tokens' certificates and public keys (`--pem`) to stdout. Touches the
//! token read-only, and logs in only with `--login`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write;

use cardca::cli::{self, set_once};
use cardca::cryptoki::context::Pkcs11;
use cardca::cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cardca::cryptoki::session::Session;
use cardca::der::{Decode, Encode};
use cardca::keys::{self, KeySpec};
use cardca::module;
use cardca::session;
use cardca::token::{self, Token};
use cardca::uri::{ObjectType, Uri};
use cardca::{hex, io, json, login, Context, Error, Result};
use lexopt::{Arg, Parser};

const USAGE: &str = "\
card-ls: list PKCS#11 tokens, their objects and mechanisms

Usage:
  card-ls [--token URI] [--login] [--objects] [--uri | --json | --pem]
          [--mechanisms] [--pin-source SRC] [--module PATH]

Without options, lists every slot and its token: label, manufacturer,
model, serial, flags (login required, rng, PIN count low / final try /
locked) and the token's URI. --objects lists the objects on the tokens
instead: class, key type and size or curve, label, id, usage, access
(sensitive, always sensitive, never extractable, local) and URI. Private
objects are listed only with --login. Listings are sorted by token label,
then class, then id, so they are stable for diffs and scripts.

Options:
      --token URI        only tokens (and with object attributes, objects)
                         that match the RFC 7512 URI
      --objects          list objects instead of tokens
      --login            log in to list private objects too (the selector
                         must name exactly one token)
      --uri              print one object URI per line
      --json             print tokens with their objects as JSON
      --pem              print the certificates and public keys as PEM
      --mechanisms       list each token's mechanisms, key sizes and flags
      --pin-source SRC   where the user PIN comes from for --login (file:PATH,
                         env:VAR, fd:N; default: the URI's pin-source, the tty)
      --module PATH      the PKCS#11 module (default: $CARDCA_MODULE, then
                         p11-kit's proxy, then SoftHSM2)
      --module-args STR  the module's C_Initialize init string, which NSS
                         softokn needs (default: the URI's x-module-args,
                         then $CARDCA_MODULE_ARGS)
      --audit FILE       append a line to this audit log for a --login
                         (default: $CARDCA_AUDIT; none without it)
      --no-audit         write no audit log, even with $CARDCA_AUDIT set
  -h, --help             print this help
  -V, --version          print the version

Environment:
  CARDCA_AUDIT           the audit log when --audit is not given

Examples:
  $ card-ls
  $ card-ls --token 'pkcs11:token=ewak.net%20PKI' --objects --login
  $ card-ls --token 'pkcs11:token=ewak.net%20PKI;object=Root%20CA;type=cert' --pem > root.pem
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Tokens,
    Objects,
    Uri,
    Json,
    Pem,
    Mechanisms,
}

#[derive(Debug)]
struct Args {
    flags: session::Options,
    token: Option<Uri>,
    login: bool,
    format: Format,
}

fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Args> {
    let mut parser = Parser::from_args(args);
    let mut flags = session::Options::default();
    let (mut token, mut login, mut objects, mut format) = (None, false, false, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Long(f) if cli::token_flag(f) => {
                let f = f.to_owned();
                cli::parse_token_flag(&mut flags, &f, &mut parser)?;
            }
            Arg::Long("token") => set_once(&mut token, cli::uri_value(&mut parser, "--token")?, "--token")?,
            Arg::Long("login") => login = true,
            Arg::Long("objects") => objects = true,
            Arg::Long("uri") => set_once(&mut format, Format::Uri, "an output format")?,
            Arg::Long("json") => set_once(&mut format, Format::Json, "an output format")?,
            Arg::Long("pem") => set_once(&mut format, Format::Pem, "an output format")?,
            Arg::Long("mechanisms") => set_once(&mut format, Format::Mechanisms, "an output format")?,
            Arg::Short('h') | Arg::Long("help") => return Err(Error::info(USAGE)),
            Arg::Short('V') | Arg::Long("version") => return Err(cli::version("card-ls")),
            other => return Err(cli::unexpected(other)),
        }
    }
    let format = match format {
        Some(Format::Mechanisms) if objects => {
            return Err(Error::usage("--mechanisms lists mechanisms, not objects"))
        }
        Some(f) => f,
        None if objects => Format::Objects,
        None => Format::Tokens,
    };
    if login && matches!(format, Format::Tokens | Format::Mechanisms) {
        return Err(Error::usage(
            "--login only matters when listing objects (--objects, --uri, --json, --pem)",
        ));
    }
    Ok(Args { flags, token, login, format })
}

/// One PIN is for one token: tried on every matching token, it would count
/// a wrong try on each token it does not belong to (and reveal it to each).
/// So `--login` needs a selector that names exactly one token, checked
/// before any login.
fn refuse_login_on_several(args: &Args, tokens: &[Token]) -> Result<()> {
    let initialised: Vec<&Token> = tokens.iter().filter(|t| t.info.token_initialized()).collect();
    if !args.login || initialised.len() <= 1 {
        return Ok(());
    }
    let what = match &args.token {
        Some(uri) => format!("--login: {} tokens match {}", initialised.len(), uri.token_part()),
        None => format!("--login: {} tokens are present", initialised.len()),
    };
    Err(token::ambiguous(&what, initialised.iter().map(|t| format!("slot {}: {}", t.slot.id(), t.uri())))
        .hint("name one token with --token (token=, serial=); a PIN is tried on one token only"))
}

/// What card-ls prints: text, or PEM objects for the shared writer.
enum Output {
    Text(String),
    Pem(Vec<(&'static str, Vec<u8>)>),
}

fn run(args: Vec<OsString>) -> Result<()> {
    let args = parse_args(args)?;
    // Only a login (--login) is an audit event here.
    cardca::audit::setup(&args.flags.audit, None);
    // Everything that touches the token happens (sessions closed too) under
    // the lock inside listing(); printing happens after it is released.
    match listing(&args)? {
        Output::Pem(objects) => {
            let mut w = io::Writer::stdout(false)?;
            for (label, der) in objects {
                w.write(label, &der)?;
            }
        }
        Output::Text(text) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
        }
    }
    Ok(())
}

fn listing(args: &Args) -> Result<Output> {
    let _lock = module::lock(args.flags.module.as_deref(), args.token.as_ref());
    let ctx =
        module::load(args.flags.module.as_deref(), args.flags.module_args.as_deref(), args.token.as_ref())?;
    let tokens: Vec<Token> = match &args.token {
        Some(uri) => {
            let found = token::matching_tokens(&ctx, uri)?;
            if found.is_empty() {
                return Err(Error::new(format!("no token matches {}", uri.token_part()))
                    .hint("run card-ls without --token"));
            }
            found
        }
        None => token::tokens(&ctx)?,
    };
    refuse_login_on_several(args, &tokens)?;
    let mut out = String::new();
    match args.format {
        Format::Tokens => {
            for t in &tokens {
                describe_token(&mut out, t);
            }
        }
        Format::Mechanisms => {
            for t in &tokens {
                mechanisms(&mut out, &ctx, t)?;
            }
        }
        Format::Objects | Format::Uri | Format::Json | Format::Pem => {
            let mut listed = Vec::new();
            for t in tokens.iter().filter(|t| t.info.token_initialized()) {
                let objects = objects(&ctx, t, args)?;
                listed.push((t, objects));
            }
            match args.format {
                Format::Objects => {
                    for (t, objs) in &listed {
                        let _ = writeln!(out, "{} (serial {}):", t.describe(), t.info.serial_number());
                        if objs.is_empty() {
                            out.push_str("  no objects visible");
                            out.push_str(if args.login { "\n" } else { " (private ones need --login)\n" });
                        }
                        for o in objs {
                            describe_object(&mut out, o);
                        }
                    }
                }
                Format::Uri => {
                    for o in listed.iter().flat_map(|(_, objs)| objs) {
                        let _ = writeln!(out, "{}", o.uri);
                    }
                }
                Format::Json => write_json(&mut out, &listed),
                _ => {
                    let pem = listed.into_iter().flat_map(|(_, objs)| objs).filter_map(|o| o.pem).collect();
                    return Ok(Output::Pem(pem));
                }
            }
        }
    }
    Ok(Output::Text(out))
}

fn token_flags(t: &Token) -> Vec<&'static str> {
    let i = &t.info;
    let all = [
        (i.token_initialized(), "token initialized"),
        (i.login_required(), "login required"),
        (i.user_pin_initialized(), "PIN initialized"),
        (i.rng(), "rng"),
        (i.write_protected(), "write protected"),
        (i.protected_authentication_path(), "PIN pad"),
        (i.user_pin_count_low(), "PIN count low"),
        (i.user_pin_final_try(), "PIN final try"),
        (i.user_pin_locked(), "PIN locked"),
        (i.user_pin_to_be_changed(), "PIN to be changed"),
        (i.so_pin_count_low(), "SO PIN count low"),
        (i.so_pin_final_try(), "SO PIN final try"),
        (i.so_pin_locked(), "SO PIN locked"),
        (i.so_pin_to_be_changed(), "SO PIN to be changed"),
    ];
    all.into_iter().filter(|(on, _)| *on).map(|(_, name)| name).collect()
}

fn describe_token(out: &mut String, t: &Token) {
    let i = &t.info;
    if !i.token_initialized() {
        let _ =
            writeln!(out, "slot {}: uninitialised token ({})", t.slot.id(), t.slot_info.slot_description());
        return;
    }
    let _ = writeln!(out, "slot {}: {}", t.slot.id(), t.describe());
    let _ = writeln!(out, "  manufacturer: {}", i.manufacturer_id());
    let _ = writeln!(out, "  model:        {}", i.model());
    let _ = writeln!(out, "  serial:       {}", i.serial_number());
    let _ = writeln!(out, "  flags:        {}", token_flags(t).join(", "));
    let _ = writeln!(out, "  uri:          {}", t.uri());
}

fn mechanisms(out: &mut String, ctx: &Pkcs11, t: &Token) -> Result<()> {
    let _ = writeln!(out, "slot {}: {}", t.slot.id(), t.describe());
    let mut list: Vec<(String, String, Vec<&str>)> = Vec::new();
    for m in ctx.get_mechanism_list(t.slot).context("C_GetMechanismList")? {
        let info = ctx.get_mechanism_info(t.slot, m).context("C_GetMechanismInfo")?;
        let flags = [
            (info.hardware(), "hw"),
            (info.encrypt(), "encrypt"),
            (info.decrypt(), "decrypt"),
            (info.digest(), "digest"),
            (info.sign(), "sign"),
            (info.verify(), "verify"),
            (info.generate_key_pair(), "generate-key-pair"),
            (info.wrap(), "wrap"),
            (info.unwrap(), "unwrap"),
            (info.derive(), "derive"),
        ];
        let sizes = match (info.min_key_size(), info.max_key_size()) {
            (0, 0) => String::new(),
            (a, b) => format!("{a}-{b}"),
        };
        list.push((m.to_string(), sizes, flags.into_iter().filter(|(on, _)| *on).map(|(_, n)| n).collect()));
    }
    list.sort();
    for (name, sizes, flags) in list {
        let _ = writeln!(out, "  {name:<32} {sizes:<12} {}", flags.join(", "));
    }
    Ok(())
}

/// One object's listing, read once and printed in any format.
struct Object {
    class: ObjectType,
    kind: Option<String>,
    label: String,
    id: Vec<u8>,
    usage: Vec<&'static str>,
    access: Vec<&'static str>,
    subject: Option<String>,
    uri: Uri,
    /// The PEM label and DER for `--pem`: certificates and public keys.
    pem: Option<(&'static str, Vec<u8>)>,
}

fn objects(ctx: &Pkcs11, t: &Token, args: &Args) -> Result<Vec<Object>> {
    let session = ctx.open_ro_session(t.slot).context("C_OpenSession")?;
    if args.login {
        login::login(&session, t, args.flags.pin_source.as_ref(), args.token.as_ref())?;
    }
    let template = args.token.as_ref().map(|u| token::template(u, None)).unwrap_or_default();
    let mut out = Vec::new();
    for h in session.find_objects(&template).context("C_FindObjects")? {
        if let Some(o) = read_object(&session, t, h)? {
            out.push(o);
        }
    }
    out.sort_by(|a, b| (a.class, &a.id, &a.label).cmp(&(b.class, &b.id, &b.label)));
    Ok(out)
}

fn read_object(session: &Session, t: &Token, h: ObjectHandle) -> Result<Option<Object>> {
    use AttributeType as T;
    let wanted = [
        T::Class,
        T::Label,
        T::Id,
        T::Sign,
        T::Verify,
        T::Encrypt,
        T::Decrypt,
        T::Wrap,
        T::Unwrap,
        T::Derive,
        T::SignRecover,
        T::Sensitive,
        T::AlwaysSensitive,
        T::NeverExtractable,
        T::Extractable,
        T::Local,
        T::Private,
        T::AlwaysAuthenticate,
    ];
    let attrs = session.get_attributes(h, &wanted).context("C_GetAttributeValue")?;
    let mut class = None;
    let (mut label, mut id) = (String::new(), Vec::new());
    let (mut usage, mut access) = (Vec::new(), Vec::new());
    for a in &attrs {
        match a {
            Attribute::Class(c) => class = token::object_type(*c),
            Attribute::Label(l) => label = String::from_utf8_lossy(l).into_owned(),
            Attribute::Id(i) => id = i.clone(),
            Attribute::Sign(true) => usage.push("sign"),
            Attribute::Verify(true) => usage.push("verify"),
            Attribute::Encrypt(true) => usage.push("encrypt"),
            Attribute::Decrypt(true) => usage.push("decrypt"),
            Attribute::Wrap(true) => usage.push("wrap"),
            Attribute::Unwrap(true) => usage.push("unwrap"),
            Attribute::Derive(true) => usage.push("derive"),
            Attribute::SignRecover(true) => usage.push("sign-recover"),
            Attribute::Private(true) => access.push("private"),
            Attribute::Sensitive(true) => access.push("sensitive"),
            Attribute::AlwaysSensitive(true) => access.push("always sensitive"),
            Attribute::NeverExtractable(true) => access.push("never extractable"),
            Attribute::Extractable(true) => access.push("extractable"),
            Attribute::Local(true) => access.push("local"),
            Attribute::AlwaysAuthenticate(true) => access.push("always authenticate"),
            _ => {}
        }
    }
    // Vendor-specific classes (SoftHSM has none, others do) are skipped.
    let Some(class) = class else { return Ok(None) };
    let mut uri = t.uri();
    uri.object_type = Some(class);
    uri.id = (!id.is_empty()).then(|| id.clone());
    uri.object = (!label.is_empty()).then(|| label.clone());
    let (mut kind, mut subject, mut pem) = (None, None, None);
    match class {
        ObjectType::Private | ObjectType::Public => {
            kind = Some(
                keys::key_spec(session, h).map_or_else(|_| "unknown key type".to_string(), |s| s.to_string()),
            );
            if class == ObjectType::Public {
                if let Ok((_, spki)) = keys::public_key_info(session, h) {
                    pem = Some(("PUBLIC KEY", spki.to_der()?));
                }
            }
        }
        ObjectType::Cert => {
            let value = session.get_attributes(h, &[T::Value]).context("C_GetAttributeValue")?;
            if let Some(Attribute::Value(der)) = value.into_iter().next() {
                match cardca::x509_cert::Certificate::from_der(&der) {
                    Ok(cert) => {
                        let tbs = cert.tbs_certificate();
                        subject = Some(tbs.subject().to_string());
                        kind = KeySpec::from_spki(tbs.subject_public_key_info()).ok().map(|s| s.to_string());
                        pem = Some(("CERTIFICATE", der));
                    }
                    Err(e) => subject = Some(format!("(not a valid certificate: {e})")),
                }
            }
        }
        _ => {}
    }
    Ok(Some(Object { class, kind, label, id, usage, access, subject, uri, pem }))
}

fn class_name(c: ObjectType) -> &'static str {
    match c {
        ObjectType::Cert => "certificate",
        ObjectType::Data => "data",
        ObjectType::Private => "private key",
        ObjectType::Public => "public key",
        ObjectType::SecretKey => "secret key",
    }
}

fn describe_object(out: &mut String, o: &Object) {
    let _ = write!(out, "  {}", class_name(o.class));
    if let Some(k) = &o.kind {
        let _ = write!(out, " {k}");
    }
    let _ = writeln!(
        out,
        " {:?} id {}",
        o.label,
        if o.id.is_empty() { "(none)".into() } else { hex::encode(&o.id) }
    );
    if let Some(s) = &o.subject {
        let _ = writeln!(out, "    subject: {s}");
    }
    if !o.usage.is_empty() {
        let _ = writeln!(out, "    usage:   {}", o.usage.join(", "));
    }
    if !o.access.is_empty() {
        let _ = writeln!(out, "    access:  {}", o.access.join(", "));
    }
    let _ = writeln!(out, "    uri:     {}", o.uri);
}

/// A JSON array of strings.
fn js_list(items: &[&str]) -> String {
    format!("[{}]", items.iter().map(|s| json::string(s)).collect::<Vec<_>>().join(", "))
}

/// The listing as JSON. Every string goes through the library's escaping,
/// as the audit log's do: plain ASCII, with control characters, DEL, C1
/// and bidi controls (anything beyond ASCII) as `\u` escapes, so a token
/// label cannot drive the terminal that shows the listing.
fn write_json(out: &mut String, listed: &[(&Token, Vec<Object>)]) {
    out.push_str("{\"tokens\": [");
    for (n, (t, objs)) in listed.iter().enumerate() {
        let i = &t.info;
        let _ = write!(
            out,
            "{}\n  {{\"slot\": {}, \"label\": {}, \"manufacturer\": {}, \"model\": {}, \"serial\": {}, \"flags\": {}, \"uri\": {}, \"objects\": [",
            if n > 0 { "," } else { "" },
            t.slot.id(),
            json::string(i.label()),
            json::string(i.manufacturer_id()),
            json::string(i.model()),
            json::string(i.serial_number()),
            js_list(&token_flags(t)),
            json::string(&t.uri().to_string()),
        );
        for (k, o) in objs.iter().enumerate() {
            let _ = write!(
                out,
                "{}\n    {{\"class\": {}, \"key_type\": {}, \"label\": {}, \"id\": {}, \"usage\": {}, \"access\": {}, \"subject\": {}, \"uri\": {}}}",
                if k > 0 { "," } else { "" },
                json::string(o.class.name()),
                o.kind.as_deref().map_or("null".into(), json::string),
                json::string(&o.label),
                json::string(&hex::encode(&o.id)),
                js_list(&o.usage),
                js_list(&o.access),
                o.subject.as_deref().map_or("null".into(), json::string),
                json::string(&o.uri.to_string()),
            );
        }
        out.push_str(if objs.is_empty() { "]}" } else { "\n  ]}" });
    }
    out.push_str("\n]}\n");
}

fn main() -> std::process::ExitCode {
    cli::main("card-ls", run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardca::cli::args;

    #[test]
    fn formats() {
        assert_eq!(parse_args(args(&[])).expect("none").format, Format::Tokens);
        assert_eq!(parse_args(args(&["--objects"])).expect("objects").format, Format::Objects);
        assert_eq!(parse_args(args(&["--objects", "--uri"])).expect("uri").format, Format::Uri);
        assert_eq!(parse_args(args(&["--json", "--login"])).expect("json").format, Format::Json);
        assert_eq!(parse_args(args(&["--pem"])).expect("pem").format, Format::Pem);
        assert_eq!(parse_args(args(&["--mechanisms"])).expect("mech").format, Format::Mechanisms);
        let a =
            parse_args(args(&["--token", "pkcs11:token=a", "--objects", "--login", "--pin-source", "env:P"]))
                .expect("token");
        assert!(a.login && a.token.is_some() && a.flags.pin_source.is_some());
    }

    #[test]
    fn usage_errors() {
        cardca::cli::assert_usage_errors(
            parse_args,
            &[
                &["--uri", "--json"][..],
                &["--login"],
                &["--objects", "--mechanisms"],
                &["--token", "nonsense"],
                &["--token"],
                &["extra"],
            ],
        );
    }

    #[test]
    fn json_strings() {
        assert_eq!(
            js_list(&["a\"b\\c\n\u{1}", "\u{7f}\u{85}\u{202e}é"]),
            r#"["a\"b\\c\n\u0001", "\u007f\u0085\u202e\u00e9"]"#
        );
    }
}
