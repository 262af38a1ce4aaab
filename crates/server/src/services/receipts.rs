//! Signed receipts as their holders read them: one receipt, or a
//! family's, for its guardians and the staff allowed to see them.

use baobao_domain::ids::{FamilyId, ReceiptId};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::receipts::ReceiptDocument;
use crate::state::AppState;

/// A receipt the caller may see (of `kind`, when given): its family's
/// guardians and staff in `staff_roles`; anyone else learns nothing.
pub async fn receipt_for(
    state: &AppState,
    caller: &Caller,
    id: &str,
    kind: Option<&str>,
    staff_roles: &[Role],
) -> ApiResult<ReceiptDocument> {
    let receipt_id = ReceiptId::parse(id).map_err(|_| ApiError::not_found("receipt"))?;
    let stored = state.store.receipt(&receipt_id).await.or_not_found("receipt")?;
    if kind.is_some_and(|k| k != stored.kind) {
        return Err(ApiError::not_found("receipt"));
    }
    caller.require_family(&stored.family_id, staff_roles, "receipt")?;
    serde_json::from_str(&stored.document).map_err(internal)
}

/// A family's receipts, newest first, for its guardians and the staff in
/// `staff_roles`.
pub async fn family_receipts(
    state: &AppState,
    caller: &Caller,
    family_id: &FamilyId,
    staff_roles: &[Role],
) -> ApiResult<Vec<ReceiptDocument>> {
    caller.require_family(family_id, staff_roles, "family")?;
    let stored = state.store.receipts_of(family_id).await?;
    stored.iter().rev().map(|r| serde_json::from_str(&r.document).map_err(internal)).collect()
}
