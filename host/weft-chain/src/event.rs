//! The chain event, its canonical byte encoding and its hash.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{ChainError, Result};

/// Kind of the first event of every chain.
pub const GENESIS_KIND: &str = "chain.genesis";
/// Domain tag prefixed to the event hash input (see docs/chain-format.md).
pub const EVENT_HASH_DOMAIN: &[u8] = b"weft-chain-event-v1";
/// Largest CBOR payload accepted (16 MiB).
pub const MAX_PAYLOAD: usize = 16 << 20;
/// Largest `source` or `kind` string accepted.
pub const MAX_LABEL: usize = 1024;
/// Fixed part of an encoded event: seq, chain_id, ts, 3 hashes, 3 length prefixes.
const FIXED_LEN: usize = 8 + 4 + 8 + 32 * 3 + 4 * 3;

/// One entry of the log. Immutable once appended; `hash` links it to its
/// predecessor so any later edit is detectable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEvent {
    /// Position in the chain: 0 for genesis, then one more per event.
    pub seq: u64,
    /// Chain the event belongs to; covered by the hash.
    pub chain_id: u32,
    /// Nanoseconds since the UNIX epoch; never decreases along the chain.
    pub timestamp_ns: u64,
    /// `hash` of the previous event (zeros for genesis).
    pub prev_hash: [u8; 32],
    /// SHAKE-256 over every other field (see [`event_hash`]).
    pub hash: [u8; 32],
    /// SHAKE-256 (32 bytes) of `payload`.
    pub payload_hash: [u8; 32],
    /// Who appended the event, e.g. `kernel` or `gate`.
    pub source: String,
    /// What happened, dot-separated, e.g. `chain.genesis`.
    pub kind: String,
    /// CBOR-encoded payload.
    pub payload: Vec<u8>,
}

pub use crate::keccak::shake256;

/// Length of the event hash input for the given label lengths.
fn hash_input_len(source: &str, kind: &str) -> usize {
    EVENT_HASH_DOMAIN.len() + 8 + 4 + 8 + 32 + 32 + 4 + source.len() + 4 + kind.len() + 4
}

/// Writes the event hash input (docs/chain-format.md) into `out`, which must
/// be exactly `hash_input_len` bytes.
#[allow(clippy::too_many_arguments)]
fn fill_hash_input(
    out: &mut [u8],
    seq: u64,
    chain_id: u32,
    timestamp_ns: u64,
    prev_hash: &[u8; 32],
    payload_hash: &[u8; 32],
    source: &str,
    kind: &str,
    payload_len: usize,
) {
    let mut pos = 0;
    let mut put = |b: &[u8]| {
        out[pos..pos + b.len()].copy_from_slice(b);
        pos += b.len();
    };
    put(EVENT_HASH_DOMAIN);
    put(&seq.to_le_bytes());
    put(&chain_id.to_le_bytes());
    put(&timestamp_ns.to_le_bytes());
    put(prev_hash);
    put(payload_hash);
    put(&(source.len() as u32).to_le_bytes());
    put(source.as_bytes());
    put(&(kind.len() as u32).to_le_bytes());
    put(kind.as_bytes());
    put(&(payload_len as u32).to_le_bytes());
}

/// Computes an event hash from its fields. The raw payload is bound through
/// `payload_hash` (plus its length) so each payload is hashed once and the
/// hash input of a typical event fits one Keccak block.
#[allow(clippy::too_many_arguments)]
pub fn event_hash(
    seq: u64,
    chain_id: u32,
    timestamp_ns: u64,
    prev_hash: &[u8; 32],
    payload_hash: &[u8; 32],
    source: &str,
    kind: &str,
    payload_len: usize,
) -> [u8; 32] {
    let n = hash_input_len(source, kind);
    let mut stack = [0u8; 256];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if n <= stack.len() {
        &mut stack[..n]
    } else {
        heap.resize(n, 0);
        &mut heap
    };
    fill_hash_input(
        buf,
        seq,
        chain_id,
        timestamp_ns,
        prev_hash,
        payload_hash,
        source,
        kind,
        payload_len,
    );
    shake256(buf)
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
    /// Recomputes this event's hash from its other fields.
    pub fn compute_hash(&self) -> [u8; 32] {
        event_hash(
            self.seq,
            self.chain_id,
            self.timestamp_ns,
            &self.prev_hash,
            &self.payload_hash,
            &self.source,
            &self.kind,
            self.payload.len(),
        )
    }

    /// Writes this event's hash input into `out` (cleared first).
    pub(crate) fn hash_input_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.resize(hash_input_len(&self.source, &self.kind), 0);
        fill_hash_input(
            out,
            self.seq,
            self.chain_id,
            self.timestamp_ns,
            &self.prev_hash,
            &self.payload_hash,
            &self.source,
            &self.kind,
            self.payload.len(),
        );
    }

    /// Checks payload hash and event hash; returns a reason on mismatch.
    pub fn verify_hashes(&self) -> std::result::Result<(), String> {
        if shake256(&self.payload) != self.payload_hash {
            return Err("payload hash mismatch".into());
        }
        if self.compute_hash() != self.hash {
            return Err("event hash mismatch".into());
        }
        Ok(())
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
            "prev_hash": hex::encode(self.prev_hash),
            "hash": hex::encode(self.hash),
            "payload_hash": hex::encode(self.payload_hash),
            "payload": payload,
        })
    }

    /// Length of `encode_into`'s output.
    pub fn encoded_len(&self) -> usize {
        FIXED_LEN + self.source.len() + self.kind.len() + self.payload.len()
    }

    /// Appends the canonical segment encoding (docs/chain-format.md) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.chain_id.to_le_bytes());
        out.extend_from_slice(&self.timestamp_ns.to_le_bytes());
        out.extend_from_slice(&self.prev_hash);
        out.extend_from_slice(&self.payload_hash);
        out.extend_from_slice(&self.hash);
        for field in [
            self.source.as_bytes(),
            self.kind.as_bytes(),
            self.payload.as_slice(),
        ] {
            out.extend_from_slice(&(field.len() as u32).to_le_bytes());
            out.extend_from_slice(field);
        }
    }

    /// Parses the canonical encoding. Rejects trailing bytes and non-UTF-8
    /// labels so that one event has exactly one encoding.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let seq = r.u64()?;
        let chain_id = r.u32()?;
        let timestamp_ns = r.u64()?;
        let prev_hash = r.hash()?;
        let payload_hash = r.hash()?;
        let hash = r.hash()?;
        let source = r.string("source")?;
        let kind = r.string("kind")?;
        let payload = r.bytes_prefixed("payload", MAX_PAYLOAD)?.to_vec();
        if r.pos != bytes.len() {
            return Err(format!(
                "{} trailing bytes after event",
                bytes.len() - r.pos
            ));
        }
        Ok(ChainEvent {
            seq,
            chain_id,
            timestamp_ns,
            prev_hash,
            hash,
            payload_hash,
            source,
            kind,
            payload,
        })
    }
}

/// Bounds-checked little-endian cursor; every read returns an error rather
/// than panicking on short input.
pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| format!("truncated: need {n} bytes at offset {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub(crate) fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn hash(&mut self) -> std::result::Result<[u8; 32], String> {
        self.array()
    }
    fn bytes_prefixed(&mut self, what: &str, max: usize) -> std::result::Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(format!("{what} length {len} exceeds {max}"));
        }
        self.take(len)
    }
    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let b = self.bytes_prefixed(what, MAX_LABEL)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| format!("{what} is not UTF-8"))
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
            prev_hash: [9u8; 32],
            hash: [0; 32],
            payload_hash: shake256(&payload),
            source: "kernel".into(),
            kind: "test.kind".into(),
            payload,
        };
        ev.hash = ev.compute_hash();
        ev
    }

    #[test]
    fn hash_layout_is_the_documented_one() {
        let ev = sample();
        // Rebuild the documented byte layout by hand and hash it.
        let mut input = Vec::new();
        input.extend_from_slice(b"weft-chain-event-v1");
        input.extend_from_slice(&7u64.to_le_bytes());
        input.extend_from_slice(&3u32.to_le_bytes());
        input.extend_from_slice(&ev.timestamp_ns.to_le_bytes());
        input.extend_from_slice(&[9u8; 32]);
        input.extend_from_slice(&ev.payload_hash);
        input.extend_from_slice(&6u32.to_le_bytes());
        input.extend_from_slice(b"kernel");
        input.extend_from_slice(&9u32.to_le_bytes());
        input.extend_from_slice(b"test.kind");
        input.extend_from_slice(&(ev.payload.len() as u32).to_le_bytes());
        assert_eq!(shake256(&input), ev.hash);
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
        e.seq += 1;
        variants.push(e);
        let mut e = base.clone();
        e.chain_id += 1;
        variants.push(e);
        let mut e = base.clone();
        e.timestamp_ns += 1;
        variants.push(e);
        let mut e = base.clone();
        e.prev_hash[0] ^= 1;
        variants.push(e);
        let mut e = base.clone();
        e.payload_hash[31] ^= 1;
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
    fn encode_decode_roundtrip_and_strictness() {
        let ev = sample();
        let mut buf = Vec::new();
        ev.encode_into(&mut buf);
        assert_eq!(buf.len(), ev.encoded_len());
        assert_eq!(ChainEvent::decode(&buf).unwrap(), ev);
        let mut longer = buf.clone();
        longer.push(0);
        assert!(ChainEvent::decode(&longer).is_err());
        for cut in 0..buf.len() {
            assert!(ChainEvent::decode(&buf[..cut]).is_err());
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
