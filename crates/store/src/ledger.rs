//! The ledger: append-only money movements. No UPDATE or DELETE statement
//! touches this table anywhere; a correction is a new entry.

use baobao_domain::ids::{FamilyId, SubscriptionId};
use baobao_domain::ledger::LedgerKind;
use baobao_domain::money::Currency;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{
    LedgerEntry, Store, StoreError, StoreResult, Tx, id, instant, integer, micros, named, optional_instant, text,
};

const LEDGER_COLUMNS: &str = "id, family_id, subscription_id, kind, amount_minor, currency, period_start, period_end, \
     entry_key, gateway_reference, note, created_at";

fn entry(row: &AnyRow) -> StoreResult<LedgerEntry> {
    let currency = text(row, "currency")?;
    Ok(LedgerEntry {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        subscription_id: id(row, "subscription_id")?,
        kind: named(row, "kind", LedgerKind::parse)?,
        amount_minor: integer(row, "amount_minor")?,
        currency: Currency::parse(&currency).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        period_start: optional_instant(row, "period_start")?,
        period_end: optional_instant(row, "period_end")?,
        entry_key: text(row, "entry_key")?,
        gateway_reference: row.try_get("gateway_reference")?,
        note: text(row, "note")?,
        created_at: instant(row, "created_at")?,
    })
}

/// Net money per kind on one subscription, in minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    pub charges_minor: i64,
    pub refunds_minor: i64,
    pub fees_minor: i64,
    pub credits_minor: i64,
}

impl LedgerTotals {
    /// What the guardian has paid and not had back.
    pub fn net_paid_minor(&self) -> i64 {
        self.charges_minor + self.fees_minor - self.refunds_minor - self.credits_minor
    }
}

impl Tx {
    /// Appends an entry. Returns `false` (and writes nothing) when an entry
    /// with the same `entry_key` exists: retries and re-runs are no-ops.
    /// A second charge for one (subscription, period) under another key
    /// fails with `Conflict` on `ledger_one_charge_per_period`.
    pub async fn append_ledger_entry(&mut self, e: &LedgerEntry) -> StoreResult<bool> {
        let result = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ledger_entries ({LEDGER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (entry_key) DO NOTHING"
        )))
        .bind(e.id.as_str())
        .bind(e.family_id.as_str())
        .bind(e.subscription_id.as_str())
        .bind(e.kind.as_str())
        .bind(e.amount_minor)
        .bind(e.currency.as_str())
        .bind(e.period_start.map(micros))
        .bind(e.period_end.map(micros))
        .bind(&e.entry_key)
        .bind(e.gateway_reference.clone())
        .bind(&e.note)
        .bind(micros(e.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn ledger_totals(&mut self, subscription_id: &SubscriptionId) -> StoreResult<LedgerTotals> {
        totals(&mut *self.tx, subscription_id).await
    }

    pub async fn ledger_of_subscription(&mut self, subscription_id: &SubscriptionId) -> StoreResult<Vec<LedgerEntry>> {
        entries_of_subscription(&mut *self.tx, subscription_id).await
    }

    /// The charge for the period starting at `period_start`, if any.
    pub async fn charge_for_period(
        &mut self,
        subscription_id: &SubscriptionId,
        period_start: jiff::Timestamp,
    ) -> StoreResult<Option<LedgerEntry>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger_entries WHERE subscription_id = $1 AND kind = 'charge' AND period_start = $2"
        )))
        .bind(subscription_id.as_str())
        .bind(micros(period_start))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(entry).transpose()
    }
}

async fn totals<'e, E>(executor: E, subscription_id: &SubscriptionId) -> StoreResult<LedgerTotals>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    // SUM over BIGINT is NUMERIC on PostgreSQL: cast back so both engines
    // answer with a 64-bit integer.
    let rows = sqlx::query(
        "SELECT kind, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS total FROM ledger_entries \
         WHERE subscription_id = $1 GROUP BY kind",
    )
    .bind(subscription_id.as_str())
    .fetch_all(executor)
    .await?;
    let mut totals = LedgerTotals::default();
    for row in rows {
        let total = integer(&row, "total")?;
        match named(&row, "kind", LedgerKind::parse)? {
            LedgerKind::Charge => totals.charges_minor = total,
            LedgerKind::Refund => totals.refunds_minor = total,
            LedgerKind::Fee => totals.fees_minor = total,
            LedgerKind::Credit => totals.credits_minor = total,
        }
    }
    Ok(totals)
}

/// Statement pages never exceed this many entries.
pub const STATEMENT_ENTRIES_MAX: i64 = 10_000;

impl Store {
    pub async fn ledger_entry(&self, entry_id: &baobao_domain::ids::LedgerEntryId) -> StoreResult<LedgerEntry> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {LEDGER_COLUMNS} FROM ledger_entries WHERE id = $1")))
                .bind(entry_id.as_str())
                .fetch_one(&self.pool)
                .await?;
        entry(&row)
    }

    pub async fn ledger_totals(&self, subscription_id: &SubscriptionId) -> StoreResult<LedgerTotals> {
        totals(&self.pool, subscription_id).await
    }

    /// A family's entries, oldest first.
    pub async fn statement(&self, family_id: &FamilyId) -> StoreResult<Vec<LedgerEntry>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LEDGER_COLUMNS} FROM ledger_entries WHERE family_id = $1 ORDER BY created_at, seq LIMIT $2"
        )))
        .bind(family_id.as_str())
        .bind(STATEMENT_ENTRIES_MAX)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }

    pub async fn ledger_of_subscription(&self, subscription_id: &SubscriptionId) -> StoreResult<Vec<LedgerEntry>> {
        entries_of_subscription(&self.pool, subscription_id).await
    }
}

/// A subscription's entries, oldest first, read by the pool or inside a transaction.
async fn entries_of_subscription<'e, E>(executor: E, subscription_id: &SubscriptionId) -> StoreResult<Vec<LedgerEntry>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {LEDGER_COLUMNS} FROM ledger_entries WHERE subscription_id = $1 ORDER BY created_at, seq"
    )))
    .bind(subscription_id.as_str())
    .fetch_all(executor)
    .await?;
    rows.iter().map(entry).collect()
}
