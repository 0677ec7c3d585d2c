//! `lanyard workload`: talk to the SPIFFE Workload API as a workload would (for debugging),
//! or keep credentials in files for applications that do not speak it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use lanyard_core::SpiffeId;
use lanyard_workload::files::FileWriter;
use lanyard_workload::{EndpointAddress, WorkloadApiClient};
use serde_json::json;

#[derive(Subcommand, Debug)]
pub(crate) enum WorkloadCommand {
    /// Fetch credentials from the Workload API and print them.
    #[command(subcommand)]
    Fetch(FetchCommand),
    /// Validate a JWT-SVID through the Workload API.
    Validate {
        /// The JWT-SVID (or @file).
        token: String,
        /// The audience it must carry.
        #[arg(long)]
        audience: String,
        #[command(flatten)]
        endpoint: EndpointArg,
    },
    /// Keep SVIDs, keys, bundles (and a JWT-SVID / WIT) in files, rewritten atomically on
    /// every rotation, running a command after each update. Runs until Ctrl-C.
    Write(WriteArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum FetchCommand {
    /// X.509-SVIDs (certificates, keys, bundles).
    X509 {
        /// Write svid.pem, svid_key.pem (0600) and bundle.pem into this directory
        /// instead of printing a summary.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        endpoint: EndpointArg,
    },
    /// JWT-SVIDs for an audience (prints one token per line).
    Jwt {
        /// The audience (repeatable).
        #[arg(long, required = true)]
        audience: Vec<String>,
        /// Only this identity.
        #[arg(long)]
        spiffe_id: Option<String>,
        #[command(flatten)]
        endpoint: EndpointArg,
    },
    /// WIT-SVIDs and their private keys (JSON).
    Wit {
        /// Only this identity.
        #[arg(long)]
        spiffe_id: Option<String>,
        #[command(flatten)]
        endpoint: EndpointArg,
    },
    /// X.509, JWT and WIT bundles, keyed by trust domain (JSON).
    Bundles {
        #[command(flatten)]
        endpoint: EndpointArg,
    },
}

/// Where the Workload API is.
#[derive(Args, Debug)]
pub(crate) struct EndpointArg {
    /// The Workload API address (unix:///path or tcp://ip:port; default:
    /// $SPIFFE_ENDPOINT_SOCKET).
    #[arg(long)]
    endpoint: Option<String>,
}

impl EndpointArg {
    async fn connect(&self) -> Result<WorkloadApiClient> {
        let address = match &self.endpoint {
            Some(text) => EndpointAddress::parse(text)?,
            None => EndpointAddress::from_env().context("set SPIFFE_ENDPOINT_SOCKET or pass --endpoint")?,
        };
        Ok(WorkloadApiClient::connect(&address).await?)
    }
}

/// `lanyard workload write`.
#[derive(Args, Debug)]
pub(crate) struct WriteArgs {
    /// The directory to keep the files in (created 0700).
    #[arg(long)]
    dir: PathBuf,
    /// Which identity to write (default: the first the Workload API returns).
    #[arg(long)]
    spiffe_id: Option<String>,
    /// Also keep a JWT-SVID for this audience in jwt_svid.token (repeatable).
    #[arg(long)]
    jwt_audience: Vec<String>,
    /// Also keep a WIT-SVID and its key in wit.jwt and wit_key.jwk.
    #[arg(long)]
    wit: bool,
    /// A command to run after every update (no shell), e.g. `--reload nginx -s reload`.
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    reload: Option<Vec<String>>,
    #[command(flatten)]
    endpoint: EndpointArg,
}

fn spiffe_id(text: Option<&str>) -> Result<Option<SpiffeId>> {
    text.map(|t| SpiffeId::parse(t).with_context(|| format!("--spiffe-id {t:?}")))
        .transpose()
}

pub(crate) fn run(command: WorkloadCommand) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match command {
            WorkloadCommand::Fetch(fetch) => run_fetch(fetch).await,
            WorkloadCommand::Validate {
                token,
                audience,
                endpoint,
            } => {
                let token = crate::input::token(&token)?;
                let (id, claims) = endpoint
                    .connect()
                    .await?
                    .validate_jwt_svid(&audience, token.trim())
                    .await?;
                println!("valid JWT-SVID for {id}");
                println!("{}", serde_json::to_string_pretty(&claims)?);
                Ok(ExitCode::SUCCESS)
            }
            WorkloadCommand::Write(args) => {
                let client = args.endpoint.connect().await?;
                let mut writer = FileWriter::new(&args.dir);
                writer.spiffe_id = spiffe_id(args.spiffe_id.as_deref())?;
                writer.jwt_audiences = args.jwt_audience;
                writer.wit = args.wit;
                writer.reload_command = args.reload;
                eprintln!("keeping credentials in {} (Ctrl-C to stop)", args.dir.display());
                writer
                    .run(&client, async {
                        let _ = tokio::signal::ctrl_c().await;
                    })
                    .await?;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn run_fetch(fetch: FetchCommand) -> Result<ExitCode> {
    match fetch {
        FetchCommand::X509 { out, endpoint } => {
            let context = endpoint.connect().await?.fetch_x509_context().await?;
            if let Some(dir) = out {
                let writer = FileWriter::new(&dir);
                let id = writer.write_x509(&context)?;
                println!("wrote the X.509-SVID of {id} to {}", dir.display());
                return Ok(ExitCode::SUCCESS);
            }
            for svid in &context.svids {
                let expires = svid.not_after().map(|t| t.as_secs()).unwrap_or(0);
                println!("{}", svid.spiffe_id);
                println!("  certificates {} (leaf expires at {expires})", svid.chain.len());
                println!("  bundle       {} authorities", svid.bundle.len());
                if !svid.hint.is_empty() {
                    println!("  hint         {}", svid.hint);
                }
            }
            for (td, certs) in &context.federated_bundles {
                println!("federated bundle {}: {} authorities", td.name(), certs.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        FetchCommand::Jwt {
            audience,
            spiffe_id: wanted,
            endpoint,
        } => {
            let wanted = spiffe_id(wanted.as_deref())?;
            let audience: Vec<&str> = audience.iter().map(String::as_str).collect();
            let svids = endpoint
                .connect()
                .await?
                .fetch_jwt_svid(&audience, wanted.as_ref())
                .await?;
            for svid in svids {
                eprintln!("{}", svid.spiffe_id);
                println!("{}", svid.token);
            }
            Ok(ExitCode::SUCCESS)
        }
        FetchCommand::Wit {
            spiffe_id: wanted,
            endpoint,
        } => {
            let wanted = spiffe_id(wanted.as_deref())?;
            let svids = endpoint.connect().await?.fetch_wit_svids(wanted.as_ref()).await?;
            let shown: Vec<_> = svids
                .iter()
                .map(|s| {
                    json!({
                        "spiffe_id": s.spiffe_id.to_string(),
                        "wit": s.token,
                        "key": serde_json::from_str::<serde_json::Value>(&s.key_jwk).unwrap_or_default(),
                        "hint": s.hint,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(ExitCode::SUCCESS)
        }
        FetchCommand::Bundles { endpoint } => {
            let client = endpoint.connect().await?;
            let x509 = client.fetch_x509_bundles().await?;
            let jwt = client.fetch_jwt_bundles().await?;
            let wit = client.fetch_wit_bundles().await?;
            let mut out = serde_json::Map::new();
            for (td, certs) in &x509.bundles {
                out.insert(
                    format!("spiffe://{}", td.name()),
                    json!({ "x509_authorities": certs.len() }),
                );
            }
            for (td, jwks) in &jwt.bundles {
                let entry = out
                    .entry(format!("spiffe://{}", td.name()))
                    .or_insert_with(|| json!({}));
                entry["jwt_keys"] = serde_json::from_slice(jwks).unwrap_or_default();
            }
            for (td, jwks) in &wit.bundles {
                let entry = out
                    .entry(format!("spiffe://{}", td.name()))
                    .or_insert_with(|| json!({}));
                entry["wit_keys"] = serde_json::from_str(jwks).unwrap_or_default();
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
