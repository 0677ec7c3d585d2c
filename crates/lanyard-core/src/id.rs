//! Workload identifiers: SPIFFE IDs (SPIFFE-ID.md) and WIMSE identifiers
//! (draft-ietf-wimse-identifier-03).
//!
//! Both schemes share one strict parser (`rules`): an identifier is validated in full
//! before anything else looks at it, non-canonical input is rejected (never repaired),
//! and identifiers compare byte for byte.

mod rules;
mod spiffe;
mod wimse;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use spiffe::{SpiffeId, TrustDomain};
pub use wimse::WimseId;

/// Longest identifier accepted, in bytes (SPIFFE-ID.md §2.3, identifier-03 §4).
pub const MAX_ID_BYTES: usize = 2048;
/// Longest trust domain accepted, in bytes (RFC 3986 host limit, SPIFFE-ID.md §2.3).
pub const MAX_TRUST_DOMAIN_BYTES: usize = 255;

/// The rule an identifier broke.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdErrorKind {
    /// The input is empty.
    Empty,
    /// Over [`MAX_ID_BYTES`].
    TooLong,
    /// Not `spiffe://` or `wimse://` in lowercase.
    Scheme,
    /// Has a `#fragment`.
    Fragment,
    /// Has a `?query`.
    Query,
    /// No trust domain after the scheme.
    TrustDomainMissing,
    /// `user@` in the authority.
    Userinfo,
    /// `:port` in the authority.
    Port,
    /// A `%` escape anywhere.
    PercentEncoding,
    /// Trust domain over [`MAX_TRUST_DOMAIN_BYTES`].
    TrustDomainTooLong,
    /// A trust-domain byte outside `[a-z0-9._-]` (uppercase is non-canonical).
    TrustDomainChar,
    /// A WIMSE trust domain that ends in `.`.
    TrustDomainTrailingDot,
    /// A WIMSE trust domain that is an IP address.
    IpTrustDomain,
    /// No path where a workload identifier is needed: a WIMSE identifier always, a SPIFFE ID
    /// where it must name a workload (that is an Origin or trust-domain ID, not a workload).
    EmptyPath,
    /// A path ending in `/`.
    TrailingSlash,
    /// `//` inside the path.
    EmptySegment,
    /// A `.` or `..` segment.
    DotSegment,
    /// A path byte outside the scheme's allowed set.
    PathChar,
    /// The identifier has a path where only a trust domain is allowed, or the reverse.
    WrongForm,
}

impl IdErrorKind {
    /// A stable lowercase code (used by the conformance vectors).
    pub fn as_str(self) -> &'static str {
        match self {
            IdErrorKind::Empty => "empty",
            IdErrorKind::TooLong => "too_long",
            IdErrorKind::Scheme => "scheme",
            IdErrorKind::Fragment => "fragment",
            IdErrorKind::Query => "query",
            IdErrorKind::TrustDomainMissing => "trust_domain_missing",
            IdErrorKind::Userinfo => "userinfo",
            IdErrorKind::Port => "port",
            IdErrorKind::PercentEncoding => "percent_encoding",
            IdErrorKind::TrustDomainTooLong => "trust_domain_too_long",
            IdErrorKind::TrustDomainChar => "trust_domain_char",
            IdErrorKind::TrustDomainTrailingDot => "trust_domain_trailing_dot",
            IdErrorKind::IpTrustDomain => "ip_trust_domain",
            IdErrorKind::EmptyPath => "empty_path",
            IdErrorKind::TrailingSlash => "trailing_slash",
            IdErrorKind::EmptySegment => "empty_segment",
            IdErrorKind::DotSegment => "dot_segment",
            IdErrorKind::PathChar => "path_char",
            IdErrorKind::WrongForm => "wrong_form",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            IdErrorKind::Empty => "identifier is empty",
            IdErrorKind::TooLong => "identifier is longer than 2048 bytes",
            IdErrorKind::Scheme => "scheme must be lowercase spiffe:// or wimse://",
            IdErrorKind::Fragment => "fragments are not allowed",
            IdErrorKind::Query => "queries are not allowed",
            IdErrorKind::TrustDomainMissing => "trust domain is missing",
            IdErrorKind::Userinfo => "userinfo is not allowed in the trust domain",
            IdErrorKind::Port => "a port is not allowed in the trust domain",
            IdErrorKind::PercentEncoding => "percent-encoding is not allowed",
            IdErrorKind::TrustDomainTooLong => "trust domain is longer than 255 bytes",
            IdErrorKind::TrustDomainChar => "trust domain may contain only lowercase letters, digits, '.', '-' and '_'",
            IdErrorKind::TrustDomainTrailingDot => "trust domain must not end with '.'",
            IdErrorKind::IpTrustDomain => "trust domain must not be an IP address",
            IdErrorKind::EmptyPath => "a workload identifier needs a path (this names a trust domain, not a workload)",
            IdErrorKind::TrailingSlash => "path must not end with '/'",
            IdErrorKind::EmptySegment => "path must not contain empty segments",
            IdErrorKind::DotSegment => "path must not contain '.' or '..' segments",
            IdErrorKind::PathChar => "path contains a character the scheme does not allow",
            IdErrorKind::WrongForm => "identifier has the wrong form for this use",
        }
    }
}

impl fmt::Display for IdErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected identifier: the rule it broke and (a bounded prefix of) the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({input:?})", kind.describe())]
pub struct IdError {
    /// The rule that was broken.
    pub kind: IdErrorKind,
    /// The offending input, cut to 128 bytes so that hostile input cannot flood logs.
    pub input: String,
}

impl IdError {
    pub(crate) fn new(kind: IdErrorKind, input: &str) -> IdError {
        let mut end = input.len().min(128);
        while !input.is_char_boundary(end) {
            end -= 1;
        }
        IdError {
            kind,
            input: input[..end].to_owned(),
        }
    }
}

/// A validated workload identifier of either scheme.
///
/// Equality and hashing are byte-for-byte on the canonical string, as both specs require.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadId {
    /// `spiffe://trust-domain/path`.
    Spiffe(SpiffeId),
    /// `wimse://trust-domain/path`.
    Wimse(WimseId),
}

impl WorkloadId {
    /// Parses and validates an identifier, choosing the scheme by its prefix.
    pub fn parse(input: &str) -> Result<WorkloadId, IdError> {
        if input.starts_with(spiffe::PREFIX) {
            SpiffeId::parse(input).map(WorkloadId::Spiffe)
        } else if input.starts_with(wimse::PREFIX) {
            WimseId::parse(input).map(WorkloadId::Wimse)
        } else if input.is_empty() {
            Err(IdError::new(IdErrorKind::Empty, input))
        } else if input.len() > MAX_ID_BYTES {
            Err(IdError::new(IdErrorKind::TooLong, input))
        } else {
            Err(IdError::new(IdErrorKind::Scheme, input))
        }
    }

    /// The canonical string form.
    pub fn as_str(&self) -> &str {
        match self {
            WorkloadId::Spiffe(id) => id.as_str(),
            WorkloadId::Wimse(id) => id.as_str(),
        }
    }

    /// The trust domain name (the URI authority), e.g. `example.org`.
    pub fn trust_domain(&self) -> &str {
        match self {
            WorkloadId::Spiffe(id) => id.trust_domain_name(),
            WorkloadId::Wimse(id) => id.trust_domain_name(),
        }
    }

    /// The path, starting with `/` (empty for a SPIFFE trust-domain ID).
    pub fn path(&self) -> &str {
        match self {
            WorkloadId::Spiffe(id) => id.path(),
            WorkloadId::Wimse(id) => id.path(),
        }
    }

    /// The SPIFFE ID, if this is one.
    pub fn as_spiffe(&self) -> Option<&SpiffeId> {
        match self {
            WorkloadId::Spiffe(id) => Some(id),
            WorkloadId::Wimse(_) => None,
        }
    }
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkloadId({:?})", self.as_str())
    }
}

impl FromStr for WorkloadId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkloadId::parse(s)
    }
}

impl From<SpiffeId> for WorkloadId {
    fn from(id: SpiffeId) -> Self {
        WorkloadId::Spiffe(id)
    }
}

impl From<WimseId> for WorkloadId {
    fn from(id: WimseId) -> Self {
        WorkloadId::Wimse(id)
    }
}

impl Serialize for WorkloadId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WorkloadId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        WorkloadId::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
