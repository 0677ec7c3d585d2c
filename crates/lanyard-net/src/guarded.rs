//! A connection that holds its limiter slot and must start talking in time.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::limiter::ConnectionPermit;

/// How many bytes a client must send before the handshake deadline: the length of the
/// HTTP/2 connection preface, and shorter than any real HTTP/1 request head.
pub(crate) const FIRST_BYTES: usize = 24;

/// A connection holding its [`ConnectionPermit`] (released when the connection is
/// dropped) that must deliver its first 24 bytes (the length of the HTTP/2 preface) before a deadline: a read
/// still waiting for them after the deadline fails with [`io::ErrorKind::TimedOut`],
/// which ends the connection. Afterwards it is a plain pass-through.
#[derive(Debug)]
pub struct Guarded<IO> {
    io: IO,
    _permit: ConnectionPermit,
    first_bytes: Option<(usize, Pin<Box<Sleep>>)>,
}

impl<IO> Guarded<IO> {
    /// Wraps `io`, which must deliver its first bytes before `deadline`.
    pub fn new(io: IO, permit: ConnectionPermit, deadline: Instant) -> Guarded<IO> {
        Guarded {
            io,
            _permit: permit,
            first_bytes: Some((FIRST_BYTES, Box::pin(tokio::time::sleep_until(deadline)))),
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some((remaining, _)) = &mut this.first_bytes {
                    let read = buf.filled().len() - before;
                    *remaining = remaining.saturating_sub(read);
                    if *remaining == 0 || read == 0 {
                        this.first_bytes = None;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = match &mut this.first_bytes {
                    Some((_, deadline)) => deadline.as_mut().poll(cx).is_ready(),
                    None => false,
                };
                if expired {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client did not start its request within the handshake timeout",
                    )));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Guarded<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::{ConnectionLimiter, PeerKey};

    #[tokio::test]
    async fn a_silent_client_times_out_and_a_talking_one_does_not() {
        let limiter = ConnectionLimiter::new("test", 4, 0);
        let (client, server) = tokio::io::duplex(64);
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut guarded = Guarded::new(server, limiter.try_acquire(PeerKey::Unknown).unwrap(), deadline);
        let mut buf = [0u8; 8];
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop((guarded, client));
        assert_eq!(limiter.open(), 0, "the slot is released with the connection");

        let (mut client, server) = tokio::io::duplex(64);
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut guarded = Guarded::new(server, limiter.try_acquire(PeerKey::Unknown).unwrap(), deadline);
        client.write_all(&[b'x'; FIRST_BYTES]).await.unwrap();
        let mut got = vec![0u8; FIRST_BYTES];
        guarded.read_exact(&mut got).await.unwrap();
        // Past the deadline, a quiet but started connection stays open.
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.write_all(b"later").await.unwrap();
        let mut later = [0u8; 5];
        guarded.read_exact(&mut later).await.unwrap();
        assert_eq!(&later, b"later");
    }

    #[tokio::test]
    async fn a_trickling_client_times_out_too() {
        let limiter = ConnectionLimiter::new("test", 4, 0);
        let (mut client, server) = tokio::io::duplex(64);
        let deadline = Instant::now() + Duration::from_millis(100);
        let mut guarded = Guarded::new(server, limiter.try_acquire(PeerKey::Unknown).unwrap(), deadline);
        client.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(guarded.read(&mut buf).await.unwrap(), 8);
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
