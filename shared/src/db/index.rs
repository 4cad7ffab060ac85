//! The index.txt format, pure: one line per certificate as `openssl ca`
//! writes it, the reason names it uses, and its time and serial texts.
//!
//! ```text
//! status  expiry  revocation[,reason[,extra]]  serial  file  subject
//! V|R|E   TIME    TIME (revoked lines only)    HEX     "unknown"  /C=../CN=..
//! ```
//! Nothing here touches a file: `db` reads and writes them.

use der::asn1::Null;
use der::{Decode, Encode};
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::time::Time;

use crate::ocsp::{CertStatus, RevokedInfo};

use crate::error::{Context, Error, Result};

/// RFC 5280 section 5.3.1 reason codes that `--revoke --reason` may
/// write, with the names OpenSSL writes into index.txt. `unspecified` is
/// left out: RFC 5280 says to omit the reason code instead.
pub const REASONS: &[(&str, u8)] = &[
    ("keyCompromise", 1),
    ("CACompromise", 2),
    ("affiliationChanged", 3),
    ("superseded", 4),
    ("cessationOfOperation", 5),
    ("certificateHold", 6),
];

/// Every reason `openssl ca` may write (apps/ca.c `crl_reasons`); the last
/// three carry a third, comma-separated field (an OID or a time).
const OPENSSL_REASONS: &[&str] = &[
    "unspecified",
    "keyCompromise",
    "CACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "removeFromCRL",
    "holdInstruction",
    "keyTime",
    "CAkeyTime",
];

pub fn reason_code(name: &str) -> Option<u8> {
    REASONS.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, c)| *c)
}

/// A serial typed by an operator: hex, any case, colons allowed.
pub fn parse_serial(text: &str) -> Result<String> {
    Ok(crate::cert::serial_text(&crate::hex::decode(text).map_err(|e| e.context("serial"))?))
}

/// A serial as `openssl ca` writes it into index.txt: `BN_bn2hex` of the
/// serial, so upper-case hex, two digits an octet and no leading zero
/// octet (`80`, not `0080`; `00` only for serial 0, which apps/ca.c
/// writes so), the text `cert::serial_text` makes. Anything else is
/// refused rather than normalised: openssl's serial index ignores leading
/// zeros but not case, so `0a` or `000A` would be a second name for a
/// serial, one that `openssl ca -status` and `-revoke` and cardca's own
/// duplicate check would look up differently.
pub(super) fn check_serial_text(text: &str) -> Result<()> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::new(format!("serial {text:?} is not hex")));
    }
    let padded = if text.len() % 2 == 1 { format!("0{text}") } else { text.to_string() };
    let canonical = crate::cert::serial_text(&crate::hex::decode(&padded)?);
    if text != canonical {
        return Err(Error::new(format!(
            "serial {text:?} is not as openssl ca writes it ({canonical}: upper-case hex, two digits an octet, no leading 00)"
        )));
    }
    Ok(())
}

/// The text of an X.509 time as OpenSSL stores it: `YYMMDDHHMMSSZ` for
/// UTCTime, `YYYYMMDDHHMMSSZ` for GeneralizedTime.
pub fn time_text(time: &Time) -> Result<String> {
    let der = time.to_der()?;
    String::from_utf8(der[2..].to_vec()).map_err(|_| Error::new("time is not ASCII"))
}

/// The reverse of [`time_text`]: index.txt's time as an X.509 time.
pub fn parse_time_text(text: &str) -> Result<Time> {
    let tag = match text.len() {
        13 => 0x17,
        15 => 0x18,
        _ => return Err(Error::new(format!("time {text:?} is neither UTCTime nor GeneralizedTime"))),
    };
    let mut der = vec![tag, text.len() as u8];
    der.extend_from_slice(text.as_bytes());
    Time::from_der(&der).map_err(|e| Error::new(format!("time {text:?}: {e}")))
}

/// A revoked line's revocation field: `TIME` or `TIME,reason`.
pub(super) fn revocation_text(when: &str, reason: Option<&str>) -> String {
    match reason {
        Some(r) => format!("{when},{r}"),
        None => when.to_string(),
    }
}

/// One index.txt line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: char,
    pub expiry: String,
    /// `TIME`, `TIME,reason` or `TIME,reason,extra`; empty unless revoked.
    pub revocation: String,
    pub serial: String,
    pub file: String,
    pub subject: String,
}

/// What a revoked line puts into a full CRL.
#[derive(Debug, PartialEq, Eq)]
pub enum CrlEntry<'a> {
    /// Listed, with the RFC 5280 reason code (none for no reason and for
    /// `unspecified`, which RFC 5280 says to omit).
    Listed { time: &'a str, reason: Option<u8> },
    /// `removeFromCRL`: a hold was lifted; the certificate is valid again
    /// and stays out of a full CRL (RFC 5280 section 5.3.1).
    Lifted,
}

impl Entry {
    /// One line, without its newline. Refuses anything `openssl ca` would
    /// not have written.
    pub fn parse(line: &str) -> Result<Entry> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 6 {
            return Err(Error::new(format!(
                "{} tab-separated fields, not 6 (status, expiry, revocation, serial, file, subject)",
                f.len()
            )));
        }
        let status = match f[0] {
            "V" => 'V',
            "R" => 'R',
            "E" => 'E',
            other => return Err(Error::new(format!("status {other:?} is not V, R or E"))),
        };
        parse_time_text(f[1]).context("expiry")?;
        check_serial_text(f[3])?;
        if f[4].is_empty() {
            return Err(Error::new("the file name field is empty (openssl writes \"unknown\")"));
        }
        if let Some(c) = line.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(Error::new(format!("a raw control character {c:?}")));
        }
        let entry = Entry {
            status,
            expiry: f[1].into(),
            revocation: f[2].into(),
            serial: f[3].into(),
            file: f[4].into(),
            subject: f[5].into(),
        };
        match (status, entry.revocation.is_empty()) {
            ('R', true) => return Err(Error::new("a revoked line without a revocation time")),
            ('R', false) => {
                entry.crl_entry()?;
            }
            (_, false) => return Err(Error::new(format!("a revocation on a line with status {status}"))),
            (_, true) => {}
        }
        Ok(entry)
    }

    pub fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            self.status, self.expiry, self.revocation, self.serial, self.file, self.subject
        )
    }

    /// What an OCSP response must say of this line: revoked, with the
    /// time and reason a CRL would list, for a revoked line; good for a
    /// valid or expired one, and for a hold lifted with removeFromCRL.
    pub fn cert_status(&self) -> Result<CertStatus> {
        if self.status != 'R' {
            return Ok(CertStatus::Good(Null));
        }
        Ok(match self.crl_entry()? {
            CrlEntry::Listed { time: when, reason } => CertStatus::Revoked(RevokedInfo {
                revocation_time: crate::ocsp::generalized(crate::time::seconds(&parse_time_text(when)?))?,
                revocation_reason: reason
                    .map(|code| {
                        CrlReason::try_from(u32::from(code))
                            .map_err(|_| Error::new(format!("reason code {code} is not a CRLReason")))
                    })
                    .transpose()?,
            }),
            CrlEntry::Lifted => CertStatus::Good(Null),
        })
    }

    /// The revocation as a CRL lists it: time and reason code. Every
    /// reason `openssl ca` writes is read; `holdInstruction` (with its
    /// OID) is a hold, `keyTime`/`CAkeyTime` (with their invalidity time)
    /// are key and CA compromises; the extra field is checked, not listed
    /// (the hold instruction code left RFC 5280).
    pub fn crl_entry(&self) -> Result<CrlEntry<'_>> {
        let mut parts = self.revocation.splitn(3, ',');
        let time = parts.next().unwrap_or_default();
        parse_time_text(time).context("revocation time")?;
        let (reason, extra) = (parts.next(), parts.next());
        let Some(reason) = reason else {
            return Ok(CrlEntry::Listed { time, reason: None });
        };
        let name = OPENSSL_REASONS
            .iter()
            .find(|n| n.eq_ignore_ascii_case(reason))
            .ok_or_else(|| Error::new(format!("unknown revocation reason {reason:?}")))?;
        let needs_extra = matches!(*name, "holdInstruction" | "keyTime" | "CAkeyTime");
        match extra {
            None if needs_extra => return Err(Error::new(format!("reason {name} without its third field"))),
            Some(x) if !needs_extra => {
                return Err(Error::new(format!("reason {name} with an extra field {x:?}")))
            }
            Some(x) if *name != "holdInstruction" => {
                parse_time_text(x).with_context(|| format!("{name} time"))?;
            }
            // openssl writes the hold instruction's name or OID.
            Some("") => return Err(Error::new("holdInstruction without its instruction")),
            Some(_) => {}
            None => {}
        }
        let reason = match *name {
            "unspecified" => None,
            "removeFromCRL" => return Ok(CrlEntry::Lifted),
            "holdInstruction" => Some(6),
            "keyTime" => Some(1),
            "CAkeyTime" => Some(2),
            other => reason_code(other),
        };
        Ok(CrlEntry::Listed { time, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use x509_cert::name::Name;

    #[test]
    fn lines_round_trip() {
        let line = "R\t270101000000Z\t260301120000Z,keyCompromise\t0123AB\tunknown\t/C=NL/CN=x\n";
        let e = Entry::parse(line.trim_end()).expect("parse");
        assert_eq!(e.line(), line);
        assert_eq!(e.crl_entry().expect("crl"), CrlEntry::Listed { time: "260301120000Z", reason: Some(1) });
        for bad in [
            "V\t270101000000Z\t\t01\tunknown",
            "X\t270101000000Z\t\t01\tunknown\t/CN=x",
            "R\t270101000000Z\t\t01\tunknown\t/CN=x",
            "V\t270101000000Z\t\tzz\tunknown\t/CN=x",
            // Serials openssl ca never writes: odd, padded, lower case.
            "V\t270101000000Z\t\t0A1\tunknown\t/CN=x",
            "V\t270101000000Z\t\tA\tunknown\t/CN=x",
            "V\t270101000000Z\t\t000A\tunknown\t/CN=x",
            "V\t270101000000Z\t\t0080\tunknown\t/CN=x",
            "V\t270101000000Z\t\t0000\tunknown\t/CN=x",
            "V\t270101000000Z\t\t0a\tunknown\t/CN=x",
            "V\t270101000000Z\t\t\tunknown\t/CN=x",
            "V\t2701010000Z\t\t01\tunknown\t/CN=x",
            "V\t270101000000Z\t260301120000Z\t01\tunknown\t/CN=x",
            "R\t270101000000Z\t260301120000Z,nonsense\t01\tunknown\t/CN=x",
            "R\t270101000000Z\t260301120000Z,keyTime\t01\tunknown\t/CN=x",
            "R\t270101000000Z\t260301120000Z,superseded,x\t01\tunknown\t/CN=x",
            "V\t270101000000Z\t\t01\tunknown\t/CN=x\r",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad}");
        }
    }

    /// Every reason string `openssl ca -revoke -crl_reason` writes.
    #[test]
    fn openssl_reasons() {
        let crl = |rev: &str| {
            let line = format!("R\t270101000000Z\t{rev}\t01\tunknown\t/CN=x");
            Entry::parse(&line).expect(rev).crl_entry().map(|c| format!("{c:?}")).expect(rev)
        };
        assert!(crl("260301120000Z,unspecified").contains("reason: None"));
        assert!(crl("260301120000Z,certificateHold").contains("reason: Some(6)"));
        assert!(crl("260301120000Z,holdInstruction,holdInstructionReject").contains("reason: Some(6)"));
        assert!(crl("260301120000Z,keyTime,20260101000000Z").contains("reason: Some(1)"));
        assert!(crl("260301120000Z,CAkeyTime,20260101000000Z").contains("reason: Some(2)"));
        assert_eq!(crl("260301120000Z,removeFromCRL"), "Lifted");
        for name in OPENSSL_REASONS {
            let extra = match *name {
                "holdInstruction" => ",1.2.840.10040.2.1",
                "keyTime" | "CAkeyTime" => ",20260101000000Z",
                _ => "",
            };
            crl(&format!("260301120000Z,{name}{extra}"));
        }
    }

    #[test]
    fn oneline_escapes_as_openssl() {
        // The subject `openssl ca` was seen to write for this CSR subject:
        // /O=x+OU=y/CN=a\x09b\x01 \xC3\xA9\x7F~\/c\x0A
        let name = Name::from_str("CN=a\\+b=c,O=x+OU=y").expect("name");
        assert_eq!(crate::names::openssl_oneline(&name), "/O=x+OU=y/CN=a\\+b=c");
        let mut der = name.to_der().expect("der");
        // Put raw control and non-ASCII octets into the CN's value.
        let pos = der.windows(5).position(|w| w == b"a+b=c").expect("value");
        der[pos..pos + 5].copy_from_slice(b"\t\n/\xc3\xa9");
        let name = Name::from_der(&der).expect("decode");
        let text = crate::names::openssl_oneline(&name);
        assert_eq!(text, "/O=x+OU=y/CN=\\x09\\x0A\\/\\xC3\\xA9");
        assert!(!text.bytes().any(|b| b.is_ascii_control()));
    }

    #[test]
    fn times_round_trip() {
        for text in ["260301120000Z", "20510301120000Z"] {
            assert_eq!(time_text(&parse_time_text(text).expect("parse")).expect("text"), text);
        }
        assert!(parse_time_text("2603011200Z").is_err());
    }

    /// What `openssl ca` (3.0) was seen to write for the serial files
    /// `000A`, `80`, `00`, `ab`, `7fff` and `00ff`; and a zero digit
    /// that is not a zero octet.
    #[test]
    fn openssl_serial_texts() {
        for serial in ["0A", "80", "00", "AB", "7FFF", "FF", "0123AB"] {
            let line = format!("V\t270101000000Z\t\t{serial}\tunknown\t/CN=x");
            assert_eq!(Entry::parse(&line).expect(serial).serial, serial);
            assert_eq!(parse_serial(serial).expect(serial), serial);
        }
        let err = Entry::parse("V\t270101000000Z\t\t000a\tunknown\t/CN=x").expect_err("padded");
        assert_eq!(
            err.message(),
            "serial \"000a\" is not as openssl ca writes it (0A: upper-case hex, two digits an octet, no leading 00)"
        );
    }

    #[test]
    fn serials() {
        assert_eq!(parse_serial("01:ab").expect("hex"), "01AB");
        assert_eq!(parse_serial("0001ab").expect("hex"), "01AB");
    }
}
