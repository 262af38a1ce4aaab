//! The transactional outbox: messages to guardians are written in the same
//! transaction as the change that causes them (so a crash leaves both or
//! neither) and delivered afterwards by a worker, with retries and
//! exponential backoff.
//!
//! Delivery is at least once, never silently lost: a message is leased
//! (`next_attempt_at` pushed ahead) in a short transaction, sent outside any
//! transaction, then marked delivered. A worker that dies between sending
//! and marking leaves the lease to expire and the message is sent again with
//! the same Message-ID, which mail clients treat as one message. One event
//! never queues two messages (`event_key` is unique). Once delivered, the
//! recipient's address is erased from the outbox.

use std::time::Duration;

use baobao_domain::Locale;
use baobao_store::{Channel, Guardian, OutboxMessage, Tx};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::mail;
use crate::random::random_token;
use crate::state::{AppState, Parts};

/// A message is tried this many times before it is marked failed.
pub const OUTBOX_ATTEMPTS_MAX: i64 = 12;
pub const OUTBOX_RETRY_DELAY_SECONDS_MIN: i64 = 30;
pub const OUTBOX_RETRY_DELAY_SECONDS_MAX: i64 = 6 * 3600;
/// How long a worker holds a message it is sending.
pub const OUTBOX_LEASE_SECONDS: i64 = 120;
/// Messages delivered per pass of the worker.
pub const OUTBOX_BATCH_MAX: u32 = 100;
pub const OUTBOX_POLL_MILLISECONDS: u64 = 2000;

/// Queues one email per guardian of the family, in the caller's
/// transaction. Delivery runs in real time (a simulated business clock far
/// ahead must not hold mail back), so the message is due at once.
pub async fn email_guardians(
    tx: &mut Tx,
    parts: &Parts,
    guardians: &[Guardian],
    template: &str,
    event: &str,
    payload: &serde_json::Value,
) -> ApiResult<()> {
    let now = parts.clock.wall_now();
    for guardian in guardians {
        if guardian.email.ends_with("@invalid") {
            continue;
        }
        let message = OutboxMessage {
            id: message_id(),
            channel: Channel::Email.as_str().to_owned(),
            event_key: format!("email:{template}:{event}:{}", guardian.id),
            family_id: Some(guardian.family_id.clone()),
            recipient: guardian.email.clone(),
            locale: guardian.locale.clone(),
            template: template.to_owned(),
            payload: payload.to_string(),
            status: "pending".to_owned(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
        };
        tx.enqueue(&message).await?;
    }
    Ok(())
}

fn message_id() -> String {
    format!("msg_{}", random_token(15).to_ascii_lowercase().replace(['-', '_'], "0"))
}

/// Queues a webhook event for every live endpoint of `service`, in the
/// caller's transaction. `event` names what happened once (a cancellation
/// id, a ledger entry key), so a retried change queues nothing twice. The
/// event carries ids, never personal data.
pub async fn webhook(
    tx: &mut Tx,
    parts: &Parts,
    service: &str,
    event_type: &str,
    event: &str,
    data: &serde_json::Value,
) -> ApiResult<()> {
    let now = parts.clock.wall_now();
    for endpoint in tx.webhook_endpoints_of(service).await? {
        let id = message_id();
        let body = json!({
            "id": id.replacen("msg_", "evt_", 1),
            "type": event_type,
            "created_at": parts.clock.now().to_string(),
            "service": service,
            "data": data,
        });
        let message = OutboxMessage {
            id,
            channel: Channel::Webhook.as_str().to_owned(),
            event_key: format!("webhook:{event_type}:{event}:{}", endpoint.id),
            family_id: None,
            recipient: endpoint.id.to_string(),
            locale: String::new(),
            template: event_type.to_owned(),
            payload: body.to_string(),
            status: "pending".to_owned(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            created_at: now,
            sent_at: None,
        };
        tx.enqueue(&message).await?;
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub delivered: u32,
    pub retrying: u32,
    pub failed: u32,
}

fn retry_delay(attempts: i64) -> SignedDuration {
    crate::retry::backoff(attempts, OUTBOX_RETRY_DELAY_SECONDS_MIN, OUTBOX_RETRY_DELAY_SECONDS_MAX)
}

/// Delivers what is due at `now` (real time): emails when there is a
/// mailer, webhooks always.
pub async fn deliver_due(state: &AppState, now: Timestamp) -> ApiResult<DeliveryReport> {
    let mut report = DeliveryReport::default();
    let channels: &[Channel] =
        if state.mailer.is_some() { &[Channel::Email, Channel::Webhook] } else { &[Channel::Webhook] };
    let internal = |e: jiff::Error| ApiError::internal(e.to_string());
    for _ in 0..OUTBOX_BATCH_MAX {
        let mut tx = state.store.begin().await?;
        let Some(message) = tx.claim_due_message(now, channels).await? else { break };
        tx.lease_message(
            &message.id,
            now.checked_add(SignedDuration::from_secs(OUTBOX_LEASE_SECONDS)).map_err(internal)?,
        )
        .await?;
        tx.commit().await?;

        let outcome = if message.channel == Channel::Webhook.as_str() {
            crate::webhooks::deliver(state, &message, now).await
        } else {
            send_email(state, &message).await
        };

        let mut tx = state.store.begin().await?;
        match outcome {
            Ok(()) => {
                tx.mark_delivered(&message.id, now).await?;
                report.delivered += 1;
            }
            Err(error) if message.attempts + 1 < OUTBOX_ATTEMPTS_MAX => {
                let next = now.checked_add(retry_delay(message.attempts)).map_err(internal)?;
                tx.mark_attempt_failed(&message.id, Some(next), &error).await?;
                tracing::warn!(message_id = %message.id, channel = %message.channel, attempts = message.attempts + 1, "message not delivered; will retry");
                report.retrying += 1;
            }
            Err(error) => {
                tx.mark_attempt_failed(&message.id, None, &error).await?;
                tracing::error!(message_id = %message.id, channel = %message.channel, "message not delivered; giving up");
                report.failed += 1;
            }
        }
        tx.commit().await?;
    }
    if report.delivered > 0 {
        // Delivered messages had their addresses erased: leave no copy behind.
        state.store.forget_deleted().await?;
    }
    Ok(report)
}

async fn send_email(state: &AppState, message: &OutboxMessage) -> Result<(), String> {
    let Some(mailer) = state.mailer.clone() else { return Err("no SMTP relay configured".to_owned()) };
    let payload: serde_json::Value = serde_json::from_str(&message.payload).unwrap_or_default();
    let locale = Locale::parse(&message.locale).unwrap_or_default();
    let email =
        mail::render(&message.template, locale, &message.recipient, &payload, &format!("<{}@baobao>", message.id));
    mailer.send(&email).await.map_err(|e| e.0)
}

/// How often the worker forgets saved responses past the replay window
/// and expired sign-in counts.
pub const PRUNE_INTERVAL_SECONDS: u64 = 60;

/// The worker: delivers due messages every couple of seconds while the server runs.
pub async fn run_worker(state: AppState) {
    let mut last_prune: Option<std::time::Instant> = None;
    loop {
        if let Err(error) = deliver_due(&state, state.clock.wall_now()).await {
            tracing::error!(
                code = error.code,
                internal = error.internal.as_deref().unwrap_or(""),
                "outbox pass failed"
            );
        }
        // Refunds and fees due (a retry, or one whose request crashed before paying).
        if let Err(error) = crate::money::settle_due(&state, state.clock.wall_now()).await {
            tracing::error!(code = error.code, internal = error.internal.as_deref().unwrap_or(""), "money pass failed");
        }
        if last_prune.is_none_or(|at| at.elapsed().as_secs() >= PRUNE_INTERVAL_SECONDS) {
            last_prune = Some(std::time::Instant::now());
            if let Err(error) = prune_request_records(&state).await {
                tracing::error!(%error, "pruning saved responses failed");
            }
            state.address_limits.forget_idle();
        }
        tokio::time::sleep(Duration::from_millis(OUTBOX_POLL_MILLISECONDS)).await;
    }
}

/// Saved responses are kept for the replay window only; failed sign-ins
/// for their window only.
pub async fn prune_request_records(state: &AppState) -> Result<u64, baobao_store::StoreError> {
    let now = state.clock.wall_now();
    let login_window_start =
        now.checked_sub(SignedDuration::from_secs(crate::auth::LOGIN_WINDOW_SECONDS)).unwrap_or(now);
    state.store.prune_request_records(crate::idempotency::replay_window_start(now), login_window_start).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap() {
        assert_eq!(retry_delay(0).as_secs(), 30);
        assert_eq!(retry_delay(1).as_secs(), 60);
        assert_eq!(retry_delay(5).as_secs(), 960);
        assert_eq!(retry_delay(15).as_secs(), OUTBOX_RETRY_DELAY_SECONDS_MAX);
    }
}
