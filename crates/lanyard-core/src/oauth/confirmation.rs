//! The `cnf` (confirmation) claim of a sender-constrained access token (RFC 7800 §3.1):
//! `jkt`, the RFC 7638 SHA-256 thumbprint of a DPoP key (RFC 9449 §6.1), or `x5t#S256`,
//! the base64url SHA-256 of a client certificate's DER (RFC 8705 §3.1). The same object
//! appears in introspection responses (RFC 9449 §6.2, RFC 8705 §3.2).
//!
//! [`Confirmation::check`] is the resource server's rule (RFC 9449 §7.1, RFC 8705 §3): a
//! bound token is accepted only with the proof its `cnf` names, and a DPoP proof is not
//! accepted for a token that is not DPoP-bound. [`Confirmation::check_holder`] is the part
//! of it a token endpoint applies to a bound token presented for exchange (the request's
//! DPoP proof binds the token being issued, so it is not refused beside an unbound one).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::crypto::CryptoProvider;
use crate::error::Error;
use crate::jose::base64url;
use crate::oauth::violation::Violation;

/// A `cnf` claim. Members other than `jkt` and `x5t#S256` (a `jwk`, for instance) are kept
/// in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// RFC 7638 SHA-256 thumbprint of the DPoP public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// base64url SHA-256 of the DER of the client certificate.
    #[serde(default, rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
    /// Other confirmation members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a request presented to prove possession, once its parts have been verified.
#[derive(Clone, Copy, Debug, Default)]
pub struct PresentedProof<'a> {
    /// The thumbprint of the key of a verified DPoP proof (`VerifiedDpopProof::jkt`).
    pub dpop_jkt: Option<&'a str>,
    /// The DER of the client certificate of the TLS connection.
    pub client_certificate: Option<&'a [u8]>,
}

impl Confirmation {
    /// A confirmation binding a DPoP key by its thumbprint.
    pub fn dpop(jkt: impl Into<String>) -> Confirmation {
        Confirmation {
            jkt: Some(jkt.into()),
            ..Confirmation::default()
        }
    }

    /// A confirmation binding a client certificate.
    pub fn certificate(provider: &dyn CryptoProvider, certificate_der: &[u8]) -> Confirmation {
        Confirmation {
            x5t_s256: Some(certificate_thumbprint(provider, certificate_der)),
            ..Confirmation::default()
        }
    }

    /// Whether the token is bound to nothing.
    pub fn is_empty(&self) -> bool {
        self.jkt.is_none() && self.x5t_s256.is_none() && self.extra.is_empty()
    }

    /// Checks `presented` against this confirmation: a `jkt` needs a DPoP proof by that
    /// key, an `x5t#S256` a client certificate with that hash. A `cnf` with neither binds
    /// nothing this check understands, and is accepted only when no DPoP proof came with
    /// it ([`check_unbound`]).
    pub fn check(&self, presented: &PresentedProof<'_>, provider: &dyn CryptoProvider) -> Result<(), Error> {
        if self.jkt.is_none() && presented.dpop_jkt.is_some() {
            return Err(Violation::NotDpopBound.into());
        }
        self.check_holder(presented.dpop_jkt, || {
            presented
                .client_certificate
                .map(|der| certificate_thumbprint(provider, der))
        })
    }

    /// Checks that the presenter holds what this confirmation binds: the key of `jkt`
    /// (`dpop_jkt`, the thumbprint of a verified DPoP proof's key) and the certificate of
    /// `x5t#S256` (`certificate_thumbprint`, asked for only when there is one to match).
    /// Unlike [`Confirmation::check`], a DPoP proof beside a confirmation without `jkt` is
    /// not refused: at a token endpoint the proof binds the token to be issued, not the
    /// one presented (RFC 9449 §5).
    pub fn check_holder(
        &self,
        dpop_jkt: Option<&str>,
        certificate_thumbprint: impl FnOnce() -> Option<String>,
    ) -> Result<(), Error> {
        if let Some(jkt) = &self.jkt {
            match dpop_jkt {
                None => {
                    return Err(Violation::ConfirmationMissing {
                        member: "jkt",
                        what: "DPoP proof",
                    }
                    .into());
                }
                Some(found) if found != jkt => {
                    return Err(Violation::ConfirmationMismatch {
                        member: "jkt",
                        what: "DPoP proof key",
                    }
                    .into());
                }
                Some(_) => {}
            }
        }
        if let Some(x5t) = &self.x5t_s256 {
            match certificate_thumbprint() {
                None => {
                    return Err(Violation::ConfirmationMissing {
                        member: "x5t#S256",
                        what: "client certificate",
                    }
                    .into());
                }
                Some(presented) if presented != *x5t => {
                    return Err(Violation::ConfirmationMismatch {
                        member: "x5t#S256",
                        what: "client certificate",
                    }
                    .into());
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// The check for a token without `cnf`: it is a bearer token, so a DPoP proof presented
/// with it means the token is used as something it is not ([`Violation::NotDpopBound`]).
/// A client certificate may accompany any token.
pub fn check_unbound(presented: &PresentedProof<'_>) -> Result<(), Error> {
    if presented.dpop_jkt.is_some() {
        Err(Violation::NotDpopBound.into())
    } else {
        Ok(())
    }
}

/// `x5t#S256`: base64url(SHA-256(certificate DER)) (RFC 8705 §3.1).
pub fn certificate_thumbprint(provider: &dyn CryptoProvider, certificate_der: &[u8]) -> String {
    base64url::encode(&provider.sha256(certificate_der))
}
