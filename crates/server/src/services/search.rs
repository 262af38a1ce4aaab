//! Support's search for a family: by family id, receipt id or number, or
//! part of a guardian's email or name; every family shown is an audited
//! staff access.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::services::{accounts, subscriptions};
use crate::state::AppState;
use crate::views::{GuardianView, SubscriptionView};

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FamilyMatch {
    pub id: String,
    pub time_zone: String,
    pub guardians: Vec<GuardianView>,
    pub subscriptions: Vec<SubscriptionView>,
}

/// Support's search: the family a guardian's email belongs to, with its
/// subscriptions. Exact match only (no browsing of families); audited.
/// A search shorter than this matches too many families to be a search.
pub const FAMILY_SEARCH_CHARS_MIN: usize = 3;
pub const FAMILY_SEARCH_CHARS_MAX: usize = 254;
/// Families one search shows at most.
pub const FAMILY_SEARCH_RESULTS_MAX: u32 = 20;

/// Support finds a family by family id, receipt id or number, or part of
/// a guardian's email or name; every family shown is an audited staff access.
pub async fn find_families(state: &AppState, caller: &Caller, query: &str) -> ApiResult<Vec<FamilyMatch>> {
    let query = query.trim();
    let chars = query.chars().count();
    if !(FAMILY_SEARCH_CHARS_MIN..=FAMILY_SEARCH_CHARS_MAX).contains(&chars) {
        return Err(ApiError::invalid_query("q", "chars_between")
            .with("min", FAMILY_SEARCH_CHARS_MIN)
            .with("max", FAMILY_SEARCH_CHARS_MAX));
    }
    let mut found = Vec::new();
    for family_id in state.store.search_families(query, FAMILY_SEARCH_RESULTS_MAX).await? {
        let family = accounts::family(state, caller, &family_id).await?;
        let found_subscriptions = subscriptions::family_subscriptions(state, caller, &family_id).await?;
        found.push(FamilyMatch {
            id: family.id,
            time_zone: family.time_zone,
            guardians: family.guardians,
            subscriptions: found_subscriptions,
        });
    }
    if !found.is_empty() {
        let ids: Vec<&str> = found.iter().map(|f| f.id.as_str()).collect();
        let mut tx = state.store.begin().await?;
        tx.audit(state.clock.now(), &caller.actor(), "staff.family_found", &ids, &json!({})).await?;
        tx.commit().await?;
    }
    Ok(found)
}
