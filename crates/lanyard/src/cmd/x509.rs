//! `lanyard x509`: a SPIFFE X.509 CA, X.509-SVID issuance and chain verification
//! (spiffe/spiffe `standards/X509-SVID.md`), on `lanyard-x509`.
//!
//! - `ca` writes `PREFIX.pem` (the CA certificate, followed by any upstream
//!   intermediates) and `PREFIX.key.pem` (PKCS#8, mode 0600): a self-signed root, or an
//!   intermediate signed by `--upstream-cert`/`--upstream-key`.
//! - `issue` writes `PREFIX.pem` (the SVID chain, leaf first, no root) and, when it
//!   generated the key, `PREFIX.key.pem` (0600). The subject key is `--key` (a private key
//!   or a `PUBLIC KEY` PEM), `--csr` (PKCS#10, which must request exactly `--spiffe-id`),
//!   or a new P-256 key.
//! - `bundle` prints a SPIFFE bundle whose `x509-svid` entries are the given CA
//!   certificates (for `verify --bundle` and for distribution).
//! - `verify` checks a chain against the bundle of one trust domain and prints the SPIFFE
//!   ID, or the reason and exits 1.
//!
//! No command overwrites an existing file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use lanyard_core::{SpiffeBundle, SpiffeId, TrustDomain, UnixTime};
use lanyard_crypto::KeyPair;
use lanyard_x509::{
    SubjectKey, Usage, VerifyOptions, X509Authority, X509Bundle, X509BundleSet, verify_svid_chain, x509_authority_jwk,
};
use serde_json::json;

use crate::input;
use crate::output::{relative, rfc3339};

#[derive(Subcommand, Debug)]
pub(crate) enum X509Command {
    /// Create a CA: a self-signed root, or an intermediate under an upstream CA.
    Ca {
        /// The trust domain (the CA's URI SAN is `spiffe://<TD>`).
        #[arg(long)]
        trust_domain: String,
        /// Write PREFIX.pem (certificate) and PREFIX.key.pem (private key, mode 0600).
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
        /// Lifetime in seconds (an intermediate's is capped at its upstream's).
        #[arg(long, default_value_t = 365 * 86_400)]
        ttl: u64,
        /// Use this private key (PKCS#8 PEM or JWK) instead of generating a P-256 key.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The upstream CA certificate (PEM) that signs this CA as an intermediate.
        #[arg(long, requires = "upstream_key")]
        upstream_cert: Option<PathBuf>,
        /// The upstream CA's private key (PKCS#8 PEM).
        #[arg(long, requires = "upstream_cert")]
        upstream_key: Option<PathBuf>,
        /// Issue as of this Unix time instead of now (for tests).
        #[arg(long)]
        now: Option<u64>,
    },
    /// Issue an X.509-SVID.
    Issue {
        /// The issuing CA's certificate (PEM; may be followed by its upstream intermediates).
        #[arg(long)]
        ca_cert: PathBuf,
        /// The issuing CA's private key (PKCS#8 PEM).
        #[arg(long)]
        ca_key: PathBuf,
        /// The SPIFFE ID to certify (must be in the CA's trust domain and have a path).
        #[arg(long)]
        spiffe_id: String,
        /// The workload's key: a private key (PKCS#8 PEM or JWK; only its public part is
        /// used) or a PUBLIC KEY PEM. Without --key or --csr, a P-256 key is generated.
        #[arg(long, conflicts_with = "csr")]
        key: Option<PathBuf>,
        /// A PKCS#10 CSR (PEM or DER) whose only URI SAN is --spiffe-id; its other DNS SANs
        /// must be among --dns.
        #[arg(long)]
        csr: Option<PathBuf>,
        /// A DNS SAN to add; repeatable.
        #[arg(long = "dns", value_name = "NAME")]
        dns_names: Vec<String>,
        /// Lifetime in seconds (capped at the CA's notAfter).
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Write PREFIX.pem (chain) and, for a generated key, PREFIX.key.pem (mode 0600).
        #[arg(long, value_name = "PREFIX")]
        out: PathBuf,
        /// Issue as of this Unix time instead of now (for tests).
        #[arg(long)]
        now: Option<u64>,
    },
    /// Print a SPIFFE bundle (JSON) whose x509-svid entries are these CA certificates.
    Bundle {
        /// CA certificate files (PEM; every certificate in them becomes an entry).
        #[arg(required = true)]
        certs: Vec<PathBuf>,
        /// The trust domain the bundle is for.
        #[arg(long)]
        trust_domain: String,
        /// spiffe_sequence.
        #[arg(long, default_value_t = 1)]
        sequence: u64,
        /// spiffe_refresh_hint in seconds.
        #[arg(long, default_value_t = 300)]
        refresh_hint: u64,
    },
    /// Verify an X.509-SVID chain (PEM, leaf first) against a trust domain's bundle.
    Verify {
        /// The chain file (PEM certificates, leaf first).
        chain: PathBuf,
        /// The trust domain whose authorities are given.
        #[arg(long)]
        trust_domain: String,
        /// The trust domain's root certificates (PEM).
        #[arg(
            long,
            value_name = "ROOTS.pem",
            required_unless_present = "bundle",
            conflicts_with = "bundle"
        )]
        bundle_pem: Option<PathBuf>,
        /// The trust domain's SPIFFE bundle (JSON; its x509-svid entries are used).
        #[arg(long, value_name = "BUNDLE.json")]
        bundle: Option<PathBuf>,
        /// The extended key usage to require.
        #[arg(long, value_enum, default_value_t = UsageArg::Any)]
        usage: UsageArg,
        /// Also require the leaf to be valid for this DNS name.
        #[arg(long, value_name = "NAME")]
        dns: Option<String>,
        /// Verify as of this Unix time instead of now.
        #[arg(long)]
        now: Option<u64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum UsageArg {
    /// Any extended key usage (go-spiffe's default).
    Any,
    /// id-kp-clientAuth (the SVID of a TLS client).
    Client,
    /// id-kp-serverAuth (the SVID of a TLS server).
    Server,
}

pub(crate) fn run(cmd: X509Command) -> Result<ExitCode> {
    match cmd {
        X509Command::Ca {
            trust_domain,
            out,
            ttl,
            key,
            upstream_cert,
            upstream_key,
            now,
        } => ca(
            &trust_domain,
            &out,
            ttl,
            key.as_deref(),
            upstream_cert.zip(upstream_key),
            input::now(now),
        ),
        X509Command::Issue {
            ca_cert,
            ca_key,
            spiffe_id,
            key,
            csr,
            dns_names,
            ttl,
            out,
            now,
        } => issue(IssueArgs {
            ca_cert: &ca_cert,
            ca_key: &ca_key,
            spiffe_id: &spiffe_id,
            key: key.as_deref(),
            csr: csr.as_deref(),
            dns_names: &dns_names,
            ttl,
            out: &out,
            now: input::now(now),
        }),
        X509Command::Bundle {
            certs,
            trust_domain,
            sequence,
            refresh_hint,
        } => bundle(&certs, &trust_domain, sequence, refresh_hint),
        X509Command::Verify {
            chain,
            trust_domain,
            bundle_pem,
            bundle,
            usage,
            dns,
            now,
            json,
        } => verify(
            &chain,
            &trust_domain,
            bundle_pem.as_deref(),
            bundle.as_deref(),
            usage,
            dns,
            input::now(now),
            json,
        ),
    }
}

/// `PREFIX` + `suffix`.
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Fails before writing anything if any output exists already.
fn check_free(paths: &[&Path]) -> Result<()> {
    for p in paths {
        if p.exists() {
            bail!("{} already exists; refusing to overwrite it", p.display());
        }
    }
    Ok(())
}

fn trust_domain(arg: &str) -> Result<TrustDomain> {
    TrustDomain::parse(arg).with_context(|| format!("--trust-domain {arg:?} is not a valid trust domain"))
}

fn load_ca(cert: &Path, key: &Path) -> Result<X509Authority> {
    X509Authority::from_pem(lanyard_crypto::provider(), &input::read(cert)?, &input::read(key)?)
        .with_context(|| format!("loading the CA from {} and {}", cert.display(), key.display()))
}

fn ca(
    td_arg: &str,
    out: &Path,
    ttl: u64,
    key: Option<&Path>,
    upstream: Option<(PathBuf, PathBuf)>,
    now: UnixTime,
) -> Result<ExitCode> {
    let td = trust_domain(td_arg)?;
    let (cert_path, key_path) = (with_suffix(out, ".pem"), with_suffix(out, ".key.pem"));
    check_free(&[&cert_path, &key_path])?;
    let key = key.map(|k| input::signing_key(k, None)).transpose()?;
    let authority = match upstream {
        None => X509Authority::new_root(lanyard_crypto::provider(), &td, key.as_ref(), ttl, now)
            .context("creating the root CA")?,
        Some((cert, upstream_key)) => {
            let upstream = load_ca(&cert, &upstream_key)?;
            X509Authority::new_intermediate(lanyard_crypto::provider(), &td, &upstream, key.as_ref(), ttl, now)
                .context("creating the intermediate CA")?
        }
    };
    input::write_file(&key_path, &authority.key_pem(), true)?;
    input::write_file(&cert_path, &authority.chain_pem(), false)?;
    let kind = if authority.is_self_signed() {
        "root"
    } else {
        "intermediate"
    };
    println!(
        "{kind} CA for {} valid until {} ({})\n  certificate  {}\n  key          {}",
        td.id_string(),
        rfc3339(authority.not_after()),
        relative(authority.not_after(), now),
        cert_path.display(),
        key_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

struct IssueArgs<'a> {
    ca_cert: &'a Path,
    ca_key: &'a Path,
    spiffe_id: &'a str,
    key: Option<&'a Path>,
    csr: Option<&'a Path>,
    dns_names: &'a [String],
    ttl: u64,
    out: &'a Path,
    now: UnixTime,
}

/// The subject key named by `--key`: a PUBLIC KEY PEM, or a private key file.
enum GivenKey {
    Public(Vec<u8>),
    Private(KeyPair),
}

fn given_key(path: &Path) -> Result<GivenKey> {
    match input::public_key_pem(&input::read(path)?) {
        Some(spki) => Ok(GivenKey::Public(spki)),
        None => Ok(GivenKey::Private(input::signing_key(path, None)?)),
    }
}

/// A CSR file as DER (PEM `CERTIFICATE REQUEST` or raw DER).
fn csr_der(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(bytes);
    }
    let block = pem::parse(&bytes).with_context(|| format!("{} is not a PEM CSR", path.display()))?;
    if !matches!(block.tag(), "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST") {
        bail!(
            "{} holds a {} block, not a CERTIFICATE REQUEST",
            path.display(),
            block.tag()
        );
    }
    Ok(block.into_contents())
}

fn issue(a: IssueArgs<'_>) -> Result<ExitCode> {
    let id = SpiffeId::parse(a.spiffe_id)
        .with_context(|| format!("--spiffe-id {:?} is not a valid SPIFFE ID", a.spiffe_id))?;
    let (chain_path, key_path) = (with_suffix(a.out, ".pem"), with_suffix(a.out, ".key.pem"));
    let generates = a.key.is_none() && a.csr.is_none();
    if generates {
        check_free(&[&chain_path, &key_path])?;
    } else {
        check_free(&[&chain_path])?;
    }
    let ca = load_ca(a.ca_cert, a.ca_key)?;
    let svid = match (a.key, a.csr) {
        (_, Some(csr)) => ca.issue_svid_from_csr(&csr_der(csr)?, &id, a.ttl, a.dns_names, a.now),
        (Some(key), None) => match given_key(key)? {
            GivenKey::Public(spki) => ca.issue_svid(&id, SubjectKey::PublicKey(&spki), a.ttl, a.dns_names, a.now),
            GivenKey::Private(pair) => ca.issue_svid(&id, SubjectKey::KeyPair(&pair), a.ttl, a.dns_names, a.now),
        },
        (None, None) => ca.issue_svid(&id, SubjectKey::Generate, a.ttl, a.dns_names, a.now),
    }
    .with_context(|| format!("issuing an X.509-SVID for {id}"))?;
    let not_after = svid.not_after()?;
    if generates {
        let key_pem = svid.key_pem().context("the generated SVID has no key")?;
        input::write_file(&key_path, &key_pem, true)?;
    }
    input::write_file(&chain_path, &svid.chain_pem(), false)?;
    println!(
        "X.509-SVID for {id} valid until {} ({})\n  chain        {} ({} certificate{})",
        rfc3339(not_after),
        relative(not_after, a.now),
        chain_path.display(),
        svid.chain.len(),
        if svid.chain.len() == 1 { "" } else { "s" }
    );
    if generates {
        println!("  key          {}", key_path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn bundle(certs: &[PathBuf], td_arg: &str, sequence: u64, refresh_hint: u64) -> Result<ExitCode> {
    let td = trust_domain(td_arg)?;
    let mut doc = SpiffeBundle::new(td.clone());
    doc.sequence = Some(sequence);
    doc.refresh_hint = Some(refresh_hint);
    for path in certs {
        let roots = X509Bundle::from_pem(td.clone(), &input::read(path)?)
            .with_context(|| format!("reading the certificates in {}", path.display()))?;
        for der in roots.authorities() {
            doc.x509_authorities
                .push(x509_authority_jwk(der).with_context(|| format!("a certificate in {}", path.display()))?);
        }
    }
    let json = doc.to_json();
    // What we print must be a bundle we would accept.
    let parsed =
        SpiffeBundle::parse(td, json.as_bytes()).context("the bundle built from these certificates is not valid")?;
    X509Bundle::from_spiffe_bundle(&parsed).context("the bundle built from these certificates is not valid")?;
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn verify(
    chain_path: &Path,
    td_arg: &str,
    bundle_pem: Option<&Path>,
    bundle_json: Option<&Path>,
    usage: UsageArg,
    dns: Option<String>,
    now: UnixTime,
    json: bool,
) -> Result<ExitCode> {
    let td = trust_domain(td_arg)?;
    let bundle = match (bundle_pem, bundle_json) {
        (Some(p), _) => X509Bundle::from_pem(td, &input::read(p)?)
            .with_context(|| format!("reading the roots in {}", p.display()))?,
        (None, Some(p)) => {
            let doc = SpiffeBundle::parse(td, input::read(p)?.as_bytes())
                .with_context(|| format!("reading the bundle in {}", p.display()))?;
            X509Bundle::from_spiffe_bundle(&doc).with_context(|| format!("the X.509 entries of {}", p.display()))?
        }
        (None, None) => bail!("give the trust domain's roots with --bundle-pem FILE or --bundle FILE"),
    };
    let bundles = X509BundleSet::new().with(bundle);
    let chain_text = input::read(chain_path)?;
    let blocks = pem::parse_many(&chain_text).with_context(|| format!("{} is not PEM", chain_path.display()))?;
    let mut chain = Vec::with_capacity(blocks.len());
    for b in blocks {
        if b.tag() != "CERTIFICATE" {
            bail!(
                "{} holds a {} block; expected CERTIFICATE blocks",
                chain_path.display(),
                b.tag()
            );
        }
        chain.push(b.into_contents());
    }
    let options = VerifyOptions {
        usage: match usage {
            UsageArg::Any => Usage::Any,
            UsageArg::Client => Usage::ClientAuth,
            UsageArg::Server => Usage::ServerAuth,
        },
        expected_name: dns,
    };
    match verify_svid_chain(&chain, &bundles, now, &options) {
        Ok(v) => {
            let expires = format!("{} ({})", rfc3339(v.not_after), relative(v.not_after, now));
            if json {
                println!(
                    "{}",
                    json!({
                        "valid": true,
                        "spiffe_id": v.spiffe_id.as_str(),
                        "trust_domain": v.trust_domain.name(),
                        "not_before": v.not_before.as_secs(),
                        "not_after": v.not_after.as_secs(),
                        "expires": expires,
                        "serial": v.serial,
                        "dns_names": v.dns_names,
                        "chain_length": chain.len(),
                    })
                );
            } else {
                println!("valid X.509-SVID");
                println!("  SPIFFE ID    {}", v.spiffe_id);
                println!("  trust domain {}", v.trust_domain.name());
                println!("  expires      {expires}");
                println!("  serial       {}", v.serial);
                if !v.dns_names.is_empty() {
                    println!("  DNS names    {}", v.dns_names.join(", "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    json!({"valid": false, "error": {"kind": e.kind(), "message": e.to_string()}})
                );
            } else {
                eprintln!("invalid X.509-SVID: {e}\n  reason: {}", e.kind());
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
