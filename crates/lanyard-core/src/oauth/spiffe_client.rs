//! Which SPIFFE IDs may authenticate as a client: the `spiffe_id` rule of
//! draft-ietf-oauth-spiffe-client-auth §5.1 (editor's copy after PR #44, 2026-08-11),
//! applied to the SPIFFE ID of any presented SVID (JWT-SVID `sub`, X.509-SVID URI SAN,
//! WIT-SVID `sub`).
//!
//! A pattern is either a SPIFFE ID, matched exactly (byte for byte, SPIFFE-ID.md §2), or a
//! SPIFFE ID followed by `/*`, a path-segment prefix: `spiffe://td/client/*` matches
//! `spiffe://td/client/123` and `spiffe://td/client/123/x`, but neither
//! `spiffe://td/client123` nor `spiffe://td/client` itself. `spiffe://td/*` admits every
//! workload of the trust domain `td`. A `*` anywhere else is not a SPIFFE ID character, so
//! it is refused when the pattern is parsed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;
use crate::id::SpiffeId;
use crate::oauth::violation::Violation;

/// A registered `spiffe_id` rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SpiffeIdPattern {
    /// Exactly this SPIFFE ID.
    Exact(SpiffeId),
    /// Any SPIFFE ID below this one by at least one whole path segment (written with a
    /// trailing `/*`).
    Prefix(SpiffeId),
}

impl SpiffeIdPattern {
    /// Parses a pattern: a SPIFFE ID, optionally followed by `/*`.
    pub fn parse(value: &str) -> Result<SpiffeIdPattern, Error> {
        let invalid = |source| Error::InvalidIdentifier {
            context: "spiffe_id pattern",
            source,
        };
        match value.strip_suffix("/*") {
            Some(base) => SpiffeId::parse(base).map(SpiffeIdPattern::Prefix).map_err(invalid),
            None => SpiffeId::parse(value).map(SpiffeIdPattern::Exact).map_err(invalid),
        }
    }

    /// Whether `id` matches.
    pub fn matches(&self, id: &SpiffeId) -> bool {
        match self {
            SpiffeIdPattern::Exact(expected) => expected == id,
            SpiffeIdPattern::Prefix(base) => id
                .as_str()
                .strip_prefix(base.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| !rest.is_empty()),
        }
    }
}

impl fmt::Display for SpiffeIdPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpiffeIdPattern::Exact(id) => f.write_str(id.as_str()),
            SpiffeIdPattern::Prefix(base) => write!(f, "{}/*", base.as_str()),
        }
    }
}

impl Serialize for SpiffeIdPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpiffeIdPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SpiffeIdPattern, D::Error> {
        SpiffeIdPattern::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Checks that `id` may authenticate as `client_id`: some pattern in `patterns` matches
/// it (draft-ietf-oauth-spiffe-client-auth §3.1 step 5, §3.2 step 5). Otherwise
/// [`Violation::SpiffeIdNotAuthorized`] (`invalid_client`).
pub fn authorize_spiffe_id(patterns: &[SpiffeIdPattern], id: &SpiffeId, client_id: &str) -> Result<(), Error> {
    if patterns.iter().any(|p| p.matches(id)) {
        Ok(())
    } else {
        Err(Violation::SpiffeIdNotAuthorized {
            spiffe_id: id.as_str().to_owned(),
            client_id: client_id.to_owned(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> SpiffeId {
        SpiffeId::parse(s).unwrap()
    }

    #[test]
    fn prefix_matches_whole_segments_only() {
        let p = SpiffeIdPattern::parse("spiffe://example.org/client/*").unwrap();
        assert!(p.matches(&id("spiffe://example.org/client/123")));
        assert!(p.matches(&id("spiffe://example.org/client/123/456")));
        assert!(!p.matches(&id("spiffe://example.org/client123")));
        assert!(!p.matches(&id("spiffe://example.org/client")));
        assert!(!p.matches(&id("spiffe://example.com/client/123")));
        assert!(!p.matches(&id("spiffe://example.org/other/client/123")));
        assert_eq!(p.to_string(), "spiffe://example.org/client/*");
    }

    #[test]
    fn exact_and_trust_domain_wide() {
        let p = SpiffeIdPattern::parse("spiffe://example.org/client").unwrap();
        assert!(p.matches(&id("spiffe://example.org/client")));
        assert!(!p.matches(&id("spiffe://example.org/client/1")));
        assert!(!p.matches(&id("spiffe://example.org/Client")));
        let td = SpiffeIdPattern::parse("spiffe://example.org/*").unwrap();
        assert!(td.matches(&id("spiffe://example.org/anything")));
        assert!(!td.matches(&id("spiffe://example.org")));
        assert!(!td.matches(&id("spiffe://example.org.evil/x")));
    }

    #[test]
    fn refuses_other_wildcards() {
        for bad in [
            "spiffe://example.org/client*",
            "spiffe://example.org/*/x",
            "spiffe://*.example.org/x",
            "spiffe://example.org/client/",
            "https://example.org/client/*",
            "*",
        ] {
            assert_eq!(
                SpiffeIdPattern::parse(bad).unwrap_err().kind(),
                "invalid_identifier",
                "{bad}"
            );
        }
    }

    #[test]
    fn authorization_names_both_parties() {
        let patterns = [SpiffeIdPattern::parse("spiffe://example.org/a/*").unwrap()];
        assert!(authorize_spiffe_id(&patterns, &id("spiffe://example.org/a/b"), "c1").is_ok());
        let e = authorize_spiffe_id(&patterns, &id("spiffe://example.org/b"), "c1").unwrap_err();
        assert_eq!(e.kind(), "spiffe_id_not_authorized");
        assert!(authorize_spiffe_id(&[], &id("spiffe://example.org/a/b"), "c1").is_err());
    }
}
