//! What a signed receipt says, by kind. A receipt's body is a JSON object:
//! the envelope (`receipt_id`, `receipt_number`, `kind`, `family_id`,
//! `issued_at`) and the fields of its kind. The server builds a
//! [`ReceiptBody`] from the change it records, signs its canonical JSON,
//! and reads it back with the same types to show it; nothing reads a
//! receipt by key.
//!
//! The JSON shape is a contract with everyone holding a receipt: a field is
//! only ever added (with `#[serde(default)]`, so older receipts still read),
//! never renamed or removed. The snapshots in `tests/receipts.rs` show any
//! change in review.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::calendar::PeriodLength;
use crate::money::Money;
use crate::policy::HoldCategory;

/// A receipt's signed body: the envelope and what its kind records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedBody {
    pub receipt_id: String,
    /// Read aloud on the phone: `BB-YYYYMMDD-XXXXXXXX`.
    pub receipt_number: String,
    pub family_id: String,
    pub issued_at: Timestamp,
    /// Who issued it, and how to reach them (receipts issued before the
    /// operator configured it do not name one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    #[serde(flatten)]
    pub body: ReceiptBody,
}

/// The provider of the service, as the operator configured it: named on
/// every receipt, page footer and email, so that a parent (or a mediator)
/// knows whom to write to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub legal_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_phone: Option<String>,
    /// Where letters (written notices) go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<String>,
    /// Where a complaint goes when support did not settle it (a mediation
    /// body, a regulator's hotline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaints: Option<String>,
}

impl Provider {
    /// Configured at all (a legal name is the least a receipt must carry).
    pub fn is_set(&self) -> bool {
        !self.legal_name.trim().is_empty()
    }
}

/// Every kind of receipt baobao signs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReceiptBody {
    Subscription(SubscriptionReceipt),
    Cancellation(CancellationReceipt),
    Withdrawal(WithdrawalReceipt),
    Charge(ChargeReceipt),
    Refund(RefundReceipt),
    Fee(FeeReceipt),
    DeletionCertificate(DeletionCertificate),
    Dispute(DisputeReceipt),
}

impl ReceiptBody {
    /// The `kind` the body is tagged with.
    pub fn kind(&self) -> &'static str {
        match self {
            ReceiptBody::Subscription(_) => "subscription",
            ReceiptBody::Cancellation(_) => "cancellation",
            ReceiptBody::Withdrawal(_) => "withdrawal",
            ReceiptBody::Charge(_) => "charge",
            ReceiptBody::Refund(_) => "refund",
            ReceiptBody::Fee(_) => "fee",
            ReceiptBody::DeletionCertificate(_) => "deletion_certificate",
            ReceiptBody::Dispute(_) => "dispute",
        }
    }

    /// The subscription the receipt is about, if it is about one.
    pub fn subscription_id(&self) -> Option<&str> {
        match self {
            ReceiptBody::Subscription(r) => Some(&r.subscription_id),
            ReceiptBody::Cancellation(r) => Some(&r.subscription_id),
            ReceiptBody::Withdrawal(r) => Some(&r.subscription_id),
            ReceiptBody::Charge(r) => Some(&r.subscription_id),
            ReceiptBody::Refund(r) => Some(&r.movement.subscription_id),
            ReceiptBody::Fee(r) => Some(&r.movement.subscription_id),
            ReceiptBody::DeletionCertificate(_) => None,
            ReceiptBody::Dispute(r) => r.about.subscription_id.as_deref(),
        }
    }
}

/// A plan's name in both languages, as the guardian saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanName {
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
}

/// The published terms a receipt was issued under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsRef {
    pub policy_version: i64,
    pub policy_sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstPeriod {
    pub start: Timestamp,
    pub end: Timestamp,
    pub is_trial: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionReceipt {
    pub subscription_id: String,
    pub plan_id: String,
    pub plan_name: PlanName,
    pub channel: String,
    pub accepted_by: String,
    pub signed_up_at: Timestamp,
    #[serde(flatten)]
    pub terms: TermsRef,
    pub price: Money,
    pub period: PeriodLength,
    pub current_period: FirstPeriod,
    /// Nothing during a free trial.
    pub first_charge: Option<Money>,
}

/// The letter or email a cancellation was filed from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenNoticeRef {
    pub id: String,
    pub received_at: Timestamp,
    pub tracking_number: Option<String>,
    pub evidence_sha256: String,
    pub evidence_type: String,
    pub evidence_bytes: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationReceipt {
    pub cancellation_id: String,
    pub subscription_id: String,
    pub plan_id: String,
    /// `self_service`, `support` or `written_notice`.
    pub channel: String,
    /// `end_of_period`, `end_of_minimum_term` or `now`.
    pub option: String,
    pub received_at: Timestamp,
    pub effective_at: Timestamp,
    pub renewals_before_effective: u32,
    pub refund: Money,
    pub fee: Money,
    pub export_until: Timestamp,
    pub delete_at: Timestamp,
    pub quote_id: Option<String>,
    #[serde(flatten)]
    pub terms: TermsRef,
    /// The agent who filed it for the guardian (support, written notice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// How support verified the guardian (`code`, `override`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_notice: Option<WrittenNoticeRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalReceipt {
    pub cancellation_id: String,
    pub subscription_id: String,
    pub channel: String,
    pub withdrawn_at: Timestamp,
    pub cancellation_would_have_taken_effect_at: Timestamp,
    #[serde(flatten)]
    pub terms: TermsRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRef {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A renewal charge the gateway took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeReceipt {
    pub subscription_id: String,
    pub plan_id: String,
    pub plan_name: PlanName,
    pub ledger_entry_id: String,
    pub charge: Money,
    pub current_period: PeriodRef,
    pub gateway_reference: Option<String>,
}

/// What a refund and a fee receipt share: the ledger entry the gateway
/// confirmed, and its reference there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementReceipt {
    pub subscription_id: String,
    pub plan_id: String,
    pub plan_name: PlanName,
    pub ledger_entry_id: String,
    pub period_start: Option<Timestamp>,
    pub note: String,
    pub gateway_reference: String,
}

/// Money the gateway sent back to the guardian.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub refund: Money,
    #[serde(flatten)]
    pub movement: MovementReceipt,
}

/// An early-termination fee the gateway took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeReceipt {
    pub fee: Money,
    #[serde(flatten)]
    pub movement: MovementReceipt,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionScope {
    /// A service's name, or `*` for everything of the family.
    pub service: String,
    /// One child's data only (the child was removed, or consent withdrawn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_id: Option<String>,
}

/// One category of data a deletion removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub category: String,
    /// For children's records: the record kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// For minimised rows: the fields that were erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    pub count: i64,
    /// What of it stays, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

/// One category a legal hold keeps, for storage only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub category: HoldCategory,
    pub count: Option<i64>,
    pub basis: String,
    pub until: Option<Timestamp>,
    #[serde(rename = "use")]
    pub allowed_use: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionCertificate {
    pub deletion_id: String,
    pub scope: DeletionScope,
    /// `request` or `retention`.
    pub cause: String,
    pub requested_at: Timestamp,
    pub performed_at: Timestamp,
    pub key_destroyed_at: Timestamp,
    pub data_keys_destroyed: u64,
    pub encryption: String,
    pub deleted: Vec<Deleted>,
    pub kept: Vec<Kept>,
    pub account_closed: bool,
}

/// An evidence file as a receipt names it: by its hash, never its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub sha256: String,
    pub content_type: String,
    pub bytes: i64,
}

/// What a dispute is about: any of a subscription, a ledger entry, a
/// cancellation request, a receipt (by number) and a posted letter (by
/// its tracking number).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeAbout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_entry_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}

/// A dispute as filed, and what the records answered at once. The
/// description is named by its SHA-256 (it is the guardian's own words,
/// deleted with the family's personal data; the receipt is kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeReceipt {
    pub dispute_id: String,
    /// `wrong_charge`, `charge_after_cancellation`, `cancellation_ignored`,
    /// `refund_missing`, `data_not_deleted` or `other`.
    pub dispute_kind: String,
    /// `portal`, `api`, `support` or `receipt_holder` (filed after the
    /// account closed, with a kept receipt's number and a code).
    pub channel: String,
    pub filed_at: Timestamp,
    pub about: DisputeAbout,
    pub description_sha256: String,
    pub evidence: Vec<EvidenceRef>,
    /// Who answers it now: `support`, `supervisor`, `external_mediation` or `legal`.
    pub level: String,
    pub first_response_due: Timestamp,
    pub resolution_due: Timestamp,
    /// Settled from the records at once: `refunded` or `answered_from_records`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<String>,
    /// The refunds written when it was settled (ledger entry ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<String>,
    /// The agent who filed it for the guardian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The consumer-protection body that forwarded it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_by: Option<String>,
}
