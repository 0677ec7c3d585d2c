//! Transaction Tokens (draft-ietf-oauth-transaction-tokens-11): the claims, issuance by a
//! Transaction Token Service (TTS), verification by a workload that receives one, the
//! replacement rules, and the `Txn-Token` header.
//!
//! ```text
//! header: {"alg": <asymmetric>, "kid": ..., "typ": "txntoken+jwt"}
//! claims: {"iat", "exp", "aud": <trust domain>, "txn", "sub", "scope", "req_wl",
//!          "tctx"? {...}, "rctx"? {...}, "iss"?, ...}
//! ```
//!
//! A receiving workload checks (draft §"Txn-Token Validation", plus the `typ` check RFC 8725
//! §3.11 asks for): `typ` exactly `txntoken+jwt` (another token type's `typ` is
//! `typ_confusion`), `alg` on the allow-list, the signature by one of the TTS's keys, `aud`
//! naming its own trust domain, `exp`/`iat` with bounded skew and a bounded remaining
//! lifetime, and the required claims present with their types (`req_wl` a single string,
//! `tctx`/`rctx` objects). Claims it does not understand are kept in `extra` and ignored.
//!
//! A Txn-Token is neither an authentication credential nor an access token: it travels in
//! its own `Txn-Token` header ([`extract_txn_token`]: exactly one field holding exactly one
//! token), never in `Authorization`, and is forwarded unmodified.
//!
//! Replacement (draft §"Replacing Txn-Tokens"): a TTS given a Txn-Token as the subject token
//! may narrow the scope and add context, but never changes `txn`, `sub` or `aud`, never
//! widens `scope` and never replaces an expired token ([`check_replacement`]).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::crypto::SigningKey;
use crate::error::Error;
use crate::jose::json::Members;
use crate::jose::{AlgSet, Algorithm, TokenType, TypRule, sign_compact};
use crate::oauth::access_token::check_issuable;
use crate::oauth::keys::VerificationKeys;
use crate::oauth::scope::Scope;
use crate::oauth::violation::{Violation, clip};
use crate::time::UnixTime;
use crate::trust::{self, Window};

/// The HTTP field that carries a Txn-Token (draft §"Txn-Token HTTP Header").
pub const TXN_TOKEN_HEADER: &str = "Txn-Token";

/// The Txn-Token lifetime a TTS issues by default, in seconds ("short-lived": the draft
/// speaks of minutes or less).
pub const DEFAULT_TXN_TOKEN_TTL: u64 = 60;

/// The longest remaining lifetime a verifier accepts by default, in seconds.
pub const MAX_TXN_TOKEN_LIFETIME: u64 = 600;

/// The largest `request_context` / `request_details` object accepted, in bytes of JSON.
pub const MAX_CONTEXT_BYTES: usize = 8 * 1024;

/// The claim names [`TxnTokenClaims`] models; `extra` may not repeat them.
const REGISTERED: [&str; 11] = [
    "iss", "iat", "exp", "aud", "txn", "sub", "scope", "req_wl", "tctx", "rctx", "typ",
];

/// The claims of a Txn-Token (draft-ietf-oauth-transaction-tokens-11 §"Txn-Token Format").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TxnTokenClaims {
    /// The TTS, when it names itself (OPTIONAL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Issued at.
    pub iat: UnixTime,
    /// Expiry.
    pub exp: UnixTime,
    /// The trust domain the token is valid in.
    pub aud: String,
    /// The transaction's unique identifier (RFC 8417 §2.2), kept across replacements.
    pub txn: String,
    /// The principal of the transaction, unique within the trust domain.
    pub sub: String,
    /// What the transaction may do (RFC 8693 §4.2 syntax); never wider than the subject
    /// token's.
    pub scope: Scope,
    /// The workload that requested the token (a single string, as -11 has it).
    pub req_wl: String,
    /// The transaction context, computed by the TTS (from `request_details`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tctx: Option<Map<String, Value>>,
    /// The request context (from `request_context`: `req_ip`, `authn`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rctx: Option<Map<String, Value>>,
    /// Every other claim (recipients ignore the ones they do not understand).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TxnTokenClaims {
    /// Reads the claims of a token (already parsed strictly), checking the types of the
    /// registered claims and requiring `iat`, `exp`, `aud`, `txn`, `sub`, `scope` and
    /// `req_wl`.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<TxnTokenClaims, Error> {
        let m = Members(claims);
        let aud = match m.audiences()?.ok_or(Error::MissingClaim("aud"))?.as_slice() {
            [one] if !one.is_empty() => (*one).to_owned(),
            _ => return Err(Error::invalid_claim("aud", "must name exactly one trust domain")),
        };
        Ok(TxnTokenClaims {
            iss: m.str("iss")?.map(str::to_owned),
            iat: UnixTime(m.req_date("iat")?),
            exp: UnixTime(m.req_date("exp")?),
            aud,
            txn: m.req_non_empty("txn")?,
            sub: m.req_non_empty("sub")?,
            scope: Scope::parse(m.req_str("scope")?)?,
            req_wl: m.req_non_empty("req_wl")?,
            tctx: m.object("tctx")?.cloned(),
            rctx: m.object("rctx")?.cloned(),
            extra: claims
                .iter()
                .filter(|(k, _)| !REGISTERED.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

/// Signs a Txn-Token with header `{alg, kid, typ: "txntoken+jwt"}`.
///
/// Refuses claims a verifier would refuse or misread: an empty `aud`, `txn`, `sub` or
/// `req_wl`, `exp` not after `iat`, and an `extra` claim that repeats a registered name.
pub fn issue_txn_token(key: &dyn SigningKey, kid: &str, claims: &TxnTokenClaims) -> Result<String, Error> {
    check_issuable(
        &[
            ("aud", &claims.aud),
            ("txn", &claims.txn),
            ("sub", &claims.sub),
            ("req_wl", &claims.req_wl),
        ],
        (claims.iat, claims.exp),
        None,
        (&claims.extra, &REGISTERED),
    )?;
    sign_compact(Some(TokenType::TxnToken.typ()), Some(kid), claims, key)
}

/// What a receiving workload (or the TTS, for a replacement) accepts.
#[derive(Clone, Debug)]
pub struct TxnTokenPolicy {
    /// This workload's trust domain; `aud` must equal it.
    pub trust_domain: String,
    /// Allowed algorithms (every asymmetric algorithm by default).
    pub algorithms: AlgSet,
    /// Clock skew tolerated on `exp` and `iat`, in seconds (30 by default: the tokens are
    /// short-lived).
    pub leeway: u64,
    /// The longest remaining lifetime accepted ([`MAX_TXN_TOKEN_LIFETIME`] by default).
    pub max_lifetime: u64,
}

impl TxnTokenPolicy {
    /// A policy for Txn-Tokens of `trust_domain`.
    pub fn new(trust_domain: impl Into<String>) -> TxnTokenPolicy {
        TxnTokenPolicy {
            trust_domain: trust_domain.into(),
            algorithms: AlgSet::all(),
            leeway: 30,
            max_lifetime: MAX_TXN_TOKEN_LIFETIME,
        }
    }
}

/// A Txn-Token whose signature, type, audience and times have been checked.
#[derive(Clone, Debug)]
pub struct VerifiedTxnToken {
    /// The claims.
    pub claims: TxnTokenClaims,
    /// The `kid` of the key that signed it.
    pub kid: Option<String>,
    /// The algorithm it was signed with.
    pub algorithm: Algorithm,
}

/// Verifies Txn-Tokens for one trust domain.
#[derive(Clone, Debug)]
pub struct TxnTokenVerifier {
    policy: TxnTokenPolicy,
}

impl TxnTokenVerifier {
    /// A verifier with `policy`.
    pub fn new(policy: TxnTokenPolicy) -> TxnTokenVerifier {
        TxnTokenVerifier { policy }
    }

    /// The policy.
    pub fn policy(&self) -> &TxnTokenPolicy {
        &self.policy
    }

    /// Verifies `token` against the TTS's `keys` at `now`.
    pub fn verify(&self, token: &str, keys: &VerificationKeys, now: UnixTime) -> Result<VerifiedTxnToken, Error> {
        let p = &self.policy;
        let (jws, alg) = keys.verify_typed(
            token,
            TypRule::exactly(TokenType::TxnToken),
            p.algorithms,
            "not on the Txn-Token allow-list",
        )?;
        let claims = jws.claims()?;
        let aud = Members(&claims).req_audiences()?;
        if aud.len() != 1 || aud[0] != p.trust_domain {
            return Err(Error::WrongAudience {
                expected: p.trust_domain.clone(),
                found: aud.into_iter().map(|a| clip(&a, 256)).collect(),
            });
        }
        trust::check_window(
            &claims,
            now,
            Window {
                leeway: p.leeway,
                max_lifetime: p.max_lifetime,
                token: "Txn-Token",
            },
        )?;
        Ok(VerifiedTxnToken {
            claims: TxnTokenClaims::from_claims(&claims)?,
            kid: jws.header().kid.clone(),
            algorithm: alg,
        })
    }
}

/// Checks that `replacement` may replace `previous` at `now` (draft-ietf-oauth-transaction-
/// tokens-11 §"Replacing Txn-Tokens"): `previous` has not expired (no leeway: an expired
/// token is never replaced), `txn`, `sub` and `aud` are unchanged, and the scope is not
/// wider.
pub fn check_replacement(previous: &TxnTokenClaims, replacement: &TxnTokenClaims, now: UnixTime) -> Result<(), Error> {
    if now >= previous.exp {
        return Err(Error::Expired {
            exp: previous.exp.as_secs(),
            now: now.as_secs(),
        });
    }
    for (claim, old, new) in [
        ("txn", &previous.txn, &replacement.txn),
        ("sub", &previous.sub, &replacement.sub),
        ("aud", &previous.aud, &replacement.aud),
    ] {
        if old != new {
            return Err(Violation::ReplacementChanges { claim }.into());
        }
    }
    check_not_wider(&replacement.scope, &previous.scope)
}

/// Succeeds when `requested` grants nothing outside `allowed` ([`Violation::ScopeWidened`]
/// otherwise, `invalid_scope`).
pub fn check_not_wider(requested: &Scope, allowed: &Scope) -> Result<(), Error> {
    let added = requested.difference(allowed);
    if added.is_empty() {
        Ok(())
    } else {
        Err(Violation::ScopeWidened {
            added: added.to_string(),
        }
        .into())
    }
}

/// Reads a `request_context` or `request_details` parameter (draft -11 §"Txn-Token
/// Request": a JSON object, form-encoded, no longer base64url since -07): at most
/// [`MAX_CONTEXT_BYTES`], an object, parsed strictly (duplicate members refuse).
pub fn parse_context_object(name: &'static str, value: &str) -> Result<Map<String, Value>, Error> {
    if value.len() > MAX_CONTEXT_BYTES {
        return Err(Violation::InvalidParameter {
            name,
            reason: format!("longer than {MAX_CONTEXT_BYTES} bytes"),
        }
        .into());
    }
    crate::jose::json::parse_object(value.as_bytes(), name).map_err(|e| {
        Violation::InvalidParameter {
            name,
            reason: format!("not a JSON object: {e}"),
        }
        .into()
    })
}

/// Finds the Txn-Token among `headers` (name, value pairs; names compared
/// case-insensitively): `Ok(None)` when there is none; refused when the field appears
/// twice, holds more than one token (a list, or spaces), or is not a compact JWS.
pub fn extract_txn_token<'a, I>(headers: I) -> Result<Option<&'a str>, Error>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let mut found = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(TXN_TOKEN_HEADER) {
            crate::wimse::http::store_once(&mut found, TXN_TOKEN_HEADER, value)?;
        }
    }
    let Some(token) = found else { return Ok(None) };
    let is_jws_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    if token.is_empty() || !token.bytes().all(is_jws_char) || token.bytes().filter(|b| *b == b'.').count() != 2 {
        return Err(Error::Header {
            name: TXN_TOKEN_HEADER,
            reason: "must hold exactly one Txn-Token (a compact JWS)",
        });
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn claims() -> TxnTokenClaims {
        TxnTokenClaims {
            iss: None,
            iat: UnixTime(1_000),
            exp: UnixTime(1_060),
            aud: "example.org".into(),
            txn: "97053963-771d-49cc-a4e3-20aad399c312".into(),
            sub: "d084sdrt234fsaw34tr23t".into(),
            scope: Scope::parse("trade.stocks").unwrap(),
            req_wl: "spiffe://example.org/gateway".into(),
            tctx: Some(Map::from_iter([("action".to_owned(), json!("BUY"))])),
            rctx: Some(Map::from_iter([("req_ip".to_owned(), json!("69.151.72.123"))])),
            extra: Map::new(),
        }
    }

    #[test]
    fn claims_round_trip_and_require_the_registered_ones() {
        let Value::Object(map) = serde_json::to_value(claims()).unwrap() else {
            panic!("not an object")
        };
        assert_eq!(map["scope"], json!("trade.stocks"));
        assert!(!map.contains_key("iss"));
        assert_eq!(TxnTokenClaims::from_claims(&map).unwrap(), claims());
        for required in ["iat", "exp", "aud", "txn", "sub", "scope", "req_wl"] {
            let mut missing = map.clone();
            missing.remove(required);
            assert_eq!(
                TxnTokenClaims::from_claims(&missing).unwrap_err(),
                Error::MissingClaim(required),
                "{required}"
            );
        }
        let mut listed = map.clone();
        listed.insert("req_wl".into(), json!(["a", "b"]));
        assert_eq!(TxnTokenClaims::from_claims(&listed).unwrap_err().kind(), "malformed");
        let mut two = map.clone();
        two.insert("aud".into(), json!(["example.org", "other.org"]));
        assert_eq!(TxnTokenClaims::from_claims(&two).unwrap_err().kind(), "invalid_claim");
    }

    #[test]
    fn replacement_keeps_txn_sub_aud_and_never_widens() {
        let before = claims();
        let now = UnixTime(1_030);
        let mut narrower = before.clone();
        narrower.scope = Scope::empty();
        check_replacement(&before, &narrower, now).unwrap();
        for (claim, change) in [
            (
                "txn",
                Box::new(|c: &mut TxnTokenClaims| c.txn = "other".into()) as Box<dyn Fn(&mut TxnTokenClaims)>,
            ),
            ("sub", Box::new(|c: &mut TxnTokenClaims| c.sub = "other".into())),
            ("aud", Box::new(|c: &mut TxnTokenClaims| c.aud = "other.org".into())),
        ] {
            let mut changed = before.clone();
            change(&mut changed);
            assert_eq!(
                check_replacement(&before, &changed, now).unwrap_err(),
                Error::OAuth(Violation::ReplacementChanges { claim })
            );
        }
        let mut wider = before.clone();
        wider.scope = Scope::parse("trade.stocks admin").unwrap();
        assert_eq!(
            check_replacement(&before, &wider, now).unwrap_err().kind(),
            "scope_widened"
        );
        assert_eq!(
            check_replacement(&before, &narrower, UnixTime(1_060))
                .unwrap_err()
                .kind(),
            "expired"
        );
    }

    #[test]
    fn the_header_holds_exactly_one_token() {
        let one: [(&str, &[u8]); 2] = [("txn-token", b"a.b.c"), ("accept", b"*/*")];
        assert_eq!(extract_txn_token(one).unwrap(), Some("a.b.c"));
        assert_eq!(extract_txn_token([("accept", b"*/*".as_slice())]).unwrap(), None);
        for bad in [
            vec![("Txn-Token", b"a.b.c".as_slice()), ("txn-token", b"d.e.f".as_slice())],
            vec![("Txn-Token", b"a.b.c, d.e.f".as_slice())],
            vec![("Txn-Token", b"a.b.c d.e.f".as_slice())],
            vec![("Txn-Token", b"Bearer a.b.c".as_slice())],
            vec![("Txn-Token", b"a.b".as_slice())],
            vec![("Txn-Token", b"".as_slice())],
        ] {
            assert_eq!(extract_txn_token(bad.clone()).unwrap_err().kind(), "header", "{bad:?}");
        }
    }

    #[test]
    fn context_parameters_are_json_objects() {
        let ctx = parse_context_object("request_context", r#"{"req_ip":"10.0.0.1"}"#).unwrap();
        assert_eq!(ctx["req_ip"], json!("10.0.0.1"));
        for bad in ["[1]", "\"x\"", "{", r#"{"a":1,"a":2}"#] {
            assert_eq!(
                parse_context_object("request_context", bad).unwrap_err().kind(),
                "invalid_parameter",
                "{bad}"
            );
        }
        let huge = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_CONTEXT_BYTES));
        assert!(parse_context_object("request_details", &huge).is_err());
    }
}
