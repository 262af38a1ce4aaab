//! `GET /v1/entitlements`: called by the children's apps on every request.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ApiQuery;
use crate::auth::{Allowed, who};
use crate::error::ApiResult;
use crate::services::entitlements::{self, EntitlementView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(entitlement))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EntitlementQuery {
    family_id: String,
    /// Must be the service the API key is scoped to.
    service: String,
}

/// Is this family entitled to this service now, and until when?
#[utoipa::path(get, path = "/v1/entitlements", tag = "integrators", security(("bearer" = [])), params(EntitlementQuery),
    responses((status = 200, body = EntitlementView)))]
async fn entitlement(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::INTEGRATOR }>,
    ApiQuery(query): ApiQuery<EntitlementQuery>,
) -> ApiResult<Json<EntitlementView>> {
    Ok(Json(entitlements::check(&state, &caller, &query.family_id, &query.service).await?))
}
