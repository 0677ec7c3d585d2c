//! Authorization server metadata (RFC 8414), with the members RFC 8705 §3.3 and §5
//! (`tls_client_certificate_bound_access_tokens`, `mtls_endpoint_aliases`), RFC 9449 §5.1
//! (`dpop_signing_alg_values_supported`) and draft-ietf-oauth-identity-chaining-17
//! (`identity_chaining_requested_token_types_supported`) add, and the client-authentication
//! values of draft-ietf-oauth-spiffe-client-auth §4 (`spiffe_jwt`, `spiffe_x509`,
//! `spiffe_wit`, see [`AuthMethod`]).
//!
//! The server serializes [`AuthorizationServerMetadata`] without absent members (no
//! `null`s) and with `response_types_supported` always present (REQUIRED by RFC 8414 §2;
//! an authorization server for workloads has no authorization endpoint and publishes `[]`).
//! A client reads it with [`AuthorizationServerMetadata::from_json`], which refuses a
//! document whose `issuer` is not exactly the issuer it was fetched for (RFC 8414 §3.3),
//! and finds it at [`metadata_url`] (§3.1).
//!
//! Every URL an authorization server is named by or fetched from (issuers, `jwks_uri`s,
//! discovered endpoints) passes one check here: [`check_remote_url`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::jose::{AlgSet, json};
use crate::oauth::urn::{AuthMethod, GrantType, TokenTypeUri};
use crate::oauth::violation::{Violation, clip};

/// The well-known URI suffix (RFC 8414 §3, §7.3).
pub const WELL_KNOWN_SUFFIX: &str = "oauth-authorization-server";

/// RFC 8414 §2 authorization server metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier.
    pub issuer: String,
    /// The authorization endpoint (none for a workload-only server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// The token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The JWK Set of the access-token signing keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The dynamic client registration endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// The scopes clients may request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    /// The `response_type` values (REQUIRED; `[]` without an authorization endpoint).
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// The grant types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<GrantType>>,
    /// The client authentication methods at the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<AuthMethod>>,
    /// The `alg` values accepted for `private_key_jwt` assertions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// Human-readable documentation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
    /// The revocation endpoint (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The client authentication methods at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_methods_supported: Option<Vec<AuthMethod>>,
    /// The `alg` values accepted for assertions at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// The introspection endpoint (RFC 7662).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// The client authentication methods at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint_auth_methods_supported: Option<Vec<AuthMethod>>,
    /// The `alg` values accepted for assertions at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
    /// Endpoints served with mutual TLS, by metadata name (`token_endpoint`, ...; RFC 8705
    /// §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls_endpoint_aliases: Option<BTreeMap<String, String>>,
    /// Whether the server issues certificate-bound access tokens (RFC 8705 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// The `alg` values accepted for DPoP proofs (RFC 9449 §5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// The token types a token exchange may request for identity chaining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_chaining_requested_token_types_supported: Option<Vec<TokenTypeUri>>,
    /// Every other member.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AuthorizationServerMetadata {
    /// Metadata for `issuer` with no endpoints yet and `response_types_supported: []`.
    pub fn new(issuer: impl Into<String>) -> AuthorizationServerMetadata {
        AuthorizationServerMetadata {
            issuer: issuer.into(),
            ..AuthorizationServerMetadata::default()
        }
    }

    /// The document as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a metadata document fetched for `expected_issuer` (strict JSON: repeated
    /// members refuse). Its `issuer` must be identical to `expected_issuer`, or the
    /// document MUST NOT be used (RFC 8414 §3.3; [`Violation::IssuerMismatch`]).
    pub fn from_json(bytes: &[u8], expected_issuer: &str) -> Result<AuthorizationServerMetadata, Error> {
        let map = json::parse_object(bytes, "metadata")?;
        let metadata: AuthorizationServerMetadata = serde_json::from_value(Value::Object(map))
            .map_err(|e| Error::malformed(format!("authorization server metadata: {e}")))?;
        if metadata.issuer != expected_issuer {
            return Err(Violation::IssuerMismatch {
                expected: expected_issuer.to_owned(),
                found: clip(&metadata.issuer, 256),
            }
            .into());
        }
        Ok(metadata)
    }
}

/// The `alg` names of `algs`, for the `*_alg_values_supported` members.
pub fn alg_values(algs: AlgSet) -> Vec<String> {
    algs.iter().map(|a| a.as_str().to_owned()).collect()
}

/// Checks an issuer identifier (RFC 8414 §2): a [`check_remote_url`] URL without query or
/// fragment. (Issuers are compared byte for byte, so the lowercase scheme and `localhost`
/// that URL check asks for keep one spelling per issuer.)
pub fn check_issuer_identifier(issuer: &str) -> Result<(), Error> {
    let invalid = |reason| -> Error {
        Violation::InvalidIssuer {
            issuer: clip(&loggable_url(issuer), 256),
            reason,
        }
        .into()
    };
    if issuer.contains(['?', '#']) {
        return Err(invalid("an issuer has no query or fragment"));
    }
    check_remote_url(issuer).map_err(|problem| invalid(problem.as_str()))?;
    Ok(())
}

/// What [`check_remote_url`] found wrong with a URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlProblem {
    /// A byte outside printable ASCII (a space, a control character, UTF-8).
    NotPrintableAscii,
    /// No `scheme://`, or no host.
    NotAbsolute,
    /// `user:password@` before the host.
    Userinfo,
    /// A host with `\` or `%` in it, or brackets around something other than an IPv6
    /// address (HTTP clients read such hosts in different ways).
    BadHost,
    /// A port that is not a number from 0 to 65535.
    BadPort,
    /// Neither `https` nor plain `http` to a loopback host (schemes in lowercase).
    NotHttps,
}

impl UrlProblem {
    /// The rule broken, as a phrase that follows the URL's name ("jwks_uri must ...").
    pub fn as_str(self) -> &'static str {
        match self {
            UrlProblem::NotPrintableAscii => "must be a URL of printable ASCII",
            UrlProblem::NotAbsolute => "must be an absolute https:// URL with a host",
            UrlProblem::Userinfo => "must have no userinfo (user:password@)",
            UrlProblem::BadHost => "must name its host plainly (no \\ or %; an IPv6 address in brackets)",
            UrlProblem::BadPort => "must have a port from 0 to 65535, if any",
            UrlProblem::NotHttps => "must be an https:// URL (plain http only to a loopback host)",
        }
    }
}

/// A URL that passed [`check_remote_url`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteUrl<'a> {
    /// `https` (otherwise plain `http` to a loopback host).
    pub https: bool,
    /// The host as written (an IPv6 address with its brackets), without the port.
    pub host: &'a str,
}

/// Checks a URL that names an authorization server (an issuer) or that keys, metadata or
/// tokens are fetched from (a `jwks_uri` or endpoint, configured, registered or
/// discovered): printable ASCII; absolute, with a plainly written host and a valid port;
/// no userinfo (credentials in a URL go out with every fetch and into the log of a failed
/// one); `https`, or plain `http` to a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`:
/// a development server), the host parsed, never matched by prefix
/// (`http://localhost.evil.example` is refused). Schemes and `localhost` in lowercase.
pub fn check_remote_url(url: &str) -> Result<RemoteUrl<'_>, UrlProblem> {
    if url.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(UrlProblem::NotPrintableAscii);
    }
    let (scheme, rest) = url.split_once("://").ok_or(UrlProblem::NotAbsolute)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(UrlProblem::Userinfo);
    }
    if authority.contains(['\\', '%']) {
        return Err(UrlProblem::BadHost);
    }
    let (host, port) = super::htu::split_authority(authority).ok_or(UrlProblem::BadHost)?;
    if host.starts_with('[') && !is_ipv6_literal(host) {
        return Err(UrlProblem::BadHost);
    }
    if host.is_empty() {
        return Err(UrlProblem::NotAbsolute);
    }
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err()) {
        return Err(UrlProblem::BadPort);
    }
    let https = scheme == "https";
    if https || (scheme == "http" && is_loopback_host(host)) {
        Ok(RemoteUrl { https, host })
    } else {
        Err(UrlProblem::NotHttps)
    }
}

/// Checks a URL read from the metadata document at `metadata_url` (its `jwks_uri`, its
/// `token_endpoint`): a [`check_remote_url`] URL, and plain `http` only when the metadata
/// itself came over plain HTTP from the same loopback host (a development setup). The
/// error is a phrase that follows the URL's name.
pub fn check_discovered_url(url: &str, metadata_url: &str) -> Result<(), &'static str> {
    let found = check_remote_url(url).map_err(UrlProblem::as_str)?;
    let beside_local_metadata = || check_remote_url(metadata_url).is_ok_and(|m| !m.https && m.host == found.host);
    if found.https || beside_local_metadata() {
        Ok(())
    } else {
        Err("must be an https:// URL (plain http only beside metadata from the same loopback host)")
    }
}

/// Whether `host` (as in a URL, an IPv6 address in brackets) is `localhost` or a loopback
/// address.
fn is_loopback_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok_and(|ip| ip.is_loopback()),
        None => host == "localhost" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()),
    }
}

/// `url` as it may be logged or shown in an error: without userinfo (`user:password@`),
/// query and fragment.
pub fn loggable_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let before_path = &rest[..rest.find('/').unwrap_or(rest.len())];
    let rest = match before_path.find(['?', '#']) {
        // A query or fragment before any path ends the host (`https://host?a=b@c`), unless
        // what precedes it is no host: then it is a password holding `?` or `#`
        // (`https://u:p?ss@host`), dropped below with the rest of the userinfo.
        Some(at) if is_plain_host(&before_path[..at]) => &before_path[..at],
        // Everything up to the last `@` before the path is userinfo.
        _ => before_path.rfind('@').map_or(rest, |at| &rest[at + 1..]),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    // Whatever else stands where the host should be is not shown at all.
    let rest = if is_plain_host(&rest[..rest.find('/').unwrap_or(rest.len())]) {
        rest
    } else {
        "(hidden)"
    };
    match scheme {
        "" => rest.to_owned(),
        _ => format!("{scheme}://{rest}"),
    }
}

/// Whether `authority` is `host[:port]` and nothing else: a name of letters, digits and
/// `-._~`, or a bracketed IPv6 literal, and a port of digits.
fn is_plain_host(authority: &str) -> bool {
    let Some((host, port)) = super::htu::split_authority(authority) else {
        return false;
    };
    let host_ok = if host.starts_with('[') {
        is_ipv6_literal(host)
    } else {
        !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    host_ok && port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `host` is a bracketed IPv6 address, `[...]` (RFC 3986 §3.2.2).
fn is_ipv6_literal(host: &str) -> bool {
    host.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Where the metadata of `issuer` is published (RFC 8414 §3.1): the well-known path is
/// inserted between the host and the issuer's path (whose trailing `/` is dropped), so
/// `https://as.example/tenant1` gives
/// `https://as.example/.well-known/oauth-authorization-server/tenant1`.
pub fn metadata_url(issuer: &str) -> Result<String, Error> {
    check_issuer_identifier(issuer)?;
    let (scheme, rest) = issuer.split_once("://").unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    };
    Ok(format!("{scheme}://{authority}/.well-known/{WELL_KNOWN_SUFFIX}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lanyard_metadata() -> AuthorizationServerMetadata {
        AuthorizationServerMetadata {
            token_endpoint: Some("https://as.example/token".into()),
            jwks_uri: Some("https://as.example/jwks".into()),
            grant_types_supported: Some(vec![GrantType::ClientCredentials, GrantType::TokenExchange]),
            token_endpoint_auth_methods_supported: Some(vec![
                AuthMethod::PrivateKeyJwt,
                AuthMethod::TlsClientAuth,
                AuthMethod::SpiffeJwt,
                AuthMethod::SpiffeX509,
            ]),
            token_endpoint_auth_signing_alg_values_supported: Some(alg_values(AlgSet::of(&[
                crate::Algorithm::ES256,
                crate::Algorithm::EdDSA,
            ]))),
            mtls_endpoint_aliases: Some(BTreeMap::from([(
                "token_endpoint".to_owned(),
                "https://mtls.as.example/token".to_owned(),
            )])),
            tls_client_certificate_bound_access_tokens: Some(true),
            dpop_signing_alg_values_supported: Some(vec!["ES256".into()]),
            ..AuthorizationServerMetadata::new("https://as.example")
        }
    }

    #[test]
    fn serializes_without_nulls_and_with_empty_response_types() {
        let value: Value = serde_json::from_str(&lanyard_metadata().to_json()).unwrap();
        assert_eq!(value["response_types_supported"], json!([]));
        assert_eq!(
            value["token_endpoint_auth_methods_supported"],
            json!(["private_key_jwt", "tls_client_auth", "spiffe_jwt", "spiffe_x509"])
        );
        assert_eq!(
            value["token_endpoint_auth_signing_alg_values_supported"],
            json!(["ES256", "EdDSA"])
        );
        assert_eq!(
            value["mtls_endpoint_aliases"]["token_endpoint"],
            json!("https://mtls.as.example/token")
        );
        assert!(value.get("authorization_endpoint").is_none());
        assert!(!value.to_string().contains("null"));
    }

    #[test]
    fn a_client_checks_the_issuer() {
        let doc = lanyard_metadata().to_json();
        let parsed = AuthorizationServerMetadata::from_json(doc.as_bytes(), "https://as.example").unwrap();
        assert_eq!(parsed, lanyard_metadata());
        let e = AuthorizationServerMetadata::from_json(doc.as_bytes(), "https://as.example/").unwrap_err();
        assert_eq!(e.kind(), "issuer_mismatch");
        // Unknown members and methods are kept, repeated members refuse.
        let odd = br#"{"issuer":"https://x.example","token_endpoint_auth_methods_supported":["attest_jwt_client_auth"],"x-custom":1}"#;
        let parsed = AuthorizationServerMetadata::from_json(odd, "https://x.example").unwrap();
        assert_eq!(
            parsed.token_endpoint_auth_methods_supported,
            Some(vec![AuthMethod::Other("attest_jwt_client_auth".into())])
        );
        assert_eq!(parsed.extra["x-custom"], json!(1));
        let dup = br#"{"issuer":"https://x.example","issuer":"https://x.example"}"#;
        assert_eq!(
            AuthorizationServerMetadata::from_json(dup, "https://x.example")
                .unwrap_err()
                .kind(),
            "duplicate_member"
        );
        let wrong_type = br#"{"issuer":"https://x.example","jwks_uri":5}"#;
        assert_eq!(
            AuthorizationServerMetadata::from_json(wrong_type, "https://x.example")
                .unwrap_err()
                .kind(),
            "malformed"
        );
    }

    #[test]
    fn well_known_urls() {
        assert_eq!(
            metadata_url("https://as.example").unwrap(),
            "https://as.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            metadata_url("https://as.example/tenant1/").unwrap(),
            "https://as.example/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server"
        );
        for bad in [
            "http://as.example",
            "https://as.example?x=1",
            "https://as.example#f",
            "as.example",
            "https://user@as.example",
            "ftp://as.example",
        ] {
            assert_eq!(metadata_url(bad).unwrap_err().kind(), "invalid_issuer", "{bad}");
        }
        assert!(check_issuer_identifier("http://[::1]:8443/x").is_ok());
        assert!(check_issuer_identifier("http://localhost.evil.example").is_err());
        assert!(check_issuer_identifier("HTTPS://as.example").is_err());
        // The refusal names the issuer without its userinfo.
        let refused = check_issuer_identifier("https://svc:s3cret@as.example").unwrap_err();
        assert!(!refused.to_string().contains("s3cret"), "{refused}");
    }

    #[test]
    fn loggable_urls_leave_credentials_out() {
        assert_eq!(
            loggable_url("https://svc:s3cret@keys.example:8443/jwks?key=abc#x"),
            "https://keys.example:8443/jwks"
        );
        assert_eq!(
            loggable_url("https://keys.example/a@b/jwks"),
            "https://keys.example/a@b/jwks"
        );
        assert_eq!(loggable_url("https://u@keys.example"), "https://keys.example");
        // A password holding `?` or `#` is not cut in half and half logged.
        assert_eq!(
            loggable_url("https://u:p?ss@keys.example/jwks"),
            "https://keys.example/jwks"
        );
        assert_eq!(loggable_url("https://u:p#ss@keys.example"), "https://keys.example");
        // An `@` in a query before any path is not userinfo: the query is still cut.
        assert_eq!(
            loggable_url("https://keys.example?u=a@b&token=SECRET"),
            "https://keys.example"
        );
        assert_eq!(loggable_url("https://[::1]:8443#t=a@b"), "https://[::1]:8443");
        // What stands where the host should be, when it is no host, is not shown.
        assert_eq!(loggable_url("https://x@b&token=SECRET/jwks"), "https://(hidden)");
    }

    #[test]
    fn a_discovered_url_is_https_or_beside_metadata_on_the_same_loopback_host() {
        let remote = "https://idp.example.com/.well-known/openid-configuration";
        let local = "http://127.0.0.1:9000/.well-known/oauth-authorization-server";
        for (found, metadata, accepted) in [
            ("https://keys.example.com/jwks", remote, true),
            ("http://idp.example.com/jwks", remote, false),
            ("http://127.0.0.1/jwks", remote, false),
            ("ftp://idp.example.com/jwks", remote, false),
            ("not a url", remote, false),
            ("http://127.0.0.1:9001/jwks", local, true),
            ("https://keys.example.com/jwks", local, true),
            ("http://localhost.evil.com/jwks", local, false),
            ("http://10.0.0.1/jwks", local, false),
            ("http://localhost/jwks", local, false),
            ("http://user@127.0.0.1:9001/jwks", local, false),
        ] {
            assert_eq!(
                check_discovered_url(found, metadata).is_ok(),
                accepted,
                "{found} beside {metadata}"
            );
        }
    }

    #[test]
    fn remote_urls_are_https_or_loopback_http_without_userinfo() {
        for (good, https, host) in [
            ("https://keys.example/jwks", true, "keys.example"),
            ("https://keys.example:8443/a/b?x=1", true, "keys.example"),
            ("https://keys.example", true, "keys.example"),
            ("https://keys.example?x=1", true, "keys.example"),
            ("https://keys.example#f", true, "keys.example"),
            ("https://keys.example:65535/k", true, "keys.example"),
            ("https://[2001:db8::1]:443/k", true, "[2001:db8::1]"),
            ("http://127.0.0.1:9000/jwks", false, "127.0.0.1"),
            ("http://127.0.0.2/jwks", false, "127.0.0.2"),
            ("http://localhost/jwks", false, "localhost"),
            ("http://[::1]:9/k", false, "[::1]"),
        ] {
            assert_eq!(check_remote_url(good), Ok(RemoteUrl { https, host }), "{good}");
        }
        for (bad, problem) in [
            ("http://keys.example/jwks", UrlProblem::NotHttps),
            ("http://10.0.0.1/jwks", UrlProblem::NotHttps),
            ("http://localhost.evil.example/jwks", UrlProblem::NotHttps),
            ("http://127.0.0.1.evil.example/jwks", UrlProblem::NotHttps),
            ("http://[::2]/jwks", UrlProblem::NotHttps),
            ("ftp://keys.example/jwks", UrlProblem::NotHttps),
            ("https://user:secret@keys.example/jwks", UrlProblem::Userinfo),
            ("https://user@keys.example/jwks", UrlProblem::Userinfo),
            ("http://localhost@evil.example/jwks", UrlProblem::Userinfo),
            ("http://127.0.0.1:80@evil.example/jwks", UrlProblem::Userinfo),
            ("HTTPS://keys.example/k", UrlProblem::NotHttps),
            ("http://LOCALHOST/k", UrlProblem::NotHttps),
            ("http://localhost./k", UrlProblem::NotHttps),
            ("http://127.1/k", UrlProblem::NotHttps),
            ("http://0x7f000001/k", UrlProblem::NotHttps),
            ("http://[::ffff:127.0.0.1]/k", UrlProblem::NotHttps),
            ("https:///jwks", UrlProblem::NotAbsolute),
            ("https://:443/jwks", UrlProblem::NotAbsolute),
            ("https://keys.example:/jwks", UrlProblem::BadPort),
            ("https://keys.example:x/jwks", UrlProblem::BadPort),
            ("https://keys.example:99999/jwks", UrlProblem::BadPort),
            ("https://[::1]:70000/jwks", UrlProblem::BadPort),
            ("https://as.example\\x/jwks", UrlProblem::BadHost),
            ("https://%41s.example/jwks", UrlProblem::BadHost),
            ("http://[fe80::1%25eth0]/jwks", UrlProblem::BadHost),
            ("https://[not-an-ip]/jwks", UrlProblem::BadHost),
            ("https://[::1/jwks", UrlProblem::BadHost),
            ("https://[::1]x/jwks", UrlProblem::BadHost),
            ("https://[]/jwks", UrlProblem::BadHost),
            ("/jwks", UrlProblem::NotAbsolute),
            ("", UrlProblem::NotAbsolute),
            ("https://keys.example/j wks", UrlProblem::NotPrintableAscii),
            ("https://keys.example/\u{e9}", UrlProblem::NotPrintableAscii),
        ] {
            assert_eq!(check_remote_url(bad), Err(problem), "{bad}");
        }
    }
}
