//! Hex for key ids and serials, in the forms operators paste: `53f70c`,
//! `53:F7:0C`.

use crate::error::{Error, Result};

pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn encode_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Decodes hex with optional ':' separators; empty input is an error since
/// an empty id or serial is never what was meant.
pub fn decode(s: &str) -> Result<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(Error::new(format!("{s:?} is not an even number of hex digits")));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .filter(|p| p.bytes().all(|c| c.is_ascii_hexdigit()))
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| Error::new(format!("{s:?} is not hex")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex() {
        assert_eq!(super::decode("53:F7:0c").expect("hex"), vec![0x53, 0xf7, 0x0c]);
        assert!(super::decode("5").is_err());
        assert!(super::decode("zz").is_err());
        assert!(super::decode("+5").is_err(), "from_str_radix alone accepts a sign");
        assert!(super::decode("").is_err());
        assert_eq!(super::encode(&[0xab, 1]), "ab01");
    }
}
