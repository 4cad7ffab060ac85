//! Distinguished names and general names as operators type them.
//!
//! Subjects come in OpenSSL's `/C=NL/O=ewak.net/CN=www` form or RFC 4514's
//! `CN=www,O=ewak.net,C=NL`; SANs as `dns:`, `ip:`, `email:`, `uri:`.

use std::net::IpAddr;

use der::asn1::{Ia5String, ObjectIdentifier, OctetString, SetOfVec};
use der::{Any, Tag};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::{Error, Result};

/// Encoding of an attribute's value, from RFC 5280 appendix A and the
/// ASN.1 upper bounds there.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// PrintableString only (countryName, serialNumber, dnQualifier).
    Printable,
    /// IA5String (emailAddress, domainComponent).
    Ia5,
    /// PrintableString when it fits, UTF8String otherwise.
    Directory,
}

struct AttrType {
    short: &'static str,
    long: &'static str,
    oid: &'static str,
    kind: Kind,
    max: usize,
}

const ATTRS: &[AttrType] = &[
    AttrType { short: "C", long: "countryName", oid: "2.5.4.6", kind: Kind::Printable, max: 2 },
    AttrType { short: "ST", long: "stateOrProvinceName", oid: "2.5.4.8", kind: Kind::Directory, max: 128 },
    AttrType { short: "L", long: "localityName", oid: "2.5.4.7", kind: Kind::Directory, max: 128 },
    AttrType { short: "O", long: "organizationName", oid: "2.5.4.10", kind: Kind::Directory, max: 64 },
    AttrType { short: "OU", long: "organizationalUnitName", oid: "2.5.4.11", kind: Kind::Directory, max: 64 },
    AttrType { short: "CN", long: "commonName", oid: "2.5.4.3", kind: Kind::Directory, max: 64 },
    AttrType { short: "street", long: "streetAddress", oid: "2.5.4.9", kind: Kind::Directory, max: 128 },
    AttrType { short: "serialNumber", long: "serialNumber", oid: "2.5.4.5", kind: Kind::Printable, max: 64 },
    AttrType { short: "title", long: "title", oid: "2.5.4.12", kind: Kind::Directory, max: 64 },
    AttrType { short: "SN", long: "surname", oid: "2.5.4.4", kind: Kind::Directory, max: 64 },
    AttrType { short: "GN", long: "givenName", oid: "2.5.4.42", kind: Kind::Directory, max: 64 },
    AttrType { short: "initials", long: "initials", oid: "2.5.4.43", kind: Kind::Directory, max: 64 },
    AttrType { short: "pseudonym", long: "pseudonym", oid: "2.5.4.65", kind: Kind::Directory, max: 128 },
    AttrType { short: "dnQualifier", long: "dnQualifier", oid: "2.5.4.46", kind: Kind::Printable, max: 64 },
    AttrType { short: "postalCode", long: "postalCode", oid: "2.5.4.17", kind: Kind::Directory, max: 40 },
    AttrType {
        short: "organizationIdentifier",
        long: "organizationIdentifier",
        oid: "2.5.4.97",
        kind: Kind::Directory,
        max: 64,
    },
    AttrType {
        short: "emailAddress",
        long: "emailAddress",
        oid: "1.2.840.113549.1.9.1",
        kind: Kind::Ia5,
        max: 255,
    },
    AttrType {
        short: "DC",
        long: "domainComponent",
        oid: "0.9.2342.19200300.100.1.25",
        kind: Kind::Ia5,
        max: 63,
    },
    AttrType {
        short: "UID",
        long: "userId",
        oid: "0.9.2342.19200300.100.1.1",
        kind: Kind::Directory,
        max: 256,
    },
];

fn lookup(name: &str) -> Option<&'static AttrType> {
    ATTRS.iter().find(|a| {
        a.short.eq_ignore_ascii_case(name)
            || a.long.eq_ignore_ascii_case(name)
            || (name.eq_ignore_ascii_case("E") && a.short == "emailAddress")
            || (name.eq_ignore_ascii_case("S") && a.short == "ST")
    })
}

fn by_oid(oid: &ObjectIdentifier) -> Option<&'static AttrType> {
    ATTRS.iter().find(|a| a.oid == oid.to_string())
}

/// PrintableString's character set (X.680 section 41.4).
fn printable(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b))
}

fn encode_value(attr: Option<&AttrType>, name: &str, value: &str) -> Result<Any> {
    if value.is_empty() {
        return Err(Error::new(format!("{name} has an empty value")));
    }
    let (kind, max) = attr.map_or((Kind::Directory, usize::MAX), |a| (a.kind, a.max));
    if value.chars().count() > max {
        return Err(Error::new(format!("{name} is longer than its limit of {max} characters")));
    }
    let (tag, ok) = match kind {
        Kind::Printable => (Tag::PrintableString, printable(value)),
        Kind::Ia5 => (Tag::Ia5String, value.is_ascii() && !value.bytes().any(|b| b.is_ascii_control())),
        Kind::Directory if printable(value) => (Tag::PrintableString, true),
        Kind::Directory => (Tag::Utf8String, !value.chars().any(char::is_control)),
    };
    if !ok {
        return Err(Error::new(format!("{name}={value:?} has characters its string type cannot hold")));
    }
    if attr.is_some_and(|a| a.short == "C")
        && !(value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(Error::new(format!("C={value:?}: a country is two upper-case letters (ISO 3166)")));
    }
    Ok(Any::new(tag, value.as_bytes())?)
}

/// Splits on `sep` where it is not escaped with a backslash.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let last = parts.last_mut().expect("non-empty");
            last.push(c);
            if let Some(n) = chars.next() {
                last.push(n);
            }
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("non-empty").push(c);
        }
    }
    parts
}

/// Removes backslash escapes: `\,` `\/` `\+` `\=` `\\` and RFC 4514's `\XX`.
fn unescape(s: &str) -> Result<String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (hex, b.get(i + 1)) {
                (Some(v), _) => {
                    out.push(v);
                    i += 3;
                }
                (None, Some(&c)) => {
                    out.push(c);
                    i += 2;
                }
                (None, None) => return Err(Error::new(format!("{s:?} ends with a lone backslash"))),
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::new(format!("{s:?} is not UTF-8 after unescaping")))
}

fn parse_atv(text: &str) -> Result<AttributeTypeAndValue> {
    let (name, raw) =
        text.split_once('=').ok_or_else(|| Error::new(format!("{text:?} is not TYPE=value")))?;
    let name = name.trim();
    let value = unescape(raw)?;
    let attr = lookup(name);
    let oid = match attr {
        Some(a) => ObjectIdentifier::new(a.oid).map_err(|e| Error::new(e.to_string()))?,
        None => ObjectIdentifier::new(name).map_err(|_| {
            Error::new(format!(
                "unknown attribute type {name:?} (use C, ST, L, O, OU, CN, ... or a dotted OID)"
            ))
        })?,
    };
    let value = encode_value(attr.or_else(|| by_oid(&oid)), name, &value)?;
    Ok(AttributeTypeAndValue { oid, value })
}

fn rdn(text: &str) -> Result<RelativeDistinguishedName> {
    let mut set = SetOfVec::new();
    for atv in split_unescaped(text, '+') {
        set.insert(parse_atv(&atv)?).map_err(|_| Error::new(format!("{text:?} repeats an attribute")))?;
    }
    Ok(RelativeDistinguishedName::from(set))
}

/// Parses a DN. `/C=NL/O=ewak.net/CN=x` lists RDNs in ASN.1 order (as
/// OpenSSL prints them); `CN=x,O=ewak.net,C=NL` is RFC 4514's reversed
/// order. `+` joins attributes of one RDN; a backslash escapes `/ , + = \`.
pub fn parse_dn(text: &str) -> Result<Name> {
    let err = |e: Error| e.context(format!("subject {text:?}"));
    let text = text.trim();
    let rdns: Vec<String> = if let Some(rest) = text.strip_prefix('/') {
        split_unescaped(rest, '/')
    } else {
        let mut parts = split_unescaped(text, ',');
        parts.reverse();
        parts
    };
    let mut seq = RdnSequence::default();
    for part in rdns {
        if part.trim().is_empty() {
            return Err(err(Error::new("empty RDN")));
        }
        seq.push(rdn(part.trim_start()).map_err(err)?);
    }
    if seq.is_empty() {
        return Err(err(Error::new("no attributes")));
    }
    Ok(Name::hazmat_from_rdn_sequence(seq))
}

/// A value as text, when its string type is one we read.
pub fn atv_text(atv: &AttributeTypeAndValue) -> Option<String> {
    match der::Tagged::tag(&atv.value) {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::TeletexString | Tag::VisibleString => {
            std::str::from_utf8(atv.value.value()).ok().map(str::to_string)
        }
        _ => None,
    }
}

/// OpenSSL's one-line form, `/C=NL/O=ewak.net/CN=www.ewak.net`, as
/// `openssl ca` writes it into index.txt.
pub fn openssl_oneline(name: &Name) -> String {
    let mut out = String::new();
    for rdn in name.iter_rdn() {
        for (i, atv) in rdn.iter().enumerate() {
            out.push(if i == 0 { '/' } else { '+' });
            match by_oid(&atv.oid) {
                Some(a) => out.push_str(a.short),
                None => out.push_str(&atv.oid.to_string()),
            }
            out.push('=');
            match atv_text(atv) {
                Some(t) => out.push_str(&t),
                None => out.push_str(&crate::hex::encode(atv.value.value())),
            }
        }
    }
    out
}

/// The subject's first common name, for labels.
pub fn common_name(name: &Name) -> Option<String> {
    let cn = ObjectIdentifier::new_unwrap("2.5.4.3");
    name.iter().find(|atv| atv.oid == cn).and_then(atv_text)
}

/// A DNS name as RFC 5280 and the CA/B Forum accept it: LDH labels, an
/// optional leading `*.` wildcard.
pub fn valid_dns(name: &str, wildcard: bool) -> bool {
    let body = match name.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => name,
    };
    !body.is_empty()
        && body.len() <= 253
        && body.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn valid_email(addr: &str) -> bool {
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.bytes().all(|b| b.is_ascii_graphic() && !b"@\"(),:;<>[\\]".contains(&b))
                && valid_dns(domain, false)
        }
        None => false,
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
    match kind {
        "dns" | "DNS" => {
            if !valid_dns(value, true) {
                return Err(Error::new(format!("{value:?} is not a valid DNS name")));
            }
            Ok(GeneralName::DnsName(ia5(value)?))
        }
        "ip" | "IP" => {
            let ip: IpAddr =
                value.parse().map_err(|_| Error::new(format!("{value:?} is not an IP address")))?;
            Ok(GeneralName::IpAddress(OctetString::new(ip_bytes(ip))?))
        }
        "email" => {
            if !valid_email(value) {
                return Err(Error::new(format!("{value:?} is not an email address")));
            }
            Ok(GeneralName::Rfc822Name(ia5(value)?))
        }
        "uri" | "URI" => {
            let scheme_ok = value.split_once(':').is_some_and(|(s, rest)| {
                !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                    && !rest.is_empty()
            });
            if !scheme_ok || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::new(format!("{value:?} is not an absolute URI")));
            }
            Ok(GeneralName::UniformResourceIdentifier(ia5(value)?))
        }
        other => Err(Error::new(format!("{other:?}: name types are dns, ip, email and uri"))),
    }
}

pub fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
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
        GeneralName::IpAddress(o) => {
            let b = o.as_bytes();
            match b.len() {
                4 => format!("ip:{}", IpAddr::from(<[u8; 4]>::try_from(b).unwrap_or_default())),
                16 => format!("ip:{}", IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or_default())),
                _ => format!("ip:{}", crate::hex::encode(b)),
            }
        }
        GeneralName::DirectoryName(n) => format!("dirname:{n}"),
        _ => "another name form".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn both_forms_agree() {
        let a = parse_dn("/C=NL/O=ewak.net/CN=ewak.net Sub CA servers").expect("slash");
        let b = parse_dn("CN=ewak.net Sub CA servers,O=ewak.net,C=NL").expect("4514");
        assert_eq!(a.to_der().expect("der"), b.to_der().expect("der"));
        assert_eq!(openssl_oneline(&a), "/C=NL/O=ewak.net/CN=ewak.net Sub CA servers");
        assert_eq!(common_name(&a).as_deref(), Some("ewak.net Sub CA servers"));
    }

    #[test]
    fn escapes_stay_inside_values() {
        let n = parse_dn(r"/O=a\/b\, c\+d\=e/CN=x").expect("slash");
        assert_eq!(openssl_oneline(&n), "/O=a/b, c+d=e/CN=x");
        let n = parse_dn(r"CN=Smith\, John+UID=jsmith,O=ewak.net").expect("4514");
        assert_eq!(n.iter_rdn().count(), 2);
        assert_eq!(n.iter_rdn().last().map(|r| r.len()), Some(2));
    }

    #[test]
    fn string_types() {
        let n = parse_dn("/C=NL/O=ewak.net/CN=Zoë/emailAddress=a@ewak.net").expect("dn");
        let tags: Vec<Tag> = n.iter().map(|a| der::Tagged::tag(&a.value)).collect();
        assert_eq!(tags, [Tag::PrintableString, Tag::PrintableString, Tag::Utf8String, Tag::Ia5String]);
    }

    #[test]
    fn refusals() {
        for bad in ["", "/", "/C=Netherlands", "/C=nl", "/X=y", "/CN=", "CN", "/CN=a/CN", r"/CN=a\"] {
            assert!(parse_dn(bad).is_err(), "{bad:?}");
        }
        let long = format!("/CN={}", "a".repeat(65));
        assert!(parse_dn(&long).is_err());
    }

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
