//! The transactional outbox: messages to guardians and integrators are
//! written in the same transaction as the change that causes them (so a
//! crash leaves both or neither); `delivery` sends them afterwards. One
//! event never queues two messages (`event_key` is unique).

use baobao_domain::ids::FamilyId;
use baobao_store::{Channel, Guardian, OutboxMessage, Tx};
use serde_json::json;

use crate::auth::{Caller, STAFF_READERS};
use crate::error::ApiResult;
use crate::random::random_token;
use crate::state::{AppState, Parts};

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
    for guardian in guardians {
        if guardian.email.ends_with("@invalid") {
            continue;
        }
        let event_key = format!("email:{template}:{event}:{}", guardian.id);
        let to = Recipient { family_id: &guardian.family_id, email: &guardian.email, locale: guardian.locale };
        tx.enqueue(&email(parts, &to, template, event_key, payload)).await?;
    }
    Ok(())
}

/// Whom an email goes to.
struct Recipient<'a> {
    family_id: &'a FamilyId,
    email: &'a str,
    locale: baobao_domain::Locale,
}

/// An email due now, in real time (a simulated business clock far ahead
/// must not hold mail back).
fn email(
    parts: &Parts,
    to: &Recipient<'_>,
    template: &str,
    event_key: String,
    payload: &serde_json::Value,
) -> OutboxMessage {
    let now = parts.clock.wall_now();
    OutboxMessage {
        id: message_id(),
        channel: Channel::Email.as_str().to_owned(),
        event_key,
        family_id: Some(to.family_id.clone()),
        recipient: to.email.to_owned(),
        locale: to.locale.tag().to_owned(),
        template: template.to_owned(),
        payload: payload.to_string(),
        status: "pending".to_owned(),
        attempts: 0,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        sent_at: None,
    }
}

/// Queues one email to an address that is not a guardian's account (a
/// receipt holder whose account closed; the provider's support desk), in
/// the caller's transaction, as `email_guardians` does.
#[allow(clippy::too_many_arguments)] // one message: each is a different fact of it
pub async fn email_address(
    tx: &mut Tx,
    parts: &Parts,
    family_id: &FamilyId,
    email: &str,
    locale: baobao_domain::Locale,
    template: &str,
    event: &str,
    payload: &serde_json::Value,
) -> ApiResult<()> {
    let event_key = format!("email:{template}:{event}:{}", crate::random::token_hash(email));
    let to = Recipient { family_id, email, locale };
    tx.enqueue(&self::email(parts, &to, template, event_key, payload)).await?;
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

/// What was sent to a family, for staff who may read it (the addresses of
/// delivered messages are already erased).
pub async fn messages_of(state: &AppState, caller: &Caller, family_id: &FamilyId) -> ApiResult<Vec<OutboxMessage>> {
    caller.require_family(family_id, STAFF_READERS, "family")?;
    Ok(state.store.outbox_of(family_id).await?)
}
