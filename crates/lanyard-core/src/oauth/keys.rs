//! A JWK Set (RFC 7517 §5) parsed once for verifying signatures: a client's registered keys
//! (`private_key_jwt`, RFC 7523 §3) or an authorization server's published keys (its
//! `jwks_uri`, RFC 8414 §2) at a resource server.
//!
//! Each key is parsed for every algorithm it may verify (one per algorithm, as in the
//! [`crate::TrustStore`]), so a verification costs the signature check alone. A token's key
//! is the one with its `kid`; without a `kid`, the single key that fits its `alg` (two
//! fitting keys refuse, rather than try each).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::crypto::{CryptoProvider, VerifyingKey};
use crate::error::Error;
use crate::jose::json::Members;
use crate::jose::{AlgSet, Algorithm, CompactJws, JwkSet, TypRule};
use crate::oauth::violation::{Violation, clip};
use crate::trust::{TrustAnchor, select_anchor};

/// Parsed public keys of one owner (a client, an authorization server).
#[derive(Clone)]
pub struct VerificationKeys {
    owner: String,
    anchors: Vec<Arc<TrustAnchor>>,
}

impl fmt::Debug for VerificationKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKeys")
            .field("owner", &self.owner)
            .field("kids", &self.anchors.iter().map(|a| a.kid()).collect::<Vec<_>>())
            .finish()
    }
}

impl VerificationKeys {
    /// Parses `jwks`, the keys of `owner` (named in errors).
    ///
    /// Keys whose `use` is present and not `sig` (encryption keys in a published set) are
    /// skipped. Every other key must be usable for some allowed algorithm, and `kid`s must
    /// be unique: a set that breaks either is refused ([`Error::InvalidKey`]), so a
    /// misregistered client fails at registration rather than at its first request.
    /// Private members are dropped.
    pub fn from_jwks(
        provider: &dyn CryptoProvider,
        owner: impl Into<String>,
        jwks: &JwkSet,
    ) -> Result<VerificationKeys, Error> {
        let owner = owner.into();
        let mut kids = HashSet::new();
        let mut anchors = Vec::with_capacity(jwks.keys.len());
        for jwk in &jwks.keys {
            if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            if let Some(kid) = &jwk.kid
                && !kids.insert(kid.clone())
            {
                return Err(Error::InvalidKey(format!("two keys of {owner} have kid {kid:?}")));
            }
            let anchor = TrustAnchor::parse(provider, &owner, jwk).map_err(|e| {
                Error::InvalidKey(format!(
                    "key {} of {owner}: {e}",
                    jwk.kid
                        .as_deref()
                        .map_or_else(|| "without kid".to_owned(), |k| format!("{k:?}"))
                ))
            })?;
            anchors.push(Arc::new(anchor));
        }
        Ok(VerificationKeys { owner, anchors })
    }

    /// Whose keys these are.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The public keys, as a JWK Set.
    pub fn to_jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.anchors.iter().map(|a| a.jwk().clone()).collect(),
        }
    }

    /// The key that must have signed a token with `kid` and `alg`.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Algorithm) -> Result<&Arc<dyn VerifyingKey>, Error> {
        let unknown = |reason| -> Error {
            Violation::UnknownKey {
                owner: self.owner.clone(),
                kid: kid.map(str::to_owned),
                reason,
            }
            .into()
        };
        if self.anchors.is_empty() {
            return Err(unknown("no keys are registered"));
        }
        select_anchor(&self.anchors, kid, alg, unknown).map(|(_, key)| key)
    }

    /// Verifies `jws`'s signature with the key its header selects (the caller has checked
    /// `alg` against its allow-list).
    pub(crate) fn verify(&self, jws: &CompactJws<'_>, alg: Algorithm) -> Result<(), Error> {
        let key = self.select(jws.header().kid.as_deref(), alg)?;
        jws.verify_signature(key.as_ref())
    }

    /// Parses a compact JWS and checks, in this order, its `typ` against `typ`, its `alg`
    /// against `algorithms` (refused as not on `list`'s allow-list), and its signature with
    /// the key its header selects. Returns the JWS and its algorithm; the claims are the
    /// caller's to check.
    pub(crate) fn verify_typed<'t>(
        &self,
        token: &'t str,
        typ: TypRule,
        algorithms: AlgSet,
        list: &'static str,
    ) -> Result<(CompactJws<'t>, Algorithm), Error> {
        let jws = CompactJws::parse(token)?;
        typ.check(jws.header().typ.as_deref())?;
        let alg = jws.header().algorithm()?;
        if !algorithms.contains(alg) {
            return Err(Error::AlgorithmNotAllowed {
                alg: alg.to_string(),
                reason: list,
            });
        }
        self.verify(&jws, alg)?;
        Ok((jws, alg))
    }

    /// [`verify_typed`](Self::verify_typed) for a token of `issuer`: then reads the claims,
    /// whose `iss` must be exactly `issuer`. Returns the JWS, its algorithm and its claims.
    pub(crate) fn verify_issued<'t>(
        &self,
        token: &'t str,
        typ: TypRule,
        algorithms: AlgSet,
        list: &'static str,
        issuer: &str,
    ) -> Result<(CompactJws<'t>, Algorithm, Map<String, Value>), Error> {
        let (jws, alg) = self.verify_typed(token, typ, algorithms, list)?;
        let claims = jws.claims()?;
        let iss = Members(&claims).req_str("iss")?;
        if iss != issuer {
            return Err(Violation::IssuerMismatch {
                expected: issuer.to_owned(),
                found: clip(iss, 256),
            }
            .into());
        }
        Ok((jws, alg, claims))
    }
}
