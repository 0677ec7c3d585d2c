//! TLS for the agent API: the server's own X.509-SVID (issued by the ACTIVE CA, rotated at
//! half-life) and a client-certificate verifier that lets anonymous clients in (for
//! `AttestAgent`) but validates any chain a client does present.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lanyard_core::{SpiffeId, TrustDomain, UnixTime};
use lanyard_x509::{
    Authorizer, SpiffeClientCertVerifier, SubjectKey, SvidResolver, SvidSource, X509Bundle, X509BundleSet, X509Svid,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime as PkiTime};
use rustls::server::NoServerSessionStorage;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

use crate::error::ServerError;
use crate::model::AuthorityKind;
use crate::state::AppState;

/// How often the server SVID and the trusted bundle are checked for renewal.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The path of the server's SPIFFE ID on the agent API.
pub const SERVER_PATH: &str = "/lanyard/server";

/// The SPIFFE ID the agent API presents: `spiffe://<td>/lanyard/server`.
pub fn server_id(trust_domain: &TrustDomain) -> Result<SpiffeId, ServerError> {
    SpiffeId::from_parts(trust_domain, SERVER_PATH).map_err(|source| {
        ServerError::Credential(lanyard_core::Error::InvalidIdentifier {
            context: "server SPIFFE ID",
            source,
        })
    })
}

/// Accepts clients without a certificate; a presented chain must validate against the
/// source's bundles (EKU clientAuth) and be in the trust domain, as in
/// [`SpiffeClientCertVerifier`], which this wraps; or, built with
/// [`OptionalClientCertVerifier::deferring`], is accepted as it is for the application to
/// validate (the handshake signature is checked either way).
#[derive(Debug)]
pub struct OptionalClientCertVerifier {
    inner: SpiffeClientCertVerifier,
    defer: bool,
}

impl OptionalClientCertVerifier {
    /// A verifier of SVIDs of `trust_domain`, against `source`'s current bundles.
    pub fn new(source: Arc<SvidSource>, trust_domain: TrustDomain) -> OptionalClientCertVerifier {
        OptionalClientCertVerifier {
            inner: SpiffeClientCertVerifier::new(source, Authorizer::TrustDomain(trust_domain)),
            defer: false,
        }
    }

    /// A verifier that takes any chain whose holder proves possession of the leaf's key,
    /// leaving path validation to the application (which must do it before trusting the
    /// chain; the OAuth mutual-TLS listener does, per request, against every trusted
    /// trust domain's current bundle).
    pub fn deferring(source: Arc<SvidSource>, trust_domain: TrustDomain) -> OptionalClientCertVerifier {
        OptionalClientCertVerifier {
            defer: true,
            ..OptionalClientCertVerifier::new(source, trust_domain)
        }
    }
}

impl ClientCertVerifier for OptionalClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: PkiTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self.defer {
            return Ok(ClientCertVerified::assertion());
        }
        self.inner.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The rustls config of the agent API: TLS 1.3 only, ALPN `h2`, the source's SVID, optional
/// client SVIDs of `trust_domain`, no session resumption (a resumed session would skip
/// certificate verification).
pub fn server_config(source: Arc<SvidSource>, trust_domain: TrustDomain) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::clone(source.provider());
    let verifier = OptionalClientCertVerifier::new(Arc::clone(&source), trust_domain);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(SvidResolver::new(source)));
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// What the current server SVID was issued from.
#[derive(Debug)]
struct Issued {
    ca_cert: CertificateDer<'static>,
    renew_at: UnixTime,
    bundle_sequence: Option<u64>,
}

/// The server's TLS identity on the agent API: an [`SvidSource`] holding its SVID and the
/// trust domain's X.509 authorities, kept current by [`ServerIdentity::refresh`].
#[derive(Debug)]
pub struct ServerIdentity {
    state: AppState,
    id: SpiffeId,
    source: Arc<SvidSource>,
    issued: Mutex<Issued>,
}

impl ServerIdentity {
    /// Issues the first server SVID and loads the bundle.
    pub async fn new(state: AppState) -> Result<ServerIdentity, ServerError> {
        let id = server_id(&state.trust_domain)?;
        let (svid, issued) = issue(&state, &id).await?;
        let (bundles, sequence) = bundles(&state).await?;
        let source = Arc::new(SvidSource::new(&svid, bundles).map_err(x509_err("loading the server SVID"))?);
        Ok(ServerIdentity {
            state,
            id,
            source,
            issued: Mutex::new(Issued {
                bundle_sequence: sequence,
                ..issued
            }),
        })
    }

    /// The source the TLS config reads on every handshake.
    pub fn source(&self) -> Arc<SvidSource> {
        Arc::clone(&self.source)
    }

    /// Reloads the bundle if its sequence moved, and re-issues the SVID at half its life or
    /// when the ACTIVE CA changed. Failures are logged and retried at the next call.
    pub async fn refresh(&self) {
        if let Err(e) = self.try_refresh().await {
            tracing::error!(error = %e, "agent API: refreshing the server SVID failed");
        }
    }

    async fn try_refresh(&self) -> Result<(), ServerError> {
        let sequence = self.state.stores.authorities.bundle_sequence().await?;
        let known = self.lock().bundle_sequence;
        if known != Some(sequence) {
            let (bundles, sequence) = bundles(&self.state).await?;
            self.source.update_bundles(bundles);
            self.lock().bundle_sequence = sequence;
            tracing::debug!(?sequence, "agent API: trust bundle reloaded");
        }
        let ca = self.state.keys.x509_ca().await?;
        let due = {
            let issued = self.lock();
            issued.ca_cert != *ca.cert_der() || self.state.clock.now() >= issued.renew_at
        };
        if due {
            let (svid, issued) = issue(&self.state, &self.id).await?;
            self.source
                .update_svid(&svid)
                .map_err(x509_err("loading the server SVID"))?;
            let mut current = self.lock();
            current.ca_cert = issued.ca_cert;
            current.renew_at = issued.renew_at;
            tracing::info!(id = %self.id, "agent API: server SVID renewed");
        }
        Ok(())
    }

    /// Calls [`ServerIdentity::refresh`] every [`REFRESH_INTERVAL`] until `stop` completes.
    pub async fn keep_fresh(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(REFRESH_INTERVAL);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => self.refresh().await,
                () = &mut stop => return,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Issued> {
        self.issued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fresh server SVID (`spiffe://<td>/lanyard/server`, new P-256 key) from the ACTIVE CA.
pub async fn server_svid(state: &AppState) -> Result<X509Svid, ServerError> {
    let id = server_id(&state.trust_domain)?;
    Ok(issue(state, &id).await?.0)
}

/// Issues a server SVID (fresh P-256 key) with the default X.509-SVID lifetime, capped by
/// the CA's remaining life; renewal is due at half the actual lifetime.
async fn issue(state: &AppState, id: &SpiffeId) -> Result<(X509Svid, Issued), ServerError> {
    let now = state.clock.now();
    let ttl = state
        .config
        .default_x509_svid_ttl
        .min(state.keys.max_ttl(AuthorityKind::X509, now).await?);
    let ca = state.keys.x509_ca().await?;
    let issuing = x509_err("issuing the server SVID");
    let (dns_names, ip_addresses) = listener_names(state);
    let svid = ca
        .issue_server_svid(id, SubjectKey::Generate, ttl, &dns_names, &ip_addresses, now)
        .map_err(issuing)?;
    let not_after = svid.not_after().map_err(issuing)?;
    let renew_at = now.plus(not_after.as_secs().saturating_sub(now.as_secs()) / 2);
    Ok((
        svid,
        Issued {
            ca_cert: ca.cert_der().clone(),
            renew_at,
            bundle_sequence: None,
        },
    ))
}

/// The names clients reach the server's TLS listeners by, as extra SANs of its SVID
/// (SPIFFE clients check only the URI SAN; curl and other RFC 6125 clients check the host
/// they connected to): the public URL's host and the hosts of the agent API and OAuth
/// mutual-TLS addresses. IP literals become IP SANs, other names DNS SANs; wildcard bind
/// addresses (`0.0.0.0`, `::`) and names that are not valid DNS names are left out.
fn listener_names(state: &AppState) -> (Vec<String>, Vec<IpAddr>) {
    let config = &state.config;
    let public_host = state
        .public_url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_owned));
    let bound = [Some(config.agent_address.clone()), config.oauth_mtls_address()]
        .into_iter()
        .flatten()
        .filter_map(|address| address.parse::<std::net::SocketAddr>().ok())
        .map(|address| address.ip().to_string());
    let (mut dns_names, mut ip_addresses) = (Vec::new(), Vec::new());
    for host in public_host.into_iter().chain(bound) {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(ip) if !ip.is_unspecified() && !ip_addresses.contains(&ip) => ip_addresses.push(ip),
            Ok(_) => {}
            Err(_) => {
                let name = host.to_ascii_lowercase();
                if rustls::pki_types::DnsName::try_from(name.as_str()).is_ok() && !dns_names.contains(&name) {
                    dns_names.push(name);
                }
            }
        }
    }
    (dns_names, ip_addresses)
}

/// The trust domain's X.509 authorities as a bundle set, and the bundle's sequence.
async fn bundles(state: &AppState) -> Result<(X509BundleSet, Option<u64>), ServerError> {
    let bundle = state.keys.bundle().await?;
    let x509 = X509Bundle::from_spiffe_bundle(&bundle).map_err(x509_err("reading the trust bundle"))?;
    Ok((X509BundleSet::new().with(x509), bundle.sequence))
}

/// [`ServerError::X509`] while doing `context`.
fn x509_err(context: &'static str) -> impl Fn(lanyard_x509::Error) -> ServerError + Copy {
    move |source| ServerError::X509 { context, source }
}
