//! Environments: named scopes an app runs in (`dev`, `staging`, `prod`
//! and any the operator defines under `[environments.NAME]`), each with
//! its own install rule (unsigned bundles), audit level, learning mode and
//! governance policy (the governance unit holds the policies).
//!
//! An app goes into the environment its manifest names (or the kernel's
//! default, `[kernel] environment`); its agents act in it. The gate adds
//! the environment to the context of every decision made outside the
//! default one, so a receipt says where it was judged, and governance
//! judges it against that environment's policy.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use serde_json::json;
use weft_tree::{Metadata, TreeError, TreeManager};

use crate::act::Principal;

/// The built-in environments, strictest last.
pub const BUILT_IN: [&str; 3] = ["dev", "staging", "prod"];

/// How much of an environment's activity the chain witnesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditMode {
    /// Every gate decision is recorded; a permit for a repeated action
    /// (a send to the same agent, a syscall) is reused until policy
    /// changes, so repeats leave only their own effect records.
    #[default]
    GateOnly,
    /// Every call asks the gate afresh and its decision carries the BLAKE3
    /// digest of the call's input: each call is witnessed on the chain.
    Full,
}

/// `[environments.NAME]` in `weft.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvSection {
    /// Unsigned bundles install here (default: only in `dev`).
    pub unsigned: Option<bool>,
    /// `gate-only` (default) or `full`.
    pub audit: AuditMode,
    /// Governance decisions are computed and recorded but a denial or an
    /// escalation is not enforced (capability rules still are).
    pub learning: bool,
    /// Governance policy for this environment (relative to `weft.toml`);
    /// default: the `[governance] policy`.
    pub policy: Option<PathBuf>,
    /// Outbound HTTP allow-list (`scheme://host[:port]` grants): every
    /// agent's and tool's `network.outbound` grant in an app installed here
    /// must be within one of these; `None`: no limit beyond the app's.
    pub outbound: Option<Vec<String>>,
}

/// One environment as the kernel runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// Its name.
    pub name: String,
    /// Do unsigned bundles install here?
    pub unsigned: bool,
    /// Its audit level.
    pub audit: AuditMode,
    /// Is governance only advisory here?
    pub learning: bool,
    /// Its own governance policy file, if any.
    pub policy: Option<PathBuf>,
    /// Its outbound allow-list, if it has one.
    pub outbound: Option<Vec<String>>,
}

impl Environment {
    /// A built-in environment with its defaults (unsigned only in `dev`).
    pub fn built_in(name: &str) -> Self {
        Self::from_section(name, &EnvSection::default())
    }

    fn from_section(name: &str, s: &EnvSection) -> Self {
        Environment {
            name: name.to_string(),
            unsigned: s.unsigned.unwrap_or(name == "dev"),
            audit: s.audit,
            learning: s.learning,
            policy: s.policy.clone(),
            outbound: s.outbound.clone(),
        }
    }
}

/// The kernel's environments and which app runs in which.
#[derive(Debug)]
pub struct Environments {
    default: Arc<Environment>,
    by_name: BTreeMap<String, Arc<Environment>>,
    /// App name -> its environment (derived from the apps registry; set by
    /// the apps unit's actions).
    apps: DashMap<String, Arc<Environment>>,
}

impl Environments {
    /// The built-in three plus `sections`, with `default` the kernel's.
    /// Names are checked by the configuration (see `KernelConfig`).
    pub fn new(default: &str, sections: &BTreeMap<String, EnvSection>) -> Self {
        let mut by_name: BTreeMap<String, Arc<Environment>> = BUILT_IN
            .iter()
            .map(|n| (n.to_string(), Arc::new(Environment::built_in(n))))
            .collect();
        for (name, s) in sections {
            by_name.insert(name.clone(), Arc::new(Environment::from_section(name, s)));
        }
        let default = by_name
            .get(default)
            .cloned()
            .unwrap_or_else(|| Arc::new(Environment::built_in(default)));
        Environments {
            default,
            by_name,
            apps: DashMap::new(),
        }
    }

    /// The kernel's default environment (`[kernel] environment`).
    pub fn default_env(&self) -> &Arc<Environment> {
        &self.default
    }

    /// The environment called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Environment>> {
        self.by_name.get(name)
    }

    /// Every environment, by name.
    pub fn list(&self) -> Vec<Arc<Environment>> {
        self.by_name.values().cloned().collect()
    }

    /// The environment app `app` runs in (the default if it has none yet).
    pub fn of_app(&self, app: &str) -> Arc<Environment> {
        self.apps
            .get(app)
            .map(|e| e.clone())
            .unwrap_or_else(|| self.default.clone())
    }

    /// The apps in environment `name`, sorted.
    pub fn apps_in(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .apps
            .iter()
            .filter(|e| e.value().name == name)
            .map(|e| e.key().clone())
            .collect();
        v.sort();
        v
    }

    /// The environment `who` acts in: an app's own; an agent's is its
    /// app's ([`crate::AgentPrincipal::app`]) or, failing that, the app
    /// whose namespace (`NAME.…`) it lives in; everyone else's is the
    /// default.
    pub fn of_principal(&self, who: &Principal) -> Arc<Environment> {
        if self.apps.is_empty() {
            return self.default.clone();
        }
        let app = match who {
            Principal::App(a) => Some(a.name()),
            Principal::Agent(a) => a
                .app
                .as_deref()
                .or_else(|| a.name.split_once('.').map(|(app, _)| app)),
            _ => None,
        };
        match app.and_then(|a| self.apps.get(a)) {
            Some(e) => e.clone(),
            None => self.default.clone(),
        }
    }

    pub(crate) fn assign(&self, app: &str, env: &str) -> Result<Arc<Environment>, String> {
        let e = self.get(env).cloned().ok_or_else(|| self.unknown(env))?;
        self.apps.insert(app.to_string(), e.clone());
        Ok(e)
    }

    pub(crate) fn unassign(&self, app: &str) {
        self.apps.remove(app);
    }

    /// `/environments/<name>` for every environment, as configured (only
    /// what changed since the last boot is recorded; environments no
    /// longer defined go).
    pub(crate) fn sync_tree(&self, tree: &TreeManager) -> Result<(), TreeError> {
        for node in tree.list("/environments")? {
            if node.path.matches('/').count() == 2 && !self.by_name.contains_key(&node.name) {
                tree.remove_recursive(&node.path)?;
            }
        }
        for e in self.by_name.values() {
            let path = format!("/environments/{}", e.name);
            let mut meta = Metadata::new();
            meta.insert("default".into(), json!(e.name == self.default.name));
            meta.insert("unsigned".into(), json!(e.unsigned));
            meta.insert("audit".into(), json!(e.audit));
            meta.insert("learning".into(), json!(e.learning));
            meta.insert("policy".into(), json!(e.policy));
            tree.upsert(&path, meta)?;
        }
        Ok(())
    }

    /// The error for an environment nobody defined.
    pub fn unknown(&self, name: &str) -> String {
        format!(
            "unknown environment `{name}`; this kernel has {} (define more under [environments.NAME] in weft.toml)",
            self.by_name.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_and_defined_ones() {
        let mut s = BTreeMap::new();
        s.insert(
            "qa".to_string(),
            EnvSection {
                learning: true,
                ..Default::default()
            },
        );
        s.insert(
            "prod".to_string(),
            EnvSection {
                audit: AuditMode::Full,
                ..Default::default()
            },
        );
        let e = Environments::new("prod", &s);
        assert_eq!(e.list().len(), 4);
        assert!(e.get("dev").unwrap().unsigned);
        assert!(!e.get("qa").unwrap().unsigned);
        assert!(e.get("qa").unwrap().learning);
        assert_eq!(e.default_env().audit, AuditMode::Full);
        assert_eq!(e.of_app("x").name, "prod");
        e.assign("x", "qa").unwrap();
        assert_eq!(e.of_app("x").name, "qa");
        assert_eq!(e.apps_in("qa"), vec!["x".to_string()]);
        assert!(e
            .assign("y", "moon")
            .unwrap_err()
            .contains("dev, prod, qa, staging"));
        e.unassign("x");
        assert_eq!(e.of_app("x").name, "prod");
    }
}
