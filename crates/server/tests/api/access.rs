//! Who may see and do what: a guardian never sees another family's
//! anything, anonymous callers are sent to sign in, and admin routes are
//! for admins.

use baobao_store::Engine;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;

baobao_store::on_both_engines!(
    a_guardian_never_sees_another_familys_anything,
    anonymous_callers_must_sign_in_and_guardians_are_not_admins,
    sessions_end_at_sign_out_and_wrong_passwords_are_refused,
);

async fn a_guardian_never_sees_another_familys_anything(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let owner = app.sign_up("owner@example.com").await;
    let subscribed = app.subscribe(&owner, &plan).await;
    let subscription_id = subscribed["subscription"]["id"].as_str().unwrap();
    let receipt_id = subscribed["receipt"]["id"].as_str().unwrap();
    app.set_clock("2027-01-25T00:00:00Z").await;
    let cancelled = app.cancel(&owner, subscription_id, json!({"option": "end_of_period"})).await;
    let cancellation_id = cancelled.body["cancellation"]["id"].as_str().unwrap();

    let stranger = app.sign_up("stranger@example.com").await;
    let family = &owner.family_id;
    let reads = [
        format!("/v1/subscriptions/{subscription_id}"),
        format!("/v1/subscriptions/{subscription_id}/cancellation-quote"),
        format!("/v1/cancellations/{cancellation_id}"),
        format!("/v1/receipts/{receipt_id}"),
        format!("/v1/families/{family}"),
        format!("/v1/families/{family}/statement"),
        format!("/v1/families/{family}/statement?format=csv"),
        format!("/v1/families/{family}/receipts"),
        format!("/v1/families/{family}/subscriptions"),
    ];
    for path in &reads {
        let response = app.get(path, Some(&stranger.token)).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}: {}", response.body);
    }
    let writes = [
        (format!("/v1/subscriptions/{subscription_id}/cancellations"), json!({"option": "now"})),
        (format!("/v1/subscriptions/{subscription_id}/resume"), json!({})),
        (format!("/v1/families/{family}/children"), json!({"name": "x", "birth_date": "2020-01-01", "consent": true})),
    ];
    for (path, body) in &writes {
        let response = app.post(path, Some(&stranger.token), body.clone()).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}: {}", response.body);
    }
    // Nothing changed for the owner.
    assert_eq!(app.subscription(&owner, subscription_id).await["status"], "pending_cancellation");
}

async fn anonymous_callers_must_sign_in_and_guardians_are_not_admins(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let parent = app.sign_up("parent@example.com").await;
    let protected = [
        (Method::GET, "/v1/subscriptions/sub_0000000000000000000a".to_owned()),
        (Method::GET, format!("/v1/families/{}/statement", parent.family_id)),
        (Method::POST, "/v1/subscriptions".to_owned()),
        (Method::POST, "/v1/admin/billing-runs".to_owned()),
        (Method::POST, "/v1/plans".to_owned()),
    ];
    for (method, path) in &protected {
        let response = app.request(method.clone(), path, None, Some(json!({})), "en").await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", response.body);
    }
    let bogus = app.request(Method::GET, "/v1/admin/clock", Some("not-a-token"), None, "en").await;
    assert_eq!(bogus.status, StatusCode::UNAUTHORIZED);
    for (path, body) in [
        ("/v1/admin/clock", json!({"now": "2030-01-01T00:00:00Z"})),
        ("/v1/admin/billing-runs", json!({})),
        ("/v1/admin/gateway", json!({"decline_charges": true})),
        ("/v1/plans", json!({"service": "edu", "name": {"zh-CN": "x", "en": "x"}, "policy": {}})),
    ] {
        let response = app.post(path, Some(&parent.token), body).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{path}: {}", response.body);
    }
    // Staff may look at a family's statement only in the finance role.
    let admin_view = app.get(&format!("/v1/families/{}/statement", parent.family_id), Some(&app.admin)).await;
    assert_eq!(admin_view.status, StatusCode::FORBIDDEN);
    // The catalogue, the keys, the API document and health are public.
    for path in ["/v1/plans", "/.well-known/baobao/keys.json", "/openapi.json", "/healthz", "/readyz"] {
        assert_eq!(app.get(path, None).await.status, StatusCode::OK, "{path}");
    }
}

async fn sessions_end_at_sign_out_and_wrong_passwords_are_refused(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let parent = app.sign_up("parent@example.com").await;
    let wrong =
        app.post("/v1/auth/sessions", None, json!({"email": "parent@example.com", "password": "wrong password"})).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"]["code"], "invalid_credentials");
    let unknown = app
        .post("/v1/auth/sessions", None, json!({"email": "nobody@example.com", "password": "a long password"}))
        .await;
    assert_eq!(unknown.body["error"]["code"], "invalid_credentials");
    let signed_in = app
        .post("/v1/auth/sessions", None, json!({"email": "PARENT@example.com", "password": "a long password"}))
        .await;
    assert_eq!(signed_in.status, StatusCode::CREATED);
    let token = signed_in.body["token"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/families/{}", parent.family_id), Some(token)).await.status, StatusCode::OK);
    let out = app.request(Method::DELETE, "/v1/auth/sessions/current", Some(token), None, "en").await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/v1/families/{}", parent.family_id), Some(token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}
