//! WIT-SVID client authentication (`spiffe_wit`): the WIT-SVID method of
//! draft-ietf-oauth-spiffe-client-auth (editor's copy, 2026-12), carried in the headers of
//! draft-ietf-oauth-attestation-based-client-auth-09 (ABCA) §6:
//!
//! ```text
//! OAuth-Client-Attestation:     <WIT-SVID>   typ wit+jwt (or oauth-client-attestation+jwt)
//! OAuth-Client-Attestation-PoP: <JWT>        typ oauth-client-attestation-pop+jwt,
//!                                            signed with the WIT's cnf.jwk key
//! PoP claims: {"aud": <issuer>, "jti": ..., "iat": ..., "iss"?: <SPIFFE ID>, "exp"?: ...,
//!              "challenge"?: ...}
//! ```
//!
//! The working group has not settled this method (spiffe-client-auth issue #39), so servers
//! offer it behind a switch.
//!
//! **The attestation** is verified as a WIT-SVID ([`WitVerifier`] under
//! [`WitPolicy::wit_svid`]): the key of its `sub`'s trust domain, `kid`, `exp`/`nbf`, no
//! `aud`, `cnf.jwk` with its `alg`. Both `typ` values are accepted, as the draft asks.
//!
//! **The proof of possession**, in this order: a compact JWS; `typ` exactly
//! `oauth-client-attestation-pop+jwt` (another known type is `typ_confusion`); `alg` equal
//! to `cnf.jwk.alg`; the signature by the `cnf` key; `aud` the issuer identifier as its
//! sole value (as for client assertions, rfc7523bis); `iss`, when present, the WIT's `sub`
//! or the request's `client_id` (ABCA drafts up to -07 named the client, the SPIFFE draft
//! names the SPIFFE ID); `jti` present, at most [`MAX_JTI_BYTES`](super::MAX_JTI_BYTES);
//! `iat` present, not in the future beyond the leeway and not older than `max_age`; `exp`
//! and `nbf`, when present, honoured. A `challenge` is not checked: this server offers no
//! challenge endpoint (ABCA §8), so freshness rests on `iat` and the `jti` replay record,
//! which the caller keeps until [`VerifiedClientAttestation::replay_until`].

use std::sync::Arc;

use serde_json::{Map, Value};

use super::client_assertion::check_sole_audience;
use super::dpop::check_proof_age;
use super::violation::{Violation, clip};
use super::{check_jti, new_jti};
use crate::crypto::{CryptoProvider, SigningKey};
use crate::error::Error;
use crate::id::{SpiffeId, WorkloadId};
use crate::jose::json::Members;
use crate::jose::{TokenType, sign_compact};
use crate::time::UnixTime;
use crate::trust::TrustStore;
use crate::wimse::{VerifiedWit, WitPolicy, WitVerifier};

/// What a `spiffe_wit` verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct ClientAttestationPolicy {
    /// The WIT-SVID rules for the attestation (the WIT-SVID profile, both `typ` values).
    pub wit: WitPolicy,
    /// Clock skew tolerated for the proof's `iat`, `nbf` and `exp`, in seconds (60).
    pub leeway: u64,
    /// How old a proof may be: `now - iat` at most this many seconds (300).
    pub max_age: u64,
}

impl Default for ClientAttestationPolicy {
    fn default() -> Self {
        ClientAttestationPolicy {
            wit: WitPolicy {
                accept_client_attestation_typ: true,
                ..WitPolicy::wit_svid()
            },
            leeway: 60,
            max_age: 300,
        }
    }
}

/// A WIT-SVID attestation and its proof that passed every check.
#[derive(Clone, Debug)]
pub struct VerifiedClientAttestation {
    /// The WIT-SVID's SPIFFE ID: authorize it for the request's `client_id` next.
    pub spiffe_id: SpiffeId,
    /// The verified WIT-SVID.
    pub wit: Arc<VerifiedWit>,
    /// The proof's `jti`: record it (per SPIFFE ID) until [`Self::replay_until`].
    pub jti: String,
    /// The proof's `iat`.
    pub iat: UnixTime,
    /// The last instant the proof could be accepted.
    pub replay_until: UnixTime,
}

/// Verifies `spiffe_wit` client authentication for one authorization server.
#[derive(Clone, Debug)]
pub struct ClientAttestationVerifier {
    issuer: String,
    wits: WitVerifier,
    policy: ClientAttestationPolicy,
}

impl ClientAttestationVerifier {
    /// A verifier for the authorization server `issuer`, with the WIT-SVID keys of the
    /// trusted trust domains in `store`.
    pub fn new(
        store: Arc<TrustStore>,
        issuer: impl Into<String>,
        policy: ClientAttestationPolicy,
    ) -> ClientAttestationVerifier {
        ClientAttestationVerifier {
            issuer: issuer.into(),
            wits: WitVerifier::new(store, policy.wit),
            policy,
        }
    }

    /// Verifies the `attestation` (a WIT-SVID) and its `pop` for a request naming
    /// `client_id` (if it did), at `now`.
    pub fn verify(
        &self,
        attestation: &str,
        pop: &str,
        client_id: Option<&str>,
        now: UnixTime,
    ) -> Result<VerifiedClientAttestation, Error> {
        let wit = self.wits.verify(attestation, now)?;
        let WorkloadId::Spiffe(spiffe_id) = &wit.sub else {
            // The WIT-SVID profile admits only SPIFFE IDs; kept as a check, not a panic.
            return Err(Error::invalid_claim("sub", "not a SPIFFE ID"));
        };
        let claims = wit.verify_proof(pop, TokenType::ClientAttestationPop)?;
        let m = Members(&claims);
        check_sole_audience(&m.req_audiences()?, &self.issuer)?;
        if let Some(iss) = m.str("iss")?
            && iss != spiffe_id.as_str()
            && Some(iss) != client_id
        {
            return Err(Violation::ClientIdMismatch {
                claim: "iss",
                client_id: client_id.unwrap_or(spiffe_id.as_str()).to_owned(),
                found: clip(iss, 256),
            }
            .into());
        }
        let jti = m.req_str("jti")?;
        check_jti(jti)?;
        let iat = self.check_times(&claims, now)?;
        Ok(VerifiedClientAttestation {
            spiffe_id: spiffe_id.clone(),
            jti: jti.to_owned(),
            iat,
            replay_until: iat.plus(self.policy.max_age + self.policy.leeway),
            wit,
        })
    }

    /// `iat` required and within the window; `nbf` and `exp` honoured when present.
    fn check_times(&self, claims: &Map<String, Value>, now: UnixTime) -> Result<UnixTime, Error> {
        let m = Members(claims);
        let (now_s, leeway) = (now.as_secs(), self.policy.leeway);
        let iat = m.req_date("iat")?;
        check_proof_age(iat, now, leeway, self.policy.max_age)?;
        if let Some(nbf) = m.date("nbf")?
            && nbf > now_s.saturating_add(leeway)
        {
            return Err(Error::NotYetValid {
                claim: "nbf",
                value: nbf,
                now: now_s,
            });
        }
        if let Some(exp) = m.date("exp")?
            && now_s > exp.saturating_add(leeway)
        {
            return Err(Error::Expired { exp, now: now_s });
        }
        Ok(UnixTime(iat))
    }
}

/// What a new client attestation proof says.
#[derive(Clone, Copy, Debug)]
pub struct ClientAttestationPopParams<'a> {
    /// The authorization server's issuer identifier (`aud`).
    pub issuer: &'a str,
    /// The workload's SPIFFE ID (`iss`), the WIT-SVID's `sub`.
    pub spiffe_id: &'a str,
    /// A server-provided challenge, if any.
    pub challenge: Option<&'a str>,
}

/// Creates an `OAuth-Client-Attestation-PoP` for the WIT-SVID whose `cnf` key is `key`:
/// `typ: oauth-client-attestation-pop+jwt`, `aud`, `iss`, a fresh 128-bit `jti`, `iat`.
pub fn create_client_attestation_pop(
    key: &dyn SigningKey,
    params: &ClientAttestationPopParams<'_>,
    now: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<String, Error> {
    let mut claims = Map::new();
    claims.insert("iss".into(), params.spiffe_id.into());
    claims.insert("aud".into(), params.issuer.into());
    claims.insert("jti".into(), new_jti(provider)?.into());
    claims.insert("iat".into(), now.as_secs().into());
    if let Some(challenge) = params.challenge {
        claims.insert("challenge".into(), challenge.into());
    }
    sign_compact(Some(TokenType::ClientAttestationPop.typ()), None, &claims, key)
}
