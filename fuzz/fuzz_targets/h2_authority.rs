//! The agent's HTTP/2 header-block rewriter (`lanyard_agent::endpoints::h2_authority`),
//! which reads the bytes any local process sends to the Workload API socket.
//!
//! Input: one byte choosing the read size (1 to 256 bytes per read, so frames and blocks
//! arrive split everywhere), then the client's byte stream (preface first). Besides "no
//! panic" (the rewriter catches a panic of the HPACK decoder, but libFuzzer aborts on any
//! panic, so a decoder panic the rewriter's checks do not rule out is found too):
//!
//! - the preface passes unchanged, and the output is whole frames;
//! - when the client's header blocks are well sequenced (HEADERS, then CONTINUATIONs of
//!   the same stream up to END_HEADERS, nothing in between), the server sees the same
//!   events in the same order: every other frame byte for byte, and every header block
//!   with the same stream, END_STREAM, priority and fields (decoded with a decoder that
//!   follows the rewriter's encoder), except that an `:authority` the `http` crate refuses
//!   becomes `localhost`; and every `:authority` the server sees parses.
#![no_main]

use lanyard_agent::endpoints::h2_authority::fuzz_rewrite;
use libfuzzer_sys::fuzz_target;

const PREFACE_LEN: usize = 24;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// One frame: type, flags, stream, payload.
type Frame<'a> = (u8, u8, [u8; 4], &'a [u8]);

/// What the server acts on: a complete header block or any other frame.
#[derive(Debug, PartialEq)]
enum Event {
    Block {
        stream: [u8; 4],
        end_stream: bool,
        priority: Option<Vec<u8>>,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Other(u8, u8, [u8; 4], Vec<u8>),
}

/// The complete frames at the start of `bytes`, and whether bytes are left over.
fn frames(mut bytes: &[u8]) -> (Vec<Frame<'_>>, bool) {
    let mut out = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        if bytes.len() < 9 + len {
            break;
        }
        out.push((
            bytes[3],
            bytes[4],
            [bytes[5], bytes[6], bytes[7], bytes[8]],
            &bytes[9..9 + len],
        ));
        bytes = &bytes[9 + len..];
    }
    (out, !bytes.is_empty())
}

/// The priority fields and header block fragment of a HEADERS payload (RFC 9113 §6.2).
fn headers_fragment(flags: u8, payload: &[u8]) -> Option<(Option<Vec<u8>>, &[u8])> {
    let mut body = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&n, rest) = body.split_first()?;
        pad = usize::from(n);
        body = rest;
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        if body.len() < 5 {
            return None;
        }
        priority = Some(body[..5].to_vec());
        body = &body[5..];
    }
    Some((priority, body.get(..body.len().checked_sub(pad)?)?))
}

/// The events of a frame sequence whose header blocks are well sequenced, decoding each
/// block with `decoder`; `None` when a block is interrupted or a CONTINUATION stands
/// alone. A block still open at the end is left out (the rewriter drops it too).
fn events(frames: &[Frame<'_>], decoder: &mut hpack::Decoder<'_>) -> Option<Vec<Event>> {
    let mut out = Vec::new();
    let mut open: Option<([u8; 4], u8, Option<Vec<u8>>, Vec<u8>)> = None;
    for &(kind, flags, stream, payload) in frames {
        match (kind, open.as_mut()) {
            (HEADERS, None) => {
                let (priority, fragment) = headers_fragment(flags, payload)?;
                open = Some((stream, flags, priority, fragment.to_vec()));
            }
            (CONTINUATION, Some(block)) if block.0 == stream => {
                block.1 |= flags & END_HEADERS;
                block.3.extend_from_slice(payload);
            }
            (HEADERS | CONTINUATION, _) | (_, Some(_)) => return None,
            (_, None) => out.push(Event::Other(kind, flags, stream, payload.to_vec())),
        }
        if let Some((stream, flags, priority, block)) = open.take_if(|b| b.1 & END_HEADERS != 0) {
            let fields = decoder.decode(&block).ok()?;
            out.push(Event::Block {
                stream,
                end_stream: flags & END_STREAM != 0,
                priority,
                fields,
            });
        }
    }
    Some(out)
}

fn authority_is_valid(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let Ok(out) = fuzz_rewrite(input, usize::from(step) + 1) else {
        return;
    };
    let preface = input.len().min(PREFACE_LEN);
    assert_eq!(
        out.get(..preface),
        Some(&input[..preface]),
        "the preface passes unchanged"
    );
    let (sent, _) = frames(&input[preface..]);
    let (seen, leftover) = frames(&out[preface..]);
    assert!(!leftover, "the server reads whole frames");

    // The client's blocks, decoded as the rewriter decoded them (it succeeded on every
    // one, so this decoder does too).
    let Some(client) = events(&sent, &mut hpack::Decoder::new()) else {
        return;
    };
    let server =
        events(&seen, &mut hpack::Decoder::new()).expect("the rewriter's blocks are well sequenced and decode");
    let expected: Vec<Event> = client
        .into_iter()
        .map(|event| match event {
            Event::Block {
                stream,
                end_stream,
                priority,
                mut fields,
            } => {
                for (name, value) in &mut fields {
                    if name.as_slice() == b":authority" && !authority_is_valid(value) {
                        *value = b"localhost".to_vec();
                    }
                }
                Event::Block {
                    stream,
                    end_stream,
                    priority,
                    fields,
                }
            }
            other => other,
        })
        .collect();
    assert_eq!(server, expected, "the server sees the client's frames, authority fixed");
    for event in &server {
        if let Event::Block { fields, .. } = event {
            for (name, value) in fields {
                assert!(name.as_slice() != b":authority" || authority_is_valid(value));
            }
        }
    }
});
