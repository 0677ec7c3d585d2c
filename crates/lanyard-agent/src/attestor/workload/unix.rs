//! The `unix` workload attestor: the caller's user, groups and executable.
//!
//! Selectors (the names SPIRE's unix attestor uses, so entries carry over):
//!
//! | selector | from |
//! |---|---|
//! | `unix:uid:<n>`, `unix:user:<name>` | effective UID (`/proc/<pid>/status`), name from `/etc/passwd` |
//! | `unix:gid:<n>`, `unix:group:<name>` | effective GID, name from `/etc/group` |
//! | `unix:supplementary_gid:<n>`, `unix:supplementary_group:<name>` | `Groups:` in `/proc/<pid>/status` |
//! | `unix:path:<abs path>` | `/proc/<pid>/exe` (only when path discovery is on) |
//! | `unix:sha256:<hex>` | SHA-256 of that executable (only when path discovery is on) |
//!
//! PID reuse: `/proc/<pid>/status` is opened first and read again through the same open
//! file after everything else. An open procfs file stays bound to its task, so the second
//! read fails if the process exited in between, even if another process got its PID: a
//! process that exits and whose PID is taken cannot be mistaken for it. Where the kernel
//! has `SO_PEERPIDFD`, the process that connected is also pinned at accept time (see
//! [`super::PeerProcess`]): a caller that handed its socket on and exited is refused even
//! if its PID was reused before the status file was opened.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use lanyard_core::CryptoProvider;

use super::{AttestError, PeerCredentials, Selector, WorkloadAttestor};
use crate::error::BoxError;

/// Attests workloads by their Unix process attributes.
#[derive(Debug)]
pub struct UnixAttestor {
    /// Hashes executables.
    crypto: Arc<dyn CryptoProvider>,
    proc_root: PathBuf,
    discover_path: bool,
    /// SHA-256 of executables, keyed by (device, inode, size, mtime, mtime_nsec): binaries
    /// are hashed once, not on every call.
    hashes: Mutex<HashMap<FileStamp, String>>,
    /// `/etc/passwd` and `/etc/group`, parsed once per change of the file.
    users: NameFile,
    groups: NameFile,
}

/// An `id -> name` file (`/etc/passwd`, `/etc/group`) and its last parse.
#[derive(Debug)]
struct NameFile {
    path: PathBuf,
    /// The last parse, its file stamp, and when the stamp was last checked.
    parsed: Mutex<Option<(FileStamp, std::time::Instant, Names)>>,
}

/// `id -> name`, shared.
type Names = Arc<HashMap<u32, String>>;

/// How long a parsed account file is used before its stamp is checked again.
const NAME_FILE_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl NameFile {
    fn new(path: PathBuf) -> NameFile {
        NameFile {
            path,
            parsed: Mutex::new(None),
        }
    }

    /// The current names; the file is checked at most once a second and re-read only
    /// when its identity or mtime changed.
    fn names(&self) -> Arc<HashMap<u32, String>> {
        let now = std::time::Instant::now();
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, checked, names)) = parsed.as_ref()
            && now.duration_since(*checked) < NAME_FILE_RECHECK
        {
            return Arc::clone(names);
        }
        let Ok(meta) = fs::metadata(&self.path) else {
            *parsed = None;
            return Arc::default();
        };
        let stamp = stamp(&meta);
        if let Some((seen, checked, names)) = parsed.as_mut()
            && *seen == stamp
        {
            *checked = now;
            return Arc::clone(names);
        }
        let names = Arc::new(read_names(&self.path));
        *parsed = Some((stamp, now, Arc::clone(&names)));
        names
    }
}

fn stamp(meta: &fs::Metadata) -> FileStamp {
    // ctime too: a file's owner can set mtime back after rewriting it, but not ctime.
    (
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
}

/// What identifies a file's content well enough to reuse its hash: device, inode, size,
/// modification and status-change times (seconds and nanoseconds).
type FileStamp = (u64, u64, u64, i64, i64, i64, i64);

/// Executables larger than this are not hashed (no `unix:sha256` selector): hashing a
/// huge or sparse file would let a workload keep the agent busy.
const MAX_HASHED_EXECUTABLE: u64 = 512 * 1024 * 1024;

impl UnixAttestor {
    /// An attestor reading `/proc` and `/etc`; `discover_path` adds the `path` and
    /// `sha256` selectors (it reads the executable, so the agent needs permission to, and
    /// hashes it with `crypto`).
    pub fn new(crypto: Arc<dyn CryptoProvider>, discover_path: bool) -> UnixAttestor {
        UnixAttestor::with_roots(crypto, "/proc", "/etc", discover_path)
    }

    /// As [`UnixAttestor::new`], reading process and account files under other roots.
    pub fn with_roots(
        crypto: Arc<dyn CryptoProvider>,
        proc_root: impl Into<PathBuf>,
        etc_root: impl Into<PathBuf>,
        discover_path: bool,
    ) -> UnixAttestor {
        let etc_root: PathBuf = etc_root.into();
        UnixAttestor {
            crypto,
            proc_root: proc_root.into(),
            users: NameFile::new(etc_root.join("passwd")),
            groups: NameFile::new(etc_root.join("group")),
            discover_path,
            hashes: Mutex::new(HashMap::new()),
        }
    }

    fn process_dir(&self, pid: i32) -> PathBuf {
        self.proc_root.join(pid.to_string())
    }

    /// The executable's SHA-256 (from the cache when its stamp is known); `None` when it is
    /// too large to hash.
    fn executable_hash(&self, pid: i32, exe: &Path, may_block: bool) -> Result<Option<String>, AttestError> {
        let meta = fs::metadata(exe).map_err(failed(pid, "stat of the executable"))?;
        let key = stamp(&meta);
        if let Some(hash) = self.hashes.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(Some(hash.clone()));
        }
        if meta.size() > MAX_HASHED_EXECUTABLE {
            tracing::warn!(
                pid,
                size = meta.size(),
                "executable too large to hash; no unix:sha256 selector"
            );
            return Ok(None);
        }
        if !may_block {
            return Err(AttestError::WouldBlock);
        }
        let mut file = fs::File::open(exe).map_err(failed(pid, "opening the executable"))?;
        let mut digest = self
            .crypto
            .hasher(lanyard_core::DigestAlgorithm::Sha256)
            .map_err(failed(pid, "hashing the executable"))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(failed(pid, "reading the executable"))?;
            if n == 0 {
                break;
            }
            digest.update(&buf[..n]);
        }
        let hash = lanyard_core::hex::encode(digest.finish().as_ref());
        let mut cache = self.hashes.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(key, hash.clone());
        Ok(Some(hash))
    }
}

impl WorkloadAttestor for UnixAttestor {
    fn kind(&self) -> &'static str {
        "unix"
    }

    fn attest(&self, peer: &PeerCredentials, may_block: bool) -> Result<Vec<Selector>, AttestError> {
        let pid = peer.pid;
        if pid <= 0 {
            return Err(AttestError::NoPeerCredentials);
        }
        // The open status file stays bound to this task: once the task is gone, reading it
        // again fails, even if its PID has been given to another process meanwhile.
        let gone = |_| AttestError::ProcessGone { pid };
        let mut status_file = fs::File::open(self.process_dir(pid).join("status")).map_err(gone)?;
        let mut status = String::new();
        status_file.read_to_string(&mut status).map_err(gone)?;
        let ids = ProcessIds::parse(&status).ok_or_else(|| inspect(pid, "malformed /proc status"))?;
        // SO_PEERCRED holds the effective IDs at connect time: a process that changed them
        // since (a setuid exec), or another user's process with a reused PID, is refused.
        if (ids.uid, ids.gid) != (peer.uid, peer.gid) {
            return Err(AttestError::CredentialsChanged { pid });
        }

        let users = self.users.names();
        let groups = self.groups.names();
        let mut selectors = vec![
            Selector::new("unix", format!("uid:{}", ids.uid)),
            Selector::new("unix", format!("gid:{}", ids.gid)),
        ];
        if let Some(name) = users.get(&ids.uid) {
            selectors.push(Selector::new("unix", format!("user:{name}")));
        }
        if let Some(name) = groups.get(&ids.gid) {
            selectors.push(Selector::new("unix", format!("group:{name}")));
        }
        for gid in &ids.groups {
            selectors.push(Selector::new("unix", format!("supplementary_gid:{gid}")));
            if let Some(name) = groups.get(gid) {
                selectors.push(Selector::new("unix", format!("supplementary_group:{name}")));
            }
        }
        if self.discover_path {
            let exe_link = self.process_dir(pid).join("exe");
            let path = fs::read_link(&exe_link).map_err(failed(pid, "reading /proc exe"))?;
            let shown = path.to_string_lossy();
            // A replaced or deleted binary shows as "<path> (deleted)": report the path as
            // the kernel does, and hash what the process actually runs (via the link).
            selectors.push(Selector::new("unix", format!("path:{shown}")));
            if let Some(hash) = self.executable_hash(pid, &exe_link, may_block)? {
                selectors.push(Selector::new("unix", format!("sha256:{hash}")));
            }
        }

        // Everything above must describe the process that called: the process pinned at
        // accept time is still alive (so its PID was never handed on), the same task (the
        // read fails if it is gone), with the same user and groups.
        if peer.process.has_exited() {
            return Err(AttestError::ProcessGone { pid });
        }
        status_file.seek(std::io::SeekFrom::Start(0)).map_err(gone)?;
        let mut again = String::new();
        status_file.read_to_string(&mut again).map_err(gone)?;
        if ProcessIds::parse(&again).as_ref() != Some(&ids) {
            return Err(AttestError::CredentialsChanged { pid });
        }
        Ok(selectors)
    }
}

/// An [`AttestError::Read`] of `what` for `pid`.
fn failed<E: Into<BoxError>>(pid: i32, what: &'static str) -> impl FnOnce(E) -> AttestError {
    move |source| AttestError::Read {
        pid,
        what,
        source: source.into(),
    }
}

fn inspect(pid: i32, reason: impl Into<String>) -> AttestError {
    AttestError::Inspect {
        pid,
        reason: reason.into(),
    }
}

/// Effective UID/GID and supplementary groups from `/proc/<pid>/status`.
#[derive(Debug, PartialEq, Eq)]
struct ProcessIds {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
}

impl ProcessIds {
    fn parse(status: &str) -> Option<ProcessIds> {
        let mut uid = None;
        let mut gid = None;
        let mut groups = Vec::new();
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("Uid:") {
                // real, effective, saved set, filesystem
                uid = rest.split_whitespace().nth(1)?.parse().ok();
            } else if let Some(rest) = line.strip_prefix("Gid:") {
                gid = rest.split_whitespace().nth(1)?.parse().ok();
            } else if let Some(rest) = line.strip_prefix("Groups:") {
                groups = rest.split_whitespace().filter_map(|g| g.parse().ok()).collect();
            }
        }
        Some(ProcessIds {
            uid: uid?,
            gid: gid?,
            groups,
        })
    }
}

/// `id -> name` from an `/etc/passwd` or `/etc/group` style file (name:x:id:...); empty
/// if the file cannot be read.
fn read_names(path: &Path) -> HashMap<u32, String> {
    let Ok(text) = fs::read_to_string(path) else {
        return HashMap::new();
    };
    let mut names = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(id) = id.parse() {
            names.entry(id).or_insert_with(|| name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn status_ids() {
        let status = "Name:\tapp\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\t101\t101\t101\nGroups:\t4 24 27 \n";
        assert_eq!(
            ProcessIds::parse(status),
            Some(ProcessIds {
                uid: 1001,
                gid: 101,
                groups: vec![4, 24, 27]
            })
        );
        assert_eq!(ProcessIds::parse("Name:\tapp\n"), None);
    }

    #[test]
    fn attests_this_process() {
        let attestor = UnixAttestor::new(lanyard_crypto::provider(), true);
        let pid = i32::try_from(std::process::id()).unwrap();
        let me = fs::metadata("/proc/self").unwrap();
        let peer = PeerCredentials {
            pid,
            uid: me.uid(),
            gid: me.gid(),
            process: crate::attestor::workload::PeerProcess::Unpinned,
        };
        // The first time, hashing the executable is blocking work.
        assert!(matches!(attestor.attest(&peer, false), Err(AttestError::WouldBlock)));
        let selectors = attestor.attest(&peer, true).unwrap();
        let shown: Vec<String> = selectors.iter().map(ToString::to_string).collect();
        let exe = std::env::current_exe().unwrap();
        assert!(shown.iter().any(|s| s.starts_with("unix:uid:")), "{shown:?}");
        assert!(shown.contains(&format!("unix:path:{}", exe.display())), "{shown:?}");
        let sha = shown.iter().find(|s| s.starts_with("unix:sha256:")).unwrap();
        assert_eq!(sha.len(), "unix:sha256:".len() + 64);
        // The second call is served from the hash cache and agrees.
        let again = attestor.attest(&peer, false).unwrap();
        assert_eq!(selectors, again);
        // Credentials that differ from the connection's are refused.
        let other = PeerCredentials {
            uid: peer.uid.wrapping_add(1),
            ..peer
        };
        assert!(matches!(
            attestor.attest(&other, true),
            Err(AttestError::CredentialsChanged { .. })
        ));
    }

    #[test]
    fn an_open_status_file_fails_once_its_process_is_gone() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut status = fs::File::open(format!("/proc/{}/status", child.id())).unwrap();
        let mut first = String::new();
        status.read_to_string(&mut first).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        status.seek(std::io::SeekFrom::Start(0)).unwrap();
        let mut again = String::new();
        assert!(
            status.read_to_string(&mut again).is_err(),
            "read a reaped process: {again}"
        );
    }

    #[test]
    fn dead_process_is_refused() {
        let attestor = UnixAttestor::new(lanyard_crypto::provider(), false);
        // PIDs are bounded by pid_max (at most 2^22); this one cannot exist.
        let err = attestor
            .attest(
                &PeerCredentials {
                    pid: 99_999_999,
                    uid: 0,
                    gid: 0,
                    process: crate::attestor::workload::PeerProcess::Unpinned,
                },
                true,
            )
            .unwrap_err();
        assert!(matches!(err, AttestError::ProcessGone { .. }), "{err}");
    }
}
