//! The OAuth-specific ways a request, assertion, proof or token can break a rule, each
//! with a stable kind (carried by [`crate::Error::OAuth`]).
//!
//! Every variant's doc names the rule and the RFC 6749 §5.2 (or RFC 6750, RFC 9449)
//! `error` code the rule's RFC prescribes; the one mapping from errors to OAuth responses
//! lives with the authorization server and the resource-server layer, which know the
//! endpoint ([`super::ErrorCode`] gives the wire codes and statuses).

/// An OAuth rule that was broken. Messages never contain token or assertion values.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The request body is not `application/x-www-form-urlencoded` (RFC 6749 §3.2;
    /// `invalid_request`).
    #[error("the content type is {}, not application/x-www-form-urlencoded", crate::error::quoted_or(found.as_deref(), "missing"))]
    ContentType {
        /// The `Content-Type` received (at most 64 characters of it), if any.
        found: Option<String>,
    },
    /// The form body is longer than the limit.
    #[error("the form body is {actual} bytes, over the {limit}-byte limit")]
    FormTooLarge {
        /// The limit in bytes.
        limit: usize,
        /// The body's length.
        actual: usize,
    },
    /// The request body could not be read to its end: the connection closed early, its
    /// chunked framing is broken, or it did not arrive in time (`invalid_request`).
    #[error("the request body could not be read: it ended early, broke its framing or did not arrive in time")]
    BodyUnreadable,
    /// The form has more parameters than the limit.
    #[error("the form has more than {limit} parameters")]
    TooManyParameters {
        /// The limit.
        limit: usize,
    },
    /// The form is not valid `application/x-www-form-urlencoded`: a bad percent-escape,
    /// bytes that are not UTF-8 after decoding, or a parameter without a name.
    #[error("the form is not valid application/x-www-form-urlencoded: {0}")]
    FormEncoding(String),
    /// A parameter appears more than once (RFC 6749 §3.1/§3.2; only `resource` and
    /// `audience` may repeat, RFC 8707 §2 and RFC 8693 §2.1; `invalid_request`).
    #[error("parameter {0:?} appears more than once")]
    DuplicateParameter(String),
    /// A required request parameter is absent (`invalid_request`).
    #[error("missing parameter {0:?}")]
    MissingParameter(&'static str),
    /// A request parameter has a value the protocol does not allow (`invalid_request`).
    #[error("invalid parameter {name:?}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A `resource` is not an absolute URI without a fragment (RFC 8707 §2;
    /// `invalid_target`).
    #[error("resource {resource:?} is not an absolute URI without a fragment")]
    InvalidResource {
        /// The value (at most 256 characters of it).
        resource: String,
    },
    /// The request uses more than one client authentication method (RFC 6749 §2.3;
    /// `invalid_request`).
    #[error("more than one client authentication method in one request: {}", .methods.join(", "))]
    MultipleClientAuthentication {
        /// The methods found (e.g. `client_secret_basic`, `client_assertion`).
        methods: Vec<&'static str>,
    },
    /// A scope string breaks the RFC 6749 §3.3 syntax (`invalid_scope`).
    #[error("invalid scope: {0}")]
    ScopeSyntax(String),
    /// A client assertion's `aud` holds the issuer identifier and other values, where the
    /// issuer must be the sole value (draft-ietf-oauth-rfc7523bis; `invalid_client`).
    #[error("aud must be the issuer {issuer:?} as its sole value, found {found:?}")]
    AudienceNotSole {
        /// The issuer identifier.
        issuer: String,
        /// The assertion's audiences.
        found: Vec<String>,
    },
    /// A client assertion's `aud` is the issuer identifier with or without a trailing slash
    /// where the issuer has it the other way (an exact match is required,
    /// draft-ietf-oauth-rfc7523bis; `invalid_client`).
    #[error("aud {found:?} differs from the issuer {issuer:?} by a trailing slash")]
    AudienceTrailingSlash {
        /// The issuer identifier.
        issuer: String,
        /// The assertion's audience.
        found: String,
    },
    /// A client assertion's `iss` or `sub` is not the client the request names (RFC 7523
    /// §3; `invalid_client`).
    #[error("{claim} {found:?} is not the client_id {client_id:?}")]
    ClientIdMismatch {
        /// `iss` or `sub`.
        claim: &'static str,
        /// The client the request names.
        client_id: String,
        /// The claim's value.
        found: String,
    },
    /// No registered key fits a token (by `kid`, or a single key fitting `alg`).
    #[error("no registered key of {owner}{}: {reason}", kid.as_ref().map(|k| format!(" with kid {k:?}")).unwrap_or_default())]
    UnknownKey {
        /// Whose keys were searched (a client, an authorization server).
        owner: String,
        /// The token's `kid`, if any.
        kid: Option<String>,
        /// Why no key fits.
        reason: &'static str,
    },
    /// The SPIFFE ID of a presented SVID is not authorized for the client the request
    /// names (draft-ietf-oauth-spiffe-client-auth §3.1, §3.2, §5.1; `invalid_client`).
    #[error("SPIFFE ID {spiffe_id:?} is not authorized for client {client_id:?}")]
    SpiffeIdNotAuthorized {
        /// The SVID's SPIFFE ID.
        spiffe_id: String,
        /// The client the request names.
        client_id: String,
    },
    /// A token's `iss` is not the expected issuer (RFC 9068 §4; RFC 8414 §3.3 for
    /// metadata; `invalid_token`).
    #[error("issuer {found:?} is not the expected {expected:?}")]
    IssuerMismatch {
        /// The expected issuer identifier.
        expected: String,
        /// What the token or document says.
        found: String,
    },
    /// An issuer identifier is not an `https` URL without query or fragment (RFC 8414 §2).
    #[error("invalid issuer identifier {issuer:?}: {reason}")]
    InvalidIssuer {
        /// The identifier.
        issuer: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A DPoP proof's `htm` is not the request's method (RFC 9449 §4.3;
    /// `invalid_dpop_proof`).
    #[error("htm {found:?} is not the request method {expected:?}")]
    HtmMismatch {
        /// The request's method.
        expected: String,
        /// The proof's `htm`.
        found: String,
    },
    /// A DPoP proof's `htu` does not match the request URI after normalisation (RFC 9449
    /// §4.3; `invalid_dpop_proof`).
    #[error("htu {found:?} does not match the request URI {expected:?}")]
    HtuMismatch {
        /// The request URI, normalised.
        expected: String,
        /// The proof's `htu`.
        found: String,
    },
    /// A DPoP proof's header `jwk` carries private key material (RFC 9449 §4.3;
    /// `invalid_dpop_proof`).
    #[error("the DPoP proof's jwk contains private key material")]
    PrivateKeyInProof,
    /// A DPoP proof's `iat` is further in the past than the window allows (RFC 9449 §11.1;
    /// `invalid_dpop_proof`).
    #[error("proof issued at {iat} is older than {max_age}s (now {now})")]
    StaleProof {
        /// The proof's `iat`.
        iat: u64,
        /// The verification time.
        now: u64,
        /// The accepted age in seconds.
        max_age: u64,
    },
    /// The server requires a DPoP nonce and the proof has none (RFC 9449 §8, §9;
    /// `use_dpop_nonce`).
    #[error("the DPoP proof has no nonce and the server requires one")]
    DpopNonceMissing,
    /// The proof's nonce is not one the server currently accepts (RFC 9449 §8, §9;
    /// `use_dpop_nonce`).
    #[error("the DPoP proof's nonce is not current")]
    DpopNonceMismatch,
    /// A sender-constrained token was presented without the proof its `cnf` requires: no
    /// DPoP proof for `jkt`, no client certificate for `x5t#S256` (RFC 9449 §7.1, RFC 8705
    /// §3; `invalid_token`).
    #[error("the token is bound by cnf.{member} but the request carries no {what}")]
    ConfirmationMissing {
        /// `jkt` or `x5t#S256`.
        member: &'static str,
        /// What was missing.
        what: &'static str,
    },
    /// The key or certificate presented is not the one the token's `cnf` names (RFC 9449
    /// §7.1, RFC 8705 §3; `invalid_token` / `invalid_dpop_proof`).
    #[error("cnf.{member} does not match the {what} presented")]
    ConfirmationMismatch {
        /// `jkt` or `x5t#S256`.
        member: &'static str,
        /// The DPoP key or the client certificate.
        what: &'static str,
    },
    /// A DPoP proof came with a token that has no `cnf.jkt` (a bearer token used as a DPoP
    /// token, RFC 9449 §7.1; `invalid_token`).
    #[error("a DPoP proof was presented for a token that is not DPoP-bound")]
    NotDpopBound,
    /// The token lacks a scope the resource requires (RFC 6750 §3.1;
    /// `insufficient_scope`).
    #[error("the token's scope lacks {missing:?}")]
    InsufficientScope {
        /// The required scope values the token does not grant, space-separated.
        missing: String,
    },
    /// A requested scope goes beyond what the subject token or the policy grants (RFC 8693
    /// §5, draft-ietf-oauth-transaction-tokens-11; `invalid_scope`).
    #[error("the requested scope adds {added:?} to what the subject token and the policy grant")]
    ScopeWidened {
        /// The scope values that would be added, space-separated.
        added: String,
    },
    /// The subject token's scope cannot be determined where it must be (a Txn-Token
    /// request, draft-ietf-oauth-transaction-tokens-11; `invalid_request`).
    #[error("the subject token's scope cannot be determined")]
    SubjectScopeUnknown,
    /// The client's policy does not allow this kind of exchange (RFC 8693 §2.2.2: a token
    /// "unacceptable based on policy"; `invalid_request`).
    #[error("this client may not ask for {mode}")]
    ExchangeNotAllowed {
        /// `delegation` or `impersonation`.
        mode: &'static str,
    },
    /// The actor is not the party the subject token's `may_act` names (RFC 8693 §4.4;
    /// `invalid_request`).
    #[error("the subject token's may_act does not name the actor {actor:?}")]
    MayActMismatch {
        /// The actor's `sub`.
        actor: String,
    },
    /// A Txn-Token replacement would change a claim that must stay
    /// (draft-ietf-oauth-transaction-tokens-11: `txn`, `sub`, `aud`; `invalid_request`).
    #[error("a Txn-Token replacement must not change {claim}")]
    ReplacementChanges {
        /// The claim.
        claim: &'static str,
    },
    /// A token exchange's subject or actor token comes from an issuer that is not a
    /// trusted external issuer, or not one the client may exchange tokens of (RFC 8693
    /// §2.2.2: "unacceptable based on policy"; `invalid_request`).
    #[error("tokens of the issuer {issuer:?} are not accepted")]
    UntrustedIssuer {
        /// The token's `iss` (clipped).
        issuer: String,
    },
    /// An external token's claims match none of its issuer's mapping rules (RFC 8693
    /// §2.2.2; `invalid_request`).
    #[error("the token's claims match no mapping rule")]
    NoMappingRule,
    /// A claim a mapping template substitutes is absent, not a string, or could forge a
    /// path segment (`invalid_request`).
    #[error("claim {claim:?} cannot be part of a workload identifier: {reason}")]
    UnsafeClaimValue {
        /// The claim's path (clipped).
        claim: String,
        /// What is wrong with its value.
        reason: &'static str,
    },
    /// A mapping template rendered something that is not an identifier of this server's
    /// trust domain (`invalid_request`).
    #[error("the mapped workload identifier is invalid: {reason}")]
    MappedIdentityInvalid {
        /// Why.
        reason: String,
    },
}

impl Violation {
    /// The stable, lowercase code for this violation (the conformance vectors use it).
    pub fn kind(&self) -> &'static str {
        match self {
            Violation::ContentType { .. } => "form_content_type",
            Violation::FormTooLarge { .. } => "form_too_large",
            Violation::BodyUnreadable => "body_unreadable",
            Violation::TooManyParameters { .. } => "form_too_many_parameters",
            Violation::FormEncoding(_) => "form_encoding",
            Violation::DuplicateParameter(_) => "duplicate_parameter",
            Violation::MissingParameter(_) => "missing_parameter",
            Violation::InvalidParameter { .. } => "invalid_parameter",
            Violation::InvalidResource { .. } => "invalid_resource",
            Violation::MultipleClientAuthentication { .. } => "multiple_client_auth",
            Violation::ScopeSyntax(_) => "scope_syntax",
            Violation::AudienceNotSole { .. } => "aud_not_sole",
            Violation::AudienceTrailingSlash { .. } => "aud_trailing_slash",
            Violation::ClientIdMismatch { .. } => "client_id_mismatch",
            Violation::UnknownKey { .. } => "unknown_key",
            Violation::SpiffeIdNotAuthorized { .. } => "spiffe_id_not_authorized",
            Violation::IssuerMismatch { .. } => "issuer_mismatch",
            Violation::InvalidIssuer { .. } => "invalid_issuer",
            Violation::HtmMismatch { .. } => "htm_mismatch",
            Violation::HtuMismatch { .. } => "htu_mismatch",
            Violation::PrivateKeyInProof => "dpop_private_key",
            Violation::StaleProof { .. } => "stale_proof",
            Violation::DpopNonceMissing => "dpop_nonce_missing",
            Violation::DpopNonceMismatch => "dpop_nonce_mismatch",
            Violation::ConfirmationMissing { .. } => "cnf_missing_proof",
            Violation::ConfirmationMismatch { .. } => "cnf_mismatch",
            Violation::NotDpopBound => "not_dpop_bound",
            Violation::InsufficientScope { .. } => "insufficient_scope",
            Violation::ScopeWidened { .. } => "scope_widened",
            Violation::SubjectScopeUnknown => "subject_scope_unknown",
            Violation::ExchangeNotAllowed { .. } => "exchange_not_allowed",
            Violation::MayActMismatch { .. } => "may_act_mismatch",
            Violation::ReplacementChanges { .. } => "replacement_changes",
            Violation::UntrustedIssuer { .. } => "untrusted_issuer",
            Violation::NoMappingRule => "no_mapping_rule",
            Violation::UnsafeClaimValue { .. } => "unsafe_claim_value",
            Violation::MappedIdentityInvalid { .. } => "mapped_identity_invalid",
        }
    }
}

/// Shortens untrusted text for an error message (at most `max` characters).
pub(crate) fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
