//! Sessions: sign in and sign out.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::{ApiJson, created};
use crate::auth::{Allowed, who};
use crate::error::{ApiError, ApiResult};
use crate::idempotency::withheld;
use crate::random::token_hash;
use crate::services::accounts;
use crate::services::accounts::SignInInput;
use crate::state::AppState;
use crate::views::SessionView;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sign_in)).routes(routes!(sign_out))
}

/// Sign in with email and password (guardians; staff with `"realm": "staff"`).
#[utoipa::path(post, path = "/v1/auth/sessions", tag = "auth", request_body = SignInInput,
    responses((status = 201, body = SessionView), (status = 401, description = "wrong email or password")))]
async fn sign_in(State(state): State<AppState>, ApiJson(input): ApiJson<SignInInput>) -> ApiResult<Response> {
    // The session token is shown once: a retry with the key is told "already done".
    Ok(withheld(created(accounts::sign_in(&state, input).await?)))
}

/// Sign out: the bearer token stops working.
#[utoipa::path(delete, path = "/v1/auth/sessions/current", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "signed out")))]
async fn sign_out(
    State(state): State<AppState>,
    _signed_in: Allowed<{ who::ANYONE_SIGNED_IN }>,
    headers: axum::http::HeaderMap,
) -> ApiResult<StatusCode> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthenticated)?;
    let mut tx = state.store.begin().await?;
    tx.delete_session(&token_hash(token.trim())).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
