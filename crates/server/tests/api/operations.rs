//! The operator's view: what Prometheus scrapes after a day's work.

use baobao_store::Engine;
use serde_json::json;

use crate::helpers::TestApp;

baobao_store::on_both_engines!(metrics_count_requests_by_route_and_show_the_queues_and_the_billing_lag);

fn value_of(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

async fn metrics_count_requests_by_route_and_show_the_queues_and_the_billing_lag(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.get(&format!("/v1/subscriptions/{subscription}"), Some(&parent.token)).await;
    // A month on, before the billing run: one subscription due (its renewal
    // reminder first), waiting since the reminder was due.
    app.set_clock("2027-02-10T03:00:00Z").await;
    let text = baobao_server::metrics::render(&app.state).await;
    assert_eq!(value_of(&text, "baobao_billing_due "), Some(1.0), "{text}");
    assert!(value_of(&text, "baobao_billing_lag_seconds ").unwrap() >= 3600.0, "{text}");
    assert!(value_of(&text, "baobao_outbox_pending ").unwrap() >= 1.0, "the confirmation email waits: {text}");
    app.billing_run().await;
    let text = baobao_server::metrics::render(&app.state).await;
    assert_eq!(value_of(&text, "baobao_billing_due "), Some(0.0), "{text}");
    assert_eq!(value_of(&text, "baobao_billing_lag_seconds "), Some(0.0));
    assert!(value_of(&text, "baobao_billing_steps_total{step=\"renewed\"}").unwrap() >= 1.0, "{text}");
    // Routes are counted by their pattern, never by the ids in them.
    assert!(text.contains("route=\"/v1/subscriptions/{id}\""), "{text}");
    assert!(!text.contains(&subscription), "no id in a label");
    assert!(text.contains("baobao_http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("baobao_db_connections{pool=\"write\",state=\"open\"}"), "{text}");
    assert!(text.contains("baobao_disputes_overdue 0"), "{text}");
}
