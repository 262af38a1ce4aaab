//! Operator controls over the API: the simulated clock, the simulated
//! gateway, and billing runs. Admins only.

use axum::Json;
use axum::extract::State;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ApiJson;
use crate::auth::{Allowed, Role, who};
use crate::clock::{SIMULATED_NOW_SETTING, SIMULATED_YEAR_MAX, SIMULATED_YEAR_MIN};
use crate::error::{ApiError, ApiResult};
use crate::services::billing;
use crate::state::AppState;
use crate::views::BillingRunSummary;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_clock, set_clock)).routes(routes!(billing_run)).routes(routes!(set_gateway))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ClockInput {
    /// RFC 3339 instant; the simulated clock only moves forward.
    now: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct ClockView {
    #[schema(value_type = String, format = DateTime)]
    now: Timestamp,
    simulated: bool,
}

#[utoipa::path(get, path = "/v1/admin/clock", tag = "admin", security(("bearer" = [])), responses((status = 200, body = ClockView)))]
async fn get_clock(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::ADMIN }>,
) -> ApiResult<Json<ClockView>> {
    caller.require_staff(&[Role::Admin])?;
    Ok(Json(ClockView { now: state.clock.now(), simulated: state.clock.as_simulated().is_some() }))
}

/// Set the simulated clock (only with `--clock simulated`).
#[utoipa::path(post, path = "/v1/admin/clock", tag = "admin", security(("bearer" = [])), request_body = ClockInput,
    responses((status = 200, body = ClockView), (status = 409, description = "not simulated, or backwards")))]
async fn set_clock(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::ADMIN }>,
    ApiJson(input): ApiJson<ClockInput>,
) -> ApiResult<Json<ClockView>> {
    caller.require_staff(&[Role::Admin])?;
    let now: Timestamp = input.now.parse().map_err(|_| ApiError::invalid_field("now", "rfc3339_instant"))?;
    let year = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).year();
    if !(SIMULATED_YEAR_MIN..=SIMULATED_YEAR_MAX).contains(&year) {
        return Err(ApiError::invalid_field("now", "instant_range")
            .with("from", SIMULATED_YEAR_MIN)
            .with("until", SIMULATED_YEAR_MAX));
    }
    let simulated = state.clock.as_simulated().ok_or_else(|| ApiError::conflict("clock_not_simulated"))?;
    let backwards = |current: Timestamp| ApiError::conflict("clock_backwards").with("now", current.to_string());
    // The database's time first: it is every server's, and only moves forward.
    let now = Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now);
    state.store.advance_instant_setting(SIMULATED_NOW_SETTING, now).await?.map_err(backwards)?;
    let now = simulated.set(now).map_err(backwards)?;
    let mut tx = state.store.begin().await?;
    tx.audit(now, &caller.actor(), "clock.set", &[], &json!({"now": now.to_string()})).await?;
    let answer = ClockView { now, simulated: true };
    crate::idempotency::answer_with_change(&mut tx, axum::http::StatusCode::OK, &answer).await?;
    tx.commit().await?;
    Ok(Json(answer))
}

/// Run billing at the clock's now: renewals, effective cancellations, fees, refunds.
#[utoipa::path(post, path = "/v1/admin/billing-runs", tag = "admin", security(("bearer" = [])), responses((status = 200, body = BillingRunSummary)))]
async fn billing_run(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::ADMIN }>,
) -> ApiResult<Json<BillingRunSummary>> {
    caller.require_staff(&[Role::Admin])?;
    // A run is resumable, so it runs as a task of its own: none of its
    // commits marks the request's Idempotency-Key as carried out, and a
    // retry after a crash runs it again — resuming it — rather than being
    // told its answer was lost (and a client that hangs up does not cut
    // the run short).
    let at = state.clock.now();
    let background = state.clone();
    let run = tokio::spawn(async move { billing::run(&background, at).await });
    Ok(Json(run.await.map_err(|e| ApiError::internal(e.to_string()))??))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GatewayInput {
    decline_charges: bool,
    /// Refuse refunds too (they are retried, then go to finance).
    #[serde(default)]
    fail_refunds: bool,
}

/// Tell the simulated gateway to decline charges or refuse refunds (tests and demos).
#[utoipa::path(post, path = "/v1/admin/gateway", tag = "admin", security(("bearer" = [])), request_body = GatewayInput,
    responses((status = 200, body = GatewayInput)))]
async fn set_gateway(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::ADMIN }>,
    ApiJson(input): ApiJson<GatewayInput>,
) -> ApiResult<Json<GatewayInput>> {
    caller.require_staff(&[Role::Admin])?;
    let simulated = state.gateway.as_simulated().ok_or_else(|| ApiError::conflict("gateway_not_simulated"))?;
    simulated.set_decline_charges(input.decline_charges);
    simulated.set_fail_refunds(input.fail_refunds);
    Ok(Json(input))
}
