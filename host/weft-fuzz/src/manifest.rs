//! `manifest`: `weftapp.toml` text through the real `apps` checker
//! component, exactly as an install runs it ([`weft_apps::AppsChecker`]).
//!
//! The checker must answer every manifest with a plan or with positioned
//! diagnostics; a trap, running out of fuel or time is a bug. The
//! cargo-fuzz target also runs the same checking code natively
//! (`apps::check::check`, which libFuzzer can see into) and requires both
//! answers to agree.

use std::sync::OnceLock;

use weft_apps::types::{Diagnostic, InstallPlan};
use weft_apps::{AppsChecker, CheckError};
use weft_runtime::{Runtime, RuntimeConfig};

use crate::support::block_on;

/// The file name the checker is told, as in `weaver app install`.
pub const FILE: &str = "weftapp.toml";

pub(crate) fn checker() -> &'static AppsChecker {
    static C: OnceLock<AppsChecker> = OnceLock::new();
    C.get_or_init(|| {
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: Some(weft_testkit::shared_cache_dir()),
            ..RuntimeConfig::default()
        })
        .expect("a runtime");
        AppsChecker::from_file(&rt, &weft_testkit::guest("apps")).expect("the apps component")
    })
}

/// The component's answer for `text`: a plan, or diagnostics that were
/// checked for sanity. Panics if the checker fails to answer.
pub fn check(text: &str) -> Result<InstallPlan, Vec<Diagnostic>> {
    match block_on(checker().check(text, FILE)) {
        Ok(plan) => Ok(plan),
        Err(CheckError::Invalid { diagnostics, .. }) => {
            sane(text, &diagnostics);
            Err(diagnostics)
        }
        Err(e) => panic!("the manifest checker did not answer: {e}"),
    }
}

/// Every rejection says something, at a place inside the text.
fn sane(text: &str, diagnostics: &[Diagnostic]) {
    assert!(!diagnostics.is_empty(), "rejected without a diagnostic");
    let lines = text.split('\n').count() as u32;
    for d in diagnostics {
        assert!(
            d.line >= 1 && d.line <= lines && d.col >= 1,
            "diagnostic outside the text ({lines} lines): {d:?}"
        );
        assert!(!d.message.trim().is_empty(), "empty message: {d:?}");
    }
}

/// The target: UTF-8 input is a manifest (the bundle reader refuses
/// anything else before the checker sees it).
pub fn fuzz(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _answer = check(text);
    }
}
