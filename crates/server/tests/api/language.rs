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
const TYPED: [&str; 11] = [
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

async fn every_page_speaks_one_language(engine: Engine) {
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
    ] {
        paths.push((path, &staff));
    }
    let compliance = format!("baobao_staff_session={}", app.staff("compliance@example.com", "compliance").await);
    paths.push((format!("/console/audit?family_id={family}"), &compliance));

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
