//! The `claims` of a registration entry: what the entry's SD-CWTs say about the workload
//! beyond what the server knows, and which of it the holder may withhold.
//!
//! Stored as one JSON object: `{"claims": {...}, "always_disclosed": [...],
//! "selectively_disclosable": [...], "decoys": n}`. Claim names from OpenID Connect map to their
//! OIDC-CWT labels (draft-ietf-spice-oidc-cwt-05, [`lanyard_core::spice::oidc_claims`]);
//! other names stay text keys, with their JSON values converted structurally.
//!
//! **Policy.** A claim listed in `always_disclosed` is in the SD-CWT's payload in the
//! clear; every other claim is redacted, each with its own disclosure, so the holder
//! chooses per presentation (privacy by default). The server's facts ([`FACT_CLAIMS`])
//! follow the same lists: `trust_domain` is always disclosed unless listed as
//! selectively disclosable, `node` and `selectors` are selectively disclosable unless
//! listed as always disclosed.
//!
//! **Decoys.** Each SD-CWT also carries `decoys` decoy digests among the top-level
//! redacted claim keys ([`DEFAULT_DECOYS`] unless set, at most [`MAX_DECOYS`];
//! draft-ietf-spice-sd-cwt-08 §11.2), so a verifier cannot count the claims a holder
//! withheld. Set it to the same value across entries whose claim counts should not be told
//! apart.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use lanyard_core::spice::oidc_claims;

use crate::error::ServerError;

/// The claims the server adds from what it knows: the trust domain (`spiffe://<td>`),
/// the attested node the workload runs on (the agent's SPIFFE ID) and the selectors that
/// matched the entry (`type:value` strings).
pub const FACT_CLAIMS: [&str; 3] = ["trust_domain", "node", "selectors"];

/// Names an entry may not set: the registered CWT claims the server sets itself.
const RESERVED: [&str; 9] = ["iss", "sub", "aud", "exp", "nbf", "iat", "cti", "cnf", "cnonce"];

/// Decoy digests per SD-CWT when the entry does not say (the draft names no number; a few
/// hide how many claims are withheld at a cost of 33 bytes each).
pub const DEFAULT_DECOYS: u8 = 3;

/// The most decoy digests an entry may ask for.
pub const MAX_DECOYS: u8 = 32;

/// The largest `claims` object, as stored JSON.
pub const MAX_ENTRY_CLAIMS_BYTES: usize = 16 * 1024;

/// A registration entry's SD-CWT claims and disclosure policy (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryClaims {
    /// The claims, a JSON object.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Json>,
    /// Claim names always in the clear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub always_disclosed: Vec<String>,
    /// Claim names the holder may withhold (every unlisted entry claim is too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selectively_disclosable: Vec<String>,
    /// Decoy digests per SD-CWT ([`DEFAULT_DECOYS`] when absent; 0 for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoys: Option<u8>,
}

impl EntryClaims {
    /// No claims and no policy.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
            && self.always_disclosed.is_empty()
            && self.selectively_disclosable.is_empty()
            && self.decoys.is_none()
    }

    /// How many decoy digests the entry's SD-CWTs carry.
    pub fn decoy_count(&self) -> u8 {
        self.decoys.unwrap_or(DEFAULT_DECOYS)
    }

    /// Whether the claim `name` is in the clear in every SD-CWT.
    pub fn is_always_disclosed(&self, name: &str) -> bool {
        if self.always_disclosed.iter().any(|n| n == name) {
            return true;
        }
        name == "trust_domain" && !self.selectively_disclosable.iter().any(|n| n == name)
    }

    /// Rejects claims the server could not issue: reserved or fact names as claims, names
    /// outside 1–255 bytes, values an OIDC-CWT claim does not allow, a policy naming an
    /// unknown claim or a claim twice, more than [`MAX_DECOYS`] decoys, and more than
    /// [`MAX_ENTRY_CLAIMS_BYTES`].
    pub fn validate(&self) -> Result<(), ServerError> {
        let invalid = |m: String| ServerError::Invalid(format!("claims: {m}"));
        let size = serde_json::to_vec(self).map_or(usize::MAX, |v| v.len());
        if size > MAX_ENTRY_CLAIMS_BYTES {
            return Err(invalid(format!(
                "{size} bytes exceed the limit of {MAX_ENTRY_CLAIMS_BYTES}"
            )));
        }
        if self.decoy_count() > MAX_DECOYS {
            return Err(invalid(format!("at most {MAX_DECOYS} decoys")));
        }
        for name in self.claims.keys() {
            if RESERVED.contains(&name.as_str()) || FACT_CLAIMS.contains(&name.as_str()) {
                return Err(invalid(format!("{name:?} is set by the server")));
            }
            if name.is_empty() || name.len() > 255 {
                return Err(invalid("a claim name must be 1 to 255 bytes".into()));
            }
        }
        oidc_claims::json_to_cbor(&self.claims).map_err(|e| invalid(e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for name in self.always_disclosed.iter().chain(&self.selectively_disclosable) {
            if !self.claims.contains_key(name) && !FACT_CLAIMS.contains(&name.as_str()) {
                return Err(invalid(format!("the policy names {name:?}, which is not a claim")));
            }
            if !seen.insert(name) {
                return Err(invalid(format!("{name:?} is listed twice in the policy")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn claims(json: serde_json::Value) -> EntryClaims {
        serde_json::from_value(json).unwrap()
    }

    fn refused(c: &EntryClaims, needle: &str) {
        match c.validate() {
            Err(ServerError::Invalid(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected Invalid containing {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn policy_defaults_and_overrides() {
        let c = claims(serde_json::json!({
            "claims": {"env": "prod", "email": "a@example.org", "build": {"commit": "4b825dc"}},
            "always_disclosed": ["env", "node"],
            "selectively_disclosable": ["trust_domain"],
        }));
        c.validate().unwrap();
        assert!(c.is_always_disclosed("env") && c.is_always_disclosed("node"));
        assert!(!c.is_always_disclosed("email") && !c.is_always_disclosed("trust_domain"));
        assert!(!c.is_always_disclosed("selectors"));
        assert!(EntryClaims::default().is_always_disclosed("trust_domain"));
        assert!(EntryClaims::default().is_empty());
        assert_eq!(EntryClaims::default().decoy_count(), DEFAULT_DECOYS);
        assert_eq!(claims(serde_json::json!({"decoys": 0})).decoy_count(), 0);
    }

    #[test]
    fn bad_claims_are_refused() {
        refused(
            &claims(serde_json::json!({"claims": {"iss": "x"}})),
            "set by the server",
        );
        refused(
            &claims(serde_json::json!({"claims": {"node": "x"}})),
            "set by the server",
        );
        refused(&claims(serde_json::json!({"claims": {"": 1}})), "1 to 255");
        refused(
            &claims(serde_json::json!({"claims": {"email_verified": "yes"}})),
            "boolean",
        );
        refused(
            &claims(serde_json::json!({"claims": {"env": "prod"}, "always_disclosed": ["region"]})),
            "not a claim",
        );
        refused(
            &claims(serde_json::json!({
                "claims": {"env": "prod"},
                "always_disclosed": ["env"],
                "selectively_disclosable": ["env"],
            })),
            "twice",
        );
        refused(&claims(serde_json::json!({"decoys": MAX_DECOYS + 1})), "decoys");
        let big = "x".repeat(MAX_ENTRY_CLAIMS_BYTES);
        refused(&claims(serde_json::json!({"claims": {"blob": big}})), "exceed");
        assert!(serde_json::from_value::<EntryClaims>(serde_json::json!({"claimz": {}})).is_err());
    }
}
