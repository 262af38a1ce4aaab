//! Signed receipts and the keys that verify them.

use axum::Json;
use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::STAFF_READERS;
use crate::auth::{Allowed, who};
use crate::error::ApiResult;
use crate::keys::KeySet;
use crate::receipts::ReceiptDocument;
use crate::services::receipts;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_receipt)).routes(routes!(keys))
}

/// A signed receipt, for its family and staff.
#[utoipa::path(get, path = "/v1/receipts/{id}", tag = "receipts", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = ReceiptDocument)))]
async fn get_receipt(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Json<ReceiptDocument>> {
    Ok(Json(receipts::receipt_for(&state, &caller, &id, None, STAFF_READERS).await?))
}

/// The server's public signing keys: what `baobao verify` checks against.
#[utoipa::path(get, path = "/.well-known/baobao/keys.json", tag = "receipts", responses((status = 200, body = KeySet)))]
async fn keys(State(state): State<AppState>) -> Json<KeySet> {
    Json(state.keys.key_set())
}
