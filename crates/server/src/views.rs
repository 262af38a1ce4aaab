//! What the API answers: the JSON shapes of DESIGN.md's contract, built
//! from stored records and domain values. Every type here is in the
//! OpenAPI document, so a change to a shape shows up in review.

use baobao_domain::calendar::Calendar;
use baobao_domain::policy::{Policy, TermsLine};
use baobao_domain::quote::{Quote, QuoteOption};
use baobao_domain::{Locale, Money};
use baobao_store::{Cancellation, LedgerEntry, Plan, PolicyVersion};
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::receipts::ReceiptDocument;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MoneyView {
    pub amount_minor: i64,
    pub currency: String,
}

impl From<Money> for MoneyView {
    fn from(money: Money) -> MoneyView {
        MoneyView { amount_minor: money.amount_minor, currency: money.currency.to_string() }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub token: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GuardianView {
    pub id: String,
    pub email: String,
    pub name: String,
    /// As the guardian wrote it, if they gave one.
    pub phone: Option<String>,
    pub locale: String,
    pub time_zone: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FamilyView {
    pub id: String,
    pub time_zone: String,
    pub guardians: Vec<GuardianView>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SignUpView {
    pub family: FamilyView,
    pub guardian: GuardianView,
    pub token: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChildView {
    pub id: String,
    pub family_id: String,
    pub name: String,
    pub birth_date: String,
    pub consent: ConsentView,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ConsentView {
    pub given_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub given_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TermsLineView {
    pub topic: String,
    pub text: String,
}

impl From<TermsLine> for TermsLineView {
    fn from(line: TermsLine) -> TermsLineView {
        TermsLineView { topic: line.topic.to_owned(), text: line.text }
    }
}

/// A policy version: the terms' fields plus `version` and `sha256`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PolicyView {
    pub version: i64,
    pub sha256: String,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub terms: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PlanNames {
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub id: String,
    pub service: String,
    pub name: PlanNames,
    pub policy: PolicyView,
    /// The terms in plain language, in the caller's locale.
    pub terms_text: Vec<TermsLineView>,
}

impl PlanView {
    pub fn new(plan: &Plan, version: &PolicyVersion, policy: &Policy, locale: Locale) -> PlanView {
        PlanView {
            id: plan.id.to_string(),
            service: plan.service.clone(),
            name: PlanNames { zh_cn: plan.name_zh_cn.clone(), en: plan.name_en.clone() },
            policy: PolicyView {
                version: version.version,
                sha256: version.sha256.clone(),
                terms: serde_json::to_value(policy).unwrap_or_default(),
            },
            terms_text: policy.render(locale).into_iter().map(TermsLineView::from).collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PeriodView {
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
    pub is_trial: bool,
    pub paid: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PendingCancellationView {
    pub cancellation_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub family_id: String,
    pub plan_id: String,
    pub policy_version: i64,
    pub policy_sha256: String,
    pub status: String,
    /// Whether a cancellation may be filed now (not while one is pending,
    /// nor once it ended).
    pub can_cancel: bool,
    pub price: MoneyView,
    pub auto_renew: bool,
    #[schema(value_type = String, format = DateTime)]
    pub signed_up_at: Timestamp,
    pub current_period: PeriodView,
    /// When the next charge happens, if one will.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_renewal_at: Option<Timestamp>,
    /// Cancel by this instant to end at the close of the current period.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub notice_deadline: Option<Timestamp>,
    pub pending_cancellation: Option<PendingCancellationView>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QuoteOptionView {
    pub option: String,
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: Timestamp,
    pub renewals_before_effective: u32,
    /// What those renewals cost together.
    pub renewals_cost: MoneyView,
    pub refund: MoneyView,
    pub fee: MoneyView,
    #[schema(value_type = String, format = DateTime)]
    pub export_until: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub delete_at: Timestamp,
    pub explanation: String,
}

impl QuoteOptionView {
    fn new(option: &QuoteOption, price: Money, locale: Locale, calendar: &Calendar) -> QuoteOptionView {
        QuoteOptionView {
            option: option.option.as_str().to_owned(),
            effective_at: option.effective_at,
            renewals_before_effective: option.renewals_before_effective,
            renewals_cost: option.renewals_cost(price).into(),
            refund: option.refund.into(),
            fee: option.fee.into(),
            export_until: option.export_until,
            delete_at: option.delete_at,
            explanation: option.explain(locale, calendar),
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QuoteView {
    pub id: String,
    pub subscription_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub valid_until: Timestamp,
    pub options: Vec<QuoteOptionView>,
}

impl QuoteView {
    pub fn new(
        id: &str,
        subscription_id: &str,
        quote: &Quote,
        price: Money,
        locale: Locale,
        calendar: &Calendar,
    ) -> QuoteView {
        QuoteView {
            id: id.to_owned(),
            subscription_id: subscription_id.to_owned(),
            received_at: quote.received_at,
            valid_until: quote.valid_until,
            options: quote.options.iter().map(|o| QuoteOptionView::new(o, price, locale, calendar)).collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReasonView {
    pub category: String,
    pub text: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CancellationView {
    pub id: String,
    pub subscription_id: String,
    pub channel: String,
    pub option: String,
    pub status: String,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: Timestamp,
    pub refund: MoneyView,
    pub fee: MoneyView,
    pub quote_id: Option<String>,
    pub reason: Option<ReasonView>,
    pub receipt_id: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub withdrawn_at: Option<Timestamp>,
}

impl From<&Cancellation> for CancellationView {
    fn from(c: &Cancellation) -> CancellationView {
        CancellationView {
            id: c.id.to_string(),
            subscription_id: c.subscription_id.to_string(),
            channel: c.channel.as_str().to_owned(),
            option: c.option.as_str().to_owned(),
            status: c.status.as_str().to_owned(),
            received_at: c.received_at,
            effective_at: c.effective_at,
            refund: MoneyView { amount_minor: c.refund_minor, currency: c.currency.to_string() },
            fee: MoneyView { amount_minor: c.fee_minor, currency: c.currency.to_string() },
            quote_id: c.quote_id.as_ref().map(|q| q.to_string()),
            reason: c
                .reason_category
                .as_ref()
                .map(|category| ReasonView { category: category.clone(), text: c.reason_text.clone() }),
            receipt_id: c.receipt_id.to_string(),
            withdrawn_at: c.withdrawn_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CancellationWithReceipt {
    pub cancellation: CancellationView,
    pub receipt: ReceiptDocument,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubscriptionWithReceipt {
    pub subscription: SubscriptionView,
    pub receipt: ReceiptDocument,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatementEntryView {
    pub id: String,
    pub kind: String,
    pub amount: MoneyView,
    pub subscription_id: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub period_start: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub period_end: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    pub note: String,
    /// Where the money is: `succeeded` (the gateway confirmed it), `pending`
    /// (written, not yet confirmed: retried), or `failed` (with finance).
    pub status: String,
    /// The gateway's reference, once it confirmed the movement.
    pub gateway_reference: Option<String>,
}

impl StatementEntryView {
    /// An entry and, for a refund or fee, where its money is.
    pub fn new(e: &LedgerEntry, movement: Option<&baobao_store::MoneyMovement>) -> StatementEntryView {
        let (status, gateway_reference) = match movement {
            Some(m) => (m.status.as_str().to_owned(), m.gateway_reference.clone()),
            // Charges are taken before they are written; credits move no money.
            None => ("succeeded".to_owned(), e.gateway_reference.clone()),
        };
        StatementEntryView { status, gateway_reference, ..StatementEntryView::from(e) }
    }
}

impl From<&LedgerEntry> for StatementEntryView {
    fn from(e: &LedgerEntry) -> StatementEntryView {
        StatementEntryView {
            id: e.id.to_string(),
            kind: e.kind.as_str().to_owned(),
            amount: MoneyView { amount_minor: e.amount_minor, currency: e.currency.to_string() },
            subscription_id: e.subscription_id.to_string(),
            period_start: e.period_start,
            period_end: e.period_end,
            created_at: e.created_at,
            note: e.note.clone(),
            status: "succeeded".to_owned(),
            gateway_reference: e.gateway_reference.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatementView {
    pub family_id: String,
    pub entries: Vec<StatementEntryView>,
}

#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct BillingRunSummary {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub run_at: Timestamp,
    pub steps: u64,
    pub renewed: u64,
    pub charges_declined: u64,
    pub cancellations_effective: u64,
    pub expired: u64,
    pub refunds_issued: u64,
    pub fees_charged: u64,
    pub deletions_performed: u64,
    pub reminders_sent: u64,
    /// Open disputes past a deadline, moved up a level.
    pub disputes_escalated: u64,
    /// Refunds and fees the gateway confirmed in this run, still being
    /// retried, and failed for good (now with finance).
    pub money_succeeded: u64,
    pub money_retrying: u64,
    pub money_failed: u64,
    /// Ready exports whose time ran out: file and key destroyed.
    pub exports_expired: u64,
    /// Export and evidence files (and their keys) that nothing named any more.
    pub files_swept: u64,
}
