//! The HTTP URI a DPoP proof names (`htu`), normalised for comparison as RFC 9449 §4.3
//! asks: without query and fragment, with the syntax-based (RFC 3986 §6.2.2) and
//! scheme-based (§6.2.3) normalisations applied.
//!
//! Concretely: scheme and host lower-cased; the default port (80 for `http`, 443 for
//! `https`) and an empty port dropped; an empty path becomes `/`; percent-escapes get
//! upper-case hex digits and escapes of unreserved characters are decoded; `.` and `..`
//! segments are removed (RFC 3986 §5.2.4). Only `http` and `https` URIs without userinfo
//! are accepted, and only printable ASCII.

use crate::error::Error;
use crate::oauth::form::percent_byte;

/// Normalises an `http`/`https` URI for `htu` comparison, dropping query and fragment.
/// A value that is not such a URI is refused as an invalid `htu`.
pub fn normalize_http_uri(uri: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::invalid_claim("htu", format!("{reason}: {:?}", clip(uri)));
    if uri.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(invalid("not a URI of printable ASCII"));
    }
    let without_fragment = uri.split('#').next().unwrap_or_default();
    let without_query = without_fragment.split('?').next().unwrap_or_default();
    let (scheme, rest) = without_query
        .split_once("://")
        .ok_or_else(|| invalid("not an absolute http(s) URI"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(invalid("the scheme is not http or https")),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(invalid("userinfo is not allowed"));
    }
    let (host, port) = split_host_port(authority).ok_or_else(|| invalid("the authority is malformed"))?;
    if host.is_empty() {
        return Err(invalid("the host is empty"));
    }
    let mut out = format!(
        "{scheme}://{}",
        normalize_escapes(&host.to_ascii_lowercase()).map_err(invalid)?
    );
    match port {
        Some(port) if port != default_port => out.push_str(&format!(":{port}")),
        _ => {}
    }
    let path = normalize_escapes(path).map_err(invalid)?;
    out.push_str(&remove_dot_segments(if path.is_empty() { "/" } else { &path }));
    Ok(out)
}

fn clip(uri: &str) -> String {
    uri.chars().take(256).collect()
}

/// Splits a URL authority without userinfo into its host (a bracketed IPv6 literal keeps
/// its brackets) and the text after its `:`, if any; `None` when a `[` is not closed or
/// its `]` is followed by anything but `:`. The port is the caller's to check.
pub(super) fn split_authority(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let (host, rest) = authority.split_at(authority.find(']')? + 1);
        match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        }
    } else {
        Some(match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        })
    }
}

/// `host[:port]`, with a bracketed IPv6 literal; `None` when malformed. An empty port is
/// no port (RFC 3986 §6.2.3).
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = split_authority(authority)?;
    let port = match port {
        None | Some("") => None,
        Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

/// Upper-cases the hex digits of percent-escapes and decodes escapes of unreserved
/// characters (RFC 3986 §6.2.2.1, §6.2.2.2).
fn normalize_escapes(text: &str) -> Result<String, &'static str> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let value = percent_byte(&bytes[i + 1..]).ok_or("a '%' is not followed by two hex digits")?;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(value));
            } else {
                out.push_str(&format!("%{value:02X}"));
            }
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    Ok(out)
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => trailing_slash = i == last,
            ".." => {
                output.pop();
                trailing_slash = i == last;
            }
            s => {
                output.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &output {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(uri: &str) -> String {
        normalize_http_uri(uri).unwrap()
    }

    #[test]
    fn normalises_as_rfc_3986_section_6_asks() {
        assert_eq!(
            n("https://server.example.com/token"),
            "https://server.example.com/token"
        );
        assert_eq!(
            n("HTTPS://Server.Example.COM:443/token"),
            "https://server.example.com/token"
        );
        assert_eq!(
            n("https://server.example.com:/token?x=1#f"),
            "https://server.example.com/token"
        );
        assert_eq!(n("http://a.example:80"), "http://a.example/");
        assert_eq!(n("http://a.example:8080/"), "http://a.example:8080/");
        assert_eq!(n("https://a.example:0443/x"), "https://a.example/x");
        assert_eq!(
            n("https://a.example/%7euser/%2fx%2F"),
            "https://a.example/~user/%2Fx%2F"
        );
        assert_eq!(n("https://a.example/a/./b/../c"), "https://a.example/a/c");
        assert_eq!(n("https://a.example/a/b/.."), "https://a.example/a/");
        assert_eq!(n("https://a.example/../../x"), "https://a.example/x");
        assert_eq!(n("https://[::1]:8443/p"), "https://[::1]:8443/p");
        assert_eq!(n("https://[2001:DB8::1]/p"), "https://[2001:db8::1]/p");
        // Path case is significant.
        assert_ne!(n("https://a.example/Token"), n("https://a.example/token"));
    }

    #[test]
    fn refuses_what_is_not_an_http_uri() {
        for bad in [
            "/token",
            "server.example.com/token",
            "ftp://a.example/x",
            "https://user@a.example/x",
            "https://a.example:99999/x",
            "https://a.example:x/",
            "https:///x",
            "https://a.example/%zz",
            "https://a.example/ x",
            "https://a.example/é",
            "https://[::1/x",
        ] {
            assert_eq!(normalize_http_uri(bad).unwrap_err().kind(), "invalid_claim", "{bad}");
        }
    }
}
