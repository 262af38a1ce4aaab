//! One-time codes: how an agent verifies a guardian on the phone before
//! cancelling on their behalf, or records why they could not.

use axum::http::StatusCode;
use baobao_domain::ids::{FamilyId, VerificationCodeId};
use baobao_store::Tx;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::idempotency::answer_with_change;
use crate::random::{random_bytes, token_hash};
use crate::state::{AppState, Parts};

pub const CODE_DIGITS: u32 = 6;
pub const CODE_VALID_MINUTES: i64 = 10;
/// Wrong entries before a code is dead.
pub const CODE_ATTEMPTS_MAX: i64 = 5;
/// Codes sent to one family per window, then a pause.
pub const CODES_PER_WINDOW_MAX: i64 = 3;
pub const CODE_WINDOW_MINUTES: i64 = 15;
pub const OVERRIDE_REASON_CHARS_MIN: usize = 10;
pub const OVERRIDE_REASON_CHARS_MAX: usize = 1000;

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
    crate::services::outbox::email_guardians(
        &mut tx,
        state,
        &guardians,
        "verification_code",
        code_id.as_str(),
        &payload,
    )
    .await?;
    tx.audit(
        state.clock.now(),
        &caller.actor(),
        "verification.code_sent",
        &[family_id.as_str(), code_id.as_str()],
        &json!({"expires_at": expires_at.to_string()}),
    )
    .await?;
    let answer = CodeSentView {
        id: code_id.to_string(),
        expires_at,
        sent_to: guardians.iter().map(|g| mask_email(&g.email)).collect(),
    };
    answer_with_change(&mut tx, StatusCode::CREATED, &answer).await?;
    tx.commit().await?;
    Ok(answer)
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
