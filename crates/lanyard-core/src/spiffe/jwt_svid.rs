//! JWT-SVIDs (spiffe/spiffe `standards/JWT-SVID.md`): issue with `kid` and one or more `aud`;
//! verify against the JWT keys of the subject's trust domain, accepting `aud` as a string
//! or a list. `typ` is absent, `JWT` or `JOSE`; the `typ` of another token type (a WIT,
//! an access token, ...) is refused as `typ_confusion` ([`crate::jose::TypRule`]).

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::crypto::SigningKey;
use crate::error::Error;
use crate::id::{IdError, IdErrorKind, SpiffeId, WorkloadId};
use crate::jose::json::Members;
use crate::jose::{AlgSet, TypRule, sign_compact};
use crate::time::UnixTime;
use crate::trust::{self, AnchoredProfile, KeyUse, TrustStore, Window};

/// What a JWT-SVID verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct JwtSvidPolicy {
    /// Allowed algorithms; JWT-SVID.md §2.1 allows RS/ES/PS 256–512 (no EdDSA).
    pub algorithms: AlgSet,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway: u64,
    /// The longest remaining lifetime accepted, in seconds.
    pub max_lifetime: u64,
    /// Require a `kid` header (go-spiffe, SPIRE and rust-spiffe all do).
    pub require_kid: bool,
}

impl Default for JwtSvidPolicy {
    fn default() -> Self {
        JwtSvidPolicy {
            algorithms: AlgSet::spiffe(),
            leeway: 60,
            max_lifetime: 24 * 3600,
            require_kid: true,
        }
    }
}

/// A JWT-SVID whose signature, type, subject, audience and times have been checked.
#[derive(Clone, Debug)]
pub struct VerifiedJwtSvid {
    /// The SPIFFE ID in `sub`.
    pub sub: SpiffeId,
    /// Every value of `aud`.
    pub aud: Vec<String>,
    /// `exp`.
    pub exp: UnixTime,
    /// `iat`, if present.
    pub iat: Option<UnixTime>,
    /// The `kid` of the key that signed it.
    pub kid: Option<String>,
    /// Every claim, for the caller's own authorization checks.
    pub claims: Map<String, Value>,
}

/// Verifies JWT-SVIDs against a [`TrustStore`]'s `jwt-svid` keys.
#[derive(Clone, Debug)]
pub struct JwtSvidVerifier {
    store: Arc<TrustStore>,
    policy: JwtSvidPolicy,
}

impl JwtSvidVerifier {
    /// A verifier with `policy`.
    pub fn new(store: Arc<TrustStore>, policy: JwtSvidPolicy) -> JwtSvidVerifier {
        JwtSvidVerifier { store, policy }
    }

    /// Verifies `token` for `audience` at `now` (JWT-SVID.md §4 and Appendix A).
    pub fn verify(&self, token: &str, audience: &str, now: UnixTime) -> Result<VerifiedJwtSvid, Error> {
        self.verify_with_audience(token, now, |aud| {
            if aud.iter().any(|a| a == audience) {
                Ok(())
            } else {
                Err(Error::WrongAudience {
                    expected: audience.to_owned(),
                    found: aud.to_vec(),
                })
            }
        })
    }

    /// Verifies `token` at `now` like [`JwtSvidVerifier::verify`], but with `check_aud`
    /// deciding about the (non-empty) audience list, for profiles with stricter audience
    /// rules (an OAuth client assertion's sole `aud`).
    pub(crate) fn verify_with_audience(
        &self,
        token: &str,
        now: UnixTime,
        check_aud: impl FnOnce(&[String]) -> Result<(), Error>,
    ) -> Result<VerifiedJwtSvid, Error> {
        let profile = AnchoredProfile {
            typ: TypRule::generic(),
            key_use: KeyUse::JwtSvid,
            allowed: self.policy.algorithms,
            require_kid: self.policy.require_kid,
        };
        let signed = trust::verify_anchored(&self.store, token, &profile, |sub| match sub {
            WorkloadId::Spiffe(id) if !id.is_trust_domain_id() => Ok(()),
            WorkloadId::Spiffe(id) => Err(Error::InvalidIdentifier {
                context: "sub",
                source: IdError::new(IdErrorKind::WrongForm, id.as_str()),
            }),
            WorkloadId::Wimse(id) => Err(Error::InvalidIdentifier {
                context: "sub",
                source: IdError::new(IdErrorKind::Scheme, id.as_str()),
            }),
        })?;
        let times = trust::check_window(
            &signed.claims,
            now,
            Window {
                leeway: self.policy.leeway,
                max_lifetime: self.policy.max_lifetime,
                token: "JWT-SVID",
            },
        )?;
        let aud = Members(&signed.claims).req_audiences()?;
        if aud.is_empty() {
            return Err(Error::invalid_claim("aud", "must name at least one audience"));
        }
        check_aud(&aud)?;
        let WorkloadId::Spiffe(sub) = signed.sub else {
            return Err(Error::MissingClaim("sub"));
        };
        Ok(VerifiedJwtSvid {
            sub,
            aud,
            exp: times.exp,
            iat: times.iat,
            kid: signed.jws.header().kid.clone(),
            claims: signed.claims,
        })
    }
}

/// Issues JWT-SVIDs: header `{alg, kid, typ: "JWT"}`, claims `sub`, `aud`, `exp`, `iat`
/// (plus `iss` when configured), as SPIRE does.
#[derive(Clone, Debug)]
pub struct JwtSvidIssuer {
    key: Arc<dyn SigningKey>,
    kid: String,
    issuer: Option<String>,
}

impl JwtSvidIssuer {
    /// An issuer signing with `key` under `kid`. The key's algorithm must be one JWT-SVID
    /// allows (not EdDSA).
    pub fn new(
        key: Arc<dyn SigningKey>,
        kid: impl Into<String>,
        issuer: Option<String>,
    ) -> Result<JwtSvidIssuer, Error> {
        if !AlgSet::spiffe().contains(key.algorithm()) {
            return Err(Error::AlgorithmNotAllowed {
                alg: key.algorithm().to_string(),
                reason: "JWT-SVID.md §2.1 does not allow it",
            });
        }
        Ok(JwtSvidIssuer {
            key,
            kid: kid.into(),
            issuer,
        })
    }

    /// Issues a JWT-SVID for `sub` with the single audience `audience`, valid for `ttl` seconds.
    pub fn issue(&self, sub: &SpiffeId, audience: &str, now: UnixTime, ttl: u64) -> Result<String, Error> {
        self.issue_for(sub, &[audience], now, ttl)
    }

    /// Issues a JWT-SVID for `sub` naming every value of `audiences` (JWT-SVID.md §3.2
    /// allows one or more), valid for `ttl` seconds. One audience is written as a string,
    /// as SPIRE does; several as an array. The list must pass [`check_audiences`].
    pub fn issue_for<A: AsRef<str>>(
        &self,
        sub: &SpiffeId,
        audiences: &[A],
        now: UnixTime,
        ttl: u64,
    ) -> Result<String, Error> {
        if sub.is_trust_domain_id() {
            return Err(Error::InvalidIdentifier {
                context: "sub",
                source: IdError::new(IdErrorKind::WrongForm, sub.as_str()),
            });
        }
        check_audiences(audiences)?;
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Audience<'a> {
            One(&'a str),
            Many(Vec<&'a str>),
        }
        #[derive(Serialize)]
        struct Claims<'a> {
            sub: &'a str,
            aud: Audience<'a>,
            exp: u64,
            iat: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            iss: Option<&'a str>,
        }
        let aud = match audiences {
            [one] => Audience::One(one.as_ref()),
            many => Audience::Many(many.iter().map(AsRef::as_ref).collect()),
        };
        let claims = Claims {
            sub: sub.as_str(),
            aud,
            exp: now.plus(ttl).as_secs(),
            iat: now.as_secs(),
            iss: self.issuer.as_deref(),
        };
        sign_compact(Some("JWT"), Some(&self.kid), &claims, self.key.as_ref())
    }
}

/// Most audiences one JWT-SVID may name.
pub const MAX_AUDIENCES: usize = 16;
/// Most bytes of one audience value.
pub const MAX_AUDIENCE_BYTES: usize = 512;

/// Checks an audience list requested for a JWT-SVID: between one and [`MAX_AUDIENCES`]
/// values, none empty, none longer than [`MAX_AUDIENCE_BYTES`]. With these bounds every
/// JWT-SVID stays well under the token size limit, so a request can be refused before
/// anything is signed.
pub fn check_audiences<A: AsRef<str>>(audiences: &[A]) -> Result<(), Error> {
    if audiences.is_empty() {
        return Err(Error::invalid_claim("aud", "at least one audience is required"));
    }
    if audiences.len() > MAX_AUDIENCES {
        return Err(Error::invalid_claim("aud", "more than 16 audiences"));
    }
    for audience in audiences {
        let audience = audience.as_ref();
        if audience.is_empty() {
            return Err(Error::invalid_claim("aud", "an audience is empty"));
        }
        if audience.len() > MAX_AUDIENCE_BYTES {
            return Err(Error::invalid_claim("aud", "an audience is longer than 512 bytes"));
        }
    }
    Ok(())
}
