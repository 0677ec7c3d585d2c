//! Server configuration: a TOML file (every option documented in `conf/server.toml`),
//! then `LANYARD_*` environment variables, then built-in defaults; and the loaders of the
//! files a configuration names (the public TLS certificate, the x509pop CA bundle), which
//! report with `anyhow` context like the composition root that calls them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use lanyard_core::TrustDomain;
use lanyard_net::ListenerLimits;

/// How logs are written.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Where signing keys live at rest.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStorageKind {
    /// PKCS#8 files with mode 0600 under `<data_dir>/keys` (default).
    #[default]
    Files,
    /// In the datastore, encrypted with AES-256-GCM under the key in `LANYARD_KEK`
    /// (base64, 32 bytes); needed when replicas share one database.
    Encrypted,
}

/// The server's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The trust domain this server is the authority for.
    pub trust_domain: String,
    /// Where the SQLite database, keys and the admin socket live.
    pub data_dir: PathBuf,
    /// Database URL; defaults to SQLite in `data_dir` (`sqlite://<data_dir>/lanyard.db`).
    /// A SQLite file belongs to one server process (it keeps the used one-time values in
    /// memory); replicas share a `postgres://` database.
    pub database_url: Option<String>,
    /// Address of the public HTTP endpoints (bundle, JWKS, discovery, health, metrics).
    pub public_address: String,
    /// The URL clients use to reach the public endpoints (defaults to `http://<public_address>`).
    pub public_url: Option<String>,
    /// Address of the agent API (gRPC over TLS 1.3, for node agents).
    pub agent_address: String,
    /// The admin API's Unix socket (defaults to `<data_dir>/admin.sock`).
    pub admin_socket: Option<PathBuf>,
    /// Lifetime of the X.509 CA, in seconds.
    pub ca_ttl: u64,
    /// Lifetime of each JWT-SVID and WIT signing key, in seconds.
    pub signing_key_ttl: u64,
    /// Default X.509-SVID lifetime, in seconds.
    pub default_x509_svid_ttl: u64,
    /// Default JWT-SVID lifetime, in seconds.
    pub default_jwt_svid_ttl: u64,
    /// Default WIT lifetime, in seconds.
    pub default_wit_ttl: u64,
    /// Join token lifetime, in seconds.
    pub join_token_ttl: u64,
    /// `spiffe_refresh_hint` of the published bundle, in seconds.
    pub bundle_refresh_hint: u64,
    /// Where private keys live at rest.
    pub key_storage: KeyStorageKind,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter (`tracing` env-filter syntax), e.g. `info` or `lanyard_server=debug`.
    pub log_level: String,
    /// Node attestation methods besides join tokens (`[node_attestation]`).
    pub node_attestation: NodeAttestationConfig,
    /// The X.509 CA's upstream (`[ca]`).
    pub ca: CaConfig,
    /// Address of the `https_spiffe` SPIFFE bundle endpoint (`GET /` over TLS with the
    /// server's X.509-SVID, SPIFFE Federation §5.2.2); not served when unset.
    pub bundle_endpoint_address: Option<String>,
    /// Foreign trust domains whose bundles the server fetches (`[federation]`).
    pub federation: FederationConfig,
    /// TLS for the public endpoints (`[public_tls]`, the `https_web` bundle-endpoint
    /// profile); plain HTTP when unset.
    pub public_tls: Option<PublicTlsConfig>,
    /// Connection caps and timeouts of each listener (`[limits.*]`).
    pub limits: LimitsConfig,
    /// The OAuth 2.0 authorization server (`[oauth]`).
    pub oauth: OAuthConfig,
}

/// `[oauth]`: the OAuth 2.0 authorization server on the public listener (issue 12).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    /// The issuer identifier (RFC 8414 §2); defaults to the public URL, without a trailing
    /// slash. Client assertions must carry exactly this string as their sole `aud`.
    pub issuer: Option<String>,
    /// Default access-token lifetime, in seconds (a client may register a shorter or
    /// longer one; the signing key's remaining life caps it).
    pub access_token_ttl: u64,
    /// Lifetime of each access-token signing key, in seconds.
    pub signing_key_ttl: u64,
    /// Compatibility with peers that follow older drafts (Keycloak): when a `jwt-spiffe`
    /// request has no `client_id`, use the JWT-SVID's `sub` as the client. Off by default:
    /// draft-ietf-oauth-spiffe-client-auth requires `client_id`.
    pub derive_client_id_from_svid: bool,
    /// WIT-SVID client authentication (`spiffe_wit`): a WIT-SVID in
    /// `OAuth-Client-Attestation` with its proof in `OAuth-Client-Attestation-PoP`
    /// (draft-ietf-oauth-spiffe-client-auth with draft-ietf-oauth-attestation-based-client-auth-09).
    /// Off by default: the working group has not settled the method.
    pub wit_client_auth: bool,
    /// Tell clients why their authentication failed. Off by default: the reason goes to
    /// the audit line only, and every `invalid_client` that depends on what is registered
    /// (an unknown client, a method it may not use, a credential that does not verify)
    /// answers the same description, so that the token endpoint does not reveal which
    /// clients exist. Turn on while onboarding clients.
    pub client_error_details: bool,
    /// The shortest interval, in seconds, between two fetches of a `private_key_jwt`
    /// client's `jwks_uri` made because an assertion names a `kid` the cached set lacks
    /// (the client rotated its key), or after a failed fetch. The set is also fetched
    /// again after 5 minutes.
    pub client_jwks_refetch_interval: u64,
    /// Require a server-provided nonce in DPoP proofs at the token endpoint (RFC 9449 §8).
    pub require_dpop_nonce: bool,
    /// Largest token, introspection or revocation request body, in bytes.
    pub max_body_bytes: usize,
    /// Lifetime of the Txn-Tokens the Transaction Token Service issues, in seconds
    /// (draft-ietf-oauth-transaction-tokens-11 asks for short lifetimes; never longer than
    /// the subject token's remaining life).
    pub txn_token_ttl: u64,
    /// Identity chaining as the home server (draft-ietf-oauth-identity-chaining-17, AS-A):
    /// the issuer identifiers of foreign authorization servers a token exchange may ask a
    /// JWT authorization grant for (the client must also have the foreign issuer among its
    /// registered audiences).
    pub chaining_foreign_servers: Vec<String>,
    /// Claims transcription for the grants of identity chaining
    /// (`[[oauth.chaining_transcription]]`, draft-ietf-oauth-identity-chaining-17 §2.3):
    /// per foreign server, how the grant's `sub` is written and which claims of the
    /// subject token it carries. Without a rule, `sub` is the subject's and no other claim
    /// is copied.
    pub chaining_transcription: Vec<TranscriptionRuleConfig>,
    /// Lifetime of the JWT authorization grants issued, in seconds (never beyond the
    /// subject token).
    pub authorization_grant_ttl: u64,
    /// Identity chaining as the foreign server (AS-B): home servers whose JWT authorization
    /// grants the JWT bearer grant (RFC 7523 §2.1) redeems (`[[oauth.chaining_home_servers]]`).
    pub chaining_home_servers: Vec<HomeServerConfig>,
    /// Trusted external issuers (`[[oauth.trusted_issuers]]`): platform token issuers
    /// (Kubernetes, CI systems, other authorization servers) whose JWTs a token exchange
    /// accepts as subject or actor tokens, mapped to a workload identifier of this trust
    /// domain by their rules.
    pub trusted_issuers: Vec<TrustedIssuerConfig>,
    /// Issue WITs through token exchange: `requested_token_type`
    /// `urn:lanyard:params:oauth:token-type:wit` (Lanyard's own URN, WIMSE has none yet)
    /// with a DPoP proof whose key the WIT binds (`cnf.jwk`). Off by default.
    pub issue_wits: bool,
    /// Issue JWT-SVIDs through token exchange: `requested_token_type`
    /// `urn:ietf:params:oauth:token-type:jwt` with no foreign server as the target, for a
    /// subject that is a SPIFFE ID of this trust domain (a trusted issuer's mapped
    /// identity), `aud` the requested audiences. Bearer credentials: off by default.
    pub issue_jwt_svids: bool,
    /// Serve the mutual-TLS listener (RFC 8705: X.509-SVID client authentication and
    /// certificate-bound tokens; the server's own SVID; client certificates requested,
    /// not required). On by default.
    pub mtls: bool,
    /// Its address; by default the public address's host with port 8443 (port 0, any
    /// free port, when the public port is 0). `LANYARD_OAUTH_MTLS_ADDRESS` overrides it
    /// (`off` turns the listener off).
    pub mtls_address: Option<String>,
}

/// `[[oauth.chaining_transcription]]`: how the JWT authorization grants for one foreign
/// authorization server transcribe the subject token (identity chaining §2.3).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TranscriptionRuleConfig {
    /// The foreign server's issuer identifier (one of `chaining_foreign_servers`).
    pub foreign_server: String,
    /// The grant's `sub`: a template whose `{sub}` is the subject's identifier and whose
    /// `{dotted.claim.path}` placeholders are claims of the subject token (a string, number
    /// or boolean), e.g. `"{email}"` or `"acme:{sub}"`. A token lacking a claim the
    /// template names is refused. Default: `{sub}`.
    #[serde(default)]
    pub subject: Option<String>,
    /// Claims of the subject token copied into the grant as they are (top-level names;
    /// never a registered claim the grant sets itself). A claim the token lacks is left out.
    #[serde(default)]
    pub copy_claims: Vec<String>,
}

/// Claims a transcription rule cannot copy into a JWT authorization grant besides the
/// grant's own ([`lanyard_core::oauth::GRANT_CLAIMS`]): those that would grant something
/// at the foreign server (a key binding, delegation permission, fine-grained authorization
/// (RFC 9396 `authorization_details`, which the grant's `scope` narrowing does not cover),
/// another transaction's context, the authorized party, the requesting workload).
pub const GRANT_AUTHORITY_CLAIMS: [&str; 8] = [
    "cnf",
    "may_act",
    "authorization_details",
    "azp",
    "txn",
    "tctx",
    "rctx",
    "req_wl",
];

/// `[[oauth.chaining_home_servers]]`: a home authorization server whose JWT authorization
/// grants are redeemed here.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HomeServerConfig {
    /// Its issuer identifier: the grant's `iss` must equal it.
    pub issuer: String,
    /// Where its keys are published; when unset, the `jwks_uri` of its RFC 8414 metadata.
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

/// `[[oauth.trusted_issuers]]`: an external issuer whose JWTs a token exchange accepts
/// (issue 13 item 2). Keys come from `jwks` (inline JSON or a file path), from `jwks_uri`,
/// or else from discovery (`<issuer>/.well-known/openid-configuration`, then RFC 8414
/// metadata), cached and refetched for an unknown `kid` (rotation).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerConfig {
    /// Its issuer identifier: the token's `iss` must equal it exactly.
    pub issuer: String,
    /// Where its keys are published (instead of discovery).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// Its keys, fixed: a JWK Set as inline JSON (starting with `{`) or a file path.
    #[serde(default)]
    pub jwks: Option<String>,
    /// This server's audience at the issuer: the token's `aud` must contain it (required,
    /// RFC 8725 §3.9).
    pub audience: String,
    /// The signature algorithms accepted (asymmetric JOSE names; default all of them).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway: u64,
    /// The longest remaining lifetime of an accepted token, in seconds.
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime: u64,
    /// How soon keys may be fetched again when a token names an unknown `kid`, in seconds.
    #[serde(default = "default_refetch_interval")]
    pub jwks_refetch_interval: u64,
    /// The mapping rules, tried in order: the first whose conditions hold gives the
    /// workload identifier; a token matching none is refused.
    pub rules: Vec<MappingRuleConfig>,
}

/// One mapping rule of a trusted issuer.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappingRuleConfig {
    /// The workload identifier: a `spiffe://` or `wimse://` template with `{td}` (this
    /// trust domain) and `{dotted.claim.path}` placeholders in its path, e.g.
    /// `spiffe://{td}/ns/{kubernetes.io.namespace}/sa/{kubernetes.io.serviceaccount.name}`.
    pub identity: String,
    /// Conditions that must all hold.
    #[serde(default)]
    pub require: Vec<ClaimConditionConfig>,
}

/// A condition of a mapping rule: a claim (dotted path) equals a value or one of a list.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClaimConditionConfig {
    /// The claim's dotted path.
    pub claim: String,
    /// The value it must equal.
    #[serde(default)]
    pub equals: Option<String>,
    /// The values it may equal.
    #[serde(default)]
    pub one_of: Vec<String>,
}

fn default_leeway() -> u64 {
    60
}

fn default_max_token_lifetime() -> u64 {
    24 * 3600
}

fn default_refetch_interval() -> u64 {
    30
}

impl TrustedIssuerConfig {
    /// The verification policy (RFC 8725 checks) its tokens get.
    pub fn policy(&self) -> Result<lanyard_core::oauth::ExternalTokenPolicy, String> {
        let mut policy = lanyard_core::oauth::ExternalTokenPolicy::new(self.issuer.clone(), self.audience.clone());
        if !self.algorithms.is_empty() {
            let algs = self
                .algorithms
                .iter()
                .map(|a| lanyard_core::Algorithm::parse(a).map_err(|e| format!("algorithms: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            policy.algorithms = lanyard_core::AlgSet::of(&algs);
        }
        policy.leeway = self.leeway;
        policy.max_lifetime = self.max_token_lifetime;
        Ok(policy)
    }

    /// Its mapping rules, compiled for the trust domain `trust_domain`.
    pub fn rules(&self, trust_domain: &str) -> Result<Vec<lanyard_core::oauth::MappingRule>, String> {
        if self.rules.is_empty() {
            return Err("rules: at least one mapping rule is required".into());
        }
        self.rules
            .iter()
            .map(|r| {
                let template = lanyard_core::oauth::IdentityTemplate::parse(&r.identity, trust_domain)
                    .map_err(|e| format!("rules.identity: {e}"))?;
                let require = r
                    .require
                    .iter()
                    .map(|c| {
                        let values: Vec<String> = c.equals.iter().chain(&c.one_of).cloned().collect();
                        if c.claim.is_empty() || values.is_empty() || (c.equals.is_some() && !c.one_of.is_empty()) {
                            return Err(format!(
                                "rules.require: {:?} needs a claim and exactly one of equals or one_of",
                                c.claim
                            ));
                        }
                        Ok(lanyard_core::oauth::ClaimCondition {
                            claim: c.claim.clone(),
                            values,
                        })
                    })
                    .collect::<Result<_, String>>()?;
                Ok(lanyard_core::oauth::MappingRule { template, require })
            })
            .collect()
    }

    /// Its fixed JWK Set, when `jwks` is set: inline JSON, or read from the file it names.
    pub fn static_jwks(&self) -> Result<Option<lanyard_core::JwkSet>, String> {
        let Some(jwks) = &self.jwks else {
            return Ok(None);
        };
        let text = if jwks.trim_start().starts_with('{') {
            jwks.clone()
        } else {
            std::fs::read_to_string(jwks).map_err(|e| format!("jwks: reading {jwks}: {e}"))?
        };
        lanyard_core::JwkSet::from_json(text.as_bytes())
            .map(Some)
            .map_err(|e| format!("jwks: {e}"))
    }

    /// Checks every setting, the keys of a static `jwks` included.
    fn validate(&self, trust_domain: &str, own_issuer: Option<&str>) -> Result<(), String> {
        lanyard_core::oauth::check_issuer_identifier(&self.issuer).map_err(|e| format!("issuer: {e}"))?;
        if own_issuer == Some(self.issuer.as_str()) {
            return Err("issuer: this server's own issuer cannot be an external one".into());
        }
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err("set jwks or jwks_uri, not both".into());
        }
        if let Some(uri) = &self.jwks_uri {
            lanyard_core::oauth::check_remote_url(uri).map_err(|p| format!("jwks_uri: {}", p.as_str()))?;
        }
        if self.audience.is_empty() || self.audience.chars().any(char::is_control) {
            return Err("audience: required, a non-empty string".into());
        }
        if self.max_token_lifetime == 0 {
            return Err("max_token_lifetime: must be greater than zero".into());
        }
        self.policy()?;
        self.rules(trust_domain)?;
        if let Some(jwks) = self.static_jwks()? {
            lanyard_core::oauth::VerificationKeys::from_jwks(lanyard_crypto::provider().as_ref(), &self.issuer, &jwks)
                .map_err(|e| format!("jwks: {e}"))?;
        }
        Ok(())
    }
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            issuer: None,
            access_token_ttl: 300,
            signing_key_ttl: 24 * 3600,
            derive_client_id_from_svid: false,
            wit_client_auth: false,
            client_error_details: false,
            client_jwks_refetch_interval: 30,
            require_dpop_nonce: true,
            max_body_bytes: 16 * 1024,
            txn_token_ttl: lanyard_core::oauth::DEFAULT_TXN_TOKEN_TTL,
            chaining_foreign_servers: Vec::new(),
            chaining_transcription: Vec::new(),
            authorization_grant_ttl: 60,
            chaining_home_servers: Vec::new(),
            trusted_issuers: Vec::new(),
            issue_wits: false,
            issue_jwt_svids: false,
            mtls: true,
            mtls_address: None,
        }
    }
}

/// `[limits.<listener>]`: connection caps and timeouts, one table per listener, so that
/// no listener can starve another (see `docs/security.md`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// The public HTTP endpoints (`public_address`).
    pub public: ListenerLimits,
    /// The agent API (`agent_address`).
    pub agent_api: ListenerLimits,
    /// The `https_spiffe` bundle endpoint (`bundle_endpoint_address`).
    pub bundle_endpoint: ListenerLimits,
    /// The admin socket (only the server's user can connect).
    pub admin: ListenerLimits,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let base = ListenerLimits::default();
        LimitsConfig {
            public: base,
            // Agents hold one or two long-lived connections each; an address with more
            // than 64 is not a well-behaved agent (or many agents behind one NAT: raise it).
            agent_api: ListenerLimits {
                max_connections_per_peer: 64,
                ..base
            },
            bundle_endpoint: ListenerLimits {
                max_connections: 256,
                max_connections_per_peer: 32,
                ..base
            },
            admin: ListenerLimits {
                max_connections: 64,
                max_connections_per_peer: 0,
                ..base
            },
        }
    }
}

impl LimitsConfig {
    /// Every listener's limits with its configuration name.
    pub fn named(&self) -> [(&'static str, &ListenerLimits); 4] {
        [
            ("limits.public", &self.public),
            ("limits.agent_api", &self.agent_api),
            ("limits.bundle_endpoint", &self.bundle_endpoint),
            ("limits.admin", &self.admin),
        ]
    }
}

/// `[public_tls]`: the Web PKI certificate the public endpoints present.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicTlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// PEM PKCS#8 private key of the leaf.
    pub key_path: PathBuf,
}

impl PublicTlsConfig {
    /// The TLS config of the public endpoints for the `https_web` profile: reads the
    /// certificate chain and PKCS#8 key files; TLS 1.3 and 1.2, no client authentication,
    /// ALPN `h2` and `http/1.1`.
    pub fn server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        use anyhow::Context;
        use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
        let (cert_path, key_path) = (&self.cert_path, &self.key_path);
        let read = |path: &Path| std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()));
        let chain: Vec<CertificateDer<'static>> = pem::parse_many(read(cert_path)?)
            .with_context(|| format!("parsing {}", cert_path.display()))?
            .into_iter()
            .filter(|p| p.tag() == "CERTIFICATE")
            .map(|p| CertificateDer::from(p.into_contents()))
            .collect();
        anyhow::ensure!(!chain.is_empty(), "{}: no CERTIFICATE block", cert_path.display());
        let key = pem::parse_many(read(key_path)?)
            .with_context(|| format!("parsing {}", key_path.display()))?
            .into_iter()
            .find(|p| p.tag() == "PRIVATE KEY")
            .with_context(|| format!("{}: no PRIVATE KEY (PKCS#8) block", key_path.display()))?;
        let mut config =
            rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(lanyard_crypto::rustls_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .with_no_client_auth()
                .with_single_cert(chain, PrivatePkcs8KeyDer::from(key.into_contents()).into())
                .context("the public TLS certificate and key do not match")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// `[federation]`: the foreign trust domains this one federates with.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FederationConfig {
    /// One `[[federation.trust_domains]]` table per foreign trust domain.
    pub trust_domains: Vec<FederatedTrustDomain>,
}

/// The SPIFFE bundle endpoint profile of a foreign trust domain (SPIFFE Federation §5.2).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleEndpointProfile {
    /// TLS with a Web PKI certificate for the URL's host.
    HttpsWeb,
    /// TLS with an X.509-SVID of a configured SPIFFE ID.
    HttpsSpiffe,
}

/// `[[federation.trust_domains]]`: where and how to fetch one foreign bundle.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedTrustDomain {
    /// The foreign trust domain's name (never inferred from the URL).
    pub trust_domain: String,
    /// The `https://` URL of its bundle endpoint.
    pub bundle_endpoint_url: String,
    /// The endpoint's profile (never inferred, no fallback).
    pub profile: BundleEndpointProfile,
    /// `https_spiffe` only (required): the SPIFFE ID the endpoint's SVID must carry.
    pub endpoint_spiffe_id: Option<String>,
    /// `https_spiffe` only: the endpoint trust domain's bundle to trust until the first
    /// fetch (SPIFFE bundle JSON or PEM certificates). Required when the endpoint belongs
    /// to the foreign trust domain itself (self-serving).
    pub bootstrap_bundle_path: Option<PathBuf>,
    /// `https_web` only: PEM CA certificates to trust instead of the system's roots.
    pub ca_bundle_path: Option<PathBuf>,
}

/// `[ca]`: an optional upstream CA that signs the server's X.509 CAs as intermediates.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaConfig {
    /// PEM certificate chain of the upstream CA: its certificate first, then any
    /// intermediates above it, ending with the self-signed root.
    pub upstream_cert_path: Option<PathBuf>,
    /// PEM PKCS#8 private key of the upstream CA.
    pub upstream_key_path: Option<PathBuf>,
}

/// `[node_attestation]`: the node attestors the agent API accepts besides join tokens.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeAttestationConfig {
    /// x509pop (proof of possession of a node certificate); disabled when absent.
    pub x509pop: Option<X509PopConfig>,
}

/// `[node_attestation.x509pop]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct X509PopConfig {
    /// PEM file of the CA certificates trusted to issue node certificates.
    pub ca_bundle_path: PathBuf,
}

impl X509PopConfig {
    /// Reads the PEM CA bundle at `ca_bundle_path` (only `CERTIFICATE` blocks, at least
    /// one); `trust_domain` is only a label (node certificates carry no SPIFFE ID).
    pub fn ca_bundle(&self, trust_domain: &TrustDomain) -> anyhow::Result<lanyard_x509::X509Bundle> {
        use anyhow::Context;
        let path = &self.ca_bundle_path;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the x509pop CA bundle {}", path.display()))?;
        lanyard_x509::X509Bundle::from_pem(trust_domain.clone(), &text)
            .with_context(|| format!("the x509pop CA bundle {}", path.display()))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            trust_domain: "example.org".into(),
            data_dir: PathBuf::from("lanyard-data"),
            database_url: None,
            public_address: "127.0.0.1:8080".into(),
            public_url: None,
            agent_address: "127.0.0.1:8081".into(),
            admin_socket: None,
            ca_ttl: 24 * 3600,
            signing_key_ttl: 24 * 3600,
            default_x509_svid_ttl: 3600,
            default_jwt_svid_ttl: 300,
            default_wit_ttl: 3600,
            join_token_ttl: 600,
            bundle_refresh_hint: 300,
            key_storage: KeyStorageKind::Files,
            log_format: LogFormat::Human,
            log_level: "info".into(),
            node_attestation: NodeAttestationConfig::default(),
            ca: CaConfig::default(),
            bundle_endpoint_address: None,
            federation: FederationConfig::default(),
            public_tls: None,
            limits: LimitsConfig::default(),
            oauth: OAuthConfig::default(),
        }
    }
}

/// A configuration problem, naming the file or variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    /// The file or environment variable.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

fn err(source_name: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        source_name: source_name.into(),
        message: message.into(),
    }
}

impl ServerConfig {
    /// Loads `path` (if given), applies `LANYARD_*` overrides from `env`, and validates.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<ServerConfig, ConfigError> {
        let mut config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| err(p.display().to_string(), e.to_string()))?;
                toml::from_str(&text).map_err(|e| err(p.display().to_string(), e.to_string()))?
            }
            None => ServerConfig::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let number = |name: &str, v: String| v.parse::<u64>().map_err(|e| err(name, e.to_string()));
        if let Some(v) = env("LANYARD_TRUST_DOMAIN") {
            self.trust_domain = v;
        }
        if let Some(v) = env("LANYARD_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = env("LANYARD_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = env("LANYARD_PUBLIC_ADDRESS") {
            self.public_address = v;
        }
        if let Some(v) = env("LANYARD_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = env("LANYARD_AGENT_ADDRESS") {
            self.agent_address = v;
        }
        if let Some(v) = env("LANYARD_ADMIN_SOCKET") {
            self.admin_socket = Some(v.into());
        }
        if let Some(v) = env("LANYARD_OAUTH_MTLS_ADDRESS") {
            // "off" turns the listener off; anything else is its address.
            if v == "off" {
                self.oauth.mtls = false;
            } else {
                self.oauth.mtls_address = Some(v);
            }
        }
        if let Some(v) = env("LANYARD_DEFAULT_WIT_TTL") {
            self.default_wit_ttl = number("LANYARD_DEFAULT_WIT_TTL", v)?;
        }
        if let Some(v) = env("LANYARD_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                other => return Err(err("LANYARD_LOG_FORMAT", format!("{other:?} is not human or json"))),
            };
        }
        if let Some(v) = env("LANYARD_LOG") {
            self.log_level = v;
        }
        if let Some(v) = env("LANYARD_KEY_STORAGE") {
            self.key_storage = match v.as_str() {
                "files" => KeyStorageKind::Files,
                "encrypted" => KeyStorageKind::Encrypted,
                other => {
                    return Err(err(
                        "LANYARD_KEY_STORAGE",
                        format!("{other:?} is not files or encrypted"),
                    ));
                }
            };
        }
        Ok(())
    }

    /// Checks every value; [`ServerConfig::load`] calls it, and so does the server's
    /// `start` (the fields are public, so a config built in code is checked too).
    pub fn validate(&self) -> Result<(), ConfigError> {
        TrustDomain::parse(&self.trust_domain).map_err(|e| err("trust_domain", e.to_string()))?;
        for (name, v) in [
            ("ca_ttl", self.ca_ttl),
            ("signing_key_ttl", self.signing_key_ttl),
            ("default_x509_svid_ttl", self.default_x509_svid_ttl),
            ("default_jwt_svid_ttl", self.default_jwt_svid_ttl),
            ("default_wit_ttl", self.default_wit_ttl),
            ("join_token_ttl", self.join_token_ttl),
            ("oauth.access_token_ttl", self.oauth.access_token_ttl),
            ("oauth.signing_key_ttl", self.oauth.signing_key_ttl),
            ("oauth.max_body_bytes", self.oauth.max_body_bytes as u64),
            ("oauth.txn_token_ttl", self.oauth.txn_token_ttl),
            ("oauth.authorization_grant_ttl", self.oauth.authorization_grant_ttl),
            (
                "oauth.client_jwks_refetch_interval",
                self.oauth.client_jwks_refetch_interval,
            ),
        ] {
            if v == 0 {
                return Err(err(name, "must be greater than zero"));
            }
        }
        if self.ca.upstream_cert_path.is_some() != self.ca.upstream_key_path.is_some() {
            return Err(err(
                "ca",
                "upstream_cert_path and upstream_key_path must be set together",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.federation.trust_domains {
            let name = format!("federation.trust_domains[{}]", f.trust_domain);
            let td = TrustDomain::parse(&f.trust_domain).map_err(|e| err(&name, e.to_string()))?;
            if td.name() == self.trust_domain {
                return Err(err(name, "a server does not federate with its own trust domain"));
            }
            if !seen.insert(td.name().to_owned()) {
                return Err(err(name, "listed more than once"));
            }
            if !f.bundle_endpoint_url.starts_with("https://") {
                return Err(err(name, "bundle_endpoint_url must be an https:// URL"));
            }
            match f.profile {
                BundleEndpointProfile::HttpsWeb => {
                    if f.endpoint_spiffe_id.is_some() || f.bootstrap_bundle_path.is_some() {
                        return Err(err(
                            name,
                            "endpoint_spiffe_id and bootstrap_bundle_path apply to the https_spiffe profile only",
                        ));
                    }
                }
                BundleEndpointProfile::HttpsSpiffe => {
                    if f.ca_bundle_path.is_some() {
                        return Err(err(name, "ca_bundle_path applies to the https_web profile only"));
                    }
                    let id = f
                        .endpoint_spiffe_id
                        .as_deref()
                        .ok_or_else(|| err(&name, "the https_spiffe profile needs endpoint_spiffe_id"))?;
                    let id = lanyard_core::SpiffeId::parse(id).map_err(|e| err(&name, e.to_string()))?;
                    if id.trust_domain_name() == td.name() && f.bootstrap_bundle_path.is_none() {
                        return Err(err(
                            name,
                            "a self-serving https_spiffe endpoint needs bootstrap_bundle_path",
                        ));
                    }
                }
            }
        }
        for (name, limits) in self.limits.named() {
            limits.validate(name).map_err(|m| err(name, m))?;
        }
        let longest = self.default_x509_svid_ttl.max(self.default_wit_ttl);
        if longest.saturating_mul(6) > self.ca_ttl.min(self.signing_key_ttl) {
            return Err(err(
                "ca_ttl",
                "credential lifetimes must be at most a sixth of the CA and signing-key lifetimes, so rotation never truncates them",
            ));
        }
        if self.oauth.access_token_ttl.saturating_mul(6) > self.oauth.signing_key_ttl {
            return Err(err(
                "oauth.access_token_ttl",
                "must be at most a sixth of oauth.signing_key_ttl, so rotation never truncates tokens",
            ));
        }
        if let Some(issuer) = &self.oauth.issuer {
            // Plain http is accepted for loopback hosts (parsed, not prefix-matched).
            lanyard_core::oauth::check_issuer_identifier(issuer).map_err(|e| err("oauth.issuer", e.to_string()))?;
        }
        if self.oauth.authorization_grant_ttl > lanyard_core::oauth::MAX_GRANT_LIFETIME {
            return Err(err(
                "oauth.authorization_grant_ttl",
                format!(
                    "must be at most {} (what a foreign server accepts)",
                    lanyard_core::oauth::MAX_GRANT_LIFETIME
                ),
            ));
        }
        for issuer in &self.oauth.chaining_foreign_servers {
            lanyard_core::oauth::check_issuer_identifier(issuer)
                .map_err(|e| err("oauth.chaining_foreign_servers", e.to_string()))?;
        }
        let mut transcribed = std::collections::HashSet::new();
        for rule in &self.oauth.chaining_transcription {
            let name = format!("oauth.chaining_transcription[{}]", rule.foreign_server);
            if !self.oauth.chaining_foreign_servers.contains(&rule.foreign_server) {
                return Err(err(name, "foreign_server is not one of oauth.chaining_foreign_servers"));
            }
            if !transcribed.insert(rule.foreign_server.as_str()) {
                return Err(err(name, "listed more than once"));
            }
            let refused = |c: &&String| {
                lanyard_core::oauth::GRANT_CLAIMS.contains(&c.as_str()) || GRANT_AUTHORITY_CLAIMS.contains(&c.as_str())
            };
            if let Some(c) = rule.copy_claims.iter().find(refused) {
                return Err(err(
                    name,
                    format!("copy_claims: {c} is set by the grant itself or would grant authority"),
                ));
            }
            if let Some(template) = &rule.subject {
                crate::oauth::check_subject_template(template).map_err(|m| err(&name, m))?;
            }
        }
        for home in &self.oauth.chaining_home_servers {
            lanyard_core::oauth::check_issuer_identifier(&home.issuer)
                .map_err(|e| err("oauth.chaining_home_servers.issuer", e.to_string()))?;
            if let Some(uri) = &home.jwks_uri {
                lanyard_core::oauth::check_remote_url(uri)
                    .map_err(|p| err("oauth.chaining_home_servers.jwks_uri", p.as_str()))?;
            }
        }
        let mut issuers = std::collections::HashSet::new();
        for t in &self.oauth.trusted_issuers {
            let name = format!("oauth.trusted_issuers[{}]", t.issuer);
            t.validate(&self.trust_domain, self.oauth.issuer.as_deref())
                .map_err(|m| err(&name, m))?;
            if !issuers.insert(t.issuer.as_str()) {
                return Err(err(name, "listed more than once"));
            }
        }
        Ok(())
    }

    /// The address of the OAuth mutual-TLS listener, or `None` when it is off (see
    /// [`OAuthConfig::mtls_address`]).
    pub fn oauth_mtls_address(&self) -> Option<String> {
        if !self.oauth.mtls {
            return None;
        }
        if let Some(address) = &self.oauth.mtls_address {
            return Some(address.clone());
        }
        let (host, port) = self.public_address.rsplit_once(':')?;
        Some(format!("{host}:{}", if port == "0" { "0" } else { "8443" }))
    }

    /// The trust domain, parsed (an error names the bad value).
    pub fn trust_domain(&self) -> Result<TrustDomain, ConfigError> {
        TrustDomain::parse(&self.trust_domain).map_err(|e| err("trust_domain", e.to_string()))
    }

    /// The database URL (SQLite in the data directory unless configured).
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("lanyard.db").display()))
    }

    /// The admin socket path.
    pub fn admin_socket(&self) -> PathBuf {
        self.admin_socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("admin.sock"))
    }

    /// The base URL of the public endpoints.
    pub fn public_url(&self, bound: &str) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| {
                let scheme = if self.public_tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{bound}")
            })
            .trim_end_matches('/')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_and_env() {
        let c = ServerConfig::load(
            None,
            env_of(&[("LANYARD_TRUST_DOMAIN", "prod.example"), ("LANYARD_LOG_FORMAT", "json")]),
        )
        .unwrap();
        assert_eq!(c.trust_domain, "prod.example");
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.database_url().starts_with("sqlite://"));
        assert_eq!(c.agent_address, "127.0.0.1:8081");
        let c = ServerConfig::load(None, env_of(&[("LANYARD_AGENT_ADDRESS", "0.0.0.0:9443")])).unwrap();
        assert_eq!(c.agent_address, "0.0.0.0:9443");
    }

    #[test]
    fn tables_for_attestation_upstream_and_federation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        let good = r#"
bundle_endpoint_address = "127.0.0.1:0"
[node_attestation.x509pop]
ca_bundle_path = "/etc/node-ca.pem"
[ca]
upstream_cert_path = "/etc/up.pem"
upstream_key_path = "/etc/up.key"
[[federation.trust_domains]]
trust_domain = "partner.example"
bundle_endpoint_url = "https://partner.example/"
profile = "https_spiffe"
endpoint_spiffe_id = "spiffe://partner.example/spire/server"
bootstrap_bundle_path = "/etc/partner.json"
[[federation.trust_domains]]
trust_domain = "cloud.example"
bundle_endpoint_url = "https://cloud.example/b.json"
profile = "https_web"
"#;
        std::fs::write(&p, good).unwrap();
        let c = ServerConfig::load(Some(&p), |_| None).unwrap();
        assert_eq!(c.federation.trust_domains.len(), 2);
        assert_eq!(
            c.federation.trust_domains[0].profile,
            BundleEndpointProfile::HttpsSpiffe
        );
        assert!(c.node_attestation.x509pop.is_some());
        assert!(c.ca.upstream_key_path.is_some());
        for (bad, why) in [
            (good.replace("upstream_key_path = \"/etc/up.key\"\n", ""), "together"),
            (
                good.replace("https://partner.example/", "http://partner.example/"),
                "https://",
            ),
            (
                good.replace("endpoint_spiffe_id = \"spiffe://partner.example/spire/server\"\n", ""),
                "endpoint_spiffe_id",
            ),
            (
                good.replace("bootstrap_bundle_path = \"/etc/partner.json\"\n", ""),
                "bootstrap_bundle_path",
            ),
            (
                good.replace("\"cloud.example\"", "\"partner.example\""),
                "more than once",
            ),
            (good.replace("\"cloud.example\"", "\"example.org\""), "own trust domain"),
            (good.replace("\"https_web\"", "\"https_webb\""), "https_webb"),
        ] {
            std::fs::write(&p, &bad).unwrap();
            let e = ServerConfig::load(Some(&p), |_| None).unwrap_err();
            assert!(e.to_string().contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn oauth_mtls_address_follows_the_public_address() {
        let mut c = ServerConfig::default();
        assert_eq!(c.oauth_mtls_address().as_deref(), Some("127.0.0.1:8443"));
        c.public_address = "0.0.0.0:0".into();
        assert_eq!(c.oauth_mtls_address().as_deref(), Some("0.0.0.0:0"));
        c.oauth.mtls_address = Some("[::1]:9443".into());
        assert_eq!(c.oauth_mtls_address().as_deref(), Some("[::1]:9443"));
        c.oauth.mtls = false;
        assert_eq!(c.oauth_mtls_address(), None);
        let c = ServerConfig::load(None, env_of(&[("LANYARD_OAUTH_MTLS_ADDRESS", "127.0.0.1:9443")])).unwrap();
        assert_eq!(c.oauth_mtls_address().as_deref(), Some("127.0.0.1:9443"));
        let c = ServerConfig::load(None, env_of(&[("LANYARD_OAUTH_MTLS_ADDRESS", "off")])).unwrap();
        assert_eq!(c.oauth_mtls_address(), None);
    }

    #[test]
    fn the_documented_example_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/server.toml");
        let c = ServerConfig::load(Some(&path), |_| None).unwrap();
        assert!(c.federation.trust_domains.is_empty() && c.bundle_endpoint_address.is_none());
        assert_eq!(
            c.limits,
            LimitsConfig::default(),
            "conf/server.toml shows the default limits"
        );
        assert_eq!(
            c.oauth,
            OAuthConfig::default(),
            "conf/server.toml shows the [oauth] defaults"
        );
    }

    #[test]
    fn chaining_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        let load = |text: &str| {
            std::fs::write(&p, text).unwrap();
            ServerConfig::load(Some(&p), |_| None)
        };
        let c = load(
            "[oauth]\nchaining_foreign_servers = [\"https://as-b.example\"]\n\
             [[oauth.chaining_home_servers]]\nissuer = \"https://as-a.example\"\n",
        )
        .unwrap();
        assert_eq!(c.oauth.chaining_home_servers[0].issuer, "https://as-a.example");
        for bad in [
            "[oauth]\nchaining_foreign_servers = [\"http://as-b.example\"]\n",
            "[[oauth.chaining_home_servers]]\nissuer = \"https://a.example\"\njwks_uri = \"http://a.example/jwks\"\n",
            "[[oauth.chaining_home_servers]]\nissuer = \"https://a.example\"\njwks_uri = \"http://localhost.evil.example/jwks\"\n",
            "[[oauth.chaining_home_servers]]\nissuer = \"https://a.example\"\njwks_uri = \"https://u:p@a.example/jwks\"\n",
            "[oauth]\nissuer = \"http://localhost.evil.example\"\n",
            "[oauth]\nissuer = \"http://127.0.0.1.evil.example:8080\"\n",
            "[oauth]\nissuer = \"https://u:p@as.example\"\n",
            "[[oauth.chaining_home_servers]]\nissuer = \"https://a.example\"\nkeys = 1\n",
            "[oauth]\nauthorization_grant_ttl = 301\n",
            "[oauth]\ntxn_token_ttl = 0\n",
        ] {
            assert!(load(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_bad_values() {
        assert!(ServerConfig::load(None, env_of(&[("LANYARD_TRUST_DOMAIN", "Bad.Domain")])).is_err());
        assert!(ServerConfig::load(None, env_of(&[("LANYARD_LOG_FORMAT", "xml")])).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, "trust_domain = \"a.example\"\nunknown_option = 1\n").unwrap();
        let e = ServerConfig::load(Some(&p), |_| None).unwrap_err();
        assert!(e.to_string().contains("unknown_option"), "{e}");
        std::fs::write(&p, "ca_ttl = 3600\n").unwrap();
        assert!(ServerConfig::load(Some(&p), |_| None).is_err());
    }
}
