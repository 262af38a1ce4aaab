//! A form that does its work once, however often it is sent.
//!
//! Every form that moves money carries a `form_key`, fresh for each page
//! rendered. A double-click, a reload or a second tab sends the same key:
//! the first request does the work, and every other one waits for it and
//! is sent where the first was (its receipt, its subscription), instead
//! of doing the work again or showing "already subscribed". The keys live
//! in the same table as the API's `Idempotency-Key`s, scoped to the family
//! and the form, for the same replay window.

use std::future::Future;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use baobao_domain::ids::FamilyId;
use baobao_store::SavedResponse;
use baobao_store::requests::Claim;
use sha2::{Digest, Sha256};

use crate::idempotency::{IDEMPOTENCY_KEY_CHARS_MAX, replay_window_start};
use crate::state::AppState;

/// How long a repeated submission waits for the first one to finish.
pub const FORM_REPEAT_WAIT_MILLISECONDS_MAX: u64 = 15_000;
const FORM_REPEAT_POLL_MILLISECONDS: u64 = 50;

/// A fresh key for a form about to be rendered.
pub fn form_key() -> String {
    crate::random::random_token(18)
}

/// Runs `work` once per `form_key` of this family and form; a repeat gets
/// the first one's redirect. `fields` are what the form sent (a repeat
/// with other fields under the same key is done as a new request).
pub async fn once<Fut, E>(
    state: &AppState,
    family_id: &FamilyId,
    form: &str,
    form_key: &str,
    fields: &str,
    work: impl FnOnce() -> Fut,
) -> Result<Response, E>
where
    Fut: Future<Output = Result<Response, E>>,
{
    let usable = !form_key.is_empty()
        && form_key.len() <= IDEMPOTENCY_KEY_CHARS_MAX
        && form_key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !usable {
        return work().await;
    }
    let scope = format!("portal:{family_id}:{form}");
    let fields_sha256 = hex::encode(Sha256::digest(fields.as_bytes()));
    let mut waited_ms = 0;
    loop {
        let now = state.clock.wall_now();
        let claim = state
            .store
            .claim_idempotency_key(&scope, form_key, &fields_sha256, now, replay_window_start(now), &state.process_id)
            .await;
        match claim {
            Ok(Claim::Claimed) => break,
            Ok(Claim::Existing(first)) if first.request_sha256 != fields_sha256 => return work().await,
            Ok(Claim::Existing(first)) => match first.response {
                Some(SavedResponse::Replayable { status, body }) if status == StatusCode::SEE_OTHER.as_u16() => {
                    return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, body)]).into_response());
                }
                // The first ended without a redirect (it showed an error): this one tries afresh.
                Some(_) => return work().await,
                None if waited_ms < FORM_REPEAT_WAIT_MILLISECONDS_MAX => {
                    tokio::time::sleep(Duration::from_millis(FORM_REPEAT_POLL_MILLISECONDS)).await;
                    waited_ms += FORM_REPEAT_POLL_MILLISECONDS;
                }
                None => return work().await,
            },
            // The key table cannot be reached: the work's own guards still hold.
            Err(_) => return work().await,
        }
    }
    let result = work().await;
    let location = result.as_ref().ok().filter(|r| r.status() == StatusCode::SEE_OTHER).and_then(location_of);
    let saved = match location {
        Some(location) => {
            let response = SavedResponse::Replayable { status: StatusCode::SEE_OTHER.as_u16(), body: location };
            state.store.save_idempotent_response(&scope, form_key, &response, Some(family_id)).await
        }
        None => state.store.release_idempotency_key(&scope, form_key).await,
    };
    if let Err(error) = saved {
        tracing::warn!(%error, "could not record a form's answer");
    }
    result
}

fn location_of(response: &Response) -> Option<String> {
    response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
