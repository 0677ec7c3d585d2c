//! Certificate-bound access tokens (RFC 8705 §3) end to end over real mutual TLS:
//! `lanyard_tower::mtls::serve` puts the client's leaf certificate on each request as a
//! `PeerCertificate`, and the resource-server layer checks `cnf.x5t#S256` against it; the
//! OAuth client middleware authenticates to a token endpoint with its X.509-SVID
//! (`tls_client_auth`, found through `mtls_endpoint_aliases`) and uses the bound token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::extract::Extension;
use axum::routing::{get, post};
use axum::{Router, body::Bytes};
use lanyard_core::oauth::{
    AccessTokenClaims, AccessTokenType, Audience, AuthorizationServerMetadata, Confirmation, Form, FormLimits, Scope,
    TokenResponse, VerificationKeys, certificate_thumbprint, issue_access_token,
};
use lanyard_core::{Algorithm, Clock, JwkSet, SpiffeId, SystemClock, TrustDomain};
use lanyard_tower::mtls::PeerCertificate;
use lanyard_tower::oauth::{
    AccessTokenConfig, AccessTokenLayer, Binding, KeySource, MtlsClientCredentials, OAuthClientConfig,
    OAuthClientMiddleware, VerifiedAccessToken,
};
use lanyard_x509::tls::Authorizer;
use lanyard_x509::{SubjectKey, SvidSource, X509Authority, X509Bundle, X509BundleSet};

const ISSUER: &str = "https://as.example.org";

#[tokio::test]
async fn a_certificate_bound_token_passes_only_with_its_client_certificate() {
    let now = SystemClock.now();
    let td = TrustDomain::parse("example.org").unwrap();
    let ca = X509Authority::new_root(lanyard_crypto::provider(), &td, None, 86_400, now).unwrap();
    let bundles = || X509BundleSet::new().with(X509Bundle::from_pem(td.clone(), &ca.cert_pem()).unwrap());
    let svid = |id: &str| {
        let svid = ca
            .issue_svid(&SpiffeId::parse(id).unwrap(), SubjectKey::Generate, 3600, &[], now)
            .unwrap();
        let source = Arc::new(SvidSource::new(&svid, bundles()).unwrap());
        (svid, source)
    };
    let (_, server_source) = svid("spiffe://example.org/ledger");
    let (billing, billing_source) = svid("spiffe://example.org/billing");
    let (_, other_source) = svid("spiffe://example.org/other");

    // The authorization server's key and a token bound to billing's certificate.
    let provider = lanyard_crypto::provider();
    let as_key = provider.generate_key(Algorithm::ES256).unwrap();
    let mut jwk = as_key.public_jwk();
    jwk.kid = Some("as-1".into());
    let keys = VerificationKeys::from_jwks(provider.as_ref(), ISSUER, &JwkSet { keys: vec![jwk] }).unwrap();
    let x5t = certificate_thumbprint(provider.as_ref(), billing.leaf().unwrap().as_ref());
    let claims = AccessTokenClaims {
        iss: ISSUER.into(),
        sub: "billing".into(),
        aud: Audience::one("https://ledger.example.org"),
        client_id: "billing".into(),
        scope: Some(Scope::parse("ledger.read").unwrap()),
        iat: now,
        exp: now.plus(300),
        nbf: None,
        jti: "at-1".into(),
        cnf: Some(Confirmation {
            x5t_s256: Some(x5t),
            ..Confirmation::default()
        }),
        act: None,
        extra: Default::default(),
    };
    let token = issue_access_token(as_key.as_ref(), "as-1", &claims).unwrap();

    let app = Router::new()
        .route(
            "/ledger",
            get(|t: VerifiedAccessToken| async move { format!("{} {:?}", t.client_id(), t.binding) }),
        )
        .layer(AccessTokenLayer::new(
            KeySource::fixed(keys),
            AccessTokenConfig::new(ISSUER, "https://ledger.example.org"),
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/ledger", listener.local_addr().unwrap().port());
    let tls = Arc::new(lanyard_x509::tls::server_config(server_source, Authorizer::Any).unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lanyard_tower::mtls::serve(listener, tls, app, async move {
        let _ = stopped.await;
    }));

    let client = |source: Arc<SvidSource>| {
        let tls = lanyard_x509::tls::client_config(
            source,
            Authorizer::Exact(SpiffeId::parse("spiffe://example.org/ledger").unwrap()),
        )
        .unwrap();
        reqwest::Client::builder()
            .no_proxy()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap()
    };
    let call = |http: reqwest::Client| {
        let (url, token) = (url.clone(), token.clone());
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status().as_u16();
            let challenge = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (status, challenge, r.text().await.unwrap())
        }
    };
    let (status, _, body) = call(client(billing_source)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, format!("billing {:?}", Binding::Certificate));
    // The same token over another workload's connection: refused.
    let (status, challenge, body) = call(client(other_source)).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(body.contains("x5t#S256"), "{body}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// A test PKI: a root for example.org and SVIDs from it.
struct Pki {
    td: TrustDomain,
    ca: X509Authority,
}

impl Pki {
    fn new() -> Pki {
        let td = TrustDomain::parse("example.org").unwrap();
        let ca = X509Authority::new_root(lanyard_crypto::provider(), &td, None, 86_400, SystemClock.now()).unwrap();
        Pki { td, ca }
    }

    fn svid(&self, id: &str) -> (lanyard_x509::X509Svid, Arc<SvidSource>) {
        let svid = self
            .ca
            .issue_svid(
                &SpiffeId::parse(id).unwrap(),
                SubjectKey::Generate,
                3600,
                &[],
                SystemClock.now(),
            )
            .unwrap();
        let bundles = X509BundleSet::new().with(X509Bundle::from_pem(self.td.clone(), &self.ca.cert_pem()).unwrap());
        (svid.clone(), Arc::new(SvidSource::new(&svid, bundles).unwrap()))
    }
}

/// A reqwest client presenting `source`'s SVID, accepting only the server `peer`.
fn mtls_client(source: Arc<SvidSource>, peer: &str) -> reqwest::Client {
    let tls = lanyard_x509::tls::client_config(source, Authorizer::Exact(SpiffeId::parse(peer).unwrap())).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

/// Serves `app` over mutual TLS as `source`; returns `https://127.0.0.1:<port>`.
async fn serve_mtls(app: Router, source: Arc<SvidSource>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let tls = Arc::new(lanyard_x509::tls::server_config(source, Authorizer::Any).unwrap());
    tokio::spawn(lanyard_tower::mtls::serve(listener, tls, app, std::future::pending()));
    url
}

#[tokio::test]
async fn the_client_middleware_authenticates_with_its_x509_svid_and_uses_the_bound_token() {
    let pki = Pki::new();
    let (_, as_source) = pki.svid("spiffe://example.org/as");
    let (_, rs_source) = pki.svid("spiffe://example.org/ledger");
    let (_, billing_source) = pki.svid("spiffe://example.org/billing");
    let provider = lanyard_crypto::provider();
    let as_key = provider.generate_key(Algorithm::ES256).unwrap();
    let mut jwk = as_key.public_jwk();
    jwk.kid = Some("as-1".into());
    let keys = VerificationKeys::from_jwks(provider.as_ref(), ISSUER, &JwkSet { keys: vec![jwk] }).unwrap();

    // The token endpoint, on the mTLS listener: the client is who its certificate says
    // (the test's stand-in for the server's registry), and the token is bound to it.
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&received);
    let token_app = Router::new().route(
        "/token",
        post(move |cert: Option<Extension<PeerCertificate>>, body: Bytes| {
            let (seen, as_key) = (Arc::clone(&seen), Arc::clone(&as_key));
            async move {
                let form = Form::parse(&body, FormLimits::default()).unwrap();
                seen.lock().unwrap().push(form.names().collect::<Vec<_>>().join(","));
                let Some(Extension(cert)) = cert else {
                    return (http::StatusCode::UNAUTHORIZED, "no client certificate".to_owned());
                };
                let now = SystemClock.now();
                let claims = AccessTokenClaims {
                    iss: ISSUER.into(),
                    sub: form.get("client_id").unwrap().into(),
                    aud: Audience::one(form.get("resource").unwrap()),
                    client_id: form.get("client_id").unwrap().into(),
                    scope: None,
                    iat: now,
                    exp: now.plus(300),
                    nbf: None,
                    jti: "at-mtls".into(),
                    cnf: Some(Confirmation::certificate(
                        lanyard_crypto::provider().as_ref(),
                        cert.der(),
                    )),
                    act: None,
                    extra: Default::default(),
                };
                let response = TokenResponse {
                    access_token: issue_access_token(as_key.as_ref(), "as-1", &claims).unwrap(),
                    token_type: AccessTokenType::Bearer,
                    expires_in: Some(300),
                    scope: None,
                    issued_token_type: None,
                };
                (http::StatusCode::OK, response.to_json())
            }
        }),
    );
    let mtls_as = serve_mtls(token_app, as_source).await;
    // The metadata, on plain HTTP: its token_endpoint is not the one mTLS clients use.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let metadata = AuthorizationServerMetadata {
        token_endpoint: Some(format!("{issuer}/token-without-mtls")),
        mtls_endpoint_aliases: Some([("token_endpoint".to_owned(), format!("{mtls_as}/token"))].into()),
        tls_client_certificate_bound_access_tokens: Some(true),
        ..AuthorizationServerMetadata::new(issuer.clone())
    }
    .to_json();
    tokio::spawn(async move {
        let app = Router::new().route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { metadata }),
        );
        axum::serve(listener, app).await.unwrap()
    });

    // The resource server, on mTLS too.
    let rs_app = Router::new()
        .route(
            "/ledger",
            get(|t: VerifiedAccessToken| async move { format!("{} {:?}", t.client_id(), t.binding) }),
        )
        .layer(AccessTokenLayer::new(
            KeySource::fixed(keys),
            AccessTokenConfig::new(ISSUER, "https://ledger.example.org"),
        ));
    let rs = serve_mtls(rs_app, rs_source).await;

    let mut config = OAuthClientConfig::new(issuer, "billing");
    config.resources = vec!["https://ledger.example.org".into()];
    let credentials = MtlsClientCredentials(mtls_client(Arc::clone(&billing_source), "spiffe://example.org/as"));
    let oauth = OAuthClientMiddleware::new(config, Arc::new(credentials)).unwrap();
    let api = reqwest_middleware::ClientBuilder::new(mtls_client(billing_source, "spiffe://example.org/ledger"))
        .with(oauth)
        .build();
    let r = api.get(format!("{rs}/ledger")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), format!("billing {:?}", Binding::Certificate));
    // The form named the client and carried no assertion (tls_client_auth, RFC 8705 §2).
    assert_eq!(
        *received.lock().unwrap(),
        vec!["grant_type,client_id,resource".to_owned()]
    );
}
