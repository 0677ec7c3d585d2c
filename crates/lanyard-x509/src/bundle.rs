//! X.509 authorities per trust domain: the `x509-svid` entries of SPIFFE bundles
//! (SPIFFE_Trust_Domain_and_Bundle.md §4.2 and X509-SVID.md §6; digest
//! `shared/specs/spiffe.md` §4.1), kept apart by trust domain so that a chain is only ever
//! checked against the authorities of its leaf's trust domain (X509-SVID.md §5, WAPI §4.6).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lanyard_core::{Jwk, SpiffeBundle, TrustDomain};
use rustls::pki_types::{CertificateDer, TrustAnchor};

use crate::cert;
use crate::error::Error;

/// The X.509 authorities (root certificates) of one trust domain.
#[derive(Clone, Debug)]
pub struct X509Bundle {
    trust_domain: TrustDomain,
    authorities: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
}

impl X509Bundle {
    /// An empty bundle for `trust_domain` (it trusts nothing: every SVID of the trust
    /// domain fails with [`Error::NoAuthorities`]).
    pub fn new(trust_domain: TrustDomain) -> X509Bundle {
        X509Bundle {
            trust_domain,
            authorities: Vec::new(),
            anchors: Vec::new(),
        }
    }

    /// Adds an authority certificate (DER). Duplicates are ignored.
    pub fn add_authority(&mut self, der: CertificateDer<'static>) -> Result<(), Error> {
        cert::parse(&der)?;
        if self.authorities.contains(&der) {
            return Ok(());
        }
        let anchor = webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| Error::InvalidBundle(format!("unusable authority certificate: {e}")))?
            .to_owned();
        self.anchors.push(anchor);
        self.authorities.push(der);
        Ok(())
    }

    /// A bundle holding these authority certificates (DER).
    pub fn from_der_certs(
        trust_domain: TrustDomain,
        certs: impl IntoIterator<Item = CertificateDer<'static>>,
    ) -> Result<X509Bundle, Error> {
        let mut bundle = X509Bundle::new(trust_domain);
        for der in certs {
            bundle.add_authority(der)?;
        }
        Ok(bundle)
    }

    /// A bundle from concatenated `CERTIFICATE` PEM blocks.
    pub fn from_pem(trust_domain: TrustDomain, pem: &str) -> Result<X509Bundle, Error> {
        let certs = cert::pem_blocks(pem, "CERTIFICATE", "bundle")?;
        X509Bundle::from_der_certs(trust_domain, certs.into_iter().map(CertificateDer::from))
    }

    /// The X.509 part of a parsed SPIFFE bundle: each `x509-svid` entry's `x5c[0]`
    /// (standard base64 DER, §4.2), whose public key must equal the entry's JWK key.
    pub fn from_spiffe_bundle(bundle: &SpiffeBundle) -> Result<X509Bundle, Error> {
        let mut out = X509Bundle::new(bundle.trust_domain.clone());
        for (i, jwk) in bundle.x509_authorities.iter().enumerate() {
            let bad = |why: String| Error::InvalidBundle(format!("x509-svid entry {i}: {why}"));
            let first = jwk
                .x5c
                .as_ref()
                .and_then(|c| c.first())
                .ok_or_else(|| bad("no x5c certificate".into()))?;
            let der = STANDARD
                .decode(first)
                .map_err(|e| bad(format!("x5c[0] is not standard base64: {e}")))?;
            let cert_jwk = {
                let parsed = cert::parse(&der).map_err(|e| bad(e.to_string()))?;
                cert::jwk_from_spki(parsed.public_key().raw).map_err(|e| bad(e.to_string()))?
            };
            let same = |a: &Option<String>, b: &Option<String>| a == b;
            if jwk.kty != cert_jwk.kty
                || !same(&jwk.crv, &cert_jwk.crv)
                || !same(&jwk.x, &cert_jwk.x)
                || !same(&jwk.y, &cert_jwk.y)
                || !same(&jwk.n, &cert_jwk.n)
                || !same(&jwk.e, &cert_jwk.e)
            {
                return Err(bad("the JWK key differs from the x5c certificate's key".into()));
            }
            out.add_authority(CertificateDer::from(der))?;
        }
        Ok(out)
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The authority certificates (DER).
    pub fn authorities(&self) -> &[CertificateDer<'static>] {
        &self.authorities
    }

    /// The authorities as concatenated `CERTIFICATE` PEM blocks.
    pub fn to_pem(&self) -> String {
        cert::certs_to_pem(&self.authorities)
    }

    pub(crate) fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }
}

/// X.509 bundles keyed by trust domain: the relying party's trust configuration. A chain
/// is checked against the bundle of its leaf's trust domain only, never a pooled set.
#[derive(Clone, Debug, Default)]
pub struct X509BundleSet {
    bundles: HashMap<TrustDomain, X509Bundle>,
}

impl X509BundleSet {
    /// An empty set (trusts nothing).
    pub fn new() -> X509BundleSet {
        X509BundleSet::default()
    }

    /// Adds or replaces the bundle of `bundle.trust_domain()`, returning the old one.
    pub fn insert(&mut self, bundle: X509Bundle) -> Option<X509Bundle> {
        self.bundles.insert(bundle.trust_domain.clone(), bundle)
    }

    /// The same set with `bundle` added (builder style).
    pub fn with(mut self, bundle: X509Bundle) -> X509BundleSet {
        self.insert(bundle);
        self
    }

    /// Removes a trust domain's bundle.
    pub fn remove(&mut self, trust_domain: &TrustDomain) -> Option<X509Bundle> {
        self.bundles.remove(trust_domain)
    }

    /// The bundle for `trust_domain`.
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<&X509Bundle> {
        self.bundles.get(trust_domain)
    }

    /// Every bundle, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &X509Bundle> {
        self.bundles.values()
    }

    /// The number of trust domains.
    pub fn len(&self) -> usize {
        self.bundles.len()
    }

    /// True when no trust domain is configured.
    pub fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }

    /// A set built from the X.509 parts of SPIFFE bundles (one per trust domain; a later
    /// bundle for the same trust domain replaces an earlier one).
    pub fn from_spiffe_bundles<'a>(
        bundles: impl IntoIterator<Item = &'a SpiffeBundle>,
    ) -> Result<X509BundleSet, Error> {
        let mut set = X509BundleSet::new();
        for b in bundles {
            set.insert(X509Bundle::from_spiffe_bundle(b)?);
        }
        Ok(set)
    }
}

/// The `x509-svid` bundle entry for a CA certificate: its public key as a JWK with
/// `"use": "x509-svid"` and `x5c` = [the certificate in standard base64], no `kid`
/// (§4.2). Put it in [`SpiffeBundle::x509_authorities`].
pub fn x509_authority_jwk(cert_der: &[u8]) -> Result<Jwk, Error> {
    let parsed = cert::parse(cert_der)?;
    let mut jwk = cert::jwk_from_spki(parsed.public_key().raw)?;
    jwk.key_use = Some("x509-svid".into());
    jwk.x5c = Some(vec![STANDARD.encode(cert_der)]);
    Ok(jwk)
}

/// The public JWK of a SubjectPublicKeyInfo (DER, e.g. the contents of a `PUBLIC KEY`
/// PEM block): `kty`, `crv`, `x`/`y` or `n`/`e`, and no `alg`, `kid` or `use`. Only key
/// types webpki verifies are accepted (RSA of at least 2048 bits, P-256/P-384/P-521,
/// Ed25519).
pub fn public_key_jwk(spki_der: &[u8]) -> Result<Jwk, Error> {
    cert::jwk_from_spki(spki_der)
}
