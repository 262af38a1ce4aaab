//! The plan catalogue and its policy versions.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use baobao_domain::ids::PlanId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiJson, Lang, created};
use crate::auth::{Allowed, who};
use crate::error::{ApiError, ApiResult};
use crate::services::plans;
use crate::services::plans::{PlanInput, PolicyInput};
use crate::state::AppState;
use crate::views::PlanView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan))
        .routes(routes!(publish_policy))
}

fn plan_id(text: &str) -> ApiResult<PlanId> {
    PlanId::parse(text).map_err(|_| ApiError::not_found("plan"))
}

/// The catalogue, each plan with its current terms (fields and plain language).
#[utoipa::path(get, path = "/v1/plans", tag = "plans", responses((status = 200, body = Vec<PlanView>)))]
async fn list_plans(State(state): State<AppState>, Lang(locale): Lang) -> ApiResult<Json<Vec<PlanView>>> {
    Ok(Json(plans::plans(&state, locale).await?))
}

/// Create a plan with its first policy version (admin).
#[utoipa::path(post, path = "/v1/plans", tag = "plans", security(("bearer" = [])), request_body = PlanInput,
    responses((status = 201, body = PlanView), (status = 422, description = "invalid policy")))]
async fn create_plan(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::ADMIN }>,
    Lang(locale): Lang,
    ApiJson(input): ApiJson<PlanInput>,
) -> ApiResult<Response> {
    Ok(created(plans::create_plan(&state, &caller, input, locale).await?))
}

#[utoipa::path(get, path = "/v1/plans/{id}", tag = "plans", params(("id" = String, Path)), responses((status = 200, body = PlanView)))]
async fn get_plan(
    State(state): State<AppState>,
    Lang(locale): Lang,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanView>> {
    Ok(Json(plans::plan(&state, &plan_id(&id)?, locale).await?))
}

/// Publish a new policy version (admin). Existing subscriptions keep the
/// version their guardian accepted.
#[utoipa::path(post, path = "/v1/plans/{id}/policies", tag = "plans", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = PolicyInput, responses((status = 201, body = PlanView)))]
async fn publish_policy(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::ADMIN }>,
    Lang(locale): Lang,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PolicyInput>,
) -> ApiResult<Response> {
    Ok(created(plans::publish_policy(&state, &caller, &plan_id(&id)?, input, locale).await?))
}
