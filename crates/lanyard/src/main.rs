//! `lanyard`: keys, workload identity tokens (WIT), proofs (WPT), JWT-SVIDs and SPIFFE
//! bundles from the command line.

mod admin_client;
mod cmd;
mod input;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Workload identity from the command line: make keys, mint and check WITs, WPTs and
/// JWT-SVIDs, and build trust bundles.
#[derive(Parser, Debug)]
#[command(name = "lanyard", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the identity server (SQLite in ./lanyard-data by default).
    Server(cmd::server::ServerArgs),
    /// Manage registration entries on a running server.
    #[command(subcommand)]
    Entry(cmd::admin::EntryCommand),
    /// Manage the OAuth clients of a running server.
    #[command(subcommand)]
    Client(cmd::oauth::ClientCommand),
    /// Act as an OAuth client of a Lanyard (or any RFC 8414) authorization server.
    #[command(subcommand)]
    Oauth(cmd::oauth::OAuthCommand),
    /// Run the node agent (SPIFFE Workload API), check its health, or list/ban agents.
    Agent(cmd::agent::AgentArgs),
    /// Use the SPIFFE Workload API as a workload: fetch credentials, or keep them in files.
    #[command(subcommand)]
    Workload(cmd::workload::WorkloadCommand),
    /// Generate and convert keys.
    #[command(subcommand)]
    Key(cmd::key::KeyCommand),
    /// Issue Workload Identity Tokens (draft-ietf-wimse-workload-creds).
    #[command(subcommand)]
    Wit(cmd::token::WitCommand),
    /// Create Workload Proof Tokens (draft-ietf-wimse-wpt).
    #[command(subcommand)]
    Wpt(cmd::token::WptCommand),
    /// Issue JWT-SVIDs (SPIFFE JWT-SVID.md).
    #[command(subcommand, name = "jwt-svid")]
    JwtSvid(cmd::token::JwtSvidCommand),
    /// Verify or inspect any of the tokens above.
    #[command(subcommand)]
    Token(cmd::verify::TokenCommand),
    /// Build a SPIFFE trust bundle from public keys and print it.
    Bundle(cmd::bundle::BundleArgs),
    /// X.509-SVIDs: make a CA, issue SVIDs, verify chains.
    #[command(subcommand)]
    X509(cmd::x509::X509Command),
    /// Sign requests and check captured requests/responses (HTTP Message Signatures).
    #[command(subcommand)]
    Httpsig(cmd::httpsig::HttpsigCommand),
    /// Selectively disclosable CWTs (SPICE SD-CWT): issue, present, verify, inspect.
    #[command(subcommand)]
    Sdcwt(cmd::sdcwt::SdcwtCommand),
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && cmd::verify::wants_json(&std::env::args_os().collect::<Vec<_>>()) => {
            return cmd::verify::report_usage_error(&e.to_string());
        }
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Server(a) => cmd::server::run(a),
        Command::Entry(c) => cmd::admin::run_entry(c),
        Command::Client(c) => cmd::oauth::run_client(c),
        Command::Oauth(c) => cmd::oauth::run_oauth(c),
        Command::Agent(a) => cmd::agent::run(a),
        Command::Workload(c) => cmd::workload::run(c),
        Command::Key(c) => cmd::key::run(c),
        Command::Wit(c) => cmd::token::run_wit(c),
        Command::Wpt(c) => cmd::token::run_wpt(c),
        Command::JwtSvid(c) => cmd::token::run_jwt_svid(c),
        Command::Token(c) => cmd::verify::run(c),
        Command::Bundle(a) => cmd::bundle::run(a),
        Command::Httpsig(c) => cmd::httpsig::run(c),
        Command::X509(c) => cmd::x509::run(c),
        Command::Sdcwt(c) => cmd::sdcwt::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `lanyard ... | head` closes stdout early; Rust then panics inside `println!`. Treat that
/// as the normal end of output (exit quietly) instead of printing a panic.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
