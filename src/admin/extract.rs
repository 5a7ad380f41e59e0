//! Typed request input: JSON bodies under the admin body limit and timeout, query
//! strings, and numeric path ids. Not JSON or not an object is a 400; a field that
//! breaks its rule is a 422 naming the field; an oversized body is a 413.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::error::AdminError;
use super::Admin;
use crate::model::Id;

/// Largest admin request body (100 origins or allow-list entries fit with room).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

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
        let limited = Limited::new(request.into_body(), MAX_BODY_BYTES);
        let bytes = match tokio::time::timeout(admin.body_timeout, limited.collect()).await {
            Err(_) => return Err(AdminError::RequestTimeout),
            Ok(Err(error)) if error.is::<LengthLimitError>() => {
                return Err(AdminError::PayloadTooLarge(MAX_BODY_BYTES))
            }
            Ok(Err(_)) => return Err(AdminError::BadRequest("the request body could not be read")),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
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
