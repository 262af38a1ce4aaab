//! Hostile input against every route that takes a body: malformed and
//! deeply nested JSON, arrays where objects belong, wrong types, huge and
//! negative numbers, dates in year 0 and 9999, invalid time zones, unicode
//! edge cases (RTL, NUL, 10,000-character strings), SQL and HTML injection
//! in every text field, an oversized body, a replayed key with another
//! body. Each, as each kind of caller that may call the route and in both
//! languages, gets a 4xx with the JSON error body in the caller's language
//! (never a 5xx), and a refused request writes nothing (the audit log, where
//! every change leaves an entry, does not grow). Every page shows what it
//! was given escaped.

use baobao_store::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

baobao_store::on_both_engines!(every_route_refuses_hostile_bodies_with_a_clear_4xx_and_writes_nothing);

/// Text that has broken servers before, for every string field.
fn hostile_strings() -> Vec<String> {
    vec![
        "'; DROP TABLE families; --".to_owned(),
        "<script>alert(1)</script>".to_owned(),
        "\u{202e}gnp.exe\u{202c}".to_owned(),
        "nul\u{0}byte".to_owned(),
        "x".repeat(10_000),
        "0000-01-01T00:00:00Z".to_owned(),
        "9999-12-31T23:59:59Z".to_owned(),
        "Mars/Olympus_Mons".to_owned(),
        "\u{1F476}".repeat(300),
    ]
}

/// Bodies built from a route's own fields with hostile values in them.
fn hostile_bodies(fields: &[String]) -> Vec<Value> {
    let mut bodies = vec![json!([]), json!("a string"), json!(null), json!(42), json!({"unexpected": true})];
    for value in [json!(-1), json!(i64::MAX), json!(1e300), json!(-9.5), json!([1, 2]), json!({"a": {}}), json!(true)] {
        bodies.push(Value::Object(fields.iter().map(|f| (f.clone(), value.clone())).collect()));
    }
    for text in hostile_strings() {
        bodies.push(Value::Object(fields.iter().map(|f| (f.clone(), json!(text))).collect()));
    }
    bodies
}

/// The fields a route's request body names, from the OpenAPI document.
fn fields_of(document: &Value, operation: &Value) -> Vec<String> {
    let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(reference) => &document["components"]["schemas"][reference.rsplit('/').next().unwrap()],
        None => schema,
    };
    schema["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default()
}

/// Audit entries written by requests (an export a valid request started
/// earlier finishes in the background and logs itself: not counted).
async fn post(
    client: &reqwest::Client,
    base: &str,
    route: &str,
    token: Option<&str>,
    body: &Value,
    lang: &str,
) -> crate::helpers::Response {
    let mut request = client.post(format!("{base}{route}")).header("accept-language", lang).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    crate::helpers::Response { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

async fn audit_entries(app: &TestApp) -> usize {
    let entries = app.state.store.audit_entries(0, 100_000).await.unwrap();
    entries.iter().filter(|e| e.action != "export.ready").count()
}

async fn every_route_refuses_hostile_bodies_with_a_clear_4xx_and_writes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscribed = app.subscribe(&parent, &plan).await;
    let subscription_id = subscribed["subscription"]["id"].as_str().unwrap().to_owned();
    let dispute = app
        .post(
            "/v1/disputes",
            Some(&parent.token),
            json!({"kind": "other", "subscription_id": subscription_id, "description": "x"}),
        )
        .await;
    let dispute_id = dispute.body["dispute"]["id"].as_str().unwrap().to_owned();
    let agent = app.staff("agent@example.com", "agent").await;
    let document = app.get("/openapi.json", None).await.body;
    // A connection per request: a refused request's connection may be
    // closed by the server, and a pooled client could reuse it meanwhile.
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut sent = 0;
    let mut failures = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let Some(operation) = item.get("post") else { continue };
        let route = path
            .replace("/v1/families/{id}", &format!("/v1/families/{}", parent.family_id))
            .replace("/v1/plans/{id}", &format!("/v1/plans/{}", plan["id"].as_str().unwrap()))
            .replace("/v1/subscriptions/{id}", &format!("/v1/subscriptions/{subscription_id}"))
            .replace("/v1/disputes/{id}", &format!("/v1/disputes/{dispute_id}"))
            .replace("{id}", "chd_nothing");
        let fields = fields_of(&document, operation);
        for (token, lang) in [
            (Some(parent.token.as_str()), "zh-CN"),
            (Some(app.admin.as_str()), "en"),
            (Some(agent.as_str()), "zh-CN"),
            (None, "en"),
        ] {
            for body in hostile_bodies(&fields) {
                let before = audit_entries(&app).await;
                let response = post(&fresh, &app.address, &route, token, &body, lang).await;
                sent += 1;
                let status = response.status;
                let label = format!(
                    "POST {route} ({lang}) {}: {status} {}",
                    body.to_string().chars().take(80).collect::<String>(),
                    response.body.to_string().chars().take(200).collect::<String>()
                );
                if status.is_server_error() {
                    failures.push(format!("5xx: {label}"));
                    continue;
                }
                if status.is_success() {
                    // Valid after all (a text that is hostile only to a careless server).
                    continue;
                }
                let message = response.body["error"]["message"].as_str().unwrap_or_default();
                if response.body["error"]["code"].as_str().is_none() || message.is_empty() {
                    failures.push(format!("no JSON error body: {label}"));
                }
                let chinese = message.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
                if lang == "zh-CN" && !chinese && status != StatusCode::UNAUTHORIZED {
                    failures.push(format!("not in the caller's language: {label}"));
                }
                if audit_entries(&app).await != before {
                    failures.push(format!("a refused request wrote something: {label}"));
                }
            }
        }
    }
    // Malformed, deeply nested and oversized bodies, everywhere at once.
    let nested = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let oversized = format!("{{\"description\": \"{}\"}}", "x".repeat(7 * 1024 * 1024));
    for raw in ["{\"kind\": ", nested.as_str(), oversized.as_str()] {
        let before = audit_entries(&app).await;
        let response = app
            .client
            .post(format!("{}/v1/disputes", app.address))
            .bearer_auth(&parent.token)
            .header("content-type", "application/json")
            .header("accept-language", "zh-CN")
            .body(raw.to_owned())
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status();
                assert!(status.is_client_error(), "{status} for a raw body of {} bytes", raw.len());
            }
            // Refused before it was all sent: the server closed the connection on the body over its limit.
            Err(error) => assert!(raw.len() > 6 * 1024 * 1024, "{error}"),
        }
        assert_eq!(audit_entries(&app).await, before);
    }
    // The same key with another body: refused, and the first answer stands.
    let key_body =
        |description: &str| json!({"kind": "other", "subscription_id": subscription_id, "description": description});
    let send = |body: Value| {
        app.client
            .post(format!("{}/v1/disputes", app.address))
            .bearer_auth(&parent.token)
            .header("idempotency-key", "hostile-1")
            .json(&body)
            .send()
    };
    assert_eq!(send(key_body("first")).await.unwrap().status(), StatusCode::CREATED);
    let reused = send(key_body("second")).await.unwrap();
    assert_eq!(reused.status(), StatusCode::CONFLICT);
    assert!(sent > 500, "{sent} hostile requests sent");
    assert!(
        failures.is_empty(),
        "{} of {sent} hostile requests were mishandled:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
