//! Mutual TLS with X.509-SVIDs on rustls 0.23 (draft-ietf-wimse-mutual-tls-02, digest
//! `shared/specs/wimse.md` §6; peer validation per X509-SVID.md §5, see [`crate::verify`]).
//!
//! - Both sides present the current SVID of an [`SvidSource`] and validate the peer with
//!   the source's current bundles. The source is read on every handshake, so
//!   [`SvidSource::update_svid`] and [`SvidSource::update_bundles`] take effect for the
//!   next handshake without a restart; connections already established are untouched.
//! - The server always requests and requires a client certificate (mutual-tls-02: no
//!   post-handshake authentication).
//! - After path validation, the peer's SPIFFE ID must satisfy an [`Authorizer`]; otherwise
//!   the handshake fails with `rustls::Error::Other` wrapping [`Error::Unauthorized`]
//!   ("other error: SPIFFE ID … is not authorized: expected …"), and the peer gets a
//!   `handshake_failure` alert. Other validation failures are reported the same way
//!   (expiry as rustls' `CertificateError::ExpiredContext`).
//! - The client checks no DNS name by default (SVIDs usually carry none); per
//!   mutual-tls-02, a client talking to a server without DNS names MUST be configured with
//!   the server's expected identifier: use [`Authorizer::Exact`] (or `OneOf`). Name
//!   checking can be turned on with [`SpiffeServerCertVerifier::with_server_name_check`].
//! - TLS 1.3 and 1.2, aws-lc-rs provider (`builder_with_provider`, never the
//!   process-default provider).
//! - **Session resumption is off on both sides**: a resumed session skips certificate
//!   verification, so it would outlive a bundle update that revoked the peer's trust
//!   domain or an SVID rotation. Every connection is a full handshake against the
//!   current bundles.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use lanyard_core::{SpiffeId, TrustDomain, UnixTime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{self, CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, CommonState, DigitallySignedStruct, DistinguishedName, ServerConfig,
    SignatureScheme,
};

use crate::bundle::X509BundleSet;
use crate::cert;
use crate::error::Error;
use crate::svid::X509Svid;
use crate::verify::{Usage, VerifyOptions, verify_parts};

/// Which peer SPIFFE IDs a TLS endpoint accepts (after the chain has validated against
/// the bundle of the peer's trust domain).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authorizer {
    /// Any SVID of a trust domain in the bundle set.
    Any,
    /// Any SVID of this trust domain.
    TrustDomain(TrustDomain),
    /// Exactly this SPIFFE ID.
    Exact(SpiffeId),
    /// One of these SPIFFE IDs.
    OneOf(Vec<SpiffeId>),
}

impl Authorizer {
    /// `Ok` if `id` is allowed, else [`Error::Unauthorized`].
    pub fn authorize(&self, id: &SpiffeId) -> Result<(), Error> {
        let ok = match self {
            Authorizer::Any => true,
            Authorizer::TrustDomain(td) => id.trust_domain_name() == td.name(),
            Authorizer::Exact(want) => id == want,
            Authorizer::OneOf(list) => list.contains(id),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Unauthorized {
                id: id.clone(),
                expected: self.to_string(),
            })
        }
    }
}

impl fmt::Display for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authorizer::Any => f.write_str("any SPIFFE ID of a trusted trust domain"),
            Authorizer::TrustDomain(td) => write!(f, "a SPIFFE ID in trust domain {}", td.name()),
            Authorizer::Exact(id) => write!(f, "{id}"),
            Authorizer::OneOf(ids) => {
                f.write_str("one of [")?;
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{id}")?;
                }
                f.write_str("]")
            }
        }
    }
}

struct Current {
    key: Arc<CertifiedKey>,
    spiffe_id: SpiffeId,
}

/// The TLS identity of a workload: its current X.509-SVID (chain and key) and the X.509
/// bundles it trusts, both replaceable at runtime.
pub struct SvidSource {
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Current>>,
    bundles: RwLock<Arc<X509BundleSet>>,
}

impl fmt::Debug for SvidSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SvidSource")
            .field("spiffe_id", &self.spiffe_id())
            .field("trust_domains", &self.bundles().len())
            .finish_non_exhaustive()
    }
}

impl SvidSource {
    /// A source with this SVID (which must have its private key) and these bundles.
    pub fn new(svid: &X509Svid, bundles: X509BundleSet) -> Result<SvidSource, Error> {
        let provider = Arc::new(lanyard_crypto::rustls_provider());
        let current = certify(svid, &provider)?;
        Ok(SvidSource {
            provider,
            current: RwLock::new(Arc::new(current)),
            bundles: RwLock::new(Arc::new(bundles)),
        })
    }

    /// Replaces the SVID. Handshakes that start afterwards present the new one.
    pub fn update_svid(&self, svid: &X509Svid) -> Result<(), Error> {
        let current = Arc::new(certify(svid, &self.provider)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = current;
        Ok(())
    }

    /// Replaces the trusted bundles. Handshakes that start afterwards validate with them.
    pub fn update_bundles(&self, bundles: X509BundleSet) {
        *self.bundles.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(bundles);
    }

    /// The current SVID's SPIFFE ID.
    pub fn spiffe_id(&self) -> SpiffeId {
        self.current().spiffe_id.clone()
    }

    /// The current bundles.
    pub fn bundles(&self) -> Arc<X509BundleSet> {
        Arc::clone(&self.bundles.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The current certificate chain and signing key, as rustls uses them.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current().key)
    }

    /// The crypto provider the configs of this source use (aws-lc-rs).
    pub fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    fn current(&self) -> Arc<Current> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

fn certify(svid: &X509Svid, provider: &CryptoProvider) -> Result<Current, Error> {
    svid.check()?;
    let key = svid.key.as_ref().ok_or(Error::MissingKey)?;
    let spiffe_id = svid.spiffe_id()?;
    let certified = CertifiedKey::from_der(svid.chain.clone(), PrivateKeyDer::Pkcs8(key.clone_key()), provider)?;
    Ok(Current {
        key: Arc::new(certified),
        spiffe_id,
    })
}

/// Presents the source's current SVID, as a server or as a client.
#[derive(Debug)]
pub struct SvidResolver {
    source: Arc<SvidSource>,
}

impl SvidResolver {
    /// A resolver reading `source` on every handshake.
    pub fn new(source: Arc<SvidSource>) -> SvidResolver {
        SvidResolver { source }
    }
}

impl ResolvesServerCert for SvidResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.source.certified_key())
    }
}

impl ResolvesClientCert for SvidResolver {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.source.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn pki_time(t: UnixTime) -> pki_types::UnixTime {
    pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.as_secs()))
}

/// The crate error as the rustls error that aborts the handshake.
///
/// Expiry maps to rustls' own certificate errors (the peer gets `certificate_expired`).
/// Everything else becomes `rustls::Error::Other` carrying the [`Error`], so that the local
/// error reads e.g. "other error: SPIFFE ID spiffe://… is not authorized: expected …"
/// (`CertificateError::Other` would print it with `Debug`); the peer gets
/// `handshake_failure`. Downcast `OtherError.0` to [`Error`] to inspect it.
fn to_rustls(e: Error) -> rustls::Error {
    match e {
        Error::Expired { not_after, now } => rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: pki_time(now),
            not_after: pki_time(not_after),
        }),
        Error::NotYetValid { not_before, now } => {
            rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
                time: pki_time(now),
                not_before: pki_time(not_before),
            })
        }
        other => rustls::Error::Other(rustls::OtherError(Arc::new(other))),
    }
}

/// Validates the peer chain with the source's current bundles, then authorizes its ID.
fn verify_peer(
    bundles: &X509BundleSet,
    authorizer: &Authorizer,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: pki_types::UnixTime,
    options: &VerifyOptions,
) -> Result<(), rustls::Error> {
    let verified =
        verify_parts(end_entity, intermediates, bundles, UnixTime(now.as_secs()), options).map_err(to_rustls)?;
    authorizer.authorize(&verified.spiffe_id).map_err(to_rustls)
}

/// A server's check of client X.509-SVIDs: chain against the bundle of the client's trust
/// domain (EKU clientAuth), then the [`Authorizer`]. Client certificates are required.
#[derive(Debug)]
pub struct SpiffeClientCertVerifier {
    source: Arc<SvidSource>,
    authorizer: Authorizer,
    algs: WebPkiSupportedAlgorithms,
}

impl SpiffeClientCertVerifier {
    /// A verifier using `source`'s current bundles and `authorizer`.
    pub fn new(source: Arc<SvidSource>, authorizer: Authorizer) -> SpiffeClientCertVerifier {
        let algs = source.provider.signature_verification_algorithms;
        SpiffeClientCertVerifier {
            source,
            authorizer,
            algs,
        }
    }
}

impl ClientCertVerifier for SpiffeClientCertVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: a workload has one SVID and sends it whatever the server's roots are.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: pki_types::UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let options = VerifyOptions::for_usage(Usage::ClientAuth);
        verify_peer(
            &self.source.bundles(),
            &self.authorizer,
            end_entity,
            intermediates,
            now,
            &options,
        )?;
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

/// A client's check of the server's X.509-SVID: chain against the bundle of the server's
/// trust domain (EKU serverAuth), then the [`Authorizer`]; the DNS name only if enabled.
#[derive(Debug)]
pub struct SpiffeServerCertVerifier {
    bundles: ServerBundles,
    authorizer: Authorizer,
    algs: WebPkiSupportedAlgorithms,
    check_server_name: bool,
}

impl SpiffeServerCertVerifier {
    /// A verifier using `source`'s current bundles and `authorizer`; no name check.
    pub fn new(source: Arc<SvidSource>, authorizer: Authorizer) -> SpiffeServerCertVerifier {
        let algs = source.provider.signature_verification_algorithms;
        SpiffeServerCertVerifier {
            bundles: ServerBundles::Source(source),
            authorizer,
            algs,
            check_server_name: false,
        }
    }

    /// Also require the server certificate to be valid for the name the client connects
    /// to (RFC 9525 §6.3; for servers whose SVIDs carry DNS SANs).
    pub fn with_server_name_check(mut self) -> SpiffeServerCertVerifier {
        self.check_server_name = true;
        self
    }
}

impl ServerCertVerifier for SpiffeServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: pki_types::UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let options = VerifyOptions {
            usage: Usage::ServerAuth,
            expected_name: self.check_server_name.then(|| server_name.to_str().into_owned()),
        };
        let bundles = match &self.bundles {
            ServerBundles::Source(source) => source.bundles(),
            ServerBundles::Fixed(bundles) => Arc::clone(bundles),
        };
        verify_peer(&bundles, &self.authorizer, end_entity, intermediates, now, &options)?;
        Ok(ServerCertVerified::assertion())
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

/// Where a [`SpiffeServerCertVerifier`] takes its bundles from.
#[derive(Debug)]
enum ServerBundles {
    /// The source's current bundles (they may change between handshakes).
    Source(Arc<SvidSource>),
    /// A fixed set (a client without an SVID of its own).
    Fixed(Arc<X509BundleSet>),
}

/// A rustls client config for a client that has no SVID yet (an agent before node
/// attestation): it presents no certificate and accepts servers whose SVIDs validate
/// against `bundles` and satisfy `authorizer`. TLS 1.3 only; no session resumption.
pub fn anonymous_client_config(bundles: X509BundleSet, authorizer: Authorizer) -> Result<ClientConfig, Error> {
    let provider = Arc::new(lanyard_crypto::rustls_provider());
    let verifier = SpiffeServerCertVerifier {
        bundles: ServerBundles::Fixed(Arc::new(bundles)),
        authorizer,
        algs: provider.signature_verification_algorithms,
        check_server_name: false,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// A rustls server config presenting `source`'s SVID and requiring client SVIDs that
/// validate against `source`'s bundles and satisfy `authorizer`. TLS 1.3 and 1.2; no
/// session resumption; set `alpn_protocols` as needed.
pub fn server_config(source: Arc<SvidSource>, authorizer: Authorizer) -> Result<ServerConfig, Error> {
    let provider = Arc::clone(&source.provider);
    let verifier = SpiffeClientCertVerifier::new(Arc::clone(&source), authorizer);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(SvidResolver::new(source)));
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// A rustls client config presenting `source`'s SVID and accepting servers whose SVIDs
/// validate against `source`'s bundles and satisfy `authorizer` (pin the server's ID with
/// [`Authorizer::Exact`]). No DNS name check; TLS 1.3 and 1.2; no session resumption.
pub fn client_config(source: Arc<SvidSource>, authorizer: Authorizer) -> Result<ClientConfig, Error> {
    let verifier = SpiffeServerCertVerifier::new(Arc::clone(&source), authorizer);
    client_config_with_verifier(source, verifier)
}

/// [`client_config`] with a verifier of your choice (e.g. one with
/// [`SpiffeServerCertVerifier::with_server_name_check`]).
pub fn client_config_with_verifier(
    source: Arc<SvidSource>,
    verifier: SpiffeServerCertVerifier,
) -> Result<ClientConfig, Error> {
    let provider = Arc::clone(&source.provider);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(SvidResolver::new(source)));
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// The SPIFFE ID of the peer of an established connection (`&ServerConnection` and
/// `&ClientConnection` coerce to `&CommonState`), or `None` before the handshake or if the
/// peer presented no SVID. With [`server_config`] / [`client_config`] the peer has been
/// verified and authorized when this returns `Some`.
pub fn peer_spiffe_id(conn: &CommonState) -> Option<SpiffeId> {
    let leaf = conn.peer_certificates()?.first()?;
    cert::leaf_spiffe_id(&cert::parse(leaf).ok()?).ok()
}
