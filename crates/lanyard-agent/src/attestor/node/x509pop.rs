//! x509pop node attestation, agent side: prove possession of the node certificate's key
//! (the two-step flow of `AgentApi.AttestAgent` in `proto/lanyard/agent/v1/agent.proto`).

use lanyard_api::agent::v1 as pb;
use lanyard_api::agent::v1::agent_api_client::AgentApiClient;
use lanyard_core::{Algorithm, CryptoProvider, SigningKey, TrustDomain, UnixTime};
use lanyard_x509::{X509BundleSet, X509Svid};
use tonic::transport::Channel;

use crate::attestor::node::accept_credentials;
use crate::config::X509PopConfig;
use crate::error::AgentError;
use crate::svid::key_and_csr;

/// Attests with the node certificate and key in `config` (the agent ID and the signed
/// message are computed with `crypto`).
pub(crate) async fn attest(
    client: &mut AgentApiClient<Channel>,
    td: &TrustDomain,
    config: &X509PopConfig,
    trusted: &X509BundleSet,
    crypto: &dyn CryptoProvider,
    now: UnixTime,
) -> Result<(X509Svid, pb::Bundle), AgentError> {
    let chain_pem = std::fs::read_to_string(&config.cert_path).map_err(AgentError::io("reading", &config.cert_path))?;
    let key_pem = std::fs::read_to_string(&config.key_path).map_err(AgentError::io("reading", &config.key_path))?;
    let chain: Vec<Vec<u8>> = pem::parse_many(&chain_pem)
        .map_err(AgentError::setting(config.cert_path.display().to_string()))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect();
    let leaf = chain
        .first()
        .ok_or_else(|| AgentError::Config(format!("{}: no certificate", config.cert_path.display())))?;
    let node_key = lanyard_crypto::KeyPair::from_pkcs8_pem(&key_pem, Some(Algorithm::PS256))
        .or_else(|_| lanyard_crypto::KeyPair::from_pkcs8_pem(&key_pem, None))
        .map_err(AgentError::setting(config.key_path.display().to_string()))?;

    let attestation = |challenge_response| pb::AttestAgentRequest {
        attestation: Some(pb::attest_agent_request::Attestation::X509pop(pb::X509PopAttestation {
            cert_chain: chain.clone(),
            challenge_response,
        })),
        csr: Vec::new(),
    };
    let first = client
        .attest_agent(crate::link::timed(attestation(None)))
        .await?
        .into_inner();
    let Some(pb::attest_agent_response::Step::Challenge(challenge)) = first.step else {
        return Err(AgentError::InvalidFromServer(
            "x509pop step 1 did not return a challenge".into(),
        ));
    };

    let agent_id = lanyard_api::node::x509pop_agent_id(td, leaf, crypto)?.to_string();
    let (key, csr) = key_and_csr(&agent_id, &[])?;
    let signature = node_key.sign(&lanyard_api::node::x509pop_signed_message(
        &challenge.challenge,
        &csr,
        crypto,
    ))?;
    let mut request = attestation(Some(pb::X509PopChallengeResponse {
        challenge: challenge.challenge,
        signature_algorithm: node_key.algorithm().as_str().to_owned(),
        signature,
    }));
    request.csr = csr;
    let second = client.attest_agent(crate::link::timed(request)).await?.into_inner();
    let Some(pb::attest_agent_response::Step::Credentials(credentials)) = second.step else {
        return Err(AgentError::InvalidFromServer(
            "x509pop step 2 did not return credentials".into(),
        ));
    };
    accept_credentials(credentials, key, &agent_id, trusted, now)
}
