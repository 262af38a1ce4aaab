//! Benchmark: what appending to the Merkle audit log costs a write.
//!
//! Cancellations per second (quote, request, ledger, signed receipt, audit
//! entries, outbox: everything `cancellations::cancel` writes, durable
//! before it returns) from `CLIENTS` concurrent guardians, with the log as
//! built — the appender running beside the writers as in the server, and
//! the clock stopped only when every entry has its place in the log — and
//! against a baseline measured in the same run: the same code with no
//! appender, the audit entries left as plain rows.
//! Rounds alternate (log, plain, log, plain, …) on fresh databases so that
//! the machine's noise falls on both; the median of each is reported.
//!
//! `cargo run --release -p baobao-server --example bench_audit_log -- DATABASE_URL_PREFIX [ROUNDS] [FAMILIES]`
//! where the prefix is `sqlite:///tmp/bench` (a file per round is made from
//! it) or a PostgreSQL server URL (a database per round is created there).
//! Prints one JSON line per engine: `{"with_log", "without_log", "ratio"}`.

#[path = "fixtures/mod.rs"]
mod fixtures;

use baobao_domain::ids::SubscriptionId;
use baobao_server::auth::Caller;
use baobao_server::random::random_bytes;
use baobao_server::services::cancellations;
use baobao_server::services::cancellations::CancelInput;
use baobao_server::state::{ClockMode, GatewayMode};
use baobao_server::{AppState, ServerConfig};
use baobao_store::Store;

const CLIENTS: usize = 64;

use fixtures::{Failure, fail};

/// A fresh database for one round.
async fn fresh(prefix: &str, round: usize) -> Result<String, Failure> {
    if prefix.starts_with("sqlite:") {
        let url = format!("{prefix}-{round}-{}.db", hex::encode(random_bytes::<4>()));
        return Ok(url);
    }
    let name = format!("bench_audit_{round}_{}", hex::encode(random_bytes::<4>()));
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(prefix).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    let base = prefix.rsplit_once('/').map(|(b, _)| b).unwrap_or(prefix);
    Ok(format!("{base}/{name}"))
}

/// `families` guardians with a subscription each, ready to cancel.
async fn families(state: &AppState, families: usize) -> Result<Vec<(Caller, SubscriptionId)>, Failure> {
    let terms = serde_json::json!({"cooling_off_days": 0, "allow_immediate": true, "refund_on_immediate": "prorated"});
    let plan = fixtures::monthly_plan(state, terms).await?;
    let mut ready = Vec::new();
    for n in 0..families {
        let email = format!("bench{n}-{}@example.com", hex::encode(random_bytes::<4>()));
        let (caller, _, subscription_id) = fixtures::subscribed_parent(state, email, &plan).await?;
        ready.push((caller, subscription_id));
    }
    Ok(ready)
}

/// One round: cancellations per second from `CLIENTS` guardians at once.
async fn round(prefix: &str, index: usize, with_log: bool, count: usize) -> Result<f64, Failure> {
    let url = fresh(prefix, index).await?;
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let data = tempfile::tempdir()?;
    let state =
        AppState::new(store, ServerConfig::new(data.path().into(), ClockMode::System, GatewayMode::LedgerOnly)).await?;
    let ready = families(&state, count).await?;
    if with_log {
        state.store.append_pending().await?;
    }
    let appender = with_log.then(|| tokio::spawn(baobao_server::worker::append_log(state.clone())));
    let started = std::time::Instant::now();
    let mut work = tokio::task::JoinSet::new();
    for chunk in ready.chunks(count.div_ceil(CLIENTS)) {
        let (state, chunk) = (state.clone(), chunk.to_vec());
        work.spawn(async move {
            for (caller, subscription_id) in chunk {
                let input = CancelInput {
                    option: "now".into(),
                    quote_id: None,
                    reason: None,
                    verification_code: None,
                    verification_override_reason: None,
                };
                cancellations::cancel(&state, &caller, subscription_id.as_str(), input).await.map_err(fail)?;
            }
            Ok::<(), Failure>(())
        });
    }
    for done in work.join_all().await {
        done?;
    }
    if let Some(appender) = appender {
        // What the appender has not taken yet is part of the cost.
        state.store.append_pending().await?;
        appender.abort();
        assert_eq!(state.store.pending_entries().await?, 0);
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let prefix = args.get(1).ok_or("usage: bench_audit_log DATABASE_URL_PREFIX [ROUNDS] [FAMILIES]")?;
    let rounds: usize = args.get(2).map(|r| r.parse()).transpose()?.unwrap_or(3);
    let count: usize = args.get(3).map(|f| f.parse()).transpose()?.unwrap_or(256);
    let (mut with_log, mut without_log) = (Vec::new(), Vec::new());
    for index in 0..rounds {
        with_log.push(round(prefix, 2 * index, true, count).await?);
        without_log.push(round(prefix, 2 * index + 1, false, count).await?);
    }
    let (with_log, without_log) = (median(with_log), median(without_log));
    println!(
        "{}",
        serde_json::json!({
            "engine": if prefix.starts_with("sqlite:") { "sqlite" } else { "postgres" },
            "with_log": (with_log * 10.0).round() / 10.0,
            "without_log": (without_log * 10.0).round() / 10.0,
            "unit": "cancellations/s",
            "ratio": (with_log / without_log * 100.0).round() / 100.0,
            "clients": CLIENTS,
            "cancellations_per_round": count,
            "rounds": rounds,
        })
    );
    Ok(())
}
