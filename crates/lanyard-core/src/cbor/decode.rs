//! The strict decoder (see the module documentation of [`crate::cbor`] for the rules).

use super::encode::{f16_bits_to_f64, f64_to_f16_bits};
use super::value::{Int, Value};
use super::{CborError, CborErrorKind};

/// Bounds on what [`decode_with`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest input, in bytes.
    pub max_len: usize,
    /// The deepest nesting of arrays, maps and tags (a scalar at the top is depth 0; each
    /// array, map or tag around it adds one).
    pub max_depth: usize,
}

impl Default for Limits {
    /// 1 MiB, depth 32: far beyond any credential, small enough to bound the work.
    fn default() -> Limits {
        Limits {
            max_len: 1 << 20,
            max_depth: 32,
        }
    }
}

/// Decodes exactly one item from `bytes` under the default [`Limits`].
pub fn decode(bytes: &[u8]) -> Result<Value, CborError> {
    decode_with(bytes, &Limits::default())
}

/// Decodes exactly one item from `bytes`: trailing bytes are an error.
pub fn decode_with(bytes: &[u8], limits: &Limits) -> Result<Value, CborError> {
    if bytes.len() > limits.max_len {
        return Err(CborError {
            kind: CborErrorKind::TooLarge,
            offset: limits.max_len,
        });
    }
    let mut decoder = Decoder {
        data: bytes,
        pos: 0,
        max_depth: limits.max_depth,
    };
    let value = decoder.item(0)?;
    if decoder.pos != bytes.len() {
        return Err(decoder.error(CborErrorKind::TrailingBytes, decoder.pos));
    }
    Ok(value)
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    max_depth: usize,
}

/// A decoded initial byte and argument.
struct Head {
    major: u8,
    info: u8,
    arg: u64,
    start: usize,
}

impl<'a> Decoder<'a> {
    fn error(&self, kind: CborErrorKind, offset: usize) -> CborError {
        CborError { kind, offset }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CborError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.data.len())
            .ok_or(CborError {
                kind: CborErrorKind::Truncated,
                offset: self.data.len(),
            })?;
        let slice = &self.data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Reads an initial byte and its argument; integer arguments must be in their shortest
    /// form (floats and simple values are checked by the caller).
    fn head(&mut self) -> Result<Head, CborError> {
        let start = self.pos;
        let initial = self.take(1)?[0];
        let (major, info) = (initial >> 5, initial & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]])),
            26 => {
                let b = self.take(4)?;
                u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            27 => {
                let b = self.take(8)?;
                u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            28..=30 => return Err(self.error(CborErrorKind::Malformed, start)),
            _ => {
                // 31: indefinite length (majors 2-5) or the break code (major 7).
                let kind = if (2..=5).contains(&major) {
                    CborErrorKind::IndefiniteLength
                } else {
                    CborErrorKind::Malformed
                };
                return Err(self.error(kind, start));
            }
        };
        if major != 7 {
            let shortest = match info {
                24 => arg >= 24,
                25 => arg > 0xff,
                26 => arg > 0xffff,
                27 => arg > 0xffff_ffff,
                _ => true,
            };
            if !shortest {
                return Err(self.error(CborErrorKind::NonPreferred, start));
            }
        }
        Ok(Head {
            major,
            info,
            arg,
            start,
        })
    }

    /// A length argument as `usize`, no larger than what is left of the input divided by
    /// the smallest encoding of one element (so nothing huge is ever allocated).
    fn length(&self, head: &Head, min_element: usize) -> Result<usize, CborError> {
        usize::try_from(head.arg)
            .ok()
            .filter(|n| {
                n.checked_mul(min_element)
                    .is_some_and(|bytes| bytes <= self.remaining())
            })
            .ok_or(CborError {
                kind: CborErrorKind::Truncated,
                offset: head.start,
            })
    }

    fn nested(&self, depth: usize, start: usize) -> Result<usize, CborError> {
        let depth = depth + 1;
        if depth > self.max_depth {
            return Err(self.error(CborErrorKind::TooDeep, start));
        }
        Ok(depth)
    }

    fn item(&mut self, depth: usize) -> Result<Value, CborError> {
        let head = self.head()?;
        match head.major {
            0 => Ok(Value::Integer(Int::from(head.arg))),
            1 => Ok(Value::Integer(
                Int::try_from(-1 - i128::from(head.arg)).unwrap_or(Int::MIN),
            )),
            2 => {
                let len = self.length(&head, 1)?;
                Ok(Value::Bytes(self.take(len)?.to_vec()))
            }
            3 => {
                let len = self.length(&head, 1)?;
                let bytes = self.take(len)?;
                let text =
                    std::str::from_utf8(bytes).map_err(|_| self.error(CborErrorKind::InvalidUtf8, head.start))?;
                Ok(Value::Text(text.to_owned()))
            }
            4 => {
                let depth = self.nested(depth, head.start)?;
                let len = self.length(&head, 1)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.item(depth)?);
                }
                Ok(Value::Array(items))
            }
            5 => {
                let depth = self.nested(depth, head.start)?;
                let len = self.length(&head, 2)?;
                let mut entries = Vec::with_capacity(len);
                let mut key_spans = Vec::with_capacity(len);
                for _ in 0..len {
                    let key_start = self.pos;
                    let key = self.item(depth)?;
                    key_spans.push((key_start, self.pos));
                    let value = self.item(depth)?;
                    entries.push((key, value));
                }
                self.check_unique_keys(&mut key_spans)?;
                Ok(Value::Map(entries))
            }
            6 => {
                let depth = self.nested(depth, head.start)?;
                Ok(Value::Tag(head.arg, Box::new(self.item(depth)?)))
            }
            _ => self.simple_or_float(&head),
        }
    }

    /// Duplicate keys have identical encodings, since only preferred serialization is
    /// accepted: compare the raw key bytes.
    fn check_unique_keys(&self, spans: &mut [(usize, usize)]) -> Result<(), CborError> {
        if spans.len() < 2 {
            return Ok(());
        }
        let data = self.data;
        let bytes = |&(start, end): &(usize, usize)| &data[start..end];
        if spans.len() <= 8 {
            for (i, a) in spans.iter().enumerate() {
                if spans[..i].iter().any(|b| bytes(a) == bytes(b)) {
                    return Err(self.error(CborErrorKind::DuplicateKey, a.0));
                }
            }
            return Ok(());
        }
        spans.sort_unstable_by(|a, b| bytes(a).cmp(bytes(b)));
        match spans.windows(2).find(|w| bytes(&w[0]) == bytes(&w[1])) {
            Some(w) => Err(self.error(CborErrorKind::DuplicateKey, w[0].0.max(w[1].0))),
            None => Ok(()),
        }
    }

    fn simple_or_float(&self, head: &Head) -> Result<Value, CborError> {
        let non_preferred = || self.error(CborErrorKind::NonPreferred, head.start);
        match head.info {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 => Ok(Value::Null),
            0..=19 | 23 => Ok(Value::Simple(head.info)),
            24 => match u8::try_from(head.arg) {
                Ok(v) if v >= 32 => Ok(Value::Simple(v)),
                _ => Err(self.error(CborErrorKind::Malformed, head.start)),
            },
            // A NaN only as the canonical quiet NaN 0xf97e00 (RFC 8949 §4.2.2), the one the
            // encoder writes: two NaN keys with other payloads would be distinct here and
            // duplicates once re-encoded.
            25 if head.arg & 0x7c00 == 0x7c00 && head.arg & 0x03ff != 0 && head.arg != 0x7e00 => Err(non_preferred()),
            25 => Ok(Value::Float(f16_bits_to_f64(head.arg as u16))),
            26 => {
                let v = f64::from(f32::from_bits(head.arg as u32));
                if f64_to_f16_bits(v).is_some() {
                    return Err(non_preferred());
                }
                Ok(Value::Float(v))
            }
            _ => {
                let v = f64::from_bits(head.arg);
                if f64_to_f16_bits(v).is_some() || (v as f32) as f64 == v {
                    return Err(non_preferred());
                }
                Ok(Value::Float(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        crate::hex::decode(s).unwrap_or_default()
    }

    fn kind(s: &str) -> CborErrorKind {
        match decode(&hex(s)) {
            Err(e) => e.kind,
            Ok(v) => panic!("{s} decoded to {v:?}"),
        }
    }

    #[test]
    fn rfc_8949_appendix_a_examples_decode() {
        let cases: [(&str, Value); 14] = [
            ("00", Value::int(0)),
            ("17", Value::int(23)),
            ("1818", Value::int(24)),
            ("1903e8", Value::int(1000)),
            ("1bffffffffffffffff", Value::Integer(Int::MAX)),
            ("3bffffffffffffffff", Value::Integer(Int::MIN)),
            ("20", Value::int(-1)),
            ("f90000", Value::Float(0.0)),
            ("f93e00", Value::Float(1.5)),
            ("fa47c35000", Value::Float(100000.0)),
            ("fb3ff199999999999a", Value::Float(1.1)),
            ("f8ff", Value::Simple(255)),
            (
                "c074323031332d30332d32315432303a30343a30305a",
                Value::Tag(0, Box::new(Value::text("2013-03-21T20:04:00Z"))),
            ),
            (
                "a201020304",
                Value::map([(Value::int(1), Value::int(2)), (Value::int(3), Value::int(4))]),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(decode(&hex(input)).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn strictness() {
        assert_eq!(kind("1817"), CborErrorKind::NonPreferred); // 23 in two bytes
        assert_eq!(kind("190017"), CborErrorKind::NonPreferred);
        assert_eq!(kind("3800"), CborErrorKind::NonPreferred); // -1 in two bytes
        assert_eq!(kind("5801ff"), CborErrorKind::NonPreferred); // 1-byte bstr, 2-byte length
        assert_eq!(kind("fa3fc00000"), CborErrorKind::NonPreferred); // 1.5 as f32
        assert_eq!(kind("fb3ff8000000000000"), CborErrorKind::NonPreferred); // 1.5 as f64
        assert_eq!(kind("fa7fc00000"), CborErrorKind::NonPreferred); // NaN as f32
        // NaN only as f97e00: another payload or sign is not the deterministic form.
        assert!(decode(&hex("f97e00")).is_ok());
        for other in ["f9fe00", "f97c01", "f9fc08", "f97fff"] {
            assert_eq!(kind(other), CborErrorKind::NonPreferred, "{other}");
        }
        // The fuzz-found input: two NaN keys that re-encode identically.
        assert_eq!(
            kind(
                "a42120 01f9fc00 3031 f9fc00a42101f9fc0821f9fe00000000"
                    .replace(' ', "")
                    .as_str()
            ),
            CborErrorKind::NonPreferred
        );
        assert_eq!(kind("5f4100ff"), CborErrorKind::IndefiniteLength);
        assert_eq!(kind("9f01ff"), CborErrorKind::IndefiniteLength);
        assert_eq!(kind("bf0102ff"), CborErrorKind::IndefiniteLength);
        assert_eq!(kind("a201020103"), CborErrorKind::DuplicateKey);
        assert_eq!(kind("0102"), CborErrorKind::TrailingBytes);
        assert_eq!(kind("1903"), CborErrorKind::Truncated);
        assert_eq!(kind("5a00010000"), CborErrorKind::Truncated); // 64 KiB promised, none given
        assert_eq!(kind("9b00000001000000000000"), CborErrorKind::Truncated);
        assert_eq!(kind("1c"), CborErrorKind::Malformed);
        assert_eq!(kind("ff"), CborErrorKind::Malformed);
        assert_eq!(kind("f818"), CborErrorKind::Malformed); // simple(24) in two bytes
        assert_eq!(kind("62c328"), CborErrorKind::InvalidUtf8);
        assert_eq!(kind("1f"), CborErrorKind::Malformed);
    }

    #[test]
    fn duplicate_keys_in_large_maps() {
        // 10 distinct keys pass; then key 3 again among 10.
        let mut ok = vec![0xaa];
        for k in 0..10u8 {
            ok.extend([k, 0]);
        }
        assert!(decode(&ok).is_ok());
        let mut dup = vec![0xaa];
        for k in [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 3] {
            dup.extend([k, 0]);
        }
        assert_eq!(decode(&dup).unwrap_err().kind, CborErrorKind::DuplicateKey);
    }

    #[test]
    fn limits() {
        let deep = [vec![0x81u8; 40], vec![0x00]].concat();
        assert_eq!(decode(&deep).unwrap_err().kind, CborErrorKind::TooDeep);
        let limits = Limits {
            max_len: 40,
            max_depth: 64,
        };
        assert_eq!(decode_with(&deep, &limits).unwrap_err().kind, CborErrorKind::TooLarge);
        let roomy = Limits {
            max_len: 100,
            max_depth: 40,
        };
        assert!(decode_with(&deep, &roomy).is_ok());
        let tags = [vec![0xc1u8; 33], vec![0x00]].concat();
        assert_eq!(decode(&tags).unwrap_err().kind, CborErrorKind::TooDeep);
    }
}
