//! A fresh, migrated database per test, on either engine: a SQLite file in
//! a temporary directory, or a new database on the PostgreSQL server named
//! by `BAOBAO_TEST_POSTGRES_URL` (the test script starts one). There is no
//! silent skip: a PostgreSQL test without that variable fails and says how
//! to run it.

use sqlx::Connection;

use crate::{Engine, Store};

pub const POSTGRES_URL_VARIABLE: &str = "BAOBAO_TEST_POSTGRES_URL";

/// Keeps the database alive for the test's duration.
pub struct TestDatabase {
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

pub async fn fresh_database(engine: Engine) -> TestDatabase {
    let db = empty_database(engine).await;
    db.store.migrate().await.expect("migrate the test database");
    db
}

/// A new database with no schema yet: `Store::migrate` has not run.
pub async fn empty_database(engine: Engine) -> TestDatabase {
    sqlx::any::install_default_drivers();
    let (url, dir) = match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let url = format!("sqlite://{}", dir.path().join("baobao.db").display());
            (url, Some(dir))
        }
        Engine::Postgres => {
            let admin_url = std::env::var(POSTGRES_URL_VARIABLE).unwrap_or_else(|_| {
                panic!("{POSTGRES_URL_VARIABLE} is not set: run the suite with scripts/test, which starts PostgreSQL")
            });
            let name = format!("baobao_test_{}", random_suffix());
            let mut admin = sqlx::AnyConnection::connect(&admin_url).await.expect("the test PostgreSQL server answers");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .expect("CREATE DATABASE");
            let _ = admin.close().await;
            let base = admin_url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&admin_url);
            (format!("{base}/{name}"), None)
        }
    };
    let store = Store::connect(&url).await.expect("connect to the test database");
    TestDatabase { url, store, _dir: dir }
}

/// How the database would run the billing run's claim: the query plan's
/// lines. PostgreSQL is told not to scan where an index can serve, so that a
/// tiny test table shows whether the index *can* serve the query.
pub async fn claim_query_plan(store: &Store) -> Vec<String> {
    use sqlx::Row;
    let sql = crate::subscriptions::due_ids_sql(store.engine, crate::Share { part: 1, parts: 4 })
        .replace("$1", "1800000000000000")
        .replace("$2", "1800000000000000")
        .replace("$3", "128");
    match store.engine {
        Engine::Sqlite => sqlite_query_plan(store, &sql).await.expect("explain"),
        Engine::Postgres => {
            let mut conn = store.pool.acquire().await.expect("a connection");
            sqlx::raw_sql("SET enable_seqscan = off").execute(&mut *conn).await.expect("set");
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
                .fetch_all(&mut *conn)
                .await
                .expect("explain");
            let plan = rows.iter().map(|r| r.try_get::<String, _>(0).unwrap_or_default()).collect();
            sqlx::raw_sql("RESET enable_seqscan").execute(&mut *conn).await.expect("reset");
            plan
        }
    }
}

/// How SQLite would run `sql`, a statement as the store sends it (`$n` or
/// `?` parameters, left unbound: NULL): the query plan's lines. Only SQLite:
/// its plans follow the schema alone, so a plan made on a tiny test database
/// says which index a statement can use at any size.
pub async fn sqlite_query_plan(store: &Store, sql: &str) -> Result<Vec<String>, sqlx::Error> {
    use sqlx::Row;
    assert_eq!(store.engine, Engine::Sqlite, "SQLite's plans only");
    let mut conn = store.pool.acquire().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(|r| r.try_get::<String, _>("detail").unwrap_or_default()).collect())
}

/// How PostgreSQL would run `sql` (`$n` parameters) whatever its
/// parameters: the generic plan's lines, with sequential scans made the
/// last resort, so that a `Seq Scan` left in the plan is a read no index
/// can serve. `Err` for a statement PostgreSQL cannot prepare (SQLite's
/// spelling, a parameter whose type it cannot infer).
pub async fn postgres_generic_plan(store: &Store, sql: &str) -> Result<Vec<String>, sqlx::Error> {
    use sqlx::Row;
    assert_eq!(store.engine, Engine::Postgres, "PostgreSQL's plans only");
    // The highest `$n` is the number of parameters.
    let parameters = sql
        .split('$')
        .skip(1)
        .filter_map(|after| after.split(|c: char| !c.is_ascii_digit()).next()?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    let mut conn = store.pool.acquire().await?;
    sqlx::raw_sql("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await?;
    let prepared =
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE baobao_plan AS {sql}"))).execute(&mut *conn).await;
    let plan = match prepared {
        Ok(_) => {
            let nulls = vec!["NULL"; parameters].join(", ");
            let arguments = if parameters == 0 { String::new() } else { format!("({nulls})") };
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE baobao_plan{arguments}")))
                .fetch_all(&mut *conn)
                .await;
            sqlx::raw_sql("DEALLOCATE baobao_plan").execute(&mut *conn).await?;
            rows.map(|rows| rows.iter().map(|r| r.try_get::<String, _>(0).unwrap_or_default()).collect())
        }
        Err(error) => Err(error),
    };
    sqlx::raw_sql("RESET enable_seqscan; RESET plan_cache_mode").execute(&mut *conn).await?;
    plan
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// Declares each story once per engine: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Engine::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Engine::Postgres).await
                }
            )*
        }
    };
}

/// The storage's own durable-commit rate, a benchmark's baseline: `count`
/// transactions one after another, each inserting one row and committing
/// through the store's write path (its engine, its session settings, its
/// one writer on SQLite), so each waits for its own flush. Into a table of
/// its own, made here.
pub async fn single_row_commits(store: &Store, count: usize, first_id: i64) -> crate::StoreResult<std::time::Duration> {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS bench_commits (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&store.writes)
        .await?;
    let body = "x".repeat(200);
    let started = std::time::Instant::now();
    for n in 0..count {
        let mut tx = store.begin().await?;
        sqlx::query("INSERT INTO bench_commits (id, body) VALUES ($1, $2)")
            .bind(first_id + n as i64)
            .bind(&body)
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

/// Rows `single_row_commits` wrote.
pub async fn bench_rows(store: &Store) -> crate::StoreResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM bench_commits").fetch_one(&store.pool).await?;
    crate::integer(&row, "n")
}

/// The billing benchmark's baseline: ledger rows `first..=last` (by id)
/// inserted again into `bench_ledger`, one durable transaction, through the
/// store's own write path.
pub async fn copy_ledger_rows(store: &Store, first: &str, last: &str) -> crate::StoreResult<()> {
    let mut tx = store.begin().await?;
    sqlx::query("INSERT INTO bench_ledger SELECT * FROM ledger_entries WHERE id >= $1 AND id <= $2")
        .bind(first)
        .bind(last)
        .execute(&mut *tx.tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
