//! The model Weft's host and its guest components share.
//!
//! Guests (the `apps` and `governance` components) cannot link host crates,
//! and two copies of a rule drift apart: the ceiling check once treated an
//! agent's glob as literal text, so `c?` "covered" `c*`. Everything both
//! sides must agree on lives here, with no host dependencies, and builds
//! for `wasm32-wasip2`:
//!
//! * [`glob`]: the one meaning of `*`, `?` and `**` in names and actions;
//! * [`caps`]: an agent's capabilities and the app ceiling they must stay in;
//! * [`net`]: outbound network grants and address checks;
//! * [`limits`]: default per-agent limits;
//! * [`effect`]: the governance effect dimensions;
//! * [`plan`]: a checked `weftapp.toml` and its install plan;
//! * [`policy`]: what the kernel allows a manifest (container engine,
//!   ports, capabilities), applied by the checker.

pub mod caps;
mod cover;
pub mod effect;
pub mod env;
pub mod glob;
pub mod limits;
pub mod net;
pub mod plan;
pub mod policy;
pub mod role;

pub use caps::{Capabilities, EccCaps, Excess, IpcScope, SandboxPolicy, ToolPermissions};
pub use limits::AgentLimits;
pub use net::NetCaps;
