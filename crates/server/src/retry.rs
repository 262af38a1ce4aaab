//! Exponential backoff for work retried later: outbox deliveries and
//! payment attempts.

use jiff::SignedDuration;

/// `min_seconds` doubled per attempt already made, at most `max_seconds`.
pub fn backoff(attempts: i64, min_seconds: i64, max_seconds: i64) -> SignedDuration {
    let exponent = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    SignedDuration::from_secs(min_seconds.saturating_mul(1i64 << exponent).min(max_seconds))
}
