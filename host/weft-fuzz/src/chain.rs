//! `chain_log` and `chain_event`: the chain's readers, which boot and
//! `weaver chain verify` run on whatever a crash, a full disk or an attacker
//! left in a segment file.
//!
//! Checksums and signatures stop random bytes at the first record, so
//! `chain_log` has two modes (first byte even/odd): the raw bytes as
//! segment 0, or a *recipe* that builds a well-formed segment (real
//! framing, leaves, frontiers and signed heads) with defects the input
//! chooses: a bad checksum, a head with a wrong root, offset or signature,
//! a flipped bit, a torn tail.

use std::path::Path;

use weft_chain::layout::{SegmentHeader, SEGMENT_HEADER_LEN};
use weft_chain::merkle::Frontier;
use weft_chain::record::{frame, read_frame, EventBody, Framed, HeadBody, TYPE_EVENT, TYPE_HEAD};
use weft_chain::{
    leaf_hash, public_key_hex, to_cbor, verify_dir, ChainConfig, ChainManager, GenesisPayload,
    Receipt, SignedHead, GENESIS_KIND,
};

use crate::support::{key, scratch, Cursor};

const SEG: &str = "00000000000000000000.seg";

/// The `chain_event` target: each decoder, and the encodings are canonical
/// (what decodes re-encodes to the same bytes).
pub fn fuzz_event(data: &[u8]) {
    if let Framed::Ok { ty, body, len } = read_frame(data) {
        let mut again = Vec::new();
        frame(&mut again, ty, body);
        assert_eq!(again, data[..len], "a record with two framings");
        if ty == TYPE_EVENT {
            if let Ok(e) = EventBody::decode(body) {
                let mut out = Vec::new();
                e.encode(&mut out);
                assert_eq!(out, body, "an event body with two encodings");
            }
        }
    }
    if let Ok(h) = HeadBody::decode(data) {
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, data, "a head body with two encodings");
        let _checked = Frontier::from_parts(h.tree_size, h.frontier.clone()).map(|f| f.root());
    }
    if let Ok(h) = SegmentHeader::decode(data) {
        let enc = h.encode();
        assert_eq!(&enc[..], &data[..enc.len()], "a header with two encodings");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = serde_json::from_str::<Receipt>(text) {
            let _checked = r.verify(&key().verifying_key());
        }
        if let Ok(h) = serde_json::from_str::<SignedHead>(text) {
            let _checked = h.verify(&key().verifying_key());
        }
    }
}

/// The `chain_log` target.
pub fn fuzz_log(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        recipe(rest)
    };
    check_log(&bytes);
}

fn config() -> ChainConfig {
    ChainConfig {
        chain_id: 0,
        signing_key: Some(key()),
        ..ChainConfig::default()
    }
}

/// Verify and boot agree: whatever verify passes boots with every event;
/// whatever boot accepts stays appendable and verifies afterwards.
pub fn check_log(bytes: &[u8]) {
    let dir = scratch().join("chain");
    let _fresh = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a chain dir");
    std::fs::write(dir.join(SEG), bytes).expect("write the segment");
    for f in ["00000000000000000000.idx", "00000000000000000000.kinds"] {
        std::fs::write(dir.join(f), b"").expect("write an index");
    }
    let k = key().verifying_key();
    let report = verify_dir(&dir, &k);
    let (chain, open) = match ChainManager::open(&dir, config()) {
        Ok(c) => c,
        Err(e) => {
            assert!(!report.ok, "boot refused what verify passed: {e}");
            return;
        }
    };
    if report.ok {
        assert_eq!(open.truncated_bytes, 0, "boot cut a tail verify accepted");
        assert_eq!(chain.len(), report.events.max(1), "boot and verify differ");
    }
    let n = chain.len();
    chain
        .append("fuzz", "fuzz.append", &"after")
        .expect("append after open");
    chain.sync().expect("sync");
    chain.shutdown().expect("shutdown");
    drop(chain);
    let after = verify_dir(&dir, &k);
    assert!(after.ok, "the appended chain fails: {after:?}");
    assert_eq!(after.events, n + 1);
    check_dir_reopens(&dir);
}

fn check_dir_reopens(dir: &Path) {
    let (chain, report) = ChainManager::open(dir, config()).expect("reopen");
    assert_eq!(
        report.truncated_bytes, 0,
        "a clean shutdown left a torn tail"
    );
    chain.shutdown().expect("shutdown");
}

/// Build segment 0 from `data`: a start head, a genesis, then events and
/// heads, each well formed unless the input picks a defect.
pub fn recipe(data: &[u8]) -> Vec<u8> {
    let mut c = Cursor::new(data);
    let sk = key();
    let mut out = SegmentHeader {
        chain_id: 0,
        first_seq: 0,
        created_ns: 1,
    }
    .encode()
    .to_vec();
    let mut frontier = Frontier::new();
    let mut ts = 1_000u64;
    let mut prev_ts = ts;
    let head = |out: &mut Vec<u8>, f: &Frontier, ts: u64, defect: u8| {
        let offset = out.len() as u64;
        let mut h = SignedHead::sign(&sk, 0, f.size(), f.root(), ts, 0, offset);
        match defect {
            1 => h.root[0] ^= 1,
            2 => h.offset += 1,
            3 => h.signature[5] ^= 1,
            _ => {}
        }
        let mut body = Vec::new();
        HeadBody {
            tree_size: h.tree_size,
            root: h.root,
            timestamp_ns: h.timestamp_ns,
            offset: h.offset,
            signature: h.signature,
            index_chunks: 0,
            kind_entries: 0,
            index_resume_offset: SEGMENT_HEADER_LEN as u64,
            index_resume_ts: 0,
            frontier: f.nodes().to_vec(),
        }
        .encode(&mut body);
        frame(out, TYPE_HEAD, &body);
    };
    head(&mut out, &frontier, ts, 0);
    let genesis = to_cbor(&GenesisPayload {
        format: 2,
        chain_id: 0,
        public_key: public_key_hex(&sk.verifying_key()),
    })
    .expect("cbor");
    let event = |out: &mut Vec<u8>,
                 f: &mut Frontier,
                 ts: u64,
                 prev: u64,
                 source: &str,
                 kind: &str,
                 payload: &[u8],
                 bad_crc: bool| {
        let mut body = Vec::new();
        EventBody {
            ts_delta: ts - prev,
            source,
            kind,
            payload,
        }
        .encode(&mut body);
        frame(out, TYPE_EVENT, &body);
        if bad_crc {
            let last = out.len() - 1;
            out[last] ^= 1;
        }
        f.push(leaf_hash(ts, source, kind, payload), |_, _, _| {});
    };
    event(
        &mut out,
        &mut frontier,
        ts,
        prev_ts,
        "weft-chain",
        GENESIS_KIND,
        &genesis,
        false,
    );
    let count = c.u8() % 24;
    for _ in 0..count {
        let op = c.u8();
        prev_ts = ts;
        ts = ts.saturating_add(u64::from(c.u8()));
        if op % 6 == 5 {
            // Defects, rarely: bits 5..=7 all set picks one of them.
            let defect = if op & 0xe0 == 0xe0 { c.u8() % 3 + 1 } else { 0 };
            head(&mut out, &frontier, prev_ts, defect);
            ts = prev_ts;
            continue;
        }
        let source = c.string(24);
        let kind = c.string(24);
        let payload = c.bytes(64).to_vec();
        let bad_crc = op & 0xf8 == 0xf8;
        event(
            &mut out,
            &mut frontier,
            ts,
            prev_ts,
            &source,
            &kind,
            &payload,
            bad_crc,
        );
    }
    let tail = c.u8();
    if tail & 1 == 1 {
        head(&mut out, &frontier, ts, 0);
    }
    if tail & 2 == 2 && out.len() > SEGMENT_HEADER_LEN {
        let cut = usize::from(c.u8()) % (out.len() - SEGMENT_HEADER_LEN);
        out.truncate(out.len() - cut);
    }
    if tail & 4 == 4 && !out.is_empty() {
        let at = usize::from(c.u16()) % out.len();
        out[at] ^= 1 << (c.u8() % 8);
    }
    out
}
