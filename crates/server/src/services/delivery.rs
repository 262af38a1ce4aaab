//! Delivering the outbox, with retries and exponential backoff.
//!
//! Delivery is at least once, never silently lost: a message is leased
//! (`next_attempt_at` pushed ahead) in a short transaction, sent outside any
//! transaction, then marked delivered. A worker that dies between sending
//! and marking leaves the lease to expire and the message is sent again with
//! the same Message-ID, which mail clients treat as one message. Once
//! delivered, the recipient's address is erased from the outbox.

use baobao_domain::Locale;
use baobao_store::{Channel, OutboxMessage};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::mail;
use crate::state::AppState;

/// A message is tried this many times before it is marked failed.
pub const OUTBOX_ATTEMPTS_MAX: i64 = 12;
pub const OUTBOX_RETRY_DELAY_SECONDS_MIN: i64 = 30;
pub const OUTBOX_RETRY_DELAY_SECONDS_MAX: i64 = 6 * 3600;
/// How long a worker holds a message it is sending.
pub const OUTBOX_LEASE_SECONDS: i64 = 120;
/// Messages delivered per pass of the worker.
pub const OUTBOX_BATCH_MAX: u32 = 100;
pub const OUTBOX_POLL_MILLISECONDS: u64 = 2000;

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
            crate::services::webhooks::deliver(state, &message, now).await
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
    let message_id = format!("<{}@baobao>", message.id);
    let letterhead = mail::Letterhead {
        provider: &state.config.provider,
        public_url: state.config.public_url.as_deref(),
        keys: &state.keys,
    };
    let email = mail::render(&message.template, locale, &message.recipient, &payload, &message_id, &letterhead);
    mailer.send(&email).await.map_err(|e| e.0)
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
