//! SHAKE-256 (32-byte output) for the chain's hashes.
//!
//! The `sha3` crate's portable Keccak costs ~1400 cycles per permutation on
//! the machines we target, which alone caps appends below 1M/s. On x86-64
//! with AVX-512VL or AVX2 we use a generated 4-lane Keccak (one state per
//! 64-bit lane of a ymm register): fewer cycles for a single hash and four
//! hashes for the price of one when verifying. Results are cross-checked
//! against `sha3` in the tests; other CPUs use `sha3` directly.

use sha3::digest::{ExtendableOutput, Update};
use sha3::Shake256;

/// SHAKE-256 rate in bytes.
const RATE: usize = 136;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

fn detect() -> Backend {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var_os("WEFT_CHAIN_PORTABLE_KECCAK").is_some() {
            return Backend::Portable;
        }
        // Unoptimized builds do not inline the intrinsics, which makes the
        // SIMD path ~20x slower than `sha3` (built at opt-level 1 as a
        // dependency). The cross-check test still runs every backend.
        if cfg!(debug_assertions) && std::env::var_os("WEFT_CHAIN_SIMD_KECCAK").is_none() {
            return Backend::Portable;
        }
        // The AVX-512 path also runs AVX2 code: check every feature it
        // enables rather than rely on one implying another.
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
        {
            return Backend::Avx512;
        }
        if is_x86_feature_detected!("avx2") {
            return Backend::Avx2;
        }
    }
    Backend::Portable
}

pub(crate) fn backend() -> Backend {
    static B: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
    *B.get_or_init(detect)
}

/// Name of the Keccak implementation in use (for benchmarks and status).
pub fn keccak_backend() -> &'static str {
    match backend() {
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => "avx512vl-x4",
        #[cfg(target_arch = "x86_64")]
        Backend::Avx2 => "avx2-x4",
        Backend::Portable => "portable (sha3 crate)",
    }
}

fn portable(data: &[u8]) -> [u8; 32] {
    let mut h = Shake256::default();
    h.update(data);
    let mut out = [0u8; 32];
    h.finalize_xof_into(&mut out);
    out
}

/// SHAKE-256 with a 256-bit output.
pub fn shake256(data: &[u8]) -> [u8; 32] {
    match backend() {
        Backend::Portable => portable(data),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `backend()` comes from runtime feature detection.
        b => unsafe { shake256_x4_with(b, [data, &[], &[], &[]])[0] },
    }
}

/// Four independent SHAKE-256 hashes at once.
pub fn shake256_x4(inputs: [&[u8]; 4]) -> [[u8; 32]; 4] {
    // SAFETY: `backend()` comes from runtime feature detection.
    unsafe { shake256_x4_with(backend(), inputs) }
}

/// # Safety
/// The CPU must support every feature of `b` (`detect` checks them; tests
/// check them themselves).
pub(crate) unsafe fn shake256_x4_with(b: Backend, inputs: [&[u8]; 4]) -> [[u8; 32]; 4] {
    match b {
        Backend::Portable => inputs.map(portable),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller vouches for the features of `b`.
        _ => unsafe { simd::shake256_x4(b, inputs) },
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{Backend, RATE};
    use crate::keccak_x4::{f1600_x4_avx2, f1600_x4_avx512};
    use std::arch::x86_64::*;

    /// Copies block `b` of `msg` (with SHAKE padding if it is the last block)
    /// into `out`; returns false if `msg` has no block `b`.
    fn block(msg: &[u8], b: usize, out: &mut [u8; RATE]) -> bool {
        let blocks = msg.len() / RATE + 1;
        if b >= blocks {
            return false;
        }
        let start = b * RATE;
        let end = (start + RATE).min(msg.len());
        let n = end - start;
        out[..n].copy_from_slice(&msg[start..end]);
        out[n..].fill(0);
        if b == blocks - 1 {
            out[n] ^= 0x1f;
            out[RATE - 1] ^= 0x80;
        }
        true
    }

    /// # Safety
    /// `b` must be a SIMD backend whose every feature the CPU supports
    /// (AVX2 for both; AVX-512F and AVX-512VL too for `Avx512`).
    #[deny(unsafe_op_in_unsafe_fn)]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn shake256_x4(b: Backend, inputs: [&[u8]; 4]) -> [[u8; 32]; 4] {
        let mut s = [_mm256_setzero_si256(); 25];
        let mut out = [[0u8; 32]; 4];
        let mut bufs = [[0u8; RATE]; 4];
        let max_blocks = inputs.iter().map(|m| m.len() / RATE + 1).max().unwrap_or(1);
        for blk in 0..max_blocks {
            let mut has = [false; 4];
            for l in 0..4 {
                has[l] = block(inputs[l], blk, &mut bufs[l]);
                if !has[l] {
                    bufs[l] = [0u8; RATE];
                }
            }
            for (i, lane) in s.iter_mut().enumerate().take(RATE / 8) {
                let w = |l: usize| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&bufs[l][i * 8..i * 8 + 8]);
                    i64::from_le_bytes(a)
                };
                *lane = _mm256_xor_si256(*lane, _mm256_set_epi64x(w(3), w(2), w(1), w(0)));
            }
            match b {
                // SAFETY: the caller guarantees AVX-512F/VL for `Avx512`.
                Backend::Avx512 => unsafe { f1600_x4_avx512(&mut s) },
                // SAFETY: AVX2 is enabled on this function.
                _ => unsafe { f1600_x4_avx2(&mut s) },
            }
            for l in 0..4 {
                if has[l] && blk == inputs[l].len() / RATE {
                    for (i, lane) in s.iter().enumerate().take(4) {
                        let mut words = [0u64; 4];
                        // SAFETY: an unaligned 32-byte store into a
                        // 32-byte local array.
                        unsafe { _mm256_storeu_si256(words.as_mut_ptr().cast(), *lane) };
                        out[l][i * 8..i * 8 + 8].copy_from_slice(&words[l].to_le_bytes());
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends() -> Vec<Backend> {
        #[allow(unused_mut)]
        let mut v = vec![Backend::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") {
                v.push(Backend::Avx2);
            }
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vl")
            {
                v.push(Backend::Avx512);
            }
        }
        // A CPU without AVX-512 (or AVX2) skips those backends: say so.
        eprintln!("keccak backends under test: {v:?}");
        v
    }

    /// `shake256_x4_with` for a backend `backends()` returned.
    fn x4(b: Backend, inputs: [&[u8]; 4]) -> [[u8; 32]; 4] {
        // SAFETY: `backends()` only lists backends whose features it checked.
        unsafe { shake256_x4_with(b, inputs) }
    }

    #[test]
    fn simd_matches_sha3_for_all_lengths() {
        let data: Vec<u8> = (0..700u32).map(|i| (i * 131 + 7) as u8).collect();
        for b in backends() {
            for len in 0..700 {
                // Four different lengths per call, including block edges,
                // rotated so every lane sees every kind (empty, one block,
                // block edges, up to six blocks).
                let mut lens = [len, (len * 7 + 3) % 700, 135, 136 + len % 3];
                lens.rotate_left(len % 4);
                let inputs = lens.map(|l| &data[..l]);
                let got = x4(b, inputs);
                for l in 0..4 {
                    assert_eq!(got[l], portable(inputs[l]), "{b:?} len {}", lens[l]);
                }
            }
        }
    }

    proptest::proptest! {
        /// Four unrelated random inputs, up to ~15 blocks each.
        #[test]
        fn random_inputs_match_sha3(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            c in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            d in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
        ) {
            let inputs: [&[u8]; 4] = [&a, &b, &c, &d];
            for be in backends() {
                let got = x4(be, inputs);
                for l in 0..4 {
                    proptest::prop_assert_eq!(got[l], portable(inputs[l]));
                }
            }
        }
    }

    #[test]
    fn known_answer() {
        let empty = "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f";
        let abc = "483366601360a8771c6863080cc4114d8db44530f8f1e1ee4f94ea37e78b5739";
        assert_eq!(hex::encode(shake256(b"")), empty);
        assert_eq!(hex::encode(shake256(b"abc")), abc);
        // Every backend, in every lane (not only the one `shake256` picks).
        for b in backends() {
            for lane in 0..4 {
                let mut inputs: [&[u8]; 4] = [b"x"; 4];
                inputs[lane] = b"abc";
                assert_eq!(hex::encode(x4(b, inputs)[lane]), abc, "{b:?} lane {lane}");
                inputs[lane] = b"";
                assert_eq!(hex::encode(x4(b, inputs)[lane]), empty, "{b:?} lane {lane}");
            }
        }
    }
}
