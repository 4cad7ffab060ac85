//! Name constraints (RFC 5280 section 4.2.1.10): every name of a
//! certificate against the permitted and excluded subtrees of each CA
//! above it. The matching itself ([`matches`], [`dir_in`], [`dns_in`]) is
//! pure, a name and a base in, a yes or no out.

use std::net::IpAddr;

use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use super::who;
use crate::cert::CaCert;
use crate::error::{Error, Result};
use crate::names;
use crate::oid;

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
        if atv.oid == oid::EMAIL_ADDRESS {
            forms.push(Form::Email(text));
        } else if atv.oid == oid::CN {
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

#[cfg(test)]
mod tests {
    use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
    use x509_cert::ext::pkix::{KeyUsages, NameConstraints};

    use super::*;
    use crate::policy::testing::*;

    /// `matches(Form::of(name), base, overlap)` for one name and one base
    /// of the same form. overlap false asks "inside a permitted subtree",
    /// overlap true asks "could it be inside an excluded subtree".
    fn check(rows: &[(&str, GeneralName, GeneralName, bool, bool)]) {
        for (what, name, base, overlap, want) in rows {
            let form = Form::of(name).expect("a form constraints know");
            assert!(form.same_form(base), "{what}: not the same form");
            assert_eq!(matches(&form, base, *overlap), *want, "{what}");
        }
    }

    #[test]
    fn dns_names() {
        check(&[
            ("the base itself", dns("ewak.net"), dns("ewak.net"), false, true),
            ("a name below the base", dns("www.ewak.net"), dns("ewak.net"), false, true),
            ("deeper below", dns("a.b.ewak.net"), dns("ewak.net"), false, true),
            ("a leading dot is the same subtree", dns("www.ewak.net"), dns(".ewak.net"), false, true),
            ("a leading dot still takes the base itself", dns("ewak.net"), dns(".ewak.net"), false, true),
            (
                "a label boundary: badewak.net is not in ewak.net",
                dns("badewak.net"),
                dns("ewak.net"),
                false,
                false,
            ),
            ("the parent is not in the subtree", dns("ewak.net"), dns("www.ewak.net"), false, false),
            ("case folds, in the name and the base", dns("WWW.Ewak.NET"), dns("EWAK.net"), false, true),
            ("an empty base holds every name", dns("ewak.net"), dns(""), false, true),
            ("another domain", dns("ewak.org"), dns("ewak.net"), true, false),
        ]);
    }

    /// A wildcard `*.D` stands for every name one label below D: permitted
    /// only when D is inside the base; excluded when any of those names
    /// could be inside it.
    #[test]
    fn wildcards() {
        check(&[
            ("permitted: *.ewak.net under ewak.net", dns("*.ewak.net"), dns("ewak.net"), false, true),
            (
                "permitted: *.ewak.net is wider than www.ewak.net",
                dns("*.ewak.net"),
                dns("www.ewak.net"),
                false,
                false,
            ),
            (
                "permitted: *.www.ewak.net under www.ewak.net",
                dns("*.www.ewak.net"),
                dns("www.ewak.net"),
                false,
                true,
            ),
            (
                "excluded: *.ewak.net could be secret.ewak.net",
                dns("*.ewak.net"),
                dns("secret.ewak.net"),
                true,
                true,
            ),
            ("excluded: *.ewak.net is inside an excluded net", dns("*.ewak.net"), dns("net"), true, true),
            (
                "excluded: *.ewak.net against the base ewak.net",
                dns("*.ewak.net"),
                dns("ewak.net"),
                true,
                true,
            ),
            (
                "excluded: .secret.ewak.net with its dot",
                dns("*.ewak.net"),
                dns(".secret.ewak.net"),
                true,
                true,
            ),
            ("excluded, case folded", dns("*.EWAK.net"), dns("Secret.Ewak.Net"), true, true),
            // Two labels below cannot be one label below, but the rule
            // counts it in: refusing is the side to err on.
            (
                "excluded: a.b.ewak.net counted in (conservative)",
                dns("*.ewak.net"),
                dns("a.b.ewak.net"),
                true,
                true,
            ),
            ("excluded: another domain", dns("*.ewak.net"), dns("ewak.org"), true, false),
            ("excluded: a sibling subtree", dns("*.a.ewak.net"), dns("b.ewak.net"), true, false),
        ]);
    }

    /// RFC 5280's three rfc822Name constraint forms: a mailbox
    /// (local@host), every mailbox of one host (host), every host below a
    /// domain (.domain). The local part is case-sensitive, hosts are not.
    #[test]
    fn email_forms() {
        check(&[
            ("mailbox: the same address", email("alice@ewak.net"), email("alice@ewak.net"), false, true),
            ("mailbox: another local part", email("bob@ewak.net"), email("alice@ewak.net"), false, false),
            (
                "mailbox: the local part keeps its case",
                email("Alice@ewak.net"),
                email("alice@ewak.net"),
                false,
                false,
            ),
            ("mailbox: the host folds case", email("alice@EWAK.net"), email("alice@ewak.NET"), false, true),
            ("mailbox: another host", email("alice@mail.ewak.net"), email("alice@ewak.net"), false, false),
            ("host: any mailbox there", email("bob@ewak.net"), email("ewak.net"), false, true),
            ("host: case folded", email("bob@Ewak.Net"), email("EWAK.NET"), false, true),
            ("host: not the hosts below it", email("bob@mail.ewak.net"), email("ewak.net"), false, false),
            ("domain: a host below it", email("bob@mail.ewak.net"), email(".ewak.net"), false, true),
            ("domain: deeper below", email("bob@a.mail.ewak.net"), email(".ewak.net"), false, true),
            ("domain: not the domain's own host", email("bob@ewak.net"), email(".ewak.net"), false, false),
            ("domain: a label boundary", email("bob@badewak.net"), email(".ewak.net"), false, false),
            ("domain: case folded", email("bob@Mail.Ewak.Net"), email(".EWAK.net"), false, true),
            ("excluded host", email("eve@ewak.net"), email("ewak.net"), true, true),
        ]);
    }

    /// iPAddress bases are an address and a mask of twice its length; an
    /// IPv4-mapped IPv6 name (::ffff:a.b.c.d) is its IPv4 address.
    #[test]
    fn ip_addresses() {
        let net10 = ip(&[10, 0, 0, 0, 255, 0, 0, 0]);
        let host = ip(&[192, 0, 2, 7, 255, 255, 255, 255]);
        let mapped = |a: [u8; 4]| {
            let mut v = vec![0u8; 10];
            v.extend([0xff, 0xff]);
            v.extend(a);
            ip(&v)
        };
        let mut v6net = vec![0x20, 0x01, 0x0d, 0xb8];
        v6net.extend([0; 12]);
        v6net.extend([0xff; 4]);
        v6net.extend([0; 12]);
        let v6net = ip(&v6net);
        let v6 = |last: u8, first: u8| {
            let mut v = vec![first, 0x01, 0x0d, 0xb8];
            v.extend([0; 11]);
            v.push(last);
            ip(&v)
        };
        check(&[
            ("IPv4 inside 10/8", ip(&[10, 1, 2, 3]), net10.clone(), false, true),
            ("IPv4 outside 10/8", ip(&[11, 1, 2, 3]), net10.clone(), false, false),
            ("IPv4 host /32: the host", ip(&[192, 0, 2, 7]), host.clone(), false, true),
            ("IPv4 host /32: its neighbour", ip(&[192, 0, 2, 8]), host.clone(), false, false),
            ("IPv4-mapped IPv6 inside 10/8", mapped([10, 9, 9, 9]), net10.clone(), false, true),
            ("IPv4-mapped IPv6 caught by an excluded 10/8", mapped([10, 9, 9, 9]), net10.clone(), true, true),
            ("IPv4-mapped IPv6 outside 10/8", mapped([11, 9, 9, 9]), net10.clone(), false, false),
            ("IPv6 inside 2001:db8::/32", v6(1, 0x20), v6net.clone(), false, true),
            ("IPv6 outside 2001:db8::/32", v6(1, 0x30), v6net.clone(), false, false),
            ("IPv6 against an IPv4 base", v6(1, 0x20), net10.clone(), true, false),
            ("IPv4 against an IPv6 base", ip(&[10, 1, 2, 3]), v6net.clone(), true, false),
        ]);
        assert_eq!(unmap(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]), [10, 0, 0, 1]);
        let not_mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1];
        assert_eq!(unmap(&not_mapped), not_mapped, "::a00:1 (IPv4-compatible) is not unmapped");
    }

    /// A URI is matched by its host: a base with a leading dot holds the
    /// hosts below it, one without is that host only.
    #[test]
    fn uri_hosts() {
        check(&[
            ("the host", uri("https://www.ewak.net/crl"), uri("www.ewak.net"), false, true),
            (
                "the host, with user and port",
                uri("ldap://u@www.ewak.net:389/x"),
                uri("www.ewak.net"),
                false,
                true,
            ),
            ("a host is not its parent", uri("https://www.ewak.net/"), uri("ewak.net"), false, false),
            ("a domain: the hosts below", uri("https://www.ewak.net/"), uri(".ewak.net"), false, true),
            ("a domain: not its own host", uri("https://ewak.net/"), uri(".ewak.net"), false, false),
            ("case folded", uri("HTTPS://WWW.EWAK.NET/"), uri("Www.Ewak.Net"), false, true),
            ("an IPv6 literal host", uri("http://[2001:db8::1]/"), uri("2001:db8::1"), false, true),
            (
                "no host (a URN): never inside a permitted subtree",
                uri("urn:isbn:0451450523"),
                uri("ewak.net"),
                false,
                false,
            ),
            (
                "no host (a URN): counted in an excluded one",
                uri("urn:isbn:0451450523"),
                uri("ewak.net"),
                true,
                true,
            ),
        ]);
    }

    /// directoryName: the name begins with the base's RDNs; values compare
    /// with case and white space folded, attribute types exactly.
    #[test]
    fn dir_names() {
        let name = dn("/C=NL/O=ewak.net/OU=Web  Team/CN=www");
        let rows: &[(&str, &str, bool)] = &[
            ("a prefix", "/C=NL/O=ewak.net", true),
            ("the whole name", "/C=NL/O=ewak.net/OU=Web  Team/CN=www", true),
            ("case folded", "/C=NL/O=EWAK.NET", true),
            ("white space folded", "/C=NL/O=ewak.net/OU=web team", true),
            ("another value", "/C=NL/O=ewak.org", false),
            ("the same RDNs in another order", "/O=ewak.net/C=NL", false),
            ("not a prefix (a middle RDN)", "/O=ewak.net", false),
            ("longer than the name", "/C=NL/O=ewak.net/OU=Web Team/CN=www/CN=x", false),
            ("another attribute type, same value", "/C=NL/OU=ewak.net", false),
        ];
        for (what, base, want) in rows {
            assert_eq!(dir_in(&name, &dn(base)), *want, "{what}");
        }
        let multi = dn("/C=NL/O=ewak.net+OU=web/CN=x");
        assert!(dir_in(&multi, &dn("/C=NL/OU=WEB+O=ewak.net")), "a multi-valued RDN in another order");
    }

    /// The names of a whole certificate against one CA: the SANs, the
    /// subject as a directoryName, its emailAddress and DNS- or IP-like
    /// CNs, each against the bases of its own form only.
    #[test]
    fn whole_certificates() {
        let subtrees = |bases: Vec<GeneralName>| {
            Some(bases.into_iter().map(|base| GeneralSubtree { base, minimum: 0, maximum: None }).collect())
        };
        let nc = NameConstraints {
            permitted_subtrees: subtrees(vec![
                dns("ewak.net"),
                email(".ewak.net"),
                ip(&[10, 0, 0, 0, 255, 0, 0, 0]),
                dn_base("/C=NL/O=ewak.net"),
            ]),
            excluded_subtrees: subtrees(vec![dns("secret.ewak.net"), ip(&[10, 6, 6, 0, 255, 255, 255, 0])]),
        };
        let spki = fixture_spki("p256.pem");
        let mut exts = ca_extensions(&spki, None, &[KeyUsages::KeyCertSign]);
        exts.push(ext(oid::NAME_CONSTRAINTS, true, &nc));
        let ca = ca("/C=NL/O=ewak.net/CN=Sub", &spki, (T0, T0 + DAY), exts);
        let ok = "/C=NL/O=ewak.net/CN=x";
        let rows: &[(&str, &str, Vec<GeneralName>, Option<&str>)] = &[
            ("names inside", ok, vec![dns("www.ewak.net"), ip(&[10, 1, 1, 1])], None),
            (
                "a SAN outside",
                ok,
                vec![dns("ewak.org")],
                Some("dns:ewak.org is outside the permitted subtrees"),
            ),
            (
                "a SAN excluded",
                ok,
                vec![dns("a.secret.ewak.net")],
                Some("dns:a.secret.ewak.net is within an excluded"),
            ),
            (
                "a wildcard over an excluded subtree",
                ok,
                vec![dns("*.ewak.net")],
                Some("dns:*.ewak.net is within an excluded"),
            ),
            (
                "an excluded IPv4-mapped SAN",
                ok,
                vec![ip(&mapped_v6([10, 6, 6, 1]))],
                Some("ip:10.6.6.1 is within an excluded"),
            ),
            (
                "the subject outside",
                "/C=NL/O=ewak.org/CN=x",
                vec![],
                Some("dirname:/C=NL/O=ewak.org/CN=x is outside"),
            ),
            ("the subject's case does not matter", "/C=NL/O=EWAK.NET/CN=x", vec![], None),
            (
                "a CN that is a DNS name",
                "/C=NL/O=ewak.net/CN=www.ewak.org",
                vec![],
                Some("dns:www.ewak.org is outside"),
            ),
            (
                "a CN that is an excluded IP",
                "/C=NL/O=ewak.net/CN=10.6.6.2",
                vec![],
                Some("ip:10.6.6.2 is within an excluded"),
            ),
            ("a CN that is no host name", "/C=NL/O=ewak.net/CN=Alice Smith", vec![], None),
            (
                "an emailAddress in the subject",
                "/C=NL/O=ewak.net/emailAddress=a@ewak.org",
                vec![],
                Some("email:a@ewak.org is outside"),
            ),
            ("an email SAN under .ewak.net", ok, vec![email("a@mail.ewak.net")], None),
            ("a form with no permitted base (URI) is free", ok, vec![uri("https://ewak.org/")], None),
        ];
        for (what, subject, san, want) in rows {
            expect(what, within_constraints(&dn(subject), san, &ca), *want);
        }
        let free = super::super::testing::root(&spki);
        expect("a CA without name constraints", within_constraints(&dn(ok), &[dns("ewak.org")], &free), None);
    }

    fn dn_base(text: &str) -> GeneralName {
        GeneralName::DirectoryName(dn(text))
    }

    fn mapped_v6(a: [u8; 4]) -> Vec<u8> {
        let mut v = vec![0u8; 10];
        v.extend([0xff, 0xff]);
        v.extend(a);
        v
    }
}
