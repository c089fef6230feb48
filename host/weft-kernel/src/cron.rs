//! The host side of the cron service. The scheduler itself is a component
//! (the subsystem-components work); agents reach it through the `cron.add`
//! and `cron.remove` built-ins, which the kernel routes here.

use serde::{Deserialize, Serialize};

/// A job as agents describe it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronJobSpec {
    /// Cron expression (5 or 6 fields), `every <duration>` or `at <RFC 3339>`.
    pub schedule: String,
    /// Agent name the fired job is sent to.
    pub target: String,
    /// Message body sent when it fires.
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// A scheduled job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CronJob {
    pub id: String,
    pub owner: String,
    #[serde(flatten)]
    pub spec: CronJobSpec,
}

/// Whatever schedules jobs for the kernel.
pub trait CronService: Send + Sync {
    fn add(&self, owner: &str, spec: CronJobSpec) -> Result<CronJob, String>;
    fn remove(&self, owner: &str, id: &str) -> Result<(), String>;
    fn list(&self) -> Vec<CronJob>;
}
