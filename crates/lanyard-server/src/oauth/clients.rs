//! Registering OAuth clients (the admin API and CLI call these): a registration is checked
//! before it is stored, so a misregistered client fails at once rather than at its first
//! token request; a client with a secret method gets a generated secret, returned once
//! and stored only as its Argon2id hash.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use lanyard_core::UnixTime;
use lanyard_core::oauth::{AuthMethod, Scope, VerificationKeys};

use super::secret::hash_secret;
use crate::error::ServerError;
use crate::model::{OAuthClient, OAuthClientSpec};
use crate::state::AppState;

/// A client just created, with its secret when it has one (shown once, never stored).
#[derive(Clone)]
pub struct CreatedClient {
    /// The stored client.
    pub client: OAuthClient,
    /// The generated secret, for clients registered with a secret method.
    pub secret: Option<String>,
}

impl std::fmt::Debug for CreatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedClient")
            .field("client", &self.client)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn invalid(message: impl Into<String>) -> ServerError {
    ServerError::Invalid(message.into())
}

/// Checks a registration: known methods (never `none`); keys for `private_key_jwt` (a
/// public JWK Set or an `https` `jwks_uri`, not both); SPIFFE ID patterns for the SVID
/// methods; valid scope tokens; non-empty audiences; known grant types.
pub fn validate_spec(spec: &OAuthClientSpec, crypto: &dyn lanyard_core::CryptoProvider) -> Result<(), ServerError> {
    if spec.auth_methods.is_empty() {
        return Err(invalid("a client needs at least one authentication method"));
    }
    for method in &spec.auth_methods {
        match method {
            AuthMethod::PrivateKeyJwt => match (&spec.jwks, &spec.jwks_uri) {
                (Some(jwks), None) => {
                    if jwks.keys.iter().any(lanyard_core::Jwk::is_private) {
                        return Err(invalid("jwks must hold public keys only"));
                    }
                    if jwks.keys.is_empty() {
                        return Err(invalid("jwks holds no key"));
                    }
                    VerificationKeys::from_jwks(crypto, "client", jwks).map_err(|e| invalid(e.to_string()))?;
                }
                (None, Some(uri)) => {
                    lanyard_core::oauth::check_remote_url(uri)
                        .map_err(|p| invalid(format!("jwks_uri {}", p.as_str())))?;
                }
                _ => return Err(invalid("private_key_jwt needs exactly one of jwks and jwks_uri")),
            },
            AuthMethod::SpiffeJwt | AuthMethod::SpiffeX509 | AuthMethod::TlsClientAuth | AuthMethod::SpiffeWit => {
                if spec.spiffe_ids.is_empty() {
                    return Err(invalid(format!("{method} needs at least one SPIFFE ID pattern")));
                }
            }
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {}
            other => return Err(invalid(format!("authentication method {other} is not supported"))),
        }
    }
    Scope::from_tokens(spec.scopes.iter()).map_err(|e| invalid(e.to_string()))?;
    if spec
        .audiences
        .iter()
        .any(|a| a.is_empty() || a.chars().any(char::is_control))
    {
        return Err(invalid("audiences must be non-empty strings"));
    }
    if let Some(unknown) = spec.grant_types.iter().find(|g| !g.is_known()) {
        return Err(invalid(format!("unknown grant type {unknown}")));
    }
    super::exchange::validate_policy(&spec.exchange)?;
    Ok(())
}

fn wants_secret(spec: &OAuthClientSpec) -> bool {
    spec.allows(&AuthMethod::ClientSecretBasic) || spec.allows(&AuthMethod::ClientSecretPost)
}

/// A fresh secret (256 random bits, base64url) and its hash.
fn new_secret(state: &AppState) -> Result<(String, String), ServerError> {
    let mut bytes = [0u8; 32];
    state.crypto.fill_random(&mut bytes)?;
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_secret(&secret, state.crypto.as_ref()).ok_or_else(|| invalid("could not hash the secret"))?;
    Ok((secret, hash))
}

/// Registers a client (see [`validate_spec`]); a secret is generated when a secret
/// method is allowed.
pub async fn create_client(
    state: &AppState,
    client_id: &str,
    spec: OAuthClientSpec,
    now: UnixTime,
) -> Result<CreatedClient, ServerError> {
    validate_spec(&spec, state.crypto.as_ref())?;
    let (secret, secret_hash) = if wants_secret(&spec) {
        let (secret, hash) = new_secret(state)?;
        (Some(secret), Some(hash))
    } else {
        (None, None)
    };
    let client = OAuthClient {
        client_id: client_id.to_owned(),
        spec,
        has_secret: secret_hash.is_some(),
        secret_hash,
        revision: 1,
        created_at: now,
    };
    state.stores.clients.create_client(&client).await?;
    Ok(CreatedClient { client, secret })
}

/// Replaces a client's registration; its secret is kept (dropped when no secret method
/// remains; generated, and returned, when one is added).
pub async fn update_client(
    state: &AppState,
    client_id: &str,
    spec: OAuthClientSpec,
    expected_revision: Option<u64>,
) -> Result<CreatedClient, ServerError> {
    validate_spec(&spec, state.crypto.as_ref())?;
    let mut client = state
        .stores
        .clients
        .get_client(client_id)
        .await?
        .map(Arc::unwrap_or_clone)
        .ok_or_else(|| ServerError::NotFound(format!("client {client_id:?}")))?;
    let mut secret = None;
    if !wants_secret(&spec) {
        client.secret_hash = None;
    } else if client.secret_hash.is_none() {
        let (fresh, hash) = new_secret(state)?;
        secret = Some(fresh);
        client.secret_hash = Some(hash);
    }
    client.spec = spec;
    let client = state.stores.clients.update_client(&client, expected_revision).await?;
    Ok(CreatedClient { client, secret })
}
