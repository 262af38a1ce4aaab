//! A dispute's levels over time: moving it up a level with fresh
//! deadlines, escalating what is overdue (the billing run's turn), and
//! telling the guardian. Below `disputes` (filing, messages, decisions), so
//! that the billing run can escalate without reaching up to filing.

use baobao_domain::Locale;
use baobao_domain::dispute::{DisputeLevel, Due, Missed, missed as missed_deadline};
use baobao_store::{Dispute, Tx};
use jiff::Timestamp;
use serde_json::json;

use crate::error::ApiResult;
use crate::state::{AppState, Parts};

/// Overdue disputes escalated in one transaction.
pub const ESCALATIONS_PER_TURN_MAX: u32 = 100;

/// Emails the family's guardians, or the receipt holder's address when the
/// dispute was filed after the account closed.
pub async fn notify(
    tx: &mut Tx,
    parts: &Parts,
    dispute: &Dispute,
    guardians: &[baobao_store::Guardian],
    template: &str,
    event: &str,
    payload: &serde_json::Value,
) -> ApiResult<()> {
    let mut payload = payload.clone();
    payload["dispute_link"] = json!(parts.keys.dispute_link(dispute.id.as_str()));
    match &dispute.contact_email {
        Some(email) if !email.is_empty() => {
            let locale = Locale::parse(&dispute.locale).unwrap_or(Locale::ZhCn);
            crate::services::outbox::email_address(
                tx,
                parts,
                &dispute.family_id,
                email,
                locale,
                template,
                event,
                &payload,
            )
            .await
        }
        _ => crate::services::outbox::email_guardians(tx, parts, guardians, template, event, &payload).await,
    }
}

/// Moves a dispute to `to` with fresh deadlines, on the timeline and in
/// the audit log.
#[allow(clippy::too_many_arguments)] // one step of the timeline: each is a different fact of it
pub async fn raise(
    tx: &mut Tx,
    parts: &Parts,
    dispute: &mut Dispute,
    to: DisputeLevel,
    actor: &str,
    cause: &str,
    text: &str,
    now: Timestamp,
) -> ApiResult<()> {
    let from = dispute.level;
    let due = parts.config.dispute_deadlines.due(to, now, dispute.forwarded_by.is_some());
    dispute.level = to;
    dispute.level_since = now;
    dispute.first_response_due = due.first_response;
    dispute.resolution_due = due.resolution;
    dispute.first_responded_at = None;
    tx.update_dispute(dispute).await?;
    let facts = json!({"from": from.as_str(), "to": to.as_str(), "cause": cause,
        "resolution_due": due.resolution.to_string(), "first_response_due": due.first_response.to_string()});
    tx.insert_dispute_event(&dispute.id, now, actor, "escalated", &facts, text).await?;
    tx.audit(now, actor, "dispute.escalated", &[dispute.family_id.as_str(), dispute.id.as_str()], &facts).await?;
    Ok(())
}

/// The worker's turn: every open dispute past a deadline at `now` counts a
/// missed deadline and climbs a level (at the last level its deadlines are
/// set again, so it stays in front of the legal department); the guardian
/// is told. Returns how many were escalated.
pub async fn escalate_overdue(state: &AppState, now: Timestamp) -> ApiResult<u64> {
    let mut escalated = 0;
    loop {
        let mut tx = state.store.begin().await?;
        let overdue = tx.overdue_disputes(now, ESCALATIONS_PER_TURN_MAX).await?;
        if overdue.is_empty() {
            tx.rollback().await?;
            return Ok(escalated);
        }
        let count = overdue.len();
        for mut dispute in overdue {
            let due = Due { first_response: dispute.first_response_due, resolution: dispute.resolution_due };
            let Some(missed) = missed_deadline(due, dispute.first_responded_at.is_some(), now) else { continue };
            dispute.deadlines_missed += 1;
            let facts = json!({"deadline": missed.as_str(), "level": dispute.level.as_str(),
                "was_due": match missed {
                    Missed::FirstResponse => dispute.first_response_due,
                    Missed::Resolution => dispute.resolution_due,
                }.to_string()});
            tx.insert_dispute_event(&dispute.id, now, "system", "deadline_missed", &facts, "").await?;
            let to = dispute.level.next().unwrap_or(dispute.level);
            raise(&mut tx, state, &mut dispute, to, "system", missed.as_str(), "", now).await?;
            let family = tx.family(&dispute.family_id).await?;
            let guardians = tx.guardians_of(&dispute.family_id).await?;
            let payload = json!({"time_zone": family.time_zone, "dispute_id": dispute.id, "level": to.as_str(),
                "resolution_due": dispute.resolution_due.to_string(), "variant": "overdue"});
            let event = format!("{}:overdue:{}", dispute.id, dispute.deadlines_missed);
            notify(&mut tx, state, &dispute, &guardians, "dispute_escalated", &event, &payload).await?;
            escalated += 1;
        }
        tx.commit().await?;
        if count < ESCALATIONS_PER_TURN_MAX as usize {
            return Ok(escalated);
        }
    }
}
