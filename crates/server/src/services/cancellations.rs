//! Cancellations: the quote, and the one filing path every channel takes
//! (self-service, support after verification, a written notice), and
//! withdrawing a scheduled cancellation (resume).

use axum::http::StatusCode;
use baobao_domain::ids::{CancellationId, LedgerEntryId, QuoteId, WrittenNoticeId};
use baobao_domain::ledger::{LedgerNote, paid_so_far};
use baobao_domain::quote::{CancelOption, Quote, QuoteInput, QuoteOption};
use baobao_domain::receipt::{CancellationReceipt, ReceiptBody, TermsRef, WithdrawalReceipt};
use baobao_domain::subscription::{
    CancellationChannel, CancellationStatus, Period, SubscriptionStatus, running_status,
};
use baobao_domain::{Locale, quote};
use baobao_store::{
    Cancellation, Guardian, LedgerEntry, Plan, StoreError, StoredQuote, StoredReceipt, Subscription, Tx, WrittenNotice,
};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Caller, Role, STAFF_FILERS, STAFF_QUOTERS, STAFF_READERS};
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::idempotency::answer_with_change;
use crate::random::{new_id, random_bytes};
use crate::receipts::ReceiptDocument;
use crate::services::billing::{Terms, current_period, refresh_due_at};
use crate::services::evidence::{EvidenceInput, decode_evidence, store_evidence};
use crate::services::notices::{
    NoticeDraft, SENDER_CHARS_MAX, TRACKING_CHARS_MAX, WrittenNoticeView, parse_received, short_text,
};
use crate::services::subscriptions::{subscription_view, visible_subscription};
use crate::services::{billing, outbox, subscriptions};
use crate::state::AppState;
use crate::views::{CancellationView, CancellationWithReceipt, QuoteView, SubscriptionWithReceipt};
use crate::{auth, receipts};

fn ensure_cancellable(s: &Subscription) -> ApiResult<()> {
    let status = s.status;
    if status == SubscriptionStatus::PendingCancellation {
        let effective_at = s.effective_at.map(|t| t.to_string()).unwrap_or_default();
        return Err(ApiError::conflict("cancellation_pending").with("effective_at", effective_at));
    }
    if !status.can_cancel() {
        return Err(ApiError::conflict("not_cancellable").with("status", s.status.as_str()));
    }
    Ok(())
}

/// The period a subscription was in at `t` — the current one, or an earlier
/// one when a written notice arrived before the last renewal.
fn period_at(s: &Subscription, terms: &Terms, t: Timestamp) -> ApiResult<Period> {
    if t < s.signed_up_at {
        return Err(ApiError::unprocessable("received_at_out_of_range"));
    }
    let mut period = current_period(s);
    while t < period.start && period.position > terms.schedule.first_position() {
        period = terms.schedule.period(period.position - 1).map_err(internal)?;
    }
    Ok(period)
}

/// A quote as it would have been given at `received_at`: the period then,
/// and the money paid by then, from the ledger.
async fn compute_quote(state: &AppState, s: &Subscription, terms: &Terms, received_at: Timestamp) -> ApiResult<Quote> {
    let period = period_at(s, terms, received_at)?;
    let lines = state.store.ledger_of_subscription(&s.id).await?.iter().map(LedgerEntry::line).collect::<Vec<_>>();
    let paid = paid_so_far(lines, period.start, received_at, terms.policy.price.currency);
    quote::quote(&QuoteInput {
        policy: &terms.policy,
        schedule: &terms.schedule,
        current: period,
        paid_for_current: paid.for_period,
        paid_total: paid.total,
        received_at,
    })
    .map_err(|_| ApiError::unprocessable("received_at_out_of_range"))
}

/// The earliest `received_at` staff may register: written notices older
/// than the configured bound are refused.
pub fn earliest_received_at(state: &AppState) -> ApiResult<Timestamp> {
    let days = i64::from(state.config.written_notice_age_days_max);
    state.clock.now().checked_sub(SignedDuration::from_hours(24 * days)).map_err(internal)
}

pub async fn cancellation_quote(
    state: &AppState,
    caller: &Caller,
    subscription_id: &str,
    received_at: Option<Timestamp>,
    locale: Locale,
) -> ApiResult<QuoteView> {
    let (subscription, terms) = visible_subscription(state, caller, subscription_id, STAFF_QUOTERS).await?;
    ensure_cancellable(&subscription)?;
    let now = state.clock.now();
    let received_at = match received_at {
        Some(_) if !caller.is_staff() => {
            return Err(ApiError::invalid_query("received_at", "staff_only"));
        }
        Some(t) if t > now || t < earliest_received_at(state)? => {
            return Err(ApiError::unprocessable("received_at_out_of_range"));
        }
        Some(t) => t,
        None => now,
    };
    let quote = compute_quote(state, &subscription, &terms, received_at).await?;
    let stored = StoredQuote {
        id: new_id(),
        subscription_id: subscription.id.clone(),
        received_at,
        valid_until: quote.valid_until,
        body: serde_json::to_string(&quote).map_err(internal)?,
        created_at: now,
    };
    let mut tx = state.store.begin().await?;
    tx.insert_quote(&stored).await?;
    tx.commit().await?;
    let price = terms.policy.price;
    Ok(QuoteView::new(stored.id.as_str(), subscription.id.as_str(), &quote, price, locale, &terms.schedule.calendar))
}

// ---------------------------------------------------------------- cancellations

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonInput {
    pub category: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    /// `now`, `end_of_period` or `end_of_commitment`.
    pub option: String,
    #[serde(default)]
    pub quote_id: Option<String>,
    #[serde(default)]
    pub reason: Option<ReasonInput>,
    /// Support channel: the one-time code the guardian read out to the agent.
    #[serde(default)]
    pub verification_code: Option<String>,
    /// Support channel, supervisors only: why the guardian was not verified
    /// with a code (written down and audited).
    #[serde(default)]
    pub verification_override_reason: Option<String>,
}

pub fn parse_reason(reason: Option<ReasonInput>) -> ApiResult<(Option<String>, Option<String>)> {
    let Some(reason) = reason else {
        return Ok((None, None));
    };
    let reason = crate::fields::parse_reason(&reason.category, reason.text.as_deref())?;
    Ok((Some(reason.category().to_owned()), reason.text().map(str::to_owned)))
}

pub fn parse_option(option: &str) -> ApiResult<CancelOption> {
    CancelOption::parse(option).ok_or_else(|| {
        ApiError::invalid_field("option", "one_of").with("allowed", "now, end_of_period, end_of_commitment")
    })
}

/// Cancel through the API or the portal: a guardian for themselves
/// (self-service), or an agent or supervisor on a guardian's behalf
/// (support, after verification).
pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    subscription_id: &str,
    input: CancelInput,
) -> ApiResult<CancellationWithReceipt> {
    let option = parse_option(&input.option)?;
    let reason = parse_reason(input.reason)?;
    let (subscription, terms) = visible_subscription(state, caller, subscription_id, STAFF_FILERS).await?;
    let channel = match caller {
        Caller::Guardian { .. } => {
            if input.verification_code.is_some() || input.verification_override_reason.is_some() {
                return Err(ApiError::invalid_field("verification_code", "staff_only"));
            }
            Channel::SelfService
        }
        _ => Channel::Support(
            crate::services::verification::verify_guardian(
                state,
                caller,
                &subscription.family_id,
                input.verification_code.as_deref(),
                input.verification_override_reason.as_deref(),
            )
            .await?,
        ),
    };
    let request = Request { channel, received_at: state.clock.now(), option, quote_id: input.quote_id, reason };
    file(state, caller, subscription, &terms, request, |filed| {
        Ok(CancellationWithReceipt {
            cancellation: CancellationView::from(filed.cancellation),
            receipt: filed.receipt.clone(),
        })
    })
    .await
}

/// How a cancellation request reached baobao; all lead to the same request,
/// the same quote rules and the same receipt.
pub enum Channel {
    SelfService,
    Support(crate::services::verification::Verified),
    WrittenNotice(Box<crate::services::notices::NoticeDraft>),
}

impl Channel {
    fn kind(&self) -> CancellationChannel {
        match self {
            Channel::SelfService => CancellationChannel::SelfService,
            Channel::Support(_) => CancellationChannel::Support,
            Channel::WrittenNotice(_) => CancellationChannel::WrittenNotice,
        }
    }

    fn as_str(&self) -> &'static str {
        self.kind().as_str()
    }

    /// What the channel adds to the receipt and the audit entry: who filed
    /// it for the guardian, and how they were verified or what arrived.
    fn describe(&self, caller: &Caller, fields: &mut CancellationReceipt, audit: &mut serde_json::Value) {
        match self {
            Channel::SelfService => {}
            Channel::Support(verified) => {
                fields.agent = Some(caller.actor());
                fields.verification = Some(verified.method().to_owned());
                audit["verification"] = verified.method().into();
            }
            Channel::WrittenNotice(notice) => {
                fields.agent = Some(caller.actor());
                fields.written_notice = Some(notice.receipt_fields());
                audit["written_notice_id"] = notice.id.as_str().into();
            }
        }
    }
}

pub struct Request {
    pub channel: Channel,
    /// When the guardian asked: now, or the day a letter arrived.
    pub received_at: Timestamp,
    pub option: CancelOption,
    pub quote_id: Option<String>,
    pub reason: (Option<String>, Option<String>),
}

/// A request as filed, for its answer.
pub struct Filed<'a> {
    pub cancellation: &'a Cancellation,
    pub receipt: &'a ReceiptDocument,
    /// The letter or email it came by, as saved (a written notice).
    pub written_notice: Option<&'a WrittenNotice>,
}

/// Files a cancellation request on any channel, in one transaction: the
/// request, its quote's money (when it takes effect at once, or took effect
/// already — a letter that arrived before the renewal), the refund of any
/// charge for a period after `effective_at`, the signed receipt, the
/// guardian's confirmation, the integrators' webhook and the audit entry.
/// Money moves at the gateway after the commit, never under the lock. The
/// caller's answer (`answer`, 201 Created) is built before the commit and
/// saved with it (`answer_with_change`).
pub async fn file<A: Serialize>(
    state: &AppState,
    caller: &Caller,
    subscription: Subscription,
    terms: &Terms,
    request: Request,
    answer: impl FnOnce(Filed<'_>) -> ApiResult<A>,
) -> ApiResult<A> {
    ensure_cancellable(&subscription)?;
    let now = state.clock.now();
    let quoted = resolve_quote(state, &subscription, terms, &request, now).await?;
    let draft = build(state, caller, &subscription, terms, request, quoted, now)?;
    let guardians = state.store.guardians_of(&subscription.family_id).await?;
    let plan = state.store.plan(&subscription.plan_id).await?;

    let mut tx = state.store.begin().await?;
    let applied = apply(&mut tx, state, caller, subscription, terms, &draft, now).await?;
    announce(&mut tx, state, caller, &applied.subscription, &draft, &guardians, &plan, now).await?;
    let filed = Filed {
        cancellation: &draft.cancellation,
        receipt: &draft.receipt,
        written_notice: applied.written_notice.as_ref(),
    };
    let answer = answer(filed)?;
    answer_with_change(&mut tx, StatusCode::CREATED, &answer).await?;
    tx.commit().await?;
    // The request is on record; now the gateway, outside any transaction.
    // What it refuses, or what a failure here leaves, stays pending for the
    // worker: the guardian's answer is the filed request either way.
    if let Err(error) = crate::services::money::settle(state, &applied.to_pay).await {
        tracing::warn!(
            code = error.code,
            internal = error.internal.as_deref().unwrap_or(""),
            "settling after a cancellation failed; the worker retries"
        );
    }
    Ok(answer)
}

/// The quote a request is filed on and the option it chose.
struct Quoted {
    chosen: QuoteOption,
    quote_id: Option<QuoteId>,
    /// The start of the period the request was quoted in.
    period_start: Timestamp,
}

/// A cited quote binds its figures while valid; otherwise the request is
/// quoted at the instant it was received.
async fn resolve_quote(
    state: &AppState,
    subscription: &Subscription,
    terms: &Terms,
    request: &Request,
    now: Timestamp,
) -> ApiResult<Quoted> {
    let (quote, quote_id) = match &request.quote_id {
        Some(text) => {
            let quote_id = QuoteId::parse(text).map_err(|_| ApiError::not_found("quote"))?;
            let stored = state.store.quote(&quote_id).await.or_not_found("quote")?;
            if stored.subscription_id != subscription.id || stored.received_at > request.received_at {
                return Err(ApiError::conflict("quote_mismatch").with("quote_id", quote_id.to_string()));
            }
            if now > stored.valid_until || stored.received_at < subscription.current_period_start {
                return Err(ApiError::conflict("quote_expired").with("quote_id", quote_id.to_string()));
            }
            (serde_json::from_str::<Quote>(&stored.body).map_err(internal)?, Some(quote_id))
        }
        None => (compute_quote(state, subscription, terms, request.received_at).await?, None),
    };
    let option = request.option;
    let chosen = quote
        .option(option)
        .ok_or_else(|| ApiError::unprocessable("option_not_available").with("option", option.as_str()))?
        .clone();
    let period_start = period_at(subscription, terms, request.received_at)?.start;
    Ok(Quoted { chosen, quote_id, period_start })
}

/// A request made ready to write: the cancellation record, its signed
/// receipt and what the audit entry will say.
struct Draft {
    channel: Channel,
    chosen: QuoteOption,
    quoted_period_start: Timestamp,
    cancellation: Cancellation,
    stored_receipt: StoredReceipt,
    receipt: ReceiptDocument,
    audit_details: serde_json::Value,
}

impl Draft {
    fn ends_now(&self) -> bool {
        self.cancellation.status == CancellationStatus::Effective
    }
}

fn build(
    state: &AppState,
    caller: &Caller,
    subscription: &Subscription,
    terms: &Terms,
    request: Request,
    quoted: Quoted,
    now: Timestamp,
) -> ApiResult<Draft> {
    let Request { channel, received_at, option, quote_id: _, reason: (reason_category, reason_text) } = request;
    let Quoted { chosen, quote_id, period_start: quoted_period_start } = quoted;
    let effective_at = if option == CancelOption::Now { received_at } else { chosen.effective_at };
    let cancellation_id: CancellationId = new_id();
    let mut fields = CancellationReceipt {
        cancellation_id: cancellation_id.to_string(),
        subscription_id: subscription.id.to_string(),
        plan_id: subscription.plan_id.to_string(),
        channel: channel.as_str().to_owned(),
        option: option.as_str().to_owned(),
        received_at,
        effective_at,
        renewals_before_effective: chosen.renewals_before_effective,
        refund: chosen.refund,
        fee: chosen.fee,
        export_until: chosen.export_until,
        delete_at: chosen.delete_at,
        quote_id: quote_id.as_ref().map(ToString::to_string),
        terms: TermsRef {
            policy_version: subscription.policy_version,
            policy_sha256: subscription.policy_sha256.clone(),
        },
        agent: None,
        verification: None,
        written_notice: None,
    };
    let mut audit_details = json!({
        "channel": channel.as_str(),
        "option": option.as_str(),
        "received_at": received_at.to_string(),
        "effective_at": effective_at.to_string(),
        "refund_minor": chosen.refund.amount_minor,
        "fee_minor": chosen.fee.amount_minor,
    });
    channel.describe(caller, &mut fields, &mut audit_details);
    let (stored_receipt, receipt) = receipts::issue(
        state,
        &subscription.family_id,
        &subscription.time_zone,
        cancellation_id.as_str(),
        now,
        ReceiptBody::Cancellation(fields),
    )?;
    let cancellation = Cancellation {
        id: cancellation_id,
        subscription_id: subscription.id.clone(),
        family_id: subscription.family_id.clone(),
        channel: channel.kind(),
        option,
        status: if effective_at <= now { CancellationStatus::Effective } else { CancellationStatus::Scheduled },
        received_at,
        effective_at,
        refund_minor: chosen.refund.amount_minor,
        fee_minor: chosen.fee.amount_minor,
        currency: terms.policy.price.currency,
        quote_id,
        reason_category,
        reason_text,
        receipt_id: stored_receipt.id.clone(),
        actor: caller.actor(),
        withdrawn_at: None,
        created_at: now,
    };
    Ok(Draft { channel, chosen, quoted_period_start, cancellation, stored_receipt, receipt, audit_details })
}

/// What writing the request changed.
struct Applied {
    subscription: Subscription,
    /// Ledger entries written `pending`, for the gateway after the commit.
    to_pay: Vec<LedgerEntryId>,
    /// The written notice the request came by, as saved.
    written_notice: Option<WrittenNotice>,
}

/// Writes the request under the subscription's lock: the cancellation, the
/// money it moves when it ends the subscription now, the subscription's new
/// state, retention, the written notice and the receipt.
async fn apply(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    quoted: Subscription,
    terms: &Terms,
    draft: &Draft,
    now: Timestamp,
) -> ApiResult<Applied> {
    // Re-read under the lock: a concurrent request may have got here first,
    // or a billing run may have started a new period the quote did not see.
    let mut subscription = tx.subscription_for_update(&quoted.id).await?;
    ensure_cancellable(&subscription)?;
    if subscription.current_period_start != quoted.current_period_start {
        let quote_id = draft.cancellation.quote_id.as_ref().map(|q| q.to_string()).unwrap_or_default();
        return Err(ApiError::conflict("quote_expired").with("quote_id", quote_id));
    }
    if let Channel::Support(verified) = &draft.channel {
        verified.spend(tx, state, &caller.actor(), &subscription.family_id).await?;
    }
    tx.insert_cancellation(&draft.cancellation).await.map_err(|e| match e {
        StoreError::Conflict { .. } => ApiError::conflict("cancellation_pending"),
        other => other.into(),
    })?;
    let cancellation_id = &draft.cancellation.id;
    let effective_at = draft.cancellation.effective_at;
    let mut to_pay = Vec::new();
    let mut late_refunds = Vec::new();
    if draft.ends_now() {
        to_pay = write_quoted_money(tx, state, &subscription, draft, now).await?;
        late_refunds =
            billing::refund_charges_from(state, tx, &subscription, effective_at, Some(draft.quoted_period_start), now)
                .await?;
        to_pay.extend(late_refunds.iter().map(|r| r.id.clone()));
        subscription.status = SubscriptionStatus::Cancelled;
        subscription.ended_at = Some(effective_at);
        subscription.pending_cancellation_id = None;
    } else {
        subscription.status = SubscriptionStatus::PendingCancellation;
        subscription.pending_cancellation_id = Some(cancellation_id.clone());
    }
    subscription.effective_at = Some(effective_at);
    refresh_due_at(&mut subscription, terms);
    tx.update_subscription(&subscription).await?;
    if draft.ends_now() {
        crate::services::deletion::schedule_retention(tx, &subscription, terms.policy.retention_days, effective_at)
            .await?;
    }
    let written_notice = match &draft.channel {
        Channel::WrittenNotice(notice) => Some(notice.save(tx, cancellation_id, late_refunds.len()).await?),
        _ => None,
    };
    tx.insert_receipt(&draft.stored_receipt).await?;
    Ok(Applied { subscription, to_pay, written_notice })
}

/// The quoted refund and fee, written `pending` for the gateway; the ids of
/// those newly written (a retried request writes nothing twice).
async fn write_quoted_money(
    tx: &mut Tx,
    state: &AppState,
    subscription: &Subscription,
    draft: &Draft,
    now: Timestamp,
) -> ApiResult<Vec<LedgerEntryId>> {
    let id = &draft.cancellation.id;
    let mut entries = Vec::new();
    if !draft.chosen.refund.is_zero() {
        let (key, note) = (format!("refund:{id}"), LedgerNote::RefundAsQuoted.text());
        entries.push(LedgerEntry::refund(new_id(), subscription, draft.chosen.refund, None, key, note, now));
    }
    if !draft.chosen.fee.is_zero() {
        let (key, note) = (format!("fee:{id}"), LedgerNote::FeeAsQuoted.text());
        entries.push(LedgerEntry::fee(new_id(), subscription, draft.chosen.fee, key, note, now));
    }
    let mut to_pay = Vec::new();
    for entry in entries {
        if tx.append_ledger_entry_to_pay(&entry, state.clock.wall_now()).await? {
            to_pay.push(entry.id);
        }
    }
    Ok(to_pay)
}

/// Tells the guardians (their confirmation, with the receipt), the
/// service's integrators (a webhook) and the audit log, in the transaction.
#[allow(clippy::too_many_arguments)] // the parts of one announcement, each read once by `file`
async fn announce(
    tx: &mut Tx,
    state: &AppState,
    caller: &Caller,
    subscription: &Subscription,
    draft: &Draft,
    guardians: &[Guardian],
    plan: &Plan,
    now: Timestamp,
) -> ApiResult<()> {
    let c = &draft.cancellation;
    let ends_now = draft.ends_now();
    let plan_names = json!({"zh-CN": plan.name_zh_cn, "en": plan.name_en});
    let email =
        json!({"receipt": draft.receipt, "plan": plan_names, "time_zone": subscription.time_zone, "ended": ends_now});
    let event = draft.stored_receipt.id.as_str();
    outbox::email_guardians(tx, state, guardians, "cancellation_received", event, &email).await?;
    let hook = json!({
        "subscription_id": subscription.id,
        "family_id": subscription.family_id,
        "cancellation_id": c.id,
        "channel": draft.channel.as_str(),
        "received_at": c.received_at.to_string(),
        "effective_at": c.effective_at.to_string(),
    });
    let event_type = if ends_now { "subscription.cancelled" } else { "cancellation.scheduled" };
    outbox::webhook(tx, state, &plan.service, event_type, c.id.as_str(), &hook).await?;
    let subjects =
        [subscription.family_id.as_str(), subscription.id.as_str(), c.id.as_str(), draft.stored_receipt.id.as_str()];
    let action = if ends_now { "cancellation.effective" } else { "cancellation.scheduled" };
    tx.audit(now, &caller.actor(), action, &subjects, &draft.audit_details).await?;
    Ok(())
}

pub async fn resume(state: &AppState, caller: &Caller, subscription_id: &str) -> ApiResult<SubscriptionWithReceipt> {
    caller.require_guardian()?;
    let (subscription, terms) = visible_subscription(state, caller, subscription_id, &[]).await?;
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let mut subscription = tx.subscription_for_update(&subscription.id).await?;
    let (Some(cancellation_id), Some(effective_at)) =
        (subscription.pending_cancellation_id.clone(), subscription.effective_at)
    else {
        return Err(ApiError::conflict("nothing_to_resume"));
    };
    if effective_at <= now {
        return Err(ApiError::conflict("nothing_to_resume"));
    }
    let body = ReceiptBody::Withdrawal(WithdrawalReceipt {
        cancellation_id: cancellation_id.to_string(),
        subscription_id: subscription.id.to_string(),
        channel: "self_service".to_owned(),
        withdrawn_at: now,
        cancellation_would_have_taken_effect_at: effective_at,
        terms: TermsRef {
            policy_version: subscription.policy_version,
            policy_sha256: subscription.policy_sha256.clone(),
        },
    });
    let (stored_receipt, receipt) =
        receipts::issue(state, &subscription.family_id, &subscription.time_zone, cancellation_id.as_str(), now, body)?;
    tx.set_cancellation_status(&cancellation_id, CancellationStatus::Withdrawn, Some(now)).await?;
    subscription.status = running_status(subscription.current_position, subscription.current_period_paid);
    subscription.pending_cancellation_id = None;
    subscription.effective_at = None;
    refresh_due_at(&mut subscription, &terms);
    tx.update_subscription(&subscription).await?;
    tx.insert_receipt(&stored_receipt).await?;
    tx.audit(
        now,
        &caller.actor(),
        "cancellation.withdrawn",
        &[
            subscription.family_id.as_str(),
            subscription.id.as_str(),
            cancellation_id.as_str(),
            stored_receipt.id.as_str(),
        ],
        &json!({}),
    )
    .await?;
    let service = tx.plan(&subscription.plan_id).await?.service;
    let hook = json!({
        "subscription_id": subscription.id,
        "family_id": subscription.family_id,
        "cancellation_id": cancellation_id,
        "withdrawn_at": now.to_string(),
    });
    crate::services::outbox::webhook(
        &mut tx,
        state,
        &service,
        "cancellation.withdrawn",
        cancellation_id.as_str(),
        &hook,
    )
    .await?;
    let answer = SubscriptionWithReceipt { subscription: subscription_view(&subscription, &terms), receipt };
    answer_with_change(&mut tx, StatusCode::OK, &answer).await?;
    tx.commit().await?;
    Ok(answer)
}

pub async fn get_cancellation(
    state: &AppState,
    caller: &Caller,
    cancellation_id: &str,
) -> ApiResult<CancellationWithReceipt> {
    let cancellation_id = CancellationId::parse(cancellation_id).map_err(|_| ApiError::not_found("cancellation"))?;
    let cancellation = state.store.cancellation(&cancellation_id).await.or_not_found("cancellation")?;
    caller.require_family(&cancellation.family_id, STAFF_READERS, "cancellation")?;
    let stored = state.store.receipt(&cancellation.receipt_id).await?;
    let receipt = serde_json::from_str(&stored.document).map_err(internal)?;
    Ok(CancellationWithReceipt { cancellation: CancellationView::from(&cancellation), receipt })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrittenNoticeInput {
    pub subscription_id: String,
    /// The day the letter or email arrived (`YYYY-MM-DD`, in the family's
    /// time zone); the request counts as received at that day's start.
    #[serde(default)]
    pub received_on: Option<String>,
    /// Or the exact instant (RFC 3339), e.g. an email's arrival time.
    #[serde(default)]
    pub received_at: Option<String>,
    pub sender: String,
    #[serde(default)]
    pub tracking_number: Option<String>,
    /// What the letter asks for; `end_of_period` when it does not say.
    #[serde(default)]
    pub option: Option<String>,
    #[serde(default)]
    pub reason: Option<ReasonInput>,
    pub evidence: EvidenceInput,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RegisteredNotice {
    pub written_notice: WrittenNoticeView,
    pub cancellation: CancellationView,
    pub receipt: ReceiptDocument,
}

/// Registers a letter or email asking to cancel: the quote is the one the
/// guardian would have had on the day it arrived; a renewal charged after
/// that day for a period the notice already ended is refunded in the same
/// transaction, and the guardian is told why.
pub async fn register_written_notice(
    state: &AppState,
    caller: &Caller,
    input: WrittenNoticeInput,
) -> ApiResult<RegisteredNotice> {
    caller.require_staff(&[Role::Agent, Role::Supervisor])?;
    let sender = short_text("sender", Some(&input.sender), SENDER_CHARS_MAX)?
        .ok_or_else(|| ApiError::invalid_field("sender", "required"))?;
    let tracking_number = short_text("tracking_number", input.tracking_number.as_deref(), TRACKING_CHARS_MAX)?;
    let option = parse_option(input.option.as_deref().unwrap_or("end_of_period"))?;
    let bytes = decode_evidence(&input.evidence)?;
    let (subscription, terms) =
        subscriptions::visible_subscription(state, caller, &input.subscription_id, auth::STAFF_FILERS).await?;
    let received_at =
        parse_received(input.received_on.as_deref(), input.received_at.as_deref(), &terms.schedule.calendar)?;
    let now = state.clock.now();
    if received_at > now {
        return Err(ApiError::unprocessable("received_in_future"));
    }
    if received_at < earliest_received_at(state)? {
        return Err(
            ApiError::unprocessable("received_too_long_ago").with("days", state.config.written_notice_age_days_max)
        );
    }
    let reason = parse_reason(input.reason)?;
    let evidence_sha256 = store_evidence(state, &subscription.family_id, &bytes)?;
    let id = WrittenNoticeId::from_random(random_bytes());
    let notice = WrittenNotice {
        id: id.clone(),
        family_id: subscription.family_id.clone(),
        subscription_id: subscription.id.clone(),
        // Filled in by `NoticeDraft::save` once the cancellation exists.
        cancellation_id: baobao_domain::ids::CancellationId::from_random([0; 16]),
        received_at,
        sender,
        tracking_number,
        evidence_sha256,
        evidence_type: input.evidence.content_type,
        evidence_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        late_charges_refunded: 0,
        registered_by: caller.actor(),
        registered_at: now,
    };
    let request = Request {
        channel: Channel::WrittenNotice(Box::new(NoticeDraft { id: id.clone(), notice })),
        received_at,
        option,
        quote_id: None,
        reason,
    };
    file(state, caller, subscription, &terms, request, |filed| {
        let notice = filed.written_notice.ok_or_else(|| internal("a written notice filed without its notice"))?;
        Ok(RegisteredNotice {
            written_notice: WrittenNoticeView::from(notice),
            cancellation: CancellationView::from(filed.cancellation),
            receipt: filed.receipt.clone(),
        })
    })
    .await
}

/// Every cancellation request of a subscription, oldest first, for its
/// family's guardians and staff readers.
pub async fn of_subscription(state: &AppState, caller: &Caller, subscription_id: &str) -> ApiResult<Vec<Cancellation>> {
    let (subscription, _) = visible_subscription(state, caller, subscription_id, STAFF_READERS).await?;
    Ok(state.store.cancellations_of(&subscription.id).await?)
}
