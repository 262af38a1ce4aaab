//! Disputes: filing (signed in, or with a kept receipt after the account
//! closed), the timeline, messages, escalation, decisions, evidence, the
//! dossier and the compliance report.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use baobao_domain::ids::FamilyId;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiJson, ApiQuery, Lang, created};
use crate::auth::{Allowed, who};
use crate::downloads;
use crate::error::{ApiError, ApiResult};
use crate::services::disputes::{
    self, DisputeDetail, DisputeInput, DisputeReport, DisputeView, EscalateInput, Filer, FilingCodeInput,
    FilingCodeSent, MessageInput, ReceiptHolderDisputeInput, ResolveInput, Via,
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(file_dispute, list_disputes))
        .routes(routes!(get_dispute))
        .routes(routes!(post_message))
        .routes(routes!(escalate))
        .routes(routes!(resolve))
        .routes(routes!(evidence_file))
        .routes(routes!(dossier))
        .routes(routes!(family_disputes))
        .routes(routes!(send_filing_code))
        .routes(routes!(file_by_receipt))
        .routes(routes!(report))
}

/// File a dispute (a guardian for their family; support for a guardian).
/// The records are checked at once; what they settle is done in the same
/// request (a late charge refunded, a request's receipt shown).
#[utoipa::path(post, path = "/v1/disputes", tag = "disputes", security(("bearer" = [])), request_body = DisputeInput,
    responses((status = 201, body = DisputeDetail)))]
async fn file_dispute(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::AGENT | who::SUPERVISOR | who::COMPLIANCE }>,
    ApiJson(input): ApiJson<DisputeInput>,
) -> ApiResult<Response> {
    Ok(created(disputes::file(&state, Filer::Caller(&caller), Via::Api, input, None).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct QueueQuery {
    /// Staff: only disputes at this level (`support`, `supervisor`,
    /// `external_mediation`, `legal`).
    level: Option<String>,
}

/// Disputes: for a guardian, their family's (newest first); for staff,
/// the open ones, the nearest deadline first.
#[utoipa::path(get, path = "/v1/disputes", tag = "disputes", security(("bearer" = [])), params(QueueQuery),
    responses((status = 200, body = Vec<DisputeView>)))]
async fn list_disputes(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    ApiQuery(query): ApiQuery<QueueQuery>,
) -> ApiResult<Json<Vec<DisputeView>>> {
    match caller.require_guardian() {
        Ok((_, family_id)) => Ok(Json(disputes::of_family(&state, &caller, &family_id.clone()).await?)),
        Err(_) => Ok(Json(disputes::queue(&state, &caller, query.level.as_deref()).await?)),
    }
}

/// A dispute: where it stands, its timeline, its evidence and the receipt of its filing.
#[utoipa::path(get, path = "/v1/disputes/{id}", tag = "disputes", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = DisputeDetail)))]
async fn get_dispute(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Json<DisputeDetail>> {
    Ok(Json(disputes::get(&state, &caller, &id).await?))
}

/// Write on a dispute's timeline (the guardian, or staff answering); files may come with it.
#[utoipa::path(post, path = "/v1/disputes/{id}/messages", tag = "disputes", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = MessageInput, responses((status = 201, body = DisputeDetail)))]
async fn post_message(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::AGENT | who::SUPERVISOR | who::COMPLIANCE }>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<MessageInput>,
) -> ApiResult<Response> {
    Ok(created(disputes::post_message(&state, &caller, &id, input).await?))
}

/// Move a dispute up a level (the guardian may ask; staff may decide), with fresh deadlines.
#[utoipa::path(post, path = "/v1/disputes/{id}/escalate", tag = "disputes", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = EscalateInput, responses((status = 200, body = DisputeDetail)))]
async fn escalate(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::AGENT | who::SUPERVISOR | who::COMPLIANCE }>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EscalateInput>,
) -> ApiResult<Json<DisputeDetail>> {
    Ok(Json(disputes::escalate(&state, &caller, &id, input).await?))
}

/// Close a dispute: staff decide (a refund needs a supervisor or compliance); the guardian may withdraw.
#[utoipa::path(post, path = "/v1/disputes/{id}/resolve", tag = "disputes", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ResolveInput, responses((status = 200, body = DisputeDetail)))]
async fn resolve(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::AGENT | who::SUPERVISOR | who::COMPLIANCE }>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ResolveInput>,
) -> ApiResult<Json<DisputeDetail>> {
    Ok(Json(disputes::resolve(&state, &caller, &id, input).await?))
}

/// One evidence file of a dispute (staff reads are audited).
#[utoipa::path(get, path = "/v1/disputes/{id}/evidence/{sha256}", tag = "disputes", security(("bearer" = [])),
    params(("id" = String, Path), ("sha256" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", description = "the file, as filed")))]
async fn evidence_file(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path((id, sha256)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (content_type, bytes) = disputes::evidence_file(&state, &caller, &id, &sha256).await?;
    // The hash was found among the dispute's files: hex, so a safe name.
    Ok(downloads::attachment(&content_type, &format!("evidence-{}", &sha256[..16]), bytes))
}

/// The dispute's dossier: a ZIP for a mediator (timeline in both languages,
/// the accepted terms, the ledger, every receipt with its proof in the
/// audit log, the evidence, a signed manifest). `baobao verify` checks it.
#[utoipa::path(get, path = "/v1/disputes/{id}/dossier", tag = "disputes", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, content_type = "application/zip", description = "the dossier")))]
async fn dossier(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (name, bytes) = crate::services::dispute_dossier::for_caller(&state, &caller, &id).await?;
    Ok(downloads::attachment(downloads::ZIP, &name, bytes))
}

/// A family's disputes, newest first.
#[utoipa::path(get, path = "/v1/families/{id}/disputes", tag = "disputes", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Vec<DisputeView>)))]
async fn family_disputes(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DisputeView>>> {
    let family_id = FamilyId::parse(&id).map_err(|_| ApiError::not_found("family"))?;
    Ok(Json(disputes::of_family(&state, &caller, &family_id).await?))
}

/// After the account closed: a one-time code to the given address, to file
/// with a kept receipt's number. The answer is the same for any number.
#[utoipa::path(post, path = "/v1/disputes/codes", tag = "disputes", request_body = FilingCodeInput,
    responses((status = 202, body = FilingCodeSent)))]
async fn send_filing_code(
    State(state): State<AppState>,
    Lang(locale): Lang,
    ApiJson(input): ApiJson<FilingCodeInput>,
) -> ApiResult<Response> {
    let sent = disputes::send_filing_code(&state, input, locale).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(sent)).into_response())
}

/// After the account closed: file with a kept receipt's number, the address
/// and the code sent there. Answers go to that address and the dispute's link.
#[utoipa::path(post, path = "/v1/disputes/by-receipt", tag = "disputes", request_body = ReceiptHolderDisputeInput,
    responses((status = 201, body = DisputeDetail)))]
async fn file_by_receipt(
    State(state): State<AppState>,
    Lang(locale): Lang,
    ApiJson(input): ApiJson<ReceiptHolderDisputeInput>,
) -> ApiResult<Response> {
    Ok(created(disputes::file_as_receipt_holder(&state, input, locale).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// `YYYY-MM` (the support office's time zone); this month when absent.
    month: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// The month's disputes by kind and outcome, the share settled from the
/// records and the deadlines missed (compliance and admin).
#[utoipa::path(get, path = "/v1/reports/disputes", tag = "disputes", security(("bearer" = [])), params(ReportQuery),
    responses((status = 200, body = DisputeReport), (status = 200, content_type = "text/csv", description = "with format=csv")))]
async fn report(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::COMPLIANCE | who::ADMIN }>,
    ApiQuery(query): ApiQuery<ReportQuery>,
) -> ApiResult<Response> {
    let report = disputes::report(&state, &caller, query.month.as_deref()).await?;
    match query.format.as_deref() {
        None | Some("json") => Ok(Json(report).into_response()),
        Some("csv") => {
            let csv = disputes::report_csv(&report).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(downloads::attachment(downloads::CSV, &format!("disputes-{}.csv", report.month), csv))
        }
        Some(_) => Err(ApiError::invalid_query("format", "one_of").with("allowed", "json, csv")),
    }
}
