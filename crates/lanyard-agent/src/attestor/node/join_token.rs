//! Join-token node attestation, agent side: a one-time token the operator created on
//! the server (`AgentApi.AttestAgent` in `proto/lanyard/agent/v1/agent.proto`).

use lanyard_api::agent::v1 as pb;
use lanyard_api::agent::v1::agent_api_client::AgentApiClient;
use lanyard_core::{CryptoProvider, TrustDomain, UnixTime};
use lanyard_x509::{X509BundleSet, X509Svid};
use tonic::transport::Channel;

use crate::attestor::node::accept_credentials;
use crate::error::AgentError;
use crate::svid::key_and_csr;

/// Attests with a join token (the agent ID it names is hashed with `crypto`); returns the
/// agent SVID and the server's bundle.
pub(crate) async fn attest(
    client: &mut AgentApiClient<Channel>,
    td: &TrustDomain,
    token: &str,
    bootstrap: &X509BundleSet,
    crypto: &dyn CryptoProvider,
    now: UnixTime,
) -> Result<(X509Svid, pb::Bundle), AgentError> {
    let agent_id = lanyard_api::node::join_token_agent_id(td, token, crypto)?.to_string();
    let (key, csr) = key_and_csr(&agent_id, &[])?;
    let request = pb::AttestAgentRequest {
        attestation: Some(pb::attest_agent_request::Attestation::JoinToken(
            pb::JoinTokenAttestation {
                token: token.to_owned(),
            },
        )),
        csr,
    };
    let response = client.attest_agent(crate::link::timed(request)).await?.into_inner();
    let Some(pb::attest_agent_response::Step::Credentials(credentials)) = response.step else {
        return Err(AgentError::InvalidFromServer(
            "join-token attestation did not return credentials".into(),
        ));
    };
    accept_credentials(credentials, key, &agent_id, bootstrap, now)
}
