//! Lowercase hexadecimal: the form Lanyard writes digests, serial numbers and random IDs in
//! (agent IDs, join-token hashes, certificate fingerprints, entry IDs), and the one
//! decoder for hexadecimal input (CBOR given as hex on the command line, test data).

/// `bytes` as lowercase hexadecimal, two digits per byte, no separators.
///
/// ```
/// assert_eq!(lanyard_core::hex::encode(&[0x00, 0xab, 0x7f]), "00ab7f");
/// ```
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// `text` (an even number of hexadecimal digits, either case, nothing else) as bytes;
/// `None` when it is not that.
///
/// ```
/// assert_eq!(lanyard_core::hex::decode("00aB7f"), Some(vec![0x00, 0xab, 0x7f]));
/// assert_eq!(lanyard_core::hex::decode("0"), None);
/// assert_eq!(lanyard_core::hex::decode("+1"), None);
/// ```
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn decode_inverts_encode_and_refuses_the_rest() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)), Some(all));
        for bad in ["0", "0g", " 00", "é0", "+1"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_byte_is_two_lowercase_digits() {
        assert_eq!(encode(&[]), "");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(encode(&all), expected);
    }
}
