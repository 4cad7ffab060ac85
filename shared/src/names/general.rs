//! General names: the checks of the four subjectAltName forms cardca
//! issues (DNS names, mailboxes, URIs, IP addresses), parsing the
//! `dns:`/`ip:`/`email:`/`uri:` form operators type, and a general name's
//! text for messages.

use std::net::IpAddr;

use der::asn1::{Ia5String, OctetString};
use x509_cert::ext::pkix::name::GeneralName;

use super::dn::openssl_oneline;
use crate::error::{Error, Result};

/// URI schemes a certificate may name: web and directory locations for
/// CRLs and issuers, and the identifier schemes used in SANs.
const URI_SCHEMES: &[&str] = &["http", "https", "ldap", "ldaps", "urn", "spiffe"];

/// A dNSName in the preferred name syntax (RFC 5280 section 4.2.1.6, RFC
/// 1034 section 3.5): LDH labels of 1 to 63 characters, 253 in all. With
/// `wildcard`, the leftmost label may be `*` as a whole, never directly
/// above a single label (`*.com` would cover a whole top-level domain).
/// International names are written as A-labels (`xn--...`).
pub fn check_dns(name: &str, wildcard: bool) -> Result<()> {
    let err = |why: &str| Err(Error::new(format!("dns:{name:?}: {why}")));
    if name.is_empty() {
        return err("an empty DNS name");
    }
    if !name.is_ascii() {
        return err("an international name must be written as its A-label (xn--...), not in Unicode");
    }
    if name.len() > 253 {
        return err("longer than 253 characters");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return err("an IP address is an ip: name, not a DNS name");
    }
    let body = match name.strip_prefix("*.") {
        Some(rest) if wildcard => {
            if !rest.contains('.') {
                return err("a wildcard directly above a single label covers a whole top-level domain");
            }
            rest
        }
        _ => name,
    };
    for label in body.split('.') {
        if label.is_empty() {
            return err("an empty label (a leading, trailing or double dot)");
        }
        if label.contains('*') {
            return err("a wildcard may only be the whole leftmost label (*.example.com)");
        }
        if label.len() > 63 {
            return err("a label longer than 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return err("labels hold letters, digits and hyphens only");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return err("a label starts or ends with a hyphen");
        }
    }
    Ok(())
}

/// Whether `name` passes [`check_dns`].
pub fn valid_dns(name: &str, wildcard: bool) -> bool {
    check_dns(name, wildcard).is_ok()
}

/// An rfc822Name: a mailbox `local@domain` in ASCII (RFC 5280 section
/// 4.2.1.6), the domain a DNS name.
pub fn check_email(addr: &str) -> Result<()> {
    let err = |why: &str| Err(Error::new(format!("email:{addr:?}: {why}")));
    if !addr.is_ascii() {
        return err("international mailboxes (SmtpUTF8Mailbox) are not supported");
    }
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return err("not a mailbox (local@domain)");
    };
    if local.is_empty() || local.len() > 64 || addr.len() > 254 {
        return err("the local part must have 1 to 64 characters, the address at most 254");
    }
    if !local.bytes().all(|b| b.is_ascii_graphic() && !b"@\"(),:;<>[\\]".contains(&b)) {
        return err("the local part holds characters a plain mailbox cannot");
    }
    check_dns(domain, false).map_err(|e| e.context(format!("email:{addr:?}")))
}

/// A URI: absolute, with one of [`URI_SCHEMES`], printable ASCII, and
/// for schemes with an authority a host that is a DNS name or an IP
/// address.
pub fn check_uri(uri: &str) -> Result<()> {
    let err = |why: String| Err(Error::new(format!("uri:{uri:?}: {why}")));
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return err("only printable ASCII without spaces".into());
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return err("not an absolute URI (scheme:...)".into());
    };
    if !URI_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
        return err(format!("scheme {scheme:?} is not one of {}", URI_SCHEMES.join(", ")));
    }
    if scheme.eq_ignore_ascii_case("urn") {
        return match rest.split_once(':') {
            Some((nid, nss)) if !nid.is_empty() && !nss.is_empty() => Ok(()),
            _ => err("a URN is urn:NID:NSS".into()),
        };
    }
    if !rest.starts_with("//") {
        return err(format!("a {scheme} URI has an authority (//host)"));
    }
    let host = uri_host(uri).unwrap_or_default();
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    check_dns(&host, false).map_err(|e| e.context(format!("uri:{uri:?}: host")))
}

/// The host of a URI with an authority (`scheme://user@host:port/...`),
/// lower-cased, an IPv6 literal without its brackets; None without one.
pub fn uri_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host.split(':').next()?,
    };
    Some(host.to_ascii_lowercase())
}

/// An iPAddress: 4 octets for IPv4, 16 for IPv6 (RFC 5280 section
/// 4.2.1.6). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) names an IPv4
/// host in a form name constraints and clients treat differently: it is
/// refused in favour of the IPv4 address.
pub fn check_ip(bytes: &[u8]) -> Result<()> {
    match bytes.len() {
        4 => Ok(()),
        16 if bytes[..10].iter().all(|&b| b == 0) && bytes[10..12] == [0xff, 0xff] => Err(Error::new(
            format!("ip:{}: an IPv4-mapped IPv6 address; write the IPv4 address", ip_text(bytes)),
        )),
        16 => Ok(()),
        n => Err(Error::new(format!("an iPAddress of {n} octets (4 for IPv4, 16 for IPv6)"))),
    }
}

/// A subjectAltName entry from any source (`--san`, a CSR, a TBS): only
/// the four forms a certificate of ours carries, each well-formed.
pub fn check_general_name(name: &GeneralName) -> Result<()> {
    match name {
        GeneralName::DnsName(s) => check_dns(s.as_str(), true),
        GeneralName::IpAddress(o) => check_ip(o.as_bytes()),
        GeneralName::Rfc822Name(s) => check_email(s.as_str()),
        GeneralName::UniformResourceIdentifier(s) => check_uri(s.as_str()),
        other => Err(Error::new(format!(
            "{}: only dns, ip, email and uri names are allowed in subjectAltName",
            general_name_text(other)
        ))),
    }
}

fn ia5(s: &str) -> Result<Ia5String> {
    Ia5String::new(s).map_err(|_| Error::new(format!("{s:?} is not ASCII")))
}

/// One `dns:`/`ip:`/`email:`/`uri:` entry.
pub fn parse_general_name(item: &str) -> Result<GeneralName> {
    let (kind, value) = item
        .split_once(':')
        .ok_or_else(|| Error::new(format!("{item:?}: expected dns:, ip:, email: or uri:")))?;
    let name = match kind.to_ascii_lowercase().as_str() {
        "dns" => {
            check_dns(value, true)?;
            GeneralName::DnsName(ia5(value)?)
        }
        "ip" => {
            let ip: IpAddr =
                value.parse().map_err(|_| Error::new(format!("ip:{value:?} is not an IP address")))?;
            GeneralName::IpAddress(OctetString::new(ip_bytes(ip))?)
        }
        "email" => {
            check_email(value)?;
            GeneralName::Rfc822Name(ia5(value)?)
        }
        "uri" => {
            check_uri(value)?;
            GeneralName::UniformResourceIdentifier(ia5(value)?)
        }
        other => return Err(Error::new(format!("{other:?}: name types are dns, ip, email and uri"))),
    };
    check_general_name(&name)?;
    Ok(name)
}

pub fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// An address as text: dotted IPv4, IPv6, or hex for other lengths (an
/// address with a netmask in a name constraint).
pub fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(b).unwrap_or_default()).to_string(),
        16 => IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or_default()).to_string(),
        _ => crate::hex::encode(b),
    }
}

/// A comma-separated SAN list.
pub fn parse_general_names(list: &str) -> Result<Vec<GeneralName>> {
    list.split(',').filter(|s| !s.is_empty()).map(parse_general_name).collect()
}

/// `dns:www.ewak.net` for messages.
pub fn general_name_text(name: &GeneralName) -> String {
    match name {
        GeneralName::DnsName(s) => format!("dns:{s}"),
        GeneralName::Rfc822Name(s) => format!("email:{s}"),
        GeneralName::UniformResourceIdentifier(s) => format!("uri:{s}"),
        GeneralName::IpAddress(o) => format!("ip:{}", ip_text(o.as_bytes())),
        GeneralName::DirectoryName(n) => format!("dirname:{}", openssl_oneline(n)),
        GeneralName::OtherName(o) => format!("othername:{}", o.type_id),
        GeneralName::RegisteredId(o) => format!("rid:{o}"),
        _ => "an x400Address or ediPartyName".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn general_names() {
        let names = parse_general_names(
            "dns:www.ewak.net,ip:192.0.2.1,ip:2001:db8::1,email:a@ewak.net,uri:https://ewak.net/",
        )
        .expect("sans");
        assert_eq!(names.len(), 5);
        assert_eq!(general_name_text(&names[1]), "ip:192.0.2.1");
        assert_eq!(general_name_text(&names[2]), "ip:2001:db8::1");
        assert!(parse_general_name("dns:*.ewak.net").is_ok());
        for bad in [
            "dns:-x.net",
            "dns:a..b",
            "dns:a b",
            "ip:300.1.1.1",
            "email:nobody",
            "uri:/relative",
            "dir:x",
            "www",
        ] {
            assert!(parse_general_name(bad).is_err(), "{bad}");
        }
    }
}
