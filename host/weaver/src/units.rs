//! The one registration list: every subsystem this `weaver` boots its
//! kernels with, each with its command-line part. Adding a subsystem is
//! its own folder plus one entry here. (The kernel's own units — IPC,
//! tools, the chain, agents — come with the kernel.)

use std::sync::Arc;

use weft_kernel::control::cli::CliCommand;
use weft_kernel::Subsystem;

/// One registered subsystem.
struct Registration {
    subsystem: fn() -> Arc<dyn Subsystem>,
    cli: fn() -> Vec<CliCommand>,
}

const REGISTERED: &[Registration] = &[
    Registration {
        subsystem: || Arc::new(weft_subsystems::governance::GovernanceUnit::default()),
        cli: || {
            vec![
                weft_subsystems::governance::cli(),
                weft_subsystems::governance::env_cli(),
            ]
        },
    },
    Registration {
        subsystem: || Arc::new(weft_subsystems::cron::CronUnit::default()),
        cli: || vec![weft_subsystems::cron::cli()],
    },
    Registration {
        subsystem: || Arc::new(weft_subsystems::health::HealthUnit::default()),
        cli: || vec![weft_subsystems::health::cli()],
    },
    // Before apps: their agents may call ECC as soon as apps resume.
    Registration {
        subsystem: || Arc::new(weft_ecc::unit::EccUnit::new()),
        cli: || vec![weft_ecc::unit::control::cli()],
    },
    // After health (its probes run there), before apps (which resume at
    // boot and start container services through it).
    Registration {
        subsystem: || Arc::new(weft_containers::unit::ContainersUnit::new()),
        cli: || vec![weft_containers::unit::control::cli()],
    },
    // Before apps: a clustered node has joined (and its mesh listens)
    // before apps resume.
    Registration {
        subsystem: || Arc::new(weft_cluster::unit::ClusterUnit::new()),
        cli: || vec![weft_cluster::unit::control::cli()],
    },
    // Before apps: their `add-route` steps need it when apps resume.
    Registration {
        subsystem: || Arc::new(weft_net::NetUnit::new()),
        cli: || {
            vec![
                weft_net::control::net_cli(),
                weft_net::control::secret_cli(),
            ]
        },
    },
    Registration {
        subsystem: || Arc::new(weft_apps::AppsUnit::default()),
        cli: weft_apps::control::cli,
    },
    // Last: the dashboard starts serving once everything else has booted.
    Registration {
        subsystem: || Arc::new(weft_ui::UiUnit::new()),
        cli: || vec![weft_ui::cli()],
    },
];

/// Fresh instances of every registered subsystem, in order.
pub fn subsystems() -> Vec<Arc<dyn Subsystem>> {
    REGISTERED.iter().map(|r| (r.subsystem)()).collect()
}

/// Every command: the kernel's own units' first, then the subsystems'.
pub fn commands() -> Vec<CliCommand> {
    let mut v = weft_kernel::builtin_cli();
    for r in REGISTERED {
        v.extend((r.cli)());
    }
    v
}
