//! Deleting children's data, provably.
//!
//! A deletion destroys the (family, service) data key in the vault first —
//! from that instant no copy of the records, backups included, can be read
//! — then removes the records, minimises what is left of the family to what
//! the policies' legal holds require when nothing runs any more, and issues
//! a signed deletion certificate: what was deleted (categories, counts),
//! what was kept, under which hold and until when, and when the key was
//! destroyed. Every export of the family goes in the same step (each holds
//! every service's records). Every step is idempotent, so a deletion interrupted by a
//! crash is finished by the next billing run.
//!
//! Deletions come from a guardian's request (performed at once) or from
//! retention: when a family's last subscription of a service ends, one is
//! scheduled `retention_days` later; subscribing again calls it off.

use baobao_domain::calendar::Calendar;
use baobao_domain::ids::{ChildId, DeletionId, ExportId, FamilyId};
use baobao_domain::receipt::{Deleted, DeletionCertificate, DeletionScope, ReceiptBody};
use baobao_store::{Deletion, Guardian, Subscription, Tx};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::random::random_bytes;
use crate::receipts::{self, ReceiptDocument};
use crate::services::certificates::{certify, deleted as deleted_item, holds_of, kept};
use crate::state::AppState;

/// Deletions performed per billing run at most; the next run goes on.
pub const DELETIONS_PER_RUN_MAX: u64 = 100_000;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionInput {
    /// One service's data, or everything when absent.
    #[serde(default)]
    pub service: Option<String>,
    /// One child's data, every service (the child is removed from the
    /// family's account: consent withdrawn). Not together with `service`.
    #[serde(default)]
    pub child_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionView {
    pub id: String,
    /// `pending` or `done`.
    pub status: String,
    pub service: String,
    pub cause: String,
    #[schema(value_type = String, format = DateTime)]
    pub due_at: Timestamp,
    pub certificate_id: Option<String>,
    /// The signed certificate, once done (also at `/v1/deletion-certificates/{id}`).
    pub certificate: Option<ReceiptDocument>,
}

async fn view(state: &AppState, deletion: &Deletion) -> ApiResult<DeletionView> {
    let certificate = match &deletion.certificate_id {
        Some(id) => Some(serde_json::from_str(&state.store.receipt(id).await?.document).map_err(internal)?),
        None => None,
    };
    Ok(DeletionView {
        id: deletion.id.to_string(),
        status: deletion.status.clone(),
        service: deletion.service.clone(),
        cause: deletion.cause.clone(),
        due_at: deletion.due_at,
        certificate_id: deletion.certificate_id.as_ref().map(|c| c.to_string()),
        certificate,
    })
}

/// A deletion waiting to be performed at `due_at`.
fn pending(
    family_id: &FamilyId,
    service: String,
    child_id: Option<ChildId>,
    cause: &str,
    requested_at: Timestamp,
    due_at: Timestamp,
) -> Deletion {
    Deletion {
        id: DeletionId::from_random(random_bytes()),
        family_id: family_id.clone(),
        service,
        child_id,
        cause: cause.to_owned(),
        status: "pending".to_owned(),
        requested_at,
        due_at,
        key_destroyed_at: None,
        certificate_id: None,
        completed_at: None,
    }
}

/// A guardian's request: performed now; the answer carries the certificate.
pub async fn request(
    state: &AppState,
    caller: &Caller,
    family_id: &FamilyId,
    input: DeletionInput,
) -> ApiResult<DeletionView> {
    caller.require_family(family_id, &[], "family")?;
    caller.require_guardian()?;
    if let Some(child_id) = input.child_id {
        if input.service.is_some() {
            return Err(ApiError::invalid_field("child_id", "not_with_service"));
        }
        return request_for_child(state, caller, family_id, &child_id).await;
    }
    let service = match input.service {
        Some(service) => {
            let service = crate::fields::parse_service(&service)?;
            // A certificate for data of a service that never existed would certify nothing.
            if !state.store.plans().await?.iter().any(|plan| plan.service == service) {
                return Err(ApiError::invalid_field("service", "unknown_service").with("service", service));
            }
            service
        }
        None => "*".to_owned(),
    };
    let now = state.clock.now();
    let deletion = match state.store.pending_deletion(family_id, &service).await? {
        // A retention deletion already scheduled for this data is brought forward.
        Some(pending) => pending,
        None => {
            let deletion = pending(family_id, service, None, "guardian_request", now, now);
            let mut tx = state.store.begin().await?;
            tx.schedule_deletion(&deletion).await?;
            tx.audit(
                now,
                &caller.actor(),
                "deletion.requested",
                &[family_id.as_str(), deletion.id.as_str()],
                &json!({"service": deletion.service}),
            )
            .await?;
            tx.commit().await?;
            deletion
        }
    };
    perform(state, &deletion.id).await?;
    view(state, &state.store.deletion(&deletion.id).await?).await
}

/// A guardian removes one child: that child's records go, in every
/// service, with a certificate of their own (see `child_deletion`).
async fn request_for_child(
    state: &AppState,
    caller: &Caller,
    family_id: &FamilyId,
    child_id: &str,
) -> ApiResult<DeletionView> {
    let child_id = ChildId::parse(child_id).map_err(|_| ApiError::not_found("child"))?;
    let child = state
        .store
        .children_of(family_id)
        .await?
        .into_iter()
        .find(|c| c.id == child_id)
        .ok_or_else(|| ApiError::not_found("child"))?;
    if child.name.is_empty() {
        // Removed already: its certificate is among the family's receipts.
        return Err(ApiError::conflict("child_removed"));
    }
    let now = state.clock.now();
    let deletion = pending(family_id, "*".to_owned(), Some(child.id.clone()), "consent_withdrawn", now, now);
    let mut tx = state.store.begin().await?;
    let scheduled = tx.schedule_deletion(&deletion).await?;
    if scheduled {
        tx.audit(
            now,
            &caller.actor(),
            "deletion.requested",
            &[family_id.as_str(), deletion.id.as_str(), child.id.as_str()],
            &json!({"child_id": child.id}),
        )
        .await?;
    }
    tx.commit().await?;
    // A second click waits for, and answers with, the deletion in flight.
    let deletion = match scheduled {
        true => deletion,
        false => state.store.pending_child_deletion(&child.id).await?.unwrap_or(deletion),
    };
    perform(state, &deletion.id).await?;
    let done = state.store.deletion(&deletion.id).await.or_not_found("deletion")?;
    if done.status == "called_off" {
        return Err(ApiError::conflict("child_removed"));
    }
    view(state, &done).await
}

pub async fn get(state: &AppState, caller: &Caller, deletion_id: &str) -> ApiResult<DeletionView> {
    let deletion_id = DeletionId::parse(deletion_id).map_err(|_| ApiError::not_found("deletion"))?;
    let deletion = state.store.deletion(&deletion_id).await.or_not_found("deletion")?;
    caller.require_family(&deletion.family_id, &[crate::auth::Role::Compliance], "deletion")?;
    view(state, &deletion).await
}

/// Carries out a deletion; a no-op when it is already done.
pub async fn perform(state: &AppState, deletion_id: &DeletionId) -> ApiResult<()> {
    let deletion = state.store.deletion(deletion_id).await?;
    if deletion.status != "pending" {
        return Ok(());
    }
    if let Some(child_id) = deletion.child_id.clone() {
        return crate::services::child_deletion::perform(state, &deletion, &child_id).await;
    }
    let now = state.clock.now();
    // 1. The keys first: from here on nothing of this data can be read,
    // nor any export of the family (each holds every service's records).
    let keys_destroyed = state.vault.destroy(deletion.family_id.as_str(), &deletion.service).map_err(internal)?;
    for export in state.store.exports_of(&deletion.family_id).await? {
        state.vault.destroy_file_key(deletion.family_id.as_str(), export.id.as_str()).map_err(internal)?;
    }
    let mut tx = state.store.begin().await?;
    tx.mark_key_destroyed(&deletion.id, now).await?;
    tx.commit().await?;

    // 2. Everything else, with the certificate, in one transaction.
    let holds = holds_of(state, &deletion.family_id).await?;
    let (ledger_entries, receipts_kept) = state.store.kept_counts(&deletion.family_id).await?;
    let guardians = state.store.guardians_of(&deletion.family_id).await?;
    let mut tx = state.store.begin().await?;
    let locked = tx.deletion_for_update(&deletion.id).await?;
    if locked.status != "pending" {
        return Ok(());
    }
    let removed = remove(&mut tx, &deletion, &guardians, now).await?;
    let certificate = DeletionCertificate {
        deletion_id: deletion.id.to_string(),
        scope: DeletionScope { service: deletion.service.clone(), child_id: None },
        cause: deletion.cause.clone(),
        requested_at: deletion.requested_at,
        performed_at: now,
        key_destroyed_at: locked.key_destroyed_at.unwrap_or(now),
        data_keys_destroyed: u64::from(keys_destroyed),
        encryption: ENCRYPTION_STATEMENT.to_owned(),
        deleted: removed.deleted,
        kept: kept(&holds, ledger_entries, receipts_kept, now),
        account_closed: removed.account_closed,
    };
    let time_zone = tx.family(&deletion.family_id).await?.time_zone;
    let (stored, document) = receipts::issue(
        state,
        &deletion.family_id,
        &time_zone,
        deletion.id.as_str(),
        now,
        ReceiptBody::DeletionCertificate(certificate),
    )?;
    tx.insert_receipt(&stored).await?;
    // A deletion the terms called for (retention) was not "asked for";
    // one on request has the plain wording (no variant).
    let variant = (deletion.cause == "retention").then_some("retention");
    let email = json!({"receipt": document, "time_zone": time_zone, "variant": variant});
    certify(&mut tx, state, &deletion, &guardians, &stored.id, &email, removed.records, now).await?;
    tx.commit().await?;
    state.store.forget_deleted().await?;
    // The rows no longer offer or name the files: remove them.
    for export_id in &removed.exports {
        crate::services::exports::destroy(state, &deletion.family_id, export_id)?;
    }
    if removed.account_closed {
        crate::services::evidence::remove_family_evidence(state, &deletion.family_id, &removed.evidence).await?;
    }
    Ok(())
}

const ENCRYPTION_STATEMENT: &str =
    "XChaCha20-Poly1305 per (family, service) data key, destroyed: every copy, backups included, is unreadable";

/// What a deletion removed from the database.
struct Removed {
    deleted: Vec<Deleted>,
    /// Children's records deleted, all kinds.
    records: i64,
    account_closed: bool,
    /// The SHA-256 of evidence files no row names any more.
    evidence: Vec<String>,
    /// Exports of the family, retired: their files go after the commit.
    exports: Vec<ExportId>,
}

/// Deletes the scope's records and the family's saved responses; when
/// nothing of the family runs any more, minimises the guardians, children,
/// reasons and written notices to what the legal holds need.
async fn remove(tx: &mut Tx, deletion: &Deletion, guardians: &[Guardian], now: Timestamp) -> ApiResult<Removed> {
    let family_id = &deletion.family_id;
    let records = tx.delete_records(family_id, &deletion.service).await?;
    let total = records.iter().map(|(_, n)| n).sum::<i64>();
    let mut deleted: Vec<Deleted> =
        records.into_iter().map(|(kind, count)| deleted_item("child_records", Some(kind), None, count)).collect();
    // Saved answers to the family's requests (Idempotency-Key) may show its
    // names, birth dates or records: they go too, whatever the scope.
    let exports = tx.retire_exports_of(family_id).await?;
    if !exports.is_empty() {
        deleted.push(deleted_item("exports", None, None, i64::try_from(exports.len()).unwrap_or(i64::MAX)));
    }
    let saved_responses = tx.delete_saved_responses_of(family_id).await?;
    if saved_responses > 0 {
        deleted.push(deleted_item("saved_responses", None, None, i64::try_from(saved_responses).unwrap_or(i64::MAX)));
    }
    let account_closed = deletion.service == "*" && tx.live_subscriptions_of(family_id, "*").await? == 0;
    let mut evidence = Vec::new();
    if account_closed {
        let mut minimised = 0;
        for guardian in guardians {
            minimised += i64::from(tx.minimise_guardian(&guardian.id).await?);
        }
        deleted.push(deleted_item("guardian_personal_data", None, Some(&["name", "email", "password"]), minimised));
        let children = tx.minimise_children(family_id).await?;
        deleted.push(deleted_item("child_profiles", None, Some(&["name", "birth_date"]), children));
        let reasons = tx.minimise_cancellation_reasons(family_id).await?;
        if reasons > 0 {
            deleted.push(deleted_item("cancellation_reasons", None, Some(&["text"]), reasons));
        }
        evidence = tx.minimise_written_notices(family_id).await?;
        if !evidence.is_empty() {
            let fields = Some(&["sender", "tracking_number", "evidence_file"][..]);
            let count = i64::try_from(evidence.len()).unwrap_or(i64::MAX);
            deleted.push(Deleted {
                kept: Some("each file's SHA-256, proof of what was received".to_owned()),
                ..deleted_item("written_notices", None, fields, count)
            });
        }
        let (disputes, messages, dispute_files) = tx.minimise_disputes(family_id, now).await?;
        if disputes > 0 {
            let fields = Some(&["description", "contact_email", "tracking_number", "messages", "evidence_files"][..]);
            deleted.push(Deleted {
                kept: Some(
                    "each dispute's kind, dates, outcome and evidence files' SHA-256 (the receipts keep the rest)"
                        .to_owned(),
                ),
                ..deleted_item("disputes", None, fields, disputes)
            });
            if messages > 0 {
                deleted.push(deleted_item("dispute_messages", None, Some(&["text"]), messages));
            }
        }
        evidence.extend(dispute_files);
    }
    Ok(Removed { deleted, records: total, account_closed, evidence, exports })
}

/// When a subscription ends and the family has no other running one of the
/// same service, its data is scheduled for deletion `retention_days` later.
pub async fn schedule_retention(
    tx: &mut Tx,
    subscription: &Subscription,
    retention_days: u32,
    ended_at: Timestamp,
) -> ApiResult<()> {
    let service = tx.plan(&subscription.plan_id).await?.service;
    if tx.live_subscriptions_of(&subscription.family_id, &service).await? > 0 {
        return Ok(());
    }
    let calendar = Calendar::new(&subscription.time_zone).map_err(internal)?;
    let due_at = calendar.add_days(ended_at, retention_days).map_err(internal)?;
    let scheduled = tx
        .schedule_deletion(&pending(&subscription.family_id, service.clone(), None, "retention", ended_at, due_at))
        .await?;
    if scheduled {
        tx.audit(
            ended_at,
            "system",
            "deletion.scheduled",
            &[subscription.family_id.as_str(), subscription.id.as_str()],
            &json!({"service": service, "due_at": due_at.to_string()}),
        )
        .await?;
    }
    Ok(())
}

/// Performs every deletion due at `at`; returns how many.
pub async fn run_due(state: &AppState, at: Timestamp) -> ApiResult<u64> {
    let mut performed = 0;
    loop {
        let mut tx = state.store.begin().await?;
        let Some(due) = tx.claim_due_deletion(at).await? else { break };
        tx.rollback().await?;
        perform(state, &due.id).await?;
        performed += 1;
        if performed >= DELETIONS_PER_RUN_MAX {
            break;
        }
    }
    Ok(performed)
}
