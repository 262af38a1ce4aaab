//! The billing run: renewals, scheduled cancellations taking effect, fees,
//! refunds and expiry, one step of a subscription at a time.
//!
//! A run claims the subscriptions that have been due longest (`due_at`, an
//! indexed column: a run never scans the table), a batch at a time, and
//! applies to each the one step the domain says is next. Renewals — almost
//! every step of a busy run — are applied a batch per transaction
//! (`Store::begin_batch`); any other step in its own. A crash loses at most
//! the batch in flight; running again continues where it stopped (a dead
//! worker's claims run out by themselves), and running twice changes
//! nothing the second time. A claim keeps other workers off a batch, so
//! several workers share one run. At most one charge per (subscription,
//! period) holds by the ledger's unique index even if two workers raced
//! past every check.

use std::collections::HashMap;

use baobao_domain::Money;
use baobao_domain::calendar::Calendar;
use baobao_domain::ids::{BillingRunId, FamilyId, LedgerEntryId, SubscriptionId};
use baobao_domain::ledger::{LedgerKind, LedgerNote};
use baobao_domain::policy::Policy;
use baobao_domain::receipt::{ChargeReceipt, PeriodRef, PlanName, ReceiptBody};
use baobao_domain::subscription::{
    BillingState, BillingStep, CancellationStatus, Period, Schedule, SubscriptionStatus, notice_deadline, reminder_at,
    renews, running_status,
};
use baobao_store::{LedgerEntry, PolicyVersion, Share, Subscription, Tx};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::random::random_bytes;
use crate::state::{AppState, Parts};
use crate::views::BillingRunSummary;

/// A run stops after this many steps even if more are due (the next run
/// goes on); keeps one run's duration bounded.
pub const BILLING_STEPS_PER_RUN_MAX: u64 = 1_000_000;
/// Catching one subscription up (before a quote, say) takes at most this many steps.
pub const SETTLE_STEPS_MAX: u32 = 1_000;
/// A run's steps are taken by this many claimers side by side, each in its
/// own share of the subscriptions (`Share`): while one waits for the
/// gateway or for its commit to reach the disk, the others work, and
/// commits made meanwhile share one flush (SQLite's group commit).
pub const BILLING_CLAIMERS: usize = 8;
/// Subscriptions a claimer claims at once; their renewals are applied in
/// one transaction. It holds SQLite's one writer for the batch's inserts
/// (a few tens of milliseconds), which requests queue behind.
pub const BILLING_BATCH: usize = 128;
/// How long a claim keeps other workers off a batch, in wall-clock time:
/// far longer than asking the gateway for a batch's charges takes, and at
/// most how long a dead worker's batch waits for another. Should a claim
/// run out while its worker still works, another worker asks the gateway
/// for the same charges under the same keys (the gateway answers a key
/// once) and the re-check under the row lock applies each step once.
const CLAIM_SECONDS: i64 = 10;
/// How often a worker with nothing left to claim looks whether claims held
/// by others have ended.
const CLAIM_WAIT_MIN: SignedDuration = SignedDuration::from_millis(20);
const CLAIM_WAIT_MAX: SignedDuration = SignedDuration::from_millis(500);
/// Charges of one batch asked of the gateway at the same time.
const GATEWAY_ASKS_AT_ONCE: usize = 16;

/// A subscription's terms and calendar, loaded once per step.
pub struct Terms {
    pub policy: Policy,
    pub schedule: Schedule,
}

impl Terms {
    pub async fn load(state: &AppState, subscription: &Subscription) -> ApiResult<Terms> {
        let version = state.store.policy(&subscription.plan_id, subscription.policy_version).await?;
        Terms::of(&version, subscription)
    }

    /// The same, read inside a transaction.
    pub async fn load_in(tx: &mut Tx, subscription: &Subscription) -> ApiResult<Terms> {
        let version = tx.policy(&subscription.plan_id, subscription.policy_version).await?;
        Terms::of(&version, subscription)
    }

    fn of(version: &PolicyVersion, subscription: &Subscription) -> ApiResult<Terms> {
        let policy = version.policy.clone();
        let calendar = Calendar::new(&subscription.time_zone).map_err(|e| ApiError::internal(e.to_string()))?;
        let schedule = Schedule {
            signed_up_at: subscription.signed_up_at,
            anchor: subscription.anchor_at,
            length: policy.period,
            calendar,
        };
        Ok(Terms { policy, schedule })
    }
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(error.to_string())
}

pub fn current_period(subscription: &Subscription) -> Period {
    Period {
        position: subscription.current_position,
        start: subscription.current_period_start,
        end: subscription.current_period_end,
    }
}

pub fn billing_state(subscription: &Subscription, terms: &Terms) -> BillingState {
    let policy = &terms.policy;
    let status = subscription.status;
    let renews = renews(
        status,
        subscription.pending_cancellation_id.is_some(),
        policy.auto_renew,
        policy.commitment_periods,
        subscription.current_position,
    );
    let reminded = subscription.reminded_period_start == Some(subscription.current_period_start);
    let reminder_at = (renews && !reminded)
        .then(|| {
            let period = current_period(subscription);
            reminder_at(&terms.schedule.calendar, &period, policy.notice_days, policy.reminder_days).ok()
        })
        .flatten();
    BillingState {
        status,
        current: current_period(subscription),
        current_period_paid: subscription.current_period_paid,
        effective_at: subscription.effective_at,
        auto_renew: policy.auto_renew,
        commitment_periods: policy.commitment_periods,
        last_charge_attempt_at: subscription.last_charge_attempt_at,
        reminder_at,
    }
}

/// Recomputes `due_at` after any change to a subscription.
pub fn refresh_due_at(subscription: &mut Subscription, terms: &Terms) {
    subscription.due_at = billing_state(subscription, terms).due_at(&terms.schedule.calendar);
}

pub fn charge_key(subscription: &Subscription, period_start: Timestamp) -> String {
    format!("charge:{}:{}", subscription.id, period_start.as_microsecond())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Renewed,
    ChargeDeclined,
    Recovered,
    CancellationEffective { refunds: u64, fee: bool },
    Expired,
    Reminded,
    Nothing,
}

/// The charge a step asks of the gateway: its key (one per subscription
/// and period) and the amount.
#[derive(Clone, Debug, PartialEq, Eq)]
struct WantedCharge {
    key: String,
    amount: Money,
}

/// What the gateway answered for a `WantedCharge`.
type ChargeAnswer = Result<String, crate::gateway::GatewayError>;

fn next_step(subscription: &Subscription, terms: &Terms, now: Timestamp) -> ApiResult<BillingStep> {
    billing_state(subscription, terms)
        .next_step(&terms.schedule.calendar, now)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// The charge the next step takes, if any.
fn wanted_charge(subscription: &Subscription, terms: &Terms, now: Timestamp) -> ApiResult<Option<WantedCharge>> {
    if terms.policy.price.is_zero() {
        return Ok(None);
    }
    let period_start = match next_step(subscription, terms, now)? {
        BillingStep::Renew { next } => {
            terms.schedule.period(next).map_err(|e| ApiError::internal(e.to_string()))?.start
        }
        BillingStep::RetryCharge => subscription.current_period_start,
        _ => return Ok(None),
    };
    Ok(Some(WantedCharge { key: charge_key(subscription, period_start), amount: terms.policy.price }))
}

/// One billing step of one subscription, if it is due. It is decided
/// under the subscription's row lock; a charge the step needs is asked of
/// the gateway with no transaction open (SQLite's one writer never waits
/// on a network call, and no PostgreSQL row stays locked meanwhile); then,
/// under the lock again, the step is applied with the gateway's answer —
/// if it is still the step decided. If something moved the subscription
/// on in between (another worker, a cancellation), a charge nobody
/// recorded is voided. `None`: nothing due.
async fn step(state: &AppState, subscription_id: &SubscriptionId, now: Timestamp) -> ApiResult<Option<Outcome>> {
    let mut tx = state.store.begin().await?;
    let subscription = tx.subscription_for_update(subscription_id).await?;
    if subscription.due_at.is_none_or(|due| due > now) {
        return Ok(None);
    }
    let terms = Terms::load_in(&mut tx, &subscription).await?;
    let mut answer = None;
    let mut subscription = subscription;
    if let Some(wanted) = wanted_charge(&subscription, &terms, now)? {
        tx.rollback().await?;
        let asked = state.gateway.charge(&wanted.key, wanted.amount).await;
        tx = state.store.begin().await?;
        subscription = tx.subscription_for_update(&subscription.id).await?;
        if wanted_charge(&subscription, &terms, now)?.as_ref() != Some(&wanted) {
            let recorded = recorded(&mut tx, &subscription, &wanted).await?;
            tx.rollback().await?;
            if asked.is_ok() && !recorded {
                void_charge(state, &wanted).await;
            }
            return Ok(Some(Outcome::Nothing));
        }
        answer = Some(asked);
    }
    let outcome = apply_step(state, &mut tx, subscription, now, answer).await?;
    tx.commit().await?;
    Ok(Some(outcome))
}

/// Whether the ledger holds `charge` (another worker recorded it).
async fn recorded(tx: &mut Tx, subscription: &Subscription, charge: &WantedCharge) -> ApiResult<bool> {
    Ok(tx.ledger_of_subscription(&subscription.id).await?.iter().any(|e| e.entry_key == charge.key))
}

/// The steps of a batch of the subscriptions of `share` due at `now`
/// (`None`: nothing due). The batch is claimed and the claim committed;
/// any step but a renewal is taken by `step`, one by one; the renewals'
/// charges are asked of the gateway with no transaction open, and then
/// the renewals are applied in one batch transaction, each under its row
/// lock and only if it is still the step decided (as `step` does).
async fn step_batch(state: &AppState, share: Share, now: Timestamp) -> ApiResult<Option<Vec<Outcome>>> {
    let wall_now = state.clock.wall_now();
    let claimed_until = wall_now.checked_add(SignedDuration::from_secs(CLAIM_SECONDS)).map_err(internal)?;
    let mut tx = state.store.begin().await?;
    let claimed = tx.claim_due_subscriptions(now, share, BILLING_BATCH, wall_now, claimed_until).await?;
    tx.commit().await?;
    if claimed.is_empty() {
        return Ok(None);
    }
    let mut outcomes = Vec::with_capacity(claimed.len());
    let mut renewals = Vec::new();
    let mut versions = HashMap::new();
    for subscription in &claimed {
        let key = (subscription.plan_id.clone(), subscription.policy_version);
        if !versions.contains_key(&key) {
            let version = state.store.policy(&subscription.plan_id, subscription.policy_version).await?;
            versions.insert(key.clone(), version);
        }
        let terms = Terms::of(&versions[&key], subscription)?;
        match next_step(subscription, &terms, now)? {
            BillingStep::Renew { .. } => {
                renewals.push((subscription.id.clone(), wanted_charge(subscription, &terms, now)?))
            }
            _ => outcomes.extend(step(state, &subscription.id, now).await?),
        }
    }
    if renewals.is_empty() {
        // Every claim here was ended by its step's write, or is released now.
        release_claims(state, &claimed).await?;
        return Ok(Some(outcomes));
    }
    let mut answers = ask_gateway(state, renewals.iter().filter_map(|(_, wanted)| wanted.clone())).await?;
    let asked: HashMap<&str, &Option<WantedCharge>> = renewals.iter().map(|(id, w)| (id.as_str(), w)).collect();
    let ids: Vec<SubscriptionId> = renewals.iter().map(|(id, _)| id.clone()).collect();
    let mut tx = state.store.begin_batch().await?;
    let locked = tx.subscriptions_for_update(&ids).await?;
    let families: Vec<FamilyId> = locked.iter().map(|s| s.family_id.clone()).collect();
    tx.read_guardians_of(&families).await?;
    let mut voids = Vec::new();
    for subscription in locked {
        let wanted = asked.get(subscription.id.as_str()).copied().cloned().flatten();
        let terms = Terms::load_in(&mut tx, &subscription).await?;
        let still_due = subscription.due_at.is_some_and(|due| due <= now)
            && matches!(next_step(&subscription, &terms, now)?, BillingStep::Renew { .. });
        if !still_due || wanted_charge(&subscription, &terms, now)? != wanted {
            // Moved on meanwhile (a cancellation, a request that settled it).
            let answer = wanted.as_ref().and_then(|w| answers.remove(&w.key));
            if let (Some(wanted), Some(Ok(_))) = (wanted, answer)
                && !recorded(&mut tx, &subscription, &wanted).await?
            {
                voids.push(wanted);
            }
            outcomes.push(Outcome::Nothing);
            continue;
        }
        let answer = match wanted {
            Some(wanted) => Some(answers.remove(&wanted.key).ok_or_else(|| internal("a charge was not asked for"))?),
            None => None,
        };
        outcomes.push(apply_step(state, &mut tx, subscription, now, answer).await?);
    }
    // A charge taken for a subscription that is gone (its family deleted
    // meanwhile) is given back too.
    for (_, wanted) in &renewals {
        if let Some(wanted) = wanted
            && let Some(Ok(_)) = answers.remove(&wanted.key)
        {
            voids.push(wanted.clone());
        }
    }
    tx.release_claims(&ids_of(&claimed)).await?;
    tx.commit().await?;
    for charge in &voids {
        void_charge(state, charge).await;
    }
    Ok(Some(outcomes))
}

/// Ends the claims on `claimed` that no step wrote.
async fn release_claims(state: &AppState, claimed: &[Subscription]) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    tx.release_claims(&ids_of(claimed)).await?;
    tx.commit().await?;
    Ok(())
}

fn ids_of(subscriptions: &[Subscription]) -> Vec<SubscriptionId> {
    subscriptions.iter().map(|s| s.id.clone()).collect()
}

/// Asks the gateway for `charges`, `GATEWAY_ASKS_AT_ONCE` at a time; the
/// answers by charge key.
async fn ask_gateway(
    state: &AppState,
    charges: impl Iterator<Item = WantedCharge>,
) -> ApiResult<HashMap<String, ChargeAnswer>> {
    let mut answers = HashMap::new();
    let mut asking = tokio::task::JoinSet::new();
    for charge in charges {
        while asking.len() >= GATEWAY_ASKS_AT_ONCE {
            let Some(done) = asking.join_next().await else { break };
            let (key, answer) = done.map_err(internal)?;
            answers.insert(key, answer);
        }
        let gateway = state.gateway.clone();
        asking.spawn(async move {
            let answer = gateway.charge(&charge.key, charge.amount).await;
            (charge.key, answer)
        });
    }
    while let Some(done) = asking.join_next().await {
        let (key, answer) = done.map_err(internal)?;
        answers.insert(key, answer);
    }
    Ok(answers)
}

/// Gives back a charge the gateway took for a step that did not happen.
async fn void_charge(state: &AppState, charge: &WantedCharge) {
    if let Err(refused) = state.gateway.refund(&format!("void:{}", charge.key), charge.amount).await {
        tracing::error!(entry_key = %charge.key, %refused, "could not void a charge for a step that did not happen");
    }
}

/// Applies the next billing step to a subscription locked in `tx`; a
/// step that charges is given the gateway's `answer` (asked by `step`).
async fn apply_step(
    parts: &Parts,
    tx: &mut Tx,
    mut subscription: Subscription,
    now: Timestamp,
    answer: Option<ChargeAnswer>,
) -> ApiResult<Outcome> {
    let terms = Terms::load_in(tx, &subscription).await?;
    let step = next_step(&subscription, &terms, now)?;
    let outcome = match step {
        BillingStep::Nothing => Outcome::Nothing,
        BillingStep::TakeEffect => take_effect(parts, tx, &mut subscription, now).await?,
        BillingStep::Renew { next } => {
            let period = terms.schedule.period(next).map_err(|e| ApiError::internal(e.to_string()))?;
            subscription.current_position = period.position;
            subscription.current_period_start = period.start;
            subscription.current_period_end = period.end;
            let paid = charge_period(parts, tx, &subscription, &terms.policy, now, answer).await?;
            subscription.current_period_paid = paid;
            subscription.last_charge_attempt_at = Some(now);
            if subscription.pending_cancellation_id.is_none() {
                subscription.status = running_status(period.position, paid);
            }
            let action = if paid { "subscription.renewed" } else { "subscription.charge_declined" };
            tx.audit(
                now,
                "billing",
                action,
                &[subscription.id.as_str()],
                &json!({"period_start": period.start.to_string()}),
            )
            .await?;
            if paid {
                renewed_webhook(parts, tx, &subscription).await?;
            }
            if paid { Outcome::Renewed } else { Outcome::ChargeDeclined }
        }
        BillingStep::RetryCharge => {
            let paid = charge_period(parts, tx, &subscription, &terms.policy, now, answer).await?;
            subscription.current_period_paid = paid;
            subscription.last_charge_attempt_at = Some(now);
            if paid {
                if subscription.pending_cancellation_id.is_none() {
                    subscription.status = running_status(subscription.current_position, true);
                }
                tx.audit(now, "billing", "subscription.charge_recovered", &[subscription.id.as_str()], &json!({}))
                    .await?;
                renewed_webhook(parts, tx, &subscription).await?;
                Outcome::Recovered
            } else {
                Outcome::ChargeDeclined
            }
        }
        BillingStep::Remind => {
            remind(parts, tx, &subscription, &terms, now).await?;
            subscription.reminded_period_start = Some(subscription.current_period_start);
            Outcome::Reminded
        }
        BillingStep::Expire { at } => {
            subscription.status = SubscriptionStatus::Expired;
            subscription.ended_at = Some(at);
            tx.audit(
                now,
                "billing",
                "subscription.expired",
                &[subscription.id.as_str()],
                &json!({"ended_at": at.to_string()}),
            )
            .await?;
            Outcome::Expired
        }
    };
    refresh_due_at(&mut subscription, &terms);
    debug_assert!(subscription.due_at.is_none_or(|due| due > now || outcome != Outcome::Nothing));
    tx.update_subscription(&subscription).await?;
    if matches!(outcome, Outcome::CancellationEffective { .. } | Outcome::Expired) {
        let ended_at = subscription.ended_at.unwrap_or(now);
        crate::services::deletion::schedule_retention(tx, &subscription, terms.policy.retention_days, ended_at).await?;
    }
    Ok(outcome)
}

/// `subscription.renewed`: a new period is paid for.
async fn renewed_webhook(parts: &Parts, tx: &mut Tx, subscription: &Subscription) -> ApiResult<()> {
    let service = tx.plan(&subscription.plan_id).await?.service;
    let data = json!({
        "subscription_id": subscription.id,
        "family_id": subscription.family_id,
        "period_start": subscription.current_period_start.to_string(),
        "period_end": subscription.current_period_end.to_string(),
    });
    let event = charge_key(subscription, subscription.current_period_start);
    crate::services::outbox::webhook(tx, parts, &service, "subscription.renewed", &event, &data).await
}

/// Queues the renewal reminder: when it renews, at what price, and the last
/// moment to cancel without paying for the next period. Logged in the audit trail.
async fn remind(
    parts: &Parts,
    tx: &mut Tx,
    subscription: &Subscription,
    terms: &Terms,
    now: Timestamp,
) -> ApiResult<()> {
    let plan = tx.plan(&subscription.plan_id).await?;
    let guardians = tx.guardians_of(&subscription.family_id).await?;
    let current = current_period(subscription);
    let calendar = &terms.schedule.calendar;
    let cancel_by = notice_deadline(calendar, &current, terms.policy.notice_days).map_err(internal)?;
    // Said as it is now: a run that reaches the reminder after the deadline
    // (one was missed) never names a date already past as if it still held.
    let variant = if now > cancel_by {
        "late"
    } else if current.is_trial() {
        "trial"
    } else {
        "on_time"
    };
    let next_end = terms.schedule.period(current.position + 1).map_err(internal)?.end;
    let payload = json!({
        "plan": {"zh-CN": plan.name_zh_cn, "en": plan.name_en},
        "time_zone": subscription.time_zone,
        "renews_at": subscription.current_period_end.to_string(),
        "price": terms.policy.price,
        "cancel_by": cancel_by.to_string(),
        "ends_if_cancelled_now": next_end.to_string(),
        "variant": variant,
        "subscription_id": subscription.id,
    });
    let event = format!("{}:{}", subscription.id, subscription.current_period_start.as_microsecond());
    crate::services::outbox::email_guardians(tx, parts, &guardians, "renewal_reminder", &event, &payload).await?;
    tx.audit(
        now,
        "billing",
        "reminder.sent",
        &[subscription.family_id.as_str(), subscription.id.as_str()],
        &json!({
            "renews_at": subscription.current_period_end.to_string(),
            "cancel_by": cancel_by.to_string(),
            "reminder_days": terms.policy.reminder_days,
            "variant": variant,
        }),
    )
    .await?;
    Ok(())
}

/// Records the current period's charge as the gateway answered it; `true`
/// when it is paid.
async fn charge_period(
    parts: &Parts,
    tx: &mut Tx,
    subscription: &Subscription,
    policy: &Policy,
    now: Timestamp,
    answer: Option<ChargeAnswer>,
) -> ApiResult<bool> {
    if policy.price.is_zero() {
        return Ok(true);
    }
    let answer = answer.ok_or_else(|| ApiError::internal("a charge was applied that the gateway was not asked for"))?;
    let key = charge_key(subscription, subscription.current_period_start);
    match answer {
        Ok(reference) => {
            let entry = LedgerEntry::charge(
                LedgerEntryId::from_random(random_bytes()),
                subscription,
                (subscription.current_period_start, subscription.current_period_end),
                policy.price,
                key,
                reference,
                LedgerNote::Renewal.text(),
                now,
            );
            if tx.append_ledger_entry(&entry).await? {
                let plan = tx.plan(&subscription.plan_id).await?;
                let body = ReceiptBody::Charge(ChargeReceipt {
                    subscription_id: subscription.id.to_string(),
                    plan_id: plan.id.to_string(),
                    plan_name: PlanName { zh_cn: plan.name_zh_cn.clone(), en: plan.name_en.clone() },
                    ledger_entry_id: entry.id.to_string(),
                    charge: policy.price,
                    current_period: PeriodRef {
                        start: subscription.current_period_start,
                        end: subscription.current_period_end,
                    },
                    gateway_reference: entry.gateway_reference.clone(),
                });
                let (stored, document) = crate::receipts::issue(
                    parts,
                    &subscription.family_id,
                    &subscription.time_zone,
                    entry.id.as_str(),
                    now,
                    body,
                )?;
                tx.insert_receipt(&stored).await?;
                // Every movement of money is told, with its receipt.
                let guardians = tx.guardians_of(&subscription.family_id).await?;
                let payload = json!({
                    "plan": {"zh-CN": plan.name_zh_cn, "en": plan.name_en},
                    "time_zone": subscription.time_zone,
                    "renews_at": subscription.current_period_end.to_string(),
                    "subscription_id": subscription.id,
                    "receipt": document,
                });
                let event = entry.id.as_str();
                crate::services::outbox::email_guardians(tx, parts, &guardians, "payment_received", event, &payload)
                    .await?;
            }
            Ok(true)
        }
        Err(declined) => {
            tracing::info!(subscription_id = %subscription.id, reason = %declined, "charge declined");
            Ok(false)
        }
    }
}

/// A scheduled cancellation reaches `effective_at`: the fee (if the quote
/// had one) is charged, any charge for a period starting at or after
/// `effective_at` is refunded, and the subscription ends.
async fn take_effect(
    parts: &Parts,
    tx: &mut Tx,
    subscription: &mut Subscription,
    now: Timestamp,
) -> ApiResult<Outcome> {
    let effective_at = subscription.effective_at.unwrap_or(now);
    let mut fee_charged = false;
    let mut fee_owed = None;
    if let Some(cancellation_id) = subscription.pending_cancellation_id.clone() {
        let cancellation = tx.cancellation(&cancellation_id).await?;
        tx.set_cancellation_status(&cancellation_id, CancellationStatus::Effective, None).await?;
        if cancellation.fee_minor > 0 {
            let fee = Money { amount_minor: cancellation.fee_minor, currency: cancellation.currency };
            fee_owed = Some(fee);
            let key = format!("fee:{cancellation_id}");
            // Owed now; taken by the gateway after the commit (money.rs).
            fee_charged = tx
                .append_ledger_entry_to_pay(
                    &LedgerEntry::fee(
                        LedgerEntryId::from_random(random_bytes()),
                        subscription,
                        fee,
                        key,
                        LedgerNote::FeeAsQuoted.text(),
                        now,
                    ),
                    parts.clock.wall_now(),
                )
                .await?;
        }
    }
    let refunds = refund_charges_from(parts, tx, subscription, effective_at, None, now).await?;
    let cancellation_id = subscription.pending_cancellation_id.take();
    subscription.status = SubscriptionStatus::Cancelled;
    subscription.ended_at = Some(effective_at);
    tx.audit(
        now,
        "billing",
        "cancellation.effective",
        &[subscription.id.as_str()],
        &json!({"effective_at": effective_at.to_string(), "refunds": refunds.len()}),
    )
    .await?;
    let plan = tx.plan(&subscription.plan_id).await?;
    let guardians = tx.guardians_of(&subscription.family_id).await?;
    let event = cancellation_id.as_ref().map(|c| c.to_string()).unwrap_or_else(|| subscription.id.to_string());
    let email = json!({
        "plan": {"zh-CN": plan.name_zh_cn, "en": plan.name_en},
        "time_zone": subscription.time_zone,
        "effective_at": effective_at.to_string(),
        "subscription_id": subscription.id,
        // Said as it happened: with the early-termination fee when one was due.
        "fee": fee_owed,
        "variant": if fee_owed.is_some() { "fee" } else { "on_time" },
    });
    crate::services::outbox::email_guardians(tx, parts, &guardians, "cancellation_effective", &event, &email).await?;
    let hook = json!({
        "subscription_id": subscription.id,
        "family_id": subscription.family_id,
        "cancellation_id": cancellation_id,
        "effective_at": effective_at.to_string(),
    });
    crate::services::outbox::webhook(tx, parts, &plan.service, "subscription.cancelled", &event, &hook).await?;
    Ok(Outcome::CancellationEffective { refunds: refunds.len() as u64, fee: fee_charged })
}

/// Refunds every charge for a period that starts at or after
/// `effective_at` — the invariant's safety net. Returns the refunds written,
/// their money pending until the gateway confirms it (money.rs).
pub async fn refund_charges_from(
    parts: &Parts,
    tx: &mut Tx,
    subscription: &Subscription,
    effective_at: Timestamp,
    quoted_period_start: Option<Timestamp>,
    now: Timestamp,
) -> ApiResult<Vec<LedgerEntry>> {
    let mut refunded = Vec::new();
    for charge in tx.ledger_of_subscription(&subscription.id).await? {
        // The period the cancellation was quoted in is settled by its quote
        // (a request at the very instant a period begins is in that period).
        let late = charge.kind == LedgerKind::Charge
            && charge.period_start.is_some_and(|start| start >= effective_at && Some(start) != quoted_period_start);
        if !late {
            continue;
        }
        let key = format!("refund:{}", charge.entry_key);
        let period = charge.period_start.zip(charge.period_end);
        let refund = LedgerEntry::refund(
            LedgerEntryId::from_random(random_bytes()),
            subscription,
            Money { amount_minor: charge.amount_minor, currency: charge.currency },
            period,
            key,
            LedgerNote::LateChargeRefund.text(),
            now,
        );
        if tx.append_ledger_entry_to_pay(&refund, parts.clock.wall_now()).await? {
            refunded.push(refund);
        }
    }
    Ok(refunded)
}

/// Runs billing at `at` until nothing is due.
pub async fn run(state: &AppState, at: Timestamp) -> ApiResult<BillingRunSummary> {
    let run_id = BillingRunId::from_random(random_bytes());
    state.store.start_billing_run(&run_id, at, state.clock.now()).await?;
    let mut summary = BillingRunSummary { id: run_id.to_string(), run_at: at, ..BillingRunSummary::default() };
    let mut claimers = tokio::task::JoinSet::new();
    for share in Share::all(BILLING_CLAIMERS) {
        let state = state.clone();
        let steps_max = BILLING_STEPS_PER_RUN_MAX / share.parts as u64;
        claimers.spawn(async move { run_share(&state, share, at, steps_max).await });
    }
    // Every claimer finishes its share (what one did is done, whatever
    // another met); the first failure, if any, is the run's.
    let mut failed = None;
    while let Some(done) = claimers.join_next().await {
        match done.map_err(|e| ApiError::internal(e.to_string())).and_then(|share| share) {
            Ok(share) => summary.add_steps(&share),
            Err(error) => failed = failed.or(Some(error)),
        }
    }
    if let Some(error) = failed {
        return Err(error);
    }
    // Disputes past a deadline climb a level; their guardians are told.
    summary.disputes_escalated = crate::services::dispute_levels::escalate_overdue(state, at).await?;
    // Children's data whose retention ran out (or whose deletion a crash interrupted).
    summary.deletions_performed = crate::services::deletion::run_due(state, at).await?;
    // Re-keyings a crash interrupted (one child's deletion): finished.
    crate::services::child_deletion::finish_rekeys(state).await?;
    // Exports whose time ran out, and files and keys nothing names any more.
    summary.exports_expired = crate::services::exports::expire_due(state, at).await?;
    summary.files_swept =
        crate::services::exports::sweep(state).await? + crate::services::evidence::sweep(state).await?;
    // Refunds and fees the steps wrote (and earlier ones due a retry), outside any transaction.
    let settled = crate::services::money::settle_due(state, state.clock.wall_now()).await?;
    summary.money_succeeded = u64::from(settled.succeeded);
    summary.money_retrying = u64::from(settled.retrying);
    summary.money_failed = u64::from(settled.failed);
    crate::metrics::billing_run(&summary);
    let text = serde_json::to_string(&summary).map_err(|e| ApiError::internal(e.to_string()))?;
    state.store.finish_billing_run(&run_id, state.clock.now(), &text).await?;
    tracing::info!(run_id = %run_id, steps = summary.steps, "billing run finished");
    Ok(summary)
}

/// The steps of one share of a run, counted.
async fn run_share(state: &AppState, share: Share, at: Timestamp, steps_max: u64) -> ApiResult<BillingRunSummary> {
    let mut summary = BillingRunSummary::default();
    while summary.steps < steps_max {
        let Some(outcomes) = step_batch(state, share, at).await? else {
            // Nothing to claim. What other workers (or a dead one) hold is
            // done by them, or claimed here once their claims run out: a
            // run ends when nothing is due.
            let wall_now = state.clock.wall_now();
            match state.store.next_claim_end(at, share, wall_now).await? {
                Some(until) => {
                    let wait = wall_now.duration_until(until).clamp(CLAIM_WAIT_MIN, CLAIM_WAIT_MAX);
                    tokio::time::sleep(wait.unsigned_abs()).await;
                    continue;
                }
                None => break,
            }
        };
        for outcome in outcomes {
            summary.count(outcome);
        }
    }
    Ok(summary)
}

impl BillingRunSummary {
    /// Counts one step.
    fn count(&mut self, outcome: Outcome) {
        self.steps += 1;
        match outcome {
            Outcome::Renewed | Outcome::Recovered => self.renewed += 1,
            Outcome::ChargeDeclined => self.charges_declined += 1,
            Outcome::CancellationEffective { refunds, fee } => {
                self.cancellations_effective += 1;
                self.refunds_issued += refunds;
                self.fees_charged += u64::from(fee);
            }
            Outcome::Expired => self.expired += 1,
            Outcome::Reminded => self.reminders_sent += 1,
            Outcome::Nothing => {}
        }
    }

    /// Adds the step counts of one share of the run.
    fn add_steps(&mut self, share: &BillingRunSummary) {
        self.steps += share.steps;
        self.renewed += share.renewed;
        self.charges_declined += share.charges_declined;
        self.cancellations_effective += share.cancellations_effective;
        self.refunds_issued += share.refunds_issued;
        self.fees_charged += share.fees_charged;
        self.expired += share.expired;
        self.reminders_sent += share.reminders_sent;
    }
}

/// Brings one subscription up to `now` before it is quoted or changed, so
/// that no request ever acts on a period that has already ended.
pub async fn settle(
    state: &AppState,
    subscription_id: &baobao_domain::ids::SubscriptionId,
    now: Timestamp,
) -> ApiResult<()> {
    for _ in 0..SETTLE_STEPS_MAX {
        if step(state, subscription_id, now).await?.is_none() {
            return Ok(());
        }
    }
    Err(ApiError::internal("subscription did not settle"))
}
