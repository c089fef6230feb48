//! Signed tree heads: the chain key's statement "the tree of this chain with
//! `tree_size` leaves has root `root`", written at every group commit.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::merkle::Hash;

/// Domain tag of the head signing message.
pub const HEAD_DOMAIN: &[u8] = b"weft-chain-head-v2";

/// A signed tree head (STH). `segment` and `offset` say where the writer
/// put the record, so a copy of these bytes found anywhere else (say,
/// inside an event payload) is never mistaken for the chain's own head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    /// The chain.
    pub chain_id: u32,
    /// Leaves (events) covered: events `0..tree_size`.
    pub tree_size: u64,
    /// RFC 9162 Merkle root of those events.
    #[serde(with = "hex32")]
    pub root: Hash,
    /// Timestamp of the newest covered event (ns since the UNIX epoch).
    pub timestamp_ns: u64,
    /// First seq of the segment file the head was written in.
    pub segment: u64,
    /// Byte offset of the head record in that file.
    pub offset: u64,
    /// Ed25519 signature over [`SignedHead::message`].
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

impl SignedHead {
    /// The bytes the signature covers (docs/chain-format.md).
    pub fn message(
        chain_id: u32,
        tree_size: u64,
        root: &Hash,
        timestamp_ns: u64,
        segment: u64,
        offset: u64,
    ) -> [u8; 86] {
        let mut m = [0u8; 86];
        let d = HEAD_DOMAIN.len();
        m[..d].copy_from_slice(HEAD_DOMAIN);
        m[d..d + 4].copy_from_slice(&chain_id.to_le_bytes());
        m[d + 4..d + 12].copy_from_slice(&tree_size.to_le_bytes());
        m[d + 12..d + 44].copy_from_slice(root);
        m[d + 44..d + 52].copy_from_slice(&timestamp_ns.to_le_bytes());
        m[d + 52..d + 60].copy_from_slice(&segment.to_le_bytes());
        m[d + 60..d + 68].copy_from_slice(&offset.to_le_bytes());
        m
    }

    /// Signs a head.
    pub fn sign(
        key: &SigningKey,
        chain_id: u32,
        tree_size: u64,
        root: Hash,
        timestamp_ns: u64,
        segment: u64,
        offset: u64,
    ) -> Self {
        let msg = Self::message(chain_id, tree_size, &root, timestamp_ns, segment, offset);
        SignedHead {
            chain_id,
            tree_size,
            root,
            timestamp_ns,
            segment,
            offset,
            signature: key.sign(&msg).to_bytes(),
        }
    }

    /// Checks the signature with `key` (`verify_strict`).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), String> {
        let msg = Self::message(
            self.chain_id,
            self.tree_size,
            &self.root,
            self.timestamp_ns,
            self.segment,
            self.offset,
        );
        key.verify_strict(&msg, &Signature::from_bytes(&self.signature))
            .map_err(|_| format!("tree head of size {} has a bad signature", self.tree_size))
    }
}

/// Lower-case hex, refused in any other spelling (one text per value, so
/// no edit of a receipt goes unnoticed).
pub(crate) fn strict_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    if s.len() != 2 * N
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("expected {} lower-case hex characters", 2 * N));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

macro_rules! hex_serde {
    ($name:ident, $n:expr) => {
        pub(crate) mod $name {
            use serde::{Deserialize, Deserializer, Serializer};
            pub fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(v))
            }
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; $n], D::Error> {
                let s = String::deserialize(d)?;
                super::strict_hex::<$n>(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_serde!(hex32, 32);
hex_serde!(hex64, 64);

/// Serde for a list of 32-byte hashes as lower-case hex strings.
pub(crate) mod hex32_vec {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(hex::encode))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        v.iter()
            .map(|s| super::strict_hex::<32>(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_signed_and_json_is_strict() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let h = SignedHead::sign(&key, 1, 10, [0xab; 32], 99, 0, 640);
        h.verify(&key.verifying_key()).unwrap();
        let mut variants = vec![];
        let mut v = h.clone();
        v.chain_id += 1;
        variants.push(v);
        let mut v = h.clone();
        v.tree_size += 1;
        variants.push(v);
        let mut v = h.clone();
        v.root[0] ^= 1;
        variants.push(v);
        let mut v = h.clone();
        v.timestamp_ns += 1;
        variants.push(v);
        let mut v = h.clone();
        v.segment += 8;
        variants.push(v);
        let mut v = h.clone();
        v.offset += 1;
        variants.push(v);
        for v in variants {
            assert!(v.verify(&key.verifying_key()).is_err(), "{v:?}");
        }
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<SignedHead>(&json).unwrap(), h);
        let upper = json.replace(&hex::encode(h.root), &hex::encode_upper(h.root));
        assert!(serde_json::from_str::<SignedHead>(&upper).is_err());
    }
}
