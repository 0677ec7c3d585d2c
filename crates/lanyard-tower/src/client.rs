//! The client side: a reqwest middleware that authenticates outgoing requests with the
//! workload's own credentials, either as WIT + WPT (draft-ietf-wimse-wpt-02:
//! `Authorization: WPT`, no `ath`) or as WIT + HTTP Message Signature
//! (draft-ietf-wimse-http-signature-07: `@path` + `@query`), and can insist on a signed
//! response. A [`TxnToken`] request extension sends a Txn-Token bound to the proof.
//!
//! The audience of every proof or signature is the request URL without its query and
//! fragment, exactly as the receiver is expected to reconstruct it from its own
//! configuration.
//!
//! The middleware sees the request as the [`reqwest_middleware::RequestBuilder`] built it:
//! headers the underlying [`reqwest::Client`] adds later (its default headers, `Host`,
//! `User-Agent`) are not covered by a signature. Put a `Txn-Token` (or a header named in
//! [`WorkloadAuthMiddleware::with_bound_headers`]) on the request itself, not in the
//! client's default headers, so that it is bound to the proof. A WPT request cannot carry
//! an `Authorization` header of its own (wpt-02 §2.2): send context in its own header.

use std::fmt;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use lanyard_core::httpsig::{
    HttpSigVerifier, RequestParts, RequestSigning, ResponseParts, SignedHeaders, TargetComponents, sign_request,
};
use lanyard_core::wimse::{
    AUTHORIZATION, DPOP, TXN_TOKEN, WORKLOAD_IDENTITY_TOKEN, WORKLOAD_PROOF_TOKEN, WptCarriage, audience_for,
    proof_headers,
};
use lanyard_core::{Clock, CryptoProvider, SystemClock, WptParams, create_wpt};
use reqwest::ResponseBuilderExt as _;
use reqwest_middleware::Next;

use crate::credentials::{CredentialSource, WorkloadCredentials};
use crate::error::Error;

/// The lifetime of a proof or signature unless [`WorkloadAuthMiddleware::with_lifetime`]
/// says otherwise, in seconds.
const DEFAULT_LIFETIME: u64 = 60;

/// The largest response body read into memory to check a response signature.
const MAX_SIGNED_RESPONSE_BODY: usize = 8 * 1024 * 1024;

/// How outgoing requests are authenticated.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientMode {
    /// WIT + WPT (draft-ietf-wimse-wpt-02); `carriage` picks `Authorization: WPT` (the
    /// default) or, for peers still on wpt-01, the legacy `Workload-Proof-Token` header.
    Wpt {
        /// Where the WPT goes. With [`WptCarriage::Authorization`] the request must not
        /// have an `Authorization` or `DPoP` header of its own (a WPT cannot travel with an
        /// access token); with [`WptCarriage::LegacyHeader`] (wpt-01) an
        /// `Authorization: Bearer` token is bound to the proof with `ath`.
        carriage: WptCarriage,
    },
    /// WIT + HTTP Message Signature (draft-ietf-wimse-http-signature-07).
    HttpSignature {
        /// How the request target is covered: `@path` + `@query` (-07, the default), or
        /// `@request-target` for -06 peers.
        target: TargetComponents,
        /// Ask the server to sign its response (`wimse-sign-response`) and fail the call
        /// unless it did, with a valid signature bound to this request. Needs
        /// [`WorkloadAuthMiddleware::with_response_verifier`].
        require_signed_response: bool,
    },
}

impl Default for ClientMode {
    fn default() -> Self {
        ClientMode::Wpt {
            carriage: WptCarriage::Authorization,
        }
    }
}

impl ClientMode {
    fn name(&self) -> &'static str {
        match self {
            ClientMode::Wpt {
                carriage: WptCarriage::Authorization,
            } => "wpt",
            ClientMode::Wpt {
                carriage: WptCarriage::LegacyHeader,
            } => "wpt-legacy-header",
            ClientMode::HttpSignature { .. } => "http-signature",
        }
    }
}

/// A Txn-Token to send with one request (draft-ietf-oauth-transaction-tokens), as a
/// reqwest-middleware request extension:
/// `client.get(url).with_extension(TxnToken::new(token))`. The middleware sends it in the
/// `Txn-Token` header and binds it to the proof: the WPT's `tth`, or the HTTP message
/// signature covers it. Its `Debug` form hides the value.
#[derive(Clone)]
pub struct TxnToken(String);

impl TxnToken {
    /// A Txn-Token to send.
    pub fn new(token: impl Into<String>) -> TxnToken {
        TxnToken(token.into())
    }
}

impl fmt::Debug for TxnToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxnToken({} bytes)", self.0.len())
    }
}

/// A reqwest middleware that attaches the workload's WIT and proves possession of its
/// key on every request (see [`ClientMode`]).
///
/// ```no_run
/// # use std::sync::Arc;
/// # fn demo(source: Arc<dyn lanyard_tower::CredentialSource>) {
/// use lanyard_core::wimse::WptCarriage;
/// use lanyard_tower::{ClientMode, WorkloadAuthMiddleware};
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(WorkloadAuthMiddleware::new(source, ClientMode::Wpt { carriage: WptCarriage::Authorization }))
///     .build();
/// # let _ = client; }
/// ```
pub struct WorkloadAuthMiddleware {
    source: Arc<dyn CredentialSource>,
    mode: ClientMode,
    bound_headers: Vec<HeaderName>,
    lifetime: u64,
    clock: Arc<dyn Clock>,
    provider: Arc<dyn CryptoProvider>,
    response_verifier: Option<HttpSigVerifier>,
}

impl fmt::Debug for WorkloadAuthMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadAuthMiddleware")
            .field("source", &self.source)
            .field("mode", &self.mode)
            .field("bound_headers", &self.bound_headers)
            .field("lifetime", &self.lifetime)
            .field("clock", &self.clock)
            .field("response_verifier", &self.response_verifier.is_some())
            .finish_non_exhaustive()
    }
}

impl WorkloadAuthMiddleware {
    /// A middleware taking credentials from `source` for every request; proofs and
    /// signatures live 60 seconds.
    pub fn new(source: Arc<dyn CredentialSource>, mode: ClientMode) -> Self {
        WorkloadAuthMiddleware {
            source,
            mode,
            bound_headers: Vec::new(),
            lifetime: DEFAULT_LIFETIME,
            clock: Arc::new(SystemClock),
            provider: crate::default_provider(),
            response_verifier: None,
        }
    }

    /// Signs proofs and requests with `provider` instead of the process default.
    pub fn with_provider(mut self, provider: Arc<dyn CryptoProvider>) -> Self {
        self.provider = provider;
        self
    }

    /// Binds these context headers, when a request carries them, to the WPT with `oth`
    /// (keyed by the lowercase header name; wpt-02 §2). The receiver must list the same
    /// names (`WorkloadAuthConfig::other_token_headers`). Not needed for `Txn-Token`, which
    /// is always bound (`tth`).
    pub fn with_bound_headers(mut self, names: impl IntoIterator<Item = HeaderName>) -> Self {
        self.bound_headers.extend(names);
        self
    }

    /// Sets the lifetime of each proof or signature, in seconds (keep it short: the
    /// receiver rejects anything longer than its policy allows; WPTs live at most
    /// `lanyard_core::wimse::MAX_WPT_LIFETIME`).
    pub fn with_lifetime(mut self, secs: u64) -> Self {
        self.lifetime = secs;
        self
    }

    /// Reads the time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Verifies the server's WIT and response signature: always when the mode requires a
    /// signed response (without a verifier such requests fail before they are sent), and
    /// whenever a server signs a response on its own.
    pub fn with_response_verifier(mut self, verifier: HttpSigVerifier) -> Self {
        self.response_verifier = Some(verifier);
        self
    }

    /// Adds a WIT and a WPT to `req`.
    fn attach_wpt(
        &self,
        req: &mut reqwest::Request,
        creds: &WorkloadCredentials,
        carriage: WptCarriage,
    ) -> Result<(), Error> {
        let audience = audience_for(req.url().as_str()).to_owned();
        let headers = req.headers_mut();
        let access_token = match (carriage, single_value(headers, AUTHORIZATION)?) {
            (_, None) => None,
            (WptCarriage::Authorization, Some(_)) => {
                return Err(Error::Request(
                    "the request already has an Authorization header, but a WPT request cannot carry \
                     another token (draft-ietf-wimse-wpt-02 section 2.2): send context in its own \
                     header, such as Txn-Token"
                        .into(),
                ));
            }
            (WptCarriage::LegacyHeader, Some(value)) => bearer_token(value)?,
        };
        if carriage == WptCarriage::Authorization && headers.contains_key(DPOP) {
            return Err(Error::Request(
                "the request has a DPoP proof, but a DPoP-bound token cannot travel with a WPT".into(),
            ));
        }
        let txn_token = single_value(headers, TXN_TOKEN)?.map(|t| t.trim_matches([' ', '\t']).to_owned());
        let mut other = Vec::new();
        for name in &self.bound_headers {
            if let Some(value) = single_value(headers, name.as_str())? {
                other.push((name.as_str(), value.to_owned()));
            }
        }
        let other: Vec<(&str, &str)> = other.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let wpt = create_wpt(
            creds.key.as_ref(),
            &WptParams {
                wit: &creds.wit,
                audience: &audience,
                lifetime: self.lifetime,
                access_token: access_token.as_deref(),
                txn_token: txn_token.as_deref(),
                other_tokens: &other,
                wpt01: carriage == WptCarriage::LegacyHeader,
            },
            self.clock.now(),
            self.provider.as_ref(),
        )?;
        // A stale proof in the other carriage would make the receiver see two WPTs.
        if carriage == WptCarriage::Authorization {
            headers.remove(WORKLOAD_PROOF_TOKEN);
        }
        for (name, value) in proof_headers(&creds.wit, &wpt, carriage) {
            set_header(headers, name, &value, true)?;
        }
        Ok(())
    }

    /// Signs `req`; returns what checking the response needs: the request as sent and
    /// the signature's nonce.
    fn sign(
        &self,
        req: &mut reqwest::Request,
        creds: &WorkloadCredentials,
        target: TargetComponents,
        require_signed_response: bool,
    ) -> Result<(SentRequest, String), Error> {
        let body: &[u8] = match req.body() {
            None => &[],
            Some(body) => body.as_bytes().ok_or_else(|| {
                Error::Request("a streaming body cannot be signed (its Content-Digest needs the whole body)".into())
            })?,
        };
        let sent = SentRequest::new(req);
        let signed = sign_request(
            creds.key.as_ref(),
            &sent.parts(),
            body,
            &RequestSigning {
                wit: &creds.wit,
                audience: audience_for(req.url().as_str()),
                lifetime: self.lifetime,
                sign_response: require_signed_response,
                target,
            },
            self.clock.now(),
            self.provider.as_ref(),
        )?;
        let SignedHeaders { headers: added, nonce } = signed;
        let headers = req.headers_mut();
        for name in lanyard_core::httpsig::SIGNER_FIELDS {
            headers.remove(name);
        }
        for (name, value) in &added {
            set_header(headers, name, value, *name == WORKLOAD_IDENTITY_TOKEN)?;
        }
        Ok((SentRequest::new(req), nonce))
    }

    /// Reads the response, checks its signature and hands back an equivalent response.
    async fn verify_response(
        &self,
        verifier: &HttpSigVerifier,
        sent: &SentRequest,
        nonce: &str,
        mut response: reqwest::Response,
    ) -> Result<reqwest::Response, reqwest_middleware::Error> {
        let status = response.status();
        if response
            .content_length()
            .is_some_and(|len| len > MAX_SIGNED_RESPONSE_BODY as u64)
        {
            return Err(middleware_error(Error::Body(format!(
                "a signed response must fit in {MAX_SIGNED_RESPONSE_BODY} bytes to be checked"
            ))));
        }
        let url = response.url().clone();
        let version = response.version();
        let extensions = std::mem::take(response.extensions_mut());
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len().saturating_add(chunk.len()) > MAX_SIGNED_RESPONSE_BODY {
                return Err(middleware_error(Error::Body(format!(
                    "a signed response must fit in {MAX_SIGNED_RESPONSE_BODY} bytes to be checked"
                ))));
            }
            body.extend_from_slice(&chunk);
        }
        let parts = ResponseParts {
            status: status.as_u16(),
            headers: headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect(),
        };
        let responder = match verifier.verify_response(&parts, &body, &sent.parts(), nonce, self.clock.now()) {
            Ok(verified) => {
                tracing::debug!(server = %verified.wit.sub, %status, "response signature verified");
                VerifiedResponder {
                    id: verified.wit.sub.clone(),
                }
            }
            Err(e) => {
                tracing::debug!(%status, error = e.kind(), "response signature rejected");
                return Err(middleware_error(Error::Response(e)));
            }
        };
        let mut rebuilt = http::Response::builder()
            .status(status)
            .version(version)
            .url(url)
            .body(body)
            .map_err(|e| middleware_error(Error::Body(e.to_string())))?;
        *rebuilt.headers_mut() = headers;
        rebuilt.extensions_mut().extend(extensions);
        rebuilt.extensions_mut().insert(responder);
        Ok(reqwest::Response::from(rebuilt))
    }
}

/// Who signed a response, when the client required signed responses: read it with
/// `response.extensions().get::<VerifiedResponder>()` to check the server's identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedResponder {
    /// The identity in the server's verified WIT.
    pub id: lanyard_core::WorkloadId,
}

/// An owned copy of what a response signature covers of the request it answers.
struct SentRequest {
    method: String,
    target: String,
    authority: Option<String>,
    scheme: String,
    headers: Vec<(String, Vec<u8>)>,
}

impl SentRequest {
    fn new(req: &reqwest::Request) -> SentRequest {
        let url = req.url();
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let authority = url.host_str().map(|host| match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        });
        SentRequest {
            method: req.method().as_str().to_owned(),
            target,
            authority,
            scheme: url.scheme().to_owned(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            target: &self.target,
            authority: self.authority.as_deref(),
            scheme: Some(&self.scheme),
            headers: self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect(),
        }
    }
}

/// The one value of header `name`, if present; more than one is an error (receivers
/// reject it too).
fn single_value<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Error> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(Error::Request(format!("the {name} header appears more than once"))),
        (Some(value), None) => value
            .to_str()
            .map(|v| Some(v.trim_matches(' ')))
            .map_err(|_| Error::Request(format!("the {name} header is not visible ASCII"))),
    }
}

/// The token of an `Authorization: Bearer` value (`None` if empty), parsed the way
/// receivers parse it.
fn bearer_token(value: &str) -> Result<Option<String>, Error> {
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err(Error::Request(
            "with the Workload-Proof-Token carriage, Authorization may only carry a Bearer token".into(),
        ));
    }
    let token = token.trim_start_matches(' ');
    Ok((!token.is_empty()).then(|| token.to_owned()))
}

/// Sets `name` to `value`, replacing any existing values.
fn set_header(headers: &mut HeaderMap, name: &str, value: &str, sensitive: bool) -> Result<(), Error> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::Request(format!("{name} is not a valid header name")))?;
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| Error::Request(format!("the {name} value cannot be sent in a header")))?;
    value.set_sensitive(sensitive);
    headers.insert(name, value);
    Ok(())
}

pub(crate) fn middleware_error(e: Error) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(e)
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for WorkloadAuthMiddleware {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let creds = self.source.credentials().map_err(middleware_error)?;
        tracing::debug!(workload = %creds.id, mode = self.mode.name(), "authenticating outgoing request");
        if let Some(TxnToken(token)) = extensions.get::<TxnToken>() {
            set_header(req.headers_mut(), TXN_TOKEN, token, true).map_err(middleware_error)?;
        }
        match self.mode {
            ClientMode::Wpt { carriage } => {
                self.attach_wpt(&mut req, &creds, carriage).map_err(middleware_error)?;
                next.run(req, extensions).await
            }
            ClientMode::HttpSignature {
                target,
                require_signed_response: false,
            } => {
                let (sent, nonce) = self.sign(&mut req, &creds, target, false).map_err(middleware_error)?;
                drop(creds);
                let response = next.run(req, extensions).await?;
                // A server may sign voluntarily; a signature that arrives is checked (-07 §3.4).
                match &self.response_verifier {
                    Some(verifier) if response.headers().contains_key("signature-input") => {
                        self.verify_response(verifier, &sent, &nonce, response).await
                    }
                    _ => Ok(response),
                }
            }
            ClientMode::HttpSignature {
                target,
                require_signed_response: true,
            } => {
                let verifier = self.response_verifier.as_ref().ok_or_else(|| {
                    middleware_error(Error::Request(
                        "a signed response is required but no response verifier is configured \
                         (WorkloadAuthMiddleware::with_response_verifier)"
                            .into(),
                    ))
                })?;
                let (sent, nonce) = self.sign(&mut req, &creds, target, true).map_err(middleware_error)?;
                drop(creds);
                let response = next.run(req, extensions).await?;
                self.verify_response(verifier, &sent, &nonce, response).await
            }
        }
    }
}
