//! Profiles: which extensions each kind of certificate gets, and the rules
//! an issuer imposes on what it may sign. Every refusal names its rule.

use std::net::IpAddr;

use cardca::cert;
use cardca::der::asn1::{Ia5String, ObjectIdentifier, OctetString};
use cardca::keys::KeySpec;
use cardca::names;
use cardca::oid;
use cardca::policy::EKU_NAMES;
use cardca::x509_cert::ext::pkix::constraints::name::{GeneralSubtree, GeneralSubtrees};
use cardca::x509_cert::ext::pkix::crl::dp::DistributionPoint;
use cardca::x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use cardca::x509_cert::ext::pkix::{
    certpolicy::PolicyInformation, AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier,
    BasicConstraints, CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};
use cardca::x509_cert::ext::Extension;
use cardca::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Root,
    SubCa,
    Server,
    Client,
    User,
    /// A delegated OCSP responder (RFC 6960 section 4.2.2.2).
    Ocsp,
}

impl Profile {
    pub fn parse(s: &str) -> Result<Profile> {
        Ok(match s {
            "root" => Profile::Root,
            "subca" => Profile::SubCa,
            "server" => Profile::Server,
            "client" => Profile::Client,
            "user" => Profile::User,
            "ocsp" => Profile::Ocsp,
            _ => {
                return Err(Error::usage(format!(
                    "unknown profile {s:?} (root, subca, server, client, user, ocsp)"
                )))
            }
        })
    }

    pub fn is_ca(self) -> bool {
        matches!(self, Profile::Root | Profile::SubCa)
    }

    /// Default validity in days: 20 years for a root, 10 for a sub CA, 397
    /// days for client and user certificates, and for TLS servers the
    /// longest the CA/B Forum's Baseline Requirements (section 6.3.2, as
    /// amended by SC-081) recommend for a certificate issued at
    /// `not_before`: one day under each MUST NOT limit of 398, 200, 100 and
    /// 47 days, as the BRs' SHOULD NOT says and pkilint warns.
    pub fn default_days(self, not_before: u64) -> u64 {
        match self {
            Profile::Root => 7300,
            Profile::SubCa => 3650,
            Profile::Server => {
                // 2026-03-15, 2027-03-15 and 2029-03-15, 00:00:00 UTC.
                const STEPS: [(u64, u64); 3] = [(1773532800, 397), (1805068800, 199), (1868227200, 99)];
                STEPS.iter().find(|(until, _)| not_before < *until).map_or(46, |(_, days)| *days)
            }
            Profile::Client | Profile::User => 397,
            // Short, as its nocheck extension makes it unrevocable: a
            // monthly renewal (policy caps it at OCSP_RESPONDER_MAX_DAYS).
            Profile::Ocsp => 30,
        }
    }
}

/// `serverAuth,clientAuth` or dotted OIDs.
pub fn parse_eku(list: &str) -> Result<Vec<ObjectIdentifier>> {
    let mut out = Vec::new();
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let oid = match EKU_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(item)) {
            Some((_, oid)) => *oid,
            None => ObjectIdentifier::new(item).map_err(|_| {
                Error::usage(format!(
                    "unknown extended key usage {item:?} (serverAuth, clientAuth, emailProtection, codeSigning, \
                     timeStamping, ocspSigning or a dotted OID)"
                ))
            })?,
        };
        if oid == oid::ANY_EKU {
            return Err(Error::usage("anyExtendedKeyUsage defeats the point of one sub CA per area"));
        }
        if !out.contains(&oid) {
            out.push(oid);
        }
    }
    Ok(out)
}

/// The name constraints given on the command line.
#[derive(Debug, Default, Clone)]
pub struct Constraints {
    pub permitted: Vec<GeneralName>,
    pub excluded: Vec<GeneralName>,
}

/// `permit:dns:ewak.net,exclude:ip:10.0.0.0/8,permit:email:ewak.net,
/// permit:dirname:/C=NL/O=ewak.net,exclude:uri:.evil.ewak.net`; a comma
/// inside a DN is escaped with a backslash.
pub fn parse_constraints(list: &str) -> Result<Constraints> {
    let mut c = Constraints::default();
    for item in names::split_unescaped(list, ',').iter().filter(|s| !s.is_empty()) {
        let (mode, rest) = item.split_once(':').ok_or_else(|| {
            Error::usage(format!("{item:?}: expected permit:TYPE:VALUE or exclude:TYPE:VALUE"))
        })?;
        let (kind, value) = rest.split_once(':').ok_or_else(|| {
            Error::usage(format!("{item:?}: expected permit:TYPE:VALUE or exclude:TYPE:VALUE"))
        })?;
        let ia5 = |s: &str| Ia5String::new(s).map_err(|_| Error::usage(format!("{s:?} is not ASCII")));
        let name = match kind {
            "dns" => {
                // RFC 5280 section 4.2.1.10: a dNSName constraint covers the
                // name and every name below it; no leading dot.
                let domain = value.trim_start_matches('.');
                names::check_dns(domain, false).map_err(|e| Error::usage(e.message()))?;
                GeneralName::DnsName(ia5(domain)?)
            }
            "uri" => {
                // A host, or a domain with a leading dot (section 4.2.1.10).
                names::check_dns(value.trim_start_matches('.'), false)
                    .map_err(|e| Error::usage(e.message()))?;
                GeneralName::UniformResourceIdentifier(ia5(value)?)
            }
            "dirname" => {
                GeneralName::DirectoryName(names::parse_dn(value).map_err(|e| Error::usage(e.message()))?)
            }
            "email" => {
                let domain = value.trim_start_matches('.').rsplit('@').next().unwrap_or("");
                if !names::valid_dns(domain, false) {
                    return Err(Error::usage(format!("{value:?} is not a mailbox, host or domain")));
                }
                GeneralName::Rfc822Name(ia5(value)?)
            }
            "ip" => {
                let (addr, bits) = value
                    .split_once('/')
                    .ok_or_else(|| Error::usage(format!("{value:?}: IP constraints are ADDRESS/PREFIX")))?;
                let addr: IpAddr =
                    addr.parse().map_err(|_| Error::usage(format!("{addr:?} is not an IP address")))?;
                let addr = names::ip_bytes(addr);
                let bits: usize =
                    bits.parse().map_err(|_| Error::usage(format!("{value:?}: bad prefix length")))?;
                if bits > addr.len() * 8 {
                    return Err(Error::usage(format!("{value:?}: prefix longer than the address")));
                }
                let mask: Vec<u8> = (0..addr.len())
                    .map(|i| {
                        let on = bits.saturating_sub(i * 8).min(8);
                        (0xff00u16 >> on) as u8
                    })
                    .collect();
                let mut bytes: Vec<u8> = addr.iter().zip(&mask).map(|(a, m)| a & m).collect();
                bytes.extend(mask);
                GeneralName::IpAddress(OctetString::new(bytes)?)
            }
            _ => {
                return Err(Error::usage(format!(
                    "{kind:?}: name constraint types are dns, email, ip, uri and dirname"
                )))
            }
        };
        match mode {
            "permit" => c.permitted.push(name),
            "exclude" => c.excluded.push(name),
            _ => return Err(Error::usage(format!("{mode:?}: expected permit or exclude"))),
        }
    }
    Ok(c)
}

/// The flags that shape the extensions.
pub struct Options {
    pub profile: Profile,
    pub path_len: Option<u8>,
    pub eku: Vec<ObjectIdentifier>,
    pub constraints: Option<Constraints>,
    pub crl_url: Option<String>,
    pub ocsp_url: Option<String>,
    pub ca_issuers_url: Option<String>,
    pub policies: Vec<ObjectIdentifier>,
}

impl Options {
    /// The extended key usages a certificate of this profile carries.
    pub fn ekus(&self) -> Vec<ObjectIdentifier> {
        match self.profile {
            Profile::Root => Vec::new(),
            Profile::SubCa => self.eku.clone(),
            Profile::Server => vec![oid::SERVER_AUTH],
            Profile::Client => vec![oid::CLIENT_AUTH],
            Profile::User => vec![oid::EMAIL_PROTECTION, oid::CLIENT_AUTH],
            Profile::Ocsp => vec![oid::OCSP_SIGNING],
        }
    }
}

fn uri(s: &str) -> Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(s).map_err(|_| Error::new(format!("{s:?} is not ASCII")))?,
    ))
}

/// The extensions of one certificate, in the order RFC 5280 lists them.
pub fn extensions(
    opts: &Options,
    spec: KeySpec,
    subject_key_id: &[u8],
    authority_key_id: &[u8],
    san: &[GeneralName],
    subject_empty: bool,
) -> Result<Vec<Extension>> {
    use cert::*;
    let mut out = Vec::new();
    let ca = opts.profile.is_ca();
    out.push(extension(
        oid::BASIC_CONSTRAINTS,
        true,
        &BasicConstraints { ca, path_len_constraint: if ca { opts.path_len } else { None } },
    )?);
    let usage = match (opts.profile, spec) {
        (p, _) if p.is_ca() => KeyUsages::KeyCertSign | KeyUsages::CRLSign,
        // RSA key transport: NSS and GnuTLS refuse an RSA TLS server
        // certificate without it, and S/MIME encrypts to RSA keys so.
        (Profile::Server | Profile::User, KeySpec::Rsa(_)) => {
            KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
        }
        // S/MIME encrypts to an EC key by key agreement (RFC 5753).
        (Profile::User, KeySpec::Ec(_)) => KeyUsages::DigitalSignature | KeyUsages::KeyAgreement,
        _ => KeyUsages::DigitalSignature.into(),
    };
    out.push(extension(oid::KEY_USAGE, true, &KeyUsage(usage))?);
    let ekus = opts.ekus();
    if !ekus.is_empty() {
        out.push(extension(oid::EXT_KEY_USAGE, false, &ExtendedKeyUsage(ekus))?);
    }
    // The CA/B Forum does not recommend an SKI in TLS server certificates
    // (BR 7.1.2.7.6); everywhere else RFC 5280 wants one.
    if opts.profile != Profile::Server {
        out.push(extension(
            oid::SUBJECT_KEY_ID,
            false,
            &SubjectKeyIdentifier(OctetString::new(subject_key_id)?),
        )?);
    }
    out.push(extension(
        oid::AUTHORITY_KEY_ID,
        false,
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(authority_key_id)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
    )?);
    if !san.is_empty() {
        // RFC 5280 section 4.2.1.6: critical when the subject is empty.
        out.push(extension(oid::SUBJECT_ALT_NAME, subject_empty, &SubjectAltName(san.to_vec()))?);
    }
    if let Some(c) = &opts.constraints {
        let subtrees = |names: &[GeneralName]| -> Option<GeneralSubtrees> {
            (!names.is_empty()).then(|| {
                names.iter().map(|n| GeneralSubtree { base: n.clone(), minimum: 0, maximum: None }).collect()
            })
        };
        out.push(extension(
            oid::NAME_CONSTRAINTS,
            true,
            &NameConstraints {
                permitted_subtrees: subtrees(&c.permitted),
                excluded_subtrees: subtrees(&c.excluded),
            },
        )?);
    }
    if let Some(url) = &opts.crl_url {
        out.push(extension(
            oid::CRL_DISTRIBUTION_POINTS,
            false,
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
                reasons: None,
                crl_issuer: None,
            }]),
        )?);
    }
    let mut access = Vec::new();
    if let Some(url) = &opts.ocsp_url {
        access.push(AccessDescription { access_method: oid::AD_OCSP, access_location: uri(url)? });
    }
    if let Some(url) = &opts.ca_issuers_url {
        access.push(AccessDescription { access_method: oid::AD_CA_ISSUERS, access_location: uri(url)? });
    }
    if !access.is_empty() {
        out.push(extension(oid::AUTHORITY_INFO_ACCESS, false, &AuthorityInfoAccessSyntax(access))?);
    }
    if opts.profile == Profile::Ocsp {
        // id-pkix-ocsp-nocheck ::= NULL, non-critical (RFC 6960 section
        // 4.2.2.2.1): clients do not ask whether the responder is revoked.
        out.push(extension(oid::OCSP_NOCHECK, false, &cardca::der::asn1::Null)?);
    }
    if !opts.policies.is_empty() {
        let infos = opts
            .policies
            .iter()
            .map(|oid| PolicyInformation { policy_identifier: *oid, policy_qualifiers: None })
            .collect();
        out.push(extension(oid::CERTIFICATE_POLICIES, false, &CertificatePolicies(infos))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_days_follow_the_baseline_requirements() {
        let at = |t| Profile::Server.default_days(cardca::time::parse_rfc3339(t).expect("time"));
        assert_eq!(at("2026-03-14T23:59:59Z"), 397);
        assert_eq!(at("2026-03-15T00:00:00Z"), 199);
        assert_eq!(at("2027-03-15T00:00:00Z"), 99);
        assert_eq!(at("2029-03-14T23:59:59Z"), 99);
        assert_eq!(at("2029-03-15T00:00:00Z"), 46);
        assert_eq!(Profile::Client.default_days(0), 397);
    }

    #[test]
    fn constraints_parse() {
        let c = parse_constraints(
            "permit:dns:.ewak.net,exclude:ip:10.0.0.0/8,permit:email:ewak.net,permit:dirname:/C=NL/O=ewak\\, inc,\
             exclude:uri:.evil.ewak.net",
        )
        .expect("nc");
        assert_eq!((c.permitted.len(), c.excluded.len()), (3, 2));
        assert_eq!(names::general_name_text(&c.permitted[2]), "dirname:/C=NL/O=ewak, inc");
        for bad in [
            "permit:dns:-x",
            "allow:dns:x.net",
            "exclude:ip:10.0.0.0/33",
            "permit:dns:*.x.net",
            "permit:uri:a b",
        ] {
            assert!(parse_constraints(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ekus() {
        assert_eq!(parse_eku("serverAuth,1.2.3.4").expect("eku").len(), 2);
        assert!(parse_eku("anyExtendedKeyUsage").is_err());
        assert!(parse_eku("2.5.29.37.0").is_err());
        assert!(parse_eku("bogus").is_err());
    }
}
