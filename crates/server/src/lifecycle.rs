//! The subscription lifecycle as services: sign-up, sign-in, plans,
//! subscribing, quoting, cancelling and resuming. Each function checks who
//! may call it, asks the domain for the rules, and writes everything a
//! change implies — the record, the ledger, the signed receipt, the audit
//! entry — in one transaction.

use baobao_domain::calendar::Calendar;
use baobao_domain::ids::{CancellationId, FamilyId, LedgerEntryId, PlanId, QuoteId, StaffId, SubscriptionId};
use baobao_domain::policy::{Policy, PolicyDraft};
use baobao_domain::quote::{self, CancelOption, Quote, QuoteInput};
use baobao_domain::subscription::{Period, Schedule, SubscriptionStatus, running_status};
use baobao_domain::{Locale, Money};
use baobao_store::{
    Cancellation, Child, Family, Guardian, LedgerEntry, Plan, PolicyVersion, PrincipalKind, Staff, StoreError,
    StoredQuote, Subscription,
};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{self, Caller, Role};
use crate::billing::{self, Terms, charge_key, current_period, refresh_due_at};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::random::random_bytes;
use crate::receipts;
use crate::state::AppState;
use crate::views::{
    CancellationView, CancellationWithReceipt, ChildView, ConsentView, FamilyView, GuardianView,
    PendingCancellationView, PeriodView, PlanView, QuoteView, SessionView, SignUpView, SubscriptionView,
    SubscriptionWithReceipt,
};

pub const EMAIL_CHARS_MAX: usize = 254;
pub const NAME_CHARS_MAX: usize = 100;
pub const REASON_TEXT_CHARS_MAX: usize = 1000;
pub const REASON_CATEGORIES: [&str; 6] =
    ["child_outgrew", "cost", "service_quality", "privacy_safety", "switching", "other"];

/// Staff roles that may look at a family's subscriptions and cancellations.
pub const STAFF_READERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Finance, Role::Compliance, Role::Admin];
/// Staff roles that may see quotes (agents quote on the phone).
pub const STAFF_QUOTERS: &[Role] = &Role::ALL;
/// Staff roles that file cancellations on a guardian's behalf.
pub const STAFF_FILERS: &[Role] = &[Role::Agent, Role::Supervisor];

fn new_id<K: baobao_domain::ids::IdKind>() -> baobao_domain::Id<K> {
    baobao_domain::Id::from_random(random_bytes())
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(error.to_string())
}

// ---------------------------------------------------------------- accounts

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardianInput {
    pub email: String,
    pub password: String,
    pub name: String,
    pub locale: String,
    pub time_zone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpInput {
    pub guardian: GuardianInput,
}

pub fn parse_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    let well_formed = email.chars().count() <= EMAIL_CHARS_MAX
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if well_formed { Ok(email) } else { Err(ApiError::invalid_field("email", "email")) }
}

fn parse_name(field: &str, name: &str) -> ApiResult<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > NAME_CHARS_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(field, "chars_between").with("min", 1).with("max", NAME_CHARS_MAX));
    }
    Ok(name.to_owned())
}

pub async fn sign_up(state: &AppState, input: SignUpInput) -> ApiResult<SignUpView> {
    let g = input.guardian;
    let email = parse_email(&g.email)?;
    auth::check_password_strength(&g.password)?;
    let name = parse_name("name", &g.name)?;
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
        locale: locale.tag().to_owned(),
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
        locale: g.locale.clone(),
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
    let staff = Staff {
        id: new_id(),
        email,
        password_hash: auth::hash_password(password).await?,
        role: role.as_str().to_owned(),
        created_at: now,
    };
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChildInput {
    pub name: String,
    /// `YYYY-MM-DD`
    pub birth_date: String,
    /// The guardian's consent to processing the child's data; must be `true`.
    pub consent: bool,
}

pub async fn add_child(
    state: &AppState,
    caller: &Caller,
    family_id: &FamilyId,
    input: ChildInput,
) -> ApiResult<ChildView> {
    caller.require_family(family_id, &[], "family")?;
    let (guardian_id, _) = caller.require_guardian()?;
    let name = parse_name("name", &input.name)?;
    let now = state.clock.now();
    let birth_date: jiff::civil::Date =
        input.birth_date.parse().map_err(|_| ApiError::invalid_field("birth_date", "date"))?;
    let today = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    if birth_date > today || birth_date.year() < today.year() - 25 {
        return Err(ApiError::invalid_field("birth_date", "birth_date_range"));
    }
    if !input.consent {
        return Err(ApiError::invalid_field("consent", "consent_required"));
    }
    let child = Child {
        id: new_id::<baobao_domain::ids::Child>(),
        family_id: family_id.clone(),
        name,
        birth_date: birth_date.to_string(),
        consent_by: guardian_id.clone(),
        consent_at: now,
        created_at: now,
    };
    let mut tx = state.store.begin().await?;
    tx.insert_child(&child).await?;
    tx.audit(now, &caller.actor(), "child.added", &[family_id.as_str(), child.id.as_str()], &json!({"consent": true}))
        .await?;
    tx.commit().await?;
    Ok(child_view(&child))
}

pub fn child_view(child: &Child) -> ChildView {
    ChildView {
        id: child.id.to_string(),
        family_id: child.family_id.to_string(),
        name: child.name.clone(),
        birth_date: child.birth_date.clone(),
        consent: ConsentView { given_by: child.consent_by.to_string(), given_at: child.consent_at },
    }
}

// ---------------------------------------------------------------- plans

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
        terms: serde_json::to_string(policy).map_err(internal)?,
        created_at: at,
    })
}

pub async fn create_plan(state: &AppState, caller: &Caller, input: PlanInput, locale: Locale) -> ApiResult<PlanView> {
    caller.require_staff(&[Role::Admin])?;
    let service = crate::children::parse_service(&input.service)?;
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
    tx.commit().await?;
    Ok(PlanView::new(&plan, &version, &policy, locale))
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
    let version =
        tx.publish_policy(plan_id, &policy.sha256(), &serde_json::to_string(&policy).map_err(internal)?, now).await?;
    tx.audit(
        now,
        &caller.actor(),
        "policy.published",
        &[plan_id.as_str()],
        &json!({"version": version.version, "sha256": version.sha256}),
    )
    .await?;
    tx.commit().await?;
    let plan = Plan { current_version: version.version, ..plan };
    Ok(PlanView::new(&plan, &version, &policy, locale))
}

impl Terms {
    /// A plan's current policy version and its terms.
    pub async fn policy_of(state: &AppState, plan: &Plan) -> ApiResult<(PolicyVersion, Policy)> {
        let version = state.store.policy(&plan.id, plan.current_version).await?;
        let policy = serde_json::from_str(&version.terms).map_err(internal)?;
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

// ---------------------------------------------------------------- subscriptions

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeInput {
    pub plan_id: String,
    pub accept_policy_sha256: String,
}

pub async fn subscribe(state: &AppState, caller: &Caller, input: SubscribeInput) -> ApiResult<SubscriptionWithReceipt> {
    let (guardian_id, family_id) = caller.require_guardian()?;
    let plan_id = PlanId::parse(&input.plan_id).map_err(|_| ApiError::not_found("plan"))?;
    let plan = state.store.plan(&plan_id).await.or_not_found("plan")?;
    let (version, policy) = Terms::policy_of(state, &plan).await?;
    if input.accept_policy_sha256.trim().to_ascii_lowercase() != version.sha256 {
        return Err(ApiError::conflict("policy_hash_mismatch").with("current", version.sha256.clone()));
    }
    let existing = state.store.subscriptions_of(family_id).await?;
    let live = |s: &Subscription| SubscriptionStatus::parse(&s.status).is_some_and(|st| st.is_live());
    if existing.iter().any(|s| s.plan_id == plan_id && live(s)) {
        return Err(ApiError::conflict("already_subscribed"));
    }
    let family = state.store.family(family_id).await?;
    let calendar = Calendar::new(&family.time_zone).map_err(internal)?;
    let now = state.clock.now();
    let schedule = Schedule::for_sign_up(&policy, calendar, now).map_err(internal)?;
    let first = schedule.period(schedule.first_position()).map_err(internal)?;
    let mut subscription = Subscription {
        id: new_id(),
        family_id: family_id.clone(),
        plan_id: plan_id.clone(),
        policy_version: version.version,
        policy_sha256: version.sha256.clone(),
        status: running_status(first.position, true).as_str().to_owned(),
        time_zone: family.time_zone.clone(),
        signed_up_at: now,
        anchor_at: schedule.anchor,
        current_position: first.position,
        current_period_start: first.start,
        current_period_end: first.end,
        current_period_paid: true,
        last_charge_attempt_at: None,
        pending_cancellation_id: None,
        effective_at: None,
        ended_at: None,
        due_at: None,
        created_at: now,
        reminded_period_start: None,
    };
    let terms = Terms { policy, schedule };
    refresh_due_at(&mut subscription, &terms);

    // The first charge happens before anything is written: a declined
    // payment leaves no subscription behind.
    let mut first_charge = None;
    if !first.is_trial() && !terms.policy.price.is_zero() {
        let key = charge_key(&subscription, first.start);
        let reference = state
            .gateway
            .charge(&key, terms.policy.price)
            .await
            .map_err(|_| ApiError::new(axum::http::StatusCode::PAYMENT_REQUIRED, "payment_failed"))?;
        subscription.last_charge_attempt_at = Some(now);
        first_charge = Some(LedgerEntry {
            id: new_id::<baobao_domain::ids::LedgerEntry>(),
            family_id: family_id.clone(),
            subscription_id: subscription.id.clone(),
            kind: "charge".to_owned(),
            amount_minor: terms.policy.price.amount_minor,
            currency: terms.policy.price.currency,
            period_start: Some(first.start),
            period_end: Some(first.end),
            entry_key: key,
            gateway_reference: Some(reference),
            note: "first period".to_owned(),
            created_at: now,
        });
    }
    let (stored_receipt, receipt) = receipts::issue(
        &state.keys,
        family_id,
        "subscription",
        subscription.id.as_str(),
        now,
        json!({
            "subscription_id": subscription.id,
            "plan_id": plan.id,
            "plan_name": {"zh-CN": plan.name_zh_cn, "en": plan.name_en},
            "channel": "self_service",
            "accepted_by": guardian_id,
            "signed_up_at": now.to_string(),
            "policy_version": version.version,
            "policy_sha256": version.sha256,
            "price": terms.policy.price,
            "period": terms.policy.period,
            "current_period": {"start": first.start.to_string(), "end": first.end.to_string(), "is_trial": first.is_trial()},
            "first_charge": first_charge.as_ref().map(|c| Money { amount_minor: c.amount_minor, currency: c.currency }),
        }),
    )?;
    let guardians = state.store.guardians_of(family_id).await?;
    let email = json!({"receipt": receipt, "plan": {"zh-CN": plan.name_zh_cn, "en": plan.name_en}, "time_zone": family.time_zone});
    let hook = json!({
        "subscription_id": subscription.id,
        "family_id": family_id,
        "plan_id": plan.id,
        "status": subscription.status,
        "period_start": first.start.to_string(),
        "period_end": first.end.to_string(),
    });
    let audit = json!({"plan_id": plan.id, "policy_version": version.version, "policy_sha256": version.sha256});
    let written = NewSubscription {
        subscription: &subscription,
        service: &plan.service,
        first_charge: first_charge.as_ref(),
        receipt: &stored_receipt,
        guardians: &guardians,
        email: &email,
        hook: &hook,
        audit: &audit,
    }
    .write(state, &caller.actor(), now)
    .await;
    if let Err(error) = written {
        return Err(void_first_charge(state, error, first_charge.as_ref()).await);
    }
    // A trial shorter than the reminder's lead time is reminded now, at
    // sign-up; any other subscription has nothing due yet and costs no write.
    if subscription.due_at.is_some_and(|due| due <= now) {
        billing::settle(state, &subscription.id, now).await?;
    }
    Ok(SubscriptionWithReceipt { subscription: subscription_view(&subscription, &terms), receipt })
}

/// Everything a sign-up writes, in one transaction.
struct NewSubscription<'a> {
    subscription: &'a Subscription,
    service: &'a str,
    first_charge: Option<&'a LedgerEntry>,
    receipt: &'a baobao_store::StoredReceipt,
    guardians: &'a [Guardian],
    email: &'a serde_json::Value,
    hook: &'a serde_json::Value,
    audit: &'a serde_json::Value,
}

impl NewSubscription<'_> {
    async fn write(&self, state: &AppState, actor: &str, now: Timestamp) -> Result<(), ApiError> {
        let subscription = self.subscription;
        let mut tx = state.store.begin().await?;
        tx.insert_subscription(subscription).await.map_err(|error| match error {
            // The one-live-subscription-per-plan index: a double-click, two tabs.
            StoreError::Conflict { .. } => ApiError::conflict("already_subscribed"),
            other => other.into(),
        })?;
        let receipt_id = self.receipt.id.as_str();
        crate::outbox::email_guardians(
            &mut tx,
            state,
            self.guardians,
            "subscription_confirmed",
            receipt_id,
            self.email,
        )
        .await?;
        crate::outbox::webhook(
            &mut tx,
            state,
            self.service,
            "subscription.created",
            subscription.id.as_str(),
            self.hook,
        )
        .await?;
        // Subscribing again keeps the child's data: a retention deletion is called off.
        tx.cancel_retention_deletion(&subscription.family_id, self.service).await?;
        if let Some(charge) = self.first_charge {
            tx.append_ledger_entry(charge).await?;
        }
        tx.insert_receipt(self.receipt).await?;
        let subjects = [subscription.family_id.as_str(), subscription.id.as_str(), receipt_id];
        tx.audit(now, actor, "subscription.created", &subjects, self.audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Nothing of a sign-up was written (a second one won the race, the
/// database was busy): the first charge this request took is given back
/// at once, so the family never pays for a subscription it does not have.
async fn void_first_charge(state: &AppState, error: ApiError, first_charge: Option<&LedgerEntry>) -> ApiError {
    if let Some(charge) = first_charge {
        let amount = Money { amount_minor: charge.amount_minor, currency: charge.currency };
        if let Err(refused) = state.gateway.refund(&format!("void:{}", charge.entry_key), amount).await {
            tracing::error!(entry_key = %charge.entry_key, %refused, "could not void the first charge of an unwritten subscription");
        }
    }
    error
}

pub fn subscription_view(s: &Subscription, terms: &Terms) -> SubscriptionView {
    let status = SubscriptionStatus::parse(&s.status).unwrap_or(SubscriptionStatus::Expired);
    let renews = status.is_live()
        && s.pending_cancellation_id.is_none()
        && (terms.policy.auto_renew || s.current_position + 1 < i64::from(terms.policy.commitment_periods));
    let notice_deadline = if renews && s.current_position >= 0 {
        baobao_domain::subscription::notice_deadline(
            &terms.schedule.calendar,
            &current_period(s),
            terms.policy.notice_days,
        )
        .ok()
    } else if renews {
        Some(s.current_period_end)
    } else {
        None
    };
    SubscriptionView {
        id: s.id.to_string(),
        family_id: s.family_id.to_string(),
        plan_id: s.plan_id.to_string(),
        policy_version: s.policy_version,
        policy_sha256: s.policy_sha256.clone(),
        status: s.status.clone(),
        price: terms.policy.price.into(),
        auto_renew: terms.policy.auto_renew,
        signed_up_at: s.signed_up_at,
        current_period: PeriodView {
            start: s.current_period_start,
            end: s.current_period_end,
            is_trial: s.current_position < 0,
            paid: s.current_period_paid,
        },
        next_renewal_at: renews.then_some(s.current_period_end),
        notice_deadline,
        pending_cancellation: match (&s.pending_cancellation_id, s.effective_at) {
            (Some(id), Some(effective_at)) => {
                Some(PendingCancellationView { cancellation_id: id.to_string(), effective_at })
            }
            _ => None,
        },
        ended_at: s.ended_at,
    }
}

/// Loads a subscription the caller may see, brought up to date first.
pub async fn visible_subscription(
    state: &AppState,
    caller: &Caller,
    subscription_id: &str,
    staff_roles: &[Role],
) -> ApiResult<(Subscription, Terms)> {
    let subscription_id = SubscriptionId::parse(subscription_id).map_err(|_| ApiError::not_found("subscription"))?;
    let subscription = state.store.subscription(&subscription_id).await.or_not_found("subscription")?;
    caller.require_family(&subscription.family_id, staff_roles, "subscription")?;
    if subscription.due_at.is_some_and(|due| due <= state.clock.now()) {
        billing::settle(state, &subscription_id, state.clock.now()).await?;
    }
    let subscription = state.store.subscription(&subscription_id).await?;
    let terms = Terms::load(state, &subscription).await?;
    Ok((subscription, terms))
}

pub async fn get_subscription(state: &AppState, caller: &Caller, subscription_id: &str) -> ApiResult<SubscriptionView> {
    let (subscription, terms) = visible_subscription(state, caller, subscription_id, STAFF_READERS).await?;
    Ok(subscription_view(&subscription, &terms))
}

pub async fn family_subscriptions(
    state: &AppState,
    caller: &Caller,
    family_id: &FamilyId,
) -> ApiResult<Vec<SubscriptionView>> {
    caller.require_family(family_id, STAFF_READERS, "family")?;
    let mut views = Vec::new();
    for subscription in state.store.subscriptions_of(family_id).await? {
        let (subscription, terms) =
            visible_subscription(state, caller, subscription.id.as_str(), STAFF_READERS).await?;
        views.push(subscription_view(&subscription, &terms));
    }
    Ok(views)
}

fn ensure_cancellable(s: &Subscription) -> ApiResult<()> {
    let status = SubscriptionStatus::parse(&s.status).unwrap_or(SubscriptionStatus::Expired);
    if status == SubscriptionStatus::PendingCancellation {
        let effective_at = s.effective_at.map(|t| t.to_string()).unwrap_or_default();
        return Err(ApiError::conflict("cancellation_pending").with("effective_at", effective_at));
    }
    if !status.can_cancel() {
        return Err(ApiError::conflict("not_cancellable").with("status", s.status.clone()));
    }
    Ok(())
}

/// The period a subscription was in at `t` — the current one, or an earlier
/// one when a written notice arrived before the last renewal.
fn period_at(s: &Subscription, terms: &Terms, t: Timestamp) -> ApiResult<Period> {
    if t < s.signed_up_at {
        return Err(ApiError::unprocessable("received_at_out_of_range"));
    }
    let mut period = current_period(s);
    while t < period.start && period.position > terms.schedule.first_position() {
        period = terms.schedule.period(period.position - 1).map_err(internal)?;
    }
    Ok(period)
}

/// A quote as it would have been given at `received_at`: the period then,
/// and the money paid by then, from the ledger.
async fn compute_quote(state: &AppState, s: &Subscription, terms: &Terms, received_at: Timestamp) -> ApiResult<Quote> {
    let period = period_at(s, terms, received_at)?;
    let currency = terms.policy.price.currency;
    let mut paid_total = 0i64;
    let mut paid_for_period = 0i64;
    for entry in state.store.ledger_of_subscription(&s.id).await? {
        if entry.created_at > received_at {
            continue;
        }
        match entry.kind.as_str() {
            "charge" => {
                paid_total += entry.amount_minor;
                if entry.period_start == Some(period.start) {
                    paid_for_period += entry.amount_minor;
                }
            }
            "fee" => paid_total += entry.amount_minor,
            "refund" | "credit" => paid_total -= entry.amount_minor,
            _ => {}
        }
    }
    quote::quote(&QuoteInput {
        policy: &terms.policy,
        schedule: &terms.schedule,
        current: period,
        paid_for_current: Money { amount_minor: paid_for_period, currency },
        paid_total: Money { amount_minor: paid_total.max(0), currency },
        received_at,
    })
    .map_err(|_| ApiError::unprocessable("received_at_out_of_range"))
}

/// The earliest `received_at` staff may register: written notices older
/// than the configured bound are refused.
pub fn earliest_received_at(state: &AppState) -> ApiResult<Timestamp> {
    let days = i64::from(state.config.written_notice_age_days_max);
    state.clock.now().checked_sub(SignedDuration::from_hours(24 * days)).map_err(internal)
}

pub async fn cancellation_quote(
    state: &AppState,
    caller: &Caller,
    subscription_id: &str,
    received_at: Option<Timestamp>,
    locale: Locale,
) -> ApiResult<QuoteView> {
    let (subscription, terms) = visible_subscription(state, caller, subscription_id, STAFF_QUOTERS).await?;
    ensure_cancellable(&subscription)?;
    let now = state.clock.now();
    let received_at = match received_at {
        Some(_) if !caller.is_staff() => {
            return Err(ApiError::invalid_query("received_at", "staff_only"));
        }
        Some(t) if t > now || t < earliest_received_at(state)? => {
            return Err(ApiError::unprocessable("received_at_out_of_range"));
        }
        Some(t) => t,
        None => now,
    };
    let quote = compute_quote(state, &subscription, &terms, received_at).await?;
    let stored = StoredQuote {
        id: new_id(),
        subscription_id: subscription.id.clone(),
        received_at,
        valid_until: quote.valid_until,
        body: serde_json::to_string(&quote).map_err(internal)?,
        created_at: now,
    };
    let mut tx = state.store.begin().await?;
    tx.insert_quote(&stored).await?;
    tx.commit().await?;
    let price = terms.policy.price;
    Ok(QuoteView::new(stored.id.as_str(), subscription.id.as_str(), &quote, price, locale, &terms.schedule.calendar))
}

// ---------------------------------------------------------------- cancellations

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonInput {
    pub category: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    /// `now`, `end_of_period` or `end_of_commitment`.
    pub option: String,
    #[serde(default)]
    pub quote_id: Option<String>,
    #[serde(default)]
    pub reason: Option<ReasonInput>,
    /// Support channel: the one-time code the guardian read out to the agent.
    #[serde(default)]
    pub verification_code: Option<String>,
    /// Support channel, supervisors only: why the guardian was not verified
    /// with a code (written down and audited).
    #[serde(default)]
    pub verification_override_reason: Option<String>,
}

pub fn parse_reason(reason: Option<ReasonInput>) -> ApiResult<(Option<String>, Option<String>)> {
    let Some(reason) = reason else {
        return Ok((None, None));
    };
    if !REASON_CATEGORIES.contains(&reason.category.as_str()) {
        return Err(ApiError::invalid_field("reason.category", "one_of").with("allowed", REASON_CATEGORIES.join(", ")));
    }
    let text = reason.text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if text.as_ref().is_some_and(|t| t.chars().count() > REASON_TEXT_CHARS_MAX) {
        return Err(ApiError::invalid_field("reason.text", "chars_max").with("max", REASON_TEXT_CHARS_MAX));
    }
    Ok((Some(reason.category), text))
}

pub fn parse_option(option: &str) -> ApiResult<CancelOption> {
    CancelOption::parse(option).ok_or_else(|| {
        ApiError::invalid_field("option", "one_of").with("allowed", "now, end_of_period, end_of_commitment")
    })
}

/// Cancel through the API or the portal: a guardian for themselves
/// (self-service), or an agent or supervisor on a guardian's behalf
/// (support, after verification).
pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    subscription_id: &str,
    input: CancelInput,
) -> ApiResult<CancellationWithReceipt> {
    let option = parse_option(&input.option)?;
    let reason = parse_reason(input.reason)?;
    let (subscription, terms) = visible_subscription(state, caller, subscription_id, STAFF_FILERS).await?;
    let channel = match caller {
        Caller::Guardian { .. } => {
            if input.verification_code.is_some() || input.verification_override_reason.is_some() {
                return Err(ApiError::invalid_field("verification_code", "staff_only"));
            }
            Channel::SelfService
        }
        _ => Channel::Support(
            crate::support::verify_guardian(
                state,
                caller,
                &subscription.family_id,
                input.verification_code.as_deref(),
                input.verification_override_reason.as_deref(),
            )
            .await?,
        ),
    };
    let request = Request { channel, received_at: state.clock.now(), option, quote_id: input.quote_id, reason };
    let filed = file(state, caller, subscription, &terms, request).await?;
    Ok(CancellationWithReceipt { cancellation: CancellationView::from(&filed.cancellation), receipt: filed.receipt })
}

/// How a cancellation request reached baobao; all lead to the same request,
/// the same quote rules and the same receipt.
pub enum Channel {
    SelfService,
    Support(crate::support::Verified),
    WrittenNotice(Box<crate::support::NoticeDraft>),
}

impl Channel {
    fn as_str(&self) -> &'static str {
        match self {
            Channel::SelfService => "self_service",
            Channel::Support(_) => "support",
            Channel::WrittenNotice(_) => "written_notice",
        }
    }
}

pub struct Request {
    pub channel: Channel,
    /// When the guardian asked: now, or the day a letter arrived.
    pub received_at: Timestamp,
    pub option: CancelOption,
    pub quote_id: Option<String>,
    pub reason: (Option<String>, Option<String>),
}

pub struct Filed {
    pub cancellation: Cancellation,
    pub receipt: receipts::ReceiptDocument,
    /// Renewal charges refunded because the request came before their period.
    pub late_refunds: Vec<LedgerEntry>,
}

/// Files a cancellation request on any channel, in one transaction: the
/// request, its quote's money (when it takes effect at once, or took effect
/// already — a letter that arrived before the renewal), the refund of any
/// charge for a period after `effective_at`, the signed receipt, the
/// guardian's confirmation, the integrators' webhook and the audit entry.
pub async fn file(
    state: &AppState,
    caller: &Caller,
    subscription: Subscription,
    terms: &Terms,
    request: Request,
) -> ApiResult<Filed> {
    ensure_cancellable(&subscription)?;
    let now = state.clock.now();
    let Request { channel, received_at, option, quote_id, reason: (reason_category, reason_text) } = request;

    // A cited quote binds its figures while valid; otherwise quote at received_at.
    let (quote, quote_id) = match &quote_id {
        Some(text) => {
            let quote_id = QuoteId::parse(text).map_err(|_| ApiError::not_found("quote"))?;
            let stored = state.store.quote(&quote_id).await.or_not_found("quote")?;
            if stored.subscription_id != subscription.id || stored.received_at > received_at {
                return Err(ApiError::conflict("quote_mismatch").with("quote_id", quote_id.to_string()));
            }
            if now > stored.valid_until || stored.received_at < subscription.current_period_start {
                return Err(ApiError::conflict("quote_expired").with("quote_id", quote_id.to_string()));
            }
            (serde_json::from_str::<Quote>(&stored.body).map_err(internal)?, Some(quote_id))
        }
        None => (compute_quote(state, &subscription, terms, received_at).await?, None),
    };
    let chosen = quote
        .option(option)
        .ok_or_else(|| ApiError::unprocessable("option_not_available").with("option", option.as_str()))?
        .clone();
    let effective_at = if option == CancelOption::Now { received_at } else { chosen.effective_at };
    let ends_now = effective_at <= now;
    let cancellation_id: CancellationId = new_id();
    let currency = terms.policy.price.currency;

    let mut fields = json!({
        "cancellation_id": cancellation_id,
        "subscription_id": subscription.id,
        "plan_id": subscription.plan_id,
        "channel": channel.as_str(),
        "option": option.as_str(),
        "received_at": received_at.to_string(),
        "effective_at": effective_at.to_string(),
        "renewals_before_effective": chosen.renewals_before_effective,
        "refund": chosen.refund,
        "fee": chosen.fee,
        "export_until": chosen.export_until.to_string(),
        "delete_at": chosen.delete_at.to_string(),
        "quote_id": quote_id,
        "policy_version": subscription.policy_version,
        "policy_sha256": subscription.policy_sha256,
    });
    let mut audit_details = json!({
        "channel": channel.as_str(),
        "option": option.as_str(),
        "received_at": received_at.to_string(),
        "effective_at": effective_at.to_string(),
        "refund_minor": chosen.refund.amount_minor,
        "fee_minor": chosen.fee.amount_minor,
    });
    match &channel {
        Channel::SelfService => {}
        Channel::Support(verified) => {
            fields["agent"] = caller.actor().into();
            fields["verification"] = verified.method().into();
            audit_details["verification"] = verified.method().into();
        }
        Channel::WrittenNotice(notice) => {
            fields["agent"] = caller.actor().into();
            fields["written_notice"] = notice.receipt_fields();
            audit_details["written_notice_id"] = notice.id.as_str().into();
        }
    }
    let (stored_receipt, receipt) =
        receipts::issue(&state.keys, &subscription.family_id, "cancellation", cancellation_id.as_str(), now, fields)?;
    let cancellation = Cancellation {
        id: cancellation_id.clone(),
        subscription_id: subscription.id.clone(),
        family_id: subscription.family_id.clone(),
        channel: channel.as_str().to_owned(),
        option: option.as_str().to_owned(),
        status: if ends_now { "effective" } else { "scheduled" }.to_owned(),
        received_at,
        effective_at,
        refund_minor: chosen.refund.amount_minor,
        fee_minor: chosen.fee.amount_minor,
        currency,
        quote_id,
        reason_category,
        reason_text,
        receipt_id: stored_receipt.id.clone(),
        actor: caller.actor(),
        withdrawn_at: None,
        created_at: now,
    };

    let guardians = state.store.guardians_of(&subscription.family_id).await?;
    let plan = state.store.plan(&subscription.plan_id).await?;
    let plan_names = json!({"zh-CN": plan.name_zh_cn, "en": plan.name_en});
    let mut tx = state.store.begin().await?;
    // Re-read under the lock: a concurrent request may have got here first,
    // or a billing run may have started a new period the quote did not see.
    let quoted_period_start = subscription.current_period_start;
    let mut subscription = tx.subscription_for_update(&subscription.id).await?;
    ensure_cancellable(&subscription)?;
    if subscription.current_period_start != quoted_period_start {
        return Err(ApiError::conflict("quote_expired")
            .with("quote_id", cancellation.quote_id.as_ref().map(|q| q.to_string()).unwrap_or_default()));
    }
    if let Channel::Support(verified) = &channel {
        verified.spend(&mut tx, state, &caller.actor(), &subscription.family_id).await?;
    }
    tx.insert_cancellation(&cancellation).await.map_err(|e| match e {
        StoreError::Conflict { .. } => ApiError::conflict("cancellation_pending"),
        other => other.into(),
    })?;
    // Money moves after the commit (money::settle), never under the lock.
    let mut to_pay = Vec::new();
    let mut late_refunds = Vec::new();
    let wall_now = state.clock.wall_now();
    if ends_now {
        if !chosen.refund.is_zero() {
            let key = format!("refund:{cancellation_id}");
            let entry =
                money_entry(&subscription, "refund", chosen.refund, key, "refund on cancellation, as quoted", now);
            if tx.append_ledger_entry_to_pay(&entry, wall_now).await? {
                to_pay.push(entry.id);
            }
        }
        if !chosen.fee.is_zero() {
            let key = format!("fee:{cancellation_id}");
            let entry = money_entry(&subscription, "fee", chosen.fee, key, "early-termination fee, as quoted", now);
            if tx.append_ledger_entry_to_pay(&entry, wall_now).await? {
                to_pay.push(entry.id);
            }
        }
        late_refunds = billing::refund_charges_from(state, &mut tx, &subscription, effective_at, now).await?;
        to_pay.extend(late_refunds.iter().map(|r| r.id.clone()));
        subscription.status = SubscriptionStatus::Cancelled.as_str().to_owned();
        subscription.ended_at = Some(effective_at);
        subscription.effective_at = Some(effective_at);
        subscription.pending_cancellation_id = None;
    } else {
        subscription.status = SubscriptionStatus::PendingCancellation.as_str().to_owned();
        subscription.effective_at = Some(effective_at);
        subscription.pending_cancellation_id = Some(cancellation_id.clone());
    }
    refresh_due_at(&mut subscription, terms);
    tx.update_subscription(&subscription).await?;
    if ends_now {
        crate::deletion::schedule_retention(&mut tx, &subscription, terms.policy.retention_days, effective_at).await?;
    }
    if let Channel::WrittenNotice(notice) = &channel {
        notice.save(&mut tx, &cancellation_id, late_refunds.len()).await?;
    }
    tx.insert_receipt(&stored_receipt).await?;
    let email = json!({"receipt": receipt, "plan": plan_names, "time_zone": subscription.time_zone, "ended": ends_now});
    let event = stored_receipt.id.as_str();
    crate::outbox::email_guardians(&mut tx, state, &guardians, "cancellation_received", event, &email).await?;
    let hook = json!({
        "subscription_id": subscription.id,
        "family_id": subscription.family_id,
        "cancellation_id": cancellation_id,
        "channel": channel.as_str(),
        "received_at": received_at.to_string(),
        "effective_at": effective_at.to_string(),
    });
    if ends_now {
        crate::outbox::webhook(
            &mut tx,
            state,
            &plan.service,
            "subscription.cancelled",
            cancellation_id.as_str(),
            &hook,
        )
        .await?;
    } else {
        crate::outbox::webhook(
            &mut tx,
            state,
            &plan.service,
            "cancellation.scheduled",
            cancellation_id.as_str(),
            &hook,
        )
        .await?;
    }
    tx.audit(
        now,
        &caller.actor(),
        if ends_now { "cancellation.effective" } else { "cancellation.scheduled" },
        &[
            subscription.family_id.as_str(),
            subscription.id.as_str(),
            cancellation_id.as_str(),
            stored_receipt.id.as_str(),
        ],
        &audit_details,
    )
    .await?;
    tx.commit().await?;
    // The request is on record; now the gateway, outside any transaction.
    // What it refuses, or what a failure here leaves, stays pending for the
    // worker: the guardian's answer is the filed request either way.
    if let Err(error) = crate::money::settle(state, &to_pay).await {
        tracing::warn!(
            code = error.code,
            internal = error.internal.as_deref().unwrap_or(""),
            "settling after a cancellation failed; the worker retries"
        );
    }
    Ok(Filed { cancellation, receipt, late_refunds })
}

fn money_entry(s: &Subscription, kind: &str, amount: Money, key: String, note: &str, now: Timestamp) -> LedgerEntry {
    LedgerEntry {
        id: LedgerEntryId::from_random(random_bytes()),
        family_id: s.family_id.clone(),
        subscription_id: s.id.clone(),
        kind: kind.to_owned(),
        amount_minor: amount.amount_minor,
        currency: amount.currency,
        period_start: None,
        period_end: None,
        entry_key: key,
        gateway_reference: None,
        note: note.to_owned(),
        created_at: now,
    }
}

pub async fn resume(state: &AppState, caller: &Caller, subscription_id: &str) -> ApiResult<SubscriptionWithReceipt> {
    caller.require_guardian()?;
    let (subscription, terms) = visible_subscription(state, caller, subscription_id, &[]).await?;
    let now = state.clock.now();
    let mut tx = state.store.begin().await?;
    let mut subscription = tx.subscription_for_update(&subscription.id).await?;
    let (Some(cancellation_id), Some(effective_at)) =
        (subscription.pending_cancellation_id.clone(), subscription.effective_at)
    else {
        return Err(ApiError::conflict("nothing_to_resume"));
    };
    if effective_at <= now {
        return Err(ApiError::conflict("nothing_to_resume"));
    }
    let (stored_receipt, receipt) = receipts::issue(
        &state.keys,
        &subscription.family_id,
        "withdrawal",
        cancellation_id.as_str(),
        now,
        json!({
            "cancellation_id": cancellation_id,
            "subscription_id": subscription.id,
            "channel": "self_service",
            "withdrawn_at": now.to_string(),
            "cancellation_would_have_taken_effect_at": effective_at.to_string(),
            "policy_version": subscription.policy_version,
            "policy_sha256": subscription.policy_sha256,
        }),
    )?;
    tx.set_cancellation_status(&cancellation_id, "withdrawn", Some(now)).await?;
    subscription.status =
        running_status(subscription.current_position, subscription.current_period_paid).as_str().to_owned();
    subscription.pending_cancellation_id = None;
    subscription.effective_at = None;
    refresh_due_at(&mut subscription, &terms);
    tx.update_subscription(&subscription).await?;
    tx.insert_receipt(&stored_receipt).await?;
    tx.audit(
        now,
        &caller.actor(),
        "cancellation.withdrawn",
        &[
            subscription.family_id.as_str(),
            subscription.id.as_str(),
            cancellation_id.as_str(),
            stored_receipt.id.as_str(),
        ],
        &json!({}),
    )
    .await?;
    let service = tx.plan(&subscription.plan_id).await?.service;
    let hook = json!({
        "subscription_id": subscription.id,
        "family_id": subscription.family_id,
        "cancellation_id": cancellation_id,
        "withdrawn_at": now.to_string(),
    });
    crate::outbox::webhook(&mut tx, state, &service, "cancellation.withdrawn", cancellation_id.as_str(), &hook).await?;
    tx.commit().await?;
    Ok(SubscriptionWithReceipt { subscription: subscription_view(&subscription, &terms), receipt })
}

pub async fn get_cancellation(
    state: &AppState,
    caller: &Caller,
    cancellation_id: &str,
) -> ApiResult<CancellationWithReceipt> {
    let cancellation_id = CancellationId::parse(cancellation_id).map_err(|_| ApiError::not_found("cancellation"))?;
    let cancellation = state.store.cancellation(&cancellation_id).await.or_not_found("cancellation")?;
    caller.require_family(&cancellation.family_id, STAFF_READERS, "cancellation")?;
    let stored = state.store.receipt(&cancellation.receipt_id).await?;
    let receipt = serde_json::from_str(&stored.document).map_err(internal)?;
    Ok(CancellationWithReceipt { cancellation: CancellationView::from(&cancellation), receipt })
}
