//! What the integrators' hot path keeps in the process: API keys recently
//! seen, and families' running subscriptions, each for a short time.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baobao_domain::ids::{ApiKeyId, FamilyId};
use baobao_store::Subscription;

/// How long a looked-up API key is trusted without asking the database.
pub const API_KEY_CACHE_SECONDS: u64 = 30;
pub const API_KEY_CACHE_ENTRIES_MAX: usize = 10_000;

/// How long a family's running subscription read for the entitlement check
/// is used without asking the database, at most. Changes this process
/// commits, and on PostgreSQL those of every other server
/// (`Store::follow_changes`), end it at once; this bounds only what cannot
/// be told: a `baobao` command writing beside a SQLite server, or a
/// notification lost while the listening connection was down.
pub const ENTITLEMENT_CACHE_MILLISECONDS: u128 = 2000;
pub const ENTITLEMENT_CACHE_ENTRIES_MAX: usize = 100_000;

/// A map whose entries last `lifetime` and which holds `entries_max` at
/// most: when full, what expired goes, and if that frees nothing, all.
struct Expiring<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    lifetime: Duration,
    entries_max: usize,
}

impl<K: Hash + Eq, V: Clone> Expiring<K, V> {
    fn new(lifetime: Duration, entries_max: usize) -> Self {
        Expiring { entries: Mutex::default(), lifetime, entries_max }
    }

    /// The value under `key`, if it has not expired and is still `current`.
    fn get<Q>(&self, key: &Q, current: impl Fn(&V) -> bool) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(key).filter(|(value, at)| at.elapsed() < self.lifetime && current(value)).map(|(v, _)| v.clone())
    }

    /// Keeps `value`; when full, first drops what expired or is no longer `current`.
    fn put(&self, key: K, value: V, current: impl Fn(&V) -> bool) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.entries_max {
            entries.retain(|_, (value, at)| at.elapsed() < self.lifetime && current(value));
            if entries.len() >= self.entries_max {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }
}

/// API keys recently seen, so that the entitlement check — called on every
/// request of every children's app — does not read the key each time.
/// Bounded by a short TTL: a revoked key stops working within
/// `API_KEY_CACHE_SECONDS` on every server.
pub struct ApiKeyCache(Expiring<String, CachedKey>);

/// A key's id and the service it is scoped to.
type CachedKey = (ApiKeyId, String);

impl Default for ApiKeyCache {
    fn default() -> Self {
        ApiKeyCache(Expiring::new(Duration::from_secs(API_KEY_CACHE_SECONDS), API_KEY_CACHE_ENTRIES_MAX))
    }
}

impl ApiKeyCache {
    pub fn get(&self, key_sha256: &str) -> Option<CachedKey> {
        self.0.get(key_sha256, |_| true)
    }

    pub fn put(&self, key_sha256: String, key_id: ApiKeyId, service: String) {
        self.0.put(key_sha256, (key_id, service), |_| true);
    }
}

/// The running subscription of each (family, service) recently checked, so
/// that the entitlement check — every request of every children's app —
/// is answered from memory. What is kept is the subscription, not the
/// answer: the rule is applied to it at every check with the clock's time,
/// so a cancellation that takes effect is seen by the next check.
pub struct EntitlementCache(Expiring<(FamilyId, String), CachedSubscription>);

/// A subscription (or none running), and `Store::subscriptions_epoch` as it
/// was before the subscription was read.
type CachedSubscription = (Option<Arc<Subscription>>, u64);

impl Default for EntitlementCache {
    fn default() -> Self {
        let lifetime = Duration::from_millis(ENTITLEMENT_CACHE_MILLISECONDS as u64);
        EntitlementCache(Expiring::new(lifetime, ENTITLEMENT_CACHE_ENTRIES_MAX))
    }
}

impl EntitlementCache {
    /// The subscription kept for (family, service), if it is still current
    /// at `epoch`: `Some(None)` is a family known to have none running.
    pub fn get(&self, family_id: &FamilyId, service: &str, epoch: u64) -> Option<Option<Arc<Subscription>>> {
        let key = (family_id.clone(), service.to_owned());
        self.0.get(&key, |(_, seen)| *seen == epoch).map(|(subscription, _)| subscription)
    }

    /// Keeps what was read after seeing `epoch`.
    pub fn put(&self, family_id: FamilyId, service: String, epoch: u64, subscription: Option<Arc<Subscription>>) {
        self.0.put((family_id, service), (subscription, epoch), |(_, seen)| *seen == epoch);
    }
}
