//! Every OCSP trust rule (RFC 6960 in RFC 5019's lightweight profile, with
//! the CA/B Forum's limits): what makes a certificate a delegated
//! responder, whose key may sign for a CA ([`check_ocsp_responder`]), what
//! a ResponseData must be before a key signs it ([`check_ocsp`]), and a
//! signed response checked as a relying party would before cert-store
//! serves it ([`check_signed`]). `crate::ocsp` holds only the ASN.1 and
//! the builders; the decisions are made here.

use der::asn1::ObjectIdentifier;
use der::Encode;
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsages};

use super::extensions::{ext_error, extension_name, parse_extensions, unknown_extension, Parsed};
use super::who;
use crate::cert::*;
use crate::error::{Context, Error, Result};
use crate::ocsp::{
    self, BasicOcspResponse, CertStatus, IdHash, OcspResponse, ResponderId, ResponseData, ResponseStatus,
};
use crate::oid;
use crate::sign::{self, SigAlg};
use crate::{names, time};

pub(super) fn is_ocsp_responder(eku: Option<&ExtendedKeyUsage>, ca: bool) -> bool {
    !ca && eku.is_some_and(|e| e.0 == [oid::OCSP_SIGNING])
}

/// The longest a delegated responder's certificate may be valid. It
/// carries id-pkix-ocsp-nocheck (RFC 6960 section 4.2.2.2.1), so no
/// relying party checks whether it was revoked: its validity is the only
/// limit on what a stolen responder key can do. 90 days lets a weekly
/// signing schedule renew it monthly with room to spare, and is well under
/// the CA/B Forum's 398 days for any leaf.
pub const OCSP_RESPONDER_MAX_DAYS: u64 = 90;

/// The longest thisUpdate..nextUpdate of a response: the CA/B Forum's
/// Baseline Requirements (section 4.9.10) allow at most 10 days, and a
/// relying party trusts a pre-signed "good" that long after a revocation.
pub const OCSP_MAX_DAYS: u64 = 10;

/// The shortest validity interval of a response (BRs section 4.9.10: eight
/// hours).
pub const OCSP_MIN_SECONDS: u64 = 8 * 3600;

/// An OCSP responder certificate (extKeyUsage id-kp-OCSPSigning), the
/// delegated responder of RFC 6960 section 4.2.2.2: a leaf with
/// OCSPSigning as its only usage, id-pkix-ocsp-nocheck, keyUsage
/// digitalSignature only, valid at most [`OCSP_RESPONDER_MAX_DAYS`] (that
/// last in [`responder_validity`], which every caller runs next). And
/// nocheck only in such a certificate: elsewhere it would exempt an
/// ordinary certificate from revocation checking.
pub(super) fn ocsp_responder_rules(tbs: &TbsCert, p: &Parsed, ca: bool) -> Result<()> {
    let signing = p.eku.as_ref().is_some_and(|e| e.0.contains(&oid::OCSP_SIGNING));
    let nocheck = tbs.extension(oid::OCSP_NOCHECK).is_some();
    if !signing {
        if nocheck {
            return Err(ext_error(
                &oid::OCSP_NOCHECK,
                "only an OCSP responder certificate (extKeyUsage OCSPSigning) may carry it",
            ));
        }
        return Ok(());
    }
    if ca {
        return Err(ext_error(
            &oid::EXT_KEY_USAGE,
            "OCSPSigning in a CA certificate would make it a responder for its issuer \
             (forbidden by the CA/B Forum BRs, section 7.1.2.2)",
        ));
    }
    if p.eku.as_ref().is_some_and(|e| e.0.len() != 1) {
        return Err(ext_error(
            &oid::EXT_KEY_USAGE,
            "an OCSP responder certificate has OCSPSigning as its only usage",
        ));
    }
    if !nocheck {
        return Err(Error::new(format!(
            "{} is missing from an OCSP responder certificate (RFC 6960 section 4.2.2.2.1)",
            extension_name(&oid::OCSP_NOCHECK)
        )));
    }
    if p.key_usage.as_ref().is_some_and(|ku| ku.0 != der::flagset::FlagSet::from(KeyUsages::DigitalSignature))
    {
        return Err(ext_error(&oid::KEY_USAGE, "an OCSP responder certificate has digitalSignature only"));
    }
    Ok(())
}

/// A delegated responder's certificate (one that passed
/// [`ocsp_responder_rules`]) is valid at most [`OCSP_RESPONDER_MAX_DAYS`];
/// a rule of its own so that tbs-build can point at `--days`.
pub(super) fn responder_validity(tbs: &TbsCert) -> Result<()> {
    // notAfter is inclusive: N days end one second before the Nth day.
    let span = time::seconds(&tbs.validity.not_after).saturating_sub(time::seconds(&tbs.validity.not_before));
    let days = (span + 1).div_ceil(86400);
    if days > OCSP_RESPONDER_MAX_DAYS {
        return Err(Error::new(format!(
            "an OCSP responder certificate valid {days} days: at most {OCSP_RESPONDER_MAX_DAYS} (it carries ocspNoCheck, so it cannot be revoked)"
        )));
    }
    Ok(())
}

/// A delegated responder certificate that [`check_ocsp_responder`] passed:
/// checked once per stream (its signature is a verification), not once per
/// response.
#[derive(Clone, Copy)]
pub struct Responder<'r>(&'r CaCert);

impl<'r> Responder<'r> {
    pub fn cert(self) -> &'r CaCert {
        self.0
    }
}

/// Whose key signs an OCSP response for `ca`: the CA itself, or a
/// delegated responder `ca` issued (RFC 6960 section 4.2.2.2). The
/// responder certificate is checked as a relying party would: issued and
/// signed by `ca`, the responder rules of a certificate (see
/// `ocsp_responder_rules`, which both gates apply when it is issued).
pub fn check_ocsp_responder<'r>(responder: &'r CaCert, ca: &CaCert) -> Result<Responder<'r>> {
    let what = format!("responder {}", responder.subject_text());
    if responder.tbs.issuer.to_der()? != ca.tbs.subject.to_der()? {
        return Err(Error::new(format!(
            "{what} is issued by {}, not by the CA {}",
            names::openssl_oneline(&responder.tbs.issuer),
            ca.subject_text()
        )));
    }
    let signed = split_signed(&responder.der, "responder certificate")?;
    let alg = SigAlg::from_identifier(&signed.algorithm)?;
    sign::verify(&ca.tbs.subject_public_key_info, alg, signed.tbs, &signed.signature)
        .map_err(|e| e.context(format!("{what}: checked with the key of {}", ca.subject_text())))?;
    let p = parse_extensions(&responder.tbs, &[]).map_err(|e| e.context(what.clone()))?;
    if !p.eku.as_ref().is_some_and(|e| e.0.contains(&oid::OCSP_SIGNING)) {
        return Err(Error::new(format!("{what} does not hold extKeyUsage OCSPSigning")));
    }
    let is_ca = p.basic.as_ref().is_some_and(|(b, _)| b.ca);
    ocsp_responder_rules(&responder.tbs, &p, is_ca)
        .and_then(|()| responder_validity(&responder.tbs))
        .map_err(|e| e.context(what))?;
    Ok(Responder(responder))
}

/// Whether `ca` may answer for certificates at all: only a CA (through
/// its own key or a responder it delegated to) does. tbs-build asks before
/// it opens the database; [`check_ocsp`] again for every response.
pub fn may_answer(ca: &CaCert) -> Result<()> {
    if !ca.basic.as_ref().is_some_and(|b| b.ca) {
        return Err(Error::new(format!(
            "{} is not a CA certificate: only a CA (or its responder) answers for certificates",
            who(ca)
        )));
    }
    Ok(())
}

/// Every rule a ResponseData must pass before a key signs it as the OCSP
/// response of `ca` (signed by `ca` itself, or by `responder` when given):
/// version v1; responderID byKey, naming the signer's key; one
/// SingleResponse (one file per certificate); its CertID naming this CA
/// (issuer name and key hash, SHA-1 or SHA-256) and a valid serial;
/// status good or revoked (never unknown: a pre-signed response is for a
/// certificate the CA issued); thisUpdate <= nextUpdate at most
/// [`OCSP_MAX_DAYS`] apart and not over; producedAt between them; times
/// within the signer's validity and current at `now` (seconds since the
/// epoch, `time::now()` for the tools); no extension cardca cannot check.
pub fn check_ocsp(
    rd: &ResponseData,
    ca: &CaCert,
    responder: Option<Responder<'_>>,
    allow: &[ObjectIdentifier],
    now: u64,
) -> Result<()> {
    may_answer(ca)?;
    let signer = responder.map_or(ca, Responder::cert);
    if rd.version.is_some() {
        return Err(Error::new(
            "ResponseData carries an explicit version (v1 is the DEFAULT, left out in DER)",
        ));
    }
    let want = ocsp::key_hash(&signer.tbs.subject_public_key_info, IdHash::Sha1);
    match &rd.responder_id {
        ResponderId::ByKey(h) if h.as_bytes() == want.as_slice() => {}
        ResponderId::ByKey(h) => {
            return Err(Error::new(format!(
                "responderID byKey {} is not the key of the signer {} ({})",
                crate::hex::encode(h.as_bytes()),
                signer.subject_text(),
                crate::hex::encode(&want)
            )))
        }
        ResponderId::ByName(n) => {
            return Err(Error::new(format!(
                "responderID byName {}: cardca's responses name their responder byKey",
                names::openssl_oneline(n)
            )))
        }
    }
    for ext in rd.response_extensions.as_deref().unwrap_or(&[]) {
        unknown_extension(ext, allow).map_err(|e| e.context("responseExtensions"))?;
    }
    check_unique(rd.response_extensions.as_deref().unwrap_or(&[]))?;
    let single = ocsp::single(rd)?;
    let id = &single.cert_id;
    let hash = IdHash::from_identifier(&id.hash_algorithm)?;
    if id.issuer_name_hash.as_bytes() != hash.digest(&ca.tbs.subject.to_der()?) {
        return Err(Error::new(format!(
            "CertID issuerNameHash is not the hash of the CA's name {}",
            ca.subject_text()
        )));
    }
    if id.issuer_key_hash.as_bytes() != ocsp::key_hash(&ca.tbs.subject_public_key_info, hash) {
        return Err(Error::new(format!("CertID issuerKeyHash is not the hash of the key of {}", who(ca))));
    }
    check_serial(&id.serial_number).map_err(|e| e.context("CertID"))?;
    let this = ocsp::seconds(&single.this_update);
    let next = single
        .next_update
        .as_ref()
        .map(ocsp::seconds)
        .ok_or_else(|| Error::new("no nextUpdate (RFC 5019 section 2.2.4 requires it)"))?;
    match &single.cert_status {
        CertStatus::Good(_) => {}
        CertStatus::Revoked(info) => {
            if ocsp::seconds(&info.revocation_time) > this {
                return Err(Error::new("revocationTime is after thisUpdate"));
            }
            use x509_cert::ext::pkix::crl::CrlReason;
            if matches!(info.revocation_reason, Some(CrlReason::Unspecified | CrlReason::RemoveFromCRL)) {
                return Err(Error::new(
                    "revocationReason unspecified or removeFromCRL (RFC 5280 section 5.3.1: omit the former; the latter is no revocation)",
                ));
            }
        }
        CertStatus::Unknown(_) => return Err(Error::new(
            "certStatus unknown: pre-signed responses are for certificates the CA issued (good or revoked)",
        )),
    }
    if this > next {
        return Err(Error::new("thisUpdate is after nextUpdate"));
    }
    // The BRs count the validity interval with both ends (section 4.9.10:
    // "inclusive"), so ten days end one second before thisUpdate + 10 days.
    let interval = next - this + 1;
    if interval > OCSP_MAX_DAYS * 86400 {
        return Err(Error::new(format!(
            "thisUpdate to nextUpdate, both included, is {} s: at most {OCSP_MAX_DAYS} days, {} s \
             (CA/B Forum BRs section 4.9.10)",
            interval,
            OCSP_MAX_DAYS * 86400
        )));
    }
    if interval < OCSP_MIN_SECONDS {
        return Err(Error::new(format!(
            "thisUpdate to nextUpdate, both included, is {interval} s: at least 8 hours \
             (CA/B Forum BRs section 4.9.10)"
        )));
    }
    let produced = ocsp::seconds(&rd.produced_at);
    if produced < this || produced > next {
        return Err(Error::new("producedAt lies outside thisUpdate..nextUpdate"));
    }
    // A response made ahead of time by a clock a little fast is fine; one
    // from the far future, or already stale, is a mistake or a replay.
    if this > now + 3600 {
        return Err(Error::new(format!("thisUpdate {} is in the future", time::display(this))));
    }
    if produced > now + 3600 {
        return Err(Error::new(format!("producedAt {} is in the future", time::display(produced))));
    }
    if next <= now {
        return Err(Error::new(format!("nextUpdate {} has passed", time::display(next))));
    }
    let (nb, na) =
        (time::seconds(&signer.tbs.validity.not_before), time::seconds(&signer.tbs.validity.not_after));
    if this < nb || next > na {
        return Err(Error::new(format!(
            "thisUpdate..nextUpdate ({} to {}) is not within the validity of the signer {} ({} to {})",
            time::display(this),
            time::display(next),
            signer.subject_text(),
            time::display(nb),
            time::display(na)
        )));
    }
    for ext in single.single_extensions.as_deref().unwrap_or(&[]) {
        unknown_extension(ext, allow).map_err(|e| e.context("singleExtensions"))?;
    }
    check_unique(single.single_extensions.as_deref().unwrap_or(&[]))?;
    Ok(())
}

/// A signed response that passed [`check_signed`].
pub struct Checked {
    /// The certificate's serial as index.txt writes it (the file name).
    pub serial: String,
    /// Its thisUpdate, in seconds since the epoch.
    pub this_update: u64,
    pub der: Vec<u8>,
}

/// A signed response as cert-store files it, checked all the way as a
/// relying party would: strict DER, successful, id-pkix-ocsp-basic, at most
/// the responder's certificate in certs, the OCSP rules of
/// [`check_ocsp`] (one SingleResponse whose CertID names `ca`, a responder
/// that is `ca` or delegated by it, current at `now`), and the signature
/// with the responder's key.
pub fn check_signed(der: Vec<u8>, ca: &CaCert, now: u64) -> Result<Checked> {
    let response: OcspResponse = decode_exact(&der, "OCSPResponse")?;
    if response.response_status != ResponseStatus::Successful {
        return Err(Error::new(format!("responseStatus {:?}: nothing to serve", response.response_status)));
    }
    let bytes =
        response.response_bytes.ok_or_else(|| Error::new("a successful response without responseBytes"))?;
    if bytes.response_type != oid::OCSP_BASIC {
        return Err(Error::new(format!("responseType {} is not id-pkix-ocsp-basic", bytes.response_type)));
    }
    let basic: BasicOcspResponse = decode_exact(bytes.response.as_bytes(), "BasicOCSPResponse")?;
    let responder = match basic.certs.as_deref() {
        None => None,
        Some([one]) => Some(CaCert::parse(one.to_der()?).context("the responder certificate")?),
        Some(more) => {
            return Err(Error::new(format!(
                "{} certificates in certs: only the responder's belongs there",
                more.len()
            )))
        }
    };
    let rd = &basic.tbs_response_data;
    // Each response carries its own responder certificate: checked each time.
    let checked = responder.as_ref().map(|r| check_ocsp_responder(r, ca)).transpose()?;
    check_ocsp(rd, ca, checked, &[], now)?;
    let alg = SigAlg::from_identifier(&basic.signature_algorithm)?;
    let signer = responder.as_ref().unwrap_or(ca);
    let signature = basic.signature.as_bytes().ok_or_else(|| Error::new("signature with unused bits"))?;
    // decode_exact made sure this re-encoding is the bytes that were signed.
    sign::verify(&signer.tbs.subject_public_key_info, alg, &rd.to_der()?, signature)
        .context("the response's signature")?;
    let one = ocsp::single(rd)?;
    let serial = crate::cert::serial_text(one.cert_id.serial_number.as_bytes());
    Ok(Checked { serial, this_update: ocsp::seconds(&one.this_update), der })
}

#[cfg(test)]
mod tests;
