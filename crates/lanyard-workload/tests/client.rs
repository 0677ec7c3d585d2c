//! The client against an in-process fake Workload API served over a Unix socket (and TCP):
//! every fetch parses, the security header is sent, statuses surface typed, watches see
//! updates, malformed answers are rejected, and the file writer keeps files current.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use lanyard_api::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use lanyard_api::workload::spiffe_workload_api_server::{SpiffeWorkloadApi, SpiffeWorkloadApiServer};
use lanyard_api::workload::{
    JwtBundlesRequest, JwtBundlesResponse, Jwtsvid, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, WitBundlesRequest, WitBundlesResponse, Witsvid, WitsvidRequest, WitsvidResponse,
    X509BundlesRequest, X509BundlesResponse, X509svid, X509svidRequest, X509svidResponse,
};
use lanyard_core::{Clock, SpiffeId, SystemClock, TrustDomain, UnixTime};
use lanyard_crypto::KeyPair;
use lanyard_workload::files::FileWriter;
use lanyard_workload::{ClientError, EndpointAddress, WorkloadApiClient};
use lanyard_x509::{SubjectKey, X509Authority, X509Svid};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream, WatchStream};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Server;
use tonic::{Request, Response, Status};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

const WEB: &str = "spiffe://example.org/web";
const PARTNER: &str = "spiffe://partner.example";
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"jwt-svid","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;

fn now() -> UnixTime {
    SystemClock.now()
}

fn der_concat(certs: &[rustls::pki_types::CertificateDer<'static>]) -> Vec<u8> {
    certs.iter().flat_map(|c| c.as_ref().to_vec()).collect()
}

/// Certificates and keys the fake hands out.
struct Material {
    ca: X509Authority,
    partner_ca: X509Authority,
}

impl Material {
    fn new() -> Material {
        let td = TrustDomain::parse("example.org").unwrap();
        let partner = TrustDomain::parse("partner.example").unwrap();
        Material {
            ca: X509Authority::new_root(lanyard_crypto::provider(), &td, None, 86_400, now()).unwrap(),
            partner_ca: X509Authority::new_root(lanyard_crypto::provider(), &partner, None, 86_400, now()).unwrap(),
        }
    }

    fn svid(&self, id: &str) -> X509Svid {
        let id = SpiffeId::parse(id).unwrap();
        self.ca.issue_svid(&id, SubjectKey::Generate, 3600, &[], now()).unwrap()
    }

    /// An X509SVIDResponse for `svid`, claiming `claimed_id`.
    fn x509_response(&self, svid: &X509Svid, claimed_id: &str) -> X509svidResponse {
        X509svidResponse {
            svids: vec![X509svid {
                spiffe_id: claimed_id.to_owned(),
                x509_svid: der_concat(&svid.chain),
                x509_svid_key: svid.key.as_ref().unwrap().secret_pkcs8_der().to_vec(),
                bundle: self.ca.cert_der().to_vec(),
                hint: "internal".into(),
            }],
            crl: Vec::new(),
            federated_bundles: [(PARTNER.to_owned(), self.partner_ca.cert_der().to_vec())].into(),
        }
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// A JWT-shaped token (the client does not verify signatures; the server would).
fn fake_jwt(sub: &str, aud: &[String]) -> String {
    let now = now().0;
    let claims = serde_json::json!({"sub": sub, "aud": aud, "iat": now, "exp": now + 300});
    format!(
        "{}.{}.{}",
        b64(r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#),
        b64(&claims.to_string()),
        b64("sig")
    )
}

/// The fake's state, shared with the test.
struct State {
    x509: watch::Sender<X509svidResponse>,
    wit: watch::Sender<WitsvidResponse>,
    deny: AtomicBool,
    calls_with_header: AtomicUsize,
}

#[derive(Clone)]
struct Fake(Arc<State>);

impl Fake {
    /// The security header and the "no identity" flag, as SPIRE checks them.
    fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match request.metadata().get("workload.spiffe.io") {
            Some(v) if v == "true" => {}
            _ => return Err(Status::invalid_argument("security header missing from request")),
        }
        self.0.calls_with_header.fetch_add(1, Ordering::SeqCst);
        if self.0.deny.load(Ordering::SeqCst) {
            return Err(Status::permission_denied("no identity issued"));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for Fake {
    type FetchX509SVIDStream = BoxStream<X509svidResponse>;
    type FetchX509BundlesStream = BoxStream<X509BundlesResponse>;
    type FetchJWTBundlesStream = BoxStream<JwtBundlesResponse>;
    type FetchWITSVIDStream = BoxStream<WitsvidResponse>;
    type FetchWITBundlesStream = BoxStream<WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        self.check(&request)?;
        Ok(Response::new(Box::pin(
            WatchStream::new(self.0.x509.subscribe()).map(Ok),
        )))
    }

    async fn fetch_x509_bundles(
        &self,
        request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        self.check(&request)?;
        let current = self.0.x509.borrow().clone();
        let mut bundles = current.federated_bundles.clone();
        bundles.insert("spiffe://example.org".into(), current.svids[0].bundle.clone());
        let response = X509BundlesResponse { crl: vec![], bundles };
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(response)))))
    }

    async fn fetch_jwtsvid(&self, request: Request<JwtsvidRequest>) -> Result<Response<JwtsvidResponse>, Status> {
        self.check(&request)?;
        let request = request.into_inner();
        if request.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if !request.spiffe_id.is_empty() && request.spiffe_id != WEB {
            return Err(Status::permission_denied("no identity issued"));
        }
        Ok(Response::new(JwtsvidResponse {
            svids: vec![Jwtsvid {
                spiffe_id: WEB.into(),
                svid: fake_jwt(WEB, &request.audience),
                hint: String::new(),
            }],
        }))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        self.check(&request)?;
        let response = JwtBundlesResponse {
            bundles: [("spiffe://example.org".to_owned(), JWKS.as_bytes().to_vec())].into(),
        };
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(response)))))
    }

    async fn validate_jwtsvid(
        &self,
        request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        use prost_types::value::Kind;
        self.check(&request)?;
        let request = request.into_inner();
        if request.svid.split('.').count() != 3 {
            return Err(Status::invalid_argument("token is malformed"));
        }
        let v = |k| prost_types::Value { kind: Some(k) };
        let claims = prost_types::Struct {
            fields: [
                ("sub".to_owned(), v(Kind::StringValue(WEB.into()))),
                (
                    "aud".to_owned(),
                    v(Kind::ListValue(prost_types::ListValue {
                        values: vec![v(Kind::StringValue(request.audience))],
                    })),
                ),
                ("exp".to_owned(), v(Kind::NumberValue(1_900_000_000.0))),
            ]
            .into(),
        };
        Ok(Response::new(ValidateJwtsvidResponse {
            spiffe_id: WEB.into(),
            claims: Some(claims),
        }))
    }

    async fn fetch_witsvid(
        &self,
        request: Request<WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        self.check(&request)?;
        Ok(Response::new(Box::pin(
            WatchStream::new(self.0.wit.subscribe()).map(Ok),
        )))
    }

    async fn fetch_wit_bundles(
        &self,
        request: Request<WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        self.check(&request)?;
        let response = WitBundlesResponse {
            bundles: [("spiffe://example.org".to_owned(), JWKS.to_owned())].into(),
        };
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(response)))))
    }
}

fn wit_response(n: u32) -> WitsvidResponse {
    let key = KeyPair::generate(lanyard_core::Algorithm::ES256).unwrap();
    WitsvidResponse {
        svids: vec![Witsvid {
            spiffe_id: WEB.into(),
            wit_svid: fake_jwt(WEB, &[format!("wit-{n}")]),
            wit_svid_key: key.private_jwk().unwrap().to_json(),
            hint: String::new(),
        }],
    }
}

/// A running fake endpoint.
struct Harness {
    material: Material,
    state: Arc<State>,
    address: EndpointAddress,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Harness {
    async fn start() -> Harness {
        let material = Material::new();
        let svid = material.svid(WEB);
        let (x509, _) = watch::channel(material.x509_response(&svid, WEB));
        let (wit, _) = watch::channel(wit_response(1));
        let state = Arc::new(State {
            x509,
            wit,
            deny: AtomicBool::new(false),
            calls_with_header: AtomicUsize::new(0),
        });
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(
            Server::builder()
                .add_service(SpiffeWorkloadApiServer::new(Fake(state.clone())))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = stopped.await;
                }),
        );
        Harness {
            material,
            state,
            address: EndpointAddress::parse(&format!("unix://{}", socket.display())).unwrap(),
            _dir: dir,
            stop: Some(stop),
        }
    }

    async fn client(&self) -> WorkloadApiClient {
        WorkloadApiClient::connect(&self.address).await.unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test]
async fn every_fetch_parses() {
    let h = Harness::start().await;
    let client = h.client().await;
    let web = SpiffeId::parse(WEB).unwrap();

    let ctx = client.fetch_x509_context().await.unwrap();
    assert_eq!(ctx.svids.len(), 1);
    let svid = ctx.default_svid().unwrap();
    assert_eq!(svid.spiffe_id, web);
    assert_eq!(svid.hint, "internal");
    assert_eq!(svid.chain.len(), 1);
    assert_eq!(svid.bundle, vec![h.material.ca.cert_der().clone()]);
    assert!(svid.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(svid.not_after().unwrap() > now());
    svid.to_x509_svid().check().unwrap();
    let partner = TrustDomain::parse("partner.example").unwrap();
    assert_eq!(
        ctx.federated_bundles.get(&partner),
        Some(&vec![h.material.partner_ca.cert_der().clone()])
    );
    assert_eq!(ctx.bundle_set().unwrap().len(), 2);
    // Debug output never carries the key.
    let debug = format!("{ctx:?}");
    assert!(!debug.contains("PRIVATE") && debug.contains(WEB), "{debug}");

    let default = client.fetch_x509_svid().await.unwrap();
    assert_eq!(default.spiffe_id, web);

    let bundles = client.fetch_x509_bundles().await.unwrap();
    assert_eq!(bundles.bundles.len(), 2);
    assert_eq!(bundles.bundle_set().unwrap().len(), 2);

    let jwts = client.fetch_jwt_svid(&["db", "cache"], None).await.unwrap();
    assert_eq!(jwts.len(), 1);
    assert_eq!(jwts[0].spiffe_id, web);
    assert!(jwts[0].expires_at().unwrap() > now());
    assert!(!format!("{:?}", jwts[0]).contains(&jwts[0].token));
    let only = client.fetch_jwt_svid(&["db"], Some(&web)).await.unwrap();
    assert_eq!(only[0].spiffe_id, web);

    let jwt_bundles = client.fetch_jwt_bundles().await.unwrap();
    let td = TrustDomain::parse("example.org").unwrap();
    let set = jwt_bundles.jwk_set(&td).unwrap().unwrap();
    assert!(set.find("k1").is_some());
    assert!(jwt_bundles.jwk_set(&partner).is_none());

    let (id, claims) = client.validate_jwt_svid("db", &jwts[0].token).await.unwrap();
    assert_eq!(id, web);
    assert_eq!(
        claims,
        serde_json::json!({"sub": WEB, "aud": ["db"], "exp": 1_900_000_000_i64})
    );

    let wits = client.fetch_wit_svids(None).await.unwrap();
    assert_eq!(wits[0].spiffe_id, web);
    assert!(wits[0].key().unwrap().is_private());
    assert!(!format!("{:?}", wits[0]).contains("\"d\""));
    let wit_bundles = client.fetch_wit_bundles().await.unwrap();
    assert!(wit_bundles.jwk_set(&td).unwrap().is_ok());

    assert_eq!(h.state.calls_with_header.load(Ordering::SeqCst), 9);
}

#[tokio::test]
async fn the_security_header_is_required_and_sent() {
    let h = Harness::start().await;
    // The generated client on its own sends no header: the fake refuses it.
    let path = h.address.unix_path().unwrap().to_owned();
    let channel = tonic::transport::Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .unwrap();
    let status = SpiffeWorkloadApiClient::new(channel.clone())
        .fetch_jwt_bundles(JwtBundlesRequest {})
        .await
        .unwrap_err();
    assert!(matches!(ClientError::from(status), ClientError::InvalidArgument(_)));
    assert_eq!(h.state.calls_with_header.load(Ordering::SeqCst), 0);

    // Ours does, also over a channel it did not create.
    let client = WorkloadApiClient::from_channel(channel);
    client.fetch_jwt_bundles().await.unwrap();
    assert_eq!(h.state.calls_with_header.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn permission_denied_surfaces_typed() {
    let h = Harness::start().await;
    let client = h.client().await;
    h.state.deny.store(true, Ordering::SeqCst);
    for result in [
        client.fetch_x509_context().await.map(|_| ()),
        client.fetch_jwt_svid(&["db"], None).await.map(|_| ()),
        client.fetch_jwt_bundles().await.map(|_| ()),
    ] {
        match result {
            Err(ClientError::PermissionDenied(message)) => assert_eq!(message, "no identity issued"),
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
    }
    h.state.deny.store(false, Ordering::SeqCst);
    let other = SpiffeId::parse("spiffe://example.org/other").unwrap();
    let err = client.fetch_jwt_svid(&["db"], Some(&other)).await.unwrap_err();
    assert!(matches!(err, ClientError::PermissionDenied(_)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn bad_requests_are_refused_locally() {
    let h = Harness::start().await;
    let client = h.client().await;
    assert!(matches!(
        client.fetch_jwt_svid(&[], None).await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(matches!(
        client.fetch_jwt_svid(&[""], None).await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert!(matches!(
        client.validate_jwt_svid("db", "").await,
        Err(ClientError::InvalidArgument(_))
    ));
    // The server's InvalidArgument is typed too.
    assert!(matches!(
        client.validate_jwt_svid("db", "not-a-jwt").await,
        Err(ClientError::InvalidArgument(_))
    ));
    assert_eq!(h.state.calls_with_header.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn watch_sees_rotation_and_rejects_mismatched_ids() {
    let h = Harness::start().await;
    let client = h.client().await;
    let mut watch = client.watch_x509_context().await.unwrap();
    let first = watch.next().await.unwrap().unwrap();

    let rotated = h.material.svid(WEB);
    h.state.x509.send_replace(h.material.x509_response(&rotated, WEB));
    let second = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_ne!(first.svids[0].chain, second.svids[0].chain);
    assert_eq!(second.svids[0].chain, rotated.chain);

    // An SVID whose spiffe_id is not its leaf's URI SAN is rejected; the watch goes on.
    let other = h.material.svid("spiffe://example.org/other");
    h.state.x509.send_replace(h.material.x509_response(&other, WEB));
    let bad = watch.next().await.unwrap();
    assert!(
        matches!(&bad, Err(ClientError::Malformed(m)) if m.contains("URI SAN")),
        "{bad:?}"
    );

    // So is a key that is not the leaf's.
    let mut mixed = h.material.x509_response(&rotated, WEB);
    mixed.svids[0].x509_svid_key = other.key.as_ref().unwrap().secret_pkcs8_der().to_vec();
    h.state.x509.send_replace(mixed);
    assert!(matches!(watch.next().await.unwrap(), Err(ClientError::Malformed(_))));

    // And garbage in a bundle.
    let mut garbage = h.material.x509_response(&rotated, WEB);
    garbage.svids[0].bundle = vec![0x30, 0x03, 1, 2, 3];
    h.state.x509.send_replace(garbage);
    assert!(matches!(watch.next().await.unwrap(), Err(ClientError::Malformed(_))));

    h.state.x509.send_replace(h.material.x509_response(&rotated, WEB));
    assert!(watch.next().await.unwrap().is_ok());
}

#[tokio::test]
async fn connection_failures_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let address = EndpointAddress::Unix(dir.path().join("nobody.sock"));
    assert!(matches!(
        WorkloadApiClient::connect(&address).await,
        Err(ClientError::Connect { .. })
    ));
    // A lazy client reports the failure from the call.
    let lazy = WorkloadApiClient::connect_lazy(&address).unwrap();
    let err = lazy.fetch_jwt_bundles().await.unwrap_err();
    assert!(matches!(err, ClientError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn works_over_tcp() {
    let h = Harness::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = EndpointAddress::Tcp(listener.local_addr().unwrap());
    tokio::spawn(
        Server::builder()
            .add_service(SpiffeWorkloadApiServer::new(Fake(h.state.clone())))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let client = WorkloadApiClient::connect(&address).await.unwrap();
    assert_eq!(client.address(), Some(&address));
    let ctx = client.fetch_x509_context().await.unwrap();
    assert_eq!(ctx.svids[0].spiffe_id.as_str(), WEB);
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn file_writer_writes_atomically_and_reloads() {
    let h = Harness::start().await;
    let client = h.client().await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("creds");
    let marker = out.path().join("reloads");

    let mut writer = FileWriter::new(&dir);
    writer.jwt_audiences = vec!["db".into()];
    writer.wit = true;
    writer.retry_base = Duration::from_millis(50);
    writer.reload_command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!("echo reload >> '{}'", marker.display()),
    ]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        writer
            .run(&client, async {
                let _ = stopped.await;
            })
            .await
    });

    let reloads = || std::fs::read_to_string(&marker).map_or(0, |s| s.lines().count());
    // One reload for the X.509 files and one for the WIT files.
    wait_for("the first reloads", || reloads() >= 2).await;
    wait_for("the JWT-SVID", || dir.join("jwt_svid.token").exists()).await;

    let first = h.state.x509.borrow().clone();
    let leaf_pem = |resp: &X509svidResponse| {
        X509Svid {
            chain: vec![rustls::pki_types::CertificateDer::from(resp.svids[0].x509_svid.clone())],
            key: None,
        }
        .chain_pem()
    };
    assert_eq!(std::fs::read_to_string(dir.join("svid.pem")).unwrap(), leaf_pem(&first));
    let key_pem = std::fs::read_to_string(dir.join("svid_key.pem")).unwrap();
    let svid = X509Svid::from_pem(&leaf_pem(&first), Some(&key_pem)).unwrap();
    assert_eq!(svid.spiffe_id().unwrap().as_str(), WEB);
    assert_eq!(
        std::fs::read_to_string(dir.join("bundle.pem")).unwrap(),
        h.material.ca.cert_pem()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("federated_bundles.pem")).unwrap(),
        h.material.partner_ca.cert_pem()
    );
    let token = std::fs::read_to_string(dir.join("jwt_svid.token")).unwrap();
    assert_eq!(token.split('.').count(), 3);
    let wit = h.state.wit.borrow().clone();
    assert_eq!(
        std::fs::read_to_string(dir.join("wit.jwt")).unwrap(),
        wit.svids[0].wit_svid
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("wit_key.jwk")).unwrap(),
        wit.svids[0].wit_svid_key
    );
    for name in [
        "svid.pem",
        "svid_key.pem",
        "bundle.pem",
        "federated_bundles.pem",
        "jwt_svid.token",
        "wit.jwt",
        "wit_key.jwk",
    ] {
        let mode = std::fs::metadata(dir.join(name)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

    // A rotation rewrites the files and reloads again.
    let before = reloads();
    let rotated = h.material.svid(WEB);
    h.state.x509.send_replace(h.material.x509_response(&rotated, WEB));
    wait_for("the rotated SVID", || {
        std::fs::read_to_string(dir.join("svid.pem")).ok() == Some(rotated.chain_pem())
    })
    .await;
    wait_for("the second reload", || reloads() > before).await;
    h.state.wit.send_replace(wit_response(2));
    let wit2 = h.state.wit.borrow().clone().svids[0].wit_svid.clone();
    wait_for("the rotated WIT", || {
        std::fs::read_to_string(dir.join("wit.jwt")).ok() == Some(wit2.clone())
    })
    .await;

    // Only the credential files, no temporary leftovers.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bundle.pem",
            "federated_bundles.pem",
            "jwt_svid.token",
            "svid.pem",
            "svid_key.pem",
            "wit.jwt",
            "wit_key.jwk"
        ]
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn file_writer_survives_a_failing_reload_command_and_denial() {
    let h = Harness::start().await;
    let client = h.client().await;
    let out = tempfile::tempdir().unwrap();
    h.state.deny.store(true, Ordering::SeqCst);

    let mut writer = FileWriter::new(out.path());
    writer.retry_base = Duration::from_millis(20);
    writer.reload_command = Some(vec!["/nonexistent/reload-me".into()]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        writer
            .run(&client, async {
                let _ = stopped.await;
            })
            .await
    });
    // Denied for a while: nothing written, the writer keeps retrying.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!out.path().join("svid.pem").exists());
    assert!(!task.is_finished());
    h.state.deny.store(false, Ordering::SeqCst);
    wait_for("the SVID", || out.path().join("svid.pem").exists()).await;
    assert!(!task.is_finished());
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn file_writer_rejects_unsafe_file_names() {
    let h = Harness::start().await;
    let client = h.client().await;
    let out = tempfile::tempdir().unwrap();
    let mut writer = FileWriter::new(out.path());
    writer.svid_key_file = "../escape.pem".into();
    let err = writer.run(&client, std::future::pending()).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)));
}
