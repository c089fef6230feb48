//! The chain event, its canonical byte encoding and its hash.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ChainError, Result};

/// Kind of the first event of every chain.
pub const GENESIS_KIND: &str = "chain.genesis";
/// Largest CBOR payload accepted (16 MiB).
pub const MAX_PAYLOAD: usize = 16 << 20;
/// Largest `source` or `kind` string accepted.
pub const MAX_LABEL: usize = 1024;

/// One entry of the log: leaf `seq` of the chain's Merkle tree. Immutable
/// once appended; signed tree heads cover it through `hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEvent {
    /// Position in the chain (its leaf index): 0 for genesis, then one more per event.
    pub seq: u64,
    /// Chain the event belongs to (bound by the tree heads that cover it).
    pub chain_id: u32,
    /// Nanoseconds since the UNIX epoch; never decreases along the chain.
    pub timestamp_ns: u64,
    /// RFC 9162 leaf hash of the event (see [`leaf_hash`]).
    pub hash: [u8; 32],
    /// Who appended the event, e.g. `kernel` or `gate`.
    pub source: String,
    /// What happened, dot-separated, e.g. `chain.genesis`.
    pub kind: String,
    /// CBOR-encoded payload.
    pub payload: Vec<u8>,
}

pub use crate::keccak::shake256;

/// Writes the leaf data `0x00 || timestamp u64 || u16 len source || source
/// || u16 len kind || kind || payload` into `out` (cleared first).
pub fn leaf_input_into(
    out: &mut Vec<u8>,
    timestamp_ns: u64,
    source: &str,
    kind: &str,
    payload: &[u8],
) {
    out.clear();
    out.reserve(1 + 8 + 4 + source.len() + kind.len() + payload.len());
    out.push(crate::merkle::LEAF_PREFIX);
    out.extend_from_slice(&timestamp_ns.to_le_bytes());
    out.extend_from_slice(&(source.len() as u16).to_le_bytes());
    out.extend_from_slice(source.as_bytes());
    out.extend_from_slice(&(kind.len() as u16).to_le_bytes());
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(payload);
}

/// The RFC 9162 leaf hash of an event: SHAKE-256 of its leaf data (see
/// [`leaf_input_into`]). Labels are at most [`MAX_LABEL`] bytes, so their
/// u16 lengths never wrap.
pub fn leaf_hash(timestamp_ns: u64, source: &str, kind: &str, payload: &[u8]) -> [u8; 32] {
    let n = 13 + source.len() + kind.len() + payload.len();
    if n <= 512 {
        let mut stack = [0u8; 512];
        stack[0] = crate::merkle::LEAF_PREFIX;
        stack[1..9].copy_from_slice(&timestamp_ns.to_le_bytes());
        let mut p = 9;
        for label in [source.as_bytes(), kind.as_bytes()] {
            stack[p..p + 2].copy_from_slice(&(label.len() as u16).to_le_bytes());
            stack[p + 2..p + 2 + label.len()].copy_from_slice(label);
            p += 2 + label.len();
        }
        stack[p..p + payload.len()].copy_from_slice(payload);
        return shake256(&stack[..p + payload.len()]);
    }
    let mut buf = Vec::new();
    leaf_input_into(&mut buf, timestamp_ns, source, kind, payload);
    shake256(&buf)
}

/// CBOR-encodes any serializable value.
pub fn to_cbor<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(64);
    ciborium::into_writer(value, &mut buf).map_err(|e| ChainError::Encode(e.to_string()))?;
    Ok(buf)
}

/// Converts a CBOR value into JSON for display and export. Byte strings
/// become hex strings; non-string map keys are rendered as their JSON text.
pub fn cbor_to_json(v: &ciborium::Value) -> serde_json::Value {
    use ciborium::Value as C;
    use serde_json::Value as J;
    match v {
        C::Null => J::Null,
        C::Bool(b) => J::Bool(*b),
        C::Integer(i) => {
            let n = i128::from(*i);
            if let Ok(u) = u64::try_from(n) {
                J::from(u)
            } else if let Ok(s) = i64::try_from(n) {
                J::from(s)
            } else {
                J::String(n.to_string())
            }
        }
        C::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        C::Text(s) => J::String(s.clone()),
        C::Bytes(b) => J::String(hex::encode(b)),
        C::Tag(_, inner) => cbor_to_json(inner),
        C::Array(items) => J::Array(items.iter().map(cbor_to_json).collect()),
        C::Map(entries) => {
            let mut m = serde_json::Map::new();
            for (k, val) in entries {
                let key = match k {
                    C::Text(s) => s.clone(),
                    other => cbor_to_json(other).to_string(),
                };
                m.insert(key, cbor_to_json(val));
            }
            J::Object(m)
        }
        // ciborium::Value is non-exhaustive.
        _ => J::Null,
    }
}

impl ChainEvent {
    /// Recomputes this event's leaf hash from its fields.
    pub fn compute_hash(&self) -> [u8; 32] {
        leaf_hash(self.timestamp_ns, &self.source, &self.kind, &self.payload)
    }

    /// Writes this event's leaf data into `out` (cleared first).
    pub fn leaf_input(&self, out: &mut Vec<u8>) {
        leaf_input_into(
            out,
            self.timestamp_ns,
            &self.source,
            &self.kind,
            &self.payload,
        );
    }

    /// Decodes the payload into a typed value.
    pub fn decode_payload<T: DeserializeOwned>(&self) -> Result<T> {
        ciborium::from_reader(self.payload.as_slice())
            .map_err(|e| ChainError::Decode(e.to_string()))
    }

    /// Decodes the payload into a generic CBOR value.
    pub fn payload_value(&self) -> Result<ciborium::Value> {
        self.decode_payload()
    }

    /// Decodes the payload into JSON (for display and export).
    pub fn payload_json(&self) -> Result<serde_json::Value> {
        Ok(cbor_to_json(&self.payload_value()?))
    }

    /// Hex of `hash`.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// JSON object used by `export_jsonl`: hashes as hex, payload as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let payload = match self.payload_json() {
            Ok(v) => v,
            Err(_) => serde_json::json!({ "undecodable_cbor_hex": hex::encode(&self.payload) }),
        };
        serde_json::json!({
            "seq": self.seq,
            "chain_id": self.chain_id,
            "timestamp_ns": self.timestamp_ns,
            "source": self.source,
            "kind": self.kind,
            "hash": hex::encode(self.hash),
            "payload": payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ChainEvent {
        let payload = to_cbor(&serde_json::json!({"a": 1, "b": [true, "x"]})).unwrap();
        let mut ev = ChainEvent {
            seq: 7,
            chain_id: 3,
            timestamp_ns: 1_700_000_000_000_000_000,
            hash: [0; 32],
            source: "kernel".into(),
            kind: "test.kind".into(),
            payload,
        };
        ev.hash = ev.compute_hash();
        ev
    }

    #[test]
    fn leaf_layout_is_the_documented_one() {
        let ev = sample();
        let mut input = vec![0u8];
        input.extend_from_slice(&ev.timestamp_ns.to_le_bytes());
        input.extend_from_slice(&6u16.to_le_bytes());
        input.extend_from_slice(b"kernel");
        input.extend_from_slice(&9u16.to_le_bytes());
        input.extend_from_slice(b"test.kind");
        input.extend_from_slice(&ev.payload);
        assert_eq!(shake256(&input), ev.hash);
        let mut buf = Vec::new();
        ev.leaf_input(&mut buf);
        assert_eq!(buf, input);
        // The heap path (large payloads) agrees with the stack path.
        let big = vec![7u8; 1000];
        leaf_input_into(&mut buf, 1, "s", "k", &big);
        assert_eq!(leaf_hash(1, "s", "k", &big), shake256(&buf));
    }

    #[test]
    fn shake256_known_vector() {
        // SHAKE256("") first 32 bytes (FIPS 202 test vector).
        assert_eq!(
            hex::encode(shake256(b"")),
            "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f"
        );
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = sample();
        let mut variants = Vec::new();
        let mut e = base.clone();
        e.timestamp_ns += 1;
        variants.push(e);
        let mut e = base.clone();
        e.payload[0] ^= 1;
        variants.push(e);
        let mut e = base.clone();
        e.source.push('x');
        variants.push(e);
        let mut e = base.clone();
        e.kind.push('x');
        variants.push(e);
        // Moving a byte between source and kind must change the hash too.
        let mut e = base.clone();
        e.source = "kerne".into();
        e.kind = "ltest.kind".into();
        variants.push(e);
        for v in variants {
            assert_ne!(v.compute_hash(), base.hash, "{v:?}");
        }
    }

    #[test]
    fn payload_json_conversion() {
        let ev = sample();
        assert_eq!(
            ev.payload_json().unwrap(),
            serde_json::json!({"a": 1, "b": [true, "x"]})
        );
        let v = ciborium::Value::Map(vec![(
            ciborium::Value::Integer(5.into()),
            ciborium::Value::Bytes(vec![0xab, 0xcd]),
        )]);
        assert_eq!(cbor_to_json(&v), serde_json::json!({"5": "abcd"}));
    }
}
