//! The registered CWT claims (RFC 8392 §3.1, RFC 9200 §5.3 for `cnonce`) and their types.

use crate::cbor::Value;
use crate::error::Error;
use crate::time::UnixTime;

/// CWT claim keys (IANA "CBOR Web Token (CWT) Claims").
pub mod label {
    /// `iss`: the issuer (text).
    pub const ISS: i64 = 1;
    /// `sub`: the subject (text).
    pub const SUB: i64 = 2;
    /// `aud`: the audience (text).
    pub const AUD: i64 = 3;
    /// `exp`: expiration time (NumericDate).
    pub const EXP: i64 = 4;
    /// `nbf`: not before (NumericDate).
    pub const NBF: i64 = 5;
    /// `iat`: issued at (NumericDate).
    pub const IAT: i64 = 6;
    /// `cti`: CWT ID (bytes).
    pub const CTI: i64 = 7;
    /// `cnf`: confirmation (RFC 8747).
    pub const CNF: i64 = 8;
    /// `cnonce`: client nonce (RFC 9200), opaque bytes.
    pub const CNONCE: i64 = 39;
}

/// A CWT NumericDate: seconds since the epoch.
///
/// RFC 8392 allows integers and floats; this profile requires finite values within
/// ±2⁵³ (draft-ietf-spice-sd-cwt §6.2) and keeps whole seconds (a fraction is dropped,
/// rounding towards the past).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NumericDate(pub i64);

impl NumericDate {
    /// Reads claim `claim` as a NumericDate.
    pub fn from_value(claim: &'static str, value: &Value) -> Result<NumericDate, Error> {
        const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
        match value {
            Value::Integer(i) => i
                .to_i64()
                .map(NumericDate)
                .ok_or_else(|| Error::invalid_claim(claim, "out of range")),
            Value::Float(f) if f.is_finite() && f.abs() <= LIMIT => Ok(NumericDate(f.floor() as i64)),
            Value::Float(_) => Err(Error::invalid_claim(claim, "not a finite number within ±2^53")),
            other => Err(Error::invalid_claim(
                claim,
                format!("a {}, not a NumericDate", other.type_name()),
            )),
        }
    }

    /// The date as a [`UnixTime`] (dates before the epoch clamp to zero).
    pub fn to_unix(self) -> UnixTime {
        UnixTime(u64::try_from(self.0).unwrap_or(0))
    }

    /// The CBOR value (an integer).
    pub fn to_value(self) -> Value {
        Value::int(self.0)
    }
}

impl From<UnixTime> for NumericDate {
    fn from(t: UnixTime) -> NumericDate {
        NumericDate(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
    }
}

/// The registered claims of a claims set, type-checked. Other claims stay in the map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StandardClaims {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`.
    pub aud: Option<String>,
    /// `exp`.
    pub exp: Option<NumericDate>,
    /// `nbf`.
    pub nbf: Option<NumericDate>,
    /// `iat`.
    pub iat: Option<NumericDate>,
    /// `cti`.
    pub cti: Option<Vec<u8>>,
    /// `cnonce`.
    pub cnonce: Option<Vec<u8>>,
}

fn text(claim: &'static str, value: &Value) -> Result<String, Error> {
    value
        .as_text()
        .map(str::to_owned)
        .ok_or_else(|| Error::invalid_claim(claim, format!("a {}, not text", value.type_name())))
}

fn bytes(claim: &'static str, value: &Value) -> Result<Vec<u8>, Error> {
    value
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| Error::invalid_claim(claim, format!("a {}, not bytes", value.type_name())))
}

impl StandardClaims {
    /// Reads the registered claims of a claims map, checking each one's type.
    pub fn from_map(map: &[(Value, Value)]) -> Result<StandardClaims, Error> {
        let mut claims = StandardClaims::default();
        for (key, value) in map {
            match key.as_i64() {
                Some(label::ISS) => claims.iss = Some(text("iss", value)?),
                Some(label::SUB) => claims.sub = Some(text("sub", value)?),
                Some(label::AUD) => claims.aud = Some(text("aud", value)?),
                Some(label::EXP) => claims.exp = Some(NumericDate::from_value("exp", value)?),
                Some(label::NBF) => claims.nbf = Some(NumericDate::from_value("nbf", value)?),
                Some(label::IAT) => claims.iat = Some(NumericDate::from_value("iat", value)?),
                Some(label::CTI) => claims.cti = Some(bytes("cti", value)?),
                Some(label::CNONCE) => claims.cnonce = Some(bytes("cnonce", value)?),
                _ => {}
            }
        }
        Ok(claims)
    }

    /// Checks `exp` and `nbf` against `now`, allowing `leeway` seconds of clock skew.
    pub fn check_validity(&self, now: UnixTime, leeway: u64) -> Result<(), Error> {
        let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let leeway = i64::try_from(leeway).unwrap_or(i64::MAX);
        if let Some(exp) = self.exp
            && now_secs > exp.0.saturating_add(leeway)
        {
            return Err(Error::Expired {
                exp: exp.to_unix().as_secs(),
                now: now.as_secs(),
            });
        }
        for (claim, date) in [("nbf", self.nbf), ("iat", self.iat)] {
            if let Some(date) = date
                && date.0 > now_secs.saturating_add(leeway)
            {
                return Err(Error::NotYetValid {
                    claim,
                    value: date.to_unix().as_secs(),
                    now: now.as_secs(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dates() {
        assert_eq!(NumericDate::from_value("exp", &Value::int(5)).unwrap(), NumericDate(5));
        assert_eq!(
            NumericDate::from_value("exp", &Value::Float(5.75)).unwrap(),
            NumericDate(5)
        );
        for bad in [
            Value::Float(f64::NAN),
            Value::Float(f64::INFINITY),
            Value::Float(1.0e16),
            Value::text("5"),
        ] {
            assert_eq!(
                NumericDate::from_value("exp", &bad).unwrap_err().kind(),
                "invalid_claim"
            );
        }
    }

    #[test]
    fn validity_window() {
        let claims = StandardClaims {
            exp: Some(NumericDate(100)),
            nbf: Some(NumericDate(50)),
            ..StandardClaims::default()
        };
        assert!(claims.check_validity(UnixTime(100), 0).is_ok());
        assert_eq!(claims.check_validity(UnixTime(101), 0).unwrap_err().kind(), "expired");
        assert!(claims.check_validity(UnixTime(160), 60).is_ok());
        assert_eq!(
            claims.check_validity(UnixTime(49), 0).unwrap_err().kind(),
            "not_yet_valid"
        );
    }
}
