//! Weft's component runtime.
//!
//! One [`Runtime`] owns one wasmtime [`wasmtime::Engine`] configured for the
//! component model, async calls, fuel, wall-clock deadlines and the pooling
//! allocator. It runs components and, as they are, WASI preview1 core
//! modules ([`ComponentKind::Preview1`]) under the same limits and grants. Everything a guest may consume is bounded by [`Limits`];
//! everything it may touch is granted explicitly by [`Grants`]. Failures are
//! typed ([`RunError`]) and never take the runtime down.
//!
//! ```no_run
//! # async fn demo() -> Result<(), weft_runtime::RunError> {
//! use weft_runtime::{Grants, Limits, Runtime, RuntimeConfig};
//! let rt = Runtime::new(RuntimeConfig::default())?;
//! let calc = rt.load_file("calc.wasm".as_ref())?;
//! let out = rt
//!     .run_tool(&calc, r#"{"expr":"1+2"}"#, &Limits::default(), &Grants::default())
//!     .await
//!     .map_err(|f| f.error)?;
//! println!("{:?} using {} fuel", out.result, out.usage.fuel_used);
//! # Ok(()) }
//! ```

mod blocking;
mod cache;
mod command;
mod config;
mod error;
mod extensions;
mod limiter;
mod output;
mod pre;
mod runtime;
mod sandbox;
mod tool;

pub use cache::{CacheError, Digest, LoadSource};
pub use command::CommandOutcome;
pub use config::{Limits, PoolConfig, Preemption, RuntimeConfig};
pub use error::{Failure, GuestDetail, RunError, Usage};
pub use extensions::{Extensions, LinkTools, ToolLinker};
pub use output::BoundedOutput;
pub use pre::ToolStoreData;
pub use runtime::{Code, ComponentKind, LoadedComponent, Runtime};
pub use sandbox::{DirGrant, Grants, StoreData};
pub use tool::{ToolFailure, ToolInfo, ToolOutcome};

/// Generated bindings, for embedders and benchmarks that call guests
/// directly instead of through [`Runtime::run_tool`].
pub mod bindings {
    pub use crate::tool::bindings::{Tool, ToolPre};
    pub use wasmtime_wasi::p2::bindings::{Command, CommandPre};
}

/// Re-exported so embedders use the exact wasmtime this runtime was built with.
pub use wasmtime;
pub use wasmtime_wasi;
