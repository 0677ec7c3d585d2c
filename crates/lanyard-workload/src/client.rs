//! [`WorkloadApiClient`]: typed calls of every `SpiffeWorkloadAPI` RPC over a Unix or TCP
//! connection, with the `workload.spiffe.io: true` security header on every request.

use std::pin::Pin;

use hyper_util::rt::TokioIo;
use lanyard_api::workload as pb;
use lanyard_api::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use lanyard_core::SpiffeId;
use tokio_stream::{Stream, StreamExt};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::address::EndpointAddress;
use crate::error::ClientError;
use crate::types::{
    JwtBundles, JwtSvidEntry, WitBundles, WitSvidEntry, X509Bundles, X509Context, X509SvidEntry, jwt_svids,
    struct_to_json, wit_svids,
};

/// The metadata key of the Workload API security header.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

/// A stream of updates from a Workload API watch: each item is the complete current state.
/// A message that fails validation yields [`ClientError::Malformed`] and the watch goes on;
/// a gRPC error (e.g. [`ClientError::PermissionDenied`]) is the last item. The stream also
/// ends when the server closes it; callers that want to keep watching reconnect with
/// backoff (see [`ClientError::is_retryable`]).
pub type Watch<T> = Pin<Box<dyn Stream<Item = Result<T, ClientError>> + Send + 'static>>;

/// Adds `workload.spiffe.io: true` to every request.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SecurityHeader;

impl Interceptor for SecurityHeader {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert(SECURITY_HEADER, tonic::metadata::MetadataValue::from_static("true"));
        Ok(request)
    }
}

type Inner = SpiffeWorkloadApiClient<InterceptedService<Channel, SecurityHeader>>;
pub(crate) type SdCwtInner =
    lanyard_api::spice::v1::sd_cwt_client::SdCwtClient<InterceptedService<Channel, SecurityHeader>>;

/// A client of the SPIFFE Workload API. Cheap to clone: clones share one HTTP/2 connection,
/// which reconnects by itself after failures.
#[derive(Clone, Debug)]
pub struct WorkloadApiClient {
    inner: Inner,
    /// Lanyard's SD-CWT extension on the same channel (`crate::sdcwt`).
    pub(crate) sd_cwt: SdCwtInner,
    address: Option<EndpointAddress>,
}

/// Placeholder URI for Unix-socket channels (the connector ignores it).
const UNIX_PLACEHOLDER_URI: &str = "http://localhost";

fn endpoint(address: &EndpointAddress) -> Result<Endpoint, ClientError> {
    let uri = match address {
        EndpointAddress::Unix(_) => UNIX_PLACEHOLDER_URI.to_owned(),
        EndpointAddress::Tcp(addr) => format!("http://{addr}"),
    };
    Endpoint::from_shared(uri).map_err(|e| ClientError::Connect {
        address: address.to_string(),
        reason: e.to_string(),
    })
}

fn unix_connector(
    path: std::path::PathBuf,
) -> impl tower::Service<
    Uri,
    Response = TokioIo<tokio::net::UnixStream>,
    Error = std::io::Error,
    Future = impl Future<Output = std::io::Result<TokioIo<tokio::net::UnixStream>>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_: Uri| {
        let path = path.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
    })
}

/// A gRPC channel to the Workload API at `address` (Unix socket or TCP), connected now,
/// for callers that want the generated client itself (tests, load generators). It adds no
/// security header: [`WorkloadApiClient`] does.
pub async fn connect_channel(address: &EndpointAddress) -> Result<Channel, ClientError> {
    let ep = endpoint(address)?;
    match address {
        EndpointAddress::Unix(path) => ep.connect_with_connector(unix_connector(path.clone())).await,
        EndpointAddress::Tcp(_) => ep.connect().await,
    }
    .map_err(|e| ClientError::Connect {
        address: address.to_string(),
        reason: error_chain(&e),
    })
}

impl WorkloadApiClient {
    /// Connects to the Workload API at `address`, failing if the endpoint cannot be reached
    /// now.
    pub async fn connect(address: &EndpointAddress) -> Result<WorkloadApiClient, ClientError> {
        let channel = connect_channel(address).await?;
        Ok(WorkloadApiClient::with_address(channel, Some(address.clone())))
    }

    /// A client for `address` that connects on first use (and reconnects after failures);
    /// connection errors surface from the calls as [`ClientError::Unavailable`].
    pub fn connect_lazy(address: &EndpointAddress) -> Result<WorkloadApiClient, ClientError> {
        let ep = endpoint(address)?;
        let channel = match address {
            EndpointAddress::Unix(path) => ep.connect_with_connector_lazy(unix_connector(path.clone())),
            EndpointAddress::Tcp(_) => ep.connect_lazy(),
        };
        Ok(WorkloadApiClient::with_address(channel, Some(address.clone())))
    }

    /// Connects to the address in `SPIFFE_ENDPOINT_SOCKET`.
    pub async fn connect_env() -> Result<WorkloadApiClient, ClientError> {
        WorkloadApiClient::connect(&EndpointAddress::from_env()?).await
    }

    /// A client over an existing channel (e.g. one with custom timeouts).
    pub fn from_channel(channel: Channel) -> WorkloadApiClient {
        WorkloadApiClient::with_address(channel, None)
    }

    fn with_address(channel: Channel, address: Option<EndpointAddress>) -> WorkloadApiClient {
        WorkloadApiClient {
            sd_cwt: lanyard_api::spice::v1::sd_cwt_client::SdCwtClient::with_interceptor(
                channel.clone(),
                SecurityHeader,
            ),
            inner: SpiffeWorkloadApiClient::with_interceptor(channel, SecurityHeader),
            address,
        }
    }

    /// The address this client was connected to, unless built [from a
    /// channel](WorkloadApiClient::from_channel).
    pub fn address(&self) -> Option<&EndpointAddress> {
        self.address.as_ref()
    }

    /// The current X.509 context: the first message of `FetchX509SVID`.
    pub async fn fetch_x509_context(&self) -> Result<X509Context, ClientError> {
        first(self.watch_x509_context().await?).await
    }

    /// The default X.509-SVID (the first of the current X.509 context).
    pub async fn fetch_x509_svid(&self) -> Result<X509SvidEntry, ClientError> {
        let context = self.fetch_x509_context().await?;
        context
            .svids
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::malformed("X509SVIDResponse has no svids"))
    }

    /// Watches the X.509 context: every `FetchX509SVID` message, parsed and validated.
    pub async fn watch_x509_context(&self) -> Result<Watch<X509Context>, ClientError> {
        let stream = self
            .inner
            .clone()
            .fetch_x509svid(pb::X509svidRequest {})
            .await?
            .into_inner();
        Ok(watch(stream, X509Context::try_from))
    }

    /// The current X.509 bundles: the first message of `FetchX509Bundles`.
    pub async fn fetch_x509_bundles(&self) -> Result<X509Bundles, ClientError> {
        first(self.watch_x509_bundles().await?).await
    }

    /// Watches the X.509 bundles (`FetchX509Bundles`).
    pub async fn watch_x509_bundles(&self) -> Result<Watch<X509Bundles>, ClientError> {
        let stream = self
            .inner
            .clone()
            .fetch_x509_bundles(pb::X509BundlesRequest {})
            .await?
            .into_inner();
        Ok(watch(stream, X509Bundles::try_from))
    }

    /// Fetches JWT-SVIDs for `audience` (at least one value): for `spiffe_id` only, or for
    /// every identity the workload is entitled to. The first entry is the default identity.
    pub async fn fetch_jwt_svid(
        &self,
        audience: &[&str],
        spiffe_id: Option<&SpiffeId>,
    ) -> Result<Vec<JwtSvidEntry>, ClientError> {
        if audience.is_empty() || audience.iter().any(|a| a.is_empty()) {
            return Err(ClientError::InvalidArgument(
                "a JWT-SVID needs at least one non-empty audience".into(),
            ));
        }
        let request = pb::JwtsvidRequest {
            audience: audience.iter().map(|a| (*a).to_owned()).collect(),
            spiffe_id: spiffe_id.map(|id| id.as_str().to_owned()).unwrap_or_default(),
        };
        let response = self.inner.clone().fetch_jwtsvid(request).await?.into_inner();
        let svids = jwt_svids(response)?;
        if let Some(id) = spiffe_id
            && svids.iter().any(|s| &s.spiffe_id != id)
        {
            return Err(ClientError::malformed(format!(
                "asked for a JWT-SVID for {id} and got another identity"
            )));
        }
        Ok(svids)
    }

    /// The current JWT bundles: the first message of `FetchJWTBundles`.
    pub async fn fetch_jwt_bundles(&self) -> Result<JwtBundles, ClientError> {
        first(self.watch_jwt_bundles().await?).await
    }

    /// Watches the JWT bundles (`FetchJWTBundles`).
    pub async fn watch_jwt_bundles(&self) -> Result<Watch<JwtBundles>, ClientError> {
        let stream = self
            .inner
            .clone()
            .fetch_jwt_bundles(pb::JwtBundlesRequest {})
            .await?
            .into_inner();
        Ok(watch(stream, JwtBundles::try_from))
    }

    /// Has the Workload API validate a JWT-SVID for `audience` (`ValidateJWTSVID`); returns
    /// the token's SPIFFE ID and its claims as a JSON object.
    pub async fn validate_jwt_svid(
        &self,
        audience: &str,
        token: &str,
    ) -> Result<(SpiffeId, serde_json::Value), ClientError> {
        if audience.is_empty() || token.is_empty() {
            return Err(ClientError::InvalidArgument(
                "validating a JWT-SVID needs an audience and a token".into(),
            ));
        }
        let request = pb::ValidateJwtsvidRequest {
            audience: audience.to_owned(),
            svid: token.to_owned(),
        };
        let response = self.inner.clone().validate_jwtsvid(request).await?.into_inner();
        let id = SpiffeId::parse(&response.spiffe_id)
            .map_err(|e| ClientError::malformed(format!("ValidateJWTSVIDResponse spiffe_id: {e}")))?;
        let claims = response
            .claims
            .map(struct_to_json)
            .ok_or_else(|| ClientError::malformed("ValidateJWTSVIDResponse has no claims"))?;
        Ok((id, claims))
    }

    /// The current WIT-SVIDs (for `spiffe_id` only, or all): the first message of
    /// `FetchWITSVID`. Endpoints without the WIT profile answer
    /// [`ClientError::Unimplemented`].
    pub async fn fetch_wit_svids(&self, spiffe_id: Option<&SpiffeId>) -> Result<Vec<WitSvidEntry>, ClientError> {
        first(self.watch_wit_svids(spiffe_id).await?).await
    }

    /// Watches the WIT-SVIDs (`FetchWITSVID`), for `spiffe_id` only or for all identities.
    pub async fn watch_wit_svids(&self, spiffe_id: Option<&SpiffeId>) -> Result<Watch<Vec<WitSvidEntry>>, ClientError> {
        let request = pb::WitsvidRequest {
            spiffe_id: spiffe_id.map(|id| id.as_str().to_owned()).unwrap_or_default(),
        };
        let stream = self.inner.clone().fetch_witsvid(request).await?.into_inner();
        let wanted = spiffe_id.cloned();
        Ok(watch(stream, move |response| {
            let svids = wit_svids(response)?;
            if let Some(id) = &wanted
                && svids.iter().any(|s| &s.spiffe_id != id)
            {
                return Err(ClientError::malformed(format!(
                    "asked for a WIT-SVID for {id} and got another identity"
                )));
            }
            Ok(svids)
        }))
    }

    /// The current WIT bundles: the first message of `FetchWITBundles`.
    pub async fn fetch_wit_bundles(&self) -> Result<WitBundles, ClientError> {
        first(self.watch_wit_bundles().await?).await
    }

    /// Watches the WIT bundles (`FetchWITBundles`).
    pub async fn watch_wit_bundles(&self) -> Result<Watch<WitBundles>, ClientError> {
        let stream = self
            .inner
            .clone()
            .fetch_wit_bundles(pb::WitBundlesRequest {})
            .await?
            .into_inner();
        Ok(watch(stream, WitBundles::try_from))
    }
}

/// Maps a gRPC stream through `parse`. A malformed message yields an error and the watch
/// goes on; a gRPC error is the stream's last item.
fn watch<M, T, F>(stream: tonic::Streaming<M>, parse: F) -> Watch<T>
where
    M: Send + 'static,
    T: Send + 'static,
    F: Fn(M) -> Result<T, ClientError> + Send + 'static,
{
    Box::pin(stream.map(move |item| item.map_err(ClientError::from).and_then(&parse)))
}

async fn first<T>(mut stream: Watch<T>) -> Result<T, ClientError> {
    stream.next().await.unwrap_or(Err(ClientError::StreamClosed))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
