//! The server's Ed25519 signing key: generated on first start and kept in
//! the data directory (readable by the server's user only), published at
//! `/.well-known/baobao/keys.json`, and used to sign receipts. Verifying
//! needs only the published key, so anyone can check a receipt offline.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const SIGNING_KEY_FILE: &str = "signing-key.ed25519";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the signing key at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the signing key file {0} is damaged (expected 64 hex characters)")]
    Damaged(PathBuf),
    #[error("no randomness available: {0}")]
    Random(String),
}

pub struct SigningKeys {
    key: SigningKey,
    key_id: String,
}

/// A public key as published in keys.json.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PublicKey {
    pub key_id: String,
    pub alg: String,
    /// The 32-byte Ed25519 public key, base64url without padding.
    pub public_key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeySet {
    pub keys: Vec<PublicKey>,
}

/// A signature as it appears in receipts, manifests and tree heads.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SignatureBlock {
    pub alg: String,
    pub key_id: String,
    /// base64url (no padding) of the 64-byte signature.
    pub value: String,
}

impl SigningKeys {
    /// Loads the key from `data_dir`, creating the directory and a new key
    /// the first time.
    pub fn load_or_create(data_dir: &Path) -> Result<SigningKeys, KeyError> {
        let path = data_dir.join(SIGNING_KEY_FILE);
        let io = |source| KeyError::Io { path: path.clone(), source };
        if path.exists() {
            let text = fs::read_to_string(&path).map_err(io)?;
            let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Damaged(path.clone()))?;
            let secret: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Damaged(path.clone()))?;
            return Ok(SigningKeys::from_secret(secret));
        }
        fs::create_dir_all(data_dir).map_err(io)?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        file.write_all(hex::encode(secret).as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(SigningKeys::from_secret(secret))
    }

    pub fn from_secret(secret: [u8; 32]) -> SigningKeys {
        let key = SigningKey::from_bytes(&secret);
        let key_id = key_id_of(&key.verifying_key());
        SigningKeys { key, key_id }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id.clone(),
            alg: "Ed25519".to_owned(),
            public_key: URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes()),
        }
    }

    pub fn key_set(&self) -> KeySet {
        KeySet { keys: vec![self.public()] }
    }

    pub fn sign(&self, message: &[u8]) -> SignatureBlock {
        let signature = self.key.sign(message);
        SignatureBlock {
            alg: "Ed25519".to_owned(),
            key_id: self.key_id.clone(),
            value: URL_SAFE_NO_PAD.encode(signature.to_bytes()),
        }
    }
}

/// What a link token opens: one receipt.
const RECEIPT_LINK: &str = "receipt";
/// Or one dispute, its timeline and its dossier.
const DISPUTE_LINK: &str = "dispute";

impl SigningKeys {
    /// An unguessable token for a link that opens one document without
    /// signing in (the link in a receipt's or a certificate's email, which
    /// must keep working after the account is closed): an HMAC of what it
    /// opens, under a key derived from the signing key. Nothing is stored.
    pub fn link_token(&self, purpose: &str, id: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.link_mac(purpose, id).finalize().into_bytes())
    }

    /// Whether `token` opens `id` for `purpose` (compared in constant time).
    pub fn link_token_opens(&self, purpose: &str, id: &str, token: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(token) else { return false };
        self.link_mac(purpose, id).verify_slice(&bytes).is_ok()
    }

    /// The portal path that opens a receipt without signing in: the link
    /// its email carries (see `portal::public`). It keeps working after the
    /// account is closed.
    pub fn receipt_link(&self, receipt_id: &str) -> String {
        format!("/r/{receipt_id}/{}", self.link_token(RECEIPT_LINK, receipt_id))
    }

    /// Whether `token` is the link token of `receipt_id`.
    pub fn opens_receipt(&self, receipt_id: &str, token: &str) -> bool {
        self.link_token_opens(RECEIPT_LINK, receipt_id, token)
    }

    /// The portal path that opens a dispute without signing in: the link
    /// its emails carry, for a guardian whose account closed.
    pub fn dispute_link(&self, dispute_id: &str) -> String {
        format!("/d/{dispute_id}/{}", self.link_token(DISPUTE_LINK, dispute_id))
    }

    /// Whether `token` is the link token of `dispute_id`.
    pub fn opens_dispute(&self, dispute_id: &str, token: &str) -> bool {
        self.link_token_opens(DISPUTE_LINK, dispute_id, token)
    }

    fn link_mac(&self, purpose: &str, id: &str) -> Hmac<Sha256> {
        let key = Sha256::new().chain_update(b"baobao-link-key-v1|").chain_update(self.key.to_bytes()).finalize();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(b"|");
        mac.update(id.as_bytes());
        mac
    }
}

/// A short, stable name for a public key: the first 16 hex digits of its SHA-256.
fn key_id_of(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.to_bytes());
    format!("ed25519-{}", &hex::encode(digest)[..16])
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the signature uses {0}, not Ed25519")]
    Algorithm(String),
    #[error("no published key has id {0}")]
    UnknownKey(String),
    #[error("the published key {0} is malformed")]
    BadKey(String),
    #[error("the signature is malformed")]
    BadSignature,
    #[error("the signature does not match the signed content: it was altered or signed by another key")]
    Mismatch,
}

impl KeySet {
    /// Checks `signature` over `message` against the key it names.
    pub fn verify(&self, message: &[u8], signature: &SignatureBlock) -> Result<(), VerifyError> {
        if signature.alg != "Ed25519" {
            return Err(VerifyError::Algorithm(signature.alg.clone()));
        }
        let published = self
            .keys
            .iter()
            .find(|k| k.key_id == signature.key_id)
            .ok_or_else(|| VerifyError::UnknownKey(signature.key_id.clone()))?;
        let key_bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&published.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| VerifyError::BadKey(published.key_id.clone()))?;
        let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| VerifyError::BadKey(published.key_id.clone()))?;
        let signature_bytes: [u8; 64] = URL_SAFE_NO_PAD
            .decode(&signature.value)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(VerifyError::BadSignature)?;
        key.verify_strict(message, &Signature::from_bytes(&signature_bytes)).map_err(|_| VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_token_opens_only_what_it_was_made_for() {
        let keys = SigningKeys::from_secret([7; 32]);
        let token = keys.link_token("receipt", "rcp_a");
        assert_eq!(token.len(), 43);
        assert!(keys.link_token_opens("receipt", "rcp_a", &token));
        assert!(!keys.link_token_opens("receipt", "rcp_b", &token), "another receipt");
        assert!(!keys.link_token_opens("export", "rcp_a", &token), "another purpose");
        assert!(!SigningKeys::from_secret([8; 32]).link_token_opens("receipt", "rcp_a", &token), "another server");
        for bad in ["", "x", &token[..42], "!!!!"] {
            assert!(!keys.link_token_opens("receipt", "rcp_a", bad), "{bad:?}");
        }
    }

    #[test]
    fn a_key_is_created_once_and_signatures_verify_only_unaltered() {
        let dir = tempfile::tempdir().unwrap();
        let first = SigningKeys::load_or_create(dir.path()).unwrap();
        let again = SigningKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(first.key_id(), again.key_id());
        let signature = first.sign(b"hello");
        let keys = again.key_set();
        assert_eq!(keys.verify(b"hello", &signature), Ok(()));
        assert_eq!(keys.verify(b"hellO", &signature), Err(VerifyError::Mismatch));
        let other = SigningKeys::from_secret([9; 32]);
        assert!(matches!(other.key_set().verify(b"hello", &signature), Err(VerifyError::UnknownKey(_))));
    }
}
