//! End-to-end smoke test of the generated code: implements both generated server traits with
//! fixed answers, serves them with tonic over a Unix socket, and calls them with the generated
//! clients (a unary and a server-streaming RPC of each service).

use std::error::Error;
use std::path::PathBuf;
use std::pin::Pin;

use hyper_util::rt::TokioIo;
use lanyard_api::agent::v1::agent_api_client::AgentApiClient;
use lanyard_api::agent::v1::agent_api_server::{AgentApi, AgentApiServer};
use lanyard_api::agent::v1::{
    AttestAgentRequest, AttestAgentResponse, BatchNewX509SvidRequest, BatchNewX509SvidResponse, Bundle, Bundles,
    EntriesSnapshot, Entry, GetBundlesRequest, GetBundlesResponse, NewJwtSvidRequest, NewJwtSvidResponse,
    NewSdCwtRequest, NewSdCwtResponse, NewWitRequest, NewWitResponse, RenewAgentRequest, RenewAgentResponse, Selector,
    SyncEntriesRequest, SyncEntriesResponse, sync_entries_response,
};
use lanyard_api::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use lanyard_api::workload::spiffe_workload_api_server::{SpiffeWorkloadApi, SpiffeWorkloadApiServer};
use lanyard_api::workload::{
    JwtBundlesRequest, JwtBundlesResponse, Jwtsvid, JwtsvidRequest, JwtsvidResponse, ValidateJwtsvidRequest,
    ValidateJwtsvidResponse, WitBundlesRequest, WitBundlesResponse, WitsvidRequest, WitsvidResponse,
    X509BundlesRequest, X509BundlesResponse, X509svidRequest, X509svidResponse,
};
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::UdsConnectInfo;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::{Code, Request, Response, Status};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

const TRUST_DOMAIN: &str = "spiffe://example.org";
const JWKS: &[u8] = br#"{"keys":[]}"#;

fn once<T: Send + 'static>(item: T) -> BoxStream<T> {
    Box::pin(tokio_stream::once(Ok(item)))
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not part of the smoke test"))
}

/// Rejects requests without the Workload API security header, as the SPIFFE spec requires.
fn check_security_header<T>(request: &Request<T>) -> Result<(), Status> {
    match request.metadata().get("workload.spiffe.io") {
        Some(value) if value == "true" => Ok(()),
        _ => Err(Status::invalid_argument("security header missing from request")),
    }
}

fn own_bundle() -> Bundle {
    Bundle {
        trust_domain: TRUST_DOMAIN.to_owned(),
        json: br#"{"keys":[],"spiffe_sequence":7}"#.to_vec(),
        sequence: 7,
    }
}

struct FakeWorkloadApi;

#[tonic::async_trait]
impl SpiffeWorkloadApi for FakeWorkloadApi {
    type FetchX509SVIDStream = BoxStream<X509svidResponse>;
    type FetchX509BundlesStream = BoxStream<X509BundlesResponse>;
    type FetchJWTBundlesStream = BoxStream<JwtBundlesResponse>;
    type FetchWITSVIDStream = BoxStream<WitsvidResponse>;
    type FetchWITBundlesStream = BoxStream<WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        _request: Request<X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        unimplemented()
    }

    async fn fetch_x509_bundles(
        &self,
        _request: Request<X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        unimplemented()
    }

    async fn fetch_jwtsvid(&self, request: Request<JwtsvidRequest>) -> Result<Response<JwtsvidResponse>, Status> {
        check_security_header(&request)?;
        let audience = request.into_inner().audience.join(",");
        Ok(Response::new(JwtsvidResponse {
            svids: vec![Jwtsvid {
                spiffe_id: format!("{TRUST_DOMAIN}/web"),
                svid: format!("token-for-{audience}"),
                hint: String::new(),
            }],
        }))
    }

    async fn fetch_jwt_bundles(
        &self,
        request: Request<JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        check_security_header(&request)?;
        let bundles = [(TRUST_DOMAIN.to_owned(), JWKS.to_vec())].into();
        Ok(Response::new(once(JwtBundlesResponse { bundles })))
    }

    async fn validate_jwtsvid(
        &self,
        _request: Request<ValidateJwtsvidRequest>,
    ) -> Result<Response<ValidateJwtsvidResponse>, Status> {
        unimplemented()
    }

    async fn fetch_witsvid(
        &self,
        _request: Request<WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        unimplemented()
    }

    async fn fetch_wit_bundles(
        &self,
        _request: Request<WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        unimplemented()
    }
}

struct FakeAgentApi;

#[tonic::async_trait]
impl AgentApi for FakeAgentApi {
    type SyncEntriesStream = BoxStream<SyncEntriesResponse>;

    async fn attest_agent(
        &self,
        _request: Request<AttestAgentRequest>,
    ) -> Result<Response<AttestAgentResponse>, Status> {
        unimplemented()
    }

    async fn renew_agent(&self, _request: Request<RenewAgentRequest>) -> Result<Response<RenewAgentResponse>, Status> {
        unimplemented()
    }

    async fn sync_entries(
        &self,
        _request: Request<SyncEntriesRequest>,
    ) -> Result<Response<Self::SyncEntriesStream>, Status> {
        let bundles = SyncEntriesResponse {
            event: Some(sync_entries_response::Event::Bundles(Bundles {
                bundle: Some(own_bundle()),
                federated_bundles: Default::default(),
            })),
        };
        let snapshot = SyncEntriesResponse {
            event: Some(sync_entries_response::Event::Snapshot(EntriesSnapshot {
                revision: 42,
                entries: vec![Entry {
                    id: "entry-1".to_owned(),
                    spiffe_id: format!("{TRUST_DOMAIN}/web"),
                    parent_id: format!("{TRUST_DOMAIN}/lanyard/agent/join_token/t1"),
                    selectors: vec![Selector {
                        r#type: "unix".to_owned(),
                        value: "uid:1000".to_owned(),
                    }],
                    revision: 40,
                    ..Default::default()
                }],
                complete: true,
            })),
        };
        Ok(Response::new(Box::pin(tokio_stream::iter([Ok(bundles), Ok(snapshot)]))))
    }

    async fn batch_new_x509_svid(
        &self,
        _request: Request<BatchNewX509SvidRequest>,
    ) -> Result<Response<BatchNewX509SvidResponse>, Status> {
        unimplemented()
    }

    async fn new_jwt_svid(&self, _request: Request<NewJwtSvidRequest>) -> Result<Response<NewJwtSvidResponse>, Status> {
        unimplemented()
    }

    async fn new_wit(&self, _request: Request<NewWitRequest>) -> Result<Response<NewWitResponse>, Status> {
        unimplemented()
    }

    async fn new_sd_cwt(&self, _request: Request<NewSdCwtRequest>) -> Result<Response<NewSdCwtResponse>, Status> {
        unimplemented()
    }

    async fn get_bundles(&self, request: Request<GetBundlesRequest>) -> Result<Response<GetBundlesResponse>, Status> {
        // Over a Unix socket tonic attaches the peer's credentials (SO_PEERCRED).
        let pid = request
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|info| info.peer_cred)
            .and_then(|cred| cred.pid());
        if pid != i32::try_from(std::process::id()).ok() {
            return Err(Status::permission_denied(format!("unexpected peer pid {pid:?}")));
        }
        let federated = Bundle {
            trust_domain: "spiffe://partner.example".to_owned(),
            json: JWKS.to_vec(),
            sequence: 1,
        };
        Ok(Response::new(GetBundlesResponse {
            bundles: Some(Bundles {
                bundle: Some(own_bundle()),
                federated_bundles: [(federated.trust_domain.clone(), federated)].into(),
            }),
        }))
    }
}

/// Opens a tonic channel to a Unix socket (the URI is a placeholder; the connector ignores it).
async fn connect(path: PathBuf) -> Result<Channel, Box<dyn Error>> {
    let channel = Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await?;
    Ok(channel)
}

fn with_security_header<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("true"),
    );
    request
}

#[tokio::test]
async fn generated_stubs_work_over_a_unix_socket() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("api.sock");
    let listener = UnixListener::bind(&socket)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .add_service(SpiffeWorkloadApiServer::new(FakeWorkloadApi))
            .add_service(AgentApiServer::new(FakeAgentApi))
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );

    let channel = connect(socket.clone()).await?;
    let mut workload = SpiffeWorkloadApiClient::new(channel.clone());
    let mut agent = AgentApiClient::new(channel);

    // SpiffeWorkloadAPI, unary: FetchJWTSVID.
    let svids = workload
        .fetch_jwtsvid(with_security_header(JwtsvidRequest {
            audience: vec!["db".to_owned()],
            spiffe_id: String::new(),
        }))
        .await?
        .into_inner();
    assert_eq!(svids.svids.len(), 1);
    assert_eq!(svids.svids[0].spiffe_id, "spiffe://example.org/web");
    assert_eq!(svids.svids[0].svid, "token-for-db");

    // The security header is enforced by the fake; its absence surfaces as InvalidArgument.
    let missing = workload
        .fetch_jwtsvid(JwtsvidRequest {
            audience: vec!["db".to_owned()],
            spiffe_id: String::new(),
        })
        .await
        .err()
        .map(|status| status.code());
    assert_eq!(missing, Some(Code::InvalidArgument));

    // SpiffeWorkloadAPI, server streaming: FetchJWTBundles returns the fixed map.
    let mut stream = workload
        .fetch_jwt_bundles(with_security_header(JwtBundlesRequest {}))
        .await?
        .into_inner();
    let first = stream
        .message()
        .await?
        .ok_or("FetchJWTBundles stream ended without a message")?;
    assert_eq!(first.bundles.get(TRUST_DOMAIN).map(Vec::as_slice), Some(JWKS));
    assert_eq!(first.bundles.len(), 1);
    assert!(stream.message().await?.is_none());

    // Unimplemented RPCs surface as Unimplemented.
    let wit = workload
        .fetch_wit_bundles(with_security_header(WitBundlesRequest {}))
        .await;
    assert_eq!(wit.err().map(|status| status.code()), Some(Code::Unimplemented));

    // AgentApi, unary: GetBundles (also checks that the server saw our pid via SO_PEERCRED).
    let bundles = agent
        .get_bundles(GetBundlesRequest {})
        .await?
        .into_inner()
        .bundles
        .ok_or("no bundles")?;
    assert_eq!(bundles.bundle, Some(own_bundle()));
    let federated = bundles
        .federated_bundles
        .get("spiffe://partner.example")
        .ok_or("no federated bundle")?;
    assert_eq!(federated.sequence, 1);

    // AgentApi, server streaming: SyncEntries sends bundles, then a complete snapshot.
    let events: Vec<_> = agent
        .sync_entries(SyncEntriesRequest { known_revision: 0 })
        .await?
        .into_inner()
        .collect::<Result<Vec<_>, Status>>()
        .await?
        .into_iter()
        .filter_map(|response| response.event)
        .collect();
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[0], sync_entries_response::Event::Bundles(b) if b.bundle == Some(own_bundle())));
    let sync_entries_response::Event::Snapshot(snapshot) = &events[1] else {
        return Err(format!("expected a snapshot, got {:?}", events[1]).into());
    };
    assert!(snapshot.complete);
    assert_eq!(snapshot.revision, 42);
    assert_eq!(snapshot.entries[0].selectors[0].value, "uid:1000");

    let _ = stop.send(());
    server.await??;
    Ok(())
}
