//! The subscription's life told as stories: sign up, subscribe, renew,
//! quote, cancel, settle — and every figure checked against the ledger.

use baobao_store::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, amount, entries, option};

baobao_store::on_both_engines!(
    the_whole_story_from_sign_up_to_the_last_charge,
    cancelling_now_refunds_exactly_what_the_quote_promised,
    a_request_after_the_notice_deadline_costs_one_renewal_and_the_quote_says_so,
    a_request_exactly_at_the_notice_deadline_is_in_time,
    receipts_and_emails_name_the_provider_the_operator_configured,
    cancelling_at_the_instant_the_period_began_refunds_its_charge_once,
    cancelling_in_the_cooling_off_period_refunds_everything,
    resuming_withdraws_the_cancellation_and_renewals_go_on,
    billing_runs_are_idempotent_and_catch_up_on_missed_periods,
    a_declined_renewal_is_past_due_until_a_retry_succeeds,
    leaving_inside_the_commitment_costs_the_quoted_fee_and_no_more,
    a_new_policy_version_leaves_existing_subscriptions_on_their_terms,
    the_statement_downloads_as_csv,
);

pub(crate) async fn the_whole_story_from_sign_up_to_the_last_charge(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscribed = app.subscribe(&parent, &plan).await;
    let subscription_id = subscribed["subscription"]["id"].as_str().unwrap().to_owned();
    assert_eq!(subscribed["subscription"]["status"], "active");
    assert_eq!(subscribed["receipt"]["body"]["policy_sha256"], plan["policy"]["sha256"]);
    app.assert_receipt_verifies(&subscribed["receipt"]).await;

    // A month later the renewal runs.
    app.set_clock("2027-02-12T00:00:00Z").await;
    let run = app.billing_run().await;
    assert_eq!(run["renewed"], 1, "{run}");
    let current = app.subscription(&parent, &subscription_id).await;
    assert_eq!(current["current_period"]["start"], "2027-02-10T02:00:00Z");
    assert_eq!(current["notice_deadline"], "2027-03-03T02:00:00Z");

    // The parent asks what leaving costs, and leaves at the end of the period.
    let quote = app.quote(&parent, &subscription_id).await;
    let end = option(&quote, "end_of_period");
    assert_eq!(end["effective_at"], "2027-03-10T02:00:00Z");
    assert_eq!(end["renewals_before_effective"], 0);
    assert_eq!(end["fee"]["amount_minor"], 0);
    let cancelled = app
        .cancel(
            &parent,
            &subscription_id,
            json!({"option": "end_of_period", "quote_id": quote["id"], "reason": {"category": "child_outgrew"}}),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    let cancellation = &cancelled.body["cancellation"];
    assert_eq!(cancellation["status"], "scheduled");
    assert_eq!(cancellation["effective_at"], "2027-03-10T02:00:00Z");
    assert_eq!(cancellation["channel"], "self_service");
    assert!(cancelled.body["receipt"]["body"]["receipt_number"].as_str().unwrap().starts_with("BB-20270212-"));
    app.assert_receipt_verifies(&cancelled.body["receipt"]).await;
    let receipt_id = cancelled.body["receipt"]["id"].as_str().unwrap();
    let fetched = app.get(&format!("/v1/receipts/{receipt_id}"), Some(&parent.token)).await;
    assert_eq!(fetched.body, cancelled.body["receipt"]);
    let detail =
        app.get(&format!("/v1/cancellations/{}", cancellation["id"].as_str().unwrap()), Some(&parent.token)).await;
    assert_eq!(detail.body["cancellation"]["status"], "scheduled");

    // Past effective_at the run ends it; a year on, nothing more is charged.
    app.set_clock("2027-03-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["cancellations_effective"], 1);
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "cancelled");
    app.set_clock("2028-03-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["steps"], 0);
    let statement = app.statement(&parent).await;
    let charges = entries(&statement, "charge");
    assert_eq!(charges.len(), 2, "{statement:?}");
    assert!(charges.iter().all(|c| c["period_start"].as_str().unwrap() < "2027-03-10T02:00:00Z"));
    assert!(entries(&statement, "refund").is_empty());
    let detail =
        app.get(&format!("/v1/cancellations/{}", cancellation["id"].as_str().unwrap()), Some(&parent.token)).await;
    assert_eq!(detail.body["cancellation"]["status"], "effective");
}

async fn cancelling_now_refunds_exactly_what_the_quote_promised(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-25T02:00:00Z").await;
    let quote = app.quote(&parent, &subscription_id).await;
    let now = option(&quote, "now");
    // 16 of 31 days unused: 3900 × 16/31 = 2012.9 → 2013, rounded for the parent.
    assert_eq!(now["refund"]["amount_minor"], 2013);
    // The request comes a few minutes later; the quote still binds.
    app.set_clock("2027-01-25T02:10:00Z").await;
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "now", "quote_id": quote["id"]})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    assert_eq!(cancelled.body["cancellation"]["refund"]["amount_minor"], 2013);
    assert_eq!(cancelled.body["cancellation"]["status"], "effective");
    let statement = app.statement(&parent).await;
    let refunds = entries(&statement, "refund");
    assert_eq!(refunds.len(), 1);
    assert_eq!(amount(refunds[0]), 2013);
    // No renewal ever after.
    app.set_clock("2027-06-01T00:00:00Z").await;
    app.billing_run().await;
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 1);
    // An expired quote is refused instead of silently re-priced.
    let other = app.sign_up("other@example.com").await;
    let other_id = app.subscribe(&other, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-06-10T00:00:00Z").await;
    let old_quote = app.quote(&other, &other_id).await;
    app.set_clock("2027-06-10T02:00:00Z").await;
    let late = app.cancel(&other, &other_id, json!({"option": "now", "quote_id": old_quote["id"]})).await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert_eq!(late.body["error"]["code"], "quote_expired");
}

async fn a_request_after_the_notice_deadline_costs_one_renewal_and_the_quote_says_so(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    // The deadline for the first period is 3 Feb 02:00; this is two days late.
    app.set_clock("2027-02-05T00:00:00Z").await;
    let quote = app.quote(&parent, &subscription_id).await;
    let end = option(&quote, "end_of_period");
    assert_eq!(end["effective_at"], "2027-03-10T02:00:00Z");
    assert_eq!(end["renewals_before_effective"], 1);
    assert!(end["explanation"].as_str().unwrap().contains("2027-02-03"), "{end}");
    app.cancel(&parent, &subscription_id, json!({"option": "end_of_period"})).await;
    app.set_clock("2027-02-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["renewed"], 1);
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "pending_cancellation");
    app.set_clock("2027-03-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["cancellations_effective"], 1);
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 2);
}

async fn receipts_and_emails_name_the_provider_the_operator_configured(engine: Engine) {
    let app = TestApp::spawn_configured(engine, |config| {
        config.provider = baobao_domain::receipt::Provider {
            legal_name: "Example Kids Ltd.".into(),
            support_email: Some("help@kids.example".into()),
            support_phone: None,
            postal_address: None,
            complaints: Some("the consumer mediation board".into()),
        };
    })
    .await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscribed = app.subscribe(&parent, &plan).await;
    let provider = &subscribed["receipt"]["body"]["provider"];
    assert_eq!(provider["legal_name"], "Example Kids Ltd.", "{subscribed}");
    assert_eq!(provider["complaints"], "the consumer mediation board");
    app.assert_receipt_verifies(&subscribed["receipt"]).await;
    let email = app.queued_email(&parent, "subscription_confirmed", baobao_domain::Locale::En).await;
    assert!(email.contains("Example Kids Ltd.") && email.contains("Questions: help@kids.example"), "{email}");
}

/// The simulated clock stands still, so the deadline itself can be reached:
/// a request at that very instant is still in time (no further renewal).
async fn a_request_exactly_at_the_notice_deadline_is_in_time(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let deadline = app.subscription(&parent, &subscription_id).await["notice_deadline"].as_str().unwrap().to_owned();
    app.set_clock(&deadline).await;
    assert_eq!(
        app.subscription(&parent, &subscription_id).await["notice_deadline"],
        deadline.as_str(),
        "time stood still"
    );
    let end = option(&app.quote(&parent, &subscription_id).await, "end_of_period").clone();
    assert_eq!(
        (end["effective_at"].as_str(), end["renewals_before_effective"].as_i64()),
        (Some("2027-02-10T02:00:00Z"), Some(0))
    );
    app.cancel(&parent, &subscription_id, json!({"option": "end_of_period"})).await;
    app.set_clock("2027-02-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["renewed"], 0);
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 1);
}

/// A request at the very instant its period began is in that period: the
/// quote settles the period's charge, and nothing refunds it a second time.
async fn cancelling_at_the_instant_the_period_began_refunds_its_charge_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let quoted = option(&app.quote(&parent, &subscription_id).await, "now")["refund"]["amount_minor"].as_i64().unwrap();
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    let statement = app.statement(&parent).await;
    let refunded: i64 = entries(&statement, "refund").iter().map(|e| amount(e)).sum();
    assert_eq!((refunded, entries(&statement, "refund").len()), (quoted, 1), "{statement:?}");
}

async fn cancelling_in_the_cooling_off_period_refunds_everything(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-12T00:00:00Z").await;
    let quote = app.quote(&parent, &subscription_id).await;
    assert_eq!(quote["options"].as_array().unwrap().len(), 1);
    assert_eq!(option(&quote, "now")["refund"]["amount_minor"], 3900);
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    let statement = app.statement(&parent).await;
    let paid: i64 = entries(&statement, "charge").iter().map(|e| amount(e)).sum();
    let refunded: i64 = entries(&statement, "refund").iter().map(|e| amount(e)).sum();
    assert_eq!((paid, refunded), (3900, 3900));
}

pub(crate) async fn resuming_withdraws_the_cancellation_and_renewals_go_on(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-20T00:00:00Z").await;
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "end_of_period"})).await;
    let cancellation_id = cancelled.body["cancellation"]["id"].as_str().unwrap().to_owned();
    let resumed =
        app.post(&format!("/v1/subscriptions/{subscription_id}/resume"), Some(&parent.token), json!({})).await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert_eq!(resumed.body["subscription"]["status"], "active");
    assert_eq!(resumed.body["receipt"]["kind"], "withdrawal");
    app.assert_receipt_verifies(&resumed.body["receipt"]).await;
    let detail = app.get(&format!("/v1/cancellations/{cancellation_id}"), Some(&parent.token)).await;
    assert_eq!(detail.body["cancellation"]["status"], "withdrawn");
    let again = app.post(&format!("/v1/subscriptions/{subscription_id}/resume"), Some(&parent.token), json!({})).await;
    assert_eq!(again.body["error"]["code"], "nothing_to_resume");
    app.set_clock("2027-02-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["renewed"], 1);
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "active");
    // And a new cancellation can be filed after a withdrawal.
    let again = app.cancel(&parent, &subscription_id, json!({"option": "end_of_period"})).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}

async fn billing_runs_are_idempotent_and_catch_up_on_missed_periods(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    // Nobody ran billing for five months: one run catches up, one charge per period.
    app.set_clock("2027-06-11T00:00:00Z").await;
    let first = app.billing_run().await;
    assert_eq!(first["renewed"], 5, "{first}");
    let second = app.billing_run().await;
    assert_eq!(second["steps"], 0, "{second}");
    let charges = entries(&app.statement(&parent).await, "charge").len();
    assert_eq!(charges, 6);
    let mut starts: Vec<String> = entries(&app.statement(&parent).await, "charge")
        .iter()
        .map(|c| c["period_start"].as_str().unwrap().to_owned())
        .collect();
    starts.dedup();
    assert_eq!(starts.len(), 6, "one charge per period");
}

pub(crate) async fn a_declined_renewal_is_past_due_until_a_retry_succeeds(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.post("/v1/admin/gateway", Some(&app.admin), json!({"decline_charges": true})).await;
    app.set_clock("2027-02-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["charges_declined"], 1);
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "past_due");
    app.post("/v1/admin/gateway", Some(&app.admin), json!({"decline_charges": false})).await;
    app.set_clock("2027-02-12T01:00:00Z").await;
    assert_eq!(app.billing_run().await["renewed"], 1);
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "active");
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 2);
    // A first charge that is declined leaves nothing behind.
    app.post("/v1/admin/gateway", Some(&app.admin), json!({"decline_charges": true})).await;
    let other = app.sign_up("other@example.com").await;
    let declined = app
        .post(
            "/v1/subscriptions",
            Some(&other.token),
            json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]}),
        )
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    let listed = app.get(&format!("/v1/families/{}/subscriptions", other.family_id), Some(&other.token)).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 0);
}

async fn leaving_inside_the_commitment_costs_the_quoted_fee_and_no_more(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app
        .create_plan(json!({
            "price": {"amount_minor": 2900, "currency": "CNY"},
            "commitment_periods": 12,
            "early_termination_fee": {"fixed": {"amount_minor": 10000, "currency": "CNY"}},
            "cooling_off_days": 0,
            "allow_immediate": false,
            "notice_days": 14,
        }))
        .await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-15T00:00:00Z").await;
    let quote = app.quote(&parent, &subscription_id).await;
    assert_eq!(option(&quote, "end_of_period")["fee"]["amount_minor"], 10000);
    let commitment = option(&quote, "end_of_commitment");
    assert_eq!(commitment["fee"]["amount_minor"], 0);
    assert_eq!(commitment["renewals_before_effective"], 11);
    // What staying costs, beside what leaving early costs: 11 × 29.00 = 319.00.
    assert_eq!(commitment["renewals_cost"]["amount_minor"], 31900);
    assert_eq!(option(&quote, "end_of_period")["renewals_cost"]["amount_minor"], 0);
    assert!(quote["options"].as_array().unwrap().iter().all(|o| o["option"] != "now"));
    let refused = app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    assert_eq!(refused.body["error"]["code"], "option_not_available");
    let cancelled =
        app.cancel(&parent, &subscription_id, json!({"option": "end_of_period", "quote_id": quote["id"]})).await;
    assert_eq!(cancelled.body["cancellation"]["fee"]["amount_minor"], 10000);
    app.set_clock("2027-02-11T00:00:00Z").await;
    let run = app.billing_run().await;
    assert_eq!((run["cancellations_effective"].as_i64(), run["fees_charged"].as_i64()), (Some(1), Some(1)), "{run}");
    let statement = app.statement(&parent).await;
    assert_eq!(entries(&statement, "fee").iter().map(|e| amount(e)).sum::<i64>(), 10000);
    assert_eq!(entries(&statement, "charge").len(), 1);
    // The "it has ended" email says the fee was taken, not "nothing more will be charged".
    let ended = app.queued_email(&parent, "cancellation_effective", baobao_domain::Locale::En).await;
    assert!(ended.contains("100.00") && !ended.contains("Nothing more will be charged"), "{ended}");
    // Once the gateway took the fee, it has its own receipt and email.
    let receipts = app.get(&format!("/v1/families/{}/receipts", parent.family_id), Some(&parent.token)).await;
    let fee = receipts.body.as_array().unwrap().iter().find(|r| r["kind"] == "fee").expect("a fee receipt");
    app.assert_receipt_verifies(fee).await;
    let told = app.queued_email(&parent, "fee_charged", baobao_domain::Locale::En).await;
    let (number, reference) =
        (fee["body"]["receipt_number"].as_str().unwrap(), fee["body"]["gateway_reference"].as_str().unwrap());
    assert!(told.contains("100.00 CNY") && told.contains(number) && told.contains(reference), "{told}");
}

pub(crate) async fn a_new_policy_version_leaves_existing_subscriptions_on_their_terms(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    let mut terms = plan["policy"].clone();
    for field in ["version", "sha256"] {
        terms.as_object_mut().unwrap().remove(field);
    }
    terms["price"]["amount_minor"] = 4900.into();
    let published = app
        .post(
            &format!("/v1/plans/{}/policies", plan["id"].as_str().unwrap()),
            Some(&app.admin),
            json!({"policy": terms}),
        )
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.body);
    assert_eq!(published.body["policy"]["version"], 2);
    // The old hash no longer subscribes anyone; the new one does, at the new price.
    let newcomer = app.sign_up("new@example.com").await;
    let stale = app
        .post(
            "/v1/subscriptions",
            Some(&newcomer.token),
            json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.body["error"]["details"]["current"], published.body["policy"]["sha256"]);
    app.subscribe(&newcomer, &published.body).await;
    // The first family renews at the price it accepted.
    app.set_clock("2027-02-11T00:00:00Z").await;
    app.billing_run().await;
    let charges: Vec<i64> = entries(&app.statement(&parent).await, "charge").iter().map(|e| amount(e)).collect();
    assert_eq!(charges, vec![3900, 3900]);
    let charges: Vec<i64> = entries(&app.statement(&newcomer).await, "charge").iter().map(|e| amount(e)).collect();
    assert_eq!(charges, vec![4900, 4900]);
}

async fn the_statement_downloads_as_csv(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    let response =
        app.get(&format!("/v1/families/{}/statement?format=csv", parent.family_id), Some(&parent.token)).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = response.body.as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id,created_at,kind,amount_minor,currency,subscription_id,period_start,period_end,note,status,gateway_reference"
    );
    assert!(lines[1].contains(",charge,3900,CNY,"), "{text}");
}
