//! The records the store reads and writes: plain data with typed ids,
//! instants and amounts; no behaviour beyond decoding.

use baobao_domain::Locale;
use baobao_domain::ids::{
    ApiKeyId, CancellationId, ChildId, DeletionId, ExportId, FamilyId, GuardianId, LedgerEntryId, PlanId, QuoteId,
    ReceiptId, RecordId, StaffId, SubscriptionId,
};
use baobao_domain::ledger::{LedgerKind, LedgerLine};
use baobao_domain::money::{Currency, Money};
use baobao_domain::policy::Policy;
use baobao_domain::quote::CancelOption;
use baobao_domain::roles::Role;
use baobao_domain::subscription::{CancellationChannel, CancellationStatus, SubscriptionStatus};
use jiff::Timestamp;

#[derive(Clone, Debug)]
pub struct Family {
    pub id: FamilyId,
    pub time_zone: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Guardian {
    pub id: GuardianId,
    pub family_id: FamilyId,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    /// As the guardian wrote it; none given, or minimised.
    pub phone: Option<String>,
    pub locale: Locale,
    pub time_zone: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Child {
    pub id: ChildId,
    pub family_id: FamilyId,
    pub name: String,
    pub birth_date: String,
    pub consent_by: GuardianId,
    pub consent_at: Timestamp,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Staff {
    pub id: StaffId,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    Guardian,
    Staff,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Guardian => "guardian",
            PrincipalKind::Staff => "staff",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Session {
    pub principal_kind: PrincipalKind,
    pub principal_id: String,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub id: PlanId,
    pub service: String,
    pub name_zh_cn: String,
    pub name_en: String,
    pub current_version: i64,
    pub created_at: Timestamp,
}

/// One version of a plan's terms, as the canonical JSON they were hashed over.
#[derive(Clone, Debug)]
pub struct PolicyVersion {
    pub plan_id: PlanId,
    pub version: i64,
    /// The SHA-256 of the policy's canonical JSON, as receipts cite it.
    pub sha256: String,
    /// The terms, decoded (stored as JSON).
    pub policy: Policy,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub family_id: FamilyId,
    pub plan_id: PlanId,
    pub policy_version: i64,
    pub policy_sha256: String,
    pub status: SubscriptionStatus,
    pub time_zone: String,
    pub signed_up_at: Timestamp,
    pub anchor_at: Timestamp,
    pub current_position: i64,
    pub current_period_start: Timestamp,
    pub current_period_end: Timestamp,
    pub current_period_paid: bool,
    pub last_charge_attempt_at: Option<Timestamp>,
    pub pending_cancellation_id: Option<CancellationId>,
    pub effective_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub due_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// The start of the period whose renewal reminder was sent.
    pub reminded_period_start: Option<Timestamp>,
}

#[derive(Clone, Debug)]
pub struct StoredQuote {
    pub id: QuoteId,
    pub subscription_id: SubscriptionId,
    pub received_at: Timestamp,
    pub valid_until: Timestamp,
    /// The domain `Quote` as JSON.
    pub body: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Cancellation {
    pub id: CancellationId,
    pub subscription_id: SubscriptionId,
    pub family_id: FamilyId,
    pub channel: CancellationChannel,
    pub option: CancelOption,
    pub status: CancellationStatus,
    pub received_at: Timestamp,
    pub effective_at: Timestamp,
    pub refund_minor: i64,
    pub fee_minor: i64,
    pub currency: Currency,
    pub quote_id: Option<QuoteId>,
    pub reason_category: Option<String>,
    pub reason_text: Option<String>,
    pub receipt_id: ReceiptId,
    pub actor: String,
    pub withdrawn_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct LedgerEntry {
    pub id: LedgerEntryId,
    pub family_id: FamilyId,
    pub subscription_id: SubscriptionId,
    pub kind: LedgerKind,
    pub amount_minor: i64,
    pub currency: Currency,
    pub period_start: Option<Timestamp>,
    pub period_end: Option<Timestamp>,
    /// Deterministic key of what caused the entry (`charge:sub_…:period`,
    /// `refund:can_…`): writing the same entry twice is a no-op.
    pub entry_key: String,
    pub gateway_reference: Option<String>,
    pub note: String,
    pub created_at: Timestamp,
}

impl LedgerEntry {
    /// What a guardian paid for one period, taken at the gateway
    /// (`reference`).
    #[allow(clippy::too_many_arguments)] // each is a different fact of the charge
    pub fn charge(
        id: LedgerEntryId,
        s: &Subscription,
        period: (Timestamp, Timestamp),
        price: Money,
        key: String,
        reference: String,
        note: &str,
        now: Timestamp,
    ) -> LedgerEntry {
        LedgerEntry {
            kind: LedgerKind::Charge,
            period_start: Some(period.0),
            period_end: Some(period.1),
            gateway_reference: Some(reference),
            ..LedgerEntry::movement(id, s, price, key, note, now)
        }
    }

    /// What goes back to the guardian, still to be paid at the gateway;
    /// `period` when it repays one period's charge.
    pub fn refund(
        id: LedgerEntryId,
        s: &Subscription,
        amount: Money,
        period: Option<(Timestamp, Timestamp)>,
        key: String,
        note: &str,
        now: Timestamp,
    ) -> LedgerEntry {
        LedgerEntry {
            kind: LedgerKind::Refund,
            period_start: period.map(|p| p.0),
            period_end: period.map(|p| p.1),
            ..LedgerEntry::movement(id, s, amount, key, note, now)
        }
    }

    /// An early-termination fee, still to be taken at the gateway.
    pub fn fee(
        id: LedgerEntryId,
        s: &Subscription,
        amount: Money,
        key: String,
        note: &str,
        now: Timestamp,
    ) -> LedgerEntry {
        LedgerEntry { kind: LedgerKind::Fee, ..LedgerEntry::movement(id, s, amount, key, note, now) }
    }

    /// The entry as the ledger's rules see it.
    pub fn line(&self) -> LedgerLine {
        LedgerLine {
            kind: self.kind,
            amount_minor: self.amount_minor,
            period_start: self.period_start,
            created_at: self.created_at,
        }
    }

    fn movement(
        id: LedgerEntryId,
        s: &Subscription,
        amount: Money,
        key: String,
        note: &str,
        now: Timestamp,
    ) -> LedgerEntry {
        LedgerEntry {
            id,
            family_id: s.family_id.clone(),
            subscription_id: s.id.clone(),
            kind: LedgerKind::Charge,
            amount_minor: amount.amount_minor,
            currency: amount.currency,
            period_start: None,
            period_end: None,
            entry_key: key,
            gateway_reference: None,
            note: note.to_owned(),
            created_at: now,
        }
    }
}

#[derive(Clone, Debug)]
pub struct StoredReceipt {
    pub id: ReceiptId,
    pub family_id: FamilyId,
    pub number: String,
    pub kind: String,
    pub subject_id: String,
    /// The signed receipt document (`{id, kind, body, signature}`) as JSON.
    pub document: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub subject_ids: Vec<String>,
    pub details: String,
}

/// A saved response for an `Idempotency-Key`; `response` is `None` while
/// the first request is still being processed.
#[derive(Clone, Debug)]
pub struct IdempotentRequest {
    pub request_sha256: String,
    pub response: Option<SavedResponse>,
    pub created_at: Timestamp,
    /// The server process that claimed it (none for keys claimed before
    /// processes were named).
    pub claimed_by: Option<String>,
    /// When the request's change was committed (none: it made none yet, or
    /// none at all).
    pub changed_at: Option<Timestamp>,
}

/// What a finished request left for its retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SavedResponse {
    /// The status and body, replayed as they were.
    Replayable { status: u16, body: String },
    /// Done, but the answer held a secret shown only once (a session token,
    /// an API key, a webhook secret): only the status is kept.
    Withheld { status: u16 },
}

#[derive(Clone, Debug)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub service: String,
    pub name: String,
    pub key_sha256: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A child record as stored: the body is ciphertext under the (family,
/// service) data key, with the record's identity bound in as associated data.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    pub id: RecordId,
    pub family_id: FamilyId,
    pub child_id: ChildId,
    pub service: String,
    pub kind: String,
    pub recorded_at: Timestamp,
    /// Hex of the 24-byte XChaCha20 nonce.
    pub nonce: String,
    /// Base64 of the ciphertext and tag.
    pub ciphertext: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug)]
pub struct Export {
    pub id: ExportId,
    pub family_id: FamilyId,
    pub status: String,
    pub requested_by: String,
    pub file_sha256: Option<String>,
    pub size_bytes: Option<i64>,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// When a ready export's file and key are destroyed.
    pub expires_at: Option<Timestamp>,
}

/// How building an export ended.
#[derive(Clone, Copy, Debug)]
pub enum ExportOutcome<'a> {
    Ready {
        sha256: &'a str,
        size: i64,
        expires_at: Timestamp,
    },
    /// Written to the operator's file (`baobao export`); nothing kept.
    Delivered {
        sha256: &'a str,
        size: i64,
    },
    Failed {
        code: &'a str,
    },
}

#[derive(Clone, Debug)]
pub struct Deletion {
    pub id: DeletionId,
    pub family_id: FamilyId,
    /// A service, or `*` for all of the family's data.
    pub service: String,
    /// One child's data only (a child removed, consent withdrawn).
    pub child_id: Option<ChildId>,
    /// `guardian_request`, `retention` or `consent_withdrawn`.
    pub cause: String,
    pub status: String,
    pub requested_at: Timestamp,
    pub due_at: Timestamp,
    pub key_destroyed_at: Option<Timestamp>,
    pub certificate_id: Option<ReceiptId>,
    pub completed_at: Option<Timestamp>,
}

/// A message waiting in (or delivered from) the outbox.
#[derive(Clone, Debug)]
pub struct OutboxMessage {
    pub id: String,
    /// `email` (webhooks come later).
    pub channel: String,
    /// One message per event: a retried change writes nothing new.
    pub event_key: String,
    pub family_id: Option<FamilyId>,
    /// Erased once delivered.
    pub recipient: String,
    pub locale: String,
    pub template: String,
    /// The facts the template needs, as JSON.
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

/// One of `parts` disjoint shares of the subscriptions, for the claimers
/// that work through one billing run side by side: a subscription is in
/// share `part` by the last character of its id. The last share also takes
/// any character the others do not name, so every id is in exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub part: usize,
    pub parts: usize,
}

impl Share {
    /// Every subscription.
    pub const WHOLE: Share = Share { part: 0, parts: 1 };

    /// `parts` shares (at most one per id character), every one.
    pub fn all(parts: usize) -> impl Iterator<Item = Share> {
        let parts = parts.clamp(1, baobao_domain::ids::CROCKFORD.len());
        (0..parts).map(move |part| Share { part, parts })
    }

    /// The SQL condition on `id` (empty for the whole). The characters are
    /// the id alphabet's own, never input.
    pub(crate) fn predicate(self) -> String {
        if self.parts <= 1 {
            return String::new();
        }
        let characters_of = |part: usize| {
            baobao_domain::ids::CROCKFORD
                .iter()
                .enumerate()
                .filter(|(index, _)| index % self.parts == part)
                .map(|(_, c)| format!("'{}'", char::from(*c)))
                .collect::<Vec<_>>()
        };
        if self.part + 1 < self.parts {
            format!(" AND substr(id, length(id), 1) IN ({})", characters_of(self.part).join(", "))
        } else {
            let others: Vec<String> = (0..self.parts - 1).flat_map(characters_of).collect();
            format!(" AND substr(id, length(id), 1) NOT IN ({})", others.join(", "))
        }
    }
}
