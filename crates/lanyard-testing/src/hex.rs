//! Hexadecimal test data (published vectors, fixtures) to bytes. Encoding bytes as
//! hexadecimal is `lanyard_core::hex::encode`.

/// `text` (an even number of hexadecimal digits, either case) as bytes.
///
/// # Panics
///
/// On malformed test data: an odd length or a non-hexadecimal digit.
pub fn decode(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "hex test data of odd length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|e| panic!("hex test data {text}: {e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_both_cases() {
        assert_eq!(super::decode("00aB7f"), vec![0x00, 0xab, 0x7f]);
        assert_eq!(super::decode(""), Vec::<u8>::new());
    }
}
