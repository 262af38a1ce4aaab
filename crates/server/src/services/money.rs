//! Money through the payment gateway, never inside a database transaction.
//!
//! A refund or a fee is written to the ledger in the transaction of the
//! change that causes it, with its money `pending` (`Tx::append_ledger_entry_to_pay`).
//! Then, outside any transaction, `settle` (right after the request that
//! wrote it) or `settle_due` (the worker and the billing run) leases the
//! movement, asks the gateway — idempotent by the entry's key, so a crash
//! between asking and recording repeats nothing — and records the answer:
//! `succeeded` with the gateway's reference (and only then tells the
//! guardian the refund was sent), or a failed attempt, retried with
//! backoff; after `MONEY_ATTEMPTS_MAX` it is `failed`: finance's queue in
//! the console, an audit entry, and an email to the guardian in their
//! language. A refund is never shown as paid before the gateway said so.

use baobao_domain::ids::{FamilyId, LedgerEntryId};
use baobao_domain::ledger::LedgerKind;
use baobao_domain::receipt::{FeeReceipt, MovementReceipt, PlanName, ReceiptBody, RefundReceipt};
use baobao_store::{MoneyMovement, Plan, Subscription, Tx};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::json;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::receipts::ReceiptDocument;
use crate::state::{AppState, Parts};
use crate::views::StatementEntryView;

/// Attempts at the gateway before a movement goes to finance.
pub const MONEY_ATTEMPTS_MAX: i64 = 6;
pub const MONEY_RETRY_DELAY_SECONDS_MIN: i64 = 60;
pub const MONEY_RETRY_DELAY_SECONDS_MAX: i64 = 6 * 3600;
/// How long a worker holds a movement it is asking the gateway about.
pub const MONEY_LEASE_SECONDS: i64 = 120;
/// Movements settled per pass of the worker.
pub const MONEY_BATCH_MAX: u32 = 100;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SettleReport {
    pub succeeded: u32,
    pub retrying: u32,
    pub failed: u32,
}

impl SettleReport {
    fn add(&mut self, other: SettleReport) {
        self.succeeded += other.succeeded;
        self.retrying += other.retrying;
        self.failed += other.failed;
    }
}

fn retry_delay(attempts: i64) -> SignedDuration {
    crate::retry::backoff(attempts, MONEY_RETRY_DELAY_SECONDS_MIN, MONEY_RETRY_DELAY_SECONDS_MAX)
}

fn internal(error: jiff::Error) -> ApiError {
    ApiError::internal(error.to_string())
}

/// Settles the movements a request just wrote, before it answers: the
/// guardian sees "sent" at once when the gateway agrees, "pending" when it
/// does not (the worker retries).
pub async fn settle(state: &AppState, entry_ids: &[LedgerEntryId]) -> ApiResult<SettleReport> {
    let mut report = SettleReport::default();
    for entry_id in entry_ids {
        report.add(settle_next(state, state.clock.wall_now(), Some(entry_id)).await?.unwrap_or_default());
    }
    Ok(report)
}

/// Settles what is due at `now` (real time: retries wait in real time,
/// whatever a simulated business clock says).
pub async fn settle_due(state: &AppState, now: Timestamp) -> ApiResult<SettleReport> {
    let mut report = SettleReport::default();
    for _ in 0..MONEY_BATCH_MAX {
        match settle_next(state, now, None).await? {
            Some(one) => report.add(one),
            None => break,
        }
    }
    Ok(report)
}

/// Leases one due movement (the one named, or the next), asks the gateway
/// outside any transaction, and records the answer. `None`: nothing due.
async fn settle_next(
    state: &AppState,
    now: Timestamp,
    only: Option<&LedgerEntryId>,
) -> ApiResult<Option<SettleReport>> {
    let lease_until = now.checked_add(SignedDuration::from_secs(MONEY_LEASE_SECONDS)).map_err(internal)?;
    let mut tx = state.store.begin().await?;
    let Some(movement) = tx.claim_movement(now, lease_until, only).await? else { return Ok(None) };
    tx.commit().await?;

    let answer = match movement.kind {
        LedgerKind::Refund | LedgerKind::Credit => state.gateway.refund(&movement.entry_key, movement.amount).await,
        LedgerKind::Fee | LedgerKind::Charge => state.gateway.charge(&movement.entry_key, movement.amount).await,
    };
    let business_now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let report = match answer {
        Ok(reference) => {
            tx.movement_succeeded(&movement.entry_id, &reference, now).await?;
            tx.audit(
                business_now,
                "gateway",
                "money.succeeded",
                &[movement.family_id.as_str(), movement.entry_id.as_str()],
                &json!({"kind": movement.kind, "reference": reference}),
            )
            .await?;
            let subscription = tx.subscription_for_update(&movement.subscription_id).await?;
            let plan = tx.plan(&subscription.plan_id).await?;
            let paid = Paid { movement: &movement, subscription: &subscription, plan: &plan, reference: &reference };
            let receipt = paid.receipt(&mut tx, state, business_now).await?;
            match movement.kind {
                LedgerKind::Refund => paid.refund_sent(&mut tx, state, &receipt).await?,
                LedgerKind::Fee => paid.fee_charged(&mut tx, state, &receipt).await?,
                LedgerKind::Charge | LedgerKind::Credit => {}
            }
            SettleReport { succeeded: 1, ..SettleReport::default() }
        }
        Err(refused) => {
            let attempts = movement.attempts + 1;
            let next = (attempts < MONEY_ATTEMPTS_MAX)
                .then(|| now.checked_add(retry_delay(movement.attempts)))
                .transpose()
                .map_err(internal)?;
            let reason = refused.to_string();
            tx.movement_attempt_failed(&movement.entry_id, &reason, next, now).await?;
            tracing::warn!(entry_id = %movement.entry_id, attempts, "a payment attempt failed");
            if next.is_some() {
                SettleReport { retrying: 1, ..SettleReport::default() }
            } else {
                gone_to_finance(&mut tx, state, &movement, &reason, business_now).await?;
                SettleReport { failed: 1, ..SettleReport::default() }
            }
        }
    };
    tx.commit().await?;
    Ok(Some(report))
}

/// A refund or fee the gateway confirmed, with what it belongs to.
struct Paid<'a> {
    movement: &'a MoneyMovement,
    subscription: &'a Subscription,
    plan: &'a Plan,
    reference: &'a str,
}

impl Paid<'_> {
    /// The signed receipt: what moved, for which subscription, under which
    /// gateway reference.
    async fn receipt(&self, tx: &mut Tx, parts: &Parts, issued_at: Timestamp) -> ApiResult<ReceiptDocument> {
        let (movement, plan) = (self.movement, self.plan);
        let shared = MovementReceipt {
            subscription_id: self.subscription.id.to_string(),
            plan_id: plan.id.to_string(),
            plan_name: PlanName { zh_cn: plan.name_zh_cn.clone(), en: plan.name_en.clone() },
            ledger_entry_id: movement.entry_id.to_string(),
            period_start: movement.period_start,
            note: movement.note.clone(),
            gateway_reference: self.reference.to_owned(),
        };
        let body = if movement.kind == LedgerKind::Fee {
            ReceiptBody::Fee(FeeReceipt { fee: movement.amount, movement: shared })
        } else {
            ReceiptBody::Refund(RefundReceipt { refund: movement.amount, movement: shared })
        };
        let subject = movement.entry_id.as_str();
        let (stored, document) =
            crate::receipts::issue(parts, &movement.family_id, &self.subscription.time_zone, subject, issued_at, body)?;
        tx.insert_receipt(&stored).await?;
        Ok(document)
    }

    /// Now the fee the quote named is collected, the guardian is told, with
    /// its amount, its reference and the signed receipt.
    async fn fee_charged(&self, tx: &mut Tx, parts: &Parts, receipt: &ReceiptDocument) -> ApiResult<()> {
        let (movement, subscription, plan) = (self.movement, self.subscription, self.plan);
        let guardians = tx.guardians_of(&movement.family_id).await?;
        let payload = json!({
            "plan": {"zh-CN": plan.name_zh_cn, "en": plan.name_en},
            "time_zone": subscription.time_zone,
            "subscription_id": subscription.id,
            "receipt": receipt,
        });
        let event = movement.entry_id.as_str();
        crate::services::outbox::email_guardians(tx, parts, &guardians, "fee_charged", event, &payload).await
    }

    /// Now the guardian is told the refund was sent, with its reference
    /// and the signed receipt, and the integrators get `refund.issued`.
    async fn refund_sent(&self, tx: &mut Tx, parts: &Parts, receipt: &ReceiptDocument) -> ApiResult<()> {
        let (movement, subscription, plan) = (self.movement, self.subscription, self.plan);
        let guardians = tx.guardians_of(&movement.family_id).await?;
        // A refund of a charge for a period after the cancellation took effect
        // (a letter registered after the renewal ran) says why it happened.
        let after_request = movement.entry_key.starts_with("refund:charge:");
        let payload = json!({
            "plan": {"zh-CN": plan.name_zh_cn, "en": plan.name_en},
            "time_zone": subscription.time_zone,
            "refunds": [{
                "amount": movement.amount,
                "period_start": movement.period_start.map(|t| t.to_string()),
                "note": movement.note,
                "reference": self.reference,
            }],
            "after_request": after_request,
            "subscription_id": subscription.id,
            "receipt": receipt,
        });
        crate::services::outbox::email_guardians(
            tx,
            parts,
            &guardians,
            "refund_issued",
            movement.entry_id.as_str(),
            &payload,
        )
        .await?;
        let data = json!({
            "subscription_id": subscription.id,
            "family_id": movement.family_id,
            "ledger_entry_id": movement.entry_id,
            "amount": movement.amount,
            "period_start": movement.period_start.map(|t| t.to_string()),
            "gateway_reference": self.reference,
        });
        crate::services::outbox::webhook(tx, parts, &plan.service, "refund.issued", &movement.entry_key, &data).await
    }
}

/// Every attempt failed: it is finance's now (the console's queue and the
/// audit log), and a guardian owed a refund is told, in their language.
async fn gone_to_finance(
    tx: &mut Tx,
    parts: &Parts,
    movement: &MoneyMovement,
    reason: &str,
    business_now: Timestamp,
) -> ApiResult<()> {
    tx.audit(
        business_now,
        "gateway",
        "money.failed",
        &[movement.family_id.as_str(), movement.entry_id.as_str()],
        &json!({"kind": movement.kind, "attempts": MONEY_ATTEMPTS_MAX, "reason": reason}),
    )
    .await?;
    if movement.kind != LedgerKind::Refund {
        return Ok(());
    }
    let subscription = tx.subscription_for_update(&movement.subscription_id).await?;
    let plan = tx.plan(&subscription.plan_id).await?;
    let guardians = tx.guardians_of(&movement.family_id).await?;
    let payload = json!({
        "plan": {"zh-CN": plan.name_zh_cn, "en": plan.name_en},
        "time_zone": subscription.time_zone,
        "refunds": [{"amount": movement.amount, "period_start": movement.period_start.map(|t| t.to_string())}],
        "subscription_id": subscription.id,
    });
    crate::services::outbox::email_guardians(
        tx,
        parts,
        &guardians,
        "refund_failed",
        movement.entry_id.as_str(),
        &payload,
    )
    .await
}

/// A refund or fee the gateway refused at every attempt: finance's queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FailedPaymentView {
    pub ledger_entry_id: String,
    pub family_id: String,
    pub subscription_id: String,
    /// `refund` or `fee`.
    pub kind: String,
    pub amount: crate::views::MoneyView,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failed_at: Option<Timestamp>,
    pub note: String,
}

/// Finance's queue, newest first.
pub const FAILED_PAYMENTS_LISTED_MAX: u32 = 500;

pub async fn failed_payments(state: &AppState, caller: &Caller) -> ApiResult<Vec<FailedPaymentView>> {
    caller.require_staff(&[Role::Finance, Role::Admin])?;
    let failed = state.store.failed_movements(FAILED_PAYMENTS_LISTED_MAX).await?;
    Ok(failed
        .into_iter()
        .map(|m| FailedPaymentView {
            ledger_entry_id: m.entry_id.to_string(),
            family_id: m.family_id.to_string(),
            subscription_id: m.subscription_id.to_string(),
            kind: m.kind.as_str().to_owned(),
            amount: crate::views::MoneyView {
                amount_minor: m.amount.amount_minor,
                currency: m.amount.currency.to_string(),
            },
            attempts: m.attempts,
            last_error: m.last_error,
            failed_at: m.settled_at,
            note: m.note,
        })
        .collect())
}

/// A family's statement: every ledger entry, with where its money is.
pub async fn statement(state: &AppState, family_id: &FamilyId) -> ApiResult<Vec<StatementEntryView>> {
    let movements = state.store.movements_of(family_id).await?;
    let entries = state.store.statement(family_id).await?;
    Ok(entries
        .iter()
        .map(|entry| StatementEntryView::new(entry, movements.iter().find(|m| m.entry_id == entry.id)))
        .collect())
}

/// The statement as CSV, for the guardian, finance and the export.
pub fn statement_csv(entries: &[StatementEntryView]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "id",
        "created_at",
        "kind",
        "amount_minor",
        "currency",
        "subscription_id",
        "period_start",
        "period_end",
        "note",
        "status",
        "gateway_reference",
    ])?;
    for e in entries {
        writer.write_record([
            e.id.clone(),
            e.created_at.to_string(),
            e.kind.clone(),
            e.amount.amount_minor.to_string(),
            e.amount.currency.clone(),
            e.subscription_id.clone(),
            e.period_start.map(|t| t.to_string()).unwrap_or_default(),
            e.period_end.map(|t| t.to_string()).unwrap_or_default(),
            e.note.clone(),
            e.status.clone(),
            e.gateway_reference.clone().unwrap_or_default(),
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_a_cap() {
        assert_eq!(retry_delay(0).as_secs(), 60);
        assert_eq!(retry_delay(1).as_secs(), 120);
        assert_eq!(retry_delay(4).as_secs(), 960);
        assert_eq!(retry_delay(12).as_secs(), MONEY_RETRY_DELAY_SECONDS_MAX);
    }
}
