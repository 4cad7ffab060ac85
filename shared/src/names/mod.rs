//! Distinguished names and general names as operators type them.
//!
//! Subjects come in OpenSSL's `/C=NL/O=ewak.net/CN=www` form or RFC 4514's
//! `CN=www,O=ewak.net,C=NL`; SANs as `dns:`, `ip:`, `email:`, `uri:`.
//!
//! The parts: `dn` (distinguished names: attribute types, checking,
//! parsing, OpenSSL's one-line form) and `general` (subjectAltName
//! entries: DNS, email, URI and IP checks, parsing, text).

mod dn;
mod general;

pub use dn::{atv_text, check_atv, check_name, common_name, openssl_oneline, parse_dn, split_unescaped};
pub use general::{
    check_dns, check_email, check_general_name, check_ip, check_uri, general_name_text, ip_bytes, ip_text,
    parse_general_name, parse_general_names, uri_host, valid_dns,
};
