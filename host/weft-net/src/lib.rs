//! The `net` unit: HTTP in and out for agents (`docs/network.md`).
//!
//! * **Outbound**: `wasi:http/outgoing-handler` linked into the agent world.
//!   Every request is an action `net.http.<host>` through the chokepoint:
//!   refused unless the agent's `network.outbound` grants allow it, then
//!   resolved once, the address checked ([`weft_model::net::Grant::reaches`])
//!   and connected to directly (no DNS rebinding between check and use),
//!   bounded by `[net]` limits, recorded as a `net.http` event (method, URL
//!   without its query, status, bytes, duration, outcome; never bodies or
//!   headers).
//! * **Secrets**: per-app values in `<state>/secrets/<app>/<NAME>` (0600),
//!   set by the operator (`secret.*` actions, recorded without values),
//!   added by the host as request headers; never on the chain.
//! * **Inbound**: `[[routes]]` served on `weaver run --http ADDR` /
//!   `[net] listen` (see [`inbound`]), to an agent or to a component
//!   exporting `wasi:http/incoming-handler` (see [`handler`]).
//! * **External services**: an app's `[[services]] url = ...`, called by
//!   HTTP POST as the app (see [`external`]).

pub mod config;
pub mod control;
pub mod external;
pub mod fetch;
pub mod handler;
pub mod inbound;
pub mod outbound;
pub mod pool;
pub mod secrets;
pub mod tls;
pub mod unit;

pub use config::NetConfig;
pub use unit::NetUnit;
