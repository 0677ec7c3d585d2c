//! Commands that talk to a running server's admin API: `lanyard entry ...`,
//! `lanyard agent list|ban`, `lanyard token join`, `lanyard wit mint`, `lanyard jwt-svid mint`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::admin_client;
use crate::input;

/// Where the admin socket is.
#[derive(Args, Debug, Clone)]
pub(crate) struct SocketArg {
    /// The server's admin socket (default: $LANYARD_ADMIN_SOCKET or lanyard-data/admin.sock).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
}

impl SocketArg {
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        admin_client::call(&admin_client::socket_path(self.socket.clone()), method, path, body)
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum EntryCommand {
    /// Create an entry, or many from a JSON file (an array of entries; all or none).
    Create(EntryFields),
    /// List entries.
    List {
        /// Only entries of this parent (agent).
        #[arg(long)]
        parent_id: Option<String>,
        /// Only entries with this identity.
        #[arg(long)]
        spiffe_id: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Show one entry.
    Show {
        /// The entry ID.
        id: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Replace an entry's fields.
    Update {
        /// The entry ID.
        id: String,
        /// Only update if the entry is still at this revision.
        #[arg(long)]
        revision: Option<u64>,
        #[command(flatten)]
        fields: EntryFields,
    },
    /// Delete an entry.
    Delete {
        /// The entry ID.
        id: String,
        #[command(flatten)]
        socket: SocketArg,
    },
}

#[derive(Args, Debug)]
pub(crate) struct EntryFields {
    /// The workload identity (SPIFFE ID or WIMSE identifier).
    #[arg(long, required_unless_present = "file")]
    spiffe_id: Option<String>,
    /// The agent's SPIFFE ID.
    #[arg(long, required_unless_present = "file")]
    parent_id: Option<String>,
    /// A selector `type:value` (e.g. unix:uid:1000); repeatable, at least one.
    #[arg(long = "selector")]
    selectors: Vec<String>,
    /// X.509-SVID TTL in seconds (default: the server's).
    #[arg(long, default_value_t = 0)]
    x509_svid_ttl: u64,
    /// JWT-SVID TTL in seconds.
    #[arg(long, default_value_t = 0)]
    jwt_svid_ttl: u64,
    /// WIT TTL in seconds.
    #[arg(long, default_value_t = 0)]
    wit_ttl: u64,
    /// A DNS name for X.509-SVIDs; repeatable.
    #[arg(long = "dns")]
    dns_names: Vec<String>,
    /// A trust domain to federate with; repeatable.
    #[arg(long = "federates-with")]
    federates_with: Vec<String>,
    /// May use the admin API.
    #[arg(long)]
    admin: bool,
    /// SD-CWT claims: a JSON object, or `@path` of a file holding one.
    #[arg(long)]
    claims: Option<String>,
    /// A claim always disclosed in the SD-CWT (never redacted); repeatable.
    #[arg(long = "disclose")]
    always_disclosed: Vec<String>,
    /// A claim the holder may withhold (redacted); repeatable. Unlisted claims are too.
    #[arg(long = "selective")]
    selectively_disclosable: Vec<String>,
    /// Decoy digests per SD-CWT, so verifiers cannot count withheld claims (server default: 3).
    #[arg(long)]
    decoys: Option<u8>,
    /// Create the entries in this JSON file (an array) instead.
    #[arg(long, conflicts_with_all = ["spiffe_id", "parent_id"])]
    file: Option<PathBuf>,
    #[command(flatten)]
    socket: SocketArg,
}

impl EntryFields {
    /// The entry as the admin API takes it; selectors are parsed by the server's own rule.
    fn spec(&self) -> Result<Value> {
        let selectors = lanyard_server::entries::parse_selectors(&self.selectors)?;
        let claims: Value = match self.claims.as_deref() {
            None => json!({}),
            Some(text) => {
                let text = match text.strip_prefix('@') {
                    Some(path) => input::read(std::path::Path::new(path))?,
                    None => text.to_owned(),
                };
                serde_json::from_str(&text).context("--claims is not a JSON object")?
            }
        };
        Ok(json!({
            "claims": {
                "claims": claims,
                "always_disclosed": self.always_disclosed,
                "selectively_disclosable": self.selectively_disclosable,
                "decoys": self.decoys,
            },
            "spiffe_id": self.spiffe_id, "parent_id": self.parent_id, "selectors": selectors,
            "x509_svid_ttl": self.x509_svid_ttl, "jwt_svid_ttl": self.jwt_svid_ttl, "wit_ttl": self.wit_ttl,
            "dns_names": self.dns_names, "federates_with": self.federates_with, "admin": self.admin,
        }))
    }
}

fn print(v: &Value) -> Result<ExitCode> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_entry(cmd: EntryCommand) -> Result<ExitCode> {
    match cmd {
        EntryCommand::Create(f) => match &f.file {
            Some(path) => {
                let text = input::read(path)?;
                let entries: Value =
                    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
                print(&f.socket.call("POST", "/v1/entries/batch", Some(&entries))?)
            }
            None => print(&f.socket.call("POST", "/v1/entries", Some(&f.spec()?))?),
        },
        EntryCommand::List {
            parent_id,
            spiffe_id,
            socket,
        } => {
            let mut query = Vec::new();
            if let Some(p) = parent_id {
                query.push(format!("parent_id={}", encode(&p)));
            }
            if let Some(s) = spiffe_id {
                query.push(format!("spiffe_id={}", encode(&s)));
            }
            let path = if query.is_empty() {
                "/v1/entries".to_owned()
            } else {
                format!("/v1/entries?{}", query.join("&"))
            };
            print(&socket.call("GET", &path, None)?)
        }
        EntryCommand::Show { id, socket } => {
            print(&socket.call("GET", &format!("/v1/entries/{}", encode(&id)), None)?)
        }
        EntryCommand::Update { id, revision, fields } => {
            let mut spec = fields.spec()?;
            spec["revision"] = json!(revision);
            print(
                &fields
                    .socket
                    .call("PUT", &format!("/v1/entries/{}", encode(&id)), Some(&spec))?,
            )
        }
        EntryCommand::Delete { id, socket } => {
            socket.call("DELETE", &format!("/v1/entries/{}", encode(&id)), None)?;
            println!("deleted {id}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Percent-encodes a query or path value.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `lanyard agent list`.
pub(crate) fn list_agents(socket: SocketArg) -> Result<ExitCode> {
    print(&socket.call("GET", "/v1/agents", None)?)
}

/// `lanyard agent ban`.
pub(crate) fn ban_agent(id: &str, socket: SocketArg) -> Result<ExitCode> {
    socket.call("POST", "/v1/agents/ban", Some(&json!({"id": id})))?;
    println!("banned {id}");
    Ok(ExitCode::SUCCESS)
}

/// `lanyard token join`.
#[derive(Args, Debug)]
pub(crate) struct JoinTokenArgs {
    /// Lifetime in seconds (default: the server's join_token_ttl).
    #[arg(long)]
    ttl: Option<u64>,
    #[command(flatten)]
    socket: SocketArg,
}

pub(crate) fn join_token(args: JoinTokenArgs) -> Result<ExitCode> {
    let v = args
        .socket
        .call("POST", "/v1/join-tokens", Some(&json!({"ttl": args.ttl})))?;
    println!("{}", v["token"].as_str().unwrap_or_default());
    eprintln!("one-time join token; expires at {}", v["expires_at"]);
    Ok(ExitCode::SUCCESS)
}

/// `lanyard wit mint`.
#[derive(Args, Debug)]
pub(crate) struct WitMintArgs {
    /// The workload identifier (in the server's trust domain).
    #[arg(long)]
    spiffe_id: String,
    /// The workload's public key (a JWK with alg, or its key file).
    #[arg(long)]
    cnf: PathBuf,
    /// Lifetime in seconds (default: the server's default_wit_ttl).
    #[arg(long)]
    ttl: Option<u64>,
    #[command(flatten)]
    socket: SocketArg,
}

pub(crate) fn wit_mint(args: WitMintArgs) -> Result<ExitCode> {
    let keys = input::public_keys(&args.cnf)?;
    let cnf = keys.first().context("no key in --cnf")?;
    let body = json!({"spiffe_id": args.spiffe_id, "cnf": cnf, "ttl": args.ttl});
    let v = args.socket.call("POST", "/v1/wits", Some(&body))?;
    println!("{}", v["wit"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// `lanyard jwt-svid mint`.
#[derive(Args, Debug)]
pub(crate) struct JwtSvidMintArgs {
    /// The SPIFFE ID (in the server's trust domain).
    #[arg(long)]
    spiffe_id: String,
    /// The audience.
    #[arg(long)]
    aud: String,
    /// Lifetime in seconds.
    #[arg(long)]
    ttl: Option<u64>,
    #[command(flatten)]
    socket: SocketArg,
}

pub(crate) fn jwt_svid_mint(args: JwtSvidMintArgs) -> Result<ExitCode> {
    let body = json!({"spiffe_id": args.spiffe_id, "audience": args.aud, "ttl": args.ttl});
    let v = args.socket.call("POST", "/v1/jwt-svids", Some(&body))?;
    println!("{}", v["token"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
