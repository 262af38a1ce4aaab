//! Canonical JSON (RFC 8785) and the SHA-256 of it: what policies are hashed
//! over and what receipts and tree heads are signed over. One function, so
//! that the signer and the verifier can never canonicalize differently.

use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("value cannot be written as canonical JSON: {0}")]
pub struct CanonicalError(String);

pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| CanonicalError(e.to_string()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8785 sorts keys by UTF-16 code units and writes numbers in their
    /// shortest form; the expected text is written out by hand from the RFC.
    #[test]
    fn keys_are_sorted_and_whitespace_removed() {
        let value = serde_json::json!({"b": 1, "a": [true, null, "é"], "A": 1.0e2});
        let text = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
        assert_eq!(text, r#"{"A":100,"a":[true,null,"é"],"b":1}"#);
    }
}
