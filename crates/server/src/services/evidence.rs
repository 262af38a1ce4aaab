//! Evidence files (a scanned letter, a saved email): checked against their
//! type, stored sealed (a letter may name a child: `crate::sealed`, under
//! the family's evidence key) once per family under their SHA-256, read by
//! staff with an audit entry, destroyed with the family's personal data and
//! swept when nothing refers to them.

use std::path::{Path, PathBuf};

use std::io::Write as _;

use baobao_domain::ids::{FamilyId, WrittenNoticeId};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::random::random_bytes;
use crate::sealed::{SealedReader, SealedWriter};
use crate::state::{AppState, Parts};

/// Largest evidence file (a scanned letter, a saved email).
pub const EVIDENCE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The request carrying it, base64 and all.
pub const EVIDENCE_REQUEST_BYTES_MAX: usize = crate::idempotency::REQUEST_BODY_BYTES_HARD_MAX;
const _: () = assert!(EVIDENCE_BYTES_MAX.div_ceil(3) * 4 + 64 * 1024 <= EVIDENCE_REQUEST_BYTES_MAX);
pub const EVIDENCE_TYPES: [&str; 5] = ["application/pdf", "image/jpeg", "image/png", "message/rfc822", "text/plain"];

/// Checks that the bytes are what the type says: a PDF starts `%PDF-`, a
/// JPEG `FF D8 FF`, a PNG with its signature; a saved email or text has no
/// NUL bytes.
fn contents_match(content_type: &str, bytes: &[u8]) -> bool {
    match content_type {
        "application/pdf" => bytes.starts_with(b"%PDF-"),
        "image/jpeg" => bytes.starts_with(&[0xff, 0xd8, 0xff]),
        "image/png" => bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]),
        "message/rfc822" | "text/plain" => !bytes.is_empty() && !bytes.contains(&0),
        _ => false,
    }
}

pub fn evidence_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("evidence")
}

/// A family's evidence file, sealed under the family's evidence key.
fn evidence_path(data_dir: &Path, family_id: &FamilyId, sha256: &str) -> PathBuf {
    evidence_dir(data_dir).join(family_id.as_str()).join(sha256)
}

/// Where files stored before sealing lie (plain, shared by hash).
fn legacy_path(data_dir: &Path, sha256: &str) -> PathBuf {
    evidence_dir(data_dir).join(sha256)
}

/// The file key of a family's evidence files.
const EVIDENCE_KEY: &str = "evidence";

fn binding(family_id: &FamilyId, sha256: &str) -> String {
    format!("baobao-evidence-v1|{family_id}|{sha256}")
}

/// Stores the file sealed, under the family and its SHA-256 (written to a
/// temporary name, synced, then renamed, so a crash never leaves half a
/// file under a real name). The same file registered twice for one family
/// is stored once.
pub fn store_evidence(parts: &Parts, family_id: &FamilyId, bytes: &[u8]) -> ApiResult<String> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let path = evidence_path(&parts.config.data_dir, family_id, &sha256);
    let dir = path.parent().ok_or_else(|| internal("evidence path"))?;
    std::fs::create_dir_all(dir).map_err(internal)?;
    if path.exists() {
        return Ok(sha256);
    }
    let key = parts
        .vault
        .file_key(family_id.as_str(), EVIDENCE_KEY, true)
        .map_err(internal)?
        .ok_or_else(|| internal("no evidence key"))?;
    let temporary = dir.join(format!(".{sha256}.{}", hex::encode(random_bytes::<6>())));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| {
        let file = options.open(&temporary)?;
        let mut sealed = SealedWriter::new(file, &key, binding(family_id, &sha256))?;
        sealed.write_all(bytes)?;
        sealed.finish()?.sync_all()?;
        std::fs::rename(&temporary, &path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        if error.kind() == std::io::ErrorKind::StorageFull {
            return Err(crate::error::storage_full());
        }
        return Err(internal(error));
    }
    Ok(sha256)
}

/// The plain bytes of a family's evidence file; `None` when it is gone.
pub fn read_family_evidence(parts: &Parts, family_id: &FamilyId, sha256: &str) -> ApiResult<Option<Vec<u8>>> {
    let data_dir = &parts.config.data_dir;
    let file = match std::fs::File::open(evidence_path(data_dir, family_id, sha256)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match std::fs::read(legacy_path(data_dir, sha256)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(internal(e)),
            };
        }
        Err(e) => return Err(internal(e)),
    };
    let Some(key) = parts.vault.file_key(family_id.as_str(), EVIDENCE_KEY, false).map_err(internal)? else {
        return Ok(None);
    };
    SealedReader::new(file, &key, binding(family_id, sha256))
        .and_then(SealedReader::read_all)
        .map(Some)
        .map_err(internal)
}

/// After a family's written notices are minimised: its evidence key is
/// destroyed and its files removed, and files stored before sealing that
/// no live notice names any more go too. Returns how many files went.
pub async fn remove_family_evidence(state: &AppState, family_id: &FamilyId, hashes: &[String]) -> ApiResult<u64> {
    state.vault.destroy_file_key(family_id.as_str(), EVIDENCE_KEY).map_err(internal)?;
    let dir = evidence_dir(&state.config.data_dir).join(family_id.as_str());
    let mut removed = remove_dir_files(&dir, |_| true)?;
    let _ = std::fs::remove_dir(&dir);
    let live = state.store.live_evidence().await?;
    for sha256 in hashes {
        let plain_hex = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if plain_hex && !live.iter().any(|(_, live)| live == sha256) {
            removed += u64::from(remove_file(&legacy_path(&state.config.data_dir, sha256))?);
        }
    }
    Ok(removed)
}

fn remove_file(path: &Path) -> ApiResult<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(internal(e)),
    }
}

/// Removes the files of `dir` for which `unwanted(name)` holds.
fn remove_dir_files(dir: &Path, unwanted: impl Fn(&str) -> bool) -> ApiResult<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(internal(e)),
    };
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_file() && unwanted(&name) && remove_file(&path)? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// A file written within this many seconds may belong to a notice whose
/// transaction has not committed yet: the sweep leaves it.
const SWEEP_GRACE_SECONDS: u64 = 3600;

fn recent(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_none_or(|age| age.as_secs() < SWEEP_GRACE_SECONDS)
}

/// Removes evidence files and keys no live notice names (a crash between
/// storing a file and committing its notice; files stored before sealing).
/// Returns how many files and keys went.
pub async fn sweep(state: &AppState) -> ApiResult<u64> {
    let live = state.store.live_evidence().await?;
    let dir = evidence_dir(&state.config.data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(internal(e)),
    };
    let mut swept = 0;
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if path.is_dir() {
            let family = name.clone();
            swept += remove_dir_files(&path, |file| {
                let sha256 = file.trim_start_matches('.').split('.').next().unwrap_or_default();
                !live.iter().any(|(f, s)| f.as_str() == family && s == sha256) && !recent(&path.join(file))
            })?;
            let _ = std::fs::remove_dir(&path);
        } else if !live.iter().any(|(_, s)| *s == name) && !recent(&path) && remove_file(&path)? {
            swept += 1;
        }
    }
    for (family_id, name) in state.vault.file_keys().map_err(internal)? {
        let in_use = live.iter().any(|(f, _)| f.as_str() == family_id);
        let fresh = recent(&dir.join(&family_id));
        if name == EVIDENCE_KEY
            && !in_use
            && !fresh
            && state.vault.destroy_file_key(&family_id, &name).map_err(internal)?
        {
            swept += 1;
        }
    }
    Ok(swept)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceInput {
    /// One of `application/pdf`, `image/jpeg`, `image/png`, `message/rfc822`, `text/plain`.
    pub content_type: String,
    /// The file, base64 (at most 4 MiB once decoded).
    pub content_base64: String,
}

pub fn decode_evidence(evidence: &EvidenceInput) -> ApiResult<Vec<u8>> {
    if !EVIDENCE_TYPES.contains(&evidence.content_type.as_str()) {
        return Err(ApiError::unprocessable("evidence_type_not_allowed").with("types", EVIDENCE_TYPES.join(", ")));
    }
    if evidence.content_base64.len() > EVIDENCE_BYTES_MAX.div_ceil(3) * 4 + 4 {
        return Err(ApiError::unprocessable("evidence_too_large").with("max_bytes", EVIDENCE_BYTES_MAX));
    }
    let bytes = STANDARD
        .decode(evidence.content_base64.trim())
        .map_err(|_| ApiError::invalid_field("evidence.content_base64", "base64"))?;
    if bytes.len() > EVIDENCE_BYTES_MAX {
        return Err(ApiError::unprocessable("evidence_too_large").with("max_bytes", EVIDENCE_BYTES_MAX));
    }
    if !contents_match(&evidence.content_type, &bytes) {
        return Err(
            ApiError::unprocessable("evidence_type_mismatch").with("content_type", evidence.content_type.clone())
        );
    }
    Ok(bytes)
}

/// The evidence file of a notice, for staff; every download is audited.
pub async fn evidence(state: &AppState, caller: &Caller, notice_id: &str) -> ApiResult<(String, Vec<u8>)> {
    caller.require_staff(&[Role::Agent, Role::Supervisor, Role::Compliance])?;
    let notice_id = WrittenNoticeId::parse(notice_id).map_err(|_| ApiError::not_found("written notice"))?;
    let notice = state.store.written_notice(&notice_id).await.or_not_found("written notice")?;
    let bytes = read_family_evidence(state, &notice.family_id, &notice.evidence_sha256)?
        .ok_or_else(|| ApiError::not_found("evidence"))?;
    if hex::encode(Sha256::digest(&bytes)) != notice.evidence_sha256 {
        return Err(ApiError::internal("an evidence file does not match its SHA-256"));
    }
    let mut tx = state.store.begin().await?;
    tx.audit(
        state.clock.now(),
        &caller.actor(),
        "evidence.read",
        &[notice.family_id.as_str(), notice.id.as_str()],
        &json!({"sha256": notice.evidence_sha256}),
    )
    .await?;
    tx.commit().await?;
    Ok((notice.evidence_type, bytes))
}
