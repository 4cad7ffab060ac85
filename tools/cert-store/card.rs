//! Storing certificates on the card, next to the keys they certify.

use cardca::cryptoki::context::Pkcs11;
use cardca::cryptoki::object::{Attribute, AttributeType, ObjectClass};
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
        let id = match self.key_id_for(session, tok, spki)? {
            Some(id) => id,
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
        token::create_certificate(session, &r.der, &label, &id)?;
        report::note(format_args!(
            "stored serial {} on {} with id {}",
            r.entry.serial,
            tok.describe(),
            hex::encode(&id)
        ));
        Ok(())
    }

    /// The CKA_ID of the private key whose public key the certificate
    /// certifies: first the key identifier (cardca's default id), then any
    /// private key whose public half matches.
    fn key_id_for(
        &self,
        session: &Session,
        tok: &Token,
        spki: &cardca::x509_cert::spki::SubjectPublicKeyInfoOwned,
    ) -> Result<Option<Vec<u8>>> {
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
                    return Ok(Some(id));
                }
            }
        }
        Ok(None)
    }
}
