//! The staff channels: support (an agent cancels on a guardian's behalf
//! after verifying them with a one-time code) and written notices (an agent
//! registers a letter or email, with the scan as evidence). Both end in the
//! same request, quote rules and signed receipt as self-service
//! (`lifecycle::file`).

use std::path::{Path, PathBuf};

use baobao_domain::calendar::Calendar;
use baobao_domain::ids::{FamilyId, VerificationCodeId, WrittenNoticeId};
use baobao_store::{Tx, WrittenNotice};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::lifecycle::{self, Channel, ReasonInput, Request};
use crate::random::{random_bytes, token_hash};
use crate::receipts::ReceiptDocument;
use crate::state::{AppState, Parts};
use crate::views::{CancellationView, GuardianView, SubscriptionView};

pub const CODE_DIGITS: u32 = 6;
pub const CODE_VALID_MINUTES: i64 = 10;
/// Wrong entries before a code is dead.
pub const CODE_ATTEMPTS_MAX: i64 = 5;
/// Codes sent to one family per window, then a pause.
pub const CODES_PER_WINDOW_MAX: i64 = 3;
pub const CODE_WINDOW_MINUTES: i64 = 15;
pub const OVERRIDE_REASON_CHARS_MIN: usize = 10;
pub const OVERRIDE_REASON_CHARS_MAX: usize = 1000;

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(error.to_string())
}

// ---------------------------------------------------------------- finding a family

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
        let family = lifecycle::family(state, caller, &family_id).await?;
        let subscriptions = lifecycle::family_subscriptions(state, caller, &family_id).await?;
        found.push(FamilyMatch {
            id: family.id,
            time_zone: family.time_zone,
            guardians: family.guardians,
            subscriptions,
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

// ---------------------------------------------------------------- one-time codes

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CodeSentView {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// Where the code went, partly hidden, for the agent to tell the guardian.
    pub sent_to: Vec<String>,
}

/// `ab***@example.com`
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let shown: String = local.chars().take(2).collect();
            format!("{shown}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

fn code_hash(code_id: &str, code: &str) -> String {
    token_hash(&format!("{code_id}:{code}"))
}

/// Sends the guardians a one-time code to read out to the agent. Codes
/// live ten minutes, are used once, allow five wrong entries, and a family
/// gets at most three per quarter hour. Real time: a simulated business
/// clock does not stretch their life.
pub async fn send_code(state: &AppState, caller: &Caller, family_id: &FamilyId) -> ApiResult<CodeSentView> {
    caller.require_staff(&[Role::Agent, Role::Supervisor])?;
    state.store.family(family_id).await.or_not_found("family")?;
    let guardians: Vec<_> = state
        .store
        .guardians_of(family_id)
        .await?
        .into_iter()
        .filter(|g| !g.email.is_empty() && !g.email.ends_with("@invalid"))
        .collect();
    if guardians.is_empty() {
        return Err(ApiError::conflict("no_contact"));
    }
    let now = state.clock.wall_now();
    let window_start = now.checked_sub(SignedDuration::from_mins(CODE_WINDOW_MINUTES)).map_err(internal)?;
    let expires_at = now.checked_add(SignedDuration::from_mins(CODE_VALID_MINUTES)).map_err(internal)?;
    let code_id = VerificationCodeId::from_random(random_bytes());
    let number = u64::from_le_bytes(random_bytes()) % 10u64.pow(CODE_DIGITS);
    let code = format!("{number:0width$}", width = CODE_DIGITS as usize);

    let mut tx = state.store.begin().await?;
    if tx.codes_sent_since(family_id, window_start).await? >= CODES_PER_WINDOW_MAX {
        return Err(ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "too_many_codes")
            .with("minutes", CODE_WINDOW_MINUTES));
    }
    tx.insert_verification_code(
        code_id.as_str(),
        family_id,
        &code_hash(code_id.as_str(), &code),
        &caller.actor(),
        now,
        expires_at,
    )
    .await?;
    let payload = json!({"code": code, "valid_minutes": CODE_VALID_MINUTES});
    crate::outbox::email_guardians(&mut tx, state, &guardians, "verification_code", code_id.as_str(), &payload).await?;
    tx.audit(
        state.clock.now(),
        &caller.actor(),
        "verification.code_sent",
        &[family_id.as_str(), code_id.as_str()],
        &json!({"expires_at": expires_at.to_string()}),
    )
    .await?;
    tx.commit().await?;
    Ok(CodeSentView {
        id: code_id.to_string(),
        expires_at,
        sent_to: guardians.iter().map(|g| mask_email(&g.email)).collect(),
    })
}

/// How a support request proved the caller is the guardian.
pub enum Verified {
    /// The right code, to be spent in the cancellation's transaction.
    Code { code_id: String },
    /// A supervisor's written reason, audited with the request.
    SupervisorOverride { reason: String },
}

impl Verified {
    pub fn method(&self) -> &'static str {
        match self {
            Verified::Code { .. } => "one_time_code",
            Verified::SupervisorOverride { .. } => "supervisor_override",
        }
    }

    /// Inside the cancellation's transaction: a code is spent exactly once
    /// (two agents racing with one code get one cancellation); an override
    /// is written to the audit trail with its reason.
    pub async fn spend(&self, tx: &mut Tx, parts: &Parts, actor: &str, family_id: &FamilyId) -> ApiResult<()> {
        match self {
            Verified::Code { code_id } => {
                if !tx.spend_verification_code(code_id, parts.clock.wall_now()).await? {
                    return Err(ApiError::unprocessable("verification_expired"));
                }
            }
            Verified::SupervisorOverride { reason } => {
                tx.audit(
                    parts.clock.now(),
                    actor,
                    "verification.overridden",
                    &[family_id.as_str()],
                    &json!({"reason": reason}),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// Checks the code the guardian read out, or a supervisor's override.
/// A wrong code counts against the code's tries even though the request
/// fails, so it is recorded in its own transaction.
pub async fn verify_guardian(
    state: &AppState,
    caller: &Caller,
    family_id: &FamilyId,
    code: Option<&str>,
    override_reason: Option<&str>,
) -> ApiResult<Verified> {
    let (_, role) = caller.require_staff(&[Role::Agent, Role::Supervisor])?;
    match (code, override_reason) {
        (Some(_), Some(_)) => Err(ApiError::invalid_field("verification_override_reason", "code_or_override")),
        (None, Some(reason)) => {
            if role != Role::Supervisor {
                return Err(ApiError::new(axum::http::StatusCode::FORBIDDEN, "override_not_allowed"));
            }
            let reason = reason.trim();
            let chars = reason.chars().count();
            if !(OVERRIDE_REASON_CHARS_MIN..=OVERRIDE_REASON_CHARS_MAX).contains(&chars) {
                return Err(ApiError::invalid_field("verification_override_reason", "chars_between")
                    .with("min", OVERRIDE_REASON_CHARS_MIN)
                    .with("max", OVERRIDE_REASON_CHARS_MAX));
            }
            Ok(Verified::SupervisorOverride { reason: reason.to_owned() })
        }
        (None, None) => Err(ApiError::unprocessable("verification_required")),
        (Some(code), None) => {
            let code = code.trim();
            if code.len() != CODE_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::invalid_field("verification_code", "digits").with("digits", CODE_DIGITS));
            }
            let now = state.clock.wall_now();
            let mut tx = state.store.begin().await?;
            let Some(latest) = tx.latest_verification_code(family_id).await? else {
                return Err(ApiError::unprocessable("verification_expired"));
            };
            if latest.used_at.is_some() || latest.expires_at <= now || latest.attempts >= CODE_ATTEMPTS_MAX {
                return Err(ApiError::unprocessable("verification_expired"));
            }
            if code_hash(&latest.id, code) != latest.code_sha256 {
                tx.record_code_attempt(&latest.id).await?;
                tx.audit(
                    state.clock.now(),
                    &caller.actor(),
                    "verification.code_wrong",
                    &[family_id.as_str(), &latest.id],
                    &json!({}),
                )
                .await?;
                tx.commit().await?;
                return Err(ApiError::unprocessable("verification_failed")
                    .with("attempts_left", CODE_ATTEMPTS_MAX - latest.attempts - 1));
            }
            Ok(Verified::Code { code_id: latest.id })
        }
    }
}

// ---------------------------------------------------------------- evidence files

/// Largest evidence file (a scanned letter, a saved email).
pub const EVIDENCE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The request carrying it, base64 and all.
pub const EVIDENCE_REQUEST_BYTES_MAX: usize = crate::idempotency::REQUEST_BODY_BYTES_HARD_MAX;
const _: () = assert!(EVIDENCE_BYTES_MAX.div_ceil(3) * 4 + 64 * 1024 <= EVIDENCE_REQUEST_BYTES_MAX);
pub const EVIDENCE_TYPES: [&str; 5] = ["application/pdf", "image/jpeg", "image/png", "message/rfc822", "text/plain"];

/// Checks that the bytes are what the type says: a PDF starts `%PDF-`, a
/// JPEG `FF D8 FF`, a PNG with its signature; a saved email or text has no
/// NUL bytes.
fn contents_match(content_type: &str, bytes: &[u8]) -> bool {
    match content_type {
        "application/pdf" => bytes.starts_with(b"%PDF-"),
        "image/jpeg" => bytes.starts_with(&[0xff, 0xd8, 0xff]),
        "image/png" => bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]),
        "message/rfc822" | "text/plain" => !bytes.is_empty() && !bytes.contains(&0),
        _ => false,
    }
}

pub fn evidence_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("evidence")
}

pub fn evidence_path(data_dir: &Path, sha256: &str) -> PathBuf {
    evidence_dir(data_dir).join(sha256)
}

/// Stores the file under its SHA-256 (written to a temporary name, synced,
/// then renamed, so a crash never leaves half a file under a real name).
/// The same file registered twice is stored once.
fn store_evidence(data_dir: &Path, bytes: &[u8]) -> ApiResult<String> {
    use std::io::Write as _;
    let sha256 = hex::encode(Sha256::digest(bytes));
    let dir = evidence_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(internal)?;
    let path = evidence_path(data_dir, &sha256);
    if path.exists() {
        return Ok(sha256);
    }
    let temporary = dir.join(format!(".{sha256}.{}", hex::encode(random_bytes::<6>())));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(internal)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(internal)?;
    std::fs::rename(&temporary, &path).map_err(internal)?;
    Ok(sha256)
}

/// Removes evidence files no live notice names any more (after a family's
/// personal data is minimised). Returns how many files went.
pub async fn remove_unused_evidence(state: &AppState, hashes: &[String]) -> ApiResult<u64> {
    let mut removed = 0;
    for sha256 in hashes {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        if state.store.evidence_in_use(sha256).await? {
            continue;
        }
        match std::fs::remove_file(evidence_path(&state.config.data_dir, sha256)) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal(e)),
        }
    }
    Ok(removed)
}

// ---------------------------------------------------------------- written notices

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceInput {
    /// One of `application/pdf`, `image/jpeg`, `image/png`, `message/rfc822`, `text/plain`.
    pub content_type: String,
    /// The file, base64 (at most 4 MiB once decoded).
    pub content_base64: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WrittenNoticeInput {
    pub subscription_id: String,
    /// The day the letter or email arrived (`YYYY-MM-DD`, in the family's
    /// time zone); the request counts as received at that day's start.
    #[serde(default)]
    pub received_on: Option<String>,
    /// Or the exact instant (RFC 3339), e.g. an email's arrival time.
    #[serde(default)]
    pub received_at: Option<String>,
    pub sender: String,
    #[serde(default)]
    pub tracking_number: Option<String>,
    /// What the letter asks for; `end_of_period` when it does not say.
    #[serde(default)]
    pub option: Option<String>,
    #[serde(default)]
    pub reason: Option<ReasonInput>,
    pub evidence: EvidenceInput,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WrittenNoticeView {
    pub id: String,
    pub family_id: String,
    pub subscription_id: String,
    pub cancellation_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    pub sender: String,
    pub tracking_number: Option<String>,
    pub evidence_sha256: String,
    pub evidence_type: String,
    pub evidence_bytes: i64,
    /// Renewal charges refunded because the notice arrived before them.
    pub late_charges_refunded: i64,
    pub registered_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: Timestamp,
}

impl From<&WrittenNotice> for WrittenNoticeView {
    fn from(n: &WrittenNotice) -> WrittenNoticeView {
        WrittenNoticeView {
            id: n.id.to_string(),
            family_id: n.family_id.to_string(),
            subscription_id: n.subscription_id.to_string(),
            cancellation_id: n.cancellation_id.to_string(),
            received_at: n.received_at,
            sender: n.sender.clone(),
            tracking_number: n.tracking_number.clone(),
            evidence_sha256: n.evidence_sha256.clone(),
            evidence_type: n.evidence_type.clone(),
            evidence_bytes: n.evidence_bytes,
            late_charges_refunded: n.late_charges_refunded,
            registered_by: n.registered_by.clone(),
            registered_at: n.registered_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RegisteredNotice {
    pub written_notice: WrittenNoticeView,
    pub cancellation: CancellationView,
    pub receipt: ReceiptDocument,
}

/// A notice being registered, saved with its cancellation.
pub struct NoticeDraft {
    pub id: WrittenNoticeId,
    notice: WrittenNotice,
}

impl NoticeDraft {
    pub fn receipt_fields(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "received_at": self.notice.received_at.to_string(),
            "tracking_number": self.notice.tracking_number,
            "evidence_sha256": self.notice.evidence_sha256,
            "evidence_type": self.notice.evidence_type,
            "evidence_bytes": self.notice.evidence_bytes,
        })
    }

    pub async fn save(
        &self,
        tx: &mut Tx,
        cancellation_id: &baobao_domain::ids::CancellationId,
        late_charges_refunded: usize,
    ) -> ApiResult<()> {
        let mut notice = self.notice.clone();
        notice.cancellation_id = cancellation_id.clone();
        notice.late_charges_refunded = i64::try_from(late_charges_refunded).unwrap_or(i64::MAX);
        tx.insert_written_notice(&notice).await?;
        Ok(())
    }
}

fn parse_received(input: &WrittenNoticeInput, calendar: &Calendar) -> ApiResult<Timestamp> {
    match (&input.received_on, &input.received_at) {
        (Some(day), None) => {
            let date: jiff::civil::Date = day.parse().map_err(|_| ApiError::invalid_field("received_on", "date"))?;
            calendar.start_of_date(date).map_err(|_| ApiError::invalid_field("received_on", "date"))
        }
        (None, Some(instant)) => {
            instant.parse::<Timestamp>().map_err(|_| ApiError::invalid_field("received_at", "rfc3339_instant"))
        }
        _ => Err(ApiError::invalid_field("received_on", "received_on_or_at")),
    }
}

fn decode_evidence(evidence: &EvidenceInput) -> ApiResult<Vec<u8>> {
    if !EVIDENCE_TYPES.contains(&evidence.content_type.as_str()) {
        return Err(ApiError::unprocessable("evidence_type_not_allowed").with("types", EVIDENCE_TYPES.join(", ")));
    }
    if evidence.content_base64.len() > EVIDENCE_BYTES_MAX.div_ceil(3) * 4 + 4 {
        return Err(ApiError::unprocessable("evidence_too_large").with("max_bytes", EVIDENCE_BYTES_MAX));
    }
    let bytes = STANDARD
        .decode(evidence.content_base64.trim())
        .map_err(|_| ApiError::invalid_field("evidence.content_base64", "base64"))?;
    if bytes.len() > EVIDENCE_BYTES_MAX {
        return Err(ApiError::unprocessable("evidence_too_large").with("max_bytes", EVIDENCE_BYTES_MAX));
    }
    if !contents_match(&evidence.content_type, &bytes) {
        return Err(
            ApiError::unprocessable("evidence_type_mismatch").with("content_type", evidence.content_type.clone())
        );
    }
    Ok(bytes)
}

fn short_text(field: &str, text: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > max || t.chars().any(char::is_control)) {
        return Err(ApiError::invalid_field(field, "one_line_chars_max").with("max", max));
    }
    Ok(text.map(str::to_owned))
}

pub const SENDER_CHARS_MAX: usize = 200;
pub const TRACKING_CHARS_MAX: usize = 64;

/// Registers a letter or email asking to cancel: the quote is the one the
/// guardian would have had on the day it arrived; a renewal charged after
/// that day for a period the notice already ended is refunded in the same
/// transaction, and the guardian is told why.
pub async fn register_written_notice(
    state: &AppState,
    caller: &Caller,
    input: WrittenNoticeInput,
) -> ApiResult<RegisteredNotice> {
    caller.require_staff(&[Role::Agent, Role::Supervisor])?;
    let sender = short_text("sender", Some(&input.sender), SENDER_CHARS_MAX)?
        .ok_or_else(|| ApiError::invalid_field("sender", "required"))?;
    let tracking_number = short_text("tracking_number", input.tracking_number.as_deref(), TRACKING_CHARS_MAX)?;
    let option = lifecycle::parse_option(input.option.as_deref().unwrap_or("end_of_period"))?;
    let bytes = decode_evidence(&input.evidence)?;
    let (subscription, terms) =
        lifecycle::visible_subscription(state, caller, &input.subscription_id, lifecycle::STAFF_FILERS).await?;
    let received_at = parse_received(&input, &terms.schedule.calendar)?;
    let now = state.clock.now();
    if received_at > now {
        return Err(ApiError::unprocessable("received_in_future"));
    }
    if received_at < lifecycle::earliest_received_at(state)? {
        return Err(
            ApiError::unprocessable("received_too_long_ago").with("days", state.config.written_notice_age_days_max)
        );
    }
    let reason = lifecycle::parse_reason(input.reason)?;
    let evidence_sha256 = store_evidence(&state.config.data_dir, &bytes)?;
    let id = WrittenNoticeId::from_random(random_bytes());
    let notice = WrittenNotice {
        id: id.clone(),
        family_id: subscription.family_id.clone(),
        subscription_id: subscription.id.clone(),
        // Filled in by `NoticeDraft::save` once the cancellation exists.
        cancellation_id: baobao_domain::ids::CancellationId::from_random([0; 16]),
        received_at,
        sender,
        tracking_number,
        evidence_sha256,
        evidence_type: input.evidence.content_type,
        evidence_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        late_charges_refunded: 0,
        registered_by: caller.actor(),
        registered_at: now,
    };
    let request = Request {
        channel: Channel::WrittenNotice(Box::new(NoticeDraft { id: id.clone(), notice })),
        received_at,
        option,
        quote_id: None,
        reason,
    };
    let filed = lifecycle::file(state, caller, subscription, &terms, request).await?;
    let saved = state.store.written_notice(&id).await?;
    Ok(RegisteredNotice {
        written_notice: WrittenNoticeView::from(&saved),
        cancellation: CancellationView::from(&filed.cancellation),
        receipt: filed.receipt,
    })
}

/// The notices registered on one day of the support office (its time
/// zone), oldest first: the queue a supervisor checks.
pub async fn notices_registered_on(
    state: &AppState,
    caller: &Caller,
    day: Option<&str>,
) -> ApiResult<(jiff::civil::Date, Vec<WrittenNoticeView>)> {
    caller.require_staff(&[Role::Agent, Role::Supervisor, Role::Compliance, Role::Admin])?;
    let calendar = Calendar::new(&state.config.staff_time_zone).map_err(internal)?;
    let day: jiff::civil::Date = match day {
        Some(text) => text.parse().map_err(|_| ApiError::invalid_field("date", "date"))?,
        None => calendar.zoned(state.clock.now()).date(),
    };
    let start = calendar.start_of_date(day).map_err(internal)?;
    let end = calendar.start_of_date(day.tomorrow().map_err(internal)?).map_err(internal)?;
    let notices = state.store.written_notices_registered(start, end).await?;
    Ok((day, notices.iter().map(WrittenNoticeView::from).collect()))
}

/// The evidence file of a notice, for staff; every download is audited.
pub async fn evidence(state: &AppState, caller: &Caller, notice_id: &str) -> ApiResult<(String, Vec<u8>)> {
    caller.require_staff(&[Role::Agent, Role::Supervisor, Role::Compliance])?;
    let notice_id = WrittenNoticeId::parse(notice_id).map_err(|_| ApiError::not_found("written notice"))?;
    let notice = state.store.written_notice(&notice_id).await.or_not_found("written notice")?;
    let bytes = match std::fs::read(evidence_path(&state.config.data_dir, &notice.evidence_sha256)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::not_found("evidence")),
        Err(e) => return Err(internal(e)),
    };
    if hex::encode(Sha256::digest(&bytes)) != notice.evidence_sha256 {
        return Err(ApiError::internal("an evidence file does not match its SHA-256"));
    }
    let mut tx = state.store.begin().await?;
    tx.audit(
        state.clock.now(),
        &caller.actor(),
        "evidence.read",
        &[notice.family_id.as_str(), notice.id.as_str()],
        &json!({"sha256": notice.evidence_sha256}),
    )
    .await?;
    tx.commit().await?;
    Ok((notice.evidence_type, bytes))
}
