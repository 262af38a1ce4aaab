//! The HTTP API: one module per resource, each with its `router()`, put
//! together with the layers every request passes through.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod cancellations;
pub mod children;
pub mod disputes;
pub mod entitlements;
pub mod families;
pub mod health;
pub mod plans;
pub mod receipts;
pub mod staff;
pub mod subscriptions;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, RequestLocale};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "baobao API", version = "1", description = "Subscriptions for children's online services: ending one is as easy, fair and verifiable as starting one."),
    components(schemas(crate::views::MoneyView, crate::error::ErrorBody, crate::error::ErrorDetail)),
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
        .merge(audit::router())
        .merge(auth::router())
        .merge(families::router())
        .merge(plans::router())
        .merge(subscriptions::router())
        .merge(cancellations::router())
        .merge(disputes::router())
        .merge(children::router())
        .merge(entitlements::router())
        .merge(receipts::router())
        .merge(staff::router())
        .merge(admin::router())
        .merge(health::router())
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut document = openapi_router().split_for_parts().1;
    document_errors(&mut document);
    document
}

/// Every operation documents the errors it can answer with, in the one
/// error shape (`ErrorBody`), derived from what the operation is: a
/// signed-in route can say 401 and 403, a route with an id or a body that
/// names one 404, a body
/// 400/413/415/422, a query 422, a POST 409 (its `Idempotency-Key` reused
/// with another body, or the state of the thing it changes), the sign-in
/// and sign-up routes 429, and every route 503 (the database busy or
/// away). Statuses a handler documents itself keep its own words.
fn document_errors(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    for (path, item) in document.paths.paths.iter_mut() {
        let operations =
            [(&mut item.get, false), (&mut item.post, true), (&mut item.put, true), (&mut item.delete, false)];
        for (operation, is_post) in operations {
            let Some(operation) = operation.as_mut() else { continue };
            let has_query = operation.parameters.iter().flatten().any(|p| match p {
                RefOr::T(parameter) => parameter.parameter_in == utoipa::openapi::path::ParameterIn::Query,
                RefOr::Ref(_) => false,
            });
            let mut statuses = vec![(
                "503",
                "The database is busy or cannot be reached; nothing was changed. Retry after `Retry-After` seconds.",
            )];
            if operation.security.is_some() {
                statuses.push(("401", "No valid session or API key."));
                statuses.push(("403", "The caller's role may not call this route."));
            }
            if path.contains('{') || operation.request_body.is_some() {
                statuses
                    .push(("404", "No such thing (in the path or named in the body), or not the caller's family's."));
            }
            if operation.request_body.is_some() {
                statuses.push(("400", "The body is not well-formed JSON, or the Idempotency-Key header is not valid."));
                statuses.push(("413", "The body is larger than the limit."));
                statuses.push(("415", "The body is not application/json."));
                statuses.push(("422", "A field is missing, unknown or not valid; `details` names it."));
            } else if has_query {
                statuses.push(("422", "A query parameter is not valid; `details` names it."));
            }
            if is_post {
                statuses.push((
                    "409",
                    "The Idempotency-Key was used with another body, or the thing is not in a state that allows this.",
                ));
            }
            if matches!(path.as_str(), "/v1/auth/sessions" | "/v1/families") && is_post {
                statuses.push((
                    "429",
                    "Too many attempts from this account or address; retry after `Retry-After` seconds.",
                ));
            }
            for (status, description) in statuses {
                operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
                    RefOr::T(
                        ResponseBuilder::new().description(description).content("application/json", content).build(),
                    )
                });
            }
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    response.description = "The request succeeded.".to_owned();
                }
            }
        }
    }
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
