//! The HTTP API: one module per resource, each with its `router()`, put
//! together with the layers every request passes through.

pub mod admin;
pub mod auth;
pub mod cancellations;
pub mod children;
pub mod entitlements;
pub mod families;
pub mod health;
pub mod plans;
pub mod receipts;
pub mod staff;
pub mod subscriptions;

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Json, Router, middleware};
use serde::de::DeserializeOwned;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, RequestLocale};
use crate::idempotency::{REQUEST_BODY_BYTES_MAX, idempotency};
use crate::state::AppState;

pub const REQUEST_TIMEOUT_SECONDS: u64 = 30;

#[derive(OpenApi)]
#[openapi(
    info(title = "baobao API", version = "1", description = "Subscriptions for children's online services: ending one is as easy, fair and verifiable as starting one."),
    components(schemas(crate::views::MoneyView)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn openapi_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(families::router())
        .merge(plans::router())
        .merge(subscriptions::router())
        .merge(cancellations::router())
        .merge(children::router())
        .merge(entitlements::router())
        .merge(receipts::router())
        .merge(staff::router())
        .merge(admin::router())
        .merge(health::router())
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi_router().split_for_parts().1
}

pub fn app(state: AppState) -> Router {
    let (router, document) = openapi_router().split_for_parts();
    let document = std::sync::Arc::new(document);
    router
        .merge(crate::portal::router())
        .route("/openapi.json", axum::routing::get(move || std::future::ready(Json(document.as_ref().clone()))))
        .layer(middleware::from_fn_with_state(state.clone(), idempotency))
        // Bodies are 1 MiB at most, except where a route allows more (the
        // evidence of a written notice); nothing is ever read past the hard cap.
        .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(RequestBodyLimitLayer::new(crate::idempotency::REQUEST_BODY_BYTES_HARD_MAX))
        // Inside `localize`, so that a timed-out request gets the JSON error body too.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(REQUEST_TIMEOUT_SECONDS),
        ))
        .layer(middleware::from_fn(crate::error::localize))
        .layer(middleware::from_fn(crate::headers::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A JSON body whose problems are `ApiError`s in the caller's locale.
///
/// Every request body of this API is a JSON object. serde would also read a
/// struct from a positional array (`["now"]` for `{"option": "now"}`),
/// which slips past `deny_unknown_fields` and the schema, so anything but
/// an object is refused before it is deserialized.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"))?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::unprocessable("json_not_object"));
        }
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(deserialize_problem("invalid_json", StatusCode::UNPROCESSABLE_ENTITY, &e.body_text()))
            }
            Err(other) => Err(deserialize_problem("invalid_json", StatusCode::BAD_REQUEST, &other.body_text())),
        }
    }
}

/// `application/json` or `application/…+json`, with any parameters.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// serde's account of what is wrong with a body or a query, as a stable
/// reason code and the field it names; the parser's own (English) words
/// stay in `details.parser` for developers and never reach the localized
/// message.
fn deserialize_problem(code: &'static str, status: StatusCode, parser_text: &str) -> ApiError {
    let detail = parser_text
        .split_once("target type: ")
        .or_else(|| parser_text.split_once("query string: "))
        .map_or(parser_text, |(_, detail)| detail);
    let backticked = |text: &str| text.split('`').nth(1).map(str::to_owned);
    let (reason, field) = if let Some(rest) = detail.split_once("missing field ") {
        ("missing_field", backticked(rest.1))
    } else if let Some(rest) = detail.split_once("unknown field ") {
        ("unknown_field", backticked(rest.1))
    } else if detail.contains("invalid type") || detail.contains("invalid value") {
        ("wrong_type", detail.split_once(": invalid").map(|(path, _)| path.trim().to_owned()))
    } else if status == StatusCode::BAD_REQUEST {
        ("syntax", None)
    } else {
        ("shape", None)
    };
    let error = ApiError::new(status, code).with("reason", reason).with("parser", parser_text);
    match field {
        Some(field) if !field.is_empty() && field.len() <= 100 => error.with("field", field),
        _ => error.with("field", "-"),
    }
}

/// A query string whose problems are `ApiError`s in the caller's locale.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => {
                Err(deserialize_problem("invalid_query", StatusCode::UNPROCESSABLE_ENTITY, &rejection.body_text()))
            }
        }
    }
}

/// The caller's locale, set by the `localize` middleware.
pub struct Lang(pub baobao_domain::Locale);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang(parts.extensions.get::<RequestLocale>().map(|l| l.0).unwrap_or_default()))
    }
}

/// `201 Created` with a JSON body.
pub fn created<T: serde::Serialize>(value: T) -> axum::response::Response {
    (StatusCode::CREATED, Json(value)).into_response()
}
