//! The generic RFC 9421 machinery: covered components and their values (§2), the
//! signature base (§2.5), and the `Signature-Input` / `Signature` dictionaries (§4.1,
//! §4.2). Nothing here knows the WIMSE profile; `profile` decides which
//! components and parameters a signature must have.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sfv::{BareItem, Dictionary, FieldType, InnerList, Item, Key, List, ListEntry, Parameters, Parser};

use super::message::{self, RequestParts, ResponseParts};
use crate::crypto::SigningKey;
use crate::error::Error;

/// `Signature-Input`.
pub const SIGNATURE_INPUT: &str = "Signature-Input";
/// `Signature`.
pub const SIGNATURE: &str = "Signature";

pub(super) fn err(code: &'static str, detail: impl Into<String>) -> Error {
    Error::HttpSignature {
        code,
        detail: detail.into(),
    }
}

pub(super) fn key(name: &str) -> Result<Key, Error> {
    Key::from_string(name.to_owned()).map_err(|_| err("signature_params", format!("bad parameter name {name}")))
}

pub(super) fn sf_string(value: &str) -> Result<BareItem, Error> {
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
pub(super) struct Component {
    pub(super) name: String,
    pub(super) req: bool,
}

impl Component {
    pub(super) fn new(name: &str, req: bool) -> Component {
        Component {
            name: name.to_owned(),
            req,
        }
    }

    pub(super) fn to_item(&self) -> Result<Item, Error> {
        let mut params = Parameters::new();
        if self.req {
            params.insert(key("req")?, BareItem::Boolean(true));
        }
        Ok(Item::with_params(sf_string(&self.name)?, params))
    }

    pub(super) fn from_item(item: &Item) -> Result<Component, Error> {
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
pub(super) enum Message<'m, 'a> {
    Request(&'m RequestParts<'a>),
    Response(&'m ResponseParts<'a>, &'m RequestParts<'a>),
}

impl<'a> Message<'_, 'a> {
    pub(super) fn headers(&self) -> &[(&'a str, &'a [u8])] {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r, _) => &r.headers,
        }
    }

    pub(super) fn request(&self) -> &RequestParts<'a> {
        match self {
            Message::Request(r) | Message::Response(_, r) => r,
        }
    }

    /// The value of one component (RFC 9421 §2.1–§2.2).
    pub(super) fn value(&self, c: &Component) -> Result<String, Error> {
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
pub(super) fn serialize_params(list: &InnerList) -> Result<String, Error> {
    let entries: List = vec![ListEntry::InnerList(list.clone())];
    entries
        .serialize()
        .ok_or_else(|| err("signature_params", "the signature parameters cannot be serialized"))
}

/// The signature base (RFC 9421 §2.5) over `components` with `params` as the last line.
pub(super) fn signature_base(msg: Message<'_, '_>, list: &InnerList) -> Result<String, Error> {
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

/// What a signer covers: the components, then the signature parameters in order.
pub(super) struct Draft {
    pub(super) components: Vec<Component>,
    pub(super) params: Vec<(&'static str, BareItem)>,
}

/// Signs the message; returns the `Signature-Input` and `Signature` field values, each
/// a dictionary with the one entry `label`.
pub(super) fn finish_signing(
    msg: Message<'_, '_>,
    label: &str,
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
        (SIGNATURE_INPUT, format!("{label}={}", serialize_params(&list)?)),
        (SIGNATURE, format!("{label}=:{}:", STANDARD.encode(signature))),
    ])
}

/// Parses the dictionary field `name` (`Signature-Input` or `Signature`), if present.
pub(super) fn parse_dict(headers: &[(&str, &[u8])], name: &'static str) -> Result<Option<Dictionary>, Error> {
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

/// The byte sequence labelled `label` in the `Signature` field.
pub(super) fn signature_value(headers: &[(&str, &[u8])], label: &str) -> Result<Vec<u8>, Error> {
    let missing = |detail: &str| err("signature_missing", detail);
    let signatures = parse_dict(headers, SIGNATURE)?.ok_or_else(|| missing("no Signature field"))?;
    match signatures.get(label) {
        Some(ListEntry::Item(Item {
            bare_item: BareItem::ByteSequence(bytes),
            ..
        })) => Ok(bytes.clone()),
        Some(_) => Err(err(
            "signature_malformed",
            format!("Signature {label} is not a byte sequence"),
        )),
        None => Err(missing(&format!("Signature has no entry labelled {label}"))),
    }
}
