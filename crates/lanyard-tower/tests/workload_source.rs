//! `WorkloadApiCredentialSource` (feature `workload-api`) against a fake Workload API
//! served over a Unix socket that hands out WIT-SVIDs minted with lanyard-core.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanyard_api::workload::spiffe_workload_api_server::{SpiffeWorkloadApi, SpiffeWorkloadApiServer};
use lanyard_api::workload::{
    JwtBundlesRequest, JwtBundlesResponse, Jwtsvid, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, WitBundlesRequest, WitBundlesResponse, Witsvid, WitsvidRequest, WitsvidResponse,
    X509BundlesRequest, X509BundlesResponse, X509svidRequest, X509svidResponse,
};
use lanyard_core::{Algorithm, Clock, JwtSvidIssuer, SigningKey, SpiffeId, SystemClock, WitIssuer, WorkloadId};
use lanyard_crypto::KeyPair;
use lanyard_tower::oauth::{ClientCredential, ClientCredentialSource};
use lanyard_tower::{CredentialSource, Error, WorkloadApiClientCredentials, WorkloadApiCredentialSource};
use lanyard_workload::{EndpointAddress, WorkloadApiClient};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio_stream::wrappers::{UnixListenerStream, WatchStream};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Server;
use tonic::{Request, Response, Status};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

const WEB: &str = "spiffe://example.org/web";
const DB: &str = "spiffe://example.org/db";

/// Mints WIT-SVIDs like an identity server would.
struct Minter {
    issuer: WitIssuer,
}

impl Minter {
    fn new() -> Minter {
        let provider = lanyard_crypto::provider();
        let key = provider.generate_key(Algorithm::ES256).unwrap();
        Minter {
            issuer: WitIssuer::new(provider, key, Some("wit-1".into()), None, 3600),
        }
    }

    /// A WITSVID for `id` with a fresh key (or, if `wrong_key`, with a key the WIT does
    /// not bind).
    fn svid(&self, id: &str, wrong_key: bool) -> Witsvid {
        let key = KeyPair::generate(Algorithm::ES256).unwrap();
        let wit = self
            .issuer
            .issue(&WorkloadId::parse(id).unwrap(), &key.public_jwk(), SystemClock.now())
            .unwrap();
        let sent_key = if wrong_key {
            KeyPair::generate(Algorithm::ES256).unwrap()
        } else {
            key
        };
        Witsvid {
            spiffe_id: id.into(),
            wit_svid: wit,
            wit_svid_key: sent_key.private_jwk().unwrap().to_json(),
            hint: String::new(),
        }
    }
}

struct State {
    wit: watch::Sender<WitsvidResponse>,
    /// Mints the JWT-SVIDs of `FetchJWTSVID` (for WEB).
    jwt: JwtSvidIssuer,
    /// The audiences of every `FetchJWTSVID`.
    jwt_requests: Mutex<Vec<Vec<String>>>,
    deny: AtomicBool,
    connections: AtomicUsize,
}

#[derive(Clone)]
struct Fake(Arc<State>);

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("only the WIT profile is faked"))
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for Fake {
    type FetchX509SVIDStream = BoxStream<X509svidResponse>;
    type FetchX509BundlesStream = BoxStream<X509BundlesResponse>;
    type FetchJWTBundlesStream = BoxStream<JwtBundlesResponse>;
    type FetchWITSVIDStream = BoxStream<WitsvidResponse>;
    type FetchWITBundlesStream = BoxStream<WitBundlesResponse>;

    async fn fetch_x509svid(&self, _: Request<X509svidRequest>) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        unimplemented()
    }

    async fn fetch_x509_bundles(
        &self,
        _: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        unimplemented()
    }

    async fn fetch_jwtsvid(&self, request: Request<JwtsvidRequest>) -> Result<Response<JwtsvidResponse>, Status> {
        let audience = request.into_inner().audience;
        self.0.jwt_requests.lock().unwrap().push(audience.clone());
        let svid = self
            .0
            .jwt
            .issue_for(&SpiffeId::parse(WEB).unwrap(), &audience, SystemClock.now(), 300)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(JwtsvidResponse {
            svids: vec![Jwtsvid {
                spiffe_id: WEB.into(),
                svid,
                hint: String::new(),
            }],
        }))
    }

    async fn fetch_jwt_bundles(
        &self,
        _: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        unimplemented()
    }

    async fn validate_jwtsvid(
        &self,
        _: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        unimplemented()
    }

    async fn fetch_witsvid(
        &self,
        request: Request<WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        if request.metadata().get("workload.spiffe.io").is_none_or(|v| v != "true") {
            return Err(Status::invalid_argument("security header missing from request"));
        }
        if self.0.deny.load(Ordering::SeqCst) {
            return Err(Status::permission_denied("no identity issued"));
        }
        let wanted = request.into_inner().spiffe_id;
        let updates = WatchStream::new(self.0.wit.subscribe()).map(move |mut response| {
            if !wanted.is_empty() {
                response.svids.retain(|s| s.spiffe_id == wanted);
            }
            Ok(response)
        });
        // The first connection's stream ends after one message, to exercise reconnection.
        if self.0.connections.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(Response::new(Box::pin(updates.take(1))))
        } else {
            Ok(Response::new(Box::pin(updates)))
        }
    }

    async fn fetch_wit_bundles(
        &self,
        _: Request<WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        unimplemented()
    }
}

struct Harness {
    state: Arc<State>,
    client: WorkloadApiClient,
    _dir: tempfile::TempDir,
}

async fn start(initial: WitsvidResponse) -> Harness {
    let (wit, _) = watch::channel(initial);
    let jwt_key = lanyard_crypto::provider().generate_key(Algorithm::ES256).unwrap();
    let state = Arc::new(State {
        wit,
        jwt: JwtSvidIssuer::new(jwt_key, "jwt-1", None).unwrap(),
        jwt_requests: Mutex::new(Vec::new()),
        deny: AtomicBool::new(false),
        connections: AtomicUsize::new(0),
    });
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(SpiffeWorkloadApiServer::new(Fake(state.clone())))
            .serve_with_incoming(UnixListenerStream::new(listener)),
    );
    let client = WorkloadApiClient::connect(&EndpointAddress::Unix(socket))
        .await
        .unwrap();
    Harness {
        state,
        client,
        _dir: dir,
    }
}

#[tokio::test]
async fn serves_the_current_wit_and_follows_rotation_across_reconnects() {
    let minter = Minter::new();
    let first = minter.svid(WEB, false);
    let h = start(WitsvidResponse {
        svids: vec![first.clone()],
    })
    .await;
    let source = WorkloadApiCredentialSource::start(h.client.clone(), None)
        .await
        .unwrap();
    let creds = source.credentials().unwrap();
    assert_eq!(creds.wit, first.wit_svid);
    assert_eq!(creds.id.as_str(), WEB);
    assert!(creds.expires > SystemClock.now());
    // The key is the WIT's cnf key (WorkloadCredentials::new checked it) and it signs.
    assert!(!creds.key.sign(b"message").unwrap().is_empty());

    // The first stream ended after one message; the source reconnects and sees a rotation.
    let second = minter.svid(WEB, false);
    h.state.wit.send_replace(WitsvidResponse {
        svids: vec![second.clone()],
    });
    for _ in 0..200 {
        if source.credentials().unwrap().wit == second.wit_svid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(source.credentials().unwrap().wit, second.wit_svid);
    assert!(h.state.connections.load(Ordering::SeqCst) >= 2);

    // A bad update (key not bound by the WIT) is ignored; the previous credentials stay.
    h.state.wit.send_replace(WitsvidResponse {
        svids: vec![minter.svid(WEB, true)],
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(source.credentials().unwrap().wit, second.wit_svid);
    assert!(format!("{source:?}").contains("WorkloadApiCredentialSource"));
    assert!(!format!("{source:?}").contains(&second.wit_svid_key));
}

#[tokio::test]
async fn picks_the_requested_identity() {
    let minter = Minter::new();
    let web = minter.svid(WEB, false);
    let db = minter.svid(DB, false);
    let h = start(WitsvidResponse {
        svids: vec![web, db.clone()],
    })
    .await;
    let id = SpiffeId::parse(DB).unwrap();
    let source = WorkloadApiCredentialSource::start(h.client.clone(), Some(id.clone()))
        .await
        .unwrap();
    assert_eq!(source.spiffe_id(), Some(&id));
    let creds = source.credentials().unwrap();
    assert_eq!(creds.wit, db.wit_svid);
    assert_eq!(creds.id.as_str(), DB);
}

#[tokio::test]
async fn start_fails_on_denial_and_on_a_key_the_wit_does_not_bind() {
    let minter = Minter::new();
    let h = start(WitsvidResponse {
        svids: vec![minter.svid(WEB, false)],
    })
    .await;
    h.state.deny.store(true, Ordering::SeqCst);
    let err = WorkloadApiCredentialSource::start(h.client.clone(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::CredentialSource { reason, .. } if reason.contains("no identity issued")),
        "{err}"
    );

    let h = start(WitsvidResponse {
        svids: vec![minter.svid(WEB, true)],
    })
    .await;
    assert!(
        WorkloadApiCredentialSource::start(h.client.clone(), None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn oauth_client_credentials_are_jwt_svids_for_the_issuer_reused_until_near_expiry() {
    let minter = Minter::new();
    let h = start(WitsvidResponse {
        svids: vec![minter.svid(WEB, false)],
    })
    .await;
    let source = WorkloadApiClientCredentials::jwt_svid(h.client.clone(), None);
    let issuer = "https://as.example.org";
    let ClientCredential::JwtSvid(first) = source.credential(issuer).await.unwrap() else {
        panic!("not a JWT-SVID")
    };
    let claims = lanyard_core::jose::decode_unverified(&first).unwrap().claims;
    assert_eq!(claims["sub"], serde_json::json!(WEB));
    assert_eq!(claims["aud"], serde_json::json!(issuer));
    // Reused while valid, fetched again for another issuer.
    let ClientCredential::JwtSvid(again) = source.credential(issuer).await.unwrap() else {
        panic!("not a JWT-SVID")
    };
    assert_eq!(again, first);
    source.credential("https://other-as.example.org").await.unwrap();
    assert_eq!(
        *h.state.jwt_requests.lock().unwrap(),
        vec![vec![issuer.to_owned()], vec!["https://other-as.example.org".to_owned()]]
    );
    assert!(source.mtls_client().is_none());
}
