//! card-sign: the only tool that uses a private key for issuance.
//!
//! Reads `TBS CERTIFICATE` blocks (PEM or DER, any number) from stdin;
//! writes one `CERTIFICATE` per block to stdout, each signature verified
//! with the public key first. Touches the token: one login per run.

mod stream;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Mutex;

use cardca::audit::{self, Event};
use cardca::cert::{self, CaCert, TbsCert};
use cardca::cli::{self, set_once, value, value_with};
use cardca::db::{Ask, Location, Reservation, Store};
use cardca::der::asn1::ObjectIdentifier;
use cardca::der::Encode;
use cardca::oid;
use cardca::policy;
use cardca::session::{self, KeySession};
use cardca::sign::{Hash, SigAlg, Signer, Unverified};
use cardca::uri::Uri;
use cardca::{hex, io, module, names, ocsp, Context, Error, Result};
use lexopt::{Arg, Parser};
use stream::{Outcome, Signed};

const USAGE: &str = "\
card-sign: sign TBSCertificates on the token

Usage:
  card-sign [--key URI] [--ca FILE [--chain FILE] [--responder FILE]
            [--db DIR|URI]] [--expect-sha256 HEX]
            [--allow-extension OID]... [--jobs N] [--der]
            [--pin-source SRC] [--module PATH] [--audit FILE | --no-audit]
  card-sign (--key URI | --ca FILE) --audit-checkpoint [--audit FILE]

Reads TBS CERTIFICATE blocks from tbs-build (PEM or DER, any number) and
writes one CERTIFICATE per block; a TBS CERTLIST from tbs-build --crl
becomes an X509 CRL (with --ca), and a TBS OCSP RESPONSE from
tbs-build --ocsp a DER OCSP RESPONSE (successful, BasicOCSPResponse),
signed by the --ca CA's key or by the delegated --responder's, whose
certificate it then carries. It never trusts that tbs-build made what
it is given: before signing it checks each block against the issuer's
policy, the same rules tbs-build builds by. DER that re-encodes to the
same bytes, a positive serial of at most 20 octets, notBefore before
notAfter, no extension twice, a signature algorithm that fits the key;
the issuer is a CA allowed to sign certificates (keyCertSign) or CRLs
(cRLSign), a sub CA fits its pathLen, the validity lies within the
issuer's, the extended key usages within the issuer's, every name within
the name constraints of the issuer (and of the CAs in --chain); the
subject key is strong (RSA of 2048 bits or more with exponent 65537,
P-256/384/521, Ed25519); keyUsage fits the key type and basicConstraints;
every name is well-formed; every extension it knows is well-formed, and
any other extension is refused (a non-critical one is signed only when
named with --allow-extension). With --ca, the block's issuer must be the
CA's subject and the key the CA's key; without it, only self-signed
blocks (a root) that pass the same rules are signed. Every signature is
verified with the public key before anything is written. One login for
the whole stream.

With --db (the CA's database, as cert-store's and tbs-build's), the
record is asked first, under the database's lock: a certificate's serial
must be neither issued (index.txt) nor reserved, and is then reserved
durably (DIR/reserved.txt: serial, SHA-256 of the TBS, notAfter, time,
subject) before the token signs it, so a certificate that cert-store
never records (killed, a full disk, a pipe not closed) is still known:
cert-store --reserved lists it, --reconcile revokes it. An OCSP
response must say what index.txt says of its serial (good for a valid
line, revoked with the line's time and reason for a revoked one), and a
serial index.txt does not hold gets no response. Blocks are reserved a
batch at a time (one fdatasync), so a stream stays fast. Without --db
(a root's self-signature, an offline ceremony whose record is kept
elsewhere) none of this is checked: cert-store must then record what is
signed, and a certificate lost on the way is known only to the audit
log.

An OCSP ResponseData must pass the OCSP rules: the signer is the CA, or a
--responder the CA issued (OCSPSigning only, ocsp-nocheck, digitalSignature,
at most 90 days); version v1; responderID byKey of the signing key; one
SingleResponse whose CertID (SHA-1, or SHA-256) names the CA's name and
key; good or revoked (never unknown); nextUpdate 8 hours to 10 days
after thisUpdate (both ends counted), producedAt between them, neither
ahead of now nor stale, within the signer's validity; no extension
unless allowed.

Options:
      --key URI             the signing key (RFC 7512 URI or slot_N-id_HEX);
                            default with --ca: the key whose public key is
                            the CA certificate's
      --ca FILE             the issuing CA's certificate (PEM or DER)
      --chain FILE          the certificates above the --ca issuer (PEM or
                            DER, any order): their name constraints apply too
      --responder FILE      a delegated OCSP responder's certificate (made by
                            tbs-build --profile ocsp under --ca): its key
                            signs OCSP responses (only those) and the
                            certificate goes into each
      --db DIR|URI          the CA's database (with --ca), a directory or
                            postgresql://... (as cert-store's): refuse serials
                            it has issued or reserved, and OCSP statuses it
                            does not hold; reserve each serial before it is
                            signed; the audit log defaults to DIR/audit.log
      --allow-extension OID sign blocks carrying this non-critical extension,
                            which card-sign cannot check (repeatable)
      --expect-sha256 HEX   sign only a block whose DER hashes to this SHA-256
                            (a ceremony's approval gate)
      --jobs N              sign with N sessions on N threads (for tokens and
                            HSMs that sign in parallel); output keeps the
                            input's order; default 1
      --der                 write DER instead of PEM (not to a terminal)
      --pin-source SRC      where the user PIN comes from (file:PATH, env:VAR,
                            fd:N; default: the URI's pin-source, then the tty)
      --module PATH         the PKCS#11 module (default: $CARDCA_MODULE, then
                            p11-kit's proxy, then SoftHSM2)
      --module-args STR     the module's C_Initialize init string, which NSS
                            softokn needs (default: the URI's x-module-args,
                            then $CARDCA_MODULE_ARGS)
      --audit FILE          append a line per event (login, each signature with
                            the SHA-256 of its block) to this audit log, made
                            durable before the block is written (default:
                            $CARDCA_AUDIT, then DIR/audit.log with --db;
                            none without them)
      --no-audit            write no audit log, even with $CARDCA_AUDIT set
      --audit-checkpoint    read nothing; sign the audit log's chain head with
                            the key and append that as a checkpoint line
                            (also printed, to be kept elsewhere)
  -h, --help                print this help
  -V, --version             print the version

Environment:
  CARDCA_AUDIT              the audit log when --audit is not given
  CARDCA_NOW                \"now\" as RFC 3339, for the reservations' time

Examples:
  $ tbs-build --ca subca-servers.pem --profile server --san dns:www.ewak.net < www.csr \\
      | card-sign --ca subca-servers.pem --db db/servers \\
      | cert-store --db db/servers > www.pem
  $ sha256sum < root.tbs.der   # approved in the ceremony
  $ card-sign --key \"$ROOT\" --expect-sha256 5f0c... < root.tbs.der > root.pem
";

struct Args {
    flags: session::Options,
    key: Option<Uri>,
    ca: Option<PathBuf>,
    chain: Option<PathBuf>,
    responder: Option<PathBuf>,
    db: Option<Location>,
    allow: Vec<ObjectIdentifier>,
    expect_sha256: Option<Vec<u8>>,
    der: bool,
    jobs: usize,
    checkpoint: bool,
}

fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Args> {
    let mut parser = Parser::from_args(args);
    let mut flags = session::Options::default();
    let (mut key, mut ca, mut expect, mut der, mut jobs) = (None, None, None, false, None);
    let (mut chain, mut allow, mut responder, mut db) = (None, Vec::new(), None, None);
    let mut checkpoint = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Long(f) if cli::token_flag(f) => {
                let f = f.to_owned();
                cli::parse_token_flag(&mut flags, &f, &mut parser)?;
            }
            Arg::Long("key") => set_once(&mut key, cli::uri_value(&mut parser, "--key")?, "--key")?,
            Arg::Long("ca") => set_once(&mut ca, path(&mut parser)?, "--ca")?,
            Arg::Long("chain") => set_once(&mut chain, path(&mut parser)?, "--chain")?,
            Arg::Long("responder") => set_once(&mut responder, path(&mut parser)?, "--responder")?,
            Arg::Long("db") => set_once(&mut db, cli::db_location(&mut parser)?, "--db")?,
            Arg::Long("allow-extension") => allow.push(value_with(&mut parser, "--allow-extension", |s| {
                ObjectIdentifier::new(s).map_err(|_| Error::new(format!("{s:?} is not a dotted OID")))
            })?),
            Arg::Long("expect-sha256") => {
                let h = value_with(&mut parser, "--expect-sha256", |s| {
                    let h = hex::decode(s)?;
                    if h.len() != 32 {
                        return Err(Error::new("a SHA-256 is 64 hex digits"));
                    }
                    Ok(h)
                })?;
                set_once(&mut expect, h, "--expect-sha256")?
            }
            Arg::Long("der") => der = true,
            Arg::Long("audit-checkpoint") => checkpoint = true,
            Arg::Long("jobs") => {
                let n = value_with(&mut parser, "--jobs", |s| match s.parse::<usize>() {
                    Ok(n) if (1..=64).contains(&n) => Ok(n),
                    _ => Err(Error::new("expected a number of sessions from 1 to 64")),
                })?;
                set_once(&mut jobs, n, "--jobs")?
            }
            Arg::Short('h') | Arg::Long("help") => return Err(Error::info(USAGE)),
            Arg::Short('V') | Arg::Long("version") => return Err(cli::version("card-sign")),
            other => return Err(cli::unexpected(other)),
        }
    }
    if key.is_none() && ca.is_none() {
        return Err(Error::usage("name the key with --key URI, or the issuing CA with --ca FILE"));
    }
    if chain.is_some() && ca.is_none() {
        return Err(Error::usage("--chain lists the CAs above the --ca issuer: give --ca FILE"));
    }
    if responder.is_some() && ca.is_none() {
        return Err(Error::usage("--responder signs for a CA: give the CA with --ca FILE"));
    }
    if db.is_some() && ca.is_none() {
        return Err(Error::usage(
            "--db is a CA's database: give the CA with --ca FILE (a root's own self-signature is made without --db)",
        ));
    }
    if checkpoint
        && (chain.is_some()
            || responder.is_some()
            || db.is_some()
            || !allow.is_empty()
            || expect.is_some()
            || der
            || jobs.is_some())
    {
        return Err(Error::usage(
            "--audit-checkpoint takes only --key or --ca and the token and audit flags (name the log with --audit)",
        ));
    }
    if checkpoint && flags.audit == audit::Choice::Off {
        return Err(Error::usage("--audit-checkpoint signs an audit log: --no-audit leaves none"));
    }
    let jobs = jobs.unwrap_or(1);
    Ok(Args { flags, key, ca, chain, responder, db, allow, expect_sha256: expect, der, jobs, checkpoint })
}

/// A file named on the command line (UTF-8, as the messages quote it).
fn path(parser: &mut Parser) -> Result<PathBuf> {
    Ok(PathBuf::from(value(parser)?))
}

fn run(args: Vec<OsString>) -> Result<()> {
    let args = parse_args(args)?;
    audit::setup(&args.flags.audit, args.db.as_ref().and_then(Location::dir));
    let ca = args.ca.as_deref().map(CaCert::read).transpose()?;
    let above = match (&ca, &args.chain) {
        (Some(ca), Some(path)) => ca.path_above(CaCert::read_all(path)?)?,
        _ => Vec::new(),
    };
    if args.checkpoint {
        return checkpoint(&args, ca.as_ref());
    }
    let responder = args.responder.as_deref().map(CaCert::read).transpose()?;
    let checked = match (&responder, &ca) {
        (Some(r), Some(ca)) => Some(policy::check_ocsp_responder(r, ca)?),
        _ => None,
    };
    // The database must be the CA's; it keeps the CA's certificate once
    // something is reserved.
    let db = match (&args.db, &ca) {
        (Some(at), Some(ca)) => Some(Mutex::new((Store::create_of(at, ca, "card-sign --db")?, false))),
        _ => None,
    };
    let gate = Gate { ca: ca.as_ref(), above: &above, responder: checked, db: db.as_ref() };
    let mut out = io::Writer::stdout(args.der)?;
    let mut input = io::stdin();
    // The module loads while the first block is awaited; the token is
    // opened (the login) only when it has arrived, so bad input fails
    // without a login.
    let preload = module::Preload::start(
        args.flags.module.as_deref(),
        args.flags.module_args.as_deref(),
        args.key.as_ref(),
    );
    let Some(first) = input.next_object()? else { return Ok(()) };
    let module = preload.wait()?;
    refuse_unsafe_jobs(&args, &module)?;
    let ks = KeySession::open_loaded(
        module,
        &args.flags,
        args.key.as_ref(),
        responder.as_ref().or(ca.as_ref()).map(|c| &c.tbs.subject_public_key_info),
        session::Wants::default(),
    )?;
    // The reader thread takes stdin over; it is unbuffered here, so nothing
    // read ahead is lost.
    drop(input);
    let key_uri = ks.uri.clone();
    let sign = |signer: &Signer, blocks| sign_batch(&args, gate, signer, blocks, &key_uri);
    let batch = if db.is_some() { stream::DB_BATCH } else { stream::SIGN_BATCH };
    stream::sign_stream(&ks, args.jobs, batch, first, &mut out, sign, Pending::finish)
}

/// `--jobs` above 1 only with a module that may be called from several
/// threads at once: refused once the module is loaded, before the login
/// (an audit event) and before anything is signed.
fn refuse_unsafe_jobs(args: &Args, module: &cardca::cryptoki::context::Pkcs11) -> Result<()> {
    if args.jobs <= 1 {
        return Ok(());
    }
    if !module::threads_ok() {
        let path = module::module_path(args.flags.module.as_deref(), args.key.as_ref())?;
        return Err(Error::new(format!(
            "--jobs {}: the module {} cannot lock for several threads (C_Initialize: CKR_CANT_LOCK)",
            args.jobs,
            path.display()
        ))
        .hint("sign with --jobs 1"));
    }
    // A module whose C_GetInfo fails is not one known to crash.
    if let Some(name) = module.get_library_info().ok().and_then(|i| module::known_thread_crash(&i)) {
        return Err(Error::new(format!(
            "--jobs {}: {name} crashes when one process signs from several threads \
             (measured: SIGSEGV in 2 of 5 runs of --jobs 2)",
            args.jobs
        ))
        .hint("sign with --jobs 1"));
    }
    Ok(())
}

/// `--audit-checkpoint`: under the log's lock, the token signs the number
/// and `prev` of the line about to be written (the head of the whole
/// chain); the signature, verified first, goes into that line, which is
/// also printed, to be kept outside the log.
fn checkpoint(args: &Args, ca: Option<&CaCert>) -> Result<()> {
    let Some(log) = audit::log() else {
        return Err(Error::new("--audit-checkpoint: no audit log to sign")
            .hint("name it with --audit FILE or $CARDCA_AUDIT"));
    };
    let mut out = std::io::stdout().lock();
    let ks = KeySession::open(
        &args.flags,
        args.key.as_ref(),
        ca.map(|c| &c.tbs.subject_public_key_info),
        session::Wants::default(),
    )?;
    let signer = ks.signer()?;
    let alg = SigAlg::for_key(signer.spec, None, false)?;
    let alg_hex = hex::encode(&alg.identifier()?.to_der()?);
    let lines = log.append_with(|seq, prev| {
        let (_, signature) = signer
            .sign_on_token(alg, audit::checkpoint_message(seq, prev))
            .and_then(Unverified::verify)
            .context("signing the checkpoint")?;
        Ok(vec![Event::checkpoint(&ks.uri, &alg_hex, &hex::encode(&signature))])
    })?;
    use std::io::Write;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The issuer whose policy every block must pass.
#[derive(Clone, Copy)]
struct Gate<'a> {
    ca: Option<&'a CaCert>,
    above: &'a [CaCert],
    /// `--responder`: the delegated OCSP responder whose key signs,
    /// checked against the CA once for the stream.
    responder: Option<policy::Responder<'a>>,
    /// `--db`: the record every block is cleared with before it is
    /// signed, and whether it keeps the CA's certificate yet.
    db: Option<&'a Mutex<(Store, bool)>>,
}

/// A block the token has signed, its signature not yet verified.
struct Pending {
    index: usize,
    label: &'static str,
    alg: SigAlg,
    signature: Unverified,
    /// An OCSP response's ResponseData and the responder certificate
    /// that goes with it (none when the CA signs itself).
    ocsp: Option<(ocsp::ResponseData, Option<Vec<u8>>)>,
}

impl Pending {
    /// Verifies the signature and assembles the certificate or CRL.
    fn finish(self) -> Result<Signed> {
        let index = self.index;
        (|| {
            let (tbs, signature) = self.signature.verify().context("signing")?;
            if let Some((data, responder)) = &self.ocsp {
                return Ok((
                    self.label,
                    ocsp::assemble(data, &self.alg.identifier()?, &signature, responder.as_deref())?,
                ));
            }
            Ok((self.label, cert::assemble(&tbs, &self.alg.identifier()?, &signature)?))
        })()
        .map_err(|e: Error| e.context(format!("TBS {index}")))
    }
}

/// A block checked and ready for the token: what it will be signed as,
/// and what the record must clear first (with `--db`).
struct Checked {
    index: usize,
    der: Vec<u8>,
    label: &'static str,
    alg: SigAlg,
    ocsp: Option<(ocsp::ResponseData, Option<Vec<u8>>)>,
    /// A certificate's reservation, an OCSP response's status; none for
    /// a CRL.
    ask: Option<Ask>,
}

impl Checked {
    fn sign(self, signer: &Signer) -> Result<Pending> {
        let signature = signer.sign_on_token(self.alg, self.der).context("signing")?;
        let (index, label, alg, ocsp) = (self.index, self.label, self.alg, self.ocsp);
        Ok(Pending { index, label, alg, signature, ocsp })
    }
}

/// One signing thread's batch: each block checked (up to the first that
/// fails), then cleared with the record in one step (with `--db`: one
/// lock and one fdatasync reserve every certificate of the batch), then
/// signed in order, up to the first failure: nothing after a failure is
/// signed, since the stream ends there. With an audit log, each block's
/// event: what it is, its hash, the serial or CRL number, the key;
/// refusals are events too.
fn sign_batch(
    args: &Args,
    gate: Gate<'_>,
    signer: &Signer,
    blocks: Vec<(usize, io::Object)>,
    key: &Uri,
) -> Vec<Outcome<Pending>> {
    let mut ready = Vec::with_capacity(blocks.len());
    let mut failed = None;
    for (seq, object) in blocks {
        let index = object.index;
        let what = kind(&object);
        let mut event = audit::enabled().then(|| Event::signature(what, &object.der).key(key));
        match check(args, gate, signer, object, what, &mut event) {
            Ok(c) => ready.push((seq, c, event)),
            Err(e) => {
                failed = Some((seq, Err(e.context(format!("TBS {index}"))), event));
                break;
            }
        }
    }
    if let (Some(db), Some(ca)) = (gate.db, gate.ca) {
        if let Some(refusal) = clear(db, ca, &mut ready) {
            failed = Some(refusal);
        }
    }
    let mut out = Vec::with_capacity(ready.len() + 1);
    for (seq, checked, event) in ready {
        let index = checked.index;
        let result = checked.sign(signer).map_err(|e| e.context(format!("TBS {index}")));
        let stop = result.is_err();
        out.push((seq, result, event));
        if stop {
            return out;
        }
    }
    out.extend(failed);
    out
}

/// `--db`: the record clears the batch's blocks before the token signs
/// any (serials new and now reserved, OCSP statuses true). What it does
/// not clear is cut from `ready`; the first of it comes back as the
/// batch's failure.
fn clear(
    db: &Mutex<(Store, bool)>,
    ca: &CaCert,
    ready: &mut Vec<(usize, Checked, Option<Event>)>,
) -> Option<Outcome<Pending>> {
    // Which block each ask is of (a CRL has none).
    let (at, asks): (Vec<usize>, Vec<Ask>) =
        ready.iter_mut().enumerate().filter_map(|(i, (_, c, _))| c.ask.take().map(|a| (i, a))).unzip();
    if asks.is_empty() {
        return None;
    }
    let cleared = match db.lock() {
        Ok(mut guard) => {
            let (db, kept) = &mut *guard;
            let keep = if *kept { Ok(()) } else { db.keep_ca(ca) };
            keep.and_then(|_| {
                *kept = true;
                db.clear_to_sign(&asks)
            })
        }
        Err(_) => Err(Error::new("the database's lock was poisoned by a failed thread")),
    };
    let (cut, error) = match cleared {
        Ok(c) if c.count == asks.len() => return None,
        Ok(c) => (at[c.count], c.refused.unwrap_or_else(|| Error::new("the record refused it"))),
        // The record could not be asked: nothing of the batch is signed.
        Err(e) => (0, e),
    };
    let (seq, checked, event) = ready.drain(cut..).next()?;
    Some((seq, Err(error.context(format!("TBS {}", checked.index))), event))
}

/// What a block is, by its PEM label; DER has none, and a ResponseData is
/// told apart by its shape (a TBSCertList comes as PEM from tbs-build).
fn kind(object: &io::Object) -> audit::Signed {
    match object.label.as_deref() {
        Some("TBS CERTLIST") => audit::Signed::Crl,
        Some(ocsp::TBS_LABEL) => audit::Signed::OcspResponse,
        None if ocsp::looks_like_response_data(&object.der) => audit::Signed::OcspResponse,
        _ => audit::Signed::Certificate,
    }
}

/// Adds a field to an event that may not be there (no log).
fn note(event: &mut Option<Event>, name: &'static str, value: String) {
    if let Some(e) = event.take() {
        *event = Some(e.field(name, value));
    }
}

/// Checks one block against the policy: a TBSCertificate becomes a
/// CERTIFICATE, a TBSCertList (from `tbs-build --crl`) an X509 CRL, a
/// ResponseData an OCSP response.
fn check(
    args: &Args,
    gate: Gate<'_>,
    signer: &Signer,
    object: io::Object,
    what: audit::Signed,
    event: &mut Option<Event>,
) -> Result<Checked> {
    object.expect_label(&["TBS CERTIFICATE", "TBS CERTLIST", ocsp::TBS_LABEL])?;
    let ca = gate.ca;
    if what == audit::Signed::OcspResponse {
        return check_ocsp(args, gate, signer, object, event);
    }
    if gate.responder.is_some() {
        return Err(Error::new(format!(
            "a {} with --responder: the responder's key signs OCSP responses only",
            object.label.as_deref().unwrap_or("DER object")
        )));
    }
    // A certificate's issuer is compared with the CA before its other
    // rules, a CRL's after them; either is compared once.
    let (alg, crl_issuer, label, ask) = if what == audit::Signed::Crl {
        let tbs: cardca::x509_cert::crl::TbsCertList = cert::decode_exact(&object.der, "TBSCertList")?;
        let Some(ca) = ca else { return Err(Error::new("a CRL is signed by its CA: give --ca FILE")) };
        if let Some(n) = crl_number(&tbs) {
            note(event, "crl_number", n);
        }
        let alg = cert::check_tbs_crl(&tbs)?;
        policy::check_crl(&tbs, ca, &args.allow)?;
        (alg, Some(tbs.issuer), "X509 CRL", None)
    } else {
        let tbs: TbsCert = cert::decode_exact(&object.der, "TBSCertificate")?;
        note(event, "serial", cert::serial_text(tbs.serial_number.as_bytes()));
        note(event, "subject", names::openssl_oneline(&tbs.subject));
        let alg = cert::check_tbs(&tbs)?;
        let self_signed =
            tbs.issuer.to_der()? == tbs.subject.to_der()? && tbs.subject_public_key_info == *signer.spki;
        let issuer = match ca {
            Some(ca) => policy::Issuer::Ca { ca, above: gate.above },
            None if self_signed => policy::Issuer::SelfSigned,
            None => {
                return Err(Error::new(format!(
                "it is issued by {}, not self-signed by this key; give the issuer's certificate with --ca",
                names::openssl_oneline(&tbs.issuer)
            )))
            }
        };
        if let Some(ca) = ca {
            // Named first: every other rule speaks of this issuer.
            same_issuer(&tbs.issuer, ca)?;
        }
        policy::check_certificate(&tbs, issuer, &args.allow)?;
        let ask = match gate.db {
            Some(_) => Some(Ask::Certificate(Reservation::of(&tbs, &object.der, cardca::time::now()?)?)),
            None => None,
        };
        (alg, None, "CERTIFICATE", ask)
    };
    if !alg.fits(signer.spec) {
        return Err(Error::new(format!("it asks for {} but the key is {}", alg.name(), signer.spec)));
    }
    if let (Some(ca), Some(issuer)) = (ca, &crl_issuer) {
        same_issuer(issuer, ca)?;
    }
    check_approved(args, &object.der)?;
    Ok(Checked { index: object.index, der: object.der, label, alg, ocsp: None, ask })
}

/// A `TBS OCSP RESPONSE` (a ResponseData from tbs-build --ocsp): checked
/// against the CA's OCSP rules (`policy::check_ocsp`), to be signed with
/// the CA's key or the `--responder`'s, by the algorithm that key's type
/// takes by default (a ResponseData does not name one).
fn check_ocsp(
    args: &Args,
    gate: Gate<'_>,
    signer: &Signer,
    object: io::Object,
    event: &mut Option<Event>,
) -> Result<Checked> {
    let Some(ca) = gate.ca else {
        return Err(Error::new("an OCSP response speaks for its CA: give --ca FILE"));
    };
    let data: ocsp::ResponseData = cert::decode_exact(&object.der, "ResponseData")?;
    // Named before the checks, so that a refusal's line says which.
    if let Some(single) = data.responses.first() {
        note(event, "serial", cert::serial_text(single.cert_id.serial_number.as_bytes()));
        note(event, "status", single.cert_status.name().to_string());
    }
    policy::check_ocsp(&data, ca, gate.responder, &args.allow, cardca::time::now()?)?;
    let alg = SigAlg::for_key(signer.spec, None, false)?;
    check_approved(args, &object.der)?;
    // check_ocsp allows exactly one SingleResponse.
    let ask = match (gate.db, data.responses.first()) {
        (Some(_), Some(single)) => Some(Ask::Ocsp {
            serial: cert::serial_text(single.cert_id.serial_number.as_bytes()),
            status: single.cert_status.clone(),
        }),
        _ => None,
    };
    let responder = gate.responder.map(|r| r.cert().der.clone());
    Ok(Checked {
        index: object.index,
        der: object.der,
        label: ocsp::LABEL,
        alg,
        ocsp: Some((data, responder)),
        ask,
    })
}

/// `--expect-sha256`: only the block whose hash was approved is signed.
fn check_approved(args: &Args, der: &[u8]) -> Result<()> {
    let Some(want) = &args.expect_sha256 else { return Ok(()) };
    let have = Hash::Sha256.digest(der);
    if &have != want {
        return Err(Error::new(format!(
            "it hashes to SHA-256 {}, not the approved {}; refusing to sign",
            hex::encode(&have),
            hex::encode(want)
        )));
    }
    Ok(())
}

/// The CRL number of a TBSCertList, as index.txt writes numbers.
fn crl_number(tbs: &cardca::x509_cert::crl::TbsCertList) -> Option<String> {
    use cardca::der::Decode;
    let ext = tbs.crl_extensions.as_deref()?.iter().find(|e| e.extn_id == oid::CRL_NUMBER)?;
    let n = cardca::x509_cert::ext::pkix::CrlNumber::from_der(ext.extn_value.as_bytes()).ok()?;
    Some(cert::serial_text(n.0.as_bytes()))
}

fn same_issuer(issuer: &cardca::x509_cert::name::Name, ca: &CaCert) -> Result<()> {
    if issuer.to_der()? != ca.tbs.subject.to_der()? {
        return Err(Error::new(format!(
            "its issuer {} is not the CA {}",
            names::openssl_oneline(issuer),
            ca.subject_text()
        )));
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    cli::main("card-sign", run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardca::cli::args;

    #[test]
    fn parses() {
        let a =
            parse_args(args(&["--ca", "x.pem", "--expect-sha256", &"ab".repeat(32), "--der"])).expect("ok");
        assert!(a.der && a.ca.is_some() && a.key.is_none());
        assert_eq!(a.expect_sha256.map(|h| h.len()), Some(32));
    }

    #[test]
    fn files_are_paths_not_read() {
        let a =
            parse_args(args(&["--ca", "/nonexistent/ca.pem", "--chain", "c.pem", "--responder", "r.pem"]))
                .expect("ok");
        assert_eq!(a.ca.as_deref(), Some(std::path::Path::new("/nonexistent/ca.pem")));
        assert_eq!(a.chain.as_deref(), Some(std::path::Path::new("c.pem")));
        assert_eq!(a.responder.as_deref(), Some(std::path::Path::new("r.pem")));
        assert_eq!(a.jobs, 1);
    }

    #[test]
    fn usage_errors() {
        cardca::cli::assert_usage_errors(
            parse_args,
            &[
                &[][..],
                &["--expect-sha256", "abcd", "--ca", "x"],
                &["--key", "nonsense"],
                &["x"],
                &["--key", "pkcs11:token=t", "--responder", "r.pem"],
            ],
        );
    }
}
