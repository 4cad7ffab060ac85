//! Name constraints (RFC 5280 section 4.2.1.10): every name of a
//! certificate against the permitted and excluded subtrees of each CA
//! above it. The matching itself ([`matches`], [`dir_in`], [`dns_in`]) is
//! pure, a name and a base in, a yes or no out.

use std::net::IpAddr;

use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use super::rules::{OID_CN, OID_EMAIL_ADDRESS};
use super::who;
use crate::cert::CaCert;
use crate::error::{Error, Result};
use crate::names;

/// A name as name constraints see it (RFC 5280 section 4.2.1.10).
enum Form {
    Dns(String),
    Email(String),
    Ip(Vec<u8>),
    /// A URI's host; None for a URI without one (a URN).
    Uri(Option<String>),
    Dir(Name),
}

impl Form {
    fn of(name: &GeneralName) -> Option<Form> {
        Some(match name {
            GeneralName::DnsName(d) => Form::Dns(d.as_str().to_ascii_lowercase()),
            GeneralName::Rfc822Name(m) => Form::Email(m.as_str().to_string()),
            GeneralName::IpAddress(ip) => Form::Ip(unmap(ip.as_bytes())),
            GeneralName::UniformResourceIdentifier(u) => Form::Uri(names::uri_host(u.as_str())),
            GeneralName::DirectoryName(n) => Form::Dir(n.clone()),
            _ => return None,
        })
    }

    fn same_form(&self, base: &GeneralName) -> bool {
        matches!(
            (self, base),
            (Form::Dns(_), GeneralName::DnsName(_))
                | (Form::Email(_), GeneralName::Rfc822Name(_))
                | (Form::Ip(_), GeneralName::IpAddress(_))
                | (Form::Uri(_), GeneralName::UniformResourceIdentifier(_))
                | (Form::Dir(_), GeneralName::DirectoryName(_))
        )
    }

    fn text(&self) -> String {
        match self {
            Form::Dns(d) => format!("dns:{d}"),
            Form::Email(m) => format!("email:{m}"),
            Form::Ip(ip) => format!("ip:{}", names::ip_text(ip)),
            Form::Uri(h) => format!("uri host {}", h.as_deref().unwrap_or("(none)")),
            Form::Dir(n) => format!("dirname:{}", names::openssl_oneline(n)),
        }
    }
}

/// An IPv4-mapped IPv6 address is its IPv4 address to a constraint.
fn unmap(ip: &[u8]) -> Vec<u8> {
    if ip.len() == 16 && ip[..10].iter().all(|&b| b == 0) && ip[10..12] == [0xff, 0xff] {
        return ip[12..].to_vec();
    }
    ip.to_vec()
}

/// `name` equals `base` or lies below it (`www.ewak.net` in `ewak.net`).
fn dns_in(name: &str, base: &str) -> bool {
    let base = base.trim_start_matches('.').to_ascii_lowercase();
    base.is_empty() || name == base || name.ends_with(&format!(".{base}"))
}

/// Whether every name `name` stands for lies inside `base` (`overlap`
/// false), or whether any does (`overlap` true, for excluded subtrees). A
/// wildcard `*.D` stands for the names one label below D.
fn matches(name: &Form, base: &GeneralName, overlap: bool) -> bool {
    match (name, base) {
        (Form::Dns(n), GeneralName::DnsName(b)) => match n.strip_prefix("*.") {
            Some(parent) if overlap => {
                dns_in(parent, b.as_str())
                    || dns_in(&b.as_str().trim_start_matches('.').to_ascii_lowercase(), parent)
            }
            Some(parent) => dns_in(parent, b.as_str()),
            None => dns_in(n, b.as_str()),
        },
        (Form::Email(n), GeneralName::Rfc822Name(b)) => {
            let b = b.as_str();
            let (local, host) = n.rsplit_once('@').unwrap_or(("", n));
            let host = host.to_ascii_lowercase();
            match b.rsplit_once('@') {
                Some((bl, bh)) => local == bl && host == bh.to_ascii_lowercase(),
                None if b.starts_with('.') => host.ends_with(&b.to_ascii_lowercase()),
                None => host == b.to_ascii_lowercase(),
            }
        }
        (Form::Ip(n), GeneralName::IpAddress(b)) => {
            let b = b.as_bytes();
            b.len() == 2 * n.len() && {
                let (net, mask) = b.split_at(n.len());
                n.iter().zip(net).zip(mask).all(|((a, net), m)| a & m == net & m)
            }
        }
        (Form::Uri(Some(host)), GeneralName::UniformResourceIdentifier(b)) => {
            let b = b.as_str().to_ascii_lowercase();
            if b.starts_with('.') {
                host.ends_with(&b)
            } else {
                *host == b
            }
        }
        // A URI without a host cannot be shown to be inside a subtree;
        // for an excluded subtree, count it in (refuse rather than guess).
        (Form::Uri(None), GeneralName::UniformResourceIdentifier(_)) => overlap,
        (Form::Dir(n), GeneralName::DirectoryName(b)) => dir_in(n, b),
        _ => false,
    }
}

/// A directoryName subtree: the name begins with the base's RDNs. Values
/// compare case-insensitively with white space folded (a simplification
/// of RFC 4518 that errs towards a match, so an excluded subtree is not
/// dodged by case).
fn dir_in(name: &Name, base: &Name) -> bool {
    let fold = |a: &x509_cert::attr::AttributeTypeAndValue| {
        let text = names::atv_text(a).unwrap_or_default();
        (a.oid, text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase())
    };
    let rdns = |n: &Name| -> Vec<Vec<_>> {
        n.iter_rdn()
            .map(|r| {
                let mut v: Vec<_> = r.iter().map(fold).collect();
                v.sort();
                v
            })
            .collect()
    };
    let (n, b) = (rdns(name), rdns(base));
    b.len() <= n.len() && n[..b.len()] == b[..]
}

/// Every name of the certificate against one CA's name constraints: the
/// SANs, and from the subject the name itself (directoryName), its
/// emailAddress attributes (rfc822Name, as RFC 5280 section 4.2.1.10
/// requires) and CNs that are DNS names or IP addresses (as browsers
/// treat them).
pub(super) fn within_constraints(subject: &Name, san: &[GeneralName], ca: &CaCert) -> Result<()> {
    let Some(nc) = &ca.name_constraints else { return Ok(()) };
    let mut forms: Vec<Form> = san.iter().filter_map(Form::of).collect();
    if !subject.is_empty() {
        forms.push(Form::Dir(subject.clone()));
    }
    for atv in subject.iter() {
        let Some(text) = names::atv_text(atv) else { continue };
        if atv.oid == OID_EMAIL_ADDRESS {
            forms.push(Form::Email(text));
        } else if atv.oid == OID_CN {
            if let Ok(ip) = text.parse::<IpAddr>() {
                forms.push(Form::Ip(unmap(&names::ip_bytes(ip))));
            } else if text.contains('.') && names::valid_dns(&text, true) {
                forms.push(Form::Dns(text.to_ascii_lowercase()));
            }
        }
    }
    let permitted: &[GeneralSubtree] = nc.permitted_subtrees.as_deref().unwrap_or(&[]);
    let excluded: &[GeneralSubtree] = nc.excluded_subtrees.as_deref().unwrap_or(&[]);
    for form in &forms {
        let mut bases = permitted.iter().map(|s| &s.base).filter(|b| form.same_form(b)).peekable();
        if bases.peek().is_some() && !bases.any(|b| matches(form, b, false)) {
            return Err(Error::new(format!(
                "name constraints: {} is outside the permitted subtrees of {}",
                form.text(),
                who(ca)
            )));
        }
        if excluded.iter().any(|s| form.same_form(&s.base) && matches(form, &s.base, true)) {
            return Err(Error::new(format!(
                "name constraints: {} is within an excluded subtree of {}",
                form.text(),
                who(ca)
            )));
        }
    }
    Ok(())
}
