//! What differs between SQLite and PostgreSQL, and the migration runner.
//!
//! Migrations are plain SQL files, one schema for both engines, embedded in
//! the binary and applied in order inside one transaction each; a
//! `schema_migrations` table records which ran. Where the engines' DDL is
//! spelled differently the file has a `{placeholder}` that `Engine` fills.

use sqlx::{AnyPool, Row};

use crate::{StoreError, StoreResult};

/// How long a SQLite connection waits for a lock another process holds.
pub(crate) const SQLITE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 10000";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "lifecycle", sql: include_str!("../migrations/0001_lifecycle.sql") },
    Migration { version: 2, name: "children_data", sql: include_str!("../migrations/0002_children_data.sql") },
    Migration { version: 3, name: "outbox", sql: include_str!("../migrations/0003_outbox.sql") },
    Migration { version: 4, name: "reminders", sql: include_str!("../migrations/0004_reminders.sql") },
    Migration {
        version: 5,
        name: "verification_codes",
        sql: include_str!("../migrations/0005_verification_codes.sql"),
    },
    Migration {
        version: 6,
        name: "written_notices_webhooks",
        sql: include_str!("../migrations/0006_written_notices_webhooks.sql"),
    },
    Migration {
        version: 7,
        name: "one_live_subscription_and_limits",
        sql: include_str!("../migrations/0007_one_live_subscription_and_limits.sql"),
    },
    Migration { version: 8, name: "money_movements", sql: include_str!("../migrations/0008_money_movements.sql") },
    Migration { version: 9, name: "insertion_order", sql: include_str!("../migrations/0009_insertion_order.sql") },
    Migration { version: 10, name: "sealed_exports", sql: include_str!("../migrations/0010_sealed_exports.sql") },
    Migration { version: 11, name: "receipt_numbers", sql: include_str!("../migrations/0011_receipt_numbers.sql") },
    Migration { version: 12, name: "guardian_phones", sql: include_str!("../migrations/0012_guardian_phones.sql") },
    Migration { version: 13, name: "child_deletions", sql: include_str!("../migrations/0013_child_deletions.sql") },
    Migration { version: 14, name: "audit_log", sql: include_str!("../migrations/0014_audit_log.sql") },
    Migration { version: 15, name: "audit_appender", sql: include_str!("../migrations/0015_audit_appender.sql") },
    Migration { version: 16, name: "disputes", sql: include_str!("../migrations/0016_disputes.sql") },
    Migration { version: 17, name: "request_owners", sql: include_str!("../migrations/0017_request_owners.sql") },
    Migration { version: 18, name: "request_changes", sql: include_str!("../migrations/0018_request_changes.sql") },
    Migration { version: 19, name: "billing_claims", sql: include_str!("../migrations/0019_billing_claims.sql") },
    Migration {
        version: 20,
        name: "indexes_for_growing_tables",
        sql: include_str!("../migrations/0020_indexes_for_growing_tables.sql"),
    },
];

/// The tables whose rows carry an insertion `seq` (migration 9).
const SEQUENCED_TABLES: [&str; 6] =
    ["ledger_entries", "receipts", "cancellations", "subscriptions", "outbox", "written_notices"];

impl Engine {
    /// Recognises the engine and normalises the URL: a SQLite file is
    /// created when missing.
    pub fn from_url(url: &str) -> StoreResult<(Engine, String)> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let mut normalised = format!("sqlite:{rest}");
            if !rest.contains("mode=") && !rest.contains(":memory:") {
                normalised.push(if rest.contains('?') { '&' } else { '?' });
                normalised.push_str("mode=rwc");
            }
            return Ok((Engine::Sqlite, normalised));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok((Engine::Postgres, url.to_owned()));
        }
        // Never echo the URL: it may carry a password.
        Err(StoreError::Url("expected sqlite://PATH or postgres://…".to_owned()))
    }

    pub(crate) fn session_setup(self) -> &'static [&'static str] {
        match self {
            // WAL lets readers run beside the one writer; a writer waits
            // for the lock rather than failing at once; NORMAL commits
            // without flushing the log, which `durability` does for many
            // commits at once before any of them is acknowledged (so every
            // acknowledged commit survives a power cut, not only a crash);
            // secure_delete overwrites what a deletion removes, so deleted
            // personal data does not linger in the file's free pages.
            Engine::Sqlite => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA foreign_keys = ON",
                SQLITE_BUSY_TIMEOUT,
                "PRAGMA synchronous = NORMAL",
                "PRAGMA secure_delete = ON",
            ],
            Engine::Postgres => &["SET TIME ZONE 'UTC'"],
        }
    }

    /// One writer on SQLite: the file has one write lock, so writers wait
    /// in the pool's queue rather than in the lock's busy loop.
    pub(crate) fn write_connections_max(self) -> u32 {
        match self {
            Engine::Sqlite => 1,
            Engine::Postgres => crate::WRITE_CONNECTIONS_MAX_POSTGRES,
        }
    }

    /// SQLite takes the write lock at `BEGIN IMMEDIATE`, so two writers
    /// queue instead of deadlocking on a lock upgrade; PostgreSQL locks rows.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        }
    }

    /// The engine's spelling of what the shared schema leaves open.
    fn dialect(self, sql: &str) -> String {
        let serial = match self {
            Engine::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Engine::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        let mut sql = sql.replace("{serial_primary_key}", serial);
        for table in SEQUENCED_TABLES {
            // PostgreSQL numbers new rows from a sequence; SQLite cannot add
            // an auto-increment column, so a trigger copies the rowid.
            let statements = match self {
                Engine::Postgres => format!("ALTER TABLE {table} ADD COLUMN seq BIGSERIAL;"),
                Engine::Sqlite => format!(
                    "ALTER TABLE {table} ADD COLUMN seq INTEGER; UPDATE {table} SET seq = rowid; \
                     CREATE TRIGGER {table}_seq AFTER INSERT ON {table} BEGIN \
                     UPDATE {table} SET seq = NEW.rowid WHERE rowid = NEW.rowid; END;"
                ),
            };
            sql = sql.replace(&format!("{{insertion_seq {table}}}"), &statements);
        }
        sql
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// The advisory lock `migrate` holds on PostgreSQL ("baobao" in ASCII).
const MIGRATION_LOCK: i64 = 0x6261_6f62_616f;

pub(crate) async fn migrate(pool: &AnyPool, engine: Engine) -> StoreResult<Vec<String>> {
    let mut conn = pool.acquire().await?;
    // Several `baobao migrate` at once (servers deployed together) take
    // turns: on PostgreSQL two sessions creating the same table at once fail
    // rather than wait, so each holds a lock for the session's length (gone
    // with the session if the process dies). SQLite needs none: each
    // migration's check and change share one `BEGIN IMMEDIATE`.
    if engine == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    let applied = apply_migrations(&mut conn, engine).await;
    if engine == Engine::Postgres {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await;
        // A migration's own error says more than the unlock's.
        let applied = applied?;
        unlocked?;
        return Ok(applied);
    }
    applied
}

async fn apply_migrations(conn: &mut sqlx::AnyConnection, engine: Engine) -> StoreResult<Vec<String>> {
    use sqlx::Connection;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        let mut tx = conn.begin_with(engine.begin_write()).await?;
        let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(engine.dialect(migration.sql)))
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Migration(format!("{} {}: {e}", migration.version, migration.name)))?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, CURRENT_TIMESTAMP)")
            .bind(migration.version)
            .bind(migration.name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        applied.push(format!("{:04}_{}", migration.version, migration.name));
    }
    Ok(applied)
}

/// The newest schema version this binary knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

pub(crate) async fn current_version(pool: &AnyPool) -> StoreResult<i64> {
    let row = sqlx::query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get("v")?)
}
