//! Deleting children's data, provably.
//!
//! A deletion destroys the (family, service) data key in the vault first —
//! from that instant no copy of the records, backups included, can be read
//! — then removes the records, minimises what is left of the family to what
//! the policies' legal holds require when nothing runs any more, and issues
//! a signed deletion certificate: what was deleted (categories, counts),
//! what was kept, under which hold and until when, and when the key was
//! destroyed. Every step is idempotent, so a deletion interrupted by a
//! crash is finished by the next billing run.
//!
//! Deletions come from a guardian's request (performed at once) or from
//! retention: when a family's last subscription of a service ends, one is
//! scheduled `retention_days` later; subscribing again calls it off.

use baobao_domain::calendar::Calendar;
use baobao_domain::ids::{DeletionId, FamilyId};
use baobao_domain::policy::{HoldCategory, Policy};
use baobao_store::{Deletion, Subscription, Tx};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::random::random_bytes;
use crate::receipts::{self, ReceiptDocument};
use crate::state::AppState;

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(error.to_string())
}

/// Deletions performed per billing run at most; the next run goes on.
pub const DELETIONS_PER_RUN_MAX: u64 = 100_000;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionInput {
    /// One service's data, or everything when absent.
    #[serde(default)]
    pub service: Option<String>,
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

/// A guardian's request: performed now; the answer carries the certificate.
pub async fn request(
    state: &AppState,
    caller: &Caller,
    family_id: &FamilyId,
    input: DeletionInput,
) -> ApiResult<DeletionView> {
    caller.require_family(family_id, &[], "family")?;
    caller.require_guardian()?;
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
            let deletion = Deletion {
                id: DeletionId::from_random(random_bytes()),
                family_id: family_id.clone(),
                service,
                cause: "guardian_request".to_owned(),
                status: "pending".to_owned(),
                requested_at: now,
                due_at: now,
                key_destroyed_at: None,
                certificate_id: None,
                completed_at: None,
            };
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

pub async fn get(state: &AppState, caller: &Caller, deletion_id: &str) -> ApiResult<DeletionView> {
    let deletion_id = DeletionId::parse(deletion_id).map_err(|_| ApiError::not_found("deletion"))?;
    let deletion = state.store.deletion(&deletion_id).await.or_not_found("deletion")?;
    caller.require_family(&deletion.family_id, &[crate::auth::Role::Compliance], "deletion")?;
    view(state, &deletion).await
}

/// The legal holds of every policy version the family ever accepted.
async fn holds_of(state: &AppState, family_id: &FamilyId) -> ApiResult<Vec<baobao_domain::policy::LegalHold>> {
    let mut holds = Vec::new();
    for subscription in state.store.subscriptions_of(family_id).await? {
        let version = state.store.policy(&subscription.plan_id, subscription.policy_version).await?;
        let policy: Policy = serde_json::from_str(&version.terms).map_err(internal)?;
        for hold in policy.legal_holds {
            if !holds.contains(&hold) {
                holds.push(hold);
            }
        }
    }
    Ok(holds)
}

/// Carries out a deletion; a no-op when it is already done.
pub async fn perform(state: &AppState, deletion_id: &DeletionId) -> ApiResult<()> {
    let deletion = state.store.deletion(deletion_id).await?;
    if deletion.status != "pending" {
        return Ok(());
    }
    let now = state.clock.now();
    // 1. The key first: from here on nothing of this data can be read.
    let keys_destroyed = state.vault.destroy(deletion.family_id.as_str(), &deletion.service).map_err(internal)?;
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
    let key_destroyed_at = locked.key_destroyed_at.unwrap_or(now);
    let records = tx.delete_records(&deletion.family_id, &deletion.service).await?;
    // Saved answers to the family's requests (Idempotency-Key) may show its
    // names, birth dates or records: they go too, whatever the scope.
    let saved_responses = tx.delete_saved_responses_of(&deletion.family_id).await?;
    let account_closed = deletion.service == "*" && tx.live_subscriptions_of(&deletion.family_id, "*").await? == 0;
    let mut evidence = Vec::new();
    let mut deleted: Vec<serde_json::Value> = records
        .iter()
        .map(|(kind, count)| json!({"category": "child_records", "kind": kind, "count": count}))
        .collect();
    if saved_responses > 0 {
        deleted.push(json!({"category": "saved_responses", "count": saved_responses}));
    }
    if account_closed {
        let mut minimised = 0;
        for guardian in &guardians {
            minimised += i64::from(tx.minimise_guardian(&guardian.id).await?);
        }
        deleted.push(
            json!({"category": "guardian_personal_data", "fields": ["name", "email", "password"], "count": minimised}),
        );
        let children = tx.minimise_children(&deletion.family_id).await?;
        deleted.push(json!({"category": "child_profiles", "fields": ["name", "birth_date"], "count": children}));
        let reasons = tx.minimise_cancellation_reasons(&deletion.family_id).await?;
        if reasons > 0 {
            deleted.push(json!({"category": "cancellation_reasons", "fields": ["text"], "count": reasons}));
        }
        evidence = tx.minimise_written_notices(&deletion.family_id).await?;
        if !evidence.is_empty() {
            deleted.push(json!({
                "category": "written_notices",
                "fields": ["sender", "tracking_number", "evidence_file"],
                "count": evidence.len(),
                "kept": "each file's SHA-256, proof of what was received",
            }));
        }
    }
    let kept: Vec<serde_json::Value> = holds
        .iter()
        .map(|hold| {
            let count = match hold.category {
                HoldCategory::Ledger | HoldCategory::Invoices => Some(ledger_entries),
                HoldCategory::Receipts => Some(receipts_kept),
                HoldCategory::ConsentRecords => None,
            };
            let until = now
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .checked_add(jiff::Span::new().years(i64::from(hold.retain_years)))
                .map(|z| z.timestamp().to_string())
                .unwrap_or_default();
            json!({"category": hold.category, "count": count, "basis": hold.basis, "until": until, "use": "storage only"})
        })
        .collect();
    let (stored, document) = receipts::issue(
        &state.keys,
        &deletion.family_id,
        "deletion_certificate",
        deletion.id.as_str(),
        now,
        json!({
            "deletion_id": deletion.id,
            "scope": {"service": deletion.service},
            "cause": deletion.cause,
            "requested_at": deletion.requested_at.to_string(),
            "performed_at": now.to_string(),
            "key_destroyed_at": key_destroyed_at.to_string(),
            "data_keys_destroyed": keys_destroyed,
            "encryption": "XChaCha20-Poly1305 per (family, service) data key, destroyed: every copy, backups included, is unreadable",
            "deleted": deleted,
            "kept": kept,
            "account_closed": account_closed,
        }),
    )?;
    tx.insert_receipt(&stored).await?;
    // The guardians were read before their addresses were minimised: the
    // certificate still reaches them, and the outbox forgets the address once sent.
    let time_zone = tx.family(&deletion.family_id).await?.time_zone;
    // A deletion the terms called for (retention) was not "asked for".
    let variant = if deletion.cause == "retention" { "retention" } else { "on_request" };
    let email = json!({"receipt": document, "time_zone": time_zone, "variant": variant});
    crate::services::outbox::email_guardians(
        &mut tx,
        state,
        &guardians,
        "deletion_certificate",
        stored.id.as_str(),
        &email,
    )
    .await?;
    tx.complete_deletion(&deletion.id, &stored.id, now).await?;
    tx.audit(
        now,
        "system",
        "deletion.performed",
        &[deletion.family_id.as_str(), deletion.id.as_str(), stored.id.as_str()],
        &json!({"service": deletion.service, "cause": deletion.cause, "records": records.iter().map(|(_, n)| n).sum::<i64>()}),
    )
    .await?;
    tx.commit().await?;
    state.store.forget_deleted().await?;
    // The rows no longer name the files: remove them (a file another
    // family's notice still names stays).
    crate::services::evidence::remove_unused_evidence(state, &evidence).await?;
    Ok(())
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
        .schedule_deletion(&Deletion {
            id: DeletionId::from_random(random_bytes()),
            family_id: subscription.family_id.clone(),
            service: service.clone(),
            cause: "retention".to_owned(),
            status: "pending".to_owned(),
            requested_at: ended_at,
            due_at,
            key_destroyed_at: None,
            certificate_id: None,
            completed_at: None,
        })
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
