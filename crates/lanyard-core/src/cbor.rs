//! Strict CBOR (RFC 8949) for COSE, CWT and SD-CWT: a decoder that accepts only
//! well-formed, definite-length items in preferred serialization, and a deterministic
//! encoder (RFC 8949 §4.2.1).
//!
//! What the decoder refuses, each with its own [`CborErrorKind`]:
//! - indefinite-length strings, arrays and maps (draft-ietf-spice-sd-cwt §6.1 forbids them
//!   everywhere in SD-CWT and SD-KBT; Lanyard's COSE and CWT profiles too);
//! - a map that repeats a key (RFC 8949 §5.6; SD-CWT §6.4: keys compare by their preferred
//!   encoding, which is what the decoder compares, since it accepts nothing else);
//! - integer arguments, lengths and floats not in their shortest form (§4.2.1, §4.2.2);
//! - bytes after the item, truncated items, reserved and ill-formed heads (§3.3, §F);
//! - text that is not UTF-8; and input longer or deeper than [`Limits`].
//!
//! Map keys are kept in the order received (the decoder does not require sorted keys:
//! the SD-CWT draft does not, and a verifier must not reject a valid issuer over key
//! order). The encoder always sorts them bytewise by their encoding.
//!
//! **Why Lanyard has its own codec.** The crate survey in the SPICE digest (§8) found no
//! Rust CBOR crate that is both strict and able to represent SD-CWT: `ciborium` (under
//! `coset`) has no value for simple(59), so it cannot decode an SD-CWT payload;
//! `cbor4ii` has no simple values either; `cbor2` has them but silently accepts
//! indefinite lengths and duplicate keys; `minicbor` is a streaming decoder without a value
//! type or preferred-encoding checks. Each would need the strict pass written here anyway,
//! and CBOR is a small, fully specified format (this module is a few hundred lines).
//! It is not behind a cargo feature because it adds no dependency to `lanyard-core`.

mod decode;
mod diag;
mod encode;
mod value;

use std::fmt;

pub use decode::{Limits, decode, decode_with};
pub use diag::{CommentFn, DiagOptions, EmbeddedFn, to_diagnostic, to_diagnostic_pretty};
pub use encode::write_head;
pub use value::{Int, Value};

/// Major type 2 (byte string), for building heads with [`write_head`].
pub const MAJOR_BYTES: u8 = 2;

/// Why a CBOR item was refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CborErrorKind {
    /// The input ends inside an item.
    Truncated,
    /// Bytes follow the one item expected.
    TrailingBytes,
    /// An indefinite-length string, array or map.
    IndefiniteLength,
    /// An integer, length or float not in its shortest (preferred) form.
    NonPreferred,
    /// A map repeats a key.
    DuplicateKey,
    /// Arrays, maps and tags nest deeper than [`Limits::max_depth`].
    TooDeep,
    /// The input is longer than [`Limits::max_len`].
    TooLarge,
    /// A text string is not valid UTF-8.
    InvalidUtf8,
    /// Not well-formed: a reserved head, a misplaced break, a two-byte simple value below 32.
    Malformed,
}

impl CborErrorKind {
    /// The stable error code ([`crate::Error::kind`]).
    pub fn as_str(self) -> &'static str {
        match self {
            CborErrorKind::Truncated => "cbor_truncated",
            CborErrorKind::TrailingBytes => "cbor_trailing_bytes",
            CborErrorKind::IndefiniteLength => "cbor_indefinite_length",
            CborErrorKind::NonPreferred => "cbor_non_preferred",
            CborErrorKind::DuplicateKey => "cbor_duplicate_key",
            CborErrorKind::TooDeep => "cbor_too_deep",
            CborErrorKind::TooLarge => "cbor_too_large",
            CborErrorKind::InvalidUtf8 => "cbor_invalid_utf8",
            CborErrorKind::Malformed => "cbor_malformed",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            CborErrorKind::Truncated => "the input ends inside an item",
            CborErrorKind::TrailingBytes => "bytes follow the item",
            CborErrorKind::IndefiniteLength => "indefinite-length item",
            CborErrorKind::NonPreferred => "not in preferred (shortest) serialization",
            CborErrorKind::DuplicateKey => "duplicate map key",
            CborErrorKind::TooDeep => "nested too deeply",
            CborErrorKind::TooLarge => "input too large",
            CborErrorKind::InvalidUtf8 => "text string is not UTF-8",
            CborErrorKind::Malformed => "not well-formed",
        }
    }
}

/// A refused CBOR input: what was wrong and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CborError {
    /// What was wrong.
    pub kind: CborErrorKind,
    /// The byte offset of the offending item (or of the limit that was hit).
    pub offset: usize,
}

impl fmt::Display for CborError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind.describe(), self.offset)
    }
}

impl std::error::Error for CborError {}
