//! Signing requests and responses under the WIMSE profile (draft-ietf-wimse-http-signature-07),
//! with the workload key of a WIT. Every signed response carries `wimse-req-nonce`.

use sfv::BareItem;

use super::base::{Component, Draft, Message, err, finish_signing, sf_string};
use super::digest::{self, CONTENT_DIGEST};
use super::message::{self, RequestParts, ResponseParts};
use super::profile::{REQUEST_FIELDS, RESPONSE_FIELDS, TargetComponents, WIMSE_LABEL, WIMSE_TAG, target_components};
use crate::crypto::{CryptoProvider, SigningKey};
use crate::error::Error;
use crate::jose::base64url;
use crate::time::UnixTime;
use crate::wimse::WORKLOAD_IDENTITY_TOKEN;

/// Options for signing a request.
#[derive(Clone, Copy, Debug)]
pub struct RequestSigning<'a> {
    /// The caller's WIT (sent in `Workload-Identity-Token` and covered).
    pub wit: &'a str,
    /// `wimse-aud`: the target URI without query or fragment, or an agreed audience.
    pub audience: &'a str,
    /// `expires - created`, in seconds.
    pub lifetime: u64,
    /// Ask the server to sign its response (`wimse-sign-response`).
    pub sign_response: bool,
    /// How the target is covered.
    pub target: TargetComponents,
}

/// Options for signing a response.
#[derive(Clone, Copy, Debug)]
pub struct ResponseSigning<'a> {
    /// The server's WIT.
    pub wit: &'a str,
    /// The `nonce` of the request being answered (sent as `wimse-req-nonce`).
    pub request_nonce: &'a str,
    /// `expires - created`, in seconds.
    pub lifetime: u64,
    /// How the request target is covered: the form the request used
    /// ([`SignatureInfo::target`](super::SignatureInfo::target)).
    pub target: TargetComponents,
}

/// Header fields to add to a message so that it is signed: `Workload-Identity-Token`,
/// `Content-Digest` (when there is a body), `Signature-Input` and `Signature`.
#[derive(Clone, Debug)]
pub struct SignedHeaders {
    /// (name, value) pairs to set on the message, replacing any existing ones.
    pub headers: Vec<(&'static str, String)>,
    /// The signature's `nonce` (a client keeps it to check `wimse-req-nonce`).
    pub nonce: String,
}

/// The fields [`sign_request`]/[`sign_response`] set (lowercase); a message's own values for
/// them are replaced, so senders remove them before adding the signer's.
pub const SIGNER_FIELDS: [&str; 4] = [
    "workload-identity-token",
    "content-digest",
    "signature-input",
    "signature",
];
fn with_signer_fields<'a>(
    headers: &[(&'a str, &'a [u8])],
    added: &'a [(&'static str, String)],
) -> Vec<(&'a str, &'a [u8])> {
    headers
        .iter()
        .filter(|(n, _)| !SIGNER_FIELDS.iter().any(|f| n.eq_ignore_ascii_case(f)))
        .copied()
        .chain(added.iter().map(|(n, v)| (*n, v.as_bytes())))
        .collect()
}

fn time_params(now: UnixTime, lifetime: u64, nonce: &str) -> Result<Vec<(&'static str, BareItem)>, Error> {
    let int = |v: u64| {
        i64::try_from(v)
            .ok()
            .and_then(|v| sfv::Integer::try_from(v).ok())
            .map(BareItem::Integer)
            .ok_or_else(|| err("signature_params", "time out of range"))
    };
    Ok(vec![
        ("created", int(now.as_secs())?),
        ("expires", int(now.plus(lifetime).as_secs())?),
        ("nonce", sf_string(nonce)?),
        ("tag", sf_string(WIMSE_TAG)?),
    ])
}

fn new_nonce(provider: &dyn CryptoProvider) -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    provider.fill_random(&mut bytes)?;
    Ok(base64url::encode(&bytes))
}

/// Signs a request with the workload key of `opts.wit` at `now`.
///
/// The returned headers replace any `Workload-Identity-Token`, `Content-Digest`,
/// `Signature-Input` and `Signature` the request had.
pub fn sign_request(
    key: &dyn SigningKey,
    request: &RequestParts<'_>,
    body: &[u8],
    opts: &RequestSigning<'_>,
    now: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<SignedHeaders, Error> {
    let mut added = vec![(WORKLOAD_IDENTITY_TOKEN, opts.wit.to_owned())];
    if !body.is_empty() {
        added.push((CONTENT_DIGEST, digest::content_digest(provider, body)));
    }
    let headers = with_signer_fields(&request.headers, &added);
    let signed = RequestParts {
        headers,
        ..request.clone()
    };
    let mut components = vec![Component::new("@method", false)];
    components.extend(target_components(opts.target, false));
    components.extend(
        REQUEST_FIELDS
            .iter()
            .filter(|f| message::has_field(&signed.headers, f))
            .map(|f| Component::new(f, false)),
    );
    let nonce = new_nonce(provider)?;
    let mut params = time_params(now, opts.lifetime, &nonce)?;
    params.push(("wimse-aud", sf_string(opts.audience)?));
    if opts.sign_response {
        params.push(("wimse-sign-response", BareItem::Boolean(true)));
    }
    let signature = finish_signing(
        Message::Request(&signed),
        WIMSE_LABEL,
        Draft { components, params },
        key,
    )?;
    drop(signed);
    added.extend(signature);
    Ok(SignedHeaders { headers: added, nonce })
}

/// Signs a response to `request` with the server's workload key at `now`.
pub fn sign_response(
    key: &dyn SigningKey,
    response: &ResponseParts<'_>,
    body: &[u8],
    request: &RequestParts<'_>,
    opts: &ResponseSigning<'_>,
    now: UnixTime,
    provider: &dyn CryptoProvider,
) -> Result<SignedHeaders, Error> {
    let mut added = vec![(WORKLOAD_IDENTITY_TOKEN, opts.wit.to_owned())];
    if !body.is_empty() {
        added.push((CONTENT_DIGEST, digest::content_digest(provider, body)));
    }
    let signed = ResponseParts {
        status: response.status,
        headers: with_signer_fields(&response.headers, &added),
    };
    let mut components = vec![Component::new("@status", false)];
    components.extend(
        RESPONSE_FIELDS
            .iter()
            .filter(|f| message::has_field(&signed.headers, f))
            .map(|f| Component::new(f, false)),
    );
    components.push(Component::new("@method", true));
    components.extend(target_components(opts.target, true));
    let nonce = new_nonce(provider)?;
    let mut params = time_params(now, opts.lifetime, &nonce)?;
    params.push(("wimse-req-nonce", sf_string(opts.request_nonce)?));
    let signature = finish_signing(
        Message::Response(&signed, request),
        WIMSE_LABEL,
        Draft { components, params },
        key,
    )?;
    drop(signed);
    added.extend(signature);
    Ok(SignedHeaders { headers: added, nonce })
}
