//! JOSE: JWS compact serialization (RFC 7515), JWK and JWK Sets (RFC 7517) with RFC 7638
//! thumbprints, and the algorithm allow-list (RFC 7518, RFC 8037).
//!
//! Strict by construction: `none` and HMAC cannot be represented as an [`Algorithm`],
//! every token is size-checked before decoding, JSON objects with repeated member names
//! are rejected, and a `crit` header always rejects (no extension is understood).

pub(crate) mod base64url;
pub(crate) mod json;
mod jwk;
pub(crate) mod jws;
mod typ;

pub use crate::alg::{AlgSet, Algorithm};
pub use jwk::{Jwk, JwkSet};
pub use jws::{CompactJws, DecodedToken, JwsHeader, MAX_TOKEN_BYTES, decode_unverified, sign_compact};
pub use typ::{TokenType, TypRule};
