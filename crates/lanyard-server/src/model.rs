//! The server's domain objects: registration entries, agents, join tokens, signing
//! authorities and OAuth clients. Plain data; the datastore persists them and the API
//! layers map them to the wire.

use serde::{Deserialize, Serialize};

use lanyard_core::oauth::{AuthMethod, GrantType, SpiffeIdPattern, TokenTypeUri};
use lanyard_core::{JwkSet, SpiffeId, UnixTime, WorkloadId};

pub use crate::sdcwt::EntryClaims;

/// A selector `type:value`, e.g. `unix:uid:1000` (type `unix`, value `uid:1000`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Selector {
    /// The attestor type (`unix`, `k8s`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The value, which may itself contain `:`.
    pub value: String,
}

impl Selector {
    /// Parses `type:value`; both parts must be non-empty.
    pub fn parse(s: &str) -> Option<Selector> {
        let (kind, value) = s.split_once(':')?;
        (!kind.is_empty() && !value.is_empty()).then(|| Selector {
            kind: kind.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// A registration entry: which workload identity a workload gets, on which agent, when
/// its attested selectors include these selectors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Server-assigned ID.
    pub id: String,
    /// The identity issued (a SPIFFE ID or WIMSE identifier).
    pub spiffe_id: WorkloadId,
    /// The agent (or node alias) that may obtain it.
    pub parent_id: SpiffeId,
    /// Every one of these must be among the workload's attested selectors.
    pub selectors: Vec<Selector>,
    /// X.509-SVID lifetime in seconds (0 = server default).
    pub x509_svid_ttl: u64,
    /// JWT-SVID lifetime in seconds (0 = server default).
    pub jwt_svid_ttl: u64,
    /// WIT lifetime in seconds (0 = server default).
    pub wit_ttl: u64,
    /// DNS names added to X.509-SVIDs.
    pub dns_names: Vec<String>,
    /// Foreign trust domains whose bundles the workload also receives.
    pub federates_with: Vec<String>,
    /// Whether the workload may use the admin API.
    pub admin: bool,
    /// The claims of the entry's SD-CWTs and their disclosure policy.
    #[serde(default, skip_serializing_if = "EntryClaims::is_empty")]
    pub claims: EntryClaims,
    /// Increases on every update.
    pub revision: u64,
    /// Creation time.
    pub created_at: UnixTime,
}

/// What a caller supplies to create or update an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntrySpec {
    /// The identity issued.
    pub spiffe_id: WorkloadId,
    /// The agent that may obtain it.
    pub parent_id: SpiffeId,
    /// Required selectors (at least one).
    pub selectors: Vec<Selector>,
    /// X.509-SVID TTL (0 = default).
    #[serde(default)]
    pub x509_svid_ttl: u64,
    /// JWT-SVID TTL (0 = default).
    #[serde(default)]
    pub jwt_svid_ttl: u64,
    /// WIT TTL (0 = default).
    #[serde(default)]
    pub wit_ttl: u64,
    /// DNS names.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Federated trust domains.
    #[serde(default)]
    pub federates_with: Vec<String>,
    /// Admin flag.
    #[serde(default)]
    pub admin: bool,
    /// The claims of the entry's SD-CWTs and their disclosure policy.
    #[serde(default, skip_serializing_if = "EntryClaims::is_empty")]
    pub claims: EntryClaims,
}

/// An attested node agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The agent's SPIFFE ID.
    pub id: SpiffeId,
    /// How it attested (`join_token`, `x509pop`).
    pub attestation_type: String,
    /// Serial number of its current agent SVID.
    pub svid_serial: String,
    /// Serial number of the SVID the last renewal replaced, accepted until the agent first
    /// presents the new one; empty when there is none.
    #[serde(default)]
    pub previous_svid_serial: String,
    /// When its current SVID expires.
    pub svid_expires_at: UnixTime,
    /// Selectors the node attestor produced.
    pub selectors: Vec<Selector>,
    /// A banned agent can no longer renew or fetch anything.
    pub banned: bool,
    /// First attestation.
    pub created_at: UnixTime,
}

/// A one-time join token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// The secret token (only its hash is stored; see the datastore).
    pub token: String,
    /// Expiry.
    pub expires_at: UnixTime,
}

/// What a signing authority signs.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthorityKind {
    /// The X.509 CA.
    X509,
    /// The JWT-SVID signing key.
    Jwt,
    /// The WIT signing key.
    Wit,
    /// The OAuth authorization server's access-token signing key (RFC 9068 `at+jwt`),
    /// published in the AS's own JWKS and never in the SPIFFE bundle.
    AccessToken,
    /// The SD-CWT signing key (`lanyard-server/src/sdcwt.rs`): published at the SD-CWT
    /// issuer key endpoints, never in the SPIFFE bundle.
    SdCwt,
}

impl AuthorityKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityKind::X509 => "x509",
            AuthorityKind::Jwt => "jwt",
            AuthorityKind::Wit => "wit",
            AuthorityKind::AccessToken => "access-token",
            AuthorityKind::SdCwt => "sd-cwt",
        }
    }
}

/// The lifecycle of a signing authority (SPIRE's journal statuses).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthorityStatus {
    /// Published in the bundle, not yet signing.
    Prepared,
    /// Signing.
    Active,
    /// Replaced; still published until what it signed has expired.
    Old,
}

impl AuthorityStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityStatus::Prepared => "prepared",
            AuthorityStatus::Active => "active",
            AuthorityStatus::Old => "old",
        }
    }
}

/// A stored signing authority: its public material (for bundles), private key material
/// (PKCS#8, possibly encrypted at rest), and lifecycle.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority {
    /// Key ID (`kid` for JWT/WIT keys; a stable ID for CAs).
    pub id: String,
    /// What it signs.
    pub kind: AuthorityKind,
    /// Lifecycle state.
    pub status: AuthorityStatus,
    /// For X.509: the CA certificate (DER); for JWT/WIT: the public JWK as JSON bytes.
    pub public: Vec<u8>,
    /// The private key, PKCS#8 DER (encrypted when a key-encryption key is configured).
    pub private_key: Vec<u8>,
    /// Validity start.
    pub not_before: UnixTime,
    /// Validity end: after this (plus the longest credential lifetime) it is dropped.
    pub not_after: UnixTime,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// How an OAuth client is registered: who may authenticate as it and what it may ask for
/// (issue 12; client metadata names follow RFC 7591 §2 and draft-ietf-oauth-spiffe-client-auth
/// §5.1 where one exists). What an administrator supplies to create or update a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClientSpec {
    /// SPIFFE IDs allowed to authenticate as this client with an SVID: exact, or a trailing
    /// `/*` path-segment prefix (`spiffe_id` of the draft).
    #[serde(default)]
    pub spiffe_ids: Vec<SpiffeIdPattern>,
    /// The client authentication methods it may use (`private_key_jwt`, `spiffe_jwt`,
    /// `spiffe_x509`, `tls_client_auth`, `spiffe_wit`, `client_secret_basic`,
    /// `client_secret_post`).
    pub auth_methods: Vec<AuthMethod>,
    /// Its public keys for `private_key_jwt` (RFC 7591 `jwks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// Where its public keys are published instead (RFC 7591 `jwks_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Grant types it may use (`client_credentials` when empty).
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    /// Scope values it may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `resource` (RFC 8707) and `audience` (RFC 8693) values it may request; a request
    /// that names none gets a token for all of them (and none at all when this is empty).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Access-token lifetime in seconds (0 = the server default; never longer than it).
    #[serde(default)]
    pub access_token_ttl: u64,
    /// Tokens must be DPoP-bound (RFC 9449): a token request without a proof is refused.
    #[serde(default)]
    pub require_dpop: bool,
    /// Tokens must be certificate-bound (RFC 8705 §3): only mutual-TLS client
    /// authentication gets a token.
    #[serde(default)]
    pub require_certificate_binding: bool,
    /// What it may do with token exchange (RFC 8693) and the Transaction Token Service;
    /// absent = nothing (no exchange at all).
    #[serde(default, skip_serializing_if = "ExchangePolicy::is_none")]
    pub exchange: ExchangePolicy,
}

/// A client's token-exchange policy (RFC 8693 §1.1, §5; draft-ietf-oauth-transaction-tokens-11
/// §"TTS Issuance Policies"). The default allows nothing. The client must also be
/// registered for the `urn:ietf:params:oauth:grant-type:token-exchange` grant type.
///
/// Without an `actor_token`, a client that may delegate becomes the actor itself (its
/// SPIFFE ID, or its `client_id`), so the issued token shows who acts; only a client that
/// may impersonate but not delegate gets a token without a new `act`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExchangePolicy {
    /// It may ask for impersonation: a token about the subject with no new actor.
    pub impersonate: bool,
    /// It may ask for delegation: a token about the subject with `act` naming the actor.
    pub delegate: bool,
    /// The `subject_token_type`s it may present (`urn:ietf:params:oauth:token-type:access_token`,
    /// `...:jwt` for JWT-SVIDs, `...:txn_token`).
    pub subject_token_types: Vec<TokenTypeUri>,
    /// The `actor_token_type`s it may present (`...:access_token`, `...:jwt`).
    pub actor_token_types: Vec<TokenTypeUri>,
    /// Besides this server's issuer and the client's own `client_id`, the `aud` values an
    /// access token presented as subject or actor token may name (the resource identifiers
    /// the client serves: a resource server exchanges the tokens sent to it).
    pub subject_audiences: Vec<String>,
    /// It may ask the Transaction Token Service for Txn-Tokens (and replacements).
    pub txn_tokens: bool,
    /// The trusted external issuers (`[[oauth.trusted_issuers]]`, by issuer identifier)
    /// whose tokens it may present as subject or actor tokens.
    pub trusted_issuers: Vec<String>,
}

impl ExchangePolicy {
    /// Whether the policy allows nothing at all (the default).
    pub fn is_none(&self) -> bool {
        *self == ExchangePolicy::default()
    }
}

impl OAuthClientSpec {
    /// The grant types it may use, with the default applied.
    pub fn allowed_grant_types(&self) -> Vec<GrantType> {
        if self.grant_types.is_empty() {
            vec![GrantType::ClientCredentials]
        } else {
            self.grant_types.clone()
        }
    }

    /// Its access-token lifetime in seconds under the server's `oauth.access_token_ttl`:
    /// the registered one, capped by the server's, which is also the default.
    pub fn effective_access_token_ttl(&self, server_ttl: u64) -> u64 {
        match self.access_token_ttl {
            0 => server_ttl,
            registered => registered.min(server_ttl),
        }
    }

    /// Whether it may authenticate with `method`.
    pub fn allows(&self, method: &AuthMethod) -> bool {
        self.auth_methods.contains(method)
    }
}

/// A registered OAuth client.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClient {
    /// The client identifier (any string: a SPIFFE ID, a URL, a name).
    pub client_id: String,
    /// Its registration.
    #[serde(flatten)]
    pub spec: OAuthClientSpec,
    /// The PHC-style Argon2id hash of its secret, when it has one (never the secret).
    #[serde(default, skip_serializing)]
    pub secret_hash: Option<String>,
    /// Whether it has a secret (derived from `secret_hash` for the wire).
    #[serde(default)]
    pub has_secret: bool,
    /// Increases on every update.
    pub revision: u64,
    /// Creation time.
    pub created_at: UnixTime,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("spec", &self.spec)
            .field("has_secret", &self.secret_hash.is_some())
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::{ExchangePolicy, OAuthClientSpec};
    use lanyard_core::oauth::{AuthMethod, GrantType};

    fn spec(access_token_ttl: u64, grant_types: Vec<GrantType>) -> OAuthClientSpec {
        OAuthClientSpec {
            spiffe_ids: Vec::new(),
            auth_methods: vec![AuthMethod::PrivateKeyJwt],
            jwks: None,
            jwks_uri: None,
            grant_types,
            scopes: Vec::new(),
            audiences: vec!["https://api.example".into()],
            access_token_ttl,
            require_dpop: false,
            require_certificate_binding: false,
            exchange: ExchangePolicy::default(),
        }
    }

    #[test]
    fn a_clients_token_lifetime_is_the_servers_by_default_and_never_longer() {
        assert_eq!(spec(0, Vec::new()).effective_access_token_ttl(300), 300);
        assert_eq!(spec(60, Vec::new()).effective_access_token_ttl(300), 60);
        assert_eq!(spec(900, Vec::new()).effective_access_token_ttl(300), 300);
    }

    #[test]
    fn no_registered_grant_types_means_client_credentials() {
        assert_eq!(
            spec(0, Vec::new()).allowed_grant_types(),
            vec![GrantType::ClientCredentials]
        );
        let exchange = vec![GrantType::TokenExchange];
        assert_eq!(spec(0, exchange.clone()).allowed_grant_types(), exchange);
    }
}
