//! The CBOR data model (RFC 8949 §2) as one enum.

use std::fmt;

/// A CBOR integer: major types 0 and 1, so anything from −2⁶⁴ to 2⁶⁴−1.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Int(i128);

impl Int {
    /// The smallest CBOR integer, −2⁶⁴.
    pub const MIN: Int = Int(-(1i128 << 64));
    /// The largest CBOR integer, 2⁶⁴−1.
    pub const MAX: Int = Int((1i128 << 64) - 1);

    /// The integer as an `i128` (always in range).
    pub const fn get(self) -> i128 {
        self.0
    }

    /// The integer, if it fits an `i64`.
    pub fn to_i64(self) -> Option<i64> {
        i64::try_from(self.0).ok()
    }

    /// The integer, if it fits a `u64`.
    pub fn to_u64(self) -> Option<u64> {
        u64::try_from(self.0).ok()
    }
}

impl fmt::Debug for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Int {
            fn from(v: $t) -> Int {
                Int(i128::from(v))
            }
        }
    )*};
}
int_from!(u8, u16, u32, u64, i8, i16, i32, i64);

impl TryFrom<i128> for Int {
    type Error = i128;
    /// Fails (returning the value) outside −2⁶⁴ ..= 2⁶⁴−1.
    fn try_from(v: i128) -> Result<Int, i128> {
        if (Int::MIN.0..=Int::MAX.0).contains(&v) {
            Ok(Int(v))
        } else {
            Err(v)
        }
    }
}

/// One CBOR data item.
///
/// Maps keep their entries in order (decoded: as received; built: as given); the encoder
/// sorts them. Simple values 20–22 are [`Value::Bool`] and [`Value::Null`], never
/// [`Value::Simple`], when decoded. Floats of every width decode to `f64` (the decoder has
/// checked the width was the shortest exact one, so the encoder writes the same bytes).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An unsigned or negative integer (major types 0 and 1).
    Integer(Int),
    /// A byte string (major type 2).
    Bytes(Vec<u8>),
    /// A UTF-8 text string (major type 3).
    Text(String),
    /// An array (major type 4).
    Array(Vec<Value>),
    /// A map (major type 5), as key/value pairs.
    Map(Vec<(Value, Value)>),
    /// A tagged item (major type 6).
    Tag(u64, Box<Value>),
    /// A simple value other than `false`, `true` and `null` (major type 7): 0–19, 23
    /// (`undefined`) and 32–255.
    Simple(u8),
    /// `false` or `true` (simple values 20 and 21).
    Bool(bool),
    /// `null` (simple value 22).
    Null,
    /// A floating-point number (half, single or double precision on the wire).
    Float(f64),
}

impl Value {
    /// An integer value.
    pub fn int(v: impl Into<Int>) -> Value {
        Value::Integer(v.into())
    }

    /// A text value.
    pub fn text(v: impl Into<String>) -> Value {
        Value::Text(v.into())
    }

    /// A byte-string value.
    pub fn bytes(v: impl Into<Vec<u8>>) -> Value {
        Value::Bytes(v.into())
    }

    /// A map from key/value pairs, in the given order.
    pub fn map(entries: impl IntoIterator<Item = (Value, Value)>) -> Value {
        Value::Map(entries.into_iter().collect())
    }

    /// The integer, if this is one that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => i.to_i64(),
            _ => None,
        }
    }

    /// The integer, if this is one that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Integer(i) => i.to_u64(),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The text, if this is a text string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value under `key`, if this is a map that has it.
    pub fn get(&self, key: &Value) -> Option<&Value> {
        self.as_map()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value under the integer key `label` (COSE and CWT labels), if any.
    pub fn get_int(&self, label: i64) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_i64() == Some(label))
            .map(|(_, v)| v)
    }

    /// A short name of the item's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "integer",
            Value::Bytes(_) => "byte string",
            Value::Text(_) => "text string",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Tag(..) => "tag",
            Value::Simple(_) => "simple value",
            Value::Bool(_) => "boolean",
            Value::Null => "null",
            Value::Float(_) => "float",
        }
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_range() {
        assert_eq!(Int::try_from(Int::MAX.get() + 1), Err(Int::MAX.get() + 1));
        assert_eq!(Int::try_from(Int::MIN.get() - 1), Err(Int::MIN.get() - 1));
        assert_eq!(Int::from(u64::MAX), Int::MAX);
        assert_eq!(Int::from(-5i64).to_i64(), Some(-5));
        assert_eq!(Int::from(-5i64).to_u64(), None);
    }

    #[test]
    fn lookups() {
        let m = Value::map([(Value::int(1), Value::text("a")), (Value::text("k"), Value::Null)]);
        assert_eq!(m.get_int(1), Some(&Value::text("a")));
        assert_eq!(m.get(&Value::text("k")), Some(&Value::Null));
        assert_eq!(m.get_int(2), None);
        assert_eq!(Value::int(3).get_int(1), None);
    }
}
