//! base64url without padding (RFC 7515 §2), strict: padding and non-zero trailing bits reject.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::Error;

/// Encodes bytes as unpadded base64url.
pub(crate) fn encode(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes unpadded base64url; `what` names the part for the error message.
pub(crate) fn decode(data: &str, what: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD
        .decode(data)
        .map_err(|e| Error::malformed(format!("{what} is not valid base64url: {e}")))
}
