//! Pages anyone can open without signing in.
//!
//! - A receipt or certificate by its link (`/r/{id}/{token}`, the link its
//!   email carries): the token is an HMAC of the receipt id under a key
//!   derived from the server's signing key, so it cannot be guessed and
//!   nothing is stored; it keeps working after the account is closed,
//!   which is when a deletion certificate matters most.
//! - "Check a receipt or certificate" (`/check`): a parent, a mediator or
//!   a regulator gives its number and its signed JSON; the page says
//!   whether the signature is this provider's, whether the number is the
//!   document's, and whether the provider still holds the same document.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use baobao_domain::ids::ReceiptId;

use crate::error::ApiError;
use crate::portal::page::{PageResult, PortalError, api, has_page, ok, render};
use crate::portal::pages::{NewQuery, calendar_in, receipt_page, receipt_parties};
use crate::portal::session::{self, MaybeGuardian, PageContext};
use crate::receipts::ReceiptDocument;
use crate::state::{AppState, Parts};

/// The receipt a link opens; any other id or token is "not found", alike.
async fn linked_receipt(
    state: &AppState,
    page: &PageContext,
    id: &str,
    token: &str,
) -> Result<(ReceiptDocument, String), PortalError> {
    let not_found = || PortalError::api(page.clone(), ApiError::not_found("receipt"));
    let receipt_id = ReceiptId::parse(id).map_err(|_| not_found())?;
    if !state.keys.opens_receipt(receipt_id.as_str(), token) {
        return Err(not_found());
    }
    let stored = state.store.receipt(&receipt_id).await.map_err(|e| api(page)(e.into()))?;
    let time_zone = state.store.family(&stored.family_id).await.map_err(|e| api(page)(e.into()))?.time_zone;
    let document = serde_json::from_str(&stored.document).map_err(|e| api(page)(crate::error::internal(e)))?;
    Ok((document, time_zone))
}

pub async fn receipt(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path((id, token)): Path<(String, String)>,
    Query(query): Query<NewQuery>,
) -> PageResult {
    let page = session::context(&headers, &format!("/r/{id}/{token}"), guardian.0.as_ref(), &guardian.1);
    let (document, time_zone) = linked_receipt(&state, &page, &id, &token).await?;
    let notice = query.deleted.is_some().then(|| page.t.get("data-deleted"));
    let json_href = format!("/r/{id}/{token}/signed.json");
    let parties = receipt_parties(&state, &document, page.t.locale).await;
    ok(receipt_page(page, &document, &calendar_in(&time_zone), false, notice, json_href, parties))
}

pub async fn receipt_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    Path((id, token)): Path<(String, String)>,
) -> PageResult {
    let page = session::context(&headers, &format!("/r/{id}/{token}"), guardian.0.as_ref(), &guardian.1);
    let (document, _) = linked_receipt(&state, &page, &id, &token).await?;
    let json = serde_json::to_string_pretty(&document).unwrap_or_default();
    let disposition = format!("attachment; filename=\"receipt-{}.json\"", document.id);
    Ok(([(header::CONTENT_TYPE, "application/json".to_owned()), (header::CONTENT_DISPOSITION, disposition)], json)
        .into_response())
}

// ------------------------------------------------------------------ check

/// The largest signed JSON the check accepts (a receipt is a few KiB).
pub const CHECK_DOCUMENT_BYTES_MAX: usize = 256 * 1024;
/// The whole form, with the file and its multipart framing.
pub const CHECK_REQUEST_BYTES_MAX: usize = 2 * CHECK_DOCUMENT_BYTES_MAX;
const NUMBER_CHARS_MAX: usize = 64;

/// One line of the verdict: passed or not, in words.
pub struct CheckLine {
    pub passed: bool,
    pub text: String,
}

#[derive(Template)]
#[template(path = "check.html")]
struct CheckPage {
    page: PageContext,
    number: String,
    /// A form that could not be read as asked (no file, too large, not JSON).
    error: Option<String>,
    /// The verdict, once a document was checked: the whole, then each part.
    verdict: Option<(bool, String)>,
    lines: Vec<CheckLine>,
}
has_page!(CheckPage);

fn check_page(page: PageContext) -> CheckPage {
    CheckPage { page, number: String::new(), error: None, verdict: None, lines: Vec::new() }
}

pub async fn check_form(headers: HeaderMap, guardian: MaybeGuardian) -> PageResult {
    ok(check_page(session::context(&headers, "/check", guardian.0.as_ref(), &guardian.1)))
}

/// What the form carried: the number typed and the document, uploaded as
/// a file or pasted.
struct Submitted {
    number: String,
    document: Vec<u8>,
    /// The document's proof of logging, when its holder kept one.
    proof: Vec<u8>,
}

async fn read_form(mut form: Multipart) -> Result<Submitted, &'static str> {
    let mut submitted = Submitted { number: String::new(), document: Vec::new(), proof: Vec::new() };
    while let Some(field) = form.next_field().await.map_err(|_| "check-error-form")? {
        match field.name() {
            Some("number") => submitted.number = field.text().await.map_err(|_| "check-error-form")?,
            Some("document" | "pasted") => {
                let bytes = field.bytes().await.map_err(|_| "check-error-too-large")?;
                if bytes.len() > CHECK_DOCUMENT_BYTES_MAX {
                    return Err("check-error-too-large");
                }
                if !bytes.iter().all(u8::is_ascii_whitespace) {
                    submitted.document = bytes.to_vec();
                }
            }
            Some("proof") => {
                let bytes = field.bytes().await.map_err(|_| "check-error-too-large")?;
                if bytes.len() > CHECK_DOCUMENT_BYTES_MAX {
                    return Err("check-error-too-large");
                }
                submitted.proof = bytes.to_vec();
            }
            _ => {}
        }
    }
    submitted.number = submitted.number.trim().to_owned();
    if submitted.number.is_empty() || submitted.number.chars().count() > NUMBER_CHARS_MAX {
        return Err("check-error-number");
    }
    if submitted.document.is_empty() {
        return Err("check-error-document");
    }
    Ok(submitted)
}

/// Checks an uploaded receipt: read-only, so no session and no CSRF token
/// are needed; a page in the visitor's language whatever was sent.
pub async fn check(
    State(state): State<AppState>,
    headers: HeaderMap,
    guardian: MaybeGuardian,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> PageResult {
    let page = session::context(&headers, "/check", guardian.0.as_ref(), &guardian.1);
    let submitted = match form {
        Ok(form) => read_form(form).await,
        Err(_) => Err("check-error-form"),
    };
    let submitted = match submitted {
        Ok(submitted) => submitted,
        Err(key) => {
            let error = Some(page.t.get(key));
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, CheckPage { error, ..check_page(page) }));
        }
    };
    let Ok(document) = serde_json::from_slice::<ReceiptDocument>(&submitted.document) else {
        let error = Some(page.t.get("check-error-not-a-receipt"));
        let number = submitted.number;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, CheckPage { error, number, ..check_page(page) }));
    };
    let held = state.store.receipt_by_number(&submitted.number).await.map_err(|e| api(&page)(e.into()))?;
    let mut lines = verdict_lines(&state, &page, &submitted.number, &document, held.as_ref());
    if let Some(line) = log_line(&state, &page, &submitted.document, &submitted.proof).await {
        lines.push(line);
    }
    let passed = lines.iter().all(|line| line.passed);
    let verdict = Some((passed, page.t.get(if passed { "check-verdict-genuine" } else { "check-verdict-not" })));
    ok(CheckPage { number: submitted.number, verdict, lines, ..check_page(page) })
}

/// Where the document is in the audit log, when it is there: its leaf and
/// the signed tree head whose root its inclusion proof reaches, by the
/// proof of logging its holder kept or by one made now (receipts issued
/// before the log existed have no leaf of their own: no line).
async fn log_line(state: &AppState, page: &PageContext, document: &[u8], kept: &[u8]) -> Option<CheckLine> {
    use crate::services::audit_log::{DocumentProof, check_document_proof, document_proof};
    let value: serde_json::Value = serde_json::from_slice(document).ok()?;
    let sha = baobao_domain::audit::document_sha256(&value).ok()?;
    let proof = if kept.is_empty() {
        document_proof(state, &sha).await.ok()?
    } else {
        match serde_json::from_slice::<DocumentProof>(kept) {
            Ok(proof) => proof,
            Err(_) => return Some(CheckLine { passed: false, text: page.t.get("check-browser-proof-bad") }),
        }
    };
    let values = [("leaf", proof.entry.leaf_index.to_string()), ("size", proof.tree_head.tree_size.to_string())];
    let included = check_document_proof(&sha, &proof, &state.keys.key_set()).is_ok();
    Some(CheckLine {
        passed: included,
        text: page.t.args(if included { "check-log-ok" } else { "check-log-bad" }, &values),
    })
}

fn verdict_lines(
    parts: &Parts,
    page: &PageContext,
    number: &str,
    document: &ReceiptDocument,
    held: Option<&baobao_store::StoredReceipt>,
) -> Vec<CheckLine> {
    let t = &page.t;
    let signed = crate::receipts::verify(document, &parts.keys.key_set()).is_ok();
    let signature = CheckLine {
        passed: signed,
        text: if signed {
            t.arg("check-signature-ok", "key", document.signature.key_id.clone())
        } else {
            t.get("check-signature-bad")
        },
    };
    let own_number = document.body.get("receipt_number").and_then(|n| n.as_str()).unwrap_or_default();
    let numbered = own_number == number;
    let number_line = CheckLine {
        passed: numbered,
        text: if numbered { t.get("check-number-ok") } else { t.arg("check-number-bad", "number", own_number) },
    };
    // Held unchanged: the provider's stored document is this one, byte for
    // byte once both are read as JSON (whitespace and key order aside).
    let same = held
        .and_then(|h| serde_json::from_str::<serde_json::Value>(&h.document).ok())
        .is_some_and(|stored| serde_json::to_value(document).is_ok_and(|given| given == stored));
    let held_line = CheckLine {
        passed: same,
        text: t.get(match (held.is_some(), same) {
            (true, true) => "check-held-ok",
            (true, false) => "check-held-differs",
            (false, _) => "check-held-none",
        }),
    };
    vec![signature, number_line, held_line]
}
