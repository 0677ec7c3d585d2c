//! Hexadecimal test data (published vectors, fixtures) to bytes. Encoding bytes as
//! hexadecimal is `lanyard_core::hex::encode`.

/// `text` (an even number of hexadecimal digits, either case) as bytes.
///
/// # Panics
///
/// On malformed test data: an odd length or a non-hexadecimal digit.
pub fn decode(text: &str) -> Vec<u8> {
    lanyard_core::hex::decode(text).unwrap_or_else(|| panic!("malformed hex test data: {text}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_both_cases() {
        assert_eq!(super::decode("00aB7f"), vec![0x00, 0xab, 0x7f]);
        assert_eq!(super::decode(""), Vec::<u8>::new());
    }
}
