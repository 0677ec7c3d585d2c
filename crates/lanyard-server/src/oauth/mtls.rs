//! Mutual-TLS client authentication (RFC 8705 §2.1 with SPIFFE X.509-SVIDs,
//! draft-ietf-oauth-spiffe-client-auth §3.2): the TLS listener that serves the token,
//! introspection and revocation endpoints with the server's own X.509-SVID, requests
//! (never requires) a client certificate, and hands the presented chain to the
//! application; and the application's check of that chain.
//!
//! The TLS layer checks only the client's proof of possession (the `CertificateVerify`
//! signature, by rustls with the provider's algorithms) and accepts any chain: path
//! validation happens per request in [`AuthorizationServer::client_certificate`], against
//! the bundles of the server's own and every federated trust domain (which change while
//! connections stay open), so that a refused certificate is an OAuth `invalid_client`
//! answer rather than a TLS alert. The check: exactly one URI SAN holding a SPIFFE ID,
//! leaf not a CA, `digitalSignature`, EKU clientAuth, chain to the X.509 authorities of
//! the SPIFFE ID's trust domain, validity at `now`.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime as PkiTime};
use rustls::server::NoServerSessionStorage;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use lanyard_core::oauth::certificate_thumbprint;
use lanyard_core::{SpiffeBundle, TrustDomain, UnixTime};
use lanyard_x509::{SvidResolver, SvidSource, Usage, VerifyOptions, X509Bundle, X509BundleSet, verify_svid_chain};

use super::AuthorizationServer;
use super::client_auth::ClientCertificate;
use super::error::{ClientAuthError, OAuthError};

/// Requests a client certificate, does not require one, and defers its validation to the
/// application (see the module documentation); the handshake signature is still checked.
#[derive(Debug)]
struct DeferredClientCertVerifier {
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for DeferredClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: PkiTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Validated per request by `AuthorizationServer::client_certificate`.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The mutual-TLS listener's rustls config: TLS 1.3 and 1.2, the server's SVID from
/// `source`, an optional client certificate, no session resumption (a resumed session
/// would carry no certificate), ALPN `h2` and `http/1.1`.
pub fn tls_config(source: Arc<SvidSource>) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::clone(source.provider());
    let verifier = DeferredClientCertVerifier {
        algs: provider.signature_verification_algorithms,
    };
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
        let bundles = self.x509_bundles().await?;
        let verified = verify_svid_chain(chain, &bundles, now, &VerifyOptions::for_usage(Usage::ClientAuth))
            .map_err(|e| OAuthError::client("spiffe_x509", ClientAuthError::Certificate(e.to_string())))?;
        let leaf = chain.first().map(|c| c.as_ref()).unwrap_or_default();
        Ok(ClientCertificate {
            spiffe_id: verified.spiffe_id,
            thumbprint: certificate_thumbprint(self.state.crypto.as_ref(), leaf),
        })
    }

    /// The X.509 authorities of the server's own trust domain and of every federated one.
    async fn x509_bundles(&self) -> Result<X509BundleSet, OAuthError> {
        let own = self.state.keys.bundle().await?;
        let mut set = X509BundleSet::new();
        if let Ok(bundle) = X509Bundle::from_spiffe_bundle(&own) {
            set.insert(bundle);
        }
        let federated = &self.state.stores.federated_bundles;
        for name in federated.list_federated_bundles().await? {
            let Some((json, _)) = federated.get_federated_bundle(&name).await? else {
                continue;
            };
            let bundle = TrustDomain::parse(&name)
                .ok()
                .and_then(|td| SpiffeBundle::parse(td, json.as_bytes()).ok())
                .and_then(|b| X509Bundle::from_spiffe_bundle(&b).ok());
            if let Some(bundle) = bundle {
                set.insert(bundle);
            }
        }
        Ok(set)
    }
}
