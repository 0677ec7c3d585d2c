//! Makes the Workload API accept gRPC C-core clients (Python `grpcio`, grpc-java, ...).
//!
//! Over a Unix socket, gRPC C-core sends the socket path, percent-encoded, as the HTTP/2
//! `:authority` (e.g. `tmp%2Fagent%2Fapi.sock`). That is a valid URI reg-name (RFC 3986
//! §3.2.2), but the HTTP/2 server under tonic (hyperium `h2`, with `http`'s `Authority`
//! parser) refuses `%` in a host and resets every such request with PROTOCOL_ERROR, so
//! py-spiffe could not talk to the agent at all (hyperium/h2#487). SPIRE's Go agent
//! accepts it.
//!
//! [`AuthorityFix`] wraps each accepted connection and rewrites the client→agent byte
//! stream: the connection preface and every frame pass unchanged, except HEADERS (and
//! their CONTINUATION frames), whose header block is decoded with HPACK (RFC 7541), gets
//! an `:authority` that does not parse replaced by `localhost` (what grpc-go and tonic
//! clients send over Unix sockets; the Workload API ignores it), and is encoded again. All
//! blocks are re-encoded, so the agent's HPACK decoder follows this adapter's encoder and
//! the client's compression state never leaks through. The agent→client direction is
//! untouched. Frames follow RFC 9113 §4.1 and §6.2, §6.10.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The largest frame the agent's HTTP/2 server accepts by default (SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: usize = 16_384;
/// The largest header block accepted (gRPC metadata is small; this bounds memory).
const MAX_BLOCK: usize = 256 * 1024;
/// What replaces an `:authority` the server would refuse.
const REPLACEMENT_AUTHORITY: &[u8] = b"localhost";
/// The HPACK dynamic table size the agent's HTTP/2 server allows (the default of
/// SETTINGS_HEADER_TABLE_SIZE, which it does not change); larger updates are refused.
const MAX_TABLE_SIZE: usize = 4096;
/// The largest decoded header list accepted, counted as RFC 9113 §6.5.2 does (name +
/// value + 32 per field). gRPC requests carry a few hundred bytes.
const MAX_HEADER_LIST: usize = 64 * 1024;

/// A HEADERS frame waiting for its CONTINUATION frames.
struct PendingHeaders {
    stream_id: [u8; 4],
    flags: u8,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
}

/// A connection whose client→server HTTP/2 header blocks are normalized; see the module
/// documentation.
pub struct AuthorityFix<S> {
    inner: S,
    /// Bytes read from the client and not yet processed.
    input: Vec<u8>,
    /// Processed bytes not yet handed to the server.
    output: Vec<u8>,
    preface_left: usize,
    pending: Option<PendingHeaders>,
    decoder: hpack::Decoder<'static>,
    encoder: hpack::Encoder<'static>,
}

impl<S> AuthorityFix<S> {
    /// Wraps a freshly accepted connection.
    pub fn new(inner: S) -> AuthorityFix<S> {
        AuthorityFix {
            inner,
            input: Vec::new(),
            output: Vec::new(),
            preface_left: PREFACE_LEN,
            pending: None,
            decoder: hpack::Decoder::new(),
            encoder: hpack::Encoder::new(),
        }
    }

    /// Moves whatever complete frames `input` holds to `output`, rewriting header blocks.
    fn process(&mut self) -> io::Result<()> {
        if self.preface_left > 0 {
            let n = self.preface_left.min(self.input.len());
            self.output.extend(self.input.drain(..n));
            self.preface_left -= n;
            if self.preface_left > 0 {
                return Ok(());
            }
        }
        while self.input.len() >= FRAME_HEADER_LEN {
            let length =
                usize::from(self.input[0]) << 16 | usize::from(self.input[1]) << 8 | usize::from(self.input[2]);
            if self.input.len() < FRAME_HEADER_LEN + length {
                break;
            }
            let frame: Vec<u8> = self.input.drain(..FRAME_HEADER_LEN + length).collect();
            self.frame(&frame)?;
        }
        Ok(())
    }

    fn frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let (kind, flags) = (frame[3], frame[4]);
        let stream_id = [frame[5], frame[6], frame[7], frame[8]];
        let payload = &frame[FRAME_HEADER_LEN..];
        match kind {
            HEADERS if self.pending.is_none() => {
                let (priority, fragment) = headers_payload(flags, payload)?;
                self.pending = Some(PendingHeaders {
                    stream_id,
                    flags,
                    priority,
                    block: fragment.to_vec(),
                });
            }
            CONTINUATION if self.pending.as_ref().is_some_and(|p| p.stream_id == stream_id) => {
                let Some(pending) = self.pending.as_mut() else {
                    return Ok(());
                };
                if pending.block.len() + payload.len() > MAX_BLOCK {
                    return Err(invalid("header block too large"));
                }
                pending.block.extend_from_slice(payload);
                pending.flags |= flags & END_HEADERS;
            }
            // Anything else (including a protocol violation, which the server reports).
            _ => {
                if let Some(pending) = self.pending.take() {
                    self.emit_headers(pending)?;
                }
                self.output.extend_from_slice(frame);
                return Ok(());
            }
        }
        if self.pending.as_ref().is_some_and(|p| p.flags & END_HEADERS != 0)
            && let Some(pending) = self.pending.take()
        {
            self.emit_headers(pending)?;
        }
        Ok(())
    }

    /// Decodes, fixes, re-encodes and writes one complete (or abandoned) header block.
    fn emit_headers(&mut self, pending: PendingHeaders) -> io::Result<()> {
        check_block(&pending.block)?;
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut list_size = 0usize;
        let decoder = &mut self.decoder;
        // The checks above rule out the inputs the decoder is known to panic on; a panic
        // anyway ends this connection, not the agent.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decoder.decode_with_cb(&pending.block, |name, value| {
                // Count before copying: references to the dynamic table are cheap to
                // send and must not turn into large allocations.
                list_size = list_size.saturating_add(name.len() + value.len() + 32);
                if list_size <= MAX_HEADER_LIST {
                    fields.push((name.into_owned(), value.into_owned()));
                }
            })
        }));
        match decoded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(invalid(format!("HPACK: {e:?}"))),
            Err(_) => return Err(invalid("HPACK: undecodable header block")),
        }
        if list_size > MAX_HEADER_LIST {
            return Err(invalid("header list too large"));
        }
        for (name, value) in &mut fields {
            if name.as_slice() == b":authority" && http::uri::Authority::try_from(value.as_slice()).is_err() {
                *value = REPLACEMENT_AUTHORITY.to_vec();
            }
        }
        let block = self
            .encoder
            .encode(fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));

        // HEADERS (keeping END_STREAM and the priority fields), then CONTINUATIONs.
        let mut first = Vec::new();
        let mut flags = pending.flags & END_STREAM;
        if let Some(priority) = pending.priority {
            flags |= PRIORITY;
            first.extend_from_slice(&priority);
        }
        let room = MAX_FRAME - first.len();
        let (head, mut rest) = block.split_at(block.len().min(room));
        first.extend_from_slice(head);
        if rest.is_empty() {
            flags |= END_HEADERS;
        }
        self.write_frame(HEADERS, flags, pending.stream_id, &first);
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
            rest = tail;
            let flags = if rest.is_empty() { END_HEADERS } else { 0 };
            self.write_frame(CONTINUATION, flags, pending.stream_id, chunk);
        }
        Ok(())
    }

    fn write_frame(&mut self, kind: u8, flags: u8, stream_id: [u8; 4], payload: &[u8]) {
        let length = payload.len();
        // `length` is at most MAX_FRAME, so it fits the 24-bit field.
        self.output
            .extend_from_slice(&[(length >> 16) as u8, (length >> 8) as u8, length as u8, kind, flags]);
        self.output.extend_from_slice(&stream_id);
        self.output.extend_from_slice(payload);
    }
}

/// Walks a header block's representations (RFC 7541 §6) without decoding them: every
/// integer and string length must fit the block, and dynamic table size updates may only
/// open the block (§4.2) and may not exceed [`MAX_TABLE_SIZE`].
fn check_block(block: &[u8]) -> io::Result<()> {
    let mut rest = block;
    let mut fields_seen = false;
    while let Some(&first) = rest.first() {
        if first & 0x80 != 0 {
            // Indexed field.
            rest = hpack_integer(rest, 7)?.1;
            fields_seen = true;
        } else if first & 0xe0 == 0x20 {
            // Dynamic table size update.
            let (size, tail) = hpack_integer(rest, 5)?;
            if fields_seen || size > MAX_TABLE_SIZE {
                return Err(invalid("HPACK: dynamic table size update refused"));
            }
            rest = tail;
        } else {
            // Literal field: with incremental indexing (6-bit name index), otherwise 4-bit.
            let prefix = if first & 0xc0 == 0x40 { 6 } else { 4 };
            let (name_index, tail) = hpack_integer(rest, prefix)?;
            rest = tail;
            if name_index == 0 {
                rest = hpack_string(rest)?;
            }
            rest = hpack_string(rest)?;
            fields_seen = true;
        }
    }
    Ok(())
}

/// An HPACK integer with an `prefix`-bit prefix (RFC 7541 §5.1), at most 2^24, and what
/// follows it.
fn hpack_integer(bytes: &[u8], prefix: u8) -> io::Result<(usize, &[u8])> {
    let truncated = || invalid("HPACK: truncated integer");
    let (&first, mut rest) = bytes.split_first().ok_or_else(truncated)?;
    let max = (1usize << prefix) - 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok((value, rest));
    }
    let mut shift = 0u32;
    loop {
        let (&byte, tail) = rest.split_first().ok_or_else(truncated)?;
        rest = tail;
        value += usize::from(byte & 0x7f) << shift;
        if value > 1 << 24 {
            return Err(invalid("HPACK: integer too large"));
        }
        if byte & 0x80 == 0 {
            return Ok((value, rest));
        }
        shift += 7;
        // Continuation bytes that add nothing (0x80) could otherwise push the shift past
        // the width of usize; 2^24 needs at most four of them.
        if shift > 28 {
            return Err(invalid("HPACK: integer too long"));
        }
    }
}

/// Skips an HPACK string literal (§5.2), checking that its length fits.
fn hpack_string(bytes: &[u8]) -> io::Result<&[u8]> {
    let (length, rest) = hpack_integer(bytes, 7)?;
    if length > rest.len() {
        return Err(invalid("HPACK: string longer than the block"));
    }
    Ok(&rest[length..])
}

/// The priority fields and the header block fragment of a HEADERS payload (padding removed).
fn headers_payload(flags: u8, payload: &[u8]) -> io::Result<(Option<[u8; 5]>, &[u8])> {
    let mut body = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&n, rest) = body
            .split_first()
            .ok_or_else(|| invalid("HEADERS without its pad length"))?;
        pad = usize::from(n);
        body = rest;
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        if body.len() < 5 {
            return Err(invalid("HEADERS without its priority fields"));
        }
        let (fields, rest) = body.split_at(5);
        priority = Some([fields[0], fields[1], fields[2], fields[3], fields[4]]);
        body = rest;
    }
    if pad > body.len() {
        return Err(invalid("HEADERS padding longer than the frame"));
    }
    Ok((priority, &body[..body.len() - pad]))
}

fn invalid(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.into())
}

/// Feeds `input` (what a client sends, preface first) through [`AuthorityFix`] in reads of
/// at most `step` bytes, exactly as a connection would, and returns what the server reads,
/// or the error that ends the connection. The entry point of the fuzz target
/// `fuzz/fuzz_targets/h2_authority.rs`; not part of the agent's API.
#[doc(hidden)]
pub fn fuzz_rewrite(input: &[u8], step: usize) -> io::Result<Vec<u8>> {
    /// A client that has sent `rest`, read back in pieces of at most `step` bytes.
    struct Pieces<'a> {
        rest: &'a [u8],
        step: usize,
    }

    impl AsyncRead for Pieces<'_> {
        fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let n = self.rest.len().min(self.step.max(1)).min(buf.remaining());
            let (piece, rest) = self.rest.split_at(n);
            buf.put_slice(piece);
            self.rest = rest;
            Poll::Ready(Ok(()))
        }
    }

    let mut fixed = AuthorityFix::new(Pieces { rest: input, step });
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut read = ReadBuf::new(&mut chunk);
        match Pin::new(&mut fixed).poll_read(&mut cx, &mut read) {
            Poll::Ready(Ok(())) if read.filled().is_empty() => return Ok(out),
            Poll::Ready(Ok(())) => out.extend_from_slice(read.filled()),
            Poll::Ready(Err(e)) => return Err(e),
            // `Pieces` is always ready, so the adapter is too.
            Poll::Pending => return Err(io::Error::other("the in-memory client was not ready")),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.output.is_empty() {
                let n = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output[..n]);
                this.output.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // End of stream: whatever is incomplete is dropped, as the server would.
                return Poll::Ready(Ok(()));
            }
            this.input.extend_from_slice(read.filled());
            if this.input.len() > MAX_BLOCK + MAX_FRAME + FRAME_HEADER_LEN && this.output.is_empty() {
                return Poll::Ready(Err(invalid("frame too large")));
            }
            this.process()?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: Connected> Connected for AuthorityFix<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Parses frames out of `bytes` (after the preface).
    fn frames(bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = &bytes[PREFACE.len()..];
        while !rest.is_empty() {
            let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
            let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
            out.push((rest[3], rest[4], stream, rest[9..9 + len].to_vec()));
            rest = &rest[9 + len..];
        }
        out
    }

    /// Feeds `input` through the adapter in pieces of `step` bytes; returns the output.
    async fn run(input: Vec<u8>, step: usize) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for piece in input.chunks(step) {
                client.write_all(piece).await.unwrap();
            }
            client.shutdown().await.unwrap();
        });
        let mut fixed = AuthorityFix::new(server);
        let mut out = Vec::new();
        fixed.read_to_end(&mut out).await.unwrap();
        writer.await.unwrap();
        out
    }

    fn request(encoder: &mut hpack::Encoder<'_>, authority: &[u8], extra: usize) -> Vec<u8> {
        let big = vec![b'x'; extra];
        let mut fields: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", b"/SpiffeWorkloadAPI/FetchJWTSVID"),
            (b":authority", authority),
            (b"workload.spiffe.io", b"true"),
        ];
        if extra > 0 {
            fields.push((b"x-big", &big));
        }
        encoder.encode(fields)
    }

    fn decode(decoder: &mut hpack::Decoder<'_>, block: &[u8]) -> Vec<(String, String)> {
        decoder
            .decode(block)
            .unwrap()
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn rewrites_a_percent_encoded_authority_and_keeps_everything_else() {
        let mut client_encoder = hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[])); // SETTINGS
        // Stream 1: a HEADERS split over a CONTINUATION, padded, with priority.
        let block = request(&mut client_encoder, b"tmp%2Fagent%2Fapi.sock", 0);
        let (a, b) = block.split_at(block.len() / 2);
        let mut payload = vec![3u8]; // pad length
        payload.extend_from_slice(&[0, 0, 0, 0, 15]); // priority
        payload.extend_from_slice(a);
        payload.extend_from_slice(&[0, 0, 0]); // padding
        input.extend(frame(HEADERS, PADDED | PRIORITY, 1, &payload));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        input.extend(frame(0x0, END_STREAM, 1, b"grpc-body")); // DATA
        // Stream 3: the same authority, now from the client's dynamic table; END_STREAM.
        let block = request(&mut client_encoder, b"tmp%2Fagent%2Fapi.sock", 0);
        input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &block));
        // Stream 5: a valid authority is kept; a large block is split at 16 KiB.
        let block = request(&mut client_encoder, b"localhost:1234", 40_000);
        input.extend(frame(HEADERS, END_HEADERS, 5, &block));

        for step in [1, 7, 4096] {
            let out = run(input.clone(), step).await;
            assert!(out.starts_with(PREFACE));
            let frames = frames(&out);
            let mut server_decoder = hpack::Decoder::new();
            let kinds: Vec<(u8, u32)> = frames.iter().map(|f| (f.0, f.2)).collect();
            assert_eq!(
                kinds,
                [
                    (0x4, 0),
                    (HEADERS, 1),
                    (0x0, 1),
                    (HEADERS, 3),
                    (HEADERS, 5),
                    (CONTINUATION, 5),
                    (CONTINUATION, 5)
                ]
            );
            // Stream 1: priority kept, padding dropped, one frame, authority replaced.
            let (_, flags, _, payload) = &frames[1];
            assert_eq!(*flags, PRIORITY | END_HEADERS);
            assert_eq!(&payload[..5], &[0, 0, 0, 0, 15]);
            let fields = decode(&mut server_decoder, &payload[5..]);
            assert!(
                fields.contains(&(":authority".into(), "localhost".into())),
                "{fields:?}"
            );
            assert!(fields.contains(&("workload.spiffe.io".into(), "true".into())));
            assert_eq!(frames[2].3, b"grpc-body");
            // Stream 3.
            assert_eq!(frames[3].1, END_HEADERS | END_STREAM);
            let fields = decode(&mut server_decoder, &frames[3].3);
            assert!(
                fields.contains(&(":authority".into(), "localhost".into())),
                "{fields:?}"
            );
            // Stream 5: split, reassembled, valid authority untouched.
            assert_eq!(frames[4].1, 0);
            assert!(frames[4].3.len() <= MAX_FRAME);
            assert_eq!(frames[6].1, END_HEADERS);
            let block: Vec<u8> = frames[4..].iter().flat_map(|f| f.3.clone()).collect();
            let fields = decode(&mut server_decoder, &block);
            assert!(
                fields.contains(&(":authority".into(), "localhost:1234".into())),
                "{fields:?}"
            );
            assert!(fields.iter().any(|(n, v)| n == "x-big" && v.len() == 40_000));
        }
    }

    #[tokio::test]
    async fn the_fuzz_entry_reads_what_a_connection_reads() {
        let mut encoder = hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[]));
        let block = request(&mut encoder, b"tmp%2Fagent%2Fapi.sock", 0);
        let (a, b) = block.split_at(block.len() / 2);
        input.extend(frame(HEADERS, 0, 1, a));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, b));
        input.extend(frame(0x0, END_STREAM, 1, b"body"));
        for step in [1, 5, 4096] {
            assert_eq!(fuzz_rewrite(&input, step).unwrap(), run(input.clone(), step).await);
        }
        let mut bad = PREFACE.to_vec();
        bad.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0xff, 0xff, 0xff]));
        assert_eq!(fuzz_rewrite(&bad, 3).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_small_block_expanding_to_a_huge_header_list_is_refused() {
        // One 4 KiB header in the dynamic table, then a block of references to it.
        let mut encoder = hpack::Encoder::new();
        let big = vec![b'v'; 4000];
        let first = encoder.encode([(&b"x-big"[..], &big[..])]);
        let references = vec![0x80 | 62u8; 20_000];
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &first));
        for chunk in references.chunks(MAX_FRAME) {
            input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, chunk));
        }
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(&input).await.unwrap();
        client.shutdown().await.unwrap();
        let mut fixed = AuthorityFix::new(server);
        let mut out = Vec::new();
        let err = fixed.read_to_end(&mut out).await.unwrap_err();
        assert!(err.to_string().contains("header list too large"), "{err}");
        assert!(out.len() < 64 * 1024, "nothing large was produced: {}", out.len());
    }

    #[tokio::test]
    async fn malformed_header_blocks_end_the_connection_without_panicking() {
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0xff, 0xff, 0xff]));
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(&input).await.unwrap();
        client.shutdown().await.unwrap();
        let mut fixed = AuthorityFix::new(server);
        let mut out = Vec::new();
        let err = fixed.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Inputs the HPACK decoder would panic on or blow up with.
        assert!(check_block(&[0x3f]).is_err(), "truncated size update");
        assert!(check_block(&[0x3f, 0xe1, 0x1f]).is_ok(), "table size 4096");
        assert!(check_block(&[0x3f, 0xe2, 0x1f]).is_err(), "table size above 4096");
        assert!(check_block(&[0x82, 0x20]).is_err(), "size update after a field");
        assert!(check_block(&[0x3f, 0xe1, 0x1f][..2]).is_err());
        assert!(
            check_block(&[0x40, 0x05, b'a']).is_err(),
            "string longer than the block"
        );
        assert!(
            check_block(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err(),
            "integer overflow"
        );
        assert!(check_block(&[0x20, 0x82]).is_ok(), "size update to 0, then a field");
        // Bad padding and priority fields too.
        assert!(headers_payload(PADDED, &[]).is_err());
        assert!(headers_payload(PADDED, &[9, 1, 2]).is_err());
        assert!(headers_payload(PRIORITY, &[0, 0]).is_err());
    }
}
