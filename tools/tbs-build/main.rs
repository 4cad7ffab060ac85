//! tbs-build: the policy gate. Turns CSRs into TBSCertificates that say
//! exactly what the profile and the flags say, and nothing a requester
//! asked for on its own.
//!
//! Reads CSRs (PEM or DER, any number) from stdin; writes one `TBS
//! CERTIFICATE` block per CSR to stdout. Never touches a token.

mod args;
mod crl;
mod ocsp;
mod profile;

use std::ffi::OsString;
use std::io::Read;

use args::{parse_args, Args, CertArgs, IssuerFlag, Mode, Sans, ValidityFlag};
use cardca::cert::{self, CaCert, TbsCert};
use cardca::cli;
use cardca::der::asn1::SetOfVec;
use cardca::der::Encode;
use cardca::keys::{self, KeySpec};
use cardca::oid;
use cardca::sign::SigAlg;
use cardca::x509_cert::attr::AttributeTypeAndValue;
use cardca::x509_cert::certificate::Version;
use cardca::x509_cert::ext::pkix::name::GeneralName;
use cardca::x509_cert::name::{Name, RelativeDistinguishedName};
use cardca::x509_cert::serial_number::SerialNumber;
use cardca::x509_cert::time::Validity;
use cardca::{csr, io, names, policy, report, time, Context, Error, Result};

const USAGE: &str = "\
tbs-build: turn CSRs into TBSCertificates by profile (the policy gate)

Usage:
  tbs-build (--ca FILE [--chain FILE] | --self-signed) --profile PROFILE
            [--subject DN | --csr-subject] [--san LIST | --copy-san]
            [--days N | --not-before T --not-after T]
            [--serial HEX] [--path-len N] [--eku LIST] [--name-constraints LIST]
            [--crl-url URL] [--ocsp-url URL] [--ca-issuers-url URL]
            [--policy OIDS] [--hash HASH] [--pss] [--der]
  tbs-build --crl --ca FILE --db DIR|URI [--days N] [--hash HASH] [--pss] [--der]
            [--audit FILE | --no-audit]
  tbs-build --ocsp --ca FILE --db DIR|URI [--serial HEX]... [--responder FILE]
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
address. A refusal names its rule as card-sign does, with a hint naming
the flag that changes it where one does. Never touches a token.

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
      --db DIR|URI             the CA database of cert-store (a directory or
                               postgresql://...), for --crl and --ocsp
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

/// The issuer of certificates, its files read.
enum Issuer {
    /// The issuing CA and the CAs above it.
    Ca(Box<CaCert>, Vec<CaCert>),
    SelfSigned,
}

/// A mode with the certificates its paths name.
enum Resolved {
    Certs(Box<CertArgs>, Issuer),
    Crl(args::CrlArgs, Box<CaCert>),
    /// The CA, and `--responder`'s certificate.
    Ocsp(args::OcspArgs, Box<CaCert>, Option<Box<CaCert>>),
}

fn run(args: Vec<OsString>) -> Result<()> {
    let Args { mode, der } = parse_args(args)?;
    let resolved = resolve(mode)?;
    let mut out = io::Writer::stdout(der)?;
    match resolved {
        Resolved::Certs(args, issuer) => certificates(&args, &issuer, &mut out),
        Resolved::Crl(crl, ca) => {
            cardca::audit::setup(&crl.audit, crl.doc.db.dir());
            let tbs = crl::build(&ca, &crl.doc.db, crl.doc.days, crl.hash, crl.pss)?;
            out.write("TBS CERTLIST", &tbs)
        }
        Resolved::Ocsp(o, ca, responder) => {
            for tbs in ocsp::build(&ca, &o.doc.db, &o.serials, responder.as_deref(), o.doc.days)? {
                out.write(cardca::ocsp::TBS_LABEL, &tbs)?;
            }
            Ok(())
        }
    }
}

/// Reads the certificates the command line names: the CA first, then
/// the CAs above it (`--chain`) or the delegated responder.
fn resolve(mode: Mode) -> Result<Resolved> {
    Ok(match mode {
        Mode::Certs(args) => {
            let issuer = match &args.issuer {
                IssuerFlag::Ca { ca, chain } => {
                    let ca = CaCert::read(ca)?;
                    let above = match chain {
                        Some(chain) => ca.path_above(CaCert::read_all(chain)?)?,
                        None => Vec::new(),
                    };
                    Issuer::Ca(Box::new(ca), above)
                }
                IssuerFlag::SelfSigned => Issuer::SelfSigned,
            };
            Resolved::Certs(args, issuer)
        }
        Mode::Crl(crl) => {
            let ca = CaCert::read(&crl.doc.ca)?;
            Resolved::Crl(crl, Box::new(ca))
        }
        Mode::Ocsp(o) => {
            let ca = CaCert::read(&o.doc.ca)?;
            let responder = o.responder.as_ref().map(|p| CaCert::read(p).map(Box::new)).transpose()?;
            Resolved::Ocsp(o, Box::new(ca), responder)
        }
    })
}

/// One TBSCertificate per CSR on stdin, each written before the next CSR
/// is read.
fn certificates(args: &CertArgs, issuer: &Issuer, out: &mut io::Writer) -> Result<()> {
    let now = time::now()?;
    let mut urandom = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    let mut serial_used = false;
    for object in io::stdin() {
        let object = object?;
        let index = object.index;
        let tbs = build(args, issuer, &object, now, &mut urandom, &mut serial_used)
            .map_err(|e| e.context(format!("CSR {index}")))?;
        out.write("TBS CERTIFICATE", &tbs)?;
    }
    Ok(())
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

fn build(
    args: &CertArgs,
    issuer: &Issuer,
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
    let (issuer_name, issuer_spec, authority_key_id) = match issuer {
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
    let issuer = match issuer {
        Issuer::SelfSigned => policy::Issuer::SelfSigned,
        Issuer::Ca(ca, above) => policy::Issuer::Ca { ca, above },
    };
    policy::check_certificate_rules(&tbs, issuer, &[]).map_err(|r| with_flag_hint(r, opts.profile))?;
    Ok(tbs.to_der()?)
}

/// The policy's refusal of what the flags built: its message, as card-sign
/// words it too, and a hint naming the flag that changes the refused
/// field. Keyed on the rule, never on the message; a rule no flag of
/// tbs-build can satisfy (the CSR's key, or what the profile always
/// builds right) gets no hint.
fn with_flag_hint(refusal: policy::Refusal, profile: profile::Profile) -> Error {
    use policy::Rule;
    let hint = match refusal.rule {
        Rule::Validity => {
            "shorten --days, or choose --not-before and --not-after within the issuer's validity".to_string()
        }
        Rule::ResponderValidity => {
            format!(
                "give the responder at most {} days with --days (or --not-before and --not-after)",
                policy::OCSP_RESPONDER_MAX_DAYS
            )
        }
        Rule::PathLen => {
            "issue the sub CA under a --ca whose pathLen leaves room, or give it a smaller --path-len"
                .to_string()
        }
        Rule::Eku if profile == profile::Profile::SubCa => {
            "give the sub CA --eku within the issuer's extended key usages".to_string()
        }
        Rule::Eku => "issue it under a --ca whose extended key usages include this --profile's".to_string(),
        Rule::NameConstraints => {
            "choose --san names and a subject (--subject) within the issuer's name constraints".to_string()
        }
        Rule::ServerNames => {
            "name the host with --san dns:NAME or ip:ADDR (or --copy-san); a CN (--subject) must be one of those names"
                .to_string()
        }
        Rule::Names => "give the subject with --subject".to_string(),
        Rule::Issuer
        | Rule::Extensions
        | Rule::OcspResponder
        | Rule::SubjectKey
        | Rule::KeyUsage
        | Rule::KeyIds => return refusal.error,
    };
    refusal.error.hint(hint)
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
        oid: oid::CN,
        value: cardca::der::Any::new(cardca::der::Tag::Utf8String, first.as_bytes())?,
    })?;
    let name = Name::hazmat_from_rdn_sequence(vec![RelativeDistinguishedName::from(rdn)].into());
    names::check_name(&name)?;
    Ok(name)
}

fn main() -> std::process::ExitCode {
    cli::main("tbs-build", run)
}
