//! Signed receipts and the keys that verify them.

use axum::Json;
use axum::extract::{Path, State};
use baobao_domain::ids::ReceiptId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::STAFF_READERS;
use crate::auth::{Allowed, Caller, who};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::keys::KeySet;
use crate::receipts::ReceiptDocument;
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
    Ok(Json(receipt_for(&state, &caller, &id, None, STAFF_READERS).await?))
}

/// A receipt the caller may see (of `kind`, when given): its family's
/// guardians and staff in `staff_roles`; anyone else learns nothing.
pub async fn receipt_for(
    state: &AppState,
    caller: &Caller,
    id: &str,
    kind: Option<&str>,
    staff_roles: &[crate::auth::Role],
) -> ApiResult<ReceiptDocument> {
    let receipt_id = ReceiptId::parse(id).map_err(|_| ApiError::not_found("receipt"))?;
    let stored = state.store.receipt(&receipt_id).await.or_not_found("receipt")?;
    if kind.is_some_and(|k| k != stored.kind) {
        return Err(ApiError::not_found("receipt"));
    }
    caller.require_family(&stored.family_id, staff_roles, "receipt")?;
    serde_json::from_str(&stored.document).map_err(|e| ApiError::internal(e.to_string()))
}

/// The server's public signing keys: what `baobao verify` checks against.
#[utoipa::path(get, path = "/.well-known/baobao/keys.json", tag = "receipts", responses((status = 200, body = KeySet)))]
async fn keys(State(state): State<AppState>) -> Json<KeySet> {
    Json(state.keys.key_set())
}
