//! Storing certificates on the card, next to the keys they certify.

use cardca::cryptoki::context::Pkcs11;
use cardca::cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cardca::cryptoki::session::Session;
use cardca::db::Record;
use cardca::der::Decode;
use cardca::module;
use cardca::token::{self, Token};
use cardca::uri::Uri;
use cardca::x509_cert::Certificate;
use cardca::{hex, keys, names, report, session, Context, Error, Result};

/// The module loads from the start; the token is opened (the login) on
/// the first certificate: a bad stream never logs in.
pub struct Card {
    flags: session::Options,
    uri: Uri,
    label: Option<String>,
    id: Option<Vec<u8>>,
    preload: Option<module::Preload>,
    open: Option<(Session, Token, Pkcs11)>,
}

impl Drop for Card {
    fn drop(&mut self) {
        // C_CloseSession under the lock too: SoftHSM2
        // writes its files then.
        let _lock = module::lock(self.flags.module.as_deref(), Some(&self.uri));
        self.open.take();
    }
}

impl Card {
    pub fn new(flags: &session::Options, uri: &Uri, label: Option<String>, id: Option<Vec<u8>>) -> Card {
        let flags = flags.clone();
        let preload =
            Some(module::Preload::start(flags.module.as_deref(), flags.module_args.as_deref(), Some(uri)));
        Card { flags, uri: uri.clone(), label, id, preload, open: None }
    }

    pub fn store(&mut self, batch: &[Record]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // Awaited before the lock is taken: the loading thread takes it.
        // The preload is gone only after a failed open, which ended the run.
        let loaded = match (&self.open, self.preload.take()) {
            (None, Some(preload)) => Some(preload.wait()?),
            _ => None,
        };
        // Enumeration, login and object creation under the token lock;
        // never held while stdout is written.
        let _lock = module::lock(self.flags.module.as_deref(), Some(&self.uri));
        if let Some(ctx) = loaded {
            let (tok, session) = session::open_rw(&ctx, &self.flags, &self.uri)?;
            self.open = Some((session, tok, ctx));
        }
        let Some((session, tok, _)) = &self.open else {
            return Err(Error::new("the token is not open: opening it failed earlier"));
        };
        for r in batch {
            self.store_one(session, tok, r)
                .map_err(|e| e.context(format!("storing serial {} on the token", r.entry.serial)))?;
        }
        Ok(())
    }

    fn store_one(&self, session: &Session, tok: &Token, r: &Record) -> Result<()> {
        let existing = session
            .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE), Attribute::Value(r.der.clone())])
            .context("C_FindObjects")?;
        if !existing.is_empty() {
            report::note(format_args!(
                "serial {} is already on {}; not stored twice",
                r.entry.serial,
                tok.describe()
            ));
            return Ok(());
        }
        let cert = Certificate::from_der(&r.der)?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        let key = self.key_for(session, tok, spki)?;
        let id = match &key {
            Some((id, _)) => id.clone(),
            None => self.id.clone().ok_or_else(|| {
                Error::new(format!(
                    "no private key on {} belongs to this certificate's public key",
                    tok.describe()
                ))
                .hint("store it under a chosen CKA_ID with --id HEX")
            })?,
        };
        let label = self
            .label
            .clone()
            .or_else(|| names::common_name(cert.tbs_certificate().subject()))
            .unwrap_or_else(|| r.entry.serial.clone());
        let key_label = match &key {
            Some((_, h)) => label_of(session, *h)?,
            None => None,
        };
        token::create_certificate(session, &r.der, &label, &id)?;
        report::note(format_args!(
            "stored serial {} on {} with id {}",
            r.entry.serial,
            tok.describe(),
            hex::encode(&id)
        ));
        if let (Some((_, h)), Some(before)) = (key, key_label) {
            keep_label(session, h, &before);
        }
        Ok(())
    }

    /// The private key whose public key the certificate certifies, and its
    /// CKA_ID: first by the key identifier (cardca's default id), then any
    /// private key whose public half matches.
    fn key_for(
        &self,
        session: &Session,
        tok: &Token,
        spki: &cardca::x509_cert::spki::SubjectPublicKeyInfoOwned,
    ) -> Result<Option<(Vec<u8>, ObjectHandle)>> {
        let mut candidates = vec![keys::key_id(spki)];
        for h in
            session.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)]).context("C_FindObjects")?
        {
            if let Some(Attribute::Id(id)) = session.get_attributes(h, &[AttributeType::Id])?.pop() {
                candidates.push(id);
            }
        }
        for id in candidates {
            for h in session
                .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Id(id.clone())])
                .context("C_FindObjects")?
            {
                if session::public_key_of(session, tok, h).is_ok_and(|p| &p == spki) {
                    return Ok(Some((id, h)));
                }
            }
        }
        Ok(None)
    }
}

fn label_of(session: &Session, h: ObjectHandle) -> Result<Option<Vec<u8>>> {
    let attrs = session.get_attributes(h, &[AttributeType::Label]).context("reading the key's CKA_LABEL")?;
    Ok(attrs.into_iter().find_map(|a| match a {
        Attribute::Label(l) => Some(l),
        _ => None,
    }))
}

/// OpenSC gives the private key its certificate's label when a
/// certificate is stored (sc_pkcs15_prkey_attrs_from_cert), so every URI
/// naming the key by `object=` would stop matching. The key's own label is
/// set back: the user's URI keeps working and the card still pairs the two
/// by CKA_ID.
fn keep_label(session: &Session, key: ObjectHandle, before: &[u8]) {
    let now = match label_of(session, key) {
        Ok(now) if now.as_deref() != Some(before) => now.unwrap_or_default(),
        _ => return,
    };
    let (now, before_str) = (String::from_utf8_lossy(&now), String::from_utf8_lossy(before));
    // A warning, not a failure: the certificate is on the card and the
    // key is intact; only its name changed.
    match session.update_attributes(key, &[Attribute::Label(before.to_vec())]) {
        Ok(()) => report::note(format_args!(
            "the token gave the private key the certificate's label {now:?} (OpenSC does); it is \
             {before_str:?} again"
        )),
        Err(e) => report::warn(format_args!(
            "the token gave the private key the certificate's label {now:?} (OpenSC does) and refused \
             to set {before_str:?} back ({}); name the key by its id= from now on",
            Error::from(e)
        )),
    }
}
