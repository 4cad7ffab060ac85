//! csr-make: a PKCS#10 certificate signing request for a key on the token.
//!
//! Reads nothing; writes one CSR (PEM, or DER with --der) to stdout.
//! Touches the token: logs in and signs once with the key.

use std::ffi::OsString;

use cardca::audit::{Event, Signed};
use cardca::cert;
use cardca::cli::{self, set_once, value_with};
use cardca::der::asn1::SetOfVec;
use cardca::der::{Any, Encode};
use cardca::names;
use cardca::oid;
use cardca::session::{self, KeySession};
use cardca::sign::{Hash, SigAlg};
use cardca::uri::Uri;
use cardca::x509_cert::attr::Attribute;
use cardca::x509_cert::ext::pkix::name::GeneralName;
use cardca::x509_cert::ext::pkix::SubjectAltName;
use cardca::x509_cert::name::Name;
use cardca::x509_cert::request::{CertReqInfo, Version};
use cardca::{io, Error, Result};
use lexopt::{Arg, Parser};

const USAGE: &str = "\
csr-make: make a PKCS#10 certificate signing request with a key on a token

Usage:
  csr-make --key URI --subject DN [--san LIST] [--pss] [--hash HASH] [--der]
           [--pin-source SRC] [--module PATH]

The seed article's `openssl req -new -engine pkcs11 -key slot_1-key_...`:
builds a CertificationRequest for the key's public key (from its public key
object, or from the certificate with the same id on tokens that keep no
public key objects), signs it on the token, verifies the signature, and
writes the CSR to stdout (PEM, or DER with --der).

Options:
      --key URI          the private key (RFC 7512 URI or slot_N-id_HEX form)
      --subject DN       the subject, as /C=NL/O=ewak.net/CN=www.ewak.net or
                         CN=www.ewak.net,O=ewak.net,C=NL; a backslash escapes
                         / , + = inside a value
      --san LIST         subjectAltNames to request, comma-separated:
                         dns:NAME, ip:ADDR, email:ADDR, uri:URI
      --pss              sign with RSASSA-PSS (RSA keys)
      --hash HASH        sha256, sha384 or sha512 (default: sha256 for RSA,
                         the curve's size for ECDSA)
      --der              write DER instead of PEM (not to a terminal)
      --pin-source SRC   where the user PIN comes from (file:PATH, env:VAR,
                         fd:N; default: the URI's pin-source, then the tty)
      --module PATH      the PKCS#11 module (default: $CARDCA_MODULE, then
                         p11-kit's proxy, then SoftHSM2)
      --module-args STR  the module's C_Initialize init string, which NSS
                         softokn needs (default: the URI's x-module-args,
                         then $CARDCA_MODULE_ARGS)
      --audit FILE       append a line per event (login, the signature) to this
                         audit log (default: $CARDCA_AUDIT; none without it)
      --no-audit         write no audit log, even with $CARDCA_AUDIT set
  -h, --help             print this help
  -V, --version          print the version

Environment:
  CARDCA_AUDIT           the audit log when --audit is not given

Examples:
  $ csr-make --key 'pkcs11:token=ewak.net%20PKI;object=www' \\
      --subject '/C=NL/O=ewak.net/CN=www.ewak.net' --san dns:www.ewak.net > www.csr
  $ csr-make --key slot_1-id_d893afdd... --subject 'CN=VPN gateway,O=ewak.net,C=NL'
";

struct Args {
    flags: session::Options,
    key: Uri,
    subject: Name,
    san: Vec<GeneralName>,
    pss: bool,
    hash: Option<Hash>,
    der: bool,
}

fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Args> {
    let mut parser = Parser::from_args(args);
    let mut flags = session::Options::default();
    let (mut key, mut subject, mut san, mut hash) = (None, None, None, None);
    let (mut pss, mut der) = (false, false);
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Long(f) if cli::token_flag(f) => {
                let f = f.to_owned();
                cli::parse_token_flag(&mut flags, &f, &mut parser)?;
            }
            Arg::Long("key") => set_once(&mut key, cli::uri_value(&mut parser, "--key")?, "--key")?,
            Arg::Long("subject") => {
                set_once(&mut subject, value_with(&mut parser, "--subject", names::parse_dn)?, "--subject")?
            }
            Arg::Long("san") => {
                set_once(&mut san, value_with(&mut parser, "--san", names::parse_general_names)?, "--san")?
            }
            Arg::Long("hash") => {
                set_once(&mut hash, value_with(&mut parser, "--hash", Hash::parse)?, "--hash")?
            }
            Arg::Long("pss") => pss = true,
            Arg::Long("der") => der = true,
            Arg::Short('h') | Arg::Long("help") => return Err(Error::info(USAGE)),
            Arg::Short('V') | Arg::Long("version") => return Err(cli::version("csr-make")),
            other => return Err(cli::unexpected(other)),
        }
    }
    Ok(Args {
        flags,
        key: key.ok_or_else(|| Error::usage("--key URI is required"))?,
        subject: subject.ok_or_else(|| Error::usage("--subject DN is required"))?,
        san: san.unwrap_or_default(),
        pss,
        hash,
        der,
    })
}

/// ```text
/// CertificationRequestInfo ::= SEQUENCE {      -- RFC 2986 section 4.1
///     version       INTEGER { v1(0) },
///     subject       Name,
///     subjectPKInfo SubjectPublicKeyInfo,
///     attributes    [0] Attributes }
/// ```
/// SANs go into one extensionRequest attribute (RFC 2985 section 5.4.2).
fn request_info(args: &Args, spki: cardca::x509_cert::spki::SubjectPublicKeyInfoOwned) -> Result<Vec<u8>> {
    let mut attributes = SetOfVec::new();
    if !args.san.is_empty() {
        let ext = cert::extension(oid::SUBJECT_ALT_NAME, false, &SubjectAltName(args.san.clone()))?;
        let mut values = SetOfVec::new();
        values.insert(Any::encode_from(&vec![ext])?)?;
        attributes.insert(Attribute { oid: oid::EXTENSION_REQUEST, values })?;
    }
    let info =
        CertReqInfo { version: Version::V1, subject: args.subject.clone(), public_key: spki, attributes };
    Ok(info.to_der()?)
}

fn run(args: Vec<OsString>) -> Result<()> {
    let args = parse_args(args)?;
    cardca::audit::setup(&args.flags.audit, None);
    let mut out = io::Writer::stdout(args.der)?;
    let ks = KeySession::open(
        &args.flags,
        Some(&args.key),
        None,
        session::Wants { hash: args.hash, pss: args.pss },
    )?;
    let signer = ks.signer()?;
    let alg = SigAlg::for_key(signer.spec, args.hash, args.pss)?;
    let info = request_info(&args, ks.spki.clone())?;
    let event = Event::signature(Signed::Csr, &info)
        .key(&ks.uri)
        .field("subject", names::openssl_oneline(&args.subject));
    // Logged before the request is written: no signature leaves unlogged.
    let signature = cardca::audit::record_result(event, signer.sign(alg, &info))?;
    let csr = cert::assemble(&info, &alg.identifier()?, &signature)?;
    out.write("CERTIFICATE REQUEST", &csr)
}

fn main() -> std::process::ExitCode {
    cli::main("csr-make", run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardca::cli::args;

    #[test]
    fn parses() {
        let a = parse_args(args(&[
            "--key",
            "slot_1-id_01",
            "--subject",
            "/CN=www",
            "--san",
            "dns:www.ewak.net,ip:192.0.2.1",
            "--pss",
            "--hash",
            "sha384",
            "--der",
        ]))
        .expect("parse");
        assert_eq!(a.san.len(), 2);
        assert!(a.pss && a.der);
        assert_eq!(a.hash, Some(Hash::Sha384));
    }

    #[test]
    fn usage_errors() {
        cardca::cli::assert_usage_errors(
            parse_args,
            &[
                &["--subject", "/CN=x"][..],
                &["--key", "pkcs11:"],
                &["--key", "pkcs11:", "--subject", "/C=Netherlands"],
                &["--key", "pkcs11:", "--subject", "/CN=x", "--san", "dns:-bad"],
                &["--key", "pkcs11:", "--subject", "/CN=x", "--hash", "md5"],
            ],
        );
    }
}
