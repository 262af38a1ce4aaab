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
//! an immediate cancellation with its refund and a deletion, then through
//! the stories of the other modules that reach the rest (pages, complaints,
//! written notices, webhooks, closing a family, proofs, retries). SQLite's plan
//! follows from the schema alone, so its plans on a tiny database answer for
//! any size. PostgreSQL is asked too, on a database of its own: for each
//! statement it can prepare, the generic plan (whatever the parameters)
//! with sequential scans made the last resort, so a scan left in it is a
//! read no index serves.

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
    // The stories of the other modules that reach what the routes above do
    // not: the portal's and the console's pages, complaints up their levels,
    // written notices and agents' cancellations, webhooks, records read by
    // staff, a child removed, a family closed, the sweep, proofs, refunds
    // retried, renewals declined and retried, resumptions, new terms.
    crate::language::every_page_speaks_one_language(Engine::Sqlite).await;
    crate::channels::an_agent_cancels_for_a_guardian_who_reads_out_the_code(Engine::Sqlite).await;
    crate::channels::a_letter_that_arrived_before_the_renewal_ends_the_subscription_then_and_refunds_the_charge(
        Engine::Sqlite,
    )
    .await;
    crate::channels::integrators_receive_signed_webhooks_retried_until_delivered_and_logged(Engine::Sqlite).await;
    crate::channels::support_finds_a_family_by_part_of_an_email_or_name_by_id_or_by_receipt_number_even_after_deletion(
        Engine::Sqlite,
    )
    .await;
    crate::children::staff_read_records_only_in_the_compliance_role_with_a_reason_that_is_audited(Engine::Sqlite).await;
    crate::children::files_and_keys_nothing_names_are_swept_by_the_billing_run(Engine::Sqlite).await;
    crate::children::removing_a_child_deletes_only_their_data_and_no_copy_of_it_opens_again(Engine::Sqlite).await;
    crate::children::closing_everything_minimises_the_guardian_and_the_certificate_says_what_was_kept(Engine::Sqlite)
        .await;
    crate::children::retention_runs_out_in_the_billing_run_and_subscribing_again_calls_it_off(Engine::Sqlite).await;
    crate::audit::compliance_reads_the_entries_filtered_and_a_guardian_only_their_familys(Engine::Sqlite).await;
    crate::audit::a_receipt_and_an_export_are_proved_in_the_log_from_outside(Engine::Sqlite).await;
    crate::disputes::what_the_records_cannot_settle_climbs_the_levels_on_its_deadlines_and_a_supervisor_decides(
        Engine::Sqlite,
    )
    .await;
    crate::disputes::the_dossier_holds_the_story_and_checks_offline_and_the_report_counts_it(Engine::Sqlite).await;
    crate::disputes::a_missing_refund_shows_its_gateway_status_and_a_failed_one_goes_to_a_supervisor(Engine::Sqlite)
        .await;
    crate::money::a_refused_refund_is_retried_then_escalated_and_never_shown_as_paid(Engine::Sqlite).await;
    crate::lifecycle::the_whole_story_from_sign_up_to_the_last_charge(Engine::Sqlite).await;
    crate::lifecycle::resuming_withdraws_the_cancellation_and_renewals_go_on(Engine::Sqlite).await;
    crate::lifecycle::a_new_policy_version_leaves_existing_subscriptions_on_their_terms(Engine::Sqlite).await;
    crate::lifecycle::a_declined_renewal_is_past_due_until_a_retry_succeeds(Engine::Sqlite).await;

    let statements = seen.lock().unwrap().clone();
    assert!(statements.len() > 100, "only {} statements were seen: is sqlx still reporting them?", statements.len());
    eprintln!("{} distinct statements seen", statements.len());
    // Each as sent, and on one line for matching and messages.
    let statements: Vec<(String, String)> =
        statements.into_iter().map(|sql| (sql.split_whitespace().collect::<Vec<_>>().join(" "), sql)).collect();
    let mut scans = Vec::new();
    for (flat, sql) in &statements {
        let plan = match baobao_store::testing::sqlite_query_plan(&app.db.store, sql).await {
            Ok(plan) => plan,
            // Not a query SQLite plans (PRAGMA, BEGIN, DDL …): nothing read.
            Err(_) => continue,
        };
        for line in plan {
            if let Some(table) = scanned_table(&line, flat)
                && !on_purpose(table, flat)
            {
                scans.push(format!("{line}\n    in: {flat}"));
            }
        }
    }
    // The same statements as PostgreSQL would run them, whatever their
    // parameters (statements in SQLite's own spelling do not prepare there).
    let postgres = baobao_store::testing::fresh_database(Engine::Postgres).await;
    let mut planned = 0;
    for (flat, sql) in &statements {
        let Ok(plan) = baobao_store::testing::postgres_generic_plan(&postgres.store, sql).await else { continue };
        planned += 1;
        for (table, node) in postgres_whole_reads(&plan, flat) {
            if !on_purpose(&table, flat) {
                scans.push(format!("PostgreSQL: {node}\n    in: {flat}"));
            }
        }
    }
    eprintln!("{planned} of them planned by PostgreSQL too");
    assert!(planned > statements.len() / 2, "PostgreSQL prepared only {planned} of {} statements", statements.len());
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
        "child_records",
        "SELECT id, kind, nonce, ciphertext FROM child_records",
        "not the server's: a story of children.rs reading the raw rows to see they are sealed",
    ),
    (
        // `guardians`, as the statement names it.
        "g",
        "LOWER(g.email) LIKE",
        "support staff's search for a family by a piece of an address, name or phone number: \
         a LIKE '%…%' no B-tree index serves; a person's typing, not a request per family",
    ),
];

/// Whether reading `table` whole in the statement `flat` is on purpose.
fn on_purpose(table: &str, flat: &str) -> bool {
    WHOLE_TABLE_ON_PURPOSE.iter().any(|(t, piece, _)| *t == table && flat.contains(piece))
}

/// Whether a statement stops after a few rows: a `LIMIT` with no grouping
/// before it, so an index walked in order is read no further.
fn stops_early(flat: &str) -> bool {
    flat.contains(" LIMIT ") && !flat.contains(" GROUP BY ")
}

/// The table a plan line reads whole, if it does: `SCAN t`, or `SCAN t
/// USING … INDEX` (an index walked from one end) unless the statement stops
/// after a few rows (a `LIMIT` with no grouping before it). Not a VALUES
/// list or a common table expression: those are the statement's own rows.
fn scanned_table<'a>(line: &'a str, sql: &str) -> Option<&'a str> {
    let rest = line.strip_prefix("SCAN ")?;
    if rest.contains("CONSTANT ROW") || rest.contains("VALUES CLAUSE") {
        return None;
    }
    if rest.contains(" USING ") && stops_early(sql) {
        return None;
    }
    let table = rest.split_whitespace().next()?;
    // Common table expressions of the store's multi-row statements.
    if ["v", "appended", "due"].contains(&table) {
        return None;
    }
    Some(table)
}

/// The tables a PostgreSQL plan reads whole, with the node that does: a
/// `Seq Scan`, or an index scan with no `Index Cond` (an index walked from
/// one end: with sequential scans made the last resort, the planner walks
/// any index rather than scan) unless the statement stops after a few rows,
/// as for SQLite. Tables by name, and by alias where the statement has one.
fn postgres_whole_reads(plan: &[String], sql: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (n, line) in plan.iter().enumerate() {
        let node = line.trim().trim_start_matches("->").trim();
        let (table, whole) = if let Some(rest) = node.strip_prefix("Seq Scan on ") {
            (rest, true)
        } else if let Some(rest) = node.strip_prefix("Index Scan").or_else(|| node.strip_prefix("Index Only Scan")) {
            let Some((_, on)) = rest.split_once(" on ") else { continue };
            let details = plan[n + 1..].iter().take_while(|l| !l.contains("->"));
            let bounded = details.clone().any(|l| l.contains("Index Cond:"));
            (on, !bounded && !stops_early(sql))
        } else {
            continue;
        };
        if whole {
            let mut words = table.split_whitespace();
            let name = words.next().unwrap_or_default().to_owned();
            let alias = words.next().filter(|w| !w.starts_with('(')).map(str::to_owned);
            found.push((alias.unwrap_or(name), node.to_owned()));
        }
    }
    found
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
