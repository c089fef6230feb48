//! The Merkle tree over chain events: RFC 9162 (Certificate Transparency
//! v2) hashing, inclusion and consistency proofs, with SHAKE-256 (32 bytes)
//! as the hash.
//!
//! * leaf hash `= SHAKE-256(0x00 || leaf data)`, node hash
//!   `= SHAKE-256(0x01 || left || right)`, the empty tree's hash
//!   `= SHAKE-256("")` (RFC 9162 §2.1.1).
//! * A tree of `n` leaves splits at `k`, the largest power of two `< n`.
//!   Every subtree the algorithms touch is either a *complete* node (height
//!   `h`, index `i`: leaves `[i·2^h, (i+1)·2^h)`) or a right edge made of
//!   complete nodes; [`NodeSource`] supplies complete nodes, so proofs cost
//!   `O(log n)` node reads.
//! * [`Frontier`] is the compact state of a growing tree: one hash per set
//!   bit of its size. It is all a writer (or a streaming verifier) keeps.

use crate::keccak::{shake256, shake256_x4};

/// A 32-byte tree hash.
pub type Hash = [u8; 32];

/// RFC 9162 leaf hash prefix.
pub const LEAF_PREFIX: u8 = 0x00;
/// RFC 9162 interior node prefix.
pub const NODE_PREFIX: u8 = 0x01;

/// The hash of the empty tree, `SHAKE-256("")`.
pub fn empty_root() -> Hash {
    shake256(&[])
}

/// `SHAKE-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    shake256(&buf)
}

/// Four node hashes at once (the SIMD Keccak hashes four lanes per call).
pub fn node_hash_x4(pairs: [(&Hash, &Hash); 4]) -> [Hash; 4] {
    let mut bufs = [[0u8; 65]; 4];
    for (b, (l, r)) in bufs.iter_mut().zip(pairs) {
        b[0] = NODE_PREFIX;
        b[1..33].copy_from_slice(l);
        b[33..].copy_from_slice(r);
    }
    shake256_x4([&bufs[0], &bufs[1], &bufs[2], &bufs[3]])
}

/// Largest power of two strictly below `n` (`n >= 2`).
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Supplies hashes of complete nodes. `Err` carries a reason (I/O, missing
/// data) that proof builders pass through unchanged.
pub trait NodeSource {
    /// The hash of the complete node at `height` and `index`, i.e. of
    /// leaves `[index << height, (index + 1) << height)`.
    fn node(&self, height: u32, index: u64) -> Result<Hash, String>;
}

/// `MTH(D[start:end])` for a range the RFC algorithms produce: `start` is a
/// multiple of a power of two `>= end - start`.
pub fn range_hash(src: &dyn NodeSource, start: u64, end: u64) -> Result<Hash, String> {
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() {
        let h = n.trailing_zeros();
        return src.node(h, start >> h);
    }
    // Fold the complete nodes of the range from the right.
    let mut parts = Vec::with_capacity(n.count_ones() as usize);
    let mut at = start;
    let mut rest = n;
    while rest > 0 {
        let h = 63 - rest.leading_zeros();
        parts.push(src.node(h, at >> h)?);
        at += 1 << h;
        rest -= 1 << h;
    }
    Ok(fold_right(&parts))
}

/// Root of perfect subtrees given largest first: `H(p0, H(p1, ... pk))`.
fn fold_right(parts: &[Hash]) -> Hash {
    let mut it = parts.iter().rev();
    let Some(last) = it.next() else {
        return empty_root();
    };
    it.fold(*last, |acc, p| node_hash(p, &acc))
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `size`
/// leaves, deepest sibling first (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(src: &dyn NodeSource, index: u64, size: u64) -> Result<Vec<Hash>, String> {
    if index >= size {
        return Err(format!("leaf {index} is not in a tree of {size}"));
    }
    let mut path = Vec::with_capacity(64);
    // Walk down from the root, remembering siblings, then reverse.
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let k = split_point(end - start);
        if index < start + k {
            path.push(range_hash(src, start + k, end)?);
            end = start + k;
        } else {
            path.push(range_hash(src, start, start + k)?);
            start += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof between the trees of `old` and `new` leaves
/// (RFC 9162 §2.1.4.1). Empty when `old == new` or `old == 0`.
pub fn consistency_proof(src: &dyn NodeSource, old: u64, new: u64) -> Result<Vec<Hash>, String> {
    if old > new {
        return Err(format!("old size {old} is larger than new size {new}"));
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(64);
    // SUBPROOF(m, D[start:end], b), unrolled: appended nodes are collected
    // top-down and reversed at the end.
    let (mut m, mut start, mut end, mut b) = (old, 0u64, new, true);
    loop {
        let n = end - start;
        if m == n {
            if !b {
                out.push(range_hash(src, start, end)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            out.push(range_hash(src, start + k, end)?);
            end = start + k;
        } else {
            out.push(range_hash(src, start, start + k)?);
            start += k;
            m -= k;
            b = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// Why a proof did not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof has the wrong number of hashes for the sizes given.
    #[error("proof has a wrong length")]
    Length,
    /// The leaf index is not below the tree size.
    #[error("leaf {index} is outside a tree of {size}")]
    OutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The recomputed root differs from the expected one.
    #[error("recomputed root does not match")]
    RootMismatch,
    /// Old size larger than new size.
    #[error("old size {old} exceeds new size {new}")]
    Sizes {
        /// The old size.
        old: u64,
        /// The new size.
        new: u64,
    },
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` leaves whose
/// root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return Err(ProofError::Length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `new` leaves with root `new_root` extends the
/// tree of `old` leaves with root `old_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Sizes { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::Length);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old == 0 {
        // Every tree extends the empty one.
        if !proof.is_empty() {
            return Err(ProofError::Length);
        }
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::Length);
    };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::Length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::Length);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The compact state of a growing tree: the hashes of its maximal complete
/// subtrees, largest (leftmost) first, one per set bit of `size`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// Rebuilds a frontier from its parts; `None` when the count of hashes
    /// does not match the set bits of `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Frontier { size, nodes })
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The maximal complete subtrees, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Height of the `i`-th frontier node (largest first).
    pub fn heights(&self) -> impl Iterator<Item = u32> + '_ {
        (0..64u32).rev().filter(move |b| self.size >> b & 1 == 1)
    }

    /// The tree's root, `MTH` of every leaf so far.
    pub fn root(&self) -> Hash {
        fold_right(&self.nodes)
    }

    /// Appends a leaf hash. `completed` receives every complete node this
    /// creates, as `(height, index, hash)` from height 0 upwards.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let mut h = leaf;
        let mut height = 0u32;
        completed(0, self.size, &h);
        let mut n = self.size;
        while n & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            h = node_hash(&left, &h);
            height += 1;
            n >>= 1;
            completed(height, ((self.size + 1) >> height) - 1, &h);
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// Appends a complete node of `height` whose leaves start at `size()`
    /// (which must be a multiple of `2^height`): how a verifier folds in a
    /// batch hashed level by level.
    pub fn push_node(
        &mut self,
        height: u32,
        node: Hash,
        mut completed: impl FnMut(u32, u64, &Hash),
    ) {
        debug_assert_eq!(self.size % (1 << height), 0);
        let mut h = node;
        let mut ht = height;
        let mut n = self.size >> height;
        while n & 1 == 1 {
            let Some(left) = self.nodes.pop() else { break };
            h = node_hash(&left, &h);
            ht += 1;
            n >>= 1;
            completed(ht, ((self.size + (1 << height)) >> ht) - 1, &h);
        }
        self.nodes.push(h);
        self.size += 1 << height;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u64) -> Hash {
        let mut b = vec![LEAF_PREFIX];
        b.extend_from_slice(&i.to_le_bytes());
        shake256(&b)
    }

    /// RFC 9162 MTH straight from the definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    /// RFC 9162 PATH straight from the definition.
    fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return vec![];
        }
        let k = split_point(n as u64) as usize;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b { vec![] } else { vec![mth(leaves)] };
        }
        let k = split_point(n as u64) as usize;
        if m <= k {
            let mut p = subproof(m, &leaves[..k], b);
            p.push(mth(&leaves[k..]));
            p
        } else {
            let mut p = subproof(m - k, &leaves[k..], false);
            p.push(mth(&leaves[..k]));
            p
        }
    }

    struct Mem(Vec<Hash>);
    impl NodeSource for Mem {
        fn node(&self, h: u32, i: u64) -> Result<Hash, String> {
            let a = (i << h) as usize;
            let b = a + (1usize << h);
            if b > self.0.len() {
                return Err(format!("node {h}/{i} incomplete"));
            }
            Ok(mth(&self.0[a..b]))
        }
    }

    #[test]
    fn empty_root_is_shake256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f"
        );
    }

    #[test]
    fn frontier_root_matches_definition_and_reports_nodes() {
        let leaves: Vec<Hash> = (0..300).map(leaf).collect();
        let mut f = Frontier::new();
        for (i, l) in leaves.iter().enumerate() {
            let mut seen = Vec::new();
            f.push(*l, |h, idx, hash| seen.push((h, idx, *hash)));
            let n = i + 1;
            assert_eq!(f.root(), mth(&leaves[..n]), "size {n}");
            // Every reported node is the complete node it names.
            for (h, idx, hash) in seen {
                let a = (idx << h) as usize;
                assert_eq!(hash, mth(&leaves[a..a + (1 << h)]), "node {h}/{idx}");
                assert_eq!(a + (1 << h), n, "node completes at this leaf");
            }
            let g = Frontier::from_parts(f.size(), f.nodes().to_vec()).unwrap();
            assert_eq!(g, f);
        }
        assert!(Frontier::from_parts(3, vec![[0; 32]]).is_none());
    }

    #[test]
    fn push_node_equals_pushing_its_leaves() {
        let leaves: Vec<Hash> = (0..96).map(leaf).collect();
        let mut a = Frontier::new();
        let mut b = Frontier::new();
        for l in &leaves[..32] {
            a.push(*l, |_, _, _| {});
        }
        b.push_node(5, mth(&leaves[..32]), |_, _, _| {});
        assert_eq!(a, b);
        let mut na = Vec::new();
        for l in &leaves[32..64] {
            a.push(*l, |h, i, x| {
                if h >= 5 {
                    na.push((h, i, *x))
                }
            });
        }
        let mut nb = Vec::new();
        b.push_node(5, mth(&leaves[32..64]), |h, i, x| nb.push((h, i, *x)));
        assert_eq!(a, b);
        assert_eq!(na[1..], nb[..], "push_node reports the merged nodes");
    }

    #[test]
    fn proofs_match_the_rfc_definitions_and_verify() {
        let leaves: Vec<Hash> = (0..70).map(leaf).collect();
        for n in 1..=leaves.len() {
            let src = Mem(leaves[..n].to_vec());
            let root = mth(&leaves[..n]);
            for m in 0..n {
                let p = inclusion_proof(&src, m as u64, n as u64).unwrap();
                assert_eq!(p, path(m, &leaves[..n]), "path {m} in {n}");
                verify_inclusion(&leaves[m], m as u64, n as u64, &p, &root).unwrap();
                // Wrong leaf, index, size or root fails.
                let other = leaves[(m + 1) % n];
                if other != leaves[m] {
                    assert!(verify_inclusion(&other, m as u64, n as u64, &p, &root).is_err());
                }
                if n > 1 {
                    let wrong_index = (m as u64 + 1) % n as u64;
                    assert!(
                        verify_inclusion(&leaves[m], wrong_index, n as u64, &p, &root).is_err()
                    );
                }
            }
            for m in 0..=n {
                let p = consistency_proof(&src, m as u64, n as u64).unwrap();
                if m > 0 && m < n {
                    assert_eq!(p, subproof(m, &leaves[..n], true), "consistency {m} -> {n}");
                }
                let old_root = mth(&leaves[..m]);
                verify_consistency(m as u64, n as u64, &old_root, &root, &p)
                    .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
                if m > 0 && m < n {
                    // A different old tree (a fork) fails.
                    let mut forked = leaves[..m].to_vec();
                    forked[m - 1] = leaf(10_000);
                    assert!(
                        verify_consistency(m as u64, n as u64, &mth(&forked), &root, &p).is_err()
                    );
                    // Every single flipped bit in the proof fails.
                    for i in 0..p.len() {
                        let mut q = p.clone();
                        q[i][i % 32] ^= 1;
                        assert!(
                            verify_consistency(m as u64, n as u64, &old_root, &root, &q).is_err()
                        );
                    }
                    // Dropping or adding a hash fails.
                    assert!(verify_consistency(
                        m as u64,
                        n as u64,
                        &old_root,
                        &root,
                        &p[..p.len() - 1]
                    )
                    .is_err());
                    let mut longer = p.clone();
                    longer.push([0; 32]);
                    assert!(
                        verify_consistency(m as u64, n as u64, &old_root, &root, &longer).is_err()
                    );
                }
            }
        }
    }

    #[test]
    fn range_hash_of_right_edges() {
        let leaves: Vec<Hash> = (0..64).map(leaf).collect();
        let src = Mem(leaves.clone());
        for (a, b) in [(0, 64), (32, 63), (48, 61), (60, 61), (0, 0), (16, 31)] {
            assert_eq!(
                range_hash(&src, a, b).unwrap(),
                mth(&leaves[a as usize..b as usize]),
                "{a}..{b}"
            );
        }
    }

    #[test]
    fn node_hash_x4_matches_single() {
        let l: Vec<Hash> = (0..8).map(leaf).collect();
        let x = node_hash_x4([
            (&l[0], &l[1]),
            (&l[2], &l[3]),
            (&l[4], &l[5]),
            (&l[6], &l[7]),
        ]);
        for i in 0..4 {
            assert_eq!(x[i], node_hash(&l[2 * i], &l[2 * i + 1]));
        }
    }
}
