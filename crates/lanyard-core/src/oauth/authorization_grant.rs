//! JWT authorization grants for crossing trust domains (draft-ietf-oauth-identity-chaining-17
//! with RFC 7523 §2.1 and draft-ietf-oauth-rfc7523bis): issued by the home authorization
//! server (AS-A) from a token exchange, redeemed at the foreign one (AS-B) with the JWT
//! bearer grant for a local access token.
//!
//! ```text
//! header: {"alg": <asymmetric>, "kid": ..., "typ": "authorization-grant+jwt"}
//! claims: {"iss": <AS-A>, "sub", "aud": <AS-B>, "iat", "exp", "jti",
//!          "client_id"?, "scope"?, "act"?, ...claims transcribed by AS-A's rules}
//! ```
//!
//! AS-B checks ([`AuthorizationGrantVerifier`]), in this order: `typ` absent, `JWT` or
//! `authorization-grant+jwt` (rfc7523bis; any other explicit type, such as `at+jwt` or
//! `client-authentication+jwt`, is `typ_confusion`), `alg` on the allow-list, the signature
//! by one of the trusted home server's keys, `iss` exactly that server, `aud` exactly this
//! server's issuer identifier as its sole value (identity-chaining §2.5: it MUST identify
//! AS-B), `exp`/`nbf`/`iat` with bounded skew and a bounded lifetime, `sub` and `jti`
//! present. Replay of the `jti` is the caller's next step, with
//! [`VerifiedAuthorizationGrant::replay_until`]; every failure answers `invalid_grant`
//! (RFC 7523 §3.1).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::crypto::SigningKey;
use crate::error::Error;
use crate::jose::json::Members;
use crate::jose::{AlgSet, Algorithm, TokenType, TypRule, sign_compact};
use crate::oauth::access_token::{Actor, check_issuable};
use crate::oauth::check_jti;
use crate::oauth::client_assertion::check_sole_audience;
use crate::oauth::keys::VerificationKeys;
use crate::oauth::scope::Scope;
use crate::time::UnixTime;
use crate::trust::{self, Window};

/// The longest lifetime of a grant AS-B accepts by default, in seconds (a grant is redeemed
/// at once: the draft expects it to be short-lived).
pub const MAX_GRANT_LIFETIME: u64 = 300;

/// The claim names [`AuthorizationGrantClaims`] models; `extra` may not repeat them.
pub const GRANT_CLAIMS: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "iat",
    "exp",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "act",
    "typ",
];

/// The claims of a JWT authorization grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthorizationGrantClaims {
    /// The home authorization server (AS-A).
    pub iss: String,
    /// The subject the foreign server will issue its token about.
    pub sub: String,
    /// The foreign authorization server (AS-B), its issuer identifier.
    pub aud: String,
    /// Issued at.
    pub iat: UnixTime,
    /// Expiry.
    pub exp: UnixTime,
    /// The grant's unique identifier (single use at AS-B).
    pub jti: String,
    /// The client at AS-A that asked for the grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The scope AS-A vouches for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The actor chain of the subject token AS-A exchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// Claims transcribed by AS-A's rules.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AuthorizationGrantClaims {
    /// Reads the claims (already parsed strictly), checking the registered claims' types.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<AuthorizationGrantClaims, Error> {
        let m = Members(claims);
        let aud = match m.req_audiences()?.as_slice() {
            [one] => one.clone(),
            _ => {
                return Err(Error::invalid_claim(
                    "aud",
                    "must name exactly one authorization server",
                ));
            }
        };
        let jti = m.req_str("jti")?;
        check_jti(jti)?;
        Ok(AuthorizationGrantClaims {
            iss: m.req_str("iss")?.to_owned(),
            sub: m.req_non_empty("sub")?,
            aud,
            iat: UnixTime(m.req_date("iat")?),
            exp: UnixTime(m.req_date("exp")?),
            jti: jti.to_owned(),
            client_id: m.str("client_id")?.map(str::to_owned),
            scope: m.str("scope")?.map(Scope::parse).transpose()?,
            act: claims.get("act").map(|v| Actor::from_value(v, "act")).transpose()?,
            extra: claims
                .iter()
                .filter(|(k, _)| !GRANT_CLAIMS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

/// Signs a grant with header `{alg, kid, typ: "authorization-grant+jwt"}`, refusing claims
/// AS-B would refuse: empty `iss`, `sub`, `aud` or `jti`, `exp` not after `iat`, an `act`
/// chain deeper than [`MAX_ACTOR_DEPTH`](crate::oauth::MAX_ACTOR_DEPTH), an `extra` claim repeating a registered name.
pub fn issue_authorization_grant(
    key: &dyn SigningKey,
    kid: &str,
    claims: &AuthorizationGrantClaims,
) -> Result<String, Error> {
    check_issuable(
        &[
            ("iss", &claims.iss),
            ("sub", &claims.sub),
            ("aud", &claims.aud),
            ("jti", &claims.jti),
        ],
        (claims.iat, claims.exp),
        claims.act.as_ref(),
        (&claims.extra, &GRANT_CLAIMS),
    )?;
    sign_compact(Some(TokenType::AuthorizationGrant.typ()), Some(kid), claims, key)
}

/// What AS-B accepts from one trusted home server.
#[derive(Clone, Debug)]
pub struct AuthorizationGrantPolicy {
    /// This server's issuer identifier: `aud` must be exactly it, alone.
    pub audience: String,
    /// Allowed algorithms (every asymmetric algorithm by default).
    pub algorithms: AlgSet,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds (60 by default).
    pub leeway: u64,
    /// The longest lifetime accepted, in seconds ([`MAX_GRANT_LIFETIME`] by default).
    pub max_lifetime: u64,
}

impl AuthorizationGrantPolicy {
    /// A policy for grants addressed to `audience` (this server's issuer identifier).
    pub fn new(audience: impl Into<String>) -> AuthorizationGrantPolicy {
        AuthorizationGrantPolicy {
            audience: audience.into(),
            algorithms: AlgSet::all(),
            leeway: 60,
            max_lifetime: MAX_GRANT_LIFETIME,
        }
    }
}

/// A grant that passed every check but replay.
#[derive(Clone, Debug)]
pub struct VerifiedAuthorizationGrant {
    /// The claims.
    pub claims: AuthorizationGrantClaims,
    /// The `kid` of the key that signed it.
    pub kid: Option<String>,
    /// The algorithm it was signed with.
    pub algorithm: Algorithm,
    /// Keep the `jti` in the replay store until then (`exp` plus the leeway).
    pub replay_until: UnixTime,
}

/// Verifies JWT authorization grants at the foreign authorization server.
#[derive(Clone, Debug)]
pub struct AuthorizationGrantVerifier {
    policy: AuthorizationGrantPolicy,
}

impl AuthorizationGrantVerifier {
    /// A verifier with `policy`.
    pub fn new(policy: AuthorizationGrantPolicy) -> AuthorizationGrantVerifier {
        AuthorizationGrantVerifier { policy }
    }

    /// Verifies `grant` from the home server `home_issuer`, whose keys are `keys`, at `now`.
    pub fn verify(
        &self,
        grant: &str,
        home_issuer: &str,
        keys: &VerificationKeys,
        now: UnixTime,
    ) -> Result<VerifiedAuthorizationGrant, Error> {
        let p = &self.policy;
        let (jws, alg, claims) = keys.verify_issued(
            grant,
            TypRule::or_generic(TokenType::AuthorizationGrant),
            p.algorithms,
            "not on the authorization-grant allow-list",
            home_issuer,
        )?;
        let m = Members(&claims);
        check_sole_audience(&m.req_audiences()?, &p.audience)?;
        let times = trust::check_window(
            &claims,
            now,
            Window {
                leeway: p.leeway,
                max_lifetime: p.max_lifetime,
                token: "authorization grant",
            },
        )?;
        let claims = AuthorizationGrantClaims::from_claims(&claims)?;
        if claims.exp.as_secs().saturating_sub(claims.iat.as_secs()) > p.max_lifetime {
            return Err(Error::LifetimeTooLong {
                token: "authorization grant",
                lifetime: claims.exp.as_secs().saturating_sub(claims.iat.as_secs()),
                max: p.max_lifetime,
            });
        }
        Ok(VerifiedAuthorizationGrant {
            replay_until: times.exp.plus(p.leeway),
            kid: jws.header().kid.clone(),
            algorithm: alg,
            claims,
        })
    }
}
