//! A connection carrying what was learned about its peer when it was accepted.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection and the facts established about its peer at accept time (a verified
/// client certificate, the caller's process credentials, ...), which tonic hands to
/// every request on it as its `ConnectInfo` extension.
#[derive(Debug)]
pub struct WithPeer<IO, P> {
    io: IO,
    peer: P,
}

impl<IO, P> WithPeer<IO, P> {
    /// `io`, whose peer is `peer`.
    pub fn new(io: IO, peer: P) -> WithPeer<IO, P> {
        WithPeer { io, peer }
    }

    /// What is known about the peer.
    pub fn peer(&self) -> &P {
        &self.peer
    }
}

impl<IO: AsyncRead + Unpin, P: Unpin> AsyncRead for WithPeer<IO, P> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin, P: Unpin> AsyncWrite for WithPeer<IO, P> {
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

impl<IO, P: Clone + Send + Sync + 'static> tonic::transport::server::Connected for WithPeer<IO, P> {
    type ConnectInfo = P;

    fn connect_info(&self) -> P {
        self.peer.clone()
    }
}
