//! `baobao verify FILE`: checks a signed receipt, a deletion certificate or
//! a data export (ZIP) offline, against a published keys.json or the
//! server's own key in its data directory.

use std::path::Path;

use anyhow::{Context, Result, bail};
use baobao_server::keys::{KeySet, SigningKeys};
use baobao_server::receipts::{self, ReceiptDocument};

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

pub fn run(file: &Path, keys: Option<&Path>, data_dir: Option<&Path>) -> Result<()> {
    let key_set = key_set(keys, data_dir)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if bytes.starts_with(b"PK\x03\x04") {
        let manifest = baobao_server::services::exports::verify(file, &key_set)
            .with_context(|| format!("{} does NOT verify", file.display()))?;
        println!(
            "OK: export {} of family {}: {} files match the manifest signed by {}",
            manifest.export_id,
            manifest.family_id,
            manifest.files.len(),
            manifest.signature.map(|s| s.key_id).unwrap_or_default()
        );
        return Ok(());
    }
    let text = String::from_utf8(bytes).with_context(|| format!("{} is not a baobao receipt", file.display()))?;
    let document: ReceiptDocument =
        serde_json::from_str(&text).with_context(|| format!("{} is not a baobao receipt", file.display()))?;
    receipts::verify(&document, &key_set).with_context(|| format!("{} does NOT verify", file.display()))?;
    let number = document.body.get("receipt_number").and_then(|n| n.as_str()).unwrap_or("?");
    println!("OK: {} receipt {} ({number}) is signed by {}", document.kind, document.id, document.signature.key_id);
    Ok(())
}
