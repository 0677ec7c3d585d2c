//! Strict JSON for JOSE documents: one pass that builds a `serde_json` object and rejects
//! repeated member names at any depth (RFC 7515 §5.2, RFC 7519 §4), plus typed claim
//! accessors whose errors name the claim.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::Error;

/// Marks a duplicate-member error inside serde's stringly error channel.
const DUPLICATE: &str = "\u{1}duplicate member:";

/// Parses `bytes` as a JSON object, rejecting duplicate member names and trailing data.
pub(crate) fn parse_object(bytes: &[u8], part: &'static str) -> Result<Map<String, Value>, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match value {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::malformed(format!("{part} is not a JSON object"))),
        Err(e) => {
            let msg = e.to_string();
            match msg.strip_prefix(DUPLICATE) {
                Some(rest) => Err(Error::DuplicateMember {
                    part,
                    name: rest.split(" at line").next().unwrap_or(rest).to_owned(),
                }),
                None => Err(Error::malformed(format!("{part} is not valid JSON: {msg}"))),
            }
        }
    }
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE}{key}")));
            }
            let value = map.next_value_seed(StrictValue)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Typed, named access to the members of a parsed JOSE header or claims set.
#[derive(Clone, Copy)]
pub(crate) struct Members<'a>(pub(crate) &'a Map<String, Value>);

impl<'a> Members<'a> {
    /// An optional string member.
    pub(crate) fn str(&self, name: &'static str) -> Result<Option<&'a str>, Error> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::malformed(format!("{name} must be a string"))),
        }
    }

    /// A required string member.
    pub(crate) fn req_str(&self, name: &'static str) -> Result<&'a str, Error> {
        self.str(name)?.ok_or(Error::MissingClaim(name))
    }

    /// A required string member that is not empty, copied out.
    pub(crate) fn req_non_empty(&self, name: &'static str) -> Result<String, Error> {
        match self.req_str(name)? {
            "" => Err(Error::invalid_claim(name, "must not be empty")),
            value => Ok(value.to_owned()),
        }
    }

    /// An optional NumericDate (RFC 7519 §2): a non-negative number of seconds;
    /// fractions are truncated.
    pub(crate) fn date(&self, name: &'static str) -> Result<Option<u64>, Error> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                if let Some(v) = n.as_u64() {
                    Ok(Some(v))
                } else {
                    match n.as_f64() {
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        Some(f) if f.is_finite() && (0.0..1.8e19).contains(&f) => Ok(Some(f as u64)),
                        _ => Err(Error::invalid_claim(name, "must be a non-negative NumericDate")),
                    }
                }
            }
            Some(_) => Err(Error::malformed(format!("{name} must be a number"))),
        }
    }

    /// A required NumericDate.
    pub(crate) fn req_date(&self, name: &'static str) -> Result<u64, Error> {
        self.date(name)?.ok_or(Error::MissingClaim(name))
    }

    /// An optional JSON object member.
    pub(crate) fn object(&self, name: &'static str) -> Result<Option<&'a Map<String, Value>>, Error> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(Error::malformed(format!("{name} must be a JSON object"))),
        }
    }

    /// `aud` as a list: a single string or an array of strings (RFC 7519 §4.1.3).
    pub(crate) fn audiences(&self) -> Result<Option<Vec<&'a str>>, Error> {
        match self.0.get("aud") {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s.as_str()])),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| Error::malformed("aud entries must be strings"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(Error::malformed("aud must be a string or an array of strings")),
        }
    }

    /// `aud` as an owned list; absent is [`Error::MissingClaim`].
    pub(crate) fn req_audiences(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .audiences()?
            .ok_or(Error::MissingClaim("aud"))?
            .into_iter()
            .map(str::to_owned)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicates_at_any_depth() {
        let e = parse_object(br#"{"a":1,"a":2}"#, "payload").unwrap_err();
        assert_eq!(
            e,
            Error::DuplicateMember {
                part: "payload",
                name: "a".into()
            }
        );
        let e = parse_object(br#"{"cnf":{"jwk":{"x":"1","x":"2"}}}"#, "payload").unwrap_err();
        assert_eq!(e.kind(), "duplicate_member");
    }

    #[test]
    fn rejects_non_objects_and_trailing_data() {
        assert_eq!(parse_object(b"[1]", "header").unwrap_err().kind(), "malformed");
        assert_eq!(parse_object(b"{} x", "header").unwrap_err().kind(), "malformed");
        assert_eq!(parse_object(b"{", "header").unwrap_err().kind(), "malformed");
    }

    #[test]
    fn dates() {
        let m = parse_object(br#"{"a":5,"b":5.9,"c":-1,"d":"5"}"#, "p").unwrap();
        let c = Members(&m);
        assert_eq!(c.date("a").unwrap(), Some(5));
        assert_eq!(c.date("b").unwrap(), Some(5));
        assert_eq!(c.date("c").unwrap_err().kind(), "invalid_claim");
        assert_eq!(c.date("d").unwrap_err().kind(), "malformed");
        assert_eq!(c.req_date("z").unwrap_err(), Error::MissingClaim("z"));
    }
}
