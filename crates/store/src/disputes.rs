//! Disputes, their timelines and their evidence files' hashes.

use baobao_domain::dispute::{DisputeKind, DisputeLevel, DisputeOutcome};
use baobao_domain::ids::{CancellationId, DisputeId, FamilyId, LedgerEntryId, ReceiptId, SubscriptionId};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Engine, Store, StoreResult, Tx, id, instant, integer, micros, named, optional_id, optional_instant, text};

/// Disputes listed at once, in a queue or a family's list.
pub const DISPUTES_LISTED_MAX: u32 = 500;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisputeStatus {
    Open,
    Resolved,
}

impl DisputeStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DisputeStatus::Open => "open",
            DisputeStatus::Resolved => "resolved",
        }
    }

    fn parse(text: &str) -> Option<DisputeStatus> {
        match text {
            "open" => Some(DisputeStatus::Open),
            "resolved" => Some(DisputeStatus::Resolved),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Dispute {
    pub id: DisputeId,
    pub family_id: FamilyId,
    pub kind: DisputeKind,
    pub subscription_id: Option<SubscriptionId>,
    pub ledger_entry_id: Option<LedgerEntryId>,
    pub cancellation_id: Option<CancellationId>,
    pub receipt_number: Option<String>,
    pub tracking_number: Option<String>,
    /// The guardian's words; empty once the family's personal data went.
    pub description: String,
    /// Where to write when no guardian account can be reached (filed by a
    /// receipt's holder after the account closed).
    pub contact_email: Option<String>,
    pub locale: String,
    /// `portal`, `api`, `support` or `receipt_holder`.
    pub channel: String,
    pub filed_by: String,
    pub forwarded_by: Option<String>,
    pub level: DisputeLevel,
    pub status: DisputeStatus,
    pub outcome: Option<DisputeOutcome>,
    pub settled_automatically: bool,
    pub level_since: Timestamp,
    pub first_response_due: Timestamp,
    pub resolution_due: Timestamp,
    pub first_responded_at: Option<Timestamp>,
    pub deadlines_missed: i64,
    pub receipt_id: ReceiptId,
    pub opened_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

const DISPUTE_COLUMNS: &str = "id, family_id, kind, subscription_id, ledger_entry_id, cancellation_id, \
     receipt_number, tracking_number, description, contact_email, locale, channel, filed_by, forwarded_by, level, \
     status, outcome, settled_automatically, level_since, first_response_due, resolution_due, first_responded_at, \
     deadlines_missed, receipt_id, opened_at, resolved_at";

fn dispute(row: &AnyRow) -> StoreResult<Dispute> {
    let outcome: Option<String> = row.try_get("outcome")?;
    Ok(Dispute {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        kind: named(row, "kind", DisputeKind::parse)?,
        subscription_id: optional_id(row, "subscription_id")?,
        ledger_entry_id: optional_id(row, "ledger_entry_id")?,
        cancellation_id: optional_id(row, "cancellation_id")?,
        receipt_number: row.try_get("receipt_number")?,
        tracking_number: row.try_get("tracking_number")?,
        description: text(row, "description")?,
        contact_email: row.try_get("contact_email")?,
        locale: text(row, "locale")?,
        channel: text(row, "channel")?,
        filed_by: text(row, "filed_by")?,
        forwarded_by: row.try_get("forwarded_by")?,
        level: named(row, "level", DisputeLevel::parse)?,
        status: named(row, "status", DisputeStatus::parse)?,
        outcome: match outcome {
            Some(text) => Some(
                DisputeOutcome::parse(&text)
                    .ok_or_else(|| crate::StoreError::Corrupt(format!("outcome: unknown value {text:?}")))?,
            ),
            None => None,
        },
        settled_automatically: integer(row, "settled_automatically")? != 0,
        level_since: instant(row, "level_since")?,
        first_response_due: instant(row, "first_response_due")?,
        resolution_due: instant(row, "resolution_due")?,
        first_responded_at: optional_instant(row, "first_responded_at")?,
        deadlines_missed: integer(row, "deadlines_missed")?,
        receipt_id: id(row, "receipt_id")?,
        opened_at: instant(row, "opened_at")?,
        resolved_at: optional_instant(row, "resolved_at")?,
    })
}

/// One step on a dispute's timeline.
#[derive(Clone, Debug)]
pub struct DisputeEvent {
    pub seq: i64,
    pub dispute_id: DisputeId,
    pub at: Timestamp,
    pub actor: String,
    /// `filed`, `records_checked`, `refunded`, `message`, `evidence_added`,
    /// `escalated`, `deadline_missed`, `resolved`.
    pub kind: String,
    /// Ids and statuses, as JSON; never personal data.
    pub facts: String,
    /// A person's words (a message, a decision's reasons); emptied with
    /// the family's personal data.
    pub text: String,
}

fn event(row: &AnyRow) -> StoreResult<DisputeEvent> {
    Ok(DisputeEvent {
        seq: integer(row, "seq")?,
        dispute_id: id(row, "dispute_id")?,
        at: instant(row, "at")?,
        actor: text(row, "actor")?,
        kind: text(row, "kind")?,
        facts: text(row, "facts")?,
        text: text(row, "text")?,
    })
}

/// An evidence file of a dispute, by its hash.
#[derive(Clone, Debug)]
pub struct DisputeEvidence {
    pub dispute_id: DisputeId,
    pub sha256: String,
    pub family_id: FamilyId,
    pub content_type: String,
    pub bytes: i64,
    pub added_by: String,
    pub added_at: Timestamp,
    pub removed_at: Option<Timestamp>,
}

fn evidence(row: &AnyRow) -> StoreResult<DisputeEvidence> {
    Ok(DisputeEvidence {
        dispute_id: id(row, "dispute_id")?,
        sha256: text(row, "sha256")?,
        family_id: id(row, "family_id")?,
        content_type: text(row, "content_type")?,
        bytes: integer(row, "bytes")?,
        added_by: text(row, "added_by")?,
        added_at: instant(row, "added_at")?,
        removed_at: optional_instant(row, "removed_at")?,
    })
}

const EVIDENCE_COLUMNS: &str = "dispute_id, sha256, family_id, content_type, bytes, added_by, added_at, removed_at";

/// The figures of one month's disputes for the compliance report: one row
/// per (kind, outcome or open) with how many, how many settled from the
/// records, and the deadlines missed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisputeCount {
    pub kind: DisputeKind,
    pub outcome: Option<DisputeOutcome>,
    pub disputes: i64,
    pub settled_automatically: i64,
    pub deadlines_missed: i64,
}

/// A dispute's row, its timeline and its evidence as this transaction sees
/// them (what it wrote included): for an answer built before the commit.
impl Tx {
    pub async fn dispute(&mut self, dispute_id: &DisputeId) -> StoreResult<Dispute> {
        read_dispute(&mut *self.tx, dispute_id).await
    }

    pub async fn dispute_events(&mut self, dispute_id: &DisputeId) -> StoreResult<Vec<DisputeEvent>> {
        read_dispute_events(&mut *self.tx, dispute_id).await
    }

    pub async fn dispute_evidence(&mut self, dispute_id: &DisputeId) -> StoreResult<Vec<DisputeEvidence>> {
        read_dispute_evidence(&mut *self.tx, dispute_id).await
    }
}

async fn read_dispute<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    dispute_id: &DisputeId,
) -> StoreResult<Dispute> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DISPUTE_COLUMNS} FROM disputes WHERE id = $1")))
        .bind(dispute_id.as_str())
        .fetch_one(executor)
        .await?;
    dispute(&row)
}

async fn read_dispute_events<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    dispute_id: &DisputeId,
) -> StoreResult<Vec<DisputeEvent>> {
    let rows = sqlx::query(
        "SELECT seq, dispute_id, at, actor, kind, facts, text FROM dispute_events WHERE dispute_id = $1 ORDER BY seq",
    )
    .bind(dispute_id.as_str())
    .fetch_all(executor)
    .await?;
    rows.iter().map(event).collect()
}

async fn read_dispute_evidence<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    dispute_id: &DisputeId,
) -> StoreResult<Vec<DisputeEvidence>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {EVIDENCE_COLUMNS} FROM dispute_evidence WHERE dispute_id = $1 ORDER BY added_at, sha256"
    )))
    .bind(dispute_id.as_str())
    .fetch_all(executor)
    .await?;
    rows.iter().map(evidence).collect()
}

impl Tx {
    pub async fn insert_dispute(&mut self, d: &Dispute) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO disputes ({DISPUTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"
        )))
        .bind(d.id.as_str())
        .bind(d.family_id.as_str())
        .bind(d.kind.as_str())
        .bind(d.subscription_id.as_ref().map(|i| i.as_str().to_owned()))
        .bind(d.ledger_entry_id.as_ref().map(|i| i.as_str().to_owned()))
        .bind(d.cancellation_id.as_ref().map(|i| i.as_str().to_owned()))
        .bind(d.receipt_number.clone())
        .bind(d.tracking_number.clone())
        .bind(&d.description)
        .bind(d.contact_email.clone())
        .bind(&d.locale)
        .bind(&d.channel)
        .bind(&d.filed_by)
        .bind(d.forwarded_by.clone())
        .bind(d.level.as_str())
        .bind(d.status.as_str())
        .bind(d.outcome.map(|o| o.as_str()))
        .bind(i64::from(d.settled_automatically))
        .bind(micros(d.level_since))
        .bind(micros(d.first_response_due))
        .bind(micros(d.resolution_due))
        .bind(d.first_responded_at.map(micros))
        .bind(d.deadlines_missed)
        .bind(d.receipt_id.as_str())
        .bind(micros(d.opened_at))
        .bind(d.resolved_at.map(micros))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Reads a dispute and locks it until the transaction ends.
    pub async fn dispute_for_update(&mut self, dispute_id: &DisputeId) -> StoreResult<Dispute> {
        let lock = match self.engine {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE",
        };
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {DISPUTE_COLUMNS} FROM disputes WHERE id = $1{lock}")))
                .bind(dispute_id.as_str())
                .fetch_one(&mut *self.tx)
                .await?;
        dispute(&row)
    }

    /// Writes what changes over a dispute's life.
    pub async fn update_dispute(&mut self, d: &Dispute) -> StoreResult<()> {
        let result = sqlx::query(
            "UPDATE disputes SET level = $2, status = $3, outcome = $4, settled_automatically = $5, \
             level_since = $6, first_response_due = $7, resolution_due = $8, first_responded_at = $9, \
             deadlines_missed = $10, resolved_at = $11 WHERE id = $1",
        )
        .bind(d.id.as_str())
        .bind(d.level.as_str())
        .bind(d.status.as_str())
        .bind(d.outcome.map(|o| o.as_str()))
        .bind(i64::from(d.settled_automatically))
        .bind(micros(d.level_since))
        .bind(micros(d.first_response_due))
        .bind(micros(d.resolution_due))
        .bind(d.first_responded_at.map(micros))
        .bind(d.deadlines_missed)
        .bind(d.resolved_at.map(micros))
        .execute(&mut *self.tx)
        .await?;
        if result.rows_affected() == 0 {
            return Err(crate::StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn insert_dispute_event(
        &mut self,
        dispute_id: &DisputeId,
        at: Timestamp,
        actor: &str,
        kind: &str,
        facts: &serde_json::Value,
        text: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO dispute_events (dispute_id, at, actor, kind, facts, text) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(dispute_id.as_str())
        .bind(micros(at))
        .bind(actor)
        .bind(kind)
        .bind(facts.to_string())
        .bind(text)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Names an evidence file on a dispute; the same file twice is once.
    pub async fn insert_dispute_evidence(&mut self, e: &DisputeEvidence) -> StoreResult<bool> {
        let result = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO dispute_evidence ({EVIDENCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (dispute_id, sha256) DO NOTHING"
        )))
        .bind(e.dispute_id.as_str())
        .bind(&e.sha256)
        .bind(e.family_id.as_str())
        .bind(&e.content_type)
        .bind(e.bytes)
        .bind(&e.added_by)
        .bind(micros(e.added_at))
        .bind(e.removed_at.map(micros))
        .execute(&mut *self.tx)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Open disputes whose first-response or resolution deadline passed at
    /// `now`, locked; on PostgreSQL rows another worker holds are skipped.
    pub async fn overdue_disputes(&mut self, now: Timestamp, limit: u32) -> StoreResult<Vec<Dispute>> {
        let lock = match self.engine {
            Engine::Sqlite => "",
            Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE status = 'open' AND (resolution_due <= $1 \
             OR (first_responded_at IS NULL AND first_response_due <= $1)) ORDER BY resolution_due, id LIMIT $2{lock}"
        )))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(dispute).collect()
    }

    /// Minimises a family's disputes: descriptions, contact addresses and
    /// the words of every message go; ids, statuses, deadlines and evidence
    /// hashes stay. Returns (disputes, messages, evidence hashes) touched.
    pub async fn minimise_disputes(
        &mut self,
        family_id: &FamilyId,
        now: Timestamp,
    ) -> StoreResult<(i64, i64, Vec<String>)> {
        let disputes = sqlx::query(
            "UPDATE disputes SET description = '', contact_email = NULL, tracking_number = NULL \
             WHERE family_id = $1",
        )
        .bind(family_id.as_str())
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        let messages = sqlx::query(
            "UPDATE dispute_events SET text = '' WHERE text <> '' AND dispute_id IN \
             (SELECT id FROM disputes WHERE family_id = $1)",
        )
        .bind(family_id.as_str())
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        let rows = sqlx::query(
            "UPDATE dispute_evidence SET removed_at = $2 WHERE family_id = $1 AND removed_at IS NULL RETURNING sha256",
        )
        .bind(family_id.as_str())
        .bind(micros(now))
        .fetch_all(&mut *self.tx)
        .await?;
        let hashes = rows.iter().map(|r| text(r, "sha256")).collect::<StoreResult<Vec<_>>>()?;
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok((count(disputes), count(messages), hashes))
    }
}

impl Store {
    pub async fn dispute(&self, dispute_id: &DisputeId) -> StoreResult<Dispute> {
        read_dispute(&self.pool, dispute_id).await
    }

    /// A family's disputes, newest first.
    pub async fn disputes_of(&self, family_id: &FamilyId) -> StoreResult<Vec<Dispute>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE family_id = $1 ORDER BY opened_at DESC, id LIMIT $2"
        )))
        .bind(family_id.as_str())
        .bind(i64::from(DISPUTES_LISTED_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dispute).collect()
    }

    /// Open disputes, the nearest deadline first (the first response while
    /// it is owed, else the resolution): staff's queue. `level` narrows it.
    pub async fn dispute_queue(&self, level: Option<DisputeLevel>) -> StoreResult<Vec<Dispute>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DISPUTE_COLUMNS} FROM disputes WHERE status = 'open' AND ($1 = '' OR level = $1) \
             ORDER BY CASE WHEN first_responded_at IS NULL AND first_response_due < resolution_due \
             THEN first_response_due ELSE resolution_due END, opened_at, id LIMIT $2"
        )))
        .bind(level.map(|l| l.as_str()).unwrap_or_default())
        .bind(i64::from(DISPUTES_LISTED_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dispute).collect()
    }

    pub async fn dispute_events(&self, dispute_id: &DisputeId) -> StoreResult<Vec<DisputeEvent>> {
        read_dispute_events(&self.pool, dispute_id).await
    }

    pub async fn dispute_evidence(&self, dispute_id: &DisputeId) -> StoreResult<Vec<DisputeEvidence>> {
        read_dispute_evidence(&self.pool, dispute_id).await
    }

    /// The disputes opened in `[from, until)`, counted by kind and outcome
    /// (an open one has none).
    pub async fn dispute_counts(&self, from: Timestamp, until: Timestamp) -> StoreResult<Vec<DisputeCount>> {
        let rows = sqlx::query(
            "SELECT kind, outcome, CAST(COUNT(*) AS BIGINT) AS disputes, \
             CAST(SUM(settled_automatically) AS BIGINT) AS settled, CAST(SUM(deadlines_missed) AS BIGINT) AS missed \
             FROM disputes WHERE opened_at >= $1 AND opened_at < $2 GROUP BY kind, outcome ORDER BY kind, outcome",
        )
        .bind(micros(from))
        .bind(micros(until))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let outcome: Option<String> = row.try_get("outcome")?;
                Ok(DisputeCount {
                    kind: named(row, "kind", DisputeKind::parse)?,
                    outcome: outcome.as_deref().and_then(DisputeOutcome::parse),
                    disputes: integer(row, "disputes")?,
                    settled_automatically: integer(row, "settled")?,
                    deadlines_missed: integer(row, "missed")?,
                })
            })
            .collect()
    }
}
