//! The one strict parser behind both identifier schemes; the schemes differ only in the
//! [`Rules`] they pass in.

use super::{IdError, IdErrorKind, MAX_ID_BYTES, MAX_TRUST_DOMAIN_BYTES};

/// What a scheme allows.
pub(crate) struct Rules {
    /// The canonical, lowercase `scheme://` prefix.
    pub(crate) prefix: &'static str,
    /// Whether a path byte is allowed.
    pub(crate) path_byte: fn(u8) -> bool,
    /// WIMSE requires at least one path segment (identifier-03 §4.4); SPIFFE does not.
    pub(crate) require_path: bool,
    /// WIMSE trust domains must not be IP addresses or end with a dot (identifier-03 §4.4);
    /// SPIFFE-ID.md §2.1 allows IPv4 and says not to treat it specially.
    pub(crate) strict_host: bool,
}

/// Where the trust domain ends in a validated identifier (the path starts there).
pub(crate) fn parse(input: &str, rules: &Rules) -> Result<usize, IdError> {
    let err = |kind| IdError::new(kind, input);
    if input.is_empty() {
        return Err(err(IdErrorKind::Empty));
    }
    if input.len() > MAX_ID_BYTES {
        return Err(err(IdErrorKind::TooLong));
    }
    let rest = input.strip_prefix(rules.prefix).ok_or(err(IdErrorKind::Scheme))?;
    if rest.contains('#') {
        return Err(err(IdErrorKind::Fragment));
    }
    if rest.contains('?') {
        return Err(err(IdErrorKind::Query));
    }
    let td_len = rest.find('/').unwrap_or(rest.len());
    check_trust_domain(&rest[..td_len], rules).map_err(err)?;
    check_path(&rest[td_len..], rules).map_err(err)?;
    Ok(rules.prefix.len() + td_len)
}

/// Validates a bare trust-domain name (the authority of an identifier).
pub(crate) fn check_trust_domain(td: &str, rules: &Rules) -> Result<(), IdErrorKind> {
    if td.is_empty() {
        return Err(IdErrorKind::TrustDomainMissing);
    }
    if td.contains('@') {
        return Err(IdErrorKind::Userinfo);
    }
    if td.contains(':') {
        return Err(IdErrorKind::Port);
    }
    if td.contains('%') {
        return Err(IdErrorKind::PercentEncoding);
    }
    if td.len() > MAX_TRUST_DOMAIN_BYTES {
        return Err(IdErrorKind::TrustDomainTooLong);
    }
    if !td.bytes().all(is_trust_domain_byte) {
        return Err(IdErrorKind::TrustDomainChar);
    }
    if rules.strict_host {
        if td.ends_with('.') {
            return Err(IdErrorKind::TrustDomainTrailingDot);
        }
        if is_ipv4(td) {
            return Err(IdErrorKind::IpTrustDomain);
        }
    }
    Ok(())
}

fn check_path(path: &str, rules: &Rules) -> Result<(), IdErrorKind> {
    let Some(segments) = path.strip_prefix('/') else {
        // The path is either empty or starts with '/', by construction of the split.
        return if rules.require_path {
            Err(IdErrorKind::EmptyPath)
        } else {
            Ok(())
        };
    };
    let mut iter = segments.split('/').peekable();
    while let Some(segment) = iter.next() {
        let last = iter.peek().is_none();
        match segment {
            "" if last => return Err(IdErrorKind::TrailingSlash),
            "" => return Err(IdErrorKind::EmptySegment),
            "." | ".." => return Err(IdErrorKind::DotSegment),
            s if s.contains('%') => return Err(IdErrorKind::PercentEncoding),
            s if !s.bytes().all(rules.path_byte) => return Err(IdErrorKind::PathChar),
            _ => {}
        }
    }
    Ok(())
}

fn is_trust_domain_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_')
}

fn is_ipv4(td: &str) -> bool {
    let labels: Vec<&str> = td.split('.').collect();
    labels.len() == 4
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()))
}
