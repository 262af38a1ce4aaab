//! The audit log, for anyone: its signed tree head and the proofs that an
//! entry is in it and that it only ever grew (RFC 9162).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::ApiQuery;
use crate::auth::{Allowed, who};
use crate::error::ApiResult;
use crate::services::audit_log::{self, ConsistencyProof, InclusionProof, TreeHead};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tree_head))
        .routes(routes!(inclusion_proof))
        .routes(routes!(consistency_proof))
        .routes(routes!(list_entries))
        .routes(routes!(logged_document))
        .routes(routes!(document_proof))
}

/// A signed document's proof of logging: its entry, a signed tree head and the inclusion proof, in one file to keep beside the document and check offline (`baobao verify FILE --proof PROOF`).
#[utoipa::path(get, path = "/v1/audit/documents/{sha256}/proof", tag = "audit", params(("sha256" = String, Path)),
    responses((status = 200, body = audit_log::DocumentProof), (status = 404, body = crate::error::ErrorBody, description = "not in the log")))]
async fn document_proof(
    State(state): State<AppState>,
    axum::extract::Path(sha256): axum::extract::Path<String>,
) -> ApiResult<Json<audit_log::DocumentProof>> {
    Ok(Json(audit_log::document_proof(&state, &sha256).await?))
}

/// Where a signed document (a receipt, a certificate, an export) is in the log, by the SHA-256 of its canonical JSON.
#[utoipa::path(get, path = "/v1/audit/documents/{sha256}", tag = "audit", params(("sha256" = String, Path)),
    responses((status = 200, body = audit_log::AuditEntryView), (status = 404, body = crate::error::ErrorBody, description = "not in the log")))]
async fn logged_document(
    State(state): State<AppState>,
    axum::extract::Path(sha256): axum::extract::Path<String>,
) -> ApiResult<Json<audit_log::AuditEntryView>> {
    Ok(Json(audit_log::logged_document(&state, &sha256).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EntriesQuery {
    /// Entries naming this family (a guardian sees only their own).
    family_id: Option<String>,
    /// Who did it, as recorded (`guardian:gdn_…`, `staff:agent:stf_…`, `system`).
    actor: Option<String>,
    /// What was done (`subscription.created`, `receipt.issued`, …).
    action: Option<String>,
    /// From this instant (RFC 3339), inclusive.
    from: Option<String>,
    /// Until this instant (RFC 3339), exclusive.
    until: Option<String>,
    /// The previous page's `next`.
    after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<i64>,
}

fn instant(field: &str, text: Option<&str>) -> ApiResult<Option<jiff::Timestamp>> {
    text.map(|t| t.parse().map_err(|_| crate::error::ApiError::invalid_query(field, "rfc3339_instant"))).transpose()
}

/// The log's entries, filtered and paged: compliance and admin staff see all; a guardian their own family's.
#[utoipa::path(get, path = "/v1/audit/entries", tag = "audit", security(("bearer" = [])), params(EntriesQuery),
    responses((status = 200, body = audit_log::AuditPage)))]
async fn list_entries(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::COMPLIANCE | who::ADMIN }>,
    ApiQuery(query): ApiQuery<EntriesQuery>,
) -> ApiResult<Json<audit_log::AuditPage>> {
    let filter = baobao_store::AuditFilter {
        family_id: query.family_id,
        actor: query.actor,
        action: query.action,
        from: instant("from", query.from.as_deref())?,
        until: instant("until", query.until.as_deref())?,
        after: query.after,
    };
    Ok(Json(audit_log::entries(&state, &caller, filter, query.limit).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TreeHeadQuery {
    /// A head signed earlier, by its size; the latest when absent.
    tree_size: Option<u64>,
}

/// The log's signed tree head: the latest (signed now if the log grew), or the one of `tree_size`.
#[utoipa::path(get, path = "/v1/audit/tree-head", tag = "audit", params(TreeHeadQuery),
    responses((status = 200, body = TreeHead), (status = 404, body = crate::error::ErrorBody, description = "no head of that size")))]
async fn tree_head(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TreeHeadQuery>,
) -> ApiResult<Json<TreeHead>> {
    Ok(Json(audit_log::tree_head(&state, query.tree_size).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionQuery {
    leaf_index: u64,
    tree_size: u64,
}

/// The audit path of leaf `leaf_index` in the tree of `tree_size` (RFC 9162 §2.1.3).
#[utoipa::path(get, path = "/v1/audit/proofs/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 422, body = crate::error::ErrorBody, description = "outside the log")))]
async fn inclusion_proof(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<InclusionQuery>,
) -> ApiResult<Json<InclusionProof>> {
    Ok(Json(audit_log::inclusion(&state, query.leaf_index, query.tree_size).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    first: u64,
    second: u64,
}

/// The proof that the tree of `first` leaves is a prefix of the tree of `second` (RFC 9162 §2.1.4).
#[utoipa::path(get, path = "/v1/audit/proofs/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 422, body = crate::error::ErrorBody, description = "outside the log")))]
async fn consistency_proof(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Json<ConsistencyProof>> {
    Ok(Json(audit_log::consistency(&state, query.first, query.second).await?))
}
