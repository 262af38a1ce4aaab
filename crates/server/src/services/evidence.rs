//! Evidence files (a scanned letter, a saved email): checked against their
//! type, stored once under their SHA-256, read by staff with an audit entry,
//! removed when nothing refers to them.

use std::path::{Path, PathBuf};

use baobao_domain::ids::WrittenNoticeId;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::random::random_bytes;
use crate::state::AppState;

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

pub fn evidence_path(data_dir: &Path, sha256: &str) -> PathBuf {
    evidence_dir(data_dir).join(sha256)
}

/// Stores the file under its SHA-256 (written to a temporary name, synced,
/// then renamed, so a crash never leaves half a file under a real name).
/// The same file registered twice is stored once.
pub fn store_evidence(data_dir: &Path, bytes: &[u8]) -> ApiResult<String> {
    use std::io::Write as _;
    let sha256 = hex::encode(Sha256::digest(bytes));
    let dir = evidence_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(internal)?;
    let path = evidence_path(data_dir, &sha256);
    if path.exists() {
        return Ok(sha256);
    }
    let temporary = dir.join(format!(".{sha256}.{}", hex::encode(random_bytes::<6>())));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(internal)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(internal)?;
    std::fs::rename(&temporary, &path).map_err(internal)?;
    Ok(sha256)
}

/// Removes evidence files no live notice names any more (after a family's
/// personal data is minimised). Returns how many files went.
pub async fn remove_unused_evidence(state: &AppState, hashes: &[String]) -> ApiResult<u64> {
    let mut removed = 0;
    for sha256 in hashes {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        if state.store.evidence_in_use(sha256).await? {
            continue;
        }
        match std::fs::remove_file(evidence_path(&state.config.data_dir, sha256)) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(internal(e)),
        }
    }
    Ok(removed)
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
    let bytes = match std::fs::read(evidence_path(&state.config.data_dir, &notice.evidence_sha256)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::not_found("evidence")),
        Err(e) => return Err(internal(e)),
    };
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
