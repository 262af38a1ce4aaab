//! Plans and their published policies (terms, versioned and hashed).

use axum::http::StatusCode;
use baobao_domain::Locale;
use baobao_domain::ids::PlanId;
use baobao_domain::policy::{Policy, PolicyDraft};
use baobao_store::{Plan, PolicyVersion};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::fields::parse_name;
use crate::idempotency::answer_with_change;
use crate::random::new_id;
use crate::services::billing::Terms;
use crate::state::AppState;
use crate::views::PlanView;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanNamesInput {
    #[serde(rename = "zh-CN")]
    pub zh_cn: String,
    pub en: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    pub service: String,
    pub name: PlanNamesInput,
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    #[schema(value_type = Object)]
    pub policy: serde_json::Value,
}

fn parse_policy(value: serde_json::Value, locale: Locale) -> ApiResult<Policy> {
    let draft: PolicyDraft = serde_json::from_value(value).map_err(|e| {
        ApiError::unprocessable("invalid_policy")
            .with("field", "policy")
            .with("reason", "policy_shape")
            .with("parser", e.to_string())
    })?;
    draft.validate().map_err(|e| {
        ApiError::unprocessable("invalid_policy").with("field", e.field).with("reason", e.message(locale).to_owned())
    })
}

fn policy_version(plan_id: &PlanId, version: i64, policy: &Policy, at: Timestamp) -> ApiResult<PolicyVersion> {
    Ok(PolicyVersion {
        plan_id: plan_id.clone(),
        version,
        sha256: policy.sha256(),
        policy: policy.clone(),
        created_at: at,
    })
}

pub async fn create_plan(state: &AppState, caller: &Caller, input: PlanInput, locale: Locale) -> ApiResult<PlanView> {
    caller.require_staff(&[Role::Admin])?;
    let service = crate::fields::parse_service(&input.service)?;
    let name_zh_cn = parse_name("name.zh-CN", &input.name.zh_cn)?;
    let name_en = parse_name("name.en", &input.name.en)?;
    let policy = parse_policy(input.policy, locale)?;
    let now = state.clock.now();
    let plan = Plan { id: new_id(), service, name_zh_cn, name_en, current_version: 1, created_at: now };
    let version = policy_version(&plan.id, 1, &policy, now)?;
    let mut tx = state.store.begin().await?;
    tx.insert_plan(&plan, &version).await?;
    tx.audit(now, &caller.actor(), "plan.created", &[plan.id.as_str()], &json!({"policy_sha256": version.sha256}))
        .await?;
    let answer = PlanView::new(&plan, &version, &policy, locale);
    answer_with_change(&mut tx, StatusCode::CREATED, &answer).await?;
    tx.commit().await?;
    Ok(answer)
}

pub async fn publish_policy(
    state: &AppState,
    caller: &Caller,
    plan_id: &PlanId,
    input: PolicyInput,
    locale: Locale,
) -> ApiResult<PlanView> {
    caller.require_staff(&[Role::Admin])?;
    let plan = state.store.plan(plan_id).await.or_not_found("plan")?;
    let policy = parse_policy(input.policy, locale)?;
    let current = Terms::policy_of(state, &plan).await?;
    if current.1 == policy {
        // Publishing the same terms again would only confuse guardians.
        return Ok(PlanView::new(&plan, &current.0, &current.1, locale));
    }
    if policy.price.currency != current.1.price.currency {
        return Err(ApiError::unprocessable("invalid_policy").with("field", "price").with("reason", "currency_fixed"));
    }
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let version = tx.publish_policy(plan_id, &policy, now).await?;
    tx.audit(
        now,
        &caller.actor(),
        "policy.published",
        &[plan_id.as_str()],
        &json!({"version": version.version, "sha256": version.sha256}),
    )
    .await?;
    let plan = Plan { current_version: version.version, ..plan };
    let answer = PlanView::new(&plan, &version, &policy, locale);
    answer_with_change(&mut tx, StatusCode::CREATED, &answer).await?;
    tx.commit().await?;
    Ok(answer)
}

impl Terms {
    /// A plan's current policy version and its terms.
    pub async fn policy_of(state: &AppState, plan: &Plan) -> ApiResult<(PolicyVersion, Policy)> {
        let version = state.store.policy(&plan.id, plan.current_version).await?;
        let policy = version.policy.clone();
        Ok((version, policy))
    }
}

pub async fn plans(state: &AppState, locale: Locale) -> ApiResult<Vec<PlanView>> {
    let mut views = Vec::new();
    for plan in state.store.plans().await? {
        let (version, policy) = Terms::policy_of(state, &plan).await?;
        views.push(PlanView::new(&plan, &version, &policy, locale));
    }
    Ok(views)
}

pub async fn plan(state: &AppState, plan_id: &PlanId, locale: Locale) -> ApiResult<PlanView> {
    let plan = state.store.plan(plan_id).await.or_not_found("plan")?;
    let (version, policy) = Terms::policy_of(state, &plan).await?;
    Ok(PlanView::new(&plan, &version, &policy, locale))
}
