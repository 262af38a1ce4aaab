//! The parent portal: server-rendered pages (askama templates, Fluent
//! text) on top of the same services the API uses. No JavaScript is
//! needed anywhere; every action is a plain form with a CSRF token.
//!
//! Cancelling takes three pages — the subscription, the options with their
//! quote, the receipt — and never more clicks than subscribing.

pub mod audit_page;
pub mod console;
pub mod once;
pub mod page;
pub mod pages;
pub mod public;
pub mod session;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The stylesheet and the one small script, compiled into the binary.
const PORTAL_CSS: &str = include_str!("../../assets/portal.css");
const PORTAL_JS: &str = include_str!("../../assets/portal.js");
/// The "check a receipt" page's own check, in the reader's browser.
const CHECK_JS: &str = include_str!("../../assets/check.js");

fn asset(content_type: &'static str, body: &'static str) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/portal.css", get(|| async { asset("text/css; charset=utf-8", PORTAL_CSS) }))
        .route("/assets/portal.js", get(|| async { asset("text/javascript; charset=utf-8", PORTAL_JS) }))
        .route("/assets/check.js", get(|| async { asset("text/javascript; charset=utf-8", CHECK_JS) }))
        .route("/", get(pages::home))
        .route("/lang", get(pages::switch_language))
        .route("/login", get(pages::login_page).post(pages::login))
        .route("/signup", get(pages::signup_page).post(pages::signup))
        .route("/logout", post(pages::logout))
        .route("/services", get(pages::services))
        .route("/services/{id}", get(pages::service))
        .route("/services/{id}/terms", get(pages::service_terms))
        .route("/services/{id}/cancel", get(pages::cancel_page).post(pages::cancel))
        .route("/services/{id}/resume", post(pages::resume))
        .route("/plans", get(pages::plans))
        .route("/plans/{id}", get(pages::plan_page).post(pages::subscribe))
        .route("/statement", get(pages::statement))
        .route("/statement.csv", get(pages::statement_csv))
        .route("/receipts", get(pages::receipts))
        .route("/receipts/{id}", get(pages::receipt))
        .route("/receipts/{id}/signed.json", get(pages::receipt_json))
        .route("/r/{id}/{token}", get(public::receipt))
        .route("/r/{id}/{token}/signed.json", get(public::receipt_json))
        .route(
            "/check",
            get(public::check_form)
                .post(public::check)
                .layer(axum::extract::DefaultBodyLimit::max(public::CHECK_REQUEST_BYTES_MAX)),
        )
        .route("/data", get(pages::data))
        .route("/data/exports", post(pages::request_export))
        .route("/data/exports/{id}", get(pages::download_export))
        .route("/data/deletion", post(pages::request_deletion))
        .route("/data/children", post(pages::add_child))
        .route("/data/children/{id}/remove", post(pages::remove_child))
        .route("/console", get(console::home))
        .route("/console/login", get(console::login_page).post(console::login))
        .route("/console/logout", post(console::logout))
        .route("/console/families/{id}", get(console::family))
        .route("/console/families/{id}/codes", post(console::send_code))
        .route("/console/subscriptions/{id}/cancel", get(console::cancel_page).post(console::cancel))
        .route(
            "/console/subscriptions/{id}/written-notice",
            get(console::notice_page)
                .post(console::register_notice)
                .layer(axum::extract::DefaultBodyLimit::max(crate::services::evidence::EVIDENCE_REQUEST_BYTES_MAX)),
        )
        .route("/console/written-notices", get(console::notices))
        .route("/console/webhooks", get(console::webhooks))
        .route("/console/finance", get(console::finance))
        .route("/console/audit", get(audit_page::audit))
        .route("/console/audit.csv", get(audit_page::audit_csv))
}
