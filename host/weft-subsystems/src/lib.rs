//! Weft's governance, cron and health subsystems: components of the
//! `governance`, `cron` and `health` worlds (`wit/`), each wrapped in a
//! [`weft_kernel::Subsystem`] unit that owns its `weft.toml` section, its
//! actions, its control commands and its CLI.
//!
//! The policy and scheduling logic lives in the components; the host owns
//! time, the chain, and calling them, with fuel and a deadline per call.
//!
//! * [`governance`]: the gate's governance backend; hot-swaps its
//!   component or policy without dropping checks in flight.
//! * [`cron`]: scheduled messages, fired as their owner.
//! * [`health`]: probes when due, aggregated by the component.

mod bindings;
pub mod cron;
mod exec;
pub mod governance;
pub mod health;

use std::sync::Arc;

pub use cron::ComponentCron;
pub use governance::{ComponentGovernance, SwapRecord};
pub use health::{ComponentHealth, ProbeFn};

/// The three subsystems, in the order they are registered.
pub fn units() -> Vec<Arc<dyn weft_kernel::Subsystem>> {
    vec![
        Arc::new(governance::GovernanceUnit::default()),
        Arc::new(cron::CronUnit::default()),
        Arc::new(health::HealthUnit::default()),
    ]
}

/// Their command-line parts.
pub fn cli() -> Vec<weft_kernel::control::cli::CliCommand> {
    vec![governance::cli(), cron::cli(), health::cli()]
}

/// Why a subsystem component could not be loaded, called or persisted.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// The component failed (trap, out of fuel, timeout, invalid, ...).
    #[error("{0}")]
    Run(#[from] weft_runtime::RunError),
    /// The component rejected a policy file.
    #[error("{0}")]
    Policy(String),
    /// The component returned an error for a call.
    #[error("{0}")]
    Component(String),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused or failed.
    #[error("{0}")]
    Kernel(#[from] weft_kernel::KernelError),
}

impl ComponentError {
    /// Short, stable name of the failure, as recorded on the chain.
    pub fn kind(&self) -> &'static str {
        match self {
            ComponentError::Run(r) => r.kind(),
            ComponentError::Policy(_) => "policy rejected",
            ComponentError::Component(_) => "component error",
            ComponentError::Io { .. } => "io",
            ComponentError::Kernel(_) => "kernel",
        }
    }
}
