//! `Idempotency-Key` on every POST: a retry with the same key and body gets
//! the first response again (with `Idempotent-Replayed: true`); the same
//! key with another body is 409.
//!
//! Saved responses are personal data and are treated as such: they are
//! kept for `IDEMPOTENCY_REPLAY_HOURS` (Stripe's window) and then pruned,
//! each names the family whose guardian received it (so a deletion of the
//! family's personal data deletes them in the same transaction), and a
//! response that carried a secret shown once — a session token, an API
//! key, a webhook signing secret — is never stored: its handler marks it
//! `Withheld`, and a retry with the same key answers 409
//! `idempotent_request_done` ("already done") instead of handing the
//! secret out a second time.
//!
//! Keys are scoped to the caller (the SHA-256 of the Authorization header,
//! or "anonymous") and the path, so two callers never collide. The key is
//! claimed before the handler runs; a second request while the first is
//! still running gets 409 `idempotency_in_progress`. A 5xx response is not
//! saved and frees the key, so the client's retry runs again.
//!
//! The answer is saved **in the change's transaction** wherever the
//! handler knows it before its commit (`answer_with_change`: subscribing,
//! cancelling, resuming, written notices, children, records, exports,
//! disputes and their messages, escalations and decisions, plans and
//! policies, verification codes; a secret's answer as `Withheld`: sign-up,
//! sign-in, API keys, webhook endpoints): the change and its answer are
//! one write, so a crash after the commit still leaves the client's retry
//! the original answer, and nothing is saved after the handler. Any other
//! answer is saved after the handler returns.
//!
//! A crash before an answer is saved leaves the key claimed by a process
//! that no longer beats (`state::heartbeat`): the next retry, on any
//! server, frees it at once (`claim_abandoned`; one of this process's own
//! keys that no request of its is answering — its release failed with the
//! database away — at once too; a key of an unnamed process after
//! `IDEMPOTENCY_STALE_SECONDS`). Whether the retry runs again depends on
//! whether the first run's change was committed: every transaction a
//! request commits marks its key `changed_at` in that same transaction
//! (`store::requests::with_key`). Not marked: nothing was changed, and the
//! request runs again — the answer it gives is the one the first run would
//! have given, which the client never received (an answer is sent only
//! after it is saved). Marked (a change whose answer is built after its
//! commits: a deletion, a staff account): the change is made and its answer
//! was lost with the process, so the request is never run a second time (it
//! would answer "already removed" to the request that removed it, or make a
//! second account); the retry gets 409 `idempotent_answer_lost`, saved as
//! the key's answer from then on, which says the request was carried out
//! and where to read its result. A billing run is resumable: it runs as a
//! task of its own, which no key marks, so its retry resumes it.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baobao_store::SavedResponse;
use baobao_store::requests::Claim;
use sha2::{Digest, Sha256};

use crate::auth::SavedFor;
use crate::error::ApiError;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;
pub const IDEMPOTENCY_STALE_SECONDS: i64 = 60;
/// How long a saved response is replayed, and kept.
pub const IDEMPOTENCY_REPLAY_HOURS: i64 = 24;
/// Request bodies are read whole to hash them; the API's body limit is this.
pub const REQUEST_BODY_BYTES_MAX: usize = 1024 * 1024;
/// No request body is ever larger: a written notice's evidence (4 MiB,
/// base64 in JSON) is the largest, and `support` checks it against this.
pub const REQUEST_BODY_BYTES_HARD_MAX: usize = 6 * 1024 * 1024;
pub const RESPONSE_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;

pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get("idempotency-key") else {
        return next.run(request).await;
    };
    let key = match key.to_str() {
        Ok(k)
            if !k.is_empty()
                && k.len() <= IDEMPOTENCY_KEY_CHARS_MAX
                && k.bytes().all(|b| (0x21..=0x7e).contains(&b)) =>
        {
            k.to_owned()
        }
        _ => return ApiError::bad_request("invalid_idempotency_key").into_response(),
    };
    let caller = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| hex::encode(Sha256::digest(v.as_bytes())))
        .unwrap_or_else(|| "anonymous".to_owned());
    let scope = format!("{caller}:{}", request.uri().path());
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, REQUEST_BODY_BYTES_HARD_MAX).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").into_response();
    };
    let request_sha256 = hex::encode(Sha256::digest(&bytes));
    // Real time: a retry comes seconds after the first try, whatever a
    // simulated business clock says.
    let now = state.clock.wall_now();
    let expired_before = replay_window_start(now);

    let process = state.process_id.as_str();
    // Counted before claiming: another request of this process with the key
    // sees this one, however the two interleave.
    let in_flight = format!("{scope}\u{0}{key}");
    let _answering = Answering::start(&state, in_flight.clone());
    let mut claim =
        state.store.claim_idempotency_key(&scope, &key, &request_sha256, now, expired_before, process).await;
    if let Ok(Claim::Existing(existing)) = &claim
        && existing.response.is_none()
        && existing.request_sha256 == request_sha256
        && claim_abandoned(&state, existing, &in_flight, now).await
    {
        if existing.changed_at.is_some() {
            // The change was committed, and the process died before its
            // answer was saved (the client never saw it): never a second
            // run; this answer, from now on, for every retry.
            let lost = ApiError::conflict("idempotent_answer_lost");
            save_error(&state, &scope, &key, &lost, None).await;
            return lost.into_response();
        }
        if state.store.release_idempotency_key(&scope, &key).await.is_ok() {
            claim =
                state.store.claim_idempotency_key(&scope, &key, &request_sha256, now, expired_before, process).await;
        }
    }
    match claim {
        Err(error) => return ApiError::from(error).into_response(),
        Ok(Claim::Existing(existing)) if existing.request_sha256 != request_sha256 => {
            return ApiError::conflict("idempotency_key_reused").into_response();
        }
        Ok(Claim::Existing(existing)) => {
            return match existing.response {
                Some(SavedResponse::Replayable { status, body }) => replay(status, body),
                Some(SavedResponse::Withheld { status }) => {
                    ApiError::conflict("idempotent_request_done").with("status", status).into_response()
                }
                None => ApiError::conflict("idempotency_in_progress").into_response(),
            };
        }
        Ok(Claim::Claimed) => {}
    }

    let owner = SavedFor::default();
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(owner.clone());
    let answer_owner = owner.clone();
    let (response, answered) = baobao_store::requests::with_key(
        scope.clone(),
        key.clone(),
        now,
        Box::new(move || answer_owner.family()),
        next.run(request),
    )
    .await;
    let family_id = owner.family();
    if response.status().is_server_error()
        || response.extensions().get::<ApiError>().is_some_and(|e| e.status.is_server_error())
    {
        // A key whose answer was committed with the change keeps it.
        let _ = state.store.release_idempotency_key(&scope, &key).await;
        return response;
    }
    // An ApiError is rendered later (it needs the locale); save what the
    // client will see by rendering it the same way on replay: keep the
    // error itself in the saved body.
    if let Some(error) = response.extensions().get::<ApiError>().cloned() {
        save_error(&state, &scope, &key, &error, family_id.as_ref()).await;
        return response;
    }
    if response.extensions().get::<Withheld>().is_some() {
        let saved = SavedResponse::Withheld { status: response.status().as_u16() };
        save_answer(&state, &scope, &key, saved, answered, family_id.as_ref()).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, RESPONSE_BODY_BYTES_MAX).await else {
        let _ = state.store.release_idempotency_key(&scope, &key).await;
        return ApiError::internal("response too large to save").into_response();
    };
    let saved =
        SavedResponse::Replayable { status: parts.status.as_u16(), body: String::from_utf8_lossy(&bytes).into_owned() };
    save_answer(&state, &scope, &key, saved, answered, family_id.as_ref()).await;
    Response::from_parts(parts, Body::from(bytes))
}

/// Saves the answer the client is sent, unless its handler already saved
/// this very answer with its change (`answer_with_change`): one write fewer.
async fn save_answer(
    state: &AppState,
    scope: &str,
    key: &str,
    sent: SavedResponse,
    answered: Option<SavedResponse>,
    family_id: Option<&baobao_domain::ids::FamilyId>,
) {
    match answered {
        Some(answered) if answered == sent => return,
        Some(_) => tracing::warn!(scope, "the answer saved with the change is not the one sent; the one sent is saved"),
        None => {}
    }
    if let Err(error) = state.store.save_idempotent_response(scope, key, &sent, family_id).await {
        tracing::warn!(%error, "could not save an idempotent response");
    }
}

/// Saves the answer of the request `tx` serves — `status` with `answer` as
/// its JSON body, exactly as the handler will send it — in `tx`, so that it
/// is committed with the change it reports: a crash after the commit leaves
/// the client's retry this original answer, not `idempotent_answer_lost`.
/// Nothing is written for a request without an Idempotency-Key.
pub async fn answer_with_change<T: serde::Serialize>(
    tx: &mut baobao_store::Tx,
    status: StatusCode,
    answer: &T,
) -> Result<(), ApiError> {
    if !baobao_store::requests::under_key() {
        return Ok(());
    }
    let body = serde_json::to_string(answer).map_err(|e| ApiError::internal(e.to_string()))?;
    tx.save_request_answer(SavedResponse::Replayable { status: status.as_u16(), body }).await?;
    Ok(())
}

/// `answer_with_change` for an answer that holds a secret shown once
/// (`Withheld`): only its status is saved, and a retry is told "already done".
pub async fn withheld_answer_with_change(tx: &mut baobao_store::Tx, status: StatusCode) -> Result<(), ApiError> {
    tx.save_request_answer(SavedResponse::Withheld { status: status.as_u16() }).await?;
    Ok(())
}

/// Saves an error answer for replay. An ApiError is rendered later (it
/// needs the locale): what is kept is the error itself, rendered the same
/// way on replay in the retry's language.
async fn save_error(
    state: &AppState,
    scope: &str,
    key: &str,
    error: &ApiError,
    family_id: Option<&baobao_domain::ids::FamilyId>,
) {
    let saved = serde_json::json!({"__api_error": {"status": error.status.as_u16(), "code": error.code, "details": error.details}});
    let saved = SavedResponse::Replayable { status: error.status.as_u16(), body: saved.to_string() };
    let _ = state.store.save_idempotent_response(scope, key, &saved, family_id).await;
}

/// Whether a key claimed without a response yet is no longer being worked
/// on: the process that claimed it stopped beating (it was killed or
/// crashed: freed at once, whichever server the retry reaches), or, for a
/// key of an unnamed process, it is older than `IDEMPOTENCY_STALE_SECONDS`.
pub async fn claim_abandoned(
    state: &AppState,
    existing: &baobao_store::IdempotentRequest,
    in_flight: &str,
    now: jiff::Timestamp,
) -> bool {
    let old = now.as_second() - existing.created_at.as_second() > IDEMPOTENCY_STALE_SECONDS;
    match existing.claimed_by.as_deref() {
        _ if old => true,
        // Ours, and no other request of ours holds it: its release failed.
        Some(process) if process == state.process_id => {
            state.in_flight.lock().unwrap_or_else(|p| p.into_inner()).get(in_flight).copied().unwrap_or(0) <= 1
        }
        Some(process) if process != state.process_id => {
            let alive_after =
                now.checked_sub(jiff::SignedDuration::from_secs(crate::state::PROCESS_ALIVE_SECONDS)).unwrap_or(now);
            // A database that cannot say leaves the key held: never two runs at once.
            !state.store.process_alive(process, alive_after).await.unwrap_or(true)
        }
        _ => false,
    }
}

/// A request of this process holding a key, for as long as it runs
/// (counted down however it ends, a panic included).
struct Answering<'a> {
    state: &'a AppState,
    key: String,
}

impl<'a> Answering<'a> {
    fn start(state: &'a AppState, key: String) -> Answering<'a> {
        *state.in_flight.lock().unwrap_or_else(|p| p.into_inner()).entry(key.clone()).or_insert(0) += 1;
        Answering { state, key }
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.state.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = in_flight.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.key);
            }
        }
    }
}

/// The start of the replay window that ends at `now`.
pub fn replay_window_start(now: jiff::Timestamp) -> jiff::Timestamp {
    now.checked_sub(jiff::SignedDuration::from_hours(IDEMPOTENCY_REPLAY_HOURS)).unwrap_or(now)
}

/// A response extension: this answer carries a secret shown only once, so
/// it is not saved for replay.
#[derive(Clone, Copy, Debug)]
pub struct Withheld;

/// Marks a response as `Withheld`.
pub fn withheld(mut response: Response) -> Response {
    response.extensions_mut().insert(Withheld);
    response
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(error) = value.get("__api_error")
    {
        let code = error.get("code").and_then(|c| c.as_str()).unwrap_or("conflict");
        let code = crate::messages::CATALOGUE.iter().map(|(c, _, _)| *c).find(|c| *c == code).unwrap_or("conflict");
        let mut api_error = ApiError::new(status, code);
        api_error.details = error.get("details").cloned().unwrap_or_default();
        let mut response = api_error.into_response();
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        return response;
    }
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}
