//! Accepting Workload API connections: the per-uid and per-listener connection caps, the
//! handshake deadline, and pinning the calling process (see [`PeerProcess`]).

use std::sync::Arc;

use lanyard_net::{ConnectionLimiter, Guarded, ListenerLimits, PeerKey, WithPeer};
use nix::errno::Errno;
use nix::sys::socket::{getsockopt, sockopt};
use tokio::net::UnixStream;
use tokio::time::Instant;
use tonic::transport::server::{Connected, UdsConnectInfo};

use crate::attestor::workload::PeerProcess;
use crate::endpoints::h2_authority::AuthorityFix;

/// What the agent knows about a Workload API caller from its connection.
#[derive(Clone, Debug)]
pub struct WorkloadPeer {
    /// The socket's peer address and `SO_PEERCRED` credentials.
    pub uds: UdsConnectInfo,
    /// The connecting process, pinned at accept.
    pub process: PeerProcess,
}

/// An accepted Workload API connection, as tonic serves it.
pub type WorkloadConnection = WithPeer<Guarded<AuthorityFix<UnixStream>>, WorkloadPeer>;

/// Admits one accepted connection: it takes a slot for its uid on `limiter` (or is
/// closed at once), must send the HTTP/2 preface within the handshake timeout, and has
/// its calling process pinned.
pub fn admit(stream: UnixStream, limiter: &ConnectionLimiter, limits: &ListenerLimits) -> Option<WorkloadConnection> {
    let uds = stream.connect_info();
    let peer = uds.peer_cred.map_or(PeerKey::Unknown, |c| PeerKey::Uid(c.uid()));
    let permit = limiter.try_acquire(peer).ok()?;
    let process = pin_process(&stream);
    let deadline = Instant::now() + limits.handshake();
    Some(WithPeer::new(
        Guarded::new(AuthorityFix::new(stream), permit, deadline),
        WorkloadPeer { uds, process },
    ))
}

/// The pidfd of the process that connected (`SO_PEERPIDFD`).
fn pin_process(stream: &UnixStream) -> PeerProcess {
    match getsockopt(stream, sockopt::PeerPidfd) {
        Ok(fd) => PeerProcess::Pidfd(Arc::new(fd)),
        // A kernel before 6.5: only the PID checks apply.
        Err(Errno::ENOPROTOOPT | Errno::EOPNOTSUPP) => PeerProcess::Unpinned,
        // The kernel knows the option but has no live process to pin.
        Err(_) => PeerProcess::Exited,
    }
}

/// Accepts Workload API connections on `listener` and hands the admitted ones to tonic
/// through `out`, until `out` closes. Accept errors (such as running out of file
/// descriptors) pause the loop briefly instead of spinning.
pub async fn accept_loop(
    listener: tokio::net::UnixListener,
    limiter: ConnectionLimiter,
    limits: ListenerLimits,
    out: tokio::sync::mpsc::Sender<WorkloadConnection>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "Workload API: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = out.closed() => return,
        };
        if let Some(connection) = admit(stream, &limiter, &limits)
            && out.send(connection).await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::MetadataExt;
    use std::process::{Command, Stdio};

    use super::*;
    use crate::attestor::workload::unix::UnixAttestor;
    use crate::attestor::workload::{AttestError, PeerCredentials, WorkloadAttestor};

    fn credentials_of_this_process(process: PeerProcess) -> PeerCredentials {
        let me = std::fs::metadata("/proc/self").unwrap();
        PeerCredentials {
            pid: i32::try_from(std::process::id()).unwrap(),
            uid: me.uid(),
            gid: me.gid(),
            process,
        }
    }

    /// A caller that connects, hands its socket on and exits must not be attested as
    /// whatever process holds its PID afterwards. Here the "reused" PID is this test's
    /// own (alive, same user), and the pidfd pinned at accept names the exited caller.
    #[tokio::test]
    async fn a_caller_that_exited_is_refused_even_if_its_pid_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let mut caller = Command::new("python3")
            .args([
                "-c",
                "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); sys.stdin.read()",
            ])
            .arg(&path)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let pinned = pin_process(&stream);
        let PeerProcess::Pidfd(_) = &pinned else {
            // A kernel before 6.5 has no SO_PEERPIDFD: nothing to test here.
            drop(caller.stdin.take());
            caller.wait().unwrap();
            assert!(matches!(pinned, PeerProcess::Unpinned), "{pinned:?}");
            return;
        };
        assert!(!pinned.has_exited());
        let attestor = UnixAttestor::new(lanyard_crypto::provider(), false);
        // While the caller lives, attestation proceeds (here: describing this process).
        attestor
            .attest(&credentials_of_this_process(pinned.clone()), true)
            .unwrap();

        drop(caller.stdin.take());
        caller.wait().unwrap();
        assert!(pinned.has_exited());
        let err = attestor.attest(&credentials_of_this_process(pinned), true).unwrap_err();
        assert!(matches!(err, AttestError::ProcessGone { .. }), "{err:?}");
        // Without a pin (an old kernel), only the PID checks apply, as before.
        attestor
            .attest(&credentials_of_this_process(PeerProcess::Unpinned), true)
            .unwrap();
    }
}
