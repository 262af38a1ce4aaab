//! The portal's pages. Each handler loads through the same services as the
//! API, turns the result into a page model of ready-to-show text, and
//! renders a template; templates hold layout only.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use baobao_domain::calendar::Calendar;
use baobao_domain::ids::{FamilyId, PlanId, SubscriptionId};
use baobao_domain::receipt::{ReceiptBody, TermsRef};
use baobao_domain::{Locale, Money};
use jiff::Timestamp;
use serde::Deserialize;

use crate::error::{ApiError, Shown};
use crate::i18n::T;
use crate::messages;
use crate::portal::page::{
    PageResult, PortalError, api, has_page, local_path, local_time, ok, render, see_other, with_cookie,
};
use crate::portal::session::{self, LANG_COOKIE, MaybeGuardian, PageContext, SESSION_COOKIE, SignedInGuardian};
use crate::receipts::ReceiptDocument;
use crate::services::accounts::{GuardianInput, SignInInput, SignUpInput};
use crate::services::cancellations::{CancelInput, ReasonInput};
use crate::services::subscriptions::SubscribeInput;
use crate::services::{accounts, cancellations, plans, subscriptions};
use crate::state::AppState;
use crate::views::SubscriptionView;

has_page!(
    LoginPage,
    SignupPage,
    ServicesPage,
    ServicePage,
    TermsPage,
    CancelPage,
    PlansPage,
    PlanPage,
    ReceiptPage,
    ReceiptsPage,
    StatementPage
);

/// The signed-in guardian and the page context, or a trip to the login page.
fn require(
    guardian: MaybeGuardian,
    headers: &HeaderMap,
    path: &str,
) -> Result<(SignedInGuardian, PageContext), PortalError> {
    let MaybeGuardian(guardian, provider) = guardian;
    let guardian = guardian.ok_or_else(|| PortalError::sign_in(path.to_owned()))?;
    let page = session::context(headers, path, Some(&guardian), &provider);
    Ok((guardian, page))
}

fn local_date(calendar: &Calendar, instant: Timestamp) -> String {
    calendar.date_text(instant)
}

fn calendar_of(guardian: &SignedInGuardian) -> Calendar {
    calendar_in(&guardian.guardian.time_zone)
}

/// The calendar of a time zone; UTC for one this server does not know.
pub(super) fn calendar_in(time_zone: &str) -> Calendar {
    Calendar::new(time_zone).or_else(|_| Calendar::new("UTC")).unwrap_or_else(|_| unreachable_utc())
}

fn unreachable_utc() -> Calendar {
    // UTC is in every time-zone database, bundled ones included.
    Calendar::new("Etc/UTC").unwrap_or_else(|_| panic!("no UTC time zone"))
}

// ------------------------------------------------------------------ entry

pub async fn home(guardian: MaybeGuardian) -> Response {
    if guardian.0.is_some() { see_other("/services") } else { see_other("/login") }
}

#[derive(Deserialize)]
pub struct LangQuery {
    to: String,
    next: Option<String>,
}

pub async fn switch_language(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Query(query): Query<LangQuery>,
) -> Response {
    let locale = Locale::parse(&query.to).unwrap_or_default();
    if let Some(g) = &guardian.0
        && let Err(error) = accounts::set_locale(&state, &g.caller(), locale).await
    {
        // The cookie below still switches the pages; only the emails' language waits.
        tracing::warn!(code = error.code, "saving a guardian's language failed");
    }
    let response = see_other(&local_path(query.next.as_deref(), "/"));
    with_cookie(response, session::set_cookie(&headers, LANG_COOKIE, locale.tag(), 60 * 60 * 24 * 365))
}

// ------------------------------------------------------------------ sign in and up

/// The two sign-in forms: the portal's for guardians, the console's for staff.
pub struct SignInForm {
    realm: Option<&'static str>,
    pub action: &'static str,
    home: &'static str,
    cookie: &'static str,
    title: &'static str,
    /// Guardians can sign up instead; staff accounts are made by admins.
    offers_sign_up: bool,
}

pub const GUARDIAN_SIGN_IN: SignInForm = SignInForm {
    realm: None,
    action: "/login",
    home: "/services",
    cookie: SESSION_COOKIE,
    title: "login-title",
    offers_sign_up: true,
};

pub const STAFF_SIGN_IN: SignInForm = SignInForm {
    realm: Some("staff"),
    action: "/console/login",
    home: "/console",
    cookie: session::STAFF_SESSION_COOKIE,
    title: "console-login-title",
    offers_sign_up: false,
};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    page: PageContext,
    form: &'static SignInForm,
    email: String,
    error: Option<String>,
    next: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

/// An empty sign-in form that leads to `next` (a path on this site).
pub fn sign_in_page(page: PageContext, form: &'static SignInForm, next: Option<&str>) -> PageResult {
    ok(LoginPage { page, form, email: String::new(), error: None, next: local_path(next, form.home) })
}

pub async fn login_page(headers: HeaderMap, guardian: MaybeGuardian, Query(query): Query<NextQuery>) -> PageResult {
    if guardian.0.is_some() {
        return Ok(see_other(&local_path(query.next.as_deref(), "/services")));
    }
    sign_in_page(session::context(&headers, "/login", None, &guardian.1), &GUARDIAN_SIGN_IN, query.next.as_deref())
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// Signs in from a submitted form: the session cookie and a trip to
/// `next`, or the form again with what went wrong.
pub async fn sign_in_with_form(
    state: &AppState,
    headers: &HeaderMap,
    page: PageContext,
    form: &'static SignInForm,
    submitted: LoginForm,
) -> PageResult {
    page.check_csrf(&submitted.csrf)?;
    let next = local_path(submitted.next.as_deref(), form.home);
    let input = SignInInput {
        email: submitted.email.clone(),
        password: submitted.password,
        realm: form.realm.map(str::to_owned),
    };
    match accounts::sign_in(state, input).await {
        Ok(session_view) => {
            let max_age = session_view.expires_at.as_second() - state.clock.wall_now().as_second();
            let cookie = session::set_cookie(headers, form.cookie, &session_view.token, max_age);
            Ok(with_cookie(see_other(&next), cookie))
        }
        Err(error) => {
            let message = match error.code {
                "invalid_credentials" => page.t.get("login-failed"),
                "too_many_attempts" => page.t.arg("login-rate-limited", "minutes", error.details["minutes"].clone()),
                _ => return Err(PortalError::api(page, error)),
            };
            let status = error.status;
            Ok(render(status, LoginPage { page, form, email: submitted.email, error: Some(message), next }))
        }
    }
}

pub async fn login(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<LoginForm>) -> PageResult {
    let page = session::context(&headers, "/login", None, &state.config.provider);
    sign_in_with_form(&state, &headers, page, &GUARDIAN_SIGN_IN, form).await
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    page: PageContext,
    name: String,
    email: String,
    phone: String,
    locale: String,
    time_zone: String,
    errors: Vec<(String, String)>,
    zones: Vec<&'static str>,
}

impl SignupPage {
    fn error_for(&self, field: &str) -> String {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

const TIME_ZONES: [&str; 8] = [
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Singapore",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "UTC",
];

pub async fn signup_page(headers: HeaderMap, guardian: MaybeGuardian) -> PageResult {
    if guardian.0.is_some() {
        return Ok(see_other("/services"));
    }
    let page = session::context(&headers, "/signup", None, &guardian.1);
    let locale = page.t.tag().to_owned();
    ok(SignupPage {
        page,
        name: String::new(),
        email: String::new(),
        phone: String::new(),
        locale,
        time_zone: "Asia/Shanghai".to_owned(),
        errors: Vec::new(),
        zones: TIME_ZONES.to_vec(),
    })
}

#[derive(Deserialize)]
pub struct SignupForm {
    name: String,
    email: String,
    #[serde(default)]
    phone: String,
    password: String,
    locale: String,
    time_zone: String,
    csrf: String,
}

pub async fn signup(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<SignupForm>) -> PageResult {
    let page = session::context(&headers, "/signup", None, &state.config.provider);
    page.check_csrf(&form.csrf)?;
    let input = SignUpInput {
        guardian: GuardianInput {
            email: form.email.clone(),
            password: form.password,
            name: form.name.clone(),
            phone: Some(form.phone.clone()),
            locale: form.locale.clone(),
            time_zone: form.time_zone.clone(),
        },
    };
    match accounts::sign_up(&state, input).await {
        Ok(view) => {
            let max_age = view.expires_at.as_second() - state.clock.wall_now().as_second();
            Ok(with_cookie(see_other("/plans"), session::set_cookie(&headers, SESSION_COOKIE, &view.token, max_age)))
        }
        Err(error) if error.shown() == Shown::Inline => {
            let field = match error.code {
                "email_taken" => "email".to_owned(),
                _ => error.details["field"].as_str().unwrap_or("email").to_owned(),
            };
            let message = messages::render(error.code, page.t.locale, &error.details);
            let status = error.status;
            Ok(render(
                status,
                SignupPage {
                    page,
                    name: form.name,
                    email: form.email,
                    phone: form.phone,
                    locale: form.locale,
                    time_zone: form.time_zone,
                    errors: vec![(field, message)],
                    zones: TIME_ZONES.to_vec(),
                },
            ))
        }
        Err(error) => Err(PortalError::api(page, error)),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let MaybeGuardian(signed, provider) = guardian;
    let Some(guardian) = signed else {
        return Ok(see_other("/login"));
    };
    let page = session::context(&headers, "/logout", Some(&guardian), &provider);
    page.check_csrf(&form.csrf)?;
    crate::auth::sign_out(&state, &guardian.token).await.map_err(api(&page))?;
    Ok(with_cookie(see_other("/login"), session::set_cookie(&headers, SESSION_COOKIE, "", 0)))
}

// ------------------------------------------------------------------ services

pub struct ServiceRow {
    pub id: String,
    pub plan_name: String,
    pub status: String,
    pub price: String,
    pub period: String,
    pub signed_up: String,
    pub next_renewal: Option<String>,
    /// The one date that matters, in words.
    pub key_line: String,
    pub href: String,
}

async fn plan_name(state: &AppState, plan_id: &str, t: &crate::i18n::T) -> String {
    let Ok(plan_id) = PlanId::parse(plan_id) else { return String::new() };
    match plans::plan(state, &plan_id, t.locale).await {
        Ok(plan) if t.locale == Locale::ZhCn => plan.name.zh_cn,
        Ok(plan) => plan.name.en,
        Err(_) => String::new(),
    }
}

pub fn money(view: &crate::views::MoneyView, locale: Locale) -> String {
    baobao_domain::Currency::parse(&view.currency)
        .map(|currency| Money { amount_minor: view.amount_minor, currency }.display_in(locale))
        .unwrap_or_else(|_| format!("{} {}", view.amount_minor, view.currency))
}

async fn service_row(state: &AppState, view: &SubscriptionView, page: &PageContext, calendar: &Calendar) -> ServiceRow {
    let t = &page.t;
    let key_line = if let Some(pending) = &view.pending_cancellation {
        t.arg("service-ends", "date", local_date(calendar, pending.effective_at))
    } else if let Some(ended_at) = view.ended_at {
        t.arg("service-ended", "date", local_date(calendar, ended_at))
    } else if view.status == "past_due" {
        t.get("service-past-due")
    } else if view.current_period.is_trial {
        t.arg("service-trial-ends", "date", local_time(calendar, view.current_period.end))
    } else if let Some(deadline) = view.notice_deadline {
        t.arg("service-cancel-by", "date", local_time(calendar, deadline))
    } else {
        String::new()
    };
    ServiceRow {
        id: view.id.clone(),
        plan_name: plan_name(state, &view.plan_id, t).await,
        status: t.get(&format!("status-{}", view.status)),
        price: money(&view.price, t.locale),
        period: format!(
            "{} – {}",
            local_date(calendar, view.current_period.start),
            local_date(calendar, view.current_period.end)
        ),
        signed_up: local_date(calendar, view.signed_up_at),
        next_renewal: view.next_renewal_at.map(|t| local_date(calendar, t)),
        key_line,
        href: format!("/services/{}", view.id),
    }
}

#[derive(Template)]
#[template(path = "services.html")]
struct ServicesPage {
    page: PageContext,
    rows: Vec<ServiceRow>,
}

pub async fn services(State(state): State<AppState>, headers: HeaderMap, guardian: MaybeGuardian) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/services")?;
    let calendar = calendar_of(&guardian);
    let views = subscriptions::family_subscriptions(&state, &guardian.caller(), guardian.family_id())
        .await
        .map_err(api(&page))?;
    let mut rows = Vec::new();
    for view in &views {
        rows.push(service_row(&state, view, &page, &calendar).await);
    }
    ok(ServicesPage { page, rows })
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage {
    page: PageContext,
    s: ServiceRow,
    can_cancel: bool,
    can_resume: bool,
    notice: Option<String>,
    receipts: Vec<ReceiptRow>,
}

#[derive(Deserialize)]
pub struct ServiceQuery {
    subscribed: Option<String>,
    resumed: Option<String>,
}

pub async fn service(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    Query(query): Query<ServiceQuery>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/services/{id}"))?;
    let calendar = calendar_of(&guardian);
    let view = subscriptions::get_subscription(&state, &guardian.caller(), &id).await.map_err(api(&page))?;
    let notice = if query.subscribed.is_some() {
        Some(page.t.get("service-subscribed"))
    } else if query.resumed.is_some() {
        Some(page.t.get("service-resumed"))
    } else {
        None
    };
    let receipts = receipt_rows(&state, &guardian, &page, &calendar, Some(&view.id)).await?;
    ok(ServicePage {
        can_cancel: view.can_cancel,
        can_resume: view.pending_cancellation.is_some(),
        s: service_row(&state, &view, &page, &calendar).await,
        page,
        notice,
        receipts,
    })
}

#[derive(Template)]
#[template(path = "terms.html")]
struct TermsPage {
    page: PageContext,
    title: String,
    version_line: String,
    lines: Vec<String>,
    back: String,
}

pub async fn service_terms(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/services/{id}/terms"))?;
    let (view, policy) = subscriptions::accepted_terms(&state, &guardian.caller(), &id).await.map_err(api(&page))?;
    let name = plan_name(&state, &view.plan_id, &page.t).await;
    ok(TermsPage {
        title: page.t.arg("terms-title", "plan", &name),
        version_line: page.t.args(
            "terms-version",
            &[("version", view.policy_version.to_string()), ("sha", view.policy_sha256.clone())],
        ),
        lines: policy.render(page.t.locale).into_iter().map(|l| l.text).collect(),
        back: format!("/services/{id}"),
        page,
    })
}

// ------------------------------------------------------------------ cancel

pub struct OptionRow {
    pub value: String,
    pub label: String,
    pub effective: String,
    pub renewals: String,
    pub refund: String,
    pub fee: String,
    pub data_until: String,
    pub explanation: String,
    pub checked: bool,
}

/// A quote's options as a page shows them (the portal's and the console's).
pub fn option_rows(t: &crate::i18n::T, calendar: &Calendar, quote: &crate::views::QuoteView) -> Vec<OptionRow> {
    quote
        .options
        .iter()
        .map(|o| OptionRow {
            value: o.option.clone(),
            label: t.get(&format!("option-{}", o.option)),
            effective: local_time(calendar, o.effective_at),
            renewals: match o.renewals_before_effective {
                0 => t.get("cancel-renewals-none"),
                n => t.args(
                    "cancel-renewals-cost",
                    &[("count", n.to_string()), ("cost", money(&o.renewals_cost, t.locale))],
                ),
            },
            // One option only (the cooling-off period): nothing to choose, so it is chosen.
            checked: quote.options.len() == 1,
            refund: money(&o.refund, t.locale),
            fee: money(&o.fee, t.locale),
            data_until: local_date(calendar, o.delete_at),
            explanation: o.explanation.clone(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "cancel.html")]
struct CancelPage {
    page: PageContext,
    subscription_id: String,
    title: String,
    intro: String,
    quote_id: String,
    options: Vec<OptionRow>,
    reasons: Vec<(String, String)>,
    error: Option<String>,
}

async fn cancel_page_model(
    state: &AppState,
    guardian: &SignedInGuardian,
    page: PageContext,
    id: &str,
    error: Option<String>,
) -> PageResult {
    let calendar = calendar_of(guardian);
    let view = subscriptions::get_subscription(state, &guardian.caller(), id).await.map_err(api(&page))?;
    if view.pending_cancellation.is_some() || view.ended_at.is_some() {
        return Ok(see_other(&format!("/services/{id}")));
    }
    let quote = cancellations::cancellation_quote(state, &guardian.caller(), id, None, page.t.locale)
        .await
        .map_err(api(&page))?;
    let t = &page.t;
    let options = option_rows(t, &calendar, &quote);
    let reasons = baobao_domain::text::REASON_CATEGORIES
        .iter()
        .map(|c| ((*c).to_owned(), t.get(&format!("reason-{c}"))))
        .collect();
    let name = plan_name(state, &view.plan_id, t).await;
    ok(CancelPage {
        subscription_id: id.to_owned(),
        title: t.arg("cancel-title", "plan", &name),
        intro: t.arg("cancel-intro", "valid_until", local_time(&calendar, quote.valid_until)),
        quote_id: quote.id,
        options,
        reasons,
        error,
        page,
    })
}

pub async fn cancel_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/services/{id}/cancel"))?;
    cancel_page_model(&state, &guardian, page, &id, None).await
}

#[derive(Deserialize)]
pub struct CancelForm {
    csrf: String,
    quote_id: String,
    option: Option<String>,
    reason: Option<String>,
    reason_text: Option<String>,
}

pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/services/{id}/cancel"))?;
    page.check_csrf(&form.csrf)?;
    let Some(option) = form.option.filter(|o| !o.is_empty()) else {
        let error = page.t.get("cancel-choose");
        return cancel_page_model(&state, &guardian, page, &id, Some(error)).await;
    };
    let reason =
        form.reason.filter(|r| !r.is_empty()).map(|category| ReasonInput { category, text: form.reason_text.clone() });
    let input = CancelInput {
        option,
        quote_id: Some(form.quote_id),
        reason,
        verification_code: None,
        verification_override_reason: None,
    };
    match cancellations::cancel(&state, &guardian.caller(), &id, input).await {
        Ok(done) => Ok(see_other(&format!("/receipts/{}?new=1", done.receipt.id))),
        Err(error) if error.code == "quote_expired" => {
            let message = page.t.get("cancel-quote-expired");
            cancel_page_model(&state, &guardian, page, &id, Some(message)).await
        }
        Err(error) if error.code == "option_not_available" || error.code == "invalid_field" => {
            let message = messages::render(error.code, page.t.locale, &error.details);
            cancel_page_model(&state, &guardian, page, &id, Some(message)).await
        }
        Err(error) => Err(PortalError::api(page, error)),
    }
}

pub async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/services/{id}"))?;
    page.check_csrf(&form.csrf)?;
    cancellations::resume(&state, &guardian.caller(), &id).await.map_err(api(&page))?;
    Ok(see_other(&format!("/services/{id}?resumed=1")))
}

// ------------------------------------------------------------------ plans

pub struct PlanRow {
    pub name: String,
    pub price_line: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "plans.html")]
struct PlansPage {
    page: PageContext,
    plans: Vec<PlanRow>,
}

fn price_line(t: &crate::i18n::T, policy: &serde_json::Value) -> String {
    let price =
        serde_json::from_value::<Money>(policy["price"].clone()).map(|m| m.display_in(t.locale)).unwrap_or_default();
    let period = serde_json::from_value::<baobao_domain::PeriodLength>(policy["period"].clone())
        .map(|p| baobao_domain::policy::period_words(p, t.locale))
        .unwrap_or_default();
    t.args("plan-per-period", &[("price", price), ("period", period)])
}

pub async fn plans(State(state): State<AppState>, headers: HeaderMap, guardian: MaybeGuardian) -> PageResult {
    let (_, page) = require(guardian, &headers, "/plans")?;
    let views = plans::plans(&state, page.t.locale).await.map_err(api(&page))?;
    let plans = views
        .iter()
        .map(|p| PlanRow {
            name: if page.t.locale == Locale::ZhCn { p.name.zh_cn.clone() } else { p.name.en.clone() },
            price_line: price_line(&page.t, &p.policy.terms),
            href: format!("/plans/{}", p.id),
        })
        .collect();
    ok(PlansPage { page, plans })
}

#[derive(Template)]
#[template(path = "plan.html")]
struct PlanPage {
    page: PageContext,
    plan_id: String,
    name: String,
    price_line: String,
    version_line: String,
    sha256: String,
    lines: Vec<String>,
    error: Option<String>,
    form_key: String,
}

async fn plan_page_model(
    state: &AppState,
    page: PageContext,
    id: &str,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let plan_id = PlanId::parse(id).map_err(|_| PortalError::api(page.clone(), ApiError::not_found("plan")))?;
    let view = plans::plan(state, &plan_id, page.t.locale).await.map_err(api(&page))?;
    let t = &page.t;
    Ok(render(
        status,
        PlanPage {
            plan_id: view.id.clone(),
            name: if t.locale == Locale::ZhCn { view.name.zh_cn.clone() } else { view.name.en.clone() },
            price_line: price_line(t, &view.policy.terms),
            version_line: t.args(
                "terms-version",
                &[("version", view.policy.version.to_string()), ("sha", view.policy.sha256.clone())],
            ),
            sha256: view.policy.sha256.clone(),
            lines: view.terms_text.iter().map(|l| l.text.clone()).collect(),
            error,
            form_key: crate::portal::once::form_key(),
            page,
        },
    ))
}

pub async fn plan_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
) -> PageResult {
    let (_, page) = require(guardian, &headers, &format!("/plans/{id}"))?;
    plan_page_model(&state, page, &id, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct SubscribeForm {
    csrf: String,
    sha256: String,
    accept: Option<String>,
    #[serde(default)]
    form_key: String,
}

pub async fn subscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    Form(form): Form<SubscribeForm>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/plans/{id}"))?;
    page.check_csrf(&form.csrf)?;
    if form.accept.is_none() {
        let error = page.t.get("plan-accept-required");
        return plan_page_model(&state, page, &id, Some(error), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    // A double-click subscribes once and both clicks land on the subscription.
    let family_id = guardian.guardian.family_id.clone();
    let fields = format!("{id}\n{}", form.sha256);
    crate::portal::once::once(&state, &family_id, &format!("subscribe:{id}"), &form.form_key, &fields, || async {
        let input = SubscribeInput { plan_id: id.clone(), accept_policy_sha256: form.sha256.clone() };
        match subscriptions::subscribe(&state, &guardian.caller(), input).await {
            Ok(done) => Ok(see_other(&format!("/services/{}?subscribed=1", done.subscription.id))),
            Err(error) if error.shown() == Shown::Inline => {
                let message = match error.code {
                    "policy_hash_mismatch" => page.t.get("plan-terms-changed"),
                    "already_subscribed" => page.t.get("plan-already"),
                    code => messages::render(code, page.t.locale, &error.details),
                };
                plan_page_model(&state, page.clone(), &id, Some(message), error.status).await
            }
            Err(error) => Err(PortalError::api(page.clone(), error)),
        }
    })
    .await
}

// ------------------------------------------------------------------ receipts

pub struct ReceiptRow {
    pub href: String,
    pub number: String,
    pub kind: String,
    pub issued: String,
}

async fn receipt_rows(
    state: &AppState,
    guardian: &SignedInGuardian,
    page: &PageContext,
    calendar: &Calendar,
    subscription_id: Option<&str>,
) -> Result<Vec<ReceiptRow>, PortalError> {
    let documents = crate::services::receipts::family_receipts(state, &guardian.caller(), guardian.family_id(), &[])
        .await
        .map_err(api(page))?;
    Ok(documents
        .iter()
        .filter_map(|d| d.signed_body().ok().map(|signed| (d, signed)))
        .filter(|(_, signed)| subscription_id.is_none_or(|s| signed.body.subscription_id() == Some(s)))
        .map(|(d, signed)| ReceiptRow {
            href: format!("/receipts/{}", d.id),
            number: signed.receipt_number.clone(),
            kind: page.t.get(&format!("receipt-kind-{}", d.kind)),
            issued: local_time(calendar, signed.issued_at),
        })
        .collect())
}

#[derive(Template)]
#[template(path = "receipts.html")]
struct ReceiptsPage {
    page: PageContext,
    rows: Vec<ReceiptRow>,
}

pub async fn receipts(State(state): State<AppState>, headers: HeaderMap, guardian: MaybeGuardian) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/receipts")?;
    let calendar = calendar_of(&guardian);
    let rows = receipt_rows(&state, &guardian, &page, &calendar, None).await?;
    ok(ReceiptsPage { page, rows })
}

#[derive(Template)]
#[template(path = "receipt.html")]
pub(super) struct ReceiptPage {
    page: PageContext,
    title: String,
    kind: String,
    rows: Vec<(String, String)>,
    what_next: Option<String>,
    json_href: String,
    /// Its proof of logging (entry, signed tree head, inclusion proof).
    proof_href: Option<String>,
    /// "Something went wrong? Complain", with this receipt named.
    complain_href: String,
    services_href: String,
    key_id: String,
    signature: String,
    is_new: bool,
    notice: Option<String>,
}

async fn load_receipt(
    state: &AppState,
    guardian: &SignedInGuardian,
    page: &PageContext,
    id: &str,
) -> Result<ReceiptDocument, PortalError> {
    // Another family's receipt, or no such receipt: the same "not found".
    crate::services::receipts::receipt_for(state, &guardian.caller(), id, None, &[]).await.map_err(|e| match e.code {
        "forbidden" => PortalError::api(page.clone(), ApiError::not_found("receipt")),
        _ => PortalError::api(page.clone(), e),
    })
}

#[derive(Deserialize)]
pub struct NewQuery {
    new: Option<String>,
    pub(super) deleted: Option<String>,
}

pub async fn receipt(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    Query(query): Query<NewQuery>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/receipts/{id}"))?;
    let document = load_receipt(&state, &guardian, &page, &id).await?;
    let calendar = calendar_of(&guardian);
    let notice = query.deleted.is_some().then(|| page.t.get("data-deleted"));
    let json_href = format!("/receipts/{}/signed.json", document.id);
    let parties = receipt_parties(&state, &document, page.t.locale).await;
    ok(receipt_page(page, &document, &calendar, query.new.is_some(), notice, json_href, parties))
}

/// A receipt's instant in the family's time zone, with its offset, so that
/// a mediator elsewhere reads it right (the signed body keeps UTC).
fn local_time_with_offset(calendar: &Calendar, instant: Timestamp) -> String {
    calendar.zoned(instant).strftime("%Y-%m-%d %H:%M (UTC%:z)").to_string()
}

/// Whom a receipt is between, for its reader: the service and plan, and
/// the guardian(s) by name; and its place in the audit log. Read from the
/// records when the page is shown (not signed into the receipt: a closed
/// account's names are gone, the receipts the law keeps are not; the leaf
/// is given after the receipt is signed).
pub(super) async fn receipt_parties(
    state: &AppState,
    document: &ReceiptDocument,
    locale: Locale,
) -> Vec<(String, String)> {
    let t = T::new(locale);
    let mut rows = Vec::new();
    let subscription_id = document.signed_body().ok().and_then(|s| s.body.subscription_id().map(str::to_owned));
    if let Some(Ok(subscription_id)) = subscription_id.map(|id| SubscriptionId::parse(&id))
        && let Ok(subscription) = state.store.subscription(&subscription_id).await
        && let Ok(plan) = plans::plan(state, &subscription.plan_id, locale).await
    {
        let name = if locale == Locale::ZhCn { plan.name.zh_cn } else { plan.name.en };
        rows.push((t.get("receipt-plan"), format!("{name} · {}", plan.service)));
    }
    if let Ok(family_id) = FamilyId::parse(document.body.get("family_id").and_then(|f| f.as_str()).unwrap_or_default())
        && let Ok(guardians) = state.store.guardians_of(&family_id).await
    {
        let names: Vec<String> = guardians.into_iter().map(|g| g.name).filter(|n| !n.is_empty()).collect();
        if !names.is_empty() {
            rows.push((t.get("receipt-guardian"), names.join(", ")));
        }
    }
    if let Ok(value) = serde_json::to_value(document)
        && let Ok(sha) = baobao_domain::audit::document_sha256(&value)
        && let Ok(logged) = crate::services::audit_log::logged_document(state, &sha).await
    {
        rows.push((t.get("receipt-logged"), t.arg("receipt-logged-leaf", "leaf", logged.leaf_index.to_string())));
    }
    rows
}

/// The printable page of any signed receipt, deletion certificates included;
/// `json_href` is where its signed JSON downloads from, `parties` whom it
/// is between (see `receipt_parties`).
pub(super) fn receipt_page(
    page: PageContext,
    document: &ReceiptDocument,
    calendar: &Calendar,
    is_new: bool,
    notice: Option<String>,
    json_href: String,
    parties: Vec<(String, String)>,
) -> ReceiptPage {
    let t = &page.t;
    // A body that does not read as its kind (it cannot be, once signed by
    // this server) still shows its number and signature.
    let signed = document.signed_body().ok();
    let number = signed.as_ref().map(|s| s.receipt_number.clone()).unwrap_or_default();
    let mut rows = vec![(t.get("receipt-number"), number.clone())];
    let mut what_next = None;
    if let Some(signed) = &signed {
        rows.push((t.get("receipt-issued"), local_time_with_offset(calendar, signed.issued_at)));
        if let Some(provider) = &signed.provider {
            rows.push((t.get("receipt-provider"), provider.legal_name.clone()));
            let contact: Vec<&str> =
                [provider.support_email.as_deref(), provider.support_phone.as_deref()].into_iter().flatten().collect();
            if !contact.is_empty() {
                rows.push((t.get("receipt-contact"), contact.join(" · ")));
            }
            if let Some(route) = &provider.complaints {
                rows.push((t.get("receipt-complaints"), route.clone()));
            }
        }
        rows.extend(parties);
        what_next = body_rows(t, calendar, &signed.body, &mut rows);
    }
    let services_href = signed
        .as_ref()
        .and_then(|s| s.body.subscription_id())
        .map(|s| format!("/services/{s}"))
        .unwrap_or_else(|| "/services".to_owned());
    let proof_href = serde_json::to_value(document)
        .ok()
        .and_then(|value| baobao_domain::audit::document_sha256(&value).ok())
        .map(|sha| format!("/v1/audit/documents/{sha}/proof"));
    let complain_href = match (page.signed_in, signed.as_ref().and_then(|s| s.body.subscription_id())) {
        (true, Some(subscription)) => format!("/disputes/new?receipt={number}&subscription_id={subscription}"),
        (true, None) => format!("/disputes/new?receipt={number}"),
        (false, _) => format!("/complain?receipt={number}"),
    };
    ReceiptPage {
        proof_href,
        complain_href,
        title: t.arg("receipt-title", "number", &number),
        kind: t.get(&format!("receipt-kind-{}", document.kind)),
        rows,
        what_next,
        json_href,
        services_href,
        key_id: document.signature.key_id.clone(),
        signature: document.signature.value.clone(),
        is_new,
        notice,
        page,
    }
}

/// The rows of what a receipt's kind records, in reading order, and what
/// happens next (for a cancellation).
fn body_rows(t: &T, calendar: &Calendar, body: &ReceiptBody, rows: &mut Vec<(String, String)>) -> Option<String> {
    let terms = |terms: &TermsRef| {
        let version = terms.policy_version.to_string();
        (
            t.get("receipt-policy"),
            t.args("terms-version", &[("version", version), ("sha", terms.policy_sha256.clone())]),
        )
    };
    match body {
        ReceiptBody::Subscription(r) => {
            rows.push((t.get("receipt-price"), r.price.display_in(t.locale)));
            if let Some(first) = r.first_charge {
                rows.push((t.get("receipt-first-charge"), first.display_in(t.locale)));
            }
            rows.push(terms(&r.terms));
            None
        }
        ReceiptBody::Cancellation(r) => {
            rows.push((t.get("receipt-received"), local_time_with_offset(calendar, r.received_at)));
            rows.push((t.get("receipt-effective"), local_time_with_offset(calendar, r.effective_at)));
            rows.push((t.get("receipt-option"), t.get(&format!("option-{}", r.option))));
            rows.push((t.get("receipt-refund"), r.refund.display_in(t.locale)));
            rows.push((t.get("receipt-fee"), r.fee.display_in(t.locale)));
            rows.push((t.get("receipt-data-until"), local_date(calendar, r.export_until)));
            rows.push(terms(&r.terms));
            Some(if r.option == "now" {
                t.get("receipt-what-next-now")
            } else {
                t.arg("receipt-what-next-scheduled", "date", local_time_with_offset(calendar, r.effective_at))
            })
        }
        ReceiptBody::Withdrawal(r) => {
            rows.push(terms(&r.terms));
            None
        }
        ReceiptBody::Charge(r) => {
            rows.push((t.get("receipt-charge"), r.charge.display_in(t.locale)));
            if let Some(reference) = &r.gateway_reference {
                rows.push((t.get("receipt-gateway-reference"), reference.clone()));
            }
            None
        }
        ReceiptBody::Refund(r) => {
            rows.push((t.get("receipt-refund"), r.refund.display_in(t.locale)));
            rows.push((t.get("receipt-gateway-reference"), r.movement.gateway_reference.clone()));
            None
        }
        ReceiptBody::Fee(r) => {
            rows.push((t.get("receipt-fee"), r.fee.display_in(t.locale)));
            rows.push((t.get("receipt-gateway-reference"), r.movement.gateway_reference.clone()));
            None
        }
        ReceiptBody::DeletionCertificate(r) => {
            rows.push((t.get("receipt-key-destroyed"), local_time_with_offset(calendar, r.key_destroyed_at)));
            let deleted = r
                .deleted
                .iter()
                .map(|d| match &d.kind {
                    // A kind of record is the integrator's own word for it.
                    Some(kind) => {
                        t.args("certificate-deleted-records", &[("kind", kind.clone()), ("count", d.count.to_string())])
                    }
                    None => t.arg(&format!("certificate-deleted-{}", d.category), "count", d.count),
                })
                .collect::<Vec<_>>()
                .join(&t.get("list-separator"));
            rows.push((t.get("receipt-deleted"), deleted));
            let kept = r
                .kept
                .iter()
                .map(|k| {
                    let until = k.until.map(|u| local_date(calendar, u)).unwrap_or_default();
                    let category = serde_json::to_value(k.category).ok();
                    let category = category.as_ref().and_then(|c| c.as_str()).unwrap_or_default();
                    t.args(
                        "certificate-kept",
                        &[
                            ("category", t.get(&format!("certificate-hold-{category}"))),
                            ("basis", k.basis.clone()),
                            ("until", until),
                        ],
                    )
                })
                .collect::<Vec<_>>()
                .join(&t.get("list-separator"));
            rows.push((t.get("receipt-kept"), kept));
            None
        }
        ReceiptBody::Dispute(r) => {
            rows.push((t.get("dispute-kind"), t.get(&format!("dispute-kind-{}", r.dispute_kind))));
            rows.push((t.get("dispute-level"), t.get(&format!("dispute-level-{}", r.level))));
            rows.push((t.get("dispute-resolution-due"), local_time_with_offset(calendar, r.resolution_due)));
            if let Some(settled) = &r.settled {
                rows.push((t.get("dispute-outcome"), t.get(&format!("dispute-outcome-{settled}"))));
            }
            Some(t.get(if r.settled.is_some() { "dispute-what-next-settled" } else { "dispute-what-next-open" }))
        }
    }
}

pub async fn receipt_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/receipts/{id}"))?;
    let document = load_receipt(&state, &guardian, &page, &id).await?;
    let json = serde_json::to_string_pretty(&document).unwrap_or_default();
    let disposition = format!("attachment; filename=\"receipt-{id}.json\"");
    Ok(([(header::CONTENT_TYPE, "application/json".to_owned()), (header::CONTENT_DISPOSITION, disposition)], json)
        .into_response())
}

// ------------------------------------------------------------------ statement

pub struct StatementRow {
    pub date: String,
    pub kind: String,
    pub amount: String,
    pub period: String,
    pub note: String,
    /// Where the money is, in words: "sent, reference …", "pending", "failed: …".
    pub status: String,
}

#[derive(Template)]
#[template(path = "statement.html")]
struct StatementPage {
    page: PageContext,
    rows: Vec<StatementRow>,
}

pub async fn statement(State(state): State<AppState>, headers: HeaderMap, guardian: MaybeGuardian) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/statement")?;
    let calendar = calendar_of(&guardian);
    let entries = crate::services::money::statement(&state, guardian.family_id()).await.map_err(api(&page))?;
    let rows = entries
        .iter()
        .map(|e| StatementRow {
            date: local_time(&calendar, e.created_at),
            kind: page.t.get(&format!("kind-{}", e.kind)),
            amount: baobao_domain::money::Currency::parse(&e.amount.currency)
                .map(|currency| Money { amount_minor: e.amount.amount_minor, currency }.display_in(page.t.locale))
                .unwrap_or_default(),
            status: match (e.status.as_str(), &e.gateway_reference) {
                ("succeeded", Some(reference)) => page.t.arg("money-succeeded", "reference", reference.clone()),
                ("succeeded", None) => page.t.get("money-succeeded-no-reference"),
                ("failed", _) => page.t.get("money-failed"),
                _ => page.t.get("money-pending"),
            },
            period: match (e.period_start, e.period_end) {
                (Some(start), Some(end)) => {
                    format!("{} – {}", local_date(&calendar, start), local_date(&calendar, end))
                }
                _ => String::new(),
            },
            note: page.t.ledger_note(&e.note),
        })
        .collect();
    ok(StatementPage { page, rows })
}

pub async fn statement_csv(State(state): State<AppState>, headers: HeaderMap, guardian: MaybeGuardian) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/statement")?;
    let views = crate::services::money::statement(&state, guardian.family_id()).await.map_err(api(&page))?;
    let csv = crate::services::money::statement_csv(&views)
        .map_err(|e| PortalError::api(page.clone(), ApiError::internal(e.to_string())))?;
    let name = format!("statement-{}.csv", guardian.family_id());
    Ok(crate::downloads::attachment(crate::downloads::CSV, &name, csv))
}

// ------------------------------------------------------------------ children's data

pub struct ExportRow {
    pub made: String,
    pub status: String,
    pub href: Option<String>,
}

#[derive(Template)]
#[template(path = "data.html")]
struct DataPage {
    page: PageContext,
    /// The family's children still on the account: (id, name).
    children: Vec<(String, String)>,
    exports: Vec<ExportRow>,
    /// How long an export is kept for download.
    export_days: u32,
    services: Vec<(String, String)>,
    notice: Option<String>,
    /// A refused deletion request.
    error: Option<String>,
    /// A refused new child, with what was typed.
    child: ChildFormState,
    /// The add-a-child form's key: a double-click adds one child.
    form_key: String,
}

#[derive(Default)]
pub struct ChildFormState {
    name: String,
    birth_date: String,
    error: Option<String>,
    /// A refused removal: the child's id and why.
    remove_error: Option<(String, String)>,
}

impl ChildFormState {
    fn remove_error_for(&self, child_id: &str) -> Option<&str> {
        self.remove_error.as_ref().filter(|(id, _)| id == child_id).map(|(_, error)| error.as_str())
    }
}

has_page!(DataPage);

async fn data_page_model(
    state: &AppState,
    guardian: &SignedInGuardian,
    page: PageContext,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    data_page_with(state, guardian, page, None, error, ChildFormState::default(), status).await
}

async fn data_page_with(
    state: &AppState,
    guardian: &SignedInGuardian,
    page: PageContext,
    notice: Option<String>,
    error: Option<String>,
    child: ChildFormState,
    status: StatusCode,
) -> PageResult {
    let calendar = calendar_of(guardian);
    let t = &page.t;
    let children = crate::services::children::children_of(state, &guardian.caller(), guardian.family_id())
        .await
        .map_err(api(&page))?;
    let exports =
        crate::services::exports::list(state, &guardian.caller(), guardian.family_id()).await.map_err(api(&page))?;
    let mut services: Vec<(String, String)> = Vec::new();
    for view in subscriptions::family_subscriptions(state, &guardian.caller(), guardian.family_id())
        .await
        .map_err(api(&page))?
    {
        if let Ok(plan_id) = PlanId::parse(&view.plan_id)
            && let Ok(plan) = plans::plan(state, &plan_id, t.locale).await
            && !services.iter().any(|(s, _)| *s == plan.service)
        {
            let name = if t.locale == Locale::ZhCn { plan.name.zh_cn } else { plan.name.en };
            services.push((plan.service.clone(), t.arg("data-delete-service", "service", name)));
        }
    }
    let exports = exports
        .iter()
        .map(|e| ExportRow {
            made: local_time(&calendar, e.created_at),
            status: match (e.status.as_str(), e.expires_at) {
                ("ready", Some(until)) => t.arg("data-export-status-ready", "until", local_time(&calendar, until)),
                (status, _) => t.get(&format!("data-export-status-{status}")),
            },
            href: (e.status == "ready").then(|| format!("/data/exports/{}", e.id)),
        })
        .collect();
    let children = children.iter().filter(|c| !c.name.is_empty()).map(|c| (c.id.clone(), c.name.clone())).collect();
    let form_key = crate::portal::once::form_key();
    let export_days = state.config.export_days;
    Ok(render(status, DataPage { page, children, exports, export_days, services, notice, error, child, form_key }))
}

#[derive(Deserialize)]
pub struct DataQuery {
    child: Option<String>,
}

pub async fn data(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Query(query): Query<DataQuery>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/data")?;
    let notice = (query.child.as_deref() == Some("added")).then(|| page.t.get("data-child-added"));
    data_page_with(&state, &guardian, page, notice, None, ChildFormState::default(), StatusCode::OK).await
}

pub async fn request_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/data")?;
    page.check_csrf(&form.csrf)?;
    crate::services::exports::request(&state, &guardian.caller(), guardian.family_id()).await.map_err(api(&page))?;
    Ok(see_other("/data"))
}

pub async fn download_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/data")?;
    let export = crate::services::exports::get(&state, &guardian.caller(), &id).await.map_err(api(&page))?;
    crate::api::children::serve_export(&state, &export).map_err(api(&page))
}

#[derive(Deserialize)]
pub struct ChildForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    form_key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    birth_date: String,
    consent: Option<String>,
}

/// A guardian adds a child, consenting (an unticked box they tick) to the
/// processing the terms describe; a double-click adds one child.
pub async fn add_child(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Form(form): Form<ChildForm>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/data")?;
    page.check_csrf(&form.csrf)?;
    let family_id = guardian.family_id().clone();
    let fields = format!("{}\n{}\n{}", form.name, form.birth_date, form.consent.is_some());
    crate::portal::once::once(&state, &family_id, "add_child", &form.form_key, &fields, || async {
        let input = crate::services::children::ChildInput {
            name: form.name.clone(),
            birth_date: form.birth_date.clone(),
            consent: form.consent.is_some(),
        };
        match crate::services::children::add_child(&state, &guardian.caller(), &family_id, input).await {
            Ok(_) => Ok(see_other("/data?child=added")),
            Err(error) if error.shown() == Shown::Inline => {
                let message = messages::render(error.code, page.t.locale, &error.details);
                let child = ChildFormState {
                    name: form.name.clone(),
                    birth_date: form.birth_date.clone(),
                    error: Some(message),
                    remove_error: None,
                };
                data_page_with(&state, &guardian, page.clone(), None, None, child, error.status).await
            }
            Err(error) => Err(PortalError::api(page.clone(), error)),
        }
    })
    .await
}

#[derive(Deserialize)]
pub struct RemoveChildForm {
    csrf: String,
    confirm: Option<String>,
}

/// A guardian removes a child from the account (withdrawing consent): the
/// child's data is deleted, with a certificate, after a deliberate tick.
pub async fn remove_child(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    Form(form): Form<RemoveChildForm>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/data")?;
    page.check_csrf(&form.csrf)?;
    if form.confirm.is_none() {
        let error = page.t.get("data-child-remove-confirm-required");
        let child = ChildFormState { remove_error: Some((id, error)), ..ChildFormState::default() };
        return data_page_with(&state, &guardian, page, None, None, child, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let input = crate::services::deletion::DeletionInput { service: None, child_id: Some(id) };
    let done = crate::services::deletion::request(&state, &guardian.caller(), guardian.family_id(), input)
        .await
        .map_err(api(&page))?;
    let certificate =
        done.certificate.ok_or_else(|| PortalError::api(page.clone(), ApiError::internal("no certificate")))?;
    Ok(see_other(&format!("/receipts/{}?deleted=1", certificate.id)))
}

#[derive(Deserialize)]
pub struct DeletionForm {
    csrf: String,
    scope: String,
    confirm: Option<String>,
}

pub async fn request_deletion(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Form(form): Form<DeletionForm>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/data")?;
    page.check_csrf(&form.csrf)?;
    if form.confirm.is_none() {
        let error = page.t.get("data-delete-confirm-required");
        return data_page_model(&state, &guardian, page, Some(error), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let service = (form.scope != "*").then_some(form.scope);
    let input = crate::services::deletion::DeletionInput { service, child_id: None };
    let done = crate::services::deletion::request(&state, &guardian.caller(), guardian.family_id(), input)
        .await
        .map_err(api(&page))?;
    let certificate =
        done.certificate.ok_or_else(|| PortalError::api(page.clone(), ApiError::internal("no certificate")))?;
    // A closed account has no session any more: the certificate opens by
    // its link (the one its email carries), which works without signing in,
    // now and on every reload.
    if certificate.body["account_closed"] == true {
        let link = state.keys.receipt_link(&certificate.id);
        let response = see_other(&format!("{link}?deleted=1"));
        return Ok(with_cookie(response, session::set_cookie(&headers, SESSION_COOKIE, "", 0)));
    }
    Ok(see_other(&format!("/receipts/{}?deleted=1", certificate.id)))
}
