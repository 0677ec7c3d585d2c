//! The SPIFFE bundle document: a JWK Set with `use` on every key, `spiffe_sequence` and
//! `spiffe_refresh_hint` (SPIFFE_Trust_Domain_and_Bundle.md §4).

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::id::TrustDomain;
use crate::jose::Jwk;
use crate::jose::json;

/// A trust domain's bundle. Bundles carry no trust-domain name, so the name is supplied
/// by whoever configured the bundle (§3), never read from the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpiffeBundle {
    /// The trust domain this bundle is for.
    pub trust_domain: TrustDomain,
    /// `spiffe_sequence`: increases on every change of the bundle.
    pub sequence: Option<u64>,
    /// `spiffe_refresh_hint`: how often to poll, in seconds.
    pub refresh_hint: Option<u64>,
    /// X.509 authorities (`"use": "x509-svid"`), each with exactly one `x5c` certificate.
    pub x509_authorities: Vec<Jwk>,
    /// JWT-SVID signing keys (`"use": "jwt-svid"`), each with a `kid`.
    pub jwt_authorities: Vec<Jwk>,
    /// WIT signing keys (`"use": "wit-svid"`), each with a `kid` unique in the bundle.
    pub wit_authorities: Vec<Jwk>,
    /// How many entries were skipped for an unknown `kty` or a missing/unknown `use` (§4.2).
    pub ignored_keys: usize,
}

impl SpiffeBundle {
    /// An empty bundle for `trust_domain`.
    pub fn new(trust_domain: TrustDomain) -> SpiffeBundle {
        SpiffeBundle {
            trust_domain,
            sequence: None,
            refresh_hint: None,
            x509_authorities: Vec::new(),
            jwt_authorities: Vec::new(),
            wit_authorities: Vec::new(),
            ignored_keys: 0,
        }
    }

    /// Parses a bundle document for `trust_domain`.
    ///
    /// Follows §4: `keys` is required; entries with an unknown `kty` or `use` are ignored;
    /// JWT and WIT keys need a `kid` (unique across the bundle); X.509 entries must have no
    /// `kid` and exactly one `x5c` certificate; private key material rejects the bundle.
    pub fn parse(trust_domain: TrustDomain, json_bytes: &[u8]) -> Result<SpiffeBundle, Error> {
        let doc = json::parse_object(json_bytes, "bundle").map_err(|e| Error::InvalidBundle(e.to_string()))?;
        let number = |name: &'static str| -> Result<Option<u64>, Error> {
            match doc.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| Error::InvalidBundle(format!("{name} must be a non-negative integer"))),
            }
        };
        let mut bundle = SpiffeBundle::new(trust_domain);
        bundle.sequence = number("spiffe_sequence")?;
        bundle.refresh_hint = number("spiffe_refresh_hint")?;
        let keys = match doc.get("keys") {
            Some(Value::Array(keys)) => keys,
            Some(_) => return Err(Error::InvalidBundle("keys must be an array".into())),
            None => return Err(Error::InvalidBundle("the keys member is required".into())),
        };
        let mut kids = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            let jwk = Jwk::from_value(key).map_err(|e| Error::InvalidBundle(format!("keys[{i}]: {e}")))?;
            if !matches!(jwk.kty.as_str(), "EC" | "OKP" | "RSA") {
                bundle.ignored_keys += 1;
                continue;
            }
            if jwk.is_private() {
                return Err(Error::InvalidBundle(format!("keys[{i}] contains private key material")));
            }
            let bad = |why: &str| Error::InvalidBundle(format!("keys[{i}]: {why}"));
            match jwk.key_use.as_deref() {
                Some("x509-svid") => {
                    if jwk.kid.is_some() {
                        return Err(bad("x509-svid entries must not have a kid"));
                    }
                    if jwk.x5c.as_ref().map_or(0, Vec::len) != 1 {
                        return Err(bad("x509-svid entries need exactly one x5c certificate"));
                    }
                    bundle.x509_authorities.push(jwk);
                }
                Some(u @ ("jwt-svid" | "wit-svid")) => {
                    let kid = jwk
                        .kid
                        .clone()
                        .ok_or_else(|| bad("jwt-svid and wit-svid entries need a kid"))?;
                    if u == "wit-svid" && !kids.insert(("wit", kid.clone())) {
                        return Err(bad("wit-svid kid is not unique in the bundle"));
                    }
                    if u == "jwt-svid" {
                        kids.insert(("jwt", kid));
                    }
                    jwk.usable_algorithms().map_err(|e| bad(&e.to_string()))?;
                    if u == "jwt-svid" {
                        bundle.jwt_authorities.push(jwk);
                    } else {
                        bundle.wit_authorities.push(jwk);
                    }
                }
                _ => bundle.ignored_keys += 1,
            }
        }
        Ok(bundle)
    }

    /// Serializes the bundle document (pretty JSON).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Doc {
            #[serde(skip_serializing_if = "Option::is_none")]
            spiffe_sequence: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            spiffe_refresh_hint: Option<u64>,
            keys: Vec<Jwk>,
        }
        let with_use = |keys: &[Jwk], u: &str| -> Vec<Jwk> {
            keys.iter()
                .map(|k| Jwk {
                    key_use: Some(u.to_owned()),
                    ..k.to_public()
                })
                .collect()
        };
        let mut keys = with_use(&self.x509_authorities, "x509-svid");
        keys.extend(with_use(&self.jwt_authorities, "jwt-svid"));
        keys.extend(with_use(&self.wit_authorities, "wit-svid"));
        serde_json::to_string_pretty(&Doc {
            spiffe_sequence: self.sequence,
            spiffe_refresh_hint: self.refresh_hint,
            keys,
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td() -> TrustDomain {
        TrustDomain::parse("example.org").unwrap()
    }

    const EC: &str = r#""kty":"EC","crv":"P-256","x":"kXqnA2Op7hgd4zRMbw0iFcc_hDxUxhojxOFVGjE2gks","y":"n__VndPMR021-59UAs0b9qDTFT-EZtT6xSNs_xFskLo""#;

    #[test]
    fn parses_and_round_trips() {
        let doc = format!(
            r#"{{"spiffe_sequence":7,"spiffe_refresh_hint":300,"keys":[
              {{"use":"jwt-svid","kid":"j1",{EC}}},
              {{"use":"wit-svid","kid":"w1",{EC}}},
              {{"use":"x509-svid",{EC},"x5c":["MIIB"]}},
              {{"use":"something-else","kid":"z",{EC}}},
              {{"kty":"oct","k":"AAAA","use":"jwt-svid","kid":"h"}}
            ]}}"#
        );
        let b = SpiffeBundle::parse(td(), doc.as_bytes()).unwrap();
        assert_eq!((b.sequence, b.refresh_hint), (Some(7), Some(300)));
        assert_eq!(
            (
                b.jwt_authorities.len(),
                b.wit_authorities.len(),
                b.x509_authorities.len()
            ),
            (1, 1, 1)
        );
        assert_eq!(b.ignored_keys, 2);
        let again = SpiffeBundle::parse(td(), b.to_json().as_bytes()).unwrap();
        assert_eq!(again, SpiffeBundle { ignored_keys: 0, ..b });
    }

    #[test]
    fn rejects_what_the_spec_forbids() {
        let cases = [
            r#"{"spiffe_sequence":1}"#.to_owned(),
            format!(r#"{{"keys":[{{"use":"jwt-svid",{EC}}}]}}"#),
            format!(r#"{{"keys":[{{"use":"x509-svid","kid":"k",{EC},"x5c":["A"]}}]}}"#),
            format!(r#"{{"keys":[{{"use":"x509-svid",{EC},"x5c":["A","B"]}}]}}"#),
            format!(r#"{{"keys":[{{"use":"wit-svid","kid":"a",{EC}}},{{"use":"wit-svid","kid":"a",{EC}}}]}}"#),
            format!(r#"{{"keys":[{{"use":"jwt-svid","kid":"a","d":"secret",{EC}}}]}}"#),
            r#"{"keys":[],"keys":[]}"#.to_owned(),
        ];
        for doc in cases {
            let e = SpiffeBundle::parse(td(), doc.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), "invalid_bundle", "{doc}");
        }
    }
}
