//! The integrators' hot path: is this family entitled to this service now?
//! One indexed read (the API key comes from a short-lived in-process cache);
//! the rule itself is `domain::subscription::entitlement`.

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
    let Some(subscription) = state.store.live_subscription_for(&family_id, service).await? else { return Ok(none) };
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
