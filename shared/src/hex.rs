//! Hex for key ids and serials, in the forms operators paste: `53f70c`,
//! `53:F7:0C`.

use crate::error::{Error, Result};

/// Lower case, as key ids and digests have always been written.
pub fn encode(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Upper case, as index.txt writes serials.
pub fn encode_upper(bytes: &[u8]) -> String {
    base16ct::upper::encode_string(bytes)
}

/// Decodes hex in either case with optional ':' separators between bytes
/// (`53:F7:0C`, `53f7:0c`); a ':' inside a byte (`5:3`) is refused, since
/// it is a typo, not a separator. Empty input is an error since an empty
/// id or serial is never what was meant.
pub fn decode(s: &str) -> Result<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(Error::new(format!("{s:?} is not an even number of hex digits")));
    }
    if s.split(':').any(|group| group.is_empty() || !group.len().is_multiple_of(2)) {
        return Err(Error::new(format!("{s:?} is not hex: ':' goes only between bytes")));
    }
    base16ct::mixed::decode_vec(&digits).map_err(|_| Error::new(format!("{s:?} is not hex")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex() {
        assert_eq!(super::decode("53:F7:0c").expect("hex"), vec![0x53, 0xf7, 0x0c]);
        assert_eq!(super::decode("53f7:0C").expect("hex"), vec![0x53, 0xf7, 0x0c]);
        assert_eq!(super::decode("53F70c").expect("hex"), vec![0x53, 0xf7, 0x0c]);
        assert!(super::decode("5").is_err());
        assert!(super::decode("zz").is_err());
        assert!(super::decode("+5").is_err(), "from_str_radix alone accepts a sign");
        assert!(super::decode("").is_err());
        assert!(super::decode(":").is_err());
        // A ':' only between byte pairs: not inside one, not at an end, not doubled.
        for bad in ["5:3", "53:f:70c", ":53", "53:", "53::f7", "5:3f7"] {
            assert!(super::decode(bad).is_err(), "{bad}");
        }
        assert_eq!(super::encode(&[0xab, 1]), "ab01");
        assert_eq!(super::encode_upper(&[0xab, 1]), "AB01");
        assert_eq!(super::encode(&[]), "");
    }
}
