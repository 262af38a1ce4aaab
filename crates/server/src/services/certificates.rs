//! What every deletion certificate says and how it is sent, whoever's data
//! it covers (a service, everything, or one child): the legal holds the
//! family's terms name and what they keep, and the closing step that emails
//! the certificate, marks the deletion done and audits it.

use baobao_domain::ids::{FamilyId, ReceiptId};
use baobao_domain::policy::{HoldCategory, LegalHold};
use baobao_domain::receipt::{Deleted, Kept};
use baobao_store::{Deletion, Guardian, Tx};
use jiff::Timestamp;
use serde_json::json;

use crate::error::ApiResult;
use crate::state::AppState;

/// The legal holds of every policy version the family ever accepted.
pub async fn holds_of(state: &AppState, family_id: &FamilyId) -> ApiResult<Vec<LegalHold>> {
    let mut holds = Vec::new();
    for subscription in state.store.subscriptions_of(family_id).await? {
        let version = state.store.policy(&subscription.plan_id, subscription.policy_version).await?;
        for hold in version.policy.legal_holds {
            if !holds.contains(&hold) {
                holds.push(hold);
            }
        }
    }
    Ok(holds)
}

/// One category a certificate lists as deleted: a kind of record, or the
/// named fields of a category, and how many.
pub fn deleted(category: &str, kind: Option<String>, fields: Option<&[&str]>, count: i64) -> Deleted {
    Deleted {
        category: category.to_owned(),
        kind,
        fields: fields.map(|f| f.iter().map(|s| (*s).to_owned()).collect()),
        count,
        kept: None,
    }
}

/// What the legal holds keep, for storage only, and until when.
pub fn kept(holds: &[LegalHold], ledger_entries: i64, receipts_kept: i64, now: Timestamp) -> Vec<Kept> {
    holds
        .iter()
        .map(|hold| Kept {
            category: hold.category,
            count: match hold.category {
                HoldCategory::Ledger | HoldCategory::Invoices => Some(ledger_entries),
                HoldCategory::Receipts => Some(receipts_kept),
                HoldCategory::ConsentRecords => None,
            },
            basis: hold.basis.clone(),
            until: now
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .checked_add(jiff::Span::new().years(i64::from(hold.retain_years)))
                .map(|z| z.timestamp())
                .ok(),
            allowed_use: "storage only".to_owned(),
        })
        .collect()
}

/// Sends the guardians their certificate, closes the deletion and audits it.
#[allow(clippy::too_many_arguments)] // the parts of one closing step, each read once by `perform`
pub async fn certify(
    tx: &mut Tx,
    state: &AppState,
    deletion: &Deletion,
    guardians: &[Guardian],
    receipt_id: &ReceiptId,
    email: &serde_json::Value,
    records: i64,
    now: Timestamp,
) -> ApiResult<()> {
    // The guardians were read before their addresses were minimised: the
    // certificate still reaches them, and the outbox forgets the address once sent.
    let event = receipt_id.as_str();
    crate::services::outbox::email_guardians(tx, state, guardians, "deletion_certificate", event, email).await?;
    tx.complete_deletion(&deletion.id, receipt_id, now).await?;
    tx.audit(
        now,
        "system",
        "deletion.performed",
        &[deletion.family_id.as_str(), deletion.id.as_str(), receipt_id.as_str()],
        &json!({"service": deletion.service, "cause": deletion.cause, "records": records}),
    )
    .await?;
    Ok(())
}
