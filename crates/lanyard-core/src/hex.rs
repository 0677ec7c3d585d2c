//! Lowercase hexadecimal: the form Lanyard writes digests, serial numbers and random IDs in
//! (agent IDs, join-token hashes, certificate fingerprints, entry IDs).

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

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn every_byte_is_two_lowercase_digits() {
        assert_eq!(encode(&[]), "");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(encode(&all), expected);
    }
}
