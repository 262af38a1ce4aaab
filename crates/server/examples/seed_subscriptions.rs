//! Benchmark fixture for the billing run: subscriptions seeded in bulk.
//!
//! - `seed DATABASE_URL DUE NOT_DUE`: one plan and one parent subscribed
//!   through the services 40 days ago (a simulated clock, so the first
//!   renewal is due now), then that family, its guardian and its
//!   subscription copied in bulk by SQL: `DUE` subscriptions due now and
//!   `NOT_DUE` due in a hundred years. Prints `{"due", "not_due"}`.
//! - `raw DATABASE_URL`: the baseline — the ledger rows the billing run
//!   wrote, inserted again into a table of the same shape, 1,000 rows per
//!   durable transaction. Prints `{"rows", "seconds", "rate"}`.
//! - `check DATABASE_URL`: what the run charged, from the ledger: charges,
//!   subscriptions charged twice for one period (must be 0). Prints JSON.
//!
//! `cargo build --release -p baobao-server --example seed_subscriptions`

#[path = "fixtures/mod.rs"]
mod fixtures;

use baobao_server::clock::SIMULATED_NOW_SETTING;
use baobao_server::state::{ClockMode, GatewayMode};
use baobao_server::{AppState, ServerConfig};
use baobao_store::Store;
use serde_json::json;
use sqlx::{AssertSqlSafe, Row};

use fixtures::Failure;

/// Rows per statement and per transaction of the raw baseline.
const RAW_BATCH_ROWS: i64 = 1000;
/// Microseconds in a hundred years: "not due" is due then.
const CENTURY_MICROS: i64 = 100 * 365 * 24 * 3600 * 1_000_000;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    sqlx::any::install_default_drivers();
    match args.get(1).map(String::as_str) {
        Some("seed") => {
            let [_, _, url, due, not_due] = args.as_slice() else { return Err(usage()) };
            seed(url, due.parse()?, not_due.parse()?).await
        }
        Some("raw") => {
            let [_, _, url] = args.as_slice() else { return Err(usage()) };
            raw(url).await
        }
        Some("check") => {
            let [_, _, url] = args.as_slice() else { return Err(usage()) };
            check(url).await
        }
        _ => Err(usage()),
    }
}

fn usage() -> Failure {
    "usage: seed_subscriptions seed DATABASE_URL DUE NOT_DUE | raw DATABASE_URL | check DATABASE_URL".into()
}

async fn seed(url: &str, due: i64, not_due: i64) -> Result<(), Failure> {
    let store = Store::connect(url).await?;
    store.migrate().await?;
    let then = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(40 * 24))?;
    store.set_setting(SIMULATED_NOW_SETTING, &then.to_string()).await?;
    let data = tempfile::tempdir()?;
    let state = AppState::new(
        store.clone(),
        ServerConfig::new(data.path().into(), ClockMode::Simulated, GatewayMode::LedgerOnly),
    )
    .await?;
    let plan = fixtures::monthly_plan(&state, json!({"cooling_off_days": 0})).await?;
    let (_, family_id, template) =
        fixtures::subscribed_parent(&state, "template@bench.example".to_owned(), &plan).await?;
    let (template, family) = (template.to_string(), family_id.to_string());

    // The copies, by SQL: a family, its guardian and its subscription each.
    let pool = sqlx::AnyPool::connect(url).await?;
    let numbers =
        |count: i64| format!("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) ");
    for (label, count, shift) in [("d", due, 0), ("n", not_due, CENTURY_MICROS)] {
        if count == 0 {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "{} INSERT INTO families (id, time_zone, created_at) \
             SELECT 'fam_b{label}' || i, f.time_zone, f.created_at FROM n, families f WHERE f.id = '{family}'",
            numbers(count)
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "{} INSERT INTO guardians (id, family_id, email, password_hash, name, locale, time_zone, created_at) \
             SELECT 'gdn_b{label}' || i, 'fam_b{label}' || i, 'b{label}' || i || '@bench.example', g.password_hash, \
             g.name, g.locale, g.time_zone, g.created_at FROM n, guardians g WHERE g.family_id = '{family}'",
            numbers(count)
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(AssertSqlSafe(format!(
            "{} INSERT INTO subscriptions (id, family_id, plan_id, policy_version, policy_sha256, status, time_zone, \
             signed_up_at, anchor_at, current_position, current_period_start, current_period_end, \
             current_period_paid, last_charge_attempt_at, pending_cancellation_id, effective_at, ended_at, due_at, \
             created_at, reminded_period_start) \
             SELECT 'sub_b{label}' || i, 'fam_b{label}' || i, s.plan_id, s.policy_version, s.policy_sha256, s.status, \
             s.time_zone, s.signed_up_at, s.anchor_at, s.current_position, s.current_period_start, \
             s.current_period_end, s.current_period_paid, s.last_charge_attempt_at, s.pending_cancellation_id, \
             s.effective_at, s.ended_at, s.due_at + {shift}, s.created_at, s.reminded_period_start \
             FROM n, subscriptions s WHERE s.id = '{template}'",
            numbers(count)
        )))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    // The template itself is one of the due ones.
    sqlx::query("DELETE FROM settings WHERE name = $1").bind(SIMULATED_NOW_SETTING).execute(&pool).await?;
    // After a bulk load the planner is told what the tables now hold, as
    // an operator (or PostgreSQL's autovacuum, soon after) would: without
    // it, PostgreSQL guesses a third of the table is due and scans it.
    sqlx::query("ANALYZE").execute(&pool).await?;
    let counted = sqlx::query("SELECT COUNT(*) AS n FROM subscriptions WHERE due_at <= $1")
        .bind(jiff::Timestamp::now().as_microsecond())
        .fetch_one(&pool)
        .await?
        .try_get::<i64, _>("n")?;
    println!("{}", json!({"due": counted, "not_due": not_due}));
    Ok(())
}

async fn raw(url: &str) -> Result<(), Failure> {
    let pool = sqlx::AnyPool::connect(url).await?;
    sqlx::query("DROP TABLE IF EXISTS bench_ledger").execute(&pool).await?;
    sqlx::query("CREATE TABLE bench_ledger AS SELECT * FROM ledger_entries WHERE 1 = 0").execute(&pool).await?;
    let rows: Vec<String> = sqlx::query("SELECT id FROM ledger_entries ORDER BY id")
        .fetch_all(&pool)
        .await?
        .iter()
        .map(|row| row.try_get::<String, _>("id"))
        .collect::<Result<_, _>>()?;
    drop(pool);
    // Through the store's own write path and settings: each batch durable.
    let store = Store::connect(url).await?;
    let started = std::time::Instant::now();
    for batch in rows.chunks(usize::try_from(RAW_BATCH_ROWS)?) {
        let (first, last) = (batch.first().ok_or("empty batch")?, batch.last().ok_or("empty batch")?);
        baobao_store::testing::copy_ledger_rows(&store, first, last).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{}", json!({"rows": rows.len(), "seconds": seconds, "rate": rows.len() as f64 / seconds}));
    Ok(())
}

async fn check(url: &str) -> Result<(), Failure> {
    let pool = sqlx::AnyPool::connect(url).await?;
    let charges = sqlx::query("SELECT COUNT(*) AS n FROM ledger_entries WHERE kind = 'charge'")
        .fetch_one(&pool)
        .await?
        .try_get::<i64, _>("n")?;
    let twice = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT subscription_id, period_start FROM ledger_entries WHERE kind = 'charge' \
         GROUP BY subscription_id, period_start HAVING COUNT(*) > 1) doubled",
    )
    .fetch_one(&pool)
    .await?
    .try_get::<i64, _>("n")?;
    println!("{}", json!({"charges": charges, "charged_twice": twice}));
    Ok(())
}
