//! Sans-IO frame sealing and opening (docs/mesh.md, "Frames").
//!
//! `len: u32 BE` | ChaCha20-Poly1305(key, nonce = 0^32 || counter_le64, aad = len,
//! plaintext = flags || payload) | tag(16). The counter is implicit (never on the wire), so a
//! replayed, reordered, dropped or altered frame fails authentication.

use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};

use crate::keys::{self, Key};
use crate::MeshError;

/// Bytes of the length prefix.
pub(crate) const LEN_BYTES: usize = 4;
/// Bytes of the encrypted flags byte.
pub(crate) const FLAGS_BYTES: usize = 1;
/// Bytes of the Poly1305 tag.
pub(crate) const TAG_BYTES: usize = 16;
/// The sender switches to the next key after this frame.
pub(crate) const FLAG_REKEY: u8 = 0x01;
/// The sender closes the channel; no frame follows.
pub(crate) const FLAG_CLOSE: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_REKEY | FLAG_CLOSE;

/// One direction's key state.
pub(crate) struct DirectionKey {
    key: Key,
    cipher: ChaCha20Poly1305,
    counter: u64,
    epoch: u64,
}

impl DirectionKey {
    pub(crate) fn new(key: Key) -> Self {
        let cipher = ChaCha20Poly1305::new((&*key).into());
        DirectionKey {
            key,
            cipher,
            counter: 0,
            epoch: 0,
        }
    }

    fn nonce(&self) -> Nonce {
        // Same layout as Noise's ChaChaPoly: 4 zero bytes, then the counter little-endian.
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&self.counter.to_le_bytes());
        n.into()
    }

    fn advance(&mut self) -> Result<(), MeshError> {
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| MeshError::Protocol("nonce space exhausted".into()))?;
        Ok(())
    }

    fn rotate(&mut self) {
        *self = DirectionKey {
            epoch: self.epoch + 1,
            ..DirectionKey::new(keys::next_key(&self.key))
        };
    }

    /// How many rekeys this direction has gone through.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Public name of the current key.
    pub(crate) fn key_id(&self) -> [u8; 16] {
        keys::key_id(&self.key)
    }

    #[cfg(test)]
    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    #[cfg(test)]
    pub(crate) fn counter(&self) -> u64 {
        self.counter
    }
}

/// The sending side of one direction.
pub(crate) struct Sealer {
    pub(crate) dir: DirectionKey,
    max_payload: usize,
    rekey_after_messages: u64,
    rekey_after: Duration,
    keyed_at: Instant,
}

impl Sealer {
    pub(crate) fn new(
        key: Key,
        max_payload: usize,
        rekey_after_messages: u64,
        rekey_after: Duration,
        now: Instant,
    ) -> Self {
        Sealer {
            dir: DirectionKey::new(key),
            max_payload,
            rekey_after_messages,
            rekey_after,
            keyed_at: now,
        }
    }

    /// The largest payload this sender may put in one frame.
    pub(crate) fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Appends one sealed frame to `out`. Refuses an oversized payload without touching
    /// any state, so that error is not fatal.
    pub(crate) fn seal_into(
        &mut self,
        payload: &[u8],
        close: bool,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Result<(), MeshError> {
        if payload.len() > self.max_payload {
            return Err(MeshError::FrameTooLarge {
                len: payload.len(),
                max: self.max_payload,
            });
        }
        // The sender alone decides when to rekey and says so inside the authenticated frame, so
        // the receiver never has to guess (clocks differ; counts are equal anyway).
        let rekey = !close
            && (self.dir.counter + 1 >= self.rekey_after_messages
                || now.saturating_duration_since(self.keyed_at) >= self.rekey_after);
        let mut flags = 0;
        if rekey {
            flags |= FLAG_REKEY;
        }
        if close {
            flags |= FLAG_CLOSE;
        }
        let body_len = FLAGS_BYTES + payload.len() + TAG_BYTES;
        // max_payload <= 16 MiB, so the length fits a u32.
        let len = (body_len as u32).to_be_bytes();
        let start = out.len();
        out.reserve(LEN_BYTES + body_len);
        out.extend_from_slice(&len);
        out.push(flags);
        out.extend_from_slice(payload);
        let tag = self
            .dir
            .cipher
            .encrypt_in_place_detached(&self.dir.nonce(), &len, &mut out[start + LEN_BYTES..])
            .map_err(|_| MeshError::Protocol("frame too large for the AEAD".into()))?;
        out.extend_from_slice(&tag);
        self.dir.advance()?;
        if rekey {
            self.dir.rotate();
            self.keyed_at = now;
        }
        Ok(())
    }
}

/// What an opened frame said.
pub(crate) struct Opened {
    /// The sender closes the channel after this frame.
    pub(crate) close: bool,
}

/// The receiving side of one direction.
pub(crate) struct Opener {
    pub(crate) dir: DirectionKey,
    max_payload: usize,
}

impl Opener {
    pub(crate) fn new(key: Key, max_payload: usize) -> Self {
        Opener {
            dir: DirectionKey::new(key),
            max_payload,
        }
    }

    /// Validates a length prefix before anything is allocated for the frame body.
    pub(crate) fn check_len(&self, len: u32) -> Result<usize, MeshError> {
        let len = len as usize;
        if len < FLAGS_BYTES + TAG_BYTES {
            return Err(MeshError::Protocol(format!(
                "frame of {len} bytes is too short"
            )));
        }
        let payload = len - FLAGS_BYTES - TAG_BYTES;
        if payload > self.max_payload {
            return Err(MeshError::FrameTooLarge {
                len: payload,
                max: self.max_payload,
            });
        }
        Ok(len)
    }

    /// Opens a frame body (its length already checked) in place; on success the payload is
    /// `body[1..body.len() - 16]`.
    pub(crate) fn open_in_place(
        &mut self,
        len: [u8; 4],
        body: &mut [u8],
    ) -> Result<Opened, MeshError> {
        let split = body.len().saturating_sub(TAG_BYTES);
        let (data, tag) = body.split_at_mut(split);
        self.dir
            .cipher
            .decrypt_in_place_detached(&self.dir.nonce(), &len, data, Tag::from_slice(tag))
            .map_err(|_| MeshError::Authentication { stage: "transport" })?;
        let flags = data.first().copied().unwrap_or(0);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(MeshError::Protocol(format!(
                "unknown frame flags {flags:#04x}"
            )));
        }
        self.dir.advance()?;
        if flags & FLAG_REKEY != 0 {
            self.dir.rotate();
        }
        Ok(Opened {
            close: flags & FLAG_CLOSE != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn pair(n: u64) -> (Sealer, Opener) {
        let k = Zeroizing::new([9u8; 32]);
        let now = Instant::now();
        (
            Sealer::new(k.clone(), 1024, n, Duration::from_secs(3600), now),
            Opener::new(k, 1024),
        )
    }

    fn open(o: &mut Opener, wire: &[u8]) -> Result<Vec<u8>, MeshError> {
        let len: [u8; 4] = wire[..4].try_into().unwrap();
        o.check_len(u32::from_be_bytes(len))?;
        let mut body = wire[4..].to_vec();
        o.open_in_place(len, &mut body)?;
        Ok(body[1..body.len() - TAG_BYTES].to_vec())
    }

    #[test]
    fn roundtrip_rekey_replay_reorder() {
        let (mut s, mut o) = pair(3);
        let now = Instant::now();
        let mut frames = Vec::new();
        for i in 0..7u8 {
            let mut out = Vec::new();
            s.seal_into(&[i; 10], false, now, &mut out).unwrap();
            frames.push(out);
        }
        assert_eq!(s.dir.epoch(), 2);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(open(&mut o, f).unwrap(), vec![i as u8; 10]);
        }
        assert_eq!(o.dir.key_id(), s.dir.key_id());
        // Replay of an old frame fails.
        assert!(matches!(
            open(&mut o, &frames[6]),
            Err(MeshError::Authentication { .. })
        ));
        // Reorder fails.
        let (mut s, mut o) = pair(100);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        s.seal_into(b"a", false, now, &mut a).unwrap();
        s.seal_into(b"b", false, now, &mut b).unwrap();
        assert!(open(&mut o, &b).is_err());
    }

    #[test]
    fn length_is_authenticated_and_bounded() {
        let (mut s, mut o) = pair(100);
        let mut f = Vec::new();
        s.seal_into(b"hello", false, Instant::now(), &mut f)
            .unwrap();
        let f = f;
        assert!(matches!(
            o.check_len(u32::MAX),
            Err(MeshError::FrameTooLarge { .. })
        ));
        assert!(matches!(o.check_len(3), Err(MeshError::Protocol(_))));
        // Same body, different (still valid) prefix: the AAD differs, so it fails.
        let mut body = f[4..].to_vec();
        let other = ((body.len() as u32) ^ 0x0100_0000).to_be_bytes();
        assert!(o.open_in_place(other, &mut body).is_err());
        assert!(matches!(
            s.seal_into(&[0; 1025], false, Instant::now(), &mut Vec::new()),
            Err(MeshError::FrameTooLarge {
                len: 1025,
                max: 1024
            })
        ));
    }
}
