//! Accounts: guardians signing up and in, staff accounts, and a family as
//! a guardian or staff sees it.

use axum::http::StatusCode;
use baobao_domain::Locale;
use baobao_domain::calendar::Calendar;
use baobao_domain::ids::{FamilyId, StaffId};
use baobao_store::{Family, Guardian, PrincipalKind, Staff, StoreError};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth;
use crate::auth::{Caller, Role, STAFF_READERS};
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::fields::{parse_email, parse_name, parse_phone};
use crate::idempotency::withheld_answer_with_change;
use crate::random::new_id;
use crate::state::AppState;
use crate::views::{FamilyView, GuardianView, SessionView, SignUpView};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardianInput {
    pub email: String,
    pub password: String,
    pub name: String,
    /// Optional: lets support find the family when the parent calls.
    #[serde(default)]
    pub phone: Option<String>,
    pub locale: String,
    pub time_zone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpInput {
    pub guardian: GuardianInput,
}

pub async fn sign_up(state: &AppState, input: SignUpInput) -> ApiResult<SignUpView> {
    let g = input.guardian;
    let email = parse_email(&g.email)?;
    auth::check_password_strength(&g.password)?;
    let name = parse_name("name", &g.name)?;
    let phone = match g.phone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(phone) => Some(parse_phone("phone", phone)?.into_string()),
    };
    let locale = Locale::parse(&g.locale)
        .ok_or_else(|| ApiError::invalid_field("locale", "one_of").with("allowed", "zh-CN, en"))?;
    let calendar = Calendar::new(&g.time_zone).map_err(|_| ApiError::invalid_field("time_zone", "time_zone"))?;
    let now = state.clock.now();
    let family = Family { id: new_id(), time_zone: calendar.zone_name().to_owned(), created_at: now };
    let guardian = Guardian {
        id: new_id(),
        family_id: family.id.clone(),
        email,
        password_hash: auth::hash_password(&g.password).await?,
        name,
        phone,
        locale,
        time_zone: calendar.zone_name().to_owned(),
        created_at: now,
    };
    let token = crate::random::random_token(32);
    let expires_at = session_expiry(state.clock.wall_now())?;
    let mut tx = state.store.begin().await?;
    tx.insert_family(&family).await?;
    // The email is the only unique field a new guardian can collide on.
    tx.insert_guardian(&guardian).await.map_err(|e| match e {
        StoreError::Conflict { .. } => ApiError::conflict("email_taken"),
        other => other.into(),
    })?;
    tx.insert_session(
        &crate::random::token_hash(&token),
        PrincipalKind::Guardian,
        guardian.id.as_str(),
        state.clock.wall_now(),
        expires_at,
    )
    .await?;
    tx.audit(
        now,
        &format!("guardian:{}", guardian.id),
        "family.created",
        &[family.id.as_str(), guardian.id.as_str()],
        &json!({}),
    )
    .await?;
    // The answer holds the session token: a retry is told "done", never given it.
    withheld_answer_with_change(&mut tx, StatusCode::CREATED).await?;
    tx.commit().await?;
    let guardian_view = guardian_view(&guardian);
    Ok(SignUpView {
        family: FamilyView {
            id: family.id.to_string(),
            time_zone: family.time_zone,
            guardians: vec![guardian_view.clone()],
        },
        guardian: guardian_view,
        token,
        expires_at,
    })
}

fn guardian_view(g: &Guardian) -> GuardianView {
    GuardianView {
        id: g.id.to_string(),
        email: g.email.clone(),
        name: g.name.clone(),
        phone: g.phone.clone(),
        locale: g.locale.tag().to_owned(),
        time_zone: g.time_zone.clone(),
    }
}

fn session_expiry(now: Timestamp) -> ApiResult<Timestamp> {
    now.checked_add(SignedDuration::from_hours(auth::SESSION_HOURS)).map_err(internal)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInInput {
    pub email: String,
    pub password: String,
    /// `guardian` (default) or `staff`.
    #[serde(default)]
    pub realm: Option<String>,
}

pub async fn sign_in(state: &AppState, input: SignInInput) -> ApiResult<SessionView> {
    let invalid = || ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_credentials");
    let email = input.email.trim().to_lowercase();
    let limit = auth::LoginLimit::new(
        &state.store,
        input.realm.as_deref().unwrap_or("guardian"),
        &email,
        state.clock.wall_now(),
    );
    let had_failures = limit.check().await?;
    let account = match input.realm.as_deref().unwrap_or("guardian") {
        "guardian" => state
            .store
            .guardian_by_email(&email)
            .await
            .map(|g| (PrincipalKind::Guardian, g.id.to_string(), g.password_hash)),
        "staff" => {
            state.store.staff_by_email(&email).await.map(|s| (PrincipalKind::Staff, s.id.to_string(), s.password_hash))
        }
        _ => return Err(ApiError::invalid_field("realm", "one_of").with("allowed", "guardian, staff")),
    };
    let (kind, principal_id, password_hash) = match account {
        Ok(account) => account,
        Err(StoreError::NotFound) => {
            auth::verify_against_nothing(&input.password).await?;
            limit.failed().await?;
            return Err(invalid());
        }
        Err(other) => return Err(other.into()),
    };
    if !auth::verify_password(&input.password, &password_hash).await? {
        limit.failed().await?;
        return Err(invalid());
    }
    if had_failures {
        limit.succeeded().await?;
    }
    let now = state.clock.wall_now();
    let token = crate::random::random_token(32);
    let expires_at = session_expiry(now)?;
    let mut tx = state.store.begin().await?;
    tx.insert_session(&crate::random::token_hash(&token), kind, &principal_id, now, expires_at).await?;
    withheld_answer_with_change(&mut tx, StatusCode::CREATED).await?;
    tx.commit().await?;
    Ok(SessionView { token, expires_at })
}

/// Creates a staff account (the CLI's `staff create` as `operator`, or an
/// admin through the API).
pub async fn create_staff(
    state: &AppState,
    actor: &str,
    email: &str,
    password: &str,
    role: &str,
) -> ApiResult<StaffId> {
    let email = parse_email(email)?;
    auth::check_password_strength(password)?;
    let role = Role::parse(role).ok_or_else(|| {
        ApiError::invalid_field("role", "one_of").with("allowed", "agent, supervisor, finance, compliance, admin")
    })?;
    let now = state.clock.now();
    let staff =
        Staff { id: new_id(), email, password_hash: auth::hash_password(password).await?, role, created_at: now };
    let mut tx = state.store.begin().await?;
    tx.insert_staff(&staff).await.map_err(|e| match e {
        StoreError::Conflict { .. } => ApiError::conflict("email_taken"),
        other => other.into(),
    })?;
    tx.audit(now, actor, "staff.created", &[staff.id.as_str()], &json!({"role": role.as_str()})).await?;
    tx.commit().await?;
    Ok(staff.id)
}

pub async fn family(state: &AppState, caller: &Caller, family_id: &FamilyId) -> ApiResult<FamilyView> {
    caller.require_family(family_id, STAFF_READERS, "family")?;
    let family = state.store.family(family_id).await.or_not_found("family")?;
    let guardians = state.store.guardians_of(family_id).await?;
    Ok(FamilyView {
        id: family.id.to_string(),
        time_zone: family.time_zone,
        guardians: guardians.iter().map(guardian_view).collect(),
    })
}

/// A guardian's language for pages and email, as they chose it.
pub async fn set_locale(state: &AppState, caller: &Caller, locale: Locale) -> ApiResult<()> {
    let Caller::Guardian { guardian_id, .. } = caller else { return Err(ApiError::forbidden()) };
    let mut tx = state.store.begin().await?;
    tx.set_guardian_locale(guardian_id, locale.tag()).await?;
    tx.commit().await?;
    Ok(())
}
