//! Weft's governance, cron and health subsystems: components of the
//! `governance`, `cron` and `health` worlds (`wit/`), called from the host.
//!
//! The policy and scheduling logic lives in the components; the host owns
//! time, the chain, and calling them, with fuel and a deadline per call.
//!
//! * [`ComponentGovernance`]: a [`weft_gate::GovernanceBackend`]; hot-swaps
//!   its component or policy without dropping checks in flight.
//! * [`ComponentCron`]: the kernel's [`weft_kernel::cron::CronService`] and
//!   the driver that fires jobs as messages.
//! * [`ComponentHealth`]: runs probes when due and aggregates the results.
//! * [`install`]: loads all three per `[subsystems]` and wires them into a
//!   booted kernel.

mod bindings;
pub mod cron;
mod exec;
pub mod governance;
pub mod health;
mod install;

pub use cron::ComponentCron;
pub use governance::{ComponentGovernance, SwapRecord};
pub use health::{ComponentHealth, ProbeFn};
pub use install::{components_dir, install, Subsystems};
pub use weft_kernel::SubsystemsSection as SubsystemsConfig;

/// Why a subsystem could not be loaded, called or persisted.
#[derive(Debug, thiserror::Error)]
pub enum SubsystemError {
    /// The component failed (trap, out of fuel, timeout, invalid, ...).
    #[error("{0}")]
    Run(#[from] weft_runtime::RunError),
    /// The component rejected a policy file.
    #[error("{0}")]
    Policy(String),
    /// The component returned an error for a call.
    #[error("{0}")]
    Component(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Kernel(#[from] weft_kernel::KernelError),
}

impl SubsystemError {
    /// Short, stable name of the failure, as recorded on the chain.
    pub fn kind(&self) -> &'static str {
        match self {
            SubsystemError::Run(r) => r.kind(),
            SubsystemError::Policy(_) => "policy rejected",
            SubsystemError::Component(_) => "component error",
            SubsystemError::Io { .. } => "io",
            SubsystemError::Kernel(_) => "kernel",
        }
    }
}
