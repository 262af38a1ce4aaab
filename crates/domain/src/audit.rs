//! What one entry of the audit log is, as a leaf of its Merkle tree: the
//! canonical JSON (RFC 8785) of who did what to which ids and when, and the
//! SHA-256 of the signed document it produced, if any. Details (which may
//! name a person, and are minimised when the family's data goes) stay
//! beside the leaf, not in it: the log never has to change to forget.

use jiff::Timestamp;
use serde::Serialize;

use crate::canonical::{CanonicalError, canonical_json};
use crate::merkle::{Hash, leaf_hash};

#[derive(Serialize)]
struct Leaf<'a> {
    at: String,
    actor: &'a str,
    action: &'a str,
    subject_ids: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    document_sha256: Option<&'a str>,
}

/// The SHA-256 (hex) a signed document is logged by: of its canonical JSON,
/// so that a copy pretty-printed, re-indented or re-ordered by whoever kept
/// it is still found.
pub fn document_sha256(document: &serde_json::Value) -> Result<String, CanonicalError> {
    Ok(crate::canonical::sha256_hex(&canonical_json(document)?))
}

/// The leaf's bytes: canonical JSON of the entry's logged fields.
pub fn leaf_bytes(
    at: Timestamp,
    actor: &str,
    action: &str,
    subject_ids: &[String],
    document_sha256: Option<&str>,
) -> Result<Vec<u8>, CanonicalError> {
    canonical_json(&Leaf { at: at.to_string(), actor, action, subject_ids, document_sha256 })
}

/// The leaf's hash in the tree (RFC 9162: `SHA-256(0x00 ‖ leaf)`).
pub fn entry_leaf_hash(
    at: Timestamp,
    actor: &str,
    action: &str,
    subject_ids: &[String],
    document_sha256: Option<&str>,
) -> Result<Hash, CanonicalError> {
    Ok(leaf_hash(&leaf_bytes(at, actor, action, subject_ids, document_sha256)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_is_the_canonical_json_of_the_logged_fields() {
        let at: Timestamp = "2027-01-10T02:00:00Z".parse().unwrap();
        let subjects = vec!["fam_a".to_owned(), "sub_b".to_owned()];
        let bytes = leaf_bytes(at, "guardian:gdn_c", "subscription.created", &subjects, None).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"action":"subscription.created","actor":"guardian:gdn_c","at":"2027-01-10T02:00:00Z","subject_ids":["fam_a","sub_b"]}"#
        );
        let with_document = entry_leaf_hash(at, "system", "receipt.issued", &subjects, Some("ab")).unwrap();
        assert_ne!(with_document, entry_leaf_hash(at, "system", "receipt.issued", &subjects, None).unwrap());
    }
}
