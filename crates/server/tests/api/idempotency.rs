//! `Idempotency-Key`: the same request twice does one thing.

use baobao_store::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Response, TestApp, entries};

baobao_store::on_both_engines!(
    a_retried_post_returns_the_first_response_and_does_nothing_twice,
    a_key_held_by_a_server_that_died_is_freed_for_the_retry_at_once,
    a_retry_after_a_crash_between_the_commit_and_the_saved_answer_does_nothing_twice,
);

async fn post_with_key(app: &TestApp, path: &str, token: Option<&str>, key: &str, body: Value) -> Response {
    let mut request = app.client.post(format!("{}{path}", app.address)).header("idempotency-key", key).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    Response { status, headers, body: response.json().await.unwrap() }
}

async fn a_retried_post_returns_the_first_response_and_does_nothing_twice(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let sign_up = json!({"guardian": {"email": "p@example.com", "password": "a long password", "name": "P", "locale": "en", "time_zone": "UTC"}});
    let first = post_with_key(&app, "/v1/families", None, "signup-1", sign_up.clone()).await;
    let again = post_with_key(&app, "/v1/families", None, "signup-1", sign_up.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    // The sign-up's answer held a session token, shown once: the retry is
    // told the family exists, and signs in for a token of its own.
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(again.body["error"]["code"], "idempotent_request_done");
    let mut other = sign_up.clone();
    other["guardian"]["name"] = "Q".into();
    let reused = post_with_key(&app, "/v1/families", None, "signup-1", other).await;
    assert_eq!(reused.status, StatusCode::CONFLICT);
    assert_eq!(reused.body["error"]["code"], "idempotency_key_reused");

    let token = first.body["token"].as_str().unwrap();
    let subscribe = json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]});
    let sub_a = post_with_key(&app, "/v1/subscriptions", Some(token), "sub-1", subscribe.clone()).await;
    let sub_b = post_with_key(&app, "/v1/subscriptions", Some(token), "sub-1", subscribe).await;
    assert_eq!(sub_a.body, sub_b.body);
    assert_eq!(sub_b.headers["idempotent-replayed"], "true");
    let subscription_id = sub_a.body["subscription"]["id"].as_str().unwrap();
    let path = format!("/v1/subscriptions/{subscription_id}/cancellations");
    app.set_clock("2027-01-20T00:00:00Z").await;
    let cancel_a = post_with_key(&app, &path, Some(token), "cancel-1", json!({"option": "end_of_period"})).await;
    let cancel_b = post_with_key(&app, &path, Some(token), "cancel-1", json!({"option": "end_of_period"})).await;
    assert_eq!(cancel_a.status, StatusCode::CREATED, "{}", cancel_a.body);
    assert_eq!(cancel_a.body["receipt"]["id"], cancel_b.body["receipt"]["id"]);
    // A refused request is replayed as refused, in the same words.
    let refused_a = post_with_key(&app, &path, Some(token), "cancel-2", json!({"option": "end_of_period"})).await;
    let refused_b = post_with_key(&app, &path, Some(token), "cancel-2", json!({"option": "end_of_period"})).await;
    assert_eq!(refused_a.status, StatusCode::CONFLICT);
    assert_eq!(refused_a.body, refused_b.body);
    let family_id = first.body["family"]["id"].as_str().unwrap();
    let statement = app.get(&format!("/v1/families/{family_id}/statement"), Some(token)).await;
    assert_eq!(entries(statement.body["entries"].as_array().unwrap(), "charge").len(), 1);
    // A key from another caller is another key.
    let stranger = app.sign_up("s@example.com").await;
    let theirs = post_with_key(
        &app,
        "/v1/subscriptions",
        Some(&stranger.token),
        "sub-1",
        json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]}),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    assert_ne!(theirs.body["subscription"]["id"], sub_a.body["subscription"]["id"]);
}

/// A server claimed the key, then died before answering (SIGKILL, a crash):
/// while it beats its claim holds (409 in progress); once it has stopped,
/// the client's retry runs at once, on any server — not a minute later.
async fn a_key_held_by_a_server_that_died_is_freed_for_the_retry_at_once(engine: Engine) {
    use sha2::{Digest, Sha256};
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let body = json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]});
    let scope = format!("{}:/v1/subscriptions", hex::encode(Sha256::digest(format!("Bearer {}", parent.token))));
    let body_sha256 = hex::encode(Sha256::digest(serde_json::to_vec(&body).unwrap()));
    let now = jiff::Timestamp::now();
    let store = &app.state.store;
    store.process_seen("prc_other", now).await.unwrap();
    let window = baobao_server::idempotency::replay_window_start(now);
    let claimed = store.claim_idempotency_key(&scope, "retry-1", &body_sha256, now, window, "prc_other").await.unwrap();
    assert!(matches!(claimed, baobao_store::requests::Claim::Claimed));

    let held = post_with_key(&app, "/v1/subscriptions", Some(&parent.token), "retry-1", body.clone()).await;
    assert_eq!(
        (held.status, held.body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_in_progress"))
    );
    // The other server was killed: its last beat was a minute ago.
    let a_minute_ago = now.checked_sub(jiff::SignedDuration::from_secs(60)).unwrap();
    sqlx::query("UPDATE server_processes SET seen_at = $1 WHERE id = 'prc_other'")
        .bind(a_minute_ago.as_microsecond())
        .execute(&mut <sqlx::AnyConnection as sqlx::Connection>::connect(&app.db.url).await.unwrap())
        .await
        .unwrap();
    let retried = post_with_key(&app, "/v1/subscriptions", Some(&parent.token), "retry-1", body.clone()).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    let again = post_with_key(&app, "/v1/subscriptions", Some(&parent.token), "retry-1", body).await;
    assert_eq!(again.body, retried.body, "from now on the saved answer");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 1);
}

/// What a crash leaves when it falls after a change's commit: the key
/// claimed by a process that is gone. An answer committed with the change
/// (`answer_with_change`) is there: the key was never marked changed,
/// because the answer was already saved when the change committed — this
/// is what shows the two are one write. No answer is saved after it.
async fn crash_after_the_commit(app: &TestApp, key: &str, first: &Response) {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.db.url).await.unwrap();
    let row = sqlx::query(
        "SELECT response_status, response_body, CAST(CASE WHEN changed_at IS NULL THEN 1 ELSE 0 END AS BIGINT) AS unmarked \
         FROM idempotency_keys WHERE idempotency_key = $1",
    )
    .bind(key)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let status: Option<i64> = sqlx::Row::get(&row, "response_status");
    let body: Option<String> = sqlx::Row::get(&row, "response_body");
    let unmarked: i64 = sqlx::Row::get(&row, "unmarked");
    assert_eq!(status, Some(i64::from(first.status.as_u16())), "{key}: the answer is saved");
    assert_eq!(body.map(|b| serde_json::from_str::<Value>(&b).unwrap()), Some(first.body.clone()), "{key}");
    assert_eq!(unmarked, 1, "{key}: the answer was committed with the change, not saved after it");
    let gone = sqlx::query("UPDATE idempotency_keys SET claimed_by = 'prc_gone' WHERE idempotency_key = $1")
        .bind(key)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(gone.rows_affected(), 1);
}

/// What a crash leaves when it falls between the commit of a change whose
/// answer is built after it (a deletion, done in several steps) and the
/// save of that answer: the key claimed by a process that is gone, no answer.
async fn crash_before_the_answer_was_saved(app: &TestApp, key: &str) {
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.db.url).await.unwrap();
    let forgotten = sqlx::query(
        "UPDATE idempotency_keys SET response_status = NULL, response_body = NULL, claimed_by = 'prc_gone' \
         WHERE idempotency_key = $1",
    )
    .bind(key)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(forgotten.rows_affected(), 1);
}

async fn a_retry_after_a_crash_between_the_commit_and_the_saved_answer_does_nothing_twice(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app
        .create_plan(json!({"allow_immediate": true, "refund_on_immediate": "prorated", "cooling_off_days": 0}))
        .await;
    let parent = app.sign_up("parent@example.com").await;
    let token = Some(parent.token.as_str());
    let step = async |path: String, key: &str, body: Value| {
        let first = post_with_key(&app, &path, token, key, body.clone()).await;
        assert!(first.status.is_success(), "{path}: {}", first.body);
        crash_after_the_commit(&app, key, &first).await;
        // Carried out, and its answer committed with it: the original answer.
        let retried = post_with_key(&app, &path, token, key, body.clone()).await;
        assert_eq!((retried.status, &retried.body), (first.status, &first.body), "{path}");
        assert_eq!(retried.headers["idempotent-replayed"], "true", "{path}");
        first.body
    };
    let subscribe = json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]});
    let subscribed = step("/v1/subscriptions".into(), "k-subscribe", subscribe).await;
    let subscription = subscribed["subscription"]["id"].as_str().unwrap().to_owned();
    step(format!("/v1/subscriptions/{subscription}/cancellations"), "k-cancel", json!({"option": "end_of_period"}))
        .await;
    step(format!("/v1/subscriptions/{subscription}/resume"), "k-resume", json!({})).await;
    let family = &parent.family_id;
    let child = json!({"name": "小明", "birth_date": "2018-05-01", "consent": true});
    let added = step(format!("/v1/families/{family}/children"), "k-child", child).await;
    step(format!("/v1/families/{family}/exports"), "k-export", json!({})).await;
    let complaint =
        json!({"kind": "other", "subscription_id": subscription, "description": "A question about my bill."});
    let filed = step("/v1/disputes".into(), "k-dispute", complaint).await;
    let dispute = filed["dispute"]["id"].as_str().unwrap().to_owned();
    step(format!("/v1/disputes/{dispute}/messages"), "k-message", json!({"text": "And one more thing."})).await;
    step(format!("/v1/subscriptions/{subscription}/cancellations"), "k-cancel-now", json!({"option": "now"})).await;

    // One of each, as the first runs made them.
    let count = |path: String, field: &'static str| {
        let app = &app;
        async move {
            let listed = app.get(&path, token).await.body;
            listed.get(field).and_then(Value::as_array).map(Vec::len).or_else(|| listed.as_array().map(Vec::len))
        }
    };
    assert_eq!(count(format!("/v1/families/{family}/children"), "children").await, Some(1));
    assert_eq!(count(format!("/v1/families/{family}/exports"), "exports").await, Some(1));
    assert_eq!(count(format!("/v1/families/{family}/disputes"), "disputes").await, Some(1));
    assert_eq!(count(format!("/v1/families/{family}/subscriptions"), "subscriptions").await, Some(1));
    assert_eq!(entries(&app.statement(&parent).await, "charge").len(), 1);
    assert_eq!(entries(&app.statement(&parent).await, "refund").len(), 1);

    // A deletion answers after several commits: a crash before its answer
    // was saved leaves none, and the retry is told so — never a second run.
    let path = format!("/v1/families/{family}/deletion-requests");
    let removal = json!({"child_id": added["id"]});
    let first = post_with_key(&app, &path, token, "k-delete", removal.clone()).await;
    assert!(first.status.is_success(), "{}", first.body);
    crash_before_the_answer_was_saved(&app, "k-delete").await;
    let retried = post_with_key(&app, &path, token, "k-delete", removal.clone()).await;
    assert_eq!(
        (retried.status, retried.body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotent_answer_lost")),
        "{}",
        retried.body
    );
    // The same answer from then on, in the caller's language.
    let mut again = app.client.post(format!("{}{path}", app.address)).header("idempotency-key", "k-delete");
    again = again.header("accept-language", "zh-CN").bearer_auth(&parent.token).json(&removal);
    let again = again.send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(again.headers().get("idempotent-replayed").map(|h| h.to_str().unwrap()), Some("true"));
    let again: Value = again.json().await.unwrap();
    assert!(again["error"]["message"].as_str().unwrap().contains("没有任何操作被重复执行"), "{again}");

    // A billing run is resumable: it runs as a task of its own, none of its
    // commits marks the key, and a retry after a crash runs it again.
    let first = post_with_key(&app, "/v1/admin/billing-runs", Some(&app.admin), "k-run", json!({})).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    crash_before_the_answer_was_saved(&app, "k-run").await;
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.db.url).await.unwrap();
    let marked: i64 = sqlx::Row::get(
        &sqlx::query(
            "SELECT CAST(CASE WHEN changed_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS marked \
             FROM idempotency_keys WHERE idempotency_key = 'k-run'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap(),
        "marked",
    );
    assert_eq!(marked, 0, "a billing run's commits do not mark its key");
    let resumed = post_with_key(&app, "/v1/admin/billing-runs", Some(&app.admin), "k-run", json!({})).await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.body);
    assert!(resumed.headers.get("idempotent-replayed").is_none(), "run again, not replayed");
    assert_ne!(resumed.body["id"], first.body["id"]);
}
