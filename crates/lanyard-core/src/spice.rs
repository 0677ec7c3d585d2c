//! SPICE (Secure Patterns for Internet CrEdentials): selective-disclosure CWTs with key
//! binding, OpenID Connect claims for CWTs, and GLUE organization identifiers.
//!
//! - [`sd_cwt`]: draft-ietf-spice-sd-cwt: issuing SD-CWTs, presenting them in SD-KBTs,
//!   verifying presentations.
//! - [`oidc_claims`]: draft-ietf-spice-oidc-cwt: the claim labels and a JSON↔CBOR mapping.
//! - [`glue_id`]: draft-ietf-spice-glue-id: `urn:glue:` identifiers.
//! - [`nonce`]: verifier nonces for SD-KBT `cnonce`.
//!
//! These build on [`crate::cbor`], [`crate::cose`] and [`crate::cwt`] and add no dependency
//! to `lanyard-core`, so they are not behind a cargo feature: a crate that does not call
//! them pays nothing but compile time, a few seconds.

pub mod glue_id;
pub mod nonce;
pub mod oidc_claims;
pub mod sd_cwt;
