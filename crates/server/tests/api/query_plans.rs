//! Every statement the server sends reads by an index, not by a scan of a
//! table that grows with the families served. A scan costs nothing on a
//! test database and grows with every family, ledger entry and receipt in
//! production: a cancellation that read the whole ledger to find one
//! subscription's entries took 0.2 ms on a fresh database and would take
//! tens of milliseconds on a provider's year of renewals, holding SQLite's
//! one writer meanwhile.
//!
//! The statements are the ones the server really sent while this test
//! drove it (sqlx reports each one it runs to `tracing`), through every
//! route as a caller it admits, a billing run, an export, a child's record,
//! an immediate cancellation with its refund and a deletion. SQLite's plan
//! follows from the schema alone, and both engines share every index (one
//! migration file each), so its plans on a tiny database answer for any
//! size; PostgreSQL's planner would choose a scan on tables this small
//! whatever the indexes.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use baobao_store::Engine;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

use crate::authorization::{Fixture, table};
use crate::helpers::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_the_server_sends_reads_by_an_index() {
    let seen = statements_seen();
    let app = TestApp::spawn(Engine::Sqlite).await;
    let fixture = Fixture::new(&app).await;

    // Every route that reads, as the first caller it admits.
    for route in table().iter().filter(|r| r.method == Method::GET) {
        let Some(who) = route.allowed.first() else { continue };
        let response = app.request(Method::GET, &fixture.path(route), fixture.token(*who), None, "en").await;
        assert!(response.status.is_success() || response.status.is_client_error(), "{} {}", route.path, response.body);
    }
    // What changes money and data, beyond the fixture's own changes.
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("plans@example.com").await;
    let subscribed = app.subscribe(&parent, &plan).await;
    let subscription_id = subscribed["subscription"]["id"].as_str().unwrap();
    let child_id = app.add_child(&parent, "小红").await;
    let key = app.api_key("edu").await;
    let written = app.write_record(&key, &child_id, "lesson", json!({"minutes": 20})).await;
    assert_eq!(written.status, StatusCode::CREATED, "{}", written.body);
    app.export_ready(&parent).await;
    app.set_clock("2027-02-11T00:00:00Z").await;
    app.billing_run().await;
    app.quote(&parent, subscription_id).await;
    let cancelled = app.cancel(&parent, subscription_id, json!({"option": "now"})).await;
    assert_eq!(cancelled.status, StatusCode::CREATED, "{}", cancelled.body);
    let deletion =
        app.post(&format!("/v1/families/{}/deletion-requests", parent.family_id), Some(&parent.token), json!({})).await;
    assert!(deletion.status.is_success(), "{}", deletion.body);
    app.set_clock("2027-06-01T00:00:00Z").await;
    app.billing_run().await;

    let statements = seen.lock().unwrap().clone();
    assert!(statements.len() > 100, "only {} statements were seen: is sqlx still reporting them?", statements.len());
    eprintln!("{} distinct statements seen", statements.len());
    let mut scans = Vec::new();
    for sql in &statements {
        let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let plan = match baobao_store::testing::sqlite_query_plan(&app.db.store, sql).await {
            Ok(plan) => plan,
            // Not a query SQLite plans (PRAGMA, BEGIN, DDL …): nothing read.
            Err(_) => continue,
        };
        for line in plan {
            if let Some(table) = scanned_table(&line, &flat)
                && !WHOLE_TABLE_ON_PURPOSE.iter().any(|(t, piece, _)| *t == table && flat.contains(piece))
            {
                scans.push(format!("{line}\n    in: {flat}"));
            }
        }
    }
    assert!(scans.is_empty(), "statements that scan a growing table:\n{}", scans.join("\n"));
}

/// Reads of a whole table on purpose: the table, a piece of the statement
/// (empty: any statement), and why the scan stays cheap.
const WHOLE_TABLE_ON_PURPOSE: &[(&str, &str, &str)] = &[
    ("audit_log", "", "one row: the log's size"),
    ("settings", "", "a handful of operator settings"),
    ("schema_migrations", "", "one row per migration"),
    ("server_processes", "", "one row per running server; gone ones are pruned"),
    ("login_failures", "", "only the current window's failures: older ones are pruned"),
    ("plans", "", "the catalogue, listed whole"),
    ("staff", "", "the provider's own staff, listed whole"),
    ("api_keys", "", "the provider's integrations, listed whole"),
    ("webhook_endpoints", "", "the provider's endpoints, listed whole"),
    (
        "idempotency_keys",
        "response_body LIKE",
        "a deletion erases every saved answer that names the family, which no index can find; \
         the table holds only the replay window's keys (older ones are pruned)",
    ),
    (
        "written_notices",
        "UNION SELECT family_id, sha256 FROM dispute_evidence",
        "the evidence sweep compares the files on disk with every live row; \
         evidence comes only with written notices and disputes",
    ),
    ("dispute_evidence", "UNION SELECT family_id, sha256 FROM dispute_evidence", "the same sweep"),
    (
        // `guardians`, as the statement names it.
        "g",
        "LOWER(g.email) LIKE",
        "support staff's search for a family by a piece of an address, name or phone number: \
         a LIKE '%…%' no B-tree index serves; a person's typing, not a request per family",
    ),
];

/// The table a plan line reads whole, if it does: `SCAN t`, or `SCAN t
/// USING … INDEX` (an index walked from one end) unless the statement stops
/// after a few rows (a `LIMIT` with no grouping before it). Not a VALUES
/// list or a common table expression: those are the statement's own rows.
fn scanned_table<'a>(line: &'a str, sql: &str) -> Option<&'a str> {
    let rest = line.strip_prefix("SCAN ")?;
    if rest.contains("CONSTANT ROW") || rest.contains("VALUES CLAUSE") {
        return None;
    }
    if rest.contains(" USING ") && sql.contains(" LIMIT ") && !sql.contains(" GROUP BY ") {
        return None;
    }
    let table = rest.split_whitespace().next()?;
    // Common table expressions of the store's multi-row statements.
    if ["v", "appended", "due"].contains(&table) {
        return None;
    }
    Some(table)
}

/// Every distinct statement sqlx reports running, from now on in this
/// process (each test runs in a process of its own under nextest).
fn statements_seen() -> &'static Mutex<BTreeSet<String>> {
    static SEEN: OnceLock<&'static Mutex<BTreeSet<String>>> = OnceLock::new();
    SEEN.get_or_init(|| {
        let seen: &'static Mutex<BTreeSet<String>> = Box::leak(Box::default());
        let subscriber = tracing_subscriber::registry().with(Statements(seen));
        tracing::subscriber::set_global_default(subscriber).expect("no other tracing subscriber in this process");
        seen
    })
}

struct Statements(&'static Mutex<BTreeSet<String>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn register_callsite(&self, metadata: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        if metadata.target() == "sqlx::query" {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut statement = Statement(None);
        event.record(&mut statement);
        if let Some(sql) = statement.0 {
            let sql = sql.trim();
            if !sql.is_empty() {
                self.0.lock().unwrap().insert(sql.to_owned());
            }
        }
    }
}

struct Statement(Option<String>);

impl tracing::field::Visit for Statement {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "db.statement" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "db.statement" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}
