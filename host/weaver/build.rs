//! Embeds the subsystem components (governance, cron, health, apps) and
//! the WIT contract (`wit/*.wit`, for `weaver wit`) in the `weaver`
//! binary, so it needs nothing from the source tree at run time.
//!
//! They are the guests `just components` builds: `$WEFT_GUESTS_DIR` if set,
//! else `components/target/wasm32-wasip2/release` in this repository. A
//! missing one stops the build with the command that makes it.

use std::path::{Path, PathBuf};

const EMBEDDED: &[&str] = &["governance.wasm", "cron.wasm", "health.wasm", "apps.wasm"];

fn main() {
    println!("cargo:rerun-if-env-changed=WEFT_GUESTS_DIR");
    let dir = match std::env::var_os("WEFT_GUESTS_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../components/target/wasm32-wasip2/release"),
    };
    let mut missing = Vec::new();
    let mut entries = String::new();
    for file in EMBEDDED {
        let path = dir.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        match std::fs::canonicalize(&path) {
            Ok(abs) if abs.is_file() => entries.push_str(&format!(
                "    ({file:?}, include_bytes!({:?})),\n",
                abs.display().to_string()
            )),
            _ => missing.push(path),
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "\nerror: weaver embeds the subsystem components, and these are not built:\n  {}\n\n\
             Build them first (from the repository root):\n  just components\n\
             or: cd components && cargo build --target wasm32-wasip2 --release\n\
             (or point WEFT_GUESTS_DIR at a directory holding {}).\n",
            list.join("\n  "),
            EMBEDDED.join(", ")
        );
        std::process::exit(1);
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let code = format!(
        "/// The subsystem components built into this binary.\n\
         pub static EMBEDDED: weft_kernel::components::Embedded = &[\n{entries}];\n"
    );
    std::fs::write(out.join("embedded.rs"), code).expect("writing embedded.rs to OUT_DIR");
    embed_wit(&out);
}

/// `wit/*.wit`, sorted, as `WIT: &[(name, text)]`.
fn embed_wit(out: &Path) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a wit dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wit"))
        .collect();
    files.sort();
    let mut entries = String::new();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let abs = std::fs::canonicalize(f).expect("a wit file");
        let name = f.file_name().expect("a file name").to_string_lossy();
        entries.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    let code = format!(
        "/// The WIT package `weft:kernel`, file by file.\n\
         pub static WIT: &[(&str, &str)] = &[\n{entries}];\n"
    );
    std::fs::write(out.join("wit.rs"), code).expect("writing wit.rs to OUT_DIR");
}
