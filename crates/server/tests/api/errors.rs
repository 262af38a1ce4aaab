//! Bad input gets a clear 4xx with a message in the caller's locale —
//! never a 500, never a half-written record.

use baobao_store::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Response, TestApp};

baobao_store::on_both_engines!(
    bad_input_gets_a_clear_4xx_in_the_callers_locale,
    the_openapi_document_covers_the_contract
);

fn assert_error(response: &Response, status: StatusCode, code: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.body["error"]["code"], code, "{}", response.body);
    assert!(!response.body["error"]["message"].as_str().unwrap_or_default().is_empty(), "{}", response.body);
}

fn is_chinese(text: &Value) -> bool {
    text.as_str().unwrap_or_default().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

async fn raw_post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: &'static str,
    content_type: &str,
    lang: &str,
) -> Response {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", content_type)
        .header("accept-language", lang)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Response { status, body, headers }
}

async fn bad_input_gets_a_clear_4xx_in_the_callers_locale(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;

    let malformed = raw_post(&app, "/v1/families", None, "{\"guardian\": ", "application/json", "zh-CN,zh;q=0.9").await;
    assert_error(&malformed, StatusCode::BAD_REQUEST, "invalid_json");
    assert!(is_chinese(&malformed.body["error"]["message"]), "{}", malformed.body);
    assert_eq!(malformed.headers["content-language"], "zh-CN");
    let english = raw_post(&app, "/v1/families", None, "{\"guardian\": ", "application/json", "en-GB").await;
    assert!(!is_chinese(&english.body["error"]["message"]));
    assert_error(
        &raw_post(&app, "/v1/families", None, "{}", "text/plain", "en").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    let sign_up = |email: &str, tz: &str, password: &str| json!({"guardian": {"email": email, "password": password, "name": "A", "locale": "en", "time_zone": tz}});
    let bad_email = app.post("/v1/families", None, sign_up("not-an-email", "UTC", "a long password")).await;
    assert_error(&bad_email, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(bad_email.body["error"]["details"]["field"], "email");
    let bad_zone = app.post("/v1/families", None, sign_up("a@example.com", "Mars/Base", "a long password")).await;
    assert_eq!(bad_zone.body["error"]["details"]["field"], "time_zone");
    let short = app.post("/v1/families", None, sign_up("a@example.com", "UTC", "short")).await;
    assert_eq!(short.body["error"]["details"]["field"], "password");
    assert_error(
        &app.post("/v1/families", None, sign_up("parent@example.com", "UTC", "a long password")).await,
        StatusCode::CONFLICT,
        "email_taken",
    );

    let token = Some(parent.token.as_str());
    let unknown_plan = app
        .post("/v1/subscriptions", token, json!({"plan_id": "pln_doesnotexist0000000", "accept_policy_sha256": "x"}))
        .await;
    assert_error(&unknown_plan, StatusCode::NOT_FOUND, "not_found");
    let injected = app
        .post("/v1/subscriptions", token, json!({"plan_id": "'; DROP TABLE plans; --", "accept_policy_sha256": "x"}))
        .await;
    assert_error(&injected, StatusCode::NOT_FOUND, "not_found");
    let wrong_hash = app
        .post("/v1/subscriptions", token, json!({"plan_id": plan["id"], "accept_policy_sha256": "0".repeat(64)}))
        .await;
    assert_error(&wrong_hash, StatusCode::CONFLICT, "policy_hash_mismatch");
    let missing_field = app.post("/v1/subscriptions", token, json!({"plan_id": plan["id"]})).await;
    assert_error(&missing_field, StatusCode::UNPROCESSABLE_ENTITY, "invalid_json");

    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let cancel_path = format!("/v1/subscriptions/{subscription_id}/cancellations");
    assert_error(
        &app.post(&cancel_path, token, json!({"option": "tomorrow"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    let bad_reason = app.post(&cancel_path, token, json!({"option": "now", "reason": {"category": "spite"}})).await;
    assert_eq!(bad_reason.body["error"]["details"]["field"], "reason.category");
    let zh =
        app.request(Method::POST, &cancel_path, token, Some(json!({"option": "end_of_commitment"})), "zh-CN").await;
    assert_error(&zh, StatusCode::UNPROCESSABLE_ENTITY, "option_not_available");
    assert!(is_chinese(&zh.body["error"]["message"]));
    assert_eq!(app.post(&cancel_path, token, json!({"option": "now"})).await.status, StatusCode::CREATED);
    assert_error(
        &app.post(&cancel_path, token, json!({"option": "now"})).await,
        StatusCode::CONFLICT,
        "not_cancellable",
    );

    let quote_as_guardian = app
        .get(&format!("/v1/subscriptions/{subscription_id}/cancellation-quote?received_at=2027-01-10T00:00:00Z"), token)
        .await;
    assert_eq!(
        quote_as_guardian.status,
        StatusCode::CONFLICT,
        "a cancelled subscription has no quote: {}",
        quote_as_guardian.body
    );

    // Admin input is checked just as carefully.
    let admin = Some(app.admin.as_str());
    let negative = app
        .post("/v1/plans", admin, json!({"service": "edu", "name": {"zh-CN": "x", "en": "x"}, "policy": {"price": {"amount_minor": -100, "currency": "CNY"}, "period": "P1M", "retention_days": 30}}))
        .await;
    assert_error(&negative, StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy");
    let unbounded = app
        .request(
            Method::POST,
            "/v1/plans",
            admin,
            Some(json!({"service": "edu", "name": {"zh-CN": "x", "en": "x"}, "policy": {"price": {"amount_minor": 100, "currency": "CNY"}, "period": "P1M"}})),
            "zh-CN",
        )
        .await;
    assert_error(&unbounded, StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy");
    assert_eq!(unbounded.body["error"]["details"]["field"], "retention_days");
    assert!(is_chinese(&unbounded.body["error"]["message"]), "{}", unbounded.body);
    assert_error(
        &app.post("/v1/admin/clock", admin, json!({"now": "99999-01-01T00:00:00Z"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
    );
    assert_error(
        &app.post("/v1/admin/clock", admin, json!({"now": "2020-01-01T00:00:00Z"})).await,
        StatusCode::CONFLICT,
        "clock_backwards",
    );
    let child = app
        .post(
            &format!("/v1/families/{}/children", parent.family_id),
            token,
            json!({"name": "小明", "birth_date": "1800-01-01", "consent": true}),
        )
        .await;
    assert_error(&child, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let no_consent = app
        .post(
            &format!("/v1/families/{}/children", parent.family_id),
            token,
            json!({"name": "小明", "birth_date": "2019-01-01", "consent": false}),
        )
        .await;
    assert_eq!(no_consent.body["error"]["details"]["field"], "consent");
    assert_error(&app.get("/v1/nowhere", None).await, StatusCode::NOT_FOUND, "route_not_found");

    // None of the refused requests left anything behind.
    let statement = app.statement(&parent).await;
    assert_eq!(statement.len(), 2, "the one charge and its cooling-off refund: {statement:?}");
}

async fn the_openapi_document_covers_the_contract(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let document = app.get("/openapi.json", None).await.body;
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/auth/sessions", "post"),
        ("/v1/families", "post"),
        ("/v1/families/{id}/children", "post"),
        ("/v1/plans", "get"),
        ("/v1/plans", "post"),
        ("/v1/plans/{id}/policies", "post"),
        ("/v1/subscriptions", "post"),
        ("/v1/subscriptions/{id}", "get"),
        ("/v1/subscriptions/{id}/cancellation-quote", "get"),
        ("/v1/subscriptions/{id}/cancellations", "post"),
        ("/v1/subscriptions/{id}/resume", "post"),
        ("/v1/cancellations/{id}", "get"),
        ("/v1/families/{id}/statement", "get"),
        ("/v1/receipts/{id}", "get"),
        ("/.well-known/baobao/keys.json", "get"),
        ("/v1/admin/clock", "post"),
        ("/v1/admin/billing-runs", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing from /openapi.json");
    }
}
