//! The integrators' entitlement check, through a family's life.

use baobao_store::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

baobao_store::on_both_engines!(
    entitlement_follows_the_subscription_through_renewal_cancellation_and_the_end,
    a_cancellation_taking_effect_is_seen_by_the_next_check_on_every_server
);

async fn entitlement_follows_the_subscription_through_renewal_cancellation_and_the_end(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let key = app.api_key("edu").await;
    let check = |family: String| {
        let app = &app;
        let key = key.clone();
        async move { app.get(&format!("/v1/entitlements?family_id={family}&service=edu"), Some(&key)).await }
    };
    let before = check(parent.family_id.clone()).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert_eq!(before.body, json!({"entitled": false, "until": null, "status": "none"}));

    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let active = check(parent.family_id.clone()).await.body;
    assert_eq!(active, json!({"entitled": true, "until": "2027-02-10T02:00:00Z", "status": "active"}));

    // Past the period end without a billing run, nothing is promised.
    app.set_clock("2027-02-11T00:00:00Z").await;
    assert_eq!(check(parent.family_id.clone()).await.body["entitled"], false);
    app.billing_run().await;
    assert_eq!(check(parent.family_id.clone()).await.body["until"], "2027-03-10T02:00:00Z");

    app.cancel(&parent, &subscription_id, json!({"option": "end_of_period"})).await;
    let pending = check(parent.family_id.clone()).await.body;
    assert_eq!(pending, json!({"entitled": true, "until": "2027-03-10T02:00:00Z", "status": "pending_cancellation"}));
    app.set_clock("2027-03-10T02:00:00Z").await;
    assert_eq!(check(parent.family_id.clone()).await.body["entitled"], false);
    app.billing_run().await;
    assert_eq!(check(parent.family_id.clone()).await.body, json!({"entitled": false, "until": null, "status": "none"}));

    // Keys answer only for their own service, and only to integrators.
    let play = app.api_key("play").await;
    let wrong = app.get(&format!("/v1/entitlements?family_id={}&service=edu", parent.family_id), Some(&play)).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let guardian =
        app.get(&format!("/v1/entitlements?family_id={}&service=edu", parent.family_id), Some(&parent.token)).await;
    assert_eq!(guardian.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&format!("/v1/entitlements?family_id={}&service=edu", parent.family_id), None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let missing = app.get("/v1/entitlements?family_id=fam_nobody00000000000000&service=edu", Some(&key)).await;
    assert_eq!(missing.body["status"], "none");
    let malformed = app.get("/v1/entitlements?service=edu", Some(&key)).await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The check is answered from memory (`key_cache::EntitlementCache`); the
/// commit that ends a subscription ends what was kept at once, on the
/// server that made it and — told by PostgreSQL's NOTIFY — on the others.
async fn a_cancellation_taking_effect_is_seen_by_the_next_check_on_every_server(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({"allow_immediate": true, "refund_on_immediate": "prorated"})).await;
    let second = app.second_server().await;
    let key = app.api_key("edu").await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/entitlements?family_id={}&service=edu", parent.family_id);
    let on_second = || {
        let request = app.client.get(format!("{second}{path}")).bearer_auth(&key);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    // Both servers have read and kept it.
    for _ in 0..3 {
        assert_eq!(app.get(&path, Some(&key)).await.body["entitled"], true);
        assert_eq!(on_second().await["entitled"], true);
    }
    let told_before = app.state.store.subscriptions_epoch();
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    // The server that committed it: the very next check.
    assert_eq!(app.get(&path, Some(&key)).await.body, json!({"entitled": false, "until": null, "status": "none"}));
    assert!(app.state.store.subscriptions_epoch() > told_before);
    // The other server: on PostgreSQL told by NOTIFY, within moments; on
    // SQLite (one server per file) by the cache's two-second bound.
    let started = std::time::Instant::now();
    while on_second().await["entitled"] != false {
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "the second server kept the ended subscription");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if engine == Engine::Postgres {
        assert!(
            started.elapsed().as_millis() < baobao_server::key_cache::ENTITLEMENT_CACHE_MILLISECONDS,
            "told by NOTIFY, not by the cache's bound: {:?}",
            started.elapsed()
        );
    }
}
