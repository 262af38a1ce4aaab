//! Many parents at the same moment: a burst of sign-ups, subscriptions and
//! cancellations (each family its own) all succeed, and a double-click on
//! Subscribe makes one subscription and one charge. Every request here
//! writes in a transaction that also queues a webhook, which is where the
//! server once wedged: code inside the transaction took a second pooled
//! connection, and 8 concurrent writers held all 8 while each waited for
//! a ninth.

use baobao_store::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::helpers::{Guardian, TestApp, entries};

baobao_store::on_both_engines!(
    a_burst_of_sixty_four_parents_subscribing_and_cancelling_at_once_all_succeed,
    a_double_click_on_subscribe_makes_one_subscription_and_one_charge,
    an_overloaded_database_is_a_503_with_retry_after_and_changes_nothing,
    two_servers_on_one_database_keep_one_simulated_clock,
    two_servers_and_four_billing_runs_with_cancellations_arriving_charge_each_period_once,
);

/// Parents acting at the same instant.
const BURST_PARENTS: usize = 64;

/// POSTs `bodies[i]` to `paths[i]` as `tokens[i]`, all at once; the statuses and bodies in order.
async fn all_at_once(app: &TestApp, requests: Vec<(String, Option<String>, Value)>) -> Vec<(StatusCode, Value)> {
    let mut set = JoinSet::new();
    for (index, (path, token, body)) in requests.into_iter().enumerate() {
        let client = app.client.clone();
        let url = format!("{}{path}", app.address);
        set.spawn(async move {
            let mut request = client.post(url).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            (index, status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
        });
    }
    let mut results: Vec<(usize, StatusCode, Value)> = set.join_all().await;
    results.sort_by_key(|(index, _, _)| *index);
    results.into_iter().map(|(_, status, body)| (status, body)).collect()
}

async fn a_burst_of_sixty_four_parents_subscribing_and_cancelling_at_once_all_succeed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({"cooling_off_days": 0})).await;
    // A webhook endpoint for the service: every change below queues an event for it.
    let endpoint = app
        .post("/v1/webhook-endpoints", Some(&app.admin), json!({"service": "edu", "url": "http://127.0.0.1:9/hooks"}))
        .await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.body);

    let sign_ups = (0..BURST_PARENTS)
        .map(|i| {
            let guardian = json!({"email": format!("burst{i}@example.com"), "password": "a long password",
                "name": "王芳", "locale": "zh-CN", "time_zone": "Asia/Shanghai"});
            ("/v1/families".to_owned(), None, json!({"guardian": guardian}))
        })
        .collect();
    let parents: Vec<Guardian> = all_at_once(&app, sign_ups)
        .await
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, StatusCode::CREATED, "{body}");
            Guardian {
                token: body["token"].as_str().unwrap().to_owned(),
                family_id: body["family"]["id"].as_str().unwrap().to_owned(),
            }
        })
        .collect();

    let subscribe = json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]});
    let subscribed = all_at_once(
        &app,
        parents.iter().map(|p| ("/v1/subscriptions".to_owned(), Some(p.token.clone()), subscribe.clone())).collect(),
    )
    .await;
    let subscription_ids: Vec<String> = subscribed
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["subscription"]["id"].as_str().unwrap().to_owned()
        })
        .collect();

    let cancellations = parents
        .iter()
        .zip(&subscription_ids)
        .map(|(p, id)| {
            (format!("/v1/subscriptions/{id}/cancellations"), Some(p.token.clone()), json!({"option": "end_of_period"}))
        })
        .collect();
    for (status, body) in all_at_once(&app, cancellations).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["cancellation"]["status"], "scheduled", "{body}");
        assert!(body["receipt"]["id"].as_str().is_some_and(|id| id.starts_with("rcp_")), "{body}");
    }
    // Every change queued its event for the integrator, none lost.
    let deliveries = app
        .get(&format!("/v1/webhook-endpoints/{}/deliveries", endpoint.body["id"].as_str().unwrap()), Some(&app.admin))
        .await;
    assert_eq!(deliveries.status, StatusCode::OK, "{}", deliveries.body);
}

async fn a_double_click_on_subscribe_makes_one_subscription_and_one_charge(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({"cooling_off_days": 0})).await;
    let parent = app.sign_up("double@example.com").await;
    let subscribe = json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]});
    let clicks =
        (0..8).map(|_| ("/v1/subscriptions".to_owned(), Some(parent.token.clone()), subscribe.clone())).collect();
    let answers = all_at_once(&app, clicks).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|(status, _)| *status).collect();
    let created = statuses.iter().filter(|status| **status == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{statuses:?}");
    for (status, body) in &answers {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["error"]["code"], "already_subscribed", "{body}");
        }
    }
    let family = app.get(&format!("/v1/families/{}/subscriptions", parent.family_id), Some(&parent.token)).await;
    assert_eq!(family.status, StatusCode::OK, "{}", family.body);
    assert_eq!(family.body.as_array().unwrap().len(), 1, "{}", family.body);
    let statement = app.statement(&parent).await;
    assert_eq!(entries(&statement, "charge").len(), 1, "{}", statement.len());
    // The losing clicks' charges were given back: the gateway took one price.
    assert_eq!(app.state.gateway.as_simulated().unwrap().net_taken_minor(), 3900);
}

async fn an_overloaded_database_is_a_503_with_retry_after_and_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    // Every writer connection is taken (SQLite has one, PostgreSQL eight)
    // by transactions that do not finish while the request waits.
    let writers = match engine {
        Engine::Sqlite => 1,
        Engine::Postgres => 8,
    };
    let mut held = Vec::new();
    for _ in 0..writers {
        held.push(app.state.store.begin().await.unwrap());
    }
    let subscribe = json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]});
    let response =
        app.request(reqwest::Method::POST, "/v1/subscriptions", Some(&parent.token), Some(subscribe), "zh-CN").await;
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE, "{}", response.body);
    assert_eq!(response.body["error"]["code"], "busy");
    assert!(response.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
    assert!(response.body["error"]["message"].as_str().unwrap().contains("繁忙"));
    // The payment the refused request took was given back.
    assert_eq!(app.state.gateway.as_simulated().unwrap().net_taken_minor(), 0);
    drop(held);
    // Nothing was half-written: the same request now goes through, once.
    app.subscribe(&parent, &plan).await;
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 1);
    assert_eq!(app.state.gateway.as_simulated().unwrap().net_taken_minor(), 3900);
}

async fn two_servers_on_one_database_keep_one_simulated_clock(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let second = app.second_server().await;
    let on_second = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut request = app.client.request(method, format!("{second}{path}")).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    // The second server starts at the stored time; the first moves it on.
    app.set_clock("2027-01-20T00:00:00Z").await;
    let (status, clock) = on_second(reqwest::Method::GET, "/v1/admin/clock", &app.admin, None).await;
    assert_eq!((status, clock["now"].as_str()), (StatusCode::OK, Some("2027-01-20T00:00:00Z")), "{clock}");
    // A parent subscribed through one and cancelling through the other, just after the move.
    let parent = app.sign_up("parent@example.com").await;
    let subscription = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-28T00:00:00Z").await;
    let path = format!("/v1/subscriptions/{subscription}/cancellations");
    let (status, cancelled) =
        on_second(reqwest::Method::POST, &path, &parent.token, Some(json!({"option": "end_of_period"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{cancelled}");
    assert_eq!(cancelled["cancellation"]["received_at"], "2027-01-28T00:00:00Z", "received at the one clock's time");
    // Neither server can take the clock back, even one that has not caught up.
    let (status, refused) =
        on_second(reqwest::Method::POST, "/v1/admin/clock", &app.admin, Some(json!({"now": "2027-01-22T00:00:00Z"})))
            .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("clock_backwards")),
        "{refused}"
    );
    // Both set at once: the later wins, whatever the order.
    let (first, other) = tokio::join!(
        app.post("/v1/admin/clock", Some(&app.admin), json!({"now": "2027-02-01T00:00:00Z"})),
        on_second(reqwest::Method::POST, "/v1/admin/clock", &app.admin, Some(json!({"now": "2027-02-03T00:00:00Z"}))),
    );
    assert!(first.status == StatusCode::OK || first.status == StatusCode::CONFLICT, "{}", first.body);
    assert_eq!(other.0, StatusCode::OK, "{}", other.1);
    let stored = app.state.store.setting(baobao_server::clock::SIMULATED_NOW_SETTING).await.unwrap().unwrap();
    assert_eq!(stored.parse::<jiff::Timestamp>().unwrap(), "2027-02-03T00:00:00Z".parse::<jiff::Timestamp>().unwrap());
    assert_eq!(app.get("/v1/admin/clock", Some(&app.admin)).await.body["now"], "2027-02-03T00:00:00Z");
}

/// Families in the scale-out story.
const SCALE_FAMILIES: usize = 24;

async fn two_servers_and_four_billing_runs_with_cancellations_arriving_charge_each_period_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({"cooling_off_days": 0})).await;
    let second = app.second_server().await;
    let mut families = Vec::new();
    for index in 0..SCALE_FAMILIES {
        let parent = app.sign_up(&format!("scale-{index}@example.com")).await;
        let subscription = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
        families.push((parent, subscription));
    }
    // Renewal time: four billing runs (two on each server) while half the
    // parents cancel, through both servers, at the same moment.
    app.set_clock("2027-02-10T03:00:00Z").await;
    let mut set = JoinSet::new();
    for run in 0..4 {
        let url = format!("{}/v1/admin/billing-runs", if run % 2 == 0 { &app.address } else { &second });
        let request = app.client.post(url).bearer_auth(&app.admin).json(&json!({}));
        set.spawn(async move { ("billing", request.send().await.unwrap().status()) });
    }
    for (index, (parent, subscription)) in families.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let base = if index % 4 == 0 { &app.address } else { &second };
        let url = format!("{base}/v1/subscriptions/{subscription}/cancellations");
        let request = app.client.post(url).bearer_auth(&parent.token).json(&json!({"option": "end_of_period"}));
        set.spawn(async move { ("cancel", request.send().await.unwrap().status()) });
    }
    let answers = set.join_all().await;
    for (what, status) in &answers {
        let expected = if *what == "billing" { StatusCode::OK } else { StatusCode::CREATED };
        assert_eq!(*status, expected, "{what}: no client sees a deadlock, a serialization failure or a 5xx");
    }
    // Every period charged once; every acknowledged cancellation on record.
    for (index, (parent, subscription)) in families.iter().enumerate() {
        let statement = app.statement(parent).await;
        let mut periods: Vec<&str> = entries(&statement, "charge")
            .iter()
            .filter(|e| e["subscription_id"] == subscription.as_str())
            .map(|e| e["period_start"].as_str().unwrap())
            .collect();
        let charged = periods.len();
        periods.dedup();
        assert_eq!(periods.len(), charged, "a period charged twice: {statement:?}");
        assert_eq!(charged, 2, "the first period and the renewal: {statement:?}");
        let status = app.subscription(parent, subscription).await["status"].clone();
        let wanted = if index % 2 == 0 { "pending_cancellation" } else { "active" };
        assert_eq!(status, wanted, "family {index}");
    }
}
