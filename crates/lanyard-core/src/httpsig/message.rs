//! A transport-neutral view of an HTTP message and the RFC 9421 §2 component values.

use crate::error::Error;

/// An HTTP request as the signature sees it.
#[derive(Clone, Debug, Default)]
pub struct RequestParts<'a> {
    /// The method, as sent (`GET`).
    pub method: &'a str,
    /// The request target in origin form, as on the request line: `/path?query`.
    pub target: &'a str,
    /// The authority (`host[:port]`), needed only if `@authority` is covered.
    pub authority: Option<&'a str>,
    /// The scheme (`https`), needed only if `@scheme` is covered.
    pub scheme: Option<&'a str>,
    /// Header fields as (name, value); a name may repeat.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

/// An HTTP response as the signature sees it.
#[derive(Clone, Debug, Default)]
pub struct ResponseParts<'a> {
    /// The status code.
    pub status: u16,
    /// Header fields as (name, value); a name may repeat.
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl RequestParts<'_> {
    /// The path part of the target, `/` when empty (RFC 9421 §2.2.6).
    pub fn path(&self) -> &str {
        let path = self.target.split(['?', '#']).next().unwrap_or("");
        if path.is_empty() { "/" } else { path }
    }

    /// The query with its leading `?`, or `?` alone when there is none (RFC 9421 §2.2.7).
    pub fn query(&self) -> &str {
        let without_fragment = self.target.split('#').next().unwrap_or("");
        match without_fragment.find('?') {
            Some(i) => &without_fragment[i..],
            None => "?",
        }
    }

    /// Whether the target has a non-empty query.
    pub fn has_query(&self) -> bool {
        self.query().len() > 1
    }
}

/// The combined value of every field line named `name` (RFC 9421 §2.1): each value
/// trimmed of surrounding whitespace, joined with `, `. `None` if the field is absent.
pub(crate) fn field_value(headers: &[(&str, &[u8])], name: &str) -> Result<Option<String>, Error> {
    let mut combined: Option<String> = None;
    for (n, v) in headers {
        if !n.eq_ignore_ascii_case(name) {
            continue;
        }
        let v = std::str::from_utf8(v)
            .ok()
            .filter(|s| !s.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f))
            .ok_or_else(|| Error::HttpSignature {
                code: "signature_components",
                detail: format!("the {name} field has bytes that cannot be signed"),
            })?;
        let v = v.trim_matches([' ', '\t']);
        match &mut combined {
            Some(c) => {
                c.push_str(", ");
                c.push_str(v);
            }
            None => combined = Some(v.to_owned()),
        }
    }
    Ok(combined)
}

/// Whether a field named `name` is present.
pub(crate) fn has_field(headers: &[(&str, &[u8])], name: &str) -> bool {
    headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}
