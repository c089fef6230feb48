#![allow(clippy::unwrap_used)]
//! Every committed fuzz input through its target, on stable: the seeds,
//! what the fuzzers kept (`cargo fuzz cmin`), and the input of every crash
//! found and fixed (`regress-*`). Runs in `just test` whether or not a
//! fuzzer is installed.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = weft_fuzz::corpus_dir().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

fn replay(target: &str) {
    let f = weft_fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no target {target}"));
    for path in inputs(target) {
        let data = std::fs::read(&path).unwrap();
        let run = std::panic::catch_unwind(|| f(&data));
        if let Err(e) = run {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {} fails: {why}", path.display());
        }
    }
}

macro_rules! corpus_tests {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            replay(stringify!($name));
        }
    )*};
}

corpus_tests!(
    manifest,
    bundle,
    chain_log,
    chain_event,
    control,
    receipt,
    wit_boundary,
);

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<&str> = weft_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "manifest",
            "bundle",
            "chain_log",
            "chain_event",
            "control",
            "receipt",
            "wit_boundary"
        ]
    );
}
