//! x509pop end to end: a server that trusts a node CA, and an agent that attests with a
//! node certificate from it, with no join token; after losing its stored SVID the agent
//! attests again by itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lanyard_agent::{AgentConfig, X509PopConfig};
use lanyard_server::config::X509PopConfig as ServerX509Pop;
use lanyard_testing::harness::Harness;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_attests_with_a_node_certificate_and_reattests() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);

    // A node CA and a node certificate (not SPIFFE certificates).
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "node CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(path("node-ca.pem"), ca_cert.pem()).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let node_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut node_params = rcgen::CertificateParams::new(vec!["node-1.example.org".to_owned()]).unwrap();
    node_params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let node_cert = node_params.signed_by(&node_key, &issuer).unwrap();
    std::fs::write(path("node.pem"), node_cert.pem()).unwrap();
    std::fs::write(path("node-key.pem"), node_key.serialize_pem()).unwrap();

    let ca_bundle_path = path("node-ca.pem");
    let h = Harness::start_in(dir, |config, _| {
        config.node_attestation.x509pop = Some(ServerX509Pop { ca_bundle_path });
    })
    .await;
    let path = |name: &str| h.path(name);

    let config = AgentConfig {
        server_address: h.server.agent_addr.to_string(),
        trust_bundle_path: Some(path("bundle.json")),
        x509pop: Some(X509PopConfig {
            cert_path: path("node.pem"),
            key_path: path("node-key.pem"),
        }),
        data_dir: path("agent"),
        socket_path: path("public/api.sock"),
        health_address: String::new(),
        ..AgentConfig::default()
    };
    let td = lanyard_core::TrustDomain::parse("example.org").unwrap();
    let expected = lanyard_api::node::x509pop_agent_id(&td, node_cert.der(), &*lanyard_crypto::provider()).unwrap();

    let agent = lanyard_agent::start(config.clone(), lanyard_crypto::provider())
        .await
        .unwrap();
    assert_eq!(agent.manager.agent_id(), expected);
    agent.run_until(async {}).await;

    // Without its stored SVID (as after a long outage), the agent proves its node again.
    std::fs::remove_file(path("agent/agent_svid.pem")).unwrap();
    let again = lanyard_agent::start(config.clone(), lanyard_crypto::provider())
        .await
        .unwrap();
    assert_eq!(again.manager.agent_id(), expected);
    again.run_until(async {}).await;

    // A node certificate from another CA is refused with a clear error.
    let other_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other = node_params.self_signed(&other_key).unwrap();
    std::fs::write(path("node.pem"), other.pem()).unwrap();
    std::fs::write(path("node-key.pem"), other_key.serialize_pem()).unwrap();
    std::fs::remove_file(path("agent/agent_svid.pem")).unwrap();
    let err = lanyard_agent::start(config, lanyard_crypto::provider())
        .await
        .unwrap_err();
    assert!(matches!(err, lanyard_agent::AgentError::Attestation(_)), "{err}");
    h.server.shutdown().await.unwrap();
}
