//! The staff side: staff accounts, the support channel's one-time codes,
//! written notices, and the integrators' webhook endpoints with their
//! delivery logs.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use baobao_domain::ids::FamilyId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiJson, ApiQuery, created};
use crate::auth::{Allowed, Role, who};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::withheld;
use crate::services::accounts;
use crate::services::cancellations::{RegisteredNotice, WrittenNoticeInput};
use crate::services::evidence::EVIDENCE_REQUEST_BYTES_MAX;
use crate::services::notices::WrittenNoticeView;
use crate::services::verification::CodeSentView;
use crate::services::webhooks::{self, CreatedEndpoint, DeliveryView, EndpointInput, EndpointView};
use crate::services::{cancellations, evidence, notices, verification};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_staff))
        .routes(routes!(send_code))
        .routes(routes!(register_written_notice, written_notices))
        .layer(DefaultBodyLimit::max(EVIDENCE_REQUEST_BYTES_MAX))
        .routes(routes!(evidence))
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(deliveries))
        .routes(routes!(failed_payments))
}

/// Refunds and fees the payment gateway refused at every attempt, newest first: finance's queue.
#[utoipa::path(get, path = "/v1/finance/failed-payments", tag = "finance", security(("bearer" = [])),
    responses((status = 200, body = Vec<crate::services::money::FailedPaymentView>)))]
async fn failed_payments(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::FINANCE | who::ADMIN }>,
) -> ApiResult<Json<Vec<crate::services::money::FailedPaymentView>>> {
    Ok(Json(crate::services::money::failed_payments(&state, &caller).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffInput {
    pub email: String,
    pub password: String,
    /// `agent`, `supervisor`, `finance`, `compliance` or `admin`.
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffView {
    pub id: String,
    pub email: String,
    pub role: String,
}

/// Admins create staff accounts (as `baobao staff create` does).
#[utoipa::path(post, path = "/v1/staff", tag = "staff", security(("bearer" = [])), request_body = StaffInput,
    responses((status = 201, body = StaffView), (status = 409, description = "email taken")))]
async fn create_staff(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::ADMIN }>,
    ApiJson(input): ApiJson<StaffInput>,
) -> ApiResult<Response> {
    let id = accounts::create_staff(&state, &caller.actor(), &input.email, &input.password, &input.role).await?;
    let role = Role::parse(&input.role).map(Role::as_str).unwrap_or_default().to_owned();
    Ok(created(StaffView { id: id.to_string(), email: crate::fields::parse_email(&input.email)?, role }))
}

/// Support: send the family's guardians a one-time code to read out.
#[utoipa::path(post, path = "/v1/families/{id}/verification-codes", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 201, body = CodeSentView), (status = 429, description = "too many codes for this family just now")))]
async fn send_code(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::AGENT | who::SUPERVISOR }>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let family_id = FamilyId::parse(&id).map_err(|_| ApiError::not_found("family"))?;
    Ok(created(verification::send_code(&state, &caller, &family_id).await?))
}

/// Register a letter or email asking to cancel, with the scan as evidence:
/// returns the notice, the cancellation request and its signed receipt.
#[utoipa::path(post, path = "/v1/written-notices", tag = "support", security(("bearer" = [])), request_body = WrittenNoticeInput,
    responses((status = 201, body = RegisteredNotice), (status = 422, description = "date out of bounds, evidence not allowed")))]
async fn register_written_notice(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::AGENT | who::SUPERVISOR }>,
    ApiJson(input): ApiJson<WrittenNoticeInput>,
) -> ApiResult<Response> {
    Ok(created(cancellations::register_written_notice(&state, &caller, input).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct NoticeQuery {
    /// The day registered (`YYYY-MM-DD`, support office's time zone); today when absent.
    date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeQueue {
    pub date: String,
    pub written_notices: Vec<WrittenNoticeView>,
}

/// The written notices registered on one day: the supervisor's queue.
#[utoipa::path(get, path = "/v1/written-notices", tag = "support", security(("bearer" = [])), params(NoticeQuery),
    responses((status = 200, body = NoticeQueue)))]
async fn written_notices(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::AGENT | who::SUPERVISOR | who::COMPLIANCE | who::ADMIN }>,
    ApiQuery(query): ApiQuery<NoticeQuery>,
) -> ApiResult<Json<NoticeQueue>> {
    let (date, written_notices) = notices::notices_registered_on(&state, &caller, query.date.as_deref()).await?;
    Ok(Json(NoticeQueue { date: date.to_string(), written_notices }))
}

/// The notice's evidence file, as registered (audited).
#[utoipa::path(get, path = "/v1/written-notices/{id}/evidence", tag = "support", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, description = "the file")))]
async fn evidence(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::AGENT | who::SUPERVISOR | who::COMPLIANCE }>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (content_type, bytes) = evidence::evidence(&state, &caller, &id).await?;
    let mut response = bytes.into_response();
    let value = HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response.headers_mut().insert(header::CONTENT_TYPE, value);
    response.headers_mut().insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Admins register an integrator's webhook endpoint; the signing secret is shown once.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "integrators", security(("bearer" = [])), request_body = EndpointInput,
    responses((status = 201, body = CreatedEndpoint)))]
async fn create_endpoint(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::ADMIN }>,
    ApiJson(input): ApiJson<EndpointInput>,
) -> ApiResult<Response> {
    // The signing secret is shown once.
    Ok(withheld(created(webhooks::create_endpoint(&state, &caller, input).await?)))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "integrators", security(("bearer" = [])),
    responses((status = 200, body = Vec<EndpointView>)))]
async fn list_endpoints(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::STAFF }>,
) -> ApiResult<Json<Vec<EndpointView>>> {
    Ok(Json(webhooks::endpoints(&state, &caller).await?))
}

/// An endpoint's delivery log, newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "integrators", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Vec<DeliveryView>)))]
async fn deliveries(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    Ok(Json(webhooks::deliveries(&state, &caller, &id).await?))
}
