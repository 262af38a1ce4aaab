//! The outbox: messages written with the change that causes them and
//! delivered afterwards, at least once, by whichever worker claims them.

use baobao_domain::ids::FamilyId;
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::sql::{Query, tuples, width};
use crate::{
    Engine, OutboxMessage, Store, StoreResult, Tx, instant, integer, micros, optional_id, optional_instant, text,
};

pub(crate) const OUTBOX_COLUMNS: &str = "id, channel, event_key, family_id, recipient, locale, template, payload, status, attempts, \
     next_attempt_at, last_error, created_at, sent_at";

/// Binds a message's `OUTBOX_COLUMNS`.
pub(crate) fn bind_message(query: Query, m: &OutboxMessage) -> Query {
    query
        .bind(m.id.as_str())
        .bind(m.channel.as_str())
        .bind(m.event_key.as_str())
        .bind(m.family_id.as_ref().map(|f| f.as_str()))
        .bind(m.recipient.as_str())
        .bind(m.locale.as_str())
        .bind(m.template.as_str())
        .bind(m.payload.as_str())
        .bind(m.status.as_str())
        .bind(m.attempts)
        .bind(micros(m.next_attempt_at))
        .bind(m.last_error.as_deref())
        .bind(micros(m.created_at))
        .bind(m.sent_at.map(micros))
}

fn message(row: &AnyRow) -> StoreResult<OutboxMessage> {
    Ok(OutboxMessage {
        id: text(row, "id")?,
        channel: text(row, "channel")?,
        event_key: text(row, "event_key")?,
        family_id: optional_id(row, "family_id")?,
        recipient: text(row, "recipient")?,
        locale: text(row, "locale")?,
        template: text(row, "template")?,
        payload: text(row, "payload")?,
        status: text(row, "status")?,
        attempts: integer(row, "attempts")?,
        next_attempt_at: instant(row, "next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: instant(row, "created_at")?,
        sent_at: optional_instant(row, "sent_at")?,
    })
}

/// How a message leaves the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }
}

impl Tx {
    /// Queues a message; `false` when one for the same event is queued
    /// already. In a batch it is written at commit (`true`; one already
    /// queued for the same event is kept then as now).
    pub async fn enqueue(&mut self, m: &OutboxMessage) -> StoreResult<bool> {
        if let Some(batch) = &mut self.batch {
            batch.outbox.push(m.clone());
            return Ok(true);
        }
        let sql = format!(
            "INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES {} ON CONFLICT (event_key) DO NOTHING",
            tuples(self.engine, 1, width(OUTBOX_COLUMNS))
        );
        let result = bind_message(sqlx::query(sqlx::AssertSqlSafe(sql)), m).execute(&mut *self.tx).await?;
        Ok(result.rows_affected() == 1)
    }

    /// The message on one of `channels` due longest at `now`, locked for
    /// this transaction (other workers skip it on PostgreSQL).
    pub async fn claim_due_message(
        &mut self,
        now: Timestamp,
        channels: &[Channel],
    ) -> StoreResult<Option<OutboxMessage>> {
        let lock = match self.engine {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        if channels.is_empty() {
            return Ok(None);
        }
        let channels: Vec<String> = channels.iter().map(|c| format!("'{}'", c.as_str())).collect();
        let channels = channels.join(", ");
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND channel IN ({channels}) ORDER BY next_attempt_at, id LIMIT 1{lock}"
        )))
        .bind(micros(now))
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(message).transpose()
    }

    /// Holds a claimed message for `until`, so the sending happens outside
    /// any transaction and no other worker takes it meanwhile.
    pub async fn lease_message(&mut self, id: &str, until: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE outbox SET next_attempt_at = $2 WHERE id = $1")
            .bind(id)
            .bind(micros(until))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Delivered: an email address is no longer kept (a webhook's
    /// recipient is an endpoint id, kept for the delivery log).
    pub async fn mark_delivered(&mut self, id: &str, at: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, \
             recipient = CASE WHEN channel = 'email' THEN '' ELSE recipient END WHERE id = $1",
        )
        .bind(id)
        .bind(micros(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Not delivered this time: try again at `next_attempt_at`, or give up.
    pub async fn mark_attempt_failed(
        &mut self,
        id: &str,
        next_attempt_at: Option<Timestamp>,
        error: &str,
    ) -> StoreResult<()> {
        let (status, next) = match next_attempt_at {
            Some(at) => ("pending", Some(micros(at))),
            None => ("failed", None),
        };
        sqlx::query(
            "UPDATE outbox SET status = $2, attempts = attempts + 1, next_attempt_at = COALESCE($3, next_attempt_at), \
             last_error = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(next)
        .bind(error)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}

impl Store {
    /// A family's messages, newest first: the delivery log staff can see.
    pub async fn outbox_of(&self, family_id: &FamilyId) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE family_id = $1 ORDER BY created_at DESC, seq DESC"
        )))
        .bind(family_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message).collect()
    }
}

impl Store {
    /// Deliveries to one webhook endpoint, newest first: its delivery log.
    pub async fn deliveries_to(&self, endpoint_id: &str, limit: u32) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE channel = 'webhook' AND recipient = $1 \
             ORDER BY created_at DESC, seq DESC LIMIT {limit}"
        )))
        .bind(endpoint_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(message).collect()
    }
}
