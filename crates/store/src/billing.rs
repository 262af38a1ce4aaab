//! Billing runs and small server-wide settings (the simulated clock).

use baobao_domain::ids::BillingRunId;
use jiff::Timestamp;
use sqlx::Row;

use crate::{Store, StoreResult, micros};

impl Store {
    pub async fn start_billing_run(
        &self,
        run_id: &BillingRunId,
        run_at: Timestamp,
        started_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO billing_runs (id, run_at, started_at) VALUES ($1, $2, $3)")
            .bind(run_id.as_str())
            .bind(micros(run_at))
            .bind(micros(started_at))
            .execute(&self.writes)
            .await?;
        self.durable().await?;
        Ok(())
    }

    pub async fn finish_billing_run(
        &self,
        run_id: &BillingRunId,
        finished_at: Timestamp,
        summary: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE billing_runs SET finished_at = $2, summary = $3 WHERE id = $1")
            .bind(run_id.as_str())
            .bind(micros(finished_at))
            .bind(summary)
            .execute(&self.writes)
            .await?;
        self.durable().await?;
        Ok(())
    }

    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(row) => Some(row.try_get("value")?),
            None => None,
        })
    }

    /// Moves an instant kept as a setting forward to `to`, never back, as
    /// one step for every process on the database (a write transaction on
    /// SQLite, the row's lock on PostgreSQL): `Err` with the instant it
    /// holds when `to` is earlier. Two servers setting the simulated clock
    /// at once cannot take it backwards.
    pub async fn advance_instant_setting(&self, name: &str, to: Timestamp) -> StoreResult<Result<(), Timestamp>> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(to.to_string())
            .execute(&mut *tx.tx)
            .await?;
        let lock = match self.engine {
            crate::Engine::Sqlite => "",
            crate::Engine::Postgres => " FOR UPDATE",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT value FROM settings WHERE name = $1{lock}")))
            .bind(name)
            .fetch_one(&mut *tx.tx)
            .await?;
        let held: String = row.try_get("value")?;
        let held: Timestamp =
            held.parse().map_err(|_| crate::StoreError::Corrupt(format!("setting {name}: not an instant")))?;
        if to < held {
            tx.rollback().await?;
            return Ok(Err(held));
        }
        sqlx::query("UPDATE settings SET value = $2 WHERE name = $1")
            .bind(name)
            .bind(to.to_string())
            .execute(&mut *tx.tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2")
            .bind(name)
            .bind(value)
            .execute(&self.writes)
            .await?;
        self.durable().await?;
        Ok(())
    }
}
