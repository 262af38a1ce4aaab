//! The audit log as a Merkle tree (RFC 9162), kept in the database.
//!
//! Every entry is appended in the transaction of the change it records
//! (`Tx::audit`), at its commit (`Tx::commit`): the transaction's entries
//! take their leaf indexes from the one row of `audit_log` (`UPDATE … SET
//! size = size + n RETURNING`), which stays locked until the commit that
//! follows, so indexes are dense and gap-free on both engines however many
//! transactions append at once, the log's order is the commits' order, and
//! the lock is held only for the last step of each transaction. One that
//! rolls back never took an index. The hashes of the complete subtrees each
//! append completes are stored beside the leaf (`audit_nodes`), so any
//! root or proof is a few lookups (`Store::audit_nodes`).

use std::collections::HashMap;

use baobao_domain::audit::entry_leaf_hash;
use baobao_domain::merkle::{Hash, Nodes, completed_by};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

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

/// Stored complete subtrees by (level, index), a few hundred per query.
async fn fetch_nodes<'e, E>(executor: E, wanted: &[(u32, u64)]) -> StoreResult<HashMap<(u32, u64), Hash>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let mut wanted: Vec<(u32, u64)> = wanted.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let conditions: Vec<String> =
        (0..wanted.len()).map(|i| format!("(level = ${} AND idx = ${})", 2 * i + 1, 2 * i + 2)).collect();
    let sql = format!("SELECT level, idx, hash FROM audit_nodes WHERE {}", conditions.join(" OR "));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (level, position) in &wanted {
        query = query.bind(i64::from(*level)).bind(to_i64(*position)?);
    }
    for row in query.fetch_all(executor).await? {
        let level = u32::try_from(integer(&row, "level")?).map_err(corrupt)?;
        let position = u64::try_from(integer(&row, "idx")?).map_err(corrupt)?;
        found.insert((level, position), hash_of(&text(&row, "hash")?)?);
    }
    Ok(found)
}

/// An audit entry of a transaction, waiting for its commit.
pub(crate) struct PendingLeaf {
    at: Timestamp,
    actor: String,
    action: String,
    subjects: Vec<String>,
    details: String,
    document_sha256: Option<String>,
    leaf: Hash,
}

/// Complete subtrees read for one append, by (level, index).
struct Fetched(HashMap<(u32, u64), Hash>);

impl Nodes for Fetched {
    fn node(&mut self, level: u32, index: u64) -> Hash {
        // Only asked for what `append` fetched first (the left siblings).
        self.0.get(&(level, index)).copied().unwrap_or([0; 32])
    }
}

fn to_i64(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| corrupt("the log is too large"))
}

impl Tx {
    /// Appends to the audit log: who did what to which ids, when, and the
    /// SHA-256 of the signed document it produced; `details` is kept beside
    /// the leaf. Returns the leaf index.
    pub async fn audit_entry(
        &mut self,
        at: Timestamp,
        actor: &str,
        action: &str,
        subject_ids: &[&str],
        details: &serde_json::Value,
        document_sha256: Option<&str>,
    ) -> StoreResult<()> {
        let subjects: Vec<String> = subject_ids.iter().map(|s| (*s).to_owned()).collect();
        if !self.merkle_log {
            return self.plain_entry(at, actor, action, &subjects, details).await;
        }
        let leaf = entry_leaf_hash(at, actor, action, &subjects, document_sha256).map_err(corrupt)?;
        self.leaves.push(PendingLeaf {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subjects,
            details: details.to_string(),
            document_sha256: document_sha256.map(str::to_owned),
            leaf,
        });
        Ok(())
    }

    /// Appends the transaction's entries to the log: their indexes in one
    /// step (the log's row stays locked until the commit that follows),
    /// each entry with its leaf hash, and the subtrees they complete.
    pub(crate) async fn append_leaves(&mut self) -> StoreResult<()> {
        let leaves = std::mem::take(&mut self.leaves);
        if leaves.is_empty() {
            return Ok(());
        }
        let count = i64::try_from(leaves.len()).map_err(corrupt)?;
        let row = sqlx::query("UPDATE audit_log SET size = size + $1 WHERE id = 1 RETURNING size")
            .bind(count)
            .fetch_one(&mut *self.tx)
            .await?;
        let first = u64::try_from(integer(&row, "size")? - count).map_err(|_| corrupt("the log's size is negative"))?;
        for (offset, pending) in leaves.iter().enumerate() {
            let index = first + offset as u64;
            sqlx::query(
                "INSERT INTO audit_entries (at, actor, action, subject_ids, details, leaf_index, leaf_hash, \
                 document_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(micros(pending.at))
            .bind(&pending.actor)
            .bind(&pending.action)
            .bind(serde_json::to_string(&pending.subjects).map_err(corrupt)?)
            .bind(&pending.details)
            .bind(to_i64(index)?)
            .bind(hex::encode(pending.leaf))
            .bind(pending.document_sha256.clone())
            .execute(&mut *self.tx)
            .await?;
            self.store_nodes(index, pending.leaf).await?;
        }
        Ok(())
    }

    /// An entry as a plain row, outside the log: the benchmark's baseline.
    async fn plain_entry(
        &mut self,
        at: Timestamp,
        actor: &str,
        action: &str,
        subjects: &[String],
        details: &serde_json::Value,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO audit_entries (at, actor, action, subject_ids, details) VALUES ($1, $2, $3, $4, $5)")
            .bind(micros(at))
            .bind(actor)
            .bind(action)
            .bind(serde_json::to_string(subjects).map_err(corrupt)?)
            .bind(details.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The next leaf index; the log's row stays locked until this
    /// transaction ends (the single appender's turn).
    async fn take_leaf_index(&mut self) -> StoreResult<u64> {
        let row = sqlx::query("UPDATE audit_log SET size = size + 1 WHERE id = 1 RETURNING size")
            .fetch_one(&mut *self.tx)
            .await?;
        let size = integer(&row, "size")?;
        u64::try_from(size - 1).map_err(|_| corrupt("the log's size is negative"))
    }

    /// Stores the leaf and every complete subtree it completes: one query
    /// for the left siblings it pairs with, one insert for all of them.
    async fn store_nodes(&mut self, index: u64, leaf: Hash) -> StoreResult<()> {
        let mut wanted = Vec::new();
        let (mut level, mut position) = (0u32, index);
        while position & 1 == 1 {
            wanted.push((level, position - 1));
            level += 1;
            position >>= 1;
        }
        let mut fetched = Fetched(fetch_nodes(&mut *self.tx, &wanted).await?);
        if fetched.0.len() != wanted.len() {
            return Err(corrupt("a subtree of the audit log is missing"));
        }
        let nodes: Vec<(u32, u64, Hash)> =
            std::iter::once((0, index, leaf)).chain(completed_by(&mut fetched, index, leaf)).collect();
        let values: Vec<String> =
            (0..nodes.len()).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
        let sql = format!("INSERT INTO audit_nodes (level, idx, hash) VALUES {}", values.join(", "));
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (level, position, hash) in &nodes {
            insert = insert.bind(i64::from(*level)).bind(to_i64(*position)?).bind(hex::encode(hash));
        }
        insert.execute(&mut *self.tx).await?;
        Ok(())
    }

    /// Appends entries written before the log existed, in the order they
    /// were written. Returns how many.
    pub(crate) async fn append_unlogged(&mut self) -> StoreResult<u64> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LOGGED_COLUMNS} FROM audit_entries WHERE leaf_index IS NULL ORDER BY seq"
        )))
        .fetch_all(&mut *self.tx)
        .await?;
        let mut appended = 0;
        for row in &rows {
            let entry = logged(row)?;
            let leaf =
                entry_leaf_hash(entry.at, &entry.actor, &entry.action, &entry.subject_ids, None).map_err(corrupt)?;
            let index = self.take_leaf_index().await?;
            sqlx::query("UPDATE audit_entries SET leaf_index = $2, leaf_hash = $3 WHERE seq = $1")
                .bind(entry.seq)
                .bind(to_i64(index)?)
                .bind(hex::encode(leaf))
                .execute(&mut *self.tx)
                .await?;
            self.store_nodes(index, leaf).await?;
            appended += 1;
        }
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
    /// The number of leaves in the log.
    pub async fn audit_size(&self) -> StoreResult<u64> {
        let row = sqlx::query("SELECT size FROM audit_log WHERE id = 1").fetch_one(&self.pool).await?;
        u64::try_from(integer(&row, "size")?).map_err(|_| corrupt("the log's size is negative"))
    }

    /// The stored complete subtrees asked for, by (level, index).
    pub async fn audit_nodes(&self, wanted: &[(u32, u64)]) -> StoreResult<HashMap<(u32, u64), Hash>> {
        fetch_nodes(&self.pool, wanted).await
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

    /// Logged entries in leaf order from `from_index` (entries that lost
    /// their index, or never had one, come first: seq order).
    pub async fn logged_entries(&self, from_index: u64, limit: i64) -> StoreResult<Vec<LoggedEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LOGGED_COLUMNS} FROM audit_entries WHERE leaf_index IS NULL OR leaf_index >= $1 \
             ORDER BY leaf_index IS NOT NULL, leaf_index, seq LIMIT $2"
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
