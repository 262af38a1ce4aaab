//! API keys recently seen, kept in the process for a short time.

use baobao_domain::ids::ApiKeyId;

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
