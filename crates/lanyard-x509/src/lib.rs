//! X.509-SVIDs for Lanyard (spiffe/spiffe `standards/X509-SVID.md`; WIMSE Workload Identity
//! Certificates, draft-ietf-wimse-mutual-tls-02): a SPIFFE certificate authority, SVID
//! issuance (for a generated key, a given key, or a PKCS#10 CSR), chain verification against
//! the bundle of the leaf's trust domain, and rustls mTLS configurations whose SVID and
//! bundles can be rotated at runtime.
//!
//! - [`ca`]: [`X509Authority`] — self-signed roots, intermediates, [`X509Authority::issue_svid`]
//!   and [`X509Authority::issue_svid_from_csr`], producing an [`X509Svid`].
//! - [`bundle`]: [`X509Bundle`] / [`X509BundleSet`] — X.509 authorities per trust domain,
//!   from PEM or from a [`lanyard_core::SpiffeBundle`]'s `x509-svid` entries.
//! - [`verify`]: [`verify_svid_chain`] — the X509-SVID.md §5 checks plus RFC 5280 path
//!   validation by rustls-webpki, giving a [`VerifiedSvid`].
//! - [`tls`]: [`server_config`] / [`client_config`] over an [`SvidSource`], with an
//!   [`Authorizer`] on the peer's SPIFFE ID, and [`peer_spiffe_id`] for handlers.
//!
//! What it does not do: revocation (no CRL or OCSP: SVIDs are short-lived), URI name
//! constraints (rustls-webpki rejects them), fetching bundles or SVIDs (the Workload API
//! and federation clients feed [`SvidSource`]), or keeping the CA key anywhere but in
//! memory. All crypto is aws-lc-rs (through rcgen, rustls-webpki and rustls); `ring` is not
//! linked.
//!
//! ```
//! # fn main() -> Result<(), lanyard_x509::Error> {
//! use lanyard_core::{SpiffeId, TrustDomain, UnixTime};
//! use lanyard_x509::{SubjectKey, Usage, VerifyOptions, X509Authority, X509Bundle, X509BundleSet,
//!     verify_svid_chain};
//!
//! let now = UnixTime(1_800_000_000);
//! let td = TrustDomain::parse("example.org").expect("valid trust domain");
//! let id = SpiffeId::parse("spiffe://example.org/billing").expect("valid SPIFFE ID");
//!
//! // A root CA valid for a day, and a one-hour SVID for a fresh P-256 key.
//! let ca = X509Authority::new_root(lanyard_crypto::provider(), &td, None, 86_400, now)?;
//! let svid = ca.issue_svid(&id, SubjectKey::Generate, 3600, &[], now)?;
//! assert!(svid.key_pem().is_some());
//!
//! // A relying party trusts the CA for example.org and verifies the chain.
//! let bundles = X509BundleSet::new().with(X509Bundle::from_pem(td, &ca.cert_pem())?);
//! let verified = verify_svid_chain(&svid.chain, &bundles, now.plus(60),
//!     &VerifyOptions::for_usage(Usage::ClientAuth))?;
//! assert_eq!(verified.spiffe_id, id);
//! assert_eq!(verified.not_after, now.plus(3600));
//!
//! // An hour and a second later, it has expired.
//! let late = verify_svid_chain(&svid.chain, &bundles, now.plus(3601), &VerifyOptions::default());
//! assert_eq!(late.unwrap_err().kind(), "expired");
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod bundle;
pub mod ca;
mod cert;
mod error;
pub mod svid;
pub mod tls;
pub mod verify;

pub use bundle::{X509Bundle, X509BundleSet, public_key_jwk, x509_authority_jwk};
pub use ca::{SubjectKey, X509Authority};
pub use error::Error;
pub use svid::X509Svid;
pub use tls::{
    Authorizer, SpiffeClientCertVerifier, SpiffeServerCertVerifier, SvidResolver, SvidSource, anonymous_client_config,
    client_config, client_config_with_verifier, peer_spiffe_id, server_config,
};
pub use verify::{Usage, VerifiedCert, VerifiedSvid, VerifyOptions, verify_cert_chain, verify_svid_chain};
