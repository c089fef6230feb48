//! Tools: components agents (and the operator) run through the gate.
//!
//! One unit: the registry ([`registry`]), the actions that use and change
//! it ([`actions`]: invoke, register, unregister), the `exec` built-in an
//! agent runs for whoever messaged it ([`builtin`]), and the control
//! commands ([`control`]: `weaver tool ls | run`). The agent syscall
//! `invoke-tool` is [`InvokeTool`].

pub mod actions;
pub(crate) mod builtin;
pub mod control;
pub(crate) mod registry;

pub use actions::{InvokeTool, RegisterTool, UnregisterTool};
pub(crate) use builtin::ToolsUnit;
pub use registry::{ToolEntry, ToolListing};
