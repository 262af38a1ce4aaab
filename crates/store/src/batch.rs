//! A batch transaction: many steps of one kind (a billing run's renewals)
//! in one transaction, with the statements of each step folded into a few
//! for the whole batch.
//!
//! What a step appends and nothing in the batch reads back — audit
//! entries, outbox messages, signed receipts, a subscription's new state —
//! is kept and written at commit, many rows per statement; what a step
//! reads that no step of the batch changes — plans, policy versions,
//! guardians, webhook endpoints — is read once. The transaction commits
//! all of it or none of it, as one that wrote each row in turn would. A
//! step that reads what it or another step wrote does not belong in a
//! batch.
//!
//! On SQLite every statement is a round trip to the connection's own
//! thread, and a commit a wait for a flush; a batch of a hundred renewals
//! makes a few dozen statements and one commit instead of thousands and a
//! hundred.

use std::collections::HashMap;

use baobao_domain::ids::FamilyId;

use crate::audit_log::PendingAudit;
use crate::sql::{ROWS_PER_STATEMENT, each_chunk, width};
use crate::{
    Guardian, OutboxMessage, Plan, PolicyVersion, StoreError, StoreResult, StoredReceipt, Subscription, Tx,
    WebhookEndpoint,
};

/// What a batch transaction keeps until its commit, and what it has read.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) audit: Vec<PendingAudit>,
    pub(crate) outbox: Vec<OutboxMessage>,
    pub(crate) receipts: Vec<StoredReceipt>,
    pub(crate) subscriptions: Vec<Subscription>,
    pub(crate) plans: HashMap<String, Plan>,
    pub(crate) policies: HashMap<(String, i64), PolicyVersion>,
    pub(crate) guardians: HashMap<String, Vec<Guardian>>,
    pub(crate) endpoints: HashMap<String, Vec<WebhookEndpoint>>,
}

impl crate::Store {
    /// A write transaction for a batch of steps (see the module): its
    /// appends are written at its commit, and plans, policy versions,
    /// guardians and webhook endpoints are read once in it.
    pub async fn begin_batch(&self) -> StoreResult<Tx> {
        let mut tx = self.begin().await?;
        tx.batch = Some(Box::default());
        Ok(tx)
    }
}

impl Tx {
    /// Reads the guardians of every family in `families` in one statement,
    /// for `guardians_of` to answer from in this batch.
    pub async fn read_guardians_of(&mut self, families: &[FamilyId]) -> StoreResult<()> {
        if self.batch.is_none() {
            return Ok(());
        }
        let mut wanted: Vec<&str> = families.iter().map(|f| f.as_str()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found: HashMap<String, Vec<Guardian>> = wanted.iter().map(|f| ((*f).to_owned(), Vec::new())).collect();
        for chunk in wanted.chunks(ROWS_PER_STATEMENT) {
            for guardian in crate::accounts::fetch_guardians_of_families(self.engine, &mut self.tx, chunk).await? {
                found.entry(guardian.family_id.as_str().to_owned()).or_default().push(guardian);
            }
        }
        if let Some(batch) = &mut self.batch {
            batch.guardians.extend(found);
        }
        Ok(())
    }

    /// Writes what the batch kept: receipts, then audit entries in the
    /// order they were made (so `seq` keeps it), outbox messages and the
    /// subscriptions' new state.
    pub(crate) async fn write_batch(&mut self) -> StoreResult<()> {
        let Some(batch) = self.batch.take() else { return Ok(()) };
        each_chunk(
            &mut self.tx,
            self.engine,
            &batch.receipts,
            width(crate::receipts::RECEIPT_COLUMNS),
            |values| format!("INSERT INTO receipts ({}) VALUES {values}", crate::receipts::RECEIPT_COLUMNS),
            crate::receipts::bind_receipt,
        )
        .await?;
        each_chunk(
            &mut self.tx,
            self.engine,
            &batch.audit,
            width(crate::audit_log::ENTRY_COLUMNS),
            |values| format!("INSERT INTO audit_entries ({}) VALUES {values}", crate::audit_log::ENTRY_COLUMNS),
            crate::audit_log::bind_entry,
        )
        .await?;
        each_chunk(
            &mut self.tx,
            self.engine,
            &batch.outbox,
            width(crate::outbox::OUTBOX_COLUMNS),
            |values| {
                format!(
                    "INSERT INTO outbox ({}) VALUES {values} ON CONFLICT (event_key) DO NOTHING",
                    crate::outbox::OUTBOX_COLUMNS
                )
            },
            crate::outbox::bind_message,
        )
        .await?;
        let updated = each_chunk(
            &mut self.tx,
            self.engine,
            &batch.subscriptions,
            width(crate::subscriptions::UPDATE_COLUMNS),
            crate::subscriptions::update_many_sql,
            crate::subscriptions::bind_update,
        )
        .await?;
        if updated != batch.subscriptions.len() as u64 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
