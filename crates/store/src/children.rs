//! Children's data: integrators' API keys, encrypted child records,
//! exports and deletions. This module stores ciphertext only; keys and
//! plaintext never reach the database.

use baobao_domain::ids::{ChildId, DeletionId, ExportId, FamilyId, GuardianId, ReceiptId, RecordId};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{
    ApiKey, Child, Deletion, Export, ExportOutcome, Store, StoreResult, StoredRecord, Tx, id, instant, integer, micros,
    optional_id, optional_instant, text,
};

/// A page of records never holds more than this many.
pub const RECORDS_PAGE_MAX: i64 = 1000;

const RECORD_COLUMNS: &str = "id, family_id, child_id, service, kind, recorded_at, nonce, ciphertext, created_at";

fn record(row: &AnyRow) -> StoreResult<StoredRecord> {
    Ok(StoredRecord {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        child_id: id(row, "child_id")?,
        service: text(row, "service")?,
        kind: text(row, "kind")?,
        recorded_at: instant(row, "recorded_at")?,
        nonce: text(row, "nonce")?,
        ciphertext: text(row, "ciphertext")?,
        created_at: instant(row, "created_at")?,
    })
}

const EXPORT_COLUMNS: &str =
    "id, family_id, status, requested_by, file_sha256, size_bytes, error, created_at, finished_at, expires_at";

fn export(row: &AnyRow) -> StoreResult<Export> {
    Ok(Export {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        status: text(row, "status")?,
        requested_by: text(row, "requested_by")?,
        file_sha256: row.try_get("file_sha256")?,
        size_bytes: row.try_get("size_bytes")?,
        error: row.try_get("error")?,
        created_at: instant(row, "created_at")?,
        finished_at: optional_instant(row, "finished_at")?,
        expires_at: optional_instant(row, "expires_at")?,
    })
}

const DELETION_COLUMNS: &str = "id, family_id, service, cause, status, requested_at, due_at, key_destroyed_at, \
     certificate_id, completed_at, child_id";

fn deletion(row: &AnyRow) -> StoreResult<Deletion> {
    Ok(Deletion {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        service: text(row, "service")?,
        child_id: optional_id(row, "child_id")?,
        cause: text(row, "cause")?,
        status: text(row, "status")?,
        requested_at: instant(row, "requested_at")?,
        due_at: instant(row, "due_at")?,
        key_destroyed_at: optional_instant(row, "key_destroyed_at")?,
        certificate_id: optional_id(row, "certificate_id")?,
        completed_at: optional_instant(row, "completed_at")?,
    })
}

impl Tx {
    pub async fn insert_api_key(&mut self, key: &ApiKey) -> StoreResult<()> {
        sqlx::query("INSERT INTO api_keys (id, service, name, key_sha256, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(key.id.as_str())
            .bind(&key.service)
            .bind(&key.name)
            .bind(&key.key_sha256)
            .bind(micros(key.created_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn insert_record(&mut self, r: &StoredRecord) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO child_records ({RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(r.id.as_str())
        .bind(r.family_id.as_str())
        .bind(r.child_id.as_str())
        .bind(&r.service)
        .bind(&r.kind)
        .bind(micros(r.recorded_at))
        .bind(&r.nonce)
        .bind(&r.ciphertext)
        .bind(micros(r.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Deletes a family's records of one service (or all, with `*`);
    /// returns how many of each kind went.
    pub async fn delete_records(&mut self, family_id: &FamilyId, service: &str) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM child_records WHERE family_id = $1 AND ($2 = '*' OR service = $2) \
             GROUP BY kind ORDER BY kind",
        )
        .bind(family_id.as_str())
        .bind(service)
        .fetch_all(&mut *self.tx)
        .await?;
        let counts = rows.iter().map(|r| Ok((text(r, "kind")?, integer(r, "n")?))).collect::<StoreResult<Vec<_>>>()?;
        sqlx::query("DELETE FROM child_records WHERE family_id = $1 AND ($2 = '*' OR service = $2)")
            .bind(family_id.as_str())
            .bind(service)
            .execute(&mut *self.tx)
            .await?;
        Ok(counts)
    }

    pub async fn insert_export(&mut self, e: &Export) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO exports ({EXPORT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(e.id.as_str())
        .bind(e.family_id.as_str())
        .bind(&e.status)
        .bind(&e.requested_by)
        .bind(e.file_sha256.clone())
        .bind(e.size_bytes)
        .bind(e.error.clone())
        .bind(micros(e.created_at))
        .bind(e.finished_at.map(micros))
        .bind(e.expires_at.map(micros))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Marks the family's pending and ready exports `deleted` (a deletion
    /// covers their data); returns their ids, whose files and keys go next.
    pub async fn retire_exports_of(&mut self, family_id: &FamilyId) -> StoreResult<Vec<ExportId>> {
        let rows = sqlx::query(
            "UPDATE exports SET status = 'deleted' WHERE family_id = $1 AND status IN ('pending', 'ready') RETURNING id",
        )
        .bind(family_id.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|r| id(r, "id")).collect()
    }

    /// The pending deletion due longest at `now`, locked for this transaction.
    pub async fn claim_due_deletion(&mut self, now: Timestamp) -> StoreResult<Option<Deletion>> {
        let lock = match self.engine {
            crate::Engine::Sqlite => "",
            crate::Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELETION_COLUMNS} FROM deletions WHERE status = 'pending' AND due_at <= $1 ORDER BY due_at, id LIMIT 1{lock}"
        )))
        .bind(micros(now))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(deletion).transpose()
    }

    /// A deletion, locked until the transaction ends.
    pub async fn deletion_for_update(&mut self, deletion_id: &DeletionId) -> StoreResult<Deletion> {
        let lock = match self.engine {
            crate::Engine::Sqlite => "",
            crate::Engine::Postgres => " FOR UPDATE",
        };
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DELETION_COLUMNS} FROM deletions WHERE id = $1{lock}")))
                .bind(deletion_id.as_str())
                .fetch_one(&mut *self.tx)
                .await?;
        deletion(&row)
    }

    /// A family that subscribes again keeps its data: a retention deletion
    /// not yet performed is called off. Returns whether one was.
    pub async fn cancel_retention_deletion(&mut self, family_id: &FamilyId, service: &str) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE deletions SET status = 'called_off' WHERE family_id = $1 AND service = $2 AND status = 'pending' \
             AND cause = 'retention'",
        )
        .bind(family_id.as_str())
        .bind(service)
        .execute(&mut *self.tx)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Schedules a deletion unless one is already pending for the same data.
    pub async fn schedule_deletion(&mut self, d: &Deletion) -> StoreResult<bool> {
        let result = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO deletions ({DELETION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT DO NOTHING"
        )))
        .bind(d.id.as_str())
        .bind(d.family_id.as_str())
        .bind(&d.service)
        .bind(&d.cause)
        .bind(&d.status)
        .bind(micros(d.requested_at))
        .bind(micros(d.due_at))
        .bind(d.key_destroyed_at.map(micros))
        .bind(d.certificate_id.as_ref().map(|c| c.as_str().to_owned()))
        .bind(d.completed_at.map(micros))
        .bind(d.child_id.as_ref().map(|c| c.as_str().to_owned()))
        .execute(&mut *self.tx)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn mark_key_destroyed(&mut self, deletion_id: &DeletionId, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE deletions SET key_destroyed_at = COALESCE(key_destroyed_at, $2) WHERE id = $1")
            .bind(deletion_id.as_str())
            .bind(micros(at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn complete_deletion(
        &mut self,
        deletion_id: &DeletionId,
        certificate: &ReceiptId,
        at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE deletions SET status = 'done', certificate_id = $2, completed_at = $3 WHERE id = $1")
            .bind(deletion_id.as_str())
            .bind(certificate.as_str())
            .bind(micros(at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Reduces a guardian to what legal holds need: no name, no usable
    /// email, no sessions. Returns whether anything changed.
    pub async fn minimise_guardian(&mut self, guardian_id: &GuardianId) -> StoreResult<bool> {
        let placeholder = format!("deleted+{guardian_id}@invalid");
        let changed = sqlx::query(
            "UPDATE guardians SET name = '', email = $2, password_hash = '', phone = NULL, phone_digits = NULL \
                 WHERE id = $1 AND email <> $2",
        )
        .bind(guardian_id.as_str())
        .bind(&placeholder)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE principal_id = $1")
            .bind(guardian_id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(changed.rows_affected() > 0)
    }

    /// Removes a child's name and birth date, keeping the consent record.
    /// Holds the family until the transaction ends: `exclusive` for a
    /// re-keying of its data keys, shared for a record sealed under one, so
    /// that no record is sealed under a key being replaced (a no-op on
    /// SQLite, whose writer is one).
    pub async fn lock_family(&mut self, family_id: &FamilyId, exclusive: bool) -> StoreResult<()> {
        if self.engine == crate::Engine::Postgres {
            let query = if exclusive {
                "SELECT id FROM families WHERE id = $1 FOR UPDATE"
            } else {
                "SELECT id FROM families WHERE id = $1 FOR SHARE"
            };
            sqlx::query(query).bind(family_id.as_str()).fetch_one(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Whether a child is no longer on the family's account (removed: its
    /// profile was minimised).
    pub async fn child_removed(&mut self, child_id: &ChildId) -> StoreResult<bool> {
        let row = sqlx::query("SELECT name FROM children WHERE id = $1")
            .bind(child_id.as_str())
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(text(&row, "name")?.is_empty())
    }

    /// A deletion that has nothing left to do (another request did it).
    pub async fn call_off_deletion(&mut self, deletion_id: &DeletionId) -> StoreResult<()> {
        sqlx::query("UPDATE deletions SET status = 'called_off' WHERE id = $1 AND status = 'pending'")
            .bind(deletion_id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// How many deletions of one child of the family are in flight.
    pub async fn pending_child_deletions(&mut self, family_id: &FamilyId) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM deletions WHERE family_id = $1 AND child_id IS NOT NULL AND status = 'pending'",
        )
        .bind(family_id.as_str())
        .fetch_one(&mut *self.tx)
        .await?;
        integer(&row, "n")
    }

    /// A page of the family's records of `service` that are not `child`'s,
    /// after `after_id`, in id order: what a re-keying seals again.
    pub async fn records_to_reseal(
        &mut self,
        family_id: &FamilyId,
        service: &str,
        child_id: &ChildId,
        after_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<StoredRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM child_records WHERE family_id = $1 AND service = $2 AND child_id <> $3 \
             AND id > $4 ORDER BY id LIMIT $5"
        )))
        .bind(family_id.as_str())
        .bind(service)
        .bind(child_id.as_str())
        .bind(after_id)
        .bind(limit.clamp(1, RECORDS_PAGE_MAX))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(record).collect()
    }

    /// Replaces a record's ciphertext (sealed again under a new key).
    pub async fn reseal_record(&mut self, record_id: &RecordId, nonce: &str, ciphertext: &str) -> StoreResult<()> {
        sqlx::query("UPDATE child_records SET nonce = $2, ciphertext = $3 WHERE id = $1")
            .bind(record_id.as_str())
            .bind(nonce)
            .bind(ciphertext)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Deletes every record of one child; returns the count per kind.
    pub async fn delete_child_records(&mut self, child_id: &ChildId) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM child_records WHERE child_id = $1 GROUP BY kind ORDER BY kind",
        )
        .bind(child_id.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        let counts = rows.iter().map(|r| Ok((text(r, "kind")?, integer(r, "n")?))).collect::<StoreResult<Vec<_>>>()?;
        sqlx::query("DELETE FROM child_records WHERE child_id = $1")
            .bind(child_id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(counts)
    }

    /// Removes one child's name and birth date, keeping the consent record
    /// (who consented, when); returns whether anything changed.
    pub async fn minimise_child(&mut self, child_id: &ChildId) -> StoreResult<bool> {
        let changed = sqlx::query("UPDATE children SET name = '', birth_date = '' WHERE id = $1 AND name <> ''")
            .bind(child_id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(changed.rows_affected() > 0)
    }

    pub async fn minimise_children(&mut self, family_id: &FamilyId) -> StoreResult<i64> {
        let changed = sqlx::query("UPDATE children SET name = '', birth_date = '' WHERE family_id = $1 AND name <> ''")
            .bind(family_id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(i64::try_from(changed.rows_affected()).unwrap_or(i64::MAX))
    }

    /// The words guardians wrote when they cancelled (they may name a
    /// child); the category stays, for the provider's statistics.
    pub async fn minimise_cancellation_reasons(&mut self, family_id: &FamilyId) -> StoreResult<i64> {
        let changed =
            sqlx::query("UPDATE cancellations SET reason_text = NULL WHERE family_id = $1 AND reason_text IS NOT NULL")
                .bind(family_id.as_str())
                .execute(&mut *self.tx)
                .await?;
        Ok(i64::try_from(changed.rows_affected()).unwrap_or(i64::MAX))
    }

    /// Statuses of a family's subscriptions of one service (`*`: all) —
    /// read under this transaction, so a deletion sees a consistent picture.
    pub async fn live_subscriptions_of(&mut self, family_id: &FamilyId, service: &str) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM subscriptions s JOIN plans p ON p.id = s.plan_id \
             WHERE s.family_id = $1 AND ($2 = '*' OR p.service = $2) AND s.status NOT IN ('cancelled', 'expired')",
        )
        .bind(family_id.as_str())
        .bind(service)
        .fetch_one(&mut *self.tx)
        .await?;
        integer(&row, "n")
    }
}

impl Store {
    pub async fn api_key_by_hash(&self, key_sha256: &str) -> StoreResult<ApiKey> {
        let row = sqlx::query(
            "SELECT id, service, name, key_sha256, created_at, revoked_at FROM api_keys WHERE key_sha256 = $1 AND revoked_at IS NULL",
        )
        .bind(key_sha256)
        .fetch_one(&self.pool)
        .await?;
        Ok(ApiKey {
            id: id(&row, "id")?,
            service: text(&row, "service")?,
            name: text(&row, "name")?,
            key_sha256: text(&row, "key_sha256")?,
            created_at: instant(&row, "created_at")?,
            revoked_at: optional_instant(&row, "revoked_at")?,
        })
    }

    pub async fn child(&self, child_id: &ChildId) -> StoreResult<Child> {
        let row = sqlx::query(
            "SELECT id, family_id, name, birth_date, consent_by, consent_at, created_at FROM children WHERE id = $1",
        )
        .bind(child_id.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(Child {
            id: id(&row, "id")?,
            family_id: id(&row, "family_id")?,
            name: text(&row, "name")?,
            birth_date: text(&row, "birth_date")?,
            consent_by: id(&row, "consent_by")?,
            consent_at: instant(&row, "consent_at")?,
            created_at: instant(&row, "created_at")?,
        })
    }

    /// A child's records after the cursor `(recorded_at, id)`, oldest first.
    pub async fn records_of_child(
        &self,
        child_id: &ChildId,
        after: Option<(Timestamp, String)>,
        limit: i64,
    ) -> StoreResult<Vec<StoredRecord>> {
        let (after_at, after_id) = after.map(|(at, id)| (micros(at), id)).unwrap_or((i64::MIN, String::new()));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM child_records WHERE child_id = $1 \
             AND (recorded_at > $2 OR (recorded_at = $2 AND id > $3)) ORDER BY recorded_at, id LIMIT $4"
        )))
        .bind(child_id.as_str())
        .bind(after_at)
        .bind(after_id)
        .bind(limit.clamp(1, RECORDS_PAGE_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    /// The (child, kind) groups a family has records in, for the export.
    pub async fn record_groups(&self, family_id: &FamilyId) -> StoreResult<Vec<(ChildId, String, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT child_id, service, kind FROM child_records WHERE family_id = $1 ORDER BY child_id, service, kind",
        )
        .bind(family_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((id(r, "child_id")?, text(r, "service")?, text(r, "kind")?))).collect()
    }

    /// One page of a (child, service, kind) group after the cursor.
    pub async fn records_in_group(
        &self,
        child_id: &ChildId,
        service: &str,
        kind: &str,
        after: Option<(Timestamp, String)>,
        limit: i64,
    ) -> StoreResult<Vec<StoredRecord>> {
        let (after_at, after_id) = after.map(|(at, id)| (micros(at), id)).unwrap_or((i64::MIN, String::new()));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} FROM child_records WHERE child_id = $1 AND service = $2 AND kind = $3 \
             AND (recorded_at > $4 OR (recorded_at = $4 AND id > $5)) ORDER BY recorded_at, id LIMIT $6"
        )))
        .bind(child_id.as_str())
        .bind(service)
        .bind(kind)
        .bind(after_at)
        .bind(after_id)
        .bind(limit.clamp(1, RECORDS_PAGE_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    pub async fn export(&self, export_id: &ExportId) -> StoreResult<Export> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {EXPORT_COLUMNS} FROM exports WHERE id = $1")))
            .bind(export_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        export(&row)
    }

    /// Exports still marked pending (a server stopped while building them).
    pub async fn pending_exports(&self) -> StoreResult<Vec<ExportId>> {
        let rows = sqlx::query("SELECT id FROM exports WHERE status = 'pending' ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| id(r, "id")).collect()
    }

    pub async fn exports_of(&self, family_id: &FamilyId) -> StoreResult<Vec<Export>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPORT_COLUMNS} FROM exports WHERE family_id = $1 ORDER BY created_at DESC, id"
        )))
        .bind(family_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(export).collect()
    }

    /// Records how a pending export ended; `false` when it is no longer
    /// pending (a deletion retired it while it was being built).
    pub async fn finish_export(
        &self,
        export_id: &ExportId,
        outcome: ExportOutcome<'_>,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let (status, file, error, expires_at) = match outcome {
            ExportOutcome::Ready { sha256, size, expires_at } => {
                ("ready", Some((sha256, size)), None, Some(expires_at))
            }
            ExportOutcome::Delivered { sha256, size } => ("delivered", Some((sha256, size)), None, None),
            ExportOutcome::Failed { code } => ("failed", None, Some(code), None),
        };
        let done = sqlx::query(
            "UPDATE exports SET status = $2, file_sha256 = $3, size_bytes = $4, error = $5, finished_at = $6, expires_at = $7 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(export_id.as_str())
        .bind(status)
        .bind(file.map(|(sha, _)| sha.to_owned()))
        .bind(file.map(|(_, size)| size))
        .bind(error.map(str::to_owned))
        .bind(micros(at))
        .bind(expires_at.map(micros))
        .execute(&self.writes)
        .await?;
        self.durable().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ready exports whose time ran out at `at`.
    pub async fn expired_exports(&self, at: Timestamp) -> StoreResult<Vec<Export>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXPORT_COLUMNS} FROM exports WHERE status = 'ready' AND expires_at <= $1 ORDER BY expires_at, id"
        )))
        .bind(micros(at))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(export).collect()
    }

    /// Marks a ready export `expired` (its file and key are destroyed);
    /// `false` when it was not ready any more.
    pub async fn expire_export(&self, export_id: &ExportId) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE exports SET status = 'expired' WHERE id = $1 AND status = 'ready'")
            .bind(export_id.as_str())
            .execute(&self.writes)
            .await?;
        self.durable().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The ids of exports that may have a file and a key (pending or ready).
    pub async fn live_export_ids(&self) -> StoreResult<Vec<ExportId>> {
        let rows =
            sqlx::query("SELECT id FROM exports WHERE status IN ('pending', 'ready')").fetch_all(&self.pool).await?;
        rows.iter().map(|r| id(r, "id")).collect()
    }

    pub async fn deletion(&self, deletion_id: &DeletionId) -> StoreResult<Deletion> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DELETION_COLUMNS} FROM deletions WHERE id = $1")))
            .bind(deletion_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        deletion(&row)
    }

    /// A family's deletions of its data (whole services, not one child's),
    /// newest first.
    pub async fn deletions_of(&self, family_id: &FamilyId) -> StoreResult<Vec<Deletion>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELETION_COLUMNS} FROM deletions WHERE family_id = $1 AND child_id IS NULL \
             ORDER BY requested_at DESC, id"
        )))
        .bind(family_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(deletion).collect()
    }

    pub async fn pending_deletion(&self, family_id: &FamilyId, service: &str) -> StoreResult<Option<Deletion>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELETION_COLUMNS} FROM deletions WHERE family_id = $1 AND service = $2 AND status = 'pending' \
             AND child_id IS NULL"
        )))
        .bind(family_id.as_str())
        .bind(service)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(deletion).transpose()
    }

    /// The deletion of one child's data in flight, if any.
    pub async fn pending_child_deletion(&self, child_id: &ChildId) -> StoreResult<Option<Deletion>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELETION_COLUMNS} FROM deletions WHERE child_id = $1 AND status = 'pending'"
        )))
        .bind(child_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(deletion).transpose()
    }

    /// How many ledger entries and receipts a family has (what legal holds keep).
    pub async fn kept_counts(&self, family_id: &FamilyId) -> StoreResult<(i64, i64)> {
        let ledger = sqlx::query("SELECT COUNT(*) AS n FROM ledger_entries WHERE family_id = $1")
            .bind(family_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        let receipts = sqlx::query("SELECT COUNT(*) AS n FROM receipts WHERE family_id = $1")
            .bind(family_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok((integer(&ledger, "n")?, integer(&receipts, "n")?))
    }
}
