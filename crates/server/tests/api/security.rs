//! What an outside tester found, kept found: saved responses that held
//! secrets and deleted personal data, redirects to other sites, pages that
//! could be framed, JSON arrays passing for objects. Each story failed
//! before its fix.

use std::path::Path;

use baobao_store::Engine;
use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, Row};

use crate::email::{SmtpListener, deliver, free_port};
use crate::helpers::TestApp;

baobao_store::on_both_engines!(
    after_a_full_deletion_nothing_the_family_wrote_is_left_in_the_database_or_the_data_directory,
    a_retried_request_never_gets_a_secret_a_second_time,
    a_redirect_never_leaves_the_site,
    every_response_carries_the_security_headers,
    a_json_array_is_not_an_object_and_changes_nothing,
    field_reasons_are_in_the_callers_language,
    the_bearer_scheme_is_case_insensitive_and_any_staff_member_may_read_a_quote,
    a_far_future_clock_is_refused,
    sign_ups_and_sign_ins_are_limited_per_address,
);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// Every marker string found in `bytes`.
fn markers_in<'a>(bytes: &[u8], markers: &[&'a str]) -> Vec<&'a str> {
    markers.iter().copied().filter(|m| bytes.windows(m.len()).any(|w| w == m.as_bytes())).collect()
}

/// Every file under `dir` that holds a marker, with the markers it holds.
fn files_with_markers(dir: &Path, markers: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let hits = markers_in(&bytes, markers);
                if !hits.is_empty() {
                    found.push(format!("{}: {hits:?}", path.display()));
                }
            }
        }
    }
    found
}

/// The `name` column of every row `sql` selects.
async fn names(db: &mut sqlx::AnyConnection, sql: String) -> Vec<String> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(db).await.unwrap();
    rows.iter().map(|r| r.try_get::<String, _>("name").unwrap()).collect()
}

/// Every row of every table, as text, that holds a marker. On SQLite the
/// raw files (database and write-ahead log) are read as well, so that
/// deleted rows lingering in free pages count too.
async fn rows_with_markers(app: &TestApp, markers: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut db = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    let tables_sql = match app.db.store.engine() {
        Engine::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Engine::Postgres => {
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables WHERE table_schema = 'public'"
        }
    };
    let tables = names(&mut db, tables_sql.to_owned()).await;
    for table in tables {
        let sql = match app.db.store.engine() {
            Engine::Sqlite => {
                let columns = names(&mut db, format!("SELECT name FROM pragma_table_info('{table}')")).await;
                let joined = columns.iter().map(|c| format!("COALESCE(CAST(\"{c}\" AS TEXT), '')")).collect::<Vec<_>>();
                format!("SELECT {} AS row_text FROM \"{table}\"", joined.join(" || '|' || "))
            }
            Engine::Postgres => format!("SELECT CAST(t AS TEXT) AS row_text FROM \"{table}\" t"),
        };
        for row in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut db).await.unwrap() {
            let text: String = row.try_get("row_text").unwrap_or_default();
            let hits = markers_in(text.as_bytes(), markers);
            if !hits.is_empty() {
                found.push(format!("{table}: {hits:?} in {text}"));
            }
        }
    }
    if app.db.store.engine() == Engine::Sqlite {
        let path = app.db.url.trim_start_matches("sqlite://").split('?').next().unwrap().to_owned();
        for file in [path.clone(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                let hits = markers_in(&bytes, markers);
                if !hits.is_empty() {
                    found.push(format!("{file}: {hits:?}"));
                }
            }
        }
    }
    found
}

async fn after_a_full_deletion_nothing_the_family_wrote_is_left_in_the_database_or_the_data_directory(engine: Engine) {
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpListener::start(free_port(), &mail_dir.path().join("Maildir"));
    let app = TestApp::spawn_with_smtp(engine, &format!("smtp://127.0.0.1:{}", smtp.port)).await;
    let plan = app.create_plan(json!({"cooling_off_days": 0})).await;
    let key = app.api_key("edu").await;

    // Marker strings in every place a family's personal data goes.
    let email = "marker.guardian.qz7@example.com";
    let guardian_name = "MarkerGuardianQz7";
    let child_name = "MarkerChildQz7";
    let record_text = "MarkerRecordQz7";
    let reason_text = "MarkerReasonQz7";
    let phone = "+49 30 7531 9642";
    let signed_up = app
        .request(
            Method::POST,
            "/v1/families",
            None,
            Some(json!({"guardian": {"email": email, "password": "a long password", "name": guardian_name,
                "phone": phone, "locale": "en", "time_zone": "Europe/Berlin"}})),
            "en",
        )
        .await;
    assert_eq!(signed_up.status, StatusCode::CREATED, "{}", signed_up.body);
    let token = signed_up.body["token"].as_str().unwrap().to_owned();
    let family_id = signed_up.body["family"]["id"].as_str().unwrap().to_owned();
    // Requests with Idempotency-Key: their saved answers show the child.
    let child = app
        .client
        .post(format!("{}/v1/families/{family_id}/children", app.address))
        .bearer_auth(&token)
        .header("idempotency-key", "add-child-1")
        .json(&json!({"name": child_name, "birth_date": "2019-03-04", "consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(child.status(), StatusCode::CREATED);
    let child_id = child.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let subscribed = app
        .client
        .post(format!("{}/v1/subscriptions", app.address))
        .bearer_auth(&token)
        .header("idempotency-key", "subscribe-1")
        .json(&json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), StatusCode::CREATED);
    let subscription_id = subscribed.json::<Value>().await.unwrap()["subscription"]["id"].as_str().unwrap().to_owned();
    let written = app.write_record(&key, &child_id, "growth", json!({"note": record_text})).await;
    assert_eq!(written.status, StatusCode::CREATED, "{}", written.body);
    let cancelled = app
        .request(
            Method::POST,
            &format!("/v1/subscriptions/{subscription_id}/cancellations"),
            Some(&token),
            Some(json!({"option": "now", "reason": {"category": "other", "text": reason_text}})),
            "en",
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    deliver(&app, 0).await;
    // A copy the family took: it goes with the rest.
    let guardian = crate::helpers::Guardian { token: token.clone(), family_id: family_id.clone() };
    let export = app.export_ready(&guardian).await;

    let deleted = app
        .client
        .post(format!("{}/v1/families/{family_id}/deletion-requests", app.address))
        .bearer_auth(&token)
        .header("idempotency-key", "delete-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::CREATED);
    assert!(deliver(&app, 0).await.delivered >= 1, "the certificate is emailed");

    let markers =
        [email, guardian_name, child_name, "2019-03-04", record_text, reason_text, token.as_str(), phone, "4930753196"];
    assert_eq!(rows_with_markers(&app, &markers).await, Vec::<String>::new());
    assert_eq!(files_with_markers(app.data_dir.path(), &markers), Vec::<String>::new());
    // The export's file and every key of the family are gone, not merely unreadable.
    assert_eq!(std::fs::read_dir(app.data_dir.path().join("exports")).unwrap().count(), 0);
    assert!(!app.data_dir.path().join("vault").join(&family_id).exists(), "no key of the family is left");
    let gone = app.get(&format!("/v1/exports/{}/download", export["id"].as_str().unwrap()), Some(&token)).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "signed out: the account is closed");
}

async fn a_retried_request_never_gets_a_secret_a_second_time(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.sign_up("parent@example.com").await;
    let login = |key: &'static str| {
        app.client
            .post(format!("{}/v1/auth/sessions", app.address))
            .header("idempotency-key", key)
            .json(&json!({"email": "parent@example.com", "password": "a long password"}))
            .send()
    };
    let first = login("login-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let token = first.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let retried = login("login-1").await.unwrap();
    assert_eq!(retried.status(), StatusCode::CONFLICT);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["error"]["code"], "idempotent_request_done", "{retried}");
    assert!(!retried.to_string().contains(&token));

    let create_key = || {
        app.client
            .post(format!("{}/v1/api-keys", app.address))
            .bearer_auth(&app.admin)
            .header("idempotency-key", "key-1")
            .json(&json!({"service": "edu", "name": "edu app"}))
            .send()
    };
    let created: Value = create_key().await.unwrap().json().await.unwrap();
    let api_key = created["key"].as_str().unwrap().to_owned();
    let again = create_key().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // No secret was written down anywhere a database reader could replay it.
    let saved = rows_with_markers(&app, &[&token, &api_key, &app.admin]).await;
    assert_eq!(saved, Vec::<String>::new());

    // Saved answers are kept for the replay window only.
    let later = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(25)).unwrap();
    let pruned = app.state.store.prune_request_records(later, later).await.unwrap();
    assert!(pruned >= 2, "{pruned}");
}

async fn a_redirect_never_leaves_the_site(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = no_redirects();
    for next in ["/%09/evil.example", "//evil.example", "/\\evil.example", "/%5Cevil.example", "https://evil.example"] {
        let url = format!("{}/lang?to=en&next={}", app.address, next.replace('%', "%25").replace('\\', "%5C"));
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(response.headers()["location"], "/", "{next}");
        // Sent raw, too (a tab in the query, as a browser would forward it).
        let raw = client.get(format!("{}/lang?to=en&next={next}", app.address)).send().await.unwrap();
        assert_eq!(raw.headers()["location"], "/", "{next}");
    }
    let fine = client.get(format!("{}/lang?to=en&next=/plans", app.address)).send().await.unwrap();
    assert_eq!(fine.headers()["location"], "/plans");
    let form = client.get(format!("{}/login?next=%2F%09%2Fevil.example", app.address)).send().await.unwrap();
    let page = form.text().await.unwrap();
    assert!(!page.contains("evil.example"), "the sign-in form carries no foreign next");
}

async fn every_response_carries_the_security_headers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let parent = app.sign_up("parent@example.com").await;
    for path in ["/", "/login", "/plans", "/v1/plans", "/nowhere"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{path}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert!(headers.get("strict-transport-security").is_none(), "{path}: not over TLS");
    }
    let statement = app
        .client
        .get(format!("{}/v1/families/{}/statement?format=csv", app.address, parent.family_id))
        .bearer_auth(&parent.token)
        .send()
        .await
        .unwrap();
    assert_eq!(statement.headers()["cache-control"], "no-store");
    let over_tls = app.client.get(format!("{}/", app.address)).header("x-forwarded-proto", "https").send().await;
    assert!(over_tls.unwrap().headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    // The stylesheet and script the policy allows are this site's own files.
    let css = app.client.get(format!("{}/assets/portal.css", app.address)).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    let page = app.client.get(format!("{}/login", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("<style") && !page.contains("onclick="), "no inline style or script");
}

async fn a_json_array_is_not_an_object_and_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({"cooling_off_days": 0})).await;
    let parent = app.sign_up("parent@example.com").await;
    let child_id = app.add_child(&parent, "小明").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let token = Some(parent.token.as_str());
    for (path, body) in [
        (format!("/v1/families/{}/deletion-requests", parent.family_id), json!([])),
        (format!("/v1/subscriptions/{subscription_id}/cancellations"), json!(["now"])),
        ("/v1/subscriptions".to_owned(), json!([plan["id"], plan["policy"]["sha256"]])),
        ("/v1/families".to_owned(), json!("guardian")),
    ] {
        let response = app.request(Method::POST, &path, token, Some(body), "zh-CN").await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {}", response.body);
        assert_eq!(response.body["error"]["code"], "json_not_object", "{path}");
    }
    // Nothing happened: the subscription runs, the child and the account are there.
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "active");
    let children = app.get(&format!("/v1/families/{}/children", parent.family_id), token).await;
    assert_eq!(children.body.as_array().unwrap().len(), 1, "{}", children.body);
    assert_eq!(children.body[0]["id"], child_id.as_str());
    // A deletion naming a service there is no plan for certifies nothing: refused.
    let nowhere = app
        .post(&format!("/v1/families/{}/deletion-requests", parent.family_id), token, json!({"service": "nowhere"}))
        .await;
    assert_eq!(nowhere.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", nowhere.body);
    assert_eq!(nowhere.body["error"]["details"]["reason"], "unknown_service");
}

/// Text in Latin letters outside the user's own data, field names and ids.
fn english_in(message: &str, allowed: &[&str]) -> Vec<String> {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-'))
        .filter(|w| w.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 3 && !allowed.contains(w))
        .map(str::to_owned)
        .collect()
}

async fn field_reasons_are_in_the_callers_language(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let parent = app.sign_up("parent@example.com").await;
    let token = Some(parent.token.as_str());
    let children = format!("/v1/families/{}/children", parent.family_id);
    let cases = [
        (Method::POST, children.clone(), json!({"name": "小明", "birth_date": "2019-01-01", "consent": false})),
        (Method::POST, children.clone(), json!({"name": "小明", "birth_date": "yesterday", "consent": true})),
        (Method::POST, children.clone(), json!({"name": "", "birth_date": "2019-01-01", "consent": true})),
        (Method::POST, children.clone(), json!({"name": "小明", "consent": true})),
        (Method::POST, children.clone(), json!({"name": "小明", "birth_date": "2019-01-01", "consent": "yes"})),
        (Method::POST, children, json!({"name": "小明", "birth_date": "2019-01-01", "consent": true, "extra": 1})),
        (
            Method::POST,
            "/v1/families".to_owned(),
            json!({"guardian": {"email": "x@example.com", "password": "a long password", "name": "A", "locale": "fr", "time_zone": "UTC"}}),
        ),
    ];
    for (method, path, body) in cases {
        let response = app.request(method, &path, token, Some(body.clone()), "zh-CN").await;
        assert_eq!(response.status.as_u16() / 100, 4, "{body}: {}", response.body);
        let message = response.body["error"]["message"].as_str().unwrap();
        let english = english_in(
            message,
            &["consent", "birth_date", "name", "extra", "locale", "JSON", "zh-CN", "guardian.locale", "YYYY-MM-DD"],
        );
        assert!(english.is_empty(), "{body}: {message} has {english:?}");
    }
}

async fn the_bearer_scheme_is_case_insensitive_and_any_staff_member_may_read_a_quote(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = app
            .client
            .get(format!("{}/v1/subscriptions/{subscription_id}", app.address))
            .header("authorization", format!("{scheme} {}", parent.token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
    for role in ["finance", "compliance"] {
        let staff = app.staff(&format!("{role}@example.com"), role).await;
        let quote = app.get(&format!("/v1/subscriptions/{subscription_id}/cancellation-quote"), Some(&staff)).await;
        assert_eq!(quote.status, StatusCode::OK, "{role}: {}", quote.body);
    }
}

async fn a_far_future_clock_is_refused(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let refused = app.post("/v1/admin/clock", Some(&app.admin), json!({"now": "9999-01-01T00:00:00Z"})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert_eq!(refused.body["error"]["details"]["reason"], "instant_range");
    assert_eq!(app.billing_run().await["steps"], 0, "the clock did not move");
}

async fn sign_ups_and_sign_ins_are_limited_per_address(engine: Engine) {
    let app = TestApp::spawn_configured(engine, |config| {
        config.sign_ups_per_address_per_hour = 3;
        config.sign_ins_per_address_per_minute = 4;
    })
    .await;
    let sign_up = |n: u32| {
        json!({"guardian": {"email": format!("p{n}@example.com"), "password": "a long password", "name": "P",
            "locale": "zh-CN", "time_zone": "Asia/Shanghai"}})
    };
    // The test's own admin signed in once already.
    for n in 0..3 {
        assert_eq!(app.post("/v1/families", None, sign_up(n)).await.status, StatusCode::CREATED);
    }
    let refused = app.request(Method::POST, "/v1/families", None, Some(sign_up(9)), "zh-CN").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "too_many_requests");
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("秒后重试"));
    assert!(refused.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // The portal's sign-up form shares the allowance.
    let form = app.client.post(format!("{}/signup", app.address)).form(&[("email", "x@example.com")]).send().await;
    assert_eq!(form.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    let account = app.get("/v1/families?email=p9@example.com", Some(&app.admin)).await;
    assert_eq!(account.body.as_array().map(Vec::len), Some(0), "the refused sign-up wrote nothing: {}", account.body);
    // Guessing passwords across accounts from one address is held back too.
    let statuses: Vec<StatusCode> = {
        let mut statuses = Vec::new();
        for n in 0..4 {
            let body = json!({"email": format!("p{n}@example.com"), "password": "wrong password!"});
            statuses.push(app.post("/v1/auth/sessions", None, body).await.status);
        }
        statuses
    };
    assert!(statuses[..3].iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}
