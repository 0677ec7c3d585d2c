//! JWTs from trusted external issuers (a Kubernetes service-account token, a CI system's
//! OIDC token, another authorization server's RFC 9068 access token) and the rules that map
//! their claims to a workload identifier of this server's trust domain: the input of a
//! token exchange (RFC 8693) for workloads without an agent.
//!
//! [`ExternalTokenVerifier`] checks, in this order (RFC 8725 §3.1, §3.8–3.11): `typ`
//! absent, `JWT`/`JOSE` or `at+jwt` (RFC 9068), any other explicit Lanyard or registered
//! type (`wit+jwt`, `txntoken+jwt`, `dpop+jwt`, ...) being `typ_confusion`; `alg` on the
//! issuer's allow-list (asymmetric only: `none` and HMAC do not parse as an
//! [`Algorithm`]); the signature by one of the issuer's keys; `iss` exactly the configured
//! issuer; `aud` containing the configured audience (RFC 7519 §4.1.3); `exp` required,
//! `nbf` and `iat` not in the future, with a bounded leeway, and a bounded remaining
//! lifetime. The verified claims then go through [`map_identity`]: the first
//! [`MappingRule`] whose conditions hold renders its [`IdentityTemplate`]; a token that
//! matches no rule is refused ([`Violation::NoMappingRule`]).
//!
//! Template substitutions are checked before they are placed: a claim value must be a
//! non-empty string (or number or boolean) without `/`, `%`, `..`, `\`, whitespace or control
//! characters, so that no claim can forge or climb a path segment; the rendered identifier
//! must parse as a SPIFFE ID or WIMSE identifier of the configured trust domain.

use serde_json::{Map, Value};

use crate::alg::{AlgSet, Algorithm};
use crate::error::Error;
use crate::id::WorkloadId;
use crate::jose::json::Members;
use crate::jose::{TokenType, TypRule};
use crate::oauth::keys::VerificationKeys;
use crate::oauth::violation::{Violation, clip};
use crate::time::UnixTime;
use crate::trust::{self, Window};

/// What is accepted from one trusted external issuer.
#[derive(Clone, Debug)]
pub struct ExternalTokenPolicy {
    /// The issuer: `iss` must equal it exactly.
    pub issuer: String,
    /// This server's audience at the issuer: `aud` must contain it.
    pub audience: String,
    /// Allowed algorithms (asymmetric only).
    pub algorithms: AlgSet,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (60 by default).
    pub leeway: u64,
    /// The longest remaining lifetime accepted, in seconds (24 hours by default: Kubernetes
    /// projected tokens live one hour by default, at most 48).
    pub max_lifetime: u64,
}

impl ExternalTokenPolicy {
    /// A policy for tokens of `issuer` addressed to `audience`, with every asymmetric JOSE
    /// algorithm, 60 s of leeway and at most 24 hours of remaining life.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> ExternalTokenPolicy {
        ExternalTokenPolicy {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: AlgSet::all(),
            leeway: 60,
            max_lifetime: 24 * 3600,
        }
    }
}

/// A token that passed [`ExternalTokenVerifier::verify`].
#[derive(Clone, Debug)]
pub struct VerifiedExternalToken {
    /// All its claims (for the mapping rules).
    pub claims: Map<String, Value>,
    /// Its expiry.
    pub exp: UnixTime,
    /// The `kid` of the key that signed it.
    pub kid: Option<String>,
    /// The algorithm it was signed with.
    pub algorithm: Algorithm,
}

/// Verifies JWTs of one trusted external issuer (see the module documentation).
#[derive(Clone, Debug)]
pub struct ExternalTokenVerifier {
    policy: ExternalTokenPolicy,
}

impl ExternalTokenVerifier {
    /// A verifier with `policy`.
    pub fn new(policy: ExternalTokenPolicy) -> ExternalTokenVerifier {
        ExternalTokenVerifier { policy }
    }

    /// Verifies `token` with the issuer's `keys` at `now`.
    pub fn verify(&self, token: &str, keys: &VerificationKeys, now: UnixTime) -> Result<VerifiedExternalToken, Error> {
        let p = &self.policy;
        let (jws, alg, claims) = keys.verify_issued(
            token,
            TypRule::or_generic(TokenType::AccessToken),
            p.algorithms,
            "not on the trusted issuer's allow-list",
            &p.issuer,
        )?;
        let aud = Members(&claims).req_audiences()?;
        if !aud.contains(&p.audience) {
            return Err(Error::WrongAudience {
                expected: p.audience.clone(),
                found: aud.into_iter().map(|a| clip(&a, 256)).take(8).collect(),
            });
        }
        let times = trust::check_window(
            &claims,
            now,
            Window {
                leeway: p.leeway,
                max_lifetime: p.max_lifetime,
                token: "external token",
            },
        )?;
        Ok(VerifiedExternalToken {
            kid: jws.header().kid.clone(),
            algorithm: alg,
            exp: times.exp,
            claims,
        })
    }
}

/// One piece of an [`IdentityTemplate`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Claim(String),
}

/// A workload identifier with claim placeholders, e.g.
/// `spiffe://{td}/ns/{kubernetes.io.namespace}/sa/{kubernetes.io.serviceaccount.name}`:
/// `{td}` is this server's trust domain, any other `{path}` a claim by dotted path
/// ([`claim_at`]). Placeholders stand in the path only, never in the scheme or authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityTemplate {
    pieces: Vec<Piece>,
    trust_domain: String,
}

impl IdentityTemplate {
    /// Parses `template` for the trust domain `trust_domain`; refuses unbalanced braces,
    /// empty placeholders, a placeholder outside the path, and a template whose rendering
    /// (with a sample value for each claim) is not an identifier of `trust_domain`.
    pub fn parse(template: &str, trust_domain: &str) -> Result<IdentityTemplate, Error> {
        let bad = |reason: &str| Error::malformed(format!("identity template {:?}: {reason}", clip(template, 256)));
        let mut pieces = Vec::new();
        let mut rest = template.replace("{td}", trust_domain);
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    pieces.push(Piece::Literal(std::mem::take(&mut rest)));
                }
                Some(i) if rest[i..].starts_with('}') => return Err(bad("an unmatched '}'")),
                Some(i) => {
                    let end = rest[i..].find('}').ok_or_else(|| bad("an unmatched '{'"))? + i;
                    let path = &rest[i + 1..end];
                    if path.is_empty() || path.contains('{') || path.chars().any(|c| c.is_whitespace()) {
                        return Err(bad("a placeholder must be a claim path"));
                    }
                    if i > 0 {
                        pieces.push(Piece::Literal(rest[..i].to_owned()));
                    }
                    pieces.push(Piece::Claim(path.to_owned()));
                    rest = rest[end + 1..].to_owned();
                }
            }
        }
        let template = IdentityTemplate {
            pieces,
            trust_domain: trust_domain.to_owned(),
        };
        let authority_end = match template.pieces.first() {
            Some(Piece::Literal(first)) => first
                .find("://")
                .and_then(|s| first[s + 3..].find('/').map(|p| s + 3 + p)),
            _ => None,
        };
        if authority_end.is_none() {
            return Err(bad("the scheme, trust domain and first '/' must be literal"));
        }
        template
            .render_with(|_| Ok("sample".to_owned()))
            .map_err(|e| bad(&e.to_string()))?;
        Ok(template)
    }

    /// Renders the template with `claims`.
    pub fn render(&self, claims: &Map<String, Value>) -> Result<WorkloadId, Error> {
        self.render_with(|path| {
            let value = claim_at(claims, path).ok_or_else(|| Violation::UnsafeClaimValue {
                claim: clip(path, 128),
                reason: "absent",
            })?;
            safe_segment(path, value)
        })
    }

    fn render_with(&self, mut value: impl FnMut(&str) -> Result<String, Error>) -> Result<WorkloadId, Error> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Claim(path) => out.push_str(&value(path)?),
            }
        }
        let id = WorkloadId::parse(&out).map_err(|e| Violation::MappedIdentityInvalid { reason: e.to_string() })?;
        if id.trust_domain() != self.trust_domain {
            return Err(Violation::MappedIdentityInvalid {
                reason: format!(
                    "{} is not of the trust domain {}",
                    clip(id.as_str(), 256),
                    self.trust_domain
                ),
            }
            .into());
        }
        Ok(id)
    }
}

/// The text a claim value puts into an identifier: a string, number or boolean that cannot
/// forge a path segment (no `/`, `\`, `%`, `..`, whitespace or control characters, not
/// empty).
fn safe_segment(path: &str, value: &Value) -> Result<String, Error> {
    let unsafe_value = |reason| -> Error {
        Violation::UnsafeClaimValue {
            claim: clip(path, 128),
            reason,
        }
        .into()
    };
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err(unsafe_value("not a string")),
    };
    if text.is_empty() {
        return Err(unsafe_value("empty"));
    }
    if text.contains(['/', '\\', '%']) || text.contains("..") {
        return Err(unsafe_value("contains '/', '\\', '%' or '..'"));
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(unsafe_value("contains whitespace or control characters"));
    }
    Ok(text)
}

/// The claim at a dotted `path`: `a.b.c` is member `c` of member `b` of claim `a`; a member
/// name that itself contains dots (`kubernetes.io`) is matched whole, the longest name
/// first, so `kubernetes.io.namespace` reads `{"kubernetes.io": {"namespace": ..}}`.
pub fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let dots: Vec<usize> = path.match_indices('.').map(|(i, _)| i).collect();
    dots.iter().rev().find_map(|&i| match claims.get(&path[..i]) {
        Some(Value::Object(inner)) => claim_at(inner, &path[i + 1..]),
        _ => None,
    })
}

/// A condition on one claim: it equals one of `values` (a string, or the text of a number
/// or boolean; for an array claim, one of its elements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimCondition {
    /// The claim's dotted path ([`claim_at`]).
    pub claim: String,
    /// The accepted values.
    pub values: Vec<String>,
}

impl ClaimCondition {
    fn holds(&self, claims: &Map<String, Value>) -> bool {
        let matches = |v: &Value| match v {
            Value::String(s) => self.values.contains(s),
            Value::Number(_) | Value::Bool(_) => self.values.contains(&v.to_string()),
            _ => false,
        };
        match claim_at(claims, &self.claim) {
            Some(Value::Array(items)) => items.iter().any(matches),
            Some(v) => matches(v),
            None => false,
        }
    }
}

/// A mapping rule: when every condition holds, the token maps to the template's identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingRule {
    /// The identifier to render.
    pub template: IdentityTemplate,
    /// The conditions (all must hold).
    pub require: Vec<ClaimCondition>,
}

/// The workload identifier `claims` map to: the first rule whose conditions all hold
/// renders it (a failed rendering refuses, it does not fall through to the next rule). No
/// rule matching is [`Violation::NoMappingRule`].
pub fn map_identity(rules: &[MappingRule], claims: &Map<String, Value>) -> Result<WorkloadId, Error> {
    rules
        .iter()
        .find(|r| r.require.iter().all(|c| c.holds(claims)))
        .ok_or(Error::OAuth(Violation::NoMappingRule))?
        .template
        .render(claims)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    const K8S: &str = "spiffe://{td}/ns/{kubernetes.io.namespace}/sa/{kubernetes.io.serviceaccount.name}";

    fn sa(ns: Value, name: Value) -> Map<String, Value> {
        json!({"iss": "https://k8s.example", "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name}}})
            .as_object()
            .unwrap()
            .clone()
    }

    fn kind(r: Result<WorkloadId, Error>) -> &'static str {
        r.unwrap_err().kind()
    }

    #[test]
    fn kubernetes_service_account_maps() {
        let t = IdentityTemplate::parse(K8S, "example.org").unwrap();
        let id = t.render(&sa(json!("prod"), json!("billing"))).unwrap();
        assert_eq!(id.as_str(), "spiffe://example.org/ns/prod/sa/billing");
        let wimse = IdentityTemplate::parse("wimse://{td}/ci/{repository_owner}/{run}", "example.org").unwrap();
        let ci = json!({"repository_owner": "octo", "run": 42});
        assert_eq!(
            wimse.render(ci.as_object().unwrap()).unwrap().as_str(),
            "wimse://example.org/ci/octo/42"
        );
    }

    #[test]
    fn claim_values_cannot_forge_segments() {
        let t = IdentityTemplate::parse(K8S, "example.org").unwrap();
        for bad in ["a/b", "..", "a..b", "%2F", "a\\b", "", "a b", "a\nb", "a\u{7f}"] {
            assert_eq!(
                kind(t.render(&sa(json!("prod"), json!(bad)))),
                "unsafe_claim_value",
                "{bad:?}"
            );
        }
        assert_eq!(kind(t.render(&sa(json!({"x": 1}), json!("a")))), "unsafe_claim_value");
        assert_eq!(kind(t.render(&sa(json!("prod"), Value::Null))), "unsafe_claim_value");
        let missing = json!({}).as_object().unwrap().clone();
        assert_eq!(kind(t.render(&missing)), "unsafe_claim_value");
        // Characters a SPIFFE path refuses are caught by the identifier parser.
        assert_eq!(
            kind(t.render(&sa(json!("prod"), json!("a:b")))),
            "mapped_identity_invalid"
        );
    }

    #[test]
    fn templates_are_checked() {
        for bad in [
            "spiffe://{td}/ns/{ns",
            "spiffe://{td}/ns/}",
            "spiffe://{td}/ns/{}",
            "spiffe://{host}/ns/{ns}",
            "{scheme}://example.org/x",
            "spiffe://other.org/ns/{ns}",
            "https://example.org/{ns}",
            "spiffe://{td}",
        ] {
            assert!(IdentityTemplate::parse(bad, "example.org").is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_and_conditions() {
        let rule = |ns: &[&str]| MappingRule {
            template: IdentityTemplate::parse(K8S, "example.org").unwrap(),
            require: vec![ClaimCondition {
                claim: "kubernetes.io.namespace".into(),
                values: ns.iter().map(|s| (*s).to_owned()).collect(),
            }],
        };
        let rules = [rule(&["prod", "staging"])];
        assert!(map_identity(&rules, &sa(json!("staging"), json!("a"))).is_ok());
        assert_eq!(
            kind(map_identity(&rules, &sa(json!("dev"), json!("a")))),
            "no_mapping_rule"
        );
        assert_eq!(
            kind(map_identity(&[], &sa(json!("dev"), json!("a")))),
            "no_mapping_rule"
        );
        let groups = json!({"groups": ["x", "admins"], "n": 3, "b": true});
        let c = |claim: &str, v: &str| ClaimCondition {
            claim: claim.into(),
            values: vec![v.into()],
        };
        let m = groups.as_object().unwrap();
        assert!(c("groups", "admins").holds(m) && c("n", "3").holds(m) && c("b", "true").holds(m));
        assert!(!c("groups", "root").holds(m) && !c("missing", "x").holds(m));
    }
}
