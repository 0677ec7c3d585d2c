//! The Workload Proof Token (WPT), draft-ietf-wimse-wpt-02 §2 (carriage in `super::http`).
//!
//! ```text
//! header: {"alg": <= WIT cnf.jwk.alg>, "typ": "wpt+jwt"}
//! claims: {"aud": <target URI without query>, "exp": <short>, "jti": ..., "wth": <hash of WIT>,
//!          "tth"?: <hash of Txn-Token>, "oth"?: {<lower-case header name>: <hash of its trimmed value>}}
//! ```
//!
//! **`ath` and access tokens.** -02 removed `ath`: a request with a WPT cannot present a
//! `Bearer` or `DPoP` access token, and a recipient must not use one (§2.2). By default
//! a verifier therefore refuses an access token presented with the proof
//! ([`Error::AccessTokenWithWpt`]), and refuses a WPT that still carries `ath`
//! ([`Error::ForbiddenClaim`]): such a proof binds a bearer token that -02 forbids in the
//! request, so its sender expects the recipient to honour a token it must not use; failing
//! loudly beats silently dropping a binding the sender relies on. [`create_wpt`] never
//! emits `ath`. The -01 rules (an access token beside the proof in the legacy
//! `Workload-Proof-Token` carriage, bound by `ath`) apply only with
//! [`WptPolicy::accept_wpt01`] / [`WptParams::wpt01`].
//!
//! **Lifetime.** `exp - now` may not exceed [`WptPolicy::max_lifetime`] (300 s by default,
//! with no leeway added), and `create_wpt` refuses a longer lifetime.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::wit::{VerifiedWit, WitVerifier};
use crate::crypto::{CryptoProvider, SigningKey};
use crate::error::Error;
use crate::jose::json::Members;
use crate::jose::{CompactJws, TokenType, base64url, sign_compact};
use crate::replay::ReplayCache;
use crate::time::UnixTime;
use crate::trust::{self, Window};

/// The longest WPT lifetime the default policy accepts, and the longest [`create_wpt`]
/// makes, in seconds ("minutes or seconds", -02 §2).
pub const MAX_WPT_LIFETIME: u64 = 300;

/// What a WPT verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct WptPolicy {
    /// The longest remaining lifetime `exp - now` of a proof, in seconds ("minutes or
    /// seconds"); the leeway is not added to it.
    pub max_lifetime: u64,
    /// Clock skew tolerated on `exp`, in seconds. Replay records are kept until
    /// `exp + leeway`, the last moment the proof could be accepted.
    pub leeway: u64,
    /// The wpt-01 compatibility switch (off by default): accept an access token presented
    /// with the proof and check its `ath`, as draft-ietf-wimse-wpt-01 did. Turn it on only
    /// together with the legacy `Workload-Proof-Token` carriage
    /// (`CarriageConfig::accept_legacy_header`).
    pub accept_wpt01: bool,
}

impl Default for WptPolicy {
    fn default() -> Self {
        WptPolicy {
            max_lifetime: MAX_WPT_LIFETIME,
            leeway: 60,
            accept_wpt01: false,
        }
    }
}

/// The tokens a request presents: the WIT, its proof, and the tokens the proof binds.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProofTokens<'a> {
    /// The `Workload-Identity-Token` value.
    pub wit: &'a str,
    /// The WPT.
    pub wpt: &'a str,
    /// An OAuth access token sent with the request. wpt-02 forbids it: refused unless
    /// [`WptPolicy::accept_wpt01`] is on, when `ath` must bind it (wpt-01).
    pub access_token: Option<&'a str>,
    /// A Txn-Token sent with the request (bound by `tth`).
    pub txn_token: Option<&'a str>,
    /// Other context tokens the service will use, as (header name, value) (bound by `oth`).
    pub other_tokens: &'a [(&'a str, &'a str)],
}

/// The checked claims of a WPT.
#[derive(Clone, Debug)]
pub struct WptClaims {
    /// `aud`.
    pub aud: Vec<String>,
    /// `exp`.
    pub exp: UnixTime,
    /// `jti`.
    pub jti: String,
    /// The header names bound through `oth`.
    pub oth: Vec<String>,
}

/// A request whose WIT and WPT both verified.
#[derive(Clone, Debug)]
pub struct VerifiedProof {
    /// The verified WIT (the caller's identity).
    pub wit: Arc<VerifiedWit>,
    /// The verified proof.
    pub wpt: WptClaims,
}

/// Verifies a WIT together with its WPT, with replay protection.
#[derive(Clone, Debug)]
pub struct WptVerifier {
    wit: WitVerifier,
    policy: WptPolicy,
    replay: Arc<dyn ReplayCache>,
}

impl WptVerifier {
    /// A verifier that checks WITs with `wit` and records proofs in `replay`.
    pub fn new(wit: WitVerifier, policy: WptPolicy, replay: Arc<dyn ReplayCache>) -> WptVerifier {
        WptVerifier { wit, policy, replay }
    }

    /// The WIT verifier.
    pub fn wit_verifier(&self) -> &WitVerifier {
        &self.wit
    }

    /// Verifies the WIT, then the WPT for a request to `audience` (the target URI without
    /// query or fragment, built from trusted configuration, never from `Host`), at `now`.
    ///
    /// The proof is recorded against replay only after every other check passed.
    ///
    /// A Txn-Token or other context token in `tokens` is accepted only when the proof binds
    /// it (`tth`, `oth`), so after success every presented token is bound.
    pub fn verify(&self, tokens: &ProofTokens<'_>, audience: &str, now: UnixTime) -> Result<VerifiedProof, Error> {
        if tokens.access_token.is_some() && !self.policy.accept_wpt01 {
            return Err(Error::AccessTokenWithWpt {
                scheme: "Bearer".into(),
            });
        }
        let wit = self.wit.verify(tokens.wit, now)?;
        let claims = wit.verify_proof(tokens.wpt, TokenType::Wpt)?;
        let times = trust::check_window(
            &claims,
            now,
            Window {
                leeway: self.policy.leeway,
                max_lifetime: self.policy.max_lifetime,
                token: "WPT",
            },
        )?;
        let m = Members(&claims);
        let aud = m.req_audiences()?;
        if !aud.iter().any(|a| a == audience) {
            return Err(Error::WrongAudience {
                expected: audience.to_owned(),
                found: aud,
            });
        }
        if m.req_str("wth")? != wit.wth() {
            return Err(Error::TokenHashMismatch {
                claim: "wth",
                what: "Workload-Identity-Token".into(),
            });
        }
        let provider = self.wit.store().provider().as_ref();
        if self.policy.accept_wpt01 {
            check_bound_token(m, "ath", tokens.access_token, "access token", provider)?;
        } else if claims.contains_key("ath") {
            return Err(Error::ForbiddenClaim("ath"));
        }
        check_bound_token(m, "tth", tokens.txn_token, "Txn-Token", provider)?;
        let oth = check_other_tokens(m, tokens.other_tokens, provider)?;
        let jti = m.req_str("jti")?;
        if jti.is_empty() {
            return Err(Error::invalid_claim("jti", "must not be empty"));
        }
        self.replay
            .check_and_record(wit.sub.as_str(), jti, times.exp.plus(self.policy.leeway), now)?;
        Ok(VerifiedProof {
            wpt: WptClaims {
                aud,
                exp: times.exp,
                jti: jti.to_owned(),
                oth,
            },
            wit,
        })
    }
}

/// `ath`/`tth`: present exactly when the request carries the token, and equal to its hash.
fn check_bound_token(
    m: Members<'_>,
    claim: &'static str,
    token: Option<&str>,
    what: &str,
    provider: &dyn CryptoProvider,
) -> Result<(), Error> {
    match (m.str(claim)?, token) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(Error::MissingClaim(claim)),
        (Some(hash), Some(token)) if hash == token_hash(provider, token) => Ok(()),
        (Some(_), _) => Err(Error::TokenHashMismatch {
            claim,
            what: what.to_owned(),
        }),
    }
}

/// `oth`: every entry must name a presented header whose trimmed value hashes to it, and
/// every presented other token must be covered (wpt-01 §2: unknown entries reject, and
/// uncovered tokens must not be used).
fn check_other_tokens(
    m: Members<'_>,
    presented: &[(&str, &str)],
    provider: &dyn CryptoProvider,
) -> Result<Vec<String>, Error> {
    let empty = serde_json::Map::new();
    let oth = m.object("oth")?.unwrap_or(&empty);
    for (name, hash) in oth {
        let Value::String(hash) = hash else {
            return Err(Error::malformed("oth values must be strings"));
        };
        let value = presented
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
            .ok_or_else(|| Error::UnknownOtherToken(name.clone()))?;
        if *hash != token_hash(provider, value.trim_matches([' ', '\t'])) {
            return Err(Error::TokenHashMismatch {
                claim: "oth",
                what: format!("{name} header"),
            });
        }
    }
    if let Some((name, _)) = presented
        .iter()
        .find(|(n, _)| !oth.keys().any(|k| k.eq_ignore_ascii_case(n)))
    {
        return Err(Error::invalid_claim("oth", format!("does not bind the {name} header")));
    }
    Ok(oth.keys().cloned().collect())
}

/// base64url(SHA-256(ASCII token)): the value of `wth`, `ath`, `tth` and `oth` entries.
pub(crate) fn token_hash(provider: &dyn CryptoProvider, token: &str) -> String {
    base64url::encode(&provider.sha256(token.as_bytes()))
}

/// What a new WPT binds.
#[derive(Clone, Copy, Debug, Default)]
pub struct WptParams<'a> {
    /// The WIT this proof accompanies.
    pub wit: &'a str,
    /// The target URI without query or fragment (see [`super::audience_for`]).
    pub audience: &'a str,
    /// Lifetime in seconds, at most [`MAX_WPT_LIFETIME`].
    pub lifetime: u64,
    /// wpt-01 only: an access token sent beside the WPT in the legacy carriage (adds
    /// `ath`). Refused unless [`WptParams::wpt01`] is set: wpt-02 forbids it.
    pub access_token: Option<&'a str>,
    /// A Txn-Token sent with the request (adds `tth`).
    pub txn_token: Option<&'a str>,
    /// Other context tokens sent with the request, as (header name, value) (adds `oth`).
    pub other_tokens: &'a [(&'a str, &'a str)],
    /// Make a draft-ietf-wimse-wpt-01 proof, which may bind an access token with `ath`
    /// (for peers that still read the `Workload-Proof-Token` header).
    pub wpt01: bool,
}

/// Creates a WPT with the workload's private key at `now`.
///
/// Refuses what a default verifier would refuse: a key that is not the one in the WIT's
/// `cnf.jwk` (so a mismatched proof is caught by the sender rather than by every
/// receiver), a lifetime over [`MAX_WPT_LIFETIME`], an audience with a query or fragment,
/// and (unless [`WptParams::wpt01`]) an access token to bind.
pub fn create_wpt(
    key: &dyn SigningKey,
    params: &WptParams<'_>,
    now: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<String, Error> {
    let wit = CompactJws::parse(params.wit)?;
    let wit_claims = wit.claims()?;
    let cnf = Members(&wit_claims)
        .object("cnf")?
        .and_then(|c| c.get("jwk"))
        .ok_or(Error::MissingClaim("cnf.jwk"))?;
    let cnf = crate::jose::Jwk::from_value(cnf)?;
    if cnf.alg.as_deref() != Some(key.algorithm().as_str()) {
        return Err(Error::AlgorithmMismatch {
            expected: cnf.alg.unwrap_or_default(),
            found: key.algorithm().to_string(),
        });
    }
    if cnf.thumbprint(provider)? != key.public_jwk().thumbprint(provider)? {
        return Err(Error::InvalidKey("the signing key is not the WIT's cnf.jwk".into()));
    }
    if params.lifetime > MAX_WPT_LIFETIME {
        return Err(Error::LifetimeTooLong {
            token: "WPT",
            lifetime: params.lifetime,
            max: MAX_WPT_LIFETIME,
        });
    }
    if params.access_token.is_some() && !params.wpt01 {
        return Err(Error::AccessTokenWithWpt {
            scheme: "Bearer".into(),
        });
    }
    if params.audience.is_empty() || params.audience.contains(['?', '#']) {
        return Err(Error::invalid_claim(
            "aud",
            "must be a target URI without query or fragment",
        ));
    }
    let mut jti = [0u8; 16];
    provider.fill_random(&mut jti)?;
    #[derive(Serialize)]
    struct Out<'a> {
        aud: &'a str,
        exp: u64,
        jti: String,
        wth: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        ath: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tth: Option<String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        oth: BTreeMap<String, String>,
    }
    let out = Out {
        aud: params.audience,
        exp: now.plus(params.lifetime).as_secs(),
        jti: base64url::encode(&jti),
        wth: token_hash(provider, params.wit),
        ath: params.access_token.map(|t| token_hash(provider, t)),
        tth: params.txn_token.map(|t| token_hash(provider, t)),
        oth: params
            .other_tokens
            .iter()
            .map(|(n, v)| {
                (
                    n.to_ascii_lowercase(),
                    token_hash(provider, v.trim_matches([' ', '\t'])),
                )
            })
            .collect(),
    };
    sign_compact(Some(TokenType::Wpt.typ()), None, &out, key)
}
