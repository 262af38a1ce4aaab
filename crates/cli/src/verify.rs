//! `baobao verify FILE`: checks a signed receipt, a deletion certificate, a
//! data export (ZIP) or a dispute's dossier (ZIP) offline, against a published keys.json or the
//! server's own key in its data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use baobao_server::keys::{KeySet, SigningKeys};
use baobao_server::receipts::{self, ReceiptDocument};
use baobao_server::services::audit_log;

/// The keys to check against: a published keys.json, or the server's own.
pub fn key_set(keys: Option<&Path>, data_dir: Option<&Path>) -> Result<KeySet> {
    Ok(match (keys, data_dir) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str::<KeySet>(&text).with_context(|| format!("{} is not a keys.json", path.display()))?
        }
        (None, data_dir) => {
            let dir = data_dir.unwrap_or(Path::new("./data"));
            if !dir.join(baobao_server::keys::SIGNING_KEY_FILE).exists() {
                bail!("no keys: pass --keys keys.json (from /.well-known/baobao/keys.json) or --data-dir");
            }
            SigningKeys::load_or_create(dir)?.key_set()
        }
    })
}

/// Whether, and how, the file's place in the audit log is checked.
pub enum Log {
    Unchecked,
    /// Its proof fetched from this server.
    Server(String),
    /// Its proof of logging, as downloaded: offline.
    Proof(PathBuf),
}

/// Checks the file's signature and that it is in the audit log: an
/// inclusion proof against a signed tree head, fetched from the server or
/// read from a proof file.
pub async fn run(file: &Path, keys: Option<&Path>, data_dir: Option<&Path>, log: Log) -> Result<()> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
    let key_set = match (keys, data_dir, &log) {
        // Only the server to go by: its published keys.
        (None, None, Log::Server(server)) => {
            let url = format!("{}/.well-known/baobao/keys.json", server.trim_end_matches('/'));
            client.get(&url).send().await?.error_for_status()?.json::<KeySet>().await.context("no keys.json")?
        }
        _ => key_set(keys, data_dir)?,
    };
    let sha256 = signed(file, &key_set)?;
    let found = match &log {
        Log::Unchecked => return Ok(()),
        Log::Server(server) => audit_log::prove_document(&client, server, &sha256, &key_set)
            .await
            .map_err(|reason| anyhow::anyhow!("{} is NOT in the audit log of {server}: {reason}", file.display()))?,
        Log::Proof(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let proof: audit_log::DocumentProof =
                serde_json::from_str(&text).with_context(|| format!("{} is not a proof of logging", path.display()))?;
            audit_log::check_document_proof(&sha256, &proof, &key_set).map_err(|reason| {
                anyhow::anyhow!("{} is NOT in the audit log by {}: {reason}", file.display(), path.display())
            })?
        }
    };
    println!(
        "OK: in the audit log at leaf {}, included in the tree of {} entries signed at {} (root {})",
        found.leaf_index, found.head.tree_size, found.head.timestamp, found.head.root_hash
    );
    Ok(())
}

/// Checks a receipt's or an export's signature; returns the SHA-256 the
/// audit log knows it by.
fn signed(file: &Path, key_set: &KeySet) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if bytes.starts_with(b"PK\x03\x04") && baobao_server::services::dispute_dossier::is_dossier(file) {
        let checked = baobao_server::services::dispute_dossier::verify(file, key_set)
            .with_context(|| format!("{} does NOT verify", file.display()))?;
        println!(
            "OK: dossier of dispute {} (family {}): {} files match the manifest signed by {}; {} receipts verify, each proved in the audit log",
            checked.manifest.dispute_id,
            checked.manifest.family_id,
            checked.manifest.files.len(),
            checked.manifest.signature.map(|s| s.key_id).unwrap_or_default(),
            checked.receipts
        );
        return Ok(baobao_domain::canonical::sha256_hex(&bytes));
    }
    if bytes.starts_with(b"PK\x03\x04") {
        let manifest = baobao_server::services::exports::verify(file, key_set)
            .with_context(|| format!("{} does NOT verify", file.display()))?;
        println!(
            "OK: export {} of family {}: {} files match the manifest signed by {}",
            manifest.export_id,
            manifest.family_id,
            manifest.files.len(),
            manifest.signature.map(|s| s.key_id).unwrap_or_default()
        );
        return Ok(baobao_domain::canonical::sha256_hex(&bytes));
    }
    let text = String::from_utf8(bytes).with_context(|| format!("{} is not a baobao receipt", file.display()))?;
    let document: ReceiptDocument =
        serde_json::from_str(&text).with_context(|| format!("{} is not a baobao receipt", file.display()))?;
    receipts::verify(&document, key_set).with_context(|| format!("{} does NOT verify", file.display()))?;
    let number = document.body.get("receipt_number").and_then(|n| n.as_str()).unwrap_or("?");
    println!("OK: {} receipt {} ({number}) is signed by {}", document.kind, document.id, document.signature.key_id);
    let value: serde_json::Value = serde_json::from_str(&text)?;
    Ok(baobao_domain::audit::document_sha256(&value)?)
}
