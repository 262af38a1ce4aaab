//! The integrators' hot path: is this family entitled to this service now?
//! Answered from memory: the family's running subscription is kept in
//! `key_cache::EntitlementCache` until a commit changes any subscription
//! (or for two seconds at most), the API key in a short-lived cache beside
//! it; the rule itself, `domain::subscription::entitlement`, is applied at
//! every check with the clock's time.

use baobao_domain::calendar::Calendar;
use baobao_domain::ids::FamilyId;
use baobao_domain::subscription::entitlement;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::services::billing::current_period;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct EntitlementView {
    pub entitled: bool,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<jiff::Timestamp>,
    /// The subscription's status, or `none` when the family has none running.
    pub status: String,
}

pub async fn check(state: &AppState, caller: &Caller, family_id: &str, service: &str) -> ApiResult<EntitlementView> {
    let own_service = caller.require_integrator()?;
    if own_service != service {
        return Err(ApiError::forbidden());
    }
    let none = EntitlementView { entitled: false, until: None, status: "none".to_owned() };
    let Ok(family_id) = FamilyId::parse(family_id) else { return Ok(none) };
    // The epoch before the read: a change committed meanwhile makes what is
    // read stale at once.
    let epoch = state.store.subscriptions_epoch();
    let subscription = match state.entitlements.get(&family_id, service, epoch) {
        Some(kept) => kept,
        None => {
            let read = state.store.live_subscription_for(&family_id, service).await?.map(std::sync::Arc::new);
            state.entitlements.put(family_id, service.to_owned(), epoch, read.clone());
            read
        }
    };
    let Some(subscription) = subscription else { return Ok(none) };
    let status = subscription.status;
    let calendar = Calendar::new(&subscription.time_zone).map_err(|e| ApiError::internal(e.to_string()))?;
    let answer = entitlement(
        status,
        current_period(&subscription),
        subscription.current_period_paid,
        subscription.effective_at,
        &calendar,
        state.clock.now(),
    );
    Ok(EntitlementView {
        entitled: answer.entitled,
        until: answer.until,
        status: subscription.status.as_str().to_owned(),
    })
}
