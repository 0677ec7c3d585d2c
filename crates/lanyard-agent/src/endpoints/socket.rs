//! Binding the Workload API socket safely.
//!
//! The socket itself is world-connectable (callers are identified by attestation, not by
//! file permissions), so what must be protected is the path: a directory that others can
//! write to would let them replace the socket with their own. Workloads normally run as
//! other users than the agent, so every directory above the socket must also be
//! searchable by them: the socket lives in a directory of its own (0755), never inside the
//! agent's private data directory (0700). [`access`] tells who can reach it.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::error::AgentError;

/// Binds `path`: creates its directory (0755) if needed, refuses a directory that users
/// other than its owner can write to (unless sticky) or that is owned by another user than
/// the agent's or root, refuses a path that exists and is not
/// a socket, and refuses a live socket (another agent serves it); a stale socket (nobody
/// listening) is removed.
pub fn bind(path: &Path) -> Result<UnixListener, AgentError> {
    let refuse = |reason: String| AgentError::Socket {
        path: path.to_owned(),
        reason,
    };
    let failed = |what: &'static str| {
        move |source: std::io::Error| AgentError::SocketIo {
            path: path.to_owned(),
            what,
            source,
        }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(failed("creating its directory"))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(failed("setting its directory's permissions"))?;
    }
    let meta = std::fs::metadata(dir).map_err(failed("reading its directory"))?;
    let mode = meta.mode();
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(refuse(format!(
            "its directory {} is writable by other users (mode {:o}); use a directory only the agent can write",
            dir.display(),
            mode & 0o7777
        )));
    }
    // The directory's owner can replace anything in it: it must be the agent's user or root.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    if meta.uid() != me && meta.uid() != 0 {
        return Err(refuse(format!(
            "its directory {} belongs to uid {}, not to the agent's user or root",
            dir.display(),
            meta.uid()
        )));
    }
    match std::fs::symlink_metadata(path) {
        Ok(existing) if !existing.file_type().is_socket() => {
            return Err(refuse(
                "the path exists and is not a socket; refusing to replace it".into(),
            ));
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(refuse("another process is already serving this socket".into()));
            }
            std::fs::remove_file(path).map_err(failed("removing the stale socket"))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("inspecting the path")(e)),
    }
    let listener = UnixListener::bind(path).map_err(failed("binding"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
        .map_err(failed("setting its permissions"))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn refuses_unsafe_paths() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file is never replaced.
        let file = dir.path().join("file.sock");
        std::fs::write(&file, b"keep me").unwrap();
        assert!(bind(&file).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

        // A live socket is refused; a stale one is replaced.
        let live = dir.path().join("live.sock");
        let first = bind(&live).unwrap();
        assert!(matches!(bind(&live), Err(AgentError::Socket { .. })));
        drop(first);
        let _again = bind(&live).unwrap();

        // A world-writable directory without the sticky bit is refused.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = bind(&open.join("api.sock")).unwrap_err();
        assert!(err.to_string().contains("writable by other users"), "{err}");
        // So is a group-writable one.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o775)).unwrap();
        assert!(bind(&open.join("api.sock")).is_err());

        // A missing directory is created.
        let _nested = bind(&dir.path().join("a/b/api.sock")).unwrap();
    }
}

/// Who can connect to the socket, as far as the directories above it allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketAccess {
    /// Every local user: each directory above the socket is searchable by others.
    EveryUser,
    /// Only users who can search `dir` (its owner and group): other users' workloads get
    /// `EACCES` on connect.
    BlockedBy {
        /// The first directory (from the root) that others cannot search.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Checks every directory above the socket at `path` for the search permission of other
/// users.
pub fn access(path: &Path) -> SocketAccess {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut ancestors: Vec<&Path> = absolute.ancestors().skip(1).collect();
    ancestors.reverse();
    for dir in ancestors {
        let Ok(meta) = std::fs::metadata(dir) else { continue };
        if meta.mode() & 0o001 == 0 {
            return SocketAccess::BlockedBy {
                dir: dir.to_owned(),
                mode: meta.mode() & 0o7777,
            };
        }
    }
    SocketAccess::EveryUser
}

impl std::fmt::Display for SocketAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketAccess::EveryUser => f.write_str("every local user (callers are identified by attestation)"),
            SocketAccess::BlockedBy { dir, mode } => write!(
                f,
                "only users who can search {} (mode {mode:o}); other users' workloads cannot connect: move socket_path",
                dir.display()
            ),
        }
    }
}

#[cfg(test)]
mod access_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_private_directory_above_the_socket_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let inside = access(&private.join("public/api.sock"));
        assert_eq!(
            inside,
            SocketAccess::BlockedBy {
                dir: private.clone(),
                mode: 0o700
            }
        );
        assert!(inside.to_string().contains("cannot connect"));
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o711)).unwrap();
        // Temporary directories live under /tmp (1777): reachable when the rest allows.
        if access(dir.path()) == SocketAccess::EveryUser {
            assert_eq!(access(&private.join("api.sock")), SocketAccess::EveryUser);
        }
    }
}
