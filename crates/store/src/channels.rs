//! What the staff channels and the integrators' webhooks keep: written
//! notices with their evidence's hash, and webhook endpoints.

use baobao_domain::ids::{CancellationId, FamilyId, SubscriptionId, WebhookEndpointId, WrittenNoticeId};
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreResult, Tx, id, instant, integer, micros, optional_instant, text};

#[derive(Clone, Debug)]
pub struct WrittenNotice {
    pub id: WrittenNoticeId,
    pub family_id: FamilyId,
    pub subscription_id: SubscriptionId,
    pub cancellation_id: CancellationId,
    pub received_at: Timestamp,
    pub sender: String,
    pub tracking_number: Option<String>,
    pub evidence_sha256: String,
    pub evidence_type: String,
    pub evidence_bytes: i64,
    /// Renewal charges refunded because the notice was on time.
    pub late_charges_refunded: i64,
    pub registered_by: String,
    pub registered_at: Timestamp,
}

const NOTICE_COLUMNS: &str = "id, family_id, subscription_id, cancellation_id, received_at, sender, tracking_number, \
     evidence_sha256, evidence_type, evidence_bytes, late_charges_refunded, registered_by, registered_at";

fn notice(row: &AnyRow) -> StoreResult<WrittenNotice> {
    Ok(WrittenNotice {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        subscription_id: id(row, "subscription_id")?,
        cancellation_id: id(row, "cancellation_id")?,
        received_at: instant(row, "received_at")?,
        sender: text(row, "sender")?,
        tracking_number: row.try_get("tracking_number")?,
        evidence_sha256: text(row, "evidence_sha256")?,
        evidence_type: text(row, "evidence_type")?,
        evidence_bytes: integer(row, "evidence_bytes")?,
        late_charges_refunded: integer(row, "late_charges_refunded")?,
        registered_by: text(row, "registered_by")?,
        registered_at: instant(row, "registered_at")?,
    })
}

#[derive(Clone, Debug)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub service: String,
    pub url: String,
    pub secret: String,
    pub created_by: String,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

const ENDPOINT_COLUMNS: &str = "id, service, url, secret, created_by, created_at, disabled_at";

fn endpoint(row: &AnyRow) -> StoreResult<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: id(row, "id")?,
        service: text(row, "service")?,
        url: text(row, "url")?,
        secret: text(row, "secret")?,
        created_by: text(row, "created_by")?,
        created_at: instant(row, "created_at")?,
        disabled_at: optional_instant(row, "disabled_at")?,
    })
}

/// `webhook_endpoints_of`, read by the pool or inside a transaction.
async fn fetch_webhook_endpoints_of<'e, E>(executor: E, service: &str) -> StoreResult<Vec<WebhookEndpoint>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE service = $1 AND disabled_at IS NULL ORDER BY id"
    )))
    .bind(service)
    .fetch_all(executor)
    .await?;
    rows.iter().map(endpoint).collect()
}

impl Tx {
    pub async fn insert_written_notice(&mut self, n: &WrittenNotice) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO written_notices ({NOTICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(n.id.as_str())
        .bind(n.family_id.as_str())
        .bind(n.subscription_id.as_str())
        .bind(n.cancellation_id.as_str())
        .bind(micros(n.received_at))
        .bind(&n.sender)
        .bind(n.tracking_number.clone())
        .bind(&n.evidence_sha256)
        .bind(&n.evidence_type)
        .bind(n.evidence_bytes)
        .bind(n.late_charges_refunded)
        .bind(&n.registered_by)
        .bind(micros(n.registered_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Minimises a family's written notices: the sender's name and the
    /// tracking number go; the evidence's hash stays as proof of receipt.
    pub async fn minimise_written_notices(&mut self, family_id: &FamilyId) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT evidence_sha256 FROM written_notices WHERE family_id = $1")
            .bind(family_id.as_str())
            .fetch_all(&mut *self.tx)
            .await?;
        sqlx::query("UPDATE written_notices SET sender = '', tracking_number = NULL WHERE family_id = $1")
            .bind(family_id.as_str())
            .execute(&mut *self.tx)
            .await?;
        rows.iter().map(|r| text(r, "evidence_sha256")).collect()
    }

    pub async fn insert_webhook_endpoint(&mut self, e: &WebhookEndpoint) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )))
        .bind(e.id.as_str())
        .bind(&e.service)
        .bind(&e.url)
        .bind(&e.secret)
        .bind(&e.created_by)
        .bind(micros(e.created_at))
        .bind(e.disabled_at.map(micros))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Marks a verification code spent; `false` when it already was.
    pub async fn spend_verification_code(&mut self, code_id: &str, at: Timestamp) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE verification_codes SET used_at = $2, attempts = attempts + 1 WHERE id = $1 AND used_at IS NULL",
        )
        .bind(code_id)
        .bind(micros(at))
        .execute(&mut *self.tx)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}

impl Store {
    /// Notices registered in `[from, until)`, oldest first: the day's queue.
    pub async fn written_notices_registered(
        &self,
        from: Timestamp,
        until: Timestamp,
    ) -> StoreResult<Vec<WrittenNotice>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTICE_COLUMNS} FROM written_notices WHERE registered_at >= $1 AND registered_at < $2 \
             ORDER BY registered_at, seq"
        )))
        .bind(micros(from))
        .bind(micros(until))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notice).collect()
    }

    pub async fn written_notices_of(&self, family_id: &FamilyId) -> StoreResult<Vec<WrittenNotice>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTICE_COLUMNS} FROM written_notices WHERE family_id = $1 ORDER BY registered_at, seq"
        )))
        .bind(family_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notice).collect()
    }

    pub async fn written_notice(&self, notice_id: &WrittenNoticeId) -> StoreResult<WrittenNotice> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {NOTICE_COLUMNS} FROM written_notices WHERE id = $1")))
                .bind(notice_id.as_str())
                .fetch_one(&self.pool)
                .await?;
        notice(&row)
    }

    /// The evidence files live notices and disputes name: (family,
    /// SHA-256) pairs. A minimised notice (its sender blanked) or dispute
    /// evidence removed with the family's data names none.
    pub async fn live_evidence(&self) -> StoreResult<Vec<(FamilyId, String)>> {
        let rows = sqlx::query(
            "SELECT family_id, evidence_sha256 FROM written_notices WHERE sender <> '' \
             UNION SELECT family_id, sha256 FROM dispute_evidence WHERE removed_at IS NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((id(r, "family_id")?, text(r, "evidence_sha256")?))).collect()
    }

    /// The live endpoints of a service.
    pub async fn webhook_endpoints_of(&self, service: &str) -> StoreResult<Vec<WebhookEndpoint>> {
        fetch_webhook_endpoints_of(&self.pool, service).await
    }

    pub async fn webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint).collect()
    }

    pub async fn webhook_endpoint(&self, endpoint_id: &WebhookEndpointId) -> StoreResult<WebhookEndpoint> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1")))
                .bind(endpoint_id.as_str())
                .fetch_one(&self.pool)
                .await?;
        endpoint(&row)
    }
}

/// Reads inside a transaction: they see its own writes and take no other connection.
impl Tx {
    /// The live endpoints of a service (in a batch, read once).
    pub async fn webhook_endpoints_of(&mut self, service: &str) -> StoreResult<Vec<WebhookEndpoint>> {
        if let Some(known) = self.batch.as_ref().and_then(|b| b.endpoints.get(service)) {
            return Ok(known.clone());
        }
        let endpoints = fetch_webhook_endpoints_of(&mut *self.tx, service).await?;
        if let Some(batch) = &mut self.batch {
            batch.endpoints.insert(service.to_owned(), endpoints.clone());
        }
        Ok(endpoints)
    }
}
