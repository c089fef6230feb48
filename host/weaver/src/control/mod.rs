//! The control API: a newline-delimited JSON protocol on `<state>/control.sock`
//! that `weaver run` serves and the other `weaver` commands speak.

mod apps;
pub mod client;
mod handlers;
pub mod protocol;
pub mod server;
