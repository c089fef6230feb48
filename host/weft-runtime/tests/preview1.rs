//! WASI preview1 core modules run as they are: the wasi-testsuite's own
//! prebuilt programs (vendored in `tests/wasi-testsuite/`) for exit codes,
//! output, arguments, environment and directory grants, and small
//! hand-assembled modules for the limits and typed errors, which must be
//! the same as for components.

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use weft_runtime::{
    ComponentKind, DirGrant, Grants, Limits, LoadSource, RunError, Runtime, RuntimeConfig,
};
use weft_testkit::{repo_root, shared_cache_dir};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(shared_cache_dir()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn suite(rel: &str) -> PathBuf {
    repo_root().join("tests/wasi-testsuite").join(rel)
}

fn limits() -> Limits {
    Limits {
        fuel: 50_000_000,
        timeout: Duration::from_secs(5),
        max_memory_bytes: 32 << 20,
        ..Limits::default()
    }
}

/// A section: id, LEB128 length (all ours are short), payload.
fn section(id: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 128);
    let mut s = vec![id, payload.len() as u8];
    s.extend_from_slice(payload);
    s
}

/// A module whose `_start` has `body` (locals byte first), optionally
/// importing `env::foo` and with one page of memory.
fn module(body: &[u8], import_env: bool, memory: bool) -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend(section(1, &[0x01, 0x60, 0x00, 0x00]));
    if import_env {
        m.extend(section(
            2,
            &[0x01, 3, b'e', b'n', b'v', 3, b'f', b'o', b'o', 0x00, 0x00],
        ));
    }
    m.extend(section(3, &[0x01, 0x00]));
    if memory {
        m.extend(section(5, &[0x01, 0x00, 0x01]));
    }
    let start = if import_env { 1 } else { 0 };
    let mut export = vec![0x01, 6];
    export.extend(b"_start");
    export.extend([0x00, start]);
    m.extend(section(7, &export));
    let mut code = vec![0x01, body.len() as u8];
    code.extend_from_slice(body);
    m.extend(section(10, &code));
    m
}

/// `loop br 0 end`: runs until stopped.
const SPIN: &[u8] = &[0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b];

#[tokio::test]
async fn exit_code_is_preserved() {
    let rt = runtime();
    let c = rt
        .load_file(&suite("assemblyscript/proc_exit-failure.wasm"))
        .unwrap();
    assert_eq!(c.kind, ComponentKind::Preview1);
    let out = rt
        .run_command(&c, &limits(), &Grants::default())
        .await
        .unwrap();
    assert_eq!(out.exit_code, 33);
    assert!(out.usage.fuel_used > 0);
}

#[tokio::test]
async fn stdout_args_and_env() {
    let rt = runtime();
    let c = rt
        .load_file(&suite("assemblyscript/fd_write-to-stdout.wasm"))
        .unwrap();
    let out = rt
        .run_command(&c, &limits(), &Grants::default())
        .await
        .unwrap();
    assert_eq!((out.exit_code, &out.stdout[..]), (0, &b"hello"[..5]));

    let c = rt
        .load_file(&suite("assemblyscript/args_get-multiple-arguments.wasm"))
        .unwrap();
    let g = Grants {
        args: ["prog", "first", "the \"second\" arg", "3"]
            .map(String::from)
            .to_vec(),
        ..Grants::default()
    };
    let out = rt.run_command(&c, &limits(), &g).await.unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    // Without the arguments it expects, the same program aborts (AssemblyScript
    // exits with a status preview1 refuses, a trap): the grant is what counts.
    match rt.run_command(&c, &limits(), &Grants::default()).await {
        Ok(out) => assert_ne!(out.exit_code, 0),
        Err(f) => assert!(f.to_string().contains("abort"), "{f}"),
    }

    let c = rt
        .load_file(&suite("assemblyscript/environ_get-multiple-variables.wasm"))
        .unwrap();
    let g = Grants {
        env: [("a", "text"), ("b", "escap \" ing"), ("c", "new\nline")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec(),
        ..Grants::default()
    };
    let out = rt.run_command(&c, &limits(), &g).await.unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn directories_only_when_granted() {
    let rt = runtime();
    let c = rt.load_file(&suite("c/pread-with-access.wasm")).unwrap();
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(
        suite("c/fs-tests.dir/pread.txt"),
        root.path().join("pread.txt"),
    )
    .unwrap();
    let g = Grants {
        dirs: vec![DirGrant {
            host: root.path().to_path_buf(),
            guest: "/".into(),
            read_only: true,
        }],
        ..Grants::default()
    };
    let out = rt.run_command(&c, &limits(), &g).await.unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    // No grant, no file: the program fails on its own terms (an assert).
    match rt.run_command(&c, &limits(), &Grants::default()).await {
        Ok(out) => assert_ne!(out.exit_code, 0),
        Err(f) => assert_eq!(f.kind(), "trap", "{f}"),
    }
}

#[tokio::test]
async fn fuel_and_deadline_stop_a_module() {
    let rt = runtime();
    let c = rt.load(&module(SPIN, false, false)).unwrap();
    let l = Limits {
        fuel: 1_000_000,
        ..limits()
    };
    let f = rt
        .run_command(&c, &l, &Grants::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            f.error,
            RunError::OutOfFuel {
                budget: 1_000_000,
                ..
            }
        ),
        "{f}"
    );
    assert_eq!(f.usage.fuel_used, 1_000_000);

    let l = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(200),
        ..limits()
    };
    let t0 = Instant::now();
    let f = rt
        .run_command(&c, &l, &Grants::default())
        .await
        .unwrap_err();
    assert_eq!(f.kind(), "timeout", "{f}");
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn memory_limit_is_typed() {
    let rt = runtime();
    // memory.grow by 1000 pages (62.5 MiB) against a 32 MiB limit.
    let body = [0x00, 0x41, 0xe8, 0x07, 0x40, 0x00, 0x1a, 0x0b];
    let c = rt.load(&module(&body, false, true)).unwrap();
    let f = rt
        .run_command(&c, &limits(), &Grants::default())
        .await
        .unwrap_err();
    assert!(
        matches!(f.error, RunError::MemoryLimit { what: "memory", .. }),
        "{f}"
    );
}

#[tokio::test]
async fn foreign_imports_and_misuse_are_refused_clearly() {
    let rt = runtime();
    let c = rt.load(&module(SPIN, true, false)).unwrap();
    let f = rt
        .run_command(&c, &limits(), &Grants::default())
        .await
        .unwrap_err();
    assert_eq!(f.kind(), "invalid component");
    assert!(f.to_string().contains("`env::foo`"), "{f}");

    // A preview1 module is not a component: the tool world refuses it by name.
    let c = rt
        .load_file(&suite("assemblyscript/proc_exit-failure.wasm"))
        .unwrap();
    let e = rt.describe_tool(&c, &limits()).await.unwrap_err();
    assert!(e.to_string().contains("preview1 core module"), "{e}");

    // A module without `_start` is not a program.
    let mut no_start = b"\0asm\x01\0\0\0".to_vec();
    no_start.extend(section(1, &[0x01, 0x60, 0x00, 0x00]));
    let c = rt.load(&no_start).unwrap();
    assert_eq!(c.kind, ComponentKind::Other);
}

#[tokio::test]
async fn a_module_as_a_tool_reads_stdin_and_answers_on_stdout() {
    let rt = runtime();
    // proc_exit(33): a tool error naming the code.
    let c = rt
        .load_file(&suite("assemblyscript/proc_exit-failure.wasm"))
        .unwrap();
    let out = rt
        .invoke(&c, "{}", &limits(), &Grants::default())
        .await
        .unwrap();
    let e = out.result.unwrap_err().to_string();
    assert!(e.contains("exited with code 33"), "{e}");
    // Writes "hello": not JSON, so a JSON string.
    let c = rt
        .load_file(&suite("assemblyscript/fd_write-to-stdout.wasm"))
        .unwrap();
    let out = rt
        .invoke(&c, "{}", &limits(), &Grants::default())
        .await
        .unwrap();
    assert!(out.result.unwrap().as_str().unwrap().starts_with("hello"));
}

#[tokio::test]
async fn compiled_modules_come_back_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let bytes = module(&[0x00, 0x0b], false, false);
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.clone()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(rt.load(&bytes).unwrap().source, LoadSource::Compiled);
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let c = rt.load(&bytes).unwrap();
    assert_eq!(c.source, LoadSource::DiskCache);
    let out = rt
        .run_command(&c, &limits(), &Grants::default())
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
}
