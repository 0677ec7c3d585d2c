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

mod digest;
mod message;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sfv::{BareItem, Dictionary, FieldType, InnerList, Item, Key, List, ListEntry, Parameters, Parser};

pub use message::{RequestParts, ResponseParts};

use crate::crypto::{CryptoProvider, SigningKey, VerifyingKey};
use crate::error::Error;
use crate::jose::base64url;
use crate::replay::ReplayCache;
use crate::time::UnixTime;
use crate::wimse::{VerifiedWit, WORKLOAD_IDENTITY_TOKEN, WitVerifier};

/// The `tag` parameter value of WIMSE signatures.
pub const WIMSE_TAG: &str = "wimse-workload-to-workload";
/// The signature label Lanyard emits (the draft's RECOMMENDED label).
pub const WIMSE_LABEL: &str = "wimse";
/// `Signature-Input`.
pub const SIGNATURE_INPUT: &str = "Signature-Input";
/// `Signature`.
pub const SIGNATURE: &str = "Signature";
/// `Content-Digest` (RFC 9530).
pub const CONTENT_DIGEST: &str = "Content-Digest";

/// Request header fields that must be covered whenever the request carries them (-06 §3).
const REQUEST_FIELDS: [&str; 5] = [
    "content-type",
    "content-digest",
    "authorization",
    "txn-token",
    "workload-identity-token",
];
/// Response header fields that must be covered whenever the response carries them.
const RESPONSE_FIELDS: [&str; 3] = ["workload-identity-token", "content-type", "content-digest"];

/// How the request target is covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetComponents {
    /// `@request-target` (draft-ietf-wimse-http-signature-06; the default).
    #[default]
    RequestTarget,
    /// `@path`, plus `@query` when the target has a query (editor's copy after #302).
    PathAndQuery,
}

/// What a signature verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct HttpSigPolicy {
    /// The longest `expires - now` accepted, in seconds ("on the order of minutes").
    pub max_lifetime: u64,
    /// Clock skew tolerated on `created` and `expires`, in seconds.
    pub leeway: u64,
    /// Require one target form; `None` accepts either.
    pub target: Option<TargetComponents>,
}

impl Default for HttpSigPolicy {
    fn default() -> Self {
        HttpSigPolicy {
            max_lifetime: 300,
            leeway: 60,
            target: None,
        }
    }
}

fn err(code: &'static str, detail: impl Into<String>) -> Error {
    Error::HttpSignature {
        code,
        detail: detail.into(),
    }
}

fn key(name: &str) -> Result<Key, Error> {
    Key::from_string(name.to_owned()).map_err(|_| err("signature_params", format!("bad parameter name {name}")))
}

fn sf_string(value: &str) -> Result<BareItem, Error> {
    sfv::String::from_string(value.to_owned())
        .map(BareItem::String)
        .map_err(|_| {
            err(
                "signature_params",
                format!("{value:?} cannot be a structured-field string"),
            )
        })
}

/// One covered component: a derived component (`@method`) or a lowercase field name,
/// optionally taken from the request (`;req`) when signing a response.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Component {
    name: String,
    req: bool,
}

impl Component {
    fn new(name: &str, req: bool) -> Component {
        Component {
            name: name.to_owned(),
            req,
        }
    }

    fn to_item(&self) -> Result<Item, Error> {
        let mut params = Parameters::new();
        if self.req {
            params.insert(key("req")?, BareItem::Boolean(true));
        }
        Ok(Item::with_params(sf_string(&self.name)?, params))
    }

    fn from_item(item: &Item) -> Result<Component, Error> {
        let BareItem::String(name) = &item.bare_item else {
            return Err(err("signature_components", "covered components must be strings"));
        };
        let mut req = false;
        for (k, v) in &item.params {
            match (k.as_str(), v) {
                ("req", BareItem::Boolean(b)) => req = *b,
                (other, _) => {
                    return Err(err(
                        "signature_components",
                        format!("component parameter ;{other} is not supported by this profile"),
                    ));
                }
            }
        }
        let name = name.as_str();
        if !name.starts_with('@') && name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err(
                "signature_components",
                format!("field name {name:?} must be lowercase"),
            ));
        }
        Ok(Component::new(name, req))
    }
}

/// The message a signature is over: a request, or a response with its request.
#[derive(Clone, Copy)]
enum Message<'m, 'a> {
    Request(&'m RequestParts<'a>),
    Response(&'m ResponseParts<'a>, &'m RequestParts<'a>),
}

impl<'a> Message<'_, 'a> {
    fn headers(&self) -> &[(&'a str, &'a [u8])] {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r, _) => &r.headers,
        }
    }

    fn request(&self) -> &RequestParts<'a> {
        match self {
            Message::Request(r) | Message::Response(_, r) => r,
        }
    }

    /// The value of one component (RFC 9421 §2.1–§2.2).
    fn value(&self, c: &Component) -> Result<String, Error> {
        let from_request = matches!(self, Message::Request(_)) || c.req;
        if c.req && matches!(self, Message::Request(_)) {
            return Err(err("signature_components", ";req is only meaningful on responses"));
        }
        let missing = || {
            err(
                "signature_components",
                format!("covered component {} is not in the message", c.name),
            )
        };
        let request = self.request();
        match c.name.as_str() {
            "@status" => match self {
                Message::Response(r, _) if !c.req => Ok(format!("{:03}", r.status)),
                _ => Err(err("signature_components", "@status belongs to responses")),
            },
            derived if derived.starts_with('@') => {
                if !from_request {
                    return Err(err(
                        "signature_components",
                        format!("{derived} on a response needs ;req"),
                    ));
                }
                match derived {
                    "@method" => Ok(request.method.to_owned()),
                    "@request-target" => Ok(request.target.to_owned()),
                    "@path" => Ok(request.path().to_owned()),
                    "@query" => Ok(request.query().to_owned()),
                    "@authority" => request.authority.map(str::to_ascii_lowercase).ok_or_else(missing),
                    "@scheme" => request.scheme.map(str::to_ascii_lowercase).ok_or_else(missing),
                    "@target-uri" => match (request.scheme, request.authority) {
                        (Some(s), Some(a)) => Ok(format!("{}://{}{}", s.to_ascii_lowercase(), a, request.target)),
                        _ => Err(missing()),
                    },
                    other => Err(err(
                        "signature_components",
                        format!("derived component {other} is not supported by this profile"),
                    )),
                }
            }
            field => {
                let headers = if c.req { &request.headers[..] } else { self.headers() };
                message::field_value(headers, field)?.ok_or_else(missing)
            }
        }
    }
}

/// Serializes the covered components and parameters as the inner list of
/// `Signature-Input` (also the `@signature-params` value).
fn serialize_params(list: &InnerList) -> Result<String, Error> {
    let entries: List = vec![ListEntry::InnerList(list.clone())];
    entries
        .serialize()
        .ok_or_else(|| err("signature_params", "the signature parameters cannot be serialized"))
}

/// The signature base (RFC 9421 §2.5) over `components` with `params` as the last line.
fn signature_base(msg: Message<'_, '_>, list: &InnerList) -> Result<String, Error> {
    let mut base = String::new();
    let mut seen: Vec<Component> = Vec::new();
    for item in &list.items {
        let c = Component::from_item(item)?;
        if seen.contains(&c) {
            return Err(err("signature_components", format!("{} is covered twice", c.name)));
        }
        base.push_str(&item.serialize());
        base.push_str(": ");
        base.push_str(&msg.value(&c)?);
        base.push('\n');
        seen.push(c);
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&serialize_params(list)?);
    Ok(base)
}

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
    /// How the request target is covered (match the request's form).
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

fn target_components(target: TargetComponents, request: &RequestParts<'_>, req: bool) -> Vec<Component> {
    match target {
        TargetComponents::RequestTarget => vec![Component::new("@request-target", req)],
        TargetComponents::PathAndQuery if request.has_query() => {
            vec![Component::new("@path", req), Component::new("@query", req)]
        }
        TargetComponents::PathAndQuery => vec![Component::new("@path", req)],
    }
}

struct Draft {
    components: Vec<Component>,
    params: Vec<(&'static str, BareItem)>,
}

/// Signs the message; returns the `Signature-Input` and `Signature` field values.
fn finish_signing(
    msg: Message<'_, '_>,
    draft: Draft,
    key: &dyn SigningKey,
) -> Result<[(&'static str, String); 2], Error> {
    let mut params = Parameters::new();
    for (name, value) in draft.params {
        params.insert(self::key(name)?, value);
    }
    let list = InnerList::with_params(
        draft
            .components
            .iter()
            .map(Component::to_item)
            .collect::<Result<Vec<_>, _>>()?,
        params,
    );
    let base = signature_base(msg, &list)?;
    let signature = key.sign(base.as_bytes())?;
    Ok([
        (SIGNATURE_INPUT, format!("{WIMSE_LABEL}={}", serialize_params(&list)?)),
        (SIGNATURE, format!("{WIMSE_LABEL}=:{}:", STANDARD.encode(signature))),
    ])
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
    components.extend(target_components(opts.target, request, false));
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
    let signature = finish_signing(Message::Request(&signed), Draft { components, params }, key)?;
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
    components.extend(target_components(opts.target, request, true));
    let nonce = new_nonce(provider)?;
    let mut params = time_params(now, opts.lifetime, &nonce)?;
    params.push(("wimse-req-nonce", sf_string(opts.request_nonce)?));
    let signature = finish_signing(Message::Response(&signed, request), Draft { components, params }, key)?;
    drop(signed);
    added.extend(signature);
    Ok(SignedHeaders { headers: added, nonce })
}

/// The checked parameters of a WIMSE message signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureInfo {
    /// The signature's label in `Signature-Input`.
    pub label: String,
    /// `created`.
    pub created: UnixTime,
    /// `expires`.
    pub expires: UnixTime,
    /// `nonce`.
    pub nonce: String,
    /// `wimse-aud` (requests).
    pub audience: Option<String>,
    /// Whether the request asked for a signed response (`wimse-sign-response`).
    pub sign_response: bool,
    /// `wimse-req-nonce` (responses).
    pub request_nonce: Option<String>,
    /// The covered components, serialized (`"@method"`, `"@method";req`, ...).
    pub covered: Vec<String>,
}

/// The one `tag="wimse-workload-to-workload"` signature of a message.
struct Located {
    label: String,
    list: InnerList,
    signature: Vec<u8>,
}

fn parse_dict(headers: &[(&str, &[u8])], name: &'static str) -> Result<Option<Dictionary>, Error> {
    let Some(value) = message::field_value(headers, name)? else {
        return Ok(None);
    };
    Parser::new(&value).parse::<Dictionary>().map(Some).map_err(|e| {
        err(
            "signature_malformed",
            format!("{name} is not a structured dictionary: {e}"),
        )
    })
}

fn locate(headers: &[(&str, &[u8])]) -> Result<Located, Error> {
    let missing = |detail: &str| err("signature_missing", detail);
    let inputs = parse_dict(headers, SIGNATURE_INPUT)?.ok_or_else(|| missing("no Signature-Input field"))?;
    let mut found = inputs.iter().filter_map(|(label, entry)| match entry {
        ListEntry::InnerList(list) => match list.params.get("tag") {
            Some(BareItem::String(t)) if t.as_str() == WIMSE_TAG => Some((label, list)),
            _ => None,
        },
        ListEntry::Item(_) => None,
    });
    let (label, list) = found
        .next()
        .ok_or_else(|| missing("no signature has tag=\"wimse-workload-to-workload\""))?;
    if found.next().is_some() {
        return Err(err(
            "signature_duplicate",
            "more than one signature has tag=\"wimse-workload-to-workload\"",
        ));
    }
    let signatures = parse_dict(headers, SIGNATURE)?.ok_or_else(|| missing("no Signature field"))?;
    let signature = match signatures.get(label.as_str()) {
        Some(ListEntry::Item(Item {
            bare_item: BareItem::ByteSequence(bytes),
            ..
        })) => bytes.clone(),
        Some(_) => {
            return Err(err(
                "signature_malformed",
                format!("Signature {label} is not a byte sequence"),
            ));
        }
        None => return Err(missing(&format!("Signature has no entry labelled {label}"))),
    };
    Ok(Located {
        label: label.as_str().to_owned(),
        list: list.clone(),
        signature,
    })
}

/// Checks the parameters of a located signature; returns what it learned.
fn check_params(
    found: &Located,
    is_request: bool,
    policy: &HttpSigPolicy,
    now: UnixTime,
) -> Result<SignatureInfo, Error> {
    let params = &found.list.params;
    for forbidden in ["keyid", "alg"] {
        if params.contains_key(forbidden) {
            return Err(err(
                "signature_params",
                format!("the {forbidden} parameter must not be used (key and algorithm come from the WIT)"),
            ));
        }
    }
    let int = |name: &'static str| -> Result<u64, Error> {
        match params.get(name) {
            Some(BareItem::Integer(i)) => {
                u64::try_from(i64::from(*i)).map_err(|_| err("signature_params", format!("{name} is negative")))
            }
            Some(_) => Err(err("signature_params", format!("{name} must be an integer"))),
            None => Err(err("signature_params", format!("the {name} parameter is required"))),
        }
    };
    let string = |name: &'static str| -> Result<Option<String>, Error> {
        match params.get(name) {
            Some(BareItem::String(s)) => Ok(Some(s.as_str().to_owned())),
            Some(_) => Err(err("signature_params", format!("{name} must be a string"))),
            None => Ok(None),
        }
    };
    let created = int("created")?;
    let expires = int("expires")?;
    let nonce = string("nonce")?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| err("signature_params", "the nonce parameter is required"))?;
    let audience = string("wimse-aud")?;
    let request_nonce = string("wimse-req-nonce")?;
    let sign_response = match params.get("wimse-sign-response") {
        None => false,
        Some(BareItem::Boolean(b)) => *b,
        Some(_) => return Err(err("signature_params", "wimse-sign-response must be a boolean")),
    };
    if is_request && audience.is_none() {
        return Err(err(
            "signature_params",
            "the wimse-aud parameter is required on requests",
        ));
    }
    let now_s = now.as_secs();
    if expires < created {
        return Err(err("signature_params", "expires is before created"));
    }
    if now_s > expires.saturating_add(policy.leeway) {
        return Err(Error::Expired {
            exp: expires,
            now: now_s,
        });
    }
    if created > now_s.saturating_add(policy.leeway) {
        return Err(Error::NotYetValid {
            claim: "created",
            value: created,
            now: now_s,
        });
    }
    let lifetime = expires.saturating_sub(now_s);
    if lifetime > policy.max_lifetime.saturating_add(policy.leeway) {
        return Err(Error::LifetimeTooLong {
            token: "HTTP signature",
            lifetime,
            max: policy.max_lifetime,
        });
    }
    Ok(SignatureInfo {
        label: found.label.clone(),
        created: UnixTime(created),
        expires: UnixTime(expires),
        nonce,
        audience,
        sign_response,
        request_nonce,
        covered: found.list.items.iter().map(FieldType::serialize).collect(),
    })
}

/// Checks that every component the profile requires is covered.
fn check_coverage(msg: Message<'_, '_>, list: &InnerList, policy: &HttpSigPolicy) -> Result<(), Error> {
    let covered: Vec<Component> = list.items.iter().map(Component::from_item).collect::<Result<_, _>>()?;
    let has = |name: &str, req: bool| covered.iter().any(|c| c.name == name && c.req == req);
    let need = |name: &str, req: bool| -> Result<(), Error> {
        if has(name, req) {
            Ok(())
        } else {
            let suffix = if req { ";req" } else { "" };
            Err(err("signature_components", format!("{name}{suffix} must be covered")))
        }
    };
    let (is_response, fields): (bool, &[&str]) = match msg {
        Message::Request(_) => (false, &REQUEST_FIELDS),
        Message::Response(..) => (true, &RESPONSE_FIELDS),
    };
    if is_response {
        need("@status", false)?;
    }
    need("@method", is_response)?;
    let request = msg.request();
    let request_target = has("@request-target", is_response);
    let path_query = has("@path", is_response) && (!request.has_query() || has("@query", is_response));
    let target_ok = match policy.target {
        None => request_target || path_query,
        Some(TargetComponents::RequestTarget) => request_target,
        Some(TargetComponents::PathAndQuery) => path_query,
    };
    if !target_ok {
        return Err(err(
            "signature_components",
            "the request target must be covered (@request-target, or @path and @query)",
        ));
    }
    for field in fields {
        if message::has_field(msg.headers(), field) {
            need(field, false)?;
        }
    }
    if is_response {
        // The response is signed with the server's WIT, which must travel with it.
        need("workload-identity-token", false)?;
    }
    Ok(())
}

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
    let info = check_params(&found, is_request, policy, now)?;
    check_coverage(msg, &found.list, policy)?;
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

#[cfg(test)]
mod tests;
