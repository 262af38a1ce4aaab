//! baobao's server: the HTTP API (axum) and the services behind it.
//!
//! `api/` has one module per resource, each with its `router()`; handlers
//! extract, call a service function, and serialize. `portal/` presents the
//! same services as pages. `services/` has one module per subject; they
//! orchestrate the domain rules and the store in explicit transactions.
//! `app` assembles everything, `serve` runs it with the `worker`. `error` maps every failure once onto a status,
//! a stable code and a message in the caller's locale. The clock, the
//! payment gateway and the signing keys are parts of `AppState`, chosen at
//! start-up.

pub mod api;
pub mod auth;
pub mod clock;
pub mod downloads;
pub mod error;
pub mod fields;
pub mod gateway;
pub mod headers;
pub mod i18n;
pub mod idempotency;
pub mod key_cache;
pub mod keys;
pub mod limits;
pub mod mail;
pub mod messages;
pub mod metrics;
pub mod portal;
pub mod random;
pub mod receipts;
pub mod retry;
pub mod sealed;
pub mod services;
pub mod shared_clock;
pub mod state;
pub mod vault;
pub mod views;
pub mod worker;

pub use state::{AppState, Parts, ServerConfig};

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::{Json, Router, middleware};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use tokio::net::TcpListener;

use crate::idempotency::{REQUEST_BODY_BYTES_MAX, idempotency};

pub use crate::state::REQUEST_TIMEOUT_SECONDS;

/// The whole app, assembled here and only here: the API's routes, the
/// portal's and the console's pages, the OpenAPI document, and the layers
/// every request passes through (outermost last).
pub fn app(state: AppState) -> Router {
    let (router, _) = api::openapi_router().split_for_parts();
    let document = std::sync::Arc::new(api::openapi_document());
    router
        .merge(portal::router())
        .route("/openapi.json", axum::routing::get(move || std::future::ready(Json(document.as_ref().clone()))))
        .layer(middleware::from_fn_with_state(state.clone(), idempotency))
        .layer(middleware::from_fn_with_state(state.clone(), crate::shared_clock::follow))
        .layer(middleware::from_fn_with_state(state.address_limits.clone(), crate::limits::per_address))
        // Bodies are 1 MiB at most, except where a route allows more (the
        // evidence of a written notice); nothing is ever read past the hard cap.
        .layer(axum::extract::DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(RequestBodyLimitLayer::new(crate::idempotency::REQUEST_BODY_BYTES_HARD_MAX))
        // Inside `localize`, so that a timed-out request gets the JSON error body too.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(REQUEST_TIMEOUT_SECONDS),
        ))
        .layer(middleware::from_fn(crate::error::localize))
        .layer(middleware::from_fn(crate::headers::security_headers))
        .layer(middleware::from_fn(crate::metrics::record))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Binds `listen` and serves until ctrl-c or SIGTERM; returns the bound
/// address through `on_bound` first (port 0 picks a free port).
pub async fn serve(state: AppState, listen: SocketAddr, on_bound: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    on_bound(listener.local_addr()?);
    tokio::spawn(services::exports::resume_pending(state.clone()));
    // Webhooks always; emails when a relay is configured (else they wait).
    tokio::spawn(worker::run(state.clone()));
    tokio::spawn(worker::append_log(state.clone()));
    if let Some(address) = state.config.metrics_listen {
        let metrics = TcpListener::bind(address).await?;
        let router = crate::metrics::router(state.clone());
        tokio::spawn(async move { axum::serve(metrics, router).await });
    }
    // The peer's address reaches the per-address limits on sign-ups and sign-ins.
    let grace = Duration::from_secs(state.config.shutdown_grace_seconds);
    let app = app(state).into_make_service_with_connect_info::<SocketAddr>();
    // On SIGTERM or ctrl-c: no new connections, requests in flight finish
    // (each is bounded by the request timeout), and after `grace` the
    // server returns whatever is still open (a client sending its request
    // slowly, an idle connection that never closes).
    let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
    let told = stopping.clone();
    let signal = async move {
        shutdown_signal().await;
        told.notify_one();
    };
    let serving = axum::serve(listener, app).with_graceful_shutdown(signal);
    tokio::select! {
        served = serving => served,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(seconds = grace.as_secs(), "stopped with connections still open after the grace period");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
