//! `application/x-www-form-urlencoded` request bodies for the token, introspection and
//! revocation endpoints, parsed strictly (RFC 6749 §3.1, §3.2 and Appendix B):
//!
//! - a parameter MUST NOT appear more than once, except `resource` (RFC 8707 §2) and
//!   `audience` (RFC 8693 §2.1), which may repeat;
//! - a parameter sent without a value is treated as if it were omitted (so `scope=` and
//!   a bare `scope` are absent, and do not count as an occurrence);
//! - a malformed percent-escape (`%4`, `%G1`) or bytes that do not decode to UTF-8 refuse
//!   the whole body ([`Violation::FormEncoding`]), as does a parameter without a name;
//! - the body size and the number of parameters are bounded ([`FormLimits`]).
//!
//! Why not the `form_urlencoded` crate: it implements the WHATWG URL Standard's parser,
//! which keeps a malformed escape as literal text and replaces undecodable bytes with
//! U+FFFD. OAuth parameters carry credentials; a body whose encoding is broken is refused,
//! never repaired. The decoder here is the 30 lines RFC 6749 Appendix B needs.

use crate::error::Error;
use crate::oauth::violation::{Violation, clip};

/// The parameters that may appear more than once.
pub const REPEATABLE_PARAMETERS: [&str; 2] = ["resource", "audience"];

/// Bounds on a form body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormLimits {
    /// The largest body accepted, in bytes (64 KiB by default: room for a client
    /// assertion, a subject token and an actor token of the 16 KiB JWS limit each).
    pub max_bytes: usize,
    /// The most `name=value` pairs accepted, empty ones included (32 by default).
    pub max_parameters: usize,
}

impl Default for FormLimits {
    fn default() -> Self {
        FormLimits {
            max_bytes: 64 * 1024,
            max_parameters: 32,
        }
    }
}

/// A parsed form: each parameter once, with its values (several only for
/// [`REPEATABLE_PARAMETERS`]), in the order they first appeared.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Form {
    params: Vec<(String, Vec<String>)>,
}

impl std::fmt::Debug for Form {
    /// Names only: values may be credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl Form {
    /// Parses a form body under `limits`.
    pub fn parse(body: &[u8], limits: FormLimits) -> Result<Form, Error> {
        if body.len() > limits.max_bytes {
            return Err(Violation::FormTooLarge {
                limit: limits.max_bytes,
                actual: body.len(),
            }
            .into());
        }
        let mut form = Form::default();
        let mut count = 0usize;
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            count += 1;
            if count > limits.max_parameters {
                return Err(Violation::TooManyParameters {
                    limit: limits.max_parameters,
                }
                .into());
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode_component(name)?;
            if name.is_empty() {
                return Err(Violation::FormEncoding("a parameter has no name".into()).into());
            }
            let value = decode_component(value)?;
            if value.is_empty() {
                continue; // RFC 6749 §3.1: treated as if omitted
            }
            form.push(name, value)?;
        }
        Ok(form)
    }

    fn push(&mut self, name: String, value: String) -> Result<(), Error> {
        match self.params.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) if REPEATABLE_PARAMETERS.contains(&name.as_str()) => {
                values.push(value);
                Ok(())
            }
            Some(_) => Err(Violation::DuplicateParameter(clip(&name, 64)).into()),
            None => {
                self.params.push((name, vec![value]));
                Ok(())
            }
        }
    }

    /// The value of `name`, if present (the first one for a repeatable parameter).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values(name).first().map(String::as_str)
    }

    /// Every value of `name`, in order (empty when absent).
    pub fn values(&self, name: &str) -> &[String] {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[], |(_, values)| values.as_slice())
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.params.iter().any(|(n, _)| n == name)
    }

    /// The parameter names, in the order they first appeared.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|(n, _)| n.as_str())
    }

    /// The number of distinct parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the form has no parameters.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
}

/// Decodes one name or value: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub(crate) fn decode_component(raw: &[u8]) -> Result<String, Error> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    // Runs without `+` or `%` (all of a client assertion) are copied whole.
    while let Some(at) = memchr::memchr2(b'+', b'%', rest) {
        out.extend_from_slice(&rest[..at]);
        if rest[at] == b'+' {
            out.push(b' ');
            rest = &rest[at + 1..];
        } else {
            let byte = percent_byte(&rest[at + 1..])
                .ok_or_else(|| Violation::FormEncoding("a '%' is not followed by two hex digits".into()))?;
            out.push(byte);
            rest = &rest[at + 3..];
        }
    }
    out.extend_from_slice(rest);
    String::from_utf8(out).map_err(|_| Violation::FormEncoding("a parameter does not decode to UTF-8".into()).into())
}

/// The byte of a percent-escape whose two hex digits start `after_percent`.
pub(crate) fn percent_byte(after_percent: &[u8]) -> Option<u8> {
    let hex = std::str::from_utf8(after_percent.get(..2)?).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Checks a request's `Content-Type`: `application/x-www-form-urlencoded`, in any case,
/// optionally with parameters (`; charset=UTF-8`).
pub fn check_content_type(value: Option<&str>) -> Result<(), Error> {
    let media_type = value.map(|v| v.split(';').next().unwrap_or_default().trim_matches([' ', '\t']));
    match media_type {
        Some(m) if m.eq_ignore_ascii_case("application/x-www-form-urlencoded") => Ok(()),
        _ => Err(Violation::ContentType {
            found: value.map(|v| clip(v, 64)),
        }
        .into()),
    }
}

/// Encodes `pairs` as a form body: every byte but ASCII letters, digits and `*-._` is
/// percent-encoded, spaces as `+` (the serializer of the WHATWG URL Standard, which every
/// OAuth server reads).
pub fn encode_form<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        encode_into(&mut out, name);
        out.push('=');
        encode_into(&mut out, value);
    }
    out
}

fn encode_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Form, Error> {
        Form::parse(body.as_bytes(), FormLimits::default())
    }

    #[test]
    fn decodes_and_keeps_repeatable_parameters() {
        let f = parse("grant_type=client_credentials&scope=read+write&resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example&audience=x").unwrap();
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("scope"), Some("read write"));
        assert_eq!(f.values("resource"), ["https://a.example", "https://b.example"]);
        assert_eq!(f.values("audience"), ["x"]);
        assert_eq!(f.values("missing"), [] as [String; 0]);
        assert_eq!(
            f.names().collect::<Vec<_>>(),
            ["grant_type", "scope", "resource", "audience"]
        );
        // Raw reserved characters (curl -d without --data-urlencode) are taken as they are.
        let f = parse("client_id=spiffe://example.org/a&x=%C3%A9").unwrap();
        assert_eq!(f.get("client_id"), Some("spiffe://example.org/a"));
        assert_eq!(f.get("x"), Some("é"));
        // Escapes next to each other, at the start and at the very end of a value.
        let f = parse("x=%2Ba%2Bb++c%25%41").unwrap();
        assert_eq!(f.get("x"), Some("+a+b  c%A"));
    }

    #[test]
    fn empty_values_are_absent() {
        let f = parse("scope=&grant_type=client_credentials&client_secret&&scope=read").unwrap();
        assert_eq!(f.get("scope"), Some("read"));
        assert!(!f.contains("client_secret"));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn refuses_what_rfc_6749_refuses() {
        let kind = |body: &str| parse(body).unwrap_err().kind();
        assert_eq!(kind("scope=a&scope=b"), "duplicate_parameter");
        assert_eq!(kind("client_id=a&client_id=a"), "duplicate_parameter");
        assert_eq!(kind("x=%4"), "form_encoding");
        assert_eq!(kind("x=%G1"), "form_encoding");
        assert_eq!(kind("x=%"), "form_encoding");
        assert_eq!(kind("x=%FF%FE"), "form_encoding");
        assert_eq!(kind("=value"), "form_encoding");
        let many = (0..33).map(|i| format!("p{i}=v")).collect::<Vec<_>>().join("&");
        assert_eq!(kind(&many), "form_too_many_parameters");
        let limits = FormLimits {
            max_bytes: 8,
            ..FormLimits::default()
        };
        assert_eq!(
            Form::parse(b"grant_type=x", limits).unwrap_err().kind(),
            "form_too_large"
        );
    }

    #[test]
    fn debug_shows_names_only() {
        let f = parse("client_secret=hunter2").unwrap();
        assert!(!format!("{f:?}").contains("hunter2"));
    }

    #[test]
    fn content_type() {
        assert!(check_content_type(Some("application/x-www-form-urlencoded")).is_ok());
        assert!(check_content_type(Some("Application/X-WWW-Form-URLEncoded; charset=UTF-8")).is_ok());
        for bad in [None, Some("application/json"), Some("multipart/form-data; boundary=x")] {
            assert_eq!(check_content_type(bad).unwrap_err().kind(), "form_content_type");
        }
    }

    #[test]
    fn encoding_round_trips() {
        let body = encode_form([
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("scope", "read write"),
            ("x", "a&b=c%é+"),
        ]);
        assert!(body.starts_with("client_assertion_type=urn%3Aietf%3Aparams"));
        let f = parse(&body).unwrap();
        assert_eq!(f.get("scope"), Some("read write"));
        assert_eq!(f.get("x"), Some("a&b=c%é+"));
    }
}
