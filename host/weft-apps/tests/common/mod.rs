//! Shared by the integration tests: the real `apps` component.

#![allow(dead_code)]

pub mod apps;

use weft_apps::AppsChecker;
use weft_runtime::{Runtime, RuntimeConfig};

pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(weft_testkit::shared_cache_dir()),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

pub fn checker() -> AppsChecker {
    AppsChecker::from_file(&runtime(), &weft_testkit::guest("apps")).expect("load apps.wasm")
}

/// The first lines of most test manifests.
pub const APP: &str = "[app]\nname = \"hello\"\nversion = \"1.0.0\"\n";

/// `APP` plus one minimal agent (lines 4 to 6).
pub fn with_agent(extra: &str) -> String {
    format!("{APP}[[agents]]\nid = \"a\"\ncomponent = \"a.wasm\"\n{extra}\n")
}
