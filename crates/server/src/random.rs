//! Randomness and token hashing: ids, session tokens, API keys, request
//! ids. The operating system's random source, nothing else; a token is kept
//! only as its SHA-256.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing is not something to serve through.
    if getrandom::fill(&mut bytes).is_err() {
        panic!("the operating system's random source failed");
    }
    bytes
}

/// A new random id of any kind.
pub fn new_id<K: baobao_domain::ids::IdKind>() -> baobao_domain::Id<K> {
    baobao_domain::Id::from_random(random_bytes())
}

/// A random token of `bytes` bytes, base64url.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    if getrandom::fill(&mut buffer).is_err() {
        panic!("the operating system's random source failed");
    }
    URL_SAFE_NO_PAD.encode(buffer)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
