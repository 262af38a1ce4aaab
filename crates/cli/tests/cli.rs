//! The `baobao` binary as an operator uses it: migrate, verify a receipt
//! offline, and a billing run that is killed half-way and run again.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use baobao_domain::ids::{FamilyId, Id, PlanId, SubscriptionId};
use baobao_domain::policy::PolicyDraft;
use baobao_server::keys::SigningKeys;
use baobao_store::testing::fresh_database;
use baobao_store::{Engine, Family, Plan, PolicyVersion, Store, Subscription};
use jiff::Timestamp;

baobao_store::on_both_engines!(a_billing_run_killed_half_way_resumes_and_charges_every_period_once);

fn baobao() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_baobao"));
    command.env_remove("BAOBAO_DATABASE").env_remove("DATABASE_URL").env("RUST_LOG", "warn");
    command
}

/// `baobao staff create` of an agent with `email`, as an operator runs it.
fn create_agent(url: &str, email: &str) -> std::process::Output {
    baobao()
        .args([
            "staff",
            "create",
            "--database",
            url,
            "--email",
            email,
            "--password",
            "a long password",
            "--role",
            "agent",
        ])
        .output()
        .unwrap()
}

#[test]
fn migrate_applies_the_schema_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    let first = baobao().args(["migrate", "--database", &url]).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        "applied 0001_lifecycle\napplied 0002_children_data\napplied 0003_outbox\napplied 0004_reminders\napplied 0005_verification_codes\napplied 0006_written_notices_webhooks\napplied 0007_one_live_subscription_and_limits\napplied 0008_money_movements\napplied 0009_insertion_order\napplied 0010_sealed_exports\napplied 0011_receipt_numbers\napplied 0012_guardian_phones\napplied 0013_child_deletions\napplied 0014_audit_log\napplied 0015_audit_appender\napplied 0016_disputes\napplied 0017_request_owners\napplied 0018_request_changes\napplied 0019_billing_claims\napplied 0020_indexes_for_growing_tables"
    );
    let second = baobao().args(["migrate", "--database", &url]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&second.stdout).trim(), "schema is up to date");
}

#[tokio::test]
async fn audit_verify_recomputes_the_log_and_names_a_changed_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    // No head signed yet: no key is needed to check the leaves.
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, r#"{"keys": []}"#).unwrap();
    let keys = keys.to_str().unwrap();
    // Staff accounts are audited: three entries, no signed head yet.
    for n in 0..3 {
        let created = create_agent(&url, &format!("agent{n}@example.com"));
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    }
    let clean = baobao().args(["audit", "verify", "--database", &url, "--keys", keys]).output().unwrap();
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));
    assert!(String::from_utf8_lossy(&clean.stdout).starts_with("OK: 3 leaves, 0 signed tree heads"));
    // Leaf 1's entry changed, by someone with the database file.
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_entries SET actor = 'nobody' WHERE leaf_index = 1").execute(&mut conn).await.unwrap();
    let caught = baobao().args(["audit", "verify", "--database", &url, "--keys", keys]).output().unwrap();
    assert!(!caught.status.success());
    let reason = String::from_utf8_lossy(&caught.stderr);
    assert!(reason.contains("leaf 1 differs from what was logged"), "{reason}");
}

#[tokio::test]
async fn a_backup_taken_while_the_database_is_written_restores_and_its_audit_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("live.db").display());
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, r#"{"keys": []}"#).unwrap();
    assert!(create_agent(&url, "agent0@example.com").status.success());
    // Writers keep going while the copy is taken.
    let writer = {
        let url = url.clone();
        std::thread::spawn(move || {
            for n in 1..6 {
                let created = create_agent(&url, &format!("busy{n}@example.com"));
                assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
            }
        })
    };
    let copy = dir.path().join("copy.db");
    let backup = baobao().args(["backup", "--database", &url, "--to"]).arg(&copy).output().unwrap();
    writer.join().unwrap();
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    assert!(String::from_utf8_lossy(&backup.stdout).starts_with("backed up to"));
    let again = baobao().args(["backup", "--database", &url, "--to"]).arg(&copy).output().unwrap();
    assert!(!again.status.success(), "an existing file is never overwritten");
    let restored = format!("sqlite://{}", copy.display());
    let verified = baobao().args(["audit", "verify", "--database", &restored, "--keys"]).arg(&keys).output().unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    assert!(
        String::from_utf8_lossy(&verified.stdout).starts_with("OK: "),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    let postgres =
        baobao().args(["backup", "--database", "postgres://127.0.0.1:1/x", "--to", "x.dump"]).output().unwrap();
    assert!(!postgres.status.success());
    assert!(String::from_utf8_lossy(&postgres.stderr).contains("pg_dump"));
}

#[test]
fn the_server_serves_metrics_apart_and_sigterm_stops_it_within_its_grace_even_with_a_client_that_never_finishes_its_request()
 {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("stop.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut server = baobao()
        .args(["serve", "--database", &url, "--listen", &listen, "--shutdown-grace-seconds", "2"])
        .args(["--metrics-listen", &metrics])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if let Ok(mut stream) = std::net::TcpStream::connect(&listen) {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                up = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if !up {
        let _ = server.kill();
        let _ = server.wait();
        panic!("the server never answered /healthz");
    }
    // Prometheus scrapes its own address.
    let mut scrape = std::net::TcpStream::connect(&metrics).unwrap();
    scrape.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut scraped = String::new();
    let _ = scrape.read_to_string(&mut scraped);
    assert!(scraped.contains("baobao_http_requests_total{route=\"/healthz\""), "{scraped}");
    assert!(scraped.contains("baobao_outbox_pending 0"), "{scraped}");
    // A client that sends half a request and waits forever.
    let mut slow = std::net::TcpStream::connect(&listen).unwrap();
    slow.write_all(b"POST /v1/auth/sessions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{").unwrap();
    let started = std::time::Instant::now();
    let pid = server.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut exited = None;
    while started.elapsed() < std::time::Duration::from_secs(20) {
        if let Some(status) = server.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = server.kill();
    let _ = server.wait();
    let status = exited.expect("the server stopped after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "stopped within its grace: {:?}",
        started.elapsed()
    );
    // New connections are refused once it is gone.
    assert!(std::net::TcpStream::connect(&listen).is_err());
    drop(slow);
}

#[test]
fn bad_configuration_fails_with_a_one_line_reason() {
    let unknown = baobao().args(["migrate", "--database", "mysql://nope"]).output().unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("baobao: error:"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    let ahead = baobao()
        .args(["billing", "run", "--database", &url, "--at", "2999-01-01T00:00:00Z", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!ahead.status.success());
    assert!(String::from_utf8_lossy(&ahead.stderr).contains("in the future"));
}

#[test]
fn verify_accepts_a_true_receipt_and_refuses_an_altered_one() {
    let dir = tempfile::tempdir().unwrap();
    let keys = SigningKeys::load_or_create(dir.path()).unwrap();
    let family = FamilyId::from_random([5; 16]);
    let at: Timestamp = "2027-01-10T02:00:00Z".parse().unwrap();
    use baobao_domain::receipt::{MovementReceipt, PlanName, ReceiptBody, RefundReceipt};
    let body = ReceiptBody::Refund(RefundReceipt {
        refund: baobao_domain::Money::new(2013, baobao_domain::Currency::CNY).unwrap(),
        movement: MovementReceipt {
            subscription_id: "sub_x".into(),
            plan_id: "pln_x".into(),
            plan_name: PlanName { zh_cn: "数学".into(), en: "Maths".into() },
            ledger_entry_id: "led_x".into(),
            period_start: None,
            note: "refund on cancellation, as quoted".into(),
            gateway_reference: "sim_ref_1".into(),
        },
    });
    let signed = baobao_domain::receipt::SignedBody {
        receipt_id: "rcp_0000000000000000000a".into(),
        receipt_number: baobao_server::receipts::receipt_number(at, "Asia/Shanghai", [1; 5]),
        family_id: family.to_string(),
        issued_at: at,
        provider: None,
        body,
    };
    let document = baobao_server::receipts::sign(&keys, &signed).unwrap();
    let receipt = dir.path().join("receipt.json");
    std::fs::write(&receipt, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let keys_json = dir.path().join("keys.json");
    std::fs::write(&keys_json, serde_json::to_vec(&keys.key_set()).unwrap()).unwrap();

    let with_keys = baobao().arg("verify").arg(&receipt).arg("--keys").arg(&keys_json).output().unwrap();
    assert!(with_keys.status.success(), "{}", String::from_utf8_lossy(&with_keys.stderr));
    assert!(String::from_utf8_lossy(&with_keys.stdout).starts_with("OK: refund receipt rcp_"));
    let with_data_dir = baobao().arg("verify").arg(&receipt).arg("--data-dir").arg(dir.path()).output().unwrap();
    assert!(with_data_dir.status.success());

    let mut altered = document.clone();
    altered.body["refund"]["amount_minor"] = 1.into();
    std::fs::write(&receipt, serde_json::to_vec(&altered).unwrap()).unwrap();
    let refused = baobao().arg("verify").arg(&receipt).arg("--keys").arg(&keys_json).output().unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("does NOT verify") && stderr.trim().lines().count() == 1, "{stderr}");
}

#[tokio::test]
async fn verify_proves_a_receipt_in_the_log_offline_from_its_proof_file() {
    use baobao_server::services::audit_log;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ops.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let config = baobao_server::ServerConfig::new(
        dir.path().into(),
        baobao_server::state::ClockMode::System,
        baobao_server::state::GatewayMode::LedgerOnly,
    );
    let state = baobao_server::AppState::new(store, config).await.unwrap();
    // A family signs up and subscribes: its receipt is in the log.
    let plan = baobao_server::services::plans::create_plan(
        &state,
        &baobao_server::auth::Caller::Staff {
            staff_id: baobao_domain::ids::StaffId::from_random([3; 16]),
            role: baobao_server::auth::Role::Admin,
        },
        serde_json::from_value(serde_json::json!({"service": "edu", "name": {"zh-CN": "月度", "en": "Monthly"},
            "policy": {"price": {"amount_minor": 3900, "currency": "CNY"}, "period": "P1M", "retention_days": 30}}))
        .unwrap(),
        baobao_domain::Locale::En,
    )
    .await
    .unwrap();
    let signed_up = baobao_server::services::accounts::sign_up(
        &state,
        serde_json::from_value(serde_json::json!({"guardian": {"email": "p@example.com",
            "password": "a long password", "name": "P", "locale": "en", "time_zone": "Asia/Shanghai"}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let caller = baobao_server::auth::Caller::Guardian {
        guardian_id: baobao_domain::ids::GuardianId::parse(&signed_up.guardian.id).unwrap(),
        family_id: FamilyId::parse(&signed_up.family.id).unwrap(),
        locale: baobao_domain::Locale::En,
    };
    let subscribed = baobao_server::services::subscriptions::subscribe(
        &state,
        &caller,
        baobao_server::services::subscriptions::SubscribeInput {
            plan_id: plan.id.clone(),
            accept_policy_sha256: plan.policy.sha256.clone(),
        },
    )
    .await
    .unwrap();
    let receipt = serde_json::to_value(&subscribed.receipt).unwrap();
    let sha = baobao_domain::audit::document_sha256(&receipt).unwrap();
    let proof = audit_log::document_proof(&state, &sha).await.unwrap();
    let (receipt_file, proof_file, keys_file) =
        (dir.path().join("receipt.json"), dir.path().join("proof.json"), dir.path().join("keys.json"));
    std::fs::write(&receipt_file, serde_json::to_vec_pretty(&receipt).unwrap()).unwrap();
    std::fs::write(&proof_file, serde_json::to_vec_pretty(&proof).unwrap()).unwrap();
    std::fs::write(&keys_file, serde_json::to_vec(&state.keys.key_set()).unwrap()).unwrap();

    let verify = |proof: &std::path::Path| {
        baobao().arg("verify").arg(&receipt_file).arg("--keys").arg(&keys_file).arg("--proof").arg(proof).output()
    };
    let proved = verify(&proof_file).unwrap();
    assert!(proved.status.success(), "{}", String::from_utf8_lossy(&proved.stderr));
    let out = String::from_utf8_lossy(&proved.stdout);
    assert!(out.contains(&format!("OK: in the audit log at leaf {}", proof.entry.leaf_index)), "{out}");
    // A proof of another place in the log proves nothing.
    let mut moved = proof.clone();
    moved.entry.leaf_index += 1;
    moved.inclusion.leaf_index += 1;
    std::fs::write(&proof_file, serde_json::to_vec(&moved).unwrap()).unwrap();
    let refused = verify(&proof_file).unwrap();
    assert!(!refused.status.success());
    let reason = String::from_utf8_lossy(&refused.stderr);
    assert!(reason.contains("is NOT in the audit log") && reason.trim().lines().count() == 1, "{reason}");
    std::fs::write(&proof_file, b"{}").unwrap();
    let refused = verify(&proof_file).unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a proof of logging"));
}

const SUBSCRIPTIONS: usize = 1500;

/// `SUBSCRIPTIONS` monthly subscriptions of one family, all due for their
/// first renewal on 10 February 2027.
async fn seed(store: &Store) -> FamilyId {
    let signed_up: Timestamp = "2027-01-10T02:00:00Z".parse().unwrap();
    let draft: PolicyDraft = serde_json::from_value(serde_json::json!({
        "price": {"amount_minor": 3900, "currency": "CNY"}, "period": "P1M", "retention_days": 30,
    }))
    .unwrap();
    let policy = draft.validate().unwrap();
    let family =
        Family { id: FamilyId::from_random([1; 16]), time_zone: "Asia/Shanghai".into(), created_at: signed_up };
    let end: Timestamp = "2027-02-10T02:00:00Z".parse().unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.insert_family(&family).await.unwrap();
    // One live subscription per family and plan: the family holds one plan each.
    for n in 0..SUBSCRIPTIONS {
        let mut random = [3u8; 16];
        random[14..].copy_from_slice(&(n as u16).to_be_bytes());
        let id: SubscriptionId = Id::from_random(random);
        random[0] = 2;
        let plan = Plan {
            id: PlanId::from_random(random),
            service: "edu".into(),
            name_zh_cn: "月度".into(),
            name_en: "Monthly".into(),
            current_version: 1,
            created_at: signed_up,
        };
        let version = PolicyVersion {
            plan_id: plan.id.clone(),
            version: 1,
            sha256: policy.sha256(),
            policy: policy.clone(),
            created_at: signed_up,
        };
        tx.insert_plan(&plan, &version).await.unwrap();
        tx.insert_subscription(&Subscription {
            id,
            family_id: family.id.clone(),
            plan_id: plan.id.clone(),
            policy_version: 1,
            policy_sha256: version.sha256.clone(),
            status: baobao_domain::SubscriptionStatus::Active,
            time_zone: "Asia/Shanghai".into(),
            signed_up_at: signed_up,
            anchor_at: signed_up,
            current_position: 0,
            current_period_start: signed_up,
            current_period_end: end,
            current_period_paid: true,
            last_charge_attempt_at: Some(signed_up),
            pending_cancellation_id: None,
            effective_at: None,
            ended_at: None,
            due_at: Some(end),
            created_at: signed_up,
            reminded_period_start: None,
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    family.id
}

async fn a_billing_run_killed_half_way_resumes_and_charges_every_period_once(engine: Engine) {
    let db = fresh_database(engine).await;
    let family = seed(&db.store).await;
    let data_dir = tempfile::tempdir().unwrap();
    let run = |at: &str| {
        let mut command = baobao();
        command
            .args(["billing", "run", "--database", &db.url, "--at", at, "--clock", "simulated", "--data-dir"])
            .arg(data_dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let at = "2027-02-11T00:00:00Z";
    // The operator's clock says it is the day after the renewals fell due.
    db.store.set_setting(baobao_server::clock::SIMULATED_NOW_SETTING, at).await.unwrap();
    let mut child = run(at).spawn().unwrap();
    // Kill it (SIGKILL: no chance to clean up) once some, not all, are charged.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let charged = db.store.statement(&family).await.unwrap().len();
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the billing run ended by itself ({status}) before it could be killed");
        }
        if charged > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.kill();
    child.wait().unwrap();
    let charged_at_kill = db.store.statement(&family).await.unwrap().len();
    assert!(
        charged_at_kill > 0 && charged_at_kill < SUBSCRIPTIONS,
        "the run was not interrupted half-way ({charged_at_kill} charged)"
    );

    let resumed = run(at).stderr(Stdio::piped()).output().unwrap();
    assert!(resumed.status.success());
    // Not on a terminal (a log, cron): plain lines, no bar's control characters.
    let said = String::from_utf8_lossy(&resumed.stderr);
    let left = SUBSCRIPTIONS - charged_at_kill;
    assert!(said.contains(&format!("baobao: billing run: {left} of {left} subscriptions (done)")), "{said}");
    assert!(!said.contains('\u{1b}') && !said.contains('\r'), "{said:?}");
    let again = run(at).status().unwrap();
    assert!(again.success());
    let entries = db.store.statement(&family).await.unwrap();
    assert_eq!(entries.len(), SUBSCRIPTIONS, "exactly one charge per subscription and period");
    let mut keys: Vec<&str> = entries.iter().map(|e| e.subscription_id.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), SUBSCRIPTIONS);
    assert_eq!(db.store.due_count("2027-02-11T00:00:00Z".parse().unwrap()).await.unwrap(), 0);
}
