#![allow(clippy::unwrap_used)]
//! The store's contract, run against SQLite and PostgreSQL alike: the
//! constraints that keep money and requests consistent hold in the
//! database itself, not only in the code above it.

use baobao_domain::ids::{CancellationId, FamilyId, Id, IdKind, LedgerEntryId, PlanId, ReceiptId, SubscriptionId};
use baobao_domain::money::Currency;
use baobao_store::testing::fresh_database;
use baobao_store::{
    Cancellation, Engine, Family, LedgerEntry, Plan, PolicyVersion, PrincipalKind, Share, Store, StoreError,
    Subscription,
};
use jiff::Timestamp;

baobao_store::on_both_engines!(
    migrations_apply_once,
    the_shares_of_a_billing_run_are_disjoint_and_cover_every_subscription,
    at_most_one_charge_per_subscription_and_period,
    at_most_one_open_cancellation_per_subscription,
    billing_claims_only_what_is_due_oldest_first,
    a_billing_claim_keeps_other_workers_off_until_it_ends_or_runs_out,
    a_batch_writes_what_it_kept_at_commit_or_nothing,
    the_billing_claim_reads_the_due_index_not_the_table,
    migrations_run_at_once_by_several_processes_apply_each_once,
    concurrent_workers_claim_different_subscriptions,
    sessions_expire,
    policy_versions_are_numbered_in_order,
    ledger_totals_sum_by_kind,
);

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn new_id<K: IdKind>(seed: u8) -> Id<K> {
    let mut bytes = [seed; 16];
    bytes[14] = rand_byte();
    bytes[15] = rand_byte();
    Id::from_random(bytes)
}

fn rand_byte() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(1);
    NEXT.fetch_add(7, Ordering::Relaxed)
}

/// A family with one plan and one subscription due at `due_at`.
async fn family_with_subscription(store: &Store, due_at: Option<&str>) -> (FamilyId, PlanId, Subscription) {
    let now = at("2027-01-10T02:00:00Z");
    let family = Family { id: new_id(1), time_zone: "Asia/Shanghai".into(), created_at: now };
    let plan = Plan {
        id: new_id(2),
        service: "edu".into(),
        name_zh_cn: "月度".into(),
        name_en: "Monthly".into(),
        current_version: 1,
        created_at: now,
    };
    let policy = PolicyVersion {
        plan_id: plan.id.clone(),
        version: 1,
        sha256: "ab".repeat(32),
        policy: policy_with_price(3900),
        created_at: now,
    };
    let subscription = Subscription {
        id: new_id(3),
        family_id: family.id.clone(),
        plan_id: plan.id.clone(),
        policy_version: 1,
        policy_sha256: policy.sha256.clone(),
        status: baobao_domain::SubscriptionStatus::Active,
        time_zone: "Asia/Shanghai".into(),
        signed_up_at: now,
        anchor_at: now,
        current_position: 0,
        current_period_start: now,
        current_period_end: at("2027-02-10T02:00:00Z"),
        current_period_paid: true,
        last_charge_attempt_at: Some(now),
        pending_cancellation_id: None,
        effective_at: None,
        ended_at: None,
        due_at: due_at.map(at),
        created_at: now,
        reminded_period_start: None,
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_family(&family).await.unwrap();
    tx.insert_plan(&plan, &policy).await.unwrap();
    tx.insert_subscription(&subscription).await.unwrap();
    tx.commit().await.unwrap();
    (family.id, plan.id, subscription)
}

/// Another family's subscription to `plan` (a family has one live
/// subscription per plan).
async fn add_subscription(store: &Store, plan: &PlanId, due_at: Option<&str>) -> Subscription {
    add_subscription_with_id(store, plan, due_at, new_id(4)).await
}

async fn add_subscription_with_id(
    store: &Store,
    plan: &PlanId,
    due_at: Option<&str>,
    id: SubscriptionId,
) -> Subscription {
    let now = at("2027-01-10T02:00:00Z");
    let family = Family { id: new_id(5), time_zone: "UTC".into(), created_at: now };
    let subscription = Subscription {
        id,
        family_id: family.id.clone(),
        plan_id: plan.clone(),
        policy_version: 1,
        policy_sha256: "ab".repeat(32),
        status: baobao_domain::SubscriptionStatus::Active,
        time_zone: "UTC".into(),
        signed_up_at: now,
        anchor_at: now,
        current_position: 0,
        current_period_start: now,
        current_period_end: at("2027-02-10T02:00:00Z"),
        current_period_paid: true,
        last_charge_attempt_at: None,
        pending_cancellation_id: None,
        effective_at: None,
        ended_at: None,
        due_at: due_at.map(at),
        created_at: now,
        reminded_period_start: None,
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_family(&family).await.unwrap();
    tx.insert_subscription(&subscription).await.unwrap();
    tx.commit().await.unwrap();
    subscription
}

fn entry(s: &Subscription, kind: &str, amount_minor: i64, key: &str, period_start: Option<&str>) -> LedgerEntry {
    LedgerEntry {
        id: LedgerEntryId::from_random([rand_byte(); 16]),
        family_id: s.family_id.clone(),
        subscription_id: s.id.clone(),
        kind: baobao_domain::ledger::LedgerKind::parse(kind).unwrap(),
        amount_minor,
        currency: Currency::CNY,
        period_start: period_start.map(at),
        period_end: None,
        entry_key: key.into(),
        gateway_reference: None,
        note: "test".into(),
        created_at: at("2027-01-10T02:00:00Z"),
    }
}

async fn migrations_apply_once(engine: Engine) {
    let db = fresh_database(engine).await;
    assert!(db.store.migrate().await.unwrap().is_empty(), "a second migrate applies nothing");
    assert!(db.store.schema_is_current().await.unwrap());
}

/// Servers deployed together may each run `baobao migrate` at the same
/// moment: every migration is applied once, by one of them, and neither
/// fails.
async fn migrations_run_at_once_by_several_processes_apply_each_once(engine: Engine) {
    let db = baobao_store::testing::empty_database(engine).await;
    let second = Store::connect(&db.url).await.unwrap();
    let third = Store::connect(&db.url).await.unwrap();
    let (a, b, c) = tokio::join!(db.store.migrate(), second.migrate(), third.migrate());
    let mut applied =
        [a, b, c].into_iter().flat_map(|result| result.expect("each migrate succeeds")).collect::<Vec<_>>();
    let all = applied.len();
    applied.sort();
    applied.dedup();
    assert_eq!(applied.len(), all, "a migration applied twice: {applied:?}");
    assert!(applied.first().is_some_and(|m| m.starts_with("0001_")), "{applied:?}");
    assert!(db.store.schema_is_current().await.unwrap());
    second.close().await;
    third.close().await;
}

async fn at_most_one_charge_per_subscription_and_period(engine: Engine) {
    let db = fresh_database(engine).await;
    let (_, _, s) = family_with_subscription(&db.store, None).await;
    let period = Some("2027-01-10T02:00:00Z");
    let mut tx = db.store.begin().await.unwrap();
    assert!(tx.append_ledger_entry(&entry(&s, "charge", 3900, "charge:a", period)).await.unwrap());
    // The same entry again (a retried run) is a no-op, not an error.
    assert!(!tx.append_ledger_entry(&entry(&s, "charge", 3900, "charge:a", period)).await.unwrap());
    tx.commit().await.unwrap();
    // A second charge for the same period under any other key is refused by the database.
    let mut tx = db.store.begin().await.unwrap();
    let second = tx.append_ledger_entry(&entry(&s, "charge", 3900, "charge:b", period)).await;
    assert!(matches!(second, Err(StoreError::Conflict { .. })), "{second:?}");
    drop(tx);
    // Refunds for that period are not charges and are allowed.
    let mut tx = db.store.begin().await.unwrap();
    assert!(tx.append_ledger_entry(&entry(&s, "refund", 3900, "refund:a", period)).await.unwrap());
    tx.commit().await.unwrap();
    // Negative amounts never get in.
    let mut tx = db.store.begin().await.unwrap();
    let negative = tx.append_ledger_entry(&entry(&s, "credit", -1, "credit:a", None)).await;
    assert!(negative.is_err());
}

fn cancellation(s: &Subscription, status: &str) -> Cancellation {
    Cancellation {
        id: CancellationId::from_random([rand_byte(); 16]),
        subscription_id: s.id.clone(),
        family_id: s.family_id.clone(),
        channel: baobao_domain::subscription::CancellationChannel::SelfService,
        option: baobao_domain::CancelOption::EndOfPeriod,
        status: baobao_domain::subscription::CancellationStatus::parse(status).unwrap(),
        received_at: at("2027-01-20T00:00:00Z"),
        effective_at: at("2027-02-10T02:00:00Z"),
        refund_minor: 0,
        fee_minor: 0,
        currency: Currency::CNY,
        quote_id: None,
        reason_category: None,
        reason_text: None,
        receipt_id: ReceiptId::from_random([rand_byte(); 16]),
        actor: "guardian:test".into(),
        withdrawn_at: None,
        created_at: at("2027-01-20T00:00:00Z"),
    }
}

async fn at_most_one_open_cancellation_per_subscription(engine: Engine) {
    let db = fresh_database(engine).await;
    let (_, _, s) = family_with_subscription(&db.store, None).await;
    let first = cancellation(&s, "scheduled");
    let mut tx = db.store.begin().await.unwrap();
    tx.insert_cancellation(&first).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.store.begin().await.unwrap();
    let second = tx.insert_cancellation(&cancellation(&s, "scheduled")).await;
    assert!(matches!(second, Err(StoreError::Conflict { .. })), "{second:?}");
    drop(tx);
    // Once withdrawn, a new request may be filed.
    let mut tx = db.store.begin().await.unwrap();
    tx.set_cancellation_status(
        &first.id,
        baobao_domain::subscription::CancellationStatus::Withdrawn,
        Some(at("2027-01-21T00:00:00Z")),
    )
    .await
    .unwrap();
    tx.insert_cancellation(&cancellation(&s, "scheduled")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.store.cancellations_of(&s.id).await.unwrap().len(), 2);
}

/// A worker's wall-clock time and the end of a claim made then.
const WALL: &str = "2026-11-26T10:00:00Z";
const CLAIMED_UNTIL: &str = "2026-11-26T10:05:00Z";

/// Claims the next due subscription of `share` (one at a time) and writes
/// it not due any more: its id, or `None` when nothing is due.
async fn claim_one_and_settle_it(store: &Store, now: Timestamp, share: Share) -> Option<SubscriptionId> {
    let mut tx = store.begin().await.unwrap();
    let claimed = tx.claim_due_subscriptions(now, share, 1, at(WALL), at(CLAIMED_UNTIL)).await.unwrap();
    let mut s = claimed.into_iter().next()?;
    s.due_at = None;
    tx.update_subscription(&s).await.unwrap();
    tx.commit().await.unwrap();
    Some(s.id)
}

async fn billing_claims_only_what_is_due_oldest_first(engine: Engine) {
    let db = fresh_database(engine).await;
    let (_, plan, later) = family_with_subscription(&db.store, Some("2027-02-10T02:00:00Z")).await;
    let earlier = add_subscription(&db.store, &plan, Some("2027-02-01T00:00:00Z")).await;
    add_subscription(&db.store, &plan, Some("2027-03-01T00:00:00Z")).await;
    add_subscription(&db.store, &plan, None).await;
    let now = at("2027-02-15T00:00:00Z");
    assert_eq!(db.store.due_count(now).await.unwrap(), 2);
    let mut claimed = Vec::new();
    while let Some(id) = claim_one_and_settle_it(&db.store, now, Share::WHOLE).await {
        claimed.push(id);
    }
    assert_eq!(claimed, vec![earlier.id, later.id]);
}

/// A claim is committed at once and keeps other workers' claims off its
/// subscriptions until a write of the subscription ends it, or it runs out.
async fn a_billing_claim_keeps_other_workers_off_until_it_ends_or_runs_out(engine: Engine) {
    let db = fresh_database(engine).await;
    let (_, plan, first) = family_with_subscription(&db.store, Some("2027-02-01T00:00:00Z")).await;
    let second = add_subscription(&db.store, &plan, Some("2027-02-02T00:00:00Z")).await;
    let now = at("2027-02-15T00:00:00Z");
    let claim = |wall: &'static str, limit: usize| {
        let store = db.store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let claimed =
                tx.claim_due_subscriptions(now, Share::WHOLE, limit, at(wall), at(CLAIMED_UNTIL)).await.unwrap();
            tx.commit().await.unwrap();
            claimed.into_iter().map(|s| s.id).collect::<Vec<_>>()
        }
    };
    // Oldest due first, up to the limit.
    assert_eq!(claim(WALL, 1).await, vec![first.id.clone()]);
    assert_eq!(claim(WALL, 10).await, vec![second.id.clone()]);
    // Both held: another worker gets nothing while the claims last.
    assert!(claim("2026-11-26T10:04:59Z", 10).await.is_empty());
    // A write of the subscription (its step done) ends its claim.
    let mut tx = db.store.begin().await.unwrap();
    tx.update_subscription(&first).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claim("2026-11-26T10:04:59Z", 10).await, vec![first.id.clone()]);
    // So does releasing it.
    let mut tx = db.store.begin().await.unwrap();
    tx.release_claims(std::slice::from_ref(&first.id)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(claim(WALL, 10).await, vec![first.id.clone()]);
    // A claim that was never ended (its worker died) runs out.
    assert_eq!(claim(CLAIMED_UNTIL, 10).await, vec![first.id.clone(), second.id.clone()]);
}

/// `n` steps' receipts, audit entries and messages, and the subscription
/// written at position 7 and not due.
async fn write_steps(tx: &mut baobao_store::Tx, subscription: &Subscription, n: usize, now: Timestamp) {
    let family = subscription.family_id.clone();
    let mut changed = subscription.clone();
    changed.current_position = 6;
    // Written twice in the batch: the last state is the one kept.
    tx.update_subscription(&changed).await.unwrap();
    changed.due_at = None;
    changed.current_position = 7;
    for i in 0..n {
        let receipt = baobao_store::StoredReceipt {
            id: ReceiptId::from_random({
                let mut bytes = [7u8; 16];
                bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
                bytes
            }),
            family_id: family.clone(),
            number: format!("R-{i}"),
            kind: "charge".into(),
            subject_id: format!("subject-{i}"),
            document: format!("{{\"n\":{i}}}"),
            created_at: now,
        };
        tx.insert_receipt(&receipt).await.unwrap();
        tx.audit(now, "billing", "test.step", &[&format!("s-{i}")], &serde_json::json!({"i": i})).await.unwrap();
        let message = baobao_store::OutboxMessage {
            id: format!("msg_{i}"),
            channel: "email".into(),
            event_key: format!("email:test:{i}"),
            family_id: Some(family.clone()),
            recipient: "guardian@example.com".into(),
            locale: "en".into(),
            template: "payment_received".into(),
            payload: "{}".into(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
        };
        tx.enqueue(&message).await.unwrap();
    }
    tx.update_subscription(&changed).await.unwrap();
}

/// A batch transaction writes its receipts, audit entries (in the order
/// made), outbox messages and subscriptions at commit — more rows than one
/// statement takes — and nothing if it does not commit; it reads a plan
/// once, and sees the guardians it read for its families.
async fn a_batch_writes_what_it_kept_at_commit_or_nothing(engine: Engine) {
    let db = fresh_database(engine).await;
    let (family, plan, subscription) = family_with_subscription(&db.store, Some("2027-02-01T00:00:00Z")).await;
    let now = at("2027-02-15T00:00:00Z");
    // Not committed: nothing written.
    let mut tx = db.store.begin_batch().await.unwrap();
    write_steps(&mut tx, &subscription, 3, now).await;
    tx.rollback().await.unwrap();
    assert!(db.store.receipts_of(&family).await.unwrap().is_empty());
    assert!(db.store.outbox_of(&family).await.unwrap().is_empty());
    assert_eq!(db.store.subscription(&subscription.id).await.unwrap().current_position, 0);
    // Committed: every row, in order.
    let rows = 1_100;
    let mut tx = db.store.begin_batch().await.unwrap();
    assert_eq!(tx.plan(&plan).await.unwrap().name_en, "Monthly");
    tx.read_guardians_of(std::slice::from_ref(&family)).await.unwrap();
    assert!(tx.guardians_of(&family).await.unwrap().is_empty());
    write_steps(&mut tx, &subscription, rows, now).await;
    tx.commit().await.unwrap();
    let receipts = db.store.receipts_of(&family).await.unwrap();
    assert_eq!(receipts.len(), rows);
    assert_eq!(receipts.last().unwrap().number, format!("R-{}", rows - 1));
    assert_eq!(db.store.outbox_of(&family).await.unwrap().len(), rows);
    let stored = db.store.subscription(&subscription.id).await.unwrap();
    assert_eq!((stored.current_position, stored.due_at), (7, None));
    assert_eq!(db.store.due_count(now).await.unwrap(), 0);
    // Each receipt's entry then the step's, as they were made.
    db.store.append_pending().await.unwrap();
    let actions: Vec<String> = db.store.audit_entries(0, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    let made: Vec<&str> =
        actions.iter().map(String::as_str).filter(|a| matches!(*a, "receipt.issued" | "test.step")).collect();
    assert_eq!(made[..4], ["receipt.issued", "test.step", "receipt.issued", "test.step"]);
}

/// The claimers of one billing run each take their own share: every due
/// subscription is claimed by exactly one share, whatever its id ends in.
async fn the_shares_of_a_billing_run_are_disjoint_and_cover_every_subscription(engine: Engine) {
    let db = fresh_database(engine).await;
    let (_, plan, first) = family_with_subscription(&db.store, Some("2027-02-01T00:00:00Z")).await;
    let mut due = vec![first.id.clone()];
    for n in 0..64u8 {
        // The last character of an id comes from bits 95..99: byte 3's low
        // nibble and byte 4's top bit; every one of the 32 is made.
        let mut bytes = [9u8; 16];
        bytes[3] = n >> 1;
        bytes[4] = (n & 1) << 7;
        bytes[15] = n;
        let id = SubscriptionId::from_random(bytes);
        due.push(add_subscription_with_id(&db.store, &plan, Some("2027-02-02T00:00:00Z"), id).await.id);
    }
    let endings: std::collections::BTreeSet<char> = due.iter().filter_map(|id| id.as_str().chars().last()).collect();
    assert_eq!(endings.len(), 32, "{endings:?}");
    let now = at("2027-02-15T00:00:00Z");
    let mut claimed = Vec::new();
    for share in Share::all(3) {
        let mut mine = 0;
        while let Some(id) = claim_one_and_settle_it(&db.store, now, share).await {
            claimed.push(id);
            mine += 1;
        }
        assert!(mine > 0, "{share:?} claimed nothing");
    }
    let names = |ids: &[SubscriptionId]| {
        let mut names: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(names(&claimed), names(&due), "each due subscription claimed once");
}

/// The next due subscription, claimed in `tx`.
async fn claim_ids(tx: &mut baobao_store::Tx, now: Timestamp) -> Vec<SubscriptionId> {
    let claimed = tx.claim_due_subscriptions(now, Share::WHOLE, 1, at(WALL), at(CLAIMED_UNTIL)).await.unwrap();
    claimed.into_iter().map(|s| s.id).collect()
}

async fn concurrent_workers_claim_different_subscriptions(engine: Engine) {
    let db = fresh_database(engine).await;
    let (_, plan, _) = family_with_subscription(&db.store, Some("2027-02-01T00:00:00Z")).await;
    add_subscription(&db.store, &plan, Some("2027-02-02T00:00:00Z")).await;
    let now = at("2027-02-15T00:00:00Z");
    let mut first = db.store.begin().await.unwrap();
    let one = claim_ids(&mut first, now).await;
    assert_eq!(one.len(), 1);
    match engine {
        Engine::Postgres => {
            // A second worker skips the row the first is claiming.
            let mut second = db.store.begin().await.unwrap();
            let two = claim_ids(&mut second, now).await;
            assert_eq!(two.len(), 1);
            assert_ne!(one, two);
        }
        Engine::Sqlite => {
            // SQLite has one writer: a second worker queues for it, and
            // then skips the claim the first committed.
            let store = db.store.clone();
            let waiting = tokio::spawn(async move {
                let mut second = store.begin().await.unwrap();
                claim_ids(&mut second, now).await
            });
            first.commit().await.unwrap();
            let two = waiting.await.unwrap();
            assert_eq!(two.len(), 1);
            assert_ne!(one, two);
        }
    }
}

async fn sessions_expire(engine: Engine) {
    let db = fresh_database(engine).await;
    let mut tx = db.store.begin().await.unwrap();
    tx.insert_session("hash", PrincipalKind::Guardian, "gdn_x", at("2027-01-01T00:00:00Z"), at("2027-01-01T12:00:00Z"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(db.store.session("hash", at("2027-01-01T11:59:59Z")).await.is_ok());
    assert!(matches!(db.store.session("hash", at("2027-01-01T12:00:00Z")).await, Err(StoreError::NotFound)));
}

/// A valid monthly policy at `price_minor` CNY.
fn policy_with_price(price_minor: i64) -> baobao_domain::Policy {
    let draft: baobao_domain::PolicyDraft = serde_json::from_value(serde_json::json!({
        "price": {"amount_minor": price_minor, "currency": "CNY"},
        "period": "P1M",
        "retention_days": 30,
    }))
    .unwrap();
    draft.validate().unwrap()
}

async fn policy_versions_are_numbered_in_order(engine: Engine) {
    let db = fresh_database(engine).await;
    let (_, plan, _) = family_with_subscription(&db.store, None).await;
    let mut tx = db.store.begin().await.unwrap();
    let two = tx.publish_policy(&plan, &policy_with_price(4200), at("2027-02-01T00:00:00Z")).await.unwrap();
    let three = tx.publish_policy(&plan, &policy_with_price(4500), at("2027-03-01T00:00:00Z")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!((two.version, three.version), (2, 3));
    assert_eq!(two.sha256, policy_with_price(4200).sha256());
    let stored = db.store.policy(&plan, 3).await.unwrap();
    assert_eq!(stored.policy, policy_with_price(4500), "the terms read back decoded, as published");
    assert_eq!(db.store.plan(&plan).await.unwrap().current_version, 3);
    // Version 1 is still there, unchanged, for the subscriptions bound to it.
    assert_eq!(db.store.policy(&plan, 1).await.unwrap().sha256, "ab".repeat(32));
}

async fn ledger_totals_sum_by_kind(engine: Engine) {
    let db = fresh_database(engine).await;
    let (_, _, s) = family_with_subscription(&db.store, None).await;
    let mut tx = db.store.begin().await.unwrap();
    tx.append_ledger_entry(&entry(&s, "charge", 3900, "c1", Some("2027-01-10T02:00:00Z"))).await.unwrap();
    tx.append_ledger_entry(&entry(&s, "charge", 3900, "c2", Some("2027-02-10T02:00:00Z"))).await.unwrap();
    tx.append_ledger_entry(&entry(&s, "refund", 1234, "r1", None)).await.unwrap();
    tx.append_ledger_entry(&entry(&s, "fee", 500, "f1", None)).await.unwrap();
    tx.commit().await.unwrap();
    let totals = db.store.ledger_totals(&s.id).await.unwrap();
    assert_eq!((totals.charges_minor, totals.refunds_minor, totals.fees_minor), (7800, 1234, 500));
    assert_eq!(totals.net_paid_minor(), 7800 + 500 - 1234);
    assert_eq!(db.store.statement(&s.family_id).await.unwrap().len(), 4);
}

async fn the_billing_claim_reads_the_due_index_not_the_table(engine: Engine) {
    let db = fresh_database(engine).await;
    let plan = baobao_store::testing::claim_query_plan(&db.store).await.join("\n");
    assert!(plan.contains("subscriptions_due"), "the claim does not use the due index:\n{plan}");
    match engine {
        // A search bounded by due_at, already in claim order: no sort.
        Engine::Sqlite => {
            assert!(plan.contains("SEARCH subscriptions USING INDEX subscriptions_due"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
        Engine::Postgres => assert!(
            plan.contains("Index Cond: ((due_at IS NOT NULL) AND (due_at <= ")
                || plan.contains("Index Cond: (due_at <= "),
            "{plan}"
        ),
    }
}
