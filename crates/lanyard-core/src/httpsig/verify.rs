//! Verifying WIMSE message signatures: the sender's WIT first, then the signature's
//! parameters, coverage, `Content-Digest` and signature, then replay.

use std::sync::Arc;

use super::base::{Message, err, signature_base};
use super::digest;
use super::message::{self, RequestParts, ResponseParts};
use super::profile::{HttpSigPolicy, SignatureInfo, check_coverage, check_params, locate};
use crate::crypto::{CryptoProvider, VerifyingKey};
use crate::error::Error;
use crate::replay::ReplayCache;
use crate::time::UnixTime;
use crate::wimse::{VerifiedWit, WORKLOAD_IDENTITY_TOKEN, WitVerifier};

/// What checking one message signature needs: the sender's key (from its verified WIT),
/// the policy, the time, and a provider for the body digest.
#[derive(Clone, Copy)]
pub struct SignatureCheck<'a> {
    /// The WIT's `cnf.jwk`, parsed.
    pub key: &'a dyn VerifyingKey,
    /// Lifetime, skew and target rules.
    pub policy: &'a HttpSigPolicy,
    /// The verification time.
    pub now: UnixTime,
    /// Hashes the body for `Content-Digest`.
    pub provider: &'a dyn CryptoProvider,
}

/// Verifies the WIMSE signature of `msg`; `body` must match `Content-Digest`.
fn verify_message(msg: Message<'_, '_>, body: &[u8], check: &SignatureCheck<'_>) -> Result<SignatureInfo, Error> {
    let (policy, now, provider) = (check.policy, check.now, check.provider);
    let found = locate(msg.headers())?;
    let is_request = matches!(msg, Message::Request(_));
    let mut info = check_params(&found, is_request, policy, now)?;
    info.target = check_coverage(msg, &found.list, policy)?;
    let digest = message::field_value(msg.headers(), "content-digest")?;
    match (&digest, body.is_empty()) {
        (None, false) => {
            return Err(err(
                "digest_missing",
                "a message with a body must carry a covered Content-Digest",
            ));
        }
        (Some(d), _) => digest::check_content_digest(provider, d, body)?,
        (None, true) => {}
    }
    let base = signature_base(msg, &found.list)?;
    check.key.verify(base.as_bytes(), &found.signature)?;
    Ok(info)
}

/// Verifies a request's WIMSE signature with an already-verified WIT's key, for
/// `audience` (this service, from trusted configuration). Does not check replay.
pub fn verify_request_signature(
    request: &RequestParts<'_>,
    body: &[u8],
    audience: &str,
    check: &SignatureCheck<'_>,
) -> Result<SignatureInfo, Error> {
    let info = verify_message(Message::Request(request), body, check)?;
    match info.audience.as_deref() {
        Some(a) if a == audience => Ok(info),
        other => Err(Error::WrongAudience {
            expected: audience.to_owned(),
            found: other.map(str::to_owned).into_iter().collect(),
        }),
    }
}

/// Verifies a response's WIMSE signature with the server WIT's key; when
/// `request_nonce` is given, `wimse-req-nonce` must equal it.
pub fn verify_response_signature(
    response: &ResponseParts<'_>,
    body: &[u8],
    request: &RequestParts<'_>,
    request_nonce: Option<&str>,
    check: &SignatureCheck<'_>,
) -> Result<SignatureInfo, Error> {
    let info = verify_message(Message::Response(response, request), body, check)?;
    match request_nonce {
        Some(expected) if info.request_nonce.as_deref() != Some(expected) => Err(err(
            "signature_request_nonce",
            "wimse-req-nonce does not match the nonce of our request",
        )),
        _ => Ok(info),
    }
}

/// Rebuilds the signature base of a request's WIMSE signature, for debugging a captured
/// request (nothing is verified).
pub fn request_signature_base(request: &RequestParts<'_>) -> Result<String, Error> {
    signature_base(Message::Request(request), &locate(&request.headers)?.list)
}

/// Rebuilds the signature base of a response's WIMSE signature (nothing is verified).
pub fn response_signature_base(response: &ResponseParts<'_>, request: &RequestParts<'_>) -> Result<String, Error> {
    signature_base(Message::Response(response, request), &locate(&response.headers)?.list)
}

/// A verified, signed message: who signed it and the signature's parameters.
#[derive(Clone, Debug)]
pub struct VerifiedSignedMessage {
    /// The sender's verified WIT.
    pub wit: Arc<VerifiedWit>,
    /// The signature's parameters.
    pub signature: SignatureInfo,
}

/// Verifies WIT-authenticated, signed requests and responses, with replay protection
/// on nonces per sender.
#[derive(Clone, Debug)]
pub struct HttpSigVerifier {
    wit: WitVerifier,
    policy: HttpSigPolicy,
    replay: Arc<dyn ReplayCache>,
}

impl HttpSigVerifier {
    /// A verifier checking WITs with `wit` and recording nonces in `replay`.
    pub fn new(wit: WitVerifier, policy: HttpSigPolicy, replay: Arc<dyn ReplayCache>) -> HttpSigVerifier {
        HttpSigVerifier { wit, policy, replay }
    }

    /// The WIT verifier.
    pub fn wit_verifier(&self) -> &WitVerifier {
        &self.wit
    }

    fn sender_wit(&self, headers: &[(&str, &[u8])], now: UnixTime) -> Result<Arc<VerifiedWit>, Error> {
        let mut wits = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(WORKLOAD_IDENTITY_TOKEN));
        let (Some((_, wit)), None) = (wits.next(), wits.next()) else {
            return Err(Error::Header {
                name: WORKLOAD_IDENTITY_TOKEN,
                reason: "must appear exactly once",
            });
        };
        let wit = std::str::from_utf8(wit).map_err(|_| Error::Header {
            name: WORKLOAD_IDENTITY_TOKEN,
            reason: "value is not visible ASCII",
        })?;
        // The WIT is checked in full before the message signature (-06 §3).
        self.wit.verify(wit.trim(), now)
    }

    fn check<'a>(&'a self, wit: &'a VerifiedWit, now: UnixTime) -> SignatureCheck<'a> {
        SignatureCheck {
            key: wit.pop_key().as_ref(),
            policy: &self.policy,
            now,
            provider: self.wit.store().provider().as_ref(),
        }
    }

    fn record(&self, wit: &VerifiedWit, info: &SignatureInfo, now: UnixTime) -> Result<(), Error> {
        self.replay.check_and_record(
            wit.sub.as_str(),
            &info.nonce,
            info.expires.plus(self.policy.leeway),
            now,
        )
    }

    /// Verifies a signed request addressed to `audience` at `now`.
    pub fn verify_request(
        &self,
        request: &RequestParts<'_>,
        body: &[u8],
        audience: &str,
        now: UnixTime,
    ) -> Result<VerifiedSignedMessage, Error> {
        let wit = self.sender_wit(&request.headers, now)?;
        let signature = verify_request_signature(request, body, audience, &self.check(&wit, now))?;
        self.record(&wit, &signature, now)?;
        Ok(VerifiedSignedMessage { wit, signature })
    }

    /// Verifies a signed response to `request` (whose signature nonce was `request_nonce`).
    pub fn verify_response(
        &self,
        response: &ResponseParts<'_>,
        body: &[u8],
        request: &RequestParts<'_>,
        request_nonce: &str,
        now: UnixTime,
    ) -> Result<VerifiedSignedMessage, Error> {
        let wit = self.sender_wit(&response.headers, now)?;
        let signature =
            verify_response_signature(response, body, request, Some(request_nonce), &self.check(&wit, now))?;
        self.record(&wit, &signature, now)?;
        Ok(VerifiedSignedMessage { wit, signature })
    }
}
