//! How an OAuth client authenticates at the token endpoint: [`ClientCredentialSource`]
//! and its fixed implementations (the agent-fed one is `WorkloadApiClientCredentials`,
//! feature `workload-api`).

use std::fmt;
use std::sync::Arc;

use lanyard_core::SigningKey;

use crate::error::Error;

/// A credential for one token request.
#[non_exhaustive]
#[derive(Clone)]
pub enum ClientCredential {
    /// A JWT-SVID whose `aud` is the authorization server's issuer alone, sent as a
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-spiffe` client assertion
    /// (draft-ietf-oauth-spiffe-client-auth §3.1).
    JwtSvid(String),
    /// A key that signs a fresh `private_key_jwt` assertion for every request (RFC 7523
    /// §2.2 with draft-ietf-oauth-rfc7523bis-11: `aud` the issuer alone,
    /// `typ: client-authentication+jwt`).
    PrivateKeyJwt {
        /// The client's private key (registered with the authorization server).
        key: Arc<dyn SigningKey>,
        /// The `kid` to write (the key's own when `None`).
        kid: Option<String>,
    },
    /// Mutual TLS (RFC 8705 §2; an X.509-SVID, `tls_client_auth`): the HTTP client of
    /// [`ClientCredentialSource::mtls_client`] presents the certificate; the form carries
    /// only `client_id`.
    Mtls,
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCredential::JwtSvid(_) => f.write_str("JwtSvid(<redacted>)"),
            ClientCredential::PrivateKeyJwt { kid, .. } => f
                .debug_struct("PrivateKeyJwt")
                .field("kid", kid)
                .finish_non_exhaustive(),
            ClientCredential::Mtls => f.write_str("Mtls"),
        }
    }
}

/// Supplies the client's credential for each token request.
#[async_trait::async_trait]
pub trait ClientCredentialSource: Send + Sync + fmt::Debug {
    /// The credential for a token request to the authorization server whose issuer
    /// identifier is `issuer` (a JWT-SVID must name it as its only audience).
    async fn credential(&self, issuer: &str) -> Result<ClientCredential, Error>;

    /// For [`ClientCredential::Mtls`]: the HTTP client that presents the X.509-SVID to the
    /// token endpoint (its `mtls_endpoint_aliases` entry when the metadata has one).
    fn mtls_client(&self) -> Option<reqwest::Client> {
        None
    }
}

/// `private_key_jwt` with a fixed key.
#[derive(Clone, Debug)]
pub struct PrivateKeyJwtSource {
    /// The client's private key.
    pub key: Arc<dyn SigningKey>,
    /// The `kid` to write (the key's own when `None`).
    pub kid: Option<String>,
}

#[async_trait::async_trait]
impl ClientCredentialSource for PrivateKeyJwtSource {
    async fn credential(&self, _issuer: &str) -> Result<ClientCredential, Error> {
        Ok(ClientCredential::PrivateKeyJwt {
            key: Arc::clone(&self.key),
            kid: self.kid.clone(),
        })
    }
}

/// A fixed JWT-SVID (its `aud` must be the issuer; for tests and short-lived jobs — the
/// agent-fed source fetches fresh ones).
#[derive(Clone)]
pub struct StaticJwtSvid(pub String);

impl fmt::Debug for StaticJwtSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticJwtSvid(<redacted>)")
    }
}

#[async_trait::async_trait]
impl ClientCredentialSource for StaticJwtSvid {
    async fn credential(&self, _issuer: &str) -> Result<ClientCredential, Error> {
        Ok(ClientCredential::JwtSvid(self.0.clone()))
    }
}

/// Mutual TLS with an HTTP client that already presents the client certificate. It must
/// not follow redirects (`reqwest::redirect::Policy::none()`): a 307 or 308 would send the
/// token request to another host.
#[derive(Clone, Debug)]
pub struct MtlsClientCredentials(pub reqwest::Client);

#[async_trait::async_trait]
impl ClientCredentialSource for MtlsClientCredentials {
    async fn credential(&self, _issuer: &str) -> Result<ClientCredential, Error> {
        Ok(ClientCredential::Mtls)
    }

    fn mtls_client(&self) -> Option<reqwest::Client> {
        Some(self.0.clone())
    }
}
