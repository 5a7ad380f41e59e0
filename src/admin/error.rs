//! Admin errors: one enum, one mapping to status and `{"error":{"code","message"}}`.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue, StatusCode};
use serde_json::json;

use crate::store::StoreError;

/// Every way an admin request can fail.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Not JSON, or not an object.
    #[error("{0}")]
    BadRequest(String),
    /// Missing, malformed, unknown or inactive API key.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The key may not do this (address, company, workspace restriction).
    #[error("{0}")]
    Forbidden(String),
    /// No such object for this caller.
    #[error("{0}")]
    NotFound(String),
    /// Known path, wrong method.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// A compare-and-set kept losing.
    #[error("{0}")]
    Conflict(String),
    /// A field or domain rule: the code says which.
    #[error("{message}")]
    Unprocessable {
        /// `InvalidValue`, `TooManyEventWriteKeys`, `SingleEventWriteKey`, …
        code: &'static str,
        /// Names the field or the rule.
        message: String,
    },
    /// Too many failed authentications from this address.
    #[error("too many failed authentications; retry in {0} s")]
    TooManyRequests(u64),
    /// The store is unreachable (admin writes wait for it).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a broken disk; details are logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl AdminError {
    /// 422 `InvalidValue` naming a field.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code: "InvalidValue",
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            Self::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        match error {
            StoreError::CompanyNotFound
            | StoreError::WorkspaceNotFound
            | StoreError::ConnectionNotFound
            | StoreError::WriteKeyNotFound
            | StoreError::ApiKeyNotFound => Self::NotFound(message),
            StoreError::TooManyWriteKeys => Self::Unprocessable {
                code: "TooManyEventWriteKeys",
                message,
            },
            StoreError::LastWriteKey => Self::Unprocessable {
                code: "SingleEventWriteKey",
                message,
            },
            StoreError::NotEventConnection => Self::Unprocessable {
                code: "NotEventConnection",
                message,
            },
            StoreError::Conflict => Self::Conflict(message),
            StoreError::Unavailable(_) => Self::Unavailable(message),
            StoreError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "admin request failed");
        }
        let body = json!({"error": {"code": code, "message": self.to_string()}});
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::TooManyRequests(secs) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}
