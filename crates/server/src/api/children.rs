//! Children's data: API keys, children, records, exports, deletions.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use baobao_domain::ids::FamilyId;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiJson, ApiQuery, created};
use crate::auth::{Allowed, Role, who};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::withheld;
use crate::receipts::ReceiptDocument;
use crate::services::children::ChildInput;
use crate::services::children::{self, ApiKeyCreated, ApiKeyInput, RecordCreated, RecordInput, RecordPage};
use crate::services::deletion::{self, DeletionInput, DeletionView};
use crate::services::exports::{self, ExportView};
use crate::state::AppState;
use crate::views::ChildView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key))
        .routes(routes!(list_children, add_child))
        .routes(routes!(write_record, read_records))
        .routes(routes!(request_export, list_exports))
        .routes(routes!(get_export))
        .routes(routes!(download_export))
        .routes(routes!(request_deletion))
        .routes(routes!(get_deletion))
        .routes(routes!(get_certificate))
}

fn family_id(text: &str) -> ApiResult<FamilyId> {
    FamilyId::parse(text).map_err(|_| ApiError::not_found("family"))
}

/// Create an API key for an integrator, scoped to one service (admin). The key is shown once.
#[utoipa::path(post, path = "/v1/api-keys", tag = "children", security(("bearer" = [])), request_body = ApiKeyInput,
    responses((status = 201, body = ApiKeyCreated)))]
async fn create_api_key(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::ADMIN }>,
    ApiJson(input): ApiJson<ApiKeyInput>,
) -> ApiResult<Response> {
    // The key is shown once.
    Ok(withheld(created(children::create_api_key(&state, &caller, input).await?)))
}

/// The family's children.
#[utoipa::path(get, path = "/v1/families/{id}/children", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Vec<ChildView>)))]
async fn list_children(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::AGENT | who::SUPERVISOR | who::COMPLIANCE | who::ADMIN }>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ChildView>>> {
    Ok(Json(children::children_of(&state, &caller, &family_id(&id)?).await?))
}

/// Add a child, with the guardian's recorded consent.
#[utoipa::path(post, path = "/v1/families/{id}/children", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ChildInput, responses((status = 201, body = ChildView)))]
async fn add_child(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN }>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ChildInput>,
) -> ApiResult<Response> {
    Ok(created(crate::services::children::add_child(&state, &caller, &family_id(&id)?, input).await?))
}

/// Write a record for a child (integrators, with a key for a service the family subscribes to).
#[utoipa::path(post, path = "/v1/children/{id}/records", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = RecordInput, responses((status = 201, body = RecordCreated)))]
async fn write_record(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::INTEGRATOR }>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RecordInput>,
) -> ApiResult<Response> {
    Ok(created(children::write_record(&state, &caller, &id, input).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RecordsQuery {
    /// The `next` cursor of the previous page.
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<i64>,
    /// Staff (compliance) only, required: why the records are read. Audited.
    reason: Option<String>,
}

/// A child's records, oldest first, for the family's guardians and, with a reason, compliance staff.
#[utoipa::path(get, path = "/v1/children/{id}/records", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path), RecordsQuery), responses((status = 200, body = RecordPage)))]
async fn read_records(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::COMPLIANCE }>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RecordsQuery>,
) -> ApiResult<Json<RecordPage>> {
    Ok(Json(
        children::read_records(&state, &caller, &id, query.after.as_deref(), query.limit, query.reason.as_deref())
            .await?,
    ))
}

/// Ask for a data export (a ZIP built in the background).
#[utoipa::path(post, path = "/v1/families/{id}/exports", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 202, body = ExportView)))]
async fn request_export(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN }>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let view = exports::request(&state, &caller, &family_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

#[utoipa::path(get, path = "/v1/families/{id}/exports", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Vec<ExportView>)))]
async fn list_exports(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN }>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ExportView>>> {
    Ok(Json(exports::list(&state, &caller, &family_id(&id)?).await?))
}

/// An export's status: `pending`, `ready` or `failed`.
#[utoipa::path(get, path = "/v1/exports/{id}", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = ExportView)))]
async fn get_export(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN }>,
    Path(id): Path<String>,
) -> ApiResult<Json<ExportView>> {
    Ok(Json(ExportView::from(&exports::get(&state, &caller, &id).await?)))
}

/// Download a ready export (streamed).
#[utoipa::path(get, path = "/v1/exports/{id}/download", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, content_type = "application/zip", description = "the ZIP"),
        (status = 410, body = crate::error::ErrorBody, description = "expired, or a deletion covered its data")))]
async fn download_export(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN }>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let export = exports::get(&state, &caller, &id).await?;
    serve_export(&state, &export)
}

/// Streams a ready export, unsealed as it is read (in bounded memory, off
/// the async threads); also used by the portal. An expired or deleted
/// export is 410 Gone.
pub fn serve_export(state: &AppState, export: &baobao_store::Export) -> ApiResult<Response> {
    let mut reader = exports::open(state, export)?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<axum::body::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        loop {
            let next = match reader.next_chunk() {
                Ok(Some(chunk)) => Ok(axum::body::Bytes::from(chunk)),
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "an export did not unseal while it was downloaded");
                    Err(error)
                }
            };
            let failed = next.is_err();
            if sender.blocking_send(next).is_err() || failed {
                break;
            }
        }
    });
    let mut response = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(receiver)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    if let Some(size) = export.size_bytes {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"baobao-export-{}.zip\"", export.id)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Delete the children's data (one service, or all): performed now; the answer carries the signed certificate.
#[utoipa::path(post, path = "/v1/families/{id}/deletion-requests", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = DeletionInput, responses((status = 201, body = DeletionView)))]
async fn request_deletion(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN }>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DeletionInput>,
) -> ApiResult<Response> {
    Ok(created(deletion::request(&state, &caller, &family_id(&id)?, input).await?))
}

#[utoipa::path(get, path = "/v1/deletion-requests/{id}", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = DeletionView)))]
async fn get_deletion(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::COMPLIANCE }>,
    Path(id): Path<String>,
) -> ApiResult<Json<DeletionView>> {
    Ok(Json(deletion::get(&state, &caller, &id).await?))
}

/// A deletion certificate: a signed receipt of kind `deletion_certificate`.
#[utoipa::path(get, path = "/v1/deletion-certificates/{id}", tag = "children", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = ReceiptDocument)))]
async fn get_certificate(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::COMPLIANCE }>,
    Path(id): Path<String>,
) -> ApiResult<Json<ReceiptDocument>> {
    Ok(Json(
        crate::services::receipts::receipt_for(&state, &caller, &id, Some("deletion_certificate"), &[Role::Compliance])
            .await?,
    ))
}
