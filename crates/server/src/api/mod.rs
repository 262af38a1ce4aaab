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
        .layer(middleware::from_fn(crate::error::localize))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(REQUEST_TIMEOUT_SECONDS),
        ))
        .layer(middleware::from_fn(crate::headers::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A JSON body whose problems are `ApiError`s in the caller's locale.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => {
                Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"))
            }
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::unprocessable("invalid_json").with("reason", e.body_text()))
            }
            Err(JsonRejection::JsonSyntaxError(e)) => {
                Err(ApiError::bad_request("invalid_json").with("reason", e.body_text()))
            }
            Err(JsonRejection::BytesRejection(_)) => {
                Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"))
            }
            Err(other) => Err(ApiError::bad_request("invalid_json").with("reason", other.body_text())),
        }
    }
}

/// A query string whose problems are `ApiError`s in the caller's locale.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::unprocessable("invalid_query").with("reason", rejection.body_text())),
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
