//! The security headers every response carries, set in one layer.
//!
//! Pages may load only this site's own stylesheet and script, may not be
//! framed (the cancel and delete pages would otherwise be open to
//! clickjacking), send no referrer to other sites, and are never sniffed as
//! another type. Nothing dynamic is cached: statements, receipts, ZIPs and
//! JSON all carry a family's data, so they are `no-store` unless the
//! handler chose otherwise (the static assets). `Strict-Transport-Security`
//! is sent when the request came through a TLS-terminating proxy
//! (`X-Forwarded-Proto: https`, as the session cookie's `Secure` flag is
//! decided); browsers ignore it over plain HTTP anyway.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
     connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
pub const HSTS_SECONDS: u32 = 365 * 24 * 3600;

const ALWAYS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
];

/// The request came through a proxy that terminated TLS.
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

pub async fn security_headers(request: Request, next: Next) -> Response {
    let over_tls = over_tls(request.headers());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in ALWAYS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if over_tls {
        let value = format!("max-age={HSTS_SECONDS}; includeSubDomains");
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, value);
        }
    }
    response
}
