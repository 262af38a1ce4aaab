//! Children's data: sealed at rest, exported whole and verifiably, deleted
//! for good with a certificate — on both engines.

use std::io::Read;

use sha2::Digest as _;

use baobao_server::keys::KeySet;
use baobao_server::receipts::{self, ReceiptDocument};
use baobao_store::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

baobao_store::on_both_engines!(
    records_are_sealed_at_rest_and_read_back_only_by_the_family,
    staff_read_records_only_in_the_compliance_role_with_a_reason_that_is_audited,
    an_export_holds_everything_and_verifies_offline,
    an_export_is_kept_sealed_expires_and_goes_with_any_deletion_of_the_family_data,
    files_and_keys_nothing_names_are_swept_by_the_billing_run,
    removing_a_child_deletes_only_their_data_and_no_copy_of_it_opens_again,
    two_children_removed_at_once_and_a_double_click_leave_the_third_readable,
    deletion_destroys_the_key_so_even_an_old_backup_cannot_be_read,
    closing_everything_minimises_the_guardian_and_the_certificate_says_what_was_kept,
    retention_runs_out_in_the_billing_run_and_subscribing_again_calls_it_off,
    a_deletion_interrupted_after_the_key_was_destroyed_is_finished_by_the_billing_run,
);

const MARKER: &str = "MARKER-小明-身高-112cm";

/// A family subscribed to `edu`, a child, an `edu` integrator key.
async fn family_with_child(app: &TestApp) -> (crate::helpers::Guardian, String, String, serde_json::Value) {
    let plan = app
        .create_plan(json!({"legal_holds": [{"category": "ledger", "basis": "会计档案管理办法", "retain_years": 10}]}))
        .await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    let child = app.add_child(&parent, "小明").await;
    let key = app.api_key("edu").await;
    (parent, child, key, plan)
}

/// Everything stored in the records table, as text, however it is encoded.
async fn stored_record_text(app: &TestApp) -> String {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    let rows = sqlx::query("SELECT id, kind, nonce, ciphertext FROM child_records").fetch_all(&mut conn).await.unwrap();
    rows.iter()
        .map(|r| (0..4).map(|i| r.try_get::<String, _>(i).unwrap()).collect::<Vec<_>>().join("|"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn sqlite_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    let path = std::path::PathBuf::from(app.db.url.trim_start_matches("sqlite://"));
    ["", "-wal", "-shm"].iter().map(|suffix| std::path::PathBuf::from(format!("{}{suffix}", path.display()))).collect()
}

async fn records_are_sealed_at_rest_and_read_back_only_by_the_family(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, child, key, _) = family_with_child(&app).await;
    for (kind, body) in [
        ("growth", json!({"height_cm": 112, "note": MARKER})),
        ("learning_progress", json!({"lesson": "拼音", "score": 93})),
        ("safety_event", json!({"type": "blocked_contact", "detail": MARKER})),
    ] {
        let written = app.write_record(&key, &child, kind, body).await;
        assert_eq!(written.status, StatusCode::CREATED, "{}", written.body);
        assert!(written.body["id"].as_str().unwrap().starts_with("rec_"));
    }
    // The family reads them back in the clear.
    let page = app.get(&format!("/v1/children/{child}/records"), Some(&parent.token)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let records = page.body["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    let growth = records.iter().find(|r| r["kind"] == "growth").unwrap();
    assert_eq!(growth["body"]["note"], MARKER);
    assert_eq!(growth["body"]["height_cm"], 112);
    // Neither the table nor, on SQLite, the raw database files hold the marker.
    let stored = stored_record_text(&app).await;
    // (A field name, not a number: "112" turns up in random hex by chance.)
    assert!(!stored.contains(MARKER) && !stored.contains("height_cm"), "plaintext in the records table");
    assert_eq!(stored.lines().count(), 3);
    if engine == Engine::Sqlite {
        for file in sqlite_files(&app) {
            if let Ok(bytes) = std::fs::read(&file) {
                assert!(
                    !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
                    "plaintext in {}",
                    file.display()
                );
            }
        }
    }
    // Pagination walks every record once.
    let first = app.get(&format!("/v1/children/{child}/records?limit=2"), Some(&parent.token)).await;
    let next = first.body["next"].as_str().unwrap();
    let second = app.get(&format!("/v1/children/{child}/records?limit=2&after={next}"), Some(&parent.token)).await;
    assert_eq!(second.body["records"].as_array().unwrap().len(), 1);
    assert!(second.body["next"].is_null());

    // Nobody else reads them, and writes are refused where they do not belong.
    let stranger = app.sign_up("stranger@example.com").await;
    assert_eq!(
        app.get(&format!("/v1/children/{child}/records"), Some(&stranger.token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&format!("/v1/children/{child}/records"), Some(&key)).await.status, StatusCode::FORBIDDEN);
    let other_service = app.api_key("play").await;
    let refused = app.write_record(&other_service, &child, "growth", json!({"x": 1})).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["error"]["code"], "not_subscribed");
    assert_eq!(app.write_record(&parent.token, &child, "growth", json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.write_record("bbk_not-a-key", &child, "growth", json!({})).await.status, StatusCode::UNAUTHORIZED);
    let too_big = app.write_record(&key, &child, "growth", json!({"blob": "x".repeat(70_000)})).await;
    assert_eq!(too_big.body["error"]["details"]["field"], "body");
    let bad_kind = app.write_record(&key, &child, "Growth Chart!", json!({})).await;
    assert_eq!(bad_kind.body["error"]["details"]["field"], "kind");
}

pub(crate) async fn staff_read_records_only_in_the_compliance_role_with_a_reason_that_is_audited(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, child, key, _) = family_with_child(&app).await;
    app.write_record(&key, &child, "growth", json!({"height_cm": 112})).await;
    let agent = app.staff("agent@example.com", "agent").await;
    assert_eq!(
        app.get(&format!("/v1/children/{child}/records?reason=curious"), Some(&agent)).await.status,
        StatusCode::FORBIDDEN
    );
    let compliance = app.staff("compliance@example.com", "compliance").await;
    let no_reason = app.get(&format!("/v1/children/{child}/records"), Some(&compliance)).await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_reason.body["error"]["details"]["field"], "reason");
    let with_reason =
        app.get(&format!("/v1/children/{child}/records?reason=dispute%20dsp_123"), Some(&compliance)).await;
    assert_eq!(with_reason.status, StatusCode::OK);
    let audit = app.state.store.audit_entries(0, 1000).await.unwrap();
    let read = audit.iter().find(|e| e.action == "child_records.read").expect("the read is audited");
    assert!(read.actor.starts_with("staff:compliance:"));
    assert!(read.details.contains("dispute dsp_123"));
    assert!(read.subject_ids.contains(&child));
}

async fn an_export_holds_everything_and_verifies_offline(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, child, key, _) = family_with_child(&app).await;
    for n in 0..5 {
        app.write_record(&key, &child, "growth", json!({"height_cm": 110 + n, "note": "a, \"quoted\" note"})).await;
    }
    app.write_record(&key, &child, "learning_progress", json!({"lesson": "拼音"})).await;
    let status = app.export_ready(&parent).await;
    let export_id = status["id"].as_str().unwrap().to_owned();
    // The export is in the audit log by its SHA-256, like every signed document.
    app.state.store.append_pending().await.unwrap();
    let logged = app.state.store.logged_entries(0, 1000).await.unwrap();
    let ready = logged.iter().find(|e| e.action == "export.ready").expect("the export's leaf");
    assert_eq!(ready.document_sha256.as_deref(), status["sha256"].as_str());
    assert!(ready.subject_ids.contains(&export_id));
    let response = app
        .client
        .get(format!("{}/v1/exports/{export_id}/download", app.address))
        .bearer_auth(&parent.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len() as i64, status["size_bytes"].as_i64().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("export.zip");
    std::fs::write(&zip_path, &bytes).unwrap();

    let keys: KeySet = serde_json::from_value(app.get("/.well-known/baobao/keys.json", None).await.body).unwrap();
    let manifest = baobao_server::services::exports::verify(&zip_path, &keys).unwrap();
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for expected in [
        format!("children/{child}/profile.json"),
        format!("children/{child}/edu/growth.jsonl"),
        format!("children/{child}/edu/growth.csv"),
        format!("children/{child}/edu/learning_progress.jsonl"),
        "statement.csv".to_owned(),
        "index.html".to_owned(),
    ] {
        assert!(paths.contains(&expected.as_str()), "{expected} missing from {paths:?}");
    }
    assert!(paths.iter().any(|p| p.starts_with("receipts/rcp_")));
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut jsonl = String::new();
    archive.by_name(&format!("children/{child}/edu/growth.jsonl")).unwrap().read_to_string(&mut jsonl).unwrap();
    assert_eq!(jsonl.lines().count(), 5);
    let mut heights: Vec<i64> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["body"]["height_cm"].as_i64().unwrap())
        .collect();
    heights.sort();
    assert_eq!(heights, vec![110, 111, 112, 113, 114]);
    let mut csv = String::new();
    archive.by_name(&format!("children/{child}/edu/growth.csv")).unwrap().read_to_string(&mut csv).unwrap();
    assert_eq!(csv.lines().count(), 6, "{csv}");
    let mut index = String::new();
    archive.by_name("index.html").unwrap().read_to_string(&mut index).unwrap();
    // The page a parent opens first: in the family's language, readable on
    // a phone, each child by name, records as tables, money as they read it.
    assert!(index.starts_with("<!doctype html>\n<html lang=\"zh-CN\">"), "{index}");
    assert!(index.contains("name=\"viewport\" content=\"width=device-width, initial-scale=1\""));
    assert!(
        index.contains("您家庭的数据导出") && index.contains("<h2 id=\"") && index.contains(">小明</h2>"),
        "{index}"
    );
    assert!(index.contains("<th scope=\"col\">height_cm</th>") && index.contains("<td>112</td>"), "{index}");
    assert!(
        index.contains("<td>拼音</td>") && index.contains("39.00 元") && !index.contains("<td>3900</td>"),
        "{index}"
    );
    assert!(index.contains("2027-01-09 16:00"), "times in the family's zone (Shanghai): {index}");
    assert!(index.contains("<section lang=\"en\"") && index.contains("Your family's data export"));
    let typed = [
        "小明",
        "growth",
        "learning_progress",
        "edu",
        "height_cm",
        "note",
        "lesson",
        "a, \"quoted\" note",
        "会计档案管理办法",
    ];
    assert_eq!(crate::helpers::other_language(&index, "zh-CN", &typed), Vec::<String>::new(), "{index}");

    // A record added to a file after the export is caught, and so is an extra file.
    for (altered_name, extra) in
        [(format!("children/{child}/edu/growth.jsonl"), None), (String::new(), Some("note.txt"))]
    {
        let mut source = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
        let tampered_path = dir.path().join("tampered.zip");
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&tampered_path).unwrap());
        for index in 0..source.len() {
            let mut entry = source.by_index(index).unwrap();
            let name = entry.name().unwrap().into_owned();
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            if name == altered_name {
                content.extend_from_slice(b"{\"id\":\"rec_forged\",\"body\":{}}\n");
            }
            writer.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut writer, &content).unwrap();
        }
        if let Some(extra) = extra {
            writer.start_file(extra, zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut writer, b"added later").unwrap();
        }
        writer.finish().unwrap();
        let error = baobao_server::services::exports::verify(&tampered_path, &keys).unwrap_err().to_string();
        assert!(error.contains(if extra.is_some() { "note.txt" } else { "growth.jsonl" }), "{error}");
    }
    // Someone else's export is not theirs to see.
    let stranger = app.sign_up("stranger@example.com").await;
    assert_eq!(app.get(&format!("/v1/exports/{export_id}"), Some(&stranger.token)).await.status, StatusCode::NOT_FOUND);
}

/// The file an export is kept in, and its key in the vault.
fn export_files(app: &TestApp, family_id: &str, export_id: &str) -> [std::path::PathBuf; 2] {
    let data = app.data_dir.path();
    [
        data.join("exports").join(format!("{export_id}.sealed")),
        data.join("vault").join(family_id).join(format!("{export_id}.file-key")),
    ]
}

async fn download(app: &TestApp, token: &str, export_id: &str, locale: &str) -> crate::helpers::Response {
    app.request(reqwest::Method::GET, &format!("/v1/exports/{export_id}/download"), Some(token), None, locale).await
}

async fn an_export_is_kept_sealed_expires_and_goes_with_any_deletion_of_the_family_data(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, child, key, _) = family_with_child(&app).await;
    app.write_record(&key, &child, "growth", json!({"note": MARKER})).await;

    // Made on 10 January: kept sealed for 7 days.
    let first = app.export_ready(&parent).await;
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(first["expires_at"], "2027-01-17T02:00:00Z", "{first}");
    let [file, key_file] = export_files(&app, &parent.family_id, first_id);
    assert!(
        std::fs::read(&file).unwrap().starts_with(b"baobao-sealed-v1") && key_file.exists(),
        "sealed, under a key of its own"
    );
    let downloaded = app
        .client
        .get(format!("{}/v1/exports/{first_id}/download", app.address))
        .bearer_auth(&parent.token)
        .send()
        .await
        .unwrap();
    assert_eq!(downloaded.status(), StatusCode::OK);
    let bytes = downloaded.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"), "unsealed on the way out: a ZIP");
    assert_eq!(bytes.len() as i64, first["size_bytes"].as_i64().unwrap());
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), first["sha256"].as_str().unwrap());

    // A week later the billing run destroys it; the download is 410 in the caller's language.
    app.set_clock("2027-01-18T00:00:00Z").await;
    assert_eq!(app.billing_run().await["exports_expired"], 1);
    assert_eq!(app.get(&format!("/v1/exports/{first_id}"), Some(&parent.token)).await.body["status"], "expired");
    assert!(!file.exists() && !key_file.exists(), "file and key destroyed");
    for (locale, words) in [("en", "no longer exists"), ("zh-CN", "已不存在")] {
        let gone = download(&app, &parent.token, first_id, locale).await;
        assert_eq!(gone.status, StatusCode::GONE, "{}", gone.body);
        assert_eq!(gone.body["error"]["code"], "export_gone");
        assert!(gone.body["error"]["message"].as_str().unwrap().contains(words), "{}", gone.body);
    }
    assert_eq!(app.billing_run().await["exports_expired"], 0, "expired once");

    // A retention deletion of the service's data takes every export with it,
    // however long the export had left.
    let subscription_id =
        app.get(&format!("/v1/families/{}/subscriptions", parent.family_id), Some(&parent.token)).await.body[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    app.set_clock("2027-02-12T00:00:00Z").await;
    let second = app.export_ready(&parent).await;
    let second_id = second["id"].as_str().unwrap();
    let [file, key_file] = export_files(&app, &parent.family_id, second_id);
    assert!(file.exists() && key_file.exists());
    app.set_clock("2027-02-18T00:00:00Z").await;
    let run = app.billing_run().await;
    assert_eq!((run["deletions_performed"].as_u64(), run["exports_expired"].as_u64()), (Some(1), Some(0)), "{run}");
    assert_eq!(app.get(&format!("/v1/exports/{second_id}"), Some(&parent.token)).await.body["status"], "deleted");
    assert!(!file.exists() && !key_file.exists(), "file and key destroyed with the data");
    assert_eq!(download(&app, &parent.token, second_id, "en").await.status, StatusCode::GONE);
    let receipts = app.get(&format!("/v1/families/{}/receipts", parent.family_id), Some(&parent.token)).await;
    let certificate =
        receipts.body.as_array().unwrap().iter().find(|r| r["kind"] == "deletion_certificate").expect("a certificate");
    let deleted = certificate["body"]["deleted"].as_array().unwrap();
    assert!(deleted.iter().any(|d| d["category"] == "exports" && d["count"] == 1), "{deleted:?}");
    let left: Vec<_> = std::fs::read_dir(app.data_dir.path().join("exports")).unwrap().collect();
    assert!(left.is_empty(), "no export file is left: {left:?}");
}

pub(crate) async fn files_and_keys_nothing_names_are_swept_by_the_billing_run(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let data = app.data_dir.path();
    // Left by a crash, or written before exports and evidence were sealed.
    let exports = data.join("exports");
    let evidence = data.join("evidence");
    std::fs::create_dir_all(&exports).unwrap();
    std::fs::create_dir_all(evidence.join("fam_aaaaaaaaaaaaaaaaaaaaaaaaaa")).unwrap();
    let strays = [
        exports.join("exp_aaaaaaaaaaaaaaaaaaaaaaaaaa.zip"),
        exports.join("exp_bbbbbbbbbbbbbbbbbbbbbbbbbb.sealed.partial"),
        evidence.join("a".repeat(64)),
        evidence.join("fam_aaaaaaaaaaaaaaaaaaaaaaaaaa").join("b".repeat(64)),
    ];
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for stray in &strays {
        std::fs::write(stray, MARKER).unwrap();
        std::fs::File::options().write(true).open(stray).unwrap().set_modified(two_hours_ago).unwrap();
    }
    let stray_key = "exp_cccccccccccccccccccccccccc";
    app.state.vault.file_key("fam_aaaaaaaaaaaaaaaaaaaaaaaaaa", stray_key, true).unwrap();
    // A file just written may belong to a notice about to commit: it stays.
    let fresh = evidence.join("c".repeat(64));
    std::fs::write(&fresh, "fresh").unwrap();

    assert_eq!(app.billing_run().await["files_swept"], 5);
    for stray in &strays {
        assert!(!stray.exists(), "{} swept", stray.display());
    }
    assert!(app.state.vault.file_keys().unwrap().is_empty());
    assert!(fresh.exists(), "a fresh file is left for its transaction");
    assert_eq!(app.billing_run().await["files_swept"], 0);
}

/// The (id, nonce, ciphertext) of a child's records, as a backup holds them.
async fn backup_of(app: &TestApp, child: &str) -> Vec<(String, String, String)> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("SELECT id, nonce, ciphertext FROM child_records WHERE child_id = $1")
        .bind(child)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.try_get(0).unwrap(), r.try_get(1).unwrap(), r.try_get(2).unwrap()))
        .collect()
}

pub(crate) async fn removing_a_child_deletes_only_their_data_and_no_copy_of_it_opens_again(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, leaving, key, _) = family_with_child(&app).await;
    let staying = app.add_child(&parent, "小红").await;
    app.write_record(&key, &leaving, "growth", json!({"note": MARKER})).await;
    for n in 0..3 {
        app.write_record(&key, &staying, "growth", json!({"height_cm": 100 + n})).await;
    }
    let backup = backup_of(&app, &leaving).await;
    assert_eq!(backup.len(), 1);
    let export = app.export_ready(&parent).await;

    let path = format!("/v1/families/{}/deletion-requests", parent.family_id);
    let both = app.post(&path, Some(&parent.token), json!({"child_id": leaving, "service": "edu"})).await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", both.body);
    let removed = app.post(&path, Some(&parent.token), json!({"child_id": leaving})).await;
    assert_eq!(removed.status, StatusCode::CREATED, "{}", removed.body);
    let certificate = &removed.body["certificate"];
    app.assert_receipt_verifies(certificate).await;
    let body = &certificate["body"];
    assert_eq!(
        (body["scope"]["child_id"].as_str(), body["cause"].as_str()),
        (Some(leaving.as_str()), Some("consent_withdrawn"))
    );
    let deleted = body["deleted"].as_array().unwrap();
    for (category, count) in [("child_records", 1), ("child_profiles", 1), ("exports", 1)] {
        assert!(deleted.iter().any(|d| d["category"] == category && d["count"] == count), "{category}: {deleted:?}");
    }
    assert_eq!(body["account_closed"], false);

    // The other child's records read as before; the removed child's, from a
    // backup of the database, open under no key the vault holds.
    let page = app.get(&format!("/v1/children/{staying}/records"), Some(&parent.token)).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 3, "{}", page.body);
    let keys = app.state.vault.data_keys(&parent.family_id, "edu").unwrap();
    assert_eq!(keys.len(), 1, "one key, no leftover of the re-keying");
    for (id, nonce, ciphertext) in &backup {
        let binding = baobao_server::vault::record_binding(id, &parent.family_id, &leaving, "edu", "growth");
        assert!(keys.iter().all(|k| k.open(nonce, ciphertext, &binding).is_err()), "the old record opens");
    }
    assert!(!stored_record_text(&app).await.contains(&backup[0].2), "the row is gone");
    assert_eq!(
        app.get(&format!("/v1/exports/{}", export["id"].as_str().unwrap()), Some(&parent.token)).await.body["status"],
        "deleted"
    );

    // Nothing more is kept of the removed child; removing twice says so.
    let written = app.write_record(&key, &leaving, "growth", json!({"height_cm": 1})).await;
    assert_eq!((written.status, written.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("child_removed")));
    let again = app.post(&path, Some(&parent.token), json!({"child_id": leaving})).await;
    assert_eq!(again.body["error"]["code"], "child_removed");
    let stranger = app.sign_up("stranger@example.com").await;
    let foreign = app
        .post(
            &format!("/v1/families/{}/deletion-requests", stranger.family_id),
            Some(&stranger.token),
            json!({"child_id": staying}),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "another family's child");
    let email = app.queued_email(&parent, "deletion_certificate", baobao_domain::Locale::En).await;
    assert!(email.contains("removed from your account") && email.contains("replaced"), "{email}");

    // A re-keying a crash interrupted leaves a key beside the current one:
    // records still read, and the billing run destroys the leftover.
    app.state.vault.prepare_rekey(&parent.family_id, "edu").unwrap();
    assert_eq!(app.state.vault.leftover_rekeys().unwrap().len(), 1);
    app.billing_run().await;
    assert!(app.state.vault.leftover_rekeys().unwrap().is_empty());
    let page = app.get(&format!("/v1/children/{staying}/records"), Some(&parent.token)).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 3, "{}", page.body);
}

async fn two_children_removed_at_once_and_a_double_click_leave_the_third_readable(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, first, key, _) = family_with_child(&app).await;
    let second = app.add_child(&parent, "小红").await;
    let third = app.add_child(&parent, "小刚").await;
    for child in [&first, &second, &third] {
        app.write_record(&key, child, "growth", json!({"height_cm": 100})).await;
    }
    let path = format!("/v1/families/{}/deletion-requests", parent.family_id);
    let remove = |child: &String| app.post(&path, Some(&parent.token), json!({"child_id": child}));
    // Two children at once, and the first one clicked twice.
    let (a, b, c) = tokio::join!(remove(&first), remove(&second), remove(&first));
    let mut certificates = Vec::new();
    for response in [&a, &b, &c] {
        assert!(
            response.status == StatusCode::CREATED || response.body["error"]["code"] == "child_removed",
            "{}",
            response.body
        );
        if response.status == StatusCode::CREATED {
            certificates.push(response.body["certificate_id"].as_str().unwrap().to_owned());
        }
    }
    certificates.sort();
    certificates.dedup();
    assert_eq!(certificates.len(), 2, "one certificate per child");
    let page = app.get(&format!("/v1/children/{third}/records"), Some(&parent.token)).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 1, "{}", page.body);
    assert!(app.state.vault.leftover_rekeys().unwrap().is_empty());
    for gone in [&first, &second] {
        let page = app.get(&format!("/v1/children/{gone}/records"), Some(&parent.token)).await;
        assert_eq!(page.body["records"].as_array().map(Vec::len).unwrap_or(0), 0, "{}", page.body);
    }
}

async fn deletion_destroys_the_key_so_even_an_old_backup_cannot_be_read(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, child, key, _) = family_with_child(&app).await;
    app.write_record(&key, &child, "growth", json!({"height_cm": 112})).await;
    app.write_record(&key, &child, "safety_event", json!({"type": "report"})).await;
    // The backup: the raw rows as they are stored (on SQLite, the whole file too).
    let child_id = baobao_domain::ids::ChildId::parse(&child).unwrap();
    let backup_rows = app.state.store.records_of_child(&child_id, None, 100).await.unwrap();
    let backup_dir = tempfile::tempdir().unwrap();
    if engine == Engine::Sqlite {
        for file in sqlite_files(&app) {
            if file.exists() {
                std::fs::copy(&file, backup_dir.path().join(file.file_name().unwrap())).unwrap();
            }
        }
    }

    let deleted = app
        .post(
            &format!("/v1/families/{}/deletion-requests", parent.family_id),
            Some(&parent.token),
            json!({"service": "edu"}),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::CREATED, "{}", deleted.body);
    assert_eq!(deleted.body["status"], "done");
    let certificate: ReceiptDocument = serde_json::from_value(deleted.body["certificate"].clone()).unwrap();
    assert_eq!(certificate.kind, "deletion_certificate");
    let keys: KeySet = serde_json::from_value(app.get("/.well-known/baobao/keys.json", None).await.body).unwrap();
    receipts::verify(&certificate, &keys).unwrap();
    let body = &certificate.body;
    assert_eq!(body["data_keys_destroyed"], 1);
    assert!(body["key_destroyed_at"].is_string());
    let counts: Vec<(String, i64)> = body["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["category"] == "child_records")
        .map(|d| (d["kind"].as_str().unwrap().to_owned(), d["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(counts, vec![("growth".to_owned(), 1), ("safety_event".to_owned(), 1)]);
    let fetched = app.get(&format!("/v1/deletion-certificates/{}", certificate.id), Some(&parent.token)).await;
    assert_eq!(fetched.body["id"], certificate.id);

    // Nothing is left to read through the API …
    let after = app.get(&format!("/v1/children/{child}/records"), Some(&parent.token)).await;
    assert_eq!(after.body["records"].as_array().unwrap().len(), 0);
    // … and the backed-up rows no longer open: their key is gone.
    let mut opener = baobao_server::services::children::Opener::new(&app.state, backup_rows[0].family_id.clone());
    for row in &backup_rows {
        let error = opener.open(row).unwrap_err();
        assert_eq!(error.code, "data_deleted");
    }
    if engine == Engine::Sqlite {
        // Restore the old database file beside the same data directory and ask the server.
        let restored_url = format!("sqlite://{}", backup_dir.path().join("baobao.db").display());
        let restored = baobao_store::Store::connect(&restored_url).await.unwrap();
        let restored_rows = restored.records_of_child(&child_id, None, 100).await.unwrap();
        assert_eq!(restored_rows.len(), 2, "the backup still has the rows");
        let config = baobao_server::ServerConfig::new(
            app.data_dir.path().to_owned(),
            baobao_server::state::ClockMode::Simulated,
            baobao_server::state::GatewayMode::Simulated,
        );
        let restored_state = baobao_server::AppState::new(restored, config).await.unwrap();
        let family = app.get(&format!("/v1/families/{}", parent.family_id), Some(&parent.token)).await.body;
        let caller = baobao_server::auth::Caller::Guardian {
            guardian_id: baobao_domain::ids::GuardianId::parse(family["guardians"][0]["id"].as_str().unwrap()).unwrap(),
            family_id: baobao_domain::ids::FamilyId::parse(&parent.family_id).unwrap(),
            locale: baobao_domain::Locale::En,
        };
        let read =
            baobao_server::services::children::read_records(&restored_state, &caller, &child, None, None, None).await;
        assert_eq!(read.err().map(|e| e.code), Some("data_deleted"));
    }
    // The subscription runs on; new records start a new key.
    assert_eq!(app.write_record(&key, &child, "growth", json!({"height_cm": 113})).await.status, StatusCode::CREATED);
}

pub(crate) async fn closing_everything_minimises_the_guardian_and_the_certificate_says_what_was_kept(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, child, key, _) = family_with_child(&app).await;
    app.write_record(&key, &child, "growth", json!({"height_cm": 112})).await;
    let subscription_id =
        app.get(&format!("/v1/families/{}/subscriptions", parent.family_id), Some(&parent.token)).await.body[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    let deleted =
        app.post(&format!("/v1/families/{}/deletion-requests", parent.family_id), Some(&parent.token), json!({})).await;
    assert_eq!(deleted.status, StatusCode::CREATED, "{}", deleted.body);
    let body = &deleted.body["certificate"]["body"];
    assert_eq!(body["account_closed"], true);
    assert_eq!(body["scope"]["service"], "*");
    let kept = body["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["category"], "ledger");
    assert_eq!(kept[0]["basis"], "会计档案管理办法");
    assert_eq!(kept[0]["count"], 2, "the charge and its refund");
    assert!(kept[0]["until"].as_str().unwrap().starts_with("2037-"));
    let categories: Vec<&str> =
        body["deleted"].as_array().unwrap().iter().map(|d| d["category"].as_str().unwrap()).collect();
    assert!(categories.contains(&"guardian_personal_data") && categories.contains(&"child_profiles"), "{categories:?}");
    // The guardian's name and email are gone; the session with them.
    assert_eq!(
        app.get(&format!("/v1/families/{}", parent.family_id), Some(&parent.token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let login = app
        .post("/v1/auth/sessions", None, json!({"email": "parent@example.com", "password": "a long password"}))
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    let family_id = baobao_domain::ids::FamilyId::parse(&parent.family_id).unwrap();
    let guardian = &app.state.store.guardians_of(&family_id).await.unwrap()[0];
    assert!(guardian.name.is_empty() && guardian.email.ends_with("@invalid"));
    let child_row = &app.state.store.children_of(&family_id).await.unwrap()[0];
    assert!(child_row.name.is_empty() && child_row.birth_date.is_empty());
    // The ledger stays, as the hold requires.
    assert_eq!(app.state.store.statement(&family_id).await.unwrap().len(), 2);
}

pub(crate) async fn retention_runs_out_in_the_billing_run_and_subscribing_again_calls_it_off(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, child, key, plan) = family_with_child(&app).await;
    app.write_record(&key, &child, "growth", json!({"height_cm": 112})).await;
    let subscription_id =
        app.get(&format!("/v1/families/{}/subscriptions", parent.family_id), Some(&parent.token)).await.body[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    // Cancelled on 10 January; retention is 30 days: deletion on 9 February.
    app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    app.set_clock("2027-02-08T00:00:00Z").await;
    assert_eq!(app.billing_run().await["deletions_performed"], 0);
    let page = app.get(&format!("/v1/children/{child}/records"), Some(&parent.token)).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 1, "still exportable within retention");
    app.set_clock("2027-02-10T00:00:00Z").await;
    assert_eq!(app.billing_run().await["deletions_performed"], 1);
    let page = app.get(&format!("/v1/children/{child}/records"), Some(&parent.token)).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 0);
    let receipts = app.get(&format!("/v1/families/{}/receipts", parent.family_id), Some(&parent.token)).await;
    let certificate =
        receipts.body.as_array().unwrap().iter().find(|r| r["kind"] == "deletion_certificate").expect("a certificate");
    assert_eq!(certificate["body"]["cause"], "retention");
    // Nobody asked for this deletion: the email says why it happened.
    let email = app.queued_email(&parent, "deletion_certificate", baobao_domain::Locale::En).await;
    assert!(email.contains("retention period ran out") && !email.contains("asked us to delete"), "{email}");
    assert_eq!(app.billing_run().await["deletions_performed"], 0, "a deletion is done once");

    // A family that comes back within retention keeps its data.
    let other = app.sign_up("other@example.com").await;
    let other_sub = app.subscribe(&other, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let other_child = app.add_child(&other, "小红").await;
    app.write_record(&key, &other_child, "growth", json!({"height_cm": 100})).await;
    app.cancel(&other, &other_sub, json!({"option": "now"})).await;
    app.subscribe(&other, &plan).await;
    app.set_clock("2027-04-01T00:00:00Z").await;
    assert_eq!(app.billing_run().await["deletions_performed"], 0);
    let page = app.get(&format!("/v1/children/{other_child}/records"), Some(&other.token)).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 1);
}

async fn a_deletion_interrupted_after_the_key_was_destroyed_is_finished_by_the_billing_run(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (parent, child, key, _) = family_with_child(&app).await;
    app.write_record(&key, &child, "growth", json!({"height_cm": 112})).await;
    // The first step of a deletion ran (the key is gone), then the process died.
    let family_id = baobao_domain::ids::FamilyId::parse(&parent.family_id).unwrap();
    let now = app.state.clock.now();
    let deletion = baobao_store::Deletion {
        id: baobao_domain::ids::DeletionId::from_random([9; 16]),
        family_id: family_id.clone(),
        service: "edu".into(),
        child_id: None,
        cause: "guardian_request".into(),
        status: "pending".into(),
        requested_at: now,
        due_at: now,
        key_destroyed_at: None,
        certificate_id: None,
        completed_at: None,
    };
    let mut tx = app.state.store.begin().await.unwrap();
    assert!(tx.schedule_deletion(&deletion).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(app.state.vault.destroy(family_id.as_str(), "edu").unwrap(), 1);
    let unreadable = app.get(&format!("/v1/children/{child}/records"), Some(&parent.token)).await;
    assert_eq!(unreadable.status, StatusCode::GONE, "{}", unreadable.body);
    assert_eq!(unreadable.body["error"]["code"], "data_deleted");

    // The next billing run finishes it: records gone, one certificate.
    assert_eq!(app.billing_run().await["deletions_performed"], 1);
    assert_eq!(app.billing_run().await["deletions_performed"], 0);
    let done = app.get(&format!("/v1/deletion-requests/{}", deletion.id), Some(&parent.token)).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    assert_eq!(done.body["certificate"]["body"]["data_keys_destroyed"], 0, "the key was already gone");
    let receipts = app.get(&format!("/v1/families/{}/receipts", parent.family_id), Some(&parent.token)).await;
    let certificates = receipts.body.as_array().unwrap().iter().filter(|r| r["kind"] == "deletion_certificate").count();
    assert_eq!(certificates, 1);
    let page = app.get(&format!("/v1/children/{child}/records"), Some(&parent.token)).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 0);
}
