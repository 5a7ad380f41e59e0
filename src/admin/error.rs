//! Admin errors: one enum, one mapping to status and `{"error":{"code","message"}}`.
//! Messages are fixed sentences (or name the field at fault); causes go to the log.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::control::ControlError;
use crate::store::StoreError;

/// Seconds a client should wait after a 503.
const RETRY_AFTER_UNAVAILABLE: u64 = 5;

/// Every way an admin request can fail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AdminError {
    /// Not JSON, or not an object.
    #[error("{0}")]
    BadRequest(&'static str),
    /// Missing, malformed, unknown or inactive API key.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The key may not be used from this address.
    #[error("this API key may not be used from {0}")]
    AddressRefused(std::net::IpAddr),
    /// An unknown route, or a path id that is not a number.
    #[error("{0}")]
    NotFound(&'static str),
    /// Known path, wrong method.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// The body did not arrive within the body timeout.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// The body is over the admin body limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A field or parameter that does not parse; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// Too many failed authentications from this address.
    #[error("too many failed authentications; retry in {0} s")]
    TooManyRequests(u64),
    /// The readiness check failed.
    #[error("{0}")]
    NotReady(&'static str),
    /// What the control layer refused, or a store failure.
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// `{"error":{"code","message"}}`, on every admin error.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// A contract code and a sentence.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// `BadRequest`, `Unauthorized`, `NotFound`, `InvalidValue`, …
    code: &'static str,
    /// What went wrong, naming the field where one is at fault.
    message: String,
}

impl AdminError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ControlError as C;
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::AddressRefused(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "RequestTimeout"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            Self::Invalid(_) | Self::Control(C::Invalid(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "InvalidValue")
            }
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            Self::Control(error) => match error {
                C::WorkspaceNotFound
                | C::ConnectionNotFound
                | C::WriteKeyNotFound
                | C::ApiKeyNotFound => (StatusCode::NOT_FOUND, "NotFound"),
                C::TooManyWriteKeys => (StatusCode::UNPROCESSABLE_ENTITY, "TooManyEventWriteKeys"),
                C::LastWriteKey => (StatusCode::UNPROCESSABLE_ENTITY, "SingleEventWriteKey"),
                C::NotEventConnection => (StatusCode::UNPROCESSABLE_ENTITY, "NotEventConnection"),
                C::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "InvalidValue"),
                C::LastOperatorKey | C::Busy | C::Store(StoreError::PreconditionFailed) => {
                    (StatusCode::CONFLICT, "Conflict")
                }
                C::RestrictedKey | C::OtherWorkspace | C::OperatorOnly => {
                    (StatusCode::FORBIDDEN, "Forbidden")
                }
                C::Store(StoreError::Unavailable(_)) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
                }
                C::Store(StoreError::Internal(_)) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
                }
            },
        }
    }

    /// The public sentence: store failures say only what the client can act on.
    fn message(&self) -> String {
        match self {
            Self::Control(ControlError::Store(StoreError::Unavailable(_))) => {
                "the key store is unavailable; try again later".into()
            }
            Self::Control(ControlError::Store(StoreError::Internal(_))) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Control(ControlError::Store(error)) = &self {
            tracing::error!(error = %crate::telemetry::cause_chain(error), "admin request failed in the store");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.message(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let retry_after = match (&self, status) {
            (Self::TooManyRequests(secs), _) => Some(*secs),
            (_, StatusCode::SERVICE_UNAVAILABLE) => Some(RETRY_AFTER_UNAVAILABLE),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_a_503_with_a_fixed_sentence() {
        let disk = std::io::Error::from_raw_os_error(28);
        let error = AdminError::from(ControlError::Store(StoreError::Unavailable(disk.into())));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    }

    #[test]
    fn store_causes_stay_out_of_the_message() {
        let disk = std::io::Error::from_raw_os_error(28);
        let error = AdminError::from(ControlError::Store(StoreError::Unavailable(disk.into())));
        assert!(!error.message().contains("space"), "{}", error.message());
        let broken = AdminError::from(ControlError::Store(StoreError::internal("bad bytes")));
        assert_eq!(broken.message(), "internal error");
    }
}
