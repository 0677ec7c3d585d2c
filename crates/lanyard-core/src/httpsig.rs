//! HTTP Message Signatures for workload-to-workload calls: the RFC 9421 profile of
//! draft-ietf-wimse-http-signature-06 (§3), signed with the key in the WIT's `cnf.jwk`.
//!
//! Requests cover `@method`, the target, and — when present — `content-type`,
//! `content-digest`, `authorization`, `txn-token` and `workload-identity-token`, with the
//! parameters `created`, `expires`, `nonce`, `tag="wimse-workload-to-workload"` and
//! `wimse-aud` (optionally `wimse-sign-response`). Responses cover `@status`, the server's
//! `workload-identity-token`, `content-type`/`content-digest` when present, and the
//! request's `@method;req` and target `;req`, with `wimse-req-nonce` binding them to the
//! request. `keyid` and `alg` are never used: key and algorithm come from the WIT.
//!
//! **Target components.** -06 (the newest published text) covers `@request-target`; the
//! editor's copy after WGLC issue #302 (not in any published draft yet) covers `@path` and
//! `@query` instead. Signers use [`TargetComponents::RequestTarget`] by default and can
//! switch; verifiers accept either form unless [`HttpSigPolicy::target`] pins one.
//!
//! **Choosing the signature.** The WIMSE signature is the one whose `tag` is
//! `wimse-workload-to-workload` (as #302 requires; the label is not used to select);
//! more than one such signature rejects the message.
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
