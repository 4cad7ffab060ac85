//! What happened, before the log adds who, when and the chain: [`Event`],
//! one constructor per kind of event the tools record, and the values of
//! its fields.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::uri::Uri;

/// A value of an event field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    /// Bytes that may not be UTF-8: written as text when they are,
    /// otherwise as `{"hex":"..."}`.
    Bytes(Vec<u8>),
    Int(u64),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}

/// What a signature was made over: the `kind` of a `sign` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signed {
    Certificate,
    Crl,
    /// A BasicOCSPResponse's ResponseData (issue 12, part 1).
    OcspResponse,
    /// A PKCS#10 CertificationRequestInfo (csr-make).
    Csr,
}

impl Signed {
    pub fn name(self) -> &'static str {
        match self {
            Signed::Certificate => "certificate",
            Signed::Crl => "crl",
            Signed::OcspResponse => "ocsp-response",
            Signed::Csr => "csr",
        }
    }
}

/// One event, before the log adds who, when and the chain.
#[derive(Debug, Clone)]
#[must_use]
pub struct Event {
    pub(super) event: &'static str,
    pub(super) fields: Vec<(&'static str, Value)>,
    /// None: "ok".
    pub(super) error: Option<String>,
}

impl Event {
    pub fn new(event: &'static str) -> Event {
        Event { event, fields: Vec::new(), error: None }
    }

    /// `card-init`: C_InitToken and the first user PIN.
    pub fn token_init(token: &Uri) -> Event {
        Event::new("token-init").token(token)
    }

    pub fn pin_change(token: &Uri) -> Event {
        Event::new("pin-change").token(token)
    }

    pub fn pin_unblock(token: &Uri) -> Event {
        Event::new("pin-unblock").token(token)
    }

    /// A C_Login as `who` ("user", "so"), whatever its outcome.
    pub fn login(token: &Uri, who: &str) -> Event {
        Event::new("login").token(token).field("user_type", who)
    }

    /// `card-init --change-so-pin`: C_SetPIN as the security officer.
    pub fn so_pin_change(token: &Uri) -> Event {
        Event::new("so-pin-change").token(token)
    }

    /// A key pair made on the token (`key` is its private key's URI).
    pub fn key_generated(key: &Uri, spec: impl std::fmt::Display) -> Event {
        Event::new("key-generate").key(key).field("key_type", spec.to_string())
    }

    pub fn key_imported(key: &Uri, spec: impl std::fmt::Display) -> Event {
        Event::new("key-import").key(key).field("key_type", spec.to_string())
    }

    /// One signature on the token over `tbs` (the DER the key signed:
    /// a TBSCertificate, TBSCertList, ResponseData or
    /// CertificationRequestInfo). Add the serial or CRL number with
    /// [`Event::field`].
    pub fn signature(what: Signed, tbs: &[u8]) -> Event {
        Event::new("sign")
            .field("kind", what.name())
            .field("tbs_sha256", crate::hex::encode(&Sha256::digest(tbs)))
    }

    /// A certificate recorded in a database (`place` "db") or on a token
    /// ("token").
    pub fn stored(serial: &str, subject: &str, place: &'static str) -> Event {
        Event::new("store").field("serial", serial).field("subject", subject).field("in", place)
    }

    pub fn revoked(serial: &str, reason: Option<&str>) -> Event {
        let e = Event::new("revoke").field("serial", serial);
        match reason {
            Some(r) => e.field("reason", r),
            None => e,
        }
    }

    /// `tbs-build --crl` took this CRL number from the database.
    pub fn crl_number(number_hex: &str) -> Event {
        Event::new("crl-number").field("crl_number", number_hex)
    }

    /// A signed checkpoint: `card-sign --audit-checkpoint` signs
    /// [`checkpoint_message`](super::checkpoint_message) of this line's own `seq` and `prev` with
    /// the CA key; `alg` is the DER AlgorithmIdentifier in hex.
    pub fn checkpoint(key: &Uri, alg_der_hex: &str, signature_hex: &str) -> Event {
        Event::new("checkpoint").key(key).field("alg", alg_der_hex).field("signature", signature_hex)
    }

    /// An OCSP response written where it is served (issue 12, part 1).
    pub fn ocsp_published(serial: &str, path: &Path) -> Event {
        Event::new("ocsp-publish")
            .field("serial", serial)
            .field("path", Value::Bytes(path.as_os_str().as_encoded_bytes().to_vec()))
    }

    /// An `ocsp-publish` event naming only the directory: for a response
    /// refused before its serial could be read, or a batch that failed
    /// after it was logged.
    pub fn ocsp_dir(dir: &Path) -> Event {
        Event::new("ocsp-publish").field("dir", Value::Bytes(dir.as_os_str().as_encoded_bytes().to_vec()))
    }

    /// The token a URI names (its token part: never a PIN, never the query).
    pub fn token(self, uri: &Uri) -> Event {
        self.field("token", uri.token_part().to_string())
    }

    /// The token, CKA_ID and CKA_LABEL of a key named by its object URI.
    pub fn key(self, uri: &Uri) -> Event {
        let mut e = self.token(uri);
        if let Some(id) = &uri.id {
            e = e.field("key_id", crate::hex::encode(id));
        }
        if let Some(label) = &uri.object {
            e = e.field("key_label", label.as_str());
        }
        e
    }

    pub fn field(mut self, name: &'static str, value: impl Into<Value>) -> Event {
        self.fields.push((name, value.into()));
        self
    }

    /// The result: the error's message instead of "ok".
    pub fn failed(mut self, e: &Error) -> Event {
        self.error = Some(e.message().to_string());
        self
    }
}
