//! The services: one module per subject. Each function checks who may call
//! it, asks the domain for the rules, and writes everything a change implies
//! — the record, the ledger, the signed receipt, the audit entry, the
//! outgoing messages — in one transaction. The API and the portal call the
//! same functions; neither has a rule of its own.
//!
//! From the ground up; a module imports only modules on lower lines:
//!
//! - `audit_log` the log's signed tree heads and proofs (the log itself is
//!   appended by the store, in every change's transaction);
//!   `outbox` queues emails and webhooks inside a change's transaction;
//!   `evidence` stores evidence files by SHA-256; `dispute_levels` a
//!   dispute's level, deadlines and escalation; `notices` holds written
//!   notices and their queue; `accounts` guardians, staff and a family as
//!   they see it; `children` children's encrypted records, consents and
//!   integrators' API keys; `webhooks` integrators' endpoints and the
//!   delivery of one event.
//! - `delivery` sends what the outbox holds, with retries; `money` moves
//!   refunds and fees at the gateway, outside any lock; `verification` the
//!   one-time codes of support's verification; `deletion` deletion requests,
//!   retention and certificates, and `child_deletion` one child's data
//!   (re-keying the family's data keys), both over `certificates` (what a
//!   deletion certificate keeps and how it is sent).
//! - `billing` the billing run (renewals, reminders, cancellations taking
//!   effect); `exports` a family's signed data export, and `export_index`
//!   the page in it a parent reads first.
//! - `subscriptions` subscribing and the subscriptions a caller may see;
//!   `plans` plans and their published policies; `entitlements` what a
//!   service may offer a family now.
//! - `cancellations` the quote, filing on every channel, resuming;
//!   `search` support finds a family; `receipts` a receipt or a family's,
//!   as their holders read them.
//! - `disputes` a guardian's complaint, answered from the records first
//!   (refunds by `billing`'s rule, paid by `money`), its levels and
//!   deadlines; `dispute_dossier` the ZIP a mediator can check.

pub mod accounts;
pub mod audit_log;
pub mod billing;
pub mod cancellations;
pub mod certificates;
pub mod child_deletion;
pub mod children;
pub mod deletion;
pub mod delivery;
pub mod dispute_dossier;
pub mod dispute_levels;
pub mod disputes;
pub mod entitlements;
pub mod evidence;
pub mod export_index;
pub mod exports;
pub mod money;
pub mod notices;
pub mod outbox;
pub mod plans;
pub mod receipts;
pub mod search;
pub mod subscriptions;
pub mod verification;
pub mod webhooks;
