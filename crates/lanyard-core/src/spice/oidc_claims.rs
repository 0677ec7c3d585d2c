//! OpenID Connect standard claims in CWTs (draft-ietf-spice-oidc-cwt-05, repository
//! main@b412891, 2026-03-02), and the mapping between a JWT's JSON claims and a CWT's CBOR
//! claims.
//!
//! **The labels are not assigned yet.** The draft asks IANA for "TBD1".."TBD19" and
//! suggests 170..188; the table below uses the suggestions and is the only place they
//! appear, so an IANA assignment (or a -06 change) is a one-table edit. The registered
//! CWT claims (RFC 8392, RFC 9200) map by their assigned labels.

use serde_json::{Map, Number, Value as Json};

use crate::cbor::Value;
use crate::error::Error;

/// What a claim's value must be.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimType {
    /// A text string.
    Text,
    /// A boolean.
    Bool,
    /// A NumericDate: an integer or a finite float.
    NumericDate,
    /// A byte string (base64url in JSON).
    Bytes,
    /// The `address` map (labels in [`ADDRESS_MEMBERS`]).
    Address,
}

/// One claim of the mapping: its JWT name, CWT label and value type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimLabel {
    /// The JWT claim name.
    pub name: &'static str,
    /// The CWT claim key.
    pub label: i64,
    /// The value type.
    pub kind: ClaimType,
    /// Whether the label is assigned by IANA (false: the draft's suggestion).
    pub assigned: bool,
}

const fn claim(name: &'static str, label: i64, kind: ClaimType, assigned: bool) -> ClaimLabel {
    ClaimLabel {
        name,
        label,
        kind,
        assigned,
    }
}

/// The date of [`CLAIMS`]: the suggestions of draft-ietf-spice-oidc-cwt-05 (2026-03-02);
/// no IANA assignment was found by 2026-12 (-06 exists but could not be read).
pub const CLAIMS_TABLE_DATE: &str = "2026-03-02";

/// Every claim the mapping knows, registered CWT claims first.
pub const CLAIMS: [ClaimLabel; 26] = [
    claim("iss", 1, ClaimType::Text, true),
    claim("sub", 2, ClaimType::Text, true),
    claim("aud", 3, ClaimType::Text, true),
    claim("exp", 4, ClaimType::NumericDate, true),
    claim("nbf", 5, ClaimType::NumericDate, true),
    claim("iat", 6, ClaimType::NumericDate, true),
    claim("cnonce", 39, ClaimType::Bytes, true),
    claim("name", 170, ClaimType::Text, false),
    claim("given_name", 171, ClaimType::Text, false),
    claim("family_name", 172, ClaimType::Text, false),
    claim("middle_name", 173, ClaimType::Text, false),
    claim("nickname", 174, ClaimType::Text, false),
    claim("preferred_username", 175, ClaimType::Text, false),
    claim("profile", 176, ClaimType::Text, false),
    claim("picture", 177, ClaimType::Text, false),
    claim("website", 178, ClaimType::Text, false),
    claim("email", 179, ClaimType::Text, false),
    claim("email_verified", 180, ClaimType::Bool, false),
    claim("gender", 181, ClaimType::Text, false),
    claim("birthdate", 182, ClaimType::Text, false),
    claim("zoneinfo", 183, ClaimType::Text, false),
    claim("locale", 184, ClaimType::Text, false),
    claim("phone_number", 185, ClaimType::Text, false),
    claim("phone_number_verified", 186, ClaimType::Bool, false),
    claim("address", 187, ClaimType::Address, false),
    claim("updated_at", 188, ClaimType::NumericDate, false),
];

/// The members of the `address` claim and their labels (draft §3.18, all text).
pub const ADDRESS_MEMBERS: [(&str, i64); 6] = [
    ("formatted", 1),
    ("street_address", 2),
    ("locality", 3),
    ("region", 4),
    ("postal_code", 5),
    ("country", 6),
];

/// The entry for a JWT claim name.
pub fn by_name(name: &str) -> Option<&'static ClaimLabel> {
    CLAIMS.iter().find(|c| c.name == name)
}

/// The entry for a CWT label.
pub fn by_label(label: i64) -> Option<&'static ClaimLabel> {
    CLAIMS.iter().find(|c| c.label == label)
}

fn wrong(name: &str, what: &str) -> Error {
    Error::InvalidClaim {
        claim: "oidc",
        reason: format!("{name} must be {what}"),
    }
}

/// Converts a JWT claims object into a CWT claims map: known claims by label with their
/// types checked, `address` members by label, any other claim under its name with its
/// JSON value converted structurally (numbers as integers or floats).
pub fn json_to_cbor(claims: &Map<String, Json>) -> Result<Value, Error> {
    let mut out = Vec::with_capacity(claims.len());
    for (name, value) in claims {
        let entry = match by_name(name) {
            Some(known) => (Value::int(known.label), typed_to_cbor(known, value)?),
            None => (Value::text(name.as_str()), json_value_to_cbor(value)?),
        };
        out.push(entry);
    }
    Ok(Value::Map(out))
}

fn typed_to_cbor(known: &ClaimLabel, value: &Json) -> Result<Value, Error> {
    match (known.kind, value) {
        (ClaimType::Text, Json::String(s)) => Ok(Value::text(s.as_str())),
        (ClaimType::Bool, Json::Bool(b)) => Ok(Value::Bool(*b)),
        (ClaimType::NumericDate, Json::Number(n)) => json_number(n),
        (ClaimType::Bytes, Json::String(s)) => crate::jose::base64url::decode(s, "claim")
            .map(Value::Bytes)
            .map_err(|_| wrong(known.name, "base64url")),
        (ClaimType::Address, Json::Object(members)) => {
            let mut out = Vec::with_capacity(members.len());
            for (member, v) in members {
                let Json::String(text) = v else {
                    return Err(wrong(member, "a string"));
                };
                let key = match ADDRESS_MEMBERS.iter().find(|(n, _)| n == member) {
                    Some((_, label)) => Value::int(*label),
                    None => Value::text(member.as_str()),
                };
                out.push((key, Value::text(text.as_str())));
            }
            Ok(Value::Map(out))
        }
        (kind, _) => Err(wrong(known.name, type_description(kind))),
    }
}

fn type_description(kind: ClaimType) -> &'static str {
    match kind {
        ClaimType::Text => "a string",
        ClaimType::Bool => "a boolean",
        ClaimType::NumericDate => "a number",
        ClaimType::Bytes => "bytes",
        ClaimType::Address => "an object of strings",
    }
}

fn json_number(n: &Number) -> Result<Value, Error> {
    if let Some(i) = n.as_i64() {
        Ok(Value::int(i))
    } else if let Some(u) = n.as_u64() {
        Ok(Value::int(u))
    } else {
        n.as_f64()
            .filter(|f| f.is_finite())
            .map(Value::Float)
            .ok_or_else(|| wrong("number", "finite"))
    }
}

fn json_value_to_cbor(value: &Json) -> Result<Value, Error> {
    Ok(match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => json_number(n)?,
        Json::String(s) => Value::text(s.as_str()),
        Json::Array(items) => Value::Array(items.iter().map(json_value_to_cbor).collect::<Result<_, _>>()?),
        Json::Object(members) => Value::Map(
            members
                .iter()
                .map(|(k, v)| Ok((Value::text(k.as_str()), json_value_to_cbor(v)?)))
                .collect::<Result<_, Error>>()?,
        ),
    })
}

/// Converts a CWT claims map back into a JWT claims object: known labels to their names
/// (types checked), text keys as they are; other keys, byte strings outside `cnonce`,
/// tags and simple values have no JSON form and are refused.
pub fn cbor_to_json(claims: &Value) -> Result<Map<String, Json>, Error> {
    let entries = claims.as_map().ok_or_else(|| wrong("claims", "a map"))?;
    let mut out = Map::new();
    for (key, value) in entries {
        let (name, json) = match key {
            Value::Integer(_) => {
                let known = key
                    .as_i64()
                    .and_then(by_label)
                    .ok_or_else(|| wrong(&crate::cbor::to_diagnostic(key), "a claim with a JWT name"))?;
                (known.name.to_owned(), typed_to_json(known, value)?)
            }
            Value::Text(name) => (name.clone(), cbor_value_to_json(value)?),
            other => {
                return Err(wrong(
                    &crate::cbor::to_diagnostic(other),
                    "an integer or text claim key",
                ));
            }
        };
        out.insert(name, json);
    }
    Ok(out)
}

fn typed_to_json(known: &ClaimLabel, value: &Value) -> Result<Json, Error> {
    match (known.kind, value) {
        (ClaimType::Text, Value::Text(s)) => Ok(Json::String(s.clone())),
        (ClaimType::Bool, Value::Bool(b)) => Ok(Json::Bool(*b)),
        (ClaimType::NumericDate, Value::Integer(_) | Value::Float(_)) => cbor_value_to_json(value),
        (ClaimType::Bytes, Value::Bytes(b)) => Ok(Json::String(crate::jose::base64url::encode(b))),
        (ClaimType::Address, Value::Map(members)) => {
            let mut out = Map::new();
            for (k, v) in members {
                let name = match k {
                    Value::Text(t) => t.clone(),
                    k => ADDRESS_MEMBERS
                        .iter()
                        .find(|(_, label)| k.as_i64() == Some(*label))
                        .map(|(n, _)| (*n).to_owned())
                        .ok_or_else(|| wrong("address", "keyed by its member labels"))?,
                };
                let Value::Text(text) = v else {
                    return Err(wrong(&name, "text"));
                };
                out.insert(name, Json::String(text.clone()));
            }
            Ok(Json::Object(out))
        }
        (kind, _) => Err(wrong(known.name, type_description(kind))),
    }
}

fn cbor_value_to_json(value: &Value) -> Result<Json, Error> {
    Ok(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Integer(i) => match (i.to_i64(), i.to_u64()) {
            (Some(v), _) => Json::from(v),
            (None, Some(v)) => Json::from(v),
            _ => return Err(wrong("integer", "within the range of JSON numbers")),
        },
        Value::Float(f) => Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| wrong("float", "finite"))?,
        Value::Text(s) => Json::String(s.clone()),
        Value::Array(items) => Json::Array(items.iter().map(cbor_value_to_json).collect::<Result<_, _>>()?),
        Value::Map(entries) => {
            let mut out = Map::new();
            for (k, v) in entries {
                let Value::Text(name) = k else {
                    return Err(wrong("member", "keyed by text"));
                };
                out.insert(name.clone(), cbor_value_to_json(v)?);
            }
            Json::Object(out)
        }
        other => return Err(wrong(other.type_name(), "a JSON-representable value")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique() {
        for (i, a) in CLAIMS.iter().enumerate() {
            for b in &CLAIMS[i + 1..] {
                assert_ne!(a.label, b.label, "{} / {}", a.name, b.name);
                assert_ne!(a.name, b.name);
            }
        }
        assert_eq!(by_name("email_verified").map(|c| c.label), Some(180));
        assert_eq!(by_label(188).map(|c| c.name), Some("updated_at"));
    }

    #[test]
    fn types_are_checked_both_ways() {
        let mut claims = Map::new();
        claims.insert("email_verified".into(), Json::String("yes".into()));
        assert_eq!(json_to_cbor(&claims).unwrap_err().kind(), "invalid_claim");
        let cwt = Value::map([(Value::int(170), Value::int(1))]);
        assert_eq!(cbor_to_json(&cwt).unwrap_err().kind(), "invalid_claim");
        let cwt = Value::map([(Value::int(9999), Value::text("x"))]);
        assert_eq!(cbor_to_json(&cwt).unwrap_err().kind(), "invalid_claim");
    }
}
