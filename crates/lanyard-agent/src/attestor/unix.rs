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
//! PID reuse: the process's start time (`/proc/<pid>/stat` field 22) is read before and
//! after everything else; if it changed or the process is gone, attestation fails, so a
//! process that exits and whose PID is taken by another cannot be mistaken for it.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{AttestError, PeerCredentials, Selector, WorkloadAttestor};

/// Attests workloads by their Unix process attributes.
#[derive(Debug)]
pub struct UnixAttestor {
    proc_root: PathBuf,
    etc_root: PathBuf,
    discover_path: bool,
    /// SHA-256 of executables, keyed by (device, inode, size, mtime, mtime_nsec): binaries
    /// are hashed once, not on every call.
    hashes: Mutex<HashMap<FileStamp, String>>,
}

/// What identifies a file's content well enough to reuse its hash: device, inode, size,
/// and modification time (seconds and nanoseconds).
type FileStamp = (u64, u64, u64, i64, i64);

impl UnixAttestor {
    /// An attestor reading `/proc` and `/etc`; `discover_path` adds the `path` and
    /// `sha256` selectors (it reads the executable, so the agent needs permission to).
    pub fn new(discover_path: bool) -> UnixAttestor {
        UnixAttestor::with_roots("/proc", "/etc", discover_path)
    }

    /// As [`UnixAttestor::new`], reading process and account files under other roots.
    pub fn with_roots(
        proc_root: impl Into<PathBuf>,
        etc_root: impl Into<PathBuf>,
        discover_path: bool,
    ) -> UnixAttestor {
        UnixAttestor {
            proc_root: proc_root.into(),
            etc_root: etc_root.into(),
            discover_path,
            hashes: Mutex::new(HashMap::new()),
        }
    }

    fn process_dir(&self, pid: i32) -> PathBuf {
        self.proc_root.join(pid.to_string())
    }

    fn start_time(&self, pid: i32) -> Result<u64, AttestError> {
        let stat =
            fs::read_to_string(self.process_dir(pid).join("stat")).map_err(|_| AttestError::ProcessGone { pid })?;
        parse_start_time(&stat).ok_or_else(|| inspect(pid, "malformed /proc stat"))
    }

    fn executable_hash(&self, pid: i32, exe: &Path) -> Result<String, AttestError> {
        let meta = fs::metadata(exe).map_err(|e| inspect(pid, format!("stat of the executable: {e}")))?;
        let key = (meta.dev(), meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec());
        if let Some(hash) = self.hashes.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(hash.clone());
        }
        let mut file = fs::File::open(exe).map_err(|e| inspect(pid, format!("opening the executable: {e}")))?;
        let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| inspect(pid, format!("reading the executable: {e}")))?;
            if n == 0 {
                break;
            }
            digest.update(&buf[..n]);
        }
        let hash: String = digest.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let mut cache = self.hashes.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(key, hash.clone());
        Ok(hash)
    }
}

impl WorkloadAttestor for UnixAttestor {
    fn kind(&self) -> &'static str {
        "unix"
    }

    fn attest(&self, peer: &PeerCredentials) -> Result<Vec<Selector>, AttestError> {
        let pid = peer.pid;
        if pid <= 0 {
            return Err(AttestError::NoPeerCredentials);
        }
        let started = self.start_time(pid)?;
        let status =
            fs::read_to_string(self.process_dir(pid).join("status")).map_err(|_| AttestError::ProcessGone { pid })?;
        let ids = ProcessIds::parse(&status).ok_or_else(|| inspect(pid, "malformed /proc status"))?;

        let users = read_names(&self.etc_root.join("passwd"));
        let groups = read_names(&self.etc_root.join("group"));
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
            let path = fs::read_link(&exe_link).map_err(|e| inspect(pid, format!("reading /proc exe: {e}")))?;
            let shown = path.to_string_lossy();
            // A replaced or deleted binary shows as "<path> (deleted)": report the path as
            // the kernel does, and hash what the process actually runs (via the link).
            selectors.push(Selector::new("unix", format!("path:{shown}")));
            selectors.push(Selector::new(
                "unix",
                format!("sha256:{}", self.executable_hash(pid, &exe_link)?),
            ));
        }

        // Everything above must describe the process that called: same PID, same start.
        if self.start_time(pid)? != started {
            return Err(AttestError::ProcessGone { pid });
        }
        Ok(selectors)
    }
}

fn inspect(pid: i32, reason: impl Into<String>) -> AttestError {
    AttestError::Inspect {
        pid,
        reason: reason.into(),
    }
}

/// Field 22 (`starttime`) of `/proc/<pid>/stat`. Field 2 (`comm`) is parenthesised and may
/// itself contain spaces and parentheses, so fields are counted after the last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // After comm come field 3 (state) onwards; starttime is field 22, the 20th of these.
    after_comm.split_whitespace().nth(19)?.parse().ok()
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
    fn start_time_survives_odd_command_names() {
        let stat = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("4242 (x) S 1"), None);
    }

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
        let attestor = UnixAttestor::new(true);
        let pid = i32::try_from(std::process::id()).unwrap();
        let selectors = attestor.attest(&PeerCredentials { pid, uid: 0, gid: 0 }).unwrap();
        let shown: Vec<String> = selectors.iter().map(ToString::to_string).collect();
        let exe = std::env::current_exe().unwrap();
        assert!(shown.iter().any(|s| s.starts_with("unix:uid:")), "{shown:?}");
        assert!(shown.contains(&format!("unix:path:{}", exe.display())), "{shown:?}");
        let sha = shown.iter().find(|s| s.starts_with("unix:sha256:")).unwrap();
        assert_eq!(sha.len(), "unix:sha256:".len() + 64);
        // The second call is served from the hash cache and agrees.
        let again = attestor.attest(&PeerCredentials { pid, uid: 0, gid: 0 }).unwrap();
        assert_eq!(selectors, again);
    }

    #[test]
    fn dead_process_is_refused() {
        let attestor = UnixAttestor::new(false);
        // PIDs are bounded by pid_max (at most 2^22); this one cannot exist.
        let err = attestor
            .attest(&PeerCredentials {
                pid: 99_999_999,
                uid: 0,
                gid: 0,
            })
            .unwrap_err();
        assert!(matches!(err, AttestError::ProcessGone { .. }), "{err}");
    }
}
