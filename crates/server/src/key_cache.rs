//! What the integrators' hot path keeps in the process: API keys recently
//! seen, and families' running subscriptions, each for a short time.

use baobao_domain::ids::{ApiKeyId, FamilyId};
use baobao_store::Subscription;

/// How long a looked-up API key is trusted without asking the database.
pub const API_KEY_CACHE_SECONDS: u64 = 30;
pub const API_KEY_CACHE_ENTRIES_MAX: usize = 10_000;

/// API keys recently seen, so that the entitlement check — called on every
/// request of every children's app — costs one database read, not two.
/// Bounded by a short TTL: a revoked key stops working within
/// `API_KEY_CACHE_SECONDS` on every server.
#[derive(Default)]
pub struct ApiKeyCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (CachedKey, std::time::Instant)>>,
}

/// A key's id and the service it is scoped to.
type CachedKey = (ApiKeyId, String);

impl ApiKeyCache {
    pub fn get(&self, key_sha256: &str) -> Option<CachedKey> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key_sha256)
            .filter(|(_, at)| at.elapsed().as_secs() < API_KEY_CACHE_SECONDS)
            .map(|(key, _)| key.clone())
    }

    pub fn put(&self, key_sha256: String, key_id: ApiKeyId, service: String) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= API_KEY_CACHE_ENTRIES_MAX {
            entries.retain(|_, (_, at)| at.elapsed().as_secs() < API_KEY_CACHE_SECONDS);
            if entries.len() >= API_KEY_CACHE_ENTRIES_MAX {
                entries.clear();
            }
        }
        entries.insert(key_sha256, ((key_id, service), std::time::Instant::now()));
    }
}

/// How long a family's running subscription read for the entitlement check
/// is used without asking the database, at most. Changes this process
/// commits, and on PostgreSQL those of every other server
/// (`Store::follow_changes`), end it at once; this bounds only what cannot
/// be told: a `baobao` command writing beside a SQLite server, or a
/// notification lost while the listening connection was down.
pub const ENTITLEMENT_CACHE_MILLISECONDS: u128 = 2000;
pub const ENTITLEMENT_CACHE_ENTRIES_MAX: usize = 100_000;

/// The running subscription of each (family, service) recently checked, so
/// that the entitlement check — every request of every children's app —
/// is answered from memory. What is kept is the subscription, not the
/// answer: the rule is applied to it at every check with the clock's time,
/// so a cancellation that takes effect is seen by the next check.
#[derive(Default)]
pub struct EntitlementCache {
    entries: std::sync::Mutex<std::collections::HashMap<(FamilyId, String), CachedSubscription>>,
}

struct CachedSubscription {
    subscription: Option<std::sync::Arc<Subscription>>,
    /// `Store::subscriptions_epoch` before it was read.
    epoch: u64,
    at: std::time::Instant,
}

impl EntitlementCache {
    /// The subscription kept for (family, service), if it is still current
    /// at `epoch`: `Some(None)` is a family known to have none running.
    pub fn get(&self, family_id: &FamilyId, service: &str, epoch: u64) -> Option<Option<std::sync::Arc<Subscription>>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&(family_id.clone(), service.to_owned()))
            .filter(|cached| cached.epoch == epoch && cached.at.elapsed().as_millis() < ENTITLEMENT_CACHE_MILLISECONDS)
            .map(|cached| cached.subscription.clone())
    }

    /// Keeps what was read after seeing `epoch`.
    pub fn put(
        &self,
        family_id: FamilyId,
        service: String,
        epoch: u64,
        subscription: Option<std::sync::Arc<Subscription>>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= ENTITLEMENT_CACHE_ENTRIES_MAX {
            entries.retain(|_, cached| {
                cached.epoch == epoch && cached.at.elapsed().as_millis() < ENTITLEMENT_CACHE_MILLISECONDS
            });
            if entries.len() >= ENTITLEMENT_CACHE_ENTRIES_MAX {
                entries.clear();
            }
        }
        entries.insert((family_id, service), CachedSubscription { subscription, epoch, at: std::time::Instant::now() });
    }
}
