//! Envelope encryption of children's data, and the key vault.
//!
//! Every record body is sealed with XChaCha20-Poly1305 under a data key per
//! (family, service); the record's id, family, child, service and kind are
//! bound in as associated data, so a ciphertext moved to another row does
//! not open. Data keys are wrapped by the master key and kept in the vault —
//! a directory beside the database, never inside it: a backup of the
//! database holds ciphertext only, and destroying a data key (deleting its
//! vault file) makes every copy of those records unreadable for good
//! (crypto-shredding). Master-key rotation re-wraps the vault's data keys;
//! records are not touched.
//!
//! Files made from children's data (exports, written-notice evidence) are
//! sealed too, each under a file key of its own in the same vault
//! (`crate::sealed`): destroying that key, or the family's keys, makes
//! every copy of the file unreadable.
//!
//! Layout under the data directory:
//! `master-keys/<id>.key` (hex; the newest is current),
//! `vault/<family>/<service>.key` (JSON: master key id, nonce, wrapped key),
//! and `vault/<family>/<name>.file-key` (the same, for one sealed file or
//! set of files).
//! With several servers, the data directory's `master-keys/` and `vault/`
//! must be one shared volume.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::random::random_bytes;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("key store I/O at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("key file {0} is damaged")]
    Damaged(PathBuf),
    #[error("the master key {0} that wrapped a data key is missing")]
    MissingMasterKey(String),
    #[error("a record did not decrypt: it was altered, moved, or its key belongs to another record")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VaultError + '_ {
    move |source| VaultError::Io { path: path.to_owned(), source }
}

struct MasterKey {
    id: String,
    key: [u8; 32],
}

pub struct Vault {
    master_dir: PathBuf,
    vault_dir: PathBuf,
    /// Newest last; the last one wraps new data keys. Re-read from disk
    /// when a key is missing or new keys are wrapped, so that a rotation
    /// done by `baobao keys rotate-master` beside a running server is seen.
    masters: std::sync::RwLock<Vec<MasterKey>>,
}

#[derive(Serialize, Deserialize)]
struct WrappedKey {
    master_key_id: String,
    nonce: String,
    wrapped: String,
}

/// An unwrapped data key, used for one request and dropped.
pub struct DataKey {
    cipher: XChaCha20Poly1305,
}

/// An unwrapped file key (see `crate::sealed`), used for one file and dropped.
pub struct FileKey(pub(crate) [u8; 32]);

/// A sealed record body: hex nonce and base64 ciphertext.
pub struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
}

impl Vault {
    /// Opens the vault in `data_dir`, creating the first master key.
    pub fn open(data_dir: &Path) -> Result<Vault, VaultError> {
        let master_dir = data_dir.join("master-keys");
        let vault_dir = data_dir.join("vault");
        fs::create_dir_all(&master_dir).map_err(io(&master_dir))?;
        fs::create_dir_all(&vault_dir).map_err(io(&vault_dir))?;
        let vault = Vault { master_dir, vault_dir, masters: std::sync::RwLock::new(Vec::new()) };
        vault.load_masters()?;
        if vault.read_masters().is_empty() {
            vault.new_master()?;
        }
        Ok(vault)
    }

    fn read_masters(&self) -> std::sync::RwLockReadGuard<'_, Vec<MasterKey>> {
        self.masters.read().unwrap_or_else(|p| p.into_inner())
    }

    fn load_masters(&self) -> Result<(), VaultError> {
        let mut masters = Vec::new();
        for entry in fs::read_dir(&self.master_dir).map_err(io(&self.master_dir))? {
            let path = entry.map_err(io(&self.master_dir))?.path();
            if path.extension().is_none_or(|e| e != "key") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(io(&path))?;
            let key: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| VaultError::Damaged(path.clone()))?;
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            masters.push((name, MasterKey { id: master_id(&key), key }));
        }
        // File names start with a sortable creation stamp: newest last.
        masters.sort_by(|a, b| a.0.cmp(&b.0));
        *self.masters.write().unwrap_or_else(|p| p.into_inner()) = masters.into_iter().map(|(_, m)| m).collect();
        Ok(())
    }

    fn new_master(&self) -> Result<String, VaultError> {
        let key: [u8; 32] = random_bytes();
        let stamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let id = master_id(&key);
        let path = self.master_dir.join(format!("{stamp:024}-{id}.key"));
        write_private(&path, hex::encode(key).as_bytes())?;
        self.masters.write().unwrap_or_else(|p| p.into_inner()).push(MasterKey { id: id.clone(), key });
        Ok(id)
    }

    pub fn current_master_id(&self) -> String {
        self.read_masters().last().map(|m| m.id.clone()).unwrap_or_default()
    }

    /// The master key with `id`, re-reading the directory once if it is not known.
    fn master(&self, id: &str) -> Result<(String, [u8; 32]), VaultError> {
        let find = |masters: &[MasterKey]| masters.iter().find(|m| m.id == id).map(|m| (m.id.clone(), m.key));
        if let Some(found) = find(&self.read_masters()) {
            return Ok(found);
        }
        self.load_masters()?;
        find(&self.read_masters()).ok_or_else(|| VaultError::MissingMasterKey(id.to_owned()))
    }

    fn key_path(&self, family_id: &str, service: &str) -> PathBuf {
        // Both are checked tokens (a prefixed id, a service name): safe as file names.
        self.vault_dir.join(family_id).join(format!("{service}.{DATA_KEY}"))
    }

    fn file_key_path(&self, family_id: &str, name: &str) -> PathBuf {
        // A prefixed id and a fixed word or id: safe as file names.
        self.vault_dir.join(family_id).join(format!("{name}.{FILE_KEY}"))
    }

    /// The data key of (family, service); created when `create` and missing.
    /// `None` when there is none — never created, or destroyed.
    pub fn data_key(&self, family_id: &str, service: &str, create: bool) -> Result<Option<DataKey>, VaultError> {
        Ok(self.key_at(&self.key_path(family_id, service), create)?.map(|key| DataKey::new(&key)))
    }

    /// The key sealing one file (or one family's set of files) named `name`
    /// (an export id, `evidence`); created when `create` and missing.
    pub fn file_key(&self, family_id: &str, name: &str, create: bool) -> Result<Option<FileKey>, VaultError> {
        Ok(self.key_at(&self.file_key_path(family_id, name), create)?.map(FileKey))
    }

    /// Destroys one file key; `true` when it existed.
    pub fn destroy_file_key(&self, family_id: &str, name: &str) -> Result<bool, VaultError> {
        let destroyed = shred(&self.file_key_path(family_id, name))?;
        sync_and_prune(&self.vault_dir.join(family_id));
        Ok(destroyed)
    }

    /// The services a family has a data key for (or a re-keying left one).
    pub fn services_with_keys(&self, family_id: &str) -> Result<Vec<String>, VaultError> {
        let family_dir = self.vault_dir.join(family_id);
        let entries = match fs::read_dir(&family_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(VaultError::Io { path: family_dir, source: e }),
        };
        let mut services: Vec<String> = entries
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter_map(|name| {
                [REKEY_OLD, REKEY_NEXT, ""]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(&format!(".{DATA_KEY}{suffix}")).map(str::to_owned))
            })
            .collect();
        services.sort();
        services.dedup();
        Ok(services)
    }

    /// Every data key of (family, service) that may have sealed a record:
    /// the current one first, then any a re-keying left (a crash between
    /// its steps). A reader tries them in turn; a wrong key fails its tag.
    pub fn data_keys(&self, family_id: &str, service: &str) -> Result<Vec<DataKey>, VaultError> {
        let current = self.key_path(family_id, service);
        let mut keys = Vec::new();
        for path in [current.clone(), with_suffix(&current, REKEY_OLD), with_suffix(&current, REKEY_NEXT)] {
            match fs::read(&path) {
                Ok(bytes) => keys.push(DataKey::new(&self.unwrap_key(&path, &bytes)?)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(VaultError::Io { path, source: e }),
            }
        }
        Ok(keys)
    }

    /// Re-keying, step 1: a new data key for (family, service), written
    /// beside the current one (`.next`). The caller seals every record that
    /// stays under it, then `swap_rekey`, commits, and `finish_rekey`.
    pub fn prepare_rekey(&self, family_id: &str, service: &str) -> Result<DataKey, VaultError> {
        let key: [u8; 32] = random_bytes();
        let next = with_suffix(&self.key_path(family_id, service), REKEY_NEXT);
        write_private(&next, &self.wrap(&key)?)?;
        Ok(DataKey::new(&key))
    }

    /// Re-keying, step 2 (before the records' transaction commits): the new
    /// key becomes current, the old one waits as `.old`.
    pub fn swap_rekey(&self, family_id: &str, service: &str) -> Result<(), VaultError> {
        let current = self.key_path(family_id, service);
        let (old, next) = (with_suffix(&current, REKEY_OLD), with_suffix(&current, REKEY_NEXT));
        if current.exists() {
            fs::rename(&current, &old).map_err(io(&current))?;
        }
        fs::rename(&next, &current).map_err(io(&next))?;
        sync_and_prune(&self.vault_dir.join(family_id));
        Ok(())
    }

    /// The records' transaction failed after `swap_rekey`: the old key is
    /// current again.
    pub fn undo_rekey(&self, family_id: &str, service: &str) -> Result<(), VaultError> {
        let current = self.key_path(family_id, service);
        let old = with_suffix(&current, REKEY_OLD);
        if old.exists() {
            shred(&current)?;
            fs::rename(&old, &current).map_err(io(&old))?;
        }
        Ok(())
    }

    /// Re-keying, step 3 (once the records' transaction committed): the
    /// old key is destroyed. Returns whether there was one.
    pub fn finish_rekey(&self, family_id: &str, service: &str) -> Result<bool, VaultError> {
        let current = self.key_path(family_id, service);
        let destroyed = shred(&with_suffix(&current, REKEY_OLD))?;
        shred(&with_suffix(&current, REKEY_NEXT))?;
        sync_and_prune(&self.vault_dir.join(family_id));
        Ok(destroyed)
    }

    /// (family, service) pairs with a key a re-keying left beside the
    /// current one (a crash between its steps).
    pub fn leftover_rekeys(&self) -> Result<Vec<(String, String)>, VaultError> {
        let mut leftovers = Vec::new();
        for family in fs::read_dir(&self.vault_dir).map_err(io(&self.vault_dir))? {
            let family = family.map_err(io(&self.vault_dir))?.path();
            let Some(family_id) = family.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
            let Ok(entries) = fs::read_dir(&family) else { continue };
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let service = [REKEY_OLD, REKEY_NEXT]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(&format!(".{DATA_KEY}{suffix}")));
                if let Some(service) = service {
                    leftovers.push((family_id.clone(), service.to_owned()));
                }
            }
        }
        leftovers.sort();
        leftovers.dedup();
        Ok(leftovers)
    }

    /// Every file key in the vault: (family id, name), for the sweep.
    pub fn file_keys(&self) -> Result<Vec<(String, String)>, VaultError> {
        let mut keys = Vec::new();
        for family in fs::read_dir(&self.vault_dir).map_err(io(&self.vault_dir))? {
            let family = family.map_err(io(&self.vault_dir))?.path();
            let Some(family_id) = family.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
            let Ok(entries) = fs::read_dir(&family) else { continue };
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == FILE_KEY)
                    && let Some(name) = path.file_stem().and_then(|n| n.to_str())
                {
                    keys.push((family_id.clone(), name.to_owned()));
                }
            }
        }
        Ok(keys)
    }

    fn key_at(&self, path: &Path, create: bool) -> Result<Option<[u8; 32]>, VaultError> {
        match fs::read(path) {
            Ok(bytes) => return self.unwrap_key(path, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(VaultError::Io { path: path.to_owned(), source: e }),
        }
        if !create {
            return Ok(None);
        }
        let key: [u8; 32] = random_bytes();
        let bytes = self.wrap(&key)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        match create_new_private(path, &bytes) {
            Ok(()) => Ok(Some(key)),
            // Another request created it first: use theirs.
            Err(VaultError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                let bytes = fs::read(path).map_err(io(path))?;
                self.unwrap_key(path, &bytes).map(Some)
            }
            Err(other) => Err(other),
        }
    }

    fn wrap(&self, key: &[u8; 32]) -> Result<Vec<u8>, VaultError> {
        // The current master key as it is on disk now (a rotation may have run).
        self.load_masters()?;
        let (master_id, master_key) = self
            .read_masters()
            .last()
            .map(|m| (m.id.clone(), m.key))
            .ok_or_else(|| VaultError::MissingMasterKey("current".into()))?;
        let nonce: [u8; 24] = random_bytes();
        let cipher = XChaCha20Poly1305::new_from_slice(&master_key).map_err(|_| VaultError::Encrypt)?;
        let wrapped = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: key, aad: master_id.as_bytes() })
            .map_err(|_| VaultError::Encrypt)?;
        let file =
            WrappedKey { master_key_id: master_id, nonce: hex::encode(nonce), wrapped: STANDARD.encode(wrapped) };
        serde_json::to_vec(&file).map_err(|_| VaultError::Encrypt)
    }

    fn unwrap_key(&self, path: &Path, bytes: &[u8]) -> Result<[u8; 32], VaultError> {
        let damaged = || VaultError::Damaged(path.to_owned());
        let file: WrappedKey = serde_json::from_slice(bytes).map_err(|_| damaged())?;
        let (master_id, master_key) = self.master(&file.master_key_id)?;
        let nonce: [u8; 24] = hex::decode(&file.nonce).ok().and_then(|b| b.try_into().ok()).ok_or_else(damaged)?;
        let wrapped = STANDARD.decode(&file.wrapped).map_err(|_| damaged())?;
        let cipher = XChaCha20Poly1305::new_from_slice(&master_key).map_err(|_| damaged())?;
        let key = cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: &wrapped, aad: master_id.as_bytes() })
            .map_err(|_| damaged())?;
        key.try_into().map_err(|_| damaged())
    }

    /// Destroys the data key(s) of a family: one service, or all with `*`.
    /// Returns how many keys were destroyed (0 when already gone). File
    /// keys are not touched: see `destroy_file_key`.
    pub fn destroy(&self, family_id: &str, service: &str) -> Result<u32, VaultError> {
        let family_dir = self.vault_dir.join(family_id);
        let services = if service == "*" { self.services_with_keys(family_id)? } else { vec![service.to_owned()] };
        let mut destroyed = 0;
        for service in services {
            let current = self.key_path(family_id, &service);
            if shred(&current)? {
                destroyed += 1;
            }
            // And any key a re-keying left beside it.
            for leftover in [REKEY_OLD, REKEY_NEXT] {
                shred(&with_suffix(&current, leftover))?;
            }
        }
        sync_and_prune(&family_dir);
        Ok(destroyed)
    }

    /// Makes a new master key current and re-wraps every data key with it;
    /// older master keys are removed once nothing uses them. Records are
    /// not touched. Returns the new key's id and how many data keys moved.
    pub fn rotate_master(&self) -> Result<(String, u64), VaultError> {
        let new_id = self.new_master()?;
        let mut rewrapped = 0;
        for family in fs::read_dir(&self.vault_dir).map_err(io(&self.vault_dir))? {
            let family = family.map_err(io(&self.vault_dir))?.path();
            for entry in fs::read_dir(&family).map_err(io(&family))? {
                let path = entry.map_err(io(&family))?.path();
                let bytes = fs::read(&path).map_err(io(&path))?;
                let key = self.unwrap_key(&path, &bytes)?;
                let temporary = path.with_extension("rewrap");
                write_private(&temporary, &self.wrap(&key)?)?;
                fs::rename(&temporary, &path).map_err(io(&path))?;
                rewrapped += 1;
            }
        }
        // Every data key is under the new master now: retire the old ones.
        for entry in fs::read_dir(&self.master_dir).map_err(io(&self.master_dir))? {
            let path = entry.map_err(io(&self.master_dir))?.path();
            if path.extension().is_some_and(|e| e == "key") && !path.to_string_lossy().contains(&new_id) {
                fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        self.load_masters()?;
        Ok((new_id, rewrapped))
    }
}

/// The extension of a data key's file, and of a file key's.
const DATA_KEY: &str = "key";
const FILE_KEY: &str = "file-key";
/// Suffixes of a data key's file while it is being replaced (re-keying).
const REKEY_OLD: &str = ".old";
const REKEY_NEXT: &str = ".next";

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Overwrites a key file before unlinking it, so the key is not left in the
/// file system's free blocks as plainly as it was written. `false` when
/// there was no such file.
fn shred(path: &Path) -> Result<bool, VaultError> {
    if let Ok(metadata) = fs::metadata(path) {
        let _ = fs::write(path, vec![0u8; usize::try_from(metadata.len()).unwrap_or(0)]);
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(VaultError::Io { path: path.to_owned(), source: e }),
    }
}

/// Makes a family's key removals durable; a family with no key left
/// leaves no directory behind (its id is not left on disk either).
fn sync_and_prune(dir: &Path) {
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    let _ = fs::remove_dir(dir);
}

fn master_id(key: &[u8; 32]) -> String {
    format!("mk-{}", &hex::encode(Sha256::digest(key))[..12])
}

fn private_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let mut file = private_options().create(true).truncate(true).open(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn create_new_private(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let mut file = private_options().create_new(true).open(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

impl DataKey {
    fn new(key: &[u8; 32]) -> DataKey {
        // A 32-byte key always fits XChaCha20-Poly1305.
        DataKey { cipher: XChaCha20Poly1305::new(key.into()) }
    }

    pub fn seal(&self, plaintext: &[u8], associated: &str) -> Result<Sealed, VaultError> {
        let nonce: [u8; 24] = random_bytes();
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: associated.as_bytes() })
            .map_err(|_| VaultError::Encrypt)?;
        Ok(Sealed { nonce: hex::encode(nonce), ciphertext: STANDARD.encode(ciphertext) })
    }

    pub fn open(&self, nonce: &str, ciphertext: &str, associated: &str) -> Result<Vec<u8>, VaultError> {
        let nonce: [u8; 24] = hex::decode(nonce).ok().and_then(|b| b.try_into().ok()).ok_or(VaultError::Decrypt)?;
        let ciphertext = STANDARD.decode(ciphertext).map_err(|_| VaultError::Decrypt)?;
        self.cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: &ciphertext, aad: associated.as_bytes() })
            .map_err(|_| VaultError::Decrypt)
    }
}

/// The associated data binding a record body to its row.
pub fn record_binding(record_id: &str, family_id: &str, child_id: &str, service: &str, kind: &str) -> String {
    format!("baobao-record-v1|{record_id}|{family_id}|{child_id}|{service}|{kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bodies_open_only_with_their_key_and_binding() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path()).unwrap();
        assert!(vault.data_key("fam_a", "edu", false).unwrap().is_none());
        let key = vault.data_key("fam_a", "edu", true).unwrap().unwrap();
        let sealed = key.seal(b"{\"height_cm\": 112}", "rec_1|fam_a").unwrap();
        assert_eq!(key.open(&sealed.nonce, &sealed.ciphertext, "rec_1|fam_a").unwrap(), b"{\"height_cm\": 112}");
        assert!(key.open(&sealed.nonce, &sealed.ciphertext, "rec_2|fam_a").is_err(), "moved to another row");
        let other = vault.data_key("fam_b", "edu", true).unwrap().unwrap();
        assert!(other.open(&sealed.nonce, &sealed.ciphertext, "rec_1|fam_a").is_err());
        // Reopening the vault finds the same key.
        let again = Vault::open(dir.path()).unwrap().data_key("fam_a", "edu", false).unwrap().unwrap();
        assert!(again.open(&sealed.nonce, &sealed.ciphertext, "rec_1|fam_a").is_ok());
    }

    #[test]
    fn rotation_rewraps_data_keys_and_destruction_is_final() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path()).unwrap();
        let first_master = vault.current_master_id();
        let sealed = vault.data_key("fam_a", "edu", true).unwrap().unwrap().seal(b"secret", "x").unwrap();
        vault.data_key("fam_a", "play", true).unwrap();
        let (second_master, moved) = vault.rotate_master().unwrap();
        assert_ne!(first_master, second_master);
        assert_eq!(moved, 2);
        let reopened = Vault::open(dir.path()).unwrap();
        assert_eq!(reopened.current_master_id(), second_master);
        let key = reopened.data_key("fam_a", "edu", false).unwrap().unwrap();
        assert_eq!(key.open(&sealed.nonce, &sealed.ciphertext, "x").unwrap(), b"secret");
        assert_eq!(reopened.destroy("fam_a", "*").unwrap(), 2);
        assert!(reopened.data_key("fam_a", "edu", false).unwrap().is_none());
        assert_eq!(reopened.destroy("fam_a", "*").unwrap(), 0, "destroying twice is a no-op");
    }
}
