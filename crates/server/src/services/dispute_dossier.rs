//! A dispute's dossier: one ZIP a parent can hand to a mediator or a
//! consumer association, and that anyone can check offline with the
//! provider's published key (`baobao verify dossier.zip`).
//!
//! It holds `index.html` (the dispute and its timeline in both languages),
//! `timeline.json`, the terms the family accepted (`terms.json` and their
//! plain-language text in both languages), the subscription's ledger as
//! `ledger.csv`, every receipt about it (signed JSON) with its proof of
//! logging against one signed tree head of the audit log, the evidence
//! files, and `manifest.json`: every file's path, SHA-256 and size, signed
//! like an export's manifest. The dossier itself is logged by its SHA-256.

use std::io::Write as _;
use std::path::Path;

use baobao_domain::Locale;
use baobao_domain::calendar::Calendar;
use baobao_domain::canonical::canonical_json;
use baobao_domain::ids::DisputeId;
use baobao_domain::receipt::ReceiptBody;
use baobao_store::{Dispute, StoredReceipt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::{Caller, STAFF_READERS};
use crate::error::{ApiError, ApiResult, OrNotFound, internal};
use crate::i18n::T;
use crate::keys::{KeySet, SignatureBlock};
use crate::receipts::{self, ReceiptDocument};
use crate::services::audit_log::{self, DocumentProof, TreeHead};
use crate::services::exports::{ExportCheckError, MANIFEST, ManifestFile, verify_archive};
use crate::state::AppState;

/// What a dossier's manifest says it is.
pub const DOSSIER_KIND: &str = "dispute_dossier";
/// Receipts a dossier carries at most (a subscription of many years).
pub const DOSSIER_RECEIPTS_MAX: usize = 2_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DossierManifest {
    pub kind: String,
    pub dispute_id: String,
    pub family_id: String,
    pub created_at: String,
    /// The signed tree head every receipt's proof reaches.
    pub tree_head: TreeHead,
    pub files: Vec<ManifestFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureBlock>,
}

/// The dossier of a dispute, for its family's guardians and staff readers
/// (a staff download is audited).
pub async fn for_caller(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(String, Vec<u8>)> {
    let dispute = load(state, id).await?;
    caller.require_family(&dispute.family_id, STAFF_READERS, "dispute")?;
    build(state, &dispute, &caller.actor()).await
}

/// The dossier opened by the dispute's emailed link.
pub async fn for_link(state: &AppState, id: &str, token: &str) -> ApiResult<(String, Vec<u8>)> {
    let dispute = load(state, id).await?;
    if !state.keys.opens_dispute(dispute.id.as_str(), token) {
        return Err(ApiError::not_found("dispute"));
    }
    build(state, &dispute, "link_holder").await
}

async fn load(state: &AppState, id: &str) -> ApiResult<Dispute> {
    let id = DisputeId::parse(id).map_err(|_| ApiError::not_found("dispute"))?;
    state.store.dispute(&id).await.or_not_found("dispute")
}

/// The receipts about the dispute: its own, every receipt about its
/// subscription, and for a data complaint the deletion certificates.
fn about_dispute(dispute: &Dispute, receipts: Vec<StoredReceipt>) -> ApiResult<Vec<(StoredReceipt, ReceiptDocument)>> {
    let subscription = dispute.subscription_id.as_ref().map(|s| s.as_str().to_owned());
    let mut chosen = Vec::new();
    for stored in receipts {
        let document: ReceiptDocument = serde_json::from_str(&stored.document).map_err(internal)?;
        let body = document.signed_body().map_err(internal)?;
        let wanted = match &body.body {
            ReceiptBody::Dispute(r) => r.dispute_id == dispute.id.as_str(),
            ReceiptBody::DeletionCertificate(_) => dispute.kind == baobao_domain::dispute::DisputeKind::DataNotDeleted,
            other => subscription.is_some() && other.subscription_id().map(str::to_owned) == subscription,
        };
        if wanted && chosen.len() < DOSSIER_RECEIPTS_MAX {
            chosen.push((stored, document));
        }
    }
    Ok(chosen)
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "message/rfc822" => "eml",
        _ => "txt",
    }
}

/// Builds the ZIP (in memory: receipts, a ledger and at most
/// `DISPUTE_EVIDENCE_TOTAL_MAX` files of 4 MiB) and logs it.
async fn build(state: &AppState, dispute: &Dispute, actor: &str) -> ApiResult<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let family = state.store.family(&dispute.family_id).await?;
    let calendar = Calendar::new(&family.time_zone).or_else(|_| Calendar::new("UTC")).map_err(internal)?;
    let receipts = about_dispute(dispute, state.store.receipts_of(&dispute.family_id).await?)?;

    // Every receipt's proof, against one head that covers them all.
    state.store.append_pending().await?;
    let head = audit_log::tree_head(state, None).await?;
    let mut receipt_lines = Vec::new();
    for (stored, document) in &receipts {
        let value = serde_json::to_value(document).map_err(internal)?;
        let sha256 = baobao_domain::audit::document_sha256(&value).map_err(internal)?;
        let entry = audit_log::logged_document(state, &sha256).await?;
        let proof = if entry.leaf_index < head.tree_size {
            let inclusion = audit_log::inclusion(state, entry.leaf_index, head.tree_size).await?;
            DocumentProof { document_sha256: sha256.clone(), entry, tree_head: head.clone(), inclusion }
        } else {
            audit_log::document_proof(state, &sha256).await?
        };
        let name = stored.number.clone();
        files.push((format!("receipts/{name}.json"), serde_json::to_vec_pretty(document).map_err(internal)?));
        files.push((format!("proofs/{name}.proof.json"), serde_json::to_vec_pretty(&proof).map_err(internal)?));
        receipt_lines.push((name, stored.kind.clone(), stored.created_at, proof.entry.leaf_index));
    }

    // The ledger of the subscription, and the terms the family accepted.
    let mut terms_lines: Vec<(Locale, Vec<String>)> = Vec::new();
    if let Some(subscription_id) = &dispute.subscription_id {
        let statement = crate::services::money::statement(state, &dispute.family_id).await?;
        let ledger: Vec<_> = statement.into_iter().filter(|e| e.subscription_id == subscription_id.as_str()).collect();
        files.push((
            "ledger.csv".to_owned(),
            crate::services::money::statement_csv(&ledger).map_err(internal)?.into_bytes(),
        ));
        let subscription = state.store.subscription(subscription_id).await?;
        let terms = crate::services::billing::Terms::load(state, &subscription).await?;
        let policy = json!({
            "plan_id": subscription.plan_id,
            "policy_version": subscription.policy_version,
            "policy_sha256": subscription.policy_sha256,
            "accepted_at": subscription.signed_up_at.to_string(),
            "policy": terms.policy,
        });
        files.push(("terms.json".to_owned(), serde_json::to_vec_pretty(&policy).map_err(internal)?));
        for locale in [Locale::ZhCn, Locale::En] {
            let lines: Vec<String> = terms.policy.render(locale).into_iter().map(|l| l.text).collect();
            files.push((format!("terms-{}.txt", locale.tag()), lines.join("\n").into_bytes()));
            terms_lines.push((locale, lines));
        }
    }

    // The evidence, as filed (files that went with the family's personal
    // data are named by their hash in the timeline only).
    let evidence = state.store.dispute_evidence(&dispute.id).await?;
    for file in evidence.iter().filter(|e| e.removed_at.is_none()) {
        if let Some(bytes) = crate::services::evidence::read_family_evidence(state, &dispute.family_id, &file.sha256)? {
            files.push((format!("evidence/{}.{}", file.sha256, extension(&file.content_type)), bytes));
        }
    }

    let events = state.store.dispute_events(&dispute.id).await?;
    let view = crate::services::disputes::DisputeView::from(dispute);
    let timeline: Vec<_> = events.iter().map(crate::services::disputes::TimelineEntryView::from).collect();
    files.push((
        "timeline.json".to_owned(),
        serde_json::to_vec_pretty(&json!({"dispute": view, "timeline": timeline})).map_err(internal)?,
    ));
    let index = render_index(&IndexModel {
        dispute,
        calendar: &calendar,
        timeline: &timeline,
        receipts: &receipt_lines,
        terms: &terms_lines,
        evidence: &evidence,
        head: &head,
        files: &files,
    });
    files.push(("index.html".to_owned(), index.into_bytes()));

    let now = state.clock.now();
    let mut manifest = DossierManifest {
        kind: DOSSIER_KIND.to_owned(),
        dispute_id: dispute.id.to_string(),
        family_id: dispute.family_id.to_string(),
        created_at: now.to_string(),
        tree_head: head,
        files: files
            .iter()
            .map(|(path, bytes)| ManifestFile {
                path: path.clone(),
                sha256: hex::encode(Sha256::digest(bytes)),
                size: bytes.len() as u64,
            })
            .collect(),
        signature: None,
    };
    manifest.signature = Some(state.keys.sign(&canonical_json(&manifest).map_err(internal)?));
    files.push((MANIFEST.to_owned(), serde_json::to_vec_pretty(&manifest).map_err(internal)?));

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (path, bytes) in &files {
        zip.start_file(path.as_str(), options).map_err(internal)?;
        zip.write_all(bytes).map_err(internal)?;
    }
    let bytes = zip.finish().map_err(internal)?.into_inner();
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let mut tx = state.store.begin().await?;
    let subjects = [dispute.family_id.as_str(), dispute.id.as_str()];
    tx.audit_entry(now, actor, "dispute.dossier", &subjects, &json!({"files": files.len()}), Some(&sha256)).await?;
    tx.commit().await?;
    Ok((format!("dossier-{}.zip", dispute.id), bytes))
}

struct IndexModel<'a> {
    dispute: &'a Dispute,
    calendar: &'a Calendar,
    timeline: &'a [crate::services::disputes::TimelineEntryView],
    /// Number, kind, issued at, leaf index.
    receipts: &'a [(String, String, jiff::Timestamp, u64)],
    terms: &'a [(Locale, Vec<String>)],
    evidence: &'a [baobao_store::DisputeEvidence],
    head: &'a TreeHead,
    files: &'a [(String, Vec<u8>)],
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A label in both languages: `中文 · English`.
fn both(key: &str) -> String {
    let (zh, en) = (T::new(Locale::ZhCn).get(key), T::new(Locale::En).get(key));
    escape(&format!("{zh} · {en}"))
}

fn both_word(prefix: &str, value: &str) -> String {
    both(&format!("{prefix}-{value}"))
}

/// The page a mediator opens first: everything in both languages, no
/// script, no outside resource.
fn render_index(m: &IndexModel<'_>) -> String {
    let d = m.dispute;
    let local = |at: jiff::Timestamp| m.calendar.zoned(at).strftime("%Y-%m-%d %H:%M %:z").to_string();
    let mut html = String::with_capacity(16 * 1024);
    html.push_str("<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    html.push_str(&format!("<title>{} {}</title>", both("dossier-title"), escape(d.id.as_str())));
    // Readable on a phone: long hashes and ids break anywhere, tables keep to the width.
    html.push_str("<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;line-height:1.5;overflow-wrap:anywhere}table{border-collapse:collapse;width:100%;table-layout:fixed}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top;overflow-wrap:anywhere;word-break:break-word}code,small,pre{word-break:break-all;white-space:pre-wrap}</style></head><body>");
    html.push_str(&format!("<h1>{}</h1><p>{}</p>", both("dossier-title"), both("dossier-intro")));
    let rows = [
        (both("dossier-reference"), escape(d.id.as_str())),
        (both("dispute-kind"), both_word("dispute-kind", d.kind.as_str())),
        (both("dossier-opened"), escape(&local(d.opened_at))),
        (both("dispute-level"), both_word("dispute-level", d.level.as_str())),
        (
            both("dossier-status"),
            match d.outcome {
                Some(outcome) => both_word("dispute-outcome", outcome.as_str()),
                None => both("dossier-open"),
            },
        ),
        (both("dispute-resolution-due"), escape(&local(d.resolution_due))),
        (both("dossier-deadlines-missed"), d.deadlines_missed.to_string()),
    ];
    html.push_str("<table>");
    for (label, value) in rows {
        html.push_str(&format!("<tr><th scope=\"row\">{label}</th><td>{value}</td></tr>"));
    }
    html.push_str("</table>");
    if !d.description.is_empty() {
        html.push_str(&format!("<h2>{}</h2><pre>{}</pre>", both("dossier-description"), escape(&d.description)));
    }

    html.push_str(&format!(
        "<h2>{}</h2><table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        both("dossier-timeline"),
        both("dossier-when"),
        both("dossier-who"),
        both("dossier-what"),
        both("dossier-details")
    ));
    for entry in m.timeline {
        let facts = match &entry.facts {
            serde_json::Value::Object(map) if !map.is_empty() => {
                escape(&serde_json::to_string(map).unwrap_or_default())
            }
            _ => String::new(),
        };
        let text = if entry.text.is_empty() { String::new() } else { format!("<pre>{}</pre>", escape(&entry.text)) };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{text}<small>{facts}</small></td></tr>",
            escape(&local(entry.at)),
            escape(&entry.actor),
            both_word("dispute-event", &entry.kind),
        ));
    }
    html.push_str("</table>");

    html.push_str(&format!("<h2>{}</h2><p>{}</p><table>", both("dossier-receipts"), both("dossier-receipts-intro")));
    for (number, kind, issued_at, leaf) in m.receipts {
        html.push_str(&format!(
            "<tr><td><a href=\"receipts/{n}.json\">{n}</a></td><td>{}</td><td>{}</td><td><a href=\"proofs/{n}.proof.json\">#{leaf}</a></td></tr>",
            both_word("receipt-kind", kind),
            escape(&local(*issued_at)),
            n = escape(number),
        ));
    }
    html.push_str(&format!(
        "</table><p>{}: {} · {} · <code>{}</code></p>",
        both("dossier-tree-head"),
        m.head.tree_size,
        escape(&m.head.timestamp),
        escape(&m.head.root_hash)
    ));

    if !m.terms.is_empty() {
        html.push_str(&format!("<h2>{}</h2>", both("dossier-terms")));
        for (locale, lines) in m.terms {
            html.push_str(&format!("<ul lang=\"{}\">", locale.tag()));
            for line in lines {
                html.push_str(&format!("<li>{}</li>", escape(line)));
            }
            html.push_str("</ul>");
        }
        html.push_str("<p><a href=\"ledger.csv\">ledger.csv</a> · <a href=\"terms.json\">terms.json</a></p>");
    }

    if !m.evidence.is_empty() {
        html.push_str(&format!("<h2>{}</h2><ul>", both("dossier-evidence")));
        for file in m.evidence {
            let shown = if file.removed_at.is_some() {
                format!("{} ({})", escape(&file.sha256), both("dossier-evidence-removed"))
            } else {
                format!(
                    "<a href=\"evidence/{s}.{e}\">{s}</a> ({t}, {b} B)",
                    s = escape(&file.sha256),
                    e = extension(&file.content_type),
                    t = escape(&file.content_type),
                    b = file.bytes
                )
            };
            html.push_str(&format!("<li>{shown}</li>"));
        }
        html.push_str("</ul>");
    }

    html.push_str(&format!(
        "<h2>{}</h2><p>{}</p><pre>baobao verify {}.zip --keys keys.json</pre><table>",
        both("dossier-check"),
        both("dossier-check-how"),
        escape(&format!("dossier-{}", d.id))
    ));
    for (path, bytes) in m.files {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(path),
            bytes.len(),
            hex::encode(Sha256::digest(bytes))
        ));
    }
    html.push_str("</table></body></html>\n");
    html
}

/// Whether a ZIP's manifest says it is a dispute's dossier (what `baobao
/// verify` checks it as).
pub fn is_dossier(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else { return false };
    let Ok(mut archive) = zip::ZipArchive::new(file) else { return false };
    let Ok(entry) = archive.by_name(MANIFEST) else { return false };
    let manifest: serde_json::Value = match serde_json::from_reader(std::io::Read::take(entry, 64 * 1024 * 1024)) {
        Ok(value) => value,
        Err(_) => return false,
    };
    manifest["kind"] == DOSSIER_KIND
}

#[derive(Debug, thiserror::Error)]
pub enum DossierCheckError {
    #[error(transparent)]
    Archive(#[from] ExportCheckError),
    #[error("this archive is not a dispute's dossier")]
    NotADossier,
    #[error("{0} is not a receipt that verifies: {1}")]
    Receipt(String, String),
    #[error("{0} has no proof of logging in the dossier")]
    NoProof(String),
    #[error("{0} is not proved in the audit log: {1}")]
    NotLogged(String, String),
}

/// What checking a dossier found.
#[derive(Debug)]
pub struct DossierCheck {
    pub manifest: DossierManifest,
    pub receipts: usize,
}

/// Checks a dossier offline with `keys`: the signed manifest against every
/// file (nothing altered, added or removed), every receipt's signature,
/// and every receipt's proof of logging against a signed tree head.
pub fn verify(path: &Path, keys: &KeySet) -> Result<DossierCheck, DossierCheckError> {
    let (manifest, mut archive) = verify_archive(path, keys)?;
    let manifest: DossierManifest = serde_json::from_value(manifest).map_err(|_| DossierCheckError::NotADossier)?;
    if manifest.kind != DOSSIER_KIND {
        return Err(DossierCheckError::NotADossier);
    }
    let read = |archive: &mut zip::ZipArchive<std::fs::File>, name: &str| -> Option<String> {
        let mut text = String::new();
        let entry = archive.by_name(name).ok()?;
        std::io::Read::read_to_string(&mut std::io::Read::take(entry, 16 * 1024 * 1024), &mut text).ok()?;
        Some(text)
    };
    let mut checked = 0;
    for file in manifest.files.iter().filter(|f| f.path.starts_with("receipts/") && f.path.ends_with(".json")) {
        let name = &file.path;
        let text =
            read(&mut archive, name).ok_or_else(|| DossierCheckError::Receipt(name.clone(), "unreadable".into()))?;
        let document: ReceiptDocument =
            serde_json::from_str(&text).map_err(|e| DossierCheckError::Receipt(name.clone(), e.to_string()))?;
        receipts::verify(&document, keys).map_err(|e| DossierCheckError::Receipt(name.clone(), e.to_string()))?;
        let number = name.trim_start_matches("receipts/").trim_end_matches(".json");
        let proof_name = format!("proofs/{number}.proof.json");
        let proof_text = read(&mut archive, &proof_name).ok_or_else(|| DossierCheckError::NoProof(name.clone()))?;
        let proof: DocumentProof =
            serde_json::from_str(&proof_text).map_err(|e| DossierCheckError::NotLogged(name.clone(), e.to_string()))?;
        let value =
            serde_json::to_value(&document).map_err(|e| DossierCheckError::Receipt(name.clone(), e.to_string()))?;
        let sha256 = baobao_domain::audit::document_sha256(&value)
            .map_err(|e| DossierCheckError::Receipt(name.clone(), e.to_string()))?;
        audit_log::check_document_proof(&sha256, &proof, keys)
            .map_err(|e| DossierCheckError::NotLogged(name.clone(), e))?;
        checked += 1;
    }
    Ok(DossierCheck { manifest, receipts: checked })
}
