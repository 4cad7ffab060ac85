//! tbs-build's command line: the flags, checked against each other, into
//! one of three modes (certificates, a CRL, OCSP responses) that hold
//! paths and values. Nothing here opens a file, so every flag and every
//! refusal is unit-tested without one; `resolve` in main.rs reads the
//! certificates the paths name.

use std::ffi::OsString;
use std::path::PathBuf;

use cardca::audit::Choice;
use cardca::cli::{self, set_once, value, value_with};
use cardca::db::Location;
use cardca::der::asn1::ObjectIdentifier;
use cardca::sign::Hash;
use cardca::x509_cert::ext::pkix::name::GeneralName;
use cardca::x509_cert::name::Name;
use cardca::{names, policy, time, Error, Result};
use lexopt::{Arg, Parser};

use crate::profile::{self, Constraints, Options, Profile};

/// A CRL's nextUpdate and an OCSP response's, in days, without --days.
const NEXT_UPDATE_DAYS: u64 = 7;

pub struct Args {
    pub mode: Mode,
    /// `--der`: every mode writes DER instead of PEM.
    pub der: bool,
}

pub enum Mode {
    /// TBSCertificates from the CSRs on stdin.
    Certs(Box<CertArgs>),
    /// `--crl`: one TBSCertList.
    Crl(CrlArgs),
    /// `--ocsp`: one ResponseData per certificate.
    Ocsp(OcspArgs),
}

/// Who signs the certificates, as named on the command line.
pub enum IssuerFlag {
    /// `--ca FILE [--chain FILE]`: the issuing CA and the CAs above it.
    Ca {
        ca: PathBuf,
        chain: Option<PathBuf>,
    },
    SelfSigned,
}

pub enum ValidityFlag {
    Days(u64),
    Range(u64, u64),
}

pub enum Sans {
    Given(Vec<GeneralName>),
    Copy,
    None,
}

pub struct CertArgs {
    pub issuer: IssuerFlag,
    pub options: Options,
    pub subject: Option<Name>,
    pub csr_subject: bool,
    pub sans: Sans,
    pub validity: Option<ValidityFlag>,
    pub serial: Option<Vec<u8>>,
    pub hash: Option<Hash>,
    pub pss: bool,
}

/// What a CRL and OCSP responses share: a document the CA issues about
/// the certificates in its database, valid for some days.
pub struct CaDocument {
    pub ca: PathBuf,
    pub db: Location,
    pub days: u64,
}

impl CaDocument {
    fn new(ca: PathBuf, db: Location, days: Option<u64>) -> CaDocument {
        CaDocument { ca, db, days: days.unwrap_or(NEXT_UPDATE_DAYS) }
    }
}

pub struct CrlArgs {
    pub doc: CaDocument,
    pub hash: Option<Hash>,
    pub pss: bool,
    /// `--audit FILE` / `--no-audit` (taking a CRL number is an audit
    /// event).
    pub audit: Choice,
}

pub struct OcspArgs {
    pub doc: CaDocument,
    /// As index.txt writes them; empty for every unexpired certificate.
    pub serials: Vec<String>,
    /// `--responder FILE`: the delegated responder whose key will sign.
    pub responder: Option<PathBuf>,
}

/// Every flag as given, before they are checked against each other.
#[derive(Default)]
struct Flags {
    ca: Option<PathBuf>,
    chain: Option<PathBuf>,
    self_signed: bool,
    profile: Option<Profile>,
    subject: Option<Name>,
    csr_subject: bool,
    san: Option<Vec<GeneralName>>,
    copy_san: bool,
    days: Option<u64>,
    not_before: Option<u64>,
    not_after: Option<u64>,
    /// Every `--serial`: one for a certificate, any number with --ocsp.
    serials: Vec<Vec<u8>>,
    path_len: Option<u8>,
    eku: Option<Vec<ObjectIdentifier>>,
    constraints: Option<Constraints>,
    crl_url: Option<String>,
    ocsp_url: Option<String>,
    ca_issuers_url: Option<String>,
    policies: Option<Vec<ObjectIdentifier>>,
    hash: Option<Hash>,
    pss: bool,
    der: bool,
    crl: bool,
    ocsp: bool,
    db: Option<Location>,
    responder: Option<PathBuf>,
    audit: Choice,
}

pub fn parse_args(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Args> {
    let flags = read_flags(args)?;
    let der = flags.der;
    if flags.crl && flags.ocsp {
        return Err(Error::usage("--crl and --ocsp exclude each other"));
    }
    if flags.responder.is_some() && !flags.ocsp {
        return Err(Error::usage("--responder goes with --ocsp"));
    }
    if flags.ocsp {
        return Ok(Args { mode: Mode::Ocsp(ocsp_args(flags)?), der });
    }
    if flags.serials.len() > 1 {
        return Err(Error::usage("--serial names one certificate; several go with --ocsp"));
    }
    let mode = if flags.crl { Mode::Crl(crl_args(flags)?) } else { Mode::Certs(Box::new(cert_args(flags)?)) };
    Ok(Args { mode, der })
}

/// The flags, each parsed on its own; a flag given twice is refused.
fn read_flags(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Flags> {
    let mut parser = Parser::from_args(args);
    let mut f = Flags::default();
    let p = &mut parser;
    while let Some(arg) = p.next()? {
        match arg {
            Arg::Long(name @ ("audit" | "no-audit")) => {
                let name = name.to_owned();
                cli::audit_flag(&mut f.audit, &name, p)?
            }
            Arg::Long("crl") => f.crl = true,
            Arg::Long("ocsp") => f.ocsp = true,
            Arg::Long("responder") => set_once(&mut f.responder, path(p)?, "--responder")?,
            Arg::Long("db") => set_once(&mut f.db, cli::db_location(p)?, "--db")?,
            Arg::Long("ca") => set_once(&mut f.ca, path(p)?, "--ca")?,
            Arg::Long("chain") => set_once(&mut f.chain, path(p)?, "--chain")?,
            Arg::Long("csr-subject") => f.csr_subject = true,
            Arg::Long("self-signed") => f.self_signed = true,
            Arg::Long("profile") => {
                set_once(&mut f.profile, value_with(p, "--profile", Profile::parse)?, "--profile")?
            }
            Arg::Long("subject") => {
                set_once(&mut f.subject, value_with(p, "--subject", names::parse_dn)?, "--subject")?
            }
            Arg::Long("san") => {
                set_once(&mut f.san, value_with(p, "--san", names::parse_general_names)?, "--san")?
            }
            Arg::Long("copy-san") => f.copy_san = true,
            Arg::Long("days") => set_once(&mut f.days, value_with(p, "--days", parse_days)?, "--days")?,
            Arg::Long("not-before") => set_once(
                &mut f.not_before,
                value_with(p, "--not-before", time::parse_rfc3339)?,
                "--not-before",
            )?,
            Arg::Long("not-after") => {
                set_once(&mut f.not_after, value_with(p, "--not-after", time::parse_rfc3339)?, "--not-after")?
            }
            Arg::Long("serial") => f.serials.push(value_with(p, "--serial", parse_serial)?),
            Arg::Long("path-len") => {
                let n = value_with(p, "--path-len", |s| {
                    s.parse::<u8>().map_err(|_| Error::new("expected a number from 0 to 255"))
                })?;
                set_once(&mut f.path_len, n, "--path-len")?
            }
            Arg::Long("eku") => set_once(&mut f.eku, value_with(p, "--eku", profile::parse_eku)?, "--eku")?,
            Arg::Long("name-constraints") => set_once(
                &mut f.constraints,
                value_with(p, "--name-constraints", profile::parse_constraints)?,
                "--name-constraints",
            )?,
            Arg::Long("crl-url") => set_once(&mut f.crl_url, value_with(p, "--crl-url", url)?, "--crl-url")?,
            Arg::Long("ocsp-url") => {
                set_once(&mut f.ocsp_url, value_with(p, "--ocsp-url", url)?, "--ocsp-url")?
            }
            Arg::Long("ca-issuers-url") => {
                set_once(&mut f.ca_issuers_url, value_with(p, "--ca-issuers-url", url)?, "--ca-issuers-url")?
            }
            Arg::Long("policy") => {
                set_once(&mut f.policies, value_with(p, "--policy", parse_policies)?, "--policy")?
            }
            Arg::Long("hash") => set_once(&mut f.hash, value_with(p, "--hash", Hash::parse)?, "--hash")?,
            Arg::Long("pss") => f.pss = true,
            Arg::Long("der") => f.der = true,
            Arg::Short('h') | Arg::Long("help") => return Err(Error::info(crate::USAGE)),
            Arg::Short('V') | Arg::Long("version") => return Err(cli::version("tbs-build")),
            other => return Err(cli::unexpected(other)),
        }
    }
    Ok(f)
}

/// A file named on the command line (UTF-8, as the messages quote it).
fn path(parser: &mut Parser) -> Result<PathBuf> {
    Ok(PathBuf::from(value(parser)?))
}

impl Flags {
    /// Whether a flag that only shapes a certificate was given: a CRL or
    /// an OCSP response takes none of them.
    fn shape_a_certificate(&self) -> bool {
        self.self_signed
            || self.copy_san
            || self.path_len.is_some()
            || self.chain.is_some()
            || self.csr_subject
            || self.profile.is_some()
            || self.subject.is_some()
            || self.san.is_some()
            || self.not_before.is_some()
            || self.not_after.is_some()
            || self.eku.is_some()
            || self.constraints.is_some()
            || self.policies.is_some()
            || self.crl_url.is_some()
            || self.ocsp_url.is_some()
            || self.ca_issuers_url.is_some()
    }
}

fn ocsp_args(f: Flags) -> Result<OcspArgs> {
    let ca = f
        .ca
        .clone()
        .ok_or_else(|| Error::usage("--ocsp needs --ca FILE (the CA whose certificates it answers for)"))?;
    let db = f.db.clone().ok_or_else(|| Error::usage("--ocsp needs --db DIR"))?;
    // It reads the database and changes nothing (card-sign logs): no
    // audit flags, unlike --crl, which takes a CRL number.
    if f.shape_a_certificate() || f.hash.is_some() || f.pss || f.audit != Choice::Default {
        return Err(Error::usage(
            "--ocsp takes only --ca, --db, --serial, --responder, --days and --der \
             (card-sign picks the signature algorithm by the responder's key)",
        ));
    }
    if f.days.is_some_and(|d| d > policy::OCSP_MAX_DAYS) {
        return Err(Error::usage(format!(
            "--days with --ocsp: at most {} (CA/B Forum BRs section 4.9.10)",
            policy::OCSP_MAX_DAYS
        )));
    }
    let mut serials: Vec<String> = Vec::new();
    for s in &f.serials {
        let s = cardca::cert::serial_text(s);
        if !serials.contains(&s) {
            serials.push(s);
        }
    }
    Ok(OcspArgs { doc: CaDocument::new(ca, db, f.days), serials, responder: f.responder })
}

fn crl_args(f: Flags) -> Result<CrlArgs> {
    let ca = f.ca.clone().ok_or_else(|| Error::usage("--crl needs --ca FILE"))?;
    let db = f.db.clone().ok_or_else(|| Error::usage("--crl needs --db DIR"))?;
    if f.shape_a_certificate() || !f.serials.is_empty() {
        return Err(Error::usage(
            "--crl takes only --ca, --db, --days, --hash, --pss, --der, --audit and --no-audit",
        ));
    }
    Ok(CrlArgs { doc: CaDocument::new(ca, db, f.days), hash: f.hash, pss: f.pss, audit: f.audit })
}

fn cert_args(mut f: Flags) -> Result<CertArgs> {
    if f.db.is_some() {
        return Err(Error::usage("--db goes with --crl or --ocsp"));
    }
    if f.audit != Choice::Default {
        return Err(Error::usage(
            "--audit and --no-audit go with --crl (certificates are logged by card-sign)",
        ));
    }
    let profile = f
        .profile
        .ok_or_else(|| Error::usage("--profile is required (root, subca, server, client, user, ocsp)"))?;
    if f.chain.is_some() && f.ca.is_none() {
        return Err(Error::usage("--chain lists the CAs above the --ca issuer: give --ca FILE"));
    }
    if f.csr_subject && f.subject.is_some() {
        return Err(Error::usage("--subject and --csr-subject exclude each other"));
    }
    let issuer = match (f.ca, f.self_signed) {
        (Some(ca), false) => IssuerFlag::Ca { ca, chain: f.chain },
        (None, true) => IssuerFlag::SelfSigned,
        (Some(_), true) => return Err(Error::usage("--ca and --self-signed exclude each other")),
        (None, false) => {
            return Err(Error::usage("give the issuer with --ca FILE, or --self-signed for a root"))
        }
    };
    match (profile, &issuer) {
        (Profile::Root, IssuerFlag::Ca { .. }) => {
            return Err(Error::usage(
                "a root is self-signed: use --self-signed, or --profile subca under --ca",
            ))
        }
        (p, IssuerFlag::SelfSigned) if p != Profile::Root => {
            return Err(Error::usage("--self-signed makes a root: use --profile root"))
        }
        _ => {}
    }
    if !profile.is_ca() && (f.path_len.is_some() || f.constraints.is_some()) {
        return Err(Error::usage("--path-len and --name-constraints apply to CA profiles (root, subca)"));
    }
    if profile != Profile::SubCa && f.eku.is_some() {
        return Err(Error::usage("--eku applies to --profile subca; leaf profiles have their fixed EKUs"));
    }
    let validity = match (f.days, f.not_before, f.not_after) {
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
    let sans = match (f.san, f.copy_san) {
        (Some(_), true) => return Err(Error::usage("--san and --copy-san exclude each other")),
        (Some(list), false) => Sans::Given(list),
        (None, true) => Sans::Copy,
        (None, false) => Sans::None,
    };
    Ok(CertArgs {
        issuer,
        options: Options {
            profile,
            path_len: f.path_len,
            eku: f.eku.unwrap_or_default(),
            constraints: f.constraints,
            crl_url: f.crl_url,
            ocsp_url: f.ocsp_url,
            ca_issuers_url: f.ca_issuers_url,
            policies: f.policies.unwrap_or_default(),
        },
        subject: f.subject,
        csr_subject: f.csr_subject,
        sans,
        validity,
        serial: f.serials.pop(),
        hash: f.hash,
        pss: f.pss,
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
    let mut bytes = cardca::hex::decode(s)?;
    while bytes.len() > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0 {
        bytes.remove(0);
    }
    if bytes[0] & 0x80 != 0 {
        bytes.insert(0, 0);
    }
    cardca::cert::check_serial(&cardca::x509_cert::serial_number::SerialNumber::new(&bytes)?)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardca::cli::args;
    use cardca::error::Kind;
    use std::path::Path;

    /// None of these files exists: parsing must not open them.
    const CA: &str = "/nonexistent/ca.pem";

    fn certs(list: &[&str]) -> CertArgs {
        match parse_args(args(list)).expect("accepted").mode {
            Mode::Certs(c) => *c,
            _ => panic!("{list:?}: not certificates"),
        }
    }

    #[test]
    fn parses_a_root() {
        let a = certs(&["--self-signed", "--profile", "root", "--days", "30", "--serial", "01"]);
        assert!(matches!(a.issuer, IssuerFlag::SelfSigned));
        assert!(matches!(a.validity, Some(ValidityFlag::Days(30))));
        assert_eq!(a.serial, Some(vec![1]));
        assert_eq!(a.options.profile, Profile::Root);
    }

    #[test]
    fn ca_and_chain_are_paths_not_read() {
        let a = certs(&[
            "--ca",
            CA,
            "--chain",
            "/nonexistent/chain.pem",
            "--profile",
            "server",
            "--san",
            "dns:a.ewak.net",
        ]);
        let IssuerFlag::Ca { ca, chain } = &a.issuer else { panic!("not --ca") };
        assert_eq!(ca, Path::new(CA));
        assert_eq!(chain.as_deref(), Some(Path::new("/nonexistent/chain.pem")));
        assert!(matches!(&a.sans, Sans::Given(list) if list.len() == 1));
        assert!(a.validity.is_none() && a.serial.is_none() && a.subject.is_none());
    }

    #[test]
    fn every_certificate_flag_lands() {
        let a = certs(&[
            "--ca",
            CA,
            "--profile",
            "subca",
            "--subject",
            "/C=NL/O=ewak.net/CN=Sub",
            "--path-len",
            "1",
            "--eku",
            "serverAuth,clientAuth",
            "--name-constraints",
            "permit:dns:ewak.net",
            "--crl-url",
            "http://ewak.net/sub.crl",
            "--ocsp-url",
            "http://ocsp.ewak.net",
            "--ca-issuers-url",
            "https://ewak.net/root.der",
            "--policy",
            "2.23.140.1.2.1,1.2.3",
            "--hash",
            "sha384",
            "--pss",
            "--not-before",
            "2026-01-01T00:00:00Z",
            "--not-after",
            "2027-01-01T00:00:00Z",
        ]);
        let o = &a.options;
        assert_eq!(o.profile, Profile::SubCa);
        assert_eq!(o.path_len, Some(1));
        assert_eq!(o.eku.len(), 2);
        assert!(o.constraints.is_some());
        assert_eq!(o.crl_url.as_deref(), Some("http://ewak.net/sub.crl"));
        assert_eq!(o.ocsp_url.as_deref(), Some("http://ocsp.ewak.net"));
        assert_eq!(o.ca_issuers_url.as_deref(), Some("https://ewak.net/root.der"));
        assert_eq!(o.policies.len(), 2);
        assert!(a.subject.is_some() && !a.csr_subject);
        assert!(matches!(a.hash, Some(Hash::Sha384)) && a.pss);
        let at = |t| time::parse_rfc3339(t).expect("time");
        let (b, e) = (at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"));
        assert!(matches!(a.validity, Some(ValidityFlag::Range(x, y)) if x == b && y == e));
    }

    #[test]
    fn csr_subject_and_copy_san() {
        let a = certs(&["--ca", CA, "--profile", "client", "--csr-subject", "--copy-san"]);
        assert!(a.csr_subject && matches!(a.sans, Sans::Copy));
        assert!(a.options.eku.is_empty() && a.options.policies.is_empty());
    }

    #[test]
    fn der_goes_with_every_mode() {
        let der = |list: &[&str]| parse_args(args(list)).expect("accepted").der;
        assert!(der(&["--self-signed", "--profile", "root", "--der"]));
        assert!(der(&["--crl", "--ca", CA, "--db", "db", "--der"]));
        assert!(der(&["--ocsp", "--ca", CA, "--db", "db", "--der"]));
        assert!(!der(&["--self-signed", "--profile", "root"]));
    }

    #[test]
    fn a_crl() {
        let Mode::Crl(c) = parse_args(args(&[
            "--crl", "--ca", CA, "--db", "db", "--days", "3", "--hash", "sha512", "--pss",
        ]))
        .expect("crl")
        .mode
        else {
            panic!("not a CRL")
        };
        assert_eq!(
            (c.doc.ca.as_path(), c.doc.db.dir().expect("a directory"), c.doc.days),
            (Path::new(CA), Path::new("db"), 3)
        );
        assert!(matches!(c.hash, Some(Hash::Sha512)) && c.pss);
        assert_eq!(c.audit, Choice::Default);
        // Taking a CRL number is an audit event: --crl takes the log flags.
        for (flags, want) in
            [(&["--audit", "a.log"][..], Choice::File("a.log".into())), (&["--no-audit"][..], Choice::Off)]
        {
            let mut list = vec!["--crl", "--ca", CA, "--db", "db"];
            list.extend_from_slice(flags);
            let Mode::Crl(c) = parse_args(args(&list)).expect("crl").mode else { panic!("not a CRL") };
            assert_eq!(c.audit, want);
        }
    }

    #[test]
    fn ocsp_responses() {
        let list =
            ["--ocsp", "--ca", CA, "--db", "db", "--serial", "01", "--serial", "0001", "--serial", "80"];
        let Mode::Ocsp(o) =
            parse_args(args(&[&list[..], &["--responder", "r.pem", "--days", "10"]].concat()))
                .expect("ocsp")
                .mode
        else {
            panic!("not OCSP")
        };
        // Each certificate once, spelled as index.txt spells it.
        assert_eq!(o.serials, ["01", "80"]);
        assert_eq!(o.responder.as_deref(), Some(Path::new("r.pem")));
        assert_eq!(o.doc.days, 10);
    }

    #[test]
    fn crl_and_ocsp_default_to_seven_days() {
        let days = |list: &[&str]| match parse_args(args(list)).expect("accepted").mode {
            Mode::Crl(c) => c.doc.days,
            Mode::Ocsp(o) => o.doc.days,
            Mode::Certs(_) => panic!("certificates"),
        };
        assert_eq!(days(&["--crl", "--ca", CA, "--db", "db"]), 7);
        assert_eq!(days(&["--ocsp", "--ca", CA, "--db", "db"]), 7);
    }

    #[test]
    fn help_and_version() {
        for flag in ["--help", "-h", "--version", "-V"] {
            let e = parse_args(args(&["--crl", flag])).err().expect("refused");
            assert_eq!(e.kind(), Kind::Info, "{flag}");
        }
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
        let root = ["--self-signed", "--profile", "root"];
        let with = |extra: &[&'static str]| [&root[..], extra].concat();
        let cases: Vec<Vec<&str>> = vec![
            vec!["--self-signed"],
            vec!["--profile", "root"],
            vec!["--self-signed", "--profile", "server"],
            with(&["--days", "0"]),
            with(&["--days", "1", "--not-before", "2026-01-01T00:00:00Z"]),
            with(&["--not-before", "2026-01-01T00:00:00Z"]),
            with(&["--not-before", "2026-01-01T00:00:00Z", "--not-after", "2026-01-01T00:00:00Z"]),
            with(&["--eku", "serverAuth"]),
            with(&["--crl-url", "ftp://x"]),
            with(&["--ocsp-url", "http://"]),
            with(&["--ca-issuers-url", "http://a b"]),
            with(&["--policy", "x.y"]),
            with(&["--hash", "sha1"]),
            with(&["--san", "dns:a", "--copy-san"]),
            with(&["--subject", "/CN=a", "--csr-subject"]),
            with(&["--path-len", "256"]),
            with(&["--name-constraints", "allow:dns:a"]),
            with(&["--serial", "00"]),
            with(&["--days", "1", "--days", "2"]),
            with(&["--db", "db"]),
            with(&["--audit", "a.log"]),
            with(&["--no-audit"]),
            with(&["--ca", CA]),
            with(&["--bogus"]),
            vec!["--self-signed", "--profile", "bogus"],
            vec!["--ca", CA, "--profile", "root"],
            vec!["--ca", CA, "--ca", CA, "--profile", "client"],
            vec!["--chain", CA, "--self-signed", "--profile", "root"],
            vec!["--ca", CA, "--profile", "client", "--path-len", "0"],
            vec!["--ca", CA, "--profile", "server", "--eku", "serverAuth"],
            vec!["--ca", CA, "--profile", "client", "--responder", "r.pem"],
            vec!["--ca", CA, "--profile", "client", "--serial", "01", "--serial", "02"],
            vec!["--crl", "--db", "db"],
            vec!["--crl", "--ca", CA],
            vec!["--crl", "--ca", CA, "--db", "db", "--profile", "root"],
            vec!["--crl", "--ca", CA, "--db", "db", "--serial", "01"],
            vec!["--crl", "--ca", CA, "--db", "db", "--responder", "r.pem"],
            vec!["--ocsp", "--ca", CA],
            vec!["--ocsp", "--db", "db"],
            vec!["--ocsp", "--crl", "--ca", CA, "--db", "db"],
            vec!["--ocsp", "--ca", CA, "--db", "db", "--days", "11"],
            vec!["--ocsp", "--ca", CA, "--db", "db", "--hash", "sha384"],
            vec!["--ocsp", "--ca", CA, "--db", "db", "--pss"],
            vec!["--ocsp", "--ca", CA, "--db", "db", "--chain", CA],
            vec!["--ocsp", "--ca", CA, "--db", "db", "--no-audit"],
        ];
        let cases: Vec<&[&str]> = cases.iter().map(Vec::as_slice).collect();
        cardca::cli::assert_usage_errors(parse_args, &cases);
    }
}
