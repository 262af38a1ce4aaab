//! The Merkle tree of the audit log, as RFC 9162 (§2.1) defines it — the
//! same tree Certificate Transparency logs use, so that anyone's
//! implementation can check ours: leaf hashes `SHA-256(0x00 ‖ entry)`,
//! node hashes `SHA-256(0x01 ‖ left ‖ right)`, the split at the largest
//! power of two below the size, inclusion and consistency proofs and their
//! verification. Pure functions over leaf hashes; where the leaves come
//! from (the database) is not this module's business. Checked against the
//! RFC 6962 reference vectors and, by property tests, against itself.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two smaller than `n` (n ≥ 2): where RFC 9162 splits.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle Tree Hash of `leaves` (the empty tree: `SHA-256()`).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf {index} is not in a tree of {size}")]
    LeafOutOfRange { index: u64, size: u64 },
    #[error("a consistency proof needs 0 < first ≤ second (got {first} and {second})")]
    SizesOutOfOrder { first: u64, second: u64 },
}

/// The audit path of leaf `index` in the tree of `leaves` (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    if index >= leaves.len() {
        return Err(ProofError::LeafOutOfRange { index: index as u64, size: leaves.len() as u64 });
    }
    let mut path = Vec::new();
    path_of(index, leaves, &mut path);
    Ok(path)
}

fn path_of(index: usize, leaves: &[Hash], path: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    if index < k {
        path_of(index, &leaves[..k], path);
        path.push(root(&leaves[k..]));
    } else {
        path_of(index - k, &leaves[k..], path);
        path.push(root(&leaves[..k]));
    }
}

/// Whether `path` proves `leaf` is leaf `index` of the tree of `size`
/// whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// The proof that the tree of the first `first` leaves is a prefix of the
/// tree of `leaves` (RFC 9162 §2.1.4.1).
pub fn consistency_proof(first: usize, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    if first == 0 || first > leaves.len() {
        return Err(ProofError::SizesOutOfOrder { first: first as u64, second: leaves.len() as u64 });
    }
    let mut proof = Vec::new();
    subproof(first, leaves, true, &mut proof);
    Ok(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Whether `proof` shows the tree of `first` leaves with `first_root` is a
/// prefix of the tree of `second` leaves with `second_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(first: u64, second: u64, first_root: &Hash, second_root: &Hash, proof: &[Hash]) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    // A first tree that is a complete subtree is its own first node.
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((head, rest)) = path.split_first() else { return false };
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *first_root && sr == *second_root
}

/// Where a stored tree's hashes come from: `node(level, index)` is the hash
/// of the complete subtree of `2^level` leaves starting at leaf
/// `index × 2^level` (level 0: the leaf hashes). A log keeps these as it
/// appends (each append completes at most one subtree per level), so that
/// any root or proof is a few lookups, not a rereading of every entry.
pub trait Nodes {
    fn node(&mut self, level: u32, index: u64) -> Hash;
}

/// The hashes of complete subtrees a new leaf `index` completes, level by
/// level from 1, given the stored `nodes` left of it: what an append stores
/// beside the leaf hash.
pub fn completed_by(nodes: &mut impl Nodes, index: u64, leaf: Hash) -> Vec<(u32, u64, Hash)> {
    let mut completed = Vec::new();
    let mut hash = leaf;
    let mut level = 0;
    let mut position = index;
    while position & 1 == 1 {
        let left = nodes.node(level, position - 1);
        hash = node_hash(&left, &hash);
        level += 1;
        position >>= 1;
        completed.push((level, position, hash));
    }
    completed
}

/// The Merkle Tree Hash of leaves `[start, end)`, from complete subtrees
/// (RFC 9162's split makes every left part complete and aligned).
pub fn range_root(nodes: &mut impl Nodes, start: u64, end: u64) -> Hash {
    let size = end - start;
    match size {
        0 => Sha256::digest([]).into(),
        _ if size.is_power_of_two() && start.is_multiple_of(size) => nodes.node(size.trailing_zeros(), start / size),
        _ => {
            let k = split(usize::try_from(size).unwrap_or(usize::MAX)) as u64;
            let left = range_root(nodes, start, start + k);
            let right = range_root(nodes, start + k, end);
            node_hash(&left, &right)
        }
    }
}

/// `inclusion_proof`, from stored subtrees.
pub fn inclusion_proof_from(nodes: &mut impl Nodes, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::LeafOutOfRange { index, size });
    }
    let mut path = Vec::new();
    path_in(nodes, index, 0, size, &mut path);
    Ok(path)
}

fn path_in(nodes: &mut impl Nodes, index: u64, start: u64, end: u64, path: &mut Vec<Hash>) {
    if end - start <= 1 {
        return;
    }
    let k = split(usize::try_from(end - start).unwrap_or(usize::MAX)) as u64;
    if index < start + k {
        path_in(nodes, index, start, start + k, path);
        path.push(range_root(nodes, start + k, end));
    } else {
        path_in(nodes, index, start + k, end, path);
        path.push(range_root(nodes, start, start + k));
    }
}

/// `consistency_proof`, from stored subtrees.
pub fn consistency_proof_from(nodes: &mut impl Nodes, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
    if first == 0 || first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    let mut proof = Vec::new();
    subproof_in(nodes, first, 0, second, true, &mut proof);
    Ok(proof)
}

fn subproof_in(nodes: &mut impl Nodes, m: u64, start: u64, end: u64, complete: bool, proof: &mut Vec<Hash>) {
    let n = end - start;
    if m == n {
        if !complete {
            proof.push(range_root(nodes, start, end));
        }
        return;
    }
    let k = split(usize::try_from(n).unwrap_or(usize::MAX)) as u64;
    if m <= k {
        subproof_in(nodes, m, start, start + k, complete, proof);
        proof.push(range_root(nodes, start + k, end));
    } else {
        subproof_in(nodes, m - k, start + k, end, false, proof);
        proof.push(range_root(nodes, start, start + k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Stored subtrees in a map, as the database keeps them.
    #[derive(Default)]
    struct Stored(std::collections::HashMap<(u32, u64), Hash>);

    impl Nodes for Stored {
        fn node(&mut self, level: u32, index: u64) -> Hash {
            self.0.get(&(level, index)).copied().unwrap_or_else(|| panic!("node ({level}, {index}) was never stored"))
        }
    }

    fn h(hex_text: &str) -> Hash {
        let bytes = hex::decode(hex_text).unwrap_or_default();
        bytes.try_into().unwrap_or([0; 32])
    }

    /// The RFC 6962 reference inputs and the published tree heads of their
    /// prefixes (used as data; every CT implementation checks these).
    const ENTRIES: [&str; 8] =
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference_leaves() -> Vec<Hash> {
        ENTRIES.iter().map(|e| leaf_hash(&hex::decode(e).unwrap_or_default())).collect()
    }

    #[test]
    fn the_roots_are_the_published_ones_for_every_size() {
        let leaves = reference_leaves();
        for size in 0..=leaves.len() {
            assert_eq!(hex::encode(root(&leaves[..size])), ROOTS[size], "size {size}");
        }
    }

    #[test]
    fn the_inclusion_proofs_are_the_published_ones() {
        let leaves = reference_leaves();
        let cases: [(usize, [&str; 3]); 2] = [
            (
                0,
                [
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                [
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (index, expected) in cases {
            let path = inclusion_proof(index, &leaves).unwrap_or_default();
            assert_eq!(path.iter().map(hex::encode).collect::<Vec<_>>(), expected, "leaf {index}");
            assert!(verify_inclusion(&leaves[index], index as u64, 8, &path, &h(ROOTS[8])));
        }
    }

    #[test]
    fn the_consistency_proofs_are_the_published_ones() {
        let leaves = reference_leaves();
        let proof = consistency_proof(2, &leaves[..5]).unwrap_or_default();
        assert_eq!(
            proof.iter().map(hex::encode).collect::<Vec<_>>(),
            [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]
        );
        assert!(verify_consistency(2, 5, &h(ROOTS[2]), &h(ROOTS[5]), &proof));
        let from_one = consistency_proof(1, &leaves).unwrap_or_default();
        assert_eq!(from_one, inclusion_proof(0, &leaves).unwrap_or_default());
        assert!(verify_consistency(1, 8, &h(ROOTS[1]), &h(ROOTS[8]), &from_one));
    }

    #[test]
    fn out_of_range_requests_are_errors_not_panics() {
        let leaves = reference_leaves();
        assert!(inclusion_proof(8, &leaves).is_err());
        assert!(consistency_proof(0, &leaves).is_err());
        assert!(consistency_proof(9, &leaves).is_err());
        assert!(!verify_inclusion(&leaves[0], 8, 8, &[], &h(ROOTS[8])));
        assert!(!verify_consistency(0, 8, &h(ROOTS[0]), &h(ROOTS[8]), &[]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every leaf of every tree up to 70 leaves proves its inclusion, and
        /// the proof fails for another leaf, another index or another root.
        #[test]
        fn stored_subtrees_give_the_same_roots_and_proofs_as_the_leaves(size in 1usize..48, seed in any::<u8>()) {
            let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&[seed, i as u8, (i >> 8) as u8])).collect();
            // Appended one by one, as the log does, keeping what each completes.
            let mut stored = Stored::default();
            for (index, leaf) in leaves.iter().enumerate() {
                stored.0.insert((0, index as u64), *leaf);
                for (level, position, hash) in completed_by(&mut stored, index as u64, *leaf) {
                    stored.0.insert((level, position), hash);
                }
            }
            for n in 1..=size {
                prop_assert_eq!(range_root(&mut stored, 0, n as u64), root(&leaves[..n]));
                for index in 0..n {
                    prop_assert_eq!(
                        inclusion_proof_from(&mut stored, index as u64, n as u64).unwrap(),
                        inclusion_proof(index, &leaves[..n]).unwrap()
                    );
                }
                for first in 1..=n {
                    prop_assert_eq!(
                        consistency_proof_from(&mut stored, first as u64, n as u64).unwrap(),
                        consistency_proof(first, &leaves[..n]).unwrap()
                    );
                }
            }
        }

        #[test]
        fn every_inclusion_proof_verifies_and_no_tampered_one_does(size in 1usize..70, seed in any::<u8>()) {
            let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&[seed, i as u8, (i >> 8) as u8])).collect();
            let tree_root = root(&leaves);
            for index in 0..size {
                let path = inclusion_proof(index, &leaves).unwrap_or_default();
                prop_assert!(verify_inclusion(&leaves[index], index as u64, size as u64, &path, &tree_root));
                let other = leaf_hash(b"not in the log");
                prop_assert!(!verify_inclusion(&other, index as u64, size as u64, &path, &tree_root));
                if size > 1 {
                    let moved = ((index + 1) % size) as u64;
                    prop_assert!(!verify_inclusion(&leaves[index], moved, size as u64, &path, &tree_root));
                }
            }
        }

        /// Every prefix of every tree up to 70 leaves is proved consistent,
        /// and a changed earlier leaf is caught.
        #[test]
        fn every_consistency_proof_verifies_and_a_rewritten_history_does_not(size in 1usize..70, seed in any::<u8>()) {
            let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&[seed, i as u8, (i >> 8) as u8])).collect();
            let second_root = root(&leaves);
            for first in 1..=size {
                let proof = consistency_proof(first, &leaves).unwrap_or_default();
                let first_root = root(&leaves[..first]);
                prop_assert!(verify_consistency(first as u64, size as u64, &first_root, &second_root, &proof));
                let mut rewritten = leaves.clone();
                rewritten[0] = leaf_hash(b"rewritten");
                let forged_root = root(&rewritten[..first]);
                prop_assert!(!verify_consistency(first as u64, size as u64, &forged_root, &second_root, &proof));
            }
        }
    }
}
