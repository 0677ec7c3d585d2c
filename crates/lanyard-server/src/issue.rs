//! Issuing credentials with the active authorities: WITs, JWT-SVIDs and X.509-SVIDs.
//! Every function checks that the identity belongs to this trust domain and caps the
//! lifetime so no credential outlives the authority that signs it.

use lanyard_core::jose::Jwk;
use lanyard_core::{JwtSvidIssuer, SpiffeBundle, SpiffeId, UnixTime, WitClaims, WorkloadId, issue_wit};
use lanyard_x509::{Usage, VerifiedSvid, VerifyOptions, X509Bundle, X509BundleSet, X509Svid, verify_svid_chain};

use crate::error::ServerError;
use crate::model::AuthorityKind;
use crate::state::AppState;

/// The longest WIT the server issues (verifiers refuse longer ones by default).
pub const MAX_WIT_TTL: u64 = 24 * 3600;

fn check_domain(state: &AppState, id: &str, trust_domain: &str) -> Result<(), ServerError> {
    if trust_domain != state.trust_domain.name() {
        return Err(ServerError::PermissionDenied(format!(
            "{id} is not in this server's trust domain {}",
            state.trust_domain.name()
        )));
    }
    Ok(())
}

fn random_id(state: &AppState) -> Result<String, ServerError> {
    let mut bytes = [0u8; 16];
    state.crypto.fill_random(&mut bytes)?;
    Ok(lanyard_core::hex::encode(&bytes))
}

/// A credential just signed, with the times it carries: a WIT or a JWT-SVID (`T` the
/// compact JWS), or an SD-CWT (`T` its CBOR bytes, [`crate::sdcwt::mint_sd_cwt`]). Its
/// `Debug` leaves the credential out.
#[derive(Clone)]
pub struct Minted<T = String> {
    /// The credential.
    pub token: T,
    /// Its `iat`.
    pub issued_at: UnixTime,
    /// Its `exp`: the lifetime asked for, or less where the kind's cap
    /// ([`MAX_WIT_TTL`], [`crate::sdcwt::MAX_SD_CWT_TTL`]) or the signing key's retirement
    /// comes sooner.
    pub expires_at: UnixTime,
}

impl<T> std::fmt::Debug for Minted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Issues a WIT binding `sub` to the public key `cnf` (which must carry `alg`).
pub async fn mint_wit(state: &AppState, sub: &WorkloadId, cnf: &Jwk, ttl: Option<u64>) -> Result<Minted, ServerError> {
    mint_wit_at(state, sub, cnf, ttl, state.clock.now()).await
}

/// [`mint_wit`] issued at `now` (a token exchange's request time, so that the WIT ends
/// when the lifetime computed at that time says).
pub(crate) async fn mint_wit_at(
    state: &AppState,
    sub: &WorkloadId,
    cnf: &Jwk,
    ttl: Option<u64>,
    now: UnixTime,
) -> Result<Minted, ServerError> {
    check_domain(state, sub.as_str(), sub.trust_domain())?;
    if cnf.is_private() {
        return Err(ServerError::Invalid("cnf must be a public key".into()));
    }
    let ttl = ttl
        .unwrap_or(state.config.default_wit_ttl)
        .min(MAX_WIT_TTL)
        .min(state.keys.max_ttl(AuthorityKind::Wit, now).await?);
    let (signer, kid) = state.keys.wit_signer().await?;
    let claims = WitClaims {
        sub: sub.clone(),
        cnf_jwk: cnf.clone(),
        iat: now,
        exp: now.plus(ttl),
        iss: Some(state.public_url.clone()),
        jti: Some(random_id(state)?),
    };
    Ok(Minted {
        token: issue_wit(signer.as_ref(), Some(&kid), &claims)?,
        issued_at: claims.iat,
        expires_at: claims.exp,
    })
}

/// Issues a JWT-SVID for `sub` with the audiences `audiences`.
pub async fn mint_jwt_svid<A: AsRef<str>>(
    state: &AppState,
    sub: &SpiffeId,
    audiences: &[A],
    ttl: Option<u64>,
) -> Result<Minted, ServerError> {
    mint_jwt_svid_at(state, sub, audiences, ttl, state.clock.now()).await
}

/// [`mint_jwt_svid`] issued at `now` (see [`mint_wit_at`]).
pub(crate) async fn mint_jwt_svid_at<A: AsRef<str>>(
    state: &AppState,
    sub: &SpiffeId,
    audiences: &[A],
    ttl: Option<u64>,
    now: UnixTime,
) -> Result<Minted, ServerError> {
    check_domain(state, sub.as_str(), sub.trust_domain_name())?;
    let ttl = ttl
        .unwrap_or(state.config.default_jwt_svid_ttl)
        .min(state.keys.max_ttl(AuthorityKind::Jwt, now).await?);
    let (signer, kid) = state.keys.jwt_signer().await?;
    let issuer = JwtSvidIssuer::new(signer, kid, Some(state.public_url.clone()))?;
    Ok(Minted {
        token: issuer.issue_for(sub, audiences, now, ttl)?,
        issued_at: now,
        expires_at: now.plus(ttl),
    })
}

/// Signs an X.509-SVID for `spiffe_id` from a PKCS#10 CSR (DER) that must request exactly
/// that identity. Returns the chain as PEM.
pub async fn sign_x509_svid(
    state: &AppState,
    spiffe_id: &SpiffeId,
    csr_der: &[u8],
    dns_names: &[String],
    ttl: Option<u64>,
) -> Result<String, ServerError> {
    Ok(x509_svid(state, spiffe_id, csr_der, dns_names, ttl).await?.chain_pem())
}

/// [`sign_x509_svid`], as an [`X509Svid`] (the chain, no key). An empty CSR is refused.
pub async fn x509_svid(
    state: &AppState,
    spiffe_id: &SpiffeId,
    csr_der: &[u8],
    dns_names: &[String],
    ttl: Option<u64>,
) -> Result<X509Svid, ServerError> {
    if csr_der.is_empty() {
        return Err(ServerError::Invalid("csr is required".into()));
    }
    check_domain(state, spiffe_id.as_str(), spiffe_id.trust_domain_name())?;
    let now = state.clock.now();
    let ttl = ttl
        .unwrap_or(state.config.default_x509_svid_ttl)
        .min(state.keys.max_ttl(AuthorityKind::X509, now).await?);
    let ca = state.keys.x509_ca().await?;
    ca.issue_svid_from_csr(csr_der, spiffe_id, ttl, dns_names, now)
        .map_err(ServerError::Csr)
}

/// An agent SVID for `agent_id` from the agent's CSR: [`x509_svid`] with the default
/// lifetime and no DNS names.
pub async fn agent_svid(state: &AppState, agent_id: &SpiffeId, csr_der: &[u8]) -> Result<X509Svid, ServerError> {
    x509_svid(state, agent_id, csr_der, &[], None).await
}

/// Checks an agent SVID the server just issued against the current bundle (as a TLS
/// client certificate), before it is handed out; returns its verified details and the
/// bundle.
pub async fn check_agent_svid(state: &AppState, svid: &X509Svid) -> Result<(VerifiedSvid, SpiffeBundle), ServerError> {
    let bundle = state.keys.bundle().await?;
    let x509 = X509Bundle::from_spiffe_bundle(&bundle).map_err(|source| ServerError::X509 {
        context: "reading the trust bundle",
        source,
    })?;
    let verified = verify_svid_chain(
        &svid.chain,
        &X509BundleSet::new().with(x509),
        state.clock.now(),
        &VerifyOptions::for_usage(Usage::ClientAuth),
    )
    .map_err(|source| ServerError::X509 {
        context: "the new agent SVID does not verify",
        source,
    })?;
    Ok((verified, bundle))
}
