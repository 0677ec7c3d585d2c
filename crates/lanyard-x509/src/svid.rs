//! The X.509-SVID as a value: the certificate chain (leaf first, no root) and, when the
//! holder is the workload itself, its private key — the shape of the Workload API's
//! `X509SVID` message (PROTO `X509SVID`: chain = DER certs leaf first, key = PKCS#8).

use std::fmt;

use lanyard_core::{SpiffeId, UnixTime};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use crate::cert;
use crate::error::Error;

/// An X.509-SVID: the leaf certificate, the intermediates that lead to a bundle authority,
/// and optionally the leaf's private key.
pub struct X509Svid {
    /// DER certificates, leaf first, then intermediates. The root is not included: the
    /// relying party takes it from the trust domain's bundle.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (PKCS#8), when known. `None` for SVIDs issued from a CSR or
    /// for a bare public key. Secret.
    pub key: Option<PrivatePkcs8KeyDer<'static>>,
}

impl X509Svid {
    /// Loads an SVID from a PEM certificate chain (leaf first) and an optional
    /// `PRIVATE KEY` PEM. The leaf must carry a workload SPIFFE ID, and the key must be
    /// the leaf's.
    pub fn from_pem(chain_pem: &str, key_pem: Option<&str>) -> Result<X509Svid, Error> {
        let chain = cert::pem_blocks(chain_pem, "CERTIFICATE", "certificate chain")?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let key = match key_pem {
            None => None,
            Some(text) => {
                let mut blocks = cert::pem_blocks(text, "PRIVATE KEY", "key file")?;
                if blocks.len() != 1 {
                    return Err(Error::malformed(
                        "PEM",
                        "the key file must hold exactly one PRIVATE KEY",
                    ));
                }
                blocks.pop().map(PrivatePkcs8KeyDer::from)
            }
        };
        let svid = X509Svid { chain, key };
        svid.check()?;
        Ok(svid)
    }

    /// Checks the SVID's own consistency: a non-empty chain whose leaf carries exactly
    /// one workload SPIFFE ID, and (if present) a private key matching the leaf.
    pub fn check(&self) -> Result<(), Error> {
        let leaf = cert::parse(self.leaf()?)?;
        cert::leaf_spiffe_id(&leaf)?;
        for der in &self.chain[1..] {
            cert::parse(der)?;
        }
        if let Some(key) = &self.key {
            let pair = rcgen::KeyPair::try_from(key)
                .map_err(|e| Error::InvalidKey(format!("the SVID key is not a usable PKCS#8 key: {e}")))?;
            let spki = rcgen::PublicKeyData::subject_public_key_info(&pair);
            if spki != leaf.public_key().raw {
                return Err(Error::InvalidKey(
                    "the private key does not belong to the leaf certificate".into(),
                ));
            }
        }
        Ok(())
    }

    /// The leaf certificate (DER).
    pub fn leaf(&self) -> Result<&CertificateDer<'static>, Error> {
        self.chain.first().ok_or(Error::EmptyChain)
    }

    /// The SPIFFE ID in the leaf's URI SAN.
    pub fn spiffe_id(&self) -> Result<SpiffeId, Error> {
        cert::leaf_spiffe_id(&cert::parse(self.leaf()?)?)
    }

    /// The leaf's notAfter.
    pub fn not_after(&self) -> Result<UnixTime, Error> {
        Ok(cert::validity(&cert::parse(self.leaf()?)?).1)
    }

    /// The leaf's notBefore.
    pub fn not_before(&self) -> Result<UnixTime, Error> {
        Ok(cert::validity(&cert::parse(self.leaf()?)?).0)
    }

    /// The chain as concatenated `CERTIFICATE` PEM blocks, leaf first.
    pub fn chain_pem(&self) -> String {
        cert::certs_to_pem(&self.chain)
    }

    /// The private key as a `PRIVATE KEY` (PKCS#8) PEM block, if the SVID has one. Secret.
    pub fn key_pem(&self) -> Option<String> {
        self.key
            .as_ref()
            .map(|k| cert::to_pem("PRIVATE KEY", k.secret_pkcs8_der()))
    }
}

impl Clone for X509Svid {
    fn clone(&self) -> Self {
        X509Svid {
            chain: self.chain.clone(),
            key: self.key.as_ref().map(|k| k.clone_key()),
        }
    }
}

impl fmt::Debug for X509Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("X509Svid")
            .field("spiffe_id", &self.spiffe_id().ok())
            .field("chain_len", &self.chain.len())
            .field("key", &self.key.as_ref().map(|_| "[secret]"))
            .finish()
    }
}
