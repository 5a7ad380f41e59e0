//! Finding the write key of a request. First found wins: `Authorization: Basic` (user
//! name = key), `Authorization: Bearer`, `X-Write-Key`, the body's `writeKey`, the
//! `writeKey` query parameter. The webhook path key comes before all of these.

use std::borrow::Cow;

use base64::{DecodeSliceError, Engine};
use http::HeaderMap;

use super::answer::IngestError;

/// The key from the headers, if the headers carry one.
pub fn from_headers(headers: &HeaderMap) -> Result<Option<String>, IngestError> {
    if let Some(value) = headers.get(http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| malformed())?;
        let (scheme, credentials) = value.trim().split_once(' ').ok_or_else(malformed)?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            // Decoded on the stack: every request carries it, and keys are short.
            let mut stack = [0u8; 192];
            let engine = &base64::engine::general_purpose::STANDARD;
            let decoded: Cow<'_, [u8]> = match engine.decode_slice(credentials, &mut stack) {
                Ok(len) => Cow::Borrowed(&stack[..len]),
                Err(DecodeSliceError::OutputSliceTooSmall) => {
                    Cow::Owned(engine.decode(credentials).map_err(|_| malformed())?)
                }
                Err(DecodeSliceError::DecodeError(_)) => return Err(malformed()),
            };
            let decoded = std::str::from_utf8(&decoded).map_err(|_| malformed())?;
            let user = decoded.split_once(':').map_or(decoded, |(u, _)| u);
            return Ok(non_empty(user));
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return Ok(non_empty(credentials));
        }
        return Err(malformed());
    }
    if let Some(value) = headers.get("x-write-key") {
        let value = value.to_str().map_err(|_| malformed())?;
        return Ok(non_empty(value.trim()));
    }
    Ok(None)
}

/// The `writeKey` query parameter.
pub fn from_query(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "writeKey")
        .and_then(|(_, value)| non_empty(&value))
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn malformed() -> IngestError {
    IngestError::Unauthorized(
        "the Authorization header must be `Basic base64(writeKey:)` or `Bearer writeKey`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ingest::test_headers as headers;

    #[test]
    fn basic_takes_the_user_name_and_ignores_the_password() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("KEY:secret");
        let h = headers(&[("authorization", &format!("Basic {encoded}"))]);
        assert_eq!(from_headers(&h).unwrap().as_deref(), Some("KEY"));
        let encoded = base64::engine::general_purpose::STANDARD.encode("KEY");
        let h = headers(&[("authorization", &format!("basic {encoded}"))]);
        assert_eq!(from_headers(&h).unwrap().as_deref(), Some("KEY"));
        // Longer than the stack buffer: decoded on the heap, same answer.
        let long = "k".repeat(300);
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{long}:"));
        let h = headers(&[("authorization", &format!("Basic {encoded}"))]);
        assert_eq!(from_headers(&h).unwrap().as_deref(), Some(long.as_str()));
    }

    #[test]
    fn authorization_wins_over_x_write_key() {
        let h = headers(&[("authorization", "Bearer A"), ("x-write-key", "B")]);
        assert_eq!(from_headers(&h).unwrap().as_deref(), Some("A"));
        let h = headers(&[("x-write-key", "B")]);
        assert_eq!(from_headers(&h).unwrap().as_deref(), Some("B"));
        assert_eq!(from_headers(&HeaderMap::new()).unwrap(), None);
    }

    #[test]
    fn malformed_authorization_is_an_error() {
        for bad in ["Basic !!!", "Token x", "Bearer"] {
            let h = headers(&[("authorization", bad)]);
            assert!(from_headers(&h).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_parameter_is_decoded() {
        assert_eq!(from_query(Some("a=1&writeKey=K%31")).as_deref(), Some("K1"));
        assert_eq!(from_query(Some("writeKey=")), None);
        assert_eq!(from_query(None), None);
    }
}
