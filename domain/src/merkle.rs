//! The ledger's global Merkle log: one leaf per event in commit order, hashed as RFC 6962
//! and RFC 9162 define (a leaf is SHA-256 of `0x00 ‖ value`, a node SHA-256 of `0x01 ‖
//! left ‖ right`), so that a signed root commits to all of history and proofs show an
//! event is in it, or that a later root extends an earlier one.
//!
//! The tree lives in storage as the hashes of its perfect subtrees (those of 2^k leaves
//! starting at a multiple of 2^k), keyed by their index in the array layout of RFC 9420
//! §4.1 that `ct-merkle` uses: the leaf `i` is `2i`, the perfect subtree of level `k`
//! starting at `s` is `2s + 2^k - 1`. Those never change once written; any root or proof
//! node of any tree size is the hash of a range of leaves, computed from them. This
//! module is that arithmetic over plain data: which nodes to read, and what they give.
//! `ct-merkle` says which nodes a proof is made of and checks proofs.

use ct_merkle::{
    indices_for_consistency_proof, indices_for_inclusion_proof, ConsistencyProof, InclusionProof,
    RootHash,
};
use merkle_sha2::{Digest, Sha256};

use crate::chain::Verifiable;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// What one leaf commits to: the hash computed over the event's canonical encoding as
/// stored (its stream, sequence, type, version, payload and metadata, with the previous
/// event's hash), then the hash stored with it. They are equal for an event as written;
/// a change to either field, to the bytes or to the stored hash, changes the leaf.
pub fn leaf_value(computed: &Hash, stored: &Hash) -> [u8; 64] {
    let mut value = [0; 64];
    value[..32].copy_from_slice(computed);
    value[32..].copy_from_slice(stored);
    value
}

/// The leaf value of an event as read from the store. A stored hash that is missing or
/// not 64 lowercase hex digits counts as zeros, and a payload that is not JSON gives a
/// computed hash of zeros: the leaf then differs from the one logged when the event was
/// sound (docs/audit.md).
pub fn event_leaf(event: &impl Verifiable) -> [u8; 64] {
    let stored = event.stored_hash().unwrap_or_default();
    let computed = event.content_hash(stored).unwrap_or_default();
    leaf_value(&hash_from_hex(&computed), &hash_from_hex(stored))
}

fn hash_from_hex(text: &str) -> Hash {
    let mut hash = [0; 32];
    let lowercase = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !lowercase || hex::decode_to_slice(text, &mut hash).is_err() {
        hash = [0; 32];
    }
    hash
}

/// RFC 6962's leaf hash: SHA-256(0x00 ‖ value).
pub fn leaf_hash(value: &[u8]) -> Hash {
    Sha256::new_with_prefix([0x00])
        .chain_update(value)
        .finalize()
        .into()
}

/// RFC 6962's interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new_with_prefix([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The storage index of the perfect subtree of `2^level` leaves starting at `start`
/// (which must be a multiple of `2^level`).
pub fn perfect_index(start: u64, level: u32) -> u64 {
    2 * start + (1u64 << level) - 1
}

/// The leaves `[start, end)` that array index `index` covers in a tree of `size` leaves.
fn covered(index: u64, size: u64) -> (u64, u64) {
    let level = index.trailing_ones();
    let start = (index >> (level + 1)) << level;
    (start, (start + (1u64 << level)).min(size))
}

/// RFC 6962's split: the largest power of two below `len` (`len` ≥ 2).
fn split(len: u64) -> u64 {
    1u64 << (63 - (len - 1).leading_zeros())
}

/// The stored nodes whose hashes make the hash of leaves `[start, end)`, appended to
/// `out`. `start` is a multiple of the largest power of two not above `end - start`, as
/// every range a tree hash or proof asks for is.
fn parts_of(start: u64, end: u64, out: &mut Vec<u64>) {
    let len = end - start;
    if len.is_power_of_two() {
        out.push(perfect_index(start, len.trailing_zeros()));
    } else {
        let k = split(len);
        parts_of(start, start + k, out);
        parts_of(start + k, end, out);
    }
}

/// The hash of leaves `[start, end)` from the stored nodes `node` gives.
fn range_hash(start: u64, end: u64, node: &impl Fn(u64) -> Option<Hash>) -> Result<Hash, Missing> {
    let len = end - start;
    if len.is_power_of_two() {
        let index = perfect_index(start, len.trailing_zeros());
        return node(index).ok_or(Missing(index));
    }
    let k = split(len);
    Ok(node_hash(
        &range_hash(start, start + k, node)?,
        &range_hash(start + k, end, node)?,
    ))
}

/// A stored node a computation needed and did not get: the log is incomplete there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Merkle log has no node {0}")]
pub struct Missing(pub u64);

/// What a proof or root is computed from: leaf ranges, each the hash of a run of leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    ranges: Vec<(u64, u64)>,
}

impl Plan {
    /// The root of the tree of the first `size` leaves (`size` ≥ 1).
    pub fn root(size: u64) -> Plan {
        Plan {
            ranges: vec![(0, size)],
        }
    }

    /// The inclusion proof of leaf `leaf` in the tree of `size` leaves (`leaf < size`).
    pub fn inclusion(size: u64, leaf: u64) -> Plan {
        Plan {
            ranges: indices_for_inclusion_proof(size, leaf)
                .into_iter()
                .map(|index| covered(index, size))
                .collect(),
        }
    }

    /// The consistency proof from the tree of `old` leaves to that of `new`
    /// (`1 ≤ old ≤ new`).
    pub fn consistency(old: u64, new: u64) -> Plan {
        Plan {
            ranges: indices_for_consistency_proof(old, new - old)
                .into_iter()
                .map(|index| covered(index, new))
                .collect(),
        }
    }

    /// The stored nodes to read, each once, in ascending order.
    pub fn nodes(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for &(start, end) in &self.ranges {
            parts_of(start, end, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The hashes, in order, given the stored nodes.
    pub fn hashes(&self, node: impl Fn(u64) -> Option<Hash>) -> Result<Vec<Hash>, Missing> {
        self.ranges
            .iter()
            .map(|&(start, end)| range_hash(start, end, &node))
            .collect()
    }
}

/// The right edge of the tree as leaves are appended: the perfect subtrees its size
/// decomposes into, largest first. Appending a leaf gives the stored nodes it completes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (level, hash), levels strictly decreasing.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The stored nodes a frontier of `size` leaves is made of, largest first.
    pub fn nodes(size: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut start = 0;
        for level in (0..64).rev() {
            if size & (1u64 << level) != 0 {
                out.push(perfect_index(start, level));
                start += 1u64 << level;
            }
        }
        out
    }

    /// The frontier of `size` leaves from the hashes of [`Frontier::nodes`], in order.
    pub fn resume(size: u64, hashes: &[Hash]) -> Result<Frontier, Missing> {
        let nodes = Frontier::nodes(size);
        if let Some(&index) = nodes.get(hashes.len()) {
            return Err(Missing(index));
        }
        let levels = (0..64u32).rev().filter(|level| size & (1u64 << level) != 0);
        Ok(Frontier {
            size,
            peaks: levels.zip(hashes.iter().copied()).collect(),
        })
    }

    /// How many leaves it holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf, given its hash; returns the stored nodes it completes (the leaf
    /// itself first), as (index, hash).
    pub fn push(&mut self, leaf: Hash) -> Vec<(u64, Hash)> {
        let end = self.size + 1;
        let mut made = vec![(perfect_index(self.size, 0), leaf)];
        let (mut level, mut hash) = (0u32, leaf);
        while let Some(&(top, left)) = self.peaks.last() {
            if top != level {
                break;
            }
            self.peaks.pop();
            hash = node_hash(&left, &hash);
            level += 1;
            made.push((perfect_index(end - (1u64 << level), level), hash));
        }
        self.peaks.push((level, hash));
        self.size = end;
        made
    }

    /// The root of the tree so far (`None` while it is empty).
    pub fn root(&self) -> Option<Hash> {
        let mut peaks = self.peaks.iter().rev();
        let &(_, last) = peaks.next()?;
        Some(peaks.fold(last, |acc, (_, peak)| node_hash(peak, &acc)))
    }
}

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the proof does not lead to the root")]
    Mismatch,
    #[error("the proof has the wrong number of hashes for these tree sizes")]
    Malformed,
    #[error("the leaf or tree sizes are out of range")]
    OutOfRange,
}

fn root_hash(root: &Hash, size: u64) -> RootHash<Sha256> {
    RootHash::new((*root).into(), size)
}

fn concat(proof: &[Hash]) -> Vec<u8> {
    proof.iter().flatten().copied().collect()
}

/// Checks that the leaf `value` is leaf `leaf` of the tree of `size` leaves whose root
/// is `root`.
pub fn verify_inclusion(
    root: &Hash,
    size: u64,
    leaf: u64,
    value: &[u8],
    proof: &[Hash],
) -> Result<(), ProofError> {
    use ct_merkle::InclusionVerifError as E;
    if size == 0 || leaf >= size {
        return Err(ProofError::OutOfRange);
    }
    let proof = InclusionProof::<Sha256>::try_from_bytes(concat(proof))
        .map_err(|_| ProofError::Malformed)?;
    root_hash(root, size)
        .verify_inclusion(&value, leaf, &proof)
        .map_err(|e| match e {
            E::MalformedProof => ProofError::Malformed,
            E::IndexOutOfRange | E::TreeEmpty => ProofError::OutOfRange,
            _ => ProofError::Mismatch,
        })
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of
/// `old_size` leaves with root `old_root`.
pub fn verify_consistency(
    old_root: &Hash,
    old_size: u64,
    new_root: &Hash,
    new_size: u64,
    proof: &[Hash],
) -> Result<(), ProofError> {
    use ct_merkle::ConsistencyVerifError as E;
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::OutOfRange);
    }
    let proof = ConsistencyProof::<Sha256>::try_from_bytes(concat(proof))
        .map_err(|_| ProofError::Malformed)?;
    root_hash(new_root, new_size)
        .verify_consistency(&root_hash(old_root, old_size), &proof)
        .map_err(|e| match e {
            E::MalformedProof => ProofError::Malformed,
            E::OldTreeEmpty | E::OldTreeLarger | E::NewTreeTooBig => ProofError::OutOfRange,
            _ => ProofError::Mismatch,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_merkle::mem_backed_tree::MemoryBackedTree;
    use std::collections::HashMap;

    fn value(i: u64) -> [u8; 64] {
        let h: Hash = Sha256::digest(i.to_be_bytes()).into();
        leaf_value(&h, &h)
    }

    /// Appends `n` leaves to a frontier, keeping every stored node, and to ct-merkle's
    /// in-memory tree.
    fn build(
        n: u64,
    ) -> (
        Frontier,
        HashMap<u64, Hash>,
        MemoryBackedTree<Sha256, [u8; 64]>,
    ) {
        let (mut frontier, mut nodes, mut tree) =
            (Frontier::default(), HashMap::new(), MemoryBackedTree::new());
        for i in 0..n {
            nodes.extend(frontier.push(leaf_hash(&value(i))));
            tree.push(value(i));
        }
        (frontier, nodes, tree)
    }

    #[test]
    fn roots_and_proofs_match_an_in_memory_tree_of_every_size_up_to_70() {
        let (_, nodes, _) = build(70);
        let node = |i| nodes.get(&i).copied();
        for size in 1..=70u64 {
            let (frontier, _, tree) = build(size);
            let root: Hash = (*tree.root().as_bytes()).into();
            assert_eq!(frontier.root(), Some(root), "size {size}");
            assert_eq!(Plan::root(size).hashes(node).unwrap(), vec![root]);
            // Resumed from storage, the frontier goes on the same way.
            let stored: Vec<Hash> = Frontier::nodes(size).iter().map(|i| nodes[i]).collect();
            assert_eq!(Frontier::resume(size, &stored).unwrap(), frontier);
            for leaf in 0..size {
                let proof = Plan::inclusion(size, leaf).hashes(node).unwrap();
                assert_eq!(
                    concat(&proof),
                    tree.prove_inclusion(leaf as usize).as_bytes(),
                    "inclusion of {leaf} in {size}"
                );
                verify_inclusion(&root, size, leaf, &value(leaf), &proof).unwrap();
            }
            for old in 1..size {
                let proof = Plan::consistency(old, size).hashes(node).unwrap();
                assert_eq!(
                    concat(&proof),
                    tree.prove_consistency((size - old) as usize).as_bytes(),
                    "consistency of {old} with {size}"
                );
                let old_root = Plan::root(old).hashes(node).unwrap()[0];
                verify_consistency(&old_root, old, &root, size, &proof).unwrap();
            }
        }
    }

    #[test]
    fn a_changed_leaf_root_or_proof_is_refused() {
        let (frontier, nodes, _) = build(13);
        let node = |i| nodes.get(&i).copied();
        let root = frontier.root().unwrap();
        let proof = Plan::inclusion(13, 5).hashes(node).unwrap();
        assert_eq!(
            verify_inclusion(&root, 13, 5, &value(6), &proof),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            verify_inclusion(&root, 13, 6, &value(5), &proof),
            Err(ProofError::Mismatch)
        );
        let mut bent = proof.clone();
        bent[1][7] ^= 1;
        assert_eq!(
            verify_inclusion(&root, 13, 5, &value(5), &bent),
            Err(ProofError::Mismatch)
        );
        assert_eq!(
            verify_inclusion(&root, 13, 5, &value(5), &proof[1..]),
            Err(ProofError::Malformed)
        );
        let old = Plan::root(6).hashes(node).unwrap()[0];
        let mut other = old;
        other[0] ^= 1;
        let proof = Plan::consistency(6, 13).hashes(node).unwrap();
        assert_eq!(
            verify_consistency(&other, 6, &root, 13, &proof),
            Err(ProofError::Mismatch)
        );
        assert!(verify_consistency(&old, 7, &root, 13, &proof).is_err());
    }

    #[test]
    fn a_missing_node_is_named() {
        let (_, mut nodes, _) = build(8);
        nodes.remove(&perfect_index(4, 2));
        let node = |i| nodes.get(&i).copied();
        assert!(
            Plan::root(8).hashes(node).is_ok(),
            "the root is stored whole"
        );
        assert_eq!(
            Plan::inclusion(8, 0).hashes(node),
            Err(Missing(perfect_index(4, 2)))
        );
    }
}
