//! The load side of `scripts/bench`: what wrk cannot do on its own.
//!
//! - `commits DATABASE_URL COUNT`: the storage's durable-commit rate,
//!   single-row transactions one after another through the store's own
//!   write path (`fsync_commits`, the baseline of `durable_cancellations`).
//! - `cancellations BASE_URL ADMIN_EMAIL ADMIN_PASSWORD FAMILIES CLIENTS`:
//!   against a running server over HTTP, signs up `FAMILIES` parents with a
//!   subscription each (not timed), then times `CLIENTS` concurrent clients
//!   cancelling them all at once ("now": quote, request, ledger, signed
//!   receipt, audit entries, outbox, durable before each answer), each
//!   with an `Idempotency-Key`. Every acknowledged cancellation's id is
//!   written to `ACKED_PATH` when that is given, for a check after a crash.
//!
//! Each prints one JSON line. Release build:
//! `cargo build --release -p baobao-server --example bench_load`.

use std::time::{Duration, Instant};

use baobao_store::Store;
use serde_json::{Value, json};

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Sign-ups and subscriptions made at once while preparing (each sign-up
/// hashes a password with Argon2: the server's two cores are the limit).
const PREPARING_CLIENTS: usize = 8;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("commits") => {
            let [_, _, url, count] = args.as_slice() else { return Err(usage()) };
            let count: usize = count.parse()?;
            let store = Store::connect(url).await?;
            let took = baobao_store::testing::single_row_commits(&store, count, 0).await?;
            let rate = count as f64 / took.as_secs_f64();
            println!("{}", json!({"commits": count, "seconds": took.as_secs_f64(), "rate": rate}));
            store.close().await;
        }
        Some("cancellations") => {
            let [_, _, base, email, password, families, clients, rest @ ..] = args.as_slice() else {
                return Err(usage());
            };
            let acked_path = rest.first().cloned();
            cancellations(base, email, password, families.parse()?, clients.parse()?, acked_path).await?;
        }
        _ => return Err(usage()),
    }
    Ok(())
}

fn usage() -> Failure {
    "usage: bench_load commits DATABASE_URL COUNT | \
     bench_load cancellations BASE_URL ADMIN_EMAIL ADMIN_PASSWORD FAMILIES CLIENTS [ACKED_PATH]"
        .into()
}

async fn post(client: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Result<Value, Failure> {
    let mut request = client.post(url).json(&body).header("idempotency-key", baobao_server::random::random_token(16));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("{status}: {body}").into());
    }
    Ok(body)
}

async fn cancellations(
    base: &str,
    email: &str,
    password: &str,
    families: usize,
    clients: usize,
    acked_path: Option<String>,
) -> Result<(), Failure> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    let session = post(
        &client,
        format!("{base}/v1/auth/sessions"),
        None,
        json!({"email": email, "password": password, "realm": "staff"}),
    )
    .await?;
    let admin = session["token"].as_str().ok_or("no staff token")?.to_owned();
    let plan = post(
        &client,
        format!("{base}/v1/plans"),
        Some(&admin),
        json!({"service": "edu", "name": {"zh-CN": "月度", "en": "Monthly"},
               "policy": {"price": {"amount_minor": 3900, "currency": "CNY"}, "period": "P1M", "retention_days": 30,
                          "cooling_off_days": 0, "allow_immediate": true, "refund_on_immediate": "prorated"}}),
    )
    .await?;
    let subscribe = json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]});
    let run = baobao_server::random::random_token(6);

    // Preparing: parents with a subscription each.
    let mut ready: Vec<(String, String)> = Vec::with_capacity(families);
    let mut preparing = tokio::task::JoinSet::new();
    for worker in 0..PREPARING_CLIENTS {
        let (client, base, subscribe, run) = (client.clone(), base.to_owned(), subscribe.clone(), run.clone());
        preparing.spawn(async move {
            let mut made = Vec::new();
            for n in (worker..families).step_by(PREPARING_CLIENTS) {
                let family = post(
                    &client,
                    format!("{base}/v1/families"),
                    None,
                    json!({"guardian": {"email": format!("bench-{run}-{n}@example.com"), "password": "benchmark password",
                           "name": "Bench", "locale": "en", "time_zone": "Asia/Shanghai"}}),
                )
                .await?;
                let token = family["token"].as_str().ok_or("no token")?.to_owned();
                let subscribed =
                    post(&client, format!("{base}/v1/subscriptions"), Some(&token), subscribe.clone()).await?;
                let id = subscribed["subscription"]["id"].as_str().ok_or("no subscription id")?.to_owned();
                made.push((token, id));
            }
            Ok::<_, Failure>(made)
        });
    }
    for made in preparing.join_all().await {
        ready.extend(made?);
    }

    // A profiler may be attached to the server for the timed part alone.
    if let Some(pause) = std::env::var("BENCH_LOAD_PAUSE_SECONDS").ok().and_then(|s| s.parse().ok()) {
        eprintln!("prepared {} subscriptions; cancelling in {pause} s", ready.len());
        tokio::time::sleep(Duration::from_secs(pause)).await;
    }
    // Timed: every client cancels its share, one after another.
    let started = Instant::now();
    let mut cancelling = tokio::task::JoinSet::new();
    for share in 0..clients {
        let mine: Vec<(String, String)> = ready.iter().skip(share).step_by(clients).cloned().collect();
        let (client, base) = (client.clone(), base.to_owned());
        cancelling.spawn(async move {
            let mut done = Vec::with_capacity(mine.len());
            for (token, subscription) in mine {
                let sent = Instant::now();
                let answer = post(
                    &client,
                    format!("{base}/v1/subscriptions/{subscription}/cancellations"),
                    Some(&token),
                    json!({"option": "now"}),
                )
                .await?;
                let cancellation = answer["cancellation"]["id"].as_str().ok_or("no cancellation id")?.to_owned();
                done.push((sent.elapsed(), cancellation));
            }
            Ok::<_, Failure>(done)
        });
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(families);
    let mut acknowledged = Vec::with_capacity(families);
    for done in cancelling.join_all().await {
        for (latency, cancellation) in done? {
            latencies.push(latency);
            acknowledged.push(cancellation);
        }
    }
    let took = started.elapsed();
    latencies.sort();
    let p99 = latencies.get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1))).copied();
    if let Some(path) = acked_path {
        std::fs::write(path, acknowledged.join("\n"))?;
    }
    println!(
        "{}",
        json!({"cancellations": acknowledged.len(), "clients": clients, "seconds": took.as_secs_f64(),
               "rate": acknowledged.len() as f64 / took.as_secs_f64(),
               "p99_ms": p99.map(|p| p.as_secs_f64() * 1000.0)})
    );
    Ok(())
}
