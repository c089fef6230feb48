//! Raw wasmtime-wasi-http 48, no kernel: the `http-get` command's request
//! through a `WasiHttpHooks` that calls the unit's wire code directly, and
//! the same command as a governed Weft tool. Their difference is what the
//! gate, the record and the grant checks cost a request; the raw figure
//! against the plain client is what `wasi:http` itself costs.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi_http::p2::bindings::http as b;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttp, WasiHttpCtx, WasiHttpCtxView,
    WasiHttpHooks,
};
use weft_model::net::NetCaps;
use weft_net::fetch::{self, Target};
use weft_net::outbound::SendResult;
use weft_net::pool::Pool;
use weft_runtime::wasmtime_wasi::p2::bindings::CommandPre;
use weft_runtime::wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use weft_runtime::wasmtime_wasi::{self, WasiCtx, WasiCtxView, WasiView};

/// Sends through the unit's wire code (resolve, address check, kept
/// connection), nothing else.
struct Hooks {
    pool: Arc<Pool<WasiBody>>,
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let pool = self.pool.clone();
        Box::new(async move {
            let t = Target::of(request.uri()).map_err(|e| HttpError::InternalError(Some(e)))?;
            let caps = NetCaps {
                outbound: vec![format!("http://{}:{}", t.host, t.port)],
                secrets: vec![],
            };
            let grants = t.grants(&caps);
            let f = async {
                let a = fetch::resolve(&t, &grants).await?;
                fetch::send(a, &t, None, Some(&*pool), request, 1 << 20).await
            };
            let f = f
                .await
                .map_err(|e| HttpError::InternalError(Some(e.to_string())))?;
            let body = Full::new(f.body)
                .map_err(|never| match never {})
                .boxed_unsync();
            let io: Box<dyn Future<Output = _> + Send> = Box::new(async { Ok(()) });
            Ok((http::Response::from_parts(f.parts, body), io))
        })
    }
}

struct Raw {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: Hooks,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn view(r: &mut Raw) -> WasiHttpCtxView<'_> {
    WasiHttpCtxView {
        ctx: &mut r.http,
        table: &mut r.table,
        hooks: &mut r.hooks,
    }
}

/// `http-get`, pre-instantiated on a plain engine (no fuel, no epochs).
pub struct RawCommand {
    engine: Engine,
    pre: CommandPre<Raw>,
    pool: Arc<Pool<WasiBody>>,
}

impl RawCommand {
    pub fn new(wasm: &std::path::Path) -> Self {
        let mut c = Config::new();
        c.wasm_component_model(true);
        let engine = Engine::new(&c).expect("engine");
        let component = Component::from_file(&engine, wasm).expect("compile http-get");
        let mut linker = Linker::<Raw>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("wasi");
        b::outgoing_handler::add_to_linker::<_, WasiHttp>(&mut linker, view).expect("http");
        let options = wasmtime_wasi_http::p2::bindings::LinkOptions::default();
        b::types::add_to_linker::<_, WasiHttp>(&mut linker, &options.into(), view).expect("types");
        let pre = CommandPre::new(linker.instantiate_pre(&component).expect("pre")).expect("cmd");
        RawCommand {
            engine,
            pre,
            pool: Arc::default(),
        }
    }

    /// One run: `input` on stdin; its stdout.
    pub async fn run(&self, input: &str) -> Bytes {
        let out = MemoryOutputPipe::new(1 << 20);
        let mut b = WasiCtx::builder();
        b.stdin(MemoryInputPipe::new(input.as_bytes().to_vec()))
            .stdout(out.clone());
        let raw = Raw {
            wasi: b.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: Hooks {
                pool: self.pool.clone(),
            },
        };
        let mut store = Store::new(&self.engine, raw);
        let cmd = self.pre.instantiate_async(&mut store).await.expect("inst");
        let r = cmd.wasi_cli_run().call_run(&mut store).await.expect("run");
        assert!(r.is_ok(), "http-get failed");
        out.contents()
    }
}
