//! The audit log in the staff console: compliance and admin staff read its
//! entries, filtered by family, actor, action and time, a page at a time,
//! and download what a filter finds as CSV.

use askama::Template;
use axum::extract::{Query, State};
use serde::Deserialize;

use crate::error::ApiError;
use crate::portal::console::{actor_text, calendar};
use crate::portal::page::{PageResult, PortalError, api, has_page, local_time, ok};
use crate::portal::session::PageContext;
use crate::portal::staff::StaffPage;
use crate::services::audit_log;
use crate::state::AppState;

/// Entries one CSV download holds at most (a narrower filter finds the rest).
pub const CSV_ENTRIES_MAX: usize = 50_000;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    family_id: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    /// A day (YYYY-MM-DD, the support office's zone), inclusive.
    #[serde(default)]
    from: String,
    /// A day, inclusive.
    #[serde(default)]
    until: String,
    after: Option<u64>,
}

pub struct AuditRow {
    pub index: u64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subjects: String,
    pub document: String,
}

#[derive(Template)]
#[template(path = "console_audit.html")]
struct AuditPage {
    page: PageContext,
    /// Every action, with its words, for the filter.
    actions: Vec<(&'static str, String)>,
    query: AuditQuery,
    rows: Vec<AuditRow>,
    next: Option<String>,
    csv: String,
    error: Option<String>,
}
has_page!(AuditPage);

fn actions(t: &crate::i18n::T) -> Vec<(&'static str, String)> {
    audit_log::ACTIONS.iter().map(|a| (*a, action_text(t, a))).collect()
}

fn non_empty(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The store's filter from the form: days in the support office's zone.
fn filter(state: &AppState, query: &AuditQuery) -> Result<baobao_store::AuditFilter, ApiError> {
    let zone = calendar(&state.config.staff_time_zone);
    let day = |field: &str, text: &str, next: bool| -> Result<Option<jiff::Timestamp>, ApiError> {
        let Some(text) = non_empty(text) else { return Ok(None) };
        let date: jiff::civil::Date = text.parse().map_err(|_| ApiError::invalid_query(field, "date"))?;
        let date = if next { date.tomorrow().map_err(|_| ApiError::invalid_query(field, "date"))? } else { date };
        zone.start_of_date(date).map(Some).map_err(|_| ApiError::invalid_query(field, "date"))
    };
    Ok(baobao_store::AuditFilter {
        family_id: non_empty(&query.family_id),
        actor: non_empty(&query.actor),
        action: non_empty(&query.action),
        from: day("from", &query.from, false)?,
        until: day("until", &query.until, true)?,
        after: query.after,
    })
}

fn query_string(query: &AuditQuery, after: Option<u64>) -> String {
    let escape = crate::portal::session::url_escape;
    let mut parts = vec![
        format!("family_id={}", escape(&query.family_id)),
        format!("actor={}", escape(&query.actor)),
        format!("action={}", escape(&query.action)),
        format!("from={}", escape(&query.from)),
        format!("until={}", escape(&query.until)),
    ];
    if let Some(after) = after {
        parts.push(format!("after={after}"));
    }
    parts.join("&")
}

/// An action in the reader's words (an action this page does not know
/// reads as it was recorded).
fn action_text(t: &crate::i18n::T, action: &str) -> String {
    if audit_log::ACTIONS.contains(&action) {
        t.get(&format!("audit-action-{}", action.replace('.', "-")))
    } else {
        action.to_owned()
    }
}

pub async fn audit(State(state): State<AppState>, signed_in: StaffPage, Query(query): Query<AuditQuery>) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let zone = calendar(&state.config.staff_time_zone);
    let csv = format!("/console/audit.csv?{}", query_string(&query, None));
    let found = match filter(&state, &query) {
        Ok(filter) => audit_log::entries(&state, &staff.caller, filter, None).await.map_err(api(&page))?,
        Err(error) => {
            let error = Some(crate::messages::render(error.code, page.t.locale, &error.details));
            let actions = actions(&page.t);
            return ok(AuditPage { page, actions, query, rows: Vec::new(), next: None, csv, error });
        }
    };
    let t = &page.t;
    let rows = found
        .entries
        .iter()
        .map(|e| AuditRow {
            index: e.leaf_index,
            at: local_time(&zone, e.at),
            actor: actor_text(t, &e.actor),
            action: action_text(t, &e.action),
            subjects: e.subject_ids.join(" "),
            document: e.document_sha256.as_deref().map(|d| d.chars().take(16).collect()).unwrap_or_default(),
        })
        .collect();
    let next = found.next.map(|after| format!("/console/audit?{}", query_string(&query, Some(after))));
    let actions = actions(&page.t);
    ok(AuditPage { page, actions, query, rows, next, csv, error: None })
}

/// What the filter finds, as CSV (every field as recorded, times in UTC).
pub async fn audit_csv(
    State(state): State<AppState>,
    signed_in: StaffPage,
    Query(query): Query<AuditQuery>,
) -> PageResult {
    let StaffPage { staff, page } = signed_in;
    let mut filter = filter(&state, &query).map_err(api(&page))?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| PortalError::api(page.clone(), crate::error::internal(e));
    writer
        .write_record(["leaf_index", "at", "actor", "action", "subject_ids", "document_sha256", "leaf_hash", "details"])
        .map_err(internal)?;
    let mut written = 0;
    loop {
        let found =
            audit_log::entries(&state, &staff.caller, filter.clone(), Some(baobao_store::AUDIT_PAGE_ENTRIES_MAX))
                .await
                .map_err(api(&page))?;
        for e in &found.entries {
            writer
                .write_record([
                    e.leaf_index.to_string(),
                    e.at.to_string(),
                    e.actor.clone(),
                    e.action.clone(),
                    e.subject_ids.join(" "),
                    e.document_sha256.clone().unwrap_or_default(),
                    e.leaf_hash.clone().unwrap_or_default(),
                    e.details.to_string(),
                ])
                .map_err(internal)?;
        }
        written += found.entries.len();
        match found.next {
            Some(after) if written < CSV_ENTRIES_MAX => filter.after = Some(after),
            _ => break,
        }
    }
    let bytes = writer.into_inner().map_err(|e| PortalError::api(page.clone(), crate::error::internal(e)))?;
    Ok(crate::downloads::attachment(crate::downloads::CSV, "baobao-audit-log.csv", bytes))
}
