//! The Workload Identity Token (WIT), draft-ietf-wimse-workload-creds-02 §5, and the
//! SPIFFE WIT-SVID profile (spiffe/spiffe `standards/WIT-SVID.md`, Incubating).
//!
//! ```text
//! header: {"alg": <asymmetric>, "typ": "wit+jwt", "kid": ...}
//! claims: {"sub": <one workload identifier>, "exp": ..., "cnf": {"jwk": {..., "alg": ...}},
//!          "iss"?: ..., "jti"?: ..., "iat"?: ...}
//! ```

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::wit_cache::WitCache;
use crate::crypto::{CryptoProvider, SigningKey, VerifyingKey};
use crate::error::Error;
use crate::id::{IdError, IdErrorKind, WorkloadId};
use crate::jose::json::Members;
use crate::jose::{AlgSet, Algorithm, CompactJws, Jwk, TokenType, TypRule, base64url, sign_compact};
use crate::time::UnixTime;
use crate::trust::{self, AnchoredProfile, KeyUse, TrustAnchor, TrustStore, Window};

/// Which rules a WIT must follow beyond the WIMSE base format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WitProfile {
    /// draft-ietf-wimse-workload-creds: any asymmetric algorithm, `kid` optional,
    /// `sub` a SPIFFE ID or a WIMSE identifier.
    Wimse,
    /// WIT-SVID.md: `kid` required, `sub` a SPIFFE ID, no `aud`, RS/ES/PS algorithms only
    /// (for the issuer signature and for `cnf.jwk.alg`).
    WitSvid,
}

/// What a WIT verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct WitPolicy {
    /// The profile.
    pub profile: WitProfile,
    /// Algorithms allowed for the issuer's signature.
    pub algorithms: AlgSet,
    /// Algorithms allowed for `cnf.jwk.alg` (and so for the proof of possession).
    pub pop_algorithms: AlgSet,
    /// Clock skew tolerated, in seconds (WIT-SVID.md allows "at most a couple of minutes").
    pub leeway: u64,
    /// The longest remaining lifetime accepted, in seconds ("order of hours").
    pub max_lifetime: u64,
    /// Also accept `typ: oauth-client-attestation+jwt`: a WIT-SVID presented in the
    /// `OAuth-Client-Attestation` header (draft-ietf-oauth-spiffe-client-auth, WIT-SVID
    /// method: the authorization server accepts both types). Off by default.
    pub accept_client_attestation_typ: bool,
}

impl WitPolicy {
    /// The WIMSE profile: every supported asymmetric algorithm, 60 s leeway, 24 h maximum.
    pub fn wimse() -> WitPolicy {
        WitPolicy {
            profile: WitProfile::Wimse,
            algorithms: AlgSet::all(),
            pop_algorithms: AlgSet::all(),
            leeway: 60,
            max_lifetime: 24 * 3600,
            accept_client_attestation_typ: false,
        }
    }

    /// The SPIFFE WIT-SVID profile.
    pub fn wit_svid() -> WitPolicy {
        WitPolicy {
            profile: WitProfile::WitSvid,
            algorithms: AlgSet::spiffe(),
            pop_algorithms: AlgSet::spiffe(),
            ..WitPolicy::wimse()
        }
    }
}

impl Default for WitPolicy {
    fn default() -> Self {
        WitPolicy::wimse()
    }
}

/// A verified WIT: who the workload is and the key it must prove possession of.
pub struct VerifiedWit {
    /// The workload identifier in `sub`.
    pub sub: WorkloadId,
    /// `exp`.
    pub exp: UnixTime,
    /// `iat`, if present.
    pub iat: Option<UnixTime>,
    /// `iss`, if present (for audit only; never used to find keys).
    pub iss: Option<String>,
    /// `jti`, if present (for audit; not a replay key, WIT-SVID.md §3.7).
    pub jti: Option<String>,
    /// The `kid` of the issuer key that signed it.
    pub kid: Option<String>,
    /// `cnf.jwk`: the workload's public key.
    pub cnf_jwk: Jwk,
    /// Every claim.
    pub claims: Map<String, Value>,
    pub(crate) pop_key: Arc<dyn VerifyingKey>,
    pub(crate) anchor: Arc<TrustAnchor>,
    pub(crate) wth: [u8; 32],
}

impl VerifiedWit {
    /// The algorithm every proof of possession must use (`cnf.jwk.alg`).
    pub fn pop_algorithm(&self) -> Algorithm {
        self.pop_key.algorithm()
    }

    /// The parsed `cnf.jwk`, for checking proofs.
    pub fn pop_key(&self) -> &Arc<dyn VerifyingKey> {
        &self.pop_key
    }

    /// Verifies a proof of possession signed with the key this WIT binds (a WPT, an
    /// `OAuth-Client-Attestation-PoP`): its `typ` must be exactly `typ`, its `alg` the
    /// key's, its signature valid. Returns its claims, for the caller's own checks.
    pub(crate) fn verify_proof(&self, proof: &str, typ: TokenType) -> Result<Map<String, Value>, Error> {
        let jws = CompactJws::parse(proof)?;
        TypRule::exactly(typ).check(jws.header().typ.as_deref())?;
        let alg = jws.header().algorithm()?;
        if alg != self.pop_algorithm() {
            return Err(Error::AlgorithmMismatch {
                expected: self.pop_algorithm().to_string(),
                found: alg.to_string(),
            });
        }
        jws.verify_signature(self.pop_key.as_ref())?;
        jws.claims()
    }

    /// `wth` for this WIT: base64url(SHA-256(token)).
    pub fn wth(&self) -> String {
        base64url::encode(&self.wth)
    }
}

impl fmt::Debug for VerifiedWit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedWit")
            .field("sub", &self.sub)
            .field("exp", &self.exp)
            .field("jti", &self.jti)
            .field("kid", &self.kid)
            .field("pop_alg", &self.pop_algorithm())
            .finish_non_exhaustive()
    }
}

/// Verifies WITs against the `wit-svid` keys of the subject's trust domain.
#[derive(Clone, Debug)]
pub struct WitVerifier {
    store: Arc<TrustStore>,
    policy: WitPolicy,
    cache: Option<Arc<WitCache>>,
}

impl WitVerifier {
    /// A verifier with `policy` and no cache.
    pub fn new(store: Arc<TrustStore>, policy: WitPolicy) -> WitVerifier {
        WitVerifier {
            store,
            policy,
            cache: None,
        }
    }

    /// Adds a cache of verified WITs holding at most `capacity` tokens, so a WIT seen on
    /// many requests costs one signature check. Entries expire at the WIT's `exp` and are
    /// dropped when the key that verified them stops being trusted.
    pub fn with_cache(mut self, capacity: usize) -> WitVerifier {
        self.cache = Some(Arc::new(WitCache::new(capacity)));
        self
    }

    /// The policy.
    pub fn policy(&self) -> &WitPolicy {
        &self.policy
    }

    /// The trust store.
    pub fn store(&self) -> &Arc<TrustStore> {
        &self.store
    }

    /// The cache, if any.
    pub fn cache(&self) -> Option<&Arc<WitCache>> {
        self.cache.as_ref()
    }

    /// Verifies a WIT at `now` (workload-creds-02 §5 validation, in the order of the
    /// editor's checklist): structure, `typ`, `alg`, `sub`, the key of `sub`'s trust
    /// domain, the signature, `exp`/`nbf`/`iat`, the profile's claim rules, `cnf.jwk`.
    pub fn verify(&self, token: &str, now: UnixTime) -> Result<Arc<VerifiedWit>, Error> {
        let provider = self.store.provider();
        let wth = provider.sha256(token.as_bytes());
        if let Some(cache) = &self.cache
            && let Some(hit) = cache.get(&wth, now, self.policy.leeway, &self.store)
        {
            return Ok(hit);
        }
        let epoch = self.store.epoch();
        let verified = Arc::new(self.verify_uncached(token, wth, now)?);
        if let Some(cache) = &self.cache {
            cache.insert(wth, Arc::clone(&verified), epoch);
        }
        Ok(verified)
    }

    fn verify_uncached(&self, token: &str, wth: [u8; 32], now: UnixTime) -> Result<VerifiedWit, Error> {
        let p = &self.policy;
        let profile = AnchoredProfile {
            typ: if p.accept_client_attestation_typ {
                TypRule::exactly(TokenType::Wit).or_also(TokenType::ClientAttestation)
            } else {
                TypRule::exactly(TokenType::Wit)
            },
            key_use: KeyUse::WitSvid,
            allowed: p.algorithms,
            require_kid: p.profile == WitProfile::WitSvid,
        };
        let signed = trust::verify_anchored(&self.store, token, &profile, |sub| check_subject(sub, p.profile))?;
        let times = trust::check_window(
            &signed.claims,
            now,
            Window {
                leeway: p.leeway,
                max_lifetime: p.max_lifetime,
                token: "WIT",
            },
        )?;
        let m = Members(&signed.claims);
        if p.profile == WitProfile::WitSvid && signed.claims.contains_key("aud") {
            return Err(Error::ForbiddenClaim("aud"));
        }
        let iss = m.str("iss")?.map(str::to_owned);
        let jti = m.str("jti")?.map(str::to_owned);
        let (cnf_jwk, pop_key) = confirmation_key(m, p.pop_algorithms, self.store.provider().as_ref())?;
        Ok(VerifiedWit {
            kid: signed.jws.header().kid.clone(),
            sub: signed.sub,
            exp: times.exp,
            iat: times.iat,
            iss,
            jti,
            cnf_jwk,
            pop_key,
            anchor: signed.anchor,
            wth,
            claims: signed.claims,
        })
    }
}

/// The rules a WIT `sub` follows beyond being a valid identifier: it names a workload, so
/// it has a path, and under the WIT-SVID profile it is a SPIFFE ID.
///
/// A SPIFFE ID without a path is the ID of a trust domain, not of a workload (SPIFFE-ID.md
/// §2.2), and `scheme://trust-domain` is what draft-ietf-wimse-identifier-03 calls the
/// Workload Identifier *Origin*, "not a Workload Identifier" (the `wimse` scheme's parser
/// already requires a path; the WG answered issue #337 with that rule). A WIT carries
/// "the Workload Identifier" of the workload it was issued to
/// (draft-ietf-wimse-workload-creds-02 §5.1, `sub`), so an Origin is refused as a `sub` at
/// issuance and at verification, under both profiles.
pub(crate) fn check_subject(sub: &WorkloadId, profile: WitProfile) -> Result<(), Error> {
    let refuse = |kind| {
        Err(Error::InvalidIdentifier {
            context: "sub",
            source: IdError::new(kind, sub.as_str()),
        })
    };
    match sub {
        WorkloadId::Spiffe(id) if id.is_trust_domain_id() => refuse(IdErrorKind::EmptyPath),
        WorkloadId::Wimse(_) if profile == WitProfile::WitSvid => refuse(IdErrorKind::Scheme),
        _ => Ok(()),
    }
}

/// Reads and parses `cnf.jwk` (RFC 7800 §3.2), whose `alg` is mandatory and fixes the
/// algorithm of every proof of possession.
fn confirmation_key(
    m: Members<'_>,
    allowed: AlgSet,
    provider: &dyn CryptoProvider,
) -> Result<(Jwk, Arc<dyn VerifyingKey>), Error> {
    let cnf = m.object("cnf")?.ok_or(Error::MissingClaim("cnf"))?;
    let jwk = cnf.get("jwk").ok_or(Error::MissingClaim("cnf.jwk"))?;
    if !jwk.is_object() {
        return Err(Error::malformed("cnf.jwk must be a JSON object"));
    }
    let jwk = Jwk::from_value(jwk).map_err(|e| Error::invalid_claim("cnf.jwk", e.to_string()))?;
    if jwk.is_private() {
        return Err(Error::invalid_claim("cnf.jwk", "contains private key material"));
    }
    let alg = jwk.alg.as_deref().ok_or(Error::MissingClaim("cnf.jwk.alg"))?;
    let alg = Algorithm::parse(alg)?;
    if !allowed.contains(alg) {
        return Err(Error::AlgorithmNotAllowed {
            alg: alg.to_string(),
            reason: "not allowed for cnf.jwk by this profile",
        });
    }
    let key = provider
        .verifying_key(&jwk, alg)
        .map_err(|e| Error::invalid_claim("cnf.jwk", e.to_string()))?;
    Ok((jwk, key))
}

/// The claims of a WIT to issue.
#[derive(Clone, Debug)]
pub struct WitClaims {
    /// The workload.
    pub sub: WorkloadId,
    /// The workload's public key; must be public and carry `alg`.
    pub cnf_jwk: Jwk,
    /// Issued-at time.
    pub iat: UnixTime,
    /// Expiry.
    pub exp: UnixTime,
    /// Issuer URI (recommended, for audit).
    pub iss: Option<String>,
    /// Token ID.
    pub jti: Option<String>,
}

/// Signs a WIT with `key` (header `{alg, kid?, typ: "wit+jwt"}`).
///
/// Refuses what a verifier with the default WIMSE policy would refuse about the claims: a
/// `sub` without a path (a trust domain is not a workload), a `cnf.jwk` that has private members or lacks
/// `alg`, an `exp` not after `iat`, and a lifetime over [`WitPolicy::wimse`]'s 24 hours.
pub fn issue_wit(key: &dyn SigningKey, kid: Option<&str>, claims: &WitClaims) -> Result<String, Error> {
    check_subject(&claims.sub, WitProfile::Wimse)?;
    if claims.cnf_jwk.is_private() {
        return Err(Error::invalid_claim("cnf.jwk", "must be a public key"));
    }
    let alg = claims.cnf_jwk.algorithm()?.ok_or(Error::MissingClaim("cnf.jwk.alg"))?;
    if !claims.cnf_jwk.usable_algorithms()?.contains(alg) {
        return Err(Error::invalid_claim("cnf.jwk.alg", "does not fit the key"));
    }
    if claims.exp <= claims.iat {
        return Err(Error::invalid_claim("exp", "must be after iat"));
    }
    let lifetime = claims.exp.as_secs().saturating_sub(claims.iat.as_secs());
    let max = WitPolicy::wimse().max_lifetime;
    if lifetime > max {
        return Err(Error::LifetimeTooLong {
            token: "WIT",
            lifetime,
            max,
        });
    }
    #[derive(Serialize)]
    struct Cnf<'a> {
        jwk: &'a Jwk,
    }
    #[derive(Serialize)]
    struct Out<'a> {
        cnf: Cnf<'a>,
        exp: u64,
        iat: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        iss: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        jti: Option<&'a str>,
        sub: &'a str,
    }
    let out = Out {
        cnf: Cnf { jwk: &claims.cnf_jwk },
        exp: claims.exp.as_secs(),
        iat: claims.iat.as_secs(),
        iss: claims.iss.as_deref(),
        jti: claims.jti.as_deref(),
        sub: claims.sub.as_str(),
    };
    sign_compact(Some(TokenType::Wit.typ()), kid, &out, key)
}

/// Issues WITs with one key: fills in `iat`, `exp`, `iss` and a random `jti`.
#[derive(Clone, Debug)]
pub struct WitIssuer {
    key: Arc<dyn SigningKey>,
    kid: Option<String>,
    issuer: Option<String>,
    ttl: u64,
    provider: Arc<dyn CryptoProvider>,
}

impl WitIssuer {
    /// An issuer; `ttl` is the lifetime of each WIT in seconds.
    pub fn new(
        provider: Arc<dyn CryptoProvider>,
        key: Arc<dyn SigningKey>,
        kid: Option<String>,
        issuer: Option<String>,
        ttl: u64,
    ) -> WitIssuer {
        WitIssuer {
            key,
            kid,
            issuer,
            ttl,
            provider,
        }
    }

    /// Issues a WIT binding `sub` to `cnf_jwk` at `now`.
    pub fn issue(&self, sub: &WorkloadId, cnf_jwk: &Jwk, now: UnixTime) -> Result<String, Error> {
        let mut jti = [0u8; 16];
        self.provider.fill_random(&mut jti)?;
        issue_wit(
            self.key.as_ref(),
            self.kid.as_deref(),
            &WitClaims {
                sub: sub.clone(),
                cnf_jwk: cnf_jwk.clone(),
                iat: now,
                exp: now.plus(self.ttl),
                iss: self.issuer.clone(),
                jti: Some(base64url::encode(&jti)),
            },
        )
    }
}
