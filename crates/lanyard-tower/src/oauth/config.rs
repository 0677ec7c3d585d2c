//! What a resource server accepts: [`AccessTokenConfig`].

use std::fmt;
use std::sync::Arc;

use lanyard_core::oauth::{AccessTokenPolicy, DpopPolicy};
use lanyard_core::{Clock, CryptoProvider, ReplayCache, SystemClock};

use super::nonce::DpopNonces;

/// How an [`AccessTokenLayer`](super::AccessTokenLayer) verifies access tokens.
#[derive(Clone)]
pub struct AccessTokenConfig {
    /// The token rules (RFC 9068 §4): the authorization server's issuer identifier, this
    /// service's audiences, the `alg` allow-list, the clock skew (`leeway`).
    pub token: AccessTokenPolicy,
    /// `scheme://authority[/prefix]` this service is reached at, from configuration (never
    /// from `Host` or `X-Forwarded-*`): a DPoP proof's `htu` must be this plus the request
    /// path. By default the scheme and authority of the first audience, when it is an
    /// `http(s)` URL.
    pub public_base_url: Option<String>,
    /// Accept tokens that are not sender-constrained (no `cnf`), presented as `Bearer`
    /// (true by default). When false, only DPoP- or certificate-bound tokens pass.
    pub accept_bearer: bool,
    /// The DPoP proof rules (allowed `alg`s, how old `iat` may be, future skew).
    pub dpop: DpopPolicy,
    /// Server nonces for DPoP proofs (RFC 9449 §9); none required by default.
    pub dpop_nonces: Option<Arc<DpopNonces>>,
    /// Where DPoP proof `jti`s are remembered (keyed by the proof key's thumbprint); an
    /// in-memory cache of 100 000 by default. Share one store between replicas.
    pub replay_cache: Option<Arc<dyn ReplayCache>>,
    /// The `realm` of `WWW-Authenticate` challenges, if any.
    pub realm: Option<String>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Signature checks and thumbprints (the process default unless set).
    pub provider: Arc<dyn CryptoProvider>,
}

impl fmt::Debug for AccessTokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenConfig")
            .field("token", &self.token)
            .field("public_base_url", &self.public_base_url)
            .field("accept_bearer", &self.accept_bearer)
            .field("dpop", &self.dpop)
            .field("dpop_nonces", &self.dpop_nonces.is_some())
            .finish_non_exhaustive()
    }
}

impl AccessTokenConfig {
    /// Tokens from the authorization server `issuer` for the resource `audience` (e.g.
    /// `https://ledger.example.org`); bearer and DPoP accepted, 60 s skew, proofs up to
    /// 300 s old, no nonce.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> AccessTokenConfig {
        AccessTokenConfig {
            token: AccessTokenPolicy::new(issuer, audience),
            public_base_url: None,
            accept_bearer: true,
            dpop: DpopPolicy::default(),
            dpop_nonces: None,
            replay_cache: None,
            realm: None,
            clock: Arc::new(SystemClock),
            provider: crate::default_provider(),
        }
    }

    /// The base URL `htu` is checked against: [`AccessTokenConfig::public_base_url`], or the
    /// origin of the first audience when that is an `http(s)` URL.
    pub(super) fn htu_base(&self) -> Option<String> {
        if let Some(base) = &self.public_base_url {
            return Some(base.trim_end_matches('/').to_owned());
        }
        let audience = self.token.audiences.first()?;
        let (scheme, rest) = audience.split_once("://")?;
        if !matches!(scheme, "http" | "https") {
            return None;
        }
        let authority = rest.split(['/', '?', '#']).next().filter(|a| !a.is_empty())?;
        Some(format!("{scheme}://{authority}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_base_from_the_audience_or_the_configuration() {
        let c = AccessTokenConfig::new("https://as.example", "https://api.example:8443/ledger");
        assert_eq!(c.htu_base().as_deref(), Some("https://api.example:8443"));
        let c = AccessTokenConfig::new("https://as.example", "urn:ledger");
        assert_eq!(c.htu_base(), None);
        let mut c = AccessTokenConfig::new("https://as.example", "urn:ledger");
        c.public_base_url = Some("https://gw.example/v1/".into());
        assert_eq!(c.htu_base().as_deref(), Some("https://gw.example/v1"));
    }
}
