//! Subscriptions: subscribe, look, quote, cancel, resume.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiJson, ApiQuery, Lang, created};
use crate::auth::{Allowed, who};
use crate::error::{ApiError, ApiResult};
use crate::services::cancellations::CancelInput;
use crate::services::subscriptions::SubscribeInput;
use crate::services::{cancellations, subscriptions};
use crate::state::AppState;
use crate::views::{CancellationWithReceipt, QuoteView, SubscriptionView, SubscriptionWithReceipt};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(subscribe))
        .routes(routes!(get_subscription))
        .routes(routes!(cancellation_quote))
        .routes(routes!(cancel))
        .routes(routes!(resume))
}

/// Subscribe to a plan, accepting its current terms by their SHA-256.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions", security(("bearer" = [])), request_body = SubscribeInput,
    responses((status = 201, body = SubscriptionWithReceipt), (status = 402, description = "payment failed"), (status = 409, description = "terms changed or already subscribed")))]
async fn subscribe(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN }>,
    ApiJson(input): ApiJson<SubscribeInput>,
) -> ApiResult<Response> {
    Ok(created(subscriptions::subscribe(&state, &caller, input).await?))
}

/// Status, current period, next renewal and notice deadline.
#[utoipa::path(get, path = "/v1/subscriptions/{id}", tag = "subscriptions", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = SubscriptionView)))]
async fn get_subscription(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionView>> {
    Ok(Json(subscriptions::get_subscription(&state, &caller, &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct QuoteQuery {
    /// Staff only: the instant the request was received (RFC 3339).
    received_at: Option<String>,
}

/// Every option for ending the subscription, with its cost and dates.
#[utoipa::path(get, path = "/v1/subscriptions/{id}/cancellation-quote", tag = "subscriptions", security(("bearer" = [])),
    params(("id" = String, Path), QuoteQuery), responses((status = 200, body = QuoteView)))]
async fn cancellation_quote(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Lang(locale): Lang,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<QuoteQuery>,
) -> ApiResult<Json<QuoteView>> {
    let received_at = query
        .received_at
        .map(|t| t.parse::<Timestamp>())
        .transpose()
        .map_err(|_| ApiError::invalid_query("received_at", "rfc3339_instant"))?;
    Ok(Json(cancellations::cancellation_quote(&state, &caller, &id, received_at, locale).await?))
}

/// Cancel: returns the request and its signed receipt. Guardians cancel
/// for themselves; agents and supervisors on a guardian's behalf, with the
/// code the guardian read out (`verification_code`) or, supervisors only,
/// a written `verification_override_reason`.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/cancellations", tag = "subscriptions", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = CancelInput,
    responses((status = 201, body = CancellationWithReceipt), (status = 409, description = "already pending, not cancellable, quote expired")))]
async fn cancel(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::AGENT | who::SUPERVISOR }>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CancelInput>,
) -> ApiResult<Response> {
    Ok(created(cancellations::cancel(&state, &caller, &id, input).await?))
}

/// Withdraw a scheduled cancellation before it takes effect.
#[utoipa::path(post, path = "/v1/subscriptions/{id}/resume", tag = "subscriptions", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = SubscriptionWithReceipt)))]
async fn resume(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN }>,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionWithReceipt>> {
    Ok(Json(cancellations::resume(&state, &caller, &id).await?))
}
