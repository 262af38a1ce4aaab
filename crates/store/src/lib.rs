//! baobao's storage: one schema on two engines.
//!
//! `Store` is the port the server talks to. It runs on SQLite (the embedded
//! default, WAL mode) and on PostgreSQL (production, several servers on one
//! database) through sqlx's `Any` driver: the SQL is written once, in the
//! subset both engines share (`$n` parameters, `ON CONFLICT`, `RETURNING`,
//! partial indexes), and the few places where they differ — how a write
//! transaction starts, row locks, `SKIP LOCKED` — are named in `Engine`.
//! Instants are stored as microseconds since the epoch and money as minor
//! units, so no engine-specific type is ever needed. The conformance suite
//! in `tests/` runs against both engines.
//!
//! Reads go straight to a pool; every change opens a `Tx`, so the reader
//! of a caller sees exactly where a transaction begins and commits.
//!
//! Reads and writes draw from two separate pools. A transaction holds a
//! writer connection until it commits; if code inside it also read through
//! the pool it shared with writers, N concurrent transactions could hold
//! all N connections and each wait for one more — the whole server wedged
//! until the pool timed out. With a pool of its own for reads, a reader
//! never waits while holding a connection, so no such cycle can form. (Code
//! that runs inside a transaction is meant to read through the `Tx` anyway,
//! so it sees its own writes; the server's types keep the store out of its
//! reach.) On SQLite the writers' pool has exactly one connection: writers
//! queue for it in order, instead of spinning on the file lock and failing
//! with "database is locked", and the readers' connections are `query_only`.

mod accounts;
mod audit_log;
mod batch;
mod billing;
mod catalogue;
mod channels;
pub mod children;
mod disputes;
mod durability;
mod engine;
pub mod ledger;
mod money;
mod outbox;
mod receipts;
pub mod requests;
mod rows;
mod sql;
mod subscriptions;
#[cfg(feature = "testing")]
pub mod testing;

pub use accounts::VerificationCode;
pub use audit_log::{AuditFilter, LoggedEntry, StoredTreeHead};
pub use channels::{WebhookEndpoint, WrittenNotice};
pub use disputes::{DISPUTES_LISTED_MAX, Dispute, DisputeCount, DisputeEvent, DisputeEvidence, DisputeStatus};
pub use engine::Engine;
pub use money::{MoneyMovement, MovementStatus};
pub use outbox::Channel;
pub use receipts::AUDIT_PAGE_ENTRIES_MAX;
pub use rows::*;

use jiff::Timestamp;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use baobao_domain::ids::{Id, IdKind};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique or check constraint refused the change; `constraint` is its
    /// name where the engine reports it.
    #[error("conflict with existing data ({constraint})")]
    Conflict { constraint: String },
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// The database is busy (no connection free in time, SQLite's lock
    /// held elsewhere, a PostgreSQL deadlock or serialization failure):
    /// nothing was written, and the same request may simply be retried.
    #[error("the database is busy")]
    Busy,
    /// The connection to the database failed (it restarted, the network
    /// went away); nothing was acknowledged.
    #[error("the database cannot be reached")]
    Unavailable,
    /// The database's disk is full: nothing was written (the transaction
    /// rolled back); it works again when space returns.
    #[error("the database's storage is full")]
    Full,
    #[error("database unavailable or failed: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("unsupported database URL: {0}")]
    Url(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut => StoreError::Busy,
            sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => StoreError::Unavailable,
            sqlx::Error::Database(db) if db.is_unique_violation() || db.is_check_violation() => {
                StoreError::Conflict { constraint: db.constraint().unwrap_or("unique").to_owned() }
            }
            // SQLITE_FULL; PostgreSQL's disk_full.
            sqlx::Error::Database(db) if db.code().is_some_and(|code| is_full_code(&code)) => StoreError::Full,
            // SQLITE_BUSY and SQLITE_LOCKED (with extended codes); PostgreSQL's
            // serialization_failure, deadlock_detected and lock_not_available.
            sqlx::Error::Database(db) if db.code().is_some_and(|code| is_busy_code(&code)) => StoreError::Busy,
            // PostgreSQL's admin_shutdown, crash_shutdown, cannot_connect_now.
            sqlx::Error::Database(db) if db.code().is_some_and(|code| code.starts_with("57P")) => {
                StoreError::Unavailable
            }
            _ => StoreError::Database(error),
        }
    }
}

fn is_full_code(code: &str) -> bool {
    match code.parse::<i64>() {
        Ok(sqlite) => sqlite & 0xff == 13,
        Err(_) => code == "53100",
    }
}

fn is_busy_code(code: &str) -> bool {
    match code.parse::<i64>() {
        // SQLite's result codes: the primary code is the low byte.
        Ok(sqlite) => matches!(sqlite & 0xff, 5 | 6),
        Err(_) => matches!(code, "40001" | "40P01" | "55P03"),
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A flush to disk that failed: a full disk is `Full`; anything else means
/// the change cannot be said to be on disk (`Unavailable`: nothing is
/// acknowledged, and the client's retry finds it done or not).
fn flush_failed(error: &std::io::Error) -> StoreError {
    if error.kind() == std::io::ErrorKind::StorageFull {
        return StoreError::Full;
    }
    tracing::warn!(%error, "a flush of the database to disk failed");
    StoreError::Unavailable
}

/// Reading connections per process.
const READ_CONNECTIONS_MAX: u32 = 8;
/// Writing connections per process on PostgreSQL; SQLite has one writer.
const WRITE_CONNECTIONS_MAX_POSTGRES: u32 = 8;
/// How long a request waits for a connection before it is told the server
/// is busy (503 with `Retry-After`); well under the request timeout.
pub const CONNECTION_WAIT_SECONDS_MAX: u64 = 10;

#[derive(Clone)]
pub struct Store {
    /// Single statements and read-only work; never held across an await on
    /// another connection.
    pool: AnyPool,
    /// Transactions and the few single-statement writes.
    writes: AnyPool,
    engine: Engine,
    /// Told by every commit that recorded audit entries: wakes the appender.
    recorded: std::sync::Arc<tokio::sync::Notify>,
    /// Moves on whenever a subscription may have changed: a commit of this
    /// process that wrote one, or word from another server (`follow_changes`).
    subscriptions_epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// For `follow_changes`' own connection (PostgreSQL's LISTEN).
    url: std::sync::Arc<str>,
    /// SQLite's group commit: every commit waits here until it is on disk.
    flusher: Option<std::sync::Arc<durability::Flusher>>,
}

/// The channel on which PostgreSQL tells every server that a commit
/// changed subscriptions (`NOTIFY`, delivered at commit, never before).
const SUBSCRIPTIONS_CHANNEL: &str = "baobao_subscriptions";

/// A write transaction. Dropping it without `commit` rolls it back.
pub struct Tx {
    tx: Transaction<'static, Any>,
    engine: Engine,
    recorded: std::sync::Arc<tokio::sync::Notify>,
    /// Whether this transaction recorded audit entries.
    wrote_entries: bool,
    subscriptions_epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Whether this transaction wrote a subscription.
    changed_subscriptions: bool,
    flusher: Option<std::sync::Arc<durability::Flusher>>,
    /// The answer of the request this transaction serves, saved with its
    /// change (`Tx::save_request_answer`).
    answer: Option<SavedResponse>,
    /// A batch transaction's appends kept for its commit, and its reads
    /// (`Store::begin_batch`).
    batch: Option<Box<batch::Batch>>,
}

impl Store {
    /// Connects to `sqlite://path` (created if missing) or
    /// `postgres://…`, and applies pending migrations when `migrate` is set.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let (engine, url) = Engine::from_url(url)?;
        // The writer connects first: on SQLite it switches the file to WAL.
        let writes = connect_pool(&url, engine, engine.write_connections_max(), Access::Write).await?;
        let pool = connect_pool(&url, engine, READ_CONNECTIONS_MAX, Access::Read).await?;
        let flusher = match engine {
            Engine::Sqlite => durability::Flusher::for_url(&url)?.map(std::sync::Arc::new),
            Engine::Postgres => None,
        };
        Ok(Store {
            flusher,
            pool,
            writes,
            engine,
            recorded: Default::default(),
            subscriptions_epoch: Default::default(),
            url: url.into(),
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Returns once every change this process committed is on disk: after
    /// the few single-statement writes that are acknowledged (outside a
    /// `Tx`, whose commit waits by itself). Nothing to wait for on
    /// PostgreSQL, whose every commit is durable when it returns.
    pub async fn durable(&self) -> StoreResult<()> {
        if let Some(flusher) = &self.flusher {
            flusher.committed();
            flusher.flush().await.map_err(|e| flush_failed(&e))?;
        }
        Ok(())
    }

    /// SQLite's group commit so far: commits made and flushes to disk that
    /// covered them (none on PostgreSQL, which flushes by itself).
    pub fn group_commit_counts(&self) -> Option<(u64, u64)> {
        self.flusher.as_ref().map(|flusher| flusher.counts())
    }

    pub async fn migrate(&self) -> StoreResult<Vec<String>> {
        let applied = engine::migrate(&self.writes, self.engine).await?;
        // Entries written before the log existed (or before a crash let the
        // appender take them) join it, in order.
        self.append_pending().await?;
        self.durable().await?;
        Ok(applied)
    }

    /// Ready to serve: the database answers and has every migration this
    /// binary knows.
    pub async fn schema_is_current(&self) -> StoreResult<bool> {
        Ok(engine::current_version(&self.pool).await? >= engine::latest_version())
    }

    pub async fn begin(&self) -> StoreResult<Tx> {
        let tx = self.writes.begin_with(self.engine.begin_write()).await?;
        Ok(Tx {
            tx,
            engine: self.engine,
            recorded: self.recorded.clone(),
            wrote_entries: false,
            subscriptions_epoch: self.subscriptions_epoch.clone(),
            changed_subscriptions: false,
            flusher: self.flusher.clone(),
            answer: None,
            batch: None,
        })
    }

    /// A number that moves on whenever a subscription may have changed:
    /// after every commit of this process that wrote one and, on
    /// PostgreSQL, when another server's commit did (`follow_changes`). A
    /// cache of what was read after seeing epoch `e` is current while the
    /// epoch is still `e` (read the epoch before the data).
    pub fn subscriptions_epoch(&self) -> u64 {
        self.subscriptions_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    fn subscriptions_changed(epoch: &std::sync::atomic::AtomicU64) {
        epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Follows other servers' changes to subscriptions, for as long as it
    /// runs: on PostgreSQL, `LISTEN`s on the channel every such commit
    /// notifies, and moves the epoch on for each notification — and
    /// whenever the listening connection was lost, since notifications sent
    /// meanwhile are gone. On SQLite it returns at once: one server per
    /// file, and the `baobao` commands that write beside it (a billing run)
    /// are bounded by the caches' own short lifetimes.
    pub async fn follow_changes(&self) {
        if self.engine != Engine::Postgres {
            return;
        }
        loop {
            match sqlx::postgres::PgListener::connect(&self.url).await {
                Ok(mut listener) => {
                    if let Err(error) = listener.listen(SUBSCRIPTIONS_CHANNEL).await {
                        tracing::warn!(%error, "cannot listen for other servers' changes");
                    } else {
                        // Whatever changed before this connection listened.
                        Self::subscriptions_changed(&self.subscriptions_epoch);
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(_)) => Self::subscriptions_changed(&self.subscriptions_epoch),
                                // The connection was lost: what was sent meanwhile is gone.
                                Ok(None) => Self::subscriptions_changed(&self.subscriptions_epoch),
                                Err(error) => {
                                    tracing::warn!(%error, "lost the connection listening for other servers' changes");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot connect to listen for other servers' changes"),
            }
            Self::subscriptions_changed(&self.subscriptions_epoch);
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    /// After personal data was deleted: on SQLite, copies the write-ahead
    /// log into the database and truncates it, so that no earlier page
    /// image holding the deleted rows stays in the `-wal` file (the pages
    /// themselves were overwritten by `secure_delete`). Best effort and
    /// without waiting: a reader holding an old snapshot makes it give up
    /// at once (rather than hold the one writer for the busy timeout), and
    /// the next deletion or delivery does it. PostgreSQL reclaims dead rows
    /// by its own (auto)vacuum.
    pub async fn forget_deleted(&self) -> StoreResult<()> {
        if self.engine != Engine::Sqlite {
            return Ok(());
        }
        let mut writer = self.writes.acquire().await?;
        sqlx::raw_sql("PRAGMA busy_timeout = 0").execute(&mut *writer).await?;
        let checkpoint = sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut *writer).await;
        sqlx::raw_sql(engine::SQLITE_BUSY_TIMEOUT).execute(&mut *writer).await?;
        checkpoint?;
        Ok(())
    }

    /// Writes a consistent copy of a SQLite database to `path` while it
    /// runs (`VACUUM INTO`: one read transaction, so the copy is the
    /// database as of one instant, and compacted); a file already there is
    /// refused. PostgreSQL is backed up with its own tools (`pg_dump`).
    pub async fn backup_to(&self, path: &std::path::Path) -> StoreResult<()> {
        if self.engine != Engine::Sqlite {
            return Err(StoreError::Url("backup_to is for SQLite; back PostgreSQL up with pg_dump".to_owned()));
        }
        let target = path.to_str().ok_or_else(|| StoreError::Url("the backup path is not UTF-8".to_owned()))?;
        // A reader's connection (writers go on meanwhile), allowed to write
        // the one new file for this statement: readers are `query_only`.
        let mut reader = self.pool.acquire().await?;
        sqlx::raw_sql("PRAGMA query_only = OFF").execute(&mut *reader).await?;
        let copied = sqlx::query("VACUUM INTO $1").bind(target).execute(&mut *reader).await;
        if let Err(error) = sqlx::raw_sql("PRAGMA query_only = ON").execute(&mut *reader).await {
            // Never back in the pool able to write.
            let _ = reader.close().await;
            return Err(error.into());
        }
        copied?;
        // The copy is complete once it is on disk.
        durability::sync_file(path).map_err(|e| flush_failed(&e))?;
        Ok(())
    }

    /// Connections open and idle, readers' then writers' pools: an
    /// operator's gauge of how busy the database is.
    pub fn pool_usage(&self) -> [(u32, usize); 2] {
        [(self.pool.size(), self.pool.num_idle()), (self.writes.size(), self.writes.num_idle())]
    }

    /// What an operator watches, read in one go: outbox messages waiting
    /// and failed for good, refunds and fees waiting for the gateway, the
    /// subscriptions due at `now` and how long the oldest has waited (in
    /// seconds), open disputes and those past a deadline.
    pub async fn operator_gauges(&self, now: Timestamp) -> StoreResult<Vec<(&'static str, i64)>> {
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM outbox WHERE status = 'pending') AS outbox_pending, \
             (SELECT COUNT(*) FROM outbox WHERE status = 'failed') AS outbox_failed, \
             (SELECT COUNT(*) FROM money_movements WHERE status = 'pending') AS money_pending, \
             (SELECT COUNT(*) FROM money_movements WHERE status = 'failed') AS money_failed, \
             (SELECT COUNT(*) FROM subscriptions WHERE due_at IS NOT NULL AND due_at <= $1) AS billing_due, \
             (SELECT MIN(due_at) FROM subscriptions WHERE due_at IS NOT NULL AND due_at <= $1) AS billing_oldest_due, \
             (SELECT COUNT(*) FROM disputes WHERE status = 'open') AS disputes_open, \
             (SELECT COUNT(*) FROM disputes WHERE status = 'open' AND resolution_due <= $1) AS disputes_overdue",
        )
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await?;
        let count = |column: &str| -> StoreResult<i64> { Ok(row.try_get::<i64, _>(column)?) };
        let oldest: Option<i64> = row.try_get("billing_oldest_due")?;
        let lag_seconds = oldest.map(|due| (micros(now) - due) / 1_000_000).unwrap_or(0);
        Ok(vec![
            ("outbox_pending", count("outbox_pending")?),
            ("outbox_failed", count("outbox_failed")?),
            ("money_pending", count("money_pending")?),
            ("money_failed", count("money_failed")?),
            ("billing_due", count("billing_due")?),
            ("billing_lag_seconds", lag_seconds),
            ("disputes_open", count("disputes_open")?),
            ("disputes_overdue", count("disputes_overdue")?),
        ])
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writes.close().await;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

async fn connect_pool(url: &str, engine: Engine, connections_max: u32, access: Access) -> StoreResult<AnyPool> {
    let pool = AnyPoolOptions::new()
        .max_connections(connections_max)
        .acquire_timeout(std::time::Duration::from_secs(CONNECTION_WAIT_SECONDS_MAX))
        // A connection the database closed (a restart) is found out before
        // a request gets it, not by the request's first query.
        .test_before_acquire(true)
        // A connection that still counts a transaction open (the database
        // ended it by itself: SQLite rolls back on a full disk) would refuse
        // every next BEGIN; it is closed, and a fresh one takes its place.
        .before_acquire(|conn, _| Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) }))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                for statement in engine.session_setup() {
                    sqlx::raw_sql(*statement).execute(&mut *conn).await?;
                }
                if access == Access::Read && engine == Engine::Sqlite {
                    sqlx::raw_sql("PRAGMA query_only = ON").execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}

impl Tx {
    /// Commits; if the transaction recorded audit entries, the appender
    /// is woken to give them their places in the log.
    pub async fn commit(mut self) -> StoreResult<()> {
        self.write_batch().await?;
        // A request's Idempotency-Key learns, in this same transaction,
        // that its change is made (`requests::with_key`) — unless its
        // answer is saved in it, which says more.
        let marking = match self.answer {
            Some(_) => true,
            None => self.mark_request_changed().await?,
        };
        if self.changed_subscriptions && self.engine == Engine::Postgres {
            // Delivered to every listening server when (and only if) this commits.
            sqlx::query(sqlx::AssertSqlSafe(format!("NOTIFY {SUBSCRIPTIONS_CHANNEL}"))).execute(&mut *self.tx).await?;
        }
        self.tx.commit().await?;
        if marking {
            requests::request_marked();
        }
        if let Some(answer) = self.answer.take() {
            requests::request_answered(answer);
        }
        // Visible from here on: what caches it, and the appender, are told
        // now, whatever the flush below says.
        if self.wrote_entries {
            self.recorded.notify_one();
        }
        if self.changed_subscriptions {
            Store::subscriptions_changed(&self.subscriptions_epoch);
        }
        if let Some(flusher) = &self.flusher {
            // Committed and visible, and acknowledged only once on disk (`durability`).
            flusher.until_durable(flusher.committed()).await.map_err(|e| flush_failed(&e))?;
        }
        Ok(())
    }

    /// Ends the transaction without its changes, now: its locks are
    /// released before this returns (dropping a `Tx` rolls back too, but
    /// only when its connection is next used).
    pub async fn rollback(self) -> StoreResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

pub(crate) fn micros(instant: Timestamp) -> i64 {
    instant.as_microsecond()
}

pub(crate) fn instant(row: &AnyRow, column: &str) -> StoreResult<Timestamp> {
    let value: i64 = row.try_get(column)?;
    Timestamp::from_microsecond(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range")))
}

pub(crate) fn optional_instant(row: &AnyRow, column: &str) -> StoreResult<Option<Timestamp>> {
    let value: Option<i64> = row.try_get(column)?;
    value
        .map(|v| Timestamp::from_microsecond(v).map_err(|_| StoreError::Corrupt(format!("{column} out of range"))))
        .transpose()
}

pub(crate) fn id<K: IdKind>(row: &AnyRow, column: &str) -> StoreResult<Id<K>> {
    let text: String = row.try_get(column)?;
    Id::parse(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn optional_id<K: IdKind>(row: &AnyRow, column: &str) -> StoreResult<Option<Id<K>>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| Id::parse(&t).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))).transpose()
}

/// A column holding one of a domain enum's names; any other text is corrupt
/// data, never a silent default.
pub(crate) fn named<T>(row: &AnyRow, column: &str, parse: impl Fn(&str) -> Option<T>) -> StoreResult<T> {
    let text: String = row.try_get(column)?;
    parse(&text).ok_or_else(|| StoreError::Corrupt(format!("{column}: unknown value {text:?}")))
}

pub(crate) fn text(row: &AnyRow, column: &str) -> StoreResult<String> {
    Ok(row.try_get(column)?)
}

pub(crate) fn integer(row: &AnyRow, column: &str) -> StoreResult<i64> {
    Ok(row.try_get(column)?)
}
