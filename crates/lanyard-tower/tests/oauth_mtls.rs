//! Certificate-bound access tokens (RFC 8705 §3) end to end over real mutual TLS:
//! `lanyard_tower::mtls::serve` puts the client's leaf certificate on each request as a
//! `PeerCertificate`, and the resource-server layer checks `cnf.x5t#S256` against it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use lanyard_core::oauth::{
    AccessTokenClaims, Audience, Confirmation, Scope, VerificationKeys, certificate_thumbprint, issue_access_token,
};
use lanyard_core::{Algorithm, Clock, JwkSet, SpiffeId, SystemClock, TrustDomain};
use lanyard_tower::oauth::{AccessTokenConfig, AccessTokenLayer, Binding, KeySource, VerifiedAccessToken};
use lanyard_x509::tls::Authorizer;
use lanyard_x509::{SubjectKey, SvidSource, X509Authority, X509Bundle, X509BundleSet};

const ISSUER: &str = "https://as.example.org";

#[tokio::test]
async fn a_certificate_bound_token_passes_only_with_its_client_certificate() {
    let now = SystemClock.now();
    let td = TrustDomain::parse("example.org").unwrap();
    let ca = X509Authority::new_root(&td, None, 86_400, now).unwrap();
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
