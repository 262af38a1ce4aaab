//! What an operator's Prometheus scrapes: every request counted and timed
//! by route and status, billing runs' steps counted, and, read at each
//! scrape, the outbox's depth and failures, refunds and fees pending, the
//! billing lag (the oldest due subscription), open and overdue disputes,
//! and the database pools' use. Served on its own address
//! (`--metrics-listen`), never on the public one.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

/// The process's one recorder (a process may build several apps, as the
/// tests do): installed on first use.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            .expect("fixed, non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder already installed (a test harness): ours still renders what it was given.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts and times every request by its route (the pattern, never the
/// ids in it), method and status.
pub async fn record(request: Request, next: Next) -> Response {
    handle();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("baobao_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("baobao_http_request_duration_seconds", "route" => route).record(started.elapsed());
    response
}

/// A billing run's steps, counted.
pub fn billing_run(summary: &crate::views::BillingRunSummary) {
    handle();
    for (step, count) in [
        ("renewed", summary.renewed),
        ("charge_declined", summary.charges_declined),
        ("cancellation_effective", summary.cancellations_effective),
        ("expired", summary.expired),
        ("refund_issued", summary.refunds_issued),
        ("fee_charged", summary.fees_charged),
        ("deletion_performed", summary.deletions_performed),
        ("reminder_sent", summary.reminders_sent),
        ("dispute_escalated", summary.disputes_escalated),
        ("money_failed", summary.money_failed),
    ] {
        metrics::counter!("baobao_billing_steps_total", "step" => step).increment(count);
    }
    metrics::counter!("baobao_billing_runs_total").increment(1);
}

/// The text a scrape gets: the counters and histograms, then the gauges
/// read from the database now.
pub async fn render(state: &AppState) -> String {
    let mut text = handle().render();
    match state.store.operator_gauges(state.clock.now()).await {
        Ok(gauges) => {
            for (name, value) in gauges {
                text.push_str(&format!("# TYPE baobao_{name} gauge\nbaobao_{name} {value}\n"));
            }
        }
        Err(error) => tracing::warn!(%error, "the operator's gauges could not be read"),
    }
    text.push_str("# TYPE baobao_db_connections gauge\n");
    for ((open, idle), pool) in state.store.pool_usage().into_iter().zip(["read", "write"]) {
        text.push_str(&format!("baobao_db_connections{{pool=\"{pool}\",state=\"open\"}} {open}\n"));
        text.push_str(&format!("baobao_db_connections{{pool=\"{pool}\",state=\"idle\"}} {idle}\n"));
    }
    text
}

async fn scrape(State(state): State<AppState>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&state).await)
        .into_response()
}

/// The metrics address's one route.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state(state)
}
