//! Deleting one child's data: the child is removed from the family's
//! account, or the guardian withdraws consent for that child.
//!
//! The family's records share a data key per (family, service) with the
//! child's brothers and sisters, so destroying that key would take their
//! records too; leaving it would let a backup of the database read the
//! removed child's records again. So the keys are replaced (re-keying):
//! under the family's lock, a new key per service is written beside the old
//! one (`Vault::prepare_rekey`), every record that stays is sealed again
//! under it, the child's records are deleted, the new key is made current
//! (`swap_rekey`), the transaction commits, and only then is the old key
//! destroyed (`finish_rekey`). From then on no copy of the removed child's
//! records opens, backups included, and the others read as before.
//!
//! A crash between the steps leaves a key file beside the current one; the
//! reader tries every key of the service (`Vault::data_keys`), so nothing
//! becomes unreadable, and the billing run finishes the re-keying
//! (`finish_rekeys`): a deletion still pending runs again, and a key left
//! by one that committed is destroyed.

use baobao_domain::ids::ChildId;
use baobao_domain::receipt::{Deleted, DeletionCertificate, DeletionScope, ReceiptBody};
use baobao_store::{Deletion, Tx};
use serde_json::json;

use crate::error::{ApiResult, internal};
use crate::receipts;
use crate::services::certificates::{certify, deleted as deleted_item, holds_of, kept};
use crate::services::children::{binding_of, open_with};
use crate::state::{AppState, Parts};

/// Records sealed again per query while re-keying.
const RESEAL_PAGE: i64 = 500;

const ENCRYPTION_STATEMENT: &str = "XChaCha20-Poly1305 per (family, service) data key, replaced: the other children's \
     records were sealed again under new keys and the old keys destroyed, so no copy of this child's records, backups \
     included, can be read";

pub async fn perform(state: &AppState, deletion: &Deletion, child_id: &ChildId) -> ApiResult<()> {
    let family_id = &deletion.family_id;
    let holds = holds_of(state, family_id).await?;
    let (ledger_entries, receipts_kept) = state.store.kept_counts(family_id).await?;
    let guardians = state.store.guardians_of(family_id).await?;
    let services = state.vault.services_with_keys(family_id.as_str()).map_err(internal)?;
    // Every export holds this child's records: their keys go first.
    for export in state.store.exports_of(family_id).await? {
        state.vault.destroy_file_key(family_id.as_str(), export.id.as_str()).map_err(internal)?;
    }

    let mut tx = state.store.begin().await?;
    tx.lock_family(family_id, true).await?;
    let locked = tx.deletion_for_update(&deletion.id).await?;
    if locked.status != "pending" {
        return Ok(());
    }
    if tx.child_removed(child_id).await? {
        // Another request (a second click) removed the child first.
        tx.call_off_deletion(&deletion.id).await?;
        tx.commit().await?;
        return Ok(());
    }
    let now = state.clock.now();
    let changed = async {
        let mut resealed = 0;
        for service in &services {
            resealed += rekey(&mut tx, state, deletion, child_id, service).await?;
        }
        let counts = tx.delete_child_records(child_id).await?;
        let profile = tx.minimise_child(child_id).await?;
        let exports = tx.retire_exports_of(family_id).await?;
        let saved = tx.delete_saved_responses_of(family_id).await?;
        ApiResult::Ok((resealed, counts, profile, exports, saved))
    }
    .await;
    let (resealed, counts, profile, exports, saved) = match changed {
        Ok(changed) => changed,
        Err(error) => {
            undo(state, deletion, &services);
            return Err(error);
        }
    };
    let records: i64 = counts.iter().map(|(_, n)| n).sum();
    let mut deleted: Vec<Deleted> =
        counts.into_iter().map(|(kind, count)| deleted_item("child_records", Some(kind), None, count)).collect();
    deleted.push(Deleted {
        kept: Some("who consented and when".to_owned()),
        ..deleted_item("child_profiles", None, Some(&["name", "birth_date"]), i64::from(profile))
    });
    if !exports.is_empty() {
        deleted.push(deleted_item("exports", None, None, i64::try_from(exports.len()).unwrap_or(i64::MAX)));
    }
    if saved > 0 {
        deleted.push(deleted_item("saved_responses", None, None, i64::try_from(saved).unwrap_or(i64::MAX)));
    }
    let certificate = DeletionCertificate {
        deletion_id: deletion.id.to_string(),
        scope: DeletionScope { service: "*".to_owned(), child_id: Some(child_id.to_string()) },
        cause: deletion.cause.clone(),
        requested_at: deletion.requested_at,
        performed_at: now,
        key_destroyed_at: now,
        data_keys_destroyed: u64::try_from(services.len()).unwrap_or(u64::MAX),
        encryption: ENCRYPTION_STATEMENT.to_owned(),
        deleted,
        kept: kept(&holds, ledger_entries, receipts_kept, now),
        account_closed: false,
    };
    let closing = async {
        let time_zone = tx.family(family_id).await?.time_zone;
        let body = ReceiptBody::DeletionCertificate(certificate);
        let (stored, document) = receipts::issue(state, family_id, &time_zone, deletion.id.as_str(), now, body)?;
        tx.insert_receipt(&stored).await?;
        tx.mark_key_destroyed(&deletion.id, now).await?;
        let email = json!({"receipt": document, "time_zone": time_zone, "variant": "child"});
        certify(&mut tx, state, deletion, &guardians, &stored.id, &email, records, now).await?;
        tx.audit(
            now,
            "system",
            "data_keys.replaced",
            &[family_id.as_str(), deletion.id.as_str()],
            &json!({"services": services, "records_sealed_again": resealed}),
        )
        .await?;
        ApiResult::Ok(())
    }
    .await;
    // The new keys are current before the records under them are committed:
    // a commit that fails puts the old ones back.
    let swapped = closing.and_then(|()| swap(state, deletion, &services));
    if let Err(error) = swapped {
        undo(state, deletion, &services);
        return Err(error);
    }
    if let Err(error) = tx.commit().await {
        undo(state, deletion, &services);
        return Err(error.into());
    }
    finish(state, family_id, &services).await?;
    state.store.forget_deleted().await?;
    for export_id in &exports {
        crate::services::exports::destroy(state, family_id, export_id)?;
    }
    Ok(())
}

/// Writes the service's new key beside the current one and seals every
/// record of the family that stays (not the removed child's) under it.
/// Returns how many records were sealed again.
async fn rekey(tx: &mut Tx, parts: &Parts, deletion: &Deletion, child_id: &ChildId, service: &str) -> ApiResult<u64> {
    let family_id = &deletion.family_id;
    let old = parts.vault.data_keys(family_id.as_str(), service).map_err(internal)?;
    let new = parts.vault.prepare_rekey(family_id.as_str(), service).map_err(internal)?;
    let mut resealed = 0;
    let mut after = String::new();
    loop {
        let page = tx.records_to_reseal(family_id, service, child_id, &after, RESEAL_PAGE).await?;
        for record in &page {
            let plaintext = open_with(&old, record).map_err(internal)?;
            let sealed = new.seal(&plaintext, &binding_of(record)).map_err(internal)?;
            tx.reseal_record(&record.id, &sealed.nonce, &sealed.ciphertext).await?;
            resealed += 1;
        }
        match page.last() {
            Some(last) if i64::try_from(page.len()).unwrap_or(0) == RESEAL_PAGE => after = last.id.to_string(),
            _ => break,
        }
    }
    Ok(resealed)
}

/// Destroys the old keys, under the family's lock again: a re-keying of the
/// family that started after this one committed is never half-way then.
async fn finish(state: &AppState, family_id: &baobao_domain::ids::FamilyId, services: &[String]) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    tx.lock_family(family_id, true).await?;
    for service in services {
        state.vault.finish_rekey(family_id.as_str(), service).map_err(internal)?;
    }
    tx.commit().await?;
    Ok(())
}

fn swap(parts: &Parts, deletion: &Deletion, services: &[String]) -> ApiResult<()> {
    for service in services {
        parts.vault.swap_rekey(deletion.family_id.as_str(), service).map_err(internal)?;
    }
    Ok(())
}

/// The transaction did not commit: the old keys stay current, the new ones go.
fn undo(parts: &Parts, deletion: &Deletion, services: &[String]) {
    for service in services {
        if let Err(error) = parts.vault.undo_rekey(deletion.family_id.as_str(), service) {
            tracing::error!(%error, deletion_id = %deletion.id, "could not put a data key back");
        }
    }
}

/// Finishes re-keyings a crash interrupted: where no deletion of one child
/// of the family is pending any more, the transaction committed (or never
/// got as far as changing a record), and the keys left beside the current
/// one are destroyed. Returns how many were.
pub async fn finish_rekeys(state: &AppState) -> ApiResult<u64> {
    let mut finished = 0;
    for (family_id, service) in state.vault.leftover_rekeys().map_err(internal)? {
        let Ok(family) = baobao_domain::ids::FamilyId::parse(&family_id) else { continue };
        // Under the family's lock: no re-keying of it is half-way now.
        let mut tx = state.store.begin().await?;
        tx.lock_family(&family, true).await?;
        if tx.pending_child_deletions(&family).await? == 0
            && state.vault.finish_rekey(&family_id, &service).map_err(internal)?
        {
            finished += 1;
        }
        tx.commit().await?;
    }
    Ok(finished)
}
