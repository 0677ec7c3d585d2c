//! `lanyard server`: run the identity server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use lanyard_server::ServerConfig;

#[derive(Args, Debug)]
pub(crate) struct ServerArgs {
    /// Configuration file (TOML; every option is documented in conf/server.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub(crate) fn run(args: ServerArgs) -> Result<ExitCode> {
    let config = ServerConfig::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    lanyard_server::init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let database = config.database_url();
        let join_token_ttl = config.join_token_ttl;
        let server = lanyard_server::start(config).await?;
        // A first join token, so the printed agent command works as shown.
        let (token, _) = lanyard_server::endpoints::admin::new_join_token(&server.state, join_token_ttl).await?;
        print_banner(&server, &data_dir, &database, &token, join_token_ttl);
        server
            .run_until(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("server stopped")
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_banner(
    server: &lanyard_server::RunningServer,
    data_dir: &std::path::Path,
    database: &str,
    join_token: &str,
    join_token_ttl: u64,
) {
    let td = server.state.trust_domain.name();
    let url = &server.public_url;
    let socket = server.admin_socket.display();
    let shown_db = if database.starts_with("postgres") {
        "PostgreSQL"
    } else {
        database
    };
    println!(
        "lanyard server {version}
  trust domain     {td}
  data directory   {data} (database: {shown_db})
  public endpoint  {url}
    trust bundle   {url}/bundle
    WIT keys       {url}/keys/wit   JWT-SVID keys {url}/keys/jwt-svid
    discovery      {url}/.well-known/lanyard-configuration
    health         {url}/healthz  {url}/readyz  metrics {url}/metrics
  admin socket     {socket}
  agent API        {agent} (gRPC over mTLS, lanyard.agent.v1)
  oauth issuer     {issuer}
    metadata       {url}/.well-known/oauth-authorization-server
    mTLS endpoint  {mtls} (RFC 8705: X.509-SVID client authentication)

Get a first credential (in another shell, in this directory):
  lanyard key generate --alg ES256 --out workload
  lanyard wit mint --spiffe-id spiffe://{td}/demo --cnf workload.pub.jwk > wit.jwt
  curl -s {url}/bundle > bundle.json
  lanyard token verify @wit.jwt --trust-domain {td} --bundle bundle.json

Start a first agent (another shell, this directory; the join token works once, for {join_token_ttl} s):
  curl -s {url}/bundle > bundle.json
  lanyard agent --join-token {join_token} --trust-bundle bundle.json --server {agent} --trust-domain {td}
More join tokens: lanyard token join

Press Ctrl-C to stop.",
        version = env!("CARGO_PKG_VERSION"),
        data = data_dir.display(),
        agent = server.agent_addr,
        issuer = server.oauth.issuer(),
        mtls = server
            .oauth
            .mtls_endpoint("/oauth/token")
            .unwrap_or_else(|| "off ([oauth] mtls = false)".into()),
    );
}
