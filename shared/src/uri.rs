//! RFC 7512 PKCS#11 URIs, and the libp11 forms the seed article uses
//! (`slot_1-id_<hex>`, `slot_1-key_<hex>`, `1:<hex>`, `id_<hex>`).
//!
//! ```text
//! pk11-URI   = "pkcs11:" pk11-path [ "?" pk11-query ]      ; RFC 7512 section 2.3
//! pk11-path  = [ pk11-pattr *(";" pk11-pattr) ]
//! pk11-query = [ pk11-qattr *("&" pk11-qattr) ]
//! ```

use std::fmt;

use secrecy::SecretString;

use crate::error::{Error, Result};

/// The `type=` attribute: which class of object a URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectType {
    Cert,
    Data,
    Private,
    Public,
    SecretKey,
}

impl ObjectType {
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Cert => "cert",
            ObjectType::Data => "data",
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::SecretKey => "secret-key",
        }
    }

    fn parse(s: &str) -> Result<ObjectType> {
        Ok(match s {
            "cert" => ObjectType::Cert,
            "data" => ObjectType::Data,
            "private" => ObjectType::Private,
            "public" => ObjectType::Public,
            "secret-key" => ObjectType::SecretKey,
            _ => {
                return Err(Error::new(format!(
                    "unknown object type {s:?} (cert, data, private, public, secret-key)"
                )))
            }
        })
    }
}

/// A parsed PKCS#11 URI. Every attribute is optional; a missing attribute
/// matches anything.
#[derive(Debug, Clone, Default)]
pub struct Uri {
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub slot_id: Option<u64>,
    pub slot_description: Option<String>,
    pub slot_manufacturer: Option<String>,
    pub library_manufacturer: Option<String>,
    pub library_description: Option<String>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub object_type: Option<ObjectType>,
    pub pin_source: Option<String>,
    pub pin_value: Option<SecretString>,
    pub module_path: Option<String>,
    pub module_name: Option<String>,
    /// `x-module-args`: the module's C_Initialize init string (a vendor
    /// query attribute, RFC 7512 section 2.3: RFC 7512 has none for it).
    pub module_args: Option<String>,
}

impl Uri {
    /// Parses an RFC 7512 URI or one of the libp11 forms.
    pub fn parse(s: &str) -> Result<Uri> {
        if let Some(rest) = strip_prefix_ignore_case(s, "pkcs11:") {
            return parse_rfc7512(rest).map_err(|e| e.context(format!("bad PKCS#11 URI {:?}", redact(s))));
        }
        parse_legacy(s).ok_or_else(|| {
            Error::usage(format!(
                "bad key or token selector {:?}: expected a pkcs11: URI (RFC 7512) \
                 or slot_N-id_HEX, slot_N-key_HEX, N:HEX, id_HEX",
                redact(s)
            ))
        })
    }

    /// True when the URI says nothing about the token (only the object).
    pub fn names_token(&self) -> bool {
        self.token.is_some()
            || self.manufacturer.is_some()
            || self.serial.is_some()
            || self.model.is_some()
            || self.slot_id.is_some()
            || self.slot_description.is_some()
            || self.slot_manufacturer.is_some()
    }

    /// The URI without its object part and query, naming just the token.
    pub fn token_part(&self) -> Uri {
        Uri {
            token: self.token.clone(),
            manufacturer: self.manufacturer.clone(),
            serial: self.serial.clone(),
            model: self.model.clone(),
            slot_id: self.slot_id,
            slot_description: self.slot_description.clone(),
            slot_manufacturer: self.slot_manufacturer.clone(),
            library_manufacturer: self.library_manufacturer.clone(),
            library_description: self.library_description.clone(),
            ..Uri::default()
        }
    }
}

/// What messages and [`Uri`]'s Display show in place of a PIN.
const REDACTED: &str = "[REDACTED]";

/// `text` with whatever follows each `pin-value` replaced, for messages
/// that quote what was typed. The value runs to the next `&` (RFC 7512's
/// query separator) or the end: hiding too much is harmless, too little is
/// not. Any case matches, and a mistyped `pin-value:1234` too.
pub fn redact(text: &str) -> String {
    const KEY: &str = "pin-value";
    // ASCII lower-casing keeps every byte offset.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(KEY) {
        let mut value = at + found + KEY.len();
        if lower[value..].starts_with('=') {
            value += 1;
        }
        out.push_str(&text[at..value]);
        out.push_str(REDACTED);
        at = lower[value..].find('&').map_or(text.len(), |end| value + end);
    }
    out.push_str(&text[at..]);
    out
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn parse_rfc7512(rest: &str) -> Result<Uri> {
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let mut uri = Uri::default();
    for attr in path.split(';').filter(|a| !a.is_empty()) {
        let (name, value) = attr
            .split_once('=')
            .ok_or_else(|| Error::new(format!("path attribute {:?} has no '='", redact(attr))))?;
        let bytes = percent_decode(value)?;
        let text = || {
            String::from_utf8(bytes.clone())
                .map_err(|_| Error::new(format!("attribute {name:?} is not UTF-8")))
        };
        let slot = |field: &mut Option<String>| -> Result<()> {
            if field.is_some() {
                return Err(Error::new(format!("attribute {name:?} given twice")));
            }
            *field = Some(text()?);
            Ok(())
        };
        match name {
            "token" => slot(&mut uri.token)?,
            "manufacturer" => slot(&mut uri.manufacturer)?,
            "serial" => slot(&mut uri.serial)?,
            "model" => slot(&mut uri.model)?,
            "object" => slot(&mut uri.object)?,
            "slot-description" => slot(&mut uri.slot_description)?,
            "slot-manufacturer" => slot(&mut uri.slot_manufacturer)?,
            "library-manufacturer" => slot(&mut uri.library_manufacturer)?,
            "library-description" => slot(&mut uri.library_description)?,
            // Matching on the library version would need a version parser for
            // one rarely used attribute; accept it so p11-kit URIs still work.
            "library-version" => {}
            "slot-id" => {
                let t = text()?;
                let id =
                    t.parse().map_err(|_| Error::new(format!("slot-id {t:?} is not a decimal number")))?;
                if uri.slot_id.replace(id).is_some() {
                    return Err(Error::new("attribute \"slot-id\" given twice"));
                }
            }
            "id" => {
                if uri.id.replace(bytes).is_some() {
                    return Err(Error::new("attribute \"id\" given twice"));
                }
            }
            "type" | "object-type" => {
                let t = ObjectType::parse(&text()?)?;
                if uri.object_type.replace(t).is_some() {
                    return Err(Error::new("attribute \"type\" given twice"));
                }
            }
            // RFC 7512 section 2.3: vendor attributes start with "x-"; the
            // ones we do not know cannot narrow a match, so refuse them
            // rather than silently match more than was asked for.
            other => {
                return Err(Error::new(format!("unsupported path attribute {other:?}")));
            }
        }
    }
    for attr in query.unwrap_or("").split('&').filter(|a| !a.is_empty()) {
        // Not quoted: a mistyped `pin-value:1234` would be the PIN.
        let (name, value) = attr.split_once('=').ok_or_else(|| Error::new("a query attribute has no '='"))?;
        if name == "pin-value" {
            // Decoded into a buffer of its final size, and never quoted.
            let bytes = zeroize::Zeroizing::new(
                percent_decode(value).map_err(|_| Error::new("bad percent-encoding in the pin-value"))?,
            );
            let text = std::str::from_utf8(&bytes).map_err(|_| Error::new("the pin-value is not UTF-8"))?;
            uri.pin_value = Some(SecretString::from(text));
            continue;
        }
        let value = String::from_utf8(percent_decode(value)?)
            .map_err(|_| Error::new(format!("attribute {name:?} is not UTF-8")))?;
        match name {
            "pin-source" => uri.pin_source = Some(value),
            "module-path" => uri.module_path = Some(value),
            "module-name" => uri.module_name = Some(value),
            // Vendor attributes are "x-" names (RFC 7512 section 2.3,
            // pk11-v-attr-nm). A NUL would cut the C string short.
            "x-module-args" if value.contains('\0') => {
                return Err(Error::new("x-module-args contains a NUL byte"));
            }
            "x-module-args" => uri.module_args = Some(value),
            // Section 2.3: unknown query attributes may be ignored.
            _ => {}
        }
    }
    Ok(uri)
}

/// The forms engine_pkcs11/libp11 accept and the seed article uses.
fn parse_legacy(s: &str) -> Option<Uri> {
    let mut uri = Uri::default();
    let hex_part = if let Some(rest) = s.strip_prefix("slot_") {
        let (slot, object) = rest.split_once('-')?;
        uri.slot_id = Some(slot.parse().ok()?);
        object.strip_prefix("id_").or_else(|| object.strip_prefix("key_"))?
    } else if let Some(rest) = s.strip_prefix("id_") {
        rest
    } else {
        let (slot, hex) = s.split_once(':')?;
        uri.slot_id = Some(slot.parse().ok()?);
        hex
    };
    uri.id = Some(crate::hex::decode(hex_part).ok()?);
    Some(uri)
}

fn percent_decode(s: &str) -> Result<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::new(format!("bad percent-encoding at {:?}", &s[i..])))?;
            out.push(pair);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Percent-encodes everything outside RFC 3986's unreserved set, so labels
/// with spaces, ';' or '?' survive a round trip and any shell.
fn percent_encode(out: &mut String, bytes: &[u8], all: bool) {
    for &b in bytes {
        if !all && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
}

/// Two URIs are equal when they print the same (the query included).
impl PartialEq for Uri {
    fn eq(&self, other: &Uri) -> bool {
        self.to_string() == other.to_string()
    }
}

impl fmt::Display for Uri {
    /// Attributes in the order p11-kit and GnuTLS print them; ids always
    /// fully percent-encoded as they are binary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path = Vec::new();
        let mut add = |name: &str, value: &[u8], all: bool| {
            let mut s = format!("{name}=");
            percent_encode(&mut s, value, all);
            path.push(s);
        };
        let text: [(&str, &Option<String>); 7] = [
            ("model", &self.model),
            ("manufacturer", &self.manufacturer),
            ("serial", &self.serial),
            ("token", &self.token),
            ("slot-description", &self.slot_description),
            ("slot-manufacturer", &self.slot_manufacturer),
            ("library-manufacturer", &self.library_manufacturer),
        ];
        for (name, value) in text {
            if let Some(v) = value {
                add(name, v.as_bytes(), false);
            }
        }
        if let Some(v) = &self.library_description {
            add("library-description", v.as_bytes(), false);
        }
        if let Some(id) = self.slot_id {
            add("slot-id", id.to_string().as_bytes(), false);
        }
        if let Some(id) = &self.id {
            add("id", id, true);
        }
        if let Some(v) = &self.object {
            add("object", v.as_bytes(), false);
        }
        if let Some(t) = self.object_type {
            add("type", t.name().as_bytes(), false);
        }
        write!(f, "pkcs11:{}", path.join(";"))?;
        let mut query = Vec::new();
        let mut addq = |name: &str, value: &str| {
            let mut s = format!("{name}=");
            percent_encode(&mut s, value.as_bytes(), false);
            query.push(s);
        };
        if let Some(v) = &self.module_path {
            addq("module-path", v);
        }
        if let Some(v) = &self.module_name {
            addq("module-name", v);
        }
        if let Some(v) = &self.module_args {
            addq("x-module-args", v);
        }
        if let Some(v) = &self.pin_source {
            addq("pin-source", v);
        }
        if self.pin_value.is_some() {
            query.push(format!("pin-value={REDACTED}"));
        }
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7512_examples() {
        // Section 3 of RFC 7512.
        let u = Uri::parse("pkcs11:").expect("empty");
        assert!(!u.names_token() && u.object.is_none());

        let u = Uri::parse("pkcs11:object=my-pubkey;type=public").expect("pubkey");
        assert_eq!(u.object.as_deref(), Some("my-pubkey"));
        assert_eq!(u.object_type, Some(ObjectType::Public));

        let u =
            Uri::parse("pkcs11:object=my-key;type=private?pin-source=file:/etc/token").expect("pin-source");
        assert_eq!(u.pin_source.as_deref(), Some("file:/etc/token"));

        let u = Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
             manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;\
             type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=",
        )
        .expect("softtoken");
        assert_eq!(u.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(u.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(u.serial.as_deref(), Some(""));
        assert_eq!(u.id.as_deref(), Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..]));

        let u = Uri::parse("pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin")
            .expect("pin-value");
        use secrecy::ExposeSecret;
        assert_eq!(u.pin_value.as_ref().map(|p| p.expose_secret().to_string()).as_deref(), Some("the-pin"));

        let u = Uri::parse("pkcs11:slot-description=Sun%20Metaslot").expect("slot");
        assert_eq!(u.slot_description.as_deref(), Some("Sun Metaslot"));

        let u = Uri::parse(
            "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
        )
        .expect("library");
        assert_eq!(u.library_description.as_deref(), Some("Soft Token Library"));

        let u = Uri::parse(
            "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
        )
        .expect("escapes");
        assert_eq!(u.token.as_deref(), Some("A name with a substring %;"));

        let u = Uri::parse("pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert")
            .expect("utf8");
        assert_eq!(u.token.as_deref(), Some("Name with a small A with acute: \u{e1}"));

        let u = Uri::parse("pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b");
        assert!(u.is_err(), "unknown path attributes must not widen a match");
    }

    #[test]
    fn round_trip() {
        let text = "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=1a2b;token=ewak.net%20PKI;id=%53%f7;object=Sub%20CA%20%3bservers;type=private";
        let u = Uri::parse(text).expect("parse");
        assert_eq!(u.object.as_deref(), Some("Sub CA ;servers"));
        assert_eq!(u.to_string(), text);
        let again = Uri::parse(&u.to_string()).expect("reparse");
        assert_eq!(again.to_string(), text);
    }

    #[test]
    fn errors() {
        for bad in [
            "pkcs11:id=%zz",
            "pkcs11:token",
            "pkcs11:type=key",
            "pkcs11:slot-id=x",
            "pkcs11:token=a;token=b",
            "pkcs11:id=%5",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
        assert!(Uri::parse("PKCS11:token=a").is_ok(), "the scheme is case-insensitive");
    }

    #[test]
    fn pin_value_never_shown() {
        let u = Uri::parse("pkcs11:token=t?pin-value=s3cr3t%41&module-name=softhsm2").expect("parse");
        assert_eq!(u.to_string(), "pkcs11:token=t?module-name=softhsm2&pin-value=[REDACTED]");
        assert!(!format!("{u:?}").contains("s3cr3t"));
        for bad in [
            "pkcs11:bogus=1?pin-value=s3cr3t",
            "pkcs11:token=%zz?pin-value=s3cr3t",
            "pkcs11:token=t?pin-value=s3cr3t%zz",
            "pkcs11:token=t?pin-value=s3cr3t%ff",
            "pkcs11:pin-value=s3cr3t;bogus",
            "pkcs11:token=t?PIN-VALUE=s3cr3t&x",
            "pkcs11:token=t;x?pin-value:s3cr3t",
            "pkcs:token=t?pin-value=s3cr3t",
        ] {
            if let Err(e) = Uri::parse(bad) {
                assert!(!e.to_string().contains("s3cr3t"), "{bad}: {e}");
            }
        }
        assert_eq!(
            redact("a?pin-value=1&b=2&Pin-Value=3"),
            "a?pin-value=[REDACTED]&b=2&Pin-Value=[REDACTED]"
        );
        assert_eq!(redact("no pin here"), "no pin here");
    }

    #[test]
    fn module_args_round_trip() {
        let args = "configdir='sql:/var/lib/nss db' certPrefix='' keyPrefix='' secmod='secmod.db' flags=";
        let mut u = Uri::parse("pkcs11:token=NSS%20Certificate%20DB").expect("parse");
        u.module_args = Some(args.to_string());
        let text = u.to_string();
        assert!(text.contains("?x-module-args=configdir%3d%27sql%3a%2fvar"), "{text}");
        let again = Uri::parse(&text).expect("reparse");
        assert_eq!(again.module_args.as_deref(), Some(args));
        assert_eq!(again.to_string(), text);
        // The token part is what matches tokens: the init string is not.
        assert!(again.token_part().module_args.is_none());
        assert!(Uri::parse("pkcs11:?x-module-args=a%00b").is_err());
        assert_eq!(
            Uri::parse("pkcs11:?module-path=/m.so&x-module-args=").expect("empty").module_args.as_deref(),
            Some("")
        );
    }

    #[test]
    fn legacy_forms() {
        let u = Uri::parse("slot_1-key_53f70c3ea5be9aef27d959c134d8ebef77322786").expect("key");
        assert_eq!(u.slot_id, Some(1));
        assert_eq!(u.id.as_ref().map(|i| i.len()), Some(20));
        let u = Uri::parse("slot_1-id_d893af").expect("id");
        assert_eq!(u.id.as_deref(), Some(&[0xd8, 0x93, 0xaf][..]));
        let u = Uri::parse("1:53f70c").expect("colon");
        assert_eq!(u.slot_id, Some(1));
        assert_eq!(u.id.as_deref(), Some(&[0x53, 0xf7, 0x0c][..]));
        let u = Uri::parse("id_01").expect("bare id");
        assert_eq!(u.slot_id, None);
        assert_eq!(u.id.as_deref(), Some(&[1][..]));
        for bad in ["slot_x-id_01", "slot_1-label_a", "1:zz", "id_", "key.pem", "1:0"] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
