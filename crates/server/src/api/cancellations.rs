//! Cancellation requests.

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Allowed, who};
use crate::error::ApiResult;
use crate::services::cancellations;
use crate::state::AppState;
use crate::views::CancellationWithReceipt;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_cancellation))
}

/// A cancellation request, its status and its receipt.
#[utoipa::path(get, path = "/v1/cancellations/{id}", tag = "cancellations", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = CancellationWithReceipt)))]
async fn get_cancellation(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Json<CancellationWithReceipt>> {
    Ok(Json(cancellations::get_cancellation(&state, &caller, &id).await?))
}
