//! JWT client assertions at the token endpoint: `private_key_jwt` (RFC 7523 §2.2 and §3,
//! as updated by draft-ietf-oauth-rfc7523bis-11) and the SPIFFE JWT-SVID assertion
//! `jwt-spiffe` (draft-ietf-oauth-spiffe-client-auth §3.1, editor's copy after PR #44);
//! verification by the authorization server and creation by a client.
//!
//! **`private_key_jwt`** ([`PrivateKeyJwtVerifier`]), in this order:
//! 1. a compact JWS within the size limit; `typ` absent, `JWT` or
//!    `client-authentication+jwt` (rfc7523bis); any other known token type (`at+jwt`,
//!    `dpop+jwt`, `wit+jwt`, ...) is `typ_confusion`;
//! 2. `alg` on the allow-list (never `none` or HMAC); the signature by one of the client's
//!    registered keys (`kid` selects; without `kid`, the single key fitting `alg`);
//! 3. `iss` and `sub` both equal to the `client_id` the request names (RFC 7523 §3 items
//!    1–2; `client_id_mismatch`);
//! 4. `aud` exactly the authorization server's issuer identifier as its sole value, a
//!    string or a one-element array (rfc7523bis): the issuer plus another value is
//!    `aud_not_sole`, the issuer with or without a trailing slash where the issuer has it
//!    the other way is `aud_trailing_slash`, anything else `wrong_audience` (the token
//!    endpoint URL included: rfc7523bis forbids it);
//! 5. `exp` required and not past, `nbf`/`iat` not in the future (both with the policy's
//!    leeway); the lifetime at most [`ClientAssertionPolicy::max_lifetime`] (5 minutes by
//!    default), measured as `exp - iat` when `iat` is present and as `exp - now` always;
//! 6. `jti` required (at most 256 bytes), and returned so the server can refuse a reuse
//!    ([`VerifiedClientAssertion::record`]: keyed per client, kept until `exp + leeway`).
//!
//! **`jwt-spiffe`** ([`SpiffeAssertionVerifier`]): a JWT-SVID verified by the JWT-SVID
//! pipeline ([`crate::JwtSvidVerifier`]: `typ` generic only, `kid` required, keys of the
//! `sub`'s trust domain from the [`TrustStore`]), then `aud` exactly the issuer as its sole
//! value (as above) and the same lifetime bound. `jti` is not required: SPIFFE agents reuse
//! a JWT-SVID while it is valid. The result is the SPIFFE ID; whether it may authenticate
//! as the request's `client_id` is [`super::authorize_spiffe_id`]'s question.
//!
//! **Client side** ([`create_client_assertion`]): `typ: client-authentication+jwt` by
//! default (switchable off for servers that refuse it), a fresh random `jti`, `aud` the
//! issuer, `iss` = `sub` = the client, a short lifetime.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::crypto::{CryptoProvider, SigningKey};
use crate::error::Error;
use crate::id::SpiffeId;
use crate::jose::json::Members;
use crate::jose::{AlgSet, Algorithm, CompactJws, TokenType, TypRule, sign_compact};
use crate::oauth::keys::VerificationKeys;
use crate::oauth::violation::{Violation, clip};
use crate::oauth::{check_jti, new_jti};
use crate::replay::ReplayCache;
use crate::spiffe::{JwtSvidPolicy, JwtSvidVerifier};
use crate::time::UnixTime;
use crate::trust::{self, TrustStore, Window};

/// The longest assertion lifetime accepted by default, and the longest
/// [`create_client_assertion`] makes (5 minutes).
pub const MAX_ASSERTION_LIFETIME: u64 = 300;

/// What a `private_key_jwt` verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct ClientAssertionPolicy {
    /// Allowed algorithms (every asymmetric algorithm by default); the server advertises
    /// them as `token_endpoint_auth_signing_alg_values_supported`.
    pub algorithms: AlgSet,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (60 by default).
    pub leeway: u64,
    /// The longest lifetime accepted (`exp - iat`, and `exp - now`), in seconds; the
    /// leeway is not added to it.
    pub max_lifetime: u64,
}

impl Default for ClientAssertionPolicy {
    fn default() -> Self {
        ClientAssertionPolicy {
            algorithms: AlgSet::all(),
            leeway: 60,
            max_lifetime: MAX_ASSERTION_LIFETIME,
        }
    }
}

/// A `private_key_jwt` assertion that passed every check but replay.
#[derive(Clone, Debug)]
pub struct VerifiedClientAssertion {
    /// The authenticated client (`iss` = `sub`).
    pub client_id: String,
    /// The assertion's `jti`, for the replay check.
    pub jti: String,
    /// `exp`.
    pub exp: UnixTime,
    /// `iat`, if present.
    pub iat: Option<UnixTime>,
    /// The last instant the assertion could be accepted (`exp + leeway`): keep its `jti`
    /// until then.
    pub replay_until: UnixTime,
    /// The `kid` of the client key that signed it.
    pub kid: Option<String>,
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Every claim.
    pub claims: Map<String, Value>,
}

impl VerifiedClientAssertion {
    /// Records the assertion in `cache` (keyed by client and `jti`), refusing a reuse.
    pub fn record(&self, cache: &dyn ReplayCache, now: UnixTime) -> Result<(), Error> {
        cache.check_and_record(&self.client_id, &self.jti, self.replay_until, now)
    }
}

/// Verifies `private_key_jwt` client assertions for one authorization server.
#[derive(Clone, Debug)]
pub struct PrivateKeyJwtVerifier {
    issuer: String,
    policy: ClientAssertionPolicy,
}

impl PrivateKeyJwtVerifier {
    /// A verifier for the authorization server whose issuer identifier is `issuer`.
    pub fn new(issuer: impl Into<String>, policy: ClientAssertionPolicy) -> PrivateKeyJwtVerifier {
        PrivateKeyJwtVerifier {
            issuer: issuer.into(),
            policy,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &ClientAssertionPolicy {
        &self.policy
    }

    /// Verifies `assertion` from the client `client_id`, whose registered keys are `keys`,
    /// at `now` (see the module documentation for the order of checks).
    pub fn verify(
        &self,
        assertion: &str,
        client_id: &str,
        keys: &VerificationKeys,
        now: UnixTime,
    ) -> Result<VerifiedClientAssertion, Error> {
        let p = &self.policy;
        let (jws, alg) = keys.verify_typed(
            assertion,
            TypRule::or_generic(TokenType::ClientAuthentication),
            p.algorithms,
            "not on the client-assertion allow-list",
        )?;
        let claims = jws.claims()?;
        let m = Members(&claims);
        for claim in ["iss", "sub"] {
            let value = m.req_str(claim)?;
            if value != client_id {
                return Err(Violation::ClientIdMismatch {
                    claim,
                    client_id: client_id.to_owned(),
                    found: clip(value, 256),
                }
                .into());
            }
        }
        let aud = m.req_audiences()?;
        check_sole_audience(&aud, &self.issuer)?;
        let times = check_assertion_times(&claims, now, p.leeway, p.max_lifetime)?;
        let jti = m.req_str("jti")?;
        check_jti(jti)?;
        Ok(VerifiedClientAssertion {
            client_id: client_id.to_owned(),
            jti: jti.to_owned(),
            exp: times.exp,
            iat: times.iat,
            replay_until: times.exp.plus(p.leeway),
            kid: jws.header().kid.clone(),
            algorithm: alg,
            claims,
        })
    }
}

/// The client an assertion claims to come from (`sub`, which must equal `iss`), read
/// WITHOUT verifying anything, for servers that must find a client's keys when the request
/// has no `client_id` (RFC 7523 §3 allows that). Verify with [`PrivateKeyJwtVerifier`]
/// before trusting it.
pub fn unverified_client_id(assertion: &str) -> Result<String, Error> {
    let claims = CompactJws::parse(assertion)?.claims()?;
    let m = Members(&claims);
    let sub = m.req_str("sub")?;
    let iss = m.req_str("iss")?;
    if iss != sub {
        return Err(Violation::ClientIdMismatch {
            claim: "iss",
            client_id: clip(sub, 256),
            found: clip(iss, 256),
        }
        .into());
    }
    Ok(sub.to_owned())
}

/// rfc7523bis: `aud` is the issuer identifier as its sole value, compared exactly.
pub(crate) fn check_sole_audience(aud: &[String], issuer: &str) -> Result<(), Error> {
    match aud {
        [only] if only == issuer => Ok(()),
        _ if aud.iter().any(|a| a == issuer) => Err(Violation::AudienceNotSole {
            issuer: issuer.to_owned(),
            found: aud.iter().map(|a| clip(a, 256)).collect(),
        }
        .into()),
        [only] if only.trim_end_matches('/') == issuer.trim_end_matches('/') => Err(Violation::AudienceTrailingSlash {
            issuer: issuer.to_owned(),
            found: clip(only, 256),
        }
        .into()),
        _ => Err(Error::WrongAudience {
            expected: issuer.to_owned(),
            found: aud.iter().map(|a| clip(a, 256)).collect(),
        }),
    }
}

/// `exp`/`nbf`/`iat` and the lifetime bound shared by both assertion kinds.
fn check_assertion_times(
    claims: &Map<String, Value>,
    now: UnixTime,
    leeway: u64,
    max_lifetime: u64,
) -> Result<trust::Times, Error> {
    let times = trust::check_window(
        claims,
        now,
        Window {
            leeway,
            max_lifetime,
            token: "client assertion",
        },
    )?;
    check_issued_lifetime(times.exp, times.iat, max_lifetime)?;
    Ok(times)
}

/// `exp - iat` at most `max_lifetime` (RFC 7523 §3 item 6 lets the server refuse an `iat`
/// unreasonably far in the past).
fn check_issued_lifetime(exp: UnixTime, iat: Option<UnixTime>, max_lifetime: u64) -> Result<(), Error> {
    if let Some(iat) = iat {
        let lifetime = exp.as_secs().saturating_sub(iat.as_secs());
        if lifetime > max_lifetime {
            return Err(Error::LifetimeTooLong {
                token: "client assertion",
                lifetime,
                max: max_lifetime,
            });
        }
    }
    Ok(())
}

/// What a `jwt-spiffe` verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct SpiffeAssertionPolicy {
    /// Allowed algorithms (JWT-SVID.md §2.1: RS/ES/PS, no EdDSA).
    pub algorithms: AlgSet,
    /// Clock skew tolerated, in seconds (60 by default).
    pub leeway: u64,
    /// The longest lifetime accepted, as for `private_key_jwt` (300 s by default, the
    /// default JWT-SVID TTL of SPIRE and of Lanyard's server).
    pub max_lifetime: u64,
}

impl Default for SpiffeAssertionPolicy {
    fn default() -> Self {
        SpiffeAssertionPolicy {
            algorithms: AlgSet::spiffe(),
            leeway: 60,
            max_lifetime: MAX_ASSERTION_LIFETIME,
        }
    }
}

/// A `jwt-spiffe` assertion that passed every check.
#[derive(Clone, Debug)]
pub struct VerifiedSpiffeAssertion {
    /// The SPIFFE ID in `sub`: authorize it for the request's `client_id` next.
    pub spiffe_id: SpiffeId,
    /// `exp`.
    pub exp: UnixTime,
    /// `iat`, if present.
    pub iat: Option<UnixTime>,
    /// `jti`, if present (not a replay key: agents reuse JWT-SVIDs).
    pub jti: Option<String>,
    /// The `kid` of the trust-domain key that signed it.
    pub kid: Option<String>,
}

/// Verifies `jwt-spiffe` client assertions for one authorization server.
#[derive(Clone, Debug)]
pub struct SpiffeAssertionVerifier {
    issuer: String,
    svids: JwtSvidVerifier,
    policy: SpiffeAssertionPolicy,
}

impl SpiffeAssertionVerifier {
    /// A verifier for the authorization server `issuer`, with the JWT-SVID keys of the
    /// trusted trust domains in `store`.
    pub fn new(
        store: Arc<TrustStore>,
        issuer: impl Into<String>,
        policy: SpiffeAssertionPolicy,
    ) -> SpiffeAssertionVerifier {
        let svid_policy = JwtSvidPolicy {
            algorithms: policy.algorithms,
            leeway: policy.leeway,
            max_lifetime: policy.max_lifetime,
            require_kid: true,
        };
        SpiffeAssertionVerifier {
            issuer: issuer.into(),
            svids: JwtSvidVerifier::new(store, svid_policy),
            policy,
        }
    }

    /// Verifies the JWT-SVID `assertion` at `now`.
    pub fn verify(&self, assertion: &str, now: UnixTime) -> Result<VerifiedSpiffeAssertion, Error> {
        let svid = self
            .svids
            .verify_with_audience(assertion, now, |aud| check_sole_audience(aud, &self.issuer))?;
        check_issued_lifetime(svid.exp, svid.iat, self.policy.max_lifetime)?;
        let jti = Members(&svid.claims).str("jti")?.map(str::to_owned);
        Ok(VerifiedSpiffeAssertion {
            spiffe_id: svid.sub,
            exp: svid.exp,
            iat: svid.iat,
            jti,
            kid: svid.kid,
        })
    }
}

/// What a new `private_key_jwt` assertion says.
#[derive(Clone, Copy, Debug)]
pub struct ClientAssertionParams<'a> {
    /// The client (`iss` and `sub`).
    pub client_id: &'a str,
    /// The authorization server's issuer identifier (`aud`, its sole value).
    pub issuer: &'a str,
    /// Lifetime in seconds, 1 to [`MAX_ASSERTION_LIFETIME`] (60 is what openid-client
    /// uses).
    pub lifetime: u64,
    /// Write `typ: client-authentication+jwt` (rfc7523bis; the default). Off for servers
    /// that refuse an explicit type.
    pub explicit_typ: bool,
    /// The `kid` to write; the key's own `kid` when `None`.
    pub kid: Option<&'a str>,
}

impl<'a> ClientAssertionParams<'a> {
    /// An assertion from `client_id` for `issuer`, valid for 60 seconds, explicitly typed.
    pub fn new(client_id: &'a str, issuer: &'a str) -> ClientAssertionParams<'a> {
        ClientAssertionParams {
            client_id,
            issuer,
            lifetime: 60,
            explicit_typ: true,
            kid: None,
        }
    }
}

/// Creates a `private_key_jwt` assertion with `key` at `now`: claims `iss`, `sub`, `aud`,
/// `iat`, `exp`, `jti` (128 random bits).
pub fn create_client_assertion(
    key: &dyn SigningKey,
    params: &ClientAssertionParams<'_>,
    now: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<String, Error> {
    if params.client_id.is_empty() {
        return Err(Error::invalid_claim("sub", "the client_id must not be empty"));
    }
    if params.issuer.is_empty() {
        return Err(Error::invalid_claim("aud", "the issuer must not be empty"));
    }
    if params.lifetime == 0 || params.lifetime > MAX_ASSERTION_LIFETIME {
        return Err(Error::LifetimeTooLong {
            token: "client assertion",
            lifetime: params.lifetime,
            max: MAX_ASSERTION_LIFETIME,
        });
    }
    #[derive(Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        sub: &'a str,
        aud: &'a str,
        iat: u64,
        exp: u64,
        jti: String,
    }
    let claims = Claims {
        iss: params.client_id,
        sub: params.client_id,
        aud: params.issuer,
        iat: now.as_secs(),
        exp: now.plus(params.lifetime).as_secs(),
        jti: new_jti(provider)?,
    };
    let own_kid = key.public_jwk().kid;
    let kid = params.kid.or(own_kid.as_deref());
    let typ = params.explicit_typ.then(|| TokenType::ClientAuthentication.typ());
    sign_compact(typ, kid, &claims, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aud(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_issuer_must_be_the_sole_audience() {
        let issuer = "https://as.example.com";
        let kind = |values: &[&str]| check_sole_audience(&aud(values), issuer).err().map(|e| e.kind());
        assert_eq!(kind(&["https://as.example.com"]), None);
        assert_eq!(
            kind(&["https://as.example.com", "https://other.example"]),
            Some("aud_not_sole")
        );
        assert_eq!(
            kind(&["https://as.example.com", "https://as.example.com"]),
            Some("aud_not_sole")
        );
        assert_eq!(kind(&["https://as.example.com/"]), Some("aud_trailing_slash"));
        assert_eq!(kind(&["https://as.example.com/token"]), Some("wrong_audience"));
        assert_eq!(kind(&["https://as.example.com/", "x"]), Some("wrong_audience"));
        let slash = "https://as.example.com/";
        assert_eq!(
            check_sole_audience(&aud(&["https://as.example.com"]), slash)
                .unwrap_err()
                .kind(),
            "aud_trailing_slash"
        );
    }

    #[test]
    fn lifetime_from_iat() {
        assert!(check_issued_lifetime(UnixTime(400), Some(UnixTime(100)), 300).is_ok());
        assert_eq!(
            check_issued_lifetime(UnixTime(401), Some(UnixTime(100)), 300)
                .unwrap_err()
                .kind(),
            "lifetime_too_long"
        );
        assert!(check_issued_lifetime(UnixTime(10_000), None, 300).is_ok());
    }
}
