//! Subscribing, and the subscriptions a caller may see, with their terms.

use axum::http::StatusCode;
use baobao_domain::calendar::Calendar;
use baobao_domain::ids::{FamilyId, PlanId, SubscriptionId};
use baobao_domain::ledger::LedgerNote;
use baobao_domain::receipt::{FirstPeriod, PlanName, ReceiptBody, SubscriptionReceipt, TermsRef};
use baobao_domain::subscription::{Period, Schedule, cancel_by, renews, running_status};
use baobao_domain::{Money, Policy};
use baobao_store::{Guardian, LedgerEntry, PolicyVersion, StoreError, Subscription};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Caller, Role, STAFF_READERS};
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::idempotency::answer_with_change;
use crate::random::new_id;
use crate::receipts;
use crate::services::billing;
use crate::services::billing::{Terms, charge_key, current_period, refresh_due_at};
use crate::state::AppState;
use crate::views::{PendingCancellationView, PeriodView, SubscriptionView, SubscriptionWithReceipt};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeInput {
    pub plan_id: String,
    pub accept_policy_sha256: String,
}

pub async fn subscribe(state: &AppState, caller: &Caller, input: SubscribeInput) -> ApiResult<SubscriptionWithReceipt> {
    let (guardian_id, family_id) = caller.require_guardian()?;
    let plan_id = PlanId::parse(&input.plan_id).map_err(|_| ApiError::not_found("plan"))?;
    let plan = state.store.plan(&plan_id).await.or_not_found("plan")?;
    let (version, policy) = Terms::policy_of(state, &plan).await?;
    if input.accept_policy_sha256.trim().to_ascii_lowercase() != version.sha256 {
        return Err(ApiError::conflict("policy_hash_mismatch").with("current", version.sha256.clone()));
    }
    let existing = state.store.subscriptions_of(family_id).await?;
    let live = |s: &Subscription| s.status.is_live();
    if existing.iter().any(|s| s.plan_id == plan_id && live(s)) {
        return Err(ApiError::conflict("already_subscribed"));
    }
    let family = state.store.family(family_id).await?;
    let calendar = Calendar::new(&family.time_zone).map_err(internal)?;
    let now = state.clock.now();
    let schedule = Schedule::for_sign_up(&policy, calendar, now).map_err(internal)?;
    let first = schedule.period(schedule.first_position()).map_err(internal)?;
    let mut subscription = first_period_of(family_id, &plan_id, &version, &family.time_zone, &schedule, &first, now);
    let terms = Terms { policy, schedule };
    refresh_due_at(&mut subscription, &terms);

    // The first charge happens before anything is written: a declined
    // payment leaves no subscription behind.
    let first_charge = take_first_charge(state, &mut subscription, &terms, &first, now).await?;
    let body = ReceiptBody::Subscription(SubscriptionReceipt {
        subscription_id: subscription.id.to_string(),
        plan_id: plan.id.to_string(),
        plan_name: PlanName { zh_cn: plan.name_zh_cn.clone(), en: plan.name_en.clone() },
        channel: "self_service".to_owned(),
        accepted_by: guardian_id.to_string(),
        signed_up_at: now,
        terms: TermsRef { policy_version: version.version, policy_sha256: version.sha256.clone() },
        price: terms.policy.price,
        period: terms.policy.period,
        current_period: FirstPeriod { start: first.start, end: first.end, is_trial: first.is_trial() },
        first_charge: first_charge.as_ref().map(|c| Money { amount_minor: c.amount_minor, currency: c.currency }),
    });
    let (stored_receipt, receipt) =
        receipts::issue(state, family_id, &family.time_zone, subscription.id.as_str(), now, body)?;
    let guardians = state.store.guardians_of(family_id).await?;
    let email = json!({"receipt": receipt, "plan": {"zh-CN": plan.name_zh_cn, "en": plan.name_en}, "time_zone": family.time_zone});
    let hook = json!({
        "subscription_id": subscription.id,
        "family_id": family_id,
        "plan_id": plan.id,
        "status": subscription.status,
        "period_start": first.start.to_string(),
        "period_end": first.end.to_string(),
    });
    let audit = json!({"plan_id": plan.id, "policy_version": version.version, "policy_sha256": version.sha256});
    let answer = SubscriptionWithReceipt { subscription: subscription_view(&subscription, &terms), receipt };
    let written = NewSubscription {
        subscription: &subscription,
        service: &plan.service,
        first_charge: first_charge.as_ref(),
        receipt: &stored_receipt,
        guardians: &guardians,
        email: &email,
        hook: &hook,
        audit: &audit,
        answer: &answer,
    }
    .write(state, &caller.actor(), now)
    .await;
    if let Err(error) = written {
        return Err(void_first_charge(state, error, first_charge.as_ref()).await);
    }
    // A trial shorter than the reminder's lead time is reminded now, at
    // sign-up; any other subscription has nothing due yet and costs no write.
    if subscription.due_at.is_some_and(|due| due <= now) {
        billing::settle(state, &subscription.id, now).await?;
    }
    Ok(answer)
}

/// Everything a sign-up writes, in one transaction.
struct NewSubscription<'a> {
    subscription: &'a Subscription,
    service: &'a str,
    first_charge: Option<&'a LedgerEntry>,
    receipt: &'a baobao_store::StoredReceipt,
    guardians: &'a [Guardian],
    email: &'a serde_json::Value,
    hook: &'a serde_json::Value,
    audit: &'a serde_json::Value,
    /// What the guardian is answered, saved with the subscription.
    answer: &'a SubscriptionWithReceipt,
}

impl NewSubscription<'_> {
    async fn write(&self, state: &AppState, actor: &str, now: Timestamp) -> Result<(), ApiError> {
        let subscription = self.subscription;
        let mut tx = state.store.begin().await?;
        tx.insert_subscription(subscription).await.map_err(|error| match error {
            // The one-live-subscription-per-plan index: a double-click, two tabs.
            StoreError::Conflict { .. } => ApiError::conflict("already_subscribed"),
            other => other.into(),
        })?;
        let receipt_id = self.receipt.id.as_str();
        crate::services::outbox::email_guardians(
            &mut tx,
            state,
            self.guardians,
            "subscription_confirmed",
            receipt_id,
            self.email,
        )
        .await?;
        crate::services::outbox::webhook(
            &mut tx,
            state,
            self.service,
            "subscription.created",
            subscription.id.as_str(),
            self.hook,
        )
        .await?;
        // Subscribing again keeps the child's data: a retention deletion is called off.
        tx.cancel_retention_deletion(&subscription.family_id, self.service).await?;
        if let Some(charge) = self.first_charge {
            tx.append_ledger_entry(charge).await?;
        }
        tx.insert_receipt(self.receipt).await?;
        let subjects = [subscription.family_id.as_str(), subscription.id.as_str(), receipt_id];
        tx.audit(now, actor, "subscription.created", &subjects, self.audit).await?;
        answer_with_change(&mut tx, StatusCode::CREATED, self.answer).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A new subscription in its first period (a trial or a paid one).
fn first_period_of(
    family_id: &FamilyId,
    plan_id: &PlanId,
    version: &PolicyVersion,
    time_zone: &str,
    schedule: &Schedule,
    first: &Period,
    now: Timestamp,
) -> Subscription {
    Subscription {
        id: new_id(),
        family_id: family_id.clone(),
        plan_id: plan_id.clone(),
        policy_version: version.version,
        policy_sha256: version.sha256.clone(),
        status: running_status(first.position, true),
        time_zone: time_zone.to_owned(),
        signed_up_at: now,
        anchor_at: schedule.anchor,
        current_position: first.position,
        current_period_start: first.start,
        current_period_end: first.end,
        current_period_paid: true,
        last_charge_attempt_at: None,
        pending_cancellation_id: None,
        effective_at: None,
        ended_at: None,
        due_at: None,
        created_at: now,
        reminded_period_start: None,
    }
}

/// Charges the first period unless it is a free trial or free; the ledger
/// entry is written with the subscription.
async fn take_first_charge(
    state: &AppState,
    subscription: &mut Subscription,
    terms: &Terms,
    first: &Period,
    now: Timestamp,
) -> ApiResult<Option<LedgerEntry>> {
    if first.is_trial() || terms.policy.price.is_zero() {
        return Ok(None);
    }
    let key = charge_key(subscription, first.start);
    let reference = state
        .gateway
        .charge(&key, terms.policy.price)
        .await
        .map_err(|_| ApiError::new(axum::http::StatusCode::PAYMENT_REQUIRED, "payment_failed"))?;
    subscription.last_charge_attempt_at = Some(now);
    let period = (first.start, first.end);
    Ok(Some(LedgerEntry::charge(
        new_id(),
        subscription,
        period,
        terms.policy.price,
        key,
        reference,
        LedgerNote::FirstPeriod.text(),
        now,
    )))
}

/// Nothing of a sign-up was written (a second one won the race, the
/// database was busy): the first charge this request took is given back
/// at once, so the family never pays for a subscription it does not have.
async fn void_first_charge(state: &AppState, error: ApiError, first_charge: Option<&LedgerEntry>) -> ApiError {
    if let Some(charge) = first_charge {
        let amount = Money { amount_minor: charge.amount_minor, currency: charge.currency };
        if let Err(refused) = state.gateway.refund(&format!("void:{}", charge.entry_key), amount).await {
            tracing::error!(entry_key = %charge.entry_key, %refused, "could not void the first charge of an unwritten subscription");
        }
    }
    error
}

pub fn subscription_view(s: &Subscription, terms: &Terms) -> SubscriptionView {
    let policy = &terms.policy;
    let renews = renews(
        s.status,
        s.pending_cancellation_id.is_some(),
        policy.auto_renew,
        policy.commitment_periods,
        s.current_position,
    );
    let notice_deadline =
        renews.then(|| cancel_by(&terms.schedule.calendar, &current_period(s), policy.notice_days).ok()).flatten();
    SubscriptionView {
        id: s.id.to_string(),
        family_id: s.family_id.to_string(),
        plan_id: s.plan_id.to_string(),
        policy_version: s.policy_version,
        policy_sha256: s.policy_sha256.clone(),
        status: s.status.as_str().to_owned(),
        can_cancel: s.status.can_cancel(),
        price: terms.policy.price.into(),
        auto_renew: terms.policy.auto_renew,
        signed_up_at: s.signed_up_at,
        current_period: PeriodView {
            start: s.current_period_start,
            end: s.current_period_end,
            is_trial: s.current_position < 0,
            paid: s.current_period_paid,
        },
        next_renewal_at: renews.then_some(s.current_period_end),
        notice_deadline,
        pending_cancellation: match (&s.pending_cancellation_id, s.effective_at) {
            (Some(id), Some(effective_at)) => {
                Some(PendingCancellationView { cancellation_id: id.to_string(), effective_at })
            }
            _ => None,
        },
        ended_at: s.ended_at,
    }
}

/// Loads a subscription the caller may see, brought up to date first.
pub async fn visible_subscription(
    state: &AppState,
    caller: &Caller,
    subscription_id: &str,
    staff_roles: &[Role],
) -> ApiResult<(Subscription, Terms)> {
    let subscription_id = SubscriptionId::parse(subscription_id).map_err(|_| ApiError::not_found("subscription"))?;
    let subscription = state.store.subscription(&subscription_id).await.or_not_found("subscription")?;
    caller.require_family(&subscription.family_id, staff_roles, "subscription")?;
    if subscription.due_at.is_some_and(|due| due <= state.clock.now()) {
        billing::settle(state, &subscription_id, state.clock.now()).await?;
    }
    let subscription = state.store.subscription(&subscription_id).await?;
    let terms = Terms::load(state, &subscription).await?;
    Ok((subscription, terms))
}

pub async fn get_subscription(state: &AppState, caller: &Caller, subscription_id: &str) -> ApiResult<SubscriptionView> {
    let (subscription, terms) = visible_subscription(state, caller, subscription_id, STAFF_READERS).await?;
    Ok(subscription_view(&subscription, &terms))
}

pub async fn family_subscriptions(
    state: &AppState,
    caller: &Caller,
    family_id: &FamilyId,
) -> ApiResult<Vec<SubscriptionView>> {
    caller.require_family(family_id, STAFF_READERS, "family")?;
    let mut views = Vec::new();
    for subscription in state.store.subscriptions_of(family_id).await? {
        let (subscription, terms) =
            visible_subscription(state, caller, subscription.id.as_str(), STAFF_READERS).await?;
        views.push(subscription_view(&subscription, &terms));
    }
    Ok(views)
}

/// The terms a subscription was accepted under, with its view.
pub async fn accepted_terms(
    state: &AppState,
    caller: &Caller,
    subscription_id: &str,
) -> ApiResult<(SubscriptionView, Policy)> {
    let (subscription, terms) = visible_subscription(state, caller, subscription_id, STAFF_READERS).await?;
    Ok((subscription_view(&subscription, &terms), terms.policy))
}
