//! The WIMSE profile of RFC 9421 (draft-ietf-wimse-http-signature-07 §3): the tag and
//! label, which components a request or response must cover, which parameters a
//! signature must (and must not) carry, and how the WIMSE signature is chosen among
//! several.
//!
//! -07 covers the target as `@path` and `@query` (`@query` is `?` when the request has no
//! query) and never `@authority`; the -06 `@request-target` is accepted only with
//! [`HttpSigPolicy::accept_request_target`]. Every signed response carries
//! `wimse-req-nonce`.

use sfv::{BareItem, FieldType, InnerList, ListEntry};

use super::base::{self, Component, Message, SIGNATURE_INPUT, err, parse_dict};
use super::message;
use crate::error::Error;
use crate::time::UnixTime;

/// The `tag` parameter value of WIMSE signatures.
pub const WIMSE_TAG: &str = "wimse-workload-to-workload";
/// The signature label Lanyard emits (the draft's RECOMMENDED label).
pub const WIMSE_LABEL: &str = "wimse";

/// Request header fields that must be covered whenever the request carries them (-07 §3.1).
pub(super) const REQUEST_FIELDS: [&str; 5] = [
    "content-type",
    "content-digest",
    "authorization",
    "txn-token",
    "workload-identity-token",
];
/// Response header fields that must be covered whenever the response carries them.
pub(super) const RESPONSE_FIELDS: [&str; 3] = ["workload-identity-token", "content-type", "content-digest"];

/// How the request target is covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetComponents {
    /// `@path` and `@query`, the latter even when the request has no query (its value is
    /// then `?`): draft-ietf-wimse-http-signature-07, the default.
    #[default]
    PathAndQuery,
    /// `@request-target` (draft-ietf-wimse-http-signature-06), for peers that have not
    /// moved to -07; verifiers accept it only with [`HttpSigPolicy::accept_request_target`].
    RequestTarget,
}

/// What a signature verifier accepts.
#[derive(Clone, Copy, Debug)]
pub struct HttpSigPolicy {
    /// The longest `expires - now` accepted, in seconds ("on the order of minutes"); the
    /// leeway is not added to it.
    pub max_lifetime: u64,
    /// Clock skew tolerated on `created` and `expires`, in seconds.
    pub leeway: u64,
    /// The -06 compatibility switch (off by default): also accept signatures that cover
    /// `@request-target` instead of `@path` and `@query`.
    pub accept_request_target: bool,
}

impl Default for HttpSigPolicy {
    fn default() -> Self {
        HttpSigPolicy {
            max_lifetime: 300,
            leeway: 60,
            accept_request_target: false,
        }
    }
}

pub(super) fn target_components(target: TargetComponents, req: bool) -> Vec<Component> {
    match target {
        TargetComponents::PathAndQuery => vec![Component::new("@path", req), Component::new("@query", req)],
        TargetComponents::RequestTarget => vec![Component::new("@request-target", req)],
    }
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
    /// How the request target is covered (a signed response answers in the same form).
    pub target: TargetComponents,
}

/// The one `tag="wimse-workload-to-workload"` signature of a message.
pub(super) struct Located {
    pub(super) label: String,
    pub(super) list: InnerList,
    pub(super) signature: Vec<u8>,
}

pub(super) fn locate(headers: &[(&str, &[u8])]) -> Result<Located, Error> {
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
    let signature = base::signature_value(headers, label.as_str())?;
    Ok(Located {
        label: label.as_str().to_owned(),
        list: list.clone(),
        signature,
    })
}

/// Checks the parameters of a located signature; returns what it learned.
pub(super) fn check_params(
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
    if !is_request && request_nonce.is_none() {
        return Err(err(
            "signature_params",
            "the wimse-req-nonce parameter is required on every signed response",
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
    if lifetime > policy.max_lifetime {
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
        target: TargetComponents::PathAndQuery,
    })
}

/// Checks that every component the profile requires is covered; returns how the target is.
pub(super) fn check_coverage(
    msg: Message<'_, '_>,
    list: &InnerList,
    policy: &HttpSigPolicy,
) -> Result<TargetComponents, Error> {
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
    let target = if has("@request-target", is_response) {
        if !policy.accept_request_target {
            return Err(err(
                "signature_legacy_target",
                "@request-target is the draft-ietf-wimse-http-signature-06 form; -07 covers @path and @query",
            ));
        }
        TargetComponents::RequestTarget
    } else {
        need("@path", is_response)?;
        // -06 peers left @query out when there was none; the compatibility switch keeps that.
        let optional = policy.accept_request_target && !msg.request().has_query();
        if !optional {
            need("@query", is_response)?;
        }
        TargetComponents::PathAndQuery
    };
    for field in fields {
        if message::has_field(msg.headers(), field) {
            need(field, false)?;
        }
    }
    if is_response {
        // The response is signed with the server's WIT, which must travel with it.
        need("workload-identity-token", false)?;
    }
    Ok(target)
}
