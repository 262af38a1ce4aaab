//! Webhooks to integrators: events about their service's subscriptions,
//! queued in the outbox with the change and delivered by its worker.
//!
//! Every delivery is a `POST` of the event's JSON with
//! `Baobao-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! A receiver recomputes the HMAC over the timestamp, a dot and the raw
//! body with the endpoint's secret, compares in constant time, and refuses
//! timestamps more than five minutes old (replays). A 2xx answer is
//! delivered; anything else is retried with exponential backoff, and every
//! delivery's state is in the endpoint's log.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use baobao_domain::ids::WebhookEndpointId;
use baobao_store::{OutboxMessage, WebhookEndpoint};
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::idempotency::withheld_answer_with_change;
use crate::random::{random_bytes, random_token};
use crate::state::AppState;

pub const SIGNATURE_HEADER: &str = "baobao-signature";
pub const DELIVERY_TIMEOUT_SECONDS: u64 = 10;
pub const URL_CHARS_MAX: usize = 2000;
pub const EVENT_TYPES: [&str; 6] = [
    "subscription.created",
    "subscription.renewed",
    "cancellation.scheduled",
    "cancellation.withdrawn",
    "subscription.cancelled",
    "refund.issued",
];

/// `t=…,v1=…` for a body sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(DELIVERY_TIMEOUT_SECONDS))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// One delivery attempt of a queued event; `Err` says why, for the log.
pub async fn deliver(state: &AppState, message: &OutboxMessage, now: Timestamp) -> Result<(), String> {
    let endpoint_id = WebhookEndpointId::parse(&message.recipient).map_err(|_| "no such endpoint".to_owned())?;
    let endpoint = state.store.webhook_endpoint(&endpoint_id).await.map_err(|e| e.to_string())?;
    if endpoint.disabled_at.is_some() {
        return Err("endpoint disabled".to_owned());
    }
    let body = message.payload.as_bytes().to_vec();
    let response = client()
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature(&endpoint.secret, now.as_second(), &body))
        .header("baobao-event-type", &message.template)
        .header("user-agent", "baobao-webhooks/1")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    if response.status().is_success() { Ok(()) } else { Err(format!("HTTP {}", response.status().as_u16())) }
}

// ---------------------------------------------------------------- endpoints

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    pub service: String,
    /// `https://…` (or `http://` for a receiver on the same host).
    pub url: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub service: String,
    pub url: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    pub disabled: bool,
}

impl From<&WebhookEndpoint> for EndpointView {
    fn from(e: &WebhookEndpoint) -> EndpointView {
        EndpointView {
            id: e.id.to_string(),
            service: e.service.clone(),
            url: e.url.clone(),
            created_at: e.created_at,
            disabled: e.disabled_at.is_some(),
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The signing secret: shown once, here.
    pub secret: String,
    pub event_types: Vec<String>,
}

fn check_url(text: &str) -> ApiResult<String> {
    let text = text.trim();
    let bad = || ApiError::invalid_field("url", "https_url");
    if text.len() > URL_CHARS_MAX {
        return Err(bad());
    }
    let url = reqwest::Url::parse(text).map_err(|_| bad())?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => {}
        "http" if local => {}
        _ => return Err(bad()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid_field("url", "url_credentials"));
    }
    Ok(url.to_string())
}

/// Admins register an integrator's endpoint for one service.
pub async fn create_endpoint(state: &AppState, caller: &Caller, input: EndpointInput) -> ApiResult<CreatedEndpoint> {
    caller.require_staff(&[Role::Admin])?;
    let service = crate::fields::parse_service(&input.service)?;
    let url = check_url(&input.url)?;
    let now = state.clock.now();
    let endpoint = WebhookEndpoint {
        id: WebhookEndpointId::from_random(random_bytes()),
        service,
        url,
        secret: format!("whsec_{}", random_token(32)),
        created_by: caller.actor(),
        created_at: now,
        disabled_at: None,
    };
    let mut tx = state.store.begin().await?;
    tx.insert_webhook_endpoint(&endpoint).await?;
    tx.audit(
        now,
        &caller.actor(),
        "webhook_endpoint.created",
        &[endpoint.id.as_str()],
        &json!({"service": endpoint.service, "url": endpoint.url}),
    )
    .await?;
    // The answer holds the signing secret: a retry is told "done", never given it.
    withheld_answer_with_change(&mut tx, StatusCode::CREATED).await?;
    tx.commit().await?;
    Ok(CreatedEndpoint {
        endpoint: EndpointView::from(&endpoint),
        secret: endpoint.secret,
        event_types: EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
    })
}

pub const STAFF_DELIVERY_READERS: &[Role] =
    &[Role::Agent, Role::Supervisor, Role::Finance, Role::Compliance, Role::Admin];

pub async fn endpoints(state: &AppState, caller: &Caller) -> ApiResult<Vec<EndpointView>> {
    caller.require_staff(STAFF_DELIVERY_READERS)?;
    Ok(state.store.webhook_endpoints().await?.iter().map(EndpointView::from).collect())
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub event_type: String,
    /// `pending` (waiting or retrying), `sent` or `failed` (gave up).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub next_attempt_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<Timestamp>,
    pub event: serde_json::Value,
}

pub const DELIVERIES_LISTED_MAX: u32 = 200;

/// An endpoint's delivery log, newest first.
pub async fn deliveries(state: &AppState, caller: &Caller, endpoint_id: &str) -> ApiResult<Vec<DeliveryView>> {
    caller.require_staff(STAFF_DELIVERY_READERS)?;
    let endpoint_id = WebhookEndpointId::parse(endpoint_id).map_err(|_| ApiError::not_found("webhook endpoint"))?;
    state.store.webhook_endpoint(&endpoint_id).await.or_not_found("webhook endpoint")?;
    let messages = state.store.deliveries_to(endpoint_id.as_str(), DELIVERIES_LISTED_MAX).await?;
    Ok(messages
        .iter()
        .map(|m| DeliveryView {
            id: m.id.clone(),
            event_type: m.template.clone(),
            status: m.status.clone(),
            attempts: m.attempts,
            last_error: m.last_error.clone(),
            created_at: m.created_at,
            next_attempt_at: m.next_attempt_at,
            sent_at: m.sent_at,
            event: serde_json::from_str(&m.payload).unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 does not cover this framing; the value is pinned so a
        // change to the scheme is seen (receivers depend on it).
        let signed = signature("whsec_test", 1_700_000_000, br#"{"id":"evt_1"}"#);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"whsec_test").unwrap();
        mac.update(br#"1700000000.{"id":"evt_1"}"#);
        assert_eq!(signed, format!("t=1700000000,v1={}", hex::encode(mac.finalize().into_bytes())));
        assert_ne!(signed, signature("whsec_other", 1_700_000_000, br#"{"id":"evt_1"}"#));
        assert_ne!(signed, signature("whsec_test", 1_700_000_001, br#"{"id":"evt_1"}"#));
    }

    #[test]
    fn endpoints_must_be_https_except_on_this_host() {
        assert!(check_url("https://hooks.example.com/baobao").is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("http://hooks.example.com/baobao").is_err());
        assert!(check_url("ftp://example.com").is_err());
        assert!(check_url("https://user:pw@example.com/").is_err());
        assert!(check_url("not a url").is_err());
    }
}
