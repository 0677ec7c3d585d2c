//! Access tokens and what goes with them: issuing RFC 9068 JWTs (`typ: at+jwt`) with the
//! key manager's ACTIVE access-token key; DPoP proofs at the token endpoint (RFC 9449 §4.3,
//! §5) with server nonces (§8) and proof `jti`s recorded in the shared store;
//! introspection (RFC 7662 §2.2, with `cnf`, `act`, `scope` and `client_id`); revocation
//! (RFC 7009, by `jti` in the shared store until the token expires); the check of an
//! access token presented to this server's own protected resources (the SD-CWT credential
//! endpoint: sender-constrained tokens only, RFC 9449 §7.1, RFC 8705 §3); and the RFC 8414
//! metadata document.
//!
//! DPoP nonces are stateless: `base64url(HMAC-SHA256(k, "dpop-nonce" || window))` for
//! 5-minute windows, the key shared by replicas through the datastore, so any replica
//! accepts a nonce another issued; the current and the previous window are accepted.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::PoisonError;

use lanyard_core::jose::CompactJws;
use lanyard_core::oauth::{
    AccessTokenClaims, AccessTokenPolicy, AccessTokenVerifier, ActiveToken, Actor, Audience, AuthMethod,
    AuthorizationServerMetadata, Confirmation, DpopNonce, DpopRequest, GrantType, IntrospectionResponse,
    PresentedAccessToken, PresentedProof, Scope, TokenTypeUri, VerificationKeys, VerifiedAccessToken,
    VerifiedDpopProof, Violation, alg_values, issue_access_token,
};
use lanyard_core::{JwkSet, MacAlgorithm, UnixTime};

use super::error::OAuthError;
use super::{AuthorizationServer, paths};
use crate::model::AuthorityKind;

/// Seconds per DPoP nonce window.
const NONCE_WINDOW: u64 = 300;

/// How long the parsed access-token keys are reused before the key manager is asked again.
const OWN_KEYS_CACHE_SECS: u64 = 5;

/// The DPoP proof of a request, with what it must match.
#[derive(Clone, Copy, Debug)]
pub struct DpopContext<'a> {
    /// The `DPoP` header.
    pub proof: &'a str,
    /// The request method.
    pub method: &'a str,
    /// The URL the request was sent to (the public or the mutual-TLS endpoint).
    pub uri: &'a str,
    /// The access token sent with the proof (`ath` binds it), at a protected resource of
    /// this server; `None` at the token endpoint (where `ath` is refused).
    pub access_token: Option<&'a str>,
}

/// A request to one of this server's own protected resources (the SD-CWT credential
/// endpoint), as far as access-token checks need it.
#[derive(Clone, Copy, Debug)]
pub struct ResourceRequest<'a> {
    /// The resource's identifier: the token's `aud` must contain it (RFC 9068 §4).
    pub audience: &'a str,
    /// The request method (DPoP `htm`).
    pub method: &'a str,
    /// The URL the request was sent to (DPoP `htu`).
    pub uri: &'a str,
    /// The DER of the connection's client certificate (leaf), on the mutual-TLS listener.
    pub client_certificate: Option<&'a [u8]>,
}

/// An access token accepted at a protected resource of this server, bound to a key its
/// presenter proved.
#[derive(Clone, Debug)]
pub struct BoundAccessToken {
    /// The verified claims.
    pub claims: AccessTokenClaims,
    /// The verified DPoP proof, for a DPoP-bound token (`cnf.jkt`); `None` for a
    /// certificate-bound one (`cnf.x5t#S256`, proven by the TLS handshake).
    pub dpop: Option<VerifiedDpopProof>,
}

/// An access token just signed.
pub(crate) struct Issued {
    pub(crate) token: String,
    pub(crate) jti: String,
    pub(crate) expires_in: u64,
}

/// What an access token says about whom, before the server adds `iss`, `iat`, `exp` and
/// `jti`.
pub(crate) struct AccessTokenContent<'a> {
    /// `sub`: the client itself (`client_credentials`) or an exchanged token's subject.
    pub(crate) sub: &'a str,
    /// The client the token is issued to.
    pub(crate) client_id: &'a str,
    /// `aud`.
    pub(crate) audiences: Vec<String>,
    /// The granted scope.
    pub(crate) scope: &'a Scope,
    /// The binding.
    pub(crate) cnf: Confirmation,
    /// The actor chain (RFC 8693 §4.1), for delegated tokens.
    pub(crate) act: Option<Actor>,
}

/// Why [`AuthorizationServer::check_own_access_token`] refused a token.
#[derive(Debug)]
pub(crate) enum OwnTokenRefused {
    /// The signature, `typ`, issuer, audience or times failed.
    Invalid(lanyard_core::Error),
    /// The token was revoked (RFC 7009).
    Revoked,
}

impl AuthorizationServer {
    /// Signs an RFC 9068 access token for `client_id` (also its `sub`: no resource owner
    /// in `client_credentials`, RFC 9068 §2.2) with a lifetime of at most `ttl` (capped by
    /// the signing key's remaining life).
    pub(crate) async fn issue_access_token(
        &self,
        client_id: &str,
        audiences: Vec<String>,
        scope: &Scope,
        cnf: Confirmation,
        ttl: u64,
        now: UnixTime,
    ) -> Result<Issued, OAuthError> {
        let content = AccessTokenContent {
            sub: client_id,
            client_id,
            audiences,
            scope,
            cnf,
            act: None,
        };
        self.sign_access_token(content, ttl, now).await
    }

    /// Signs an RFC 9068 access token with `content`, valid for at most `ttl` seconds
    /// (capped by the signing key's remaining life).
    pub(crate) async fn sign_access_token(
        &self,
        content: AccessTokenContent<'_>,
        ttl: u64,
        now: UnixTime,
    ) -> Result<Issued, OAuthError> {
        let (key, kid) = self.state.keys.access_token_signer().await?;
        let ttl = ttl.min(self.state.keys.max_ttl(AuthorityKind::AccessToken, now).await?);
        let jti = self.random_id()?;
        let claims = AccessTokenClaims {
            iss: self.issuer.clone(),
            sub: content.sub.to_owned(),
            aud: Audience::new(content.audiences).map_err(OAuthError::Issue)?,
            client_id: content.client_id.to_owned(),
            scope: (!content.scope.is_empty()).then(|| content.scope.clone()),
            iat: now,
            exp: now.plus(ttl),
            nbf: None,
            jti: jti.clone(),
            cnf: (!content.cnf.is_empty()).then_some(content.cnf),
            act: content.act,
            extra: Default::default(),
        };
        let token = issue_access_token(key.as_ref(), &kid, &claims).map_err(OAuthError::Issue)?;
        Ok(Issued {
            token,
            jti,
            expires_in: ttl,
        })
    }

    /// 128 random bits, base64url: a `jti` or a `txn`.
    pub(crate) fn random_id(&self) -> Result<String, OAuthError> {
        let mut random = [0u8; 16];
        self.state.crypto.fill_random(&mut random).map_err(OAuthError::Issue)?;
        Ok(URL_SAFE_NO_PAD.encode(random))
    }

    /// The access-token keys (which also sign Txn-Tokens), parsed for verification. Kept
    /// for [`OWN_KEYS_CACHE_SECS`]: a new key is published (PREPARED) long before it signs,
    /// so a replica never meets a token signed by a key it has not cached.
    pub(crate) async fn own_keys(&self) -> Result<VerificationKeys, OAuthError> {
        let now = self.state.clock.now();
        if let Some((fetched, keys)) = self.own_keys.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
            && now.as_secs().saturating_sub(fetched.as_secs()) < OWN_KEYS_CACHE_SECS
        {
            return Ok(keys.clone());
        }
        let jwks = self.jwks().await?;
        let keys = VerificationKeys::from_jwks(self.state.crypto.as_ref(), self.issuer.clone(), &jwks)
            .map_err(OAuthError::Issue)?;
        // An empty set (before the first rotation) is not kept.
        if !jwks.keys.is_empty() {
            *self.own_keys.lock().unwrap_or_else(PoisonError::into_inner) = Some((now, keys.clone()));
        }
        Ok(keys)
    }

    /// Checks an access token this server issued: its signature with the current
    /// access-token keys and its claims under `policy` at `now`, then the revocation list.
    /// The outer error is the server's own failure; the inner outcome is the token's.
    pub(crate) async fn check_own_access_token(
        &self,
        token: &str,
        policy: AccessTokenPolicy,
        now: UnixTime,
    ) -> Result<Result<VerifiedAccessToken, OwnTokenRefused>, OAuthError> {
        let keys = self.own_keys().await?;
        let verified = match AccessTokenVerifier::new(policy).verify(token, &keys, now) {
            Ok(verified) => verified,
            Err(e) => return Ok(Err(OwnTokenRefused::Invalid(e))),
        };
        if self.state.stores.jtis.is_revoked(&verified.claims.jti).await? {
            return Ok(Err(OwnTokenRefused::Revoked));
        }
        Ok(Ok(verified))
    }

    /// The DPoP nonce of the window `offset` windows before `now`'s.
    fn nonce_at(&self, now: UnixTime, offset: u64) -> String {
        let window = (now.as_secs() / NONCE_WINDOW).saturating_sub(offset);
        let mut input = b"dpop-nonce".to_vec();
        input.extend_from_slice(&window.to_be_bytes());
        match self.state.crypto.mac(MacAlgorithm::HmacSha256, &self.nonce_key, &input) {
            Ok(tag) => URL_SAFE_NO_PAD.encode(&tag.as_bytes()[..16]),
            // A provider that cannot MAC cannot issue nonces; an empty one never matches.
            Err(_) => String::new(),
        }
    }

    /// The current DPoP nonce (the `DPoP-Nonce` header value).
    pub fn dpop_nonce(&self, now: UnixTime) -> String {
        self.nonce_at(now, 0)
    }

    /// Checks a DPoP proof (RFC 9449 §4.3, with this server's nonces when required)
    /// without spending it ([`Self::spend_dpop`]). The token endpoint checks the proof
    /// before authenticating the client (a missing nonce must not use up the client's
    /// assertion) and spends it after (so that only an authenticated client can record a
    /// one-time value).
    pub fn check_dpop(&self, dpop: DpopContext<'_>, now: UnixTime) -> Result<VerifiedDpopProof, OAuthError> {
        // The accepted nonces (two HMACs) only when nonces are required.
        let accepted = self
            .state
            .config
            .oauth
            .require_dpop_nonce
            .then(|| [self.nonce_at(now, 0), self.nonce_at(now, 1)]);
        let accepted_refs = accepted
            .as_ref()
            .map(|[current, previous]| [current.as_str(), previous.as_str()]);
        let nonce = match &accepted_refs {
            Some(accepted) => DpopNonce::Required(accepted),
            None => DpopNonce::NotRequired,
        };
        let request = DpopRequest {
            method: dpop.method,
            uri: dpop.uri,
            access_token: dpop.access_token,
            nonce,
        };
        self.dpop.verify(dpop.proof, &request, now).map_err(OAuthError::Dpop)
    }

    /// Records a verified proof's `jti` per proof key in the shared store, refusing a
    /// replay (on any replica, across restarts).
    pub async fn spend_dpop(&self, proof: &VerifiedDpopProof, now: UnixTime) -> Result<(), OAuthError> {
        if self
            .first_use("dpop", &proof.jkt, &proof.jti, proof.replay_until, now)
            .await?
        {
            Ok(())
        } else {
            Err(OAuthError::DpopReplay)
        }
    }

    /// Verifies an access token presented to a protected resource of this server, in the
    /// order RFC 9449 §7.1 gives: the DPoP proof (with `ath`, not yet spent), the token
    /// (this server's keys, `iss`, `aud` containing `request.audience`, times; RFC 9068
    /// §4), not revoked, then its binding (RFC 9449 §7.1, RFC 8705 §3: `cnf.jkt` needs a
    /// proof by that key, `cnf.x5t#S256` the client certificate with that hash). A token
    /// bound to nothing is refused ([`OAuthError::AccessTokenUnbound`]): these resources
    /// serve key-bound credentials only. The proof is spent last.
    pub async fn verify_bound_token(
        &self,
        presented: &PresentedAccessToken<'_>,
        request: &ResourceRequest<'_>,
        now: UnixTime,
    ) -> Result<BoundAccessToken, OAuthError> {
        let dpop = match presented.dpop_proof {
            Some(proof) => Some(self.check_dpop(
                DpopContext {
                    proof,
                    method: request.method,
                    uri: request.uri,
                    access_token: Some(presented.token),
                },
                now,
            )?),
            None => None,
        };
        let policy = AccessTokenPolicy::new(self.issuer.clone(), request.audience);
        let verified = match self.check_own_access_token(presented.token, policy, now).await? {
            Ok(verified) => verified,
            Err(OwnTokenRefused::Invalid(e)) => return Err(OAuthError::AccessToken(e)),
            Err(OwnTokenRefused::Revoked) => return Err(OAuthError::AccessTokenRevoked),
        };
        let proven = PresentedProof {
            dpop_jkt: dpop.as_ref().map(|p| p.jkt.as_str()),
            client_certificate: request.client_certificate,
        };
        verified
            .check_binding(&proven, self.state.crypto.as_ref())
            .map_err(|e| match &e {
                lanyard_core::Error::OAuth(Violation::ConfirmationMismatch { member: "jkt", .. }) => {
                    OAuthError::Dpop(e)
                }
                _ => OAuthError::AccessToken(e),
            })?;
        let bound = verified
            .claims
            .cnf
            .as_ref()
            .is_some_and(|c| c.jkt.is_some() || c.x5t_s256.is_some());
        if !bound {
            return Err(OAuthError::AccessTokenUnbound);
        }
        if let Some(proof) = &dpop {
            self.spend_dpop(proof, now).await?;
        }
        Ok(BoundAccessToken {
            claims: verified.claims,
            dpop,
        })
    }

    /// The access-token JWK Set (`jwks_uri`): PREPARED, ACTIVE and OLD keys.
    pub async fn jwks(&self) -> Result<JwkSet, OAuthError> {
        Ok(self.state.keys.jwks(AuthorityKind::AccessToken).await?)
    }

    /// What introspection says about `token` at `now` (RFC 7662 §2.2): active when it is
    /// an access token this server signed, within its lifetime and not revoked; anything
    /// else is `{"active": false}`.
    pub async fn introspect(&self, token: &str, now: UnixTime) -> Result<IntrospectionResponse, OAuthError> {
        Ok(match self.verify_own(token, now).await? {
            Some(claims) => IntrospectionResponse::Active(Box::new(ActiveToken::from_access_token(&claims))),
            None => IntrospectionResponse::Inactive,
        })
    }

    /// Revokes `token` if it is an access token this server issued to `client_id` (RFC
    /// 7009 §2.1). A valid token of another client is refused
    /// ([`OAuthError::NotTheTokensClient`], §2.1); a token that is not valid (unknown,
    /// expired, already revoked) is answered like a revoked one (§2.2: 200).
    pub async fn revoke(&self, token: &str, client_id: &str, now: UnixTime) -> Result<bool, OAuthError> {
        let Some(claims) = self.verify_own(token, now).await? else {
            return Ok(false);
        };
        if claims.client_id != client_id {
            return Err(OAuthError::NotTheTokensClient);
        }
        self.state.stores.jtis.revoke_token(&claims.jti, claims.exp).await?;
        Ok(true)
    }

    /// The claims of `token` if this server signed it, it is valid at `now` and not
    /// revoked.
    async fn verify_own(&self, token: &str, now: UnixTime) -> Result<Option<AccessTokenClaims>, OAuthError> {
        // The audience is whatever the token names: introspection serves every resource.
        let audiences = CompactJws::parse(token)
            .and_then(|jws| jws.claims())
            .ok()
            .and_then(|claims| AccessTokenClaims::from_claims(&claims).ok())
            .map(|claims| claims.aud.as_slice().to_vec());
        let Some(audiences) = audiences.filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        let mut policy = AccessTokenPolicy::new(self.issuer.clone(), audiences[0].clone());
        policy.audiences = audiences;
        policy.leeway = 0;
        Ok(self
            .check_own_access_token(token, policy, now)
            .await?
            .ok()
            .map(|verified| verified.claims))
    }

    /// The RFC 8414 metadata: the endpoints, the client authentication methods actually
    /// enabled (the secret methods only when some client has a secret; `spiffe_x509` and
    /// `tls_client_auth` only with the mutual-TLS listener; `spiffe_wit` only when switched on), the grant types served (the
    /// JWT bearer grant with chaining home servers configured), identity chaining's
    /// `identity_chaining_requested_token_types_supported` with foreign servers configured,
    /// algorithms, and the RFC 8705 `mtls_endpoint_aliases`.
    pub async fn metadata(&self) -> Result<AuthorizationServerMetadata, OAuthError> {
        let mut methods = vec![AuthMethod::PrivateKeyJwt, AuthMethod::SpiffeJwt];
        if self.mtls_base.is_some() {
            methods.push(AuthMethod::SpiffeX509);
            methods.push(AuthMethod::TlsClientAuth);
        }
        if self.state.config.oauth.wit_client_auth {
            methods.push(AuthMethod::SpiffeWit);
        }
        if self.state.stores.clients.any_client_has_secret().await? {
            methods.push(AuthMethod::ClientSecretBasic);
            methods.push(AuthMethod::ClientSecretPost);
        }
        let algs = alg_values(self.private_key_jwt.policy().algorithms);
        let mut m = AuthorizationServerMetadata::new(self.issuer.clone());
        m.token_endpoint = Some(self.endpoint(paths::TOKEN));
        m.jwks_uri = Some(self.endpoint(paths::JWKS));
        let oauth = &self.state.config.oauth;
        let mut grants = vec![GrantType::ClientCredentials, GrantType::TokenExchange];
        if !oauth.chaining_home_servers.is_empty() {
            grants.push(GrantType::JwtBearer);
        }
        m.grant_types_supported = Some(grants);
        if !oauth.chaining_foreign_servers.is_empty() {
            m.identity_chaining_requested_token_types_supported = Some(vec![TokenTypeUri::Jwt]);
        }
        m.token_endpoint_auth_methods_supported = Some(methods.clone());
        m.token_endpoint_auth_signing_alg_values_supported = Some(algs.clone());
        m.introspection_endpoint = Some(self.endpoint(paths::INTROSPECT));
        m.introspection_endpoint_auth_methods_supported = Some(methods.clone());
        m.introspection_endpoint_auth_signing_alg_values_supported = Some(algs.clone());
        m.revocation_endpoint = Some(self.endpoint(paths::REVOKE));
        m.revocation_endpoint_auth_methods_supported = Some(methods);
        m.revocation_endpoint_auth_signing_alg_values_supported = Some(algs);
        m.dpop_signing_alg_values_supported = Some(alg_values(self.dpop.policy().algorithms));
        if self.mtls_base.is_some() {
            m.tls_client_certificate_bound_access_tokens = Some(true);
            let aliases = [paths::TOKEN, paths::INTROSPECT, paths::REVOKE]
                .into_iter()
                .zip(["token_endpoint", "introspection_endpoint", "revocation_endpoint"])
                .filter_map(|(path, name)| Some((name.to_owned(), self.mtls_endpoint(path)?)))
                .collect();
            m.mtls_endpoint_aliases = Some(aliases);
        }
        Ok(m)
    }
}
