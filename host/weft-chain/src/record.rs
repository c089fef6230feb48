//! Records inside a segment file: the framing (type, length, CRC-32) and
//! the bodies of event and head records (docs/chain-format.md, "Records").

use crate::error::{ChainError, Result};
use crate::event::{MAX_LABEL, MAX_PAYLOAD};
use crate::merkle::Hash;

/// Record type of an event.
pub const TYPE_EVENT: u8 = 1;
/// Record type of a signed tree head.
pub const TYPE_HEAD: u8 = 2;
/// Largest record body the reader accepts (guards allocations on bad input).
pub const MAX_BODY: usize = MAX_PAYLOAD + 2 * MAX_LABEL + 64;
/// Bytes of framing around a body: type, CRC-32 (the varint length is extra).
pub const FRAME_FIXED: usize = 1 + 4;

/// Appends `v` as an LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an LEB128 varint at `*pos`; `None` when truncated or longer than
/// 10 bytes or not minimal (one value, one encoding).
pub fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos + i)?;
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return None;
            }
            *pos += i + 1;
            return Some(v);
        }
    }
    None
}

/// Appends a framed record: `type || varint(len body) || body || crc32`.
pub fn frame(out: &mut Vec<u8>, ty: u8, body: &[u8]) {
    let start = out.len();
    out.push(ty);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Outcome of reading one framed record at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    /// A complete record with a valid CRC.
    Ok {
        /// Record type.
        ty: u8,
        /// Its body.
        body: &'a [u8],
        /// Total bytes of the record including framing.
        len: usize,
    },
    /// The bytes end before the record does (a torn write, or a short read).
    Short,
    /// Not a record: unknown type, bad length or CRC mismatch.
    Bad(&'static str),
}

/// Reads the framed record starting at `buf[0]`.
pub fn read_frame(buf: &[u8]) -> Framed<'_> {
    let Some(&ty) = buf.first() else {
        return Framed::Short;
    };
    if ty != TYPE_EVENT && ty != TYPE_HEAD {
        return Framed::Bad("unknown record type");
    }
    let mut pos = 1;
    let len = match get_varint(buf, &mut pos) {
        Some(l) => l,
        None if buf.len() < 11 => return Framed::Short,
        None => return Framed::Bad("malformed record length"),
    };
    if len as usize > MAX_BODY {
        return Framed::Bad("record length exceeds the limit");
    }
    let end = pos + len as usize;
    if buf.len() < end + 4 {
        return Framed::Short;
    }
    let crc = u32::from_le_bytes([buf[end], buf[end + 1], buf[end + 2], buf[end + 3]]);
    if crc32fast::hash(&buf[..end]) != crc {
        return Framed::Bad("record checksum mismatch");
    }
    Framed::Ok {
        ty,
        body: &buf[pos..end],
        len: end + 4,
    }
}

/// An event body as stored: the timestamp is a delta from the previous
/// record of the segment.
#[derive(Debug, PartialEq, Eq)]
pub struct EventBody<'a> {
    /// Nanoseconds after the previous record's timestamp.
    pub ts_delta: u64,
    /// Who appended it.
    pub source: &'a str,
    /// What happened.
    pub kind: &'a str,
    /// CBOR payload.
    pub payload: &'a [u8],
}

impl<'a> EventBody<'a> {
    /// Appends the body encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.ts_delta);
        put_varint(out, self.source.len() as u64);
        out.extend_from_slice(self.source.as_bytes());
        put_varint(out, self.kind.len() as u64);
        out.extend_from_slice(self.kind.as_bytes());
        out.extend_from_slice(self.payload);
    }

    /// Parses a body; labels must be UTF-8 and within the limits.
    pub fn decode(b: &'a [u8]) -> std::result::Result<Self, String> {
        let mut pos = 0;
        let ts_delta = get_varint(b, &mut pos).ok_or("bad timestamp delta")?;
        let mut label = |what: &str| -> std::result::Result<&'a str, String> {
            let n = get_varint(b, &mut pos).ok_or_else(|| format!("bad {what} length"))? as usize;
            if n > MAX_LABEL {
                return Err(format!("{what} length {n} exceeds {MAX_LABEL}"));
            }
            let s = b
                .get(pos..pos + n)
                .ok_or_else(|| format!("{what} truncated"))?;
            pos += n;
            std::str::from_utf8(s).map_err(|_| format!("{what} is not UTF-8"))
        };
        let source = label("source")?;
        let kind = label("kind")?;
        let payload = &b[pos..];
        if payload.len() > MAX_PAYLOAD {
            return Err(format!("payload exceeds {MAX_PAYLOAD} bytes"));
        }
        Ok(EventBody {
            ts_delta,
            source,
            kind,
            payload,
        })
    }
}

/// A head body as stored: the signed part, the writer's bookkeeping, and
/// the frontier that lets a reader resume the tree without the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadBody {
    /// Leaves covered.
    pub tree_size: u64,
    /// Merkle root of those leaves.
    pub root: Hash,
    /// Timestamp of the newest covered event (absolute).
    pub timestamp_ns: u64,
    /// Byte offset of this record in its segment (signed).
    pub offset: u64,
    /// Ed25519 signature (see `head::signing_message`).
    pub signature: [u8; 64],
    /// Index entries (chunks) of this segment known durable.
    pub index_chunks: u64,
    /// Kind-index entries of this segment known durable.
    pub kind_entries: u64,
    /// Segment byte offset where rebuilding the index resumes: the record
    /// after the last event of chunk `index_chunks - 1` (the start head's
    /// offset when no chunk is durable yet).
    pub index_resume_offset: u64,
    /// Timestamp of the record before `index_resume_offset` (the base of
    /// the next timestamp delta).
    pub index_resume_ts: u64,
    /// Frontier hashes, one per set bit of `tree_size`, largest first.
    pub frontier: Vec<Hash>,
}

/// Bytes of a head body before its frontier hashes.
pub const HEAD_FIXED: usize = 8 + 32 + 8 + 8 + 64 + 8 + 8 + 8 + 8 + 1;

impl HeadBody {
    /// Appends the body encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(HEAD_FIXED + 32 * self.frontier.len());
        out.extend_from_slice(&self.tree_size.to_le_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.timestamp_ns.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.index_chunks.to_le_bytes());
        out.extend_from_slice(&self.kind_entries.to_le_bytes());
        out.extend_from_slice(&self.index_resume_offset.to_le_bytes());
        out.extend_from_slice(&self.index_resume_ts.to_le_bytes());
        out.push(self.frontier.len() as u8);
        for h in &self.frontier {
            out.extend_from_slice(h);
        }
    }

    /// Parses a head body (no signature check).
    pub fn decode(b: &[u8]) -> std::result::Result<Self, String> {
        if b.len() < HEAD_FIXED {
            return Err(format!("head record of {} bytes is too short", b.len()));
        }
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let mut root = [0u8; 32];
        root.copy_from_slice(&b[8..40]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&b[56..120]);
        let count = b[HEAD_FIXED - 1] as usize;
        if b.len() != HEAD_FIXED + 32 * count {
            return Err("head record length disagrees with its frontier count".into());
        }
        let frontier = b[HEAD_FIXED..]
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(HeadBody {
            tree_size: u64_at(0),
            root,
            timestamp_ns: u64_at(40),
            offset: u64_at(48),
            signature,
            index_chunks: u64_at(120),
            kind_entries: u64_at(128),
            index_resume_offset: u64_at(136),
            index_resume_ts: u64_at(144),
            frontier,
        })
    }
}

/// Checks a label's length against the format's limit.
pub fn check_label(what: &'static str, s: &str) -> Result<()> {
    if s.len() > MAX_LABEL {
        return Err(ChainError::TooLarge {
            what,
            len: s.len(),
            max: MAX_LABEL,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_roundtrip_and_are_minimal() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut pos = 0;
            assert_eq!(get_varint(&b, &mut pos), Some(v));
            assert_eq!(pos, b.len());
        }
        let mut pos = 0;
        assert_eq!(get_varint(&[0x80, 0x00], &mut pos), None, "non-minimal");
        assert_eq!(get_varint(&[0x80], &mut pos), None, "truncated");
    }

    #[test]
    fn frames_detect_every_flip_and_truncation() {
        let body = EventBody {
            ts_delta: 1234,
            source: "agent-7",
            kind: "ipc.send",
            payload: &[0xa1, 0x61, 0x61, 0x01],
        };
        let mut b = Vec::new();
        body.encode(&mut b);
        let mut rec = Vec::new();
        frame(&mut rec, TYPE_EVENT, &b);
        match read_frame(&rec) {
            Framed::Ok { ty, body: got, len } => {
                assert_eq!((ty, len), (TYPE_EVENT, rec.len()));
                assert_eq!(EventBody::decode(got).unwrap(), body);
            }
            other => panic!("{other:?}"),
        }
        for cut in 0..rec.len() {
            assert!(
                !matches!(read_frame(&rec[..cut]), Framed::Ok { .. }),
                "{cut}"
            );
        }
        for i in 0..rec.len() {
            for mask in [1u8, 0x80] {
                let mut r = rec.clone();
                r[i] ^= mask;
                if let Framed::Ok { len, .. } = read_frame(&r) {
                    panic!("flip at {i} accepted as a record of {len} bytes");
                }
            }
        }
    }

    #[test]
    fn head_body_roundtrip() {
        let h = HeadBody {
            tree_size: 5,
            root: [1; 32],
            timestamp_ns: 9,
            offset: 64,
            signature: [2; 64],
            index_chunks: 3,
            kind_entries: 4,
            index_resume_offset: 100,
            index_resume_ts: 8,
            frontier: vec![[3; 32], [4; 32]],
        };
        let mut b = Vec::new();
        h.encode(&mut b);
        assert_eq!(HeadBody::decode(&b).unwrap(), h);
        assert!(HeadBody::decode(&b[..b.len() - 1]).is_err());
    }
}
