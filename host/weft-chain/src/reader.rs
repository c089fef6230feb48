//! Reading and verifying `chain.log`, shared by boot and offline tools.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::error::{ChainError, Result};
use crate::event::{ChainEvent, GENESIS_KIND};
use crate::keccak::shake256_x4;
use crate::keys::public_key_hex;
use crate::segment::{
    find_valid_header, payload_checksum, HeaderError, SegmentHeader, SegmentKind, HEADER_LEN,
};

/// Payload of the genesis event: binds the chain id and its public key into
/// the first hash so the key cannot be swapped later.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GenesisPayload {
    /// Genesis payload format version, currently 1.
    pub format: u32,
    /// Must equal the genesis event's `chain_id`.
    pub chain_id: u32,
    /// Hex Ed25519 public key that signs this chain's checkpoints.
    pub public_key: String,
}

/// Outcome of a verification pass, in memory or over a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when nothing was wrong (and, for files, there was no torn tail).
    pub ok: bool,
    /// Events that verified before the first problem.
    pub events: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
    /// Seq of the first bad (or first missing) event and why.
    pub first_bad: Option<(u64, String)>,
    /// Bytes after the last complete segment (files only; a crash leaves
    /// these behind and `ChainManager::open` truncates them).
    pub torn_tail_bytes: u64,
    /// Seq covered by the last verified checkpoint, if any.
    pub last_checkpoint_seq: Option<u64>,
}

/// Fully parsed and verified file contents, for offline tools.
#[derive(Clone, Debug)]
pub struct ChainFile {
    /// Every event, genesis first.
    pub events: Vec<ChainEvent>,
    /// Every checkpoint, in file order.
    pub checkpoints: Vec<Checkpoint>,
    /// The verification outcome for the whole file.
    pub report: VerifyReport,
}

/// Result of scanning bytes: everything verified up to the first problem.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub events: Vec<ChainEvent>,
    pub checkpoints: Vec<Checkpoint>,
    /// Length of the verified prefix (end of last complete segment).
    pub valid_len: u64,
    pub torn_bytes: u64,
    pub torn_reason: Option<String>,
    pub public_key: Option<VerifyingKey>,
    /// First integrity failure; set means the file must not be used.
    pub error: Option<ChainError>,
}

struct Pos {
    segment: u64,
    offset: u64,
}

fn corrupt(p: &Pos, seq: Option<u64>, reason: impl Into<String>) -> ChainError {
    ChainError::Corrupt {
        segment: p.segment,
        offset: p.offset,
        seq,
        reason: reason.into(),
    }
}

/// Verifies `bytes` as a chain file. A defect confined to the final segment
/// (short header, short payload, bad checksum with nothing after it) is a
/// torn tail; any other failure stops the scan with `error` set.
pub(crate) fn scan(bytes: &[u8], expected_key: Option<&VerifyingKey>) -> Scan {
    let mut s = Scan {
        public_key: expected_key.copied(),
        ..Scan::default()
    };
    let len = bytes.len();
    let mut off = 0usize;
    let mut segment = 0u64;
    while off < len {
        let pos = Pos {
            segment,
            offset: off as u64,
        };
        let torn = |s: &mut Scan, reason: &str| {
            s.torn_bytes = (len - off) as u64;
            s.torn_reason = Some(format!(
                "{reason} at segment {segment} (byte offset {off}, {} bytes)",
                len - off
            ));
        };
        if len - off < HEADER_LEN {
            torn(&mut s, "partial segment header");
            break;
        }
        let header = match SegmentHeader::decode(&bytes[off..off + HEADER_LEN]) {
            Ok(h) => h,
            Err(HeaderError::Unreadable(why)) => {
                // Only the last segment can be torn; a readable header later
                // on proves this one was complete once.
                if find_valid_header(bytes, off + 1).is_some() {
                    s.error = Some(corrupt(&pos, None, why));
                } else {
                    torn(&mut s, &why);
                }
                break;
            }
            Err(HeaderError::Invalid(why)) => {
                s.error = Some(corrupt(&pos, None, why));
                break;
            }
        };
        let end = off + HEADER_LEN + header.payload_len as usize;
        if end > len {
            torn(&mut s, "payload shorter than declared");
            break;
        }
        let payload = &bytes[off + HEADER_LEN..end];
        let kind = header.kind();
        let seq_hint = (kind == Some(SegmentKind::Event)).then_some(header.id);
        if payload_checksum(payload) != header.payload_checksum {
            if end == len {
                torn(&mut s, "payload checksum mismatch in final segment");
            } else {
                s.error = Some(corrupt(&pos, seq_hint, "payload checksum mismatch"));
            }
            break;
        }
        // From here on the segment is complete: any failure is corruption.
        let res = match kind {
            Some(SegmentKind::Event) => check_event(&mut s, &header, payload),
            Some(SegmentKind::Checkpoint) => check_checkpoint(&mut s, &header, payload),
            None => Err(Failure::Msg("unknown segment type".into())),
        };
        if let Err(e) = res {
            s.error = Some(match e {
                Failure::Key(err) => err,
                Failure::Msg(reason) => corrupt(&pos, seq_hint, reason),
            });
            break;
        }
        off = end;
        s.valid_len = off as u64;
        segment += 1;
    }
    s
}

enum Failure {
    Msg(String),
    Key(ChainError),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Msg(s)
    }
}

impl From<&str> for Failure {
    fn from(s: &str) -> Self {
        Failure::Msg(s.to_string())
    }
}

fn check_event(s: &mut Scan, h: &SegmentHeader, payload: &[u8]) -> Result<(), Failure> {
    let ev = ChainEvent::decode(payload)?;
    let expected_seq = s.events.len() as u64;
    if ev.seq != h.id {
        return Err(format!("header id {} but event seq {}", h.id, ev.seq).into());
    }
    if ev.seq != expected_seq {
        return Err(format!("expected seq {expected_seq}, found {}", ev.seq).into());
    }
    if ev.timestamp_ns != h.timestamp_ns {
        return Err("header timestamp differs from event timestamp".into());
    }
    let (prev_hash, prev_ts) = s
        .events
        .last()
        .map_or(([0u8; 32], 0), |p| (p.hash, p.timestamp_ns));
    if ev.prev_hash != prev_hash {
        return Err("prev_hash does not match previous event hash".into());
    }
    if ev.timestamp_ns < prev_ts {
        return Err("timestamp decreases".into());
    }
    ev.verify_hashes()?;
    if let Some(first) = s.events.first() {
        if ev.chain_id != first.chain_id {
            return Err(format!(
                "chain id {} differs from genesis {}",
                ev.chain_id, first.chain_id
            )
            .into());
        }
    } else {
        let key = genesis_key(&ev)?;
        match &s.public_key {
            Some(expected) if *expected != key => {
                return Err(Failure::Key(ChainError::KeyMismatch {
                    expected: public_key_hex(expected),
                    found: public_key_hex(&key),
                }))
            }
            _ => s.public_key = Some(key),
        }
    }
    s.events.push(ev);
    Ok(())
}

/// Validates the genesis event and returns the chain's public key.
pub(crate) fn genesis_key(ev: &ChainEvent) -> Result<VerifyingKey, String> {
    if ev.kind != GENESIS_KIND {
        return Err(format!(
            "event 0 has kind {:?}, expected {GENESIS_KIND}",
            ev.kind
        ));
    }
    let g: GenesisPayload = ev
        .decode_payload()
        .map_err(|e| format!("bad genesis payload: {e}"))?;
    if g.chain_id != ev.chain_id {
        return Err("genesis payload chain id differs from event chain id".into());
    }
    crate::keys::parse_public_key_hex(&g.public_key).map_err(|e| format!("genesis {e}"))
}

fn check_checkpoint(s: &mut Scan, h: &SegmentHeader, payload: &[u8]) -> Result<(), Failure> {
    let cp = Checkpoint::decode(payload)?;
    let Some(first) = s.events.first() else {
        return Err("checkpoint before genesis".into());
    };
    let expected_id = s.checkpoints.len() as u64;
    if cp.id != h.id || cp.id != expected_id {
        return Err(format!(
            "expected checkpoint {expected_id}, found {} (header {})",
            cp.id, h.id
        )
        .into());
    }
    if cp.chain_id != first.chain_id {
        return Err("checkpoint chain id differs from genesis".into());
    }
    if cp.timestamp_ns != h.timestamp_ns {
        return Err("header timestamp differs from checkpoint timestamp".into());
    }
    let Some(ev) = s.events.get(cp.seq as usize) else {
        return Err(format!("checkpoint covers seq {} not yet in file", cp.seq).into());
    };
    if ev.hash != cp.event_hash {
        return Err(format!("checkpoint hash differs from event {} hash", cp.seq).into());
    }
    if s.checkpoints.last().is_some_and(|p| p.seq > cp.seq) {
        return Err("checkpoint seq goes backwards".into());
    }
    let key = s.public_key.ok_or("no chain key to verify checkpoint")?;
    cp.verify(&key)?;
    s.checkpoints.push(cp);
    Ok(())
}

/// Verifies in-memory events and checkpoints (used by the manager and tests).
/// Splits hash work across threads for large chains.
pub(crate) fn verify_events(
    events: &[impl AsRef<ChainEvent> + Sync],
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
) -> VerifyReport {
    let n = events.len();
    let threads = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .min(8);
    let first_bad = if n < 4096 || threads == 1 {
        verify_range(events, 0, n, key)
    } else {
        let chunk = n.div_ceil(threads);
        std::thread::scope(|sc| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (a, b) = (t * chunk, ((t + 1) * chunk).min(n));
                    sc.spawn(move || verify_range(events, a, b, key))
                })
                .collect();
            // Chunks are in order, so the first failing chunk has the lowest seq.
            handles
                .into_iter()
                .filter_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Some((0, "verifier panicked".into())))
                })
                .next()
        })
    };
    let good = first_bad.as_ref().map_or(n as u64, |(seq, _)| *seq);
    let mut cps = 0u64;
    let mut cp_bad = None;
    for (i, cp) in checkpoints.iter().enumerate() {
        let r = if cp.id != i as u64 {
            Err(format!("checkpoint {} out of order", cp.id))
        } else {
            match events.get(cp.seq as usize) {
                Some(ev) if ev.as_ref().hash == cp.event_hash => cp.verify(key),
                Some(_) => Err(format!(
                    "checkpoint {} hash differs from event {}",
                    cp.id, cp.seq
                )),
                None => Err(format!(
                    "checkpoint {} covers missing seq {}",
                    cp.id, cp.seq
                )),
            }
        };
        match r {
            Ok(()) => cps += 1,
            Err(e) => {
                cp_bad = Some((cp.seq, e));
                break;
            }
        }
    }
    let first_bad = match (first_bad, cp_bad) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    };
    VerifyReport {
        ok: first_bad.is_none(),
        events: good,
        checkpoints: cps,
        first_bad,
        torn_tail_bytes: 0,
        last_checkpoint_seq: checkpoints.last().map(|c| c.seq),
    }
}

fn verify_range(
    events: &[impl AsRef<ChainEvent>],
    a: usize,
    b: usize,
    key: &VerifyingKey,
) -> Option<(u64, String)> {
    let mut inputs: [Vec<u8>; 4] = Default::default();
    let mut i = a;
    while i < b {
        // Hash four events at once (payloads, then hash inputs).
        let n = (b - i).min(4);
        let group: Vec<&ChainEvent> = (i..i + n).map(|j| events[j].as_ref()).collect();
        let mut payloads: [&[u8]; 4] = [&[]; 4];
        for (k, ev) in group.iter().enumerate() {
            payloads[k] = &ev.payload;
            ev.hash_input_into(&mut inputs[k]);
        }
        let payload_hashes = shake256_x4(payloads);
        let hashes = shake256_x4([&inputs[0], &inputs[1], &inputs[2], &inputs[3]]);
        for (k, ev) in group.iter().enumerate() {
            let j = i + k;
            let res = check_links(events, j, key).and_then(|()| {
                if payload_hashes[k] != ev.payload_hash {
                    Err("payload hash mismatch".to_string())
                } else if hashes[k] != ev.hash {
                    Err("event hash mismatch".to_string())
                } else {
                    Ok(())
                }
            });
            if let Err(e) = res {
                return Some((j as u64, e));
            }
        }
        i += n;
    }
    None
}

/// Structural checks of event `i` against its predecessor.
fn check_links(
    events: &[impl AsRef<ChainEvent>],
    i: usize,
    key: &VerifyingKey,
) -> Result<(), String> {
    let ev = events[i].as_ref();
    if ev.seq != i as u64 {
        return Err(format!("event at index {i} has seq {}", ev.seq));
    }
    if i == 0 {
        if ev.prev_hash != [0; 32] {
            return Err("genesis prev_hash not zero".into());
        }
        if genesis_key(ev)? != *key {
            return Err("genesis public key differs from chain key".into());
        }
        return Ok(());
    }
    let prev = events[i - 1].as_ref();
    if ev.prev_hash != prev.hash {
        return Err("prev_hash does not match previous event hash".into());
    }
    if ev.timestamp_ns < prev.timestamp_ns {
        return Err("timestamp decreases".into());
    }
    if ev.chain_id != prev.chain_id {
        return Err("chain id changes".into());
    }
    Ok(())
}

/// Reads and verifies a chain file without modifying it. Corruption and
/// key mismatches are errors; a torn tail is reported in `report`.
pub fn read_file(path: impl AsRef<Path>, public_key: &VerifyingKey) -> Result<ChainFile> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| ChainError::io(path, e))?;
    let s = scan(&bytes, Some(public_key));
    if let Some(e) = s.error {
        return Err(e);
    }
    let report = file_report_pub(&s, None);
    Ok(ChainFile {
        events: s.events,
        checkpoints: s.checkpoints,
        report,
    })
}

/// Offline verification for `weaver chain verify FILE --key PUBKEY`. Needs
/// only the file and the public key; never writes. I/O failures are `Err`;
/// integrity problems (corruption, wrong key, torn tail) give `ok == false`.
pub fn verify_file(path: impl AsRef<Path>, public_key: &VerifyingKey) -> Result<VerifyReport> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| ChainError::io(path, e))?;
    let s = scan(&bytes, Some(public_key));
    let err = s.error.as_ref().map(|e| e.to_string());
    Ok(file_report_pub(&s, err))
}

pub(crate) fn file_report_pub(s: &Scan, error: Option<String>) -> VerifyReport {
    let next = s.events.len() as u64;
    let first_bad = match (&s.error, error) {
        (Some(ChainError::Corrupt { seq, .. }), Some(msg)) => Some((seq.unwrap_or(next), msg)),
        (_, Some(msg)) => Some((next, msg)),
        (_, None) => s
            .torn_reason
            .as_ref()
            .map(|r| (next, format!("torn tail: {r}"))),
    };
    VerifyReport {
        ok: first_bad.is_none() && s.torn_bytes == 0,
        events: next,
        checkpoints: s.checkpoints.len() as u64,
        first_bad,
        torn_tail_bytes: s.torn_bytes,
        last_checkpoint_seq: s.checkpoints.last().map(|c| c.seq),
    }
}
