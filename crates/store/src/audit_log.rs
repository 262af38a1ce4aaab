//! The audit log as a Merkle tree (RFC 9162), kept in the database.
//!
//! Every entry is written in the transaction of the change it records
//! (`Tx::audit_entry`): committed with the change or not at all. Its place
//! in the log is given after that commit by a single appender
//! (`Store::append_pending`): one turn at a time, under the lock of the one
//! row of `audit_log`, it takes the entries committed without a leaf index
//! in `seq` order, gives them the next indexes, recomputes their leaf
//! hashes from their fields and stores the hashes of the complete subtrees
//! they complete (`audit_nodes`), so that any root or proof is a few
//! lookups. Indexes are dense and gap-free on both engines however many
//! transactions write at once, because only the appender takes them and
//! it takes them under one lock; and no writer waits for the log: a
//! change's transaction holds no lock of the log, so concurrent commits
//! stay concurrent (on PostgreSQL, one fsync can serve several). The
//! server's appender is woken by each commit that recorded entries, and
//! looks every second for those of other processes; a signed tree head,
//! and a reader asking for an entry not appended yet, append first.

use std::collections::HashMap;

use baobao_domain::audit::entry_leaf_hash;
use baobao_domain::merkle::{Hash, Nodes, completed_by};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::{Query, tuples, width};
use crate::{Store, StoreError, StoreResult, Tx, instant, integer, micros, text};

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn hash_of(hex_text: &str) -> StoreResult<Hash> {
    hex::decode(hex_text).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| corrupt("a stored hash is not 32 bytes"))
}

/// A signed tree head as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTreeHead {
    pub tree_size: u64,
    pub root_hash: String,
    pub signed_at: String,
    /// The signature block, as JSON.
    pub signature: String,
}

/// One logged entry, as `baobao audit verify` rereads it.
#[derive(Clone, Debug)]
pub struct LoggedEntry {
    pub leaf_index: Option<u64>,
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub subject_ids: Vec<String>,
    pub details: String,
    pub document_sha256: Option<String>,
    pub leaf_hash: Option<String>,
}

fn logged(row: &AnyRow) -> StoreResult<LoggedEntry> {
    let subjects = text(row, "subject_ids")?;
    let leaf_index: Option<i64> = row.try_get("leaf_index")?;
    Ok(LoggedEntry {
        leaf_index: leaf_index.map(|i| u64::try_from(i).unwrap_or(u64::MAX)),
        seq: integer(row, "seq")?,
        at: instant(row, "at")?,
        actor: text(row, "actor")?,
        action: text(row, "action")?,
        subject_ids: serde_json::from_str(&subjects).map_err(corrupt)?,
        details: text(row, "details")?,
        document_sha256: row.try_get("document_sha256")?,
        leaf_hash: row.try_get("leaf_hash")?,
    })
}

const LOGGED_COLUMNS: &str = "seq, leaf_index, at, actor, action, subject_ids, details, document_sha256, leaf_hash";

/// Stored complete subtrees by (level, index), a few hundred per query:
/// the leaves (level 0) are the entries' leaf hashes, the subtrees above
/// them are in `audit_nodes`.
async fn fetch_nodes(conn: &mut sqlx::AnyConnection, wanted: &[(u32, u64)]) -> StoreResult<HashMap<(u32, u64), Hash>> {
    let mut found = HashMap::new();
    let mut wanted: Vec<(u32, u64)> = wanted.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    // SQLite parses `a OR b OR …` as a tree as deep as the list is long,
    // and refuses one deeper than 1,000: a few hundred per query.
    for batch in wanted.chunks(NODES_PER_QUERY_MAX) {
        fetch_node_batch(conn, batch, &mut found).await?;
    }
    Ok(found)
}

/// Subtrees read by one query.
const NODES_PER_QUERY_MAX: usize = 300;

async fn fetch_node_batch(
    conn: &mut sqlx::AnyConnection,
    wanted: &[(u32, u64)],
    found: &mut HashMap<(u32, u64), Hash>,
) -> StoreResult<()> {
    let (leaves, above): (Vec<_>, Vec<_>) = wanted.iter().copied().partition(|(level, _)| *level == 0);
    if !leaves.is_empty() {
        let params: Vec<String> = (1..=leaves.len()).map(|i| format!("${i}")).collect();
        let sql =
            format!("SELECT leaf_index, leaf_hash FROM audit_entries WHERE leaf_index IN ({})", params.join(", "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (_, position) in &leaves {
            query = query.bind(to_i64(*position)?);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let position = u64::try_from(integer(&row, "leaf_index")?).map_err(corrupt)?;
            let hash: Option<String> = row.try_get("leaf_hash")?;
            found.insert((0, position), hash_of(&hash.ok_or_else(|| corrupt("a leaf has no hash"))?)?);
        }
    }
    if !above.is_empty() {
        let conditions: Vec<String> =
            (0..above.len()).map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2)).collect();
        let sql = format!("SELECT level, idx, hash FROM audit_nodes WHERE {}", conditions.join(" OR "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (level, position) in &above {
            query = query.bind(i64::from(*level)).bind(to_i64(*position)?);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let level = u32::try_from(integer(&row, "level")?).map_err(corrupt)?;
            let position = u64::try_from(integer(&row, "idx")?).map_err(corrupt)?;
            found.insert((level, position), hash_of(&text(&row, "hash")?)?);
        }
    }
    Ok(())
}

/// Complete subtrees of the log, by (level, index): the right edge read
/// for one append, and what the append computes.
struct Known(HashMap<(u32, u64), Hash>);

impl Nodes for Known {
    fn node(&mut self, level: u32, index: u64) -> Hash {
        // Only asked for left siblings, which the right edge or the
        // append's own earlier leaves hold (checked before computing).
        self.0.get(&(level, index)).copied().unwrap_or([0; 32])
    }
}

fn to_i64(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| corrupt("the log is too large"))
}

/// Entries one turn of the appender takes at most.
pub const APPEND_BATCH: i64 = 500;

/// The complete subtrees on the right edge of a tree of `size` leaves: the
/// left siblings any leaf appended next can pair with.
fn right_edge(size: u64) -> Vec<(u32, u64)> {
    (0..u64::BITS).filter(|level| size >> level & 1 == 1).map(|level| (level, (size >> level) - 1)).collect()
}

/// An audit entry as it is written, its place to come (kept by a batch
/// until its commit).
pub(crate) struct PendingAudit {
    pub(crate) at: i64,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) subject_ids: String,
    pub(crate) details: String,
    pub(crate) document_sha256: Option<String>,
}

/// The columns an audit entry is written with (its place comes later).
pub(crate) const ENTRY_COLUMNS: &str = "at, actor, action, subject_ids, details, document_sha256";

/// Binds an entry's `ENTRY_COLUMNS`.
pub(crate) fn bind_entry(query: Query, e: &PendingAudit) -> Query {
    query
        .bind(e.at)
        .bind(e.actor.as_str())
        .bind(e.action.as_str())
        .bind(e.subject_ids.as_str())
        .bind(e.details.as_str())
        .bind(e.document_sha256.as_deref())
}

impl Tx {
    /// Records an audit entry in this transaction: who did what to which
    /// ids, when, and the SHA-256 of the signed document it produced;
    /// `details` is kept beside it. The appender gives it its leaf index
    /// once this transaction has committed (`Store::append_pending`).
    pub async fn audit_entry(
        &mut self,
        at: Timestamp,
        actor: &str,
        action: &str,
        subject_ids: &[&str],
        details: &serde_json::Value,
        document_sha256: Option<&str>,
    ) -> StoreResult<()> {
        let entry = PendingAudit {
            at: micros(at),
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject_ids: serde_json::to_string(subject_ids).map_err(corrupt)?,
            details: details.to_string(),
            document_sha256: document_sha256.map(str::to_owned),
        };
        match &mut self.batch {
            Some(batch) => batch.audit.push(entry),
            None => {
                let sql = format!(
                    "INSERT INTO audit_entries ({ENTRY_COLUMNS}) VALUES {}",
                    tuples(self.engine, 1, width(ENTRY_COLUMNS))
                );
                bind_entry(sqlx::query(sqlx::AssertSqlSafe(sql)), &entry).execute(&mut *self.tx).await?;
            }
        }
        self.wrote_entries = true;
        Ok(())
    }

    /// One turn of the single appender: the entries committed without a
    /// leaf index (at most `APPEND_BATCH`), in `seq` order, become the
    /// next leaves, each with its leaf hash recomputed from its fields,
    /// and the subtrees they complete are stored. The log's row is locked
    /// first and stays locked until this transaction ends, so appenders in
    /// other processes take their turns one after another. Returns how
    /// many entries were appended.
    async fn append_batch(&mut self) -> StoreResult<u64> {
        let row = sqlx::query("UPDATE audit_log SET size = size WHERE id = 1 RETURNING size")
            .fetch_one(&mut *self.tx)
            .await?;
        let size = u64::try_from(integer(&row, "size")?).map_err(|_| corrupt("the log's size is negative"))?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LOGGED_COLUMNS} FROM audit_entries WHERE leaf_index IS NULL ORDER BY seq LIMIT $1"
        )))
        .bind(APPEND_BATCH)
        .fetch_all(&mut *self.tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let edge = right_edge(size);
        let mut known = Known(fetch_nodes(&mut self.tx, &edge).await?);
        if known.0.len() != edge.len() {
            return Err(corrupt("a subtree of the audit log is missing"));
        }
        let mut leaves = Vec::with_capacity(rows.len());
        let mut nodes = Vec::with_capacity(2 * rows.len());
        for (offset, row) in rows.iter().enumerate() {
            let entry = logged(row)?;
            let index = size + offset as u64;
            let leaf = entry_leaf_hash(
                entry.at,
                &entry.actor,
                &entry.action,
                &entry.subject_ids,
                entry.document_sha256.as_deref(),
            )
            .map_err(corrupt)?;
            leaves.push((entry.seq, index, leaf));
            for (level, position, hash) in completed_by(&mut known, index, leaf) {
                known.0.insert((level, position), hash);
                nodes.push((level, position, hash));
            }
            known.0.insert((0, index), leaf);
        }
        let sql = format!(
            "WITH appended (seq, leaf_index, leaf_hash) AS (VALUES {}) UPDATE audit_entries \
             SET leaf_index = appended.leaf_index, leaf_hash = appended.leaf_hash \
             FROM appended WHERE audit_entries.seq = appended.seq",
            tuples(self.engine, leaves.len(), 3)
        );
        let mut update = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (seq, index, leaf) in &leaves {
            update = update.bind(*seq).bind(to_i64(*index)?).bind(hex::encode(leaf));
        }
        update.execute(&mut *self.tx).await?;
        for chunk in nodes.chunks(APPEND_BATCH as usize) {
            let sql =
                format!("INSERT INTO audit_nodes (level, idx, hash) VALUES {}", tuples(self.engine, chunk.len(), 3));
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (level, position, hash) in chunk {
                insert = insert.bind(i64::from(*level)).bind(to_i64(*position)?).bind(hex::encode(hash));
            }
            insert.execute(&mut *self.tx).await?;
        }
        let appended = leaves.len() as u64;
        sqlx::query("UPDATE audit_log SET size = $1 WHERE id = 1")
            .bind(to_i64(size + appended)?)
            .execute(&mut *self.tx)
            .await?;
        Ok(appended)
    }

    /// Keeps a signed tree head (once per size).
    pub async fn insert_tree_head(&mut self, head: &StoredTreeHead) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO tree_heads (tree_size, root_hash, signed_at, signature) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(to_i64(head.tree_size)?)
        .bind(&head.root_hash)
        .bind(&head.signed_at)
        .bind(&head.signature)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// With several servers on PostgreSQL, one signs tree heads at a time:
    /// whether this transaction holds the log's advisory lock now.
    pub async fn try_lock_tree_heads(&mut self) -> StoreResult<bool> {
        match self.engine {
            crate::Engine::Sqlite => Ok(true),
            crate::Engine::Postgres => {
                let row =
                    sqlx::query("SELECT pg_try_advisory_xact_lock(6962) AS held").fetch_one(&mut *self.tx).await?;
                Ok(row.try_get::<bool, _>("held")?)
            }
        }
    }

    /// The log's size as this transaction sees it.
    pub async fn audit_size(&mut self) -> StoreResult<u64> {
        let row = sqlx::query("SELECT size FROM audit_log WHERE id = 1").fetch_one(&mut *self.tx).await?;
        u64::try_from(integer(&row, "size")?).map_err(|_| corrupt("the log's size is negative"))
    }
}

impl Store {
    /// The single appender: gives every entry committed without a leaf
    /// index its place in the log, a batch per transaction, until none is
    /// left. Runs after writes (the server's appender task, woken by each
    /// commit that recorded entries), before a tree head is signed and
    /// whenever a reader asks for an entry not appended yet. Returns how
    /// many entries were appended.
    pub async fn append_pending(&self) -> StoreResult<u64> {
        let mut total = 0;
        loop {
            let mut tx = self.begin().await?;
            let appended = tx.append_batch().await?;
            tx.commit().await?;
            total += appended;
            if appended < APPEND_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// How many entries are committed but not appended to the log yet.
    pub async fn pending_entries(&self) -> StoreResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM audit_entries WHERE leaf_index IS NULL")
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(integer(&row, "n")?).map_err(corrupt)
    }

    /// Waits until a transaction of this process that recorded audit
    /// entries commits (at once if one did since the last wait).
    pub async fn entries_recorded(&self) {
        self.recorded.notified().await;
    }

    /// The number of leaves in the log.
    pub async fn audit_size(&self) -> StoreResult<u64> {
        let row = sqlx::query("SELECT size FROM audit_log WHERE id = 1").fetch_one(&self.pool).await?;
        u64::try_from(integer(&row, "size")?).map_err(|_| corrupt("the log's size is negative"))
    }

    /// The stored complete subtrees asked for, by (level, index).
    pub async fn audit_nodes(&self, wanted: &[(u32, u64)]) -> StoreResult<HashMap<(u32, u64), Hash>> {
        let mut conn = self.pool.acquire().await?;
        fetch_nodes(&mut conn, wanted).await
    }

    /// The entry that logged the document with this SHA-256, if any.
    pub async fn logged_document(&self, document_sha256: &str) -> StoreResult<Option<LoggedEntry>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LOGGED_COLUMNS} FROM audit_entries WHERE document_sha256 = $1 ORDER BY leaf_index LIMIT 1"
        )))
        .bind(document_sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(logged).transpose()
    }

    /// The latest signed tree head, or the one of `tree_size`.
    pub async fn tree_head(&self, tree_size: Option<u64>) -> StoreResult<Option<StoredTreeHead>> {
        let row = match tree_size {
            Some(size) => {
                // A size no log can reach has no head.
                let Ok(size) = i64::try_from(size) else { return Ok(None) };
                sqlx::query("SELECT tree_size, root_hash, signed_at, signature FROM tree_heads WHERE tree_size = $1")
                    .bind(size)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(
                    "SELECT tree_size, root_hash, signed_at, signature FROM tree_heads ORDER BY tree_size DESC LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?
            }
        };
        row.as_ref().map(tree_head).transpose()
    }

    /// Every signed tree head, smallest first.
    pub async fn tree_heads(&self) -> StoreResult<Vec<StoredTreeHead>> {
        let rows = sqlx::query("SELECT tree_size, root_hash, signed_at, signature FROM tree_heads ORDER BY tree_size")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tree_head).collect()
    }

    /// Appended entries in leaf order from `from_index`.
    pub async fn logged_entries(&self, from_index: u64, limit: i64) -> StoreResult<Vec<LoggedEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LOGGED_COLUMNS} FROM audit_entries WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2"
        )))
        .bind(to_i64(from_index)?)
        .bind(limit.clamp(1, crate::receipts::AUDIT_PAGE_ENTRIES_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(logged).collect()
    }
}

/// Which entries a reader of the log asks for; every filter optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Entries naming this family among their subjects.
    pub family_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Leaves after this index (the previous page's last).
    pub after: Option<u64>,
}

fn like_escaped(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

impl Store {
    /// A page of logged entries matching `filter`, in leaf order.
    pub async fn audit_entries_matching(&self, filter: &AuditFilter, limit: i64) -> StoreResult<Vec<LoggedEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LOGGED_COLUMNS} FROM audit_entries WHERE leaf_index IS NOT NULL AND leaf_index > $1 \
             AND ($2 IS NULL OR subject_ids LIKE $2 ESCAPE '\\') AND ($3 IS NULL OR actor = $3) \
             AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) \
             ORDER BY leaf_index LIMIT $7"
        )))
        .bind(filter.after.map(to_i64).transpose()?.unwrap_or(-1))
        .bind(filter.family_id.as_deref().map(|f| format!("%\"{}\"%", like_escaped(f))))
        .bind(filter.actor.clone())
        .bind(filter.action.clone())
        .bind(filter.from.map(micros))
        .bind(filter.until.map(micros))
        .bind(limit.clamp(1, crate::receipts::AUDIT_PAGE_ENTRIES_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(logged).collect()
    }
}

fn tree_head(row: &AnyRow) -> StoreResult<StoredTreeHead> {
    Ok(StoredTreeHead {
        tree_size: u64::try_from(integer(row, "tree_size")?).map_err(|_| corrupt("negative tree size"))?,
        root_hash: text(row, "root_hash")?,
        signed_at: text(row, "signed_at")?,
        signature: text(row, "signature")?,
    })
}
