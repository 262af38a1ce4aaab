//! Complaints in the portal and the console: a parent files one from any
//! subscription, receipt or statement page (or, once the account is closed,
//! from `/complain` with a kept receipt and a code), follows its timeline,
//! writes on it, asks for a higher level, withdraws it and downloads its
//! dossier; staff answer from a queue ordered by deadline, decide, and
//! count the month's disputes for the regulator.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use baobao_domain::calendar::Calendar;
use baobao_domain::dispute::{DisputeKind, DisputeLevel};
use baobao_domain::ids::FamilyId;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::error::{ApiError, Shown};
use crate::i18n::T;
use crate::portal::page::{PageResult, PortalError, api, form_with_files, has_page, local_time, ok, render, see_other};
use crate::portal::pages::calendar_in;
use crate::portal::session::{self, MaybeGuardian, PageContext};
use crate::portal::staff::{Staff, StaffPage};
use crate::services::disputes::{
    self, DISPUTE_EVIDENCE_FILES_MAX, DisputeDetail, DisputeInput, DisputeView, EscalateInput, Filer, FilingCodeInput,
    MessageInput, ReceiptHolderDispute, ReceiptHolderDisputeInput, ResolveInput, TimelineEntryView, Via,
};
use crate::services::evidence::EvidenceInput;
use crate::state::AppState;

fn require(
    guardian: MaybeGuardian,
    headers: &HeaderMap,
    path: &str,
) -> Result<(session::SignedInGuardian, PageContext), PortalError> {
    let MaybeGuardian(guardian, provider) = guardian;
    let guardian = guardian.ok_or_else(|| PortalError::sign_in(path.to_owned()))?;
    let page = session::context(headers, path, Some(&guardian), &provider);
    Ok((guardian, page))
}

fn evidence_inputs(files: Vec<(String, Vec<u8>)>) -> Vec<EvidenceInput> {
    files
        .into_iter()
        .map(|(content_type, bytes)| EvidenceInput { content_type, content_base64: STANDARD.encode(bytes) })
        .collect()
}

/// A form's field, trimmed; `None` when empty.
fn field(fields: &std::collections::HashMap<String, String>, name: &str) -> Option<String> {
    fields.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A refused form is shown again with the reason, in the reader's words.
fn inline(page: &PageContext, error: &ApiError) -> Option<String> {
    (error.shown() == Shown::Inline).then(|| crate::messages::render(error.code, page.t.locale, &error.details))
}

// ------------------------------------------------------------ the list

pub struct DisputeRow {
    pub href: String,
    pub kind: String,
    pub opened: String,
    pub state: String,
}

fn state_words(t: &T, d: &DisputeView) -> String {
    match &d.outcome {
        Some(outcome) => t.arg("dispute-state-closed", "outcome", t.get(&format!("dispute-outcome-{outcome}"))),
        None => t.arg("dispute-state-open", "level", t.get(&format!("dispute-level-{}", d.level))),
    }
}

pub fn rows(t: &T, calendar: &Calendar, disputes: &[DisputeView], base: &str) -> Vec<DisputeRow> {
    disputes
        .iter()
        .map(|d| DisputeRow {
            href: format!("{base}/{}", d.id),
            kind: t.get(&format!("dispute-kind-{}", d.kind)),
            opened: local_time(calendar, d.opened_at),
            state: state_words(t, d),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "disputes.html")]
struct ListPage {
    page: PageContext,
    rows: Vec<DisputeRow>,
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, guardian: MaybeGuardian) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/disputes")?;
    let disputes = disputes::of_family(&state, &guardian.caller(), guardian.family_id()).await.map_err(api(&page))?;
    let calendar = calendar_in(&guardian.guardian.time_zone);
    let rows = rows(&page.t, &calendar, &disputes, "/disputes");
    ok(ListPage { page, rows })
}

// ------------------------------------------------------------ filing

#[derive(Clone, Debug, Default, Deserialize)]
pub struct AboutQuery {
    pub subscription_id: Option<String>,
    pub ledger_entry_id: Option<String>,
    pub receipt: Option<String>,
    pub kind: Option<String>,
}

pub struct KindOption {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

fn kind_options(t: &T, selected: Option<&str>) -> Vec<KindOption> {
    DisputeKind::ALL
        .iter()
        .map(|k| KindOption {
            value: k.as_str(),
            label: t.get(&format!("dispute-kind-{}", k.as_str())),
            selected: Some(k.as_str()) == selected,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "dispute_new.html")]
struct NewPage {
    page: PageContext,
    action: String,
    kinds: Vec<KindOption>,
    about: AboutQuery,
    /// What the complaint is about, in words (the receipt's number, …).
    about_words: Option<String>,
    files_max: usize,
    error: Option<String>,
    /// Staff filing for a guardian (the form says so).
    for_family: Option<String>,
}

fn about_words(t: &T, about: &AboutQuery) -> Option<String> {
    if let Some(number) = &about.receipt {
        return Some(t.arg("dispute-about-receipt", "number", number.clone()));
    }
    if about.ledger_entry_id.is_some() {
        return Some(t.get("dispute-about-entry"));
    }
    about.subscription_id.as_ref().map(|_| t.get("dispute-about-subscription"))
}

pub async fn new_page(headers: HeaderMap, guardian: MaybeGuardian, Query(about): Query<AboutQuery>) -> PageResult {
    let (_, page) = require(guardian, &headers, "/disputes/new")?;
    let kinds = kind_options(&page.t, about.kind.as_deref());
    let about_words = about_words(&page.t, &about);
    ok(NewPage {
        page,
        action: "/disputes".to_owned(),
        kinds,
        about,
        about_words,
        files_max: DISPUTE_EVIDENCE_FILES_MAX,
        error: None,
        for_family: None,
    })
}

/// The complaint a filled-in form describes.
fn input_of(fields: &std::collections::HashMap<String, String>, files: Vec<(String, Vec<u8>)>) -> DisputeInput {
    DisputeInput {
        kind: field(fields, "kind").unwrap_or_default(),
        family_id: field(fields, "family_id"),
        subscription_id: field(fields, "subscription_id"),
        ledger_entry_id: field(fields, "ledger_entry_id"),
        cancellation_id: None,
        receipt_number: field(fields, "receipt_number"),
        tracking_number: field(fields, "tracking_number"),
        description: fields.get("description").cloned().unwrap_or_default(),
        evidence: evidence_inputs(files),
        forwarded_by: field(fields, "forwarded_by"),
    }
}

fn about_of(fields: &std::collections::HashMap<String, String>) -> AboutQuery {
    AboutQuery {
        subscription_id: field(fields, "subscription_id"),
        ledger_entry_id: field(fields, "ledger_entry_id"),
        receipt: field(fields, "receipt_number"),
        kind: field(fields, "kind"),
    }
}

pub async fn file(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    multipart: Multipart,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, "/disputes/new")?;
    let again = |page: PageContext, about: AboutQuery, message: String, status: StatusCode| {
        let kinds = kind_options(&page.t, about.kind.as_deref());
        let about_words = about_words(&page.t, &about);
        Ok(render(
            status,
            NewPage {
                page,
                action: "/disputes".to_owned(),
                kinds,
                about,
                about_words,
                files_max: DISPUTE_EVIDENCE_FILES_MAX,
                error: Some(message),
                for_family: None,
            },
        ))
    };
    let (fields, files) = match form_with_files(multipart, DISPUTE_EVIDENCE_FILES_MAX).await {
        Ok(read) => read,
        Err(error) => {
            let message = crate::messages::render(error.code, page.t.locale, &error.details);
            return again(page, AboutQuery::default(), message, error.status);
        }
    };
    page.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let about = about_of(&fields);
    let caller = guardian.caller();
    match disputes::file(&state, Filer::Caller(&caller), Via::Portal, input_of(&fields, files), None).await {
        Ok(detail) => Ok(see_other(&format!("/disputes/{}?new=1", detail.dispute.id))),
        Err(error) => match inline(&page, &error) {
            Some(message) => again(page, about, message, error.status),
            None => Err(PortalError::api(page, error)),
        },
    }
}

// ------------------------------------------------------------ one dispute

pub struct TimelineRow {
    pub when: String,
    pub who: String,
    pub what: String,
    pub lines: Vec<String>,
    pub text: String,
}

pub struct EvidenceRow {
    pub name: String,
    pub href: Option<String>,
}

/// What a dispute's page can do, for whom.
#[derive(Default)]
struct Actions {
    /// Where messages go (with files), if the reader may write.
    message: Option<String>,
    escalate: Option<String>,
    /// The guardian's withdrawal.
    withdraw: Option<String>,
    /// Staff's decision.
    resolve: Option<String>,
    evidence_base: Option<String>,
}

#[derive(Template)]
#[template(path = "dispute.html")]
struct DetailPage {
    page: PageContext,
    title: String,
    rows: Vec<(String, String)>,
    description: String,
    timeline: Vec<TimelineRow>,
    evidence: Vec<EvidenceRow>,
    dossier_href: String,
    receipt_href: Option<String>,
    message_action: Option<String>,
    escalate_action: Option<String>,
    withdraw_action: Option<String>,
    resolve_action: Option<String>,
    files_max: usize,
    notice: Option<String>,
    error: Option<String>,
    /// Read by a guardian (their own words are "you").
    for_guardian: bool,
}

has_page!(ListPage, NewPage, DetailPage, ComplainPage, QueuePage, ReportPage);

/// Who wrote a step, in the reader's words.
fn who(t: &T, actor: &str, for_guardian: bool) -> String {
    let mut parts = actor.split(':');
    match (parts.next(), parts.next()) {
        (Some("guardian" | "receipt_holder"), _) if for_guardian => t.get("dispute-actor-you"),
        (Some("guardian" | "receipt_holder"), _) => t.get("dispute-actor-parent"),
        (Some("staff"), Some(role)) => t.get(&format!("console-role-{role}")),
        (Some("system"), _) => t.get("dispute-actor-records"),
        (Some("link_holder"), _) => t.get("dispute-actor-parent"),
        _ => actor.to_owned(),
    }
}

fn money_words(t: &T, value: &serde_json::Value) -> String {
    serde_json::from_value::<baobao_domain::Money>(value.clone()).map(|m| m.display_in(t.locale)).unwrap_or_default()
}

/// What a step's facts say, as sentences.
fn fact_lines(t: &T, calendar: &Calendar, entry: &TimelineEntryView) -> Vec<String> {
    let facts = &entry.facts;
    let at = |key: &str| {
        facts[key]
            .as_str()
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map(|i| local_time(calendar, i))
            .unwrap_or_default()
    };
    let text = |key: &str| facts[key].as_str().unwrap_or_default().to_owned();
    let count = |key: &str| facts[key].as_array().map(Vec::len).unwrap_or_default().to_string();
    match (entry.kind.as_str(), facts["checked"].as_str()) {
        ("records_checked", Some("charges_after_cancellation")) if count("late_charges") != "0" => {
            vec![
                t.args("dispute-fact-late-charges", &[("late", count("late_charges")), ("refunded", count("refunds"))]),
            ]
        }
        ("records_checked", Some("charges_after_cancellation")) if count("cancellations") == "0" => {
            vec![t.get("dispute-fact-no-cancellation")]
        }
        ("records_checked", Some("charges_after_cancellation")) => vec![t.get("dispute-fact-no-late-charge")],
        ("records_checked", Some("cancellation_request")) => vec![t.args(
            "dispute-fact-request",
            &[
                ("number", text("receipt_number")),
                ("status", t.get(&format!("console-request-status-{}", text("status")))),
                ("effective", at("effective_at")),
            ],
        )],
        ("records_checked", Some("written_notice")) if facts["tracking_number_registered"] == false => {
            vec![t.get("dispute-fact-letter-unknown")]
        }
        ("records_checked", Some("written_notice")) => vec![t.args(
            "dispute-fact-letter",
            &[("received", at("received_at")), ("number", text("receipt_number")), ("effective", at("effective_at"))],
        )],
        ("records_checked", Some("refunds")) => {
            let mut lines: Vec<String> = facts["refunds"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let status = r["status"].as_str().unwrap_or_default();
                    t.args(
                        &format!("dispute-fact-refund-{status}"),
                        &[
                            ("amount", money_words(t, &r["amount"])),
                            ("reference", r["gateway_reference"].as_str().unwrap_or_default().to_owned()),
                        ],
                    )
                })
                .collect();
            if facts["written"].as_array().is_some_and(|w| !w.is_empty()) {
                lines.push(t.get("dispute-fact-refund-written"));
            }
            if lines.is_empty() {
                lines.push(t.get("dispute-fact-none"));
            }
            lines
        }
        ("records_checked", Some("deletions")) if facts["status"] == "done" => vec![t.args(
            "dispute-fact-deletion-done",
            &[("done", at("completed_at")), ("number", text("certificate_number"))],
        )],
        ("records_checked", Some("deletions")) if facts["status"] == "pending" => {
            vec![t.arg("dispute-fact-deletion-pending", "due", at("due_at"))]
        }
        ("records_checked", Some("deletions")) if facts["deletion_id"].is_string() => {
            vec![t.get("dispute-fact-deletion-called_off")]
        }
        ("records_checked", _) => vec![t.get("dispute-fact-none")],
        ("refunded", _) => facts["refunds"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let amount = match (r["amount_minor"].as_i64(), r["currency"].as_str()) {
                    (Some(minor), Some(currency)) => baobao_domain::Currency::parse(currency)
                        .map(|c| baobao_domain::Money { amount_minor: minor, currency: c }.display_in(t.locale))
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                t.arg("dispute-fact-refunded", "amount", amount)
            })
            .collect(),
        ("escalated", _) => vec![t.args(
            "dispute-fact-escalated",
            &[("to", t.get(&format!("dispute-level-{}", text("to")))), ("due", at("resolution_due"))],
        )],
        ("deadline_missed", _) => vec![t.get(&format!("dispute-fact-missed-{}", text("deadline")))],
        ("resolved", _) => vec![t.get(&format!("dispute-outcome-{}", text("outcome")))],
        ("evidence_added", _) => vec![text("sha256")],
        _ => Vec::new(),
    }
}

fn detail_page(
    page: PageContext,
    detail: &DisputeDetail,
    calendar: &Calendar,
    actions: Actions,
    dossier_href: String,
    receipt_href: Option<String>,
    for_guardian: bool,
) -> DetailPage {
    let t = &page.t;
    let d = &detail.dispute;
    let number = detail.receipt.body["receipt_number"].as_str().unwrap_or_default().to_owned();
    let mut rows = vec![
        (t.get("dispute-kind"), t.get(&format!("dispute-kind-{}", d.kind))),
        (t.get("dispute-reference"), number.clone()),
        (t.get("dispute-opened"), local_time(calendar, d.opened_at)),
        (t.get("dispute-state"), state_words(t, d)),
    ];
    if d.status == "open" {
        if d.first_responded_at.is_none() {
            rows.push((t.get("dispute-first-response-due"), local_time(calendar, d.first_response_due)));
        }
        rows.push((t.get("dispute-resolution-due"), local_time(calendar, d.resolution_due)));
    }
    if d.deadlines_missed > 0 {
        rows.push((t.get("dispute-deadlines-missed"), d.deadlines_missed.to_string()));
    }
    if let Some(body) = &d.forwarded_by {
        rows.push((t.get("dispute-forwarded-by"), body.clone()));
    }
    let timeline = detail
        .timeline
        .iter()
        .map(|e| TimelineRow {
            when: local_time(calendar, e.at),
            who: who(t, &e.actor, for_guardian),
            what: t.get(&format!("dispute-event-{}", e.kind)),
            lines: fact_lines(t, calendar, e),
            // The filing's text is the description, shown once above.
            text: if e.kind == "filed" { String::new() } else { e.text.clone() },
        })
        .collect();
    let evidence = detail
        .evidence
        .iter()
        .map(|e| EvidenceRow {
            name: t.args(
                "dispute-evidence-file",
                &[("sha256", e.sha256.clone()), ("type", e.content_type.clone()), ("bytes", e.bytes.to_string())],
            ),
            href: match (&actions.evidence_base, e.removed) {
                (Some(base), false) => Some(format!("{base}/{}", e.sha256)),
                _ => None,
            },
        })
        .collect();
    DetailPage {
        title: t.arg("dispute-title", "number", number),
        rows,
        description: d.description.clone(),
        timeline,
        evidence,
        dossier_href,
        receipt_href,
        message_action: actions.message,
        escalate_action: actions.escalate.filter(|_| d.status == "open" && d.level != "legal"),
        withdraw_action: actions.withdraw.filter(|_| d.status == "open"),
        resolve_action: actions.resolve.filter(|_| d.status == "open"),
        files_max: DISPUTE_EVIDENCE_FILES_MAX,
        notice: None,
        error: None,
        for_guardian,
        page,
    }
    .with_open(d.status == "open")
}

impl DetailPage {
    /// A closed dispute takes no more messages.
    fn with_open(mut self, open: bool) -> DetailPage {
        if !open {
            self.message_action = None;
        }
        self
    }
}

#[derive(Deserialize)]
pub struct DetailQuery {
    new: Option<String>,
    done: Option<String>,
}

fn guardian_actions(id: &str) -> Actions {
    Actions {
        message: Some(format!("/disputes/{id}/messages")),
        escalate: Some(format!("/disputes/{id}/escalate")),
        withdraw: Some(format!("/disputes/{id}/withdraw")),
        resolve: None,
        evidence_base: Some(format!("/disputes/{id}/evidence")),
    }
}

async fn guardian_detail(
    state: &AppState,
    page: PageContext,
    guardian: &session::SignedInGuardian,
    id: &str,
) -> Result<DetailPage, PortalError> {
    let detail = disputes::get(state, &guardian.caller(), id).await.map_err(api(&page))?;
    let calendar = calendar_in(&guardian.guardian.time_zone);
    let receipt_href = Some(format!("/receipts/{}", detail.receipt.id));
    Ok(detail_page(
        page,
        &detail,
        &calendar,
        guardian_actions(id),
        format!("/disputes/{id}/dossier.zip"),
        receipt_href,
        true,
    ))
}

pub async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/disputes/{id}"))?;
    let notice = match (query.new.is_some(), query.done.as_deref()) {
        (true, _) => Some(page.t.get("dispute-filed-notice")),
        (false, Some("message")) => Some(page.t.get("dispute-message-notice")),
        (false, Some("escalated")) => Some(page.t.get("dispute-escalated-notice")),
        _ => None,
    };
    let mut shown = guardian_detail(&state, page, &guardian, &id).await?;
    shown.notice = notice;
    ok(shown)
}

pub async fn post_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    multipart: Multipart,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/disputes/{id}"))?;
    let result = match form_with_files(multipart, DISPUTE_EVIDENCE_FILES_MAX).await {
        Ok((fields, files)) => {
            page.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
            let input = MessageInput {
                text: fields.get("text").cloned().unwrap_or_default(),
                evidence: evidence_inputs(files),
            };
            disputes::post_message(&state, &guardian.caller(), &id, input).await.map(|_| ())
        }
        Err(error) => Err(error),
    };
    guardian_outcome(&state, page, &guardian, &id, result, "message").await
}

#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn escalate(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ReasonForm>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/disputes/{id}"))?;
    page.check_csrf(&form.csrf)?;
    let reason = if form.reason.trim().is_empty() { page.t.get("dispute-escalate-default") } else { form.reason };
    let result = disputes::escalate(&state, &guardian.caller(), &id, EscalateInput { reason }).await.map(|_| ());
    guardian_outcome(&state, page, &guardian, &id, result, "escalated").await
}

/// After a parent's form: their complaint's page with what was `done`,
/// or again with the reason it was refused.
async fn guardian_outcome(
    state: &AppState,
    page: PageContext,
    guardian: &session::SignedInGuardian,
    id: &str,
    result: Result<(), ApiError>,
    done: &str,
) -> PageResult {
    let again = |page| guardian_detail(state, page, guardian, id);
    after_form(page, result, &format!("/disputes/{id}?done={done}"), again).await
}

/// After a form on a complaint's page: on to `done`, or the page `again`
/// with the reason the form was refused, in the reader's words.
async fn after_form<Again>(
    page: PageContext,
    result: Result<(), ApiError>,
    done: &str,
    again: impl FnOnce(PageContext) -> Again,
) -> PageResult
where
    Again: std::future::Future<Output = Result<DetailPage, PortalError>>,
{
    match result {
        Ok(()) => Ok(see_other(done)),
        Err(error) => match inline(&page, &error) {
            Some(message) => {
                let status = error.status;
                let mut shown = again(page).await?;
                shown.error = Some(message);
                Ok(render(status, shown))
            }
            None => Err(PortalError::api(page, error)),
        },
    }
}

pub async fn withdraw(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ReasonForm>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/disputes/{id}"))?;
    page.check_csrf(&form.csrf)?;
    let explanation = if form.reason.trim().is_empty() { page.t.get("dispute-withdraw-default") } else { form.reason };
    let input = ResolveInput { outcome: "withdrawn".to_owned(), explanation, refund_minor: None };
    disputes::resolve(&state, &guardian.caller(), &id, input).await.map_err(api(&page))?;
    Ok(see_other(&format!("/disputes/{id}")))
}

fn report_file(month: &str, csv: String) -> Response {
    crate::downloads::attachment(crate::downloads::CSV, &format!("disputes-{month}.csv"), csv)
}

fn zip(name: &str, bytes: Vec<u8>) -> Response {
    crate::downloads::attachment(crate::downloads::ZIP, name, bytes)
}

/// A parent's file: a download, never rendered on this site.
fn file_response(content_type: &str, sha256: &str, bytes: Vec<u8>) -> Response {
    crate::downloads::attachment(content_type, &format!("evidence-{}", &sha256[..sha256.len().min(16)]), bytes)
}

pub async fn dossier(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path(id): Path<String>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/disputes/{id}"))?;
    let (name, bytes) =
        crate::services::dispute_dossier::for_caller(&state, &guardian.caller(), &id).await.map_err(api(&page))?;
    Ok(zip(&name, bytes))
}

pub async fn evidence(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path((id, sha256)): Path<(String, String)>,
) -> PageResult {
    let (guardian, page) = require(guardian, &headers, &format!("/disputes/{id}"))?;
    let (content_type, bytes) =
        disputes::evidence_file(&state, &guardian.caller(), &id, &sha256).await.map_err(api(&page))?;
    Ok(file_response(&content_type, &sha256, bytes))
}

// ------------------------------------------------------------ by its link

pub async fn linked(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path((id, token)): Path<(String, String)>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    let page = session::context(&headers, &format!("/d/{id}/{token}"), guardian.0.as_ref(), &guardian.1);
    let detail = disputes::get_by_link(&state, &id, &token).await.map_err(api(&page))?;
    let time_zone = state
        .store
        .family(
            &baobao_domain::ids::FamilyId::parse(&detail.dispute.family_id)
                .map_err(|_| api(&page)(ApiError::not_found("dispute")))?,
        )
        .await
        .map_err(|e| api(&page)(e.into()))?
        .time_zone;
    let receipt_href = Some(state.keys.receipt_link(&detail.receipt.id));
    let mut shown = detail_page(
        page,
        &detail,
        &calendar_in(&time_zone),
        Actions::default(),
        format!("/d/{id}/{token}/dossier.zip"),
        receipt_href,
        true,
    );
    if query.new.is_some() {
        shown.notice = Some(shown.page.t.get("dispute-filed-notice"));
    }
    ok(shown)
}

pub async fn linked_dossier(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path((id, token)): Path<(String, String)>,
) -> PageResult {
    let page = session::context(&headers, &format!("/d/{id}/{token}"), guardian.0.as_ref(), &guardian.1);
    let (name, bytes) = crate::services::dispute_dossier::for_link(&state, &id, &token).await.map_err(api(&page))?;
    Ok(zip(&name, bytes))
}

// ------------------------------------------------------------ after the account closed

#[derive(Template)]
#[template(path = "complain.html")]
struct ComplainPage {
    page: PageContext,
    /// Step 2: the code was sent to this (partly hidden) address.
    sent_to: Option<String>,
    receipt_number: String,
    email: String,
    kinds: Vec<KindOption>,
    files_max: usize,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct ComplainQuery {
    receipt: Option<String>,
}

pub async fn complain_page(
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Query(query): Query<ComplainQuery>,
) -> PageResult {
    let page = session::context(&headers, "/complain", guardian.0.as_ref(), &guardian.1);
    if guardian.0.is_some() {
        // A signed-in parent complains from their own pages.
        return Ok(see_other("/disputes/new"));
    }
    let kinds = kind_options(&page.t, None);
    ok(ComplainPage {
        page,
        sent_to: None,
        receipt_number: query.receipt.unwrap_or_default(),
        email: String::new(),
        kinds,
        files_max: DISPUTE_EVIDENCE_FILES_MAX,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    receipt_number: String,
    #[serde(default)]
    email: String,
}

pub async fn complain_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    axum::Form(form): axum::Form<CodeForm>,
) -> PageResult {
    let page = session::context(&headers, "/complain", guardian.0.as_ref(), &guardian.1);
    page.check_csrf(&form.csrf)?;
    let kinds = kind_options(&page.t, None);
    let input = FilingCodeInput { receipt_number: form.receipt_number.clone(), email: form.email.clone() };
    let (sent_to, error, status) = match disputes::send_filing_code(&state, input, page.t.locale).await {
        Ok(sent) => (Some(sent.sent_to), None, StatusCode::OK),
        Err(error) => match inline(&page, &error) {
            Some(message) => (None, Some(message), error.status),
            None => return Err(PortalError::api(page, error)),
        },
    };
    Ok(render(
        status,
        ComplainPage {
            page,
            sent_to,
            receipt_number: form.receipt_number,
            email: form.email,
            kinds,
            files_max: DISPUTE_EVIDENCE_FILES_MAX,
            error,
        },
    ))
}

pub async fn complain(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    multipart: Multipart,
) -> PageResult {
    let page = session::context(&headers, "/complain", guardian.0.as_ref(), &guardian.1);
    let (fields, files) = match form_with_files(multipart, DISPUTE_EVIDENCE_FILES_MAX).await {
        Ok(read) => read,
        Err(error) => return Err(PortalError::api(page, error)),
    };
    page.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let receipt_number = fields.get("receipt_number").cloned().unwrap_or_default();
    let email = fields.get("email").cloned().unwrap_or_default();
    let input = ReceiptHolderDisputeInput {
        receipt_number: receipt_number.clone(),
        email: email.clone(),
        code: fields.get("code").cloned().unwrap_or_default(),
        dispute: ReceiptHolderDispute {
            kind: field(&fields, "kind").unwrap_or_default(),
            description: fields.get("description").cloned().unwrap_or_default(),
            tracking_number: field(&fields, "tracking_number"),
            evidence: evidence_inputs(files),
        },
    };
    match disputes::file_as_receipt_holder(&state, input, page.t.locale).await {
        Ok(detail) => Ok(see_other(&format!("{}?new=1", state.keys.dispute_link(&detail.dispute.id)))),
        Err(error) => match inline(&page, &error) {
            Some(message) => {
                let kinds = kind_options(&page.t, None);
                let sent_to = Some(crate::services::verification::mask_email(&email));
                Ok(render(
                    error.status,
                    ComplainPage {
                        page,
                        sent_to,
                        receipt_number,
                        email,
                        kinds,
                        files_max: DISPUTE_EVIDENCE_FILES_MAX,
                        error: Some(message),
                    },
                ))
            }
            None => Err(PortalError::api(page, error)),
        },
    }
}

// ------------------------------------------------------------ the console

#[derive(Template)]
#[template(path = "console_disputes.html")]
struct QueuePage {
    page: PageContext,
    rows: Vec<QueueRow>,
    levels: Vec<(String, String, bool)>,
}

pub struct QueueRow {
    pub href: String,
    pub kind: String,
    pub level: String,
    pub due: String,
    pub overdue: bool,
    pub family: String,
    pub opened: String,
}

#[derive(Deserialize)]
pub struct LevelQuery {
    level: Option<String>,
}

pub async fn queue(State(state): State<AppState>, signed_in: StaffPage, Query(query): Query<LevelQuery>) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let level = query.level.filter(|l| !l.is_empty());
    let open = disputes::queue(&state, &staff.caller, level.as_deref()).await.map_err(api(&page))?;
    let calendar = calendar_in(&state.config.staff_time_zone);
    let now = state.clock.now();
    let t = &page.t;
    let rows = open
        .iter()
        .map(|d| {
            let due = if d.first_responded_at.is_none() { d.first_response_due } else { d.resolution_due };
            QueueRow {
                href: format!("/console/disputes/{}", d.id),
                kind: t.get(&format!("dispute-kind-{}", d.kind)),
                level: t.get(&format!("dispute-level-{}", d.level)),
                due: local_time(&calendar, due),
                overdue: due <= now,
                family: d.family_id.clone(),
                opened: local_time(&calendar, d.opened_at),
            }
        })
        .collect();
    let levels = DisputeLevel::ALL
        .iter()
        .map(|l| {
            (
                l.as_str().to_owned(),
                t.get(&format!("dispute-level-{}", l.as_str())),
                level.as_deref() == Some(l.as_str()),
            )
        })
        .collect();
    ok(QueuePage { page, rows, levels })
}

fn staff_actions(id: &str) -> Actions {
    Actions {
        message: Some(format!("/console/disputes/{id}/messages")),
        escalate: Some(format!("/console/disputes/{id}/escalate")),
        withdraw: None,
        resolve: Some(format!("/console/disputes/{id}/resolve")),
        evidence_base: Some(format!("/console/disputes/{id}/evidence")),
    }
}

async fn staff_detail(state: &AppState, staff: &Staff, page: PageContext, id: &str) -> Result<DetailPage, PortalError> {
    let detail = disputes::get(state, &staff.caller, id).await.map_err(api(&page))?;
    let calendar = calendar_in(&state.config.staff_time_zone);
    Ok(detail_page(
        page,
        &detail,
        &calendar,
        staff_actions(id),
        format!("/console/disputes/{id}/dossier.zip"),
        None,
        false,
    ))
}

pub async fn console_detail(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let notice = query.done.as_ref().map(|_| page.t.get("dispute-saved-notice"));
    let mut shown = staff_detail(&state, &staff, page, &id).await?;
    shown.notice = notice;
    ok(shown)
}

pub async fn console_message(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
    multipart: Multipart,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let result = match form_with_files(multipart, DISPUTE_EVIDENCE_FILES_MAX).await {
        Ok((fields, files)) => {
            page.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
            let input = MessageInput {
                text: fields.get("text").cloned().unwrap_or_default(),
                evidence: evidence_inputs(files),
            };
            disputes::post_message(&state, &staff.caller, &id, input).await.map(|_| ())
        }
        Err(error) => Err(error),
    };
    staff_outcome(&state, &staff, page, &id, result).await
}

async fn staff_outcome(
    state: &AppState,
    staff: &Staff,
    page: PageContext,
    id: &str,
    result: Result<(), ApiError>,
) -> PageResult {
    let again = |page| staff_detail(state, staff, page, id);
    after_form(page, result, &format!("/console/disputes/{id}?done=1"), again).await
}

pub async fn console_escalate(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ReasonForm>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    page.check_csrf(&form.csrf)?;
    let result =
        disputes::escalate(&state, &staff.caller, &id, EscalateInput { reason: form.reason }).await.map(|_| ());
    staff_outcome(&state, &staff, page, &id, result).await
}

#[derive(Deserialize)]
pub struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    explanation: String,
    /// In the currency's main unit, e.g. `10.50`.
    #[serde(default)]
    refund: String,
}

/// `10`, `10.5` or `10.50` in the main unit, as minor units.
fn parse_amount(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || fraction.len() > 2 || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(fraction)
}

pub async fn console_resolve(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ResolveForm>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    page.check_csrf(&form.csrf)?;
    let refund_minor = match form.refund.trim() {
        "" => None,
        text => match parse_amount(text) {
            Some(minor) => Some(minor),
            None => {
                let error = ApiError::invalid_field("refund_minor", "between").with("min", "0.01").with("max", "…");
                return staff_outcome(&state, &staff, page, &id, Err(error)).await;
            }
        },
    };
    let input = ResolveInput { outcome: form.outcome, explanation: form.explanation, refund_minor };
    let result = disputes::resolve(&state, &staff.caller, &id, input).await.map(|_| ());
    staff_outcome(&state, &staff, page, &id, result).await
}

pub async fn console_dossier(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(id): Path<String>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let (name, bytes) =
        crate::services::dispute_dossier::for_caller(&state, &staff.caller, &id).await.map_err(api(&page))?;
    Ok(zip(&name, bytes))
}

pub async fn console_evidence(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path((id, sha256)): Path<(String, String)>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let (content_type, bytes) =
        disputes::evidence_file(&state, &staff.caller, &id, &sha256).await.map_err(api(&page))?;
    Ok(file_response(&content_type, &sha256, bytes))
}

pub async fn console_new(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(family_id): Path<String>,
    Query(about): Query<AboutQuery>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let family = FamilyId::parse(&family_id).map_err(|_| api(&page)(ApiError::not_found("family")))?;
    crate::services::accounts::family(&state, &staff.caller, &family).await.map_err(api(&page))?;
    let kinds = kind_options(&page.t, about.kind.as_deref());
    let about_words = about_words(&page.t, &about);
    ok(NewPage {
        page,
        action: format!("/console/families/{family_id}/disputes"),
        kinds,
        about,
        about_words,
        files_max: DISPUTE_EVIDENCE_FILES_MAX,
        error: None,
        for_family: Some(family_id),
    })
}

pub async fn console_file(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Path(family_id): Path<String>,
    multipart: Multipart,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let (fields, files) = form_with_files(multipart, DISPUTE_EVIDENCE_FILES_MAX).await.map_err(api(&page))?;
    page.check_csrf(fields.get("csrf").map(String::as_str).unwrap_or_default())?;
    let family = FamilyId::parse(&family_id).map_err(|_| api(&page)(ApiError::not_found("family")))?;
    let about = about_of(&fields);
    match disputes::file(&state, Filer::Caller(&staff.caller), Via::Portal, input_of(&fields, files), Some(family))
        .await
    {
        Ok(detail) => Ok(see_other(&format!("/console/disputes/{}?done=1", detail.dispute.id))),
        Err(error) => match inline(&page, &error) {
            Some(message) => {
                let kinds = kind_options(&page.t, about.kind.as_deref());
                let about_words = about_words(&page.t, &about);
                Ok(render(
                    error.status,
                    NewPage {
                        page,
                        action: format!("/console/families/{family_id}/disputes"),
                        kinds,
                        about,
                        about_words,
                        files_max: DISPUTE_EVIDENCE_FILES_MAX,
                        error: Some(message),
                        for_family: Some(family_id),
                    },
                ))
            }
            None => Err(PortalError::api(page, error)),
        },
    }
}

#[derive(Template)]
#[template(path = "console_dispute_report.html")]
struct ReportPage {
    page: PageContext,
    month: String,
    /// Each cell with its column's label (tables stack on a phone).
    rows: Vec<Vec<(String, String)>>,
    totals: Vec<(String, String)>,
    csv_href: String,
}

#[derive(Deserialize)]
pub struct MonthQuery {
    month: Option<String>,
}

pub async fn report(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Query(query): Query<MonthQuery>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let month = query.month.filter(|m| !m.trim().is_empty());
    let report = disputes::report(&state, &staff.caller, month.as_deref()).await.map_err(api(&page))?;
    let t = &page.t;
    let labels =
        ["dispute-kind", "dispute-outcome", "console-report-count", "console-report-auto", "console-report-missed"]
            .map(|key| t.get(key));
    let labelled = |cells: [String; 5]| labels.iter().cloned().zip(cells).collect::<Vec<_>>();
    let rows = report
        .rows
        .iter()
        .map(|r| {
            let outcome = if r.outcome == "open" {
                t.get("dossier-open")
            } else {
                t.get(&format!("dispute-outcome-{}", r.outcome))
            };
            labelled([
                t.get(&format!("dispute-kind-{}", r.kind)),
                outcome,
                r.disputes.to_string(),
                r.settled_automatically.to_string(),
                r.deadlines_missed.to_string(),
            ])
        })
        .collect();
    let share =
        format!("{}.{}%", report.settled_automatically_per_mille / 10, report.settled_automatically_per_mille % 10);
    let totals = labelled([
        t.get("dispute-report-all"),
        t.arg("dispute-report-open", "count", report.still_open),
        report.disputes.to_string(),
        format!("{} ({share})", report.settled_automatically),
        report.deadlines_missed.to_string(),
    ]);
    let csv_href = format!("/console/disputes/report.csv?month={}", report.month);
    ok(ReportPage { page, month: report.month, rows, totals, csv_href })
}

pub async fn report_csv(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Query(query): Query<MonthQuery>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let report = disputes::report(&state, &staff.caller, query.month.as_deref()).await.map_err(api(&page))?;
    let csv = disputes::report_csv(&report).map_err(|e| api(&page)(crate::error::internal(e)))?;
    Ok(report_file(&report.month, csv))
}

#[cfg(test)]
mod tests {
    use super::parse_amount;

    #[test]
    fn amounts_are_read_in_the_main_unit() {
        assert_eq!(parse_amount("10"), Some(1000));
        assert_eq!(parse_amount("10.5"), Some(1050));
        assert_eq!(parse_amount(" 0.07 "), Some(7));
        for wrong in ["", ".5", "1.234", "-1", "1e3", "１０"] {
            assert_eq!(parse_amount(wrong), None, "{wrong}");
        }
    }
}
