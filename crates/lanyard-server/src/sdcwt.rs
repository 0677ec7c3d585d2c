//! Issuing SD-CWTs (draft-ietf-spice-sd-cwt-08) to workloads: selectively disclosable
//! credentials about a workload, bound to its key, from its registration entry.
//!
//! An SD-CWT the server issues for an entry carries:
//! - `iss` = the server's public URL, `sub` = the entry's identity, `iat`, `nbf`, `exp`,
//!   a random `cti`, and `cnf` = the holder's public key as a COSE_Key (RFC 8747; key
//!   type, curve and coordinates only, as in the draft's examples);
//! - the server's facts ([`FACT_CLAIMS`]): `trust_domain` (`spiffe://<td>`), `node` (the
//!   agent the entry is parented to, which attested the node) and `selectors` (the
//!   entry's selectors, which the workload's attested selectors matched);
//! - the entry's own [`EntryClaims`], each redacted (tag 58 before issuance) unless the
//!   entry's policy says it is always disclosed;
//! - the entry's number of decoy digests ([`EntryClaims::decoy_count`]; `62(n): null`
//!   before issuance, §11.2), among the top-level redacted claim keys, so that verifiers
//!   cannot count the redacted claims; their disclosures go to the holder with the others.
//!
//! It is signed with the ACTIVE [`AuthorityKind::SdCwt`] key (ES256, `kid` = the authority
//! ID) under the key manager, whose public keys are not in the SPIFFE bundle. Salts come
//! from the crypto provider; digests are SHA-256 over the whole disclosure item
//! ([`lanyard_core::spice::sd_cwt::DigestInput::FullItem`]). The lifetime is the caller's
//! (the entry's WIT TTL on the agent API), capped at [`MAX_SD_CWT_TTL`] and by the signing
//! key's remaining life.

mod entry_claims;

pub use entry_claims::{DEFAULT_DECOYS, EntryClaims, FACT_CLAIMS, MAX_DECOYS, MAX_ENTRY_CLAIMS_BYTES};

use std::sync::Arc;

use lanyard_core::cbor::Value;
use lanyard_core::cose::CoseKey;
use lanyard_core::cwt::{Confirmation, label};
use lanyard_core::spice::oidc_claims;
use lanyard_core::spice::sd_cwt::{RandomSalts, SdCwtIssuer, TO_BE_DECOY_TAG, TO_BE_REDACTED_TAG};
use lanyard_core::{Jwk, SigningKey, UnixTime};

use crate::error::ServerError;
use crate::issue::Minted;
use crate::model::{AuthorityKind, Entry};
use crate::state::AppState;

/// The longest SD-CWT the server issues.
pub const MAX_SD_CWT_TTL: u64 = 24 * 3600;

/// Issues an SD-CWT about `entry`'s workload, bound to `holder` (a public JWK). `ttl`
/// defaults to the server's WIT TTL.
pub async fn mint_sd_cwt(
    state: &AppState,
    entry: &Entry,
    holder: &Jwk,
    ttl: Option<u64>,
) -> Result<Minted<Vec<u8>>, ServerError> {
    if entry.spiffe_id.trust_domain() != state.trust_domain.name() {
        return Err(ServerError::PermissionDenied(format!(
            "{} is not in this server's trust domain",
            entry.spiffe_id
        )));
    }
    if holder.is_private() {
        return Err(ServerError::Invalid("the holder key must be a public key".into()));
    }
    // As in the draft's examples, `cnf` names the key only (type, curve, coordinates): the
    // holder may sign SD-KBTs with any algorithm for it that verifiers allow (ES256 or
    // ESP256 on P-256).
    let mut cnf = CoseKey::from_jwk(holder).map_err(|e| ServerError::Invalid(format!("holder key: {e}")))?;
    cnf.alg = None;
    cnf.kid = None;
    let now = state.clock.now();
    let ttl = ttl
        .unwrap_or(state.config.default_wit_ttl)
        .min(MAX_SD_CWT_TTL)
        .min(state.keys.max_ttl(AuthorityKind::SdCwt, now).await?);
    let expires_at = now.plus(ttl);
    let mut cti = [0u8; 16];
    state.crypto.fill_random(&mut cti)?;
    let claims = preissuance_claims(state, entry, &cnf, &cti, now, expires_at)?;
    let (key, kid) = state.keys.sd_cwt_signer().await?;
    let signer: Arc<dyn SigningKey> = key;
    let issued = SdCwtIssuer::new(Arc::clone(&state.crypto), signer)
        .with_kid(kid.into_bytes())
        .issue(&claims, &mut RandomSalts::new(Arc::clone(&state.crypto)))?;
    tracing::debug!(entry = %entry.id, sub = %entry.spiffe_id, ttl, "SD-CWT issued");
    Ok(Minted {
        token: issued.to_vec(),
        issued_at: now,
        expires_at,
    })
}

/// The claims set in the draft's pre-issuance form: redacted claims have their key in
/// tag 58.
fn preissuance_claims(
    state: &AppState,
    entry: &Entry,
    cnf: &CoseKey,
    cti: &[u8],
    now: UnixTime,
    expires_at: UnixTime,
) -> Result<Value, ServerError> {
    let time = |t: UnixTime| Value::int(i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
    let mut map = vec![
        (Value::int(label::ISS), Value::text(state.public_url.as_str())),
        (Value::int(label::SUB), Value::text(entry.spiffe_id.as_str())),
        (Value::int(label::EXP), time(expires_at)),
        (Value::int(label::NBF), time(now)),
        (Value::int(label::IAT), time(now)),
        (Value::int(label::CTI), Value::bytes(cti.to_vec())),
        (Value::int(label::CNF), Confirmation::Key(cnf.clone()).to_value()),
    ];
    let policy = &entry.claims;
    let mut push = |name: &str, key: Value, value: Value| {
        let key = if policy.is_always_disclosed(name) {
            key
        } else {
            Value::Tag(TO_BE_REDACTED_TAG, Box::new(key))
        };
        map.push((key, value));
    };
    push(
        "trust_domain",
        Value::text("trust_domain"),
        Value::text(format!("spiffe://{}", state.trust_domain.name())),
    );
    push("node", Value::text("node"), Value::text(entry.parent_id.as_str()));
    push(
        "selectors",
        Value::text("selectors"),
        Value::Array(entry.selectors.iter().map(|s| Value::text(s.to_string())).collect()),
    );
    let converted = oidc_claims::json_to_cbor(&policy.claims)
        .map_err(|e| ServerError::Invalid(format!("entry {} claims: {e}", entry.id)))?;
    for (key, value) in converted.as_map().unwrap_or_default() {
        let name = match key {
            Value::Text(t) => t.clone(),
            other => other
                .as_i64()
                .and_then(oidc_claims::by_label)
                .map(|c| c.name.to_owned())
                .unwrap_or_default(),
        };
        push(&name, key.clone(), value.clone());
    }
    for n in 1..=i64::from(policy.decoy_count()) {
        map.push((Value::Tag(TO_BE_DECOY_TAG, Box::new(Value::int(n))), Value::Null));
    }
    // The redacted claim keys' digests are listed in this order: shuffled, a digest's
    // position tells neither which claim it is nor whether it is a decoy.
    shuffle(state, &mut map[STANDARD_CLAIMS..])?;
    Ok(Value::Map(map))
}

/// How many registered claims lead the pre-issuance map (never redacted, not shuffled).
const STANDARD_CLAIMS: usize = 7;

/// A Fisher–Yates shuffle with the crypto provider's randomness.
fn shuffle<T>(state: &AppState, items: &mut [T]) -> Result<(), ServerError> {
    for i in (1..items.len()).rev() {
        let mut random = [0u8; 8];
        state.crypto.fill_random(&mut random)?;
        let bound = u64::try_from(i + 1).unwrap_or(u64::MAX);
        let j = usize::try_from(u64::from_le_bytes(random) % bound).unwrap_or(0);
        items.swap(i, j);
    }
    Ok(())
}
