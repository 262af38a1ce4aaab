//! Liveness and readiness for operators and load balancers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

#[derive(Serialize, ToSchema)]
struct Health {
    status: &'static str,
    database: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health { status: "ok", database: state.store.engine().name() })
}

/// The database answers and its schema is current.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = state.store.engine().name();
    match state.store.schema_is_current().await {
        Ok(true) => (StatusCode::OK, Json(Health { status: "ready", database })),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "schema_outdated", database })),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "database_unavailable", database })),
    }
}
