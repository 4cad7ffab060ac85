//! The issuance policy: the rules a certificate, CRL, OCSP response or
//! subject key must meet before a CA key signs it. tbs-build uses them to
//! build, card-sign to refuse, cert-store to check what it files; each
//! rule is one small function whose error names the rule and the field it
//! refuses.
//!
//! This module owns the order in which a certificate's rules run and the
//! issuer's own gate ([`may_sign`]); the rules themselves live in:
//! - `extensions`: strict decoding of each extension, criticality, the
//!   unknown-extension rule, the values of a CA's name constraints;
//! - `rules`: subject key, keyUsage per key type, subject and SAN names,
//!   key identifiers, pathLen, validity and EKU nesting under the issuer;
//! - `constraints`: name constraints, a pure (name, base) match;
//! - `crl`: the rules of a TBSCertList;
//! - `ocsp`: every OCSP trust rule (responder certificates, the
//!   ResponseData, and a signed response as a relying party checks it).

mod constraints;
mod crl;
mod extensions;
mod ocsp;
mod rules;
#[cfg(test)]
mod testing;

use der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::KeyUsages;

use crate::cert::{CaCert, TbsCert};
use crate::error::{Error, Result};
use crate::oid;
use constraints::within_constraints;
use extensions::{ext_error, parse_extensions};
use ocsp::{is_ocsp_responder, ocsp_responder_rules, responder_validity};
use rules::{eku_within, key_ids, key_usage, names_of, path_len, server_names, validity_within};

pub use crl::check_crl;
pub use extensions::extension_name;
pub use ocsp::{
    check_ocsp, check_ocsp_responder, check_signed, may_answer, Checked, Responder, OCSP_MAX_DAYS,
    OCSP_MIN_SECONDS, OCSP_RESPONDER_MAX_DAYS,
};
pub use rules::{check_subject_key, eku_name, EKU_NAMES};

/// Whose rules apply to a TBSCertificate: its own (a self-signed root), or
/// an issuing CA's, with the CAs above it (`--chain`) for name constraints.
pub enum Issuer<'a> {
    SelfSigned,
    Ca { ca: &'a CaCert, above: &'a [CaCert] },
}

/// Every rule a TBSCertificate must pass before a CA key signs it, beyond
/// the DER sanity of [`crate::cert::check_tbs`] (which callers run first):
/// the issuer's policy. card-sign runs it on what it is given; tbs-build
/// runs [`check_certificate_rules`], the same checks, to learn which rule
/// refused.
pub fn check_certificate(tbs: &TbsCert, issuer: Issuer<'_>, allow: &[ObjectIdentifier]) -> Result<()> {
    check_certificate_rules(tbs, issuer, allow).map_err(|r| r.error)
}

/// Which rule of [`check_certificate`] refused a certificate. The message
/// is the rule's, the same for every tool; a tool that built the
/// certificate from flags (tbs-build) matches on this to name the flag to
/// change, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The issuer is a CA whose keyUsage has keyCertSign.
    Issuer,
    /// The extensions decode strictly, none unknown; basicConstraints is sound.
    Extensions,
    /// The shape of a delegated OCSP responder's certificate, and
    /// ocspNoCheck only there.
    OcspResponder,
    /// A responder certificate is valid at most [`OCSP_RESPONDER_MAX_DAYS`].
    ResponderValidity,
    /// A sub CA fits under the issuer's pathLenConstraint.
    PathLen,
    /// The validity lies within the issuer's.
    Validity,
    /// The extended key usages lie within the issuer's.
    Eku,
    /// The subject key is one we certify.
    SubjectKey,
    /// keyUsage fits the key type and the certificate's kind.
    KeyUsage,
    /// The subject and the SANs are well-formed names.
    Names,
    /// A TLS server certificate names its hosts as SANs, its CN among them.
    ServerNames,
    /// The key identifiers.
    KeyIds,
    /// Every name within the name constraints of the issuer and the CAs above.
    NameConstraints,
}

/// A certificate refused: the rule, and the message every tool prints.
#[derive(Debug)]
pub struct Refusal {
    pub rule: Rule,
    pub error: Error,
}

/// [`check_certificate`], telling which rule refused.
pub fn check_certificate_rules(
    tbs: &TbsCert,
    issuer: Issuer<'_>,
    allow: &[ObjectIdentifier],
) -> std::result::Result<(), Refusal> {
    let by = |rule| move |error| Refusal { rule, error };
    let own;
    let (ca, above, self_signed) = match issuer {
        Issuer::Ca { ca, above } => (ca, above, false),
        Issuer::SelfSigned => {
            own = CaCert::from_tbs(Vec::new(), tbs.clone()).map_err(by(Rule::Issuer))?;
            (&own, &[][..], true)
        }
    };
    let p = parse_extensions(tbs, allow).map_err(by(Rule::Extensions))?;
    let (basic, basic_critical) = p
        .basic
        .as_ref()
        .ok_or_else(|| Error::new("basicConstraints is missing"))
        .map_err(by(Rule::Extensions))?;
    if basic.ca && !basic_critical {
        let e = ext_error(&oid::BASIC_CONSTRAINTS, "must be critical in a CA certificate (RFC 5280)");
        return Err(by(Rule::Extensions)(e));
    }
    if !basic.ca && basic.path_len_constraint.is_some() {
        return Err(by(Rule::Extensions)(ext_error(
            &oid::BASIC_CONSTRAINTS,
            "pathLenConstraint without cA TRUE",
        )));
    }
    may_sign(ca, KeyUsages::KeyCertSign, "certificates").map_err(by(Rule::Issuer))?;
    ocsp_responder_rules(tbs, &p, basic.ca).map_err(by(Rule::OcspResponder))?;
    // A delegated OCSP responder is the CA's own agent (RFC 6960
    // section 4.2.2.2), so OCSPSigning needs no room in the CA's
    // extended key usages, which the CA/B Forum forbids it in anyway.
    let responder = is_ocsp_responder(p.eku.as_ref(), basic.ca);
    if responder {
        responder_validity(tbs).map_err(by(Rule::ResponderValidity))?;
    }
    if !self_signed {
        path_len(ca, basic).map_err(by(Rule::PathLen))?;
        validity_within(tbs, ca).map_err(by(Rule::Validity))?;
        if !responder {
            eku_within(p.eku.as_ref(), ca).map_err(by(Rule::Eku))?;
        }
    }
    let spec = check_subject_key(&tbs.subject_public_key_info).map_err(by(Rule::SubjectKey))?;
    key_usage(p.key_usage.as_ref(), basic.ca, spec).map_err(by(Rule::KeyUsage))?;
    names_of(tbs, &p, basic.ca).map_err(by(Rule::Names))?;
    server_names(&tbs.subject, &p, basic.ca).map_err(by(Rule::ServerNames))?;
    key_ids(&p, ca, basic.ca).map_err(by(Rule::KeyIds))?;
    let san = p.san.as_ref().map_or(&[][..], |(s, _)| s.as_slice());
    for c in std::iter::once(ca).chain(above).filter(|_| !self_signed) {
        within_constraints(&tbs.subject, san, c).map_err(by(Rule::NameConstraints))?;
    }
    Ok(())
}

/// How every rule names the issuing CA in its messages.
fn who(ca: &CaCert) -> String {
    format!("issuer {}", ca.subject_text())
}

/// The issuer is a CA (basicConstraints cA TRUE) whose keyUsage allows
/// what it is about to sign.
pub fn may_sign(ca: &CaCert, usage: KeyUsages, what: &str) -> Result<()> {
    if !ca.basic.as_ref().is_some_and(|b| b.ca) {
        return Err(Error::new(format!(
            "{} is not a CA certificate (basicConstraints cA is not TRUE)",
            who(ca)
        )));
    }
    if !ca.key_usage.as_ref().is_some_and(|ku| ku.0.contains(usage)) {
        let bit = if usage == KeyUsages::CRLSign { "cRLSign" } else { "keyCertSign" };
        return Err(Error::new(format!("{} may not sign {what} (no {bit} in its keyUsage)", who(ca))));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
