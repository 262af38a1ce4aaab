//! The family's data export: a ZIP built in the background, streamed page by
//! page so that memory stays flat however many records there are.
//!
//! Contents: per child a profile and, per service and kind, JSON Lines and
//! CSV of the records; the statement as CSV; every receipt as signed JSON;
//! an `index.html` to open offline, in the family's language
//! (`export_index`); and `manifest.json` listing the
//! SHA-256 and size of every other file, signed with the server's Ed25519
//! key over the canonical JSON of the manifest without its `signature`.
//! `baobao verify export.zip` checks all of it offline.
//!
//! Deleted means gone for this copy too: the archive is kept on disk only
//! sealed (`crate::sealed`) under a key of its own in the vault, and lives
//! `export_days` (then the billing run destroys its key and file: status
//! `expired`). A deletion of any of the family's data destroys every export
//! of the family in the same step (status `deleted`); a download of either
//! answers 410. The download is unsealed on the fly.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use baobao_domain::calendar::Calendar;
use baobao_domain::canonical::canonical_json;
use baobao_domain::ids::{ExportId, FamilyId};
use baobao_store::{Export, ExportOutcome};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::idempotency::answer_with_change;
use crate::keys::{KeySet, SignatureBlock};
use crate::random::random_bytes;
use crate::sealed::{SealedReader, SealedWriter};
use crate::services::children::Opener;
use crate::services::export_index::{ChildSection, IndexModel, ROWS_PER_TABLE, ReceiptLine, RecordGroup};
use crate::state::{AppState, Parts};

/// Records fetched per page while writing: the memory bound of an export.
pub const EXPORT_PAGE_RECORDS: i64 = 1000;
pub const MANIFEST: &str = "manifest.json";
/// The largest manifest a check reads.
const MANIFEST_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// `verify` refuses archives with more entries than this.
pub const EXPORT_ENTRIES_MAX: usize = 100_000;

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(error.to_string())
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ExportView {
    pub id: String,
    pub family_id: String,
    /// `pending`, `ready`, `failed`, `expired` (its time ran out), `deleted`
    /// (a deletion covered its data) or `delivered` (written to a file by
    /// the operator's `baobao export`; nothing kept here).
    pub status: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<jiff::Timestamp>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    /// When a ready export's file is destroyed.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<jiff::Timestamp>,
    pub download: Option<String>,
}

impl From<&Export> for ExportView {
    fn from(e: &Export) -> ExportView {
        ExportView {
            id: e.id.to_string(),
            family_id: e.family_id.to_string(),
            status: e.status.clone(),
            created_at: e.created_at,
            finished_at: e.finished_at,
            size_bytes: e.size_bytes,
            sha256: e.file_sha256.clone(),
            expires_at: e.expires_at,
            download: (e.status == "ready").then(|| format!("/v1/exports/{}/download", e.id)),
        }
    }
}

pub fn exports_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("exports")
}

/// Where an export is kept, sealed.
pub fn export_path(data_dir: &Path, export_id: &ExportId) -> PathBuf {
    exports_dir(data_dir).join(format!("{export_id}.{SEALED}"))
}

const SEALED: &str = "sealed";

/// What a sealed export is bound to: it opens under no other name.
fn binding(export: &Export) -> String {
    format!("baobao-export-v1|{}|{}", export.family_id, export.id)
}

/// A new export, waiting to be built.
fn pending_export(family_id: &FamilyId, requested_by: String, now: jiff::Timestamp) -> Export {
    Export {
        id: ExportId::from_random(random_bytes()),
        family_id: family_id.clone(),
        status: "pending".to_owned(),
        requested_by,
        file_sha256: None,
        size_bytes: None,
        error: None,
        created_at: now,
        finished_at: None,
        expires_at: None,
    }
}

/// Asks for an export; it is built in the background.
pub async fn request(state: &AppState, caller: &Caller, family_id: &FamilyId) -> ApiResult<ExportView> {
    caller.require_family(family_id, &[], "family")?;
    caller.require_guardian()?;
    let now = state.clock.now();
    let export = pending_export(family_id, caller.actor(), now);
    let mut tx = state.store.begin().await?;
    tx.insert_export(&export).await?;
    tx.audit(
        now,
        &caller.actor(),
        "export.requested",
        &[family_id.as_str(), export.id.as_str()],
        &serde_json::json!({}),
    )
    .await?;
    let answer = ExportView::from(&export);
    answer_with_change(&mut tx, StatusCode::ACCEPTED, &answer).await?;
    tx.commit().await?;
    let background = state.clone();
    let export_id = export.id.clone();
    tokio::spawn(async move { run(&background, &export_id).await });
    Ok(answer)
}

/// Builds one export, sealed, and records the outcome. Safe to run again
/// after a crash: it starts from scratch and replaces any partial file.
pub async fn run(state: &AppState, export_id: &ExportId) {
    let outcome = match state.store.export(export_id).await {
        Ok(export) => build_sealed(state, &export).await.map(|built| (export, built)),
        Err(error) => Err(error.into()),
    };
    let now = state.clock.now();
    let recorded: ApiResult<()> = match &outcome {
        Ok((export, (sha256, size))) => offer(state, export, sha256, *size, now).await,
        Err(error) => {
            tracing::error!(export_id = %export_id, code = error.code, internal = error.internal.as_deref().unwrap_or(""), "export failed");
            let failed = ExportOutcome::Failed { code: error.code };
            state.store.finish_export(export_id, failed, now).await.map(|_| ()).map_err(Into::into)
        }
    };
    if let Err(error) = recorded {
        tracing::error!(export_id = %export_id, code = error.code, "could not record the export's outcome");
    }
}

/// A built export goes in the log first (its file is durable now), then is
/// offered for `export_days`; if a deletion covered the family's data while
/// it was being built, what was built goes at once.
async fn offer(state: &AppState, export: &Export, sha256: &str, size: i64, now: jiff::Timestamp) -> ApiResult<()> {
    log_ready(state, export, sha256, size).await?;
    let expires_at =
        now.checked_add(jiff::SignedDuration::from_hours(24 * i64::from(state.config.export_days))).unwrap_or(now);
    let ready = ExportOutcome::Ready { sha256, size, expires_at };
    if !state.store.finish_export(&export.id, ready, now).await? {
        destroy(state, &export.family_id, &export.id)?;
    }
    Ok(())
}

/// The export is a signed document: a leaf of the audit log by its SHA-256.
async fn log_ready(state: &AppState, export: &Export, sha256: &str, size: i64) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    let subjects = [export.family_id.as_str(), export.id.as_str()];
    let details = serde_json::json!({"size_bytes": size});
    tx.audit_entry(state.clock.now(), "system", "export.ready", &subjects, &details, Some(sha256)).await?;
    tx.commit().await?;
    Ok(())
}

/// Builds the archive sealed under a new key of its own; on failure the
/// partial file and the key go.
async fn build_sealed(state: &AppState, export: &Export) -> ApiResult<(String, i64)> {
    let path = export_path(&state.config.data_dir, &export.id);
    std::fs::create_dir_all(exports_dir(&state.config.data_dir)).map_err(internal)?;
    let partial = path.with_extension(format!("{SEALED}.partial"));
    let built = async {
        let key = state
            .vault
            .file_key(export.family_id.as_str(), export.id.as_str(), true)
            .map_err(internal)?
            .ok_or_else(|| internal("no export key"))?;
        let file = File::create(&partial).map_err(internal)?;
        let sealed = SealedWriter::new(BufWriter::new(file), &key, binding(export)).map_err(internal)?;
        let (sha256, size, sealed) = build(state, export, sealed).await?;
        let file = sealed.finish().map_err(internal)?.into_inner().map_err(|e| internal(e.error()))?;
        file.sync_all().map_err(internal)?;
        std::fs::rename(&partial, &path).map_err(internal)?;
        Ok((sha256, size))
    }
    .await;
    if built.is_err() {
        let _ = std::fs::remove_file(&partial);
        let _ = state.vault.destroy_file_key(export.family_id.as_str(), export.id.as_str());
    }
    built
}

/// Destroys an export's key and file (it expired, or a deletion covered
/// it): no copy of it opens any more. Returns whether a file was removed.
pub fn destroy(parts: &Parts, family_id: &FamilyId, export_id: &ExportId) -> ApiResult<bool> {
    parts.vault.destroy_file_key(family_id.as_str(), export_id.as_str()).map_err(internal)?;
    let path = export_path(&parts.config.data_dir, export_id);
    let removed = remove_if_there(&path)?;
    remove_if_there(&path.with_extension(format!("{SEALED}.partial")))?;
    Ok(removed)
}

fn remove_if_there(path: &Path) -> ApiResult<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(internal(e)),
    }
}

/// Writes a family's export to `path` directly (the CLI's `baobao export`):
/// the same archive the API builds, in plain form for the operator, recorded
/// as an export delivered by the operator (nothing is kept here).
pub async fn write_file(state: &AppState, family_id: &FamilyId, path: &Path) -> ApiResult<(String, i64)> {
    let now = state.clock.now();
    let export = pending_export(family_id, "operator".to_owned(), now);
    let mut tx = state.store.begin().await?;
    tx.insert_export(&export).await?;
    tx.audit(
        now,
        "operator",
        "export.requested",
        &[family_id.as_str(), export.id.as_str()],
        &serde_json::json!({"cli": true}),
    )
    .await?;
    tx.commit().await?;
    let outcome: ApiResult<(String, i64)> = async {
        let file = BufWriter::new(File::create(path).map_err(internal)?);
        let (sha256, size, file) = build(state, &export, file).await?;
        file.into_inner().map_err(|e| internal(e.error()))?.sync_all().map_err(internal)?;
        Ok((sha256, size))
    }
    .await;
    let recorded = match &outcome {
        Ok((sha256, size)) => ExportOutcome::Delivered { sha256, size: *size },
        Err(error) => ExportOutcome::Failed { code: error.code },
    };
    state.store.finish_export(&export.id, recorded, state.clock.now()).await?;
    outcome
}

/// Destroys every ready export whose time ran out at `at`; returns how many.
pub async fn expire_due(state: &AppState, at: jiff::Timestamp) -> ApiResult<u64> {
    let mut expired = 0;
    for export in state.store.expired_exports(at).await? {
        // The row first: from then on nothing offers or serves the file.
        if state.store.expire_export(&export.id).await? {
            destroy(state, &export.family_id, &export.id)?;
            expired += 1;
        }
    }
    Ok(expired)
}

/// Removes export files and keys no pending or ready export names (a crash
/// between steps, exports made before sealing). Returns how many went.
pub async fn sweep(state: &AppState) -> ApiResult<u64> {
    let live: std::collections::HashSet<String> =
        state.store.live_export_ids().await?.iter().map(|id| id.to_string()).collect();
    let mut swept = 0;
    let dir = exports_dir(&state.config.data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(internal(e)),
    };
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let export_id = name.split('.').next().unwrap_or_default();
        if !live.contains(export_id) && remove_if_there(&path)? {
            swept += 1;
        }
    }
    for (family_id, name) in state.vault.file_keys().map_err(internal)? {
        if ExportId::parse(&name).is_ok()
            && !live.contains(&name)
            && state.vault.destroy_file_key(&family_id, &name).map_err(internal)?
        {
            swept += 1;
        }
    }
    Ok(swept)
}

/// Opens a ready export for download, unsealing it as it is read; an
/// expired or deleted one is 410 Gone.
pub fn open(parts: &Parts, export: &Export) -> ApiResult<SealedReader<File>> {
    let gone = |status: &str| ApiError::new(axum::http::StatusCode::GONE, "export_gone").with("status", status);
    match export.status.as_str() {
        "ready" => {}
        "expired" | "deleted" | "delivered" => return Err(gone(&export.status)),
        _ => return Err(ApiError::conflict("export_not_ready").with("status", export.status.clone())),
    }
    // The key is looked up only for a ready export: a missing one means a
    // deletion is destroying it right now.
    let key = parts
        .vault
        .file_key(export.family_id.as_str(), export.id.as_str(), false)
        .map_err(internal)?
        .ok_or_else(|| gone("deleted"))?;
    let file = match File::open(export_path(&parts.config.data_dir, &export.id)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone("deleted")),
        Err(e) => return Err(internal(e)),
    };
    SealedReader::new(file, &key, binding(export)).map_err(internal)
}

/// Exports left pending by a stopped server are built again at start.
pub async fn resume_pending(state: AppState) {
    let Ok(pending) = state.store.pending_exports().await else { return };
    for export_id in pending {
        run(&state, &export_id).await;
    }
}

/// Writes one entry, hashing what goes in.
struct Entry<'a, W: Write + std::io::Seek> {
    zip: &'a mut ZipWriter<W>,
    hasher: Sha256,
    size: u64,
}

impl<W: Write + std::io::Seek> Write for Entry<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.zip.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.zip.flush()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub family_id: String,
    pub export_id: String,
    pub created_at: String,
    pub files: Vec<ManifestFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureBlock>,
}

struct Archive<W: Write + std::io::Seek> {
    zip: ZipWriter<W>,
    files: Vec<ManifestFile>,
}

impl<W: Write + std::io::Seek> Archive<W> {
    fn start(&mut self, path: &str) -> ApiResult<Entry<'_, W>> {
        let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        self.zip.start_file(path, options).map_err(internal)?;
        Ok(Entry { zip: &mut self.zip, hasher: Sha256::new(), size: 0 })
    }

    fn finish_entry(files: &mut Vec<ManifestFile>, path: &str, hasher: Sha256, size: u64) {
        files.push(ManifestFile { path: path.to_owned(), sha256: hex::encode(hasher.finalize()), size });
    }

    fn whole(&mut self, path: &str, bytes: &[u8]) -> ApiResult<()> {
        let mut entry = self.start(path)?;
        entry.write_all(bytes).map_err(internal)?;
        let (hasher, size) = (entry.hasher, entry.size);
        Self::finish_entry(&mut self.files, path, hasher, size);
        Ok(())
    }
}

/// Counts and hashes what is written through it: the archive's size and
/// SHA-256, as the parent will download it.
struct Hashing<W: Write> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the archive to `sink` as a stream (nothing is read back), and
/// returns its SHA-256, its size and the sink.
async fn build<W: Write>(state: &AppState, export: &Export, sink: W) -> ApiResult<(String, i64, W)> {
    let sink = Hashing { inner: sink, hasher: Sha256::new(), size: 0 };
    let mut archive = Archive { zip: ZipWriter::new_stream(sink), files: Vec::new() };
    let family_id = &export.family_id;

    let children = state.store.children_of(family_id).await?;
    for child in &children {
        let profile = serde_json::json!({
            "id": child.id, "name": child.name, "birth_date": child.birth_date,
            "consent": {"given_by": child.consent_by, "given_at": child.consent_at.to_string()},
        });
        archive.whole(
            &format!("children/{}/profile.json", child.id),
            &serde_json::to_vec_pretty(&profile).map_err(internal)?,
        )?;
    }
    let mut opener = Opener::new(state, family_id.clone());
    let mut groups = Vec::new();
    for (child_id, service, kind) in state.store.record_groups(family_id).await? {
        let mut group = RecordGroup {
            child_id: child_id.to_string(),
            service: service.clone(),
            kind: kind.clone(),
            count: 0,
            shown: Vec::new(),
        };
        for format in ["jsonl", "csv"] {
            let path = format!("children/{child_id}/{service}/{kind}.{format}");
            let mut entry = archive.start(&path)?;
            if format == "csv" {
                entry.write_all(b"id,recorded_at,body_json\n").map_err(internal)?;
            }
            let mut after = None;
            loop {
                let page = state
                    .store
                    .records_in_group(&child_id, &service, &kind, after.clone(), EXPORT_PAGE_RECORDS)
                    .await?;
                for record in &page {
                    let body = opener.open(record)?;
                    if format == "jsonl" {
                        group.count += 1;
                        if group.shown.len() < ROWS_PER_TABLE {
                            group.shown.push((record.recorded_at, body.clone()));
                        }
                    }
                    let line = match format {
                        "jsonl" => serde_json::to_string(&serde_json::json!({
                            "id": record.id, "recorded_at": record.recorded_at.to_string(), "body": body,
                        }))
                        .map_err(internal)?,
                        _ => csv_line(&[record.id.as_str(), &record.recorded_at.to_string(), &body.to_string()]),
                    };
                    entry.write_all(line.as_bytes()).map_err(internal)?;
                    entry.write_all(b"\n").map_err(internal)?;
                }
                match page.last() {
                    Some(last) if i64::try_from(page.len()).unwrap_or(0) == EXPORT_PAGE_RECORDS => {
                        after = Some((last.recorded_at, last.id.to_string()));
                    }
                    _ => break,
                }
            }
            let (hasher, size) = (entry.hasher, entry.size);
            Archive::<zip::write::StreamWriter<Hashing<W>>>::finish_entry(&mut archive.files, &path, hasher, size);
        }
        groups.push(group);
    }

    let statement = crate::services::money::statement(state, family_id).await?;
    archive.whole("statement.csv", crate::services::money::statement_csv(&statement).map_err(internal)?.as_bytes())?;
    let mut receipts = Vec::new();
    for receipt in state.store.receipts_of(family_id).await? {
        let path = format!("receipts/{}.json", receipt.id);
        archive.whole(&path, receipt.document.as_bytes())?;
        receipts.push(ReceiptLine { path, number: receipt.number, kind: receipt.kind });
    }
    // The page a parent opens first: in the family's language and zone.
    let family = state.store.family(family_id).await?;
    let locale = state.store.guardians_of(family_id).await?.first().map(|g| g.locale).unwrap_or_default();
    let calendar = Calendar::new(&family.time_zone).or_else(|_| Calendar::new("UTC")).map_err(internal)?;
    let sections: Vec<ChildSection> = children
        .iter()
        .map(|c| ChildSection {
            id: c.id.to_string(),
            name: c.name.clone(),
            birth_date: c.birth_date.clone(),
            consent_at: c.consent_at,
        })
        .collect();
    let files: Vec<(&str, u64, &str)> =
        archive.files.iter().map(|f| (f.path.as_str(), f.size, f.sha256.as_str())).collect();
    let index = crate::services::export_index::render(&IndexModel {
        locale,
        calendar: &calendar,
        export_id: export.id.as_str(),
        created_at: export.created_at,
        children: &sections,
        groups: &groups,
        statement: &statement,
        receipts: &receipts,
        files: &files,
    });
    archive.whole("index.html", index.as_bytes())?;

    let mut manifest = Manifest {
        family_id: family_id.to_string(),
        export_id: export.id.to_string(),
        created_at: export.created_at.to_string(),
        files: archive.files.clone(),
        signature: None,
    };
    let message = canonical_json(&manifest).map_err(internal)?;
    manifest.signature = Some(state.keys.sign(&message));
    archive.whole(MANIFEST, &serde_json::to_vec_pretty(&manifest).map_err(internal)?)?;
    let mut hashing = archive.zip.finish().map_err(internal)?.into_inner();
    hashing.flush().map_err(internal)?;
    let size = i64::try_from(hashing.size).map_err(internal)?;
    Ok((hex::encode(hashing.hasher.finalize()), size, hashing.inner))
}

fn csv_line(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { (*f).to_owned() }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn get(state: &AppState, caller: &Caller, export_id: &str) -> ApiResult<Export> {
    let export_id = ExportId::parse(export_id).map_err(|_| ApiError::not_found("export"))?;
    let export = state.store.export(&export_id).await.or_not_found("export")?;
    caller.require_family(&export.family_id, &[], "export")?;
    Ok(export)
}

pub async fn list(state: &AppState, caller: &Caller, family_id: &FamilyId) -> ApiResult<Vec<ExportView>> {
    caller.require_family(family_id, &[], "family")?;
    Ok(state.store.exports_of(family_id).await?.iter().map(ExportView::from).collect())
}

#[derive(Debug, thiserror::Error)]
pub enum ExportCheckError {
    #[error("not a readable ZIP archive: {0}")]
    Archive(String),
    #[error("manifest.json is missing or malformed")]
    Manifest,
    #[error("the manifest is not signed")]
    Unsigned,
    #[error("the manifest's signature does not verify: {0}")]
    Signature(#[from] crate::keys::VerifyError),
    #[error("{0} differs from the manifest (altered after export)")]
    Altered(String),
    #[error("{0} is listed in the manifest but missing from the archive")]
    Missing(String),
    #[error("{0} is in the archive but not in the manifest")]
    Unlisted(String),
}

/// Checks an export offline: the manifest's signature, then every file's
/// size and SHA-256, and that nothing was added or removed.
pub fn verify(path: &Path, keys: &KeySet) -> Result<Manifest, ExportCheckError> {
    let (manifest, _) = verify_archive(path, keys)?;
    serde_json::from_value(manifest).map_err(|_| ExportCheckError::Manifest)
}

/// Checks any signed archive of ours (an export, a dispute's dossier):
/// `manifest.json`'s signature over the canonical JSON of every other field
/// it holds, then every listed file's size and SHA-256, and that the
/// archive holds nothing else. Returns the manifest (signature included)
/// and the open archive, for checks of what the files say.
pub fn verify_archive(
    path: &Path,
    keys: &KeySet,
) -> Result<(serde_json::Value, zip::ZipArchive<File>), ExportCheckError> {
    let file = File::open(path).map_err(|e| ExportCheckError::Archive(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| ExportCheckError::Archive(e.to_string()))?;
    if archive.len() > EXPORT_ENTRIES_MAX {
        return Err(ExportCheckError::Archive("too many entries".into()));
    }
    let mut manifest: serde_json::Value = {
        let entry = archive.by_name(MANIFEST).map_err(|_| ExportCheckError::Manifest)?;
        let mut text = String::new();
        entry.take(MANIFEST_BYTES_MAX).read_to_string(&mut text).map_err(|_| ExportCheckError::Manifest)?;
        serde_json::from_str(&text).map_err(|_| ExportCheckError::Manifest)?
    };
    let fields = manifest.as_object_mut().ok_or(ExportCheckError::Manifest)?;
    let signature = fields.remove("signature").ok_or(ExportCheckError::Unsigned)?;
    let signature: SignatureBlock = serde_json::from_value(signature).map_err(|_| ExportCheckError::Manifest)?;
    let message = canonical_json(&manifest).map_err(|_| ExportCheckError::Manifest)?;
    keys.verify(&message, &signature)?;
    let files: Vec<ManifestFile> =
        serde_json::from_value(manifest["files"].clone()).map_err(|_| ExportCheckError::Manifest)?;
    for listed in &files {
        let mut entry = archive.by_name(&listed.path).map_err(|_| ExportCheckError::Missing(listed.path.clone()))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let read = entry.read(&mut buffer).map_err(|_| ExportCheckError::Altered(listed.path.clone()))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
            if size > listed.size {
                return Err(ExportCheckError::Altered(listed.path.clone()));
            }
        }
        if size != listed.size || hex::encode(hasher.finalize()) != listed.sha256 {
            return Err(ExportCheckError::Altered(listed.path.clone()));
        }
    }
    for index in 0..archive.len() {
        let name = archive
            .by_index(index)
            .map_err(|e| ExportCheckError::Archive(e.to_string()))?
            .name()
            .map_err(|e| ExportCheckError::Archive(e.to_string()))?
            .into_owned();
        if name != MANIFEST && !files.iter().any(|f| f.path == name) {
            return Err(ExportCheckError::Unlisted(name));
        }
    }
    manifest["signature"] = serde_json::to_value(signature).map_err(|_| ExportCheckError::Manifest)?;
    Ok((manifest, archive))
}
