//! The 64-byte segment header that frames every record in `chain.log`.

/// Segment magic: identifies a header and lets recovery look for the next one.
pub const MAGIC: [u8; 8] = *b"WEFTSEG\0";
/// Size of every segment header.
pub const HEADER_LEN: usize = 64;
/// Current on-disk format version.
pub const FORMAT_VERSION: u16 = 1;
/// Largest segment payload the reader accepts (guards allocation on bad input).
pub const MAX_SEGMENT_PAYLOAD: u32 = 64 << 20;

/// What a segment carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// A [`ChainEvent`](crate::ChainEvent) in its canonical encoding (type 1).
    Event,
    /// A [`Checkpoint`](crate::Checkpoint) (type 2).
    Checkpoint,
}

impl SegmentKind {
    /// The header's type code.
    pub fn code(self) -> u16 {
        match self {
            SegmentKind::Event => 1,
            SegmentKind::Checkpoint => 2,
        }
    }
    /// The kind for a header type code; `None` for an unknown one.
    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            1 => Some(SegmentKind::Event),
            2 => Some(SegmentKind::Checkpoint),
            _ => None,
        }
    }
}

/// Decoded header. Exists so the reader can validate framing before it
/// trusts the length field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// [`FORMAT_VERSION`] when written.
    pub version: u16,
    /// [`SegmentKind::code`]; kept raw so an unknown type can be reported.
    pub kind_code: u16,
    /// Reserved, 0.
    pub flags: u32,
    /// Event seq for events, checkpoint counter for checkpoints.
    pub id: u64,
    /// Bytes of payload after the header.
    pub payload_len: u32,
    /// The event's or checkpoint's timestamp.
    pub timestamp_ns: u64,
    /// First 16 bytes of BLAKE3(payload).
    pub payload_checksum: [u8; 16],
}

/// Why a header could not be used. `Unreadable` means the bytes are not a
/// header at all (possible torn write); `Invalid` means a checksummed header
/// with impossible contents (always corruption).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Not a header: bad magic or checksum (perhaps a torn write).
    Unreadable(String),
    /// A header whose checksum holds but whose contents cannot be.
    Invalid(String),
}

/// First 16 bytes of BLAKE3 over the segment payload.
pub fn payload_checksum(payload: &[u8]) -> [u8; 16] {
    let h = blake3::hash(payload);
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.as_bytes()[..16]);
    out
}

fn header_checksum(first56: &[u8]) -> [u8; 8] {
    let h = blake3::hash(first56);
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.as_bytes()[..8]);
    out
}

impl SegmentHeader {
    /// Builds the header for `payload`.
    pub fn new(kind: SegmentKind, id: u64, timestamp_ns: u64, payload: &[u8]) -> Self {
        SegmentHeader {
            version: FORMAT_VERSION,
            kind_code: kind.code(),
            flags: 0,
            id,
            payload_len: payload.len() as u32,
            timestamp_ns,
            payload_checksum: payload_checksum(payload),
        }
    }

    /// The segment kind; `None` for an unknown type code.
    pub fn kind(&self) -> Option<SegmentKind> {
        SegmentKind::from_code(self.kind_code)
    }

    /// Serializes to the fixed layout in docs/chain-format.md.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&self.kind_code.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.id.to_le_bytes());
        b[24..28].copy_from_slice(&self.payload_len.to_le_bytes());
        // 28..32 reserved, zero.
        b[32..40].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        b[40..56].copy_from_slice(&self.payload_checksum);
        let ck = header_checksum(&b[0..56]);
        b[56..64].copy_from_slice(&ck);
        b
    }

    /// Parses and validates a header. Magic and checksum failures are
    /// `Unreadable`; anything else wrong under a good checksum is `Invalid`.
    pub fn decode(b: &[u8]) -> Result<Self, HeaderError> {
        if b.len() < HEADER_LEN {
            return Err(HeaderError::Unreadable("short header".into()));
        }
        if b[0..8] != MAGIC {
            return Err(HeaderError::Unreadable("bad segment magic".into()));
        }
        if header_checksum(&b[0..56]) != b[56..64] {
            return Err(HeaderError::Unreadable("header checksum mismatch".into()));
        }
        let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(a)
        };
        let mut payload_checksum = [0u8; 16];
        payload_checksum.copy_from_slice(&b[40..56]);
        let h = SegmentHeader {
            version: u16_at(8),
            kind_code: u16_at(10),
            flags: u32_at(12),
            id: u64_at(16),
            payload_len: u32_at(24),
            timestamp_ns: u64_at(32),
            payload_checksum,
        };
        if h.version != FORMAT_VERSION {
            return Err(HeaderError::Invalid(format!(
                "unsupported format version {}",
                h.version
            )));
        }
        if h.kind().is_none() {
            return Err(HeaderError::Invalid(format!(
                "unknown segment type {}",
                h.kind_code
            )));
        }
        if h.flags != 0 || u32_at(28) != 0 {
            return Err(HeaderError::Invalid("reserved header bits set".into()));
        }
        if h.payload_len > MAX_SEGMENT_PAYLOAD {
            return Err(HeaderError::Invalid(format!(
                "payload length {} exceeds {}",
                h.payload_len, MAX_SEGMENT_PAYLOAD
            )));
        }
        Ok(h)
    }
}

/// Appends header + payload for one segment to `out`.
pub fn write_segment(
    out: &mut Vec<u8>,
    kind: SegmentKind,
    id: u64,
    timestamp_ns: u64,
    payload: &[u8],
) {
    out.extend_from_slice(&SegmentHeader::new(kind, id, timestamp_ns, payload).encode());
    out.extend_from_slice(payload);
}

/// Finds the first offset `>= from` holding a header with valid magic and
/// checksum. Used to decide whether a bad header is the torn end of the file
/// or corruption followed by more data.
pub fn find_valid_header(bytes: &[u8], from: usize) -> Option<usize> {
    let mut pos = from;
    while pos + HEADER_LEN <= bytes.len() {
        let rest = &bytes[pos..bytes.len() - HEADER_LEN + 8];
        let idx = rest.windows(8).position(|w| w == MAGIC)?;
        let at = pos + idx;
        if !matches!(
            SegmentHeader::decode(&bytes[at..at + HEADER_LEN]),
            Err(HeaderError::Unreadable(_))
        ) {
            return Some(at);
        }
        pos = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_64_bytes_and_roundtrips() {
        let h = SegmentHeader::new(SegmentKind::Event, 42, 123, b"hello");
        let b = h.encode();
        assert_eq!(b.len(), 64);
        assert_eq!(&b[0..8], b"WEFTSEG\0");
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 42);
        assert_eq!(u32::from_le_bytes(b[24..28].try_into().unwrap()), 5);
        assert_eq!(SegmentHeader::decode(&b).unwrap(), h);
    }

    #[test]
    fn every_header_byte_is_covered() {
        let b = SegmentHeader::new(SegmentKind::Checkpoint, 1, 2, b"x").encode();
        for i in 0..64 {
            let mut c = b;
            c[i] ^= 0x01;
            assert!(SegmentHeader::decode(&c).is_err(), "byte {i}");
        }
    }

    #[test]
    fn finds_next_header() {
        let mut buf = vec![0u8; 10];
        write_segment(&mut buf, SegmentKind::Event, 0, 0, b"abc");
        assert_eq!(find_valid_header(&buf, 0), Some(10));
        assert_eq!(find_valid_header(&buf, 11), None);
        assert_eq!(find_valid_header(&buf[..74], 0), Some(10));
        assert_eq!(find_valid_header(&buf[..73], 0), None);
        assert_eq!(find_valid_header(&buf[..60], 0), None);
    }
}
