//! One language per page: every page of the portal and the staff console,
//! shown in zh-CN, has no English words, and shown in en no Chinese — apart
//! from what people typed (names, the provider's details, an integrator's
//! record kinds) and what reads the same in every language (ids, receipt
//! numbers, hashes, time-zone names, file formats, the command that checks
//! a receipt). The emails get the same check in `contract.rs`.

use baobao_store::Engine;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::{TestApp, other_language};

baobao_store::on_both_engines!(every_page_speaks_one_language);

/// What people typed in this story: allowed on every page.
const TYPED: [&str; 12] = [
    "王芳",
    "小明",
    "parent@example.com",
    "Example Kids Ltd.",
    "help@kids.example",
    "+86 21 5555 0100",
    "88 Example Road, Shanghai",
    "12315",
    "会计档案管理办法",
    "growth",
    "edu",
    // A complaint's words and a staff answer (digits read alike in both languages).
    "SF1234567890",
];

async fn page(app: &TestApp, path: &str, locale: &str, cookies: &str) -> String {
    let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let response = client
        .get(format!("{}{path}", app.address))
        .header("cookie", format!("{cookies}; baobao_lang={locale}"))
        .send()
        .await
        .unwrap();
    assert!(
        response.status() == StatusCode::OK || response.status() == StatusCode::NOT_FOUND,
        "{path}: {}",
        response.status()
    );
    response.text().await.unwrap()
}

pub(crate) async fn every_page_speaks_one_language(engine: Engine) {
    let app = TestApp::spawn_configured(engine, |config| {
        config.provider = baobao_domain::receipt::Provider {
            legal_name: "Example Kids Ltd.".into(),
            support_email: Some("help@kids.example".into()),
            support_phone: Some("+86 21 5555 0100".into()),
            postal_address: Some("88 Example Road, Shanghai".into()),
            complaints: Some("12315".into()),
        };
    })
    .await;
    let plan = app
        .create_plan(json!({
            "cooling_off_days": 0,
            "legal_holds": [{"category": "ledger", "basis": "会计档案管理办法", "retain_years": 10}],
        }))
        .await;
    let parent = app.sign_up("parent@example.com").await;
    let subscribed = app.subscribe(&parent, &plan).await;
    let subscription_id = subscribed["subscription"]["id"].as_str().unwrap().to_owned();
    let child = app.add_child(&parent, "小明").await;
    let key = app.api_key("edu").await;
    app.write_record(&key, &child, "growth", json!({"height_cm": 112})).await;
    // A renewal (a charge receipt), a cancellation at once (its receipt and a
    // refund with its receipt), an export and a deletion (a certificate).
    app.set_clock("2027-02-11T00:00:00Z").await;
    app.billing_run().await;
    let cancelled = app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    app.billing_run().await;
    app.export_ready(&parent).await;
    let deleted = app
        .post(
            &format!("/v1/families/{}/deletion-requests", parent.family_id),
            Some(&parent.token),
            json!({"service": "edu"}),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::CREATED, "{}", deleted.body);
    let receipts = app.get(&format!("/v1/families/{}/receipts", parent.family_id), Some(&parent.token)).await;
    let receipts = receipts.body.as_array().unwrap().clone();
    let kinds: Vec<&str> = receipts.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    for kind in ["subscription", "charge", "cancellation", "refund", "deletion_certificate"] {
        assert!(kinds.contains(&kind), "no {kind} receipt to show: {kinds:?}");
    }

    let guardian = format!("baobao_session={}", parent.token);
    let plan_id = plan["id"].as_str().unwrap();
    let mut paths: Vec<(String, &str)> = vec![
        ("/login".into(), ""),
        ("/signup".into(), ""),
        ("/check".into(), ""),
        ("/console/login".into(), ""),
        ("/r/rcp_nothing/nothing".into(), ""),
        ("/services".into(), &guardian),
        (format!("/services/{subscription_id}"), &guardian),
        (format!("/services/{subscription_id}/terms"), &guardian),
        ("/plans".into(), &guardian),
        (format!("/plans/{plan_id}"), &guardian),
        ("/statement".into(), &guardian),
        ("/receipts".into(), &guardian),
        ("/data".into(), &guardian),
    ];
    for receipt in &receipts {
        let id = receipt["id"].as_str().unwrap();
        paths.push((format!("/receipts/{id}"), &guardian));
        let link = app.state.keys.receipt_link(id);
        paths.push((link, ""));
    }
    // Complaints: one the records settle (the refund's status), one for a
    // person, answered by staff, moved up a level by the billing run.
    let settled = app
        .post(
            "/v1/disputes",
            Some(&parent.token),
            json!({"kind": "refund_missing", "subscription_id": subscription_id, "description": "SF1234567890"}),
        )
        .await;
    assert_eq!(settled.status, StatusCode::CREATED, "{}", settled.body);
    let open = app
        .post(
            "/v1/disputes",
            Some(&parent.token),
            json!({"kind": "cancellation_ignored", "subscription_id": subscription_id,
            "tracking_number": "SF1234567890", "description": "SF1234567890",
            "evidence": [{"content_type": "text/plain", "content_base64": "U0YxMjM0NTY3ODkw"}]}),
        )
        .await;
    assert_eq!(open.status, StatusCode::CREATED, "{}", open.body);
    let open_id = open.body["dispute"]["id"].as_str().unwrap().to_owned();
    let settled_id = settled.body["dispute"]["id"].as_str().unwrap().to_owned();
    let supervisor = app.staff("supervisor@example.com", "supervisor").await;
    let answer =
        app.post(&format!("/v1/disputes/{open_id}/messages"), Some(&supervisor), json!({"text": "SF1234567890"})).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    app.set_clock("2027-02-25T00:00:00Z").await;
    assert!(app.billing_run().await["disputes_escalated"].as_u64().unwrap() >= 1);
    for path in [
        "/disputes".to_owned(),
        "/disputes/new".to_owned(),
        format!("/disputes/{open_id}"),
        format!("/disputes/{settled_id}"),
    ] {
        paths.push((path, &guardian));
    }
    paths.push((app.state.keys.dispute_link(&open_id), ""));
    paths.push(("/complain".into(), ""));
    // A subscription that still runs, for the cancel page.
    let other = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    paths.push((format!("/services/{other}/cancel"), &guardian));

    let staff = format!("baobao_staff_session={}", app.staff("agent@example.com", "supervisor").await);
    let family = &parent.family_id;
    for path in [
        "/console".to_owned(),
        format!("/console?q={family}"),
        format!("/console/families/{family}"),
        format!("/console/subscriptions/{other}/cancel"),
        format!("/console/subscriptions/{other}/written-notice"),
        "/console/written-notices".to_owned(),
        "/console/finance".to_owned(),
        "/console/disputes".to_owned(),
        format!("/console/disputes/{open_id}"),
        format!("/console/families/{family}/disputes"),
    ] {
        paths.push((path, &staff));
    }
    let compliance = format!("baobao_staff_session={}", app.staff("compliance@example.com", "compliance").await);
    paths.push((format!("/console/audit?family_id={family}"), &compliance));
    paths.push(("/console/disputes/report?month=2027-02".to_owned(), &compliance));

    let mut found = Vec::new();
    for locale in ["zh-CN", "en"] {
        for (path, cookies) in &paths {
            let html = page(&app, path, locale, cookies).await;
            let stray = other_language(&html, locale, &TYPED);
            if !stray.is_empty() {
                found.push(format!("{locale} {path}: {stray:?}"));
            }
        }
    }
    assert!(found.is_empty(), "text of the other language:\n{}", found.join("\n"));
}
