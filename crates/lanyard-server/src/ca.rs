//! The signing authorities: the X.509 CA and the JWT-SVID and WIT signing keys, each taken
//! through SPIRE's prepare → activate → retire lifecycle (`shared/specs/spiffe.md` §6 "CA
//! & key rotation"), persisted in the [`AuthorityStore`] and published in the trust bundle;
//! and two keys that go through the same lifecycle but are never SPIFFE trust anchors: the
//! OAuth authorization server's access-token key ([`AuthorityKind::AccessToken`],
//! published only in the authorization server's own JWKS, [`KeyManager::jwks`]) and the
//! SD-CWT issuer key ([`AuthorityKind::SdCwt`], published only at the server's SD-CWT
//! issuer key endpoints).
//!
//! # Lifecycle
//!
//! For each [`AuthorityKind`], [`KeyManager::rotate`] (call it every ~10 s with the
//! current time) moves the stored authorities along:
//!
//! - no ACTIVE authority → one is created ACTIVE at once (first start: nothing has been
//!   signed yet, so there is nobody to warn in advance);
//! - at `notAfter − min(lifetime/2, 30 d)` of the ACTIVE one, a successor is created
//!   PREPARED: it is in the bundle but signs nothing yet, so relying parties learn it
//!   well before they meet credentials it signed;
//! - at `notAfter − min(lifetime/6, 7 d)` the PREPARED one becomes ACTIVE and the ACTIVE
//!   one becomes OLD (still published: what it signed is still valid);
//! - an OLD authority is deleted once `notAfter + max_credential_ttl < now`.
//!
//! For a 24 h CA: successor prepared at 12 h, active from 20 h, old one dropped at 25 h
//! (with the default 1 h `max_credential_ttl`). Credentials never outlive their signer:
//! issuers cap TTLs with [`KeyManager::max_ttl`] (the X.509 CA also caps leaf notAfter
//! itself).
//!
//! # Bundle sequence
//!
//! Every change of the bundle's content (an authority created or deleted) bumps the
//! datastore's `spiffe_sequence` *after* the row is written; activation and retirement
//! only change statuses, which the bundle does not show, so they do not bump.
//! [`KeyManager::bundle`] reads the sequence *before* the rows, so a bundle never pairs a
//! new sequence number with old content (it may pair an old number with new content, which a
//! client just sees again under the next number).
//!
//! # Several replicas on one datastore
//!
//! Replicas share no lock: each takes every decision on a fresh read and converges.
//! [`KeyManager::rotate`] reads one kind's rows, takes *one* step, and reads again before
//! the next, until there is nothing to do. Among several ACTIVE (or several PREPARED)
//! authorities, every replica picks the same winner: earliest `not_before`, then smallest
//! ID. So when two replicas both create a first ACTIVE authority, each re-reads after its
//! write, sees both, and demotes every non-winner to OLD (not deleted: the loser may have
//! signed something in between, and OLD keeps it trusted until it expires). The last
//! replica to write an ACTIVE row re-reads after everyone else's writes, so at most one
//! ACTIVE row survives, and the winner is never demoted by the race rule. Duplicate
//! PREPARED ones are deleted (they never signed). An activation writes the retiring
//! authority OLD *before* the new one ACTIVE, so there is never a moment with two ACTIVE
//! rows that another replica could "resolve" the wrong way; a replica that looks in
//! between sees no ACTIVE but a PREPARED one, and activates that same one. Within one
//! process, rotations are serialized.
//!
//! A replica may keep signing with an authority another replica just demoted until its
//! next rotation; that is harmless because the authority stays in the bundle as OLD.
//!
//! # Private keys
//!
//! See [`KeyStorage`]: PKCS#8 PEM files (mode 0600; the datastore row holds no private
//! key) or AES-256-GCM under a key-encryption key in the row. Loaded signers are cached by
//! authority ID, so a key is read and parsed once. No `Debug` output or log line contains
//! private key material.

mod error;
mod plan;
mod storage;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use lanyard_core::{Algorithm, CryptoProvider, Jwk, JwkSet, SigningKey, SpiffeBundle, TrustDomain, UnixTime};
use lanyard_crypto::KeyPair;
use lanyard_x509::{X509Authority, x509_authority_jwk};
use rustls::pki_types::CertificateDer;

pub use error::CaError;
pub use storage::KeyStorage;

use crate::datastore::AuthorityStore;
use crate::model::{Authority, AuthorityKind, AuthorityStatus};
use plan::{Step, plan};

/// Default X.509 CA lifetime: 24 h (SPIRE's `ca_ttl`).
pub const DEFAULT_CA_TTL: u64 = 86_400;
/// Default JWT-SVID signing key lifetime: 24 h.
pub const DEFAULT_JWT_KEY_TTL: u64 = 86_400;
/// Default WIT signing key lifetime: 24 h.
pub const DEFAULT_WIT_KEY_TTL: u64 = 86_400;
/// Default access-token signing key lifetime: 24 h.
pub const DEFAULT_ACCESS_TOKEN_KEY_TTL: u64 = 86_400;
/// Default SD-CWT signing key lifetime: 24 h.
pub const DEFAULT_SD_CWT_KEY_TTL: u64 = 86_400;
/// Default longest credential TTL the server issues: 1 h.
pub const DEFAULT_MAX_CREDENTIAL_TTL: u64 = 3600;
/// Default `spiffe_refresh_hint`: 300 s.
pub const DEFAULT_REFRESH_HINT: u64 = 300;

/// Every kind, in the order rotations handle them.
const KINDS: [AuthorityKind; 5] = [
    AuthorityKind::X509,
    AuthorityKind::Jwt,
    AuthorityKind::Wit,
    AuthorityKind::AccessToken,
    AuthorityKind::SdCwt,
];
/// The most steps one kind takes in one rotation (a settled state needs none; the
/// longest normal path, after downtime, needs four).
const MAX_STEPS: usize = 16;

/// How the key manager creates and keeps the authorities.
#[derive(Clone, Debug)]
pub struct KeyManagerConfig {
    /// The trust domain the X.509 CA issues for.
    pub trust_domain: TrustDomain,
    /// X.509 CA lifetime in seconds.
    pub ca_ttl: u64,
    /// JWT-SVID signing key lifetime in seconds.
    pub jwt_key_ttl: u64,
    /// WIT signing key lifetime in seconds.
    pub wit_key_ttl: u64,
    /// Access-token signing key lifetime in seconds.
    pub access_token_key_ttl: u64,
    /// SD-CWT signing key lifetime in seconds.
    pub sd_cwt_key_ttl: u64,
    /// The longest TTL of any SVID, WIT or JWT the server issues; an OLD authority is
    /// dropped only after `not_after + max_credential_ttl`.
    pub max_credential_ttl: u64,
    /// Where private keys are kept.
    pub key_storage: KeyStorage,
    /// The bundle's `spiffe_refresh_hint` in seconds.
    pub refresh_hint: u64,
    /// When set, every X.509 CA is an intermediate signed by this upstream CA, and the
    /// bundle's X.509 authorities are the upstream's roots.
    pub upstream: Option<Arc<UpstreamCa>>,
}

impl KeyManagerConfig {
    /// A configuration with the default lifetimes (24 h authorities, 1 h credentials,
    /// 300 s refresh hint).
    pub fn new(trust_domain: TrustDomain, key_storage: KeyStorage) -> KeyManagerConfig {
        KeyManagerConfig {
            trust_domain,
            ca_ttl: DEFAULT_CA_TTL,
            jwt_key_ttl: DEFAULT_JWT_KEY_TTL,
            wit_key_ttl: DEFAULT_WIT_KEY_TTL,
            access_token_key_ttl: DEFAULT_ACCESS_TOKEN_KEY_TTL,
            sd_cwt_key_ttl: DEFAULT_SD_CWT_KEY_TTL,
            max_credential_ttl: DEFAULT_MAX_CREDENTIAL_TTL,
            key_storage,
            refresh_hint: DEFAULT_REFRESH_HINT,
            upstream: None,
        }
    }

    /// Checks that every lifetime is positive.
    pub fn validate(&self) -> Result<(), CaError> {
        for (name, ttl) in [
            ("ca_ttl", self.ca_ttl),
            ("jwt_key_ttl", self.jwt_key_ttl),
            ("wit_key_ttl", self.wit_key_ttl),
            ("access_token_key_ttl", self.access_token_key_ttl),
            ("sd_cwt_key_ttl", self.sd_cwt_key_ttl),
        ] {
            if ttl == 0 {
                return Err(CaError::Config(format!("{name} must be positive")));
            }
        }
        Ok(())
    }

    /// The lifetime of a new authority of `kind`.
    fn ttl(&self, kind: AuthorityKind) -> u64 {
        match kind {
            AuthorityKind::X509 => self.ca_ttl,
            AuthorityKind::Jwt => self.jwt_key_ttl,
            AuthorityKind::Wit => self.wit_key_ttl,
            AuthorityKind::AccessToken => self.access_token_key_ttl,
            AuthorityKind::SdCwt => self.sd_cwt_key_ttl,
        }
    }
}

/// What a rotation did to one authority.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationAction {
    /// Created ACTIVE (nothing usable was signing). Changes the bundle.
    CreatedActive,
    /// Created PREPARED. Changes the bundle.
    Prepared,
    /// PREPARED → ACTIVE.
    Activated,
    /// ACTIVE → OLD, replaced by a newer authority (or expired).
    Retired,
    /// ACTIVE → OLD because another replica's authority won a race.
    Demoted,
    /// Deleted (OLD past retention, or a superfluous or expired PREPARED one). Changes
    /// the bundle.
    Removed,
}

/// One change a rotation made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationChange {
    /// The authority's kind.
    pub kind: AuthorityKind,
    /// The authority's ID.
    pub id: String,
    /// What happened to it.
    pub action: RotationAction,
}

/// What one call to [`KeyManager::rotate`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    /// The changes this replica made, in order (another replica's changes are not
    /// listed).
    pub changes: Vec<RotationChange>,
    /// The bundle's `spiffe_sequence` after the rotation.
    pub sequence: u64,
}

impl RotationReport {
    /// True when this rotation changed nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// True when this rotation added or removed a bundle key.
    pub fn bundle_changed(&self) -> bool {
        self.changes.iter().any(|c| {
            in_bundle(c.kind)
                && matches!(
                    c.action,
                    RotationAction::CreatedActive | RotationAction::Prepared | RotationAction::Removed
                )
        })
    }

    fn push(&mut self, kind: AuthorityKind, id: &str, action: RotationAction) {
        tracing::info!(kind = kind.as_str(), id, ?action, "signing authority rotation");
        self.changes.push(RotationChange {
            kind,
            id: id.to_owned(),
            action,
        });
    }
}

/// A stored authority as the key manager last saw it (public data only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityInfo {
    /// What it signs.
    pub kind: AuthorityKind,
    /// Its ID (the `kid` of JWT and WIT keys).
    pub id: String,
    /// Its lifecycle state.
    pub status: AuthorityStatus,
    /// Validity start.
    pub not_before: UnixTime,
    /// Validity end.
    pub not_after: UnixTime,
}

/// An upstream CA (SPIRE's `UpstreamAuthority "disk"`): the server's X.509 CAs become
/// intermediates it signs, SVID chains carry them (and any intermediates above them), and
/// the bundle publishes the upstream's root(s) instead of the server's own CAs, so
/// relying parties that already trust the upstream root trust the server's SVIDs.
pub struct UpstreamCa {
    authority: X509Authority,
    /// The upstream certificate file: the signing certificate first, then the chain above
    /// it, ending with the self-signed root.
    chain: Vec<CertificateDer<'static>>,
    roots: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for UpstreamCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamCa")
            .field("authority", &self.authority)
            .field("chain_len", &self.chain.len())
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl UpstreamCa {
    /// The upstream CA from its certificate chain PEM (the signing certificate first, then
    /// any intermediates above it, then the self-signed root; a self-signed signing
    /// certificate is its own root) and its PKCS#8 `PRIVATE KEY` PEM. The certificate may
    /// carry no SPIFFE ID (e.g. a corporate root) or `spiffe://<this trust domain>`.
    pub fn from_pem(
        crypto: Arc<dyn CryptoProvider>,
        cert_chain_pem: &str,
        key_pem: &str,
    ) -> Result<UpstreamCa, CaError> {
        let authority = X509Authority::from_pem(crypto, cert_chain_pem, key_pem)?;
        let chain: Vec<CertificateDer<'static>> = pem::parse_many(cert_chain_pem)
            .map_err(|e| CaError::Config(format!("upstream certificate file: {e}")))?
            .into_iter()
            .map(|block| CertificateDer::from(block.into_contents()))
            .collect();
        let roots: Vec<CertificateDer<'static>> = chain.iter().filter(|c| is_self_signed(c)).cloned().collect();
        if roots.is_empty() {
            return Err(CaError::Config(
                "the upstream certificate file must end with the self-signed root it chains to".into(),
            ));
        }
        Ok(UpstreamCa {
            authority,
            chain,
            roots,
        })
    }

    /// Reads [`UpstreamCa::from_pem`]'s two files.
    pub fn load(
        crypto: Arc<dyn CryptoProvider>,
        cert_path: &std::path::Path,
        key_path: &std::path::Path,
    ) -> Result<UpstreamCa, CaError> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|source| CaError::KeyFile {
                path: path.to_owned(),
                source,
            })
        };
        UpstreamCa::from_pem(crypto, &read(cert_path)?, &read(key_path)?)
    }

    /// The upstream's self-signed root certificates (DER): the bundle's X.509 authorities.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    fn root_jwks(&self) -> Result<Vec<Jwk>, CaError> {
        Ok(self
            .roots
            .iter()
            .map(|r| x509_authority_jwk(r))
            .collect::<Result<_, _>>()?)
    }
}

/// Whether a certificate's subject equals its issuer.
fn is_self_signed(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
}

/// A loaded private key, ready to sign.
#[derive(Clone)]
enum Signer {
    X509(Arc<X509Authority>),
    Key(Arc<KeyPair>),
}

/// An authority and its bundle entry.
#[derive(Clone, Debug)]
struct Published {
    info: AuthorityInfo,
    jwk: Jwk,
}

/// What the last rotation or reload saw: every authority's public data, and the loaded
/// signers of the ACTIVE ones (by authority ID).
#[derive(Default)]
struct Snapshot {
    published: Vec<Published>,
    signers: HashMap<String, Signer>,
}

impl Snapshot {
    /// The ACTIVE authority of `kind` (the race winner if there are several).
    fn active(&self, kind: AuthorityKind) -> Option<&AuthorityInfo> {
        self.published
            .iter()
            .map(|p| &p.info)
            .filter(|i| i.kind == kind && i.status == AuthorityStatus::Active)
            .min_by(|a, b| a.not_before.cmp(&b.not_before).then_with(|| a.id.cmp(&b.id)))
    }

    fn active_signer(&self, kind: AuthorityKind) -> Option<(AuthorityInfo, Signer)> {
        let active = self.active(kind)?;
        let signer = self.signers.get(&active.id)?;
        Some((active.clone(), signer.clone()))
    }
}

/// Runs the signing authorities of one trust domain: creates, rotates and retires them
/// in the datastore, hands out the ACTIVE signers, and builds the trust bundle.
pub struct KeyManager {
    store: Arc<dyn AuthorityStore>,
    config: KeyManagerConfig,
    /// Key thumbprints and the encryption of keys at rest.
    crypto: Arc<dyn CryptoProvider>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serializes rotations and reloads within this process.
    lock: tokio::sync::Mutex<()>,
}

impl fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyManager")
            .field("config", &self.config)
            .field("authorities", &self.authorities())
            .finish_non_exhaustive()
    }
}

impl KeyManager {
    /// A key manager over `store`, with `crypto` for key IDs (JWK thumbprints) and keys
    /// at rest. It loads nothing yet: call [`KeyManager::rotate`] at start-up and then
    /// periodically.
    pub fn new(
        store: Arc<dyn AuthorityStore>,
        config: KeyManagerConfig,
        crypto: Arc<dyn CryptoProvider>,
    ) -> KeyManager {
        KeyManager {
            store,
            config,
            crypto,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &KeyManagerConfig {
        &self.config
    }

    /// Brings every kind's authorities up to date for `now` (see the module
    /// documentation), then refreshes the cached signers. Idempotent: a second call at
    /// the same time changes nothing. Safe to run on several replicas at once.
    ///
    /// If one kind fails, the others are still rotated and the first error is returned.
    pub async fn rotate(&self, now: UnixTime) -> Result<RotationReport, CaError> {
        self.config.validate()?;
        let _guard = self.lock.lock().await;
        let mut report = RotationReport::default();
        let mut fresh = HashMap::new();
        let mut rows = Vec::new();
        let mut failure = None;
        for kind in KINDS {
            match self.rotate_kind(kind, now, &mut report, &mut fresh).await {
                Ok(list) => rows.extend(list),
                Err(e) => {
                    tracing::error!(kind = kind.as_str(), error = %e, "signing authority rotation failed");
                    failure.get_or_insert(e);
                }
            }
        }
        if failure.is_some() {
            rows = self.store.list_authorities(None).await?;
        }
        let installed = self.install(rows, fresh).await;
        report.sequence = self.store.bundle_sequence().await?;
        match failure {
            Some(e) => Err(e),
            None => installed.map(|()| report),
        }
    }

    /// Re-reads the authorities and refreshes the cached signers without changing
    /// anything (rotation does this too).
    pub async fn reload(&self) -> Result<(), CaError> {
        let _guard = self.lock.lock().await;
        let rows = self.store.list_authorities(None).await?;
        self.install(rows, HashMap::new()).await
    }

    /// The ACTIVE X.509 CA.
    pub async fn x509_ca(&self) -> Result<Arc<X509Authority>, CaError> {
        match self.active_signer(AuthorityKind::X509).await? {
            (_, Signer::X509(ca)) => Ok(ca),
            (info, Signer::Key(_)) => Err(wrong_signer(info.id)),
        }
    }

    /// The ACTIVE JWT-SVID signing key and its `kid`.
    pub async fn jwt_signer(&self) -> Result<(Arc<KeyPair>, String), CaError> {
        self.key_signer(AuthorityKind::Jwt).await
    }

    /// The ACTIVE WIT signing key and its `kid`.
    pub async fn wit_signer(&self) -> Result<(Arc<KeyPair>, String), CaError> {
        self.key_signer(AuthorityKind::Wit).await
    }

    /// The ACTIVE access-token signing key of the OAuth authorization server and its `kid`.
    pub async fn access_token_signer(&self) -> Result<(Arc<KeyPair>, String), CaError> {
        self.key_signer(AuthorityKind::AccessToken).await
    }

    /// The ACTIVE SD-CWT signing key (ES256) and its `kid`.
    pub async fn sd_cwt_signer(&self) -> Result<(Arc<KeyPair>, String), CaError> {
        self.key_signer(AuthorityKind::SdCwt).await
    }

    /// The trust domain's bundle: every PREPARED, ACTIVE and OLD authority but the
    /// access-token and SD-CWT keys (not SPIFFE trust anchors), the datastore's
    /// `spiffe_sequence`, and the configured refresh hint. Read from the
    /// datastore, so it includes other replicas' authorities at once.
    ///
    /// A stored authority whose public data cannot be read is left out (and logged).
    pub async fn bundle(&self) -> Result<SpiffeBundle, CaError> {
        // The sequence first: writers bump it after changing the rows.
        let sequence = self.store.bundle_sequence().await?;
        let rows = self.store.list_authorities(None).await?;
        let mut bundle = SpiffeBundle::new(self.config.trust_domain.clone());
        bundle.sequence = Some(sequence);
        bundle.refresh_hint = Some(self.config.refresh_hint);
        if let Some(up) = &self.config.upstream {
            bundle.x509_authorities = up.root_jwks()?;
        }
        for (a, jwk) in self.bundle_jwks(&rows) {
            match a.kind {
                AuthorityKind::X509 if self.config.upstream.is_some() => {}
                AuthorityKind::X509 => bundle.x509_authorities.push(jwk),
                AuthorityKind::Jwt => bundle.jwt_authorities.push(jwk),
                AuthorityKind::Wit => bundle.wit_authorities.push(jwk),
                // The AS's own JWKS publishes it; a SPIFFE bundle never does.
                AuthorityKind::AccessToken => {}
                // SD-CWT issuer keys are not SPIFFE trust anchors.
                AuthorityKind::SdCwt => {}
            }
        }
        Ok(bundle)
    }

    /// The public keys of `kind` (PREPARED, ACTIVE and OLD) as a standard JWK Set:
    /// the bundle's entries of that kind without `use` (JWT and WIT keys carry `kid` and
    /// `alg`, X.509 CAs `x5c`). Read from the datastore, like [`KeyManager::bundle`].
    pub async fn jwks(&self, kind: AuthorityKind) -> Result<JwkSet, CaError> {
        if let (AuthorityKind::X509, Some(up)) = (kind, &self.config.upstream) {
            let keys = up
                .root_jwks()?
                .into_iter()
                .map(|jwk| Jwk { key_use: None, ..jwk })
                .collect();
            return Ok(JwkSet { keys });
        }
        let mut rows = self.store.list_authorities(Some(kind)).await?;
        rows.retain(|a| a.kind == kind);
        let keys = self
            .bundle_jwks(&rows)
            .into_iter()
            .map(|(_, jwk)| Jwk { key_use: None, ..jwk })
            .collect();
        Ok(JwkSet { keys })
    }

    /// The longest TTL (seconds) a credential of `kind` issued at `now` may have so that
    /// it does not outlive the ACTIVE authority (the one [`KeyManager::x509_ca`],
    /// [`KeyManager::jwt_signer`] or [`KeyManager::wit_signer`] returns): its remaining
    /// lifetime. Issuers take the minimum of this and the TTL they wanted.
    pub async fn max_ttl(&self, kind: AuthorityKind, now: UnixTime) -> Result<u64, CaError> {
        let (active, _) = self.active_signer(kind).await?;
        Ok(active.not_after.as_secs().saturating_sub(now.as_secs()))
    }

    /// Every authority as of the last rotation or reload, oldest first within a kind.
    pub fn authorities(&self) -> Vec<AuthorityInfo> {
        self.current().published.iter().map(|p| p.info.clone()).collect()
    }

    /// The bundle entries of `rows` (parsed ones reused from the snapshot); unreadable
    /// rows are logged and left out.
    fn bundle_jwks<'a>(&self, rows: &'a [Authority]) -> Vec<(&'a Authority, Jwk)> {
        let cached = self.current();
        rows.iter()
            .filter_map(|a| {
                let known = cached
                    .published
                    .iter()
                    .find(|p| p.info.id == a.id && p.info.kind == a.kind)
                    .map(|p| p.jwk.clone());
                match known.map_or_else(|| bundle_jwk(a), Ok) {
                    Ok(jwk) => Some((a, jwk)),
                    Err(e) => {
                        tracing::error!(id = %a.id, error = %e, "stored authority left out of the bundle");
                        None
                    }
                }
            })
            .collect()
    }

    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    async fn key_signer(&self, kind: AuthorityKind) -> Result<(Arc<KeyPair>, String), CaError> {
        match self.active_signer(kind).await? {
            (info, Signer::Key(key)) => Ok((key, info.id)),
            (info, Signer::X509(_)) => Err(wrong_signer(info.id)),
        }
    }

    /// The cached ACTIVE signer of `kind`; on a miss (before the first rotation, or
    /// after a failed load), reloads once.
    async fn active_signer(&self, kind: AuthorityKind) -> Result<(AuthorityInfo, Signer), CaError> {
        if let Some(found) = self.current().active_signer(kind) {
            return Ok(found);
        }
        let reloaded = self.reload().await;
        if let Some(found) = self.current().active_signer(kind) {
            return Ok(found);
        }
        reloaded?;
        Err(CaError::NoActiveAuthority(kind))
    }

    /// Steps one kind's authorities until settled; returns the final rows.
    async fn rotate_kind(
        &self,
        kind: AuthorityKind,
        now: UnixTime,
        report: &mut RotationReport,
        fresh: &mut HashMap<String, Signer>,
    ) -> Result<Vec<Authority>, CaError> {
        for _ in 0..MAX_STEPS {
            let mut list = self.store.list_authorities(Some(kind)).await?;
            list.retain(|a| a.kind == kind);
            let Some(step) = plan(&list, now, self.config.max_credential_ttl) else {
                return Ok(list);
            };
            self.apply(kind, step, now, report, fresh).await?;
        }
        tracing::warn!(
            kind = kind.as_str(),
            "signing authorities did not settle in {MAX_STEPS} steps; continuing at the next rotation"
        );
        let mut list = self.store.list_authorities(Some(kind)).await?;
        list.retain(|a| a.kind == kind);
        Ok(list)
    }

    async fn apply(
        &self,
        kind: AuthorityKind,
        step: Step,
        now: UnixTime,
        report: &mut RotationReport,
        fresh: &mut HashMap<String, Signer>,
    ) -> Result<(), CaError> {
        match step {
            Step::Demote(losers) => {
                for loser in losers {
                    let id = loser.id.clone();
                    self.set_status(loser, AuthorityStatus::Old).await?;
                    report.push(kind, &id, RotationAction::Demoted);
                }
            }
            Step::Remove(doomed) => {
                for a in doomed {
                    if self.store.delete_authority(&a.id).await? {
                        if in_bundle(kind) {
                            self.store.bump_bundle_sequence().await?;
                        }
                        report.push(kind, &a.id, RotationAction::Removed);
                    }
                    fresh.remove(&a.id);
                    if let Err(e) = self.config.key_storage.remove(kind, &a.id).await {
                        tracing::warn!(id = %a.id, error = %e, "could not remove a deleted authority's key");
                    }
                }
            }
            Step::Activate { next, retire } => {
                if let Some(old) = retire {
                    let id = old.id.clone();
                    self.set_status(*old, AuthorityStatus::Old).await?;
                    report.push(kind, &id, RotationAction::Retired);
                }
                let id = next.id.clone();
                self.set_status(*next, AuthorityStatus::Active).await?;
                report.push(kind, &id, RotationAction::Activated);
            }
            Step::Create { status, retire } => {
                if let Some(old) = retire {
                    let id = old.id.clone();
                    self.set_status(*old, AuthorityStatus::Old).await?;
                    report.push(kind, &id, RotationAction::Retired);
                }
                let (id, signer) = self.create(kind, status, now).await?;
                fresh.insert(id.clone(), signer);
                let action = match status {
                    AuthorityStatus::Active => RotationAction::CreatedActive,
                    _ => RotationAction::Prepared,
                };
                report.push(kind, &id, action);
            }
        }
        Ok(())
    }

    async fn set_status(&self, mut authority: Authority, status: AuthorityStatus) -> Result<(), CaError> {
        authority.status = status;
        Ok(self.store.put_authority(&authority).await?)
    }

    /// Generates a new authority of `kind`, stores its private key and its row, and bumps
    /// the bundle sequence. Returns its ID and loaded signer.
    async fn create(
        &self,
        kind: AuthorityKind,
        status: AuthorityStatus,
        now: UnixTime,
    ) -> Result<(String, Signer), CaError> {
        let ttl = self.config.ttl(kind);
        let key = KeyPair::generate(Algorithm::ES256)?;
        let id = key.public_jwk().thumbprint(&*self.crypto)?;
        let pkcs8 = key.to_pkcs8_der()?;
        let (public, not_before, not_after, signer) = match kind {
            AuthorityKind::X509 => {
                let td = &self.config.trust_domain;
                let ca = match &self.config.upstream {
                    None => X509Authority::new_root(Arc::clone(&self.crypto), td, Some(&key), ttl, now)?,
                    Some(up) => X509Authority::new_intermediate(
                        Arc::clone(&self.crypto),
                        td,
                        &up.authority,
                        Some(&key),
                        ttl,
                        now,
                    )?,
                };
                let public = ca.cert_der().to_vec();
                (public, ca.not_before(), ca.not_after(), Signer::X509(Arc::new(ca)))
            }
            AuthorityKind::Jwt | AuthorityKind::Wit | AuthorityKind::AccessToken | AuthorityKind::SdCwt => {
                let key = key.with_kid(id.clone());
                let public = key.public_jwk().to_json().into_bytes();
                (public, now, now.plus(ttl), Signer::Key(Arc::new(key)))
            }
        };
        let private_key = self.config.key_storage.seal(kind, &id, &pkcs8, &*self.crypto).await?;
        let authority = Authority {
            id: id.clone(),
            kind,
            status,
            public,
            private_key,
            not_before,
            not_after,
        };
        if let Err(e) = self.store.put_authority(&authority).await {
            if let Err(cleanup) = self.config.key_storage.remove(kind, &id).await {
                tracing::warn!(id = %id, error = %cleanup, "could not remove an unused key");
            }
            return Err(e.into());
        }
        if in_bundle(kind) {
            self.store.bump_bundle_sequence().await?;
        }
        Ok((id, signer))
    }

    /// Replaces the snapshot with `rows`: their bundle entries, and the signer of each
    /// kind's ACTIVE authority (from `fresh`, the previous snapshot, or loaded now).
    /// Problems are logged, the rest installed, and the first problem returned.
    async fn install(&self, rows: Vec<Authority>, mut fresh: HashMap<String, Signer>) -> Result<(), CaError> {
        let previous = self.current();
        let mut failure = None;
        let mut published = Vec::with_capacity(rows.len());
        for a in &rows {
            match bundle_jwk(a) {
                Ok(jwk) => published.push(Published {
                    info: AuthorityInfo {
                        kind: a.kind,
                        id: a.id.clone(),
                        status: a.status,
                        not_before: a.not_before,
                        not_after: a.not_after,
                    },
                    jwk,
                }),
                Err(e) => {
                    tracing::error!(id = %a.id, error = %e, "unreadable stored authority");
                    failure.get_or_insert(e);
                }
            }
        }
        let mut signers = HashMap::new();
        for kind in KINDS {
            let active = rows
                .iter()
                .filter(|a| a.kind == kind && a.status == AuthorityStatus::Active)
                .min_by(|a, b| plan::precedence(a, b));
            let Some(active) = active else { continue };
            let cached = fresh
                .remove(&active.id)
                .or_else(|| previous.signers.get(&active.id).cloned());
            let signer = match cached {
                Some(signer) => signer,
                None => match self.load_signer(active).await {
                    Ok(signer) => signer,
                    Err(e) => {
                        tracing::error!(id = %active.id, error = %e, "cannot load the active signing key");
                        failure.get_or_insert(e);
                        continue;
                    }
                },
            };
            signers.insert(active.id.clone(), signer);
        }
        *self.snapshot.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Snapshot { published, signers });
        failure.map_or(Ok(()), Err)
    }

    /// Reads and checks a stored authority's private key.
    async fn load_signer(&self, a: &Authority) -> Result<Signer, CaError> {
        let pkcs8 = self.config.key_storage.open(a, &*self.crypto).await?;
        let invalid = |reason: String| CaError::InvalidAuthority {
            id: a.id.clone(),
            reason,
        };
        match a.kind {
            AuthorityKind::X509 => {
                let mut chain = vec![CertificateDer::from(a.public.clone())];
                if let Some(up) = &self.config.upstream {
                    // from_der keeps the intermediates above the CA and drops the root.
                    chain.extend(up.chain.iter().cloned());
                }
                let ca = X509Authority::from_der(Arc::clone(&self.crypto), chain, &pkcs8)?;
                if ca.trust_domain() != Some(&self.config.trust_domain) {
                    return Err(invalid(format!(
                        "the CA is not for trust domain {}",
                        self.config.trust_domain.name()
                    )));
                }
                Ok(Signer::X509(Arc::new(ca)))
            }
            AuthorityKind::Jwt | AuthorityKind::Wit | AuthorityKind::AccessToken | AuthorityKind::SdCwt => {
                let key = KeyPair::from_pkcs8_der(&pkcs8, None)?;
                if key.public_jwk().thumbprint(&*self.crypto)? != a.id {
                    return Err(invalid("the private key does not match the authority ID".into()));
                }
                Ok(Signer::Key(Arc::new(key.with_kid(a.id.clone()))))
            }
        }
    }
}

/// Whether authorities of `kind` are SPIFFE trust anchors, published in the bundle (whose
/// sequence their creation and removal bump). Access-token and SD-CWT keys are published
/// elsewhere.
fn in_bundle(kind: AuthorityKind) -> bool {
    !matches!(kind, AuthorityKind::AccessToken | AuthorityKind::SdCwt)
}

fn wrong_signer(id: String) -> CaError {
    CaError::InvalidAuthority {
        id,
        reason: "the key does not fit the authority kind".into(),
    }
}

/// The bundle entry of a stored authority: the CA certificate's `x509-svid` JWK, or the
/// stored public JWK with `use` = `jwt-svid` / `wit-svid` (`sig` for the access-token key)
/// and `kid` = the authority ID.
fn bundle_jwk(a: &Authority) -> Result<Jwk, CaError> {
    let invalid = |reason: String| CaError::InvalidAuthority {
        id: a.id.clone(),
        reason,
    };
    let key_use = match a.kind {
        AuthorityKind::X509 => return Ok(x509_authority_jwk(&a.public)?),
        AuthorityKind::Jwt => "jwt-svid",
        AuthorityKind::Wit => "wit-svid",
        AuthorityKind::AccessToken => "sig",
        AuthorityKind::SdCwt => "sd-cwt",
    };
    let jwk = Jwk::from_json(&a.public).map_err(|e| invalid(format!("bad public JWK: {e}")))?;
    if jwk.is_private() {
        return Err(invalid("the public JWK holds private key material".into()));
    }
    if jwk.kid.as_deref().is_some_and(|kid| kid != a.id) {
        return Err(invalid("the JWK's kid differs from the authority ID".into()));
    }
    Ok(Jwk {
        kid: Some(a.id.clone()),
        key_use: Some(key_use.to_owned()),
        ..jwk.to_public()
    })
}
