//! What the ingest listener answers: the error enum with its one mapping to status and
//! `{"error":{"code","message"}}`, and success bodies. (CORS headers: `cors.rs`.)

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::limits::Throttled;

/// The response type of the ingest service.
pub type Answer = Response<Full<Bytes>>;

/// Every way an ingest request can fail.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Not JSON, wrong shape, no valid event.
    #[error("{0}")]
    BadRequest(String),
    /// No write key, or an unknown or revoked one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A key of the wrong connection kind for the route.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Unknown path, or (settings documents) no SDK source with that key.
    #[error("{0}")]
    NotFound(&'static str),
    /// Known path, wrong method; the methods it accepts (the `Allow` header).
    #[error("this route accepts {0}")]
    MethodNotAllowed(&'static str),
    /// The client took too long to send its body.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// Body, decompressed body or event over its limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A `Content-Encoding` other than gzip, deflate or identity.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Over the key's or address's budget.
    #[error("rate limit exceeded; retry in {} s", .0.retry_after_secs)]
    TooManyRequests(Throttled),
    /// The sink refused. The message is a fixed sentence: the cause (an OS error, a
    /// backend's answer) goes to the log, never to the client.
    #[error("the events could not be stored right now; retry later")]
    Unavailable(#[source] crate::sink::SinkError),
}

/// Seconds a client should wait after a 503.
const UNAVAILABLE_RETRY_SECS: &str = "5";

impl IngestError {
    /// Status and contract code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            Self::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "RequestTimeout"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        }
    }

    /// The error answer, with the headers its status calls for.
    pub fn into_answer(self) -> Answer {
        let (status, code) = self.status_and_code();
        let mut answer = error_answer(status, code, &self.to_string());
        let headers = answer.headers_mut();
        match &self {
            Self::MethodNotAllowed(methods) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(methods));
            }
            Self::TooManyRequests(t) => {
                let secs = HeaderValue::from(t.retry_after_secs);
                headers.insert(header::RETRY_AFTER, secs.clone());
                headers.insert("ratelimit-limit", HeaderValue::from(t.limit));
                headers.insert("ratelimit-remaining", HeaderValue::from(0u32));
                headers.insert("ratelimit-reset", secs);
            }
            Self::Unavailable(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(UNAVAILABLE_RETRY_SECS),
                );
            }
            _ => {}
        }
        answer
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// `{"error":{"code","message"}}` with the given status.
pub fn error_answer(status: StatusCode, code: &str, message: &str) -> Answer {
    let body = serde_json::to_vec(&ErrorBody {
        error: ErrorDetail { code, message },
    })
    .unwrap_or_default();
    json_answer(status, Bytes::from(body))
}

/// A JSON answer.
pub fn json_answer(status: StatusCode, body: Bytes) -> Answer {
    let mut answer = Response::new(Full::new(body));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    answer
}

/// One refused event of a batch.
#[derive(Debug, Serialize, PartialEq)]
pub struct Reject {
    /// Position in the request's events.
    pub index: usize,
    /// Contract code: `InvalidValue`, `PayloadTooLarge` or `BadRequest`.
    pub code: &'static str,
    /// What is wrong, naming the field.
    pub message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartialSuccess<'a> {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected: Option<&'a [Reject]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicates: Option<usize>,
}

/// The 200 answer: `{"success":true}`, plus, when events were refused, the first of
/// them (the caller keeps at most 100, so the answer stays small whatever the request)
/// and `rejectedCount`, how many in all; plus `duplicates` when some accepted events
/// had already been stored (counted in `accepted`, not stored again).
pub fn accepted_answer(
    accepted: usize,
    rejected: &[Reject],
    rejected_count: usize,
    duplicates: usize,
) -> Answer {
    if rejected_count == 0 && duplicates == 0 {
        return json_answer(StatusCode::OK, Bytes::from_static(b"{\"success\":true}"));
    }
    let refused = rejected_count > 0;
    let body = serde_json::to_vec(&PartialSuccess {
        success: true,
        accepted: refused.then_some(accepted),
        rejected: refused.then_some(rejected),
        rejected_count: refused.then_some(rejected_count),
        duplicates: (duplicates > 0).then_some(duplicates),
    })
    .unwrap_or_default();
    json_answer(StatusCode::OK, Bytes::from(body))
}
