//! X.509-SVID validation by a relying party (spiffe/spiffe `standards/X509-SVID.md` §5;
//! digest `shared/specs/spiffe.md` §2 "Validation algorithm"), which is also the Workload
//! Identity Certificate validation of draft-ietf-wimse-mutual-tls-02 (`shared/specs/wimse.md`
//! §6).
//!
//! The steps, in order ([`verify_svid_chain`]):
//! 1. parse the leaf (strict DER, no trailing bytes);
//! 2. exactly one URI SAN ([`Error::NoUriSan`], [`Error::MultipleUriSans`]), a valid SPIFFE
//!    ID under lanyard-core's strict rules ([`Error::NotSpiffeId`]) with a path
//!    ([`Error::LeafWithoutPath`]);
//! 3. the leaf is not a CA ([`Error::LeafIsCa`]) and its key usage has neither
//!    `keyCertSign` nor `cRLSign` ([`Error::ForbiddenKeyUsage`]). Like go-spiffe's verifier,
//!    a missing key usage or a missing `digitalSignature` is not rejected here;
//! 4. select the bundle of **the leaf's trust domain only** ([`Error::UnknownTrustDomain`],
//!    [`Error::NoAuthorities`]): the trust domain whose anchors validate the chain is by
//!    construction the trust domain of the identifier (mutual-tls open issue #335);
//! 5. RFC 5280 path validation with rustls-webpki against those authorities, the rest of
//!    the chain as intermediates, at `now` ([`Error::Expired`], [`Error::NotYetValid`],
//!    [`Error::WrongUsage`], [`Error::BadChain`]);
//! 6. only if the caller names one, the DNS name or IP address ([`Error::NameMismatch`]).
//!
//! Authorization on the SPIFFE ID is the caller's next step (see [`crate::Authorizer`]).

use lanyard_core::{SpiffeId, TrustDomain, UnixTime};
use rustls::pki_types::{self, CertificateDer, ServerName};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, KeyUsage};

use crate::bundle::X509BundleSet;
use crate::cert;
use crate::error::Error;

/// What the leaf is being verified for: the extended key usage it must allow (when it has
/// the extension at all, RFC 5280 §4.2.1.12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Usage {
    /// A TLS client (`id-kp-clientAuth`): what a server checks.
    #[default]
    ClientAuth,
    /// A TLS server (`id-kp-serverAuth`): what a client checks.
    ServerAuth,
    /// Any use (go-spiffe's `ExtKeyUsageAny`), for SVIDs checked outside TLS.
    Any,
}

impl Usage {
    fn name(self) -> &'static str {
        match self {
            Usage::ClientAuth => "clientAuth",
            Usage::ServerAuth => "serverAuth",
            Usage::Any => "any",
        }
    }
}

/// Options for [`verify_svid_chain`].
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The extended key usage to require.
    pub usage: Usage,
    /// A DNS name (or IP address) the leaf must be valid for. `None` (the default) checks
    /// no name: X.509-SVIDs usually carry none, and identity is the SPIFFE ID.
    pub expected_name: Option<String>,
}

impl VerifyOptions {
    /// Options requiring `usage` and no name.
    pub fn for_usage(usage: Usage) -> VerifyOptions {
        VerifyOptions {
            usage,
            expected_name: None,
        }
    }
}

/// What a verified X.509-SVID says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSvid {
    /// The SPIFFE ID (the leaf's URI SAN).
    pub spiffe_id: SpiffeId,
    /// Its trust domain, whose bundle validated the chain.
    pub trust_domain: TrustDomain,
    /// The leaf's notBefore.
    pub not_before: UnixTime,
    /// The leaf's notAfter.
    pub not_after: UnixTime,
    /// The leaf's serial number in lowercase hex.
    pub serial: String,
    /// The leaf's DNS SANs (not identity; informational).
    pub dns_names: Vec<String>,
}

/// Accepts any (well-formed) extended key usage.
struct AnyUsage;

impl ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for id in iter {
            id?;
        }
        Ok(())
    }
}

/// Verifies an X.509-SVID chain (DER, leaf first, then intermediates) against the bundle
/// of the leaf's trust domain in `bundles`, at `now`. See the module documentation for
/// the steps and their errors.
pub fn verify_svid_chain<C: AsRef<[u8]>>(
    chain: &[C],
    bundles: &X509BundleSet,
    now: UnixTime,
    options: &VerifyOptions,
) -> Result<VerifiedSvid, Error> {
    let (leaf, rest) = chain.split_first().ok_or(Error::EmptyChain)?;
    let intermediates: Vec<CertificateDer<'_>> = rest.iter().map(|c| CertificateDer::from(c.as_ref())).collect();
    verify_parts(leaf.as_ref(), &intermediates, bundles, now, options)
}

/// [`verify_svid_chain`] with the leaf and intermediates apart, as TLS hands them over.
pub(crate) fn verify_parts(
    leaf_der: &[u8],
    intermediates: &[CertificateDer<'_>],
    bundles: &X509BundleSet,
    now: UnixTime,
    options: &VerifyOptions,
) -> Result<VerifiedSvid, Error> {
    let leaf = cert::parse(leaf_der)?;
    let spiffe_id = cert::leaf_spiffe_id(&leaf)?;
    let bc = leaf
        .basic_constraints()
        .map_err(|e| Error::malformed("certificate", format!("basicConstraints: {e}")))?;
    if bc.is_some_and(|b| b.value.ca) {
        return Err(Error::LeafIsCa);
    }
    if let Some(ku) = leaf
        .key_usage()
        .map_err(|e| Error::malformed("certificate", format!("keyUsage: {e}")))?
    {
        if ku.value.key_cert_sign() {
            return Err(Error::ForbiddenKeyUsage { usage: "keyCertSign" });
        }
        if ku.value.crl_sign() {
            return Err(Error::ForbiddenKeyUsage { usage: "cRLSign" });
        }
    }

    let trust_domain = spiffe_id.trust_domain();
    let bundle = bundles.get(&trust_domain).ok_or_else(|| Error::UnknownTrustDomain {
        trust_domain: trust_domain.name().to_owned(),
    })?;
    if bundle.anchors().is_empty() {
        return Err(Error::NoAuthorities {
            trust_domain: trust_domain.name().to_owned(),
        });
    }

    let (not_before, not_after) = cert::validity(&leaf);
    if now < not_before {
        return Err(Error::NotYetValid { not_before, now });
    }
    if now > not_after {
        return Err(Error::Expired { not_after, now });
    }

    let leaf_der = CertificateDer::from(leaf_der);
    let ee = EndEntityCert::try_from(&leaf_der).map_err(|e| Error::BadChain {
        trust_domain: trust_domain.name().to_owned(),
        reason: e,
    })?;
    let time = pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.as_secs()));
    let algs = webpki::ALL_VERIFICATION_ALGS;
    let anchors = bundle.anchors();
    let result = match options.usage {
        Usage::ClientAuth => ee
            .verify_for_usage(algs, anchors, intermediates, time, KeyUsage::client_auth(), None, None)
            .map(drop),
        Usage::ServerAuth => ee
            .verify_for_usage(algs, anchors, intermediates, time, KeyUsage::server_auth(), None, None)
            .map(drop),
        Usage::Any => ee
            .verify_for_usage(algs, anchors, intermediates, time, AnyUsage, None, None)
            .map(drop),
    };
    result.map_err(|e| path_error(e, &trust_domain, now, options.usage))?;

    if let Some(name) = &options.expected_name {
        let mismatch = || Error::NameMismatch { expected: name.clone() };
        let server_name = ServerName::try_from(name.as_str()).map_err(|_| mismatch())?;
        ee.verify_is_valid_for_subject_name(&server_name)
            .map_err(|_| mismatch())?;
    }

    Ok(VerifiedSvid {
        spiffe_id,
        trust_domain,
        not_before,
        not_after,
        serial: lanyard_core::hex::encode(leaf.raw_serial()),
        dns_names: cert::dns_sans(&leaf)?.into_iter().map(str::to_owned).collect(),
    })
}

/// The validity-period errors of webpki as the crate's errors, or the error unchanged.
fn validity_error(e: webpki::Error, now: UnixTime) -> Result<Error, webpki::Error> {
    match e {
        webpki::Error::CertExpired { not_after, .. } => Ok(Error::Expired {
            not_after: UnixTime(not_after.as_secs()),
            now,
        }),
        webpki::Error::CertNotValidYet { not_before, .. } => Ok(Error::NotYetValid {
            not_before: UnixTime(not_before.as_secs()),
            now,
        }),
        other => Err(other),
    }
}

/// Maps a webpki path-validation error to the crate's error.
fn path_error(e: webpki::Error, td: &TrustDomain, now: UnixTime, usage: Usage) -> Error {
    validity_error(e, now).unwrap_or_else(|e| match e {
        #[allow(deprecated)]
        webpki::Error::RequiredEkuNotFound | webpki::Error::RequiredEkuNotFoundContext(_) => {
            Error::WrongUsage { usage: usage.name() }
        }
        reason => Error::BadChain {
            trust_domain: td.name().to_owned(),
            reason,
        },
    })
}

/// What [`verify_cert_chain`] found in a chain's leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCert {
    /// The leaf's notBefore.
    pub not_before: UnixTime,
    /// The leaf's notAfter.
    pub not_after: UnixTime,
    /// The leaf's serial number in lowercase hex.
    pub serial: String,
    /// The leaf's SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
}

/// Verifies a certificate chain that need not be an X.509-SVID (e.g. a node certificate
/// for x509pop node attestation): DER, leaf first, then intermediates, RFC 5280 path
/// validation by rustls-webpki to one of `roots` at `now`, any extended key usage. The
/// leaf must not be a CA and, when `require_digital_signature`, must carry a key usage
/// extension that allows `digitalSignature`.
pub fn verify_cert_chain<C: AsRef<[u8]>>(
    chain: &[C],
    roots: &[CertificateDer<'_>],
    now: UnixTime,
    require_digital_signature: bool,
) -> Result<VerifiedCert, Error> {
    let (leaf_der, rest) = chain.split_first().ok_or(Error::EmptyChain)?;
    let leaf = cert::parse(leaf_der.as_ref())?;
    let bc = leaf
        .basic_constraints()
        .map_err(|e| Error::malformed("certificate", format!("basicConstraints: {e}")))?;
    if bc.is_some_and(|b| b.value.ca) {
        return Err(Error::LeafIsCa);
    }
    let ku = leaf
        .key_usage()
        .map_err(|e| Error::malformed("certificate", format!("keyUsage: {e}")))?;
    if require_digital_signature && !ku.is_some_and(|k| k.value.digital_signature()) {
        return Err(Error::MissingKeyUsage {
            usage: "digitalSignature",
        });
    }
    let (not_before, not_after) = cert::validity(&leaf);
    if now < not_before {
        return Err(Error::NotYetValid { not_before, now });
    }
    if now > not_after {
        return Err(Error::Expired { not_after, now });
    }
    let anchors = roots
        .iter()
        .map(|r| {
            webpki::anchor_from_trusted_cert(r)
                .map_err(|e| Error::InvalidBundle(format!("unusable root certificate: {e}")))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let intermediates: Vec<CertificateDer<'_>> = rest.iter().map(|c| CertificateDer::from(c.as_ref())).collect();
    let leaf_cert = CertificateDer::from(leaf_der.as_ref());
    let ee = EndEntityCert::try_from(&leaf_cert).map_err(|e| Error::UntrustedChain { reason: e })?;
    let time = pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.as_secs()));
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        time,
        AnyUsage,
        None,
        None,
    )
    .map_err(|e| validity_error(e, now).unwrap_or_else(|reason| Error::UntrustedChain { reason }))?;
    Ok(VerifiedCert {
        not_before,
        not_after,
        serial: lanyard_core::hex::encode(leaf.raw_serial()),
        spki_der: leaf.public_key().raw.to_vec(),
    })
}
