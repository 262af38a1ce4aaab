//! Prefixed identifiers (`fam_…`, `sub_…`, `can_…`): one newtype per kind of
//! thing, so that a subscription id can never be passed where a family id is
//! expected, and a string from outside becomes an id only after its prefix
//! and characters were checked.

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A kind of identified thing and the prefix its ids carry.
pub trait IdKind {
    const PREFIX: &'static str;
}

/// The random part of an id: 20 characters of Crockford base32 (100 bits).
const ID_RANDOM_CHARS: usize = 20;
/// The characters of an id's random part.
pub const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

pub struct Id<K: IdKind> {
    text: String,
    kind: PhantomData<K>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid {expected_prefix}… id")]
pub struct IdError {
    pub expected_prefix: &'static str,
}

impl<K: IdKind> Id<K> {
    /// Builds a new id from random bytes supplied by the caller (the domain
    /// has no source of randomness of its own).
    pub fn from_random(random: [u8; 16]) -> Self {
        let mut bits = u128::from_be_bytes(random);
        let mut text = String::with_capacity(K::PREFIX.len() + 1 + ID_RANDOM_CHARS);
        text.push_str(K::PREFIX);
        text.push('_');
        for _ in 0..ID_RANDOM_CHARS {
            text.push(CROCKFORD[(bits & 31) as usize] as char);
            bits >>= 5;
        }
        Id { text, kind: PhantomData }
    }

    pub fn parse(text: &str) -> Result<Self, IdError> {
        let error = IdError { expected_prefix: K::PREFIX };
        let rest = text.strip_prefix(K::PREFIX).and_then(|rest| rest.strip_prefix('_')).ok_or(error.clone())?;
        let well_formed =
            !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !well_formed {
            return Err(error);
        }
        Ok(Id { text: text.to_owned(), kind: PhantomData })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Clone for IdError {
    fn clone(&self) -> Self {
        IdError { expected_prefix: self.expected_prefix }
    }
}

impl<K: IdKind> Clone for Id<K> {
    fn clone(&self) -> Self {
        Id { text: self.text.clone(), kind: PhantomData }
    }
}

impl<K: IdKind> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<K: IdKind> Eq for Id<K> {}

impl<K: IdKind> std::hash::Hash for Id<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<K: IdKind> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<K: IdKind> Serialize for Id<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de, K: IdKind> Deserialize<'de> for Id<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Id::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl<K: IdKind> std::str::FromStr for Id<K> {
    type Err = IdError;
    fn from_str(text: &str) -> Result<Self, IdError> {
        Id::parse(text)
    }
}

/// Declares the marker types; each line is one kind of id.
macro_rules! id_kinds {
    ($($marker:ident => $prefix:literal as $alias:ident),* $(,)?) => {
        $(
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
            pub enum $marker {}
            impl IdKind for $marker {
                const PREFIX: &'static str = $prefix;
            }
            pub type $alias = Id<$marker>;
        )*
    };
}

id_kinds! {
    Family => "fam" as FamilyId,
    Guardian => "gdn" as GuardianId,
    Child => "chd" as ChildId,
    Staff => "stf" as StaffId,
    Plan => "pln" as PlanId,
    Subscription => "sub" as SubscriptionId,
    Quote => "quo" as QuoteId,
    Cancellation => "can" as CancellationId,
    Receipt => "rcp" as ReceiptId,
    LedgerEntry => "led" as LedgerEntryId,
    BillingRun => "run" as BillingRunId,
    AuditEntry => "aud" as AuditEntryId,
    ApiKey => "key" as ApiKeyId,
    Record => "rec" as RecordId,
    Export => "exp" as ExportId,
    Deletion => "del" as DeletionId,
    WrittenNotice => "wrn" as WrittenNoticeId,
    WebhookEndpoint => "whk" as WebhookEndpointId,
    VerificationCode => "vfc" as VerificationCodeId,
    Dispute => "dsp" as DisputeId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_prefixes() {
        let id = SubscriptionId::from_random([7; 16]);
        assert!(id.as_str().starts_with("sub_"));
        assert_eq!(SubscriptionId::parse(id.as_str()), Ok(id.clone()));
        assert!(FamilyId::parse(id.as_str()).is_err());
        assert!(FamilyId::parse("fam_").is_err());
        assert!(FamilyId::parse("fam_ABC").is_err());
        assert!(FamilyId::parse("fam_abc'--").is_err());
    }
}
