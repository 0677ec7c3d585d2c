//! The deterministic encoder (RFC 8949 §4.2.1): shortest arguments, definite lengths,
//! map keys sorted bytewise by their encoding, floats in the shortest exact width.

use super::value::Value;

impl Value {
    /// The deterministic encoding of this item.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the deterministic encoding of this item to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Integer(i) => {
                let v = i.get();
                if v >= 0 {
                    write_head(out, 0, v as u64);
                } else {
                    write_head(out, 1, (-1 - v) as u64);
                }
            }
            Value::Bytes(b) => {
                write_head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Value::Text(t) => {
                write_head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
            Value::Array(items) => {
                write_head(out, 4, items.len() as u64);
                for item in items {
                    item.encode_into(out);
                }
            }
            Value::Map(entries) => {
                write_head(out, 5, entries.len() as u64);
                let mut encoded: Vec<(Vec<u8>, &Value)> = entries.iter().map(|(k, v)| (k.to_vec(), v)).collect();
                encoded.sort_by(|a, b| a.0.cmp(&b.0));
                for (key, value) in encoded {
                    out.extend_from_slice(&key);
                    value.encode_into(out);
                }
            }
            Value::Tag(tag, content) => {
                write_head(out, 6, *tag);
                content.encode_into(out);
            }
            Value::Simple(v) if *v < 24 => out.push(0xe0 | v),
            Value::Simple(v) => out.extend_from_slice(&[0xf8, *v]),
            Value::Bool(false) => out.push(0xf4),
            Value::Bool(true) => out.push(0xf5),
            Value::Null => out.push(0xf6),
            Value::Float(v) => write_float(out, *v),
        }
    }
}

/// Appends the head of an item of major type `major` (0–6) with argument `arg`, in the
/// shortest form.
pub fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= 0xff {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

fn write_float(out: &mut Vec<u8>, v: f64) {
    if let Some(half) = f64_to_f16_bits(v) {
        out.push(0xf9);
        out.extend_from_slice(&half.to_be_bytes());
    } else if f64::from(v as f32) == v {
        out.push(0xfa);
        out.extend_from_slice(&(v as f32).to_bits().to_be_bytes());
    } else {
        out.push(0xfb);
        out.extend_from_slice(&v.to_bits().to_be_bytes());
    }
}

/// The IEEE 754 half-precision value with these bits.
pub(super) fn f16_bits_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let mantissa = f64::from(bits & 0x3ff);
    match exponent {
        0 => sign * mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + mantissa / 1024.0) * 2f64.powi(e - 15),
    }
}

/// The half-precision bits of `v` if it is exactly representable in half precision (NaN:
/// the canonical quiet NaN `0x7e00`).
pub(super) fn f64_to_f16_bits(v: f64) -> Option<u16> {
    if v.is_nan() {
        return Some(0x7e00);
    }
    let sign: u16 = if v.is_sign_negative() { 0x8000 } else { 0 };
    let a = v.abs();
    if a == 0.0 {
        return Some(sign);
    }
    if a.is_infinite() {
        return Some(sign | 0x7c00);
    }
    let bits = a.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let mantissa = bits & ((1u64 << 52) - 1);
    if (-14..=15).contains(&exponent) {
        // Normal half: only the top 10 of the 52 mantissa bits may be set.
        if mantissa & ((1u64 << 42) - 1) != 0 {
            return None;
        }
        return Some(sign | (((exponent + 15) as u16) << 10) | (mantissa >> 42) as u16);
    }
    if (-24..-14).contains(&exponent) {
        // Subnormal half: a multiple of 2^-24 below 2^-14.
        let scaled = a * 2f64.powi(24);
        if scaled.fract() == 0.0 && scaled < 1024.0 {
            return Some(sign | scaled as u16);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::decode::decode;
    use super::*;

    use crate::hex::encode as hex;

    #[test]
    fn rfc_8949_appendix_a_examples_encode() {
        let cases: [(Value, &str); 12] = [
            (Value::int(0), "00"),
            (Value::int(24), "1818"),
            (Value::int(1_000_000), "1a000f4240"),
            (Value::int(-1000), "3903e7"),
            (Value::Float(0.0), "f90000"),
            (Value::Float(-0.0), "f98000"),
            (Value::Float(65504.0), "f97bff"),
            (Value::Float(5.960464477539063e-8), "f90001"),
            (Value::Float(100000.0), "fa47c35000"),
            (Value::Float(-4.1), "fbc010666666666666"),
            (Value::Float(f64::INFINITY), "f97c00"),
            (Value::Float(f64::NAN), "f97e00"),
        ];
        for (value, expected) in cases {
            assert_eq!(hex(&value.to_vec()), expected, "{value:?}");
        }
    }

    #[test]
    fn maps_are_sorted_bytewise() {
        // RFC 8949 §4.2.1: 10, 100, -1, "z", "aa", [100], [-1], false.
        let map = Value::map([
            (Value::Bool(false), Value::int(8)),
            (Value::Array(vec![Value::int(-1)]), Value::int(7)),
            (Value::text("aa"), Value::int(5)),
            (Value::Simple(59), Value::int(9)),
            (Value::int(100), Value::int(2)),
            (Value::text("z"), Value::int(4)),
            (Value::Array(vec![Value::int(100)]), Value::int(6)),
            (Value::int(-1), Value::int(3)),
            (Value::int(10), Value::int(1)),
        ]);
        assert_eq!(
            hex(&map.to_vec()),
            "a90a011864022003617a046261610581186406812007f408f83b09"
        );
    }

    #[test]
    fn floats_round_trip_through_the_strict_decoder() {
        for v in [
            0.5,
            -2.0,
            1.0e-7,
            3.4028234663852886e38,
            1.0e300,
            6.103515625e-5,
            1.0 / 3.0,
        ] {
            let bytes = Value::Float(v).to_vec();
            assert_eq!(decode(&bytes).unwrap(), Value::Float(v), "{v}");
        }
        for bits in 0u16..=0xffff {
            let v = f16_bits_to_f64(bits);
            if !v.is_nan() {
                assert_eq!(f64_to_f16_bits(v), Some(bits), "{bits:04x}");
            }
        }
    }
}
