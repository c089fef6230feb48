//! `cargo bench -p weft-runtime`: the runtime's speed against raw wasmtime,
//! measured in the same run on the same component. Prints one table.

use std::time::{Duration, Instant};

use weft_runtime::bindings::Tool;
use weft_runtime::wasmtime::component::{Component, Linker, ResourceTable};
use weft_runtime::wasmtime::{Config, Engine, Store};
use weft_runtime::wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use weft_runtime::{Extensions, Grants, Limits, Runtime, RuntimeConfig};
use weft_testkit::guest;

struct Row {
    metric: String,
    value: String,
    goal: String,
    ok: Option<bool>,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_nanos() as f64 / 1000.0)
}

/// Time `f` in batches of `batch`, returning the median per-iteration time.
async fn per_iter<F: AsyncFnMut()>(batches: usize, batch: usize, mut f: F) -> Duration {
    for _ in 0..batch {
        f().await;
    }
    let mut samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..batch {
            f().await;
        }
        samples.push(t.elapsed() / batch as u32);
    }
    median(samples)
}

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

fn raw_engine(fuel: bool, epoch: bool) -> Engine {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .consume_fuel(fuel)
        .epoch_interruption(epoch);
    Engine::new(&c).expect("engine")
}

async fn raw_tool(engine: &Engine, bytes: &[u8]) -> (Store<Raw>, Tool) {
    let component = Component::new(engine, bytes).expect("compile");
    let mut linker = Linker::<Raw>::new(engine);
    weft_runtime::wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
    let mut store = Store::new(
        engine,
        Raw {
            ctx: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    store.set_fuel(u64::MAX / 2).ok();
    store.set_epoch_deadline(1 << 40);
    let tool = Tool::instantiate_async(&mut store, &component, &linker)
        .await
        .expect("instantiate");
    (store, tool)
}

#[tokio::main]
async fn main() {
    let mut rows = Vec::new();
    let cache = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(RuntimeConfig {
        // A subdir: the runtime creates it 0700 (a tempdir is 0755, refused).
        cache_dir: Some(cache.path().join("components")),
        ..Default::default()
    })
    .expect("runtime");
    let bytes = std::fs::read(guest("misbehave")).expect("guest");
    let limits = Limits::default();

    // 1. Instantiation from a cached InstancePre (pooling allocator).
    let c = rt.load(&bytes).expect("load");
    let pre = rt.tool_pre(&c).expect("pre");
    let inst = per_iter(200, 50, async || {
        let mut store = rt
            .new_store(&limits, &Grants::default(), Extensions::default())
            .expect("store");
        let t = pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiate");
        std::hint::black_box(t);
    })
    .await;
    rows.push(Row {
        metric: "instantiate: new store + InstancePre (pooling), median".into(),
        value: us(inst),
        goal: "≤ 10 µs".into(),
        ok: Some(inst <= Duration::from_micros(10)),
    });

    // 2. Call overhead of a trivial export: runtime vs raw wasmtime.
    let engine = raw_engine(false, false);
    let (mut raw_store, raw) = raw_tool(&engine, &bytes).await;
    let raw_call = per_iter(200, 200, async || {
        std::hint::black_box(raw.call_describe(&mut raw_store).await.expect("call"));
    })
    .await;
    let engine_metered = raw_engine(true, true);
    let (mut m_store, metered) = raw_tool(&engine_metered, &bytes).await;
    let metered_call = per_iter(200, 200, async || {
        std::hint::black_box(metered.call_describe(&mut m_store).await.expect("call"));
    })
    .await;
    let mut store = rt
        .new_store(&limits, &Grants::default(), Extensions::default())
        .expect("store");
    let tool = pre
        .instantiate_async(&mut store)
        .await
        .expect("instantiate");
    let rt_call = per_iter(200, 200, async || {
        rt.arm(&mut store, &limits);
        let r = rt
            .guard(&mut store, &limits, async |s| {
                tool.call_describe(&mut *s).await
            })
            .await;
        std::hint::black_box(r.expect("call"));
    })
    .await;
    let ratio = rt_call.as_nanos() as f64 / raw_call.as_nanos() as f64;
    let wrap = rt_call.as_nanos() as f64 / metered_call.as_nanos() as f64;
    rows.push(Row {
        metric: "trivial export call, raw wasmtime (no fuel/epoch), median".into(),
        value: us(raw_call),
        goal: "baseline".into(),
        ok: None,
    });
    rows.push(Row {
        metric: "trivial export call, raw wasmtime with fuel + epoch on, median".into(),
        value: format!(
            "{} ({:.2}× raw)",
            us(metered_call),
            metered_call.as_nanos() as f64 / raw_call.as_nanos() as f64
        ),
        goal: "(cost of metering)".into(),
        ok: None,
    });
    rows.push(Row {
        metric: "trivial export call through the runtime (arm + guard + classify), median".into(),
        value: format!("{} ({ratio:.2}× raw, {wrap:.2}× metered raw)", us(rt_call)),
        goal: "≤ 1.2× raw".into(),
        ok: Some(ratio <= 1.2),
    });

    // 3. Fuel overhead on a CPU-bound guest.
    let work = r#"{"mode":"work","n":20000000}"#.to_string();
    let engine_nofuel = raw_engine(false, true);
    let (mut nf_store, nf) = raw_tool(&engine_nofuel, &bytes).await;
    let nofuel = per_iter(7, 1, async || {
        std::hint::black_box(
            nf.call_invoke(&mut nf_store, &work)
                .await
                .expect("call")
                .expect("ok"),
        );
    })
    .await;
    let fuel_limits = Limits {
        fuel: u64::MAX / 4,
        timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let fueled = per_iter(7, 1, async || {
        let out = rt
            .run_tool(&c, &work, &fuel_limits, &Grants::default())
            .await
            .expect("run");
        std::hint::black_box(out.result.expect("ok"));
    })
    .await;
    let overhead = (fueled.as_secs_f64() / nofuel.as_secs_f64() - 1.0) * 100.0;
    rows.push(Row {
        metric: "CPU-bound guest (20M iterations), fuel off (raw)".into(),
        value: format!("{:.1} ms", nofuel.as_secs_f64() * 1e3),
        goal: "baseline".into(),
        ok: None,
    });
    rows.push(Row {
        metric: "CPU-bound guest, fuel on + yields (runtime)".into(),
        value: format!("{:.1} ms ({overhead:+.1}%)", fueled.as_secs_f64() * 1e3),
        goal: "≤ +15%".into(),
        ok: Some(overhead <= 15.0),
    });

    // 4. Compile vs cached load.
    let compile = per_iter(5, 1, async || {
        std::hint::black_box(Component::new(rt.engine(), &bytes).expect("compile"));
    })
    .await;
    let cached = per_iter(50, 10, async || {
        rt.evict(&c.digest);
        std::hint::black_box(rt.load(&bytes).expect("load"));
    })
    .await;
    rows.push(Row {
        metric: format!("compile component ({} KB)", bytes.len() / 1024),
        value: format!("{:.2} ms", compile.as_secs_f64() * 1e3),
        goal: "—".into(),
        ok: None,
    });
    rows.push(Row {
        metric: "load from disk cache (BLAKE3 + mmap deserialize)".into(),
        value: format!(
            "{} ({:.0}× faster)",
            us(cached),
            compile.as_secs_f64() / cached.as_secs_f64()
        ),
        goal: "≪ compile".into(),
        ok: Some(cached * 10 < compile),
    });

    println!("\n## weft-runtime\n");
    println!("| metric | value | goal | met |");
    println!("|---|---|---|---|");
    for r in rows {
        let met = match r.ok {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!("| {} | {} | {} | {met} |", r.metric, r.value, r.goal);
    }
}
