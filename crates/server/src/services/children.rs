//! Children's data as services: integrators' API keys, writing and reading
//! child records (sealed on the way in, opened on the way out), and the
//! compliance role's audited reads.

use std::collections::HashMap;

use axum::http::StatusCode;
use baobao_domain::ids::{ApiKeyId, ChildId, FamilyId, RecordId};
use baobao_store::{ApiKey, StoredRecord};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{self, Caller, Role};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::fields::{parse_name, parse_service};
use crate::idempotency::{answer_with_change, withheld_answer_with_change};
use crate::random::new_id;
use crate::random::random_bytes;
use crate::state::AppState;
use crate::vault::{DataKey, record_binding};
use crate::views::ChildView;
use crate::views::ConsentView;
use baobao_store::Child;

/// A record body may be at most this large, as JSON.
pub const RECORD_BODY_BYTES_MAX: usize = 64 * 1024;
pub const RECORDS_PAGE_DEFAULT: i64 = 100;
pub const REASON_CHARS_MAX: usize = 500;
pub const KIND_CHARS_MAX: usize = 32;

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(error.to_string())
}

// ------------------------------------------------------------------ API keys

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyInput {
    pub service: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: String,
    pub service: String,
    pub name: String,
    /// Shown once; only its SHA-256 is stored.
    pub key: String,
}

pub async fn create_api_key(state: &AppState, caller: &Caller, input: ApiKeyInput) -> ApiResult<ApiKeyCreated> {
    caller.require_staff(&[Role::Admin])?;
    let service = parse_service(&input.service)?;
    let name = input.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid_field("name", "chars_between").with("min", 1).with("max", 100));
    }
    let key = format!("{}{}", auth::API_KEY_PREFIX, crate::random::random_token(32));
    let now = state.clock.now();
    let stored = ApiKey {
        id: ApiKeyId::from_random(random_bytes()),
        service: service.clone(),
        name: name.clone(),
        key_sha256: crate::random::token_hash(&key),
        created_at: now,
        revoked_at: None,
    };
    let mut tx = state.store.begin().await?;
    tx.insert_api_key(&stored).await?;
    tx.audit(now, &caller.actor(), "api_key.created", &[stored.id.as_str()], &json!({"service": service})).await?;
    withheld_answer_with_change(&mut tx, StatusCode::CREATED).await?;
    tx.commit().await?;
    Ok(ApiKeyCreated { id: stored.id.to_string(), service, name, key })
}

// ------------------------------------------------------------------ records

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    /// `growth`, `learning_progress`, `safety_event`, or another declared kind (a-z, 0-9, _).
    pub kind: String,
    /// RFC 3339.
    pub recorded_at: String,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordCreated {
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    pub id: String,
    pub child_id: String,
    pub service: String,
    pub kind: String,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Timestamp,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordPage {
    pub records: Vec<RecordView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

fn parse_kind(kind: &str) -> ApiResult<String> {
    let ok = (2..=KIND_CHARS_MAX).contains(&kind.len())
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok { Ok(kind.to_owned()) } else { Err(ApiError::invalid_field("kind", "record_kind")) }
}

async fn child_or_404(state: &AppState, child_id: &str) -> ApiResult<baobao_store::Child> {
    let child_id = ChildId::parse(child_id).map_err(|_| ApiError::not_found("child"))?;
    state.store.child(&child_id).await.or_not_found("child")
}

/// Writes a record for a child whose family has a running subscription to
/// the integrator's service; the body is sealed before it reaches the store.
pub async fn write_record(
    state: &AppState,
    caller: &Caller,
    child_id: &str,
    input: RecordInput,
) -> ApiResult<RecordCreated> {
    let service = caller.require_integrator()?.to_owned();
    let kind = parse_kind(&input.kind)?;
    let now = state.clock.now();
    let recorded_at: Timestamp =
        input.recorded_at.parse().map_err(|_| ApiError::invalid_field("recorded_at", "rfc3339_instant"))?;
    let earliest: Timestamp = "2000-01-01T00:00:00Z".parse().map_err(internal)?;
    let latest = now.checked_add(jiff::SignedDuration::from_hours(24)).map_err(internal)?;
    if recorded_at < earliest || recorded_at > latest {
        return Err(ApiError::invalid_field("recorded_at", "recorded_at_range"));
    }
    let body = serde_json::to_vec(&input.body).map_err(internal)?;
    if body.len() > RECORD_BODY_BYTES_MAX {
        return Err(ApiError::invalid_field("body", "json_bytes_max").with("max", RECORD_BODY_BYTES_MAX));
    }
    let child = child_or_404(state, child_id).await?;
    if child.name.is_empty() {
        // Removed from the account (consent withdrawn): nothing more is kept.
        return Err(ApiError::conflict("child_removed"));
    }
    let mut tx = state.store.begin().await?;
    // The key is read under the family's lock: a re-keying is never half-way.
    tx.lock_family(&child.family_id, false).await?;
    if tx.live_subscriptions_of(&child.family_id, &service).await? == 0 {
        return Err(ApiError::conflict("not_subscribed").with("service", service));
    }
    let data_key = state
        .vault
        .data_key(child.family_id.as_str(), &service, true)
        .map_err(internal)?
        .ok_or_else(|| internal("no data key"))?;
    let id = RecordId::from_random(random_bytes());
    let sealed = data_key
        .seal(&body, &record_binding(id.as_str(), child.family_id.as_str(), child.id.as_str(), &service, &kind))
        .map_err(internal)?;
    let record = StoredRecord {
        id: id.clone(),
        family_id: child.family_id.clone(),
        child_id: child.id.clone(),
        service,
        kind,
        recorded_at,
        nonce: sealed.nonce,
        ciphertext: sealed.ciphertext,
        created_at: now,
    };
    tx.insert_record(&record).await?;
    let answer = RecordCreated { id: id.to_string() };
    answer_with_change(&mut tx, StatusCode::CREATED, &answer).await?;
    tx.commit().await?;
    Ok(answer)
}

/// Opens stored records, one data key per service, fetched once.
pub struct Opener<'a> {
    state: &'a AppState,
    family_id: FamilyId,
    keys: HashMap<String, Vec<DataKey>>,
}

impl<'a> Opener<'a> {
    pub fn new(state: &'a AppState, family_id: FamilyId) -> Opener<'a> {
        Opener { state, family_id, keys: HashMap::new() }
    }

    /// The record's body, or `data_deleted` when its key was destroyed.
    pub fn open(&mut self, record: &StoredRecord) -> ApiResult<serde_json::Value> {
        if !self.keys.contains_key(&record.service) {
            let keys = self.state.vault.data_keys(self.family_id.as_str(), &record.service).map_err(internal)?;
            self.keys.insert(record.service.clone(), keys);
        }
        let keys = self.keys.get(&record.service).map(Vec::as_slice).unwrap_or_default();
        if keys.is_empty() {
            return Err(ApiError::new(axum::http::StatusCode::GONE, "data_deleted"));
        }
        let plaintext = open_with(keys, record).map_err(internal)?;
        serde_json::from_slice(&plaintext).map_err(internal)
    }
}

/// The associated data a stored record's body is sealed with.
pub fn binding_of(record: &StoredRecord) -> String {
    record_binding(
        record.id.as_str(),
        record.family_id.as_str(),
        record.child_id.as_str(),
        &record.service,
        &record.kind,
    )
}

/// A record's plaintext under the first of `keys` that opens it (the
/// current key, or one a re-keying interrupted by a crash left).
pub fn open_with(keys: &[DataKey], record: &StoredRecord) -> Result<Vec<u8>, crate::vault::VaultError> {
    let binding = binding_of(record);
    keys.iter()
        .find_map(|key| key.open(&record.nonce, &record.ciphertext, &binding).ok())
        .ok_or(crate::vault::VaultError::Decrypt)
}

fn parse_cursor(after: Option<&str>) -> ApiResult<Option<(Timestamp, String)>> {
    let Some(after) = after else { return Ok(None) };
    let invalid = || ApiError::invalid_query("after", "cursor");
    let (micros, id) = after.split_once('.').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = Timestamp::from_microsecond(micros).map_err(|_| invalid())?;
    RecordId::parse(id).map_err(|_| invalid())?;
    Ok(Some((at, id.to_owned())))
}

/// A child's records: for the family's guardians, and for compliance staff
/// with a stated reason, which goes to the audit trail with every read.
pub async fn read_records(
    state: &AppState,
    caller: &Caller,
    child_id: &str,
    after: Option<&str>,
    limit: Option<i64>,
    reason: Option<&str>,
) -> ApiResult<RecordPage> {
    let child = child_or_404(state, child_id).await?;
    caller.require_family(&child.family_id, &[Role::Compliance], "child")?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if caller.is_staff() {
        match reason {
            Some(r) if r.chars().count() <= REASON_CHARS_MAX => {}
            _ => {
                return Err(ApiError::invalid_field("reason", "staff_reason").with("max", REASON_CHARS_MAX));
            }
        }
    }
    let limit = limit.unwrap_or(RECORDS_PAGE_DEFAULT).clamp(1, baobao_store::children::RECORDS_PAGE_MAX);
    let stored = state.store.records_of_child(&child.id, parse_cursor(after)?, limit).await?;
    let mut opener = Opener::new(state, child.family_id.clone());
    let mut records = Vec::with_capacity(stored.len());
    for record in &stored {
        records.push(RecordView {
            id: record.id.to_string(),
            child_id: record.child_id.to_string(),
            service: record.service.clone(),
            kind: record.kind.clone(),
            recorded_at: record.recorded_at,
            body: opener.open(record)?,
        });
    }
    if caller.is_staff() {
        let now = state.clock.now();
        let mut tx = state.store.begin().await?;
        tx.audit(
            now,
            &caller.actor(),
            "child_records.read",
            &[child.family_id.as_str(), child.id.as_str()],
            &json!({"reason": reason, "records": records.len()}),
        )
        .await?;
        tx.commit().await?;
    }
    let next = (i64::try_from(stored.len()).unwrap_or(0) == limit)
        .then(|| stored.last().map(|r| format!("{}.{}", r.recorded_at.as_microsecond(), r.id)))
        .flatten();
    Ok(RecordPage { records, next })
}

pub async fn children_of(state: &AppState, caller: &Caller, family_id: &FamilyId) -> ApiResult<Vec<ChildView>> {
    caller.require_family(family_id, &[Role::Agent, Role::Supervisor, Role::Compliance, Role::Admin], "family")?;
    Ok(state.store.children_of(family_id).await?.iter().map(crate::services::children::child_view).collect())
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
    let today = now.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let birth_date = crate::fields::parse_birth_date(&input.birth_date, today)?;
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
    let answer = child_view(&child);
    answer_with_change(&mut tx, StatusCode::CREATED, &answer).await?;
    tx.commit().await?;
    Ok(answer)
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
