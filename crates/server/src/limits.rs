//! Per-address limits on the routes that create accounts and sessions.
//!
//! Signing up and signing in cost Argon2 work and invite guessing, so each
//! client address may do only so many: `sign_ups_per_address_per_hour`
//! sign-ups and `sign_ins_per_address_per_minute` sign-ins (API and portal
//! and console forms alike), each with a burst of the same size. Beyond
//! that the answer is 429 with `Retry-After` and the JSON error body in the
//! caller's locale. The per-account pause after wrong passwords is a
//! separate, database-held limit (`auth::LoginLimit`).
//!
//! The counters live in the process (governor's GCRA, keyed by address):
//! with N servers behind a balancer an address gets N times the configured
//! rate, so operators running several servers divide the setting by N (see
//! docs/operations.md). Behind a reverse proxy the address is the last hop
//! of `X-Forwarded-For` that is not one of `trusted_proxies`; from anyone
//! else the header is ignored, so it cannot be forged to dodge the limit.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{Quota, RateLimiter, clock::Clock as _, clock::DefaultClock, state::keyed::DefaultKeyedStateStore};

use crate::error::ApiError;

type KeyedLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

pub struct AddressLimits {
    sign_ups: KeyedLimiter,
    sign_ins: KeyedLimiter,
    trusted_proxies: Vec<IpAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limited {
    SignUp,
    SignIn,
}

fn limited(method: &Method, path: &str) -> Option<Limited> {
    if method != Method::POST {
        return None;
    }
    match path {
        "/v1/families" | "/signup" => Some(Limited::SignUp),
        "/v1/auth/sessions" | "/login" | "/console/login" => Some(Limited::SignIn),
        _ => None,
    }
}

impl AddressLimits {
    pub fn new(sign_ups_per_hour: u32, sign_ins_per_minute: u32, trusted_proxies: Vec<IpAddr>) -> AddressLimits {
        let at_least_one = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        AddressLimits {
            sign_ups: RateLimiter::keyed(Quota::per_hour(at_least_one(sign_ups_per_hour))),
            sign_ins: RateLimiter::keyed(Quota::per_minute(at_least_one(sign_ins_per_minute))),
            trusted_proxies,
        }
    }

    /// The client: the peer, or behind a trusted proxy the last address it forwarded for.
    fn client(&self, request: &Request) -> Option<IpAddr> {
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let hops = forwarded.split(',').rev().filter_map(|hop| hop.trim().parse::<IpAddr>().ok());
        Some(hops.into_iter().find(|hop| !self.trusted_proxies.contains(hop)).unwrap_or(peer))
    }

    /// Forgets addresses whose allowance is full again; keeps memory bounded.
    pub fn forget_idle(&self) {
        self.sign_ups.retain_recent();
        self.sign_ins.retain_recent();
        self.sign_ups.shrink_to_fit();
        self.sign_ins.shrink_to_fit();
    }
}

pub async fn per_address(
    State(limits): State<std::sync::Arc<AddressLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(kind) = limited(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let Some(client) = limits.client(&request) else {
        return next.run(request).await;
    };
    let limiter = match kind {
        Limited::SignUp => &limits.sign_ups,
        Limited::SignIn => &limits.sign_ins,
    };
    match limiter.check_key(&client) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
                .with("retry_after_seconds", wait.as_secs().max(1))
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_from(peer: &str, forwarded: Option<&str>) -> Request {
        let mut request = Request::builder().method(Method::POST).uri("/v1/families");
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        let mut request = request.body(axum::body::Body::empty()).unwrap_or_default();
        request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap_or(([0, 0, 0, 0], 0).into())));
        request
    }

    #[test]
    fn the_forwarded_address_counts_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = [10, 0, 0, 1].into();
        let limits = AddressLimits::new(1, 1, vec![proxy]);
        let client = |peer, forwarded| limits.client(&request_from(peer, forwarded)).map(|ip| ip.to_string());
        assert_eq!(client("203.0.113.9:5000", Some("198.51.100.7")), Some("203.0.113.9".to_owned()));
        assert_eq!(client("10.0.0.1:5000", Some("198.51.100.7")), Some("198.51.100.7".to_owned()));
        assert_eq!(client("10.0.0.1:5000", Some("1.2.3.4, 198.51.100.7, 10.0.0.1")), Some("198.51.100.7".to_owned()));
        assert_eq!(client("10.0.0.1:5000", None), Some("10.0.0.1".to_owned()));
    }

    #[test]
    fn a_burst_past_the_allowance_is_held_back_per_address() {
        let limits = AddressLimits::new(3, 3, Vec::new());
        let (a, b): (IpAddr, IpAddr) = ([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        assert!((0..3).all(|_| limits.sign_ups.check_key(&a).is_ok()));
        assert!(limits.sign_ups.check_key(&a).is_err());
        assert!(limits.sign_ups.check_key(&b).is_ok(), "another address has its own allowance");
        assert!(limits.sign_ins.check_key(&a).is_ok(), "sign-ins are counted apart");
    }
}
