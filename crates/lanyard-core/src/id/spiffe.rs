//! SPIFFE IDs and trust domains (spiffe/spiffe `standards/SPIFFE-ID.md`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::rules::{self, Rules};
use super::{IdError, IdErrorKind};

pub(super) const PREFIX: &str = "spiffe://";

const RULES: Rules = Rules {
    prefix: PREFIX,
    path_byte: |b| matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_'),
    require_path: false,
    strict_host: false,
};

/// A validated SPIFFE ID, `spiffe://<trust-domain>[/<segment>...]`.
///
/// Parsing rejects everything SPIFFE-ID.md §2 forbids (uppercase trust domains, percent
/// escapes, empty or dot segments, trailing slashes, over-long input) instead of
/// normalizing it, so a value of this type is always canonical.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    id: String,
    td_end: usize,
}

impl SpiffeId {
    /// Parses and validates a SPIFFE ID.
    pub fn parse(input: &str) -> Result<SpiffeId, IdError> {
        let td_end = rules::parse(input, &RULES)?;
        Ok(SpiffeId {
            id: input.to_owned(),
            td_end,
        })
    }

    /// The ID of a workload in `td` with `path` (which must start with `/`).
    pub fn from_parts(td: &TrustDomain, path: &str) -> Result<SpiffeId, IdError> {
        SpiffeId::parse(&format!("{PREFIX}{}{path}", td.name()))
    }

    /// The canonical string.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The trust domain name, e.g. `example.org`.
    pub fn trust_domain_name(&self) -> &str {
        &self.id[PREFIX.len()..self.td_end]
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> TrustDomain {
        TrustDomain {
            name: self.trust_domain_name().to_owned(),
        }
    }

    /// The path, beginning with `/`, or empty for the trust domain's own ID.
    pub fn path(&self) -> &str {
        &self.id[self.td_end..]
    }

    /// True for `spiffe://<td>` with no path (such an ID names a trust domain, not a workload).
    pub fn is_trust_domain_id(&self) -> bool {
        self.path().is_empty()
    }
}

/// A validated SPIFFE trust domain name, e.g. `example.org`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain {
    name: String,
}

impl TrustDomain {
    /// Parses a bare trust-domain name, or accepts a `spiffe://<td>` string (with no path).
    pub fn parse(input: &str) -> Result<TrustDomain, IdError> {
        if input.starts_with(PREFIX) {
            let id = SpiffeId::parse(input)?;
            if !id.is_trust_domain_id() {
                return Err(IdError::new(IdErrorKind::WrongForm, input));
            }
            return Ok(id.trust_domain());
        }
        rules::check_trust_domain(input, &RULES).map_err(|k| IdError::new(k, input))?;
        Ok(TrustDomain { name: input.to_owned() })
    }

    /// The bare name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trust domain's SPIFFE ID, `spiffe://<name>` (the key used in bundle maps).
    pub fn id_string(&self) -> String {
        format!("{PREFIX}{}", self.name)
    }
}

macro_rules! string_like {
    ($ty:ident, $as_str:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.$as_str())
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({:?})"), self.$as_str())
            }
        }
        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.$as_str())
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $ty::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(super) use string_like;

string_like!(SpiffeId, as_str);
string_like!(TrustDomain, name);
