//! `lanyard agent`: run the node agent, check its health, or manage agents on the server.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use lanyard_agent::{AgentConfig, LogFormat};

use super::admin::SocketArg;

/// `lanyard agent [run options]` or `lanyard agent <subcommand>`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct AgentArgs {
    #[command(subcommand)]
    command: Option<AgentCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum AgentCommand {
    /// Run the agent (the default when no subcommand is given).
    Run(RunArgs),
    /// Ask a running agent whether it is ready (exit status 0 if so).
    Healthcheck {
        /// The agent's health address.
        #[arg(long, default_value = "127.0.0.1:8082")]
        address: String,
        /// Print the agent's status document too.
        #[arg(long, short)]
        verbose: bool,
    },
    /// List attested agents (on a running server).
    List(SocketArg),
    /// Ban an agent (on a running server): its next call fails and its entries stop being served.
    Ban {
        /// The agent's SPIFFE ID.
        id: String,
        #[command(flatten)]
        socket: SocketArg,
    },
}

/// Options of `lanyard agent run`; each overrides the configuration file and environment.
#[derive(Args, Debug, Default)]
struct RunArgs {
    /// Configuration file (TOML; every option is documented in conf/agent.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// One-time join token for the first attestation.
    #[arg(long)]
    join_token: Option<String>,
    /// The server's trust bundle (SPIFFE bundle JSON or PEM) for the first start.
    #[arg(long)]
    trust_bundle: Option<PathBuf>,
    /// The server's agent API address (host:port).
    #[arg(long)]
    server: Option<String>,
    /// The trust domain.
    #[arg(long)]
    trust_domain: Option<String>,
    /// The Workload API socket path.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The agent's data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The health endpoint address ("" disables it).
    #[arg(long)]
    health_address: Option<String>,
}

pub(crate) fn run(args: AgentArgs) -> Result<ExitCode> {
    match args.command {
        None => run_agent(args.run),
        Some(AgentCommand::Run(run)) => run_agent(run),
        Some(AgentCommand::Healthcheck { address, verbose }) => healthcheck(&address, verbose),
        Some(AgentCommand::List(socket)) => super::admin::list_agents(socket),
        Some(AgentCommand::Ban { id, socket }) => super::admin::ban_agent(&id, socket),
    }
}

fn run_agent(args: RunArgs) -> Result<ExitCode> {
    let mut config = AgentConfig::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(v) = args.join_token {
        config.join_token = Some(v);
    }
    if let Some(v) = args.trust_bundle {
        config.trust_bundle_path = Some(v);
    }
    if let Some(v) = args.server {
        config.server_address = v;
    }
    if let Some(v) = args.trust_domain {
        config.trust_domain = v;
    }
    if let Some(v) = args.socket {
        config.socket_path = v;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.health_address {
        config.health_address = v;
    }
    // The server's logging setup (stderr, human or JSON, env-filter) serves the agent too.
    lanyard_server::init_logging(&lanyard_server::ServerConfig {
        log_format: match config.log_format {
            LogFormat::Json => lanyard_server::config::LogFormat::Json,
            LogFormat::Human => lanyard_server::config::LogFormat::Human,
        },
        log_level: config.log_level.clone(),
        ..lanyard_server::ServerConfig::default()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let agent = lanyard_agent::start(config, lanyard_crypto::provider()).await?;
        let socket = std::path::absolute(&agent.socket_path).unwrap_or_else(|_| agent.socket_path.clone());
        println!(
            "lanyard agent {version}
  agent ID         {id}
  Workload API     unix://{socket}
  reachable by     {access}
  health           {health}

Fetch credentials as a workload (in another shell):
  export SPIFFE_ENDPOINT_SOCKET=unix://{socket}
  lanyard workload fetch x509
  lanyard workload fetch jwt --audience example

Press Ctrl-C to stop.",
            version = env!("CARGO_PKG_VERSION"),
            id = agent.manager.agent_id(),
            socket = socket.display(),
            access = agent.socket_access,
            health = agent
                .health_addr
                .map_or_else(|| "disabled".to_owned(), |a| format!("http://{a}/readyz")),
        );
        agent
            .run_until(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `GET /readyz` (and `/status` when verbose) on the agent's health endpoint.
fn healthcheck(address: &str, verbose: bool) -> Result<ExitCode> {
    let (status, body) = http_get(address, "/readyz")?;
    if verbose {
        let (_, details) = http_get(address, "/status")?;
        println!("{}", details.trim());
    }
    println!("{}", body.trim());
    Ok(if status == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn http_get(address: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(address).with_context(|| format!("connecting to {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("malformed HTTP response from {address}");
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    Ok((status, body.to_owned()))
}
