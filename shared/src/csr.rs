//! Reading and vetting a CSR: a CSR only proves possession of a key, so
//! everything but the key and (optionally) the names is ignored, and the
//! key itself must be strong enough to certify.

use crate::cert;
use crate::der::Decode;
use crate::io::Object;
use crate::keys::KeySpec;
use crate::oid;
use crate::sign::{self, SigAlg};
use crate::x509_cert::ext::pkix::name::GeneralName;
use crate::x509_cert::ext::pkix::SubjectAltName;
use crate::x509_cert::ext::Extension;
use crate::x509_cert::name::Name;
use crate::x509_cert::request::{CertReqInfo, Version};
use crate::x509_cert::spki::SubjectPublicKeyInfoOwned;
use crate::{Context, Error, Result};

pub struct Csr {
    pub subject: Name,
    pub spki: SubjectPublicKeyInfoOwned,
    pub spec: KeySpec,
    /// The SANs the CSR asks for; used only with --copy-san.
    pub requested_san: Vec<GeneralName>,
    /// Everything else it asked for, reported and ignored.
    pub ignored: Vec<String>,
}

pub fn read(object: &Object) -> Result<Csr> {
    object.expect_label(&["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"])?;
    let signed = cert::split_signed(&object.der, "CSR")?;
    let info: CertReqInfo = cert::decode_exact(signed.tbs, "CertificationRequestInfo")?;
    if info.version != Version::V1 {
        return Err(Error::new("CSR version is not v1"));
    }
    let alg = SigAlg::from_identifier(&signed.algorithm).context("CSR signature")?;
    let spec = crate::policy::check_subject_key(&info.public_key)?;
    // Over the bytes as received: der sorts SET OF when decoding, so a
    // re-encoding could differ from what the requester signed.
    sign::verify(&info.public_key, alg, signed.tbs, &signed.signature)
        .map_err(|e| Error::new(format!("the CSR's signature does not verify ({e})")))?;
    let mut requested_san = Vec::new();
    let mut ignored = Vec::new();
    for attr in info.attributes.iter() {
        if attr.oid != oid::EXTENSION_REQUEST {
            ignored.push(format!("attribute {}", attr.oid));
            continue;
        }
        for value in attr.values.iter() {
            let exts: Vec<Extension> = value.decode_as().context("extensionRequest")?;
            cert::check_unique(&exts).context("extensionRequest")?;
            for ext in exts {
                if ext.extn_id == oid::SUBJECT_ALT_NAME {
                    requested_san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                        .context("requested subjectAltName")?
                        .0;
                } else {
                    ignored.push(format!("extension {}", crate::policy::extension_name(&ext.extn_id)));
                }
            }
        }
    }
    Ok(Csr { subject: info.subject, spki: info.public_key, spec, requested_san, ignored })
}
