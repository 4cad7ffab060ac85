//! tbs-build: the policy gate. Turns CSRs into TBSCertificates that say
//! exactly what the profile and the flags say, and nothing a requester
//! asked for on its own.
//!
//! Reads CSRs (PEM or DER, any number) from stdin; writes one `TBS
//! CERTIFICATE` block per CSR to stdout. Never touches a token.

mod crl;
mod ocsp;
mod profile;

use std::ffi::OsString;
use std::io::Read;

use cardca::cert::{self, CaCert, TbsCert};
use cardca::cli::{self, set_once, value, value_with};
use cardca::der::asn1::ObjectIdentifier;
use cardca::der::asn1::SetOfVec;
use cardca::der::Encode;
use cardca::keys::{self, KeySpec};
use cardca::sign::{Hash, SigAlg};
use cardca::x509_cert::attr::AttributeTypeAndValue;
use cardca::x509_cert::certificate::Version;
use cardca::x509_cert::ext::pkix::name::GeneralName;
use cardca::x509_cert::name::{Name, RelativeDistinguishedName};
use cardca::x509_cert::serial_number::SerialNumber;
use cardca::x509_cert::time::Validity;
use cardca::{csr, hex, io, names, policy, report, time, Context, Error, Result};
use lexopt::{Arg, Parser};
use profile::{Options, Profile};

const USAGE: &str = "\
tbs-build: turn CSRs into TBSCertificates by profile (the policy gate)

Usage:
  tbs-build (--ca FILE [--chain FILE] | --self-signed) --profile PROFILE
            [--subject DN | --csr-subject] [--san LIST | --copy-san]
            [--days N | --not-before T --not-after T]
            [--serial HEX] [--path-len N] [--eku LIST] [--name-constraints LIST]
            [--crl-url URL] [--ocsp-url URL] [--ca-issuers-url URL]
            [--policy OIDS] [--hash HASH] [--pss] [--der]
  tbs-build --crl --ca FILE --db DIR [--days N] [--hash HASH] [--pss] [--der]
            [--audit FILE | --no-audit]
  tbs-build --ocsp --ca FILE --db DIR [--serial HEX]... [--responder FILE]
            [--days N] [--der]

Reads certificate signing requests (PEM or DER, any number) from stdin and
writes one TBS CERTIFICATE block per CSR to stdout, for card-sign. Each
CSR's signature is verified; weak keys (RSA under 2048 bits or with an
exponent other than 65537, other curves) and weak or unknown signature
algorithms are refused. A CSR only proves possession of its key: SANs
come only from --san (or --copy-san), and every other requested extension
is ignored, with a note on stderr. A leaf's subject (server, client,
user) is --subject, or built from its SANs (CN = the first DNS name, else
the first IP address, e-mail address or URI), never the requester's own
O, OU or C; --csr-subject keeps the CSR's subject. A CA's subject is the
CSR's unless --subject replaces it. Every name, from whatever source, is
checked: known attribute types in their string types, no control
characters, RFC 5280's length limits; DNS names in preferred syntax
(a wildcard only as the whole leftmost label, never *.TLD; A-labels for
international names), 4- or 16-octet IP addresses, mailboxes, absolute
http(s), ldap(s), urn or spiffe URIs. A TLS server certificate's CN must
be one of its DNS names or IP addresses.

Every TBS passes the issuer's policy, the same rules card-sign checks
before it signs: the issuer must be a CA allowed to sign certificates,
with room in its pathLen for a sub CA, a validity that covers the new one,
extended key usages that include the new ones, and name constraints
(its own and those of the CAs in --chain) that admit every name: SANs,
the subject, its emailAddress and any CN that is a DNS name or an IP
address. Never touches a token.

With --crl it reads nothing and writes one TBS CERTLIST: a version 2 CRL of
the CA's revocations in the database DIR (with their dates and reasons),
with the CA's key identifier and the next CRL number, which is taken from
DIR/crlnumber and incremented durably. card-sign --ca signs it.

With --ocsp it reads nothing and writes one TBS OCSP RESPONSE (an OCSP
ResponseData, RFC 6960, in RFC 5019's lightweight profile) per
certificate of the CA in DIR, or per --serial: responderID byKey (the
SHA-1 of the CA's public key, or of --responder's), one SingleResponse
whose CertID hashes the CA's name and key with SHA-1, certStatus good or
revoked (with the revocation time and reason from index.txt),
thisUpdate and producedAt now, nextUpdate a second short of --days later
(both ends count). A serial that is
not in DIR is refused, never answered good. Expired certificates are
left out unless named with --serial (RFC 6960 allows answering for them;
a revoked one stays revoked). card-sign --ca [--responder FILE] signs them
and cert-store --ocsp-dir files them by serial for a web server.

Profiles:
  root     self-signed CA: keyCertSign, cRLSign; no EKU
  subca    CA under --ca: keyCertSign, cRLSign; EKUs from --eku
  server   TLS server: digitalSignature (+ keyEncipherment for RSA); EKU
           serverAuth; at least one dns: or ip: SAN
  client   TLS client: digitalSignature; EKU clientAuth; SANs optional
  user     S/MIME user: digitalSignature (+ keyEncipherment for RSA,
           keyAgreement for EC); EKU emailProtection, clientAuth
  ocsp     delegated OCSP responder under --ca: digitalSignature; EKU
           OCSPSigning only; id-pkix-ocsp-nocheck; no SAN needed; 30 days
           by default, at most 90 (nocheck makes it unrevocable)

Options:
      --ca FILE                the issuing CA's certificate (PEM or DER)
      --chain FILE             the certificates above the --ca issuer (any
                               order): their name constraints apply too
      --self-signed            issuer = subject, signed with the CSR's own key
      --profile PROFILE        root, subca, server, client, user or ocsp
      --subject DN             the subject (/C=NL/O=.../CN=... or
                               CN=...,O=...,C=NL)
      --csr-subject            a leaf keeps the CSR's subject (checked)
      --san LIST               subjectAltNames: dns:NAME, ip:ADDR, email:ADDR,
                               uri:URI, comma-separated
      --copy-san               take the SANs the CSR requests
      --days N                 validity in days (a CRL's nextUpdate: 7; an
                               OCSP response's: 7, at most 10; root 7300,
                               subca 3650, client and user 397, ocsp 30;
                               server: what the CA/B Forum recommends
                               on the issuance date: 397, 199 from 2026-03-15,
                               99 from 2027-03-15, 46 from 2029-03-15)
      --not-before T           start of validity, RFC 3339 (default: now)
      --not-after T            end of validity, RFC 3339
      --serial HEX             the serial number (one CSR only; default: 127
                               random bits); with --ocsp, a certificate to
                               answer for (repeatable; default: all)
      --path-len N             pathLenConstraint of a CA certificate
      --eku LIST               a sub CA's extended key usages: serverAuth,
                               clientAuth, emailProtection, codeSigning,
                               timeStamping, ocspSigning or dotted OIDs
      --name-constraints LIST  a CA's name constraints: permit:dns:ewak.net,
                               exclude:ip:10.0.0.0/8, permit:email:ewak.net,
                               permit:dirname:/C=NL/O=ewak.net,
                               exclude:uri:.ewak.org
      --crl-url URL            a CRL distribution point
      --ocsp-url URL           an OCSP responder (authorityInfoAccess)
      --ca-issuers-url URL     where the issuer's certificate is published
      --policy OIDS            certificatePolicies, comma-separated OIDs
      --hash HASH              sha256, sha384 or sha512 for the issuer's
                               signature (default: by the issuer's key)
      --pss                    the issuer signs with RSASSA-PSS (RSA keys)
      --der                    write DER instead of PEM (not to a terminal)
      --crl                    build a CRL instead (with --ca and --db)
      --db DIR                 the CA database of cert-store, for --crl and
                               --ocsp
      --audit FILE             with --crl: log the CRL number taken to this
                               audit log (default: $CARDCA_AUDIT, then
                               DIR/audit.log)
      --no-audit               with --crl: write no audit log
      --ocsp                   build OCSP responses instead (with --ca and
                               --db)
      --responder FILE         with --ocsp: the delegated responder's
                               certificate (--profile ocsp, issued by --ca)
                               whose key will sign; default: the CA's key
  -h, --help                   print this help
  -V, --version                print the version

Environment:
  CARDCA_NOW                   \"now\" as RFC 3339, instead of the clock
  CARDCA_AUDIT                 the audit log of --crl when --audit is not given

Examples:
  $ csr-make --key \"$ROOT\" --subject '/C=NL/O=ewak.net/CN=ewak.net Root CA' \\
      | tbs-build --self-signed --profile root | card-sign --key \"$ROOT\" > root.pem
  $ tbs-build --ca subca-servers.pem --profile server --san dns:www.ewak.net < www.csr \\
      | card-sign --ca subca-servers.pem > www.pem
  $ tbs-build --ocsp --ca subca-servers.pem --db db/subca-servers \\
      | card-sign --ca subca-servers.pem | cert-store --ocsp-dir ocsp --ca subca-servers.pem
";

enum Issuer {
    /// The issuing CA and the CAs above it.
    Ca(Box<CaCert>, Vec<CaCert>),
    SelfSigned,
}

enum ValidityFlag {
    Days(u64),
    Range(u64, u64),
}

enum Sans {
    Given(Vec<GeneralName>),
    Copy,
    None,
}

struct Args {
    issuer: Issuer,
    options: Options,
    subject: Option<Name>,
    csr_subject: bool,
    sans: Sans,
    validity: Option<ValidityFlag>,
    serial: Option<Vec<u8>>,
    hash: Option<Hash>,
    pss: bool,
    der: bool,
    /// `--crl --db DIR`: build a CRL instead of certificates.
    crl_db: Option<std::path::PathBuf>,
    /// `--audit FILE` / `--no-audit` (with --crl: taking a CRL number is
    /// an audit event).
    audit: cardca::audit::Choice,
    /// `--ocsp --db DIR`: build OCSP responses instead.
    ocsp: Option<OcspArgs>,
}

struct OcspArgs {
    db: std::path::PathBuf,
    /// As index.txt writes them; empty for every unexpired certificate.
    serials: Vec<String>,
    responder: Option<Box<CaCert>>,
}

/// The arguments of a document the CA issues about its certificates (a
/// CRL, OCSP responses): no profile, subject or names; the caller adds
/// what its kind takes.
fn ca_document_args(path: &str, days: Option<u64>, der: bool, audit: cardca::audit::Choice) -> Result<Args> {
    Ok(Args {
        issuer: Issuer::Ca(Box::new(CaCert::read(path)?), Vec::new()),
        options: Options {
            profile: Profile::Root,
            path_len: None,
            eku: Vec::new(),
            constraints: None,
            crl_url: None,
            ocsp_url: None,
            ca_issuers_url: None,
            policies: Vec::new(),
        },
        subject: None,
        csr_subject: false,
        sans: Sans::None,
        validity: days.map(ValidityFlag::Days),
        serial: None,
        hash: None,
        pss: false,
        der,
        crl_db: None,
        audit,
        ocsp: None,
    })
}

fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Args> {
    let mut parser = Parser::from_args(args);
    let (mut ca, mut self_signed, mut prof, mut subject, mut san, mut copy_san) =
        (None, false, None, None, None, false);
    let (mut days, mut nb, mut na, mut path_len, mut eku, mut nc) = (None, None, None, None, None, None);
    let (mut crl_url, mut ocsp_url, mut ca_issuers_url, mut policy, mut hash) =
        (None, None, None, None, None);
    let (mut pss, mut der, mut crl, mut db) = (false, false, false, None);
    let (mut ocsp, mut responder, mut serials) = (false, None, Vec::new());
    let (mut chain, mut csr_subject) = (None, false);
    let mut audit = cardca::audit::Choice::Default;
    while let Some(arg) = parser.next()? {
        match arg {
            Arg::Long(f @ ("audit" | "no-audit")) => {
                let f = f.to_owned();
                cli::audit_flag(&mut audit, &f, &mut parser)?
            }
            Arg::Long("crl") => crl = true,
            Arg::Long("ocsp") => ocsp = true,
            Arg::Long("responder") => set_once(&mut responder, value(&mut parser)?, "--responder")?,
            Arg::Long("db") => set_once(&mut db, std::path::PathBuf::from(parser.value()?), "--db")?,
            Arg::Long("ca") => set_once(&mut ca, value(&mut parser)?, "--ca")?,
            Arg::Long("chain") => set_once(&mut chain, value(&mut parser)?, "--chain")?,
            Arg::Long("csr-subject") => csr_subject = true,
            Arg::Long("self-signed") => self_signed = true,
            Arg::Long("profile") => {
                set_once(&mut prof, value_with(&mut parser, "--profile", Profile::parse)?, "--profile")?
            }
            Arg::Long("subject") => {
                set_once(&mut subject, value_with(&mut parser, "--subject", names::parse_dn)?, "--subject")?
            }
            Arg::Long("san") => {
                set_once(&mut san, value_with(&mut parser, "--san", names::parse_general_names)?, "--san")?
            }
            Arg::Long("copy-san") => copy_san = true,
            Arg::Long("days") => {
                set_once(&mut days, value_with(&mut parser, "--days", parse_days)?, "--days")?
            }
            Arg::Long("not-before") => set_once(
                &mut nb,
                value_with(&mut parser, "--not-before", time::parse_rfc3339)?,
                "--not-before",
            )?,
            Arg::Long("not-after") => set_once(
                &mut na,
                value_with(&mut parser, "--not-after", time::parse_rfc3339)?,
                "--not-after",
            )?,
            Arg::Long("serial") => serials.push(value_with(&mut parser, "--serial", parse_serial)?),
            Arg::Long("path-len") => {
                let n = value_with(&mut parser, "--path-len", |s| {
                    s.parse::<u8>().map_err(|_| Error::new("expected a number from 0 to 255"))
                })?;
                set_once(&mut path_len, n, "--path-len")?
            }
            Arg::Long("eku") => {
                set_once(&mut eku, value_with(&mut parser, "--eku", profile::parse_eku)?, "--eku")?
            }
            Arg::Long("name-constraints") => set_once(
                &mut nc,
                value_with(&mut parser, "--name-constraints", profile::parse_constraints)?,
                "--name-constraints",
            )?,
            Arg::Long("crl-url") => {
                set_once(&mut crl_url, value_with(&mut parser, "--crl-url", url)?, "--crl-url")?
            }
            Arg::Long("ocsp-url") => {
                set_once(&mut ocsp_url, value_with(&mut parser, "--ocsp-url", url)?, "--ocsp-url")?
            }
            Arg::Long("ca-issuers-url") => set_once(
                &mut ca_issuers_url,
                value_with(&mut parser, "--ca-issuers-url", url)?,
                "--ca-issuers-url",
            )?,
            Arg::Long("policy") => {
                set_once(&mut policy, value_with(&mut parser, "--policy", parse_policies)?, "--policy")?
            }
            Arg::Long("hash") => {
                set_once(&mut hash, value_with(&mut parser, "--hash", Hash::parse)?, "--hash")?
            }
            Arg::Long("pss") => pss = true,
            Arg::Long("der") => der = true,
            Arg::Short('h') | Arg::Long("help") => return Err(Error::info(USAGE)),
            Arg::Short('V') | Arg::Long("version") => return Err(cli::version("tbs-build")),
            other => return Err(cli::unexpected(other)),
        }
    }
    if crl && ocsp {
        return Err(Error::usage("--crl and --ocsp exclude each other"));
    }
    if responder.is_some() && !ocsp {
        return Err(Error::usage("--responder goes with --ocsp"));
    }
    if ocsp {
        let path = ca.ok_or_else(|| {
            Error::usage("--ocsp needs --ca FILE (the CA whose certificates it answers for)")
        })?;
        let db = db.ok_or_else(|| Error::usage("--ocsp needs --db DIR"))?;
        let certificate_flags = [
            self_signed || copy_san || path_len.is_some() || chain.is_some() || csr_subject,
            prof.is_some() || subject.is_some() || san.is_some() || nb.is_some() || na.is_some(),
            eku.is_some() || nc.is_some() || policy.is_some() || hash.is_some() || pss,
            crl_url.is_some() || ocsp_url.is_some() || ca_issuers_url.is_some(),
            // It reads the database and changes nothing: card-sign logs.
            audit != cardca::audit::Choice::Default,
        ];
        if certificate_flags.contains(&true) {
            return Err(Error::usage(
                "--ocsp takes only --ca, --db, --serial, --responder, --days and --der \
                 (card-sign picks the signature algorithm by the responder's key)",
            ));
        }
        if days.is_some_and(|d| d > policy::OCSP_MAX_DAYS) {
            return Err(Error::usage(format!(
                "--days with --ocsp: at most {} (CA/B Forum BRs section 4.9.10)",
                policy::OCSP_MAX_DAYS
            )));
        }
        let mut hex_serials: Vec<String> = Vec::new();
        for s in &serials {
            let s = cardca::db::serial_hex(s);
            if !hex_serials.contains(&s) {
                hex_serials.push(s);
            }
        }
        let mut args = ca_document_args(&path, days, der, audit)?;
        args.ocsp = Some(OcspArgs {
            db,
            serials: hex_serials,
            responder: responder.map(|p| CaCert::read(&p).map(Box::new)).transpose()?,
        });
        return Ok(args);
    }
    if serials.len() > 1 {
        return Err(Error::usage("--serial names one certificate; several go with --ocsp"));
    }
    let serial = serials.pop();
    if crl {
        let path = ca.ok_or_else(|| Error::usage("--crl needs --ca FILE"))?;
        let db = db.ok_or_else(|| Error::usage("--crl needs --db DIR"))?;
        let certificate_flags = [
            self_signed || copy_san || path_len.is_some() || chain.is_some() || csr_subject,
            prof.is_some() || subject.is_some() || san.is_some() || nb.is_some() || na.is_some(),
            serial.is_some() || eku.is_some() || nc.is_some() || policy.is_some(),
            crl_url.is_some() || ocsp_url.is_some() || ca_issuers_url.is_some(),
            // It reads the database and changes nothing: card-sign logs.
            audit != cardca::audit::Choice::Default,
        ];
        if certificate_flags.contains(&true) {
            return Err(Error::usage(
                "--crl takes only --ca, --db, --days, --hash, --pss, --der, --audit and --no-audit",
            ));
        }
        let mut args = ca_document_args(&path, days, der, audit)?;
        (args.hash, args.pss, args.crl_db) = (hash, pss, Some(db));
        return Ok(args);
    }
    if db.is_some() {
        return Err(Error::usage("--db goes with --crl or --ocsp"));
    }
    if audit != cardca::audit::Choice::Default {
        return Err(Error::usage(
            "--audit and --no-audit go with --crl (certificates are logged by card-sign)",
        ));
    }
    let profile =
        prof.ok_or_else(|| Error::usage("--profile is required (root, subca, server, client, user, ocsp)"))?;
    if chain.is_some() && ca.is_none() {
        return Err(Error::usage("--chain lists the CAs above the --ca issuer: give --ca FILE"));
    }
    if csr_subject && subject.is_some() {
        return Err(Error::usage("--subject and --csr-subject exclude each other"));
    }
    let issuer = match (ca, self_signed) {
        (Some(path), false) => {
            let ca = CaCert::read(&path)?;
            let above = match chain {
                Some(chain) => ca.path_above(CaCert::read_all(&chain)?)?,
                None => Vec::new(),
            };
            Issuer::Ca(Box::new(ca), above)
        }
        (None, true) => Issuer::SelfSigned,
        (Some(_), true) => return Err(Error::usage("--ca and --self-signed exclude each other")),
        (None, false) => {
            return Err(Error::usage("give the issuer with --ca FILE, or --self-signed for a root"))
        }
    };
    match (profile, &issuer) {
        (Profile::Root, Issuer::Ca(..)) => {
            return Err(Error::usage(
                "a root is self-signed: use --self-signed, or --profile subca under --ca",
            ))
        }
        (p, Issuer::SelfSigned) if p != Profile::Root => {
            return Err(Error::usage("--self-signed makes a root: use --profile root"))
        }
        _ => {}
    }
    if !profile.is_ca() && (path_len.is_some() || nc.is_some()) {
        return Err(Error::usage("--path-len and --name-constraints apply to CA profiles (root, subca)"));
    }
    if profile != Profile::SubCa && eku.is_some() {
        return Err(Error::usage("--eku applies to --profile subca; leaf profiles have their fixed EKUs"));
    }
    let validity = match (days, nb, na) {
        (Some(d), None, None) => Some(ValidityFlag::Days(d)),
        (None, Some(b), Some(a)) => {
            if a <= b {
                return Err(Error::usage("--not-after must be after --not-before"));
            }
            Some(ValidityFlag::Range(b, a))
        }
        (None, None, None) => None,
        (Some(_), _, _) => return Err(Error::usage("--days excludes --not-before/--not-after")),
        _ => return Err(Error::usage("--not-before and --not-after go together")),
    };
    let sans = match (san, copy_san) {
        (Some(_), true) => return Err(Error::usage("--san and --copy-san exclude each other")),
        (Some(list), false) => Sans::Given(list),
        (None, true) => Sans::Copy,
        (None, false) => Sans::None,
    };
    Ok(Args {
        issuer,
        options: Options {
            profile,
            path_len,
            eku: eku.unwrap_or_default(),
            constraints: nc,
            crl_url,
            ocsp_url,
            ca_issuers_url,
            policies: policy.unwrap_or_default(),
        },
        subject,
        csr_subject,
        sans,
        validity,
        serial,
        hash,
        pss,
        der,
        crl_db: None,
        audit,
        ocsp: None,
    })
}

fn parse_days(s: &str) -> Result<u64> {
    match s.parse::<u64>() {
        Ok(n) if (1..=36500).contains(&n) => Ok(n),
        _ => Err(Error::new("expected a number of days from 1 to 36500")),
    }
}

fn url(s: &str) -> Result<String> {
    let ok = s.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme, "http" | "https" | "ldap")
            && !rest.is_empty()
            && s.bytes().all(|b| b.is_ascii_graphic())
    });
    if !ok {
        return Err(Error::new(format!("{s:?} is not an http://, https:// or ldap:// URL")));
    }
    Ok(s.to_string())
}

fn parse_policies(s: &str) -> Result<Vec<ObjectIdentifier>> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| ObjectIdentifier::new(p).map_err(|_| Error::new(format!("{p:?} is not a dotted OID"))))
        .collect()
}

/// An explicit serial: positive, non-zero, at most 20 octets.
fn parse_serial(s: &str) -> Result<Vec<u8>> {
    let mut bytes = hex::decode(s)?;
    while bytes.len() > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0 {
        bytes.remove(0);
    }
    if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    cert::check_serial(&SerialNumber::new(&bytes)?)?;
    Ok(bytes)
}

/// 16 bytes from the OS CSPRNG with the top bit cleared: positive, 127
/// bits of entropy, never zero in practice, and 16 octets in DER.
fn random_serial(urandom: &mut std::fs::File) -> Result<Vec<u8>> {
    let mut bytes = [0u8; 16];
    loop {
        urandom.read_exact(&mut bytes).context("reading /dev/urandom")?;
        bytes[0] &= 0x7f;
        // A leading zero octet would make the DER integer shorter (and a
        // zero serial is forbidden); draw again, 1 time in 128.
        if bytes[0] != 0 {
            return Ok(bytes.to_vec());
        }
    }
}

fn run(args: Vec<OsString>) -> Result<()> {
    let args = parse_args(args)?;
    let mut out = io::Writer::stdout(args.der)?;
    if let (Some(o), Issuer::Ca(ca, _)) = (&args.ocsp, &args.issuer) {
        let days = match args.validity {
            Some(ValidityFlag::Days(d)) => d,
            _ => 7,
        };
        for tbs in ocsp::build(ca, &o.db, &o.serials, o.responder.as_deref(), days)? {
            out.write(cardca::ocsp::TBS_LABEL, &tbs)?;
        }
        return Ok(());
    }
    if let (Some(dir), Issuer::Ca(ca, _)) = (&args.crl_db, &args.issuer) {
        cardca::audit::setup(&args.audit, Some(dir));
        let days = match args.validity {
            Some(ValidityFlag::Days(d)) => d,
            _ => 7,
        };
        let tbs = crl::build(ca, dir, days, args.hash, args.pss)?;
        return out.write("TBS CERTLIST", &tbs);
    }
    let now = time::now()?;
    let mut urandom = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    let mut serial_used = false;
    for object in io::stdin() {
        let object = object?;
        let index = object.index;
        let tbs = build(&args, &object, now, &mut urandom, &mut serial_used)
            .map_err(|e| e.context(format!("CSR {index}")))?;
        out.write("TBS CERTIFICATE", &tbs)?;
    }
    Ok(())
}

fn build(
    args: &Args,
    object: &io::Object,
    now: u64,
    urandom: &mut std::fs::File,
    serial_used: &mut bool,
) -> Result<Vec<u8>> {
    let csr = csr::read(object)?;
    for what in &csr.ignored {
        report::warn(format_args!(
            "CSR {}: ignoring requested {what}; extensions come from the profile",
            object.index
        ));
    }
    let san = match &args.sans {
        Sans::Given(list) => list.clone(),
        Sans::Copy => {
            for name in &csr.requested_san {
                names::check_general_name(name).context("requested subjectAltName")?;
            }
            csr.requested_san
        }
        Sans::None => Vec::new(),
    };
    let opts = &args.options;
    let subject = match &args.subject {
        Some(s) => s.clone(),
        None if args.csr_subject || opts.profile.is_ca() => {
            names::check_name(&csr.subject).context("the CSR's subject")?;
            csr.subject
        }
        None => subject_from_sans(&san)?,
    };
    let (not_before, not_after) = match args.validity {
        Some(ValidityFlag::Range(b, a)) => (b, a),
        Some(ValidityFlag::Days(d)) => (now, now + d * 86400 - 1),
        // notAfter is inclusive (RFC 5280 section 4.1.2.5): N days end one
        // second before the Nth anniversary of notBefore.
        None => (now, now + opts.profile.default_days(now) * 86400 - 1),
    };
    let serial = match &args.serial {
        Some(s) => {
            if std::mem::replace(serial_used, true) {
                return Err(Error::usage("--serial names one certificate, but a second CSR arrived"));
            }
            s.clone()
        }
        None => random_serial(urandom)?,
    };
    let subject_key_id = keys::key_id(&csr.spki);
    let (issuer_name, issuer_spec, authority_key_id) = match &args.issuer {
        Issuer::SelfSigned => (subject.clone(), csr.spec, subject_key_id.clone()),
        Issuer::Ca(ca, _) => {
            (ca.tbs.subject.clone(), KeySpec::from_spki(&ca.tbs.subject_public_key_info)?, ca.key_id.clone())
        }
    };
    let alg = SigAlg::for_key(issuer_spec, args.hash, args.pss)?;
    let extensions =
        profile::extensions(opts, csr.spec, &subject_key_id, &authority_key_id, &san, subject.is_empty())?;
    let tbs = TbsCert {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial)?,
        signature: alg.identifier()?,
        issuer: issuer_name,
        validity: Validity::new(time::x509_time(not_before)?, time::x509_time(not_after)?),
        subject,
        subject_public_key_info: csr.spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    cert::check_tbs(&tbs)?;
    let issuer = match &args.issuer {
        Issuer::SelfSigned => policy::Issuer::SelfSigned,
        Issuer::Ca(ca, above) => policy::Issuer::Ca { ca, above },
    };
    policy::check_certificate(&tbs, issuer, &[])?;
    Ok(tbs.to_der()?)
}

/// A leaf's subject when no flag gives one: `CN=` its first DNS name, else
/// its first IP address, e-mail address or URI (when it fits the CN's 64
/// characters), so index.txt and every listing can tell certificates
/// apart; never the requester's own claims.
fn subject_from_sans(san: &[GeneralName]) -> Result<Name> {
    let text = |n: &GeneralName| names::general_name_text(n).split_once(':').map(|(_, v)| v.to_string());
    let first = san
        .iter()
        .find(|n| matches!(n, GeneralName::DnsName(_)))
        .or_else(|| san.iter().find(|n| matches!(n, GeneralName::IpAddress(_))))
        .or_else(|| san.first())
        .and_then(text)
        .filter(|cn| cn.chars().count() <= 64)
        .ok_or_else(|| {
            Error::new(
                "no subject: give --subject DN, SANs to build it from (--san), \
                 or --csr-subject to keep the CSR's",
            )
        })?;
    let mut rdn = SetOfVec::new();
    rdn.insert(AttributeTypeAndValue {
        oid: ObjectIdentifier::new_unwrap("2.5.4.3"),
        value: cardca::der::Any::new(cardca::der::Tag::Utf8String, first.as_bytes())?,
    })?;
    let name = Name::hazmat_from_rdn_sequence(vec![RelativeDistinguishedName::from(rdn)].into());
    names::check_name(&name)?;
    Ok(name)
}

fn main() -> std::process::ExitCode {
    cli::main("tbs-build", run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardca::cli::args;

    #[test]
    fn parses_a_root() {
        let a = parse_args(args(&["--self-signed", "--profile", "root", "--days", "30", "--serial", "01"]))
            .expect("root");
        assert!(matches!(a.issuer, Issuer::SelfSigned));
        assert!(matches!(a.validity, Some(ValidityFlag::Days(30))));
        assert_eq!(a.serial, Some(vec![1]));
    }

    #[test]
    fn server_days_follow_the_baseline_requirements() {
        let at = |t| Profile::Server.default_days(time::parse_rfc3339(t).expect("time"));
        assert_eq!(at("2026-03-14T23:59:59Z"), 397);
        assert_eq!(at("2026-03-15T00:00:00Z"), 199);
        assert_eq!(at("2027-03-15T00:00:00Z"), 99);
        assert_eq!(at("2029-03-14T23:59:59Z"), 99);
        assert_eq!(at("2029-03-15T00:00:00Z"), 46);
        assert_eq!(Profile::Client.default_days(0), 397);
    }

    #[test]
    fn serials() {
        assert_eq!(parse_serial("80").expect("pad"), vec![0, 0x80]);
        assert_eq!(parse_serial("0001").expect("trim"), vec![1]);
        assert!(parse_serial("00").is_err());
        assert!(parse_serial(&"7f".repeat(21)).is_err());
    }

    #[test]
    fn usage_errors() {
        cardca::cli::assert_usage_errors(
            parse_args,
            &[
                &["--self-signed"][..],
                &["--profile", "root"],
                &["--self-signed", "--profile", "server"],
                &["--self-signed", "--profile", "root", "--days", "0"],
                &[
                    "--self-signed",
                    "--profile",
                    "root",
                    "--days",
                    "1",
                    "--not-before",
                    "2026-01-01T00:00:00Z",
                ],
                &["--self-signed", "--profile", "root", "--not-before", "2026-01-01T00:00:00Z"],
                &["--self-signed", "--profile", "root", "--eku", "serverAuth"],
                &["--self-signed", "--profile", "root", "--crl-url", "ftp://x"],
                &["--self-signed", "--profile", "root", "--policy", "x.y"],
                &["--self-signed", "--profile", "root", "--hash", "sha1"],
                &["--self-signed", "--profile", "root", "--san", "dns:a", "--copy-san"],
                &["--self-signed", "--profile", "bogus"],
                &["--ocsp", "--ca", "ca.pem"],
                &["--ocsp", "--db", "db"],
                &["--ocsp", "--crl", "--ca", "ca.pem", "--db", "db"],
                &["--ocsp", "--ca", "ca.pem", "--db", "db", "--days", "11"],
                &["--ocsp", "--ca", "ca.pem", "--db", "db", "--hash", "sha384"],
                &["--ca", "ca.pem", "--profile", "client", "--responder", "r.pem"],
                &["--ca", "ca.pem", "--profile", "client", "--serial", "01", "--serial", "02"],
            ],
        );
    }
}
