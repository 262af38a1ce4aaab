//! Subscriptions, the quotes given for them and their cancellation requests.

use baobao_domain::ids::{CancellationId, FamilyId, QuoteId, SubscriptionId};
use baobao_domain::money::Currency;
use baobao_domain::quote::CancelOption;
use baobao_domain::subscription::{CancellationChannel, CancellationStatus, SubscriptionStatus};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::{Query, ROWS_PER_STATEMENT, tuples, width};
use crate::{
    Cancellation, Engine, Share, Store, StoreError, StoreResult, StoredQuote, Subscription, Tx, id, instant, integer,
    micros, named, optional_id, optional_instant, text,
};

const SUBSCRIPTION_COLUMNS: &str = "id, family_id, plan_id, policy_version, policy_sha256, status, time_zone, \
     signed_up_at, anchor_at, current_position, current_period_start, current_period_end, current_period_paid, \
     last_charge_attempt_at, pending_cancellation_id, effective_at, ended_at, due_at, created_at, reminded_period_start";

fn subscription(row: &AnyRow) -> StoreResult<Subscription> {
    Ok(Subscription {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        plan_id: id(row, "plan_id")?,
        policy_version: integer(row, "policy_version")?,
        policy_sha256: text(row, "policy_sha256")?,
        status: named(row, "status", SubscriptionStatus::parse)?,
        time_zone: text(row, "time_zone")?,
        signed_up_at: instant(row, "signed_up_at")?,
        anchor_at: instant(row, "anchor_at")?,
        current_position: integer(row, "current_position")?,
        current_period_start: instant(row, "current_period_start")?,
        current_period_end: instant(row, "current_period_end")?,
        current_period_paid: integer(row, "current_period_paid")? != 0,
        last_charge_attempt_at: optional_instant(row, "last_charge_attempt_at")?,
        pending_cancellation_id: optional_id(row, "pending_cancellation_id")?,
        effective_at: optional_instant(row, "effective_at")?,
        ended_at: optional_instant(row, "ended_at")?,
        due_at: optional_instant(row, "due_at")?,
        created_at: instant(row, "created_at")?,
        reminded_period_start: optional_instant(row, "reminded_period_start")?,
    })
}

const CANCELLATION_COLUMNS: &str = "id, subscription_id, family_id, channel, option_kind, status, received_at, \
     effective_at, refund_minor, fee_minor, currency, quote_id, reason_category, reason_text, receipt_id, actor, \
     withdrawn_at, created_at";

fn cancellation(row: &AnyRow) -> StoreResult<Cancellation> {
    let currency = text(row, "currency")?;
    Ok(Cancellation {
        id: id(row, "id")?,
        subscription_id: id(row, "subscription_id")?,
        family_id: id(row, "family_id")?,
        channel: named(row, "channel", CancellationChannel::parse)?,
        option: named(row, "option_kind", CancelOption::parse)?,
        status: named(row, "status", CancellationStatus::parse)?,
        received_at: instant(row, "received_at")?,
        effective_at: instant(row, "effective_at")?,
        refund_minor: integer(row, "refund_minor")?,
        fee_minor: integer(row, "fee_minor")?,
        currency: Currency::parse(&currency).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        quote_id: optional_id(row, "quote_id")?,
        reason_category: row.try_get("reason_category")?,
        reason_text: row.try_get("reason_text")?,
        receipt_id: id(row, "receipt_id")?,
        actor: text(row, "actor")?,
        withdrawn_at: optional_instant(row, "withdrawn_at")?,
        created_at: instant(row, "created_at")?,
    })
}

/// The billing run's claim: the ids of up to `$3` subscriptions of `share`
/// due at `$1`, oldest due first, unclaimed at `$2`, read by the
/// `subscriptions_due` index; on PostgreSQL, skipping rows locked by
/// another worker's claim.
pub(crate) fn due_ids_sql(engine: Engine, share: Share) -> String {
    let lock = match engine {
        Engine::Sqlite => "",
        Engine::Postgres => " FOR UPDATE SKIP LOCKED",
    };
    let share = share.predicate();
    format!(
        "SELECT id FROM subscriptions WHERE due_at IS NOT NULL AND due_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until <= $2){share} ORDER BY due_at, id LIMIT $3{lock}"
    )
}

/// `due_ids_sql`'s subscriptions, claimed until `$4`.
fn claim_due_sql(engine: Engine, share: Share) -> String {
    format!(
        "UPDATE subscriptions SET claimed_until = $4 WHERE id IN ({}) RETURNING {SUBSCRIPTION_COLUMNS}",
        due_ids_sql(engine, share)
    )
}

/// What `update_many_sql` takes of each subscription, in `bind_update`'s order.
pub(crate) const UPDATE_COLUMNS: &str = "id, status, current_position, current_period_start, current_period_end, \
     current_period_paid, last_charge_attempt_at, pending_cancellation_id, effective_at, ended_at, due_at, \
     reminded_period_start";

/// Writes the values of each tuple after the first to the subscription
/// whose id is the first, and ends its billing claim.
pub(crate) fn update_many_sql(tuples: &str) -> String {
    format!(
        "WITH v ({UPDATE_COLUMNS}) AS (VALUES {tuples}) \
         UPDATE subscriptions SET status = v.status, current_position = v.current_position, \
         current_period_start = v.current_period_start, current_period_end = v.current_period_end, \
         current_period_paid = v.current_period_paid, last_charge_attempt_at = v.last_charge_attempt_at, \
         pending_cancellation_id = v.pending_cancellation_id, effective_at = v.effective_at, ended_at = v.ended_at, \
         due_at = v.due_at, reminded_period_start = v.reminded_period_start, claimed_until = NULL \
         FROM v WHERE subscriptions.id = v.id"
    )
}

/// `sql` with `{ids}` made the list of `ids`, bound.
fn with_ids(engine: Engine, sql: &str, ids: &[SubscriptionId]) -> Query {
    let sql = sql.replace("{ids}", &tuples(engine, 1, ids.len()));
    ids.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |query, id| query.bind(id.as_str()))
}

/// Binds what `update_many_sql` writes of a subscription.
pub(crate) fn bind_update(query: Query, s: &Subscription) -> Query {
    query
        .bind(s.id.as_str())
        .bind(s.status.as_str())
        .bind(s.current_position)
        .bind(micros(s.current_period_start))
        .bind(micros(s.current_period_end))
        .bind(bool_flag(s.current_period_paid))
        .bind(s.last_charge_attempt_at.map(micros))
        .bind(s.pending_cancellation_id.as_ref().map(|c| c.as_str()))
        .bind(s.effective_at.map(micros))
        .bind(s.ended_at.map(micros))
        .bind(s.due_at.map(micros))
        .bind(s.reminded_period_start.map(micros))
}

/// One cancellation, read by the pool or inside a transaction.
async fn fetch_cancellation<'e, E>(executor: E, cancellation_id: &CancellationId) -> StoreResult<Cancellation>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row =
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CANCELLATION_COLUMNS} FROM cancellations WHERE id = $1")))
            .bind(cancellation_id.as_str())
            .fetch_one(executor)
            .await?;
    cancellation(&row)
}

fn bool_flag(value: bool) -> i64 {
    i64::from(value)
}

impl Tx {
    pub async fn insert_subscription(&mut self, s: &Subscription) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
        )))
        .bind(s.id.as_str())
        .bind(s.family_id.as_str())
        .bind(s.plan_id.as_str())
        .bind(s.policy_version)
        .bind(&s.policy_sha256)
        .bind(s.status.as_str())
        .bind(&s.time_zone)
        .bind(micros(s.signed_up_at))
        .bind(micros(s.anchor_at))
        .bind(s.current_position)
        .bind(micros(s.current_period_start))
        .bind(micros(s.current_period_end))
        .bind(bool_flag(s.current_period_paid))
        .bind(s.last_charge_attempt_at.map(micros))
        .bind(s.pending_cancellation_id.as_ref().map(|c| c.as_str().to_owned()))
        .bind(s.effective_at.map(micros))
        .bind(s.ended_at.map(micros))
        .bind(s.due_at.map(micros))
        .bind(micros(s.created_at))
        .bind(s.reminded_period_start.map(micros))
        .execute(&mut *self.tx)
        .await?;
        self.changed_subscriptions = true;
        Ok(())
    }

    /// Reads a subscription and locks it until the transaction ends
    /// (PostgreSQL row lock; SQLite's write transaction already excludes
    /// every other writer).
    pub async fn subscription_for_update(&mut self, subscription_id: &SubscriptionId) -> StoreResult<Subscription> {
        let lock = match self.engine {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1{lock}"
        )))
        .bind(subscription_id.as_str())
        .fetch_one(&mut *self.tx)
        .await?;
        subscription(&row)
    }

    /// Writes every field that changes over a subscription's life (in a
    /// batch, at commit).
    pub async fn update_subscription(&mut self, s: &Subscription) -> StoreResult<()> {
        self.changed_subscriptions = true;
        if let Some(batch) = &mut self.batch {
            // Written once, as last written.
            batch.subscriptions.retain(|kept| kept.id != s.id);
            batch.subscriptions.push(s.clone());
            return Ok(());
        }
        let result = bind_update(
            sqlx::query(sqlx::AssertSqlSafe(update_many_sql(&tuples(self.engine, 1, width(UPDATE_COLUMNS))))),
            s,
        )
        .execute(&mut *self.tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Claims up to `limit` subscriptions of `share` due at `now`, oldest
    /// due first, that no other billing worker holds a claim on at
    /// `wall_now`, and holds them until `claimed_until` (wall-clock time):
    /// committed at once, a claim keeps other workers off them while the
    /// gateway is asked with no transaction open, and runs out by itself
    /// if this worker dies. On PostgreSQL, rows other workers are claiming
    /// meanwhile are skipped. Writing a subscription's new state ends its
    /// claim (`update_subscription`).
    pub async fn claim_due_subscriptions(
        &mut self,
        now: Timestamp,
        share: Share,
        limit: usize,
        wall_now: Timestamp,
        claimed_until: Timestamp,
    ) -> StoreResult<Vec<Subscription>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(claim_due_sql(self.engine, share)))
            .bind(micros(now))
            .bind(micros(wall_now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(micros(claimed_until))
            .fetch_all(&mut *self.tx)
            .await?;
        let mut claimed = rows.iter().map(subscription).collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by(|a, b| (a.due_at, a.id.as_str()).cmp(&(b.due_at, b.id.as_str())));
        Ok(claimed)
    }

    /// Reads subscriptions and locks them until the transaction ends, in
    /// `id` order (as `subscription_for_update`); ids not found are left out.
    pub async fn subscriptions_for_update(&mut self, ids: &[SubscriptionId]) -> StoreResult<Vec<Subscription>> {
        let lock = match self.engine {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        };
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id IN {{ids}} ORDER BY id{lock}");
            for row in with_ids(self.engine, &sql, chunk).fetch_all(&mut *self.tx).await? {
                found.push(subscription(&row)?);
            }
        }
        Ok(found)
    }

    /// Ends the billing claims on `ids` (those a step did not write).
    pub async fn release_claims(&mut self, ids: &[SubscriptionId]) -> StoreResult<()> {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let sql = "UPDATE subscriptions SET claimed_until = NULL WHERE id IN {ids}";
            with_ids(self.engine, sql, chunk).execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    pub async fn insert_quote(&mut self, quote: &StoredQuote) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO quotes (id, subscription_id, received_at, valid_until, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(quote.id.as_str())
        .bind(quote.subscription_id.as_str())
        .bind(micros(quote.received_at))
        .bind(micros(quote.valid_until))
        .bind(&quote.body)
        .bind(micros(quote.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Fails with `Conflict` when the subscription already has a
    /// cancellation in flight.
    pub async fn insert_cancellation(&mut self, c: &Cancellation) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO cancellations ({CANCELLATION_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        )))
        .bind(c.id.as_str())
        .bind(c.subscription_id.as_str())
        .bind(c.family_id.as_str())
        .bind(c.channel.as_str())
        .bind(c.option.as_str())
        .bind(c.status.as_str())
        .bind(micros(c.received_at))
        .bind(micros(c.effective_at))
        .bind(c.refund_minor)
        .bind(c.fee_minor)
        .bind(c.currency.as_str())
        .bind(c.quote_id.as_ref().map(|q| q.as_str().to_owned()))
        .bind(c.reason_category.clone())
        .bind(c.reason_text.clone())
        .bind(c.receipt_id.as_str())
        .bind(&c.actor)
        .bind(c.withdrawn_at.map(micros))
        .bind(micros(c.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn cancellation(&mut self, cancellation_id: &CancellationId) -> StoreResult<Cancellation> {
        fetch_cancellation(&mut *self.tx, cancellation_id).await
    }

    pub async fn set_cancellation_status(
        &mut self,
        cancellation_id: &CancellationId,
        status: CancellationStatus,
        withdrawn_at: Option<Timestamp>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE cancellations SET status = $2, withdrawn_at = COALESCE($3, withdrawn_at) WHERE id = $1")
            .bind(cancellation_id.as_str())
            .bind(status.as_str())
            .bind(withdrawn_at.map(micros))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

impl Store {
    pub async fn subscription(&self, subscription_id: &SubscriptionId) -> StoreResult<Subscription> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1")))
                .bind(subscription_id.as_str())
                .fetch_one(&self.pool)
                .await?;
        subscription(&row)
    }

    pub async fn subscriptions_of(&self, family_id: &FamilyId) -> StoreResult<Vec<Subscription>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE family_id = $1 ORDER BY created_at, seq"
        )))
        .bind(family_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscription).collect()
    }

    /// The family's running subscription to a service — the entitlement
    /// check, one indexed read (`subscriptions_family`, then the plan by key).
    pub async fn live_subscription_for(
        &self,
        family_id: &FamilyId,
        service: &str,
    ) -> StoreResult<Option<Subscription>> {
        static QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let columns = SUBSCRIPTION_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
            format!(
                "SELECT {columns} FROM subscriptions s JOIN plans p ON p.id = s.plan_id \
                 WHERE s.family_id = $1 AND p.service = $2 AND s.status NOT IN ('cancelled', 'expired') \
                 ORDER BY s.current_period_end DESC LIMIT 1"
            )
        });
        let row = sqlx::query(sqlx::AssertSqlSafe(QUERY.as_str()))
            .bind(family_id.as_str())
            .bind(service)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(subscription).transpose()
    }

    /// How many subscriptions are due at `now` (for progress reports).
    pub async fn due_count(&self, now: Timestamp) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM subscriptions WHERE due_at IS NOT NULL AND due_at <= $1")
            .bind(micros(now))
            .fetch_one(&self.pool)
            .await?;
        integer(&row, "n")
    }

    /// When the first claim still held at `wall_now` on a subscription of
    /// `share` due at `now` runs out, if any is held: what a worker that
    /// found nothing to claim waits for before it is done.
    pub async fn next_claim_end(
        &self,
        now: Timestamp,
        share: Share,
        wall_now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT MIN(claimed_until) AS until FROM subscriptions WHERE due_at IS NOT NULL AND due_at <= $1 \
             AND claimed_until > $2{}",
            share.predicate()
        )))
        .bind(micros(now))
        .bind(micros(wall_now))
        .fetch_one(&self.pool)
        .await?;
        optional_instant(&row, "until")
    }

    pub async fn quote(&self, quote_id: &QuoteId) -> StoreResult<StoredQuote> {
        let row = sqlx::query(
            "SELECT id, subscription_id, received_at, valid_until, body, created_at FROM quotes WHERE id = $1",
        )
        .bind(quote_id.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(StoredQuote {
            id: id(&row, "id")?,
            subscription_id: id(&row, "subscription_id")?,
            received_at: instant(&row, "received_at")?,
            valid_until: instant(&row, "valid_until")?,
            body: text(&row, "body")?,
            created_at: instant(&row, "created_at")?,
        })
    }

    pub async fn cancellation(&self, cancellation_id: &CancellationId) -> StoreResult<Cancellation> {
        fetch_cancellation(&self.pool, cancellation_id).await
    }

    pub async fn cancellations_of(&self, subscription_id: &SubscriptionId) -> StoreResult<Vec<Cancellation>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CANCELLATION_COLUMNS} FROM cancellations WHERE subscription_id = $1 ORDER BY created_at, seq"
        )))
        .bind(subscription_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(cancellation).collect()
    }
}
