//! baobao's server: the HTTP API (axum) and the services behind it.
//!
//! `api/` has one module per resource, each with its `router()`; handlers
//! extract, call a service function, and serialize. The services
//! (`lifecycle`, `billing`) orchestrate the domain rules and the store in
//! explicit transactions. `error` maps every failure once onto a status,
//! a stable code and a message in the caller's locale. The clock, the
//! payment gateway and the signing keys are parts of `AppState`, chosen at
//! start-up.

pub mod api;
pub mod auth;
pub mod clock;
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
pub mod portal;
pub mod random;
pub mod receipts;
pub mod retry;
pub mod services;
pub mod state;
pub mod vault;
pub mod views;
pub mod worker;

pub use state::{AppState, Parts, ServerConfig};

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Binds `listen` and serves until ctrl-c or SIGTERM; returns the bound
/// address through `on_bound` first (port 0 picks a free port).
pub async fn serve(state: AppState, listen: SocketAddr, on_bound: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    on_bound(listener.local_addr()?);
    tokio::spawn(services::exports::resume_pending(state.clone()));
    // Webhooks always; emails when a relay is configured (else they wait).
    tokio::spawn(worker::run(state.clone()));
    // The peer's address reaches the per-address limits on sign-ups and sign-ins.
    let app = api::app(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await
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
