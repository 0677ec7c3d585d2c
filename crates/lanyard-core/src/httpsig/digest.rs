//! `Content-Digest` (RFC 9530): computing and checking the SHA-256 digest of a body.

use sfv::{BareItem, Dictionary, ListEntry, Parser};

use super::base::err;
use crate::crypto::CryptoProvider;
use crate::error::Error;

/// `Content-Digest` (RFC 9530).
pub const CONTENT_DIGEST: &str = "Content-Digest";

/// The `Content-Digest` value for `body`: `sha-256=:<base64>:`.
pub(crate) fn content_digest(provider: &dyn CryptoProvider, body: &[u8]) -> String {
    use base64::Engine;
    let digest = provider.sha256(body);
    format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// Checks a `Content-Digest` field value against `body`. The `sha-256` member must be
/// present and match; other algorithms are ignored (Lanyard computes only SHA-256).
pub(crate) fn check_content_digest(provider: &dyn CryptoProvider, field: &str, body: &[u8]) -> Result<(), Error> {
    let dict: Dictionary = Parser::new(field).parse().map_err(|e| {
        err(
            "digest_malformed",
            format!("Content-Digest is not a structured dictionary: {e}"),
        )
    })?;
    let Some(ListEntry::Item(item)) = dict.get("sha-256") else {
        return Err(err("digest_unsupported", "Content-Digest has no sha-256 member"));
    };
    let BareItem::ByteSequence(expected) = &item.bare_item else {
        return Err(err("digest_malformed", "the sha-256 member must be a byte sequence"));
    };
    if expected.as_slice() != provider.sha256(body).as_slice() {
        return Err(err("digest_mismatch", "the body does not match Content-Digest"));
    }
    Ok(())
}
