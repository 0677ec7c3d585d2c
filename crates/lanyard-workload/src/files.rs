//! Credential files for applications that do not speak the Workload API (what
//! spiffe-helper does for SPIRE): a [`FileWriter`] watches the Workload API and keeps the
//! X.509-SVID, its key and bundles, a JWT-SVID and a WIT-SVID with its key on disk, then
//! runs a reload command so the application picks them up.
//!
//! Every file is written atomically: a temporary file created with mode 0600 in the same
//! directory, written, fsynced, then renamed over the target (and the directory fsynced),
//! so a reader sees either the old or the new content, never a mix. Failures (of the
//! Workload API, of writing, of the reload command) are logged with `tracing` and retried;
//! the writer keeps running. Private keys and tokens are never logged.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lanyard_core::{Clock, SpiffeId, SystemClock, UnixTime};
use tokio_stream::StreamExt;

use crate::client::WorkloadApiClient;
use crate::error::ClientError;
use crate::types::{JwtSvidEntry, WitSvidEntry, X509Context, X509SvidEntry, bundle_pem};

/// The mode of every file the writer creates.
pub const FILE_MODE: u32 = 0o600;

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Writes Workload API credentials to files and keeps them current. Build one with
/// [`FileWriter::new`] and adjust the public fields; then call [`FileWriter::run`].
#[derive(Clone, Debug)]
pub struct FileWriter {
    /// The directory the files go to (created with mode 0700 if missing).
    pub dir: PathBuf,
    /// Which identity to write; `None` means the default one (the first the endpoint
    /// returns).
    pub spiffe_id: Option<SpiffeId>,
    /// Whether to watch and write the X.509-SVID files.
    pub x509: bool,
    /// The X.509-SVID chain, PEM, leaf first (default `svid.pem`).
    pub svid_file: String,
    /// The X.509-SVID private key, PKCS#8 PEM (default `svid_key.pem`).
    pub svid_key_file: String,
    /// The authorities of the SVID's own trust domain, PEM (default `bundle.pem`).
    pub bundle_file: String,
    /// All federated trust domains' authorities concatenated, PEM (default
    /// `federated_bundles.pem`; empty when there are none); `None` to skip.
    pub federated_bundles_file: Option<String>,
    /// Audiences for a JWT-SVID; empty means no JWT-SVID is written.
    pub jwt_audiences: Vec<String>,
    /// The JWT-SVID (default `jwt_svid.token`), refreshed at half its lifetime.
    pub jwt_svid_file: String,
    /// Whether to watch and write the WIT-SVID files (stops quietly, with a warning, if
    /// the endpoint does not implement the WIT profile).
    pub wit: bool,
    /// The WIT-SVID (default `wit.jwt`).
    pub wit_file: String,
    /// The WIT-SVID's private key as a JWK (default `wit_key.jwk`).
    pub wit_key_file: String,
    /// A command run (directly, without a shell: program then arguments) after the X.509
    /// or WIT files change; `None` for none.
    pub reload_command: Option<Vec<String>>,
    /// The first wait before reconnecting; waits grow linearly up to 30 s (default 1 s).
    pub retry_base: Duration,
}

impl FileWriter {
    /// A writer into `dir` for the default identity's X.509-SVID, with the default file
    /// names, no JWT-SVID, no WIT-SVID and no reload command.
    pub fn new(dir: impl Into<PathBuf>) -> FileWriter {
        FileWriter {
            dir: dir.into(),
            spiffe_id: None,
            x509: true,
            svid_file: "svid.pem".into(),
            svid_key_file: "svid_key.pem".into(),
            bundle_file: "bundle.pem".into(),
            federated_bundles_file: Some("federated_bundles.pem".into()),
            jwt_audiences: Vec::new(),
            jwt_svid_file: "jwt_svid.token".into(),
            wit: false,
            wit_file: "wit.jwt".into(),
            wit_key_file: "wit_key.jwk".into(),
            reload_command: None,
            retry_base: Duration::from_secs(1),
        }
    }

    /// Watches the Workload API and writes files on every update until `shutdown`
    /// completes (then returns `Ok`). Transient failures are logged and retried; it returns
    /// an error only for failures retrying cannot fix (e.g. `InvalidArgument`, a bad file
    /// name, an unusable directory).
    pub async fn run(&self, client: &WorkloadApiClient, shutdown: impl Future<Output = ()>) -> Result<(), ClientError> {
        self.check_names()?;
        self.prepare_dir()?;
        let work = async {
            tokio::try_join!(self.x509_loop(client), self.jwt_loop(client), self.wit_loop(client)).map(|_| ())
        };
        tokio::select! {
            result = work => result,
            () = shutdown => Ok(()),
        }
    }

    /// Writes the X.509 files for the configured identity from `context`.
    pub fn write_x509(&self, context: &X509Context) -> Result<SpiffeId, ClientError> {
        let svid = self.select_x509(context)?;
        // Key first, then the chain: a reader that sees the new chain finds the new key.
        write_atomic(&self.dir, &self.svid_key_file, svid.key_pem().as_bytes())?;
        write_atomic(&self.dir, &self.svid_file, svid.chain_pem().as_bytes())?;
        write_atomic(&self.dir, &self.bundle_file, svid.bundle_pem().as_bytes())?;
        if let Some(name) = &self.federated_bundles_file {
            let pem: String = context
                .federated_bundles
                .values()
                .map(|certs| bundle_pem(certs))
                .collect();
            write_atomic(&self.dir, name, pem.as_bytes())?;
        }
        Ok(svid.spiffe_id.clone())
    }

    /// Writes the JWT-SVID file.
    pub fn write_jwt_svid(&self, svid: &JwtSvidEntry) -> Result<(), ClientError> {
        write_atomic(&self.dir, &self.jwt_svid_file, svid.token.as_bytes())
    }

    /// Writes the WIT-SVID files for the configured identity from `svids`.
    pub fn write_wit(&self, svids: &[WitSvidEntry]) -> Result<SpiffeId, ClientError> {
        let svid = match &self.spiffe_id {
            Some(id) => svids.iter().find(|s| &s.spiffe_id == id),
            None => svids.first(),
        }
        .ok_or_else(|| self.no_identity("WIT-SVID"))?;
        write_atomic(&self.dir, &self.wit_key_file, svid.key_jwk.as_bytes())?;
        write_atomic(&self.dir, &self.wit_file, svid.token.as_bytes())?;
        Ok(svid.spiffe_id.clone())
    }

    fn select_x509<'a>(&self, context: &'a X509Context) -> Result<&'a X509SvidEntry, ClientError> {
        match &self.spiffe_id {
            Some(id) => context.svid_for(id),
            None => context.default_svid(),
        }
        .ok_or_else(|| self.no_identity("X.509-SVID"))
    }

    fn no_identity(&self, what: &str) -> ClientError {
        match &self.spiffe_id {
            Some(id) => ClientError::PermissionDenied(format!("no {what} for {id} in the update")),
            None => ClientError::malformed(format!("no {what} in the update")),
        }
    }

    fn check_names(&self) -> Result<(), ClientError> {
        let mut names = vec![
            &self.svid_file,
            &self.svid_key_file,
            &self.bundle_file,
            &self.jwt_svid_file,
        ];
        names.extend([&self.wit_file, &self.wit_key_file]);
        names.extend(self.federated_bundles_file.as_ref());
        for name in names {
            let mut components = Path::new(name).components();
            if !matches!(
                (components.next(), components.next()),
                (Some(Component::Normal(_)), None)
            ) {
                return Err(ClientError::InvalidArgument(format!(
                    "credential file name {name:?} must be a plain file name"
                )));
            }
        }
        Ok(())
    }

    fn prepare_dir(&self) -> Result<(), ClientError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| ClientError::io(&self.dir, e))
    }

    async fn x509_loop(&self, client: &WorkloadApiClient) -> Result<(), ClientError> {
        if !self.x509 {
            return Ok(());
        }
        let mut backoff = Backoff::new(self.retry_base);
        loop {
            match client.watch_x509_context().await {
                Ok(mut stream) => {
                    while let Some(update) = stream.next().await {
                        match update.and_then(|context| self.write_x509(&context)) {
                            Ok(id) => {
                                backoff.reset();
                                tracing::info!(spiffe_id = %id, dir = %self.dir.display(), "wrote X.509-SVID files");
                                self.reload().await;
                            }
                            Err(e) => tolerate("X.509-SVID", e)?,
                        }
                    }
                    tracing::info!("X.509-SVID stream closed; reconnecting");
                }
                Err(e) => tolerate("X.509-SVID", e)?,
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn wit_loop(&self, client: &WorkloadApiClient) -> Result<(), ClientError> {
        if !self.wit {
            return Ok(());
        }
        let mut backoff = Backoff::new(self.retry_base);
        loop {
            let result = match client.watch_wit_svids(self.spiffe_id.as_ref()).await {
                Ok(mut stream) => {
                    let mut ended = Ok(());
                    while let Some(update) = stream.next().await {
                        match update.and_then(|svids| self.write_wit(&svids)) {
                            Ok(id) => {
                                backoff.reset();
                                tracing::info!(spiffe_id = %id, dir = %self.dir.display(), "wrote WIT-SVID files");
                                self.reload().await;
                            }
                            Err(e) => ended = Err(e),
                        }
                    }
                    ended
                }
                Err(e) => Err(e),
            };
            match result {
                Err(ClientError::Unimplemented(message)) => {
                    tracing::warn!(%message, "the Workload API does not serve WIT-SVIDs; not writing them");
                    return Ok(());
                }
                Err(e) => tolerate("WIT-SVID", e)?,
                Ok(()) => tracing::info!("WIT-SVID stream closed; reconnecting"),
            }
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    async fn jwt_loop(&self, client: &WorkloadApiClient) -> Result<(), ClientError> {
        if self.jwt_audiences.is_empty() {
            return Ok(());
        }
        let audience: Vec<&str> = self.jwt_audiences.iter().map(String::as_str).collect();
        let mut backoff = Backoff::new(self.retry_base);
        loop {
            let fetched = client
                .fetch_jwt_svid(&audience, self.spiffe_id.as_ref())
                .await
                .and_then(|svids| {
                    let svid = svids.into_iter().next().ok_or_else(|| self.no_identity("JWT-SVID"))?;
                    self.write_jwt_svid(&svid)?;
                    Ok(svid)
                });
            let delay = match fetched {
                Ok(svid) => {
                    backoff.reset();
                    let delay = refresh_delay(&svid, SystemClock.now());
                    tracing::info!(spiffe_id = %svid.spiffe_id, refresh_in = ?delay, "wrote JWT-SVID file");
                    delay
                }
                Err(e) => {
                    tolerate("JWT-SVID", e)?;
                    backoff.next_delay()
                }
            };
            tokio::time::sleep(delay).await;
        }
    }

    async fn reload(&self) {
        let Some((program, args)) = self.reload_command.as_deref().and_then(<[String]>::split_first) else {
            return;
        };
        let status = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await;
        match status {
            Ok(status) if status.success() => tracing::debug!(%program, "reload command succeeded"),
            Ok(status) => tracing::warn!(%program, %status, "reload command failed"),
            Err(error) => tracing::warn!(%program, %error, "could not run the reload command"),
        }
    }
}

/// Logs a failure that retrying may fix (or a malformed update, which the next one may
/// fix) and returns `Ok`; returns the others.
fn tolerate(what: &str, error: ClientError) -> Result<(), ClientError> {
    if error.is_retryable() || matches!(error, ClientError::Malformed(_)) {
        tracing::warn!(%error, "{what} update failed; will retry");
        Ok(())
    } else {
        tracing::error!(%error, "{what} updates stopped");
        Err(error)
    }
}

/// When to fetch a new JWT-SVID: at half its lifetime (from `iat`, or from now when the
/// token has none), at least a second from now; a minute from now without `exp`.
fn refresh_delay(svid: &JwtSvidEntry, now: UnixTime) -> Duration {
    let now = now.0;
    let Some(exp) = svid.expires_at() else {
        return Duration::from_secs(60);
    };
    let iat = svid.issued_at().map_or(now, |t| t.0.min(exp.0));
    let refresh_at = iat + exp.0.saturating_sub(iat) / 2;
    Duration::from_secs(refresh_at.saturating_sub(now).max(1))
}

/// Linear backoff: base, 2×base, … up to [`MAX_BACKOFF`].
struct Backoff {
    base: Duration,
    attempt: u32,
}

impl Backoff {
    fn new(base: Duration) -> Backoff {
        Backoff { base, attempt: 0 }
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }

    fn next_delay(&mut self) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        self.base.saturating_mul(self.attempt).min(MAX_BACKOFF)
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `dir/name` with `contents` atomically: a new temporary file (mode 0600) in
/// `dir`, written and fsynced, renamed over the target, then the directory fsynced.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<(), ClientError> {
    let target = dir.join(name);
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, &target)) {
        let _ = std::fs::remove_file(&temp);
        return Err(ClientError::io(target, e));
    }
    // Make the rename durable; failing to fsync a directory is not worth failing over.
    if let Err(error) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(%error, dir = %dir.display(), "could not fsync the directory");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn atomic_writes_replace_with_0600_files() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "a.pem", b"one").unwrap();
        let first = std::fs::metadata(dir.path().join("a.pem")).unwrap();
        assert_eq!(first.permissions().mode() & 0o777, 0o600);
        write_atomic(dir.path(), "a.pem", b"two").unwrap();
        let second = std::fs::metadata(dir.path().join("a.pem")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.pem")).unwrap(), b"two");
        // Renamed into place, not rewritten in place.
        assert_ne!(first.ino(), second.ino());
        assert_eq!(second.permissions().mode() & 0o777, 0o600);
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.pem")]);
    }

    #[test]
    fn failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("taken")).unwrap();
        std::fs::write(dir.path().join("taken/x"), b"x").unwrap();
        // Renaming a file over a non-empty directory fails.
        assert!(matches!(
            write_atomic(dir.path(), "taken", b"data"),
            Err(ClientError::Io { .. })
        ));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn file_names_must_be_plain() {
        let mut writer = FileWriter::new("/tmp/x");
        assert!(writer.check_names().is_ok());
        writer.svid_key_file = "../key.pem".into();
        assert!(matches!(writer.check_names(), Err(ClientError::InvalidArgument(_))));
        writer.svid_key_file = "sub/key.pem".into();
        assert!(writer.check_names().is_err());
    }

    fn jwt(claims: &str) -> JwtSvidEntry {
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        JwtSvidEntry {
            spiffe_id: SpiffeId::parse("spiffe://example.org/web").unwrap(),
            token: format!("{}.{}.{}", enc(r#"{"alg":"ES256"}"#), enc(claims), enc("sig")),
            hint: String::new(),
        }
    }

    #[test]
    fn jwt_refresh_at_half_lifetime() {
        let at = UnixTime;
        let svid = jwt(r#"{"sub":"spiffe://example.org/web","iat":1000,"exp":1600}"#);
        assert_eq!(refresh_delay(&svid, at(1000)), Duration::from_secs(300));
        assert_eq!(refresh_delay(&svid, at(1200)), Duration::from_secs(100));
        assert_eq!(refresh_delay(&svid, at(1500)), Duration::from_secs(1));
        let no_iat = jwt(r#"{"sub":"spiffe://example.org/web","exp":1600}"#);
        assert_eq!(refresh_delay(&no_iat, at(1400)), Duration::from_secs(100));
        let no_exp = jwt(r#"{"sub":"spiffe://example.org/web"}"#);
        assert_eq!(refresh_delay(&no_exp, at(1400)), Duration::from_secs(60));
    }

    #[test]
    fn backoff_is_linear_and_capped() {
        let mut b = Backoff::new(Duration::from_secs(1));
        assert_eq!(b.next_delay(), Duration::from_secs(1));
        assert_eq!(b.next_delay(), Duration::from_secs(2));
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), MAX_BACKOFF);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
