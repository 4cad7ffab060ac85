//! Opening a signing key: which token, which private key, which public
//! key belongs to it, one login.

use std::path::PathBuf;

use cryptoki::context::Pkcs11;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use der::Decode;
use secrecy::SecretString;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::error::{Context, Error, Result};
use crate::keys;
use crate::sign::{Mechanisms, SigAlg, Signer, SignerSpec};
use crate::token::{self, Token};
use crate::uri::Uri;
use crate::{lock, module};

/// What a tool was told about the token it is to open: the module, its
/// init string, where the PIN comes from, and which audit log records the
/// login. The command-line tools fill it from their token flags (the
/// parsing lives in `cli`); the library only reads it.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--module`: the PKCS#11 module; without it, found from the URI or
    /// the usual places.
    pub module: Option<PathBuf>,
    /// `--module-args`: the module's C_Initialize init string.
    pub module_args: Option<String>,
    /// `--pin-source`: where the user PIN comes from.
    pub pin_source: Option<crate::pin::PinSource>,
    /// `--audit FILE` / `--no-audit`: which audit log (see [`crate::audit`]).
    pub audit: crate::audit::Choice,
}

impl Options {
    /// Whether an option that only means something with a token was given
    /// (for the modes of a tool that open none).
    pub fn names_a_module(&self) -> bool {
        self.module.is_some() || self.module_args.is_some() || self.pin_source.is_some()
    }
}

/// How the tool will choose its signature algorithm once it knows the key
/// (`--hash`, `--pss`): checked against the token's mechanisms before the
/// login, so a token that cannot make that signature is refused with the
/// missing mechanism named and no PIN spent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wants {
    pub hash: Option<crate::sign::Hash>,
    pub pss: bool,
}

/// A logged-in session on the token that holds the key.
pub struct KeySession {
    open: Option<Open>,
    pub token: Token,
    pub key: ObjectHandle,
    pub spki: SubjectPublicKeyInfoOwned,
    pub uri: Uri,
    pin: Option<SecretString>,
    /// The module's path, for its token lock.
    module: std::path::PathBuf,
}

/// The module and session, dropped (C_CloseSession) under the token lock:
/// SoftHSM2 writes its files then too. The module itself stays loaded
/// until the process exits (`module::load`).
struct Open {
    session: Session,
    ctx: Pkcs11,
}

impl Drop for KeySession {
    fn drop(&mut self) {
        let _lock = self.lock();
        self.open.take();
    }
}

impl KeySession {
    /// Opens the key named by `key_uri`, or, without one, the private key
    /// whose public key is `expect` (a CA certificate's). With both, the
    /// key must have that public key.
    pub fn open(
        options: &Options,
        key_uri: Option<&Uri>,
        expect: Option<&SubjectPublicKeyInfoOwned>,
        wants: Wants,
    ) -> Result<KeySession> {
        let ctx = {
            let _lock = module::lock(options.module.as_deref(), key_uri);
            module::load(options.module.as_deref(), options.module_args.as_deref(), key_uri)?
        };
        KeySession::open_loaded(ctx, options, key_uri, expect, wants)
    }

    /// [`KeySession::open`] with the module already loaded (a
    /// [`module::Preload`]).
    pub fn open_loaded(
        ctx: Pkcs11,
        options: &Options,
        key_uri: Option<&Uri>,
        expect: Option<&SubjectPublicKeyInfoOwned>,
        wants: Wants,
    ) -> Result<KeySession> {
        let module = module::module_path(options.module.as_deref(), key_uri)?;
        let _lock = lock::lock_module(&module);
        // Moved in after the lock, so dropped before it: a failed open
        // also closes its session under the lock.
        let ctx = ctx;
        let (token, uri) = match (key_uri, expect) {
            (Some(uri), _) => (token::select(&ctx, uri)?, uri.clone()),
            (None, Some(spki)) => locate(&ctx, spki)?,
            (None, None) => {
                return Err(Error::usage("name the signing key with --key URI, or give --ca FILE"))
            }
        };
        let session = ctx.open_ro_session(token.slot).context("C_OpenSession")?;
        if let Some(spec) = spec_before_login(&session, &uri, expect)? {
            let alg = SigAlg::for_key(spec, wants.hash, wants.pss)?;
            Mechanisms::read(&ctx, token.slot)?.route(alg).with_context(|| token.describe())?;
        }
        let pin = crate::login::login(&session, &token, options.pin_source.as_ref(), Some(&uri))?;
        let key = token::select_object(&session, &token, &uri, ObjectClass::PRIVATE_KEY)?;
        // The PIN is kept only for a key that wants it before every
        // signature; otherwise it is wiped (dropped) now, right after the
        // login, instead of staying in memory for the whole run.
        let pin = if needs_context_login(&session, key)? { pin } else { None };
        let spki = public_key_of(&session, &token, key)?;
        if let Some(want) = expect {
            if &spki != want {
                return Err(Error::new(format!(
                    "the key {} is not the CA's key: its public key differs from the certificate's",
                    token::object_uri(&session, &token, key)
                )));
            }
        }
        let uri = token::object_uri(&session, &token, key);
        Ok(KeySession { open: Some(Open { session, ctx }), token, key, spki, uri, pin, module })
    }

    /// The token lock of this key's module.
    pub fn lock(&self) -> lock::Lock {
        lock::lock_module(&self.module)
    }

    /// The module's path (for [`lock::lock_module`] on other threads).
    pub fn module(&self) -> &std::path::Path {
        &self.module
    }

    fn parts(&self) -> Result<&Open> {
        self.open.as_ref().ok_or_else(|| Error::new("the token session is closed"))
    }

    pub fn session(&self) -> Result<&Session> {
        Ok(&self.parts()?.session)
    }

    /// A signer on this session.
    pub fn signer(&self) -> Result<Signer<'_>> {
        self.signer_spec()?.on(&self.parts()?.session)
    }

    /// The key, its public key, the token's mechanisms and the PIN, for
    /// signers on other sessions (other threads).
    pub fn signer_spec(&self) -> Result<SignerSpec> {
        let mechanisms = crate::sign::Mechanisms::read(&self.parts()?.ctx, self.token.slot)?;
        Ok(SignerSpec { key: self.key, spki: self.spki.clone().into(), mechanisms, pin: self.pin.clone() })
    }

    /// Another session on the same token, for parallel signing: the login
    /// belongs to the application, so it needs no second one (PKCS#11
    /// section 5.6).
    pub fn fork(&self) -> Result<Session> {
        let _lock = self.lock();
        self.parts()?.ctx.open_ro_session(self.token.slot).context("C_OpenSession")
    }
}

/// The key's type as far as it shows before the login: the expected public
/// key, else the one public key object, else the one certificate, the URI
/// names. None when that is not one object: the signer checks the
/// mechanisms again once the private key is found.
fn spec_before_login(
    session: &Session,
    uri: &Uri,
    expect: Option<&SubjectPublicKeyInfoOwned>,
) -> Result<Option<keys::KeySpec>> {
    if let Some(spki) = expect {
        return keys::KeySpec::from_spki(spki).map(Some);
    }
    let public = session
        .find_objects(&token::template(uri, Some(ObjectClass::PUBLIC_KEY)))
        .context("C_FindObjects")?;
    if let [one] = public[..] {
        return keys::key_spec(session, one).map(Some);
    }
    let certs = session
        .find_objects(&token::template(uri, Some(ObjectClass::CERTIFICATE)))
        .context("C_FindObjects")?;
    let [one] = certs[..] else { return Ok(None) };
    let Some(Attribute::Value(der)) = session.get_attributes(one, &[AttributeType::Value])?.pop() else {
        return Ok(None);
    };
    Ok(x509_cert::Certificate::from_der(&der)
        .ok()
        .and_then(|c| keys::KeySpec::from_spki(c.tbs_certificate().subject_public_key_info()).ok()))
}

/// CKA_ALWAYS_AUTHENTICATE: the key needs a context-specific login (the
/// PIN again) before each signature, PKCS#11 section 4.9.
fn needs_context_login(session: &Session, key: ObjectHandle) -> Result<bool> {
    let attrs =
        session.get_attributes(key, &[AttributeType::AlwaysAuthenticate]).context("C_GetAttributeValue")?;
    Ok(attrs.contains(&Attribute::AlwaysAuthenticate(true)))
}

/// The one token `uri` names, a read-write session on it, and one login:
/// what the tools that create objects (card-keygen, cert-store) start with.
pub fn open_rw(ctx: &Pkcs11, options: &Options, uri: &Uri) -> Result<(Token, Session)> {
    let tok = token::select(ctx, uri)?;
    let session = ctx.open_rw_session(tok.slot).context("C_OpenSession")?;
    // Nothing these tools do needs the PIN again: wiped as it drops here.
    drop(crate::login::login(&session, &tok, options.pin_source.as_ref(), Some(uri))?);
    Ok((tok, session))
}

/// The public key that belongs to a private key: the public key object
/// with the same CKA_ID, else the certificate with it (PIV-style tokens
/// keep no public key objects), else an RSA private key's own modulus.
pub fn public_key_of(
    session: &Session,
    token: &Token,
    key: ObjectHandle,
) -> Result<SubjectPublicKeyInfoOwned> {
    let id = match session.get_attributes(key, &[AttributeType::Id]).context("C_GetAttributeValue")?.pop() {
        Some(Attribute::Id(id)) if !id.is_empty() => Some(id),
        _ => None,
    };
    let spec = keys::key_spec(session, key)?;
    if let Some(id) = &id {
        let by_id = |class| -> Result<Vec<ObjectHandle>> {
            session
                .find_objects(&[Attribute::Class(class), Attribute::Id(id.clone())])
                .context("C_FindObjects")
        };
        // Several objects with one id are only fine when they all carry the
        // same public key (a certificate renewed for the same key); which
        // one was found first must never decide which key is trusted.
        let mut found: Vec<(ObjectHandle, SubjectPublicKeyInfoOwned)> = Vec::new();
        for h in by_id(ObjectClass::PUBLIC_KEY)? {
            found.push((h, keys::public_key_info(session, h)?.1));
        }
        if found.is_empty() {
            for h in by_id(ObjectClass::CERTIFICATE)? {
                let der = match session
                    .get_attributes(h, &[AttributeType::Value])
                    .context("C_GetAttributeValue")?
                    .pop()
                {
                    Some(Attribute::Value(der)) => der,
                    _ => continue,
                };
                let cert = x509_cert::Certificate::from_der(&der).with_context(|| {
                    format!("the key's certificate {}", token::object_uri(session, token, h))
                })?;
                found.push((h, cert.tbs_certificate().subject_public_key_info().clone()));
            }
        }
        if let Some((_, first)) = found.first() {
            if found.iter().all(|(_, spki)| spki == first) {
                return Ok(first.clone());
            }
            let mut uris: Vec<String> =
                found.iter().map(|&(h, _)| token::object_uri(session, token, h).to_string()).collect();
            uris.sort();
            return Err(token::ambiguous(
                &format!(
                    "{} objects with the id of {} carry different public keys",
                    found.len(),
                    token::object_uri(session, token, key)
                ),
                uris.into_iter(),
            )
            .hint("remove the objects that do not belong to the key, or give each key its own CKA_ID"));
        }
    }
    if let keys::KeySpec::Rsa(_) = spec {
        return Ok(keys::public_key_info(session, key)?.1);
    }
    Err(Error::new(format!(
        "no public key object or certificate with the id of {} on {}",
        token::object_uri(session, token, key),
        token.describe()
    ))
    .hint("store the public key or certificate on the token with the key's CKA_ID"))
}

/// Finds the token and object id of a public key without logging in, from
/// the public key objects and certificates every token shows.
fn locate(ctx: &Pkcs11, spki: &SubjectPublicKeyInfoOwned) -> Result<(Token, Uri)> {
    let mut found: Vec<(Token, Vec<u8>)> = Vec::new();
    for t in token::tokens(ctx)?.into_iter().filter(|t| t.info.token_initialized()) {
        let session = ctx.open_ro_session(t.slot).context("C_OpenSession")?;
        let mut ids = Vec::new();
        for h in
            session.find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY)]).context("C_FindObjects")?
        {
            if keys::public_key_info(&session, h).is_ok_and(|(_, s)| &s == spki) {
                if let Some(Attribute::Id(id)) = session.get_attributes(h, &[AttributeType::Id])?.pop() {
                    ids.push(id);
                }
            }
        }
        for h in
            session.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)]).context("C_FindObjects")?
        {
            let attrs = session.get_attributes(h, &[AttributeType::Value, AttributeType::Id])?;
            let (mut value, mut id) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Value(v) => value = Some(v),
                    Attribute::Id(i) => id = Some(i),
                    _ => {}
                }
            }
            let matches = value
                .and_then(|v| x509_cert::Certificate::from_der(&v).ok())
                .is_some_and(|c| c.tbs_certificate().subject_public_key_info() == spki);
            if let (true, Some(id)) = (matches, id) {
                ids.push(id);
            }
        }
        ids.sort();
        ids.dedup();
        for id in ids.into_iter().filter(|id| !id.is_empty()) {
            found.push((t.clone(), id));
        }
    }
    match found.len() {
        1 => {
            let (t, id) = found.remove(0);
            let mut uri = t.uri();
            uri.id = Some(id);
            Ok((t, uri))
        }
        0 => Err(Error::new("no token holds a public key or certificate for the CA's key")
            .hint("name the key with --key URI")),
        _ => Err(token::ambiguous(
            "the CA's public key is on several tokens or under several ids",
            found.iter().map(|(t, id)| format!("{};id={}", t.uri(), crate::hex::encode(id))),
        )),
    }
}
