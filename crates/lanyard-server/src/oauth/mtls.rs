//! Mutual-TLS client authentication (RFC 8705 §2.1 with SPIFFE X.509-SVIDs,
//! draft-ietf-oauth-spiffe-client-auth §3.2): the TLS listener that serves the token,
//! introspection and revocation endpoints with the server's own X.509-SVID, requests
//! (never requires) a client certificate, and hands the presented chain to the
//! application; and the application's check of that chain.
//!
//! The TLS layer ([`OptionalClientCertVerifier::deferring`]) checks only the client's proof
//! of possession (the `CertificateVerify` signature) and accepts any chain: path
//! validation happens per request in [`AuthorizationServer::client_certificate`], against
//! the bundles of the server's own and every federated trust domain (which change while
//! connections stay open; kept parsed in memory and reloaded by
//! [`AuthorizationServer::refresh_trust`] after each rotation), so that a refused
//! certificate is an OAuth `invalid_client` answer rather than a TLS alert. The check: exactly one URI SAN holding a SPIFFE ID,
//! leaf not a CA, `digitalSignature`, EKU clientAuth, chain to the X.509 authorities of
//! the SPIFFE ID's trust domain, validity at `now`.

use std::sync::{Arc, PoisonError};

use rustls::pki_types::CertificateDer;
use rustls::server::NoServerSessionStorage;

use lanyard_core::oauth::certificate_thumbprint;
use lanyard_core::{TrustDomain, UnixTime};
use lanyard_x509::{SvidResolver, SvidSource, Usage, VerifiedSvid, VerifyOptions, X509BundleSet, verify_svid_chain};

use super::AuthorizationServer;
use super::client_auth::ClientCertificate;
use super::error::{ClientAuthError, OAuthError};
use crate::api::tls::OptionalClientCertVerifier;

/// The mutual-TLS listener's rustls config: TLS 1.3 and 1.2, the server's SVID from
/// `source`, an optional client certificate, no session resumption (a resumed session
/// would carry no certificate), ALPN `h2` and `http/1.1`.
pub fn tls_config(source: Arc<SvidSource>, trust_domain: TrustDomain) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::clone(source.provider());
    let verifier = OptionalClientCertVerifier::deferring(Arc::clone(&source), trust_domain);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(SvidResolver::new(source)));
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl AuthorizationServer {
    /// Validates a client certificate chain (leaf first) presented on the mutual-TLS
    /// listener at `now` (see the module documentation).
    pub async fn client_certificate(
        &self,
        chain: &[CertificateDer<'static>],
        now: UnixTime,
    ) -> Result<ClientCertificate, OAuthError> {
        let verified = self
            .verify_client_svid(chain, now)
            .map_err(|e| OAuthError::client("spiffe_x509", ClientAuthError::Certificate(e.to_string())))?;
        let leaf = chain.first().map(|c| c.as_ref()).unwrap_or_default();
        Ok(ClientCertificate {
            spiffe_id: verified.spiffe_id,
            thumbprint: certificate_thumbprint(self.state.crypto.as_ref(), leaf),
        })
    }

    /// Checks a client certificate chain (leaf first) at `now` as an X.509-SVID for client
    /// authentication (see the module documentation); the error says why the certificate
    /// is refused. Also the X.509-SVID authentication of the SD-CWT credential endpoint.
    pub fn verify_client_svid(
        &self,
        chain: &[CertificateDer<'static>],
        now: UnixTime,
    ) -> Result<VerifiedSvid, lanyard_x509::Error> {
        let bundles = self.x509_bundles();
        verify_svid_chain(chain, &bundles, now, &VerifyOptions::for_usage(Usage::ClientAuth))
    }

    /// The X.509 authorities of the server's own trust domain and of every federated one,
    /// as [`AuthorizationServer::refresh_trust`] last loaded them.
    fn x509_bundles(&self) -> Arc<X509BundleSet> {
        Arc::clone(&self.x509.read().unwrap_or_else(PoisonError::into_inner))
    }
}
