//! The audit log seen from outside: signed tree heads, and the inclusion
//! and consistency proofs anyone can check against them (RFC 9162), so that
//! a provider that removed or rewrote an entry is caught by whoever kept an
//! earlier head.
//!
//! A tree head is `{tree_size, root_hash, timestamp}` signed with the
//! server's Ed25519 key over its canonical JSON. One is produced at least
//! every minute while entries arrive (the worker) and on demand (a request
//! for the latest head when the log grew); with several servers on
//! PostgreSQL, one signs at a time under an advisory lock.

use std::collections::HashMap;

use baobao_domain::canonical::canonical_json;
use baobao_domain::merkle::{self, Hash, Nodes};
use baobao_store::StoredTreeHead;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, internal};
use crate::keys::SignatureBlock;
use crate::state::AppState;

/// A signed tree head.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct TreeHead {
    pub tree_size: u64,
    /// Hex SHA-256 (RFC 9162 Merkle Tree Hash).
    pub root_hash: String,
    /// When it was signed (RFC 3339).
    pub timestamp: String,
    pub signature: SignatureBlock,
}

/// What the signature covers: the head without its signature.
#[derive(Serialize)]
struct Signed<'a> {
    tree_size: u64,
    root_hash: &'a str,
    timestamp: &'a str,
}

impl TreeHead {
    /// The bytes the signature is over.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, baobao_domain::canonical::CanonicalError> {
        canonical_json(&Signed { tree_size: self.tree_size, root_hash: &self.root_hash, timestamp: &self.timestamp })
    }

    /// The root, as bytes.
    pub fn root(&self) -> Option<Hash> {
        hex::decode(&self.root_hash).ok().and_then(|b| b.try_into().ok())
    }
}

fn from_stored(stored: &StoredTreeHead) -> ApiResult<TreeHead> {
    Ok(TreeHead {
        tree_size: stored.tree_size,
        root_hash: stored.root_hash.clone(),
        timestamp: stored.signed_at.clone(),
        signature: serde_json::from_str(&stored.signature).map_err(internal)?,
    })
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    /// RFC 9162 §2.1.3 audit path, hex.
    pub audit_path: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    /// RFC 9162 §2.1.4 consistency proof, hex.
    pub proof: Vec<String>,
}

/// Stored subtrees for one computation: a first pass records which the
/// algorithm asks for (its path does not depend on the hashes), the second
/// answers from what was fetched.
enum Source {
    Recording(Vec<(u32, u64)>),
    Fetched(HashMap<(u32, u64), Hash>, bool),
}

impl Nodes for Source {
    fn node(&mut self, level: u32, index: u64) -> Hash {
        match self {
            Source::Recording(wanted) => {
                wanted.push((level, index));
                [0; 32]
            }
            Source::Fetched(found, missing) => found.get(&(level, index)).copied().unwrap_or_else(|| {
                *missing = true;
                [0; 32]
            }),
        }
    }
}

/// Runs `compute` over the stored subtrees it needs.
async fn over_nodes<T>(state: &AppState, compute: impl Fn(&mut Source) -> T) -> ApiResult<T> {
    let mut recording = Source::Recording(Vec::new());
    compute(&mut recording);
    let Source::Recording(wanted) = recording else { return Err(internal("recording")) };
    let mut fetched = Source::Fetched(state.store.audit_nodes(&wanted).await?, false);
    let answer = compute(&mut fetched);
    match fetched {
        Source::Fetched(_, false) => Ok(answer),
        _ => Err(internal("a subtree of the audit log is missing")),
    }
}

fn hexes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// Signs a head for the log as it is now, unless the latest head already
/// covers it (or another server is signing one). Returns the latest head.
pub async fn produce_head(state: &AppState) -> ApiResult<Option<TreeHead>> {
    state.store.append_pending().await?;
    let latest = state.store.tree_head(None).await?;
    let mut tx = state.store.begin().await?;
    if !tx.try_lock_tree_heads().await? {
        tx.rollback().await?;
        return latest.as_ref().map(from_stored).transpose();
    }
    let size = tx.audit_size().await?;
    if let Some(latest) = &latest
        && latest.tree_size >= size
    {
        tx.rollback().await?;
        return Ok(Some(from_stored(latest)?));
    }
    let root = over_nodes(state, |nodes| merkle::range_root(nodes, 0, size)).await?;
    let timestamp = state.clock.now().to_string();
    let root_hash = hex::encode(root);
    let signed = Signed { tree_size: size, root_hash: &root_hash, timestamp: &timestamp };
    let signature = state.keys.sign(&canonical_json(&signed).map_err(internal)?);
    let head = TreeHead { tree_size: size, root_hash, timestamp, signature };
    tx.insert_tree_head(&StoredTreeHead {
        tree_size: head.tree_size,
        root_hash: head.root_hash.clone(),
        signed_at: head.timestamp.clone(),
        signature: serde_json::to_string(&head.signature).map_err(internal)?,
    })
    .await?;
    tx.commit().await?;
    Ok(Some(head))
}

/// Appends what is committed but not in the log yet, for a reader who must
/// see it (a write only when there is something to append).
async fn append_pending_entries(state: &AppState) -> ApiResult<()> {
    if state.store.pending_entries().await? > 0 {
        state.store.append_pending().await?;
    }
    Ok(())
}

/// The latest signed head (signed now if the log grew), or the one of
/// `tree_size`.
pub async fn tree_head(state: &AppState, tree_size: Option<u64>) -> ApiResult<TreeHead> {
    let head = match tree_size {
        Some(size) => state.store.tree_head(Some(size)).await?.as_ref().map(from_stored).transpose()?,
        None => produce_head(state).await?,
    };
    head.ok_or_else(|| ApiError::not_found("tree head"))
}

fn out_of_range(field: &str, size: u64) -> ApiError {
    ApiError::invalid_query(field, "tree_range").with("size", size)
}

pub async fn inclusion(state: &AppState, leaf_index: u64, tree_size: u64) -> ApiResult<InclusionProof> {
    let size = state.store.audit_size().await?;
    if tree_size == 0 || tree_size > size {
        return Err(out_of_range("tree_size", size));
    }
    if leaf_index >= tree_size {
        return Err(out_of_range("leaf_index", tree_size));
    }
    let (path, leaf) = over_nodes(state, |nodes| {
        (merkle::inclusion_proof_from(nodes, leaf_index, tree_size), nodes.node(0, leaf_index))
    })
    .await?;
    Ok(InclusionProof {
        leaf_index,
        tree_size,
        leaf_hash: hex::encode(leaf),
        audit_path: hexes(&path.map_err(internal)?),
    })
}

pub async fn consistency(state: &AppState, first: u64, second: u64) -> ApiResult<ConsistencyProof> {
    let size = state.store.audit_size().await?;
    if second == 0 || second > size {
        return Err(out_of_range("second", size));
    }
    if first == 0 || first > second {
        return Err(out_of_range("first", second));
    }
    let proof = over_nodes(state, |nodes| merkle::consistency_proof_from(nodes, first, second)).await?;
    Ok(ConsistencyProof { first, second, proof: hexes(&proof.map_err(internal)?) })
}

/// What `verify` found wrong with the log, at the first place it went wrong.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogFault {
    #[error("leaf {index} is missing: the entry was deleted, or the entries reordered")]
    Missing { index: u64 },
    #[error("leaf {index} differs from what was logged: its entry was changed, or moved")]
    Changed { index: u64 },
    #[error(
        "the log's first {tree_size} leaves do not give the root the server signed: an entry before {tree_size} was changed"
    )]
    Rewritten { tree_size: u64 },
    #[error("the log holds {have} leaves but a signed head covers {signed}: entries from leaf {have} on were removed")]
    Truncated { have: u64, signed: u64 },
    #[error("the signed head of size {tree_size} does not verify: {reason}")]
    BadHead { tree_size: u64, reason: String },
    #[error("the log could not be read: {0}")]
    Unreadable(String),
}

/// What a clean check covered.
#[derive(Debug, PartialEq, Eq)]
pub struct LogReport {
    pub leaves: u64,
    pub heads: u64,
    pub root_hash: String,
    /// Entries committed but not appended yet (the appender's next turn).
    pub pending: u64,
}

/// The root of a growing tree, one leaf at a time, in memory logarithmic in
/// its size: complete subtrees on a stack, merged as they pair up.
#[derive(Clone, Default)]
struct CompactRange {
    nodes: Vec<(u32, Hash)>,
    size: u64,
}

impl CompactRange {
    /// Adds the next leaf; returns the complete subtrees above the leaves
    /// it completes, as (level, index, hash).
    fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let mut completed = Vec::new();
        let mut node = (0, leaf);
        while let Some(&(level, left)) = self.nodes.last() {
            if level != node.0 {
                break;
            }
            self.nodes.pop();
            node = (level + 1, merkle::node_hash(&left, &node.1));
            completed.push((node.0, self.size >> node.0, node.1));
        }
        self.nodes.push(node);
        self.size += 1;
        completed
    }

    fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        match nodes.next() {
            None => merkle::root(&[]),
            Some(&(_, last)) => nodes.fold(last, |right, (_, left)| merkle::node_hash(left, &right)),
        }
    }
}

/// Recomputes the whole log from the entries as stored: every leaf from its
/// entry, in order, without gaps, against the leaf hash kept beside it;
/// every stored subtree (what proofs are made of) against the leaves
/// under it; the root at every signed head's size against the signed
/// root; the log against the largest signed size. The first fault is
/// named with its leaf index.
pub async fn verify(store: &baobao_store::Store, keys: &crate::keys::KeySet) -> Result<LogReport, LogFault> {
    let unreadable = |e: baobao_store::StoreError| LogFault::Unreadable(e.to_string());
    let heads = store.tree_heads().await.map_err(unreadable)?;
    let mut signed = Vec::new();
    for stored in &heads {
        let head = from_stored(stored)
            .map_err(|e| LogFault::BadHead { tree_size: stored.tree_size, reason: e.internal.unwrap_or_default() })?;
        let bytes = head.signed_bytes().map_err(|e| LogFault::Unreadable(e.to_string()))?;
        keys.verify(&bytes, &head.signature)
            .map_err(|e| LogFault::BadHead { tree_size: head.tree_size, reason: e.to_string() })?;
        signed.push(head);
    }
    let mut range = CompactRange::default();
    let mut next = 0u64;
    let mut pending_heads = signed.iter().peekable();
    let check_heads =
        |size: u64, range: &CompactRange, pending: &mut std::iter::Peekable<std::slice::Iter<'_, TreeHead>>| {
            while let Some(head) = pending.next_if(|h| h.tree_size == size) {
                if head.root() != Some(range.root()) {
                    return Err(LogFault::Rewritten { tree_size: head.tree_size });
                }
            }
            Ok(())
        };
    check_heads(0, &range, &mut pending_heads)?;
    loop {
        let page = store.logged_entries(next, 1000).await.map_err(unreadable)?;
        if page.is_empty() {
            break;
        }
        let leaf_of = |entry: &baobao_store::LoggedEntry| {
            baobao_domain::audit::entry_leaf_hash(
                entry.at,
                &entry.actor,
                &entry.action,
                &entry.subject_ids,
                entry.document_sha256.as_deref(),
            )
            .map_err(|e| LogFault::Unreadable(e.to_string()))
        };
        // The subtrees this page completes, read in one query.
        let mut ahead = range.clone();
        let mut wanted = Vec::new();
        for entry in &page {
            wanted.extend(ahead.push(leaf_of(entry)?).into_iter().map(|(level, index, _)| (level, index)));
        }
        let stored = store.audit_nodes(&wanted).await.map_err(unreadable)?;
        for entry in &page {
            let Some(index) = entry.leaf_index.filter(|i| *i == next) else {
                return Err(LogFault::Missing { index: next });
            };
            let leaf = leaf_of(entry)?;
            if entry.leaf_hash.as_deref() != Some(hex::encode(leaf).as_str()) {
                return Err(LogFault::Changed { index });
            }
            for (level, position, hash) in range.push(leaf) {
                if stored.get(&(level, position)) != Some(&hash) {
                    return Err(LogFault::Changed { index });
                }
            }
            next += 1;
            check_heads(next, &range, &mut pending_heads)?;
        }
        if page.len() < 1000 {
            break;
        }
    }
    if let Some(head) = pending_heads.next() {
        return Err(LogFault::Truncated { have: next, signed: head.tree_size });
    }
    let pending = store.pending_entries().await.map_err(unreadable)?;
    Ok(LogReport { leaves: next, heads: signed.len() as u64, root_hash: hex::encode(range.root()), pending })
}

/// What a watcher keeps between runs: the server's keys as first seen
/// (trust on first use) and every tree head it accepted.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WatchState {
    pub server: String,
    pub keys: Option<crate::keys::KeySet>,
    pub heads: Vec<TreeHead>,
}

/// What one run of `baobao audit watch` found wrong.
#[derive(Debug, thiserror::Error)]
pub enum WatchFault {
    #[error("cannot reach {0}")]
    Unreachable(String),
    #[error("the server's answer is not what the API promises: {0}")]
    Malformed(String),
    #[error("the tree head of size {0} is not signed by the key first seen for this server")]
    BadSignature(u64),
    #[error("the log shrank from {before} to {now} entries: entries were removed")]
    Shrank { before: u64, now: u64 },
    #[error("the log of {size} entries has a different root than when first seen: its history was rewritten")]
    Forked { size: u64 },
    #[error("the log of {second} entries does not extend the one of {first} seen before: its history was rewritten")]
    Inconsistent { first: u64, second: u64 },
}

/// One run of a watcher outside the provider: fetch the latest signed
/// head, check it is signed by the key first seen, and that it extends the
/// last head seen (a consistency proof); then keep it. Returns the new head.
pub async fn watch_once(client: &reqwest::Client, state: &mut WatchState) -> Result<TreeHead, WatchFault> {
    let base = state.server.trim_end_matches('/').to_owned();
    let get = |path: String| {
        let client = client.clone();
        async move {
            let response =
                client.get(&path).send().await.map_err(|e| WatchFault::Unreachable(format!("{path}: {e}")))?;
            if !response.status().is_success() {
                return Err(WatchFault::Malformed(format!("{path}: {}", response.status())));
            }
            response.json::<serde_json::Value>().await.map_err(|e| WatchFault::Malformed(e.to_string()))
        }
    };
    if state.keys.is_none() {
        let keys = get(format!("{base}/.well-known/baobao/keys.json")).await?;
        state.keys = Some(serde_json::from_value(keys).map_err(|e| WatchFault::Malformed(e.to_string()))?);
    }
    let head: TreeHead = serde_json::from_value(get(format!("{base}/v1/audit/tree-head")).await?)
        .map_err(|e| WatchFault::Malformed(e.to_string()))?;
    let bytes = head.signed_bytes().map_err(|e| WatchFault::Malformed(e.to_string()))?;
    let keys = state.keys.as_ref().ok_or_else(|| WatchFault::Malformed("no keys".into()))?;
    keys.verify(&bytes, &head.signature).map_err(|_| WatchFault::BadSignature(head.tree_size))?;
    let root = head.root().ok_or_else(|| WatchFault::Malformed("root_hash".into()))?;
    if let Some(last) = state.heads.last() {
        let last_root = last.root().ok_or_else(|| WatchFault::Malformed("a kept head".into()))?;
        if head.tree_size < last.tree_size {
            return Err(WatchFault::Shrank { before: last.tree_size, now: head.tree_size });
        }
        if head.tree_size == last.tree_size && root != last_root {
            return Err(WatchFault::Forked { size: head.tree_size });
        }
        if head.tree_size > last.tree_size && last.tree_size > 0 {
            let (first, second) = (last.tree_size, head.tree_size);
            let proof: ConsistencyProof = serde_json::from_value(
                get(format!("{base}/v1/audit/proofs/consistency?first={first}&second={second}")).await?,
            )
            .map_err(|e| WatchFault::Malformed(e.to_string()))?;
            let path: Option<Vec<Hash>> =
                proof.proof.iter().map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok())).collect();
            let path = path.ok_or_else(|| WatchFault::Malformed("a proof's hash".into()))?;
            if !merkle::verify_consistency(first, second, &last_root, &root, &path) {
                return Err(WatchFault::Inconsistent { first, second });
            }
        }
    }
    if state.heads.last().is_none_or(|last| last.tree_size != head.tree_size) {
        state.heads.push(head.clone());
    }
    Ok(head)
}

/// One entry of the log, as its readers see it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryView {
    pub leaf_index: u64,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
    pub actor: String,
    pub action: String,
    pub subject_ids: Vec<String>,
    /// What else was recorded (not part of the leaf; minimised with the family).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub document_sha256: Option<String>,
    pub leaf_hash: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntryView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<u64>,
}

/// Entries a page holds at most (and by default).
pub const AUDIT_PAGE_DEFAULT: i64 = 100;

/// The log's entries for a reader: compliance and admin staff see all of
/// it, filtered; a guardian sees the entries naming their own family.
pub async fn entries(
    state: &AppState,
    caller: &crate::auth::Caller,
    mut filter: baobao_store::AuditFilter,
    limit: Option<i64>,
) -> ApiResult<AuditPage> {
    use crate::auth::{Caller, Role};
    match caller {
        Caller::Guardian { family_id, .. } => {
            if filter.family_id.as_deref().is_some_and(|asked| asked != family_id.as_str()) {
                return Err(ApiError::not_found("family"));
            }
            filter.family_id = Some(family_id.to_string());
        }
        Caller::Staff { .. } => {
            caller.require_staff(&[Role::Compliance, Role::Admin])?;
        }
        Caller::Integrator { .. } => return Err(ApiError::forbidden()),
    }
    append_pending_entries(state).await?;
    let limit = limit.unwrap_or(AUDIT_PAGE_DEFAULT).clamp(1, baobao_store::AUDIT_PAGE_ENTRIES_MAX);
    let found = state.store.audit_entries_matching(&filter, limit).await?;
    let next =
        (i64::try_from(found.len()).unwrap_or(0) == limit).then(|| found.last().and_then(|e| e.leaf_index)).flatten();
    let entries = found.into_iter().map(AuditEntryView::from).collect();
    Ok(AuditPage { entries, next })
}

impl From<baobao_store::LoggedEntry> for AuditEntryView {
    fn from(e: baobao_store::LoggedEntry) -> AuditEntryView {
        AuditEntryView {
            leaf_index: e.leaf_index.unwrap_or_default(),
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject_ids: e.subject_ids,
            details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
            document_sha256: e.document_sha256,
            leaf_hash: e.leaf_hash,
        }
    }
}

/// Every action the log records, for readers to choose from.
pub const ACTIONS: [&str; 40] = [
    "family.created",
    "staff.created",
    "plan.created",
    "policy.published",
    "subscription.created",
    "subscription.renewed",
    "subscription.charge_declined",
    "subscription.charge_recovered",
    "subscription.expired",
    "cancellation.scheduled",
    "cancellation.effective",
    "cancellation.withdrawn",
    "reminder.sent",
    "receipt.issued",
    "money.succeeded",
    "money.failed",
    "child.added",
    "child_records.read",
    "evidence.read",
    "export.requested",
    "export.ready",
    "deletion.requested",
    "deletion.scheduled",
    "deletion.performed",
    "data_keys.replaced",
    "verification.code_sent",
    "verification.code_wrong",
    "verification.overridden",
    "staff.family_found",
    "api_key.created",
    "webhook_endpoint.created",
    "clock.set",
    "dispute.filed",
    "dispute.records_checked",
    "dispute.message",
    "dispute.escalated",
    "dispute.resolved",
    "dispute.code_sent",
    "dispute.dossier",
    "evidence.read_dispute",
];

/// The leaf that logged the document with this SHA-256 (of its canonical JSON).
pub async fn logged_document(state: &AppState, document_sha256: &str) -> ApiResult<AuditEntryView> {
    let well_formed = document_sha256.len() == 64 && document_sha256.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(ApiError::not_found("document"));
    }
    let sha = document_sha256.to_ascii_lowercase();
    let mut entry = state.store.logged_document(&sha).await?;
    if entry.as_ref().is_some_and(|e| e.leaf_index.is_none()) {
        state.store.append_pending().await?;
        entry = state.store.logged_document(&sha).await?;
    }
    let entry = entry.filter(|e| e.leaf_index.is_some()).ok_or_else(|| ApiError::not_found("document"))?;
    Ok(AuditEntryView::from(entry))
}

/// A signed document's place in the log, in one file its holder keeps
/// beside it: the logged entry, a signed tree head and the inclusion proof
/// from the entry's leaf to that head's root. Checked offline by
/// `baobao verify FILE --proof PROOF` and in the browser by the "check a
/// receipt" page (`check_document_proof`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DocumentProof {
    /// SHA-256 of the document's canonical JSON (of an export's ZIP as it is).
    pub document_sha256: String,
    pub entry: AuditEntryView,
    pub tree_head: TreeHead,
    pub inclusion: InclusionProof,
}

/// How often a proof waits for a head that covers its leaf, when another
/// server is signing one right then.
const PROOF_HEAD_ATTEMPTS: u32 = 20;

/// The proof of the document with `document_sha256`, against the latest
/// signed head (signed now when the log grew).
pub async fn document_proof(state: &AppState, document_sha256: &str) -> ApiResult<DocumentProof> {
    let entry = logged_document(state, document_sha256).await?;
    let mut head = tree_head(state, None).await?;
    for _ in 1..PROOF_HEAD_ATTEMPTS {
        if entry.leaf_index < head.tree_size {
            break;
        }
        // Another server holds the signer's lock: its head is moments away.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        head = tree_head(state, None).await?;
    }
    let inclusion = inclusion(state, entry.leaf_index, head.tree_size).await?;
    Ok(DocumentProof { document_sha256: document_sha256.to_ascii_lowercase(), entry, tree_head: head, inclusion })
}

/// What proving a document's place found: its leaf, and the signed head
/// whose root its inclusion proof reaches.
#[derive(Debug)]
pub struct DocumentInLog {
    pub leaf_index: u64,
    pub head: TreeHead,
}

/// Checks, with nothing but `keys`, that `proof` puts the document with
/// `document_sha256` in the log: the entry's leaf is recomputed from its
/// logged fields and this document's SHA-256, the tree head is signed by
/// one of `keys`, and the inclusion proof reaches that head's root.
pub fn check_document_proof(
    document_sha256: &str,
    proof: &DocumentProof,
    keys: &crate::keys::KeySet,
) -> Result<DocumentInLog, String> {
    let sha = document_sha256.to_ascii_lowercase();
    let (entry, head) = (&proof.entry, &proof.tree_head);
    let leaf =
        baobao_domain::audit::entry_leaf_hash(entry.at, &entry.actor, &entry.action, &entry.subject_ids, Some(&sha))
            .map_err(|e| e.to_string())?;
    if entry.document_sha256.as_deref() != Some(sha.as_str()) || Some(hex::encode(leaf)) != entry.leaf_hash {
        return Err(format!("leaf {} is not this document's", entry.leaf_index));
    }
    keys.verify(&head.signed_bytes().map_err(|e| e.to_string())?, &head.signature)
        .map_err(|e| format!("the tree head does not verify: {e}"))?;
    let inclusion = &proof.inclusion;
    if inclusion.leaf_index != entry.leaf_index || inclusion.tree_size != head.tree_size {
        return Err("the inclusion proof is for another leaf or another tree".to_owned());
    }
    let path: Option<Vec<Hash>> =
        inclusion.audit_path.iter().map(|h| hex::decode(h).ok().and_then(|b| b.try_into().ok())).collect();
    let path = path.ok_or("a proof's hash is malformed")?;
    let root = head.root().ok_or("the head's root is malformed")?;
    if !merkle::verify_inclusion(&leaf, entry.leaf_index, head.tree_size, &path, &root) {
        return Err(format!("leaf {} is not in the tree the server signed", entry.leaf_index));
    }
    Ok(DocumentInLog { leaf_index: entry.leaf_index, head: head.clone() })
}

/// Proves, from outside, that the document with `document_sha256` (of a
/// JSON document's canonical form, `baobao_domain::audit::document_sha256`;
/// of an export's ZIP as it is) is in the log of the server at `base`:
/// fetches its proof and checks it against `keys`. What `baobao verify
/// --server` and anyone else can do.
pub async fn prove_document(
    client: &reqwest::Client,
    base: &str,
    document_sha256: &str,
    keys: &crate::keys::KeySet,
) -> Result<DocumentInLog, String> {
    let path = format!("{}/v1/audit/documents/{document_sha256}/proof", base.trim_end_matches('/'));
    let response = client.get(&path).send().await.map_err(|e| format!("cannot reach {path}: {e}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err("the log has no leaf for this document".to_owned());
    }
    if !response.status().is_success() {
        return Err(format!("{path}: {}", response.status()));
    }
    let proof: DocumentProof = response.json().await.map_err(|e| e.to_string())?;
    check_document_proof(document_sha256, &proof, keys)
}
