//! The staff console: server-rendered pages for support staff on the same
//! services as the API — find a family, see its whole timeline, cancel on a
//! guardian's behalf after a one-time code (or a supervisor's override),
//! register a written notice with its scan, and the day's queue of notices.
//! Its own session cookie, CSRF on every form, every role checked by the
//! services exactly as on the API.

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use baobao_domain::Money;
use baobao_domain::calendar::Calendar;
use baobao_domain::ids::FamilyId;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::auth;
use crate::auth::Role;
use crate::error::{ApiError, Shown};
use crate::portal::page::{PageResult, PortalError, api, has_page, local_time, ok, render, see_other, with_cookie};
use crate::portal::pages::{
    LoginForm, NextQuery, OptionRow, STAFF_SIGN_IN, option_rows, sign_in_page, sign_in_with_form,
};
use crate::portal::session::{self, PageContext, STAFF_SESSION_COOKIE};
use crate::portal::staff::{Staff, StaffPage};
use crate::services::cancellations::{CancelInput, ReasonInput, WrittenNoticeInput};
use crate::services::evidence::EvidenceInput;
use crate::services::{accounts, cancellations, notices, plans, search, subscriptions, verification};
use crate::state::AppState;

fn utc() -> Calendar {
    Calendar::new("UTC").unwrap_or_else(|_| panic!("no UTC time zone"))
}

pub(super) fn calendar(zone: &str) -> Calendar {
    Calendar::new(zone).unwrap_or_else(|_| utc())
}

// ------------------------------------------------------------------ sign in

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> PageResult {
    let page = session::staff_context(&headers, "/console/login", None, &state.config.provider);
    sign_in_page(page, &STAFF_SIGN_IN, query.next.as_deref())
}

pub async fn login(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<LoginForm>) -> PageResult {
    let page = session::staff_context(&headers, "/console/login", None, &state.config.provider);
    sign_in_with_form(&state, &headers, page, &STAFF_SIGN_IN, form).await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: StaffPage,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    page.check_csrf(&form.csrf)?;
    crate::auth::sign_out(&state, &staff.token).await.map_err(api(&page))?;
    Ok(with_cookie(see_other("/console/login"), session::set_cookie(&headers, STAFF_SESSION_COOKIE, "", 0)))
}

// ------------------------------------------------------------------ search

pub struct FamilyRow {
    pub id: String,
    pub guardians: String,
    pub subscriptions: usize,
}

pub struct NoticeRow {
    pub registered: String,
    pub received: String,
    pub sender: String,
    pub tracking: String,
    pub family_link: String,
    pub refunded: i64,
    pub evidence_link: String,
}

#[derive(Template)]
#[template(path = "console_home.html")]
struct HomePage {
    page: PageContext,
    email: String,
    searched: bool,
    families: Vec<FamilyRow>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    email: Option<String>,
    q: Option<String>,
}

pub async fn home(State(state): State<AppState>, signed_in: StaffPage, Query(query): Query<SearchQuery>) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let email = query.q.or(query.email).unwrap_or_default().trim().to_owned();
    let (families, error) = if email.is_empty() {
        (Vec::new(), None)
    } else {
        match search::find_families(&state, &staff.caller, &email).await {
            Ok(found) => (
                found
                    .iter()
                    .map(|f| FamilyRow {
                        id: f.id.clone(),
                        guardians: f
                            .guardians
                            .iter()
                            .map(|g| match &g.phone {
                                Some(phone) => format!("{} <{}> · {phone}", g.name, g.email),
                                None => format!("{} <{}>", g.name, g.email),
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        subscriptions: f.subscriptions.len(),
                    })
                    .collect(),
                None,
            ),
            Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
                (Vec::new(), Some(crate::messages::render(e.code, page.t.locale, &e.details)))
            }
            Err(e) => return Err(PortalError::api(page, e)),
        }
    };
    ok(HomePage { searched: !email.is_empty(), email, families, error, page })
}

// ------------------------------------------------------------------ a family's timeline

pub struct SubscriptionRow {
    pub id: String,
    pub plan: String,
    pub status: String,
    pub period: String,
    pub next: String,
    pub cancellable: bool,
}

pub struct EventRow {
    /// For ordering the timeline; not shown.
    pub when: jiff::Timestamp,
    /// Which record it is: a request, the ledger, a receipt, a message, a notice.
    pub source: String,
    pub at: String,
    pub what: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console_family.html")]
struct FamilyPage {
    page: PageContext,
    family_id: String,
    guardians: Vec<String>,
    subscriptions: Vec<SubscriptionRow>,
    /// Requests, ledger, receipts, messages and notices, each with its title.
    /// Everything on record for the family, oldest first.
    timeline: Vec<EventRow>,
    notice: Option<String>,
    can_file: bool,
    /// The family's complaints, newest first, and whether this staff
    /// member may file one for the family.
    disputes: Vec<crate::portal::disputes_page::DisputeRow>,
    can_complain: bool,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

/// Who did something, in the reader's words: "the guardian (gdn_…)",
/// "support agent (stf_…)", "the system". An actor this page does not know
/// reads as it was recorded.
pub(super) fn actor_text(t: &crate::i18n::T, actor: &str) -> String {
    let mut parts = actor.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("guardian"), Some(id), None) => t.arg("console-actor-guardian", "id", id),
        (Some("staff"), Some(role), Some(id)) => {
            t.args("console-actor-staff", &[("role", t.get(&format!("console-role-{role}"))), ("id", id.to_owned())])
        }
        (Some("integrator"), Some(service), Some(_)) => t.arg("console-actor-integrator", "service", service),
        (Some(known @ ("system" | "operator" | "billing" | "gateway")), None, None) => {
            t.get(&format!("console-actor-{known}"))
        }
        _ => actor.to_owned(),
    }
}

/// One timeline of every section's rows, in time order; rows of the same
/// instant keep their section's order (requests, ledger, receipts, …).
fn timeline(sections: impl Iterator<Item = (String, Vec<EventRow>)>) -> Vec<EventRow> {
    let mut rows: Vec<EventRow> = sections
        .flat_map(|(source, rows)| rows.into_iter().map(move |row| EventRow { source: source.clone(), ..row }))
        .collect();
    rows.sort_by_key(|row| row.when);
    rows
}

/// A family's records as staff read them, one titled section each: the
/// ledger, the receipts, the messages sent, the written notices.
async fn history(
    state: &AppState,
    staff: &Staff,
    page: &PageContext,
    family_id: &FamilyId,
    zone: &Calendar,
) -> Result<Vec<(String, Vec<EventRow>)>, PortalError> {
    let t = &page.t;
    let statement = crate::services::money::statement(state, family_id).await.map_err(api(page))?;
    let ledger: Vec<EventRow> = statement
        .iter()
        .map(|e| EventRow {
            when: e.created_at,
            source: String::new(),
            at: local_time(zone, e.created_at),
            what: format!(
                "{} {}",
                t.get(&format!("kind-{}", e.kind)),
                crate::portal::pages::money(&e.amount, t.locale)
            ),
            detail: t.ledger_note(&e.note),
        })
        .collect();
    let documents = crate::services::receipts::family_receipts(state, &staff.caller, family_id, auth::STAFF_READERS)
        .await
        .map_err(api(page))?;
    let receipts: Vec<EventRow> = documents
        .iter()
        .filter_map(|d| d.signed_body().ok().map(|signed| (d, signed)))
        .map(|(d, signed)| EventRow {
            when: signed.issued_at,
            source: String::new(),
            at: local_time(zone, signed.issued_at),
            what: signed.receipt_number,
            detail: t.get(&format!("receipt-kind-{}", d.kind)),
        })
        .collect();
    let outbox = crate::services::outbox::messages_of(state, &staff.caller, family_id).await.map_err(api(page))?;
    let messages: Vec<EventRow> = outbox
        .iter()
        .map(|m| EventRow {
            when: m.created_at,
            source: String::new(),
            at: local_time(zone, m.created_at),
            what: t.get(&format!("console-template-{}", m.template)),
            detail: t.args(
                "console-message-detail",
                &[
                    ("status", t.get(&format!("console-message-status-{}", m.status))),
                    ("attempts", m.attempts.to_string()),
                    ("error", m.last_error.clone().unwrap_or_default()),
                ],
            ),
        })
        .collect();
    let notices: Vec<EventRow> = notices::of_family(state, &staff.caller, family_id)
        .await
        .map_err(api(page))?
        .iter()
        .map(|n| EventRow {
            when: n.received_at,
            source: String::new(),
            at: local_time(zone, n.received_at),
            what: format!("{} {}", n.sender, n.tracking_number.clone().unwrap_or_default()),
            detail: format!("SHA-256 {}", n.evidence_sha256),
        })
        .collect();
    Ok(vec![
        (t.get("console-ledger"), ledger),
        (t.get("console-receipts"), receipts),
        (t.get("console-messages"), messages),
        (t.get("console-notices"), notices),
    ])
}

pub async fn family(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let family_id = FamilyId::parse(&id).map_err(|_| PortalError::api(page.clone(), ApiError::not_found("family")))?;
    let family = accounts::family(&state, &staff.caller, &family_id).await.map_err(api(&page))?;
    let zone = calendar(&family.time_zone);
    let t = &page.t;
    let views = subscriptions::family_subscriptions(&state, &staff.caller, &family_id).await.map_err(api(&page))?;
    let mut subscriptions = Vec::new();
    let mut requests = Vec::new();
    for view in &views {
        let plan_id = baobao_domain::ids::PlanId::parse(&view.plan_id)
            .map_err(|_| PortalError::api(page.clone(), ApiError::not_found("plan")))?;
        let plan = plans::plan(&state, &plan_id, t.locale).await.map_err(api(&page))?;
        let name = if t.locale == baobao_domain::Locale::ZhCn { plan.name.zh_cn } else { plan.name.en };
        subscriptions.push(SubscriptionRow {
            id: view.id.clone(),
            plan: name.clone(),
            status: t.get(&format!("status-{}", view.status)),
            period: format!(
                "{} – {}",
                local_time(&zone, view.current_period.start),
                local_time(&zone, view.current_period.end)
            ),
            next: view.next_renewal_at.map(|at| local_time(&zone, at)).unwrap_or_default(),
            cancellable: view.can_cancel,
        });
        for c in cancellations::of_subscription(&state, &staff.caller, &view.id).await.map_err(api(&page))? {
            requests.push(EventRow {
                when: c.received_at,
                source: String::new(),
                at: local_time(&zone, c.received_at),
                what: format!(
                    "{} · {} · {}",
                    name,
                    t.get(&format!("console-channel-{}", c.channel.as_str())),
                    t.get(&format!("option-{}", c.option.as_str()))
                ),
                detail: t.args(
                    "console-request-detail",
                    &[
                        ("status", t.get(&format!("console-request-status-{}", c.status.as_str()))),
                        ("effective", local_time(&zone, c.effective_at)),
                        ("actor", actor_text(t, &c.actor)),
                    ],
                ),
            });
        }
    }
    let history = history(&state, &staff, &page, &family_id, &zone).await?;
    let notice = query.done.map(|receipt| t.arg("console-filed", "number", receipt));
    let disputes = crate::services::disputes::of_family(&state, &staff.caller, &family_id).await.map_err(api(&page))?;
    let disputes = crate::portal::disputes_page::rows(t, &zone, &disputes, "/console/disputes");
    ok(FamilyPage {
        disputes,
        can_complain: crate::services::disputes::DISPUTE_HANDLERS.contains(&staff.role),
        family_id: family.id,
        guardians: family
            .guardians
            .iter()
            .map(|g| {
                let phone = g.phone.as_deref().map(|p| format!(" · {p}")).unwrap_or_default();
                format!("{} <{}>{phone} · {}", g.name, g.email, t.get(&format!("console-locale-{}", g.locale)))
            })
            .collect(),
        subscriptions,
        timeline: timeline(std::iter::once((t.get("console-requests"), requests)).chain(history)),
        notice,
        can_file: auth::STAFF_FILERS.contains(&staff.role),
        page,
    })
}

// ------------------------------------------------------------------ support: cancel on a guardian's behalf

#[derive(Template)]
#[template(path = "console_cancel.html")]
struct CancelPage {
    page: PageContext,
    subscription_id: String,
    family_id: String,
    quote_id: String,
    options: Vec<OptionRow>,
    supervisor: bool,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SentQuery {
    sent: Option<String>,
}

async fn cancel_model(
    state: &AppState,
    staff: &Staff,
    page: PageContext,
    id: &str,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    // Every staff role may read a quote; only those who file cancellations get this page.
    if !auth::STAFF_FILERS.contains(&staff.role) {
        return Err(PortalError::api(page, ApiError::not_found("subscription")));
    }
    let view = subscriptions::get_subscription(state, &staff.caller, id).await.map_err(api(&page))?;
    let family =
        FamilyId::parse(&view.family_id).map_err(|_| PortalError::api(page.clone(), ApiError::not_found("family")))?;
    let zone = calendar(&accounts::family(state, &staff.caller, &family).await.map_err(api(&page))?.time_zone);
    let quote =
        cancellations::cancellation_quote(state, &staff.caller, id, None, page.t.locale).await.map_err(api(&page))?;
    let options = option_rows(&page.t, &zone, &quote);
    Ok(render(
        status,
        CancelPage {
            subscription_id: id.to_owned(),
            family_id: view.family_id,
            quote_id: quote.id,
            options,
            supervisor: staff.role == Role::Supervisor,
            notice,
            error,
            page,
        },
    ))
}

pub async fn cancel_page(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
    Query(query): Query<SentQuery>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let notice = query.sent.map(|to| page.t.arg("console-code-sent", "to", to));
    cancel_model(&state, &staff, page, &id, notice, None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    subscription_id: String,
}

pub async fn send_code(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
    Form(form): Form<CodeForm>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    page.check_csrf(&form.csrf)?;
    let family_id = FamilyId::parse(&id).map_err(|_| PortalError::api(page.clone(), ApiError::not_found("family")))?;
    match verification::send_code(&state, &staff.caller, &family_id).await {
        Ok(sent) => Ok(see_other(&format!(
            "/console/subscriptions/{}/cancel?sent={}",
            session::url_escape(&form.subscription_id),
            session::url_escape(&sent.sent_to.join(", "))
        ))),
        Err(error) if error.shown() == Shown::Inline => {
            let message = crate::messages::render(error.code, page.t.locale, &error.details);
            let status = error.status;
            cancel_model(&state, &staff, page, &form.subscription_id, None, Some(message), status).await
        }
        Err(error) => Err(PortalError::api(page, error)),
    }
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
    quote_id: String,
    option: Option<String>,
    #[serde(default)]
    verification_code: String,
    #[serde(default)]
    override_reason: String,
    #[serde(default)]
    reason: String,
}

pub async fn cancel(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    page.check_csrf(&form.csrf)?;
    let some = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let input = CancelInput {
        option: form.option.clone().unwrap_or_default(),
        quote_id: some(&form.quote_id),
        reason: some(&form.reason).map(|category| ReasonInput { category, text: None }),
        verification_code: some(&form.verification_code),
        verification_override_reason: some(&form.override_reason),
    };
    match cancellations::cancel(&state, &staff.caller, &id, input).await {
        Ok(filed) => {
            let family =
                subscriptions::get_subscription(&state, &staff.caller, &id).await.map_err(api(&page))?.family_id;
            Ok(see_other(&format!(
                "/console/families/{family}?done={}",
                session::url_escape(filed.receipt.body["receipt_number"].as_str().unwrap_or_default())
            )))
        }
        Err(error) if error.shown() == Shown::Inline => {
            let message = crate::messages::render(error.code, page.t.locale, &error.details);
            let status = error.status;
            cancel_model(&state, &staff, page, &id, None, Some(message), status).await
        }
        Err(error) => Err(PortalError::api(page, error)),
    }
}

// ------------------------------------------------------------------ written notices

#[derive(Template)]
#[template(path = "console_notice.html")]
struct NoticeFormPage {
    page: PageContext,
    subscription_id: String,
    today: String,
    error: Option<String>,
}

pub async fn notice_page(State(state): State<AppState>, signed_in: StaffPage, Path(id): Path<String>) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    subscriptions::get_subscription(&state, &staff.caller, &id).await.map_err(api(&page))?;
    let today = utc().date_text(state.clock.now());
    ok(NoticeFormPage { page, subscription_id: id, today, error: None })
}

/// The form is multipart (it carries the scan); read every field, the file
/// at most the evidence limit.
pub async fn register_notice(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
    multipart: Multipart,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let today = utc().date_text(state.clock.now());
    let (fields, file) = match crate::portal::page::form_with_files(multipart, 1).await {
        Ok((fields, mut files)) => (fields, files.pop()),
        Err(error) => {
            let message = crate::messages::render(error.code, page.t.locale, &error.details);
            return Ok(render(error.status, NoticeFormPage { page, subscription_id: id, today, error: Some(message) }));
        }
    };
    page.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let field = |name: &str| fields.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let Some((content_type, bytes)) = file else {
        let message = page.t.get("console-notice-no-file");
        return Ok(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            NoticeFormPage { page, subscription_id: id, today, error: Some(message) },
        ));
    };
    let input = WrittenNoticeInput {
        subscription_id: id.clone(),
        received_on: field("received_on"),
        received_at: None,
        sender: field("sender").unwrap_or_default(),
        tracking_number: field("tracking_number"),
        option: field("option"),
        reason: None,
        evidence: EvidenceInput { content_type, content_base64: STANDARD.encode(bytes) },
    };
    match cancellations::register_written_notice(&state, &staff.caller, input).await {
        Ok(registered) => Ok(see_other(&format!(
            "/console/families/{}?done={}",
            registered.written_notice.family_id,
            session::url_escape(registered.receipt.body["receipt_number"].as_str().unwrap_or_default())
        ))),
        Err(error) if error.shown() == Shown::Inline => {
            let message = crate::messages::render(error.code, page.t.locale, &error.details);
            Ok(render(error.status, NoticeFormPage { page, subscription_id: id, today, error: Some(message) }))
        }
        Err(error) => Err(PortalError::api(page, error)),
    }
}

#[derive(Template)]
#[template(path = "console_notices.html")]
struct QueuePage {
    page: PageContext,
    date: String,
    notices: Vec<NoticeRow>,
}

#[derive(Deserialize)]
pub struct DateQuery {
    date: Option<String>,
}

pub async fn notices(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Query(query): Query<DateQuery>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let (date, notices) =
        notices::notices_registered_on(&state, &staff.caller, query.date.as_deref()).await.map_err(api(&page))?;
    let zone = calendar(&state.config.staff_time_zone);
    let mut rows = Vec::new();
    for n in &notices {
        rows.push(NoticeRow {
            registered: local_time(&zone, n.registered_at),
            received: local_time(&zone, n.received_at),
            sender: n.sender.clone(),
            tracking: n.tracking_number.clone().unwrap_or_default(),
            family_link: format!("/console/families/{}", n.family_id),
            refunded: n.late_charges_refunded,
            evidence_link: format!("/v1/written-notices/{}/evidence", n.id),
        });
    }
    ok(QueuePage { page, date: date.to_string(), notices: rows })
}

// ------------------------------------------------------------------ webhooks

pub struct EndpointRow {
    pub id: String,
    pub service: String,
    pub url: String,
    pub deliveries: Vec<EventRow>,
}

#[derive(Template)]
#[template(path = "console_webhooks.html")]
struct WebhooksPage {
    page: PageContext,
    endpoints: Vec<EndpointRow>,
}

pub async fn webhooks(State(state): State<AppState>, signed_in: StaffPage) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let zone = utc();
    let mut endpoints = Vec::new();
    for endpoint in crate::services::webhooks::endpoints(&state, &staff.caller).await.map_err(api(&page))? {
        let deliveries = crate::services::webhooks::deliveries(&state, &staff.caller, &endpoint.id)
            .await
            .map_err(api(&page))?
            .iter()
            .take(50)
            .map(|d| EventRow {
                when: d.created_at,
                source: String::new(),
                at: local_time(&zone, d.created_at),
                what: d.event_type.clone(),
                detail: page.t.args(
                    "console-message-detail",
                    &[
                        ("status", d.status.clone()),
                        ("attempts", d.attempts.to_string()),
                        ("error", d.last_error.clone().unwrap_or_default()),
                    ],
                ),
            })
            .collect();
        endpoints.push(EndpointRow { id: endpoint.id, service: endpoint.service, url: endpoint.url, deliveries });
    }
    ok(WebhooksPage { page, endpoints })
}

#[derive(Template)]
#[template(path = "console_finance.html")]
struct FinancePage {
    page: PageContext,
    rows: Vec<FailedRow>,
}

pub struct FailedRow {
    pub at: String,
    pub family_id: String,
    pub what: String,
    pub amount: String,
    pub detail: String,
}

/// Finance's queue: refunds and fees the gateway refused at every attempt.
pub async fn finance(State(state): State<AppState>, signed_in: StaffPage) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let zone = utc();
    let rows = crate::services::money::failed_payments(&state, &staff.caller)
        .await
        .map_err(api(&page))?
        .into_iter()
        .map(|f| FailedRow {
            at: f.failed_at.map(|t| local_time(&zone, t)).unwrap_or_default(),
            family_id: f.family_id,
            what: page.t.get(&format!("kind-{}", f.kind)),
            amount: baobao_domain::money::Currency::parse(&f.amount.currency)
                .map(|currency| Money { amount_minor: f.amount.amount_minor, currency }.display_in(page.t.locale))
                .unwrap_or_default(),
            detail: page.t.args(
                "console-failed-detail",
                &[("attempts", f.attempts.to_string()), ("error", f.last_error.unwrap_or_default())],
            ),
        })
        .collect();
    ok(FinancePage { page, rows })
}

has_page!(HomePage, FamilyPage, CancelPage, NoticeFormPage, QueuePage, WebhooksPage, FinancePage);
