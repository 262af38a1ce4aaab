//! The audit log as a Merkle log: dense leaf indexes however many changes
//! append at once, signed tree heads whose root is the entries', inclusion
//! and consistency proofs that verify — on both engines.

use baobao_domain::audit::entry_leaf_hash;
use baobao_domain::merkle::{self, Hash};
use baobao_server::keys::KeySet;
use baobao_server::services::audit_log::{ConsistencyProof, InclusionProof, TreeHead};
use baobao_store::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::TestApp;

baobao_store::on_both_engines!(
    concurrent_changes_append_dense_leaves_and_every_proof_verifies_against_a_signed_head,
    proofs_outside_the_log_are_refused_with_their_reason,
    a_changed_deleted_reordered_or_truncated_log_is_caught_at_its_first_bad_leaf,
    a_watcher_outside_catches_a_provider_that_rewrites_its_history,
    compliance_reads_the_entries_filtered_and_a_guardian_only_their_familys,
    the_console_shows_the_log_and_downloads_it_as_csv_for_compliance_only,
    a_receipt_and_an_export_are_proved_in_the_log_from_outside,
    appenders_of_several_processes_keep_the_log_dense_and_a_crash_before_appending_loses_nothing,
    a_log_of_thousands_of_entries_verifies_with_every_stored_subtree_read,
);

fn hash(hex_text: &str) -> Hash {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

/// Every leaf hash, recomputed from the entries as stored.
async fn recomputed_leaves(app: &TestApp) -> Vec<Hash> {
    app.state.store.append_pending().await.unwrap();
    let entries = app.state.store.logged_entries(0, 1000).await.unwrap();
    entries
        .iter()
        .enumerate()
        .map(|(position, e)| {
            assert_eq!(e.leaf_index, Some(position as u64), "dense and in order");
            entry_leaf_hash(e.at, &e.actor, &e.action, &e.subject_ids, e.document_sha256.as_deref()).unwrap()
        })
        .collect()
}

/// `count` families sign up and subscribe to `plan` through the API, all at
/// once; their subscription answers.
async fn subscribe_at_once(
    app: &TestApp,
    plan: &serde_json::Value,
    prefix: &str,
    count: usize,
) -> Vec<serde_json::Value> {
    let mut set = tokio::task::JoinSet::new();
    for n in 0..count {
        let (client, address, plan) = (app.client.clone(), app.address.clone(), plan.clone());
        let email = format!("{prefix}{n}@example.com");
        set.spawn(async move {
            let guardian = json!({"guardian": {"email": email, "password": "a long password",
                "name": "王芳", "locale": "zh-CN", "time_zone": "Asia/Shanghai"}});
            let signed_up = client.post(format!("{address}/v1/families")).json(&guardian).send().await.unwrap();
            let signed_up: serde_json::Value = signed_up.json().await.unwrap();
            let token = signed_up["token"].as_str().unwrap().to_owned();
            let body = json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]});
            let response =
                client.post(format!("{address}/v1/subscriptions")).bearer_auth(token).json(&body).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            response.json::<serde_json::Value>().await.unwrap()
        });
    }
    set.join_all().await
}

async fn head(app: &TestApp) -> TreeHead {
    let response = app.get("/v1/audit/tree-head", None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let head: TreeHead = serde_json::from_value(response.body).unwrap();
    let keys: KeySet = serde_json::from_value(app.get("/.well-known/baobao/keys.json", None).await.body).unwrap();
    keys.verify(&head.signed_bytes().unwrap(), &head.signature).expect("the head is signed by the server");
    head
}

async fn concurrent_changes_append_dense_leaves_and_every_proof_verifies_against_a_signed_head(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    // Twelve families sign up and subscribe at once: every change appends.
    let subscribed = subscribe_at_once(&app, &plan, "parent", 12).await;
    let leaves = recomputed_leaves(&app).await;
    assert_eq!(app.state.store.audit_size().await.unwrap(), leaves.len() as u64);
    assert!(leaves.len() >= 36, "sign-up, subscription and receipt per family: {}", leaves.len());

    // A receipt is in the log by its document's SHA-256 (of its canonical JSON).
    let sha = baobao_domain::audit::document_sha256(&subscribed[0]["receipt"]).unwrap();
    let entries = app.state.store.logged_entries(0, 1000).await.unwrap();
    let logged =
        entries.iter().find(|e| e.document_sha256.as_deref() == Some(sha.as_str())).expect("the receipt's leaf");
    assert_eq!(logged.action, "receipt.issued");

    // The signed head's root is the entries' root; every leaf proves its inclusion.
    let first = head(&app).await;
    assert_eq!(first.tree_size, leaves.len() as u64);
    assert_eq!(first.root(), Some(merkle::root(&leaves)));
    for index in 0..first.tree_size {
        let response = app
            .get(&format!("/v1/audit/proofs/inclusion?leaf_index={index}&tree_size={}", first.tree_size), None)
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        let proof: InclusionProof = serde_json::from_value(response.body).unwrap();
        assert_eq!(hash(&proof.leaf_hash), leaves[index as usize]);
        let path: Vec<Hash> = proof.audit_path.iter().map(|h| hash(h)).collect();
        assert!(merkle::verify_inclusion(
            &leaves[index as usize],
            index,
            first.tree_size,
            &path,
            &first.root().unwrap()
        ));
    }

    // More changes; the new head is consistent with the first.
    let late = app.sign_up("late@example.com").await;
    app.subscribe(&late, &plan).await;
    let second = head(&app).await;
    assert!(second.tree_size > first.tree_size);
    assert_eq!(
        app.get(&format!("/v1/audit/tree-head?tree_size={}", first.tree_size), None).await.body["root_hash"],
        first.root_hash.as_str()
    );
    let response = app
        .get(&format!("/v1/audit/proofs/consistency?first={}&second={}", first.tree_size, second.tree_size), None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let proof: ConsistencyProof = serde_json::from_value(response.body).unwrap();
    let path: Vec<Hash> = proof.proof.iter().map(|h| hash(h)).collect();
    assert!(merkle::verify_consistency(
        first.tree_size,
        second.tree_size,
        &first.root().unwrap(),
        &second.root().unwrap(),
        &path
    ));
    assert_eq!(second.root(), Some(merkle::root(&recomputed_leaves(&app).await)));
}

async fn proofs_outside_the_log_are_refused_with_their_reason(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.sign_up("parent@example.com").await;
    let size = head(&app).await.tree_size;
    for path in [
        format!("/v1/audit/proofs/inclusion?leaf_index={size}&tree_size={size}"),
        format!("/v1/audit/proofs/inclusion?leaf_index=0&tree_size={}", size + 1),
        "/v1/audit/proofs/inclusion?leaf_index=0&tree_size=0".to_owned(),
        format!("/v1/audit/proofs/consistency?first=0&second={size}"),
        format!("/v1/audit/proofs/consistency?first={}&second={size}", size + 1),
        format!("/v1/audit/proofs/consistency?first=1&second={}", u64::MAX),
    ] {
        let response = app.request(reqwest::Method::GET, &path, None, None, "zh-CN").await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {}", response.body);
        assert!(response.body["error"]["message"].as_str().unwrap().contains("超出日志范围"), "{}", response.body);
    }
    for path in ["/v1/audit/proofs/inclusion?leaf_index=-1&tree_size=1", "/v1/audit/proofs/inclusion?leaf_index=x"] {
        let refused = app.get(path, None).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {}", refused.body);
        assert_eq!(refused.body["error"]["code"], "invalid_query", "{}", refused.body);
    }
    for size in ["999999", "18446744073709551615"] {
        let unknown = app.get(&format!("/v1/audit/tree-head?tree_size={size}"), None).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{size}: {}", unknown.body);
    }
}

/// Runs SQL on the test database as someone with access to it would.
async fn tamper(app: &TestApp, statements: &[String]) {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(&app.db.url).await.unwrap();
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(&mut conn).await.unwrap();
    }
}

async fn a_changed_deleted_reordered_or_truncated_log_is_caught_at_its_first_bad_leaf(engine: Engine) {
    use baobao_server::services::audit_log::{LogFault, verify};
    // One log per case, each with entries and a signed head.
    let mut apps = Vec::new();
    for _ in 0..5 {
        apps.push(TestApp::spawn(engine).await);
    }
    for app in &apps {
        let plan = app.create_plan(json!({})).await;
        for n in 0..3 {
            let parent = app.sign_up(&format!("parent{n}@example.com")).await;
            app.subscribe(&parent, &plan).await;
        }
        head(app).await;
    }
    let keys = |n: usize| apps[n].state.keys.key_set();
    let clean = verify(&apps[0].state.store, &keys(0)).await.unwrap();
    assert!(clean.leaves >= 9 && clean.heads == 1, "{clean:?}");

    // Changed: an entry's action rewritten (its leaf hash left alone).
    tamper(&apps[1], &["UPDATE audit_entries SET action = 'nothing.happened' WHERE leaf_index = 4".into()]).await;
    assert_eq!(verify(&apps[1].state.store, &keys(1)).await, Err(LogFault::Changed { index: 4 }));
    // Deleted: an entry removed.
    tamper(&apps[2], &["DELETE FROM audit_entries WHERE leaf_index = 2".into()]).await;
    assert_eq!(verify(&apps[2].state.store, &keys(2)).await, Err(LogFault::Missing { index: 2 }));
    // Reordered: two entries swap places, their hashes with them.
    tamper(
        &apps[3],
        &[
            "UPDATE audit_entries SET leaf_index = -1 WHERE leaf_index = 1".into(),
            "UPDATE audit_entries SET leaf_index = 1 WHERE leaf_index = 3".into(),
            "UPDATE audit_entries SET leaf_index = 3 WHERE leaf_index = -1".into(),
        ],
    )
    .await;
    assert_eq!(verify(&apps[3].state.store, &keys(3)).await, Err(LogFault::Changed { index: 1 }));
    // Truncated: the last entries cut off, with their hashes and the size.
    let size = apps[4].state.store.audit_size().await.unwrap();
    tamper(
        &apps[4],
        &[
            format!("DELETE FROM audit_entries WHERE leaf_index >= {}", size - 2),
            format!("DELETE FROM audit_nodes WHERE idx >= 0 AND level = 0 AND idx >= {}", size - 2),
            format!("UPDATE audit_log SET size = {}", size - 2),
        ],
    )
    .await;
    assert_eq!(verify(&apps[4].state.store, &keys(4)).await, Err(LogFault::Truncated { have: size - 2, signed: size }));
    // Rewritten with every hash made to match: only the signed head knows.
    let app = &apps[0];
    let entries = app.state.store.logged_entries(0, 1000).await.unwrap();
    let forged = &entries[5];
    let leaf = entry_leaf_hash(
        forged.at,
        "system",
        "nothing.happened",
        &forged.subject_ids,
        forged.document_sha256.as_deref(),
    )
    .unwrap();
    // A forger who changes only the entry and its leaf hash is caught at
    // the first stored subtree over it (proofs are made of those).
    let mut statements = vec![format!(
        "UPDATE audit_entries SET actor = 'system', action = 'nothing.happened', leaf_hash = '{}' WHERE leaf_index = 5",
        hex::encode(leaf)
    )];
    tamper(app, &statements).await;
    assert_eq!(verify(&app.state.store, &keys(0)).await, Err(LogFault::Changed { index: 5 }));
    // One who recomputes every stored subtree too is caught by the signed head.
    let mut leaves = recomputed_leaves_unchecked(app).await;
    leaves[5] = leaf;
    statements.extend(forged_subtrees(&leaves));
    tamper(app, &statements).await;
    let size = head_size(app).await;
    assert_eq!(verify(&app.state.store, &keys(0)).await, Err(LogFault::Rewritten { tree_size: size }));
}

async fn head_size(app: &TestApp) -> u64 {
    app.state.store.tree_head(None).await.unwrap().unwrap().tree_size
}

async fn a_watcher_outside_catches_a_provider_that_rewrites_its_history(engine: Engine) {
    use baobao_server::services::audit_log::{WatchFault, WatchState, watch_once};
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    let mut state = WatchState { server: app.address.clone(), ..WatchState::default() };
    let first = watch_once(&app.client, &mut state).await.unwrap();
    assert!(state.keys.is_some(), "the key is pinned on first use");
    // The log grows: the next run checks the new head extends the first.
    let other = app.sign_up("other@example.com").await;
    app.subscribe(&other, &plan).await;
    let second = watch_once(&app.client, &mut state).await.unwrap();
    assert!(second.tree_size > first.tree_size);
    assert_eq!(state.heads.len(), 2);
    let unchanged = watch_once(&app.client, &mut state).await.unwrap();
    assert_eq!(unchanged, second, "nothing new: the same head");

    // The provider rewrites an early entry, every stored hash with it, and
    // signs a fresh head over the rewritten log: any watcher catches it.
    let entries = app.state.store.logged_entries(0, 1000).await.unwrap();
    let forged = &entries[1];
    let leaf = entry_leaf_hash(forged.at, "system", "nothing.happened", &forged.subject_ids, None).unwrap();
    let mut statements = vec![
        format!(
            "UPDATE audit_entries SET actor = 'system', action = 'nothing.happened', leaf_hash = '{}', document_sha256 = NULL WHERE leaf_index = 1",
            hex::encode(leaf)
        ),
        "DELETE FROM tree_heads".to_owned(),
    ];
    // Recompute the stored subtrees over the forged leaf, as a careful forger would.
    let mut leaves = recomputed_leaves_unchecked(&app).await;
    leaves[1] = leaf;
    statements.extend(forged_subtrees(&leaves));
    tamper(&app, &statements).await;
    let third = app.sign_up("third@example.com").await;
    app.subscribe(&third, &plan).await;
    match watch_once(&app.client, &mut state).await {
        Err(WatchFault::Inconsistent { first, second: now }) => assert_eq!(first, second.tree_size, "{now}"),
        other => panic!("the rewrite went unnoticed: {other:?}"),
    }
    // A fresh watcher, knowing no earlier head, cannot tell: that is why heads are kept.
    let mut fresh = WatchState { server: app.address.clone(), ..WatchState::default() };
    assert!(watch_once(&app.client, &mut fresh).await.is_ok());
}

/// The statements that make every stored subtree above the leaves agree
/// with `leaves`.
fn forged_subtrees(leaves: &[Hash]) -> Vec<String> {
    let mut statements = Vec::new();
    for level in 1..10u32 {
        let width = 1usize << level;
        for start in (0..leaves.len()).step_by(width) {
            if start + width <= leaves.len() {
                let hash = merkle::root(&leaves[start..start + width]);
                statements.push(format!(
                    "UPDATE audit_nodes SET hash = '{}' WHERE level = {level} AND idx = {}",
                    hex::encode(hash),
                    start / width
                ));
            }
        }
    }
    statements
}

/// Every leaf hash recomputed from the entries, without checking the order.
async fn recomputed_leaves_unchecked(app: &TestApp) -> Vec<Hash> {
    app.state.store.append_pending().await.unwrap();
    let entries = app.state.store.logged_entries(0, 1000).await.unwrap();
    entries
        .iter()
        .map(|e| entry_leaf_hash(e.at, &e.actor, &e.action, &e.subject_ids, e.document_sha256.as_deref()).unwrap())
        .collect()
}

pub(crate) async fn compliance_reads_the_entries_filtered_and_a_guardian_only_their_familys(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let other = app.sign_up("other@example.com").await;
    app.subscribe(&parent, &plan).await;
    app.subscribe(&other, &plan).await;
    let compliance = app.staff("compliance@example.com", "compliance").await;
    let agent = app.staff("agent@example.com", "agent").await;

    let all = app.get("/v1/audit/entries", Some(&compliance)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let total = all.body["entries"].as_array().unwrap().len();
    assert_eq!(total as u64, app.state.store.audit_size().await.unwrap());
    // Filtered by family, by action; paged.
    let family = format!("/v1/audit/entries?family_id={}", parent.family_id);
    let mine = app.get(&family, Some(&compliance)).await.body["entries"].as_array().unwrap().clone();
    assert!(
        !mine.is_empty()
            && mine.iter().all(|e| e["subject_ids"].as_array().unwrap().contains(&json!(parent.family_id)))
    );
    let receipts = app.get(&format!("{family}&action=receipt.issued"), Some(&compliance)).await;
    let receipts = receipts.body["entries"].as_array().unwrap().clone();
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert!(receipts[0]["document_sha256"].as_str().unwrap().len() == 64);
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = app.get(&format!("/v1/audit/entries?limit=2{after}"), Some(&compliance)).await.body;
        seen.extend(page["entries"].as_array().unwrap().iter().map(|e| e["leaf_index"].as_u64().unwrap()));
        match page["next"].as_u64() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..total as u64).collect::<Vec<_>>(), "every entry once, in order");
    let bad = app.get("/v1/audit/entries?from=yesterday", Some(&compliance)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // A guardian reads their own family's entries only.
    let own = app.get("/v1/audit/entries", Some(&parent.token)).await;
    let own = own.body["entries"].as_array().unwrap().clone();
    assert_eq!(own.len(), mine.len());
    let theirs = app.get(&format!("/v1/audit/entries?family_id={}", other.family_id), Some(&parent.token)).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/v1/audit/entries", Some(&agent)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/v1/audit/entries", None).await.status, StatusCode::UNAUTHORIZED);
}

async fn the_console_shows_the_log_and_downloads_it_as_csv_for_compliance_only(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    let compliance = format!("baobao_staff_session={}", app.staff("compliance@example.com", "compliance").await);
    let agent = format!("baobao_staff_session={}", app.staff("agent@example.com", "agent").await);
    let get = |path: String, cookie: String| {
        let client = app.client.clone();
        let url = format!("{}{path}", app.address);
        async move { client.get(url).header("cookie", cookie).header("accept-language", "en").send().await.unwrap() }
    };
    let page = get(format!("/console/audit?family_id={}", parent.family_id), compliance.clone()).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Signed receipt issued") && html.contains("the guardian (gdn_"), "{html}");
    let csv = get(format!("/console/audit.csv?family_id={}", parent.family_id), compliance.clone()).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("leaf_index,at,actor,action,subject_ids,document_sha256,leaf_hash,details"));
    let logged = app.get(&format!("/v1/audit/entries?family_id={}", parent.family_id), Some(&app.admin)).await;
    assert_eq!(lines.count(), logged.body["entries"].as_array().unwrap().len());
    let bad_day = get("/console/audit?from=someday".to_owned(), compliance).await;
    assert!(bad_day.text().await.unwrap().contains("role=\"alert\""));
    assert_eq!(
        get("/console/audit".to_owned(), agent.clone()).await.status(),
        StatusCode::NOT_FOUND,
        "as any page a role may not see"
    );
    assert_eq!(get("/console/audit.csv".to_owned(), agent).await.status(), StatusCode::NOT_FOUND);
}

pub(crate) async fn a_receipt_and_an_export_are_proved_in_the_log_from_outside(engine: Engine) {
    use baobao_server::services::audit_log::{DocumentProof, check_document_proof, prove_document};
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let receipt = app.subscribe(&parent, &plan).await["receipt"].clone();
    let export = app.export_ready(&parent).await;
    let keys: KeySet = serde_json::from_value(app.get("/.well-known/baobao/keys.json", None).await.body).unwrap();
    // The receipt as a parent kept it (pretty-printed): found by its canonical form.
    let kept: serde_json::Value = serde_json::from_str(&serde_json::to_string_pretty(&receipt).unwrap()).unwrap();
    let sha = baobao_domain::audit::document_sha256(&kept).unwrap();
    let found = prove_document(&app.client, &app.address, &sha, &keys).await.unwrap();
    assert!(found.head.tree_size > found.leaf_index);
    // The export, by its ZIP's SHA-256.
    let found = prove_document(&app.client, &app.address, export["sha256"].as_str().unwrap(), &keys).await.unwrap();
    assert!(found.leaf_index > 0);
    // An altered receipt is in no leaf; a head signed by another key is refused.
    let mut altered = receipt.clone();
    altered["body"]["price"]["amount_minor"] = json!(1);
    let altered_sha = baobao_domain::audit::document_sha256(&altered).unwrap();
    let refused = prove_document(&app.client, &app.address, &altered_sha, &keys).await.unwrap_err();
    assert!(refused.contains("no leaf"), "{refused}");
    let stranger = baobao_server::keys::SigningKeys::from_secret([5; 32]).key_set();
    let refused = prove_document(&app.client, &app.address, &sha, &stranger).await.unwrap_err();
    assert!(refused.contains("tree head does not verify"), "{refused}");
    for bad in ["nothex", &"0".repeat(64)] {
        assert_eq!(app.get(&format!("/v1/audit/documents/{bad}"), None).await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.get(&format!("/v1/audit/documents/{bad}/proof"), None).await.status, StatusCode::NOT_FOUND);
    }

    // The proof of logging, downloaded once and kept: checked offline
    // with nothing but the keys, also after the log grew past its head.
    let response = app.get(&format!("/v1/audit/documents/{sha}/proof"), None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let proof: DocumentProof = serde_json::from_value(response.body).unwrap();
    let other = app.sign_up("other@example.com").await;
    app.subscribe(&other, &plan).await;
    let found = check_document_proof(&sha, &proof, &keys).unwrap();
    assert_eq!(found.leaf_index, proof.entry.leaf_index);
    assert_eq!(found.head, proof.tree_head);
    // Whatever is changed in it, it no longer proves the document.
    assert!(check_document_proof(&altered_sha, &proof, &keys).unwrap_err().contains("not this document's"));
    assert!(check_document_proof(&sha, &proof, &stranger).unwrap_err().contains("tree head does not verify"));
    let mut moved = proof.clone();
    moved.entry.leaf_index += 1;
    moved.inclusion.leaf_index += 1;
    assert!(check_document_proof(&sha, &moved, &keys).unwrap_err().contains("not in the tree"));
    let mut forged = proof.clone();
    forged.entry.action = "nothing.happened".into();
    assert!(check_document_proof(&sha, &forged, &keys).unwrap_err().contains("not this document's"));
    let mut cut = proof.clone();
    cut.inclusion.audit_path.pop();
    assert!(check_document_proof(&sha, &cut, &keys).is_err());
}

async fn appenders_of_several_processes_keep_the_log_dense_and_a_crash_before_appending_loses_nothing(engine: Engine) {
    use baobao_server::services::audit_log::verify;
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    // Three more appenders on the same database, as other servers' would be,
    // racing the server's own while families sign up and subscribe.
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(baobao_store::Store::connect(&app.db.url).await.unwrap());
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut appenders = tokio::task::JoinSet::new();
    for store in others.clone() {
        let done = done.clone();
        appenders.spawn(async move {
            let mut appended = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                appended += store.append_pending().await.unwrap();
                tokio::task::yield_now().await;
            }
            appended
        });
    }
    subscribe_at_once(&app, &plan, "racer", 8).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    appenders.join_all().await;
    let leaves = recomputed_leaves(&app).await;
    assert!(leaves.len() >= 24, "{}", leaves.len());
    assert_eq!(head(&app).await.root(), Some(merkle::root(&leaves)));

    // A process that dies after its commit and before any appender's turn:
    // the entry is in the database, and the next start appends it.
    let mut tx = others[0].begin().await.unwrap();
    let at = jiff::Timestamp::now();
    tx.audit_entry(at, "system", "clock.set", &["crash"], &json!({}), None).await.unwrap();
    tx.commit().await.unwrap();
    let restarted = baobao_store::Store::connect(&app.db.url).await.unwrap();
    restarted.migrate().await.unwrap();
    assert_eq!(restarted.pending_entries().await.unwrap(), 0);
    let report = verify(&restarted, &app.state.keys.key_set()).await.unwrap();
    assert_eq!(report.leaves, leaves.len() as u64 + 1);
    assert_eq!(report.pending, 0);
    let last = restarted.logged_entries(report.leaves - 1, 1).await.unwrap();
    assert_eq!(last[0].subject_ids, vec!["crash".to_owned()]);
}

/// Found by the crash loop: a log of thousands of entries asked SQLite for
/// more stored subtrees in one query than its parser takes. Verifying,
/// signing and proving read them a few hundred at a time.
async fn a_log_of_thousands_of_entries_verifies_with_every_stored_subtree_read(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let at: jiff::Timestamp = "2027-01-10T02:00:00Z".parse().unwrap();
    let mut tx = app.state.store.begin().await.unwrap();
    for n in 0..2_500 {
        tx.audit(at, "system", "clock.set", &[], &json!({"n": n})).await.unwrap();
    }
    tx.commit().await.unwrap();
    app.state.store.append_pending().await.unwrap();
    let head = app.get("/v1/audit/tree-head", None).await;
    assert_eq!(head.status, StatusCode::OK, "{}", head.body);
    let size = head.body["tree_size"].as_u64().unwrap();
    assert!(size >= 2_500, "{size}");
    let proof = app.get(&format!("/v1/audit/proofs/consistency?first=3&second={size}"), None).await;
    assert_eq!(proof.status, StatusCode::OK, "{}", proof.body);
    let report = baobao_server::services::audit_log::verify(&app.state.store, &app.state.keys.key_set()).await.unwrap();
    assert_eq!(report.leaves, size);
}
