//! Load generator for a running agent's Workload API (used by scripts/agent-bench.sh).
//!
//! ```text
//! workload_load jwt <socket> <audience> <clients> <seconds>
//!     FetchJWTSVID from <clients> concurrent connections for <seconds>; prints
//!     throughput and latency percentiles.
//! workload_load jwt-mint <socket> <clients> <seconds>
//!     As `jwt`, but every request names a new audience, so each one is minted by the
//!     server through the agent API (cache misses): server minting throughput end to end.
//! workload_load propagation <socket> <lanyard binary> <admin socket> <parent id> <selector> <rounds>
//!     With a FetchX509SVID stream open, runs `lanyard entry create` <rounds> times and
//!     measures until the stream carries the new identity.
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lanyard_api::workload as wl;
use lanyard_api::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use tonic::transport::Channel;

async fn connect(socket: PathBuf) -> SpiffeWorkloadApiClient<Channel> {
    let channel = lanyard_workload::connect_channel(&lanyard_workload::EndpointAddress::Unix(socket)).await;
    SpiffeWorkloadApiClient::new(channel.unwrap())
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("workload.spiffe.io", "true".parse().unwrap());
    request
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>, elapsed: Duration) {
    samples.sort();
    println!(
        "{what}: {} samples in {:.1} s = {:.0}/s; p50 {:?} p90 {:?} p99 {:?} max {:?}",
        samples.len(),
        elapsed.as_secs_f64(),
        samples.len() as f64 / elapsed.as_secs_f64(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
        samples.last().unwrap(),
    );
}

/// `audience`: one fixed audience (cache hits), or `None` for a new one per request.
async fn jwt(socket: PathBuf, audience: Option<String>, clients: usize, seconds: u64) {
    if let Some(audience) = &audience {
        // Warm the agent's cache first.
        let mut warm = connect(socket.clone()).await;
        warm.fetch_jwtsvid(request(wl::JwtsvidRequest {
            audience: vec![audience.clone()],
            spiffe_id: String::new(),
        }))
        .await
        .unwrap();
    }
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    let run = std::process::id();
    for task in 0..clients {
        let socket = socket.clone();
        let audience = audience.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = connect(socket).await;
            let mut samples = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let audience = audience
                    .clone()
                    .unwrap_or_else(|| format!("mint-{run}-{task}-{}", samples.len()));
                client
                    .fetch_jwtsvid(request(wl::JwtsvidRequest {
                        audience: vec![audience],
                        spiffe_id: String::new(),
                    }))
                    .await
                    .unwrap();
                samples.push(t.elapsed());
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let what = if audience.is_some() {
        "cached"
    } else {
        "minted by the server"
    };
    report(
        &format!("FetchJWTSVID ({what}), {clients} clients"),
        all,
        started.elapsed(),
    );
}

async fn propagation(socket: PathBuf, lanyard: String, admin: String, parent: String, selector: String, rounds: usize) {
    let mut client = connect(socket).await;
    let mut stream = client
        .fetch_x509svid(request(wl::X509svidRequest {}))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    let mut samples = Vec::new();
    let started = Instant::now();
    let run = std::process::id();
    for round in 0..rounds {
        let id = format!("spiffe://example.org/bench/propagation/{run}/{round}");
        let t = Instant::now();
        let status = tokio::process::Command::new(&lanyard)
            .args([
                "entry",
                "create",
                "--spiffe-id",
                &id,
                "--parent-id",
                &parent,
                "--selector",
                &selector,
            ])
            .args(["--socket", &admin])
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(status.success());
        loop {
            let update = tokio::time::timeout(Duration::from_secs(5), stream.message())
                .await
                .expect("no update within 5 s")
                .unwrap()
                .unwrap();
            if update.svids.iter().any(|s| s.spiffe_id == id) {
                break;
            }
        }
        samples.push(t.elapsed());
    }
    report("entry create -> FetchX509SVID stream", samples, started.elapsed());
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["jwt", socket, audience, clients, seconds] => {
            let audience = Some((*audience).to_owned());
            jwt(
                socket.into(),
                audience,
                clients.parse().unwrap(),
                seconds.parse().unwrap(),
            )
            .await;
        }
        ["jwt-mint", socket, clients, seconds] => {
            jwt(socket.into(), None, clients.parse().unwrap(), seconds.parse().unwrap()).await;
        }
        ["propagation", socket, lanyard, admin, parent, selector, rounds] => {
            propagation(
                socket.into(),
                (*lanyard).to_owned(),
                (*admin).to_owned(),
                (*parent).to_owned(),
                (*selector).to_owned(),
                rounds.parse().unwrap(),
            )
            .await;
        }
        _ => {
            eprintln!("usage: see the doc comment of examples/workload_load.rs");
            std::process::exit(2);
        }
    }
}
