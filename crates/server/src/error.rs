//! One error type for the HTTP layer, mapped once.
//!
//! Handlers return `Result<_, ApiError>` and use `?`. An `ApiError` knows
//! its status, a stable `code` and the details a client may act on; the
//! message is rendered in the caller's locale by the `localize` middleware,
//! which is the only place that knows the request. Internal failures are
//! logged once there, with the request id, and the client gets only that id.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baobao_domain::Locale;
use baobao_store::StoreError;
use serde_json::json;

use crate::messages;

#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub details: serde_json::Value,
    /// What went wrong inside, for the log only.
    pub internal: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str) -> ApiError {
        ApiError { status, code, details: json!({}), internal: None }
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> ApiError {
        if let Some(map) = self.details.as_object_mut() {
            map.insert(key.to_owned(), value.into());
        }
        self
    }

    pub fn bad_request(code: &'static str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code)
    }

    pub fn unprocessable(code: &'static str) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)
    }

    pub fn conflict(code: &'static str) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code)
    }

    /// `reason` is a code of `messages::REASONS`; its placeholders come from `.with(…)`.
    pub fn invalid_field(field: &str, reason: &'static str) -> ApiError {
        debug_assert!(crate::messages::REASONS.iter().any(|(code, _, _)| *code == reason), "{reason}");
        ApiError::unprocessable("invalid_field").with("field", field).with("reason", reason)
    }

    /// A query parameter that is not valid, with a `messages::REASONS` code.
    pub fn invalid_query(field: &str, reason: &'static str) -> ApiError {
        debug_assert!(crate::messages::REASONS.iter().any(|(code, _, _)| *code == reason), "{reason}");
        ApiError::unprocessable("invalid_query").with("field", field).with("reason", reason)
    }

    pub fn not_found(resource: &'static str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found").with("resource", resource)
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated")
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden")
    }

    pub fn internal(what: impl Into<String>) -> ApiError {
        ApiError { internal: Some(what.into()), ..ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal") }
    }
}

/// How a page shows an error: the one decision every presenter makes,
/// made here once from the error's status and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// No such thing, or not the caller's: the same "not found" page, so
    /// nobody learns what exists in another family.
    NotFound,
    /// Something the person can fix or should know (a field, a state, a
    /// limit): its message, by the form.
    Inline,
    /// The server's fault or the database away: a page with a request id;
    /// the cause goes to the log only.
    Failure,
}

impl ApiError {
    pub fn shown(&self) -> Shown {
        match self.code {
            "not_found" | "forbidden" => Shown::NotFound,
            _ if self.status.is_client_error() => Shown::Inline,
            _ => Shown::Failure,
        }
    }
}

/// An unexpected failure: a 500 whose cause is logged, never shown.
pub fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(error.to_string())
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound => ApiError::not_found("thing"),
            StoreError::Conflict { constraint } => match constraint.as_str() {
                "guardians_email_key" => ApiError::conflict("email_taken"),
                _ => ApiError::conflict("conflict").with("constraint", constraint),
            },
            StoreError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy"),
            StoreError::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            StoreError::Full => storage_full(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// The disk is full (the database's, or the data directory's): nothing
/// was kept, and the same request works again once space returns.
pub fn storage_full() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_full")
}

/// `store_result.or_not_found("subscription")?` names what was missing.
pub trait OrNotFound<T> {
    fn or_not_found(self, resource: &'static str) -> ApiResult<T>;
}

impl<T> OrNotFound<T> for Result<T, StoreError> {
    fn or_not_found(self, resource: &'static str) -> ApiResult<T> {
        self.map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(resource),
            other => other.into(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The body is written by `localize`, which knows the locale.
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The one shape of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `invalid_field`, `not_found`, `busy`, …
    pub code: String,
    /// For people, in the caller's locale (`Accept-Language`).
    pub message: String,
    /// What a client may act on: the field, the reason code, ids, limits.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// What a 503 (busy, the database away) tells clients to wait before retrying.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// The caller's locale: `Accept-Language`, else English.
#[derive(Clone, Copy, Debug)]
pub struct RequestLocale(pub Locale);

#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn request_locale(request: &Request) -> Locale {
    request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Locale::from_accept_language)
        .unwrap_or_default()
}

/// Assigns the request id, records the locale, and turns every `ApiError`
/// (and axum's own 404/405) into the JSON error body in that locale.
pub async fn localize(mut request: Request, next: Next) -> Response {
    let locale = request_locale(&request);
    let request_id = crate::random::random_token(12);
    request.extensions_mut().insert(RequestLocale(locale));
    request.extensions_mut().insert(RequestId(request_id.clone()));
    let span = tracing::info_span!("request", request_id = %request_id, method = %request.method(), path = %request.uri().path());
    let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let error = match response.extensions_mut().remove::<ApiError>() {
        Some(error) => Some(error),
        // axum's own bare responses (no route, wrong method, too large)
        // get the JSON error shape; pages that render their own error keep it.
        None if response.status() == StatusCode::NOT_FOUND && is_bare(&response) => {
            Some(ApiError::new(StatusCode::NOT_FOUND, "route_not_found"))
        }
        None if response.status() == StatusCode::METHOD_NOT_ALLOWED => {
            Some(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"))
        }
        None if response.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Some(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"))
        }
        // The timeout layer answers with a bare 503.
        None if response.status() == StatusCode::SERVICE_UNAVAILABLE && is_bare(&response) => {
            Some(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy"))
        }
        None => None,
    };
    let Some(mut error) = error else {
        response.headers_mut().insert("x-request-id", header_value(&request_id));
        return response;
    };
    if error.status.is_server_error() {
        let _entered = span.enter();
        tracing::error!(code = error.code, internal = error.internal.as_deref().unwrap_or(""), "request failed");
        error = error.with("request_id", request_id.clone());
    }
    let mut details = error.details.clone();
    if let Some(resource) = details.get("resource").and_then(|r| r.as_str()) {
        let words = messages::resource_words(resource, locale);
        details["resource"] = words.into();
    }
    let message = messages::render(error.code, locale, &details);
    let body =
        ErrorBody { error: ErrorDetail { code: error.code.to_owned(), message, details: error.details.clone() } };
    let mut rendered = (error.status, Json(body)).into_response();
    rendered.headers_mut().insert("x-request-id", header_value(&request_id));
    // A saved error answer replayed says so, as a replayed success does.
    if let Some(replayed) = response.headers().get("idempotent-replayed") {
        rendered.headers_mut().insert("idempotent-replayed", replayed.clone());
    }
    if error.status == StatusCode::SERVICE_UNAVAILABLE || error.status == StatusCode::TOO_MANY_REQUESTS {
        let seconds = match (error.details.get("retry_after_seconds"), error.details.get("minutes")) {
            (Some(seconds), _) => seconds.as_u64(),
            (None, Some(minutes)) => minutes.as_u64().map(|m| m * 60),
            (None, None) => None,
        }
        .unwrap_or(RETRY_AFTER_SECONDS);
        rendered.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    rendered.headers_mut().insert(header::CONTENT_LANGUAGE, header_value(locale.tag()));
    rendered
}

fn is_bare(response: &Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).is_none()
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}
