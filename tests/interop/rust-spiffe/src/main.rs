//! Drives a running SPIFFE Workload API (`SPIFFE_ENDPOINT_SOCKET`) with the `spiffe` crate
//! and prints one line of JSON: `{"library", "version", "checks": {name: {"ok", ...}}}`.
//!
//! ```text
//! rust-spiffe-driver --spiffe-id <expected ID> --audience <aud> --forbidden-id <ID>
//!                    [--rotation-timeout <seconds>]
//! ```
//!
//! Every check runs, even after one fails; a failed check has `"ok": false` and an
//! `"error"`. The exit status is 0 when the report was printed (whatever it says) and 2
//! on bad usage. Chains are verified with `x509-parser` (signatures through aws-lc-rs),
//! key pairs compared with aws-lc-rs, JWT-SVIDs verified with the crate's own verifier
//! (`JwtSvid::parse_and_validate`, jsonwebtoken on aws-lc-rs).

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use spiffe::{
    JwtBundleSet, JwtSvid, SpiffeId, TrustDomain, WorkloadApiClient, WorkloadApiError, X509BundleSet, X509Source,
    X509Svid,
};
use x509_parser::prelude::{FromDer as _, X509Certificate};

struct Args {
    spiffe_id: String,
    audience: String,
    forbidden_id: String,
    rotation_timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut flags = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        flags.insert(flag, value);
    }
    let mut take = |name: &str| flags.remove(name).ok_or_else(|| format!("{name} is required"));
    let args = Args {
        spiffe_id: take("--spiffe-id")?,
        audience: take("--audience")?,
        forbidden_id: take("--forbidden-id")?,
        rotation_timeout: Duration::from_secs(
            flags
                .remove("--rotation-timeout")
                .map_or(Ok(40), |s| s.parse())
                .map_err(|e| format!("--rotation-timeout: {e}"))?,
        ),
    };
    if let Some(flag) = flags.keys().next() {
        return Err(format!("unknown flag {flag}"));
    }
    Ok(args)
}

type Check = Result<Value, String>;

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let mut checks = serde_json::Map::new();
    let mut record = |name: &str, check: Check| {
        let value = match check {
            Ok(Value::Object(mut details)) => {
                details.insert("ok".into(), true.into());
                Value::Object(details)
            }
            Ok(other) => json!({"ok": true, "value": other}),
            Err(error) => json!({"ok": false, "error": error}),
        };
        checks.insert(name.to_owned(), value);
    };

    let client = match WorkloadApiClient::connect_env().await {
        Ok(c) => Some(c),
        Err(e) => {
            record("connect", Err(e.to_string()));
            None
        }
    };
    if let Some(client) = &client {
        record("x509_svid", x509_svid(client, &args).await);
        record("x509_bundles", x509_bundles(client, &args).await);
        record("jwt_bundles", jwt_bundles(client, &args).await);
        record("jwt_svid", jwt_svid(client, &args).await);
        record("jwt_svid_two_audiences", jwt_svid_two_audiences(client, &args).await);
        record("jwt_validate_api", jwt_validate_api(client, &args).await);
        record("permission_denied", permission_denied(client, &args).await);
    }
    record("rotation", rotation(&args).await);

    let report = json!({
        "library": "spiffe (crates.io)",
        "version": spiffe_version(),
        "checks": checks,
    });
    println!("{report}");
}

/// The resolved version of the `spiffe` crate, from the committed Cargo.lock.
fn spiffe_version() -> &'static str {
    let lock = include_str!("../Cargo.lock");
    lock.split("[[package]]")
        .find(|p| p.contains("\nname = \"spiffe\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map_or("unknown", |v| v.trim_end_matches('"'))
}

fn trust_domain_of(id: &str) -> Result<TrustDomain, String> {
    let id = SpiffeId::from_str(id).map_err(|e| format!("bad SPIFFE ID {id}: {e}"))?;
    TrustDomain::new(id.trust_domain_name()).map_err(|e| e.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| format!("certificate does not parse: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after a certificate".into());
    }
    Ok(cert)
}

fn serial_of(svid: &X509Svid) -> Result<String, String> {
    Ok(hex(parse_cert(svid.leaf().as_bytes())?.raw_serial()))
}

/// Verifies `svid`'s chain up to an authority in `bundles` (signatures and validity
/// periods), and that its private key belongs to the leaf.
fn check_svid(svid: &X509Svid, bundles: &X509BundleSet, expected_id: &str) -> Check {
    if svid.spiffe_id().to_string() != expected_id {
        return Err(format!("SPIFFE ID {} != {expected_id}", svid.spiffe_id()));
    }
    let chain: Vec<X509Certificate<'_>> = svid
        .cert_chain()
        .iter()
        .map(|c| parse_cert(c.as_bytes()))
        .collect::<Result<_, _>>()?;
    let td = svid.spiffe_id().trust_domain_name();
    let bundle = bundles
        .get(&TrustDomain::new(td).map_err(|e| e.to_string())?)
        .ok_or_else(|| format!("no X.509 bundle for {td}"))?;
    let roots: Vec<X509Certificate<'_>> = bundle
        .authorities()
        .iter()
        .map(|c| parse_cert(c.as_bytes()))
        .collect::<Result<_, _>>()?;
    for (i, cert) in chain.iter().enumerate() {
        if !cert.validity().is_valid() {
            return Err(format!("chain[{i}] is outside its validity period"));
        }
        let issuer = match chain.get(i + 1) {
            Some(next) => next,
            None => roots
                .iter()
                .find(|r| r.subject() == cert.issuer())
                .ok_or_else(|| format!("no bundle authority issued chain[{i}] ({})", cert.issuer()))?,
        };
        cert.verify_signature(Some(issuer.public_key()))
            .map_err(|e| format!("chain[{i}] signature does not verify: {e}"))?;
    }
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, svid.private_key().as_bytes())
        .map_err(|e| format!("private key is not a PKCS#8 P-256 key: {e}"))?;
    let leaf = &chain[0];
    if key.public_key().as_ref() != leaf.public_key().subject_public_key.data.as_ref() {
        return Err("the private key does not match the leaf certificate".into());
    }
    Ok(json!({
        "spiffe_id": svid.spiffe_id().to_string(),
        "serial": hex(leaf.raw_serial()),
        "chain_length": chain.len(),
        "chain_verified": true,
        "key_matches": true,
    }))
}

async fn x509_svid(client: &WorkloadApiClient, args: &Args) -> Check {
    let ctx = client.fetch_x509_context().await.map_err(|e| e.to_string())?;
    let svid = ctx.default_svid().ok_or("no default X.509-SVID")?;
    let mut details = check_svid(svid, ctx.bundle_set(), &args.spiffe_id)?;
    details["svids"] = ctx.svids().len().into();
    Ok(details)
}

async fn x509_bundles(client: &WorkloadApiClient, args: &Args) -> Check {
    let set = client.fetch_x509_bundles().await.map_err(|e| e.to_string())?;
    let td = trust_domain_of(&args.spiffe_id)?;
    let bundle = set.get(&td).ok_or_else(|| format!("no X.509 bundle for {td}"))?;
    if bundle.authorities().is_empty() {
        return Err("the X.509 bundle has no authorities".into());
    }
    Ok(json!({
        "trust_domains": set.iter().map(|(td, _)| td.to_string()).collect::<Vec<_>>(),
        "authorities": bundle.authorities().len(),
    }))
}

async fn jwt_bundles(client: &WorkloadApiClient, args: &Args) -> Check {
    let set = client.fetch_jwt_bundles().await.map_err(|e| e.to_string())?;
    let td = trust_domain_of(&args.spiffe_id)?;
    let bundle = set.get(&td).ok_or_else(|| format!("no JWT bundle for {td}"))?;
    let kids: Vec<String> = bundle.jwt_authorities().map(|a| a.key_id().to_owned()).collect();
    if kids.is_empty() {
        return Err("the JWT bundle has no authorities".into());
    }
    Ok(json!({
        "trust_domains": set.iter().map(|(td, _)| td.to_string()).collect::<Vec<_>>(),
        "key_ids": kids,
    }))
}

async fn fetch_and_verify(client: &WorkloadApiClient, args: &Args) -> Result<(JwtSvid, JwtBundleSet), String> {
    let svid = client
        .fetch_jwt_svid([args.audience.as_str()], None)
        .await
        .map_err(|e| format!("fetch_jwt_svid: {e}"))?;
    let bundles = client
        .fetch_jwt_bundles()
        .await
        .map_err(|e| format!("fetch_jwt_bundles: {e}"))?;
    Ok((svid, bundles))
}

async fn jwt_svid(client: &WorkloadApiClient, args: &Args) -> Check {
    let (fetched, bundles) = fetch_and_verify(client, args).await?;
    let validated = JwtSvid::parse_and_validate(fetched.token(), &bundles, &[args.audience.as_str()])
        .map_err(|e| format!("parse_and_validate: {e} ({e:?})"))?;
    if validated.spiffe_id().to_string() != args.spiffe_id {
        return Err(format!("sub {} != {}", validated.spiffe_id(), args.spiffe_id));
    }
    // The crate's verifier must also refuse the token for another audience.
    let wrong_audience = JwtSvid::parse_and_validate(fetched.token(), &bundles, &["spiffe://example.org/other"]);
    if wrong_audience.is_ok() {
        return Err("parse_and_validate accepted a token for another audience".into());
    }
    Ok(json!({
        "spiffe_id": validated.spiffe_id().to_string(),
        "audience": validated.audience(),
        "key_id": validated.key_id(),
        "validated_locally": true,
        "wrong_audience_rejected": true,
    }))
}

/// JWT-SVID.md §3.2: one token for two audiences, valid for each.
async fn jwt_svid_two_audiences(client: &WorkloadApiClient, args: &Args) -> Check {
    let audiences = [args.audience.as_str(), "second-audience"];
    let svid = client
        .fetch_jwt_svid(audiences, None)
        .await
        .map_err(|e| format!("fetch_jwt_svid: {e}"))?;
    let bundles = client
        .fetch_jwt_bundles()
        .await
        .map_err(|e| format!("fetch_jwt_bundles: {e}"))?;
    let mut audience = Vec::new();
    for aud in audiences {
        let validated = JwtSvid::parse_and_validate(svid.token(), &bundles, &[aud])
            .map_err(|e| format!("parse_and_validate for {aud}: {e} ({e:?})"))?;
        if validated.spiffe_id().to_string() != args.spiffe_id {
            return Err(format!("sub {} != {}", validated.spiffe_id(), args.spiffe_id));
        }
        audience = validated.audience().to_vec();
    }
    audience.sort();
    Ok(json!({ "spiffe_id": svid.spiffe_id().to_string(), "audience": audience }))
}

async fn jwt_validate_api(client: &WorkloadApiClient, args: &Args) -> Check {
    let (fetched, _) = fetch_and_verify(client, args).await?;
    let validated = client
        .validate_jwt_token(&args.audience, fetched.token())
        .await
        .map_err(|e| format!("validate_jwt_token: {e}"))?;
    if validated.spiffe_id().to_string() != args.spiffe_id {
        return Err(format!("sub {} != {}", validated.spiffe_id(), args.spiffe_id));
    }
    let refused = match client
        .validate_jwt_token("spiffe://example.org/other", fetched.token())
        .await
    {
        Ok(_) => return Err("ValidateJWTSVID accepted a token for another audience".into()),
        Err(e) => e.to_string(),
    };
    Ok(json!({
        "spiffe_id": validated.spiffe_id().to_string(),
        "validated_by_api": true,
        "wrong_audience_error": refused,
    }))
}

async fn permission_denied(client: &WorkloadApiClient, args: &Args) -> Check {
    let forbidden = SpiffeId::from_str(&args.forbidden_id).map_err(|e| e.to_string())?;
    match client.fetch_jwt_svid([args.audience.as_str()], Some(&forbidden)).await {
        Ok(svid) => Err(format!(
            "fetched a JWT-SVID for {} it is not entitled to",
            svid.spiffe_id()
        )),
        Err(WorkloadApiError::PermissionDenied(message)) => Ok(json!({
            "code": "PermissionDenied",
            "variant": "PermissionDenied",
            "message": message,
        })),
        Err(WorkloadApiError::NoIdentityIssued) => Ok(json!({
            "code": "PermissionDenied",
            "variant": "NoIdentityIssued",
        })),
        Err(other) => Err(format!("expected PermissionDenied, got {other} ({other:?})")),
    }
}

/// Builds an `X509Source` and waits (through its update notifications) until it holds an
/// X.509-SVID with a new serial number that still verifies.
async fn rotation(args: &Args) -> Check {
    let started = Instant::now();
    let source = X509Source::new().await.map_err(|e| format!("X509Source::new: {e}"))?;
    let result = async {
        let first = source.svid().map_err(|e| format!("X509Source::svid: {e}"))?;
        let first_serial = serial_of(&first)?;
        let mut updates = source.updated();
        let mut notifications = 0u32;
        loop {
            let left = args.rotation_timeout.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, updates.changed()).await {
                Err(_) => {
                    return Err(format!(
                        "no new X.509-SVID within {:?} ({notifications} update notifications)",
                        args.rotation_timeout
                    ));
                }
                Ok(Err(e)) => return Err(format!("X509Source updates: {e}")),
                Ok(Ok(_)) => notifications += 1,
            }
            let svid = source.svid().map_err(|e| format!("X509Source::svid: {e}"))?;
            let serial = serial_of(&svid)?;
            if serial != first_serial {
                let bundles = source.bundle_set().map_err(|e| e.to_string())?;
                let checked = check_svid(&svid, &bundles, &args.spiffe_id)?;
                return Ok(json!({
                    "old_serial": first_serial,
                    "new_serial": serial,
                    "new_svid_verified": checked["chain_verified"],
                    "notifications": notifications,
                    "seconds": started.elapsed().as_secs_f64(),
                }));
            }
        }
    }
    .await;
    source.shutdown().await;
    result
}
