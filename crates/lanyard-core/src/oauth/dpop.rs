//! DPoP proofs (RFC 9449 §4): verification by an authorization server or a resource
//! server, and creation by a client.
//!
//! ```text
//! header: {"typ": "dpop+jwt", "alg": <asymmetric>, "jwk": <public JWK>}
//! claims: {"jti": ..., "htm": "POST", "htu": "https://as.example/token", "iat": ...,
//!          "ath"?: base64url(SHA-256(access token)), "nonce"?: <server nonce>}
//! ```
//!
//! [`DpopVerifier::verify`] follows the checklist of RFC 9449 §4.3: one well-formed JWT;
//! `typ` exactly `dpop+jwt` (another known token type is `typ_confusion`, anything else
//! `wrong_typ`); `alg` asymmetric and on the allow-list (`none` and HMAC cannot even be
//! named); `jwk` a public key (a private member refuses, [`Violation::PrivateKeyInProof`])
//! that verifies the signature; `htm` the request method (exact); `htu` the request URI
//! after normalisation ([`normalize_http_uri`]); the server's nonce when it requires one;
//! `iat` within the window; and `ath`.
//!
//! **`ath`.** With an access token (a protected resource, RFC 9449 §7.1), `ath` is
//! required and must be the token's hash. Without one (the token endpoint, §5), `ath` is
//! refused ([`Error::ForbiddenClaim`]): a proof that binds an access token was made for a
//! resource request, and accepting it at the token endpoint would let a proof captured at
//! a resource mint tokens. RFC 9449 does not forbid the claim there; Lanyard does.
//!
//! **Replay.** The verifier returns the proof's `jti` and the last instant the proof could
//! be accepted ([`VerifiedDpopProof::replay_until`]); the caller records them in the
//! [`ReplayCache`] it shares across replicas ([`VerifiedDpopProof::record`]), keyed by the
//! proof key's thumbprint.
//!
//! **Proof keys.** A client signs every proof with the same key, so the verifier keeps the
//! keys of recent proofs parsed, with their thumbprints: a repeat costs a
//! map lookup instead of a key import and a hash. The cache is bounded and holds public
//! keys only, each under the exact members that define it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use serde_json::Value;

use crate::crypto::{CryptoProvider, SigningKey, VerifyingKey};
use crate::error::Error;
use crate::jose::json::Members;
use crate::jose::jws::sign_with_header;
use crate::jose::{AlgSet, Algorithm, CompactJws, Jwk, TokenType, TypRule};
use crate::oauth::htu::normalize_http_uri;
use crate::oauth::violation::{Violation, clip};
use crate::oauth::{check_jti, new_jti, token_hash};
use crate::replay::ReplayCache;
use crate::time::UnixTime;

/// What a DPoP verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct DpopPolicy {
    /// Allowed algorithms (every asymmetric algorithm Lanyard supports by default); the
    /// server advertises them as `dpop_signing_alg_values_supported`.
    pub algorithms: AlgSet,
    /// How old a proof may be: `now - iat` at most this many seconds (RFC 9449 §11.1;
    /// 300 by default). Proofs are remembered for replay for as long.
    pub max_age: u64,
    /// How far in the future `iat` may be, for clock skew (60 s by default).
    pub leeway: u64,
}

impl Default for DpopPolicy {
    fn default() -> Self {
        DpopPolicy {
            algorithms: AlgSet::all(),
            max_age: 300,
            leeway: 60,
        }
    }
}

/// The server's nonce requirement (RFC 9449 §8, §9).
#[derive(Clone, Copy, Debug, Default)]
pub enum DpopNonce<'a> {
    /// No nonce is required; a `nonce` claim is not checked.
    #[default]
    NotRequired,
    /// The proof must carry one of these nonces (the current one, and the previous one
    /// during a rotation).
    Required(&'a [&'a str]),
}

/// The request a proof must match.
#[derive(Clone, Copy, Debug)]
pub struct DpopRequest<'a> {
    /// The HTTP method (`POST`).
    pub method: &'a str,
    /// The request's absolute URI, from trusted configuration (never from `Host` or
    /// `X-Forwarded-*`); query and fragment are ignored.
    pub uri: &'a str,
    /// The access token presented with the proof (`Authorization: DPoP <token>`), at a
    /// protected resource; `None` at the token endpoint.
    pub access_token: Option<&'a str>,
    /// The nonce requirement.
    pub nonce: DpopNonce<'a>,
}

/// A proof that passed every check but replay.
#[derive(Clone, Debug)]
pub struct VerifiedDpopProof {
    /// The RFC 7638 thumbprint of the proof key: the token's `cnf.jkt`.
    pub jkt: String,
    /// The proof's `jti`, for the replay check.
    pub jti: String,
    /// `iat`.
    pub iat: UnixTime,
    /// The last instant the proof could be accepted (`iat + max_age`): keep its `jti`
    /// until then.
    pub replay_until: UnixTime,
    /// The public key (the header `jwk`).
    pub jwk: Jwk,
    /// The algorithm it signed with.
    pub algorithm: Algorithm,
    /// The `nonce` claim, if any.
    pub nonce: Option<String>,
}

impl VerifiedDpopProof {
    /// Records the proof in `cache` (keyed by `jkt` and `jti`), refusing a replay.
    pub fn record(&self, cache: &dyn ReplayCache, now: UnixTime) -> Result<(), Error> {
        cache.check_and_record(&self.jkt, &self.jti, self.replay_until, now)
    }
}

/// Verifies DPoP proofs. Clones share one cache of parsed proof keys.
#[derive(Clone, Debug)]
pub struct DpopVerifier {
    provider: Arc<dyn CryptoProvider>,
    policy: DpopPolicy,
    keys: Arc<ProofKeys>,
}

impl DpopVerifier {
    /// A verifier with `policy`.
    pub fn new(provider: Arc<dyn CryptoProvider>, policy: DpopPolicy) -> DpopVerifier {
        DpopVerifier {
            provider,
            policy,
            keys: Arc::new(ProofKeys::default()),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &DpopPolicy {
        &self.policy
    }

    /// Verifies `proof` for `request` at `now` (RFC 9449 §4.3).
    pub fn verify(&self, proof: &str, request: &DpopRequest<'_>, now: UnixTime) -> Result<VerifiedDpopProof, Error> {
        let provider = self.provider.as_ref();
        let jws = CompactJws::parse(proof)?;
        let header = jws.header();
        TypRule::exactly(TokenType::DpopProof).check(header.typ.as_deref())?;
        let alg = header.algorithm()?;
        if !self.policy.algorithms.contains(alg) {
            return Err(Error::AlgorithmNotAllowed {
                alg: alg.to_string(),
                reason: "not on the DPoP allow-list",
            });
        }
        let jwk = match header.members.get("jwk") {
            Some(value @ Value::Object(_)) => Jwk::from_value(value)?,
            Some(_) => return Err(Error::malformed("the DPoP proof's jwk is not a JSON object")),
            None => return Err(Error::malformed("the DPoP proof has no jwk header")),
        };
        if jwk.is_private() {
            return Err(Violation::PrivateKeyInProof.into());
        }
        if let Some(key_alg) = jwk.algorithm()?
            && key_alg != alg
        {
            return Err(Error::AlgorithmMismatch {
                expected: key_alg.to_string(),
                found: alg.to_string(),
            });
        }
        let (key, jkt) = self.keys.get_or_parse(&jwk, alg, provider)?;
        jws.verify_signature(key.as_ref())?;

        let claims = jws.claims()?;
        let m = Members(&claims);
        let jti = m.req_str("jti")?;
        check_jti(jti)?;
        let htm = m.req_str("htm")?;
        let htu = m.req_str("htu")?;
        let iat = m.req_date("iat")?;
        if htm != request.method {
            return Err(Violation::HtmMismatch {
                expected: clip(request.method, 16),
                found: clip(htm, 16),
            }
            .into());
        }
        // Clients usually name the URI exactly as the server does: equal strings normalise
        // alike, so both are normalised only when they differ.
        if htu != request.uri {
            let expected_uri = normalize_http_uri(request.uri)?;
            if normalize_http_uri(htu)? != expected_uri {
                return Err(Violation::HtuMismatch {
                    expected: expected_uri,
                    found: clip(htu, 256),
                }
                .into());
            }
        }
        let nonce = m.str("nonce")?;
        if let DpopNonce::Required(accepted) = request.nonce {
            match nonce {
                None => return Err(Violation::DpopNonceMissing.into()),
                Some(n) if !accepted.contains(&n) => return Err(Violation::DpopNonceMismatch.into()),
                Some(_) => {}
            }
        }
        check_proof_age(iat, now, self.policy.leeway, self.policy.max_age)?;
        match (request.access_token, m.str("ath")?) {
            (Some(_), None) => return Err(Error::MissingClaim("ath")),
            (Some(token), Some(ath)) if ath != token_hash(provider, token) => {
                return Err(Error::TokenHashMismatch {
                    claim: "ath",
                    what: "access token".into(),
                });
            }
            (None, Some(_)) => return Err(Error::ForbiddenClaim("ath")),
            _ => {}
        }
        Ok(VerifiedDpopProof {
            jkt,
            jti: jti.to_owned(),
            iat: UnixTime(iat),
            replay_until: UnixTime(iat).plus(self.policy.max_age),
            jwk,
            algorithm: alg,
            nonce: nonce.map(str::to_owned),
        })
    }
}

/// How many proof keys a [`DpopVerifier`] keeps parsed; when full it starts over.
const PROOF_KEYS: usize = 1024;

/// The keys of recent DPoP proofs, parsed, with their RFC 7638 thumbprints: keyed by the
/// algorithm and the thumbprint input (the members that define a public key, so two
/// JWKs under one entry are the same key).
#[derive(Default)]
struct ProofKeys {
    keys: Mutex<HashMap<String, ProofKey>>,
}

/// A parsed proof key and its thumbprint (`jkt`).
type ProofKey = (Arc<dyn VerifyingKey>, String);

impl fmt::Debug for ProofKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofKeys").field("len", &self.lock().len()).finish()
    }
}

impl ProofKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProofKey>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key `jwk` describes, for `alg`, and its thumbprint: from the cache, or parsed
    /// (a key that does not parse is refused and not remembered).
    fn get_or_parse(&self, jwk: &Jwk, alg: Algorithm, provider: &dyn CryptoProvider) -> Result<ProofKey, Error> {
        // The thumbprint members leave out an RSA key's stray `crv`: a JWK that does not
        // fit `alg` bypasses the cache, so the provider refuses it every time.
        if !jwk.fits(alg) {
            return Err(provider
                .verifying_key(jwk, alg)
                .err()
                .unwrap_or_else(|| Error::InvalidKey(format!("the proof's key does not fit {alg}"))));
        }
        let input = jwk.thumbprint_input()?;
        let mut id = String::with_capacity(alg.as_str().len() + 1 + input.len());
        id.push_str(alg.as_str());
        id.push(' ');
        id.push_str(&input);
        if let Some((key, jkt)) = self.lock().get(&id) {
            return Ok((Arc::clone(key), jkt.clone()));
        }
        let key = provider.verifying_key(jwk, alg)?;
        let jkt = crate::jose::base64url::encode(&provider.sha256(input.as_bytes()));
        let mut keys = self.lock();
        if keys.len() >= PROOF_KEYS {
            keys.clear();
        }
        keys.insert(id, (Arc::clone(&key), jkt.clone()));
        Ok((key, jkt))
    }
}

/// What a new DPoP proof covers.
#[derive(Clone, Copy, Debug)]
pub struct DpopProofParams<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The request URI (query and fragment are left out of `htu`).
    pub uri: &'a str,
    /// The access token sent with the request, at a protected resource (adds `ath`).
    pub access_token: Option<&'a str>,
    /// The server's latest `DPoP-Nonce`, if it gave one.
    pub nonce: Option<&'a str>,
}

/// A proof's `iat` (RFC 9449 §11.1, and the client attestation PoP of
/// draft-ietf-oauth-attestation-based-client-auth): at most `leeway` seconds in the future
/// and at most `max_age` seconds in the past.
pub(crate) fn check_proof_age(iat: u64, now: UnixTime, leeway: u64, max_age: u64) -> Result<(), Error> {
    let now_s = now.as_secs();
    if iat > now_s.saturating_add(leeway) {
        return Err(Error::NotYetValid {
            claim: "iat",
            value: iat,
            now: now_s,
        });
    }
    if now_s.saturating_sub(iat) > max_age {
        return Err(Violation::StaleProof {
            iat,
            now: now_s,
            max_age,
        }
        .into());
    }
    Ok(())
}

/// Creates a DPoP proof with `key` at `now`: header `{typ, alg, jwk}` (the public key),
/// claims `jti` (128 random bits), `htm`, `htu` (normalised, without query), `iat`, and
/// `ath`/`nonce` when given.
pub fn create_dpop_proof(
    key: &dyn SigningKey,
    params: &DpopProofParams<'_>,
    now: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<String, Error> {
    if params.method.is_empty() || !params.method.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid_claim("htm", "must be an HTTP method"));
    }
    #[derive(Serialize)]
    struct Header<'a> {
        typ: &'a str,
        alg: &'a str,
        jwk: &'a Jwk,
    }
    #[derive(Serialize)]
    struct Claims<'a> {
        jti: String,
        htm: &'a str,
        htu: String,
        iat: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        ath: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<&'a str>,
    }
    let jwk = key.public_jwk().to_public();
    let header = Header {
        typ: TokenType::DpopProof.typ(),
        alg: key.algorithm().as_str(),
        jwk: &jwk,
    };
    let claims = Claims {
        jti: new_jti(provider)?,
        htm: params.method,
        htu: normalize_http_uri(params.uri)?,
        iat: now.as_secs(),
        ath: params.access_token.map(|t| token_hash(provider, t)),
        nonce: params.nonce,
    };
    sign_with_header(&header, &claims, key)
}

/// The `ath` of `access_token` (RFC 9449 §4.2): base64url(SHA-256(ASCII token)).
pub fn access_token_hash(provider: &dyn CryptoProvider, access_token: &str) -> String {
    token_hash(provider, access_token)
}
