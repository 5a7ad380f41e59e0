//! Typed request input: JSON bodies under the admin body limit and timeout, query
//! strings, and numeric path ids. Not JSON or not an object is a 400; a field that
//! breaks its rule is a 422 naming the field; an oversized body is a 413.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use bytes::Bytes;
use http::request::Parts;
use http_body_util::BodyExt;
use hyper::body::Body as _;
use serde::de::DeserializeOwned;

use super::error::AdminError;
use super::Admin;
use crate::model::Id;

/// Largest admin request body (100 origins or allow-list entries fit with room).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// Bytes of an oversized body read and dropped before its 413 (within the body
/// timeout): a connection closed while the client is still sending is reset by the
/// kernel, and the client then sees the reset instead of the answer. A body declared
/// larger than this is answered at once.
const DRAIN_BYTES: usize = 8 * 1024 * 1024;

/// A JSON object body deserialised into `T`.
pub(crate) struct Body<T>(pub(crate) T);

/// Turns a serde error with its path into the 422 message naming the field.
fn field_error<E: std::fmt::Display>(error: serde_path_to_error::Error<E>) -> AdminError {
    let path = error.path().to_string();
    let inner = error.inner().to_string();
    if path == "." || path.is_empty() {
        AdminError::Invalid(inner)
    } else {
        AdminError::Invalid(format!("{path}: {inner}"))
    }
}

impl<T: DeserializeOwned> FromRequest<Arc<Admin>> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, admin: &Arc<Admin>) -> Result<Self, AdminError> {
        let bytes = read_body(request.into_body(), admin.body_timeout).await?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| AdminError::BadRequest("the body is not valid JSON"))?;
        if !value.is_object() {
            return Err(AdminError::BadRequest("the body must be a JSON object"));
        }
        serde_path_to_error::deserialize(value)
            .map(Body)
            .map_err(field_error)
    }
}

/// The body, at most `MAX_BODY_BYTES`. A larger one is a 413, sent once the client has
/// finished sending it (up to `DRAIN_BYTES`, read and dropped) so that it can read it.
async fn read_body(
    body: axum::body::Body,
    timeout: std::time::Duration,
) -> Result<Bytes, AdminError> {
    let too_large = || AdminError::PayloadTooLarge(MAX_BODY_BYTES);
    if body.size_hint().lower() > DRAIN_BYTES as u64 {
        return Err(too_large());
    }
    let mut over = false;
    let read = async {
        let mut body = body;
        let mut kept = Vec::new();
        let mut seen = 0;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|_| AdminError::BadRequest("the request body could not be read"))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen += data.len();
            over = seen > MAX_BODY_BYTES;
            if seen > DRAIN_BYTES {
                return Err(too_large());
            }
            if !over {
                kept.extend_from_slice(&data);
            }
        }
        if over {
            return Err(too_large());
        }
        Ok(Bytes::from(kept))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) if over => Err(too_large()),
        Err(_) => Err(AdminError::RequestTimeout),
    }
}

/// A query string deserialised into `T`.
pub(crate) struct Params<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AdminError> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = form_urlencoded::parse(query.as_bytes());
        let deserializer = serde_urlencoded::Deserializer::new(pairs);
        serde_path_to_error::deserialize(deserializer)
            .map(Params)
            .map_err(field_error)
    }
}

/// A numeric path id; anything else names an object that does not exist.
pub(crate) fn path_id(text: &str, missing: crate::control::ControlError) -> Result<Id, AdminError> {
    text.parse().map_err(|_| AdminError::Control(missing))
}

/// Deserialises a present field as `Some(value)`, so that `null` means what the
/// value's own type makes of it (with `#[serde(default)]`, absent stays `None`).
pub(crate) fn some<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}
