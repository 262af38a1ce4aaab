//! Signed receipts and the append-only audit trail. Both are written in the
//! transaction of the change they record.

use baobao_domain::ids::{FamilyId, ReceiptId};
use jiff::Timestamp;
use sqlx::any::AnyRow;

use crate::sql::{Query, tuples, width};
use crate::{AuditEntry, Store, StoreError, StoreResult, StoredReceipt, Tx, id, instant, integer, micros, text};

fn receipt(row: &AnyRow) -> StoreResult<StoredReceipt> {
    Ok(StoredReceipt {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        number: text(row, "number")?,
        kind: text(row, "kind")?,
        subject_id: text(row, "subject_id")?,
        document: text(row, "document")?,
        created_at: instant(row, "created_at")?,
    })
}

/// The columns a receipt is written with.
pub(crate) const RECEIPT_COLUMNS: &str = "id, family_id, number, kind, subject_id, document, created_at";

/// Binds a receipt's `RECEIPT_COLUMNS`.
pub(crate) fn bind_receipt(query: Query, r: &StoredReceipt) -> Query {
    query
        .bind(r.id.as_str())
        .bind(r.family_id.as_str())
        .bind(r.number.as_str())
        .bind(r.kind.as_str())
        .bind(r.subject_id.as_str())
        .bind(r.document.as_str())
        .bind(micros(r.created_at))
}

/// Audit listings never return more than this many entries at once.
pub const AUDIT_PAGE_ENTRIES_MAX: i64 = 1000;

impl Tx {
    pub async fn insert_receipt(&mut self, r: &StoredReceipt) -> StoreResult<()> {
        match &mut self.batch {
            Some(batch) => batch.receipts.push(r.clone()),
            None => {
                let sql = format!(
                    "INSERT INTO receipts ({RECEIPT_COLUMNS}) VALUES {}",
                    tuples(self.engine, 1, width(RECEIPT_COLUMNS))
                );
                bind_receipt(sqlx::query(sqlx::AssertSqlSafe(sql)), r).execute(&mut *self.tx).await?;
            }
        }
        // Every signed document is a leaf of the log, by its SHA-256.
        let document: serde_json::Value =
            serde_json::from_str(&r.document).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let document_sha256 =
            baobao_domain::audit::document_sha256(&document).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let subjects = [r.family_id.as_str(), r.id.as_str(), r.subject_id.as_str()];
        let details = serde_json::json!({"kind": r.kind, "number": r.number});
        self.audit_entry(r.created_at, "system", "receipt.issued", &subjects, &details, Some(&document_sha256)).await?;
        Ok(())
    }

    /// Appends to the audit log: who did what to which ids, when (see
    /// `audit_entry`, which also records the document it produced).
    pub async fn audit(
        &mut self,
        at: Timestamp,
        actor: &str,
        action: &str,
        subject_ids: &[&str],
        details: &serde_json::Value,
    ) -> StoreResult<()> {
        self.audit_entry(at, actor, action, subject_ids, details, None).await
    }
}

impl Store {
    pub async fn receipt(&self, receipt_id: &ReceiptId) -> StoreResult<StoredReceipt> {
        read_receipt(&self.pool, receipt_id).await
    }

    /// The receipt with this number, if any (numbers are unique in practice:
    /// a date and 40 random bits; the oldest wins if two ever share one).
    pub async fn receipt_by_number(&self, number: &str) -> StoreResult<Option<StoredReceipt>> {
        let row = sqlx::query(
            "SELECT id, family_id, number, kind, subject_id, document, created_at FROM receipts WHERE number = $1 \
             ORDER BY created_at, seq LIMIT 1",
        )
        .bind(number)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(receipt).transpose()
    }

    pub async fn receipts_of(&self, family_id: &FamilyId) -> StoreResult<Vec<StoredReceipt>> {
        let rows = sqlx::query(
            "SELECT id, family_id, number, kind, subject_id, document, created_at FROM receipts WHERE family_id = $1 \
             ORDER BY created_at, seq",
        )
        .bind(family_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(receipt).collect()
    }

    /// Audit entries after `after_seq`, oldest first.
    pub async fn audit_entries(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject_ids, details FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit.clamp(1, AUDIT_PAGE_ENTRIES_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let subjects = text(row, "subject_ids")?;
                Ok(AuditEntry {
                    seq: integer(row, "seq")?,
                    at: instant(row, "at")?,
                    actor: text(row, "actor")?,
                    action: text(row, "action")?,
                    subject_ids: serde_json::from_str(&subjects).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    details: text(row, "details")?,
                })
            })
            .collect()
    }
}

impl Tx {
    /// A receipt as this transaction sees it (one it issued included).
    pub async fn receipt(&mut self, receipt_id: &ReceiptId) -> StoreResult<StoredReceipt> {
        read_receipt(&mut *self.tx, receipt_id).await
    }
}

async fn read_receipt<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    receipt_id: &ReceiptId,
) -> StoreResult<StoredReceipt> {
    let row =
        sqlx::query("SELECT id, family_id, number, kind, subject_id, document, created_at FROM receipts WHERE id = $1")
            .bind(receipt_id.as_str())
            .fetch_one(executor)
            .await?;
    receipt(&row)
}
