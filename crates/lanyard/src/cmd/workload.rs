//! `lanyard workload`: talk to the SPIFFE Workload API as a workload would (for debugging),
//! or keep credentials in files for applications that do not speak it.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use lanyard_core::SpiffeId;
use lanyard_workload::files::FileWriter;
use lanyard_workload::{EndpointAddress, WitSvidEntry, WorkloadApiClient};
use serde_json::json;

use crate::output::{relative, rfc3339};

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
    /// X.509-SVIDs: prints a summary (identities, expiry, chains, bundles), never the
    /// private key unless asked; --out writes the files.
    X509 {
        /// Only this identity (with --out: write this one; default: the first).
        #[arg(long)]
        spiffe_id: Option<String>,
        /// Write svid.pem, svid_key.pem, bundle.pem (and federated_bundles.pem when there
        /// are federated bundles) into this directory, all mode 0600.
        #[command(flatten)]
        secrets: SecretOutput,
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
    /// WIT-SVIDs (JSON): identity, WIT, expiry and the public key it binds; the private
    /// key only to files (--out) or when asked (--show-private-key).
    Wit {
        /// Only this identity (with --out: write this one; default: the first).
        #[arg(long)]
        spiffe_id: Option<String>,
        /// Write wit.jwt and wit_key.jwk into this directory, mode 0600.
        #[command(flatten)]
        secrets: SecretOutput,
        #[command(flatten)]
        endpoint: EndpointArg,
    },
    /// A fresh SD-CWT (Lanyard's Workload API extension, `lanyard.spice.v1.SdCwt`): its
    /// identity, expiry and hex token (JSON); the holder's private key only to files
    /// (--out: sd_cwt.hex and sd_cwt_key.jwk) or when asked (--show-private-key). Inspect
    /// and present it with `lanyard sdcwt`.
    #[command(name = "sd-cwt")]
    SdCwt {
        /// Which identity (default: the first).
        #[arg(long)]
        spiffe_id: Option<String>,
        #[command(flatten)]
        secrets: SecretOutput,
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
    pub(crate) async fn connect(&self) -> Result<WorkloadApiClient> {
        let address = match &self.endpoint {
            Some(text) => EndpointAddress::parse(text)?,
            None => EndpointAddress::from_env().context("set SPIFFE_ENDPOINT_SOCKET or pass --endpoint")?,
        };
        Ok(WorkloadApiClient::connect(&address).await?)
    }
}

/// Where `fetch` puts private keys: nowhere by default (only public parts are printed),
/// files with `--out`, stdout with `--show-private-key`.
#[derive(Args, Debug)]
pub(crate) struct SecretOutput {
    /// Write the credential files, private key included, into this directory (created
    /// with mode 0700 if missing; files mode 0600). Files that exist are left alone and the
    /// command fails, unless --force.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// With --out: replace existing files (each atomically).
    #[arg(long, requires = "out")]
    force: bool,
    /// Also print the private key to stdout (a terminal, a log or a pipe may keep it).
    #[arg(long)]
    show_private_key: bool,
}

impl SecretOutput {
    /// Writes `files` (name, contents) into the `--out` directory, all mode 0600: none of
    /// them if one exists already (without `--force`), or each replaced atomically.
    fn write(&self, dir: &Path, files: &[(&str, String)]) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        if self.force {
            for (name, contents) in files {
                lanyard_workload::files::write_atomic(dir, name, contents.as_bytes())?;
            }
            return Ok(());
        }
        if let Some((name, _)) = files.iter().find(|(name, _)| dir.join(name).exists()) {
            bail!(
                "{} exists; pass --force to replace the files in {}",
                dir.join(name).display(),
                dir.display()
            );
        }
        for (name, contents) in files {
            crate::input::write_file(&dir.join(name), contents, true)?;
        }
        Ok(())
    }
}

/// The concatenated PEM `CERTIFICATE` blocks of `certs`.
fn certificates_pem(certs: &[lanyard_workload::CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())))
        .collect()
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
        FetchCommand::X509 {
            spiffe_id: wanted,
            secrets,
            endpoint,
        } => {
            let wanted = spiffe_id(wanted.as_deref())?;
            let context = endpoint.connect().await?.fetch_x509_context().await?;
            if let Some(dir) = &secrets.out {
                let svid = match &wanted {
                    Some(id) => context.svid_for(id),
                    None => context.default_svid(),
                }
                .context("the Workload API returned no such X.509-SVID")?;
                let mut files = vec![
                    ("svid_key.pem", svid.key_pem()),
                    ("svid.pem", svid.chain_pem()),
                    ("bundle.pem", svid.bundle_pem()),
                ];
                if !context.federated_bundles.is_empty() {
                    let federated = context
                        .federated_bundles
                        .values()
                        .map(|c| certificates_pem(c))
                        .collect();
                    files.push(("federated_bundles.pem", federated));
                }
                secrets.write(dir, &files)?;
                let names: Vec<&str> = files.iter().map(|(name, _)| *name).collect();
                eprintln!(
                    "wrote the X.509-SVID of {} to {} ({}; mode 0600)",
                    svid.spiffe_id,
                    dir.display(),
                    names.join(", ")
                );
            }
            let now = crate::input::now(None);
            for svid in context
                .svids
                .iter()
                .filter(|s| wanted.as_ref().is_none_or(|id| &s.spiffe_id == id))
            {
                println!("{}", svid.spiffe_id);
                match svid.not_after() {
                    Ok(t) => println!("  expires      {} ({})", rfc3339(t), relative(t, now)),
                    Err(e) => println!("  expires      unknown ({e})"),
                }
                println!("  certificates {}", svid.chain.len());
                println!("  bundle       {} authorities", svid.bundle.len());
                if !svid.hint.is_empty() {
                    println!("  hint         {}", svid.hint);
                }
                if secrets.show_private_key {
                    print!("{}{}", svid.chain_pem(), svid.key_pem());
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
            secrets,
            endpoint,
        } => {
            let wanted = spiffe_id(wanted.as_deref())?;
            let svids = endpoint.connect().await?.fetch_wit_svids(wanted.as_ref()).await?;
            if let Some(dir) = &secrets.out {
                let svid = svids.first().context("the Workload API returned no WIT-SVID")?;
                secrets.write(
                    dir,
                    &[("wit_key.jwk", svid.key_jwk.clone()), ("wit.jwt", svid.token.clone())],
                )?;
                eprintln!(
                    "wrote the WIT-SVID of {} to {} (wit.jwt, wit_key.jwk; mode 0600)",
                    svid.spiffe_id,
                    dir.display()
                );
            }
            let shown = svids
                .iter()
                .map(|s| describe_wit_svid(s, secrets.show_private_key))
                .collect::<Result<Vec<_>>>()?;
            println!("{}", serde_json::to_string_pretty(&shown)?);
            Ok(ExitCode::SUCCESS)
        }
        FetchCommand::SdCwt {
            spiffe_id: wanted,
            secrets,
            endpoint,
        } => {
            let wanted = spiffe_id(wanted.as_deref())?;
            let fetched = endpoint.connect().await?.fetch_sd_cwt(wanted.as_ref()).await?;
            let token = lanyard_core::hex::encode(&fetched.token);
            if let Some(dir) = &secrets.out {
                secrets.write(
                    dir,
                    &[
                        ("sd_cwt_key.jwk", fetched.key_jwk.clone()),
                        ("sd_cwt.hex", token.clone()),
                    ],
                )?;
                eprintln!(
                    "wrote the SD-CWT of {} to {} (sd_cwt.hex, sd_cwt_key.jwk; mode 0600)",
                    fetched.spiffe_id,
                    dir.display()
                );
            }
            let key = fetched.key()?;
            let mut shown = json!({
                "spiffe_id": fetched.spiffe_id.to_string(),
                "sd_cwt": token,
                "exp": fetched.expires_at.as_secs(),
                "expires": rfc3339(fetched.expires_at),
                "public_key": key.to_public(),
            });
            if secrets.show_private_key {
                shown["key"] = serde_json::to_value(&key)?;
            }
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

/// A WIT-SVID as `fetch wit` prints it: identity, WIT, expiry and the public key the WIT
/// binds; the private JWK only when `private` is set.
fn describe_wit_svid(svid: &WitSvidEntry, private: bool) -> Result<serde_json::Value> {
    let key = svid.key()?;
    let mut shown = json!({
        "spiffe_id": svid.spiffe_id.to_string(),
        "wit": svid.token,
        "exp": svid.expires_at().map(|t| t.as_secs()),
        "expires": svid.expires_at().map(rfc3339),
        "public_key": key.to_public(),
        "hint": svid.hint,
    });
    if private {
        shown["key"] = serde_json::to_value(&key)?;
    }
    Ok(shown)
}
