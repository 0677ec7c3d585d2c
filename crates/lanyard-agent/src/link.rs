//! The agent's connection to the server's agent API: gRPC over TLS, authenticated by the
//! server's X.509-SVID (pinned to its SPIFFE ID) and, after attestation, by the agent's own.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use lanyard_api::agent::v1::agent_api_client::AgentApiClient;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::AgentError;

/// The largest message the agent accepts from the server (a snapshot chunk of entries).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// How long a unary call to the server may take before the agent gives up (and retries
/// later): a stalled server must not stall rotation or expiry handling.
pub(crate) const RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// `message` as a request with the [`RPC_TIMEOUT`] deadline.
pub(crate) fn timed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(RPC_TIMEOUT);
    request
}

/// A lazily connected client of the agent API at `address` (`host:port`) with `tls`.
/// Connections are made on first use and remade after failures.
pub(crate) fn client(address: &str, mut tls: ClientConfig) -> Result<AgentApiClient<Channel>, AgentError> {
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = TlsConnector::from(Arc::new(tls));
    let address = address.to_owned();
    let endpoint = Endpoint::try_from(format!("http://{address}"))
        .map_err(AgentError::setting(format!("server_address {address:?}")))?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(std::time::Duration::from_secs(30))
        .keep_alive_while_idle(true);
    let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
        let connector = connector.clone();
        let address = address.clone();
        async move {
            let tcp = TcpStream::connect(&address).await?;
            tcp.set_nodelay(true)?;
            // The server is authenticated by its SPIFFE ID, not a DNS name; rustls still
            // wants a name for SNI.
            let name = ServerName::try_from("lanyard-server").map_err(std::io::Error::other)?;
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    }));
    Ok(AgentApiClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}
