//! Distinguished names: the attribute types cardca knows (RFC 5280 and
//! the CA/B Forum) with their string types and upper bounds, the check of
//! a name from any source, parsing a subject as operators type it, and the
//! text forms: a value's text, OpenSSL's one-line form that index.txt
//! holds, the common name.

use der::asn1::{ObjectIdentifier, SetOfVec};
use der::{Any, Tag};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::error::{Error, Result};
use crate::oid;

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
        short: "businessCategory",
        long: "businessCategory",
        oid: "2.5.4.15",
        kind: Kind::Directory,
        max: 128,
    },
    AttrType {
        short: "jurisdictionC",
        long: "jurisdictionCountryName",
        oid: "1.3.6.1.4.1.311.60.2.1.3",
        kind: Kind::Printable,
        max: 2,
    },
    AttrType {
        short: "jurisdictionST",
        long: "jurisdictionStateOrProvinceName",
        oid: "1.3.6.1.4.1.311.60.2.1.2",
        kind: Kind::Directory,
        max: 128,
    },
    AttrType {
        short: "jurisdictionL",
        long: "jurisdictionLocalityName",
        oid: "1.3.6.1.4.1.311.60.2.1.1",
        kind: Kind::Directory,
        max: 128,
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

/// The one check of an attribute value's text, whatever its source (a
/// `--subject` flag, a CSR, a TBS given to card-sign): not empty, no
/// control characters, within RFC 5280's upper bound, and in the character
/// set of its string type.
fn check_text(attr: &AttrType, tag: Tag, value: &str) -> Result<()> {
    let name = attr.short;
    if value.is_empty() {
        return Err(Error::new(format!("{name} has an empty value")));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(Error::new(format!(
            "{name} holds the control character U+{:04X}: names are printable text",
            u32::from(c)
        )));
    }
    if value.chars().count() > attr.max {
        return Err(Error::new(format!(
            "{name} is longer than its upper bound of {} characters (RFC 5280 appendix A)",
            attr.max
        )));
    }
    let ok = match tag {
        Tag::PrintableString => printable(value),
        Tag::Ia5String => value.is_ascii(),
        _ => true,
    };
    if !ok {
        return Err(Error::new(format!("{name}={value:?} has characters a {tag} cannot hold")));
    }
    if attr.kind == Kind::Printable
        && attr.max == 2
        && !(value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(Error::new(format!("{name}={value:?}: a country is two upper-case letters (ISO 3166)")));
    }
    Ok(())
}

/// The string types an attribute may be encoded in: RFC 5280 section
/// 4.1.2.6 (new certificates use PrintableString or UTF8String for
/// DirectoryString) and appendix A.
fn allowed_tags(kind: Kind) -> &'static [Tag] {
    match kind {
        Kind::Printable => &[Tag::PrintableString],
        Kind::Ia5 => &[Tag::Ia5String],
        Kind::Directory => &[Tag::PrintableString, Tag::Utf8String],
    }
}

/// One attribute of a name from any source: a known type, an allowed
/// string type, valid UTF-8 and text [`check_text`] accepts.
pub fn check_atv(atv: &AttributeTypeAndValue) -> Result<()> {
    let attr = by_oid(&atv.oid).ok_or_else(|| {
        Error::new(format!(
            "unknown attribute type {} (only the attribute types of RFC 5280 and the CA/B Forum)",
            atv.oid
        ))
    })?;
    let tag = der::Tagged::tag(&atv.value);
    if !allowed_tags(attr.kind).contains(&tag) {
        return Err(Error::new(format!(
            "{} is encoded as {tag}, not {}",
            attr.short,
            allowed_tags(attr.kind).iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or ")
        )));
    }
    let text = std::str::from_utf8(atv.value.value())
        .map_err(|_| Error::new(format!("{} is not valid UTF-8", attr.short)))?;
    check_text(attr, tag, text)
}

/// A distinguished name from any source, attribute by attribute.
pub fn check_name(name: &Name) -> Result<()> {
    for rdn in name.iter_rdn() {
        if rdn.is_empty() {
            return Err(Error::new("an empty relative distinguished name"));
        }
        for atv in rdn.iter() {
            check_atv(atv)?;
        }
    }
    Ok(())
}

fn encode_value(attr: Option<&AttrType>, name: &str, value: &str) -> Result<Any> {
    let attr = attr.ok_or_else(|| {
        Error::new(format!(
            "unknown attribute type {name:?} (C, ST, L, O, OU, CN, serialNumber, emailAddress, DC, UID, ...)"
        ))
    })?;
    let tag = match attr.kind {
        Kind::Printable => Tag::PrintableString,
        Kind::Ia5 => Tag::Ia5String,
        Kind::Directory if printable(value) => Tag::PrintableString,
        Kind::Directory => Tag::Utf8String,
    };
    check_text(attr, tag, value)?;
    Ok(Any::new(tag, value.as_bytes())?)
}

/// Splits on `sep` where it is not escaped with a backslash.
pub fn split_unescaped(s: &str, sep: char) -> Vec<String> {
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

/// Attribute types OpenSSL names that no certificate of ours carries.
const OTHER_SHORT_NAMES: &[(&str, &str)] =
    &[("2.5.4.13", "description"), ("2.5.4.41", "name"), ("2.5.4.44", "generationQualifier")];

/// OpenSSL's short name of an attribute type, when it has one.
fn short_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    by_oid(oid).map(|a| a.short).or_else(|| {
        let text = oid.to_string();
        OTHER_SHORT_NAMES.iter().find(|(o, _)| *o == text).map(|(_, short)| *short)
    })
}

/// A name as `openssl ca` (OpenSSL 3.0) writes it into index.txt, checked
/// against `openssl ca` itself: `/` before each RDN, `+` between the values
/// of a multi-valued RDN, then `NAME=value` with the value's content octets
/// (whatever its string type) as they are, except `/` and `+` written `\/`
/// and `\+`, and every octet outside 0x20..0x7E written `\xHH`. So no TAB,
/// LF, CR or NUL ever reaches index.txt or a message, and a subject cannot
/// forge a field or a line.
pub fn openssl_oneline(name: &Name) -> String {
    let mut out = String::new();
    for rdn in name.iter_rdn() {
        for (i, atv) in rdn.iter().enumerate() {
            out.push(if i == 0 { '/' } else { '+' });
            match short_name(&atv.oid) {
                Some(short) => out.push_str(short),
                None => out.push_str(&atv.oid.to_string()),
            }
            out.push('=');
            for &b in atv.value.value() {
                match b {
                    b'/' | b'+' => {
                        out.push('\\');
                        out.push(b as char);
                    }
                    0x20..=0x7e => out.push(b as char),
                    _ => out.push_str(&format!("\\x{b:02X}")),
                }
            }
        }
    }
    out
}

/// The subject's first common name, for labels.
pub fn common_name(name: &Name) -> Option<String> {
    let cn = oid::CN;
    name.iter().find(|atv| atv.oid == cn).and_then(atv_text)
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
        assert_eq!(openssl_oneline(&n), r"/O=a\/b, c\+d=e/CN=x");
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
}
