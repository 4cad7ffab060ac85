//! card-keygen: generates a CA key pair on the token, or imports an
//! existing key once.
//!
//! Reads a key file from stdin only with `--import -`; writes the new key's
//! public key (SubjectPublicKeyInfo, PEM) to stdout and its URI to stderr.
//! Touches the token: creates objects, read-write.

use std::ffi::OsString;

use cardca::audit::{self, Event};
use cardca::cli::{self, set_once, value, value_with};
use cardca::cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cardca::cryptoki::session::Session;
use cardca::der::asn1::OctetString;
use cardca::der::Encode;
use cardca::import::{self, Material};
use cardca::keys::{self, KeySpec};
use cardca::module;
use cardca::pin::{self, PinSource};
use cardca::session;
use cardca::sign::{Mechanisms, SigAlg, Signer};
use cardca::token::{self, Token};
use cardca::uri::{ObjectType, Uri};
use cardca::x509_cert::spki::SubjectPublicKeyInfoOwned;
use cardca::{hex, io, report, Context, Error, Result};
use lexopt::{Arg, Parser};
use zeroize::Zeroizing;

const USAGE: &str = "\
card-keygen: generate a CA key pair on a PKCS#11 token, or import one

Usage:
  card-keygen --token URI --type TYPE --label LABEL [--id HEX]
              [--pin-source SRC] [--module PATH]
  card-keygen --token URI --import FILE|- [--pass-source SRC] --label LABEL
              [--id HEX] [--cert-label LABEL] [--pin-source SRC] [--module PATH]

Generates the key pair on the token, so the private key never exists
outside it (the seed article's `pkcs15-init --generate-key`), or imports an
existing key once (its `pkcs15-init --store-private-key`). Either way the
private key is sensitive, never extractable, and may only sign; the
attributes are read back and a key the token did not make so is destroyed.
Writes the public key (SubjectPublicKeyInfo, PEM) to stdout and the new
key's URI to stderr.

Options:
      --token URI          the token to put the key on (RFC 7512 URI)
      --type TYPE          generate a key: rsa:2048, rsa:3072, rsa:4096,
                           ec:p256, ec:p384, ec:p521 or ed25519
      --import FILE|-      import a private key: PKCS#8 (plain or encrypted),
                           PKCS#1 RSA, SEC1 EC, in PEM or DER, or PKCS#12 with
                           its certificate; `-` reads stdin
      --pass-source SRC    where the import file's password comes from
                           (file:PATH, env:VAR or fd:N; default: ask on the tty)
      --label LABEL        CKA_LABEL of the key objects
      --id HEX             CKA_ID (default: the SHA-1 of the public key, RFC
                           5280's key identifier, so it equals the SKI/AKI of
                           the certificates)
      --cert-label LABEL   label of the certificate imported from a PKCS#12
                           (default: the key's label)
      --pin-source SRC     where the user PIN comes from (file:PATH, env:VAR,
                           fd:N; default: the URI's pin-source, then the tty)
      --module PATH        the PKCS#11 module (default: $CARDCA_MODULE, then
                           p11-kit's proxy, then SoftHSM2)
      --module-args STR    the module's C_Initialize init string, which NSS
                           softokn needs (default: the URI's x-module-args,
                           then $CARDCA_MODULE_ARGS)
      --audit FILE         append a line per event (login, key generated or
                           imported) to this audit log (default: $CARDCA_AUDIT;
                           none without it)
      --no-audit           write no audit log, even with $CARDCA_AUDIT set
  -h, --help               print this help
  -V, --version            print the version

Environment:
  CARDCA_AUDIT             the audit log when --audit is not given

Examples:
  $ card-keygen --token 'pkcs11:token=ewak.net%20PKI' --type ec:p384 \\
      --label 'ewak.net Root CA' --pin-source file:user.pin > root.pub.pem
  $ card-keygen --token 'pkcs11:token=ewak.net%20PKI' --import servers.p12 \\
      --label 'Sub CA servers' --pass-source env:P12PASS
";

#[derive(Debug)]
enum Source {
    Generate(KeySpec),
    Import(String),
}

#[derive(Debug)]
struct Args {
    flags: session::Options,
    token: Uri,
    source: Source,
    label: String,
    id: Option<Vec<u8>>,
    cert_label: Option<String>,
    pass_source: Option<PinSource>,
}

fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Args> {
    let mut parser = Parser::from_args(args);
    let mut flags = session::Options::default();
    let (mut token, mut spec, mut import, mut label, mut id, mut cert_label, mut pass_source) =
        (None, None, None, None, None, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Long(f) if cli::token_flag(f) => {
                let f = f.to_owned();
                cli::parse_token_flag(&mut flags, &f, &mut parser)?;
            }
            Arg::Long("token") => set_once(&mut token, cli::uri_value(&mut parser, "--token")?, "--token")?,
            Arg::Long("type") => {
                set_once(&mut spec, value_with(&mut parser, "--type", KeySpec::parse)?, "--type")?
            }
            Arg::Long("import") => set_once(&mut import, value(&mut parser)?, "--import")?,
            Arg::Long("label") => set_once(&mut label, value(&mut parser)?, "--label")?,
            Arg::Long("id") => set_once(&mut id, value_with(&mut parser, "--id", hex::decode)?, "--id")?,
            Arg::Long("cert-label") => set_once(&mut cert_label, value(&mut parser)?, "--cert-label")?,
            Arg::Long("pass-source") => set_once(
                &mut pass_source,
                value_with(&mut parser, "--pass-source", PinSource::parse)?,
                "--pass-source",
            )?,
            Arg::Short('h') | Arg::Long("help") => return Err(Error::info(USAGE)),
            Arg::Short('V') | Arg::Long("version") => return Err(cli::version("card-keygen")),
            other => return Err(cli::unexpected(other)),
        }
    }
    let token = token.ok_or_else(|| Error::usage("--token URI is required"))?;
    let source = match (spec, import) {
        (Some(s), None) => Source::Generate(s),
        (None, Some(f)) => Source::Import(f),
        (None, None) => return Err(Error::usage("give --type TYPE to generate a key or --import FILE")),
        (Some(_), Some(_)) => return Err(Error::usage("--type and --import exclude each other")),
    };
    if matches!(source, Source::Generate(_)) && (pass_source.is_some() || cert_label.is_some()) {
        return Err(Error::usage("--pass-source and --cert-label only apply to --import"));
    }
    let label = label.ok_or_else(|| Error::usage("--label LABEL is required"))?;
    if label.is_empty() {
        return Err(Error::usage("--label must not be empty"));
    }
    Ok(Args { flags, token, source, label, id, cert_label, pass_source })
}

/// The key to put on the token, resolved before the token is touched.
enum Key {
    Generate(KeySpec),
    Import(Box<import::Imported>),
}

impl Key {
    fn spec(&self) -> KeySpec {
        match self {
            Key::Generate(spec) => *spec,
            Key::Import(imp) => imp.key.spec(),
        }
    }
}

fn run(args: Vec<OsString>) -> Result<()> {
    let args = parse_args(args)?;
    audit::setup(&args.flags.audit, None);
    // A bad key file fails before the token is touched, and the key (from
    // stdin, perhaps) and its password are read before the token lock is
    // taken.
    let key = match &args.source {
        Source::Generate(spec) => Key::Generate(*spec),
        Source::Import(path) => Key::Import(Box::new(read_import(path, args.pass_source.as_ref())?)),
    };
    let mut out = io::Writer::stdout(false)?;
    let _lock = module::lock(args.flags.module.as_deref(), Some(&args.token));
    let ctx =
        module::load(args.flags.module.as_deref(), args.flags.module_args.as_deref(), Some(&args.token))?;
    let chosen = token::select(&ctx, &args.token)?;
    let mechanisms = Mechanisms::read(&ctx, chosen.slot)?;
    able(&ctx, &chosen, &mechanisms, &key).with_context(|| chosen.describe())?;
    let (tok, session) = cardca::session::open_rw(&ctx, &args.flags, &args.token)?;
    refuse_taken_label(&session, &tok, &args.label)?;
    if let Some(id) = &args.id {
        refuse_taken_id(&session, &tok, id)?;
    }
    let made = match &key {
        Key::Generate(spec) => generate(&session, *spec, &mechanisms, &args),
        Key::Import(imp) => store_import(&session, &tok, imp, &mechanisms, &args),
    };
    // The key as a URI: the new object's, or (after a failure) the
    // token's with the label and id asked for.
    let mut uri = match &made {
        Ok(m) => token::object_uri(&session, &tok, m.private),
        Err(_) => Uri { object: Some(args.label.clone()), id: args.id.clone(), ..tok.uri() },
    };
    uri.object_type = Some(ObjectType::Private);
    let event = match &key {
        Key::Generate(spec) => Event::key_generated(&uri, spec),
        Key::Import(imp) => Event::key_imported(&uri, imp.key.spec()),
    };
    // Recorded before the public key is written: nothing leaves unlogged.
    let made = audit::record_result(event, made)?;
    out.write("PUBLIC KEY", &made.spki.to_der()?)?;
    report::note(format_args!("{} {} key {uri}", made.verb, made.spec));
    Ok(())
}

/// What the token cannot do is refused before the login and before
/// anything is created: a key it cannot sign with is no CA key, a key
/// size outside what it generates is refused with its range, and a module
/// known to ignore the private key's template is refused by version.
fn able(
    ctx: &cardca::cryptoki::context::Pkcs11,
    chosen: &Token,
    mechanisms: &Mechanisms,
    key: &Key,
) -> Result<()> {
    let spec = key.spec();
    if let Key::Generate(_) = key {
        let keygen = mechanisms.keygen(spec)?;
        // A module that cannot say (C_GetMechanismInfo fails) is left to
        // refuse the size itself.
        if let Ok(info) = ctx.get_mechanism_info(chosen.slot, keygen.mechanism_type()) {
            Mechanisms::keygen_size(spec, info.min_key_size(), info.max_key_size())?;
        }
    }
    mechanisms.route(SigAlg::for_key(spec, None, false)?)?;
    match module::opensc(ctx) {
        // Its key would read back CKA_SENSITIVE false and be destroyed
        // after seconds of key generation on a card.
        Some(opensc) if opensc.before_0_24() && matches!(key, Key::Generate(_)) => Err(Error::new(format!(
            "{opensc} ignores CKA_SENSITIVE and CKA_EXTRACTABLE when it generates a key pair through \
                 PKCS#11 (fixed in OpenSC 0.24): the key would read back extractable, and card-keygen \
                 never keeps such a key"
        ))
        .hint(
            "make the key with OpenSC's own tool, which marks it sensitive and never extractable: \
                 pkcs15-init --generate-key rsa/2048 --auth-id ID --label LABEL, where ID is the user \
                 PIN's (pkcs15-tool --list-pins; ff on IsoApplet); then card-ls --token URI --objects \
                 --login shows its URI",
        )),
        _ => Ok(()),
    }
}

/// Reads a key file's bytes, bounded so a wrong file is noticed, into one
/// buffer of its final size (no reallocation leaves key material behind).
fn read_key_file(path: &str) -> Result<Zeroizing<Vec<u8>>> {
    let too_big = |_| Error::new(format!("{path}: larger than 1 MiB, not a key file"));
    if path == "-" {
        let stdin = std::io::stdin().lock();
        return cardca::pin::read_secret(stdin, io::MAX_OBJECT).map_err(too_big);
    }
    let file = std::fs::File::open(path).with_context(|| format!("reading {path}"))?;
    cardca::pin::read_secret(file, io::MAX_OBJECT).map_err(too_big)
}

fn read_import(path: &str, pass_source: Option<&PinSource>) -> Result<import::Imported> {
    // Key material and the password follow: no core file may hold them.
    pin::forbid_core_dumps()?;
    let bytes = read_key_file(path)?;
    import::check_limits(&bytes).with_context(|| format!("reading {path}"))?;
    let password = if import::needs_password(&bytes).with_context(|| format!("reading {path}"))? {
        Some(pin::obtain(pass_source, &format!("password for {path}"), "--pass-source", false)?)
    } else {
        None
    };
    import::parse(&bytes, password.as_ref()).with_context(|| format!("reading {path}"))
}

struct Made {
    private: ObjectHandle,
    spki: SubjectPublicKeyInfoOwned,
    spec: KeySpec,
    verb: &'static str,
}

/// A second key with the same label would make every `object=` URI for it
/// ambiguous; refuse before creating anything.
fn refuse_taken_label(session: &Session, tok: &Token, label: &str) -> Result<()> {
    let mut taken = Vec::new();
    for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
        taken.extend(
            session
                .find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())])
                .context("C_FindObjects")?,
        );
    }
    refuse_taken(session, tok, &taken, &format!("labelled {label:?}"))
        .map_err(|e| e.hint("choose another --label"))
}

/// A second object with the key's CKA_ID would make `id=` URIs ambiguous
/// and could pair the key with another key's public half or certificate;
/// refuse before creating anything.
fn refuse_taken_id(session: &Session, tok: &Token, id: &[u8]) -> Result<()> {
    let taken = session.find_objects(&[Attribute::Id(id.to_vec())]).context("C_FindObjects")?;
    refuse_taken(session, tok, &taken, &format!("with id {}", hex::encode(id)))
        .map_err(|e| e.hint("choose another --id, or remove the objects first"))
}

fn refuse_taken(session: &Session, tok: &Token, taken: &[ObjectHandle], what: &str) -> Result<()> {
    if taken.is_empty() {
        return Ok(());
    }
    let mut uris: Vec<String> =
        taken.iter().map(|&h| format!("\n  {}", token::object_uri(session, tok, h))).collect();
    uris.sort();
    Err(Error::new(format!(
        "{} already on {}:{}",
        objects_phrase(taken.len(), what),
        tok.describe(),
        uris.concat()
    )))
}

/// "an object labelled "k" is", "2 objects with id 01 are".
fn objects_phrase(n: usize, what: &str) -> String {
    if n == 1 {
        format!("an object {what} is")
    } else {
        format!("{n} objects {what} are")
    }
}

fn generate(session: &Session, spec: KeySpec, mechanisms: &Mechanisms, args: &Args) -> Result<Made> {
    // What both halves carry whatever else the token accepts: names, and
    // the key's size or curve.
    let mut common = vec![Attribute::Label(args.label.as_bytes().to_vec())];
    if let Some(id) = &args.id {
        common.push(Attribute::Id(id.clone()));
    }
    let mut sizes = Vec::new();
    if let KeySpec::Rsa(bits) = spec {
        sizes.push(Attribute::ModulusBits((bits as u64).into()));
        sizes.push(Attribute::PublicExponent(keys::RSA_EXPONENT.to_vec()));
    }
    if let Some(params) = spec.ec_params() {
        sizes.push(Attribute::EcParams(params));
    }
    let public_with = |policy: Vec<Attribute>| -> Vec<Attribute> {
        policy.into_iter().chain(common.iter().cloned()).chain(sizes.iter().cloned()).collect()
    };
    let private: Vec<Attribute> = keys::private_policy().into_iter().chain(common.iter().cloned()).collect();
    let mechanism = mechanisms.keygen(spec)?;
    let generate_with =
        |public: &[Attribute]| session.generate_key_pair(&mechanism, public, &private).map_err(Error::from);
    let mut public_expected = keys::public_policy();
    let (pub_h, priv_h) = match generate_with(&public_with(keys::public_policy())) {
        Ok(made) => made,
        // Once, and only the public half gets less: the private template
        // is never weakened.
        Err(first) if keys::template_refused(&first) => {
            let code = first.ckr().map_or("an error".into(), |rv| cardca::error::ckr_name(&rv));
            let made = generate_with(&public_with(keys::public_minimal())).with_context(|| {
                format!(
                    "generating a {spec} key pair: the token refused the full public-key template \
                     ({code}), and the minimal one"
                )
            })?;
            report::warn(format_args!(
                "the token refused the full public-key template ({code}); the key pair was made with a \
                 minimal one (no CKA_VERIFY, CKA_ENCRYPT, CKA_WRAP or CKA_DERIVE); the private key is \
                 checked as strictly as ever"
            ));
            public_expected = keys::public_minimal();
            made
        }
        Err(e) => return Err(e.context(format!("generating a {spec} key pair"))),
    };
    let finish = || -> Result<SubjectPublicKeyInfoOwned> {
        let (_, spki) = keys::public_key_info(session, pub_h)?;
        if args.id.is_none() {
            // The default id is the key identifier, known only now.
            let id = Attribute::Id(keys::key_id(&spki));
            session.update_attributes(pub_h, std::slice::from_ref(&id)).context("setting CKA_ID")?;
            session.update_attributes(priv_h, &[id]).context("setting CKA_ID")?;
        }
        let mut expect = keys::private_policy();
        // Sensitive and unextractable since the moment it was made:
        // PKCS#11 section 4.9. These two are what prove that the key has
        // never been outside the token in the clear.
        expect.extend([Attribute::AlwaysSensitive(true), Attribute::NeverExtractable(true)]);
        keys::check_attributes(session, priv_h, &expect).context("the new private key")?;
        keys::check_attributes(session, pub_h, &public_expected).context("the new public key")?;
        warn_unless_local(session, priv_h)?;
        Ok(spki)
    };
    match finish() {
        Ok(spki) => Ok(Made { private: priv_h, spki, spec, verb: "generated" }),
        Err(e) => Err(destroy_after(session, &[priv_h, pub_h], e)),
    }
}

/// CKA_LOCAL says the token generated the key. NSS softokn reads FALSE on
/// the keys it generates. For a key this very run made with
/// C_GenerateKeyPair, CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE
/// (checked before this) are the proof that matters: it has never left
/// the token in the clear. So a FALSE (or missing) CKA_LOCAL is a warning,
/// not a refusal; it matters to whoever audits the token later, who cannot
/// tell such a key from an imported one.
fn warn_unless_local(session: &Session, key: ObjectHandle) -> Result<()> {
    let attrs = session
        .get_attributes(key, &[cardca::cryptoki::object::AttributeType::Local])
        .context("reading the new private key's CKA_LOCAL")?;
    if !attrs.contains(&Attribute::Local(true)) {
        report::warn(
            "the token does not mark the new private key CKA_LOCAL (NSS softokn does not); accepted, \
             because this run generated it on the token and it reads back CKA_ALWAYS_SENSITIVE and \
             CKA_NEVER_EXTRACTABLE: it has never left the token in the clear. A later audit of \
             CKA_LOCAL cannot tell it from an imported key",
        );
    }
    Ok(())
}

/// Removes what was made before a failure, so a failed run leaves the
/// token as it was.
fn destroy_after(session: &Session, handles: &[ObjectHandle], e: Error) -> Error {
    for &h in handles {
        if let Err(d) = session.destroy_object(h) {
            return e.context(format!("(and removing the half-made key failed too: {})", Error::from(d)));
        }
    }
    e
}

fn store_import(
    session: &Session,
    tok: &Token,
    imp: &import::Imported,
    mechanisms: &Mechanisms,
    args: &Args,
) -> Result<Made> {
    let spec = imp.key.spec();
    let spki = imp.key.spki()?;
    let id = args.id.clone().unwrap_or_else(|| keys::key_id(&spki));
    // An explicit --id was checked in run(); the key identifier is taken
    // when this very key is on the token already.
    if args.id.is_none() {
        refuse_taken_id(session, tok, &id)?;
    }
    let common = [Attribute::Label(args.label.as_bytes().to_vec()), Attribute::Id(id.clone())];

    let mut private = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    private.extend(keys::private_policy());
    private.extend(common.iter().cloned());
    let mut public = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    public.extend(keys::public_policy());
    public.extend(common.iter().cloned());
    match &imp.key {
        Material::Rsa { n, e, d, p, q, dp, dq, qinv } => {
            private.extend([
                Attribute::KeyType(KeyType::RSA),
                Attribute::Modulus(n.clone()),
                Attribute::PublicExponent(e.clone()),
                Attribute::PrivateExponent(d.to_vec()),
                Attribute::Prime1(p.to_vec()),
                Attribute::Prime2(q.to_vec()),
                Attribute::Exponent1(dp.to_vec()),
                Attribute::Exponent2(dq.to_vec()),
                Attribute::Coefficient(qinv.to_vec()),
            ]);
            public.extend([
                Attribute::KeyType(KeyType::RSA),
                Attribute::Modulus(n.clone()),
                Attribute::PublicExponent(e.clone()),
            ]);
        }
        Material::Ec { scalar: secret, point, .. } | Material::Ed25519 { seed: secret, public: point } => {
            let key_type = if spec == KeySpec::Ed25519 { KeyType::EC_EDWARDS } else { KeyType::EC };
            let params = spec.ec_params().ok_or_else(|| Error::new("no EC parameters"))?;
            private.extend([
                Attribute::KeyType(key_type),
                Attribute::EcParams(params.clone()),
                Attribute::Value(secret.to_vec()),
            ]);
            let wrapped = OctetString::new(point.clone())?.to_der()?;
            public.extend([
                Attribute::KeyType(key_type),
                Attribute::EcParams(params),
                Attribute::EcPoint(wrapped),
            ]);
        }
    }
    let result = session.create_object(&private);
    // The template held copies of the secret; wipe them now.
    for a in private.iter_mut() {
        if let Attribute::PrivateExponent(v)
        | Attribute::Prime1(v)
        | Attribute::Prime2(v)
        | Attribute::Exponent1(v)
        | Attribute::Exponent2(v)
        | Attribute::Coefficient(v)
        | Attribute::Value(v) = a
        {
            zeroize::Zeroize::zeroize(v);
        }
    }
    let priv_h = result.context("importing the private key (C_CreateObject)")?;
    let mut made = vec![priv_h];
    let mut rest = || -> Result<()> {
        let pub_h = session.create_object(&public).context("creating the public key (C_CreateObject)")?;
        made.push(pub_h);
        keys::check_attributes(session, priv_h, &keys::private_policy())
            .context("the imported private key")?;
        self_test(session, priv_h, &spki, mechanisms)?;
        if let Some(cert) = own_certificate(&imp.certs, &spki)? {
            let label = args.cert_label.as_deref().unwrap_or(&args.label);
            made.push(token::create_certificate(session, cert, label, &id)?);
        }
        Ok(())
    };
    match rest() {
        Ok(()) => Ok(Made { private: priv_h, spki, spec, verb: "imported" }),
        Err(e) => Err(destroy_after(session, &made, e)),
    }
}

/// Signs a test message with the imported key and verifies it: a key whose
/// parts do not belong together (a corrupted file, a wrong CRT value)
/// would otherwise first show up as a bad signature during issuance.
fn self_test(
    session: &Session,
    key: ObjectHandle,
    spki: &SubjectPublicKeyInfoOwned,
    mechanisms: &Mechanisms,
) -> Result<()> {
    let spec = KeySpec::from_spki(spki)?;
    let signer = Signer::new(session, key, spki.clone().into(), mechanisms.clone(), None)?;
    signer
        .sign(SigAlg::for_key(spec, None, false)?, b"cardca import self-test")
        .context("self-test of the imported key")?;
    Ok(())
}

/// The certificate in a PKCS#12 whose public key is the imported key's;
/// chain certificates that came along are not stored.
fn own_certificate<'a>(certs: &'a [Vec<u8>], spki: &SubjectPublicKeyInfoOwned) -> Result<Option<&'a [u8]>> {
    use cardca::der::Decode;
    for der in certs {
        let cert = cardca::x509_cert::Certificate::from_der(der).context("a certificate in the PKCS#12")?;
        if cert.tbs_certificate().subject_public_key_info() == spki {
            return Ok(Some(der));
        }
    }
    if !certs.is_empty() {
        report::warn("no certificate in the file matches the key; none stored");
    }
    Ok(None)
}

fn main() -> std::process::ExitCode {
    cli::main("card-keygen", run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardca::cli::args;

    #[test]
    fn generate_form() {
        let a = parse_args(args(&[
            "--token",
            "pkcs11:token=t",
            "--type",
            "ec:p256",
            "--label",
            "root",
            "--id",
            "01:02",
        ]))
        .expect("parse");
        assert!(matches!(a.source, Source::Generate(KeySpec::Ec(_))));
        assert_eq!(a.id, Some(vec![1, 2]));
        assert_eq!(a.token.token.as_deref(), Some("t"));
    }

    #[test]
    fn import_form() {
        let a = parse_args(args(&[
            "--token",
            "pkcs11:token=t",
            "--import",
            "-",
            "--label",
            "k",
            "--pass-source",
            "env:P",
            "--cert-label",
            "c",
        ]))
        .expect("parse");
        assert!(matches!(a.source, Source::Import(ref f) if f == "-"));
        assert_eq!(a.pass_source, Some(PinSource::Env("P".into())));
        assert_eq!(a.cert_label.as_deref(), Some("c"));
    }

    #[test]
    fn usage_errors() {
        cardca::cli::assert_usage_errors(
            parse_args,
            &[
                &["--type", "ec:p256", "--label", "k"][..],
                &["--token", "pkcs11:", "--label", "k"],
                &["--token", "pkcs11:", "--type", "rsa:1024", "--label", "k"],
                &["--token", "pkcs11:", "--type", "ec:p256"],
                &["--token", "pkcs11:", "--type", "ec:p256", "--import", "f", "--label", "k"],
                &["--token", "pkcs11:", "--type", "ec:p256", "--label", "k", "--cert-label", "c"],
                &["--token", "pkcs11:", "--type", "ec:p256", "--label", "k", "--id", "xyz"],
                &["--token", "pkcs11:", "--type", "ec:p256", "--label", ""],
            ],
        );
    }
}
