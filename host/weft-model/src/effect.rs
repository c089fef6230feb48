//! Governance effect dimensions: the named axes an action's effect vector
//! is scored on, shared by the gate and the governance component.

/// The dimensions used when an environment configures no others.
pub const DEFAULT_DIMENSIONS: &[&str] = &["risk", "fairness", "privacy", "novelty", "security"];
