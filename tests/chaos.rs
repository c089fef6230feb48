//! Chaos: `kill -9` the kernel at random points of the app lifecycle
//! (install, start, upgrade, upgrade that rolls back, stop, remove), 100
//! times, booting it again after each kill. After every boot:
//!
//! * `weaver chain verify` passes (links, signatures, gate receipts);
//! * the app registry agrees with the chain (what the last committed
//!   `app.*` record says is installed, at which version);
//! * no half-installed directory: `<state>/apps` holds the registry and
//!   the installed version's directory, nothing else;
//! * no orphan process (see [`orphans`]), and the app's agents run exactly
//!   when it is Running;
//! * every command that reported success is still in effect; one cut off
//!   by the kill either happened entirely or not at all.
//!
//! The schedule is seeded: `WEFT_CHAOS_SEED` (printed on failure) replays
//! a run, `WEFT_CHAOS_RUNS` changes the count (8 by default, the CI budget;
//! `just chaos` runs 100).

// Test code: helpers unwrap too (clippy.toml allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_e2e::{guest, shared_cache_dir, start_kernel, weaver, weaver_at as w, weaver_bin};

/// splitmix64: a seeded schedule without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the registry should say about `hello`: `None` when not installed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct App {
    version: &'static str,
    state: &'static str,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Install(&'static str),
    Start,
    Stop,
    Upgrade(&'static str),
    Remove,
}

const GOOD: [&str; 2] = ["0.1.0", "0.2.0"];
/// Its agent fails `init`: upgrading to it rolls back.
const BROKEN: &str = "0.3.0";

/// The state after `op` succeeds.
fn effect(before: &Option<App>, op: Op) -> Option<App> {
    let b = before.clone();
    match op {
        Op::Install(v) => Some(App {
            version: v,
            state: "Installed",
        }),
        Op::Start => b.map(|a| App {
            state: "Running",
            ..a
        }),
        Op::Stop => b.map(|a| App {
            state: "Stopped",
            ..a
        }),
        // A running app is stopped, the new version started (or, when it
        // does not start, the old one again); one not running is replaced.
        Op::Upgrade(BROKEN) if b.as_ref().is_some_and(|a| a.state == "Running") => b,
        Op::Upgrade(v) => b.map(|a| App {
            version: v,
            state: if a.state == "Running" {
                "Running"
            } else {
                "Installed"
            },
        }),
        Op::Remove => None,
    }
}

/// The state after `op` fails cleanly, when it is expected to: an upgrade
/// of a running app to [`BROKEN`] (rolled back), a start of [`BROKEN`].
fn refusal(before: &Option<App>, op: Op) -> Option<Option<App>> {
    let a = before.clone()?;
    match op {
        Op::Upgrade(BROKEN) if a.state == "Running" => Some(Some(a)),
        Op::Start if a.version == BROKEN => Some(Some(App {
            state: "Failed",
            ..a
        })),
        _ => None,
    }
}

fn args(op: Op, bundles: &Path) -> Vec<String> {
    let bundle = |v: &str| {
        bundles
            .join(format!("hello-{v}.weftapp"))
            .display()
            .to_string()
    };
    match op {
        Op::Install(v) => vec!["app".into(), "install".into(), bundle(v)],
        Op::Start => vec!["app".into(), "start".into(), "hello".into()],
        Op::Stop => vec!["app".into(), "stop".into(), "hello".into()],
        Op::Upgrade(v) => vec!["app".into(), "upgrade".into(), "hello".into(), bundle(v)],
        Op::Remove => vec!["app".into(), "rm".into(), "hello".into()],
    }
}

fn pick(rng: &mut Rng, app: &Option<App>) -> Op {
    let Some(a) = app else {
        return Op::Install(GOOD[rng.below(2) as usize]);
    };
    let other = if a.version == GOOD[0] {
        GOOD[1]
    } else {
        GOOD[0]
    };
    let first = if a.state == "Running" {
        Op::Stop
    } else {
        Op::Start
    };
    match rng.below(10) {
        0..=3 => first,
        4..=5 => Op::Upgrade(other),
        6..=7 if a.version != BROKEN => Op::Upgrade(BROKEN),
        6..=7 => Op::Upgrade(other),
        _ => Op::Remove,
    }
}

/// A copy of `apps/hello` at `version` with its components.
fn hello(dir: &Path, version: &str) -> PathBuf {
    let app = dir.join(format!("hello-{version}"));
    std::fs::create_dir_all(app.join("components")).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/hello/weftapp.toml");
    let config = if version == BROKEN {
        "{ fail_init = true }"
    } else {
        "{}"
    };
    let text = std::fs::read_to_string(example)
        .unwrap()
        .replace("version = \"0.1.0\"", &format!("version = \"{version}\""))
        .replace(
            "config = { greeting = \"hello\" }",
            &format!("config = {config}"),
        );
    std::fs::write(app.join("weftapp.toml"), text).unwrap();
    for g in ["probe", "calc"] {
        std::fs::copy(guest(g), app.join(format!("components/{g}.wasm"))).unwrap();
    }
    app
}

/// Signed bundles of every version in `dir`; returns the signer's public key.
fn bundles(dir: &Path) -> String {
    let key = dir.join("signer.hex");
    std::fs::write(&key, format!("{:064x}", 42)).unwrap();
    let mut public = String::new();
    for v in GOOD.iter().chain([&BROKEN]) {
        let app = hello(dir, v);
        let out = dir.join(format!("hello-{v}.weftapp"));
        let r = weaver(
            &[
                "app",
                "pack",
                app.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        public = r.stdout.split("signed by ").nth(1).unwrap()[..64].to_string();
    }
    public
}

/// Processes left behind by a killed kernel: anything but `kernel` (the
/// one running now) whose command line names the state dir. Agents and
/// tools run inside the kernel, so today there should be none; hooks and
/// container services are where orphans would come from.
///
/// Containers: once container services are part of the app lifecycle, list
/// the containers labelled with this state dir here as well (the labels of
/// `weft-containers`) and require each to belong to an app that is Running.
fn orphans(state: &Path, kernel: u32) -> Vec<String> {
    let needle = state.display().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == kernel || pid == std::process::id() {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) {
            found.push(format!("{pid}: {cmd}"));
        }
    }
    found
}

/// What the chain says about `hello`: the version installed by the last
/// committed record, or `None` once removed.
fn chain_view(state: &Path) -> Option<String> {
    let export = w(state, &["chain", "export"]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    let mut version = None;
    for line in export.stdout.lines() {
        let ev: Value = serde_json::from_str(line).unwrap();
        let p = &ev["payload"];
        if p["name"] != "hello" {
            continue;
        }
        match ev["kind"].as_str().unwrap_or_default() {
            "app.install" | "app.upgrade" => version = p["version"].as_str().map(String::from),
            "app.remove" => version = None,
            _ => {}
        }
    }
    version
}

/// Everything the header promises, for the kernel just booted on `state`.
/// Returns what the registry says.
fn check(state: &Path, kernel: u32) -> Option<App> {
    let v = w(state, &["chain", "verify"]);
    assert_eq!(v.code, 0, "chain verify failed: {}{}", v.stdout, v.stderr);
    let apps = w(state, &["app", "ls", "--json"]);
    assert_eq!(apps.code, 0, "{}", apps.stderr);
    let apps = apps.json();
    let registry = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "hello");
    let found = registry.map(|a| {
        let version = a["version"].as_str().unwrap();
        let state = a["state"].as_str().unwrap();
        App {
            version: GOOD
                .iter()
                .chain([&BROKEN])
                .find(|v| **v == version)
                .unwrap(),
            state: ["Installed", "Running", "Stopped", "Failed", "Degraded"]
                .into_iter()
                .find(|s| *s == state)
                .unwrap_or_else(|| panic!("state {state} after boot")),
        }
    });
    assert_eq!(
        found.as_ref().map(|a| a.version.to_string()),
        chain_view(state),
        "the registry disagrees with the chain"
    );
    // Nothing half-installed.
    let apps_dir = state.join("apps");
    let mut entries: Vec<String> = std::fs::read_dir(&apps_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    let mut expected = vec!["registry.json".to_string()];
    if found.is_some() {
        expected.insert(0, "hello".into());
    }
    assert_eq!(entries, expected, "stray entries in {}", apps_dir.display());
    if let Some(a) = &found {
        let mut versions: Vec<String> = std::fs::read_dir(apps_dir.join("hello"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort();
        // The installed version and the app's data dir, which outlives upgrades.
        let mut expected = vec![a.version.to_string(), "data".to_string()];
        expected.retain(|v| v != "data" || versions.contains(v));
        assert_eq!(versions, expected, "version dirs of hello");
    }
    // Agents run exactly when the app does.
    let ps = w(state, &["ps", "--json"]).json();
    let greeter = ps
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "hello.greeter" && p["state"] == "Running");
    let running = found.as_ref().is_some_and(|a| a.state == "Running");
    assert_eq!(greeter, running, "agents vs app state {found:?}: {ps}");
    if running {
        let r = w(state, &["agent", "send", "hello.greeter", "ping"]);
        assert_eq!(r.stdout.trim(), "ping", "{}", r.stderr);
    }
    assert_eq!(orphans(state, kernel), Vec::<String>::new(), "orphans");
    found
}

#[test]
fn kill_9_anywhere_in_the_app_lifecycle_leaves_a_consistent_kernel() {
    let runs: usize = std::env::var("WEFT_CHAOS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let seed: u64 = std::env::var("WEFT_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c4a0);
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let public = bundles(tmp.path());
    // Trust the signer before the first boot (queued, applied at boot).
    let r = w(&state, &["trust", "add", "dev", &public]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut model: Option<App>;
    // Typical duration of each op when not cut short, to aim the kills.
    let mut typical = [Duration::from_millis(400); 5];
    let slot = |op: Op| match op {
        Op::Install(_) => 0,
        Op::Start => 1,
        Op::Stop => 2,
        Op::Upgrade(_) => 3,
        Op::Remove => 4,
    };
    let mut tally = std::collections::BTreeMap::<String, [u32; 3]>::new();
    // What the next boot may find: the model, or, after a command the kill
    // cut off, the state before it or after it.
    let mut may_be = vec![None];
    for run in 0..=runs {
        let mut kernel = start_kernel(&state, &[]);
        let seen = check(&state, kernel.0.id());
        assert!(
            may_be.contains(&seen),
            "seed {seed} run {run}: after boot the registry says {seen:?}, expected one of {may_be:?}"
        );
        model = seen;
        if run == runs {
            break;
        }
        let op = pick(&mut rng, &model);
        let aim = typical[slot(op)].mul_f64(1.25);
        let delay = Duration::from_micros(rng.below(aim.as_micros() as u64 + 1));
        let started = Instant::now();
        let child = Command::new(weaver_bin())
            .arg("--state")
            .arg(&state)
            .args(args(op, tmp.path()))
            .env("WEFT_CACHE_DIR", shared_cache_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The command's own duration (not the kill's), to aim the next kills.
        let waiter = std::thread::spawn(move || {
            let out = child.wait_with_output().unwrap();
            (out, started.elapsed())
        });
        std::thread::sleep(delay);
        kernel.0.kill().unwrap();
        kernel.0.wait().unwrap();
        let (out, took) = waiter.join().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let after = effect(&model, op);
        // Success must hold; an expected refusal changes what it says;
        // a command the kill cut off happened entirely or not at all.
        let cut = stderr.contains("without answering")
            || stderr.contains("no kernel")
            || stderr.contains("reading the answer")
            || stderr.contains("writing to");
        let outcome = if out.status.success() {
            typical[slot(op)] = (typical[slot(op)] * 3 + took) / 4;
            may_be = vec![after];
            0
        } else if cut {
            may_be = vec![model.clone(), after];
            if let Some(r) = refusal(&model, op) {
                may_be.push(r);
            }
            1
        } else {
            let r = refusal(&model, op).unwrap_or_else(|| {
                panic!("seed {seed} run {run}: {op:?} on {model:?} failed: {stderr}")
            });
            may_be = vec![r];
            2
        };
        tally.entry(format!("{op:?}")).or_default()[outcome] += 1;
    }
    println!("chaos seed {seed}, {runs} kills: [done, cut off, refused] by op: {tally:?}");
}
