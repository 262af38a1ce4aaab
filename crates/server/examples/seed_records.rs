//! Benchmark fixture: a family with one child and N sealed records, written
//! the way the API writes them (same vault, same binding), in batches.
//!
//! `cargo run --release -p baobao-server --example seed_records -- DATABASE_URL DATA_DIR N`
//! prints the family id.

#[path = "fixtures/mod.rs"]
mod fixtures;

use baobao_domain::ids::{ChildId, RecordId};
use baobao_server::random::random_bytes;
use baobao_server::services::children;
use baobao_server::services::children::ChildInput;
use baobao_server::state::{ClockMode, GatewayMode};
use baobao_server::vault::record_binding;
use baobao_server::{AppState, ServerConfig};
use baobao_store::{Store, StoredRecord};

const BATCH_RECORDS: u64 = 1000;

#[tokio::main]
async fn main() -> Result<(), fixtures::Failure> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, data_dir, count] = args.as_slice() else {
        return Err("usage: seed_records DATABASE_URL DATA_DIR N".into());
    };
    let count: u64 = count.parse()?;
    let store = Store::connect(url).await?;
    store.migrate().await?;
    let config = ServerConfig::new(data_dir.into(), ClockMode::System, GatewayMode::LedgerOnly);
    let state = AppState::new(store, config).await?;
    let plan = fixtures::monthly_plan(&state, serde_json::json!({})).await?;
    let (parent, family_id, _) =
        fixtures::subscribed_parent(&state, format!("bench-{}@example.com", hex_id()), &plan).await?;
    let child = children::add_child(
        &state,
        &parent,
        &family_id,
        ChildInput { name: "Bench child".into(), birth_date: "2019-01-01".into(), consent: true },
    )
    .await
    .map_err(fixtures::fail)?;
    let child_id = ChildId::parse(&child.id)?;
    let key = state.vault.data_key(family_id.as_str(), "edu", true)?.ok_or("no data key")?;
    let start: jiff::Timestamp = "2026-01-01T00:00:00Z".parse()?;
    let mut written = 0;
    while written < count {
        let mut tx = state.store.begin().await?;
        for _ in 0..BATCH_RECORDS.min(count - written) {
            let id = RecordId::from_random(random_bytes());
            let kind = ["growth", "learning_progress", "safety_event"][(written % 3) as usize];
            let body = serde_json::json!({"n": written, "height_cm": 100 + written % 40, "note": "a typical small record body"});
            let binding = record_binding(id.as_str(), family_id.as_str(), child_id.as_str(), "edu", kind);
            let sealed = key.seal(&serde_json::to_vec(&body)?, &binding)?;
            let recorded_at = start.checked_add(jiff::SignedDuration::from_secs(i64::try_from(written)? * 60))?;
            tx.insert_record(&StoredRecord {
                id,
                family_id: family_id.clone(),
                child_id: child_id.clone(),
                service: "edu".into(),
                kind: kind.into(),
                recorded_at,
                nonce: sealed.nonce,
                ciphertext: sealed.ciphertext,
                created_at: recorded_at,
            })
            .await?;
            written += 1;
        }
        tx.commit().await?;
    }
    println!("{family_id}");
    Ok(())
}

fn hex_id() -> String {
    let bytes: [u8; 6] = random_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
