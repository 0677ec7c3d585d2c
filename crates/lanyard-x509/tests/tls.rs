//! mTLS between `server_config` and `client_config` over in-memory pipes and loopback
//! TCP: success on TLS 1.3 and 1.2, refusal of unauthorized SPIFFE IDs on either side,
//! SVID rotation and bundle updates without restart, and curl (OpenSSL) as a client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{id, td, write};
use lanyard_core::{Clock, SpiffeId, SystemClock};
use lanyard_x509::{
    Authorizer, SpiffeServerCertVerifier, SubjectKey, SvidResolver, SvidSource, X509Authority, X509Bundle,
    X509BundleSet, X509Svid, client_config, client_config_with_verifier, peer_spiffe_id, server_config,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ProtocolVersion, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

/// One trust domain's CA plus helpers; issues with the real clock (rustls uses it).
struct Domain {
    ca: X509Authority,
}

impl Domain {
    fn new(name: &str) -> Domain {
        Domain {
            ca: X509Authority::new_root(lanyard_crypto::provider(), &td(name), None, 86_400, SystemClock.now())
                .unwrap(),
        }
    }

    fn svid(&self, sid: &str) -> X509Svid {
        self.svid_with_dns(sid, &[])
    }

    fn svid_with_dns(&self, sid: &str, dns: &[String]) -> X509Svid {
        self.ca
            .issue_svid(&id(sid), SubjectKey::Generate, 3600, dns, SystemClock.now())
            .unwrap()
    }

    fn bundle(&self) -> X509Bundle {
        X509Bundle::from_pem(self.ca.trust_domain().unwrap().clone(), &self.ca.cert_pem()).unwrap()
    }
}

fn source(svid: &X509Svid, bundles: &[X509Bundle]) -> Arc<SvidSource> {
    let set = bundles.iter().cloned().fold(X509BundleSet::new(), X509BundleSet::with);
    Arc::new(SvidSource::new(svid, set).unwrap())
}

type Streams = (client::TlsStream<DuplexStream>, server::TlsStream<DuplexStream>);

/// Runs both handshakes over an in-memory pipe; Err carries (client error, server error).
async fn connect(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Result<Streams, (String, String)> {
    let (c_io, s_io) = tokio::io::duplex(1 << 16);
    let name = ServerName::try_from("example.org").unwrap();
    let (c, s) = tokio::join!(
        TlsConnector::from(client).connect(name, c_io),
        TlsAcceptor::from(server).accept(s_io)
    );
    match (c, s) {
        (Ok(mut c), Ok(s)) => {
            // TLS 1.3 client authentication is only judged once the server reads the
            // client's Finished; a round trip makes both sides commit.
            let mut s = s;
            let (r1, r2) = tokio::join!(ping(&mut c), pong(&mut s));
            match (r1, r2) {
                (Ok(()), Ok(())) => Ok((c, s)),
                (a, b) => Err((fmt(a), fmt(b))),
            }
        }
        (Ok(mut c), Err(s)) => {
            // TLS 1.3: the client finished first; the server's alert arrives on read.
            let mut buf = [0u8; 1];
            let c = c.read(&mut buf).await.map(drop);
            Err((fmt(c), fmt(Err(s))))
        }
        (c, s) => Err((fmt(c.map(drop)), fmt(s.map(drop)))),
    }
}

fn fmt(r: std::io::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("{e}"),
    }
}

async fn ping(c: &mut client::TlsStream<DuplexStream>) -> std::io::Result<()> {
    c.write_all(b"ping").await?;
    c.flush().await?;
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"pong");
    Ok(())
}

async fn pong(s: &mut server::TlsStream<DuplexStream>) -> std::io::Result<()> {
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await?;
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong").await?;
    s.flush().await
}

/// The leaf DER the client saw from the server.
fn server_leaf(streams: &Streams) -> Vec<u8> {
    streams.0.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

struct Setup {
    domain: Domain,
    server_src: Arc<SvidSource>,
    client_src: Arc<SvidSource>,
    server_id: SpiffeId,
    client_id: SpiffeId,
}

fn setup() -> Setup {
    let domain = Domain::new("example.org");
    let server_src = source(&domain.svid("spiffe://example.org/server"), &[domain.bundle()]);
    let client_src = source(&domain.svid("spiffe://example.org/client"), &[domain.bundle()]);
    Setup {
        domain,
        server_src,
        client_src,
        server_id: id("spiffe://example.org/server"),
        client_id: id("spiffe://example.org/client"),
    }
}

impl Setup {
    fn server(&self, auth: Authorizer) -> Arc<ServerConfig> {
        Arc::new(server_config(Arc::clone(&self.server_src), auth).unwrap())
    }

    fn client(&self, auth: Authorizer) -> Arc<ClientConfig> {
        Arc::new(client_config(Arc::clone(&self.client_src), auth).unwrap())
    }
}

#[tokio::test]
async fn mtls_tls13_handshake_succeeds_and_names_the_peers() {
    let s = setup();
    let streams = connect(
        s.client(Authorizer::Exact(s.server_id.clone())),
        s.server(Authorizer::Exact(s.client_id.clone())),
    )
    .await
    .unwrap();
    let (c, srv) = (streams.0.get_ref().1, streams.1.get_ref().1);
    assert_eq!(c.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(peer_spiffe_id(srv), Some(s.client_id.clone()));
    assert_eq!(peer_spiffe_id(c), Some(s.server_id.clone()));
    // Other authorizers that admit the peers.
    for (ca, sa) in [
        (Authorizer::Any, Authorizer::Any),
        (
            Authorizer::TrustDomain(td("example.org")),
            Authorizer::TrustDomain(td("example.org")),
        ),
        (
            Authorizer::OneOf(vec![id("spiffe://example.org/x"), s.server_id.clone()]),
            Authorizer::OneOf(vec![s.client_id.clone()]),
        ),
    ] {
        connect(s.client(ca), s.server(sa)).await.unwrap();
    }
}

#[tokio::test]
async fn mtls_tls12_handshake_succeeds() {
    let s = setup();
    let verifier = SpiffeServerCertVerifier::new(Arc::clone(&s.client_src), Authorizer::Exact(s.server_id.clone()));
    let client = ClientConfig::builder_with_provider(Arc::clone(s.client_src.provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(SvidResolver::new(Arc::clone(&s.client_src))));
    let streams = connect(Arc::new(client), s.server(Authorizer::Exact(s.client_id.clone())))
        .await
        .unwrap();
    assert_eq!(streams.1.get_ref().1.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(peer_spiffe_id(streams.1.get_ref().1), Some(s.client_id.clone()));
}

#[tokio::test]
async fn unauthorized_client_is_refused_by_the_server() {
    let s = setup();
    let (client_err, server_err) = connect(
        s.client(Authorizer::Exact(s.server_id.clone())),
        s.server(Authorizer::Exact(id("spiffe://example.org/someone-else"))),
    )
    .await
    .unwrap_err();
    assert!(
        server_err.contains("SPIFFE ID spiffe://example.org/client is not authorized")
            && server_err.contains("spiffe://example.org/someone-else"),
        "server: {server_err}"
    );
    assert!(client_err.contains("HandshakeFailure"), "client: {client_err}");
    // A trust-domain authorizer for another trust domain refuses too.
    let err = connect(
        s.client(Authorizer::Any),
        s.server(Authorizer::TrustDomain(td("other.org"))),
    )
    .await
    .unwrap_err();
    assert!(err.1.contains("not authorized"), "{err:?}");
}

#[tokio::test]
async fn unauthorized_server_is_refused_by_the_client() {
    let s = setup();
    let (client_err, _) = connect(
        s.client(Authorizer::Exact(id("spiffe://example.org/the-real-server"))),
        s.server(Authorizer::Any),
    )
    .await
    .unwrap_err();
    assert!(
        client_err.contains("SPIFFE ID spiffe://example.org/server is not authorized"),
        "client: {client_err}"
    );
}

#[tokio::test]
async fn peer_from_an_untrusted_trust_domain_is_refused() {
    let s = setup();
    let other = Domain::new("other.org");
    let stranger = source(
        &other.svid("spiffe://other.org/client"),
        &[s.domain.bundle(), other.bundle()],
    );
    let client = Arc::new(client_config(stranger, Authorizer::Any).unwrap());
    let (_, server_err) = connect(client, s.server(Authorizer::Any)).await.unwrap_err();
    assert!(
        server_err.contains("no X.509 bundle for trust domain \"other.org\""),
        "{server_err}"
    );
}

#[tokio::test]
async fn client_without_dns_check_accepts_uri_only_server_and_name_check_can_be_enabled() {
    let s = setup();
    // The server SVID has no DNS SAN: the default client does not care ...
    connect(
        s.client(Authorizer::Exact(s.server_id.clone())),
        s.server(Authorizer::Any),
    )
    .await
    .unwrap();
    // ... a name-checking client refuses it ...
    let checking = |src: &Arc<SvidSource>| {
        let v = SpiffeServerCertVerifier::new(Arc::clone(src), Authorizer::Exact(s.server_id.clone()))
            .with_server_name_check();
        Arc::new(client_config_with_verifier(Arc::clone(src), v).unwrap())
    };
    let err = connect(checking(&s.client_src), s.server(Authorizer::Any))
        .await
        .unwrap_err();
    assert!(err.0.contains("not valid for \"example.org\""), "{err:?}");
    // ... and accepts a server SVID that carries the name.
    s.server_src
        .update_svid(
            &s.domain
                .svid_with_dns("spiffe://example.org/server", &["example.org".into()]),
        )
        .unwrap();
    connect(checking(&s.client_src), s.server(Authorizer::Any))
        .await
        .unwrap();
}

#[tokio::test]
async fn rotation_needs_no_restart_and_spares_open_connections() {
    let s = setup();
    let server = s.server(Authorizer::Exact(s.client_id.clone()));
    let client = s.client(Authorizer::Exact(s.server_id.clone()));
    let first_svid_leaf = s.server_src.certified_key().cert[0].to_vec();

    let mut old = connect(Arc::clone(&client), Arc::clone(&server)).await.unwrap();
    assert_eq!(server_leaf(&old), first_svid_leaf);

    // Rotate both SVIDs (same IDs, new keys and serials) behind the same configs.
    let new_server = s.domain.svid("spiffe://example.org/server");
    let new_client = s.domain.svid("spiffe://example.org/client");
    s.server_src.update_svid(&new_server).unwrap();
    s.client_src.update_svid(&new_client).unwrap();

    let fresh = connect(Arc::clone(&client), Arc::clone(&server)).await.unwrap();
    assert_eq!(
        server_leaf(&fresh),
        new_server.chain[0].to_vec(),
        "new connections see the new SVID"
    );
    assert_eq!(
        fresh.1.get_ref().1.peer_certificates().unwrap()[0].to_vec(),
        new_client.chain[0].to_vec()
    );

    // The connection opened before the rotation still works and still holds the old SVID.
    let (r1, r2) = tokio::join!(ping(&mut old.0), pong(&mut old.1));
    r1.unwrap();
    r2.unwrap();
    assert_eq!(server_leaf(&old), first_svid_leaf);

    // An SVID without its key, or with a mismatched key, is refused and changes nothing.
    let mut keyless = s.domain.svid("spiffe://example.org/server");
    keyless.key = None;
    assert_eq!(s.server_src.update_svid(&keyless).unwrap_err().kind(), "missing_key");
    assert_eq!(
        s.server_src.certified_key().cert[0].to_vec(),
        new_server.chain[0].to_vec()
    );
}

#[tokio::test]
async fn bundle_update_applies_to_new_handshakes_only() {
    let s = setup();
    let server = s.server(Authorizer::Any);
    let client = s.client(Authorizer::Any);
    let mut old = connect(Arc::clone(&client), Arc::clone(&server)).await.unwrap();

    // The server stops trusting example.org (e.g. its bundle moved to a new root).
    let replacement = Domain::new("example.org");
    s.server_src
        .update_bundles(X509BundleSet::new().with(replacement.bundle()));
    let (_, server_err) = connect(Arc::clone(&client), Arc::clone(&server)).await.unwrap_err();
    assert!(server_err.contains("UnknownIssuer"), "{server_err}");
    let (r1, r2) = tokio::join!(ping(&mut old.0), pong(&mut old.1));
    r1.unwrap();
    r2.unwrap();

    // Trusting both roots during a CA rotation admits both generations.
    let both = X509Bundle::from_der_certs(
        td("example.org"),
        [s.domain.ca.cert_der().clone(), replacement.ca.cert_der().clone()],
    )
    .unwrap();
    s.server_src.update_bundles(X509BundleSet::new().with(both));
    connect(client, server).await.unwrap();
}

#[tokio::test]
async fn curl_talks_to_a_lanyard_server() {
    let have_curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_curl {
        eprintln!("SKIP: curl is not installed");
        return;
    }
    let domain = Domain::new("example.org");
    // curl checks the host name, so this server SVID also carries DNS:localhost; it comes
    // from an intermediate so that curl also builds a chain.
    let inter = X509Authority::new_intermediate(
        lanyard_crypto::provider(),
        &td("example.org"),
        &domain.ca,
        None,
        3600,
        SystemClock.now(),
    )
    .unwrap();
    let server_svid = inter
        .issue_svid(
            &id("spiffe://example.org/https"),
            SubjectKey::Generate,
            600,
            &["localhost".to_owned()],
            SystemClock.now(),
        )
        .unwrap();
    let client_svid = domain.svid("spiffe://example.org/curl");
    let server_src = source(&server_svid, &[domain.bundle()]);
    let config = Arc::new(server_config(server_src, Authorizer::Exact(id("spiffe://example.org/curl"))).unwrap());

    let dir = tempfile::tempdir().unwrap();
    let cert = write(dir.path(), "leaf.pem", &client_svid.chain_pem());
    let key = write(dir.path(), "key.pem", &client_svid.key_pem().unwrap());
    let root = write(dir.path(), "root.pem", &domain.ca.cert_pem());
    let other = domain.svid("spiffe://example.org/not-curl");
    let other_cert = write(dir.path(), "other.pem", &other.chain_pem());
    let other_key = write(dir.path(), "other-key.pem", &other.key_pem().unwrap());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(config);
    let server = tokio::spawn(async move {
        // Serve at most three connections (bounded), answering with the caller's SPIFFE ID.
        for _ in 0..3 {
            let Ok(Ok((tcp, _))) = tokio::time::timeout(std::time::Duration::from_secs(20), listener.accept()).await
            else {
                return;
            };
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let who = peer_spiffe_id(tls.get_ref().1)
                .map(|i| i.to_string())
                .unwrap_or_default();
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{who}",
                who.len()
            );
            let _ = tls.write_all(resp.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });

    let url = format!("https://localhost:{port}/");
    let resolve = format!("localhost:{port}:127.0.0.1");
    let curl = move |cert: Option<(std::path::PathBuf, std::path::PathBuf)>| {
        let (url, resolve, root) = (url.clone(), resolve.clone(), root.clone());
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new("curl");
            cmd.args(["-sS", "--max-time", "10", "--resolve", &resolve, "--cacert"])
                .arg(&root);
            if let Some((c, k)) = cert {
                cmd.arg("--cert").arg(c).arg("--key").arg(k);
            }
            cmd.arg(&url).output().unwrap()
        })
    };

    let ok = curl(Some((cert, key))).await.unwrap();
    assert!(
        ok.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "spiffe://example.org/curl");

    // A valid SVID that the server's authorizer does not admit, and no client cert at all.
    let denied = curl(Some((other_cert, other_key))).await.unwrap();
    assert!(
        !denied.status.success(),
        "unauthorized curl got {}",
        String::from_utf8_lossy(&denied.stdout)
    );
    let why = String::from_utf8_lossy(&denied.stderr);
    assert!(why.contains("alert handshake failure"), "{why}");
    let anonymous = curl(None).await.unwrap();
    assert!(
        !anonymous.status.success(),
        "anonymous curl got {}",
        String::from_utf8_lossy(&anonymous.stdout)
    );
    server.await.unwrap();
}
