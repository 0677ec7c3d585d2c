//! Lanyard's protocol library: workload identifiers, JOSE, WIMSE WITs and WPTs, SPIFFE
//! JWT-SVIDs and trust bundles, and strict CBOR, COSE, CWT and SPICE SD-CWTs — parsed
//! strictly, issued, and verified.
//!
//! It does no I/O and links no crypto library: keys, signatures, hashes and randomness
//! come from a [`CryptoProvider`] (use `lanyard_crypto::provider()`), and every check takes
//! the current time as a parameter.
//!
//! ```
//! # fn main() -> Result<(), lanyard_core::Error> {
//! use std::sync::Arc;
//! use lanyard_core::{Algorithm, InMemoryReplayCache, KeyUse, ProofTokens, TrustStore, UnixTime,
//!     WitIssuer, WitPolicy, WitVerifier, WorkloadId, WptParams, WptPolicy, WptVerifier, create_wpt};
//!
//! let provider = lanyard_crypto::provider();
//! let now = UnixTime(1_800_000_000);
//!
//! // The identity server's key, trusted by the receiving service for `example.org`.
//! let issuer_key = provider.generate_key(Algorithm::ES256)?;
//! let store = Arc::new(TrustStore::new(provider.clone()));
//! store.add_key("example.org", KeyUse::WitSvid, &issuer_key.public_jwk())?;
//!
//! // A workload key, and a WIT binding it to the workload's identity.
//! let workload_key = provider.generate_key(Algorithm::ES256)?;
//! let issuer = WitIssuer::new(provider.clone(), issuer_key, None, None, 3600);
//! let sub = WorkloadId::parse("spiffe://example.org/billing").map_err(|source|
//!     lanyard_core::Error::InvalidIdentifier { context: "example", source })?;
//! let wit = issuer.issue(&sub, &workload_key.public_jwk(), now)?;
//!
//! // The caller proves possession of the key for one request.
//! let aud = "https://ledger.example.org/entries";
//! let wpt = create_wpt(workload_key.as_ref(),
//!     &WptParams { wit: &wit, audience: aud, lifetime: 60, ..Default::default() }, now, provider.as_ref())?;
//!
//! // The receiver checks both and learns who called.
//! let verifier = WptVerifier::new(WitVerifier::new(store, WitPolicy::wimse()),
//!     WptPolicy::default(), Arc::new(InMemoryReplayCache::default()));
//! let proof = verifier.verify(&ProofTokens { wit: &wit, wpt: &wpt, ..Default::default() }, aud, now)?;
//! assert_eq!(proof.wit.sub.as_str(), "spiffe://example.org/billing");
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod alg;
pub mod cbor;
pub mod cose;
mod crypto;
pub mod cwt;
mod error;
pub mod hex;
pub mod httpsig;
pub mod id;
pub mod jose;
pub mod oauth;
mod replay;
pub mod spice;
pub mod spiffe;
mod time;
mod trust;
pub mod wimse;

// Public API
pub use alg::{AlgSet, Algorithm};
pub use crypto::{
    AeadAlgorithm, CryptoProvider, Digest, DigestAlgorithm, Hasher, MacAlgorithm, SigningKey, VerifyingKey,
};
pub use error::Error;
pub use id::{IdError, IdErrorKind, SpiffeId, TrustDomain, WimseId, WorkloadId};
pub use jose::{Jwk, JwkSet};
pub use jose::{TokenType, TypRule};
pub use replay::{InMemoryReplayCache, ReplayCache};
pub use spiffe::{JwtSvidIssuer, JwtSvidPolicy, JwtSvidVerifier, SpiffeBundle, VerifiedJwtSvid};
pub use time::{Clock, FixedClock, SystemClock, UnixTime};
pub use trust::{KeyUse, TrustAnchor, TrustStore};
pub use wimse::{
    ProofTokens, VerifiedProof, VerifiedWit, WitClaims, WitIssuer, WitPolicy, WitVerifier, WptParams, WptPolicy,
    WptVerifier, create_wpt, issue_wit,
};
