//! Client authentication at the token, introspection and revocation endpoints: exactly one
//! method per request (RFC 6749 §2.3, found by `lanyard_core::oauth::ClientAuthentication`),
//! the client looked up by `client_id`, the method allowed by its registration, then:
//!
//! - `private_key_jwt` (RFC 7523 §2.2 with draft-ietf-oauth-rfc7523bis-11): the assertion
//!   verified with the client's `jwks` (or `jwks_uri`, fetched and cached for 5 minutes
//!   and fetched again, at most once per `[oauth] client_jwks_refetch_interval`, when an
//!   assertion names an unknown `kid`: the client rotated its key; `remote_keys.rs`);
//!   its `jti` recorded per client in the shared [`JtiStore`](crate::datastore::JtiStore),
//!   so a reuse is refused on every replica and after a restart. `client_id` may be
//!   omitted (RFC 7523 §3): the assertion's `sub` names the client then.
//! - `jwt-spiffe` (draft-ietf-oauth-spiffe-client-auth §3.1, editor's copy after PR #44):
//!   `client_id` REQUIRED (unless `[oauth] derive_client_id_from_svid`, the compatibility
//!   switch, is on), the JWT-SVID verified with the keys of its `sub`'s trust domain (the
//!   server's own or a federated one), `aud` exactly the issuer, and the SPIFFE ID
//!   authorized for the client by its `spiffe_ids` patterns. No `jti` is required: agents
//!   reuse JWT-SVIDs.
//! - `spiffe_wit` (draft-ietf-oauth-spiffe-client-auth, WIT-SVID method, behind
//!   `[oauth] wit_client_auth`): `client_id` REQUIRED, the WIT-SVID in
//!   `OAuth-Client-Attestation` and its proof in `OAuth-Client-Attestation-PoP`
//!   (`lanyard_core::oauth::ClientAttestationVerifier`), the SPIFFE ID authorized for the
//!   client, and the proof's `jti` recorded per SPIFFE ID in the shared store.
//! - `client_secret_basic` / `client_secret_post` (RFC 6749 §2.3.1): only for clients
//!   registered with a secret, checked against its Argon2id hash.
//! - mutual TLS (RFC 8705 §2.1; `spiffe_x509` / `tls_client_auth`): a `client_id` with a
//!   client certificate on the connection; see [`ClientCertificate`].
//!
//! Every failure is `invalid_client` ([`OAuthError::InvalidClient`]) with a reason for the
//! audit line; unknown clients and bad credentials look alike on the wire unless `[oauth]
//! client_error_details` is on ([`ClientAuthError::is_public`]).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use lanyard_core::oauth::{
    AuthMethod, ClientAssertionType, ClientAuthentication, VerificationKeys, authorize_spiffe_id, unverified_client_id,
};
use lanyard_core::{JwkSet, SpiffeId, UnixTime};
use rustls::pki_types::CertificateDer;

use super::AuthorizationServer;
use super::error::{ClientAuthError, OAuthError};
use super::remote_keys::KeySource;
use super::secret::verify_secret;
use crate::model::OAuthClient;

/// A client certificate the TLS listener verified as an X.509-SVID of a trusted trust
/// domain (chain, exactly one URI SAN, leaf not a CA): its SPIFFE ID and the base64url
/// SHA-256 thumbprint of the leaf (`x5t#S256`, RFC 8705 §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The URI SAN.
    pub spiffe_id: SpiffeId,
    /// base64url(SHA-256(leaf DER)).
    pub thumbprint: String,
}

/// A client that authenticated.
#[derive(Clone, Debug)]
pub struct AuthenticatedClient {
    /// Its registration.
    pub client: Arc<OAuthClient>,
    /// The method it used.
    pub method: AuthMethod,
    /// The SPIFFE ID of the SVID it presented, for SPIFFE methods.
    pub spiffe_id: Option<SpiffeId>,
    /// The client certificate's thumbprint, for mutual TLS (binds tokens, RFC 8705 §3).
    pub certificate_thumbprint: Option<String>,
}

/// The method name of a request's authentication, for errors and audit lines.
pub(crate) fn method_name(auth: &ClientAuthentication, certificate: bool) -> &'static str {
    match auth {
        ClientAuthentication::SecretBasic { .. } => "client_secret_basic",
        ClientAuthentication::SecretPost { .. } => "client_secret_post",
        ClientAuthentication::Assertion { assertion_type, .. } => match assertion_type {
            ClientAssertionType::JwtBearer => "private_key_jwt",
            ClientAssertionType::JwtSpiffe => "spiffe_jwt",
            _ => "client_assertion",
        },
        ClientAuthentication::Attestation { .. } => "spiffe_wit",
        ClientAuthentication::ClientIdOnly { .. } if certificate => "spiffe_x509",
        _ => "none",
    }
}

impl AuthorizationServer {
    /// Authenticates the client of a request at `now`; `peer_chain` is the client
    /// certificate chain of the connection, if any (validated here, and only when the
    /// request uses mutual-TLS client authentication).
    pub async fn authenticate(
        &self,
        auth: &ClientAuthentication,
        peer_chain: Option<&[CertificateDer<'static>]>,
        now: UnixTime,
    ) -> Result<AuthenticatedClient, OAuthError> {
        let method = method_name(auth, peer_chain.is_some());
        let fail = |reason| OAuthError::client(method, reason);
        match auth {
            ClientAuthentication::None => Err(fail(ClientAuthError::Missing)),
            ClientAuthentication::SecretBasic { client_id, secret }
            | ClientAuthentication::SecretPost { client_id, secret } => {
                let wanted = if matches!(auth, ClientAuthentication::SecretBasic { .. }) {
                    AuthMethod::ClientSecretBasic
                } else {
                    AuthMethod::ClientSecretPost
                };
                let client = self
                    .registered(client_id, &wanted)
                    .await
                    .map_err(|r| r.into_error(method))?;
                let stored = client
                    .secret_hash
                    .clone()
                    .ok_or_else(|| fail(ClientAuthError::MethodNotAllowed))?;
                let presented = secret.expose().to_owned();
                // Argon2 is deliberately slow: off the async workers.
                let matches = tokio::task::spawn_blocking(move || verify_secret(&presented, &stored))
                    .await
                    .unwrap_or(false);
                if !matches {
                    return Err(fail(ClientAuthError::BadSecret));
                }
                Ok(authenticated(client, wanted, None, None))
            }
            ClientAuthentication::Assertion {
                client_id,
                assertion_type: ClientAssertionType::JwtBearer,
                assertion,
            } => {
                let client_id = match client_id {
                    Some(id) => id.clone(),
                    None => {
                        unverified_client_id(assertion.expose()).map_err(|e| fail(ClientAuthError::Credential(e)))?
                    }
                };
                let client = self
                    .registered(&client_id, &AuthMethod::PrivateKeyJwt)
                    .await
                    .map_err(|r| r.into_error(method))?;
                let verify =
                    |keys: &VerificationKeys| self.private_key_jwt.verify(assertion.expose(), &client_id, keys, now);
                let verified = match (&client.spec.jwks, &client.spec.jwks_uri) {
                    (Some(jwks), _) => verify(&self.registered_keys(&client, jwks).map_err(fail)?),
                    (None, Some(uri)) => {
                        // Cached per client and URL (a registration re-created under the
                        // same name with another URL never meets the old keys); an unknown
                        // `kid` (the client rotated its key) fetches the set again,
                        // rate-limited.
                        let cache_key = format!("client {client_id} {uri}");
                        let source = KeySource {
                            issuer: &client_id,
                            cache_key: &cache_key,
                            jwks_uri: Some(uri),
                            openid: false,
                            refetch_after: self.state.config.oauth.client_jwks_refetch_interval,
                        };
                        self.with_remote_keys(source, now, verify)
                            .await
                            .map_err(|why| fail(ClientAuthError::Keys(format!("jwks_uri: {why}"))))?
                    }
                    (None, None) => {
                        return Err(fail(ClientAuthError::Keys("no jwks or jwks_uri registered".into())));
                    }
                }
                .map_err(|e| fail(ClientAuthError::Credential(e)))?;
                if !self
                    .first_use("private_key_jwt", &client_id, &verified.jti, verified.replay_until, now)
                    .await?
                {
                    return Err(fail(ClientAuthError::Replay));
                }
                Ok(authenticated(client, AuthMethod::PrivateKeyJwt, None, None))
            }
            ClientAuthentication::Assertion {
                client_id,
                assertion_type: ClientAssertionType::JwtSpiffe,
                assertion,
            } => {
                if client_id.is_none() && !self.state.config.oauth.derive_client_id_from_svid {
                    return Err(fail(ClientAuthError::MissingClientId));
                }
                let verified = self
                    .jwt_spiffe
                    .verify(assertion.expose(), now)
                    .map_err(|e| fail(ClientAuthError::Credential(e)))?;
                let client_id = client_id
                    .clone()
                    .unwrap_or_else(|| verified.spiffe_id.as_str().to_owned());
                self.svid_client(&client_id, AuthMethod::SpiffeJwt, &verified.spiffe_id, method)
                    .await
                    .map(|client| authenticated(client, AuthMethod::SpiffeJwt, Some(verified.spiffe_id), None))
            }
            ClientAuthentication::Assertion { assertion_type, .. } => Err(fail(
                ClientAuthError::UnsupportedAssertionType(assertion_type.as_str().chars().take(100).collect()),
            )),
            ClientAuthentication::Attestation {
                client_id,
                attestation,
                pop,
            } => {
                if !self.state.config.oauth.wit_client_auth {
                    return Err(fail(ClientAuthError::UnsupportedAssertionType(
                        "attestation-based client authentication (spiffe_wit) is not enabled".into(),
                    )));
                }
                let client_id = client_id
                    .as_deref()
                    .ok_or_else(|| fail(ClientAuthError::MissingClientId))?;
                let verified = self
                    .wit_attestation
                    .verify(attestation.expose(), pop.expose(), Some(client_id), now)
                    .map_err(|e| fail(ClientAuthError::Credential(e)))?;
                let client = self
                    .svid_client(client_id, AuthMethod::SpiffeWit, &verified.spiffe_id, method)
                    .await?;
                let holder = verified.spiffe_id.as_str();
                if !self
                    .first_use(
                        "client_attestation_pop",
                        holder,
                        &verified.jti,
                        verified.replay_until,
                        now,
                    )
                    .await?
                {
                    return Err(fail(ClientAuthError::Replay));
                }
                Ok(authenticated(
                    client,
                    AuthMethod::SpiffeWit,
                    Some(verified.spiffe_id),
                    None,
                ))
            }
            ClientAuthentication::ClientIdOnly { client_id } => {
                let Some(chain) = peer_chain else {
                    return Err(fail(ClientAuthError::Missing));
                };
                let cert = &self.client_certificate(chain, now).await?;
                // RFC 8705 §2.1.2 `tls_client_auth` or the draft's `spiffe_x509`: either
                // registration admits an X.509-SVID authorized for the client.
                let client = self
                    .state
                    .stores
                    .clients
                    .get_client(client_id)
                    .await?
                    .ok_or_else(|| fail(ClientAuthError::UnknownClient))?;
                let used = [AuthMethod::SpiffeX509, AuthMethod::TlsClientAuth]
                    .into_iter()
                    .find(|m| client.spec.allows(m))
                    .ok_or_else(|| fail(ClientAuthError::MethodNotAllowed))?;
                authorize_spiffe_id(&client.spec.spiffe_ids, &cert.spiffe_id, client_id)
                    .map_err(|e| fail(ClientAuthError::Credential(e)))?;
                Ok(authenticated(
                    client,
                    used,
                    Some(cert.spiffe_id.clone()),
                    Some(cert.thumbprint.clone()),
                ))
            }
        }
    }

    /// The client `client_id`, registered for `method`, whose `spiffe_ids` admit `id`.
    async fn svid_client(
        &self,
        client_id: &str,
        method: AuthMethod,
        id: &SpiffeId,
        name: &'static str,
    ) -> Result<Arc<OAuthClient>, OAuthError> {
        let client = self
            .registered(client_id, &method)
            .await
            .map_err(|r| r.into_error(name))?;
        authorize_spiffe_id(&client.spec.spiffe_ids, id, client_id)
            .map_err(|e| OAuthError::client(name, ClientAuthError::Credential(e)))?;
        Ok(client)
    }

    /// The client `client_id` if it exists and may use `method`.
    async fn registered(&self, client_id: &str, method: &AuthMethod) -> Result<Arc<OAuthClient>, Lookup> {
        let client = self
            .state
            .stores
            .clients
            .get_client(client_id)
            .await
            .map_err(Lookup::Store)?
            .ok_or(Lookup::Refused(ClientAuthError::UnknownClient))?;
        if !client.spec.allows(method) {
            return Err(Lookup::Refused(ClientAuthError::MethodNotAllowed));
        }
        Ok(client)
    }

    /// The client's registered `jwks`, parsed once: the parsed keys are reused while the
    /// registration holds the very same set (a client deleted and registered again under
    /// its name with other keys never meets the old ones).
    fn registered_keys(&self, client: &OAuthClient, jwks: &JwkSet) -> Result<VerificationKeys, ClientAuthError> {
        if let Some(keys) = self.cached_keys(&client.client_id, jwks) {
            return Ok(keys);
        }
        let keys = VerificationKeys::from_jwks(self.state.crypto.as_ref(), client.client_id.clone(), jwks)
            .map_err(|e| ClientAuthError::Keys(e.to_string()))?;
        self.cache_keys(&client.client_id, jwks, &keys);
        Ok(keys)
    }

    /// Records the one-time value `jti` of `issuer` for `purpose` in the shared store until
    /// `until`: false when it was recorded before (a replay).
    pub(crate) async fn first_use(
        &self,
        purpose: &str,
        issuer: &str,
        jti: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, OAuthError> {
        let key = self.replay_key(purpose, issuer, jti);
        Ok(self.state.stores.jtis.record_jti(&key, until, now).await?)
    }

    /// The key under which a one-time value is recorded in the shared store: base64url
    /// SHA-256 of the purpose, the issuer and the `jti`, length-prefixed (43 bytes).
    pub(crate) fn replay_key(&self, purpose: &str, issuer: &str, jti: &str) -> String {
        let material = format!("{}:{purpose}{}:{issuer}{jti}", purpose.len(), issuer.len());
        URL_SAFE_NO_PAD.encode(self.state.crypto.sha256(material.as_bytes()))
    }
}

/// Why a client lookup failed.
enum Lookup {
    Store(crate::datastore::StoreError),
    Refused(ClientAuthError),
}

impl Lookup {
    fn into_error(self, method: &'static str) -> OAuthError {
        match self {
            Lookup::Store(e) => OAuthError::Store(e),
            Lookup::Refused(reason) => OAuthError::client(method, reason),
        }
    }
}

fn authenticated(
    client: Arc<OAuthClient>,
    method: AuthMethod,
    spiffe_id: Option<SpiffeId>,
    certificate_thumbprint: Option<String>,
) -> AuthenticatedClient {
    AuthenticatedClient {
        client,
        method,
        spiffe_id,
        certificate_thumbprint,
    }
}
