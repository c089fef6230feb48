//! `weaver app check DIR|FILE`: everything an install would find wrong with
//! a bundle, with no kernel and without packing it. The manifest goes
//! through the `apps` checker (`file:line:col` errors); then every
//! component it names must be in the bundle and be of the right kind (read
//! from its exports, without compiling it); then the lock and signature,
//! when present, must match.

use std::path::{Path, PathBuf};

use crate::bundle::{open_bundle, Bundle};
use crate::checker::types::{InstallPlan, ServiceSource};
use crate::checker::{AppsChecker, CheckError};
use crate::lock::{digest_hex, LOCK_FILE, MANIFEST_FILE};
use crate::pack::plan_components;

/// What a component must be, by where the manifest uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// `[[agents]]` and component `[[services]]`: the `agent` world.
    Agent,
    /// `[[tools]]` and `[hooks]`: the tool world or a WASI program.
    Tool,
    /// A `[[routes]]` `component`: exports `wasi:http/incoming-handler`.
    Handler,
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// The manifest's path, for messages.
    pub file: String,
    /// `file:line:col: message` lines; empty when the bundle is fine.
    pub errors: Vec<String>,
    /// Things worth knowing that do not stop an install (a stale lock).
    pub notes: Vec<String>,
    /// `name version` once the manifest parsed.
    pub app: Option<String>,
    /// How many components were checked.
    pub components: usize,
}

/// The bundle `path` names: a directory, a `.weftapp` archive, or the
/// `weftapp.toml` inside a directory.
fn bundle_path(path: &Path) -> PathBuf {
    if path.file_name().is_some_and(|n| n == MANIFEST_FILE) {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    } else {
        path.to_path_buf()
    }
}

/// Check the bundle at `path` with `checker` (no kernel policy).
pub async fn check(checker: &AppsChecker, path: &Path) -> CheckReport {
    let dir = bundle_path(path);
    let mut r = CheckReport {
        file: if dir.is_dir() {
            dir.join(MANIFEST_FILE).display().to_string()
        } else {
            format!("{}:{MANIFEST_FILE}", dir.display())
        },
        ..CheckReport::default()
    };
    let bundle = match open_bundle(&dir) {
        Ok(b) => b,
        Err(e) => {
            r.errors.push(e.to_string());
            return r;
        }
    };
    let text = match bundle.manifest_text() {
        Ok(t) => t.to_string(),
        Err(e) => {
            r.errors.push(e.to_string());
            return r;
        }
    };
    let plan = match checker.check(&text, &r.file).await {
        Ok(p) => p,
        Err(CheckError::Invalid { file, diagnostics }) => {
            r.errors
                .extend(diagnostics.iter().map(|d| crate::render_one(&file, d)));
            return r;
        }
        Err(e) => {
            r.errors.push(e.to_string());
            return r;
        }
    };
    r.app = Some(format!(
        "{} {}",
        plan.manifest.app.name, plan.manifest.app.version
    ));
    for (component, role) in roles(&plan) {
        r.components += 1;
        let at = locate(&r.file, &text, &component);
        let bytes = match bundle.read(&component) {
            Ok(b) => b,
            Err(e) => {
                r.errors.push(format!("{at}: {e}"));
                continue;
            }
        };
        if let Err(why) = fits(&bytes, role) {
            r.errors.push(format!("{at}: `{component}` {why}"));
        }
    }
    lock_and_signature(&bundle, &plan, &mut r);
    r
}

/// Each component path with the role it plays (first use wins).
fn roles(plan: &InstallPlan) -> Vec<(String, Role)> {
    let m = &plan.manifest;
    let mut v: Vec<(String, Role)> = Vec::new();
    let mut add = |c: &str, role| {
        if !v.iter().any(|(p, _)| p == c) {
            v.push((c.to_string(), role));
        }
    };
    for a in &m.agents {
        add(&a.component, Role::Agent);
    }
    for s in &m.services {
        if let ServiceSource::Component(c) = &s.source {
            add(c, Role::Agent);
        }
    }
    for t in &m.tools {
        add(&t.component, Role::Tool);
    }
    for r in &m.routes {
        if let Some(c) = &r.component {
            add(c, Role::Handler);
        }
    }
    let h = &m.hooks;
    for c in [&h.on_install, &h.on_start, &h.on_stop, &h.on_remove]
        .into_iter()
        .flatten()
    {
        add(c, Role::Tool);
    }
    v
}

/// `file:line:col` of the first quoted mention of `component` in the
/// manifest (the key that names it), else the file alone.
fn locate(file: &str, text: &str, component: &str) -> String {
    for quoted in [format!("\"{component}\""), format!("'{component}'")] {
        if let Some(at) = text.find(&quoted) {
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            return format!("{file}:{line}:{col}");
        }
    }
    file.to_string()
}

/// What a wasm binary exports at its top level, and whether it is a
/// component; read without compiling.
fn exports(bytes: &[u8]) -> Result<(bool, Vec<String>), String> {
    use wasmparser::{Encoding, Parser, Payload};
    let mut depth = 0usize;
    let mut component = false;
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("is not valid WebAssembly: {e}"))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 {
                    component = encoding == Encoding::Component;
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(s) if depth == 1 => {
                for e in s {
                    let e = e.map_err(|e| format!("has a bad export section: {e}"))?;
                    names.push(e.name.name.to_string());
                }
            }
            Payload::ExportSection(s) if depth == 1 => {
                for e in s {
                    let e = e.map_err(|e| format!("has a bad export section: {e}"))?;
                    names.push(e.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok((component, names))
}

/// Can a component with these bytes play `role`?
fn fits(bytes: &[u8], role: Role) -> Result<(), String> {
    let (component, names) = exports(bytes)?;
    let has = |n: &str| names.iter().any(|e| e == n);
    let list = || {
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        }
    };
    match role {
        Role::Agent if component && has("init") && has("handle") => Ok(()),
        Role::Agent if !component => Err(
            "is a core wasm module; an agent must be a component of the `agent` world \
             (build for wasm32-wasip2)"
                .into(),
        ),
        Role::Agent => Err(format!(
            "is not an agent: the `agent` world exports `init` and `handle`, this exports {}",
            list()
        )),
        Role::Tool if component && has("describe") && has("invoke") => Ok(()),
        Role::Tool if component && names.iter().any(|e| e.starts_with("wasi:cli/run@0.2")) => {
            Ok(())
        }
        Role::Tool if !component && has("_start") => Ok(()),
        Role::Tool if !component => Err(format!(
            "is a core module without `_start`: a tool or hook must be a tool-world component, \
             a WASI command or a WASI preview1 program; it exports {}",
            list()
        )),
        Role::Tool => Err(format!(
            "is neither a tool (exports `describe` and `invoke`) nor a WASI command (exports \
             `wasi:cli/run`); it exports {}",
            list()
        )),
        Role::Handler
            if component
                && names
                    .iter()
                    .any(|e| e.starts_with("wasi:http/incoming-handler@0.2")) =>
        {
            Ok(())
        }
        Role::Handler => Err(format!(
            "is not a route handler: it must be a component exporting \
             `wasi:http/incoming-handler@0.2.x`; it exports {}",
            list()
        )),
    }
}

/// A lock or signature that is present must match; absent ones are notes.
fn lock_and_signature(bundle: &Bundle, plan: &InstallPlan, r: &mut CheckReport) {
    let lock_at = format!("{}/{LOCK_FILE}", bundle.name());
    let Some(lock) = bundle.lock() else {
        r.notes.push(format!(
            "no {LOCK_FILE} yet: `weaver app pack {}` writes it (and signs with --key)",
            bundle.name()
        ));
        return;
    };
    let repack = format!("re-run `weaver app pack {}`", bundle.name());
    if digest_hex(bundle.manifest_bytes()) != lock.manifest {
        r.errors.push(format!(
            "{lock_at}: stale: {MANIFEST_FILE} changed since it was packed; {repack}"
        ));
    }
    for path in plan_components(plan) {
        match (lock.components.get(&path), bundle.read(&path)) {
            (None, _) => r
                .errors
                .push(format!("{lock_at}: stale: `{path}` is not in it; {repack}")),
            (Some(want), Ok(bytes)) if &digest_hex(&bytes) != want => r.errors.push(format!(
                "{lock_at}: stale: `{path}` changed since it was packed; {repack}"
            )),
            _ => {}
        }
    }
    match bundle.signature() {
        None => r.notes.push(
            "unsigned: installs only into a dev kernel (sign with `weaver app pack DIR --key \
             FILE`; make a key with `weaver key new`)"
                .into(),
        ),
        Some(sig) => match sig.key() {
            Err(why) => r
                .errors
                .push(format!("{}/weftapp.sig: {why}", bundle.name())),
            Ok(key) if !sig.verifies(lock, &key) => r.errors.push(format!(
                "{}/weftapp.sig: the signature does not match {LOCK_FILE}; {repack} --key FILE",
                bundle.name()
            )),
            Ok(key) => r.notes.push(format!(
                "signed by {} (a kernel installs it once that key is trusted: `weaver trust add \
                 NAME {}`)",
                hex::encode(key.to_bytes()),
                hex::encode(key.to_bytes())
            )),
        },
    }
}

/// `weaver app check PATH [--json]`: exit 0 when an install would accept
/// it (notes may follow), 1 with one line per problem.
pub(crate) async fn run_cli(path: &Path, json_out: bool) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context;
    let rt = weft_runtime::Runtime::new(weft_runtime::RuntimeConfig {
        cache_dir: weft_kernel::control::cli::cache_dir(),
        ..Default::default()
    })
    .context("starting the runtime")?;
    let checker = crate::control::offline_checker(&rt)?;
    let r = check(&checker, path).await;
    let ok = r.errors.is_empty();
    if json_out {
        println!(
            "{}",
            serde_json::json!({ "ok": ok, "file": r.file, "app": r.app, "components": r.components,
                                "errors": r.errors, "notes": r.notes })
        );
    } else {
        for e in &r.errors {
            eprintln!("{e}");
        }
        if ok {
            println!(
                "ok: {} ({}, {} components)",
                r.file,
                r.app.as_deref().unwrap_or("?"),
                r.components
            );
            for n in &r.notes {
                println!("note: {n}");
            }
        } else {
            eprintln!(
                "weaver: {}: {} problem{}",
                r.file,
                r.errors.len(),
                if r.errors.len() == 1 { "" } else { "s" }
            );
        }
    }
    Ok(std::process::ExitCode::from(if ok {
        0
    } else {
        weft_kernel::control::protocol::exit::FAILED
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_points_at_the_quoted_path() {
        let text = "[app]\nname = \"x\"\n\n[[tools]]\ncomponent = \"c/t.wasm\"\n";
        assert_eq!(locate("m.toml", text, "c/t.wasm"), "m.toml:5:13");
        assert_eq!(locate("m.toml", text, "nope.wasm"), "m.toml");
    }

    #[test]
    fn kinds_from_exports() {
        // A core module exporting `_start`: fine as a tool, not as an agent.
        let module = wat_module();
        assert!(fits(&module, Role::Tool).is_ok());
        let e = fits(&module, Role::Agent).unwrap_err();
        assert!(e.contains("core wasm module"), "{e}");
        assert!(fits(b"not wasm", Role::Tool)
            .unwrap_err()
            .contains("not valid WebAssembly"));
    }

    /// `(module (func (export "_start")))`, hand-assembled.
    fn wat_module() -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend([0x01, 0x04, 0x01, 0x60, 0x00, 0x00]); // type: () -> ()
        m.extend([0x03, 0x02, 0x01, 0x00]); // func 0: type 0
        m.extend([0x07, 0x0a, 0x01, 0x06]); // export section, 1 export, name len 6
        m.extend(b"_start");
        m.extend([0x00, 0x00]); // func 0
        m.extend([0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b]); // code: empty body
        m
    }
}
