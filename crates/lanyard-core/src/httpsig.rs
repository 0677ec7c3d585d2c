//! HTTP Message Signatures for workload-to-workload calls: the RFC 9421 profile of
//! draft-ietf-wimse-http-signature-07 (§3), signed with the key in the WIT's `cnf.jwk`.
//!
//! Requests cover `@method`, `@path`, `@query` (its value is `?` when the request has no
//! query) and — when present — `content-type`, `content-digest`, `authorization`,
//! `txn-token` and `workload-identity-token`, with the parameters `created`, `expires`,
//! `nonce`, `tag="wimse-workload-to-workload"` and `wimse-aud` (optionally
//! `wimse-sign-response`); never `@authority` (proxies rewrite it; `wimse-aud` binds the
//! recipient). Responses cover `@status`, the server's `workload-identity-token`,
//! `content-type`/`content-digest` when present, and the request's `@method;req`,
//! `@path;req` and `@query;req`, and every signed response carries `wimse-req-nonce`
//! binding it to the request. `keyid` and `alg` are never used: key and algorithm come
//! from the WIT.
//!
//! **-06 compatibility.** draft-ietf-wimse-http-signature-06 covered `@request-target`
//! instead. Verifiers refuse that form (`signature_legacy_target`) unless
//! [`HttpSigPolicy::accept_request_target`] is on; signers produce it only when asked
//! ([`TargetComponents::RequestTarget`]).
//!
//! **Choosing the signature.** The WIMSE signature is the one whose `tag` is
//! `wimse-workload-to-workload`, never chosen by label; more than one such signature
//! rejects the message (`signature_duplicate`).
//!
//! The generic RFC 9421 parts (component values, the signature base, the
//! `Signature-Input`/`Signature` dictionaries, RFC 9530 `Content-Digest`) live in
//! `message`, `base` and `digest`; the WIMSE profile in `profile`, `sign` and `verify`.

mod base;
mod digest;
mod message;
mod profile;
mod sign;
mod verify;

pub use base::{SIGNATURE, SIGNATURE_INPUT};
pub use digest::CONTENT_DIGEST;
pub use message::{RequestParts, ResponseParts};
pub use profile::{HttpSigPolicy, SignatureInfo, TargetComponents, WIMSE_LABEL, WIMSE_TAG};
pub use sign::{RequestSigning, ResponseSigning, SIGNER_FIELDS, SignedHeaders, sign_request, sign_response};
pub use verify::{
    HttpSigVerifier, SignatureCheck, VerifiedSignedMessage, request_signature_base, response_signature_base,
    verify_request_signature, verify_response_signature,
};

#[cfg(test)]
mod tests;
