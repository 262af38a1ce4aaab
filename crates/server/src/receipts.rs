//! Signed receipts: the durable acknowledgment of anything a guardian may
//! need to prove. A receipt is `{id, kind, body, signature}`; the signature
//! is Ed25519 over the canonical JSON (RFC 8785) of `body`, and `body`
//! repeats the id and kind so that neither can be swapped unnoticed.

use baobao_domain::canonical::canonical_json;
use baobao_domain::ids::{FamilyId, ReceiptId};
use baobao_domain::receipt::{ReceiptBody, SignedBody};
use baobao_store::StoredReceipt;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::keys::{KeySet, SignatureBlock, SigningKeys, VerifyError};
use crate::state::Parts;

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReceiptDocument {
    pub id: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub signature: SignatureBlock,
}

/// Receipt numbers (回执号) read aloud on the phone: `BB-YYYYMMDD-XXXXXXXX`,
/// dated as the family's calendar dates it (a receipt issued at 01:00 in
/// Shanghai carries that day, not UTC's day before).
pub fn receipt_number(issued_at: Timestamp, time_zone: &str, random: [u8; 5]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bits = u64::from_be_bytes([0, 0, 0, random[0], random[1], random[2], random[3], random[4]]);
    let mut suffix = String::with_capacity(8);
    for _ in 0..8 {
        suffix.push(ALPHABET[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    let zone = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let date = issued_at.to_zoned_datetime(zone).strftime("%Y%m%d");
    format!("BB-{date}-{suffix}")
}

/// Signs `body` as a receipt about `subject_id` and returns what the store
/// keeps and what the caller is shown.
pub fn issue(
    parts: &Parts,
    family_id: &FamilyId,
    time_zone: &str,
    subject_id: &str,
    issued_at: Timestamp,
    body: ReceiptBody,
) -> Result<(StoredReceipt, ReceiptDocument), ApiError> {
    let id = ReceiptId::from_random(crate::random::random_bytes());
    let number = receipt_number(issued_at, time_zone, crate::random::random_bytes());
    let kind = body.kind();
    let signed = SignedBody {
        receipt_id: id.as_str().to_owned(),
        receipt_number: number.clone(),
        family_id: family_id.as_str().to_owned(),
        issued_at,
        provider: parts.config.provider.is_set().then(|| parts.config.provider.clone()),
        body,
    };
    let document = sign(&parts.keys, &signed)?;
    let stored = StoredReceipt {
        id,
        family_id: family_id.clone(),
        number,
        kind: kind.to_owned(),
        subject_id: subject_id.to_owned(),
        document: serde_json::to_string(&document).map_err(|e| ApiError::internal(e.to_string()))?,
        created_at: issued_at,
    };
    Ok((stored, document))
}

/// The signed document of a body: Ed25519 over its canonical JSON.
pub fn sign(keys: &SigningKeys, signed: &SignedBody) -> Result<ReceiptDocument, ApiError> {
    let fields = serde_json::to_value(signed).map_err(|e| ApiError::internal(e.to_string()))?;
    let message = canonical_json(&fields).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ReceiptDocument {
        id: signed.receipt_id.clone(),
        kind: signed.body.kind().to_owned(),
        body: fields,
        signature: keys.sign(&message),
    })
}

impl ReceiptDocument {
    /// The body, read back into its kind's fields.
    pub fn signed_body(&self) -> Result<SignedBody, serde_json::Error> {
        SignedBody::deserialize(&self.body)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptCheckError {
    #[error("the receipt's id or kind differs from its signed body")]
    Relabelled,
    #[error("the receipt body cannot be canonicalized")]
    Canonical,
    #[error(transparent)]
    Signature(#[from] VerifyError),
}

/// Checks a receipt document against published keys, offline.
pub fn verify(document: &ReceiptDocument, keys: &KeySet) -> Result<(), ReceiptCheckError> {
    let body_id = document.body.get("receipt_id").and_then(|v| v.as_str());
    let body_kind = document.body.get("kind").and_then(|v| v.as_str());
    if body_id != Some(document.id.as_str()) || body_kind != Some(document.kind.as_str()) {
        return Err(ReceiptCheckError::Relabelled);
    }
    let message = canonical_json(&document.body).map_err(|_| ReceiptCheckError::Canonical)?;
    keys.verify(&message, &document.signature)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_number_carries_the_familys_local_date() {
        // 01:00 on 10 January in Shanghai is still 9 January in UTC.
        let at: Timestamp = "2027-01-09T17:00:00Z".parse().unwrap();
        assert!(receipt_number(at, "Asia/Shanghai", [0; 5]).starts_with("BB-20270110-"));
        assert!(receipt_number(at, "UTC", [0; 5]).starts_with("BB-20270109-"));
        assert!(
            receipt_number(at, "Not/AZone", [0; 5]).starts_with("BB-20270109-"),
            "an unknown zone falls back to UTC"
        );
    }

    #[test]
    fn an_issued_receipt_verifies_and_a_tampered_one_does_not() {
        let keys = SigningKeys::from_secret([3; 32]);
        let family = FamilyId::from_random([1; 16]);
        let at: Timestamp = "2027-01-10T02:00:00Z".parse().unwrap();
        let body = ReceiptBody::Withdrawal(baobao_domain::receipt::WithdrawalReceipt {
            cancellation_id: "can_x".into(),
            subscription_id: "sub_x".into(),
            channel: "self_service".into(),
            withdrawn_at: at,
            cancellation_would_have_taken_effect_at: at,
            terms: baobao_domain::receipt::TermsRef { policy_version: 1, policy_sha256: "ab".into() },
        });
        let signed = SignedBody {
            receipt_id: ReceiptId::from_random([2; 16]).to_string(),
            receipt_number: receipt_number(at, "UTC", [9; 5]),
            family_id: family.to_string(),
            issued_at: at,
            provider: None,
            body: body.clone(),
        };
        let document = sign(&keys, &signed).unwrap();
        assert_eq!(verify(&document, &keys.key_set()), Ok(()));
        assert!(document.body["receipt_number"].as_str().unwrap().starts_with("BB-20270110-"));
        assert_eq!(document.kind, "withdrawal");
        assert_eq!(document.signed_body().unwrap().body, body, "reads back as it was built");

        let mut tampered = document.clone();
        tampered.body["policy_version"] = 2.into();
        assert!(matches!(verify(&tampered, &keys.key_set()), Err(ReceiptCheckError::Signature(VerifyError::Mismatch))));
        let mut relabelled = document;
        relabelled.kind = "refund".into();
        assert_eq!(verify(&relabelled, &keys.key_set()), Err(ReceiptCheckError::Relabelled));
    }
}
