//! Money moves through the gateway outside any database transaction, and a
//! refund is not "sent" until the gateway said so: written pending with the
//! cancellation, confirmed with the gateway's reference, or retried and,
//! after the last attempt, handed to finance — never shown as paid.

use baobao_server::services::money::{self, MONEY_ATTEMPTS_MAX};
use baobao_store::{Engine, MovementStatus};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, entries};

baobao_store::on_both_engines!(
    a_refund_the_gateway_accepts_is_shown_sent_with_its_reference,
    a_refused_refund_is_retried_then_escalated_and_never_shown_as_paid,
    a_refused_refund_that_goes_through_on_a_retry_is_sent_once,
    a_renewal_charge_holds_no_database_lock_while_the_gateway_answers,
    a_charge_declined_at_renewal_leaves_the_subscription_past_due,
    a_renewal_settled_by_a_request_while_the_run_asks_the_gateway_is_charged_once,
);

async fn fail_refunds(app: &TestApp, fail: bool) {
    let set =
        app.post("/v1/admin/gateway", Some(&app.admin), json!({"decline_charges": false, "fail_refunds": fail})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
}

/// Real time `seconds` ahead: when a retry is due.
fn later(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(seconds)).unwrap()
}

async fn a_refund_the_gateway_accepts_is_shown_sent_with_its_reference(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    // In the cooling-off period: everything paid comes back.
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    let statement = app.statement(&parent).await;
    let refund = entries(&statement, "refund")[0];
    assert_eq!(refund["status"], "succeeded", "{refund}");
    assert!(refund["gateway_reference"].as_str().unwrap().starts_with("sim:refund:"), "{refund}");
    assert_eq!(app.state.gateway.as_simulated().unwrap().net_taken_minor(), 0);
    let csv = app.client.get(format!("{}/v1/families/{}/statement?format=csv", app.address, parent.family_id));
    let csv = csv.bearer_auth(&parent.token).send().await.unwrap().text().await.unwrap();
    assert!(csv.lines().next().unwrap().ends_with("status,gateway_reference"), "{csv}");
    // The money that moved has its own signed receipt, with the gateway's reference.
    let receipts = app.get(&format!("/v1/families/{}/receipts", parent.family_id), Some(&parent.token)).await;
    let refund_receipt =
        receipts.body.as_array().unwrap().iter().find(|r| r["kind"] == "refund").expect("a refund receipt");
    assert_eq!(refund_receipt["body"]["gateway_reference"], refund["gateway_reference"]);
    assert_eq!(refund_receipt["body"]["refund"]["amount_minor"], 3900);
    app.assert_receipt_verifies(refund_receipt).await;
}

pub(crate) async fn a_refused_refund_is_retried_then_escalated_and_never_shown_as_paid(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    fail_refunds(&app, true).await;
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "the cancellation stands: {}", cancelled.body);
    let pending = entries(&app.statement(&parent).await, "refund")[0].clone();
    assert_eq!(pending["status"], "pending", "{pending}");
    assert!(pending["gateway_reference"].is_null());
    // Not before its time, then once per attempt until the last.
    assert_eq!(money::settle_due(&app.state, jiff::Timestamp::now()).await.unwrap().retrying, 0);
    let mut last = money::SettleReport::default();
    for attempt in 2..=MONEY_ATTEMPTS_MAX {
        last = money::settle_due(&app.state, later(7 * 3600 * attempt)).await.unwrap();
    }
    assert_eq!(last.failed, 1, "{last:?}");
    let failed = entries(&app.statement(&parent).await, "refund")[0].clone();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["gateway_reference"].is_null());
    // Nothing was paid out; finance has it; the guardian is told, in their language.
    assert_eq!(app.state.gateway.as_simulated().unwrap().net_taken_minor(), 3900);
    let queue = app.state.store.failed_movements(10).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].status, MovementStatus::Failed);
    assert_eq!(queue[0].attempts, MONEY_ATTEMPTS_MAX);
    let finance = app.staff("finance@example.com", "finance").await;
    let listed = app.get("/v1/finance/failed-payments", Some(&finance)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body[0]["family_id"], parent.family_id.as_str());
    assert_eq!(listed.body[0]["amount"]["amount_minor"], 3900);
    let family_id = baobao_domain::ids::FamilyId::parse(&parent.family_id).unwrap();
    let outbox = app.state.store.outbox_of(&family_id).await.unwrap();
    assert!(outbox.iter().any(|m| m.template == "refund_failed"), "the guardian is told");
    assert!(!outbox.iter().any(|m| m.template == "refund_issued"), "never told it was sent");
    // Failed is final: the worker does not pay it behind finance's back.
    fail_refunds(&app, false).await;
    assert_eq!(money::settle_due(&app.state, later(100 * 3600)).await.unwrap(), money::SettleReport::default());
}

async fn a_refused_refund_that_goes_through_on_a_retry_is_sent_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    fail_refunds(&app, true).await;
    app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    fail_refunds(&app, false).await;
    let report = money::settle_due(&app.state, later(3600)).await.unwrap();
    assert_eq!(report.succeeded, 1, "{report:?}");
    assert_eq!(money::settle_due(&app.state, later(7200)).await.unwrap(), money::SettleReport::default());
    let refund = entries(&app.statement(&parent).await, "refund")[0].clone();
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(app.state.gateway.as_simulated().unwrap().net_taken_minor(), 0);
    let family_id = baobao_domain::ids::FamilyId::parse(&parent.family_id).unwrap();
    let outbox = app.state.store.outbox_of(&family_id).await.unwrap();
    assert_eq!(outbox.iter().filter(|m| m.template == "refund_issued").count(), 1);
}

async fn a_renewal_charge_holds_no_database_lock_while_the_gateway_answers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    app.set_clock("2027-02-12T00:00:00Z").await;
    let gateway = app.state.gateway.as_simulated().unwrap();
    gateway.hold_charges(true);
    let state = app.state.clone();
    let run = tokio::spawn(async move { baobao_server::services::billing::run(&state, state.clock.now()).await });
    for _ in 0..1000 {
        if gateway.charges_waiting() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(gateway.charges_waiting(), 1, "the renewal is asking the gateway");
    // Meanwhile another family signs up and adds a child: on SQLite through
    // the one writer, which the renewal must not be holding.
    let other = app.sign_up("other@example.com").await;
    app.add_child(&other, "小红").await;
    gateway.hold_charges(false);
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.renewed, 1, "{summary:?}");
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 2);
    // The renewal's charge has a signed receipt of its own.
    let receipts = app.get(&format!("/v1/families/{}/receipts", parent.family_id), Some(&parent.token)).await;
    let charge = receipts.body.as_array().unwrap().iter().find(|r| r["kind"] == "charge").expect("a charge receipt");
    assert_eq!(charge["body"]["charge"]["amount_minor"], 3900);
    assert_eq!(charge["body"]["current_period"]["start"], "2027-02-10T02:00:00Z");
    app.assert_receipt_verifies(charge).await;
}

async fn a_charge_declined_at_renewal_leaves_the_subscription_past_due(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-02-12T00:00:00Z").await;
    app.post("/v1/admin/gateway", Some(&app.admin), json!({"decline_charges": true})).await;
    let run = app.billing_run().await;
    assert_eq!(run["charges_declined"], 1, "{run}");
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "past_due");
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 1, "no entry for the declined charge");
    assert_eq!(app.state.gateway.as_simulated().unwrap().net_taken_minor(), 3900);
}

/// A billing run's batch asks the gateway for a renewal while a request
/// brings the same subscription up to date (and asks for the same charge,
/// under the same key): whichever applies it second finds it applied, so
/// the period is charged once, nothing is voided, and the claim is gone.
async fn a_renewal_settled_by_a_request_while_the_run_asks_the_gateway_is_charged_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-02-12T00:00:00Z").await;
    let gateway = app.state.gateway.as_simulated().unwrap();
    gateway.hold_charges(true);
    let state = app.state.clone();
    let run = tokio::spawn(async move { baobao_server::services::billing::run(&state, state.clock.now()).await });
    let waiting = |n: usize| async move {
        for _ in 0..1000 {
            if gateway.charges_waiting() == n {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{n} charges never waited for the gateway");
    };
    waiting(1).await;
    let state = app.state.clone();
    let id = baobao_domain::ids::SubscriptionId::parse(&subscription_id).unwrap();
    let settle =
        tokio::spawn(async move { baobao_server::services::billing::settle(&state, &id, state.clock.now()).await });
    waiting(2).await;
    gateway.hold_charges(false);
    settle.await.unwrap().unwrap();
    let summary = run.await.unwrap().unwrap();
    assert!(summary.renewed <= 1, "{summary:?}");
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 2, "the sign-up's and the renewal's");
    assert_eq!(gateway.net_taken_minor(), 2 * 3900, "charged once, nothing voided");
    let subscription = app.subscription(&parent, &subscription_id).await;
    assert_eq!(subscription["status"], "active", "{subscription}");
    let due = app.state.store.due_count(app.state.clock.now()).await.unwrap();
    assert_eq!(due, 0);
}
