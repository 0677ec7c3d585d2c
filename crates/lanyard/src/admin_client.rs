//! A minimal HTTP/1.1 client for the server's admin API on its Unix socket.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Where the admin socket is: `--socket`, else `LANYARD_ADMIN_SOCKET`, else the default
/// data directory's socket.
pub(crate) fn socket_path(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("LANYARD_ADMIN_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("lanyard-data/admin.sock"))
}

/// Sends one request and returns the status and the JSON body (if any). A problem
/// response becomes an error carrying the server's reason.
pub(crate) fn call(socket: &Path, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(call_async(socket, method, path, body))
}

async fn call_async(socket: &Path, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let stream = tokio::net::UnixStream::connect(socket).await.with_context(|| {
        format!(
            "connecting to the admin socket {} (is `lanyard server` running? set --socket or LANYARD_ADMIN_SOCKET)",
            socket.display()
        )
    })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "lanyard-admin")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(payload)))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    if !status.is_success() {
        let detail = value.get("detail").and_then(Value::as_str).unwrap_or("request failed");
        let kind = value.get("kind").and_then(Value::as_str).unwrap_or("error");
        bail!("{detail} ({kind}, HTTP {})", status.as_u16());
    }
    Ok(value)
}
