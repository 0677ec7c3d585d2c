//! Trust anchors: the JWT and WIT signing keys of each trust domain, configured out of
//! band (from SPIFFE bundles or by hand), and the one signature-check pipeline that the
//! WIT and JWT-SVID verifiers share.
//!
//! Keys are chosen from the trust domain of the token's *subject*, never from `iss` or
//! any URL inside the token (draft-ietf-wimse-workload-creds §3, JWT-SVID.md §4).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};

use crate::crypto::{CryptoProvider, VerifyingKey};
use crate::error::Error;
use crate::id::{TrustDomain, WorkloadId};
use crate::jose::json::Members;
use crate::jose::{AlgSet, Algorithm, CompactJws, Jwk, TypRule};
use crate::spiffe::SpiffeBundle;
use crate::time::UnixTime;

/// What a trust-anchor key signs (the `use` of a SPIFFE bundle entry).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// JWT-SVID signing keys (`"use": "jwt-svid"`).
    JwtSvid,
    /// WIT signing keys (`"use": "wit-svid"`, WIT-SVID.md §6.1); also used for WIMSE WITs.
    WitSvid,
}

impl KeyUse {
    /// The bundle `use` value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::JwtSvid => "jwt-svid",
            KeyUse::WitSvid => "wit-svid",
        }
    }
}

/// One trusted public key, parsed once for every algorithm it may verify.
pub struct TrustAnchor {
    trust_domain: String,
    jwk: Jwk,
    keys: Vec<Arc<dyn VerifyingKey>>,
}

impl TrustAnchor {
    /// The trust domain the key belongs to.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The key's `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.jwk.kid.as_deref()
    }

    /// The public JWK.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Parses the public part of `jwk` once for every algorithm it may verify; `owner`
    /// names whose key it is (a trust domain, or the holder of a key set).
    pub(crate) fn parse(provider: &dyn CryptoProvider, owner: &str, jwk: &Jwk) -> Result<TrustAnchor, Error> {
        let public = jwk.to_public();
        let keys = public
            .usable_algorithms()?
            .iter()
            .map(|alg| provider.verifying_key(&public, alg))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustAnchor {
            trust_domain: owner.to_owned(),
            jwk: public,
            keys,
        })
    }

    fn key_for(&self, alg: Algorithm) -> Option<&Arc<dyn VerifyingKey>> {
        self.keys.iter().find(|k| k.algorithm() == alg)
    }
}

impl fmt::Debug for TrustAnchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustAnchor")
            .field("trust_domain", &self.trust_domain)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

#[derive(Default, Clone)]
struct DomainAnchors {
    jwt: Vec<Arc<TrustAnchor>>,
    wit: Vec<Arc<TrustAnchor>>,
}

impl DomainAnchors {
    fn list(&self, key_use: KeyUse) -> &Vec<Arc<TrustAnchor>> {
        match key_use {
            KeyUse::JwtSvid => &self.jwt,
            KeyUse::WitSvid => &self.wit,
        }
    }
    fn list_mut(&mut self, key_use: KeyUse) -> &mut Vec<Arc<TrustAnchor>> {
        match key_use {
            KeyUse::JwtSvid => &mut self.jwt,
            KeyUse::WitSvid => &mut self.wit,
        }
    }
}

/// The trust anchors of every trust domain this process trusts.
///
/// Cheap to read concurrently. Every removal or replacement of a key advances
/// [`TrustStore::epoch`], which is how caches of verified tokens notice that what they
/// hold may no longer be trusted.
pub struct TrustStore {
    provider: Arc<dyn CryptoProvider>,
    domains: RwLock<HashMap<String, Arc<DomainAnchors>>>,
    epoch: AtomicU64,
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore")
            .field("trust_domains", &self.trust_domains())
            .field("epoch", &self.epoch())
            .finish()
    }
}

impl TrustStore {
    /// An empty store whose keys are parsed by `provider`.
    pub fn new(provider: Arc<dyn CryptoProvider>) -> TrustStore {
        TrustStore {
            provider,
            domains: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        }
    }

    /// The crypto provider the store parses keys with.
    pub fn provider(&self) -> &Arc<dyn CryptoProvider> {
        &self.provider
    }

    /// Advances on every removal or replacement of a key.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The trust domains that have at least one key.
    pub fn trust_domains(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Trusts `jwk` (its public part) for `key_use` in `trust_domain`. A key with the same
    /// `kid` is replaced.
    pub fn add_key(&self, trust_domain: &str, key_use: KeyUse, jwk: &Jwk) -> Result<(), Error> {
        let td = TrustDomain::parse(trust_domain).map_err(|source| Error::InvalidIdentifier {
            context: "trust domain",
            source,
        })?;
        let anchor = Arc::new(self.parse_anchor(td.name(), jwk)?);
        self.update(td.name(), |d| {
            let list = d.list_mut(key_use);
            let before = list.len();
            list.retain(|a| a.kid().is_none() || a.kid() != anchor.kid());
            let replaced = list.len() != before;
            list.push(anchor);
            replaced
        });
        Ok(())
    }

    /// Stops trusting the key `kid` for `key_use` in `trust_domain`. Returns whether it was there.
    pub fn remove_key(&self, trust_domain: &str, key_use: KeyUse, kid: &str) -> bool {
        self.update(trust_domain, |d| {
            let list = d.list_mut(key_use);
            let before = list.len();
            list.retain(|a| a.kid() != Some(kid));
            list.len() != before
        })
    }

    /// Replaces the JWT and WIT keys of the bundle's trust domain with the bundle's.
    pub fn set_bundle(&self, bundle: &SpiffeBundle) -> Result<(), Error> {
        let td = bundle.trust_domain.name();
        let parse = |keys: &[Jwk]| -> Result<Vec<Arc<TrustAnchor>>, Error> {
            keys.iter().map(|k| self.parse_anchor(td, k).map(Arc::new)).collect()
        };
        let fresh = DomainAnchors {
            jwt: parse(&bundle.jwt_authorities)?,
            wit: parse(&bundle.wit_authorities)?,
        };
        let mut domains = self.write();
        domains.insert(td.to_owned(), Arc::new(fresh));
        self.epoch.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Stops trusting every key of `trust_domain`. Returns whether it had any.
    pub fn remove_trust_domain(&self, trust_domain: &str) -> bool {
        let removed = self.write().remove(trust_domain).is_some();
        if removed {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        removed
    }

    /// The public keys trusted for `key_use` in `trust_domain`.
    pub fn keys(&self, trust_domain: &str, key_use: KeyUse) -> Vec<Jwk> {
        self.domain(trust_domain)
            .map(|d| d.list(key_use).iter().map(|a| a.jwk.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether `anchor` is still trusted for `key_use` (the very same key, not just its kid).
    pub fn still_trusts(&self, anchor: &Arc<TrustAnchor>, key_use: KeyUse) -> bool {
        self.domain(&anchor.trust_domain)
            .is_some_and(|d| d.list(key_use).iter().any(|a| Arc::ptr_eq(a, anchor)))
    }

    /// Picks the key that must have signed a token from `trust_domain` with `kid` and `alg`.
    pub(crate) fn select(
        &self,
        trust_domain: &str,
        key_use: KeyUse,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<(Arc<TrustAnchor>, Arc<dyn VerifyingKey>), Error> {
        let unknown = |reason| Error::UnknownKey {
            trust_domain: trust_domain.to_owned(),
            kid: kid.map(str::to_owned),
            reason,
        };
        let domain = self
            .domain(trust_domain)
            .ok_or_else(|| unknown("the trust domain has no trust anchors"))?;
        let list = domain.list(key_use);
        if list.is_empty() {
            return Err(unknown("the trust domain has no trust anchors for this token type"));
        }
        let (anchor, key) = select_anchor(list, kid, alg, unknown)?;
        Ok((Arc::clone(anchor), Arc::clone(key)))
    }

    fn parse_anchor(&self, trust_domain: &str, jwk: &Jwk) -> Result<TrustAnchor, Error> {
        TrustAnchor::parse(self.provider.as_ref(), trust_domain, jwk)
    }

    fn domain(&self, trust_domain: &str) -> Option<Arc<DomainAnchors>> {
        self.read().get(trust_domain).cloned()
    }

    /// Applies `change` to a copy of the domain's anchors; `change` says whether it removed
    /// or replaced something (which advances the epoch).
    fn update(&self, trust_domain: &str, change: impl FnOnce(&mut DomainAnchors) -> bool) -> bool {
        let mut domains = self.write();
        let mut anchors = domains.get(trust_domain).map(|d| (**d).clone()).unwrap_or_default();
        let removed = change(&mut anchors);
        if anchors.jwt.is_empty() && anchors.wit.is_empty() {
            domains.remove(trust_domain);
        } else {
            domains.insert(trust_domain.to_owned(), Arc::new(anchors));
        }
        if removed {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        removed
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<DomainAnchors>>> {
        self.domains.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<DomainAnchors>>> {
        self.domains.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Picks, among `anchors`, the key that must have signed a token with `kid` and `alg`: the
/// anchor with that `kid`, or without a `kid` the single anchor that fits `alg`. `unknown`
/// builds the error when none (or several) fit.
pub(crate) fn select_anchor<'a>(
    anchors: &'a [Arc<TrustAnchor>],
    kid: Option<&str>,
    alg: Algorithm,
    unknown: impl Fn(&'static str) -> Error,
) -> Result<(&'a Arc<TrustAnchor>, &'a Arc<dyn VerifyingKey>), Error> {
    let anchor = match kid {
        Some(kid) => anchors
            .iter()
            .find(|a| a.kid() == Some(kid))
            .ok_or_else(|| unknown("no trusted key has this kid"))?,
        None => {
            let mut fitting = anchors.iter().filter(|a| a.key_for(alg).is_some());
            match (fitting.next(), fitting.next()) {
                (Some(a), None) => a,
                (None, _) => return Err(unknown("no trusted key fits the algorithm")),
                (Some(_), Some(_)) => return Err(unknown("the token has no kid and several trusted keys fit")),
            }
        }
    };
    let key = anchor.key_for(alg).ok_or_else(|| Error::AlgorithmMismatch {
        expected: anchor
            .jwk
            .alg
            .clone()
            .unwrap_or_else(|| format!("an algorithm for a {} key", anchor.jwk.kty)),
        found: alg.to_string(),
    })?;
    Ok((anchor, key))
}

/// What the shared pipeline needs to know about a token kind.
pub(crate) struct AnchoredProfile {
    pub(crate) typ: TypRule,
    pub(crate) key_use: KeyUse,
    pub(crate) allowed: AlgSet,
    pub(crate) require_kid: bool,
}

/// A token whose structure, type, algorithm, subject and signature have been checked.
pub(crate) struct SignedToken<'a> {
    pub(crate) jws: CompactJws<'a>,
    pub(crate) claims: Map<String, Value>,
    pub(crate) sub: WorkloadId,
    pub(crate) anchor: Arc<TrustAnchor>,
}

/// The checks every anchor-signed token shares, in the order the WIMSE and SPIFFE
/// drafts give: structure, `typ` (with the token-type confusion guard), `alg` allow-list, subject identifier, then the key of
/// the subject's trust domain, then the signature. Time claims are the caller's next step.
pub(crate) fn verify_anchored<'a>(
    store: &TrustStore,
    token: &'a str,
    profile: &AnchoredProfile,
    subject_check: impl FnOnce(&WorkloadId) -> Result<(), Error>,
) -> Result<SignedToken<'a>, Error> {
    let jws = CompactJws::parse(token)?;
    let header = jws.header();
    profile.typ.check(header.typ.as_deref())?;
    let alg = header.algorithm()?;
    if !profile.allowed.contains(alg) {
        return Err(Error::AlgorithmNotAllowed {
            alg: alg.to_string(),
            reason: "not on this token type's allow-list",
        });
    }
    let claims = jws.claims()?;
    let sub = Members(&claims).req_str("sub")?;
    let sub = WorkloadId::parse(sub).map_err(|source| Error::InvalidIdentifier { context: "sub", source })?;
    subject_check(&sub)?;
    if profile.require_kid && header.kid.is_none() {
        return Err(Error::MissingKid);
    }
    let (anchor, key) = store.select(sub.trust_domain(), profile.key_use, header.kid.as_deref(), alg)?;
    jws.verify_signature(key.as_ref())?;
    Ok(SignedToken {
        jws,
        claims,
        sub,
        anchor,
    })
}

/// Validity window limits shared by the JWT-based tokens.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) leeway: u64,
    pub(crate) max_lifetime: u64,
    pub(crate) token: &'static str,
}

/// The time claims of a token, once checked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Times {
    pub(crate) exp: UnixTime,
    pub(crate) iat: Option<UnixTime>,
}

/// Checks `exp` (required), `nbf` and `iat` against `now` with bounded skew, and refuses
/// tokens that would stay valid for longer than the policy allows (RFC 7519 §4.1.4–4.1.6).
///
/// The leeway widens only the expiry and not-before checks: the remaining lifetime
/// `exp - now` may not exceed `max_lifetime` itself, so a 300 s maximum admits no proof
/// that lives 301 s (issuers therefore refuse to create longer ones).
pub(crate) fn check_window(claims: &Map<String, Value>, now: UnixTime, w: Window) -> Result<Times, Error> {
    let m = Members(claims);
    let exp = m.req_date("exp")?;
    let nbf = m.date("nbf")?;
    let iat = m.date("iat")?;
    let now_s = now.as_secs();
    if now_s > exp.saturating_add(w.leeway) {
        return Err(Error::Expired { exp, now: now_s });
    }
    for (claim, value) in [("nbf", nbf), ("iat", iat)] {
        if let Some(value) = value
            && value > now_s.saturating_add(w.leeway)
        {
            return Err(Error::NotYetValid {
                claim,
                value,
                now: now_s,
            });
        }
    }
    let lifetime = exp.saturating_sub(now_s);
    if lifetime > w.max_lifetime {
        return Err(Error::LifetimeTooLong {
            token: w.token,
            lifetime,
            max: w.max_lifetime,
        });
    }
    Ok(Times {
        exp: UnixTime(exp),
        iat: iat.map(UnixTime),
    })
}
