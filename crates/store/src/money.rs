//! The gateway's side of ledger entries: which refunds and fees are still
//! to be paid, were paid (and under which gateway reference), or failed.
//! Rows are claimed by a worker with a lease, like the outbox's, so any
//! number of workers (and servers) share them without paying anything twice
//! — and the gateway is idempotent by the entry's key besides.

use baobao_domain::ids::{FamilyId, LedgerEntryId, SubscriptionId};
use baobao_domain::ledger::LedgerKind;
use baobao_domain::money::{Currency, Money};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{
    Engine, LedgerEntry, Store, StoreError, StoreResult, Tx, id, instant, integer, micros, named, optional_instant,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MovementStatus {
    /// Written with the change; the gateway has not confirmed it yet.
    Pending,
    /// The gateway confirmed it; `gateway_reference` says under what.
    Succeeded,
    /// Every attempt failed: finance takes it from here.
    Failed,
}

impl MovementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MovementStatus::Pending => "pending",
            MovementStatus::Succeeded => "succeeded",
            MovementStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> StoreResult<MovementStatus> {
        match text {
            "pending" => Ok(MovementStatus::Pending),
            "succeeded" => Ok(MovementStatus::Succeeded),
            "failed" => Ok(MovementStatus::Failed),
            other => Err(StoreError::Corrupt(format!("money movement status {other:?}"))),
        }
    }
}

/// A ledger entry's money on its way through the gateway.
#[derive(Clone, Debug)]
pub struct MoneyMovement {
    pub entry_id: LedgerEntryId,
    pub family_id: FamilyId,
    pub subscription_id: SubscriptionId,
    /// The ledger entry's kind: a refund or a fee.
    pub kind: LedgerKind,
    pub amount: Money,
    /// The gateway's idempotency key: the entry's key.
    pub entry_key: String,
    pub note: String,
    /// The period a refunded charge was for, if any.
    pub period_start: Option<Timestamp>,
    pub status: MovementStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_error: Option<String>,
    pub gateway_reference: Option<String>,
    pub settled_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

const MOVEMENT_COLUMNS: &str = "m.entry_id, m.family_id, e.subscription_id, e.kind, e.amount_minor, e.currency, \
     e.entry_key, e.note, e.period_start, m.status, m.attempts, m.next_attempt_at, m.last_error, m.gateway_reference, m.settled_at, \
     m.created_at";

fn movement(row: &AnyRow) -> StoreResult<MoneyMovement> {
    let currency: String = row.try_get("currency")?;
    let currency = Currency::parse(&currency).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(MoneyMovement {
        entry_id: id(row, "entry_id")?,
        family_id: id(row, "family_id")?,
        subscription_id: id(row, "subscription_id")?,
        kind: named(row, "kind", LedgerKind::parse)?,
        amount: Money { amount_minor: integer(row, "amount_minor")?, currency },
        entry_key: row.try_get("entry_key")?,
        note: row.try_get("note")?,
        period_start: optional_instant(row, "period_start")?,
        status: MovementStatus::parse(&row.try_get::<String, _>("status")?)?,
        attempts: integer(row, "attempts")?,
        next_attempt_at: optional_instant(row, "next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        gateway_reference: row.try_get("gateway_reference")?,
        settled_at: optional_instant(row, "settled_at")?,
        created_at: instant(row, "created_at")?,
    })
}

fn select(condition: &str, tail: &str) -> String {
    format!(
        "SELECT {MOVEMENT_COLUMNS} FROM money_movements m JOIN ledger_entries e ON e.id = m.entry_id \
         WHERE {condition} {tail}"
    )
}

impl Tx {
    /// Appends a refund or fee to the ledger with its money `pending`, due
    /// at once. `false` (nothing written) when the entry exists already.
    pub async fn append_ledger_entry_to_pay(&mut self, entry: &LedgerEntry, now: Timestamp) -> StoreResult<bool> {
        if !self.append_ledger_entry(entry).await? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO money_movements (entry_id, family_id, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, 'pending', 0, $3, $3)",
        )
        .bind(entry.id.as_str())
        .bind(entry.family_id.as_str())
        .bind(micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }

    /// The next pending movement due at `now` (or the one named), leased
    /// until `lease_until` so that no other worker takes it meanwhile.
    pub async fn claim_movement(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        only: Option<&LedgerEntryId>,
    ) -> StoreResult<Option<MoneyMovement>> {
        let lock = match self.engine {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE OF m SKIP LOCKED",
        };
        let condition = if only.is_some() {
            "m.status = 'pending' AND m.next_attempt_at <= $1 AND m.entry_id = $2"
        } else {
            "m.status = 'pending' AND m.next_attempt_at <= $1 AND $2 = ''"
        };
        let sql = select(condition, &format!("ORDER BY m.next_attempt_at, m.entry_id LIMIT 1{lock}"));
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(micros(now))
            .bind(only.map(|e| e.as_str().to_owned()).unwrap_or_default())
            .fetch_optional(&mut *self.tx)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let claimed = movement(&row)?;
        sqlx::query("UPDATE money_movements SET next_attempt_at = $2 WHERE entry_id = $1")
            .bind(claimed.entry_id.as_str())
            .bind(micros(lease_until))
            .execute(&mut *self.tx)
            .await?;
        Ok(Some(claimed))
    }

    pub async fn movement_succeeded(
        &mut self,
        entry_id: &LedgerEntryId,
        reference: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE money_movements SET status = 'succeeded', attempts = attempts + 1, gateway_reference = $2, \
             settled_at = $3, next_attempt_at = NULL, last_error = NULL WHERE entry_id = $1 AND status = 'pending'",
        )
        .bind(entry_id.as_str())
        .bind(reference)
        .bind(micros(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// One attempt failed: tried again at `next`, or, with `None`, failed for good.
    pub async fn movement_attempt_failed(
        &mut self,
        entry_id: &LedgerEntryId,
        error: &str,
        next: Option<Timestamp>,
        at: Timestamp,
    ) -> StoreResult<()> {
        let (status, settled_at) = match next {
            Some(_) => ("pending", None),
            None => ("failed", Some(micros(at))),
        };
        sqlx::query(
            "UPDATE money_movements SET status = $2, attempts = attempts + 1, last_error = $3, next_attempt_at = $4, \
             settled_at = $5 WHERE entry_id = $1 AND status = 'pending'",
        )
        .bind(entry_id.as_str())
        .bind(status)
        .bind(error)
        .bind(next.map(micros))
        .bind(settled_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// A family's movements, oldest first.
    pub async fn movements_of(&self, family_id: &FamilyId) -> StoreResult<Vec<MoneyMovement>> {
        let sql = select("m.family_id = $1", "ORDER BY m.created_at, m.entry_id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(family_id.as_str()).fetch_all(&self.pool).await?;
        rows.iter().map(movement).collect()
    }

    /// Movements that failed for good, newest first: finance's queue.
    pub async fn failed_movements(&self, limit: u32) -> StoreResult<Vec<MoneyMovement>> {
        let sql = select("m.status = 'failed'", "ORDER BY m.settled_at DESC, m.entry_id LIMIT $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(i64::from(limit)).fetch_all(&self.pool).await?;
        rows.iter().map(movement).collect()
    }

    /// How many movements are pending: an operator's gauge.
    pub async fn pending_movements_count(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM money_movements WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?;
        integer(&row, "n")
    }
}
