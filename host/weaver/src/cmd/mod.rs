//! One module per `weaver` subcommand group.

pub mod app;
pub mod chain;
pub mod ctl;
pub mod run;
pub mod tool;
pub mod trust;

use std::path::PathBuf;

/// Where compiled components are cached between runs: `$WEFT_CACHE_DIR`, or
/// the user's cache dir.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WEFT_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    dirs::cache_dir().map(|d| d.join("weft").join("components"))
}
