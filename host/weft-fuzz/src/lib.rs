//! Fuzz harnesses for the places Weft reads what it did not write.
//!
//! Each target is a plain function `fn(&[u8])` that returns on every input
//! and panics only when it finds a bug: a crash, a hang turned into a
//! timeout, or a broken invariant (stated next to each assertion). Two
//! drivers run them:
//!
//! * `fuzz/` (its own cargo workspace, nightly, `cargo fuzz`): one
//!   libFuzzer binary per target, `just fuzz [SECONDS]`;
//! * `tests/corpus.rs` (stable, part of `just test`): every committed input
//!   under `fuzz/corpus/<target>/` through its target, so a crash once found
//!   stays fixed without a fuzzer installed.
//!
//! | target | what it feeds |
//! |---|---|
//! | `manifest` | `weftapp.toml` text to the real `apps` checker component |
//! | `bundle` | `.weftapp` archive bytes to the bundle reader, then [`weft_apps::verify`] |
//! | `chain_log` | a `chain.log` (raw or built from a recipe) to the scanner, then open, append, reopen |
//! | `chain_event` | one encoded event, checkpoint or segment header to its decoder |
//! | `control` | request lines to a running kernel's control socket |
//! | `receipt` | gate records, receipts and signatures to the receipt verifier |
//! | `wit_boundary` | a program for the `hostile` agent: syscalls with arbitrary arguments |

pub mod bundle;
pub mod chain;
pub mod control;
pub mod manifest;
pub mod program;
pub mod receipt;
mod support;
pub mod wit_boundary;

use std::path::PathBuf;

/// A fuzz target: returns on every input, panics on a bug.
pub type Target = fn(&[u8]);

/// Every target by name: its libFuzzer binary in `fuzz/` and its corpus
/// folder `fuzz/corpus/<name>/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest::fuzz),
    ("bundle", bundle::fuzz),
    ("chain_log", chain::fuzz_log),
    ("chain_event", chain::fuzz_event),
    ("control", control::fuzz),
    ("receipt", receipt::fuzz),
    ("wit_boundary", wit_boundary::fuzz),
];

/// `fuzz/corpus/` in this repository.
pub fn corpus_dir() -> PathBuf {
    weft_testkit::repo_root().join("fuzz/corpus")
}
