//! Families: sign-up, the family, its children, subscriptions, statement
//! and receipts.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use baobao_domain::ids::FamilyId;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiJson, ApiQuery, created};
use crate::auth;
use crate::auth::{Allowed, Role, who};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::withheld;
use crate::receipts::ReceiptDocument;
use crate::services::accounts;
use crate::services::accounts::SignUpInput;
use crate::services::money;
use crate::services::subscriptions;
use crate::state::AppState;
use crate::views::{FamilyView, SignUpView, StatementView, SubscriptionView};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_up, find_families))
        .routes(routes!(get_family))
        .routes(routes!(family_subscriptions))
        .routes(routes!(statement))
        .routes(routes!(family_receipts))
}

fn family_id(text: &str) -> ApiResult<FamilyId> {
    FamilyId::parse(text).map_err(|_| ApiError::not_found("family"))
}

/// Sign up: a new family with its first guardian, signed in.
#[utoipa::path(post, path = "/v1/families", tag = "families", request_body = SignUpInput,
    responses((status = 201, body = SignUpView), (status = 409, description = "email taken"), (status = 422, description = "invalid field")))]
async fn sign_up(State(state): State<AppState>, ApiJson(input): ApiJson<SignUpInput>) -> ApiResult<Response> {
    // The answer holds a session token, shown once.
    Ok(withheld(created(accounts::sign_up(&state, input).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FamilySearch {
    /// A family id, a receipt id or number (`BB-…`), or part of a guardian's
    /// email or name (at least 3 characters).
    q: Option<String>,
    /// A guardian's email address (the same as `q`).
    email: Option<String>,
}

/// Support: find families by id, receipt number, or part of a guardian's email or name, with their subscriptions.
#[utoipa::path(get, path = "/v1/families", tag = "support", security(("bearer" = [])), params(FamilySearch),
    responses((status = 200, body = Vec<crate::services::search::FamilyMatch>)))]
async fn find_families(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::STAFF }>,
    ApiQuery(query): ApiQuery<FamilySearch>,
) -> ApiResult<Json<Vec<crate::services::search::FamilyMatch>>> {
    let search = query.q.or(query.email).unwrap_or_default();
    Ok(Json(crate::services::search::find_families(&state, &caller, &search).await?))
}

#[utoipa::path(get, path = "/v1/families/{id}", tag = "families", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = FamilyView)))]
async fn get_family(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Json<FamilyView>> {
    Ok(Json(accounts::family(&state, &caller, &family_id(&id)?).await?))
}

#[utoipa::path(get, path = "/v1/families/{id}/subscriptions", tag = "families", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Vec<SubscriptionView>)))]
async fn family_subscriptions(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<SubscriptionView>>> {
    Ok(Json(subscriptions::family_subscriptions(&state, &caller, &family_id(&id)?).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StatementQuery {
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// The family's ledger: charges, refunds, fees and credits, oldest first.
#[utoipa::path(get, path = "/v1/families/{id}/statement", tag = "families", security(("bearer" = [])),
    params(("id" = String, Path), StatementQuery), responses((status = 200, body = StatementView), (status = 200, content_type = "text/csv", description = "with format=csv")))]
async fn statement(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::FINANCE }>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<StatementQuery>,
) -> ApiResult<Response> {
    let family_id = family_id(&id)?;
    caller.require_family(&family_id, &[Role::Finance], "family")?;
    let views = money::statement(&state, &family_id).await?;
    match query.format.as_deref() {
        None | Some("json") => {
            Ok(Json(StatementView { family_id: family_id.to_string(), entries: views }).into_response())
        }
        Some("csv") => {
            let csv = money::statement_csv(&views).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(crate::downloads::attachment(crate::downloads::CSV, &format!("statement-{family_id}.csv"), csv))
        }
        Some(_) => Err(ApiError::invalid_query("format", "one_of").with("allowed", "json, csv")),
    }
}

/// Every receipt issued to the family, oldest first.
#[utoipa::path(get, path = "/v1/families/{id}/receipts", tag = "families", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Vec<ReceiptDocument>)))]
async fn family_receipts(
    State(state): State<AppState>,
    Allowed(caller): Allowed<{ who::GUARDIAN | who::STAFF }>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ReceiptDocument>>> {
    let family_id = family_id(&id)?;
    caller.require_family(&family_id, auth::STAFF_READERS, "family")?;
    let mut documents = Vec::new();
    for stored in state.store.receipts_of(&family_id).await? {
        documents.push(serde_json::from_str(&stored.document).map_err(|e| ApiError::internal(e.to_string()))?);
    }
    Ok(Json(documents))
}
