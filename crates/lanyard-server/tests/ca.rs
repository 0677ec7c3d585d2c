//! The key manager against the real SQL datastore (SQLite), with a fake clock: the
//! prepare → activate → retire lifecycle, the bundle and its sequence, both key storage
//! modes, and several replicas sharing one datastore.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use lanyard_core::{JwtSvidPolicy, JwtSvidVerifier, SpiffeBundle, SpiffeId, TrustDomain, TrustStore, UnixTime};
use lanyard_server::ca::{CaError, KeyManager, KeyManagerConfig, KeyStorage, RotationAction};
use lanyard_server::datastore::{AuthorityStore, SqlDataStore};
use lanyard_server::model::{AuthorityKind, AuthorityStatus};
use lanyard_x509::{SubjectKey, VerifyOptions, X509Authority, X509Bundle, X509BundleSet, verify_svid_chain};

const H: u64 = 3600;
const T0: u64 = 1_800_000_000;
/// Every authority kind; the access-token and SD-CWT keys rotate like the others but are
/// not in the bundle.
const KINDS: [AuthorityKind; 5] = [
    AuthorityKind::X509,
    AuthorityKind::Jwt,
    AuthorityKind::Wit,
    AuthorityKind::AccessToken,
    AuthorityKind::SdCwt,
];

fn at(secs: u64) -> UnixTime {
    UnixTime(T0 + secs)
}

fn td() -> TrustDomain {
    TrustDomain::parse("example.org").unwrap()
}

fn encrypted() -> KeyStorage {
    KeyStorage::Encrypted { kek: [7u8; 32] }
}

async fn memory_store() -> Arc<dyn AuthorityStore> {
    Arc::new(
        SqlDataStore::connect("sqlite::memory:", lanyard_crypto::provider())
            .await
            .unwrap(),
    )
}

fn manager(store: &Arc<dyn AuthorityStore>, storage: KeyStorage) -> KeyManager {
    KeyManager::new(
        Arc::clone(store),
        KeyManagerConfig::new(td(), storage),
        lanyard_crypto::provider(),
    )
}

/// The bundle's keys, as comparable JSON strings.
fn keys_of(bundle: &SpiffeBundle) -> BTreeSet<String> {
    bundle
        .x509_authorities
        .iter()
        .chain(&bundle.jwt_authorities)
        .chain(&bundle.wit_authorities)
        .map(|k| k.to_json())
        .collect()
}

fn counts(bundle: &SpiffeBundle) -> [usize; 3] {
    [
        bundle.x509_authorities.len(),
        bundle.jwt_authorities.len(),
        bundle.wit_authorities.len(),
    ]
}

/// Follows the bundle across rotations: every content change must raise the sequence,
/// and an unchanged bundle must keep it.
struct BundleWatch {
    keys: BTreeSet<String>,
    sequence: u64,
}

impl BundleWatch {
    fn new() -> BundleWatch {
        BundleWatch {
            keys: BTreeSet::new(),
            sequence: 0,
        }
    }

    async fn check(&mut self, m: &KeyManager, expect_change: bool) -> SpiffeBundle {
        let bundle = m.bundle().await.unwrap();
        let seq = bundle.sequence.unwrap();
        let keys = keys_of(&bundle);
        assert_eq!(keys != self.keys, expect_change, "bundle content change");
        if expect_change {
            assert!(
                seq > self.sequence,
                "content changed but sequence {seq} <= {}",
                self.sequence
            );
        } else {
            assert_eq!(seq, self.sequence, "content unchanged but the sequence moved");
        }
        self.keys = keys;
        self.sequence = seq;
        bundle
    }
}

fn actions(report: &lanyard_server::ca::RotationReport, action: RotationAction) -> usize {
    report.changes.iter().filter(|c| c.action == action).count()
}

fn x509_set(certs: &[&X509Authority]) -> X509BundleSet {
    X509BundleSet::new().with(X509Bundle::from_der_certs(td(), certs.iter().map(|c| c.cert_der().clone())).unwrap())
}

fn svid_chains_to(ca_used: &X509Authority, trusted: &[&X509Authority], now: UnixTime) -> bool {
    let id = SpiffeId::parse("spiffe://example.org/workload").unwrap();
    let svid = ca_used.issue_svid(&id, SubjectKey::Generate, H, &[], now).unwrap();
    verify_svid_chain(&svid.chain, &x509_set(trusted), now, &VerifyOptions::default()).is_ok()
}

/// Signs a JWT-SVID with the manager's active JWT key and verifies it against `bundle`.
async fn jwt_verifies(m: &KeyManager, bundle: &SpiffeBundle, now: UnixTime) -> bool {
    let (key, kid) = m.jwt_signer().await.unwrap();
    let issuer = lanyard_core::JwtSvidIssuer::new(key, kid, None).unwrap();
    let sub = SpiffeId::parse("spiffe://example.org/workload").unwrap();
    let token = issuer.issue(&sub, "aud", now, 300).unwrap();
    let trust = TrustStore::new(lanyard_crypto::provider());
    trust.set_bundle(bundle).unwrap();
    JwtSvidVerifier::new(Arc::new(trust), JwtSvidPolicy::default())
        .verify(&token, "aud", now)
        .is_ok()
}

async fn active_rows(store: &Arc<dyn AuthorityStore>, kind: AuthorityKind) -> Vec<String> {
    let rows = store.list_authorities(Some(kind)).await.unwrap();
    rows.into_iter()
        .filter(|a| a.status == AuthorityStatus::Active)
        .map(|a| a.id)
        .collect()
}

#[tokio::test]
async fn lifecycle_of_a_day_long_ca() {
    let store = memory_store().await;
    let m = manager(&store, encrypted());
    let mut watch = BundleWatch::new();

    // Before the first rotation there is nothing to sign with.
    assert!(matches!(
        m.x509_ca().await,
        Err(CaError::NoActiveAuthority(AuthorityKind::X509))
    ));

    // First start: one active authority of each kind (the SD-CWT key too, which the
    // bundle does not show), in the bundle at once.
    let report = m.rotate(at(0)).await.unwrap();
    assert_eq!(
        actions(&report, RotationAction::CreatedActive),
        KINDS.len(),
        "{report:?}"
    );
    assert!(report.bundle_changed());
    let bundle = watch.check(&m, true).await;
    assert!(report.sequence > 0);
    assert_eq!(bundle.sequence, Some(report.sequence));
    assert_eq!(bundle.refresh_hint, Some(300));
    // The access-token key is in the AS's JWKS only, never in the SPIFFE bundle.
    assert_eq!(counts(&bundle), [1, 1, 1]);
    let (_, at_kid) = m.access_token_signer().await.unwrap();
    let at_jwks = m.jwks(AuthorityKind::AccessToken).await.unwrap();
    assert!(at_jwks.find(&at_kid).is_some());
    assert!(!bundle.to_json().contains(&at_kid));
    for kind in KINDS {
        assert_eq!(active_rows(&store, kind).await.len(), 1);
    }
    let ca1 = m.x509_ca().await.unwrap();
    let (jwt1, jwt_kid1) = m.jwt_signer().await.unwrap();
    let (_, wit_kid1) = m.wit_signer().await.unwrap();
    assert_eq!(jwt1.kid(), Some(jwt_kid1.as_str()));
    assert_eq!(bundle.jwt_authorities[0].kid.as_deref(), Some(jwt_kid1.as_str()));
    assert_eq!(bundle.wit_authorities[0].kid.as_deref(), Some(wit_kid1.as_str()));
    assert_ne!(jwt_kid1, wit_kid1);
    assert_eq!(bundle.x509_authorities[0], ca1.bundle_jwk().unwrap());
    assert!(svid_chains_to(&ca1, &[&ca1], at(60)));
    assert!(jwt_verifies(&m, &bundle, at(60)).await);
    // The bundle document survives the SPIFFE parser.
    let reparsed = SpiffeBundle::parse(td(), bundle.to_json().as_bytes()).unwrap();
    assert_eq!(counts(&reparsed), [1, 1, 1]);
    // A credential issued now may live until the CA's notAfter, no longer.
    assert_eq!(m.max_ttl(AuthorityKind::X509, at(0)).await.unwrap(), 24 * H);
    assert_eq!(m.max_ttl(AuthorityKind::Jwt, at(H)).await.unwrap(), 23 * H);

    // Rotating again, or before the prepare time, changes nothing.
    for t in [0, 60, 11 * H, 12 * H - 10] {
        let report = m.rotate(at(t)).await.unwrap();
        assert!(report.is_empty(), "at {t}: {report:?}");
        watch.check(&m, false).await;
    }

    // 12 h: successors are prepared and published, but the old ones still sign.
    let report = m.rotate(at(12 * H)).await.unwrap();
    assert_eq!(actions(&report, RotationAction::Prepared), KINDS.len(), "{report:?}");
    let bundle = watch.check(&m, true).await;
    assert_eq!(counts(&bundle), [2, 2, 2]);
    assert_eq!(m.x509_ca().await.unwrap().cert_der(), ca1.cert_der());
    assert_eq!(m.jwt_signer().await.unwrap().1, jwt_kid1);
    assert_eq!(m.wit_signer().await.unwrap().1, wit_kid1);
    assert_eq!(m.jwks(AuthorityKind::Jwt).await.unwrap().keys.len(), 2);
    assert!(m.jwks(AuthorityKind::Wit).await.unwrap().find(&wit_kid1).is_some());
    let prepared_kid = bundle
        .jwt_authorities
        .iter()
        .filter_map(|k| k.kid.clone())
        .find(|k| *k != jwt_kid1)
        .unwrap();
    for t in [12 * H, 13 * H, 20 * H - 10] {
        assert!(m.rotate(at(t)).await.unwrap().is_empty());
        watch.check(&m, false).await;
    }

    // 20 h: the prepared ones take over; the old ones stay published (not a bundle change).
    let report = m.rotate(at(20 * H)).await.unwrap();
    assert_eq!(actions(&report, RotationAction::Activated), KINDS.len(), "{report:?}");
    assert_eq!(actions(&report, RotationAction::Retired), KINDS.len(), "{report:?}");
    assert!(!report.bundle_changed());
    let bundle = watch.check(&m, false).await;
    assert_eq!(counts(&bundle), [2, 2, 2]);
    let ca2 = m.x509_ca().await.unwrap();
    assert_ne!(ca2.cert_der(), ca1.cert_der());
    assert!(svid_chains_to(&ca2, &[&ca2], at(20 * H)));
    assert!(
        !svid_chains_to(&ca2, &[&ca1], at(20 * H)),
        "new SVIDs must chain to the new CA only"
    );
    assert!(
        svid_chains_to(&ca1, &[&ca1, &ca2], at(20 * H)),
        "the old CA is still trusted"
    );
    let (_, jwt_kid2) = m.jwt_signer().await.unwrap();
    assert_eq!(jwt_kid2, prepared_kid);
    assert_ne!(m.wit_signer().await.unwrap().1, wit_kid1);
    assert!(jwt_verifies(&m, &bundle, at(20 * H)).await);
    let statuses: Vec<_> = m.authorities().into_iter().map(|a| (a.kind, a.status)).collect();
    for kind in KINDS {
        assert!(statuses.contains(&(kind, AuthorityStatus::Old)));
        assert!(statuses.contains(&(kind, AuthorityStatus::Active)));
    }
    // The new CA was created at 12 h for 24 h: 16 h left at 20 h.
    assert_eq!(m.max_ttl(AuthorityKind::X509, at(20 * H)).await.unwrap(), 16 * H);

    // 24 h: the new active ones reach their own prepare time; the old ones are kept.
    let report = m.rotate(at(24 * H)).await.unwrap();
    assert_eq!(actions(&report, RotationAction::Prepared), KINDS.len(), "{report:?}");
    assert_eq!(counts(&watch.check(&m, true).await), [3, 3, 3]);
    // Until notAfter + max_credential_ttl (1 h) the old ones stay.
    assert!(m.rotate(at(25 * H)).await.unwrap().is_empty());
    watch.check(&m, false).await;
    // Then they leave the bundle.
    let report = m.rotate(at(25 * H + 1)).await.unwrap();
    assert_eq!(actions(&report, RotationAction::Removed), KINDS.len(), "{report:?}");
    let bundle = watch.check(&m, true).await;
    assert_eq!(counts(&bundle), [2, 2, 2]);
    assert!(!bundle.x509_authorities.contains(&ca1.bundle_jwk().unwrap()));
    assert!(
        bundle
            .jwt_authorities
            .iter()
            .all(|k| k.kid.as_deref() != Some(&jwt_kid1))
    );
    assert!(m.jwks(AuthorityKind::Jwt).await.unwrap().find(&jwt_kid1).is_none());
    assert_eq!(m.x509_ca().await.unwrap().cert_der(), ca2.cert_der());
    assert!(m.rotate(at(25 * H + 2)).await.unwrap().is_empty());
    watch.check(&m, false).await;
}

#[tokio::test]
async fn downtime_past_expiry_recovers() {
    let store = memory_store().await;
    let m = manager(&store, encrypted());
    m.rotate(at(0)).await.unwrap();
    let ca1 = m.x509_ca().await.unwrap();
    // Down for two days: the active authorities expired, none was prepared.
    let report = m.rotate(at(48 * H)).await.unwrap();
    assert!(report.bundle_changed(), "{report:?}");
    let ca = m.x509_ca().await.unwrap();
    assert_ne!(ca.cert_der(), ca1.cert_der());
    assert!(ca.not_after() > at(48 * H));
    assert!(m.max_ttl(AuthorityKind::Wit, at(48 * H)).await.unwrap() >= 23 * H);
    for kind in KINDS {
        assert_eq!(active_rows(&store, kind).await.len(), 1);
    }
    // The expired ones were dropped (past notAfter + 1 h); the next rotation is a no-op.
    assert_eq!(counts(&m.bundle().await.unwrap()), [1, 1, 1]);
    assert!(m.rotate(at(48 * H)).await.unwrap().is_empty());
}

#[tokio::test]
async fn file_storage_keeps_private_keys_out_of_the_datastore() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let store = memory_store().await;
    let m = manager(&store, KeyStorage::Files(keys.clone()));
    m.rotate(at(0)).await.unwrap();

    assert_eq!(std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777, 0o700);
    let files: Vec<_> = std::fs::read_dir(&keys).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), KINDS.len(), "{files:?}");
    let rows = store.list_authorities(None).await.unwrap();
    for path in &files {
        assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600);
        let pem = std::fs::read_to_string(path).unwrap();
        let der = pem::parse(&pem).unwrap().into_contents();
        for row in &rows {
            assert!(row.private_key.is_empty());
            assert!(!row.public.windows(der.len()).any(|w| w == der.as_slice()));
        }
    }
    let (jwt, kid) = m.jwt_signer().await.unwrap();
    assert!(keys.join(format!("jwt-{kid}.pem")).exists());

    // Another manager over the same datastore and directory loads the same keys.
    let other = manager(&store, KeyStorage::Files(keys.clone()));
    let (jwt_b, kid_b) = other.jwt_signer().await.unwrap();
    assert_eq!(kid_b, kid);
    assert_eq!(jwt_b.to_pkcs8_der().unwrap(), jwt.to_pkcs8_der().unwrap());
    assert_eq!(
        other.x509_ca().await.unwrap().cert_der(),
        m.x509_ca().await.unwrap().cert_der()
    );

    // A manager that cannot read the key file fails cleanly.
    let elsewhere = manager(&store, KeyStorage::Files(dir.path().join("empty")));
    assert!(matches!(elsewhere.wit_signer().await, Err(CaError::KeyFile { .. })));
    let encrypted_view = manager(&store, encrypted());
    assert!(matches!(
        encrypted_view.wit_signer().await,
        Err(CaError::InvalidAuthority { .. })
    ));

    // Deleted authorities take their files with them.
    for t in [12 * H, 20 * H, 25 * H + 1] {
        m.rotate(at(t)).await.unwrap();
    }
    assert!(!keys.join(format!("jwt-{kid}.pem")).exists());
    let left = std::fs::read_dir(&keys).unwrap().count();
    assert_eq!(left, store.list_authorities(None).await.unwrap().len());
}

#[tokio::test]
async fn encrypted_storage_round_trips_and_a_wrong_kek_fails() {
    let store = memory_store().await;
    let kek = KeyStorage::kek_from_base64("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=").unwrap();
    let m = manager(&store, kek);
    m.rotate(at(0)).await.unwrap();
    let (jwt, kid) = m.jwt_signer().await.unwrap();
    let pkcs8 = jwt.to_pkcs8_der().unwrap();
    let rows = store.list_authorities(None).await.unwrap();
    for row in &rows {
        assert!(row.private_key.len() > 12 + 16, "sealed key expected");
        assert!(!row.private_key.windows(pkcs8.len()).any(|w| w == pkcs8.as_slice()));
    }

    // Same KEK (given as raw bytes this time), new process: the keys load and match.
    let again = manager(&store, encrypted());
    let (jwt_b, kid_b) = again.jwt_signer().await.unwrap();
    assert_eq!((kid_b, jwt_b.to_pkcs8_der().unwrap()), (kid.clone(), pkcs8));
    let ca = again.x509_ca().await.unwrap();
    assert_eq!(ca.cert_der(), m.x509_ca().await.unwrap().cert_der());
    assert!(svid_chains_to(&ca, &[&ca], at(10)));

    // A wrong KEK fails cleanly, and its rotation does not mint replacement authorities.
    let wrong = manager(&store, KeyStorage::Encrypted { kek: [8u8; 32] });
    assert!(matches!(wrong.x509_ca().await, Err(CaError::Decrypt { .. })));
    assert!(matches!(wrong.jwt_signer().await, Err(CaError::Decrypt { .. })));
    assert!(matches!(wrong.rotate(at(10)).await, Err(CaError::Decrypt { .. })));
    assert_eq!(store.list_authorities(None).await.unwrap().len(), rows.len());
    // It can still publish the (public) bundle.
    assert_eq!(counts(&wrong.bundle().await.unwrap()), [1, 1, 1]);

    // A row's sealed key moved to another row does not decrypt (the ID is bound).
    let mut moved = rows[1].clone();
    moved.private_key = rows[0].private_key.clone();
    store.put_authority(&moved).await.unwrap();
    let fresh = manager(&store, encrypted());
    let err = match moved.kind {
        AuthorityKind::X509 => fresh.x509_ca().await.err(),
        AuthorityKind::Jwt => fresh.jwt_signer().await.err(),
        AuthorityKind::Wit => fresh.wit_signer().await.err(),
        AuthorityKind::AccessToken => fresh.access_token_signer().await.err(),
        AuthorityKind::SdCwt => fresh.sd_cwt_signer().await.err(),
        other => panic!("unexpected authority kind {other:?}"),
    };
    assert!(matches!(err, Some(CaError::Decrypt { .. })), "{err:?}");

    // Nothing secret in Debug output.
    let debug = format!("{m:?} {:?}", m.config());
    assert!(debug.contains("redacted"), "{debug}");
    assert!(!debug.contains("7, 7, 7"), "{debug}");

    assert!(matches!(
        KeyStorage::kek_from_base64("c2hvcnQ="),
        Err(CaError::InvalidKek(_))
    ));
}

/// Checks the shared datastore's invariant: exactly one ACTIVE and at most one PREPARED
/// authority per kind.
async fn assert_settled(store: &Arc<dyn AuthorityStore>, context: &str) {
    for kind in KINDS {
        let rows = store.list_authorities(Some(kind)).await.unwrap();
        let active = rows.iter().filter(|a| a.status == AuthorityStatus::Active).count();
        let prepared = rows.iter().filter(|a| a.status == AuthorityStatus::Prepared).count();
        assert_eq!(active, 1, "{context}: {kind:?} has {active} active: {rows:?}");
        assert!(prepared <= 1, "{context}: {kind:?} has {prepared} prepared: {rows:?}");
    }
}

/// Both replicas rotate at `now` concurrently; returns how many times a replica created
/// something and then found it had lost a race (a demoted ACTIVE or a deleted PREPARED
/// authority).
async fn rotate_both(a: &Arc<KeyManager>, b: &Arc<KeyManager>, now: UnixTime) -> usize {
    let (ra, rb) = (Arc::clone(a), Arc::clone(b));
    let ta = tokio::spawn(async move { ra.rotate(now).await });
    let tb = tokio::spawn(async move { rb.rotate(now).await });
    let (ra, rb) = (ta.await.unwrap().unwrap(), tb.await.unwrap().unwrap());
    let changes: Vec<_> = ra.changes.iter().chain(&rb.changes).collect();
    let prepared: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.action == RotationAction::Prepared)
        .map(|c| c.id.as_str())
        .collect();
    changes
        .iter()
        .filter(|c| {
            c.action == RotationAction::Demoted
                || (c.action == RotationAction::Removed && prepared.contains(c.id.as_str()))
        })
        .count()
}

/// Both replicas must sign with the same authorities once each has rotated after the race.
async fn assert_agree(a: &KeyManager, b: &KeyManager, store: &Arc<dyn AuthorityStore>, now: UnixTime) {
    a.rotate(now).await.unwrap();
    b.rotate(now).await.unwrap();
    assert_eq!(
        a.x509_ca().await.unwrap().cert_der(),
        b.x509_ca().await.unwrap().cert_der()
    );
    assert_eq!(a.jwt_signer().await.unwrap().1, b.jwt_signer().await.unwrap().1);
    assert_eq!(a.wit_signer().await.unwrap().1, b.wit_signer().await.unwrap().1);
    assert_eq!(
        active_rows(store, AuthorityKind::Jwt).await,
        [a.jwt_signer().await.unwrap().1]
    );
    assert_eq!(a.bundle().await.unwrap(), b.bundle().await.unwrap());
}

async fn replica_rounds(stores: [Arc<dyn AuthorityStore>; 2], rounds: usize) -> usize {
    let mut repairs = 0;
    for round in 0..rounds {
        // Fresh authorities each round: clear what the previous round left.
        for row in stores[0].list_authorities(None).await.unwrap() {
            stores[0].delete_authority(&row.id).await.unwrap();
        }
        let a = Arc::new(KeyManager::new(
            Arc::clone(&stores[0]),
            KeyManagerConfig::new(td(), encrypted()),
            lanyard_crypto::provider(),
        ));
        let b = Arc::new(KeyManager::new(
            Arc::clone(&stores[1]),
            KeyManagerConfig::new(td(), encrypted()),
            lanyard_crypto::provider(),
        ));
        let mut last_seq = stores[0].bundle_sequence().await.unwrap();
        for t in [0, 12 * H, 20 * H, 25 * H + 1] {
            repairs += rotate_both(&a, &b, at(t)).await;
            let context = format!("round {round} at {t}");
            assert_settled(&stores[0], &context).await;
            assert_agree(&a, &b, &stores[0], at(t)).await;
            let seq = stores[0].bundle_sequence().await.unwrap();
            if t != 20 * H {
                assert!(seq > last_seq, "{context}: the bundle changed but not its sequence");
            }
            last_seq = seq;
        }
    }
    repairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_datastore_converge() {
    let store = memory_store().await;
    let repairs = replica_rounds([Arc::clone(&store), store], 25).await;
    eprintln!("shared in-memory datastore: {repairs} race repairs over 25 rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_their_own_connections_converge() {
    // Two pools on one SQLite file: each replica has its own connections, as with
    // PostgreSQL in production.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("lanyard.db").display());
    let a: Arc<dyn AuthorityStore> = Arc::new(SqlDataStore::connect(&url, lanyard_crypto::provider()).await.unwrap());
    let b: Arc<dyn AuthorityStore> = Arc::new(SqlDataStore::connect(&url, lanyard_crypto::provider()).await.unwrap());
    let repairs = replica_rounds([a, b], 10).await;
    eprintln!("two pools on one SQLite file: {repairs} race repairs over 10 rounds");
}

/// With an upstream CA, the server's CAs are intermediates: SVIDs verify against the
/// upstream root alone (the bundle's only X.509 authority), also after a reload from the
/// datastore, and `openssl verify` agrees when it is installed.
#[tokio::test]
async fn upstream_ca_signs_intermediates_and_the_bundle_holds_the_root() {
    use lanyard_server::ca::UpstreamCa;
    let root = X509Authority::new_root(lanyard_crypto::provider(), &td(), None, 100 * H, at(0).minus(H)).unwrap();
    let upstream =
        Arc::new(UpstreamCa::from_pem(lanyard_crypto::provider(), &root.cert_pem(), &root.key_pem()).unwrap());
    assert_eq!(upstream.roots(), std::slice::from_ref(root.cert_der()));
    let store = memory_store().await;
    let config = KeyManagerConfig {
        upstream: Some(Arc::clone(&upstream)),
        ..KeyManagerConfig::new(td(), encrypted())
    };
    let keys = KeyManager::new(Arc::clone(&store), config.clone(), lanyard_crypto::provider());
    keys.rotate(at(0)).await.unwrap();

    let bundle = keys.bundle().await.unwrap();
    assert_eq!(bundle.x509_authorities.len(), 1);
    assert_eq!(bundle.x509_authorities, vec![root.bundle_jwk().unwrap()]);
    let trusted = X509BundleSet::new().with(X509Bundle::from_spiffe_bundle(&bundle).unwrap());

    let ca = keys.x509_ca().await.unwrap();
    assert!(!ca.is_self_signed());
    let id = SpiffeId::parse("spiffe://example.org/workload").unwrap();
    let svid = ca.issue_svid(&id, SubjectKey::Generate, 600, &[], at(0)).unwrap();
    assert_eq!(svid.chain.len(), 2, "leaf and intermediate");
    verify_svid_chain(&svid.chain, &trusted, at(1), &VerifyOptions::default()).unwrap();

    // Another replica (or a restart) loads the stored intermediate with the upstream chain.
    let again = KeyManager::new(Arc::clone(&store), config, lanyard_crypto::provider());
    again.reload().await.unwrap();
    let svid = again
        .x509_ca()
        .await
        .unwrap()
        .issue_svid(&id, SubjectKey::Generate, 600, &[], at(2))
        .unwrap();
    assert_eq!(svid.chain.len(), 2);
    verify_svid_chain(&svid.chain, &trusted, at(3), &VerifyOptions::default()).unwrap();

    // Rotation keeps the bundle at the root while the intermediates change.
    keys.rotate(at(20 * H)).await.unwrap();
    let later = keys.bundle().await.unwrap();
    assert_eq!(later.x509_authorities, bundle.x509_authorities);

    // An independent verifier, when installed: openssl, at the real current time.
    let now = lanyard_core::Clock::now(&lanyard_core::SystemClock);
    let root = X509Authority::new_root(lanyard_crypto::provider(), &td(), None, 10 * H, now).unwrap();
    let live = KeyManager::new(
        memory_store().await,
        KeyManagerConfig {
            upstream: Some(Arc::new(
                UpstreamCa::from_pem(lanyard_crypto::provider(), &root.cert_pem(), &root.key_pem()).unwrap(),
            )),
            ..KeyManagerConfig::new(td(), encrypted())
        },
        lanyard_crypto::provider(),
    );
    live.rotate(now).await.unwrap();
    let svid = live
        .x509_ca()
        .await
        .unwrap()
        .issue_svid(&id, SubjectKey::Generate, 600, &[], now)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = |der: &[u8]| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()));
    std::fs::write(dir.path().join("root.pem"), root.cert_pem()).unwrap();
    std::fs::write(dir.path().join("leaf.pem"), pem(&svid.chain[0])).unwrap();
    std::fs::write(dir.path().join("inter.pem"), pem(&svid.chain[1])).unwrap();
    match std::process::Command::new("openssl")
        .args(["verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "leaf.pem"])
        .current_dir(dir.path())
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "openssl verify: {}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(e) => eprintln!("openssl not run: {e}"),
    }
}
