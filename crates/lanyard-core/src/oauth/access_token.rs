//! JWT access tokens (RFC 9068): the claims, issuance by the authorization server, and
//! verification by a resource server.
//!
//! ```text
//! header: {"alg": <asymmetric>, "kid": ..., "typ": "at+jwt"}
//! claims: {"iss", "sub", "aud" (one or many), "client_id", "iat", "exp", "jti",
//!          "scope"?, "nbf"?, "cnf"? {"jkt" | "x5t#S256"}, "act"? {"sub", "iss"?, "act"?}, ...}
//! ```
//!
//! Verification follows RFC 9068 §4: `typ` exactly `at+jwt` (media-type rules: any case,
//! with or without `application/`; a generic `JWT` is `wrong_typ`, another token type's
//! `typ` such as `wpt+jwt` is `typ_confusion`), `alg` on the allow-list, the signature by
//! one of the authorization server's keys (by `kid`), `iss` exactly the issuer, `aud`
//! containing an identifier of this resource server, `exp`/`nbf`/`iat` with bounded skew,
//! and the required claims present. Binding (`cnf`) and scope are the caller's next steps:
//! [`VerifiedAccessToken::check_binding`], [`VerifiedAccessToken::require_scope`].
//!
//! `act` (RFC 8693 §4.1) is kept as a typed chain of [`Actor`]s: the outermost is the
//! current actor (the only one to use for access control), nested ones are the prior
//! actors of a delegation chain. The same shape serves `may_act` (§4.4).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::crypto::{CryptoProvider, SigningKey};
use crate::error::Error;
use crate::jose::json::Members;
use crate::jose::{AlgSet, Algorithm, TokenType, TypRule, sign_compact};
use crate::oauth::confirmation::{Confirmation, PresentedProof, check_unbound};
use crate::oauth::keys::VerificationKeys;
use crate::oauth::scope::Scope;
use crate::oauth::violation::clip;
use crate::time::UnixTime;
use crate::trust::{self, Window};

/// The deepest `act` chain accepted or issued.
pub const MAX_ACTOR_DEPTH: usize = 16;

/// The claim names [`AccessTokenClaims`] models; `extra` may not repeat them.
const REGISTERED: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "scope",
    "iat",
    "exp",
    "nbf",
    "jti",
    "cnf",
    "act",
    "typ",
];

/// One or more audiences (`aud`, RFC 7519 §4.1.3): serialized as a string when there is
/// one, as an array otherwise. Never empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Audience(Vec<String>);

impl Audience {
    /// A single audience.
    pub fn one(audience: impl Into<String>) -> Audience {
        Audience(vec![audience.into()])
    }

    /// Several audiences; at least one, none empty, no repeats.
    pub fn new(audiences: Vec<String>) -> Result<Audience, Error> {
        if audiences.is_empty() {
            return Err(Error::invalid_claim("aud", "must name at least one audience"));
        }
        if audiences.iter().any(String::is_empty) {
            return Err(Error::invalid_claim("aud", "audiences must not be empty strings"));
        }
        for (i, a) in audiences.iter().enumerate() {
            if audiences[..i].contains(a) {
                return Err(Error::invalid_claim("aud", format!("{:?} appears twice", clip(a, 64))));
            }
        }
        Ok(Audience(audiences))
    }

    /// Whether `audience` is one of them.
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }

    /// The audiences, in order.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    fn from_members(m: Members<'_>) -> Result<Audience, Error> {
        let aud = m.audiences()?.ok_or(Error::MissingClaim("aud"))?;
        Audience::new(aud.into_iter().map(str::to_owned).collect())
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Audience, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let list = match OneOrMany::deserialize(d)? {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        };
        Audience::new(list).map_err(serde::de::Error::custom)
    }
}

/// An actor (`act`, RFC 8693 §4.1): the party acting for the token's subject, with the
/// prior actors of a delegation chain nested in `act`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The actor's subject identifier.
    pub sub: Option<String>,
    /// The issuer that identifies the actor.
    pub iss: Option<String>,
    /// The prior actor, if this one acts through a chain.
    pub act: Option<Box<Actor>>,
    /// Other identity claims of the actor (`client_id`, ...).
    pub extra: Map<String, Value>,
}

impl Actor {
    /// An actor identified by `sub`.
    pub fn new(sub: impl Into<String>) -> Actor {
        Actor {
            sub: Some(sub.into()),
            ..Actor::default()
        }
    }

    /// This actor, acting through `prior` (which becomes the nested `act`).
    pub fn acting_after(mut self, prior: Option<Actor>) -> Actor {
        self.act = prior.map(Box::new);
        self
    }

    /// The chain, current actor first.
    pub fn chain(&self) -> impl Iterator<Item = &Actor> {
        std::iter::successors(Some(self), |a| a.act.as_deref())
    }

    /// The number of actors in the chain.
    pub fn depth(&self) -> usize {
        self.chain().count()
    }

    /// Reads an `act` (or `may_act`) object, refusing chains deeper than
    /// [`MAX_ACTOR_DEPTH`].
    pub fn from_value(value: &Value, claim: &'static str) -> Result<Actor, Error> {
        Actor::from_value_at(value, claim, 1)
    }

    fn from_value_at(value: &Value, claim: &'static str, depth: usize) -> Result<Actor, Error> {
        if depth > MAX_ACTOR_DEPTH {
            return Err(Error::invalid_claim(
                claim,
                format!("the actor chain is deeper than {MAX_ACTOR_DEPTH}"),
            ));
        }
        let Value::Object(map) = value else {
            return Err(Error::malformed(format!("{claim} must be a JSON object")));
        };
        let m = Members(map);
        let act = match map.get("act") {
            Some(inner) => Some(Box::new(Actor::from_value_at(inner, claim, depth + 1)?)),
            None => None,
        };
        let extra = map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "sub" | "iss" | "act"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Actor {
            sub: m.str("sub")?.map(str::to_owned),
            iss: m.str("iss")?.map(str::to_owned),
            act,
            extra,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = self.extra.clone();
        if let Some(sub) = &self.sub {
            map.insert("sub".into(), Value::String(sub.clone()));
        }
        if let Some(iss) = &self.iss {
            map.insert("iss".into(), Value::String(iss.clone()));
        }
        if let Some(act) = &self.act {
            map.insert("act".into(), act.to_value());
        }
        Value::Object(map)
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Actor, D::Error> {
        let value = Value::deserialize(d)?;
        Actor::from_value(&value, "act").map_err(serde::de::Error::custom)
    }
}

/// The claims of an RFC 9068 access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessTokenClaims {
    /// The issuer identifier of the authorization server.
    pub iss: String,
    /// The subject: the resource owner, or the client itself for `client_credentials`
    /// (RFC 9068 §2.2).
    pub sub: String,
    /// The resource servers the token is for.
    pub aud: Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// The granted scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// Issued at.
    pub iat: UnixTime,
    /// Expiry.
    pub exp: UnixTime,
    /// Not before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<UnixTime>,
    /// The token's unique identifier.
    pub jti: String,
    /// The key or certificate the token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The current actor, for delegated tokens (RFC 8693 §4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AccessTokenClaims {
    /// Reads the claims of a token (already parsed strictly), checking the types of the
    /// registered claims and requiring `iss`, `sub`, `aud`, `client_id`, `iat`, `exp`,
    /// `jti` (RFC 9068 §2.2).
    pub fn from_claims(claims: &Map<String, Value>) -> Result<AccessTokenClaims, Error> {
        let m = Members(claims);
        let scope = m.str("scope")?.map(Scope::parse).transpose()?;
        let cnf = match claims.get("cnf") {
            Some(value @ Value::Object(_)) => Some(
                serde_json::from_value::<Confirmation>(value.clone())
                    .map_err(|e| Error::invalid_claim("cnf", e.to_string()))?,
            ),
            Some(_) => return Err(Error::malformed("cnf must be a JSON object")),
            None => None,
        };
        let act = claims.get("act").map(|v| Actor::from_value(v, "act")).transpose()?;
        Ok(AccessTokenClaims {
            iss: m.req_non_empty("iss")?,
            sub: m.req_non_empty("sub")?,
            aud: Audience::from_members(m)?,
            client_id: m.req_non_empty("client_id")?,
            scope,
            iat: UnixTime(m.req_date("iat")?),
            exp: UnixTime(m.req_date("exp")?),
            nbf: m.date("nbf")?.map(UnixTime),
            jti: m.req_non_empty("jti")?,
            cnf,
            act,
            extra: claims
                .iter()
                .filter(|(k, _)| !REGISTERED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The scope, or the empty scope.
    pub fn scope_or_empty(&self) -> Scope {
        self.scope.clone().unwrap_or_default()
    }
}

/// Signs an RFC 9068 access token with header `{alg, kid, typ: "at+jwt"}`.
///
/// Refuses claims a verifier would refuse or misread: an empty `iss`, `sub`, `client_id`
/// or `jti`, `exp` not after `iat`, an `act` chain deeper than [`MAX_ACTOR_DEPTH`], and an
/// `extra` claim that repeats a registered name (the JSON would hold it twice).
pub fn issue_access_token(key: &dyn SigningKey, kid: &str, claims: &AccessTokenClaims) -> Result<String, Error> {
    check_issuable(
        &[
            ("iss", &claims.iss),
            ("sub", &claims.sub),
            ("client_id", &claims.client_id),
            ("jti", &claims.jti),
        ],
        (claims.iat, claims.exp),
        claims.act.as_ref(),
        (&claims.extra, &REGISTERED),
    )?;
    sign_compact(Some(TokenType::AccessToken.typ()), Some(kid), claims, key)
}

/// What the issuers of this module's token types refuse before signing, because a verifier
/// would refuse or misread it: an empty `required` claim, `exp` not after `iat`, an `act`
/// chain deeper than [`MAX_ACTOR_DEPTH`], and an `extra` claim that repeats one of the
/// `registered` names (the JSON would hold it twice).
pub(crate) fn check_issuable(
    required: &[(&'static str, &str)],
    (iat, exp): (UnixTime, UnixTime),
    act: Option<&Actor>,
    (extra, registered): (&Map<String, Value>, &[&str]),
) -> Result<(), Error> {
    if let Some((name, _)) = required.iter().find(|(_, value)| value.is_empty()) {
        return Err(Error::invalid_claim(name, "must not be empty"));
    }
    if exp <= iat {
        return Err(Error::invalid_claim("exp", "must be after iat"));
    }
    if act.is_some_and(|a| a.depth() > MAX_ACTOR_DEPTH) {
        return Err(Error::invalid_claim("act", format!("deeper than {MAX_ACTOR_DEPTH}")));
    }
    if let Some(name) = extra.keys().find(|k| registered.contains(&k.as_str())) {
        return Err(Error::invalid_claim("extra", format!("{name:?} is a registered claim")));
    }
    Ok(())
}

/// What a resource server accepts.
#[derive(Clone, Debug)]
pub struct AccessTokenPolicy {
    /// The authorization server's issuer identifier; `iss` must equal it exactly.
    pub issuer: String,
    /// This resource server's identifiers; `aud` must contain one of them (RFC 9068 §4).
    pub audiences: Vec<String>,
    /// Allowed algorithms (every asymmetric algorithm by default).
    pub algorithms: AlgSet,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (60 by default).
    pub leeway: u64,
    /// The longest remaining lifetime accepted, if limited (not by default).
    pub max_lifetime: Option<u64>,
}

impl AccessTokenPolicy {
    /// A policy for tokens from `issuer` to the resource `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> AccessTokenPolicy {
        AccessTokenPolicy {
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            algorithms: AlgSet::all(),
            leeway: 60,
            max_lifetime: None,
        }
    }
}

/// An access token whose signature, type, issuer, audience and times have been checked.
#[derive(Clone, Debug)]
pub struct VerifiedAccessToken {
    /// The claims.
    pub claims: AccessTokenClaims,
    /// The `kid` of the key that signed it.
    pub kid: Option<String>,
    /// The algorithm it was signed with.
    pub algorithm: Algorithm,
}

impl VerifiedAccessToken {
    /// The granted scope (empty when the token has none).
    pub fn scope(&self) -> Scope {
        self.claims.scope_or_empty()
    }

    /// Succeeds when the token grants every token of `required` (`insufficient_scope`
    /// otherwise, RFC 6750 §3.1).
    pub fn require_scope(&self, required: &Scope) -> Result<(), Error> {
        self.scope().require(required)
    }

    /// Checks the token's binding against what the request presented (RFC 9449 §7.1,
    /// RFC 8705 §3): a bound token needs its proof, a bearer token refuses a DPoP proof.
    pub fn check_binding(&self, presented: &PresentedProof<'_>, provider: &dyn CryptoProvider) -> Result<(), Error> {
        match &self.claims.cnf {
            Some(cnf) => cnf.check(presented, provider),
            None => check_unbound(presented),
        }
    }
}

/// Verifies RFC 9068 access tokens for one resource server.
#[derive(Clone, Debug)]
pub struct AccessTokenVerifier {
    policy: AccessTokenPolicy,
}

impl AccessTokenVerifier {
    /// A verifier with `policy`.
    pub fn new(policy: AccessTokenPolicy) -> AccessTokenVerifier {
        AccessTokenVerifier { policy }
    }

    /// The policy.
    pub fn policy(&self) -> &AccessTokenPolicy {
        &self.policy
    }

    /// Verifies `token` against the authorization server's `keys` at `now`.
    pub fn verify(&self, token: &str, keys: &VerificationKeys, now: UnixTime) -> Result<VerifiedAccessToken, Error> {
        let p = &self.policy;
        let (jws, alg, claims) = keys.verify_issued(
            token,
            TypRule::exactly(TokenType::AccessToken),
            p.algorithms,
            "not on the access-token allow-list",
            &p.issuer,
        )?;
        let aud = Audience::from_members(Members(&claims))?;
        if !p.audiences.iter().any(|a| aud.contains(a)) {
            return Err(Error::WrongAudience {
                expected: p.audiences.join(" "),
                found: aud.0,
            });
        }
        trust::check_window(
            &claims,
            now,
            Window {
                leeway: p.leeway,
                max_lifetime: p.max_lifetime.unwrap_or(u64::MAX),
                token: "access token",
            },
        )?;
        Ok(VerifiedAccessToken {
            claims: AccessTokenClaims::from_claims(&claims)?,
            kid: jws.header().kid.clone(),
            algorithm: alg,
        })
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audience_is_a_string_or_a_list() {
        assert_eq!(serde_json::to_value(Audience::one("a")).unwrap(), json!("a"));
        let two = Audience::new(vec!["a".into(), "b".into()]).unwrap();
        assert_eq!(serde_json::to_value(&two).unwrap(), json!(["a", "b"]));
        assert_eq!(
            serde_json::from_value::<Audience>(json!("a")).unwrap(),
            Audience::one("a")
        );
        assert_eq!(serde_json::from_value::<Audience>(json!(["a", "b"])).unwrap(), two);
        for bad in [json!([]), json!([""]), json!(["a", "a"]), json!(5)] {
            assert!(serde_json::from_value::<Audience>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn actors_nest_and_are_bounded() {
        let chain =
            Actor::new("spiffe://example.org/agent").acting_after(Some(Actor::new("spiffe://example.org/gateway")));
        let value = serde_json::to_value(&chain).unwrap();
        assert_eq!(
            value,
            json!({"sub": "spiffe://example.org/agent", "act": {"sub": "spiffe://example.org/gateway"}})
        );
        let back: Actor = serde_json::from_value(value).unwrap();
        assert_eq!(back, chain);
        assert_eq!(back.depth(), 2);
        assert_eq!(
            back.chain().filter_map(|a| a.sub.as_deref()).collect::<Vec<_>>(),
            ["spiffe://example.org/agent", "spiffe://example.org/gateway"]
        );
        let mut deep = json!({"sub": "last"});
        for i in 0..MAX_ACTOR_DEPTH {
            deep = json!({"sub": format!("a{i}"), "act": deep});
        }
        assert_eq!(Actor::from_value(&deep, "act").unwrap_err().kind(), "invalid_claim");
        let extra: Actor = serde_json::from_value(json!({"sub": "x", "client_id": "c"})).unwrap();
        assert_eq!(extra.extra.get("client_id"), Some(&json!("c")));
        assert!(Actor::from_value(&json!({"sub": 5}), "act").is_err());
    }

    #[test]
    fn claims_round_trip_through_json() {
        let claims = AccessTokenClaims {
            iss: "https://as.example".into(),
            sub: "client-1".into(),
            aud: Audience::one("https://rs.example"),
            client_id: "client-1".into(),
            scope: Some(Scope::parse("read").unwrap()),
            iat: UnixTime(100),
            exp: UnixTime(400),
            nbf: None,
            jti: "j1".into(),
            cnf: Some(Confirmation::dpop("thumb")),
            act: Some(Actor::new("agent")),
            extra: Map::from_iter([("tenant".to_owned(), json!("t1"))]),
        };
        let Value::Object(map) = serde_json::to_value(&claims).unwrap() else {
            panic!("not an object")
        };
        assert_eq!(map["cnf"], json!({"jkt": "thumb"}));
        assert_eq!(map["scope"], json!("read"));
        assert!(!map.contains_key("nbf"));
        assert_eq!(AccessTokenClaims::from_claims(&map).unwrap(), claims);
        let mut missing = map.clone();
        missing.remove("client_id");
        assert_eq!(
            AccessTokenClaims::from_claims(&missing).unwrap_err(),
            Error::MissingClaim("client_id")
        );
    }
}
