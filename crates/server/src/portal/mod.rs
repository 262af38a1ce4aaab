//! The parent portal: server-rendered pages (askama templates, Fluent
//! text) on top of the same services the API uses. No JavaScript is
//! needed anywhere; every action is a plain form with a CSRF token.
//!
//! Cancelling takes three pages — the subscription, the options with their
//! quote, the receipt — and never more clicks than subscribing.

pub mod audit_page;
pub mod console;
pub mod disputes_page;
pub mod once;
pub mod page;
pub mod pages;
pub mod public;
pub mod session;
pub mod staff;

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

/// Forms that carry evidence files: as much as any request may carry
/// (`idempotency::REQUEST_BODY_BYTES_HARD_MAX`, one full-size file and
/// change; more files go with further messages).
fn files() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(crate::services::evidence::EVIDENCE_REQUEST_BYTES_MAX)
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
        .route("/disputes", get(disputes_page::list).post(disputes_page::file).layer(files()))
        .route("/disputes/new", get(disputes_page::new_page))
        .route("/disputes/{id}", get(disputes_page::detail))
        .route("/disputes/{id}/messages", post(disputes_page::post_message).layer(files()))
        .route("/disputes/{id}/escalate", post(disputes_page::escalate))
        .route("/disputes/{id}/withdraw", post(disputes_page::withdraw))
        .route("/disputes/{id}/dossier.zip", get(disputes_page::dossier))
        .route("/disputes/{id}/evidence/{sha256}", get(disputes_page::evidence))
        .route("/d/{id}/{token}", get(disputes_page::linked))
        .route("/d/{id}/{token}/dossier.zip", get(disputes_page::linked_dossier))
        .route("/complain", get(disputes_page::complain_page).post(disputes_page::complain).layer(files()))
        .route("/complain/code", post(disputes_page::complain_code))
        .route("/console/disputes", get(disputes_page::queue))
        .route("/console/disputes/report", get(disputes_page::report))
        .route("/console/disputes/report.csv", get(disputes_page::report_csv))
        .route("/console/disputes/{id}", get(disputes_page::console_detail))
        .route("/console/disputes/{id}/messages", post(disputes_page::console_message).layer(files()))
        .route("/console/disputes/{id}/escalate", post(disputes_page::console_escalate))
        .route("/console/disputes/{id}/resolve", post(disputes_page::console_resolve))
        .route("/console/disputes/{id}/dossier.zip", get(disputes_page::console_dossier))
        .route("/console/disputes/{id}/evidence/{sha256}", get(disputes_page::console_evidence))
        .route(
            "/console/families/{id}/disputes",
            get(disputes_page::console_new).post(disputes_page::console_file).layer(files()),
        )
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
