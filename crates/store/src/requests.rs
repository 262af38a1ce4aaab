//! Saved responses for `Idempotency-Key`: the first request with a key
//! claims it, its response is saved, and a retry gets the saved response.

use jiff::Timestamp;

use crate::{IdempotentRequest, Store, StoreResult, instant, micros, text};

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim {
    /// This request holds the key now and must save its response.
    Claimed,
    /// The key was used before.
    Existing(IdempotentRequest),
}

impl Store {
    /// Claims `(scope, key)` for a request whose body hashes to
    /// `request_sha256`, or returns what is stored under it.
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_sha256: &str,
        now: Timestamp,
    ) -> StoreResult<Claim> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, idempotency_key, request_sha256, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope, idempotency_key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(request_sha256)
        .bind(micros(now))
        .execute(&self.writes)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Claimed);
        }
        let row = sqlx::query(
            "SELECT request_sha256, response_status, response_body, created_at FROM idempotency_keys \
             WHERE scope = $1 AND idempotency_key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_one(&self.writes)
        .await?;
        let status: Option<i64> = sqlx::Row::try_get(&row, "response_status")?;
        let body: Option<String> = sqlx::Row::try_get(&row, "response_body")?;
        let response = match (status, body) {
            (Some(status), Some(body)) => Some((u16::try_from(status).unwrap_or(500), body)),
            _ => None,
        };
        Ok(Claim::Existing(IdempotentRequest {
            request_sha256: text(&row, "request_sha256")?,
            response,
            created_at: instant(&row, "created_at")?,
        }))
    }

    pub async fn save_idempotent_response(&self, scope: &str, key: &str, status: u16, body: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE scope = $1 AND idempotency_key = $2",
        )
        .bind(scope)
        .bind(key)
        .bind(i64::from(status))
        .bind(body)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Frees a key whose request ended without a response worth replaying
    /// (a server error, or a crash detected later), so a retry runs again.
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2 AND response_status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .execute(&self.writes)
        .await?;
        Ok(())
    }
}
