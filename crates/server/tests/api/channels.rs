//! The staff channels end where self-service does — one request, one quote,
//! one signed receipt, one confirmation: support with one-time codes and the
//! supervisor's override, written notices with evidence (including the
//! letter that arrived before a renewal that was charged anyway), staff
//! accounts created by admins, and webhooks to integrators.

use std::sync::{Arc, Mutex};

use baobao_store::Engine;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::email::{SmtpListener, deliver, free_port};
use crate::helpers::{TestApp, amount, entries};

baobao_store::on_both_engines!(
    an_agent_cancels_for_a_guardian_who_reads_out_the_code,
    a_letter_that_arrived_before_the_renewal_ends_the_subscription_then_and_refunds_the_charge,
    written_notices_with_bad_dates_or_evidence_are_refused_and_change_nothing,
    admins_create_staff_accounts,
    integrators_receive_signed_webhooks_retried_until_delivered_and_logged,
    a_cancellation_taking_effect_is_confirmed_by_email_once,
    support_finds_a_family_by_part_of_an_email_or_name_by_id_or_by_receipt_number_even_after_deletion,
);

fn code_from(messages: &[Value]) -> String {
    let subject = messages
        .iter()
        .map(|m| m["subject"].as_str().unwrap())
        .find(|s| s.starts_with("您的宝宝验证码"))
        .expect("a verification code email");
    subject.chars().filter(char::is_ascii_digit).collect()
}

/// One text column of a query, straight from the database.
async fn column(app: &TestApp, sql: &'static str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
    rows.iter().map(|r| r.try_get::<String, _>(0).unwrap()).collect()
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String, String)> {
    app.state.store.audit_entries(0, 1000).await.unwrap().into_iter().map(|e| (e.actor, e.action, e.details)).collect()
}

pub(crate) async fn an_agent_cancels_for_a_guardian_who_reads_out_the_code(engine: Engine) {
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpListener::start(free_port(), &mail_dir.path().join("Maildir"));
    let app = TestApp::spawn_with_smtp(engine, &format!("smtp://127.0.0.1:{}", smtp.port)).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-20T00:00:00Z").await;
    let agent = app.staff("agent@example.com", "agent").await;
    let supervisor = app.staff("supervisor@example.com", "supervisor").await;

    // The agent finds the family by the email the caller gives, and quotes.
    let found = app.get("/v1/families?email=Parent@Example.com", Some(&agent)).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body[0]["id"], parent.family_id.as_str());
    assert_eq!(found.body[0]["subscriptions"][0]["id"], subscription_id.as_str());
    assert_eq!(app.get("/v1/families?email=nobody@example.com", Some(&agent)).await.body, json!([]));
    let quote = app.get(&format!("/v1/subscriptions/{subscription_id}/cancellation-quote"), Some(&agent)).await;
    assert_eq!(quote.status, StatusCode::OK, "{}", quote.body);

    // No code, no cancellation.
    let cancel_path = format!("/v1/subscriptions/{subscription_id}/cancellations");
    let unverified = app.post(&cancel_path, Some(&agent), json!({"option": "end_of_period"})).await;
    assert_eq!(unverified.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unverified.body["error"]["code"], "verification_required");

    let sent =
        app.post(&format!("/v1/families/{}/verification-codes", parent.family_id), Some(&agent), json!({})).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.body["sent_to"], json!(["pa***@example.com"]));
    assert_eq!(deliver(&app, 0).await.delivered, 2, "the subscription confirmation and the code");
    let code = code_from(&smtp.messages());
    assert_eq!(code.len(), 6);
    let text = smtp.messages().iter().find(|m| m["subject"].as_str().unwrap().contains(&code)).unwrap()["text"].clone();
    assert!(text.as_str().unwrap().contains("10 分钟内有效"), "{text}");

    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let refused =
        app.post(&cancel_path, Some(&agent), json!({"option": "end_of_period", "verification_code": wrong})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["error"]["code"], "verification_failed");
    assert_eq!(refused.body["error"]["details"]["attempts_left"], 4);
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "active", "nothing changed");

    let filed = app
        .post(
            &cancel_path,
            Some(&agent),
            json!({"option": "end_of_period", "quote_id": quote.body["id"], "verification_code": code, "reason": {"category": "cost"}}),
        )
        .await;
    assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.body);
    assert_eq!(filed.body["cancellation"]["channel"], "support");
    let body = &filed.body["receipt"]["body"];
    assert_eq!(body["channel"], "support");
    assert_eq!(body["verification"], "one_time_code");
    assert!(body["agent"].as_str().unwrap().starts_with("staff:agent:stf_"), "{body}");
    app.assert_receipt_verifies(&filed.body["receipt"]).await;
    // The same request, the same receipt, the same confirmation as self-service.
    assert_eq!(deliver(&app, 0).await.delivered, 1);
    assert!(smtp.messages().iter().any(|m| m["subject"].as_str().unwrap().starts_with("我们已收到您的取消申请")));

    // A code works once.
    assert_eq!(
        app.post(&format!("/v1/subscriptions/{subscription_id}/resume"), Some(&parent.token), json!({})).await.status,
        StatusCode::OK
    );
    let reused =
        app.post(&cancel_path, Some(&agent), json!({"option": "end_of_period", "verification_code": code})).await;
    assert_eq!(reused.body["error"]["code"], "verification_expired", "{}", reused.body);

    // Three codes per quarter hour per family, then a pause.
    for _ in 0..2 {
        let again =
            app.post(&format!("/v1/families/{}/verification-codes", parent.family_id), Some(&agent), json!({})).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    }
    let paused =
        app.post(&format!("/v1/families/{}/verification-codes", parent.family_id), Some(&agent), json!({})).await;
    assert_eq!(paused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(paused.body["error"]["code"], "too_many_codes");

    // Five wrong tries kill a code, even the right one after them.
    deliver(&app, 0).await;
    let mut codes: Vec<String> = smtp
        .messages()
        .iter()
        .filter_map(|m| m["subject"].as_str().unwrap().strip_prefix("您的宝宝验证码：").map(str::to_owned))
        .collect();
    codes.retain(|c| *c != code);
    assert_eq!(codes.len(), 2);
    for _ in 0..5 {
        let guess = app
            .post(&cancel_path, Some(&agent), json!({"option": "end_of_period", "verification_code": "000000"}))
            .await;
        assert!(
            ["verification_failed", "verification_expired"].contains(&guess.body["error"]["code"].as_str().unwrap())
        );
    }
    for latest in &codes {
        let late =
            app.post(&cancel_path, Some(&agent), json!({"option": "end_of_period", "verification_code": latest})).await;
        assert_eq!(late.body["error"]["code"], "verification_expired", "{}", late.body);
    }

    // Only a supervisor overrides, and only with a written reason.
    let reason = "Guardian in hospital; spouse called with the family's documents.";
    let agent_override = app
        .post(&cancel_path, Some(&agent), json!({"option": "end_of_period", "verification_override_reason": reason}))
        .await;
    assert_eq!(agent_override.status, StatusCode::FORBIDDEN);
    assert_eq!(agent_override.body["error"]["code"], "override_not_allowed");
    let short = app
        .post(&cancel_path, Some(&supervisor), json!({"option": "end_of_period", "verification_override_reason": "ok"}))
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    let overridden = app
        .post(
            &cancel_path,
            Some(&supervisor),
            json!({"option": "end_of_period", "verification_override_reason": reason}),
        )
        .await;
    assert_eq!(overridden.status, StatusCode::CREATED, "{}", overridden.body);
    assert_eq!(overridden.body["receipt"]["body"]["verification"], "supervisor_override");
    let audit = audit_actions(&app).await;
    let logged =
        audit.iter().find(|(_, action, _)| action == "verification.overridden").expect("the override is audited");
    assert!(logged.0.starts_with("staff:supervisor:"), "{logged:?}");
    assert!(logged.2.contains("Guardian in hospital"), "{logged:?}");
    assert!(audit.iter().any(|(_, action, _)| action == "verification.code_wrong"));
    assert!(audit.iter().any(|(_, action, _)| action == "staff.family_found"));
    // Codes are stored hashed: the plain code is nowhere in the table.
    let stored = column(&app, "SELECT code_sha256 FROM verification_codes").await;
    assert!(stored.iter().all(|h| h.len() == 64 && *h != code));
}

fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {text}\n%%EOF\n").into_bytes()
}

pub(crate) async fn a_letter_that_arrived_before_the_renewal_ends_the_subscription_then_and_refunds_the_charge(
    engine: Engine,
) {
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpListener::start(free_port(), &mail_dir.path().join("Maildir"));
    let app = TestApp::spawn_with_smtp(engine, &format!("smtp://127.0.0.1:{}", smtp.port)).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let agent = app.staff("agent@example.com", "agent").await;
    let compliance = app.staff("compliance@example.com", "compliance").await;
    // Notice deadline 3 Feb 10:00 (Shanghai); the letter arrived on 2 Feb
    // but was registered on 12 Feb, after the renewal on 10 Feb was charged.
    app.set_clock("2027-02-12T03:00:00Z").await;
    app.billing_run().await;
    let charges = entries(&app.statement(&parent).await, "charge").len();
    assert_eq!(charges, 2, "the renewal was charged");
    deliver(&app, 0).await;

    let letter = pdf("Please cancel my subscription. Wang Fang, 2 Feb 2027");
    let registered = app
        .post(
            "/v1/written-notices",
            Some(&agent),
            json!({
                "subscription_id": subscription_id,
                "received_on": "2027-02-02",
                "sender": "王芳, 上海市徐汇区",
                "tracking_number": "EMS1234567890CN",
                "evidence": {"content_type": "application/pdf", "content_base64": STANDARD.encode(&letter)},
            }),
        )
        .await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.body);
    let cancellation = &registered.body["cancellation"];
    assert_eq!(cancellation["channel"], "written_notice");
    assert_eq!(cancellation["received_at"], "2027-02-01T16:00:00Z", "the start of 2 Feb in the family's zone");
    assert_eq!(cancellation["effective_at"], "2027-02-10T02:00:00Z", "the end of the period the letter was in");
    assert_eq!(cancellation["status"], "effective");
    let notice = &registered.body["written_notice"];
    let sha256 = hex::encode(Sha256::digest(&letter));
    assert_eq!(notice["evidence_sha256"], sha256.as_str());
    assert_eq!(notice["late_charges_refunded"], 1);
    let receipt = &registered.body["receipt"];
    assert_eq!(receipt["body"]["channel"], "written_notice");
    assert_eq!(receipt["body"]["written_notice"]["evidence_sha256"], sha256.as_str());
    assert_eq!(receipt["body"]["written_notice"]["tracking_number"], "EMS1234567890CN");
    app.assert_receipt_verifies(receipt).await;

    // The charge for the period after the notice is refunded, in full.
    let statement = app.statement(&parent).await;
    let refunds = entries(&statement, "refund");
    assert_eq!(refunds.len(), 1, "{statement:?}");
    assert_eq!(amount(refunds[0]), 3900);
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "cancelled");
    let entitlement_key = app.api_key("edu").await;
    let entitled =
        app.get(&format!("/v1/entitlements?family_id={}&service=edu", parent.family_id), Some(&entitlement_key)).await;
    assert_eq!(entitled.body["entitled"], false, "{}", entitled.body);

    // The guardian is told, in their language, and why.
    assert_eq!(deliver(&app, 0).await.delivered, 2);
    let messages = smtp.messages();
    let refund_mail =
        messages.iter().find(|m| m["subject"].as_str().unwrap().ends_with("的退款")).expect("a refund email");
    let text = refund_mail["text"].as_str().unwrap();
    assert!(text.contains("39.00") && text.contains("2027-02-10") && text.contains("原因"), "{text}");
    let received =
        messages.iter().find(|m| m["subject"].as_str().unwrap().starts_with("我们已收到您的取消申请")).unwrap();
    assert!(received["text"].as_str().unwrap().contains("已于 2027-02-10 10:00 生效"), "{}", received["text"]);

    // The evidence, stored sealed under the family and its hash, read by
    // staff (audited), not by guardians.
    let family_evidence = app.data_dir.path().join("evidence").join(&parent.family_id);
    let stored = family_evidence.join(&sha256);
    let sealed = std::fs::read(&stored).unwrap();
    assert!(sealed.starts_with(b"baobao-sealed-v1"), "sealed at rest");
    assert!(!sealed.windows(10).any(|w| w == b"Wang Fang,"), "no letter text on disk");
    let notice_id = notice["id"].as_str().unwrap();
    for token in [&agent, &compliance] {
        let response = app
            .client
            .get(format!("{}/v1/written-notices/{notice_id}/evidence", app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/pdf");
        assert_eq!(response.bytes().await.unwrap().as_ref(), letter.as_slice());
    }
    let guardian_read = app.get(&format!("/v1/written-notices/{notice_id}/evidence"), Some(&parent.token)).await;
    assert_eq!(guardian_read.status, StatusCode::FORBIDDEN);
    assert_eq!(audit_actions(&app).await.iter().filter(|(_, a, _)| a == "evidence.read").count(), 2);

    // Today's queue (the support office's day, UTC here) lists it.
    let queue = app.get("/v1/written-notices", Some(&agent)).await;
    assert_eq!(queue.body["date"], "2027-02-12");
    assert_eq!(queue.body["written_notices"][0]["id"], notice_id);
    assert_eq!(app.get("/v1/written-notices?date=2027-02-11", Some(&agent)).await.body["written_notices"], json!([]));

    // When the family's personal data goes, the letter goes with it; its hash stays.
    let deleted =
        app.post(&format!("/v1/families/{}/deletion-requests", parent.family_id), Some(&parent.token), json!({})).await;
    assert_eq!(deleted.status, StatusCode::CREATED, "{}", deleted.body);
    assert!(!stored.exists() && !family_evidence.exists(), "the evidence file is deleted");
    assert!(app.state.vault.file_keys().unwrap().is_empty(), "and its key destroyed");
    let certificate = app
        .get(
            &format!("/v1/deletion-certificates/{}", deleted.body["certificate_id"].as_str().unwrap()),
            Some(&compliance),
        )
        .await;
    let listed = certificate.body["body"]["deleted"].as_array().unwrap();
    assert!(listed.iter().any(|d| d["category"] == "written_notices" && d["count"] == 1), "{listed:?}");
    let queue = app.get("/v1/written-notices", Some(&agent)).await;
    assert_eq!(queue.body["written_notices"][0]["sender"], "");
    assert_eq!(queue.body["written_notices"][0]["evidence_sha256"], sha256.as_str());
}

async fn written_notices_with_bad_dates_or_evidence_are_refused_and_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let agent = app.staff("agent@example.com", "agent").await;
    app.set_clock("2027-06-01T03:00:00Z").await;
    let letter = STANDARD.encode(pdf("cancel"));
    let png = STANDARD.encode([0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]);
    let too_big = STANDARD.encode(vec![b'a'; 4 * 1024 * 1024 + 1]);
    let cases = [
        (json!({"received_on": "2027-06-02"}), letter.as_str(), "application/pdf", "received_in_future"),
        (json!({"received_on": "2027-02-01"}), letter.as_str(), "application/pdf", "received_too_long_ago"),
        (json!({"received_on": "2 June"}), letter.as_str(), "application/pdf", "invalid_field"),
        (json!({}), letter.as_str(), "application/pdf", "invalid_field"),
        (json!({"received_on": "2027-05-30"}), letter.as_str(), "application/zip", "evidence_type_not_allowed"),
        (json!({"received_on": "2027-05-30"}), png.as_str(), "application/pdf", "evidence_type_mismatch"),
        (json!({"received_on": "2027-05-30"}), "not base64!", "application/pdf", "invalid_field"),
        (json!({"received_on": "2027-05-30"}), too_big.as_str(), "text/plain", "evidence_too_large"),
    ];
    for (date, content, content_type, code) in cases {
        let mut body = json!({
            "subscription_id": subscription_id,
            "sender": "王芳",
            "evidence": {"content_type": content_type, "content_base64": content},
        });
        for (key, value) in date.as_object().unwrap() {
            body[key] = value.clone();
        }
        let response =
            app.request(reqwest::Method::POST, "/v1/written-notices", Some(&agent), Some(body), "zh-CN").await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{code}: {}", response.body);
        assert_eq!(response.body["error"]["code"], code, "{}", response.body);
        assert!(!response.body["error"]["message"].as_str().unwrap().is_empty());
    }
    let missing_sender = app
        .post("/v1/written-notices", Some(&agent), json!({"subscription_id": subscription_id, "received_on": "2027-05-30", "sender": " ", "evidence": {"content_type": "application/pdf", "content_base64": letter}}))
        .await;
    assert_eq!(missing_sender.body["error"]["details"]["field"], "sender");
    let unknown = app
        .post("/v1/written-notices", Some(&agent), json!({"subscription_id": "sub_nothing", "received_on": "2027-05-30", "sender": "王芳", "evidence": {"content_type": "application/pdf", "content_base64": letter}}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(!app.data_dir.path().join("evidence").exists(), "no file kept for a refused notice");
    assert_ne!(app.subscription(&parent, &subscription_id).await["status"], "cancelled");
    assert_eq!(app.get("/v1/written-notices", Some(&agent)).await.body["written_notices"], json!([]));
}

async fn admins_create_staff_accounts(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let created = app
        .post(
            "/v1/staff",
            Some(&app.admin),
            json!({"email": "New.Agent@example.com", "password": "a long password", "role": "agent"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["email"], "new.agent@example.com");
    assert_eq!(created.body["role"], "agent");
    let signed_in = app
        .post(
            "/v1/auth/sessions",
            None,
            json!({"email": "new.agent@example.com", "password": "a long password", "realm": "staff"}),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::CREATED, "{}", signed_in.body);
    let again = app
        .post(
            "/v1/staff",
            Some(&app.admin),
            json!({"email": "new.agent@example.com", "password": "a long password", "role": "agent"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let bad_role = app
        .post(
            "/v1/staff",
            Some(&app.admin),
            json!({"email": "x@example.com", "password": "a long password", "role": "owner"}),
        )
        .await;
    assert_eq!(bad_role.body["error"]["details"]["field"], "role");
    let weak = app
        .post("/v1/staff", Some(&app.admin), json!({"email": "y@example.com", "password": "short", "role": "agent"}))
        .await;
    assert_eq!(weak.body["error"]["details"]["field"], "password");
    let audit = audit_actions(&app).await;
    assert!(audit.iter().any(|(actor, action, _)| action == "staff.created" && actor.starts_with("staff:admin:")));
    let rows = column(&app, "SELECT password_hash FROM staff").await;
    assert!(rows.iter().all(|h| h.starts_with("$argon2id$")));
}

/// A receiver that answers 500 to its first request, then 200, and keeps
/// what it got.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, String)>>>,
}

async fn start_receiver() -> (Receiver, String) {
    let receiver = Receiver::default();
    let kept = receiver.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                let signature =
                    headers.get("baobao-signature").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                let mut got = kept.got.lock().unwrap();
                got.push((signature, body));
                if got.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, url)
}

fn check_signature(secret: &str, header: &str, body: &str) {
    use hmac::{Hmac, KeyInit, Mac};
    let (t, v1) = header.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&hex::decode(v1).unwrap()).expect("the signature verifies with the endpoint's secret");
}

pub(crate) async fn integrators_receive_signed_webhooks_retried_until_delivered_and_logged(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (receiver, url) = start_receiver().await;
    let endpoint = app.post("/v1/webhook-endpoints", Some(&app.admin), json!({"service": "edu", "url": url})).await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.body);
    let secret = endpoint.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let endpoint_id = endpoint.body["id"].as_str().unwrap().to_owned();
    let listed = app.get("/v1/webhook-endpoints", Some(&app.admin)).await;
    assert!(listed.body[0].get("secret").is_none(), "the secret is shown once");

    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let first = deliver(&app, 0).await;
    assert_eq!((first.delivered, first.retrying), (0, 1), "the receiver failed once");
    assert_eq!(deliver(&app, 0).await.delivered, 0, "not retried before its time");
    assert_eq!(deliver(&app, 60).await.delivered, 1);

    app.set_clock("2027-02-11T00:00:00Z").await;
    app.billing_run().await;
    let cancel_path = format!("/v1/subscriptions/{subscription_id}/cancellations");
    assert_eq!(
        app.post(&cancel_path, Some(&parent.token), json!({"option": "end_of_period"})).await.status,
        StatusCode::CREATED
    );
    app.post(&format!("/v1/subscriptions/{subscription_id}/resume"), Some(&parent.token), json!({})).await;
    assert_eq!(app.post(&cancel_path, Some(&parent.token), json!({"option": "now"})).await.status, StatusCode::CREATED);
    assert_eq!(deliver(&app, 0).await.delivered, 5);
    assert_eq!(
        deliver(&app, 3600).await,
        baobao_server::services::delivery::DeliveryReport::default(),
        "each event once"
    );

    let got = receiver.got.lock().unwrap().clone();
    let mut types = Vec::new();
    let mut ids = Vec::new();
    for (signature, body) in &got {
        check_signature(&secret, signature, body);
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["service"], "edu");
        assert_eq!(event["data"]["subscription_id"], subscription_id.as_str());
        assert!(!body.contains("parent@example.com") && !body.contains("王芳"), "no personal data: {body}");
        types.push(event["type"].as_str().unwrap().to_owned());
        ids.push(event["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(got.len(), 7);
    assert_eq!(ids[0], ids[1], "a retry is the same event");
    let mut distinct = types.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        [
            "subscription.created",
            "subscription.renewed",
            "cancellation.scheduled",
            "cancellation.withdrawn",
            "subscription.cancelled",
            "refund.issued"
        ]
    );
    let refund = got
        .iter()
        .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
        .find(|e| e["type"] == "refund.issued")
        .unwrap();
    assert!(refund["data"]["amount"]["amount_minor"].as_i64().unwrap() > 0);

    // The delivery log, for staff: every event, its attempts and state.
    let agent = app.staff("agent@example.com", "agent").await;
    let log = app.get(&format!("/v1/webhook-endpoints/{endpoint_id}/deliveries"), Some(&agent)).await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    let log = log.body.as_array().unwrap().clone();
    assert_eq!(log.len(), 6);
    assert!(log.iter().all(|d| d["status"] == "sent"));
    let created = log.iter().find(|d| d["event_type"] == "subscription.created").unwrap();
    assert_eq!(created["attempts"], 2);
    assert_eq!(created["last_error"], "HTTP 500");
}

async fn a_cancellation_taking_effect_is_confirmed_by_email_once(engine: Engine) {
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpListener::start(free_port(), &mail_dir.path().join("Maildir"));
    let app = TestApp::spawn_with_smtp(engine, &format!("smtp://127.0.0.1:{}", smtp.port)).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-20T00:00:00Z").await;
    app.cancel(&parent, &subscription_id, json!({"option": "end_of_period"})).await;
    app.set_clock("2027-02-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["cancellations_effective"], 1);
    app.billing_run().await;
    assert_eq!(deliver(&app, 0).await.delivered, 3, "subscribed, cancellation received, ended");
    let messages = smtp.messages();
    let ended: Vec<_> = messages.iter().filter(|m| m["subject"] == "月度会员 已结束").collect();
    assert_eq!(ended.len(), 1, "{messages:?}");
    assert!(ended[0]["text"].as_str().unwrap().contains("已于 2027-02-10 10:00 结束"), "{}", ended[0]["text"]);
}

pub(crate) async fn support_finds_a_family_by_part_of_an_email_or_name_by_id_or_by_receipt_number_even_after_deletion(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let agent = app.staff("agent@example.com", "agent").await;
    let parent = app.sign_up("wang.fang@example.com").await;
    app.sign_up("li.lei@example.com").await;
    let receipt = app.subscribe(&parent, &plan).await["receipt"].clone();
    let number = receipt["body"]["receipt_number"].as_str().unwrap().to_owned();
    let found = |q: String| {
        let app = &app;
        let agent = agent.clone();
        async move {
            let response = app.get(&format!("/v1/families?q={q}"), Some(&agent)).await;
            assert_eq!(response.status, StatusCode::OK, "{q}: {}", response.body);
            response.body.as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    assert_eq!(found("WANG.f".into()).await, vec![parent.family_id.clone()], "part of the email, any case");
    assert_eq!(found("example.com".into()).await.len(), 2);
    assert_eq!(found("%25%25%25".into()).await, Vec::<String>::new(), "a wildcard is a character like any other");
    assert_eq!(found(parent.family_id.clone()).await, vec![parent.family_id.clone()]);
    assert_eq!(found(number.to_lowercase()).await, vec![parent.family_id.clone()], "a receipt number");
    let short = app.get("/v1/families?q=ab", Some(&agent)).await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", short.body);

    // A parent who gave a phone number is found by its digits, however
    // either side wrote them.
    let sign_up = |phone: &str| {
        json!({"guardian": {"email": "zhang@example.com", "password": "a long password", "name": "张伟",
            "phone": phone, "locale": "zh-CN", "time_zone": "Asia/Shanghai"}})
    };
    for (locale, words) in [("en", "is not a phone number"), ("zh-CN", "不是有效的电话号码")] {
        let refused = app.request(reqwest::Method::POST, "/v1/families", None, Some(sign_up("call me")), locale).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert_eq!(refused.body["error"]["details"]["field"], "phone");
        assert!(refused.body["error"]["message"].as_str().unwrap().contains(words), "{}", refused.body);
    }
    let caller = app.post("/v1/families", None, sign_up("+86 138-0013-8000")).await;
    assert_eq!(caller.status, StatusCode::CREATED, "{}", caller.body);
    assert_eq!(caller.body["guardian"]["phone"], "+86 138-0013-8000");
    let caller_family = caller.body["family"]["id"].as_str().unwrap().to_owned();
    for typed in ["138 0013", "13800138000", "(0013) 8000", "+8613800138000"] {
        assert_eq!(found(typed.replace(' ', "%20").replace('+', "%2B")).await, vec![caller_family.clone()], "{typed}");
    }
    assert_eq!(found("9999".into()).await, Vec::<String>::new());

    // After "delete everything" the guardian's email and name are gone, but
    // the receipts the law keeps still lead support to the family.
    app.cancel(&parent, receipt["body"]["subscription_id"].as_str().unwrap(), json!({"option": "now"})).await;
    let deleted =
        app.post(&format!("/v1/families/{}/deletion-requests", parent.family_id), Some(&parent.token), json!({})).await;
    assert_eq!(deleted.status, StatusCode::CREATED, "{}", deleted.body);
    assert_eq!(found("wang.fang".into()).await, Vec::<String>::new());
    assert_eq!(found(number).await, vec![parent.family_id.clone()]);
}
