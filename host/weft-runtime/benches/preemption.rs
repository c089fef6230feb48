//! `cargo bench -p weft-runtime --bench preemption -- PROGRAM.wasm DIR [ARGS...]`
//! (`just bench-preemption` builds ripgrep for wasm32-wasip2 and a 90 MB
//! corpus, and runs it): what keeping a real program preemptible costs.
//!
//! Runs the WASI command `PROGRAM` with `DIR` preopened as `/data` and
//! `ARGS` as its arguments, in one process, round-robin so drift hits every
//! row alike, and prints the median wall time of each way of running it
//! against raw wasmtime (no fuel, no epochs, file reads on the calling
//! thread: what `wasmtime run` does):
//! raw with fuel, raw with epochs, and Weft's runtime under each
//! [`Preemption`] mode (fuel, limits, the pooling allocator and its
//! deadline).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft_runtime::bindings::Command;
use weft_runtime::wasmtime::component::{Component, Linker, ResourceTable};
use weft_runtime::wasmtime::{Config, Engine, Store};
use weft_runtime::wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use weft_runtime::wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use weft_runtime::{DirGrant, Grants, Limits, Preemption, Runtime, RuntimeConfig};

const RUNS: usize = 5;

struct Raw {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// A plain engine as `wasmtime run` builds one, plus fuel or epochs.
struct RawEngine {
    engine: Engine,
    component: Component,
    linker: Linker<Raw>,
    fuel: bool,
    epochs: bool,
}

impl RawEngine {
    fn new(bytes: &[u8], fuel: bool, epochs: bool) -> Self {
        let mut c = Config::new();
        c.wasm_component_model(true)
            .consume_fuel(fuel)
            .epoch_interruption(epochs);
        let engine = Engine::new(&c).expect("engine");
        let component = Component::new(&engine, bytes).expect("compile");
        let mut linker = Linker::new(&engine);
        weft_runtime::wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
        RawEngine {
            engine,
            component,
            linker,
            fuel,
            epochs,
        }
    }

    async fn run(&self, dir: &std::path::Path, args: &[String]) -> Vec<u8> {
        let out = MemoryOutputPipe::new(1 << 20);
        let err = MemoryOutputPipe::new(1 << 20);
        let mut b = WasiCtx::builder();
        // As `wasmtime run` does: file reads on this thread.
        b.allow_blocking_current_thread(true);
        b.args(args).stdout(out.clone()).stderr(err.clone());
        b.preopened_dir(dir, "/data", FsPerms::ReadOnly)
            .expect("preopen");
        let mut store = Store::new(
            &self.engine,
            Raw {
                ctx: b.build(),
                table: ResourceTable::new(),
            },
        );
        if self.fuel {
            store.set_fuel(u64::MAX / 2).expect("fuel");
        }
        if self.epochs {
            store.set_epoch_deadline(1 << 40);
        }
        let cmd = Command::instantiate_async(&mut store, &self.component, &self.linker)
            .await
            .expect("instantiate");
        let r = cmd.wasi_cli_run().call_run(&mut store).await.expect("run");
        assert!(
            r.is_ok(),
            "the program failed: {}",
            String::from_utf8_lossy(&err.contents())
        );
        drop(store);
        out.contents().to_vec()
    }
}

fn weft(cache: &std::path::Path, preemption: Preemption, slice: u64) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.to_path_buf()),
        preemption,
        fuel_yield_interval: slice,
        // As `weaver tool run FILE` does.
        blocking_fs: true,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut argv = std::env::args().skip(1).filter(|a| a != "--bench");
    let (Some(program), Some(dir)) = (argv.next(), argv.next()) else {
        eprintln!("usage: preemption PROGRAM.wasm DIR [ARGS...] (see `just bench-preemption`)");
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    let mut args = vec!["program".to_string()];
    args.extend(argv);
    let bytes = std::fs::read(&program).expect("read the program");

    let tick_stop = Arc::new(AtomicBool::new(false));
    let raw = RawEngine::new(&bytes, false, false);
    let raw_fuel = RawEngine::new(&bytes, true, false);
    let raw_epochs = RawEngine::new(&bytes, false, true);
    {
        // Tick as often as Weft's epoch mode does.
        let (engine, stop) = (raw_epochs.engine.clone(), tick_stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
                engine.increment_epoch();
            }
        });
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let cache = cache.path().join("components");
    let slice = RuntimeConfig::default().fuel_yield_interval;
    let weft_rows = [
        weft(&cache, Preemption::Yields, slice),
        weft(
            &cache,
            Preemption::Epochs {
                tick: Duration::from_millis(1),
            },
            slice,
        ),
        weft(&cache, Preemption::Yields, slice * 10),
    ];
    let loaded: Vec<_> = weft_rows
        .iter()
        .map(|rt| rt.load(&bytes).expect("load"))
        .collect();
    let limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let grants = Grants {
        dirs: vec![DirGrant {
            host: dir.clone(),
            guest: "/data".into(),
            read_only: true,
        }],
        args: args.clone(),
        ..Grants::default()
    };

    let names = [
        "raw wasmtime (no fuel, no epochs)",
        "raw wasmtime + fuel",
        "raw wasmtime + epochs (1 ms tick)",
        "weft runtime, preemption = yields",
        "weft runtime, preemption = epochs",
        "weft runtime, yields, 10x fuel slice",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    let mut expected: Option<Vec<u8>> = None;
    for round in 0..=RUNS {
        for (i, row) in samples.iter_mut().enumerate() {
            let t = Instant::now();
            let out = match i {
                0 => raw.run(&dir, &args).await,
                1 => raw_fuel.run(&dir, &args).await,
                2 => raw_epochs.run(&dir, &args).await,
                _ => {
                    let (rt, c) = (&weft_rows[i - 3], &loaded[i - 3]);
                    let o = rt
                        .run_command(c, &limits, &grants)
                        .await
                        .map_err(|f| f.error)
                        .expect("run");
                    assert_eq!(o.exit_code, 0, "{}", String::from_utf8_lossy(&o.stderr));
                    o.stdout
                }
            };
            let took = t.elapsed();
            match &expected {
                None => expected = Some(out),
                Some(e) => assert_eq!(e, &out, "{} printed something else", names[i]),
            }
            // Round 0 warms caches and page tables.
            if round > 0 {
                row.push(took);
            }
        }
    }
    tick_stop.store(true, Ordering::Relaxed);
    let out = expected.unwrap_or_default();
    println!(
        "{} {} -> {}",
        program,
        args[1..].join(" "),
        String::from_utf8_lossy(&out).trim()
    );
    println!("median of {RUNS} runs each, in one process:");
    let base = median(samples[0].clone());
    for (name, s) in names.iter().zip(samples) {
        let m = median(s);
        println!(
            "  {name:<36} {:>8.1} ms  {:>5.2}x",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
}
