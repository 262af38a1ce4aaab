//! Disputes: a guardian's complaint, answered from the records first.
//!
//! Filing writes the dispute, checks what baobao's own records say about
//! it, and acts on what they settle — in one transaction with the signed
//! receipt of the filing, its audit entry and its email: a charge for a
//! period starting at or after a cancellation took effect is refunded (one
//! refund per charge, by its entry key, however often the filing is
//! retried); a cancellation's receipt, a refund's gateway status or a
//! deletion's certificate is shown. Only what the records cannot settle
//! waits for a person, at a level with deadlines (`domain::dispute`); the
//! worker escalates what is overdue. Every step is on the timeline the
//! guardian sees.

use axum::http::StatusCode;
use baobao_domain::dispute::{DisputeKind, DisputeLevel, DisputeOutcome, charged_after_cancellation};
use baobao_domain::ids::{CancellationId, DisputeId, FamilyId, LedgerEntryId, SubscriptionId};
use baobao_domain::ledger::LedgerKind;
use baobao_domain::money::Money;
use baobao_domain::receipt::{DisputeAbout, DisputeReceipt, EvidenceRef, ReceiptBody};
use baobao_domain::subscription::CancellationStatus;
use baobao_domain::{CancelOption, Locale};
use baobao_store::{
    Dispute, DisputeEvent, DisputeEvidence, DisputeStatus, LedgerEntry, MovementStatus, Subscription, Tx,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{Caller, Role, STAFF_READERS};
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::idempotency::answer_with_change;
use crate::random::random_bytes;
use crate::receipts::{self, ReceiptDocument};
use crate::services::dispute_levels::{notify, raise};
use crate::services::evidence::{EvidenceInput, decode_evidence, store_evidence};
use crate::services::notices::short_text;
use crate::state::{AppState, Parts};

/// Evidence files filed with one dispute (or added to it at once).
pub const DISPUTE_EVIDENCE_FILES_MAX: usize = 5;
/// Evidence files one dispute holds in all.
pub const DISPUTE_EVIDENCE_TOTAL_MAX: usize = 20;
pub const DESCRIPTION_CHARS_MAX: usize = 4000;
pub const MESSAGE_CHARS_MAX: usize = 4000;
pub const FORWARDED_BY_CHARS_MAX: usize = 200;
pub const RECEIPT_NUMBER_CHARS_MAX: usize = 32;

/// Staff who answer disputes: agents at support, supervisors and
/// compliance at every level.
pub const DISPUTE_HANDLERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Compliance];
/// Staff who may decide a dispute above support, or refund on one.
pub const DISPUTE_DECIDERS: &[Role] = &[Role::Supervisor, Role::Compliance];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeInput {
    /// `wrong_charge`, `charge_after_cancellation`, `cancellation_ignored`,
    /// `refund_missing`, `data_not_deleted` or `other`.
    pub kind: String,
    /// The family, when staff file on a guardian's behalf without naming a
    /// subscription.
    #[serde(default)]
    pub family_id: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub ledger_entry_id: Option<String>,
    #[serde(default)]
    pub cancellation_id: Option<String>,
    /// A receipt's number (`BB-YYYYMMDD-XXXXXXXX`), e.g. of the cancellation
    /// the guardian says was ignored.
    #[serde(default)]
    pub receipt_number: Option<String>,
    /// The tracking number of a letter the guardian posted.
    #[serde(default)]
    pub tracking_number: Option<String>,
    pub description: String,
    #[serde(default)]
    pub evidence: Vec<EvidenceInput>,
    /// Staff only: the consumer-protection body that forwarded the
    /// complaint (it shortens the resolution deadline).
    #[serde(default)]
    pub forwarded_by: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisputeAboutView {
    pub subscription_id: Option<String>,
    pub ledger_entry_id: Option<String>,
    pub cancellation_id: Option<String>,
    pub receipt_number: Option<String>,
    pub tracking_number: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisputeView {
    pub id: String,
    pub family_id: String,
    pub kind: String,
    pub about: DisputeAboutView,
    pub description: String,
    pub channel: String,
    pub filed_by: String,
    pub forwarded_by: Option<String>,
    /// `support`, `supervisor`, `external_mediation` or `legal`.
    pub level: String,
    /// `open` or `resolved`.
    pub status: String,
    pub outcome: Option<String>,
    /// Settled from the records, with no person needed.
    pub settled_automatically: bool,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub first_response_due: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_responded_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub resolution_due: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
    pub deadlines_missed: i64,
    /// The receipt of the filing; its number is the dispute's reference.
    pub receipt_id: String,
}

impl From<&Dispute> for DisputeView {
    fn from(d: &Dispute) -> DisputeView {
        DisputeView {
            id: d.id.to_string(),
            family_id: d.family_id.to_string(),
            kind: d.kind.as_str().to_owned(),
            about: DisputeAboutView {
                subscription_id: d.subscription_id.as_ref().map(ToString::to_string),
                ledger_entry_id: d.ledger_entry_id.as_ref().map(ToString::to_string),
                cancellation_id: d.cancellation_id.as_ref().map(ToString::to_string),
                receipt_number: d.receipt_number.clone(),
                tracking_number: d.tracking_number.clone(),
            },
            description: d.description.clone(),
            channel: d.channel.clone(),
            filed_by: d.filed_by.clone(),
            forwarded_by: d.forwarded_by.clone(),
            level: d.level.as_str().to_owned(),
            status: d.status.as_str().to_owned(),
            outcome: d.outcome.map(|o| o.as_str().to_owned()),
            settled_automatically: d.settled_automatically,
            opened_at: d.opened_at,
            first_response_due: d.first_response_due,
            first_responded_at: d.first_responded_at,
            resolution_due: d.resolution_due,
            resolved_at: d.resolved_at,
            deadlines_missed: d.deadlines_missed,
            receipt_id: d.receipt_id.to_string(),
        }
    }
}

/// One step on the timeline.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TimelineEntryView {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor: String,
    /// `filed`, `records_checked`, `refunded`, `message`, `evidence_added`,
    /// `escalated`, `deadline_missed` or `resolved`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub facts: serde_json::Value,
    pub text: String,
}

impl From<&DisputeEvent> for TimelineEntryView {
    fn from(e: &DisputeEvent) -> TimelineEntryView {
        TimelineEntryView {
            at: e.at,
            actor: e.actor.clone(),
            kind: e.kind.clone(),
            facts: serde_json::from_str(&e.facts).unwrap_or(serde_json::Value::Null),
            text: e.text.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisputeEvidenceView {
    pub sha256: String,
    pub content_type: String,
    pub bytes: i64,
    pub added_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub added_at: Timestamp,
    /// The file went with the family's personal data; its hash stays.
    pub removed: bool,
}

impl From<&DisputeEvidence> for DisputeEvidenceView {
    fn from(e: &DisputeEvidence) -> DisputeEvidenceView {
        DisputeEvidenceView {
            sha256: e.sha256.clone(),
            content_type: e.content_type.clone(),
            bytes: e.bytes,
            added_by: e.added_by.clone(),
            added_at: e.added_at,
            removed: e.removed_at.is_some(),
        }
    }
}

/// A dispute with everything its holder may read.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisputeDetail {
    pub dispute: DisputeView,
    pub timeline: Vec<TimelineEntryView>,
    pub evidence: Vec<DisputeEvidenceView>,
    pub receipt: ReceiptDocument,
}

/// Who files: a signed-in caller, or a kept receipt's holder after the
/// account closed (checked by a one-time code sent to `email`).
pub enum Filer<'a> {
    Caller(&'a Caller),
    ReceiptHolder { email: String, locale: Locale },
}

impl Filer<'_> {
    fn actor(&self) -> String {
        match self {
            Filer::Caller(caller) => caller.actor(),
            Filer::ReceiptHolder { .. } => "receipt_holder".to_owned(),
        }
    }
}

/// Where a guardian filed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Portal,
    Api,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Portal => "portal",
            Via::Api => "api",
        }
    }
}

/// What filing was checked against: the ids the input named, read and
/// found to belong to one family.
struct Subject {
    family_id: FamilyId,
    subscription: Option<Subscription>,
    ledger_entry_id: Option<LedgerEntryId>,
    cancellation_id: Option<CancellationId>,
}

fn parse_id<K: baobao_domain::ids::IdKind>(field: &str, text: Option<&str>) -> ApiResult<Option<baobao_domain::Id<K>>> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| baobao_domain::Id::parse(t).map_err(|_| ApiError::invalid_field(field, "id")))
        .transpose()
}

/// Reads the ids the input names and checks they are of one family the
/// filer may file for. A guardian naming another family's ids learns
/// nothing ("not found").
async fn subject(
    state: &AppState,
    filer: &Filer<'_>,
    input: &DisputeInput,
    family: Option<FamilyId>,
) -> ApiResult<Subject> {
    let subscription_id: Option<SubscriptionId> = parse_id("subscription_id", input.subscription_id.as_deref())?;
    let ledger_entry_id: Option<LedgerEntryId> = parse_id("ledger_entry_id", input.ledger_entry_id.as_deref())?;
    let cancellation_id: Option<CancellationId> = parse_id("cancellation_id", input.cancellation_id.as_deref())?;
    let named_family: Option<FamilyId> = parse_id("family_id", input.family_id.as_deref())?;
    let mut family_id = family.or(named_family);
    let mut subscription_id = subscription_id;
    let mut claim = |found: &FamilyId, resource: &'static str| -> ApiResult<()> {
        match &family_id {
            Some(family) if family != found => Err(ApiError::not_found(resource)),
            Some(_) => Ok(()),
            None => {
                family_id = Some(found.clone());
                Ok(())
            }
        }
    };
    if let Some(id) = &cancellation_id {
        let cancellation = state.store.cancellation(id).await.or_not_found("cancellation")?;
        claim(&cancellation.family_id, "cancellation")?;
        if subscription_id.as_ref().is_some_and(|s| *s != cancellation.subscription_id) {
            return Err(ApiError::not_found("cancellation"));
        }
        subscription_id = Some(cancellation.subscription_id);
    }
    if let Some(id) = &ledger_entry_id {
        let entry = state.store.ledger_entry(id).await.or_not_found("ledger entry")?;
        claim(&entry.family_id, "ledger entry")?;
        if subscription_id.as_ref().is_some_and(|s| *s != entry.subscription_id) {
            return Err(ApiError::not_found("ledger entry"));
        }
        subscription_id = Some(entry.subscription_id);
    }
    let subscription = match &subscription_id {
        Some(id) => {
            let subscription = state.store.subscription(id).await.or_not_found("subscription")?;
            claim(&subscription.family_id, "subscription")?;
            Some(subscription)
        }
        None => None,
    };
    let family_id = family_id.ok_or_else(|| ApiError::invalid_field("subscription_id", "required"))?;
    if let Filer::Caller(caller) = filer {
        caller.require_family(&family_id, STAFF_READERS, "family")?;
    }
    state.store.family(&family_id).await.or_not_found("family")?;
    Ok(Subject { family_id, subscription, ledger_entry_id, cancellation_id })
}

/// What the records said, and what was done about it at once.
struct Checked {
    facts: serde_json::Value,
    /// Refund entries written now, to pay.
    refunds: Vec<LedgerEntry>,
    outcome: Option<DisputeOutcome>,
    /// The level it waits at, if a person must look.
    level: DisputeLevel,
    /// The records answered it (a first response, even if it stays open).
    answered: bool,
}

impl Checked {
    fn for_a_person(facts: serde_json::Value, level: DisputeLevel) -> Checked {
        Checked { facts, refunds: Vec::new(), outcome: None, level, answered: false }
    }
}

/// The start of the charged period a cancellation was quoted in, when it
/// ended at once (that period is settled by its quote's refund).
fn quoted_period_start(charges: &[LedgerEntry], received_at: Timestamp, option: CancelOption) -> Option<Timestamp> {
    if option != CancelOption::Now {
        return None;
    }
    charges.iter().find_map(|c| match (c.period_start, c.period_end) {
        (Some(start), Some(end)) if start <= received_at && received_at < end => Some(start),
        _ => None,
    })
}

/// Refunds every charge for a period starting at or after a live
/// cancellation's `effective_at`; returns the refunds written now and the
/// late charges found (already refunded ones included).
async fn refund_late_charges(
    tx: &mut Tx,
    parts: &Parts,
    subscription: &Subscription,
    cancellations: &[baobao_store::Cancellation],
    now: Timestamp,
) -> ApiResult<(Vec<LedgerEntry>, Vec<String>)> {
    let ledger = tx.ledger_of_subscription(&subscription.id).await?;
    let charges: Vec<LedgerEntry> = ledger.iter().filter(|e| e.kind == LedgerKind::Charge).cloned().collect();
    let mut written = Vec::new();
    let mut late = Vec::new();
    for cancellation in cancellations.iter().filter(|c| c.status != CancellationStatus::Withdrawn) {
        let quoted = quoted_period_start(&charges, cancellation.received_at, cancellation.option);
        for charge in &charges {
            if charged_after_cancellation(charge.period_start, cancellation.effective_at)
                && charge.period_start != quoted
                && !late.contains(&charge.id.to_string())
            {
                late.push(charge.id.to_string());
            }
        }
        written.extend(
            crate::services::billing::refund_charges_from(
                parts,
                tx,
                subscription,
                cancellation.effective_at,
                quoted,
                now,
            )
            .await?,
        );
    }
    Ok((written, late))
}

/// Checks the records, in the filing's transaction, and acts on what they
/// settle.
async fn check_records(
    tx: &mut Tx,
    state: &AppState,
    kind: DisputeKind,
    subject: &Subject,
    input: &DisputeInput,
    now: Timestamp,
) -> ApiResult<Checked> {
    let cancellations = match &subject.subscription {
        Some(s) => state.store.cancellations_of(&s.id).await?,
        None => Vec::new(),
    };
    match kind {
        DisputeKind::ChargeAfterCancellation | DisputeKind::WrongCharge => {
            let Some(subscription) = &subject.subscription else {
                return Ok(Checked::for_a_person(json!({"checked": "nothing_named"}), DisputeLevel::Support));
            };
            let (written, late) = refund_late_charges(tx, state, subscription, &cancellations, now).await?;
            let facts = json!({
                "checked": "charges_after_cancellation",
                "subscription_id": subscription.id,
                "cancellations": cancellations.iter().map(|c| json!({
                    "id": c.id, "status": c.status.as_str(), "effective_at": c.effective_at.to_string(),
                })).collect::<Vec<_>>(),
                "late_charges": late,
                "refunds": written.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
            });
            if late.is_empty() {
                return Ok(Checked::for_a_person(facts, DisputeLevel::Support));
            }
            Ok(Checked {
                facts,
                refunds: written,
                outcome: Some(DisputeOutcome::Refunded),
                level: DisputeLevel::Support,
                answered: true,
            })
        }
        DisputeKind::CancellationIgnored => {
            let by_number = match input.receipt_number.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                Some(number) => state.store.receipt_by_number(number).await?.filter(|r| {
                    r.family_id == subject.family_id && (r.kind == "cancellation" || r.kind == "withdrawal")
                }),
                None => None,
            };
            let request = match (&by_number, &subject.cancellation_id) {
                (Some(receipt), _) => CancellationId::parse(&receipt.subject_id).ok(),
                (None, Some(id)) => Some(id.clone()),
                (None, None) => None,
            };
            if let Some(cancellation_id) = request {
                let cancellation = state.store.cancellation(&cancellation_id).await.or_not_found("cancellation")?;
                let receipt = state.store.receipt(&cancellation.receipt_id).await?;
                let subscription = tx.subscription_for_update(&cancellation.subscription_id).await?;
                let (written, late) =
                    refund_late_charges(tx, state, &subscription, std::slice::from_ref(&cancellation), now).await?;
                let facts = json!({
                    "checked": "cancellation_request",
                    "cancellation_id": cancellation.id,
                    "status": cancellation.status.as_str(),
                    "received_at": cancellation.received_at.to_string(),
                    "effective_at": cancellation.effective_at.to_string(),
                    "receipt_id": receipt.id,
                    "receipt_number": receipt.number,
                    "late_charges": late,
                    "refunds": written.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
                });
                let outcome =
                    if late.is_empty() { DisputeOutcome::AnsweredFromRecords } else { DisputeOutcome::Refunded };
                return Ok(Checked {
                    facts,
                    refunds: written,
                    outcome: Some(outcome),
                    level: DisputeLevel::Support,
                    answered: true,
                });
            }
            if let Some(tracking) = input.tracking_number.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                let notices = state.store.written_notices_of(&subject.family_id).await?;
                if let Some(notice) = notices.iter().find(|n| n.tracking_number.as_deref() == Some(tracking)) {
                    let cancellation = state.store.cancellation(&notice.cancellation_id).await?;
                    let receipt = state.store.receipt(&cancellation.receipt_id).await?;
                    return Ok(Checked {
                        facts: json!({
                            "checked": "written_notice",
                            "written_notice_id": notice.id,
                            "received_at": notice.received_at.to_string(),
                            "cancellation_id": cancellation.id,
                            "status": cancellation.status.as_str(),
                            "effective_at": cancellation.effective_at.to_string(),
                            "receipt_number": receipt.number,
                        }),
                        refunds: Vec::new(),
                        outcome: Some(DisputeOutcome::AnsweredFromRecords),
                        level: DisputeLevel::Support,
                        answered: true,
                    });
                }
                // A letter the records never saw: a supervisor looks at once.
                return Ok(Checked::for_a_person(
                    json!({"checked": "written_notice", "tracking_number_registered": false}),
                    DisputeLevel::Supervisor,
                ));
            }
            Ok(Checked::for_a_person(json!({"checked": "nothing_named"}), DisputeLevel::Support))
        }
        DisputeKind::RefundMissing => check_refunds(tx, state, subject, &cancellations, now).await,
        DisputeKind::DataNotDeleted => {
            let deletions = state.store.deletions_of(&subject.family_id).await?;
            // A deletion overdue is the fault to show; else the latest done
            // (its certificate answers the question); else the one to come.
            let overdue = deletions.iter().find(|d| d.status == "pending" && d.due_at < now);
            let done = deletions.iter().filter(|d| d.status == "done").max_by_key(|d| d.completed_at);
            let Some(latest) = overdue.or(done).or(deletions.first()) else {
                return Ok(Checked::for_a_person(json!({"checked": "deletions", "found": 0}), DisputeLevel::Support));
            };
            let certificate = match &latest.certificate_id {
                Some(id) => Some(state.store.receipt(id).await?),
                None => None,
            };
            let facts = json!({
                "checked": "deletions",
                "deletion_id": latest.id,
                "service": latest.service,
                "status": latest.status,
                "requested_at": latest.requested_at.to_string(),
                "due_at": latest.due_at.to_string(),
                "completed_at": latest.completed_at.map(|t| t.to_string()),
                "certificate_id": certificate.as_ref().map(|c| c.id.to_string()),
                "certificate_number": certificate.as_ref().map(|c| c.number.clone()),
            });
            // A deletion past its due date and still not done is a fault a
            // supervisor must see; one done or on its way is answered.
            if latest.status == "pending" && latest.due_at < now {
                return Ok(Checked::for_a_person(facts, DisputeLevel::Supervisor));
            }
            Ok(Checked {
                facts,
                refunds: Vec::new(),
                outcome: (latest.status != "pending").then_some(DisputeOutcome::AnsweredFromRecords),
                level: DisputeLevel::Support,
                answered: true,
            })
        }
        DisputeKind::Other => Ok(Checked::for_a_person(json!({"checked": "nothing"}), DisputeLevel::Support)),
    }
}

/// A refund the guardian misses: its entry and gateway status, or the
/// refund a cancellation's quote promised and nothing wrote.
async fn check_refunds(
    tx: &mut Tx,
    state: &AppState,
    subject: &Subject,
    cancellations: &[baobao_store::Cancellation],
    now: Timestamp,
) -> ApiResult<Checked> {
    let Some(subscription) = &subject.subscription else {
        return Ok(Checked::for_a_person(json!({"checked": "nothing_named"}), DisputeLevel::Support));
    };
    let movements: Vec<_> = state
        .store
        .movements_of(&subject.family_id)
        .await?
        .into_iter()
        .filter(|m| m.subscription_id == subscription.id && m.kind == LedgerKind::Refund)
        .filter(|m| subject.ledger_entry_id.as_ref().is_none_or(|id| *id == m.entry_id))
        .collect();
    let shown: Vec<_> = movements
        .iter()
        .map(|m| {
            json!({
                "ledger_entry_id": m.entry_id,
                "amount": m.amount,
                "status": m.status.as_str(),
                "gateway_reference": m.gateway_reference,
                "settled_at": m.settled_at.map(|t| t.to_string()),
            })
        })
        .collect();
    // A quoted refund nothing wrote: write it now (its key is the one the
    // cancellation would have used, so it is never paid twice).
    let mut written = Vec::new();
    for cancellation in cancellations.iter().filter(|c| c.status != CancellationStatus::Withdrawn) {
        if cancellation.refund_minor <= 0 || cancellation.effective_at > now {
            continue;
        }
        let key = format!("refund:{}", cancellation.id);
        let refund = LedgerEntry::refund(
            LedgerEntryId::from_random(random_bytes()),
            subscription,
            Money { amount_minor: cancellation.refund_minor, currency: cancellation.currency },
            None,
            key,
            baobao_domain::ledger::LedgerNote::RefundAsQuoted.text(),
            now,
        );
        if tx.append_ledger_entry_to_pay(&refund, state.clock.wall_now()).await? {
            written.push(refund);
        }
    }
    let failed = movements.iter().any(|m| m.status == MovementStatus::Failed);
    let pending = movements.iter().any(|m| m.status == MovementStatus::Pending);
    let facts = json!({
        "checked": "refunds",
        "subscription_id": subscription.id,
        "refunds": shown,
        "written": written.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
    });
    if !written.is_empty() {
        return Ok(Checked {
            facts,
            refunds: written,
            outcome: Some(DisputeOutcome::Refunded),
            level: DisputeLevel::Support,
            answered: true,
        });
    }
    if movements.is_empty() {
        return Ok(Checked::for_a_person(facts, DisputeLevel::Support));
    }
    if failed {
        // Finance must send it another way: a supervisor owns it now.
        return Ok(Checked { answered: true, ..Checked::for_a_person(facts, DisputeLevel::Supervisor) });
    }
    Ok(Checked {
        facts,
        refunds: Vec::new(),
        outcome: (!pending).then_some(DisputeOutcome::AnsweredFromRecords),
        level: DisputeLevel::Support,
        answered: true,
    })
}

fn parse_kind(text: &str) -> ApiResult<DisputeKind> {
    DisputeKind::parse(text.trim()).ok_or_else(|| {
        ApiError::invalid_field("kind", "one_of")
            .with("allowed", DisputeKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "))
    })
}

/// A person's words: trimmed, not empty, within `max` characters, no
/// control characters but line breaks and tabs.
pub fn long_text(field: &str, text: &str, max: usize) -> ApiResult<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid_field(field, "required"));
    }
    if text.chars().count() > max || text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(ApiError::invalid_field(field, "text_chars_max").with("max", max));
    }
    Ok(text.to_owned())
}

/// Decodes every file first: a bad one refuses the filing before anything
/// is stored.
fn decode_all(evidence: &[EvidenceInput]) -> ApiResult<Vec<(String, Vec<u8>)>> {
    if evidence.len() > DISPUTE_EVIDENCE_FILES_MAX {
        return Err(ApiError::unprocessable("too_many_evidence_files").with("max", DISPUTE_EVIDENCE_FILES_MAX));
    }
    evidence.iter().map(|e| Ok((e.content_type.clone(), decode_evidence(e)?))).collect()
}

/// Files a dispute: checks the records and acts on what they settle, signs
/// the filing's receipt and tells the guardian, all in one transaction.
pub async fn file(
    state: &AppState,
    filer: Filer<'_>,
    via: Via,
    input: DisputeInput,
    family: Option<FamilyId>,
) -> ApiResult<DisputeDetail> {
    let kind = parse_kind(&input.kind)?;
    let description = long_text("description", &input.description, DESCRIPTION_CHARS_MAX)?;
    let receipt_number = short_text("receipt_number", input.receipt_number.as_deref(), RECEIPT_NUMBER_CHARS_MAX)?;
    let tracking_number =
        short_text("tracking_number", input.tracking_number.as_deref(), crate::services::notices::TRACKING_CHARS_MAX)?;
    let forwarded_by = short_text("forwarded_by", input.forwarded_by.as_deref(), FORWARDED_BY_CHARS_MAX)?;
    let (channel, agent) = match &filer {
        Filer::Caller(Caller::Guardian { .. }) if forwarded_by.is_some() => {
            return Err(ApiError::invalid_field("forwarded_by", "staff_only"));
        }
        Filer::Caller(Caller::Guardian { .. }) => (via.as_str(), None),
        Filer::Caller(caller @ Caller::Staff { .. }) => {
            caller.require_staff(&[Role::Agent, Role::Supervisor, Role::Compliance])?;
            ("support", Some(caller.actor()))
        }
        Filer::Caller(Caller::Integrator { .. }) => return Err(ApiError::forbidden()),
        Filer::ReceiptHolder { .. } => ("receipt_holder", None),
    };
    let files = decode_all(&input.evidence)?;
    let family = match (&filer, family) {
        (Filer::Caller(Caller::Guardian { family_id, .. }), _) => Some(family_id.clone()),
        (_, family) => family,
    };
    let subject = subject(state, &filer, &input, family).await?;
    let stored_files = files
        .iter()
        .map(|(content_type, bytes)| {
            Ok(EvidenceRef {
                sha256: store_evidence(state, &subject.family_id, bytes)?,
                content_type: content_type.clone(),
                bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let guardians = state.store.guardians_of(&subject.family_id).await?;
    let family_row = state.store.family(&subject.family_id).await?;
    let now = state.clock.now();
    let id = DisputeId::from_random(random_bytes());
    let actor = filer.actor();
    let (locale, contact_email) = match &filer {
        Filer::Caller(Caller::Guardian { locale, .. }) => (*locale, None),
        Filer::ReceiptHolder { email, locale } => (*locale, Some(email.clone())),
        Filer::Caller(_) => (guardians.first().map(|g| g.locale).unwrap_or(Locale::ZhCn), None),
    };

    let mut tx = state.store.begin().await?;
    let checked = check_records(&mut tx, state, kind, &subject, &input, now).await?;
    let due = state.config.dispute_deadlines.due(checked.level, now, forwarded_by.is_some());
    let settled = checked.outcome;
    let mut dispute = Dispute {
        id: id.clone(),
        family_id: subject.family_id.clone(),
        kind,
        subscription_id: subject.subscription.as_ref().map(|s| s.id.clone()),
        ledger_entry_id: subject.ledger_entry_id.clone(),
        cancellation_id: subject.cancellation_id.clone(),
        receipt_number,
        tracking_number,
        description: description.clone(),
        contact_email,
        locale: locale.tag().to_owned(),
        channel: channel.to_owned(),
        filed_by: actor.clone(),
        forwarded_by: forwarded_by.clone(),
        level: checked.level,
        status: if settled.is_some() { DisputeStatus::Resolved } else { DisputeStatus::Open },
        outcome: settled,
        settled_automatically: settled.is_some(),
        level_since: now,
        first_response_due: due.first_response,
        resolution_due: due.resolution,
        first_responded_at: checked.answered.then_some(now),
        deadlines_missed: 0,
        // Set below, once the receipt is signed.
        receipt_id: baobao_domain::ids::ReceiptId::from_random([0; 16]),
        opened_at: now,
        resolved_at: settled.map(|_| now),
    };
    let body = DisputeReceipt {
        dispute_id: id.to_string(),
        dispute_kind: kind.as_str().to_owned(),
        channel: channel.to_owned(),
        filed_at: now,
        about: DisputeAbout {
            subscription_id: dispute.subscription_id.as_ref().map(ToString::to_string),
            ledger_entry_id: dispute.ledger_entry_id.as_ref().map(ToString::to_string),
            cancellation_id: dispute.cancellation_id.as_ref().map(ToString::to_string),
            receipt_number: dispute.receipt_number.clone(),
            tracking_number: dispute.tracking_number.clone(),
        },
        description_sha256: hex::encode(Sha256::digest(description.as_bytes())),
        evidence: stored_files.clone(),
        level: checked.level.as_str().to_owned(),
        first_response_due: due.first_response,
        resolution_due: due.resolution,
        settled: settled.map(|o| o.as_str().to_owned()),
        refunds: checked.refunds.iter().map(|r| r.id.to_string()).collect(),
        agent,
        forwarded_by,
    };
    let (stored, document) = receipts::issue(
        state,
        &subject.family_id,
        &family_row.time_zone,
        id.as_str(),
        now,
        ReceiptBody::Dispute(body),
    )?;
    dispute.receipt_id = stored.id.clone();
    tx.insert_dispute(&dispute).await?;
    tx.insert_receipt(&stored).await?;
    for file in &stored_files {
        tx.insert_dispute_evidence(&DisputeEvidence {
            dispute_id: id.clone(),
            sha256: file.sha256.clone(),
            family_id: subject.family_id.clone(),
            content_type: file.content_type.clone(),
            bytes: file.bytes,
            added_by: actor.clone(),
            added_at: now,
            removed_at: None,
        })
        .await?;
    }
    let filed_facts = json!({"kind": kind.as_str(), "channel": channel, "receipt_number": stored.number,
        "level": checked.level.as_str(), "evidence": stored_files.iter().map(|f| &f.sha256).collect::<Vec<_>>()});
    tx.insert_dispute_event(&id, now, &actor, "filed", &filed_facts, &description).await?;
    tx.insert_dispute_event(&id, now, "system", "records_checked", &checked.facts, "").await?;
    if !checked.refunds.is_empty() {
        let refunds = json!({"refunds": checked.refunds.iter().map(|r| json!({"ledger_entry_id": r.id, "amount_minor": r.amount_minor, "currency": r.currency})).collect::<Vec<_>>()});
        tx.insert_dispute_event(&id, now, "system", "refunded", &refunds, "").await?;
    }
    if let Some(outcome) = settled {
        tx.insert_dispute_event(
            &id,
            now,
            "system",
            "resolved",
            &json!({"outcome": outcome.as_str(), "automatically": true}),
            "",
        )
        .await?;
    }
    tx.audit(
        now,
        &actor,
        "dispute.filed",
        &[subject.family_id.as_str(), id.as_str()],
        &json!({"kind": kind.as_str(), "channel": channel, "level": checked.level.as_str()}),
    )
    .await?;
    tx.audit(
        now,
        "system",
        "dispute.records_checked",
        &[subject.family_id.as_str(), id.as_str()],
        &json!({"settled": settled.map(|o| o.as_str()), "facts": checked.facts}),
    )
    .await?;
    let payload = json!({
        "receipt": document,
        "time_zone": family_row.time_zone,
        "dispute_id": id,
        "dispute_kind": kind.as_str(),
        "level": checked.level.as_str(),
        "resolution_due": due.resolution.to_string(),
        "outcome": settled.map(|o| o.as_str()),
        "variant": if settled.is_some() { "settled" } else { "open" },
    });
    notify(&mut tx, state, &dispute, &guardians, "dispute_filed", &format!("{id}:filed"), &payload).await?;
    let answer = answered(&mut tx, &id, StatusCode::CREATED).await?;
    tx.commit().await?;
    pay(state, &checked.refunds).await;
    Ok(answer)
}

/// Sends the refunds to the gateway now; what fails stays pending for the
/// worker (the dispute is on record either way).
async fn pay(state: &AppState, refunds: &[LedgerEntry]) {
    if refunds.is_empty() {
        return;
    }
    let ids: Vec<_> = refunds.iter().map(|r| r.id.clone()).collect();
    if let Err(error) = crate::services::money::settle(state, &ids).await {
        tracing::warn!(code = error.code, "settling a dispute's refund failed; the worker retries");
    }
}

async fn get_unchecked(state: &AppState, id: &DisputeId) -> ApiResult<DisputeDetail> {
    let dispute = state.store.dispute(id).await.or_not_found("dispute")?;
    let timeline = state.store.dispute_events(id).await?;
    let evidence = state.store.dispute_evidence(id).await?;
    let stored = state.store.receipt(&dispute.receipt_id).await?;
    detail(&dispute, &timeline, &evidence, &stored)
}

/// The dispute as the change in `tx` leaves it, saved in `tx` as the
/// request's answer (`status`): a crash after the commit leaves the
/// client's retry this answer (`answer_with_change`).
async fn answered(tx: &mut Tx, id: &DisputeId, status: StatusCode) -> ApiResult<DisputeDetail> {
    let dispute = tx.dispute(id).await.or_not_found("dispute")?;
    let timeline = tx.dispute_events(id).await?;
    let evidence = tx.dispute_evidence(id).await?;
    let stored = tx.receipt(&dispute.receipt_id).await?;
    let answer = detail(&dispute, &timeline, &evidence, &stored)?;
    answer_with_change(tx, status, &answer).await?;
    Ok(answer)
}

fn detail(
    dispute: &Dispute,
    timeline: &[baobao_store::DisputeEvent],
    evidence: &[DisputeEvidence],
    receipt: &baobao_store::StoredReceipt,
) -> ApiResult<DisputeDetail> {
    Ok(DisputeDetail {
        dispute: DisputeView::from(dispute),
        timeline: timeline.iter().map(TimelineEntryView::from).collect(),
        evidence: evidence.iter().map(DisputeEvidenceView::from).collect(),
        receipt: serde_json::from_str(&receipt.document).map_err(internal)?,
    })
}

fn parse_dispute_id(id: &str) -> ApiResult<DisputeId> {
    DisputeId::parse(id).map_err(|_| ApiError::not_found("dispute"))
}

/// A dispute, for its family's guardians and staff readers.
pub async fn get(state: &AppState, caller: &Caller, id: &str) -> ApiResult<DisputeDetail> {
    let id = parse_dispute_id(id)?;
    let dispute = state.store.dispute(&id).await.or_not_found("dispute")?;
    caller.require_family(&dispute.family_id, STAFF_READERS, "dispute")?;
    get_unchecked(state, &id).await
}

/// A dispute opened by its emailed link (the receipt holder's way in).
pub async fn get_by_link(state: &AppState, id: &str, token: &str) -> ApiResult<DisputeDetail> {
    let id = parse_dispute_id(id)?;
    if !state.keys.opens_dispute(id.as_str(), token) {
        return Err(ApiError::not_found("dispute"));
    }
    get_unchecked(state, &id).await
}

/// A family's disputes, newest first.
pub async fn of_family(state: &AppState, caller: &Caller, family_id: &FamilyId) -> ApiResult<Vec<DisputeView>> {
    caller.require_family(family_id, STAFF_READERS, "family")?;
    Ok(state.store.disputes_of(family_id).await?.iter().map(DisputeView::from).collect())
}

/// Open disputes, the nearest deadline first.
pub async fn queue(state: &AppState, caller: &Caller, level: Option<&str>) -> ApiResult<Vec<DisputeView>> {
    caller.require_staff(STAFF_READERS)?;
    let level =
        level.map(|l| DisputeLevel::parse(l).ok_or_else(|| ApiError::invalid_query("level", "one_of"))).transpose()?;
    Ok(state.store.dispute_queue(level).await?.iter().map(DisputeView::from).collect())
}

/// A dispute the caller may act on (its family's guardian, or staff who
/// answer disputes); another family's guardian is told "not found".
async fn authorised(state: &AppState, caller: &Caller, id: &DisputeId) -> ApiResult<Dispute> {
    let known = state.store.dispute(id).await.or_not_found("dispute")?;
    caller.require_family(&known.family_id, DISPUTE_HANDLERS, "dispute")?;
    Ok(known)
}

/// An open dispute locked for one action, and what telling the parent needs.
struct Acting {
    tx: Tx,
    dispute: Dispute,
    guardians: Vec<baobao_store::Guardian>,
    time_zone: String,
    now: Timestamp,
}

async fn acting(state: &AppState, caller: &Caller, known: &Dispute) -> ApiResult<Acting> {
    let guardians = state.store.guardians_of(&known.family_id).await?;
    let time_zone = state.store.family(&known.family_id).await?.time_zone;
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let dispute = open_for_action(&mut tx, caller, &known.id).await?;
    require_open(&dispute)?;
    Ok(Acting { tx, dispute, guardians, time_zone, now })
}

/// Who acts on a dispute, and whether it is staff.
async fn open_for_action(tx: &mut Tx, caller: &Caller, id: &DisputeId) -> ApiResult<Dispute> {
    let dispute = tx.dispute_for_update(id).await.or_not_found("dispute")?;
    match caller {
        Caller::Guardian { family_id, .. } if *family_id == dispute.family_id => {}
        Caller::Guardian { .. } => return Err(ApiError::not_found("dispute")),
        Caller::Staff { .. } => {
            caller.require_staff(DISPUTE_HANDLERS)?;
        }
        Caller::Integrator { .. } => return Err(ApiError::forbidden()),
    }
    Ok(dispute)
}

fn require_open(dispute: &Dispute) -> ApiResult<()> {
    if dispute.status != DisputeStatus::Open {
        return Err(ApiError::conflict("dispute_resolved"));
    }
    Ok(())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageInput {
    pub text: String,
    /// Files to add with the message.
    #[serde(default)]
    pub evidence: Vec<EvidenceInput>,
}

/// A message on the timeline, from the guardian or from staff (a staff
/// message is the first response when none was given); the other side is
/// told by email.
pub async fn post_message(
    state: &AppState,
    caller: &Caller,
    id: &str,
    input: MessageInput,
) -> ApiResult<DisputeDetail> {
    let id = parse_dispute_id(id)?;
    let text = long_text("text", &input.text, MESSAGE_CHARS_MAX)?;
    let files = decode_all(&input.evidence)?;
    let known = authorised(state, caller, &id).await?;
    let already = state.store.dispute_evidence(&id).await?.len();
    if already + files.len() > DISPUTE_EVIDENCE_TOTAL_MAX {
        return Err(ApiError::unprocessable("too_many_evidence_files").with("max", DISPUTE_EVIDENCE_TOTAL_MAX));
    }
    let stored_files = files
        .iter()
        .map(|(content_type, bytes)| {
            Ok((store_evidence(state, &known.family_id, bytes)?, content_type.clone(), bytes.len()))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let actor = caller.actor();
    let Acting { mut tx, mut dispute, guardians, time_zone, now } = acting(state, caller, &known).await?;
    for (sha256, content_type, bytes) in &stored_files {
        let added = tx
            .insert_dispute_evidence(&DisputeEvidence {
                dispute_id: id.clone(),
                sha256: sha256.clone(),
                family_id: dispute.family_id.clone(),
                content_type: content_type.clone(),
                bytes: i64::try_from(*bytes).unwrap_or(i64::MAX),
                added_by: actor.clone(),
                added_at: now,
                removed_at: None,
            })
            .await?;
        if added {
            tx.insert_dispute_event(
                &id,
                now,
                &actor,
                "evidence_added",
                &json!({"sha256": sha256, "content_type": content_type}),
                "",
            )
            .await?;
        }
    }
    tx.insert_dispute_event(&id, now, &actor, "message", &json!({}), &text).await?;
    if caller.is_staff() {
        if dispute.first_responded_at.is_none() {
            dispute.first_responded_at = Some(now);
            tx.update_dispute(&dispute).await?;
        }
        let payload =
            json!({"time_zone": time_zone, "message": text, "dispute_id": id, "level": dispute.level.as_str()});
        let event = format!("{id}:message:{}", hex::encode(random_bytes::<6>()));
        notify(&mut tx, state, &dispute, &guardians, "dispute_message", &event, &payload).await?;
    } else if let Some(support) = state.config.provider.support_email.as_deref() {
        // The guardian wrote: support hears of it (without the words, which
        // the console shows to those allowed to read them).
        let payload = json!({"time_zone": time_zone, "dispute_id": id, "level": dispute.level.as_str()});
        let event = format!("{id}:guardian_message:{}", hex::encode(random_bytes::<6>()));
        crate::services::outbox::email_address(
            &mut tx,
            state,
            &dispute.family_id,
            support,
            Locale::parse(&dispute.locale).unwrap_or(Locale::ZhCn),
            "dispute_guardian_wrote",
            &event,
            &payload,
        )
        .await?;
    }
    tx.audit(
        now,
        &actor,
        "dispute.message",
        &[dispute.family_id.as_str(), id.as_str()],
        &json!({"files": stored_files.len()}),
    )
    .await?;
    let answer = answered(&mut tx, &id, StatusCode::CREATED).await?;
    tx.commit().await?;
    Ok(answer)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateInput {
    /// Why it goes up a level (shown on the timeline).
    pub reason: String,
}

/// Raises a dispute one level (the guardian may ask, staff may decide):
/// new deadlines from now; the guardian is told.
pub async fn escalate(state: &AppState, caller: &Caller, id: &str, input: EscalateInput) -> ApiResult<DisputeDetail> {
    let id = parse_dispute_id(id)?;
    let reason = long_text("reason", &input.reason, MESSAGE_CHARS_MAX)?;
    let known = authorised(state, caller, &id).await?;
    let Acting { mut tx, mut dispute, guardians, time_zone, now } = acting(state, caller, &known).await?;
    let to = dispute.level.next().ok_or_else(|| ApiError::conflict("dispute_at_last_level"))?;
    raise(&mut tx, state, &mut dispute, to, &caller.actor(), "asked", &reason, now).await?;
    let payload = json!({"time_zone": time_zone, "dispute_id": id, "level": to.as_str(),
        "resolution_due": dispute.resolution_due.to_string(), "message": reason});
    notify(&mut tx, state, &dispute, &guardians, "dispute_escalated", &format!("{id}:level:{}", to.as_str()), &payload)
        .await?;
    let answer = answered(&mut tx, &id, StatusCode::OK).await?;
    tx.commit().await?;
    Ok(answer)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveInput {
    /// Staff: `refunded`, `upheld` or `rejected`; the guardian: `withdrawn`.
    pub outcome: String,
    /// The decision's reasons, shown to the guardian.
    pub explanation: String,
    /// Staff deciding `refunded`: what goes back (minor units, in the
    /// subscription's currency), at most what the family paid on it.
    #[serde(default)]
    pub refund_minor: Option<i64>,
}

/// Ends a dispute: staff decide (agents at support, supervisors and
/// compliance at any level; a refund needs a supervisor or compliance),
/// the guardian may withdraw. The refund is a ledger entry keyed by the
/// dispute, so deciding twice never pays twice.
pub async fn resolve(state: &AppState, caller: &Caller, id: &str, input: ResolveInput) -> ApiResult<DisputeDetail> {
    let id = parse_dispute_id(id)?;
    let outcome =
        DisputeOutcome::parse(input.outcome.trim()).ok_or_else(|| ApiError::invalid_field("outcome", "one_of"))?;
    let explanation = long_text("explanation", &input.explanation, MESSAGE_CHARS_MAX)?;
    let known = authorised(state, caller, &id).await?;
    match (caller, outcome) {
        (Caller::Guardian { .. }, DisputeOutcome::Withdrawn) => {}
        (Caller::Guardian { .. }, _)
        | (Caller::Staff { .. }, DisputeOutcome::Withdrawn | DisputeOutcome::AnsweredFromRecords) => {
            return Err(ApiError::invalid_field("outcome", "not_yours"));
        }
        (Caller::Staff { .. }, DisputeOutcome::Refunded) => {
            caller.require_staff(DISPUTE_DECIDERS)?;
        }
        (Caller::Staff { .. }, _) if known.level > DisputeLevel::Support => {
            caller.require_staff(DISPUTE_DECIDERS)?;
        }
        _ => {}
    }
    if (outcome == DisputeOutcome::Refunded) != input.refund_minor.is_some() {
        return Err(ApiError::invalid_field("refund_minor", "with_refunded_only"));
    }
    let actor = caller.actor();
    let Acting { mut tx, mut dispute, guardians, time_zone, now } = acting(state, caller, &known).await?;
    let mut refunds = Vec::new();
    if let Some(amount_minor) = input.refund_minor {
        let subscription_id = dispute
            .subscription_id
            .clone()
            .ok_or_else(|| ApiError::invalid_field("refund_minor", "no_subscription"))?;
        let subscription = tx.subscription_for_update(&subscription_id).await?;
        let paid = tx.ledger_totals(&subscription_id).await?.net_paid_minor();
        if amount_minor <= 0 || amount_minor > paid {
            return Err(ApiError::invalid_field("refund_minor", "between").with("min", 1).with("max", paid.max(0)));
        }
        let currency = tx
            .ledger_of_subscription(&subscription_id)
            .await?
            .first()
            .map(|e| e.currency)
            .ok_or_else(|| ApiError::invalid_field("refund_minor", "nothing_paid"))?;
        let refund = LedgerEntry::refund(
            LedgerEntryId::from_random(random_bytes()),
            &subscription,
            Money { amount_minor, currency },
            None,
            format!("refund:dispute:{id}"),
            "refund on a dispute, as decided",
            now,
        );
        if tx.append_ledger_entry_to_pay(&refund, state.clock.wall_now()).await? {
            tx.insert_dispute_event(&id, now, &actor, "refunded", &json!({"refunds": [{"ledger_entry_id": refund.id, "amount_minor": amount_minor, "currency": currency}]}), "")
                .await?;
            refunds.push(refund);
        }
    }
    dispute.status = DisputeStatus::Resolved;
    dispute.outcome = Some(outcome);
    dispute.resolved_at = Some(now);
    if caller.is_staff() && dispute.first_responded_at.is_none() {
        dispute.first_responded_at = Some(now);
    }
    tx.update_dispute(&dispute).await?;
    let facts = json!({"outcome": outcome.as_str(), "automatically": false, "level": dispute.level.as_str()});
    tx.insert_dispute_event(&id, now, &actor, "resolved", &facts, &explanation).await?;
    tx.audit(now, &actor, "dispute.resolved", &[dispute.family_id.as_str(), id.as_str()], &facts).await?;
    let payload =
        json!({"time_zone": time_zone, "dispute_id": id, "outcome": outcome.as_str(), "message": explanation});
    notify(&mut tx, state, &dispute, &guardians, "dispute_resolved", &format!("{id}:resolved"), &payload).await?;
    let answer = answered(&mut tx, &id, StatusCode::OK).await?;
    tx.commit().await?;
    pay(state, &refunds).await;
    Ok(answer)
}

/// An evidence file of a dispute, for its family and staff readers (staff
/// reads are audited).
pub async fn evidence_file(state: &AppState, caller: &Caller, id: &str, sha256: &str) -> ApiResult<(String, Vec<u8>)> {
    let id = parse_dispute_id(id)?;
    let dispute = state.store.dispute(&id).await.or_not_found("dispute")?;
    caller.require_family(&dispute.family_id, STAFF_READERS, "dispute")?;
    let evidence = state.store.dispute_evidence(&id).await?;
    let file = evidence
        .iter()
        .find(|e| e.sha256 == sha256 && e.removed_at.is_none())
        .ok_or_else(|| ApiError::not_found("evidence"))?;
    let bytes = crate::services::evidence::read_family_evidence(state, &dispute.family_id, &file.sha256)?
        .ok_or_else(|| ApiError::not_found("evidence"))?;
    if caller.is_staff() {
        let mut tx = state.store.begin().await?;
        tx.audit(
            state.clock.now(),
            &caller.actor(),
            "evidence.read_dispute",
            &[dispute.family_id.as_str(), id.as_str()],
            &json!({"sha256": file.sha256}),
        )
        .await?;
        tx.commit().await?;
    }
    Ok((file.content_type.clone(), bytes))
}

// ------------------------------------------------ after the account closed

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilingCodeInput {
    /// The number of a receipt of ours the guardian kept.
    pub receipt_number: String,
    /// Where the code goes; the complaint's answers go there too.
    pub email: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FilingCodeSent {
    /// Where a code went, if the receipt is ours (the answer is the same
    /// when it is not, so that receipt numbers cannot be probed).
    pub sent_to: String,
    pub valid_minutes: i64,
}

fn filing_code_hash(code_id: &str, code: &str, email: &str) -> String {
    crate::random::token_hash(&format!("dispute-filing:{code_id}:{code}|{}", email.to_ascii_lowercase()))
}

/// Sends a one-time code to `email` for filing a dispute on the family of
/// a kept receipt: the way in for a parent whose account is closed. The
/// same answer whether the receipt exists or not; a family gets at most
/// three codes per quarter hour.
pub async fn send_filing_code(state: &AppState, input: FilingCodeInput, locale: Locale) -> ApiResult<FilingCodeSent> {
    use crate::services::verification::{CODE_DIGITS, CODE_VALID_MINUTES, CODE_WINDOW_MINUTES, CODES_PER_WINDOW_MAX};
    let email = baobao_domain::EmailAddress::parse(input.email.trim())
        .map_err(|_| ApiError::invalid_field("email", "email"))?
        .as_str()
        .to_owned();
    let number = short_text("receipt_number", Some(&input.receipt_number), RECEIPT_NUMBER_CHARS_MAX)?
        .ok_or_else(|| ApiError::invalid_field("receipt_number", "required"))?;
    let answer = FilingCodeSent {
        sent_to: crate::services::verification::mask_email(&email),
        valid_minutes: CODE_VALID_MINUTES,
    };
    let Some(receipt) = state.store.receipt_by_number(&number).await? else {
        return Ok(answer);
    };
    let now = state.clock.wall_now();
    let window_start = now.checked_sub(jiff::SignedDuration::from_mins(CODE_WINDOW_MINUTES)).map_err(internal)?;
    let expires_at = now.checked_add(jiff::SignedDuration::from_mins(CODE_VALID_MINUTES)).map_err(internal)?;
    let code_id = baobao_domain::ids::VerificationCodeId::from_random(random_bytes());
    let value = u64::from_le_bytes(random_bytes()) % 10u64.pow(CODE_DIGITS);
    let code = format!("{value:0width$}", width = CODE_DIGITS as usize);
    let mut tx = state.store.begin().await?;
    if tx.codes_sent_since(&receipt.family_id, window_start).await? >= CODES_PER_WINDOW_MAX {
        return Err(ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "too_many_codes")
            .with("minutes", CODE_WINDOW_MINUTES));
    }
    tx.insert_verification_code(
        code_id.as_str(),
        &receipt.family_id,
        &filing_code_hash(code_id.as_str(), &code, &email),
        "receipt_holder",
        now,
        expires_at,
    )
    .await?;
    let payload = json!({"code": code, "valid_minutes": CODE_VALID_MINUTES});
    crate::services::outbox::email_address(
        &mut tx,
        state,
        &receipt.family_id,
        &email,
        locale,
        "dispute_code",
        code_id.as_str(),
        &payload,
    )
    .await?;
    tx.audit(
        state.clock.now(),
        "receipt_holder",
        "dispute.code_sent",
        &[receipt.family_id.as_str(), code_id.as_str()],
        &json!({"receipt_number": receipt.number}),
    )
    .await?;
    answer_with_change(&mut tx, StatusCode::ACCEPTED, &answer).await?;
    tx.commit().await?;
    Ok(answer)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptHolderDisputeInput {
    pub receipt_number: String,
    pub email: String,
    /// The code emailed to `email`.
    pub code: String,
    #[serde(flatten)]
    pub dispute: ReceiptHolderDispute,
}

/// What a receipt holder says: the kind, their words and files (the
/// receipt names the subscription).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReceiptHolderDispute {
    pub kind: String,
    pub description: String,
    #[serde(default)]
    pub tracking_number: Option<String>,
    #[serde(default)]
    pub evidence: Vec<EvidenceInput>,
}

/// Files a dispute as a kept receipt's holder, with the code sent to their
/// address: about the receipt's subscription (or its family), answered at
/// that address and by the dispute's own link.
pub async fn file_as_receipt_holder(
    state: &AppState,
    input: ReceiptHolderDisputeInput,
    locale: Locale,
) -> ApiResult<DisputeDetail> {
    use crate::services::verification::{CODE_ATTEMPTS_MAX, CODE_DIGITS};
    let email = baobao_domain::EmailAddress::parse(input.email.trim())
        .map_err(|_| ApiError::invalid_field("email", "email"))?
        .as_str()
        .to_owned();
    let code = input.code.trim();
    if code.len() != CODE_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_field("code", "digits").with("digits", CODE_DIGITS));
    }
    // What is said is checked before the code is spent: a refused complaint
    // leaves the code for the corrected one.
    parse_kind(&input.dispute.kind)?;
    long_text("description", &input.dispute.description, DESCRIPTION_CHARS_MAX)?;
    decode_all(&input.dispute.evidence)?;
    let number = input.receipt_number.trim();
    let receipt =
        state.store.receipt_by_number(number).await?.ok_or_else(|| ApiError::unprocessable("verification_failed"))?;
    let now = state.clock.wall_now();
    {
        let mut tx = state.store.begin().await?;
        let Some(latest) = tx.latest_verification_code(&receipt.family_id).await? else {
            return Err(ApiError::unprocessable("verification_expired"));
        };
        if latest.used_at.is_some() || latest.expires_at <= now || latest.attempts >= CODE_ATTEMPTS_MAX {
            return Err(ApiError::unprocessable("verification_expired"));
        }
        if filing_code_hash(&latest.id, code, &email) != latest.code_sha256 {
            tx.record_code_attempt(&latest.id).await?;
            tx.commit().await?;
            return Err(ApiError::unprocessable("verification_failed")
                .with("attempts_left", CODE_ATTEMPTS_MAX - latest.attempts - 1));
        }
        if !tx.spend_verification_code(&latest.id, now).await? {
            return Err(ApiError::unprocessable("verification_expired"));
        }
        tx.commit().await?;
    }
    let document: ReceiptDocument = serde_json::from_str(&receipt.document).map_err(internal)?;
    let subscription_id = document.signed_body().ok().and_then(|b| b.body.subscription_id().map(str::to_owned));
    let dispute = DisputeInput {
        kind: input.dispute.kind,
        family_id: None,
        subscription_id,
        ledger_entry_id: None,
        cancellation_id: None,
        receipt_number: Some(receipt.number.clone()),
        tracking_number: input.dispute.tracking_number,
        description: input.dispute.description,
        evidence: input.dispute.evidence,
        forwarded_by: None,
    };
    file(state, Filer::ReceiptHolder { email, locale }, Via::Portal, dispute, Some(receipt.family_id)).await
}

// ------------------------------------------------------------------ reports

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisputeReportRow {
    pub kind: String,
    /// `open` while it is.
    pub outcome: String,
    pub disputes: i64,
    pub settled_automatically: i64,
    pub deadlines_missed: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DisputeReport {
    /// `YYYY-MM`, in the support office's time zone.
    pub month: String,
    pub rows: Vec<DisputeReportRow>,
    pub disputes: i64,
    pub settled_automatically: i64,
    /// The share settled from the records, in per mille (0–1000).
    pub settled_automatically_per_mille: i64,
    pub deadlines_missed: i64,
    pub still_open: i64,
}

/// The month's disputes (by the day they were opened) counted by kind and
/// outcome, with the share settled from the records and the deadlines
/// missed: the figures a regulator asks for (compliance and admin).
pub async fn report(state: &AppState, caller: &Caller, month: Option<&str>) -> ApiResult<DisputeReport> {
    caller.require_staff(&[Role::Compliance, Role::Admin])?;
    let calendar = baobao_domain::Calendar::new(&state.config.staff_time_zone).map_err(internal)?;
    let first: jiff::civil::Date = match month {
        Some(text) => format!("{}-01", text.trim())
            .parse()
            .ok()
            .filter(|_| text.trim().len() == 7)
            .ok_or_else(|| ApiError::invalid_query("month", "year_month"))?,
        None => calendar.zoned(state.clock.now()).date().first_of_month(),
    };
    let next =
        first.checked_add(jiff::Span::new().months(1)).map_err(|_| ApiError::invalid_query("month", "year_month"))?;
    let from = calendar.start_of_date(first).map_err(|_| ApiError::invalid_query("month", "year_month"))?;
    let until = calendar.start_of_date(next).map_err(|_| ApiError::invalid_query("month", "year_month"))?;
    let counts = state.store.dispute_counts(from, until).await?;
    let rows: Vec<DisputeReportRow> = counts
        .iter()
        .map(|c| DisputeReportRow {
            kind: c.kind.as_str().to_owned(),
            outcome: c.outcome.map(|o| o.as_str()).unwrap_or("open").to_owned(),
            disputes: c.disputes,
            settled_automatically: c.settled_automatically,
            deadlines_missed: c.deadlines_missed,
        })
        .collect();
    let disputes: i64 = rows.iter().map(|r| r.disputes).sum();
    let settled: i64 = rows.iter().map(|r| r.settled_automatically).sum();
    Ok(DisputeReport {
        month: first.strftime("%Y-%m").to_string(),
        disputes,
        settled_automatically: settled,
        settled_automatically_per_mille: if disputes == 0 { 0 } else { settled * 1000 / disputes },
        deadlines_missed: rows.iter().map(|r| r.deadlines_missed).sum(),
        still_open: rows.iter().filter(|r| r.outcome == "open").map(|r| r.disputes).sum(),
        rows,
    })
}

/// The report as CSV: one line per (kind, outcome), then the totals.
pub fn report_csv(report: &DisputeReport) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["month", "kind", "outcome", "disputes", "settled_automatically", "deadlines_missed"])?;
    for row in &report.rows {
        writer.write_record([
            report.month.as_str(),
            &row.kind,
            &row.outcome,
            &row.disputes.to_string(),
            &row.settled_automatically.to_string(),
            &row.deadlines_missed.to_string(),
        ])?;
    }
    writer.write_record([
        report.month.as_str(),
        "all",
        "all",
        &report.disputes.to_string(),
        &report.settled_automatically.to_string(),
        &report.deadlines_missed.to_string(),
    ])?;
    let bytes = writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
