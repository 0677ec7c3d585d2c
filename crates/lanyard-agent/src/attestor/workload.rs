//! Workload attestation: turning the process at the other end of a Workload API connection
//! into a set of selectors (SPIFFE Workload API §5 leaves the method to the implementation).
//!
//! An attestor is a [`WorkloadAttestor`]; the agent runs every configured attestor for the
//! caller's PID and unions their selectors. [`unix::UnixAttestor`] reads the kernel's peer
//! credentials and `/proc`; Kubernetes or container attestors plug in beside it.

pub mod unix;

use std::collections::BTreeSet;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// A selector a workload was attested with, e.g. `unix:uid:1000`: the attestor's type and
/// a value within that type. Entries match on these.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector {
    /// The attestor type (`unix`, `k8s`, ...).
    pub kind: String,
    /// The value (`uid:1000`, `path:/usr/bin/app`, ...).
    pub value: String,
}

impl Selector {
    /// A selector of `kind` with `value`.
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Selector {
        Selector {
            kind: kind.into(),
            value: value.into(),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// The kernel's view of the process on the other end of the socket (`SO_PEERCRED`, and
/// `SO_PEERPIDFD` where the kernel has it).
#[derive(Clone, Debug)]
pub struct PeerCredentials {
    /// Process ID at connect time.
    pub pid: i32,
    /// User ID at connect time.
    pub uid: u32,
    /// Group ID at connect time.
    pub gid: u32,
    /// The connecting process itself, pinned when the connection was accepted.
    pub process: PeerProcess,
}

/// The connecting process as pinned at accept time.
///
/// A PID alone is a weak name: a process can connect, hand the socket to a child and
/// exit, and its PID can then go to another process that attestation would describe
/// instead. A pidfd (`SO_PEERPIDFD`, Linux 6.5) names the very process that connected:
/// while it stays open and reports the process alive, the PID is still that process's.
#[derive(Clone, Debug, Default)]
pub enum PeerProcess {
    /// A pidfd of the process that connected.
    Pidfd(Arc<OwnedFd>),
    /// The process that connected had already exited when the connection was accepted.
    Exited,
    /// The kernel cannot give a pidfd for a socket peer: only the PID checks apply.
    #[default]
    Unpinned,
}

impl PeerProcess {
    /// Whether the pinned process has exited (`false` when nothing is pinned). A pidfd
    /// becomes readable when its process exits.
    pub fn has_exited(&self) -> bool {
        match self {
            PeerProcess::Pidfd(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::ZERO) {
                    Ok(0) => false,
                    // Readable, or the pidfd cannot be polled: treat the caller as gone.
                    Ok(_) | Err(_) => true,
                }
            }
            PeerProcess::Exited => true,
            PeerProcess::Unpinned => false,
        }
    }
}

/// Why a workload could not be attested. The Workload API answers these with
/// `PermissionDenied` (the caller cannot be identified), never with a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The connection carries no peer credentials (e.g. a TCP endpoint).
    #[error("the caller's process credentials are not available on this connection")]
    NoPeerCredentials,
    /// The process exited, or its PID was reused, while it was being attested.
    #[error("process {pid} exited or was replaced during attestation")]
    ProcessGone {
        /// The PID.
        pid: i32,
    },
    /// The process's credentials changed since it connected (e.g. it executed a setuid
    /// binary): the connection no longer speaks for one identity.
    #[error("process {pid} changed its user or group since it connected")]
    CredentialsChanged {
        /// The PID.
        pid: i32,
    },
    /// Finishing needs slow work (e.g. hashing an executable not seen before): call
    /// [`WorkloadAttestor::attest`] again with `may_block` on a thread that may block.
    #[error("attestation needs blocking work")]
    WouldBlock,
    /// The process's details are not what the attestor expects.
    #[error("reading process {pid}: {reason}")]
    Inspect {
        /// The PID.
        pid: i32,
        /// What is wrong.
        reason: String,
    },
    /// Reading the process's details (or its executable) failed.
    #[error("reading process {pid}: {what}: {source}")]
    Read {
        /// The PID.
        pid: i32,
        /// What the attestor was reading.
        what: &'static str,
        /// The error.
        source: crate::error::BoxError,
    },
}

/// A workload attestor: produces selectors for a process.
pub trait WorkloadAttestor: Send + Sync + fmt::Debug {
    /// The selector type this attestor produces (`unix`).
    fn kind(&self) -> &'static str;

    /// Selectors for the process with these credentials. Implementations must make sure
    /// the selectors describe the process that made the call (e.g. by checking that the
    /// PID was not reused while they looked). Without `may_block` (the caller is on an
    /// async runtime thread) an attestor that would have to do slow work returns
    /// [`AttestError::WouldBlock`] instead.
    fn attest(&self, peer: &PeerCredentials, may_block: bool) -> Result<Vec<Selector>, AttestError>;
}

/// Runs each attestor and unions their selectors (see [`WorkloadAttestor::attest`] for
/// `may_block`).
pub fn attest_all(
    attestors: &[Box<dyn WorkloadAttestor>],
    peer: &PeerCredentials,
    may_block: bool,
) -> Result<BTreeSet<Selector>, AttestError> {
    let mut all = BTreeSet::new();
    for attestor in attestors {
        all.extend(attestor.attest(peer, may_block)?);
    }
    Ok(all)
}

/// Whether an entry with `required` selectors matches a workload attested with `have`: the
/// entry's selectors must all be among the workload's (an entry with none matches nothing).
pub fn entry_matches<'a>(required: impl IntoIterator<Item = (&'a str, &'a str)>, have: &BTreeSet<Selector>) -> bool {
    let mut any = false;
    for (kind, value) in required {
        any = true;
        let found = have.iter().any(|s| s.kind == kind && s.value == value);
        if !found {
            return false;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_matching() {
        let have: BTreeSet<Selector> = [Selector::new("unix", "uid:1000"), Selector::new("unix", "gid:1000")]
            .into_iter()
            .collect();
        assert!(entry_matches([("unix", "uid:1000")], &have));
        assert!(entry_matches([("unix", "uid:1000"), ("unix", "gid:1000")], &have));
        assert!(!entry_matches([("unix", "uid:1000"), ("unix", "user:root")], &have));
        assert!(!entry_matches([("k8s", "uid:1000")], &have));
        assert!(!entry_matches([], &have), "an entry without selectors matches nothing");
    }
}
