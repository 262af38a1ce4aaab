//! A parent's complaint is answered from the records first: a charge after
//! a cancellation took effect is refunded at once (once, however often the
//! complaint is retried), an "ignored" cancellation is found by its receipt
//! number, a missing refund shows its gateway status, a data complaint its
//! certificate. What the records cannot settle waits for a person, at a
//! level with deadlines the billing run enforces; every step is on the
//! timeline the parent sees, and the dossier checks offline. After the
//! account is closed a kept receipt and a code still let a parent complain,
//! and deleting the family's data leaves nothing of their words behind.

use baobao_server::keys::KeySet;
use baobao_server::services::dispute_dossier;
use baobao_store::{Engine, LedgerEntry};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Guardian, TestApp, amount, entries};

baobao_store::on_both_engines!(
    a_charge_after_the_cancellation_took_effect_is_refunded_at_once_and_only_once,
    an_ignored_cancellation_is_found_by_its_receipt_number_and_an_unregistered_letter_goes_to_a_supervisor,
    a_missing_refund_shows_its_gateway_status_and_a_failed_one_goes_to_a_supervisor,
    a_data_complaint_shows_the_deletion_certificate,
    what_the_records_cannot_settle_climbs_the_levels_on_its_deadlines_and_a_supervisor_decides,
    the_dossier_holds_the_story_and_checks_offline_and_the_report_counts_it,
    after_the_account_closed_a_kept_receipt_and_a_code_file_a_complaint_and_deletion_leaves_no_words,
    bad_complaints_are_refused_and_write_nothing,
);

/// A subscription whose end-of-period cancellation took effect on 10
/// February, and the guardian.
async fn ended_subscription(app: &TestApp) -> (Guardian, String, Value) {
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-20T00:00:00Z").await;
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "end_of_period"})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    app.set_clock("2027-02-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["cancellations_effective"], 1);
    (parent, subscription_id, cancelled.body)
}

/// A charge the gateway took for a period after the cancellation took
/// effect (a gateway's double charge, an operator's mistake): what the
/// records must catch.
async fn stray_charge(app: &TestApp, subscription_id: &str, start: &str, end: &str) -> String {
    let id = baobao_domain::ids::SubscriptionId::parse(subscription_id).unwrap();
    let subscription = app.state.store.subscription(&id).await.unwrap();
    let entry = LedgerEntry::charge(
        baobao_domain::ids::LedgerEntryId::from_random([9; 16]),
        &subscription,
        (start.parse().unwrap(), end.parse().unwrap()),
        baobao_domain::Money { amount_minor: 3900, currency: baobao_domain::Currency::parse("CNY").unwrap() },
        format!("charge:{subscription_id}:stray"),
        "sim:charge:stray".to_owned(),
        "renewal",
        start.parse().unwrap(),
    );
    let mut tx = app.state.store.begin().await.unwrap();
    assert!(tx.append_ledger_entry(&entry).await.unwrap());
    tx.commit().await.unwrap();
    entry.id.to_string()
}

async fn file(app: &TestApp, token: &str, body: Value) -> Value {
    let response = app.post("/v1/disputes", Some(token), body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    response.body
}

fn timeline_kinds(detail: &Value) -> Vec<String> {
    detail["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

async fn a_charge_after_the_cancellation_took_effect_is_refunded_at_once_and_only_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, subscription_id, _) = ended_subscription(&app).await;
    let charge_id = stray_charge(&app, &subscription_id, "2027-02-10T02:00:00Z", "2027-03-10T02:00:00Z").await;

    let body = json!({"kind": "charge_after_cancellation", "ledger_entry_id": charge_id,
        "description": "我已经取消了订阅，为什么二月份还扣了 39 元？"});
    let detail = file(&app, &parent.token, body.clone()).await;
    let dispute = &detail["dispute"];
    assert_eq!(dispute["status"], "resolved", "{detail}");
    assert_eq!(dispute["outcome"], "refunded");
    assert_eq!(dispute["settled_automatically"], true);
    assert_eq!(dispute["about"]["subscription_id"], subscription_id.as_str(), "found from the charge");
    assert_eq!(timeline_kinds(&detail), ["filed", "records_checked", "refunded", "resolved"]);
    let checked = &detail["timeline"][1]["facts"];
    assert_eq!(checked["late_charges"], json!([charge_id]), "{checked}");
    // The receipt of the filing says what was settled, and verifies.
    app.assert_receipt_verifies(&detail["receipt"]).await;
    let receipt = &detail["receipt"]["body"];
    assert_eq!((receipt["kind"].as_str(), receipt["settled"].as_str()), (Some("dispute"), Some("refunded")));
    assert_eq!(receipt["refunds"].as_array().unwrap().len(), 1);

    // The refund went to the gateway at once, and the parent was told.
    let statement = app.statement(&parent).await;
    let refunds = entries(&statement, "refund");
    assert_eq!(refunds.len(), 1, "{statement:?}");
    assert_eq!(amount(refunds[0]), 3900);
    assert_eq!(refunds[0]["status"], "succeeded");
    let email = app.queued_email(&parent, "dispute_filed", baobao_domain::Locale::En).await;
    assert!(email.contains("our records settle it at once: refunded"), "{email}");

    // Complaining again — twice at once, and with a retried key — refunds nothing more.
    let (again, twice) = tokio::join!(file(&app, &parent.token, body.clone()), file(&app, &parent.token, body.clone()));
    for detail in [&again, &twice] {
        assert_eq!(detail["dispute"]["outcome"], "refunded", "the records still show the charge was late");
        assert!(detail["receipt"]["body"]["refunds"].is_null(), "no new refund: {detail}");
    }
    let keyed = || async {
        let request = app.client.post(format!("{}/v1/disputes", app.address)).bearer_auth(&parent.token);
        let response = request.header("idempotency-key", "complaint-1").json(&body).send().await.unwrap();
        response.json::<Value>().await.unwrap()
    };
    let (first, replay) = (keyed().await, keyed().await);
    assert_eq!(first["dispute"]["id"], replay["dispute"]["id"], "a retry gets the same dispute");
    assert_eq!(entries(&app.statement(&parent).await, "refund").len(), 1, "one refund, whatever retries happen");

    // What was decided automatically is in the audit log.
    let actions: Vec<String> =
        app.state.store.audit_entries(0, 1000).await.unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"dispute.filed".to_owned()) && actions.contains(&"dispute.records_checked".to_owned()));
    let mine = app.get("/v1/disputes", Some(&parent.token)).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 4, "{}", mine.body);
}

async fn an_ignored_cancellation_is_found_by_its_receipt_number_and_an_unregistered_letter_goes_to_a_supervisor(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (parent, subscription_id, cancelled) = ended_subscription(&app).await;
    let number = cancelled["receipt"]["body"]["receipt_number"].as_str().unwrap();

    let detail = file(
        &app,
        &parent.token,
        json!({"kind": "cancellation_ignored", "receipt_number": number, "description": "You ignored my cancellation."}),
    )
    .await;
    assert_eq!(detail["dispute"]["outcome"], "answered_from_records", "{detail}");
    let facts = &detail["timeline"][1]["facts"];
    assert_eq!(facts["status"], "effective");
    assert_eq!(facts["receipt_number"], number);
    assert_eq!(facts["effective_at"], "2027-02-10T02:00:00Z", "the end of the period paid for");

    // A letter the records never saw: a supervisor, at once, not support.
    let letter = file(
        &app,
        &parent.token,
        json!({"kind": "cancellation_ignored", "subscription_id": subscription_id, "tracking_number": "SF1234567890",
            "description": "I posted a letter on 2027-01-15 and nobody registered it."}),
    )
    .await;
    assert_eq!(letter["dispute"]["status"], "open");
    assert_eq!(letter["dispute"]["level"], "supervisor", "{letter}");
    assert_eq!(letter["timeline"][1]["facts"]["tracking_number_registered"], false);
    let supervisor = app.staff("supervisor@example.com", "supervisor").await;
    let queue = app.get("/v1/disputes?level=supervisor", Some(&supervisor)).await;
    assert_eq!(queue.body[0]["id"], letter["dispute"]["id"], "{}", queue.body);
}

pub(crate) async fn a_missing_refund_shows_its_gateway_status_and_a_failed_one_goes_to_a_supervisor(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-25T00:00:00Z").await;
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    let sent = file(
        &app,
        &parent.token,
        json!({"kind": "refund_missing", "subscription_id": subscription_id, "description": "Where is my refund?"}),
    )
    .await;
    assert_eq!(sent["dispute"]["outcome"], "answered_from_records", "{sent}");
    let shown = &sent["timeline"][1]["facts"]["refunds"][0];
    assert_eq!(shown["status"], "succeeded", "{shown}");
    assert!(shown["gateway_reference"].as_str().unwrap().starts_with("sim:refund:"));

    // Another family whose refund the gateway refuses for good.
    app.post("/v1/admin/gateway", Some(&app.admin), json!({"decline_charges": false, "fail_refunds": true})).await;
    let other = app.sign_up("other@example.com").await;
    let other_subscription = app.subscribe(&other, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.cancel(&other, &other_subscription, json!({"option": "now"})).await.status, StatusCode::CREATED);
    for attempt in 2..=baobao_server::services::money::MONEY_ATTEMPTS_MAX {
        let later = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(7 * attempt)).unwrap();
        baobao_server::services::money::settle_due(&app.state, later).await.unwrap();
    }
    let failed = file(
        &app,
        &other.token,
        json!({"kind": "refund_missing", "subscription_id": other_subscription, "description": "No refund yet."}),
    )
    .await;
    assert_eq!(failed["timeline"][1]["facts"]["refunds"][0]["status"], "failed", "{failed}");
    assert_eq!(
        (failed["dispute"]["status"].as_str(), failed["dispute"]["level"].as_str()),
        (Some("open"), Some("supervisor"))
    );
    assert!(failed["dispute"]["first_responded_at"].is_string(), "the records answered at once");
}

async fn a_data_complaint_shows_the_deletion_certificate(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, _, _) = ended_subscription(&app).await;
    let deletion = app
        .post(
            &format!("/v1/families/{}/deletion-requests", parent.family_id),
            Some(&parent.token),
            json!({"service": "edu"}),
        )
        .await;
    assert!(deletion.status.is_success(), "{}", deletion.body);
    let certificate_id = deletion.body["certificate_id"].as_str().unwrap().to_owned();
    let detail = file(
        &app,
        &parent.token,
        json!({"kind": "data_not_deleted", "family_id": parent.family_id, "description": "Is my child's data gone?"}),
    )
    .await;
    assert_eq!(detail["dispute"]["outcome"], "answered_from_records", "{detail}");
    let facts = &detail["timeline"][1]["facts"];
    assert_eq!(facts["status"], "done", "{facts}");
    assert_eq!(facts["certificate_id"], certificate_id.as_str());
}

pub(crate) async fn what_the_records_cannot_settle_climbs_the_levels_on_its_deadlines_and_a_supervisor_decides(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let agent = app.staff("agent@example.com", "agent").await;
    let supervisor = app.staff("supervisor@example.com", "supervisor").await;
    let finance = app.staff("finance@example.com", "finance").await;
    let detail = file(
        &app,
        &parent.token,
        json!({"kind": "wrong_charge", "subscription_id": subscription_id, "description": "I was charged 39 yuan but the advert said 29.",
            "evidence": [{"content_type": "text/plain", "content_base64": STANDARD.encode("Advert: 29 yuan a month")}]}),
    )
    .await;
    let id = detail["dispute"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (detail["dispute"]["status"].as_str(), detail["dispute"]["level"].as_str()),
        (Some("open"), Some("support"))
    );
    assert_eq!(detail["dispute"]["first_response_due"], "2027-01-11T02:00:00Z", "a day to answer");
    assert_eq!(detail["dispute"]["resolution_due"], "2027-01-17T02:00:00Z", "seven to settle");
    let queue = app.get("/v1/disputes", Some(&agent)).await;
    assert_eq!(queue.body[0]["id"], id.as_str(), "{}", queue.body);

    // Nobody answers within a day: the billing run moves it up, and says so.
    app.set_clock("2027-01-11T03:00:00Z").await;
    assert_eq!(app.billing_run().await["disputes_escalated"], 1);
    assert_eq!(app.billing_run().await["disputes_escalated"], 0, "once per missed deadline");
    let now = app.get(&format!("/v1/disputes/{id}"), Some(&parent.token)).await.body;
    assert_eq!(
        (now["dispute"]["level"].as_str(), now["dispute"]["deadlines_missed"].as_i64()),
        (Some("supervisor"), Some(1))
    );
    assert!(timeline_kinds(&now).ends_with(&["deadline_missed".to_owned(), "escalated".to_owned()]), "{now}");
    let email = app.queued_email(&parent, "dispute_escalated", baobao_domain::Locale::ZhCn).await;
    assert!(email.contains("我们错过了您投诉的处理期限"), "{email}");

    // Staff answer on the timeline; the parent reads it and writes back.
    let path = format!("/v1/disputes/{id}/messages");
    let answer = app.post(&path, Some(&agent), json!({"text": "We are checking the advert."})).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert!(answer.body["dispute"]["first_responded_at"].is_string());
    assert_eq!(app.post(&path, Some(&finance), json!({"text": "x"})).await.status, StatusCode::FORBIDDEN);
    let other = app.sign_up("other@example.com").await;
    assert_eq!(app.post(&path, Some(&other.token), json!({"text": "x"})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/v1/disputes/{id}"), Some(&other.token)).await.status, StatusCode::NOT_FOUND);
    let reply = app.post(&path, Some(&parent.token), json!({"text": "Here is the advert again."})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);

    // Above support an agent cannot decide, nor refund; a parent can only withdraw.
    let resolve = format!("/v1/disputes/{id}/resolve");
    let upheld = json!({"outcome": "refunded", "explanation": "The advert said 29; we refund the difference.", "refund_minor": 1000});
    assert_eq!(app.post(&resolve, Some(&agent), upheld.clone()).await.status, StatusCode::FORBIDDEN);
    let by_parent = app.post(&resolve, Some(&parent.token), upheld.clone()).await;
    assert_eq!(by_parent.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", by_parent.body);
    let too_much = json!({"outcome": "refunded", "explanation": "All of it", "refund_minor": 1_000_000});
    assert_eq!(app.post(&resolve, Some(&supervisor), too_much).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let decided = app.post(&resolve, Some(&supervisor), upheld.clone()).await;
    assert_eq!(decided.status, StatusCode::OK, "{}", decided.body);
    assert_eq!(
        (decided.body["dispute"]["status"].as_str(), decided.body["dispute"]["outcome"].as_str()),
        (Some("resolved"), Some("refunded"))
    );
    let again = app.post(&resolve, Some(&supervisor), upheld).await;
    assert_eq!((again.status, again.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("dispute_resolved")));
    let refunds: Vec<i64> = entries(&app.statement(&parent).await, "refund").iter().map(|e| amount(e)).collect();
    assert_eq!(refunds, [1000], "one refund of what was decided");
    let email = app.queued_email(&parent, "dispute_resolved", baobao_domain::Locale::En).await;
    assert!(email.contains("The advert said 29; we refund the difference."), "{email}");
    let evidence_sha = decided.body["evidence"][0]["sha256"].as_str().unwrap();
    let file = app.get(&format!("/v1/disputes/{id}/evidence/{evidence_sha}"), Some(&supervisor)).await;
    assert_eq!(file.body, "Advert: 29 yuan a month");
}

pub(crate) async fn the_dossier_holds_the_story_and_checks_offline_and_the_report_counts_it(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, subscription_id, _) = ended_subscription(&app).await;
    stray_charge(&app, &subscription_id, "2027-02-10T02:00:00Z", "2027-03-10T02:00:00Z").await;
    let settled = file(
        &app,
        &parent.token,
        json!({"kind": "charge_after_cancellation", "subscription_id": subscription_id,
        "description": "Charged after I cancelled <script>alert(1)</script>"}),
    )
    .await;
    let open = file(&app, &parent.token, json!({"kind": "other", "subscription_id": subscription_id, "description": "Something else.",
        "evidence": [{"content_type": "image/png", "content_base64": STANDARD.encode(b"\x89PNG\r\n\x1a\nnot really an image")}]})).await;
    let id = settled["dispute"]["id"].as_str().unwrap();

    let response = app
        .client
        .get(format!("{}/v1/disputes/{id}/dossier", app.address))
        .bearer_auth(&parent.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dossier.zip");
    std::fs::write(&path, &bytes).unwrap();
    let keys: KeySet = serde_json::from_value(app.get("/.well-known/baobao/keys.json", None).await.body).unwrap();
    let checked = dispute_dossier::verify(&path, &keys).unwrap();
    assert!(checked.receipts >= 4, "subscription, cancellation, refund and the complaint's own: {}", checked.receipts);
    let names: Vec<&str> = checked.manifest.files.iter().map(|f| f.path.as_str()).collect();
    for wanted in ["index.html", "timeline.json", "ledger.csv", "terms.json", "terms-zh-CN.txt", "terms-en.txt"] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut index = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("index.html").unwrap(), &mut index).unwrap();
    assert!(index.contains("投诉材料包 · Complaint dossier"), "both languages");
    assert!(index.contains("&lt;script&gt;") && !index.contains("<script>"), "the parent's words are escaped");
    let mut ledger = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("ledger.csv").unwrap(), &mut ledger).unwrap();
    assert!(ledger.contains("refund"), "{ledger}");
    // The dossier is logged, so that it can be proved issued.
    let sha = baobao_domain::canonical::sha256_hex(&bytes);
    assert_eq!(app.get(&format!("/v1/audit/documents/{sha}"), None).await.status, StatusCode::OK);

    // An altered copy does not verify.
    let mut altered = zip::ZipWriter::new(std::fs::File::create(dir.path().join("altered.zip")).unwrap());
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        if name == "ledger.csv" {
            content = b"nothing to see".to_vec();
        }
        altered.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut altered, &content).unwrap();
    }
    altered.finish().unwrap();
    assert!(dispute_dossier::verify(&dir.path().join("altered.zip"), &keys).is_err());
    // The open one carries its evidence file.
    let open_id = open["dispute"]["id"].as_str().unwrap();
    let other = app.get(&format!("/v1/disputes/{open_id}/dossier"), Some(&parent.token)).await;
    assert_eq!(other.status, StatusCode::OK);

    // Compliance counts the month's disputes.
    let compliance = app.staff("compliance@example.com", "compliance").await;
    let report = app.get("/v1/reports/disputes?month=2027-02", Some(&compliance)).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert_eq!((report.body["disputes"].as_i64(), report.body["settled_automatically"].as_i64()), (Some(2), Some(1)));
    assert_eq!(report.body["settled_automatically_per_mille"], 500);
    assert_eq!(report.body["still_open"], 1);
    let csv = app.get("/v1/reports/disputes?month=2027-02&format=csv", Some(&compliance)).await;
    let csv = csv.body.as_str().unwrap().to_owned();
    assert!(csv.starts_with("month,kind,outcome,disputes,settled_automatically,deadlines_missed\n"), "{csv}");
    assert!(csv.contains("2027-02,charge_after_cancellation,refunded,1,1,0"), "{csv}");
    assert!(csv.contains("2027-02,all,all,2,1,0"), "{csv}");
    let empty = app.get("/v1/reports/disputes?month=2026-12", Some(&compliance)).await;
    assert_eq!(empty.body["disputes"], 0);
    assert_eq!(
        app.get("/v1/reports/disputes?month=2027-13", Some(&compliance)).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

async fn after_the_account_closed_a_kept_receipt_and_a_code_file_a_complaint_and_deletion_leaves_no_words(
    engine: Engine,
) {
    let app = TestApp::spawn(engine).await;
    let (parent, _, cancelled) = ended_subscription(&app).await;
    let number = cancelled["receipt"]["body"]["receipt_number"].as_str().unwrap().to_owned();
    let secret_words = "My son Xiaoming's teacher saw the charge";
    let before = file(
        &app,
        &parent.token,
        json!({"kind": "other", "family_id": parent.family_id, "description": secret_words,
            "evidence": [{"content_type": "text/plain", "content_base64": STANDARD.encode("evidence naming Xiaoming")}]}),
    )
    .await;
    let before_id = before["dispute"]["id"].as_str().unwrap().to_owned();
    let message = app
        .post(&format!("/v1/disputes/{before_id}/messages"), Some(&parent.token), json!({"text": "Xiaoming again"}))
        .await;
    assert_eq!(message.status, StatusCode::CREATED);

    // Delete everything: the account closes.
    let deletion =
        app.post(&format!("/v1/families/{}/deletion-requests", parent.family_id), Some(&parent.token), json!({})).await;
    assert!(deletion.status.is_success(), "{}", deletion.body);
    let certificate = app
        .get(&format!("/v1/deletion-certificates/{}", deletion.body["certificate_id"].as_str().unwrap()), None)
        .await;
    let _ = certificate;
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    for (table, column) in [("disputes", "description"), ("dispute_events", "text")] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {column} FROM {table}")))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for row in rows {
            let text: String = row.try_get(0).unwrap();
            assert!(!text.contains("Xiaoming"), "{table}.{column} still holds the family's words: {text}");
        }
    }
    let removed: i64 = sqlx::query("SELECT COUNT(*) FROM dispute_evidence WHERE removed_at IS NULL")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
    assert_eq!(removed, 0, "evidence files go with the family's data");
    let evidence_dir = app.data_dir.path().join("evidence").join(&parent.family_id);
    assert!(!evidence_dir.exists() || std::fs::read_dir(&evidence_dir).unwrap().next().is_none());

    // The parent kept the cancellation receipt: a code to their address, then the complaint.
    let unknown = app
        .post("/v1/disputes/codes", None, json!({"receipt_number": "BB-20270120-XXXXXXXX", "email": "mum@example.net"}))
        .await;
    let sent =
        app.post("/v1/disputes/codes", None, json!({"receipt_number": number, "email": "mum@example.net"})).await;
    assert_eq!((unknown.status, sent.status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(unknown.body, sent.body, "a receipt number cannot be probed");
    let family_id = baobao_domain::ids::FamilyId::parse(&parent.family_id).unwrap();
    let outbox = app.state.store.outbox_of(&family_id).await.unwrap();
    let code_message = outbox.iter().find(|m| m.template == "dispute_code").expect("a code email");
    assert_eq!(code_message.recipient, "mum@example.net");
    let code: Value = serde_json::from_str(&code_message.payload).unwrap();
    let code = code["code"].as_str().unwrap().to_owned();
    let body = |code: &str, email: &str| {
        json!({"receipt_number": number, "email": email, "code": code, "kind": "charge_after_cancellation",
            "description": "Charged after closing"})
    };
    let mut empty = body(&code, "mum@example.net");
    empty["description"] = json!("  ");
    let refused = app.post("/v1/disputes/by-receipt", None, empty).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    assert_eq!(refused.body["error"]["details"]["field"], "description", "and the code is not spent");
    let wrong = app.post("/v1/disputes/by-receipt", None, body("000000", "mum@example.net")).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong.body);
    let other_address = app.post("/v1/disputes/by-receipt", None, body(&code, "someone@example.net")).await;
    assert_eq!(other_address.status, StatusCode::UNPROCESSABLE_ENTITY, "the code is bound to its address");
    let filed = app.post("/v1/disputes/by-receipt", None, body(&code, "mum@example.net")).await;
    assert_eq!(filed.status, StatusCode::CREATED, "{}", filed.body);
    assert_eq!(filed.body["dispute"]["channel"], "receipt_holder");
    assert_eq!(filed.body["dispute"]["family_id"], parent.family_id.as_str());
    let reused = app.post("/v1/disputes/by-receipt", None, body(&code, "mum@example.net")).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY, "a code works once");
    let outbox = app.state.store.outbox_of(&family_id).await.unwrap();
    assert!(outbox.iter().any(|m| m.template == "dispute_filed" && m.recipient == "mum@example.net"));
    // Support finds it in the queue.
    let agent = app.staff("agent@example.com", "agent").await;
    let queue = app.get("/v1/disputes", Some(&agent)).await;
    assert!(queue.body.as_array().unwrap().iter().any(|d| d["id"] == filed.body["dispute"]["id"]), "{}", queue.body);
}

async fn bad_complaints_are_refused_and_write_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, subscription_id, _) = ended_subscription(&app).await;
    let other = app.sign_up("other@example.com").await;
    let cases = [
        (
            json!({"kind": "angry", "subscription_id": subscription_id, "description": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"kind": "other", "subscription_id": subscription_id, "description": "   "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"kind": "other", "subscription_id": subscription_id, "description": "x".repeat(4001)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"kind": "other", "subscription_id": "sub_nope", "description": "x"}), StatusCode::NOT_FOUND),
        (json!({"kind": "other", "subscription_id": "fam_'--", "description": "x"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"kind": "other", "subscription_id": subscription_id, "description": "x", "forwarded_by": "12315"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"kind": "other", "subscription_id": subscription_id, "description": "x",
            "evidence": [{"content_type": "image/png", "content_base64": STANDARD.encode("not a png")}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"kind": "other", "subscription_id": subscription_id, "description": "x",
            "evidence": vec![json!({"content_type": "text/plain", "content_base64": STANDARD.encode("a")}); 6]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"kind": "other", "subscription_id": subscription_id, "description": "x", "surprise": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (body, status) in cases {
        let response = app.post("/v1/disputes", Some(&parent.token), body.clone()).await;
        assert_eq!(response.status, status, "{body}: {}", response.body);
        assert!(response.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Another family's subscription: not found, and nothing written.
    let theirs = app
        .post(
            "/v1/disputes",
            Some(&other.token),
            json!({"kind": "other", "subscription_id": subscription_id, "description": "x"}),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);
    // Chinese callers are told in Chinese.
    let zh = app
        .request(
            reqwest::Method::POST,
            "/v1/disputes",
            Some(&parent.token),
            Some(json!({"kind": "angry", "subscription_id": subscription_id, "description": "x"})),
            "zh-CN",
        )
        .await;
    assert!(
        zh.body["error"]["message"].as_str().unwrap().chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{}",
        zh.body
    );
    assert_eq!(app.get("/v1/disputes", Some(&parent.token)).await.body, json!([]));
    assert_eq!(app.get("/v1/disputes/dsp_nope", Some(&parent.token)).await.status, StatusCode::NOT_FOUND);
}
