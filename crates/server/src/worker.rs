//! The background worker: while the server runs, it delivers the outbox,
//! settles money movements that are due, signs the audit log's tree head
//! every minute, and forgets what has outlived its window. Beside it, the
//! audit log's appender gives committed entries their places in the log.

use std::time::Duration;

use jiff::SignedDuration;

use crate::services::{audit_log, delivery, money};
use crate::state::AppState;

/// How often the worker forgets saved responses past the replay window
/// and expired sign-in counts.
pub const PRUNE_INTERVAL_SECONDS: u64 = 60;

/// The worker: delivers due messages every couple of seconds while the server runs.
pub async fn run(state: AppState) {
    let mut last_prune: Option<std::time::Instant> = None;
    loop {
        if let Err(error) = delivery::deliver_due(&state, state.clock.wall_now()).await {
            tracing::error!(
                code = error.code,
                internal = error.internal.as_deref().unwrap_or(""),
                "outbox pass failed"
            );
        }
        // Refunds and fees due (a retry, or one whose request crashed before paying).
        if let Err(error) = money::settle_due(&state, state.clock.wall_now()).await {
            tracing::error!(code = error.code, internal = error.internal.as_deref().unwrap_or(""), "money pass failed");
        }
        if last_prune.is_none_or(|at| at.elapsed().as_secs() >= PRUNE_INTERVAL_SECONDS) {
            last_prune = Some(std::time::Instant::now());
            if let Err(error) = prune_request_records(&state).await {
                tracing::error!(%error, "pruning saved responses failed");
            }
            state.address_limits.forget_idle();
            // A signed tree head at least every minute while entries arrive.
            if let Err(error) = audit_log::produce_head(&state).await {
                tracing::error!(
                    code = error.code,
                    internal = error.internal.as_deref().unwrap_or(""),
                    "tree head failed"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(delivery::OUTBOX_POLL_MILLISECONDS)).await;
    }
}

/// How long the appender waits for a commit of this process before it
/// looks for entries other processes (servers, CLI runs) committed.
pub const APPEND_POLL_MILLISECONDS: u64 = 1000;
/// Once woken, how long the appender lets further commits gather, so that
/// under load one turn (one durable commit) appends many transactions'
/// entries rather than each its own. A reader who needs an entry at once
/// appends it itself.
pub const APPEND_GATHER_MILLISECONDS: u64 = 250;

/// The audit log's appender: woken by the commits that recorded entries,
/// and every second.
pub async fn append_log(state: AppState) {
    loop {
        let woken =
            tokio::time::timeout(Duration::from_millis(APPEND_POLL_MILLISECONDS), state.store.entries_recorded())
                .await
                .is_ok();
        if woken {
            tokio::time::sleep(Duration::from_millis(APPEND_GATHER_MILLISECONDS)).await;
        }
        if let Err(error) = state.store.append_pending().await {
            tracing::error!(%error, "appending to the audit log failed");
            tokio::time::sleep(Duration::from_millis(APPEND_POLL_MILLISECONDS)).await;
        }
    }
}

/// Saved responses are kept for the replay window only; failed sign-ins
/// for their window only.
pub async fn prune_request_records(state: &AppState) -> Result<u64, baobao_store::StoreError> {
    let now = state.clock.wall_now();
    let login_window_start =
        now.checked_sub(SignedDuration::from_secs(crate::auth::LOGIN_WINDOW_SECONDS)).unwrap_or(now);
    let processes_before = now.checked_sub(SignedDuration::from_hours(24)).unwrap_or(now);
    let processes = state.store.prune_processes(processes_before).await?;
    Ok(processes
        + state.store.prune_request_records(crate::idempotency::replay_window_start(now), login_window_start).await?)
}
