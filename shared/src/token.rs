//! Choosing tokens and objects on a loaded module: the tokens present,
//! selection by URI, object templates and URIs, and storing a certificate.
//!
//! A selector that matches several tokens or objects is an error that lists
//! them: a CA must never sign with "the first key that matched".

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::{Slot, SlotInfo, TokenInfo};

use crate::error::{Context, Error, Result};
use crate::uri::{ObjectType, Uri};

/// A slot with a token present.
#[derive(Debug, Clone)]
pub struct Token {
    pub slot: Slot,
    pub slot_info: SlotInfo,
    pub info: TokenInfo,
}

impl Token {
    pub fn label(&self) -> &str {
        self.info.label()
    }

    /// `token "ewak.net PKI"` for messages.
    pub fn describe(&self) -> String {
        if self.info.token_initialized() {
            format!("token {:?}", self.label())
        } else {
            format!("the uninitialised token in slot {}", self.slot.id())
        }
    }

    /// The token's URI, with the attributes p11tool prints.
    pub fn uri(&self) -> Uri {
        Uri {
            model: Some(self.info.model().to_string()),
            manufacturer: Some(self.info.manufacturer_id().to_string()),
            serial: Some(self.info.serial_number().to_string()),
            token: Some(self.label().to_string()),
            ..Uri::default()
        }
    }

    pub fn matches(&self, uri: &Uri) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&uri.token, self.info.label())
            && eq(&uri.manufacturer, self.info.manufacturer_id())
            && eq(&uri.serial, self.info.serial_number())
            && eq(&uri.model, self.info.model())
            && eq(&uri.slot_description, self.slot_info.slot_description())
            && eq(&uri.slot_manufacturer, self.slot_info.manufacturer_id())
            && uri.slot_id.is_none_or(|id| id == self.slot.id())
    }
}

/// Every slot with a token, sorted by label then serial so listings are
/// stable. A slot id the module lists twice (tpm2-pkcs11 does) is one
/// slot: every PKCS#11 call names a slot by its id alone.
pub fn tokens(ctx: &Pkcs11) -> Result<Vec<Token>> {
    let mut slots = ctx.get_slots_with_token().context("listing slots")?;
    slots.sort_by_key(|s| s.id());
    slots.dedup_by_key(|s| s.id());
    let mut out = Vec::new();
    for slot in slots {
        let info = match ctx.get_token_info(slot) {
            Ok(info) => info,
            // The module answered, but cryptoki could not parse the
            // answer (its clock): read the token as one without a clock.
            Err(cryptoki::error::Error::ParseInt(_) | cryptoki::error::Error::Utf8(_)) => {
                match crate::module::token_info_without_clock(slot) {
                    Ok(info) => info,
                    // Pulled out between the two calls, as below.
                    Err(e) if e.is_ckr(RvError::TokenNotPresent) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => match Error::from(e) {
                // A token pulled out between the two calls is simply gone.
                e if e.is_ckr(RvError::TokenNotPresent) => continue,
                e => return Err(e.context(format!("reading the token in slot {}", slot.id()))),
            },
        };
        let slot_info = ctx.get_slot_info(slot).context("reading slot info")?;
        out.push(Token { slot, slot_info, info });
    }
    out.sort_by(|a, b| {
        (a.info.label(), a.info.serial_number(), a.slot.id()).cmp(&(
            b.info.label(),
            b.info.serial_number(),
            b.slot.id(),
        ))
    });
    Ok(out)
}

/// Tokens the URI's token part matches (initialised tokens only).
pub fn matching_tokens(ctx: &Pkcs11, uri: &Uri) -> Result<Vec<Token>> {
    Ok(tokens(ctx)?.into_iter().filter(|t| t.info.token_initialized() && t.matches(uri)).collect())
}

/// Exactly one initialised token, or an error naming what matched.
pub fn select(ctx: &Pkcs11, uri: &Uri) -> Result<Token> {
    let mut found = matching_tokens(ctx, uri)?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            Err(Error::new(format!("no token matches {}", uri.token_part()))
                .hint("list the tokens with card-ls"))
        }
        _ => Err(ambiguous(
            &format!("{} tokens match {}", found.len(), uri.token_part()),
            found.iter().map(|t| format!("slot {}: {}", t.slot.id(), t.uri())),
        )),
    }
}

/// An error listing every candidate, one per line.
pub fn ambiguous(what: &str, candidates: impl Iterator<Item = String>) -> Error {
    let list: Vec<String> = candidates.map(|c| format!("\n  {c}")).collect();
    Error::new(format!("{what}; refusing to choose one:{}", list.concat()))
        .hint("add attributes (serial=, id=, object=, type=) until one matches")
}

pub fn object_class(t: ObjectType) -> ObjectClass {
    match t {
        ObjectType::Cert => ObjectClass::CERTIFICATE,
        ObjectType::Data => ObjectClass::DATA,
        ObjectType::Private => ObjectClass::PRIVATE_KEY,
        ObjectType::Public => ObjectClass::PUBLIC_KEY,
        ObjectType::SecretKey => ObjectClass::SECRET_KEY,
    }
}

pub fn object_type(class: ObjectClass) -> Option<ObjectType> {
    Some(match class {
        ObjectClass::CERTIFICATE => ObjectType::Cert,
        ObjectClass::DATA => ObjectType::Data,
        ObjectClass::PRIVATE_KEY => ObjectType::Private,
        ObjectClass::PUBLIC_KEY => ObjectType::Public,
        ObjectClass::SECRET_KEY => ObjectType::SecretKey,
        _ => return None,
    })
}

/// "private key", "certificate", for messages.
pub fn class_name(class: ObjectClass) -> &'static str {
    match object_type(class) {
        Some(ObjectType::Cert) => "certificate",
        Some(ObjectType::Data) => "data object",
        Some(ObjectType::Private) => "private key",
        Some(ObjectType::Public) => "public key",
        Some(ObjectType::SecretKey) => "secret key",
        None => "object",
    }
}

/// The search template for the URI's object attributes; `class` overrides
/// `type=` when the caller needs one class (a signing key is private).
pub fn template(uri: &Uri, class: Option<ObjectClass>) -> Vec<Attribute> {
    let mut t = Vec::new();
    if let Some(c) = class.or(uri.object_type.map(object_class)) {
        t.push(Attribute::Class(c));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    if let Some(label) = &uri.object {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    t
}

/// The one object of `class` the URI names, or an error listing them all.
pub fn select_object(
    session: &Session,
    token: &Token,
    uri: &Uri,
    class: ObjectClass,
) -> Result<ObjectHandle> {
    if let Some(t) = uri.object_type {
        if object_class(t) != class {
            return Err(Error::new(format!("{uri} names a {} object, not a {class}", t.name())));
        }
    }
    let found = session.find_objects(&template(uri, Some(class))).context("C_FindObjects")?;
    match found.len() {
        1 => Ok(found[0]),
        0 if class == ObjectClass::PRIVATE_KEY && uri.object.is_some() => renamed_key(session, token, uri)?
            .ok_or_else(|| {
                let hint = "list the objects with card-ls --objects --login";
                Error::new(format!("no private key on {} matches {uri}", token.describe())).hint(
                    match crate::module::loaded_opensc() {
                        Some(_) => format!(
                            "{hint}; a certificate stored by OpenSC's own tools (pkcs15-init \
                             --store-certificate) gives its key the certificate's label, and id= still \
                             names it"
                        ),
                        None => hint.to_string(),
                    },
                )
            }),
        0 => Err(Error::new(format!("no {} on {} matches {uri}", class_name(class), token.describe())).hint(
            if uri.id.is_none() && uri.object.is_none() {
                "name the key with object= or id=; list them with card-ls --objects --login"
            } else {
                "list the objects with card-ls --objects --login"
            },
        )),
        n => {
            let mut uris: Vec<String> =
                found.iter().map(|&h| object_uri(session, token, h).to_string()).collect();
            uris.sort();
            Err(ambiguous(&format!("{n} objects on {} match {uri}", token.describe()), uris.into_iter()))
        }
    }
}

/// The private key that `object=` named before a certificate was stored
/// on an OpenSC card: storing it (pkcs15-init --store-certificate) gives
/// the private key the certificate's label, but its public key keeps the
/// old one. The one private key with that public key's CKA_ID, or None
/// when there is not exactly one of each.
fn renamed_key(session: &Session, token: &Token, uri: &Uri) -> Result<Option<ObjectHandle>> {
    let public =
        session.find_objects(&template(uri, Some(ObjectClass::PUBLIC_KEY))).context("C_FindObjects")?;
    let [public] = public[..] else { return Ok(None) };
    let Some(Attribute::Id(id)) = session.get_attributes(public, &[AttributeType::Id])?.pop() else {
        return Ok(None);
    };
    let private = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id)])
        .context("C_FindObjects")?;
    let [key] = private[..] else { return Ok(None) };
    let now = object_uri(session, token, key);
    crate::report::warn(format_args!(
        "no private key is labelled {:?} any more; the one with the CKA_ID of the public key so \
         labelled is used: {now} (OpenSC gives a key its certificate's label when the certificate \
         is stored)",
        uri.object.as_deref().unwrap_or_default()
    ));
    Ok(Some(key))
}

/// The full URI of an object: the token's attributes plus id, label, type.
pub fn object_uri(session: &Session, token: &Token, handle: ObjectHandle) -> Uri {
    let mut uri = token.uri();
    let attrs = session
        .get_attributes(handle, &[AttributeType::Class, AttributeType::Id, AttributeType::Label])
        .unwrap_or_default();
    for a in attrs {
        match a {
            Attribute::Class(c) => uri.object_type = object_type(c),
            Attribute::Id(id) if !id.is_empty() => uri.id = Some(id),
            Attribute::Label(l) if !l.is_empty() => {
                uri.object = Some(String::from_utf8_lossy(&l).into_owned())
            }
            _ => {}
        }
    }
    uri
}

/// Stores a certificate on the token as a public CKO_CERTIFICATE with the
/// attributes PKCS#11 section 4.6.3 lists for X.509 certificates, so other
/// software (OpenSC, p11-kit, browsers) finds it by subject, issuer and id.
pub fn create_certificate(
    session: &Session,
    cert_der: &[u8],
    label: &str,
    id: &[u8],
) -> Result<ObjectHandle> {
    use cryptoki::object::CertificateType;
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(cert_der).context("parsing the certificate")?;
    let tbs = cert.tbs_certificate();
    let template = vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
        Attribute::Subject(tbs.subject().to_der()?),
        Attribute::Issuer(tbs.issuer().to_der()?),
        Attribute::SerialNumber(tbs.serial_number().to_der()?),
        Attribute::Value(cert_der.to_vec()),
    ];
    session.create_object(&template).context("storing the certificate (C_CreateObject)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every URI `type=` names one object class and back.
    #[test]
    fn object_types_and_classes_round_trip() {
        for t in [
            ObjectType::Cert,
            ObjectType::Data,
            ObjectType::Private,
            ObjectType::Public,
            ObjectType::SecretKey,
        ] {
            assert_eq!(object_type(object_class(t)), Some(t));
        }
        assert_eq!(object_type(ObjectClass::DOMAIN_PARAMETERS), None);
        assert_eq!(class_name(ObjectClass::DOMAIN_PARAMETERS), "object");
    }

    /// The search template: a caller's class wins over `type=`.
    #[test]
    fn template_takes_the_callers_class() {
        let uri = Uri {
            object_type: Some(ObjectType::Public),
            id: Some(vec![1]),
            object: Some("k".into()),
            ..Uri::default()
        };
        let t = template(&uri, Some(ObjectClass::PRIVATE_KEY));
        assert!(matches!(t.first(), Some(Attribute::Class(c)) if *c == ObjectClass::PRIVATE_KEY));
        assert!(
            matches!(template(&uri, None).first(), Some(Attribute::Class(c)) if *c == ObjectClass::PUBLIC_KEY)
        );
        assert_eq!(t.len(), 3);
        assert!(template(&Uri::default(), None).is_empty());
    }
}
