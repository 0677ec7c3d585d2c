//! The OAuth 2.0 authorization server for workloads (issue 12): client authentication
//! without secrets (SPIFFE JWT-SVIDs, `private_key_jwt`, and optionally client secrets),
//! the token endpoint with grant dispatch (`client_credentials`, token exchange with the
//! Transaction Token Service and identity chaining, the JWT bearer grant), RFC 9068
//! access tokens signed by the key
//! manager's [`AuthorityKind::AccessToken`](crate::model::AuthorityKind) authority,
//! sender-constrained with DPoP (RFC 9449), introspection (RFC 7662), revocation (RFC 7009)
//! and metadata (RFC 8414).
//!
//! The wire objects and verifiers (forms, assertions, DPoP proofs, tokens) are
//! `lanyard_core::oauth`'s; this module adds the state: registered clients
//! ([`ClientStore`](crate::datastore::ClientStore)), replay state shared by every replica
//! ([`JtiStore`](crate::datastore::JtiStore): assertion and proof `jti`s, revoked tokens),
//! the trust bundles JWT-SVIDs are verified with, and the DPoP nonces. It does not speak
//! HTTP: `endpoints/oauth.rs` extracts, calls [`AuthorizationServer`], and maps
//! [`OAuthError`] with [`OAuthError::response`], the one mapping to RFC 6749 responses.
//!
//! | file | what |
//! |---|---|
//! | `client_auth.rs` | one client authentication method per request (RFC 6749 §2.3), `client_id` required with SPIFFE methods (draft-ietf-oauth-spiffe-client-auth, editor's copy after PR #44) |
//! | `grant.rs` | the token request: grant dispatch, scope/resource/audience limits (RFC 8707) |
//! | `exchange.rs` | token exchange (RFC 8693): subject and actor tokens, delegation and impersonation under the client's policy |
//! | `issuers.rs` | trusted external issuers: their tokens as subject or actor tokens of an exchange, verified (RFC 8725) and mapped to a workload identifier by the configured rules |
//! | `remote_keys.rs` | other parties' keys (home servers, trusted issuers, clients' `jwks_uri`): configured `jwks_uri` or discovery (OIDC Discovery §4, RFC 8414), cache, rate-limited refetch for an unknown `kid` |
//! | `chaining.rs` | identity chaining (draft-ietf-oauth-identity-chaining-17): JWT authorization grants as the home server, the JWT bearer grant (RFC 7523 §2.1) as the foreign one |
//! | `txn.rs` | the Transaction Token Service (draft-ietf-oauth-transaction-tokens-11): Txn-Tokens, replacement, the call chain per `txn` |
//! | `wit.rs` | workload credentials by token exchange: WITs (Lanyard's `urn:lanyard:params:oauth:token-type:wit`, behind `[oauth] issue_wits`), bound to the request's DPoP key; JWT-SVIDs (`...:token-type:jwt`, behind `[oauth] issue_jwt_svids`) |
//! | `mtls.rs` | the mutual-TLS listener's TLS config and the X.509-SVID check (RFC 8705) |
//! | `tokens.rs` | access-token issue, DPoP binding and nonces, introspection, revocation, sender-constrained tokens at the server's own resources |
//! | `clients.rs` | registering clients (validation, generated secrets) |
//! | `secret.rs` | Argon2id hashes of client secrets |
//! | `error.rs` | [`OAuthError`] and its response |

mod chaining;
mod client_auth;
pub mod clients;
mod error;
mod exchange;
mod grant;
mod issuers;
pub mod mtls;
mod remote_keys;
mod secret;
mod tokens;
mod txn;
mod wit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use lanyard_core::oauth::{
    ClientAssertionPolicy, ClientAttestationPolicy, ClientAttestationVerifier, DpopPolicy, DpopVerifier,
    PrivateKeyJwtVerifier, SpiffeAssertionPolicy, SpiffeAssertionVerifier, VerificationKeys, check_issuer_identifier,
};
use lanyard_core::{JwkSet, SpiffeBundle, TrustDomain, TrustStore, UnixTime};
use lanyard_x509::{X509Bundle, X509BundleSet};

pub(crate) use chaining::check_subject_template;
pub(crate) use client_auth::method_name;
pub use client_auth::{AuthenticatedClient, ClientCertificate};
pub use error::{ClientAuthError, OAuthError, WireError};
pub use grant::TokenOutcome;
pub use tokens::{BoundAccessToken, DpopContext, ResourceRequest};

use crate::state::AppState;

/// Paths of the authorization server's endpoints on the public listener.
pub mod paths {
    /// The token endpoint.
    pub const TOKEN: &str = "/oauth/token";
    /// The introspection endpoint (RFC 7662).
    pub const INTROSPECT: &str = "/oauth/introspect";
    /// The revocation endpoint (RFC 7009).
    pub const REVOKE: &str = "/oauth/revoke";
    /// The access-token JWK Set.
    pub const JWKS: &str = "/oauth/jwks";
    /// RFC 8414 metadata (for an issuer without a path).
    pub const METADATA: &str = "/.well-known/oauth-authorization-server";
}

/// The SHA-256 secret name under which replicas share the DPoP nonce key.
const NONCE_SECRET: &str = "oauth-dpop-nonce";

/// How long keys fetched from a `jwks_uri` (a client's, a trusted issuer's, a home
/// server's) are used before fetching again.
const JWKS_URI_CACHE_SECS: u64 = 300;

/// A client's parsed registered keys, by client: the registered set and its keys.
type KeyCache = HashMap<String, (JwkSet, VerificationKeys)>;

/// The authorization server of one Lanyard server (or replica).
pub struct AuthorizationServer {
    state: AppState,
    issuer: String,
    /// Base URL of the mutual-TLS listener, when it runs (RFC 8705 §5 aliases).
    mtls_base: Option<String>,
    private_key_jwt: PrivateKeyJwtVerifier,
    jwt_spiffe: SpiffeAssertionVerifier,
    wit_attestation: ClientAttestationVerifier,
    trust: Arc<TrustStore>,
    /// The X.509 authorities of the same trust domains, for mutual-TLS client
    /// certificates; rebuilt with `trust` by [`AuthorizationServer::refresh_trust`].
    x509: RwLock<Arc<X509BundleSet>>,
    dpop: DpopVerifier,
    nonce_key: Vec<u8>,
    client_keys: Mutex<KeyCache>,
    http: reqwest::Client,
    txn_chains: txn::TxnChains,
    remote_keys: remote_keys::RemoteKeys,
    trusted_issuers: issuers::TrustedIssuers,
    /// The parsed access-token keys and when they were read.
    own_keys: Mutex<Option<(UnixTime, VerificationKeys)>>,
}

impl std::fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.issuer)
            .field("mtls_base", &self.mtls_base)
            .finish_non_exhaustive()
    }
}

impl AuthorizationServer {
    /// The authorization server over `state`: the issuer is `[oauth] issuer` or the public
    /// URL; `mtls_base` is the mutual-TLS listener's base URL when it runs. Loads the
    /// shared DPoP nonce key and the trust bundles.
    pub async fn new(state: AppState, mtls_base: Option<String>) -> Result<AuthorizationServer, OAuthError> {
        let issuer = state
            .config
            .oauth
            .issuer
            .clone()
            .unwrap_or_else(|| state.public_url.trim_end_matches('/').to_owned());
        // A configured `[oauth] issuer` was checked with the configuration; one taken from
        // the public URL is only warned about, so that a server reachable on a plain-HTTP
        // address still starts (RFC 8414 §2 asks for https: clients may refuse it).
        if state.config.oauth.issuer.is_none()
            && let Err(problem) = check_issuer_identifier(&issuer)
        {
            tracing::warn!(issuer = %lanyard_core::oauth::loggable_url(&issuer), error = ?problem.to_string(), "the OAuth issuer taken from the public URL is not a valid issuer identifier; set [oauth] issuer or public_url to an https URL");
        }
        let mut candidate = [0u8; 32];
        state.crypto.fill_random(&mut candidate).map_err(OAuthError::Issue)?;
        let nonce_key = state
            .stores
            .secrets
            .get_or_create_secret(NONCE_SECRET, &candidate)
            .await?;
        let trust = Arc::new(TrustStore::new(Arc::clone(&state.crypto)));
        let trusted_issuers =
            issuers::TrustedIssuers::new(&state.config.oauth, state.trust_domain.name(), state.crypto.as_ref())
                .map_err(OAuthError::Issue)?;
        let server = AuthorizationServer {
            private_key_jwt: PrivateKeyJwtVerifier::new(issuer.clone(), ClientAssertionPolicy::default()),
            jwt_spiffe: SpiffeAssertionVerifier::new(
                Arc::clone(&trust),
                issuer.clone(),
                SpiffeAssertionPolicy::default(),
            ),
            wit_attestation: ClientAttestationVerifier::new(
                Arc::clone(&trust),
                issuer.clone(),
                ClientAttestationPolicy::default(),
            ),
            dpop: DpopVerifier::new(Arc::clone(&state.crypto), DpopPolicy::default()),
            trust,
            x509: RwLock::new(Arc::new(X509BundleSet::new())),
            nonce_key,
            issuer,
            mtls_base,
            client_keys: Mutex::new(HashMap::new()),
            txn_chains: txn::TxnChains::default(),
            remote_keys: remote_keys::RemoteKeys::default(),
            trusted_issuers,
            own_keys: Mutex::new(None),
            // Keys come only from the URL configured or discovered: no redirect may move
            // them to another (possibly plain-HTTP) origin.
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| OAuthError::Setup(format!("building the HTTP client: {e}")))?,
            state,
        };
        server.refresh_trust().await?;
        Ok(server)
    }

    /// The issuer identifier (RFC 8414 §2), without a trailing slash unless configured so.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The public endpoint URL for `path`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.state.public_url.trim_end_matches('/'))
    }

    /// The mutual-TLS alias of `path`, when the listener runs.
    pub fn mtls_endpoint(&self, path: &str) -> Option<String> {
        self.mtls_base
            .as_ref()
            .map(|base| format!("{}{path}", base.trim_end_matches('/')))
    }

    /// Reloads the trust bundles JWT-SVIDs and client certificates are verified with: the
    /// server's own trust domain and every federated one stored; trust domains no longer
    /// stored are dropped. The composition root calls it after each key rotation (a new CA
    /// is published, PREPARED, long before it signs), so requests never read bundles from
    /// the datastore.
    pub async fn refresh_trust(&self) -> Result<(), OAuthError> {
        let own = self.state.keys.bundle().await?;
        self.trust.set_bundle(&own).map_err(OAuthError::Issue)?;
        let mut x509 = X509BundleSet::new();
        let mut add_x509 = |bundle: &SpiffeBundle| {
            if let Ok(b) = X509Bundle::from_spiffe_bundle(bundle) {
                x509.insert(b);
            }
        };
        add_x509(&own);
        let mut keep = vec![own.trust_domain.name().to_owned()];
        for name in self.state.stores.federated_bundles.list_federated_bundles().await? {
            let Some((json, _)) = self.state.stores.federated_bundles.get_federated_bundle(&name).await? else {
                continue;
            };
            let parsed = TrustDomain::parse(&name)
                .ok()
                .and_then(|td| SpiffeBundle::parse(td, json.as_bytes()).ok());
            match parsed {
                Some(bundle) => {
                    add_x509(&bundle);
                    if let Err(e) = self.trust.set_bundle(&bundle) {
                        tracing::warn!(trust_domain = %name, error = %e, "federated bundle not usable for client authentication");
                        continue;
                    }
                    keep.push(name);
                }
                None => tracing::warn!(trust_domain = %name, "stored federated bundle unreadable"),
            }
        }
        for name in self.trust.trust_domains() {
            if !keep.contains(&name) {
                self.trust.remove_trust_domain(&name);
            }
        }
        *self.x509.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(x509);
        Ok(())
    }

    fn cached_keys(&self, client_id: &str, jwks: &JwkSet) -> Option<VerificationKeys> {
        let cache = self.client_keys.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(client_id)
            .filter(|(registered, _)| registered == jwks)
            .map(|(_, k)| k.clone())
    }

    fn cache_keys(&self, client_id: &str, jwks: &JwkSet, keys: &VerificationKeys) {
        let mut cache = self.client_keys.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(client_id.to_owned(), (jwks.clone(), keys.clone()));
    }
}
