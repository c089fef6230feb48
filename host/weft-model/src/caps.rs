//! What an agent may do, and the app ceiling its capabilities must stay in.
//!
//! The kernel checks these in-process on every syscall (cheap) before the
//! gate is asked; the `apps` component checks a manifest's agents against
//! its `[capabilities]` ceiling with [`Capabilities::within`], and the
//! kernel checks again when an app spawns an agent.

use serde::{Deserialize, Serialize};

use crate::glob::{covers, name_matches, Uncovered};
use crate::net::NetCaps;

/// An agent's capabilities, fixed at spawn. Nothing is allowed by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    /// Tools it may invoke.
    pub tools: ToolPermissions,
    /// Whom it may message.
    pub ipc: IpcScope,
    /// Whether it gets any WASI resources at all.
    pub sandbox: SandboxPolicy,
    /// May append events of its own kinds (`agent.<kind>`) to the chain.
    pub chain_append: bool,
    /// May spawn child agents (and stop and restart them).
    pub spawn: bool,
    /// May schedule cron jobs (each one a later message to an agent it may
    /// message anyway).
    pub cron: bool,
    /// ECC operations and namespaces (`weft:kernel/ecc`). Left out of the
    /// serialised form when empty, so records of agents without it keep
    /// their shape.
    #[serde(skip_serializing_if = "EccCaps::is_empty")]
    pub ecc: EccCaps,
    /// Outbound HTTP grants (`crate::net`). Left out of the serialised
    /// form when empty, like `ecc`.
    #[serde(skip_serializing_if = "NetCaps::is_empty")]
    pub network: NetCaps,
}

/// Every ECC operation an [`EccCaps::ops`] entry can name. Reads:
/// `search`, `get`, `stats`, `graph` (edges, traversal, paths, DOT), `refs`,
/// `pending`; the rest change state and are recorded on the chain. `clock`
/// (read or merge the hybrid logical clock) names no namespace.
pub const ECC_OPS: &[&str] = &[
    "create_index",
    "drop_index",
    "insert",
    "delete",
    "compact",
    "search",
    "get",
    "stats",
    "add_node",
    "remove_node",
    "link",
    "unlink",
    "graph",
    "add_ref",
    "remove_ref",
    "refs",
    "emit",
    "drain",
    "pending",
    "clock",
];

/// What an agent may do with ECC: which operations (names from [`ECC_OPS`]
/// or name patterns such as `*`) on which namespaces (name patterns:
/// `notes` or `notes/*`). Nothing by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EccCaps {
    /// Operation patterns.
    pub ops: Vec<String>,
    /// Namespace patterns.
    pub namespaces: Vec<String>,
}

impl EccCaps {
    /// Grants nothing at all.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.namespaces.is_empty()
    }

    /// May its holder perform `op` (one of [`ECC_OPS`])?
    pub fn allows_op(&self, op: &str) -> bool {
        self.ops.iter().any(|p| name_matches(p, op))
    }

    /// May its holder use namespace `ns`?
    pub fn allows_namespace(&self, ns: &str) -> bool {
        self.namespaces.iter().any(|p| name_matches(p, ns))
    }

    /// Pushes to `out` every op or namespace pattern `ceiling` does not cover.
    fn within(&self, ceiling: &EccCaps, out: &mut Vec<Excess>) {
        for (list, c, kind, what) in [
            (&self.ops, &ceiling.ops, "ops", "operation "),
            (
                &self.namespaces,
                &ceiling.namespaces,
                "namespaces",
                "namespace ",
            ),
        ] {
            for (i, p) in list.iter().enumerate() {
                if let Err(why) = covers(c, &[], p) {
                    let field = format!("ecc.{kind}[{i}]");
                    out.push(Excess::pattern(field, p, what, &format!("ecc.{kind}"), why));
                }
            }
        }
    }
}

impl NetCaps {
    /// Is every outbound grant covered by one of `ceiling`'s? (A tool's
    /// `network` against its app's ceiling; an agent's is checked with the
    /// rest of its capabilities by [`Capabilities::within`].)
    pub fn within(&self, ceiling: &NetCaps) -> Result<(), Vec<Excess>> {
        let mut out = Vec::new();
        net_within(self, ceiling, &mut out);
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }
}

/// Pushes an excess for every outbound grant no ceiling grant covers
/// (an unparsable one included: the checker reports it with its place).
fn net_within(own: &NetCaps, ceiling: &NetCaps, out: &mut Vec<Excess>) {
    let max: Vec<_> = ceiling
        .outbound
        .iter()
        .filter_map(|s| crate::net::Grant::parse(s).ok())
        .collect();
    for (i, s) in own.outbound.iter().enumerate() {
        let message = match crate::net::Grant::parse(s) {
            Err(e) => e.to_string(),
            Ok(g) if max.iter().any(|c| g.within(c)) => continue,
            Ok(_) => format!("\"{s}\" reaches beyond the ceiling's network.outbound"),
        };
        out.push(Excess {
            field: format!("network.outbound[{i}]"),
            message,
            witness: None,
        });
    }
}

/// The namespaces app `app` owns: `app` itself and everything under
/// `app/`. Its agents use others' only where the operator shares them.
pub fn app_namespaces(app: &str) -> [String; 2] {
    [app.to_string(), format!("{app}/*")]
}

/// Tools by name pattern. Deny wins over allow; nothing allowed by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolPermissions {
    /// Name patterns of tools it may use.
    pub allow: Vec<String>,
    /// Name patterns of tools it may not use, whatever `allow` says.
    pub deny: Vec<String>,
}

impl ToolPermissions {
    /// May a holder of these permissions use `tool`?
    pub fn allows(&self, tool: &str) -> bool {
        !self.deny.iter().any(|p| name_matches(p, tool))
            && self.allow.iter().any(|p| name_matches(p, tool))
    }
}

/// Whom an agent may message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpcScope {
    /// Any agent, service and topic.
    All,
    /// Only its parent (replies to requests are always allowed).
    ParentOnly,
    /// Only these agents or services, by name pattern.
    Named(Vec<String>),
    /// Only publish/subscribe on these topics, by name pattern.
    Topics(Vec<String>),
    /// Nothing but replies.
    #[default]
    None,
}

impl IpcScope {
    /// May its holder send directly to the agent `name` (whose pid is
    /// `pid`), given its own `parent`?
    pub fn allows_send(&self, parent: Option<u64>, pid: u64, name: &str) -> bool {
        match self {
            IpcScope::All => true,
            IpcScope::ParentOnly => parent == Some(pid),
            IpcScope::Named(names) => names.iter().any(|n| name_matches(n, name)),
            IpcScope::Topics(_) | IpcScope::None => false,
        }
    }

    /// May it publish to or subscribe on `topic`?
    pub fn allows_topic(&self, topic: &str) -> bool {
        match self {
            IpcScope::All => true,
            IpcScope::Topics(t) => t.iter().any(|p| name_matches(p, topic)),
            _ => false,
        }
    }

    /// May it reach the owner of service `name`?
    pub fn allows_service(&self, name: &str) -> bool {
        match self {
            IpcScope::All => true,
            IpcScope::Named(names) => names.iter().any(|n| name_matches(n, name)),
            _ => false,
        }
    }

    /// Pushes to `out` every way `self` reaches beyond `ceiling`.
    fn within(&self, ceiling: &IpcScope, out: &mut Vec<Excess>) {
        match (self, ceiling) {
            (IpcScope::None, _)
            | (_, IpcScope::All)
            | (IpcScope::ParentOnly, IpcScope::ParentOnly) => {}
            (IpcScope::Named(own), IpcScope::Named(c))
            | (IpcScope::Topics(own), IpcScope::Topics(c)) => {
                let kind = if matches!(self, IpcScope::Named(_)) {
                    "named"
                } else {
                    "topics"
                };
                for (i, p) in own.iter().enumerate() {
                    if let Err(why) = covers(c, &[], p) {
                        let field = format!("ipc.{kind}[{i}]");
                        out.push(Excess::pattern(field, p, "", &format!("ipc.{kind}"), why));
                    }
                }
            }
            _ => out.push(Excess {
                field: "ipc".into(),
                message: "a wider scope than the ceiling's".into(),
                witness: None,
            }),
        }
    }
}

/// Whether an agent gets any WASI resources at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxPolicy {
    /// No WASI grants whatever the spawn request says: no dirs, no env.
    #[default]
    Strict,
    /// The grants in the spawn request (dirs, env) are applied.
    Granted,
}

/// One way a set of capabilities goes beyond a ceiling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excess {
    /// The offending field, dotted as in `weftapp.toml`: `tools.allow[0]`,
    /// `ipc` (a wider kind of scope), `ipc.named[0]`, `ipc.topics[0]`,
    /// `sandbox`, `chain_append`, `spawn`, `cron`, `ecc.ops[0]`,
    /// `ecc.namespaces[0]`.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
    /// For a pattern that reaches too far: a name it matches that the
    /// ceiling does not allow. `None` for the other fields, and when the
    /// pattern was too complex to decide (refused all the same).
    pub witness: Option<String>,
}

impl Excess {
    /// `pattern` (at `field`) is not covered by the ceiling's `list`.
    fn pattern(field: String, pattern: &str, what: &str, list: &str, why: Uncovered) -> Excess {
        match why {
            Uncovered::Witness(name) => Excess {
                field,
                message: format!(
                    "\"{pattern}\" matches {what}\"{name}\", which the ceiling's {list} does not"
                ),
                witness: Some(name),
            },
            Uncovered::TooComplex => Excess {
                field,
                message: format!("\"{pattern}\": {}", Uncovered::TooComplex),
                witness: None,
            },
        }
    }
}

impl Capabilities {
    /// Is everything these capabilities allow also allowed by `ceiling`?
    /// Checks meaning, not spelling: an allow pattern is within the ceiling
    /// only if every tool name it matches (and the ceiling does not deny)
    /// is matched by the ceiling's allow list. Returns every excess found.
    pub fn within(&self, ceiling: &Capabilities) -> Result<(), Vec<Excess>> {
        let mut out = Vec::new();
        for (i, p) in self.tools.allow.iter().enumerate() {
            if let Err(why) = covers(&ceiling.tools.allow, &ceiling.tools.deny, p) {
                let field = format!("tools.allow[{i}]");
                out.push(Excess::pattern(field, p, "tool ", "tools.allow", why));
            }
        }
        self.ipc.within(&ceiling.ipc, &mut out);
        let mut excess = |field: &str, message: &str| {
            out.push(Excess {
                field: field.into(),
                message: message.into(),
                witness: None,
            })
        };
        if self.sandbox == SandboxPolicy::Granted && ceiling.sandbox == SandboxPolicy::Strict {
            excess("sandbox", "\"granted\" but the ceiling is \"strict\"");
        }
        for (field, own, max) in [
            ("chain_append", self.chain_append, ceiling.chain_append),
            ("spawn", self.spawn, ceiling.spawn),
            ("cron", self.cron, ceiling.cron),
        ] {
            if own && !max {
                excess(field, "true but the ceiling's is false");
            }
        }
        self.ecc.within(&ceiling.ecc, &mut out);
        net_within(&self.network, &ceiling.network, &mut out);
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }

    /// These capabilities with the ceiling's tool denials added: a ceiling's
    /// `deny` binds every agent under it.
    pub fn bounded_by(mut self, ceiling: &Capabilities) -> Capabilities {
        for d in &ceiling.tools.deny {
            if !self.tools.deny.contains(d) {
                self.tools.deny.push(d.clone());
            }
        }
        self
    }

    /// Everything: every tool, every IPC target, chain appends, children,
    /// cron jobs, every ECC operation on every namespace (the capabilities
    /// of a trusted agent started by hand).
    pub fn trusted() -> Capabilities {
        Capabilities {
            tools: ToolPermissions {
                allow: vec!["*".into()],
                deny: vec![],
            },
            ipc: IpcScope::All,
            sandbox: SandboxPolicy::Strict,
            chain_append: true,
            spawn: true,
            cron: true,
            ecc: EccCaps {
                ops: vec!["*".into()],
                namespaces: vec!["*".into()],
            },
            network: NetCaps::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_deny_wins() {
        let t = ToolPermissions {
            allow: vec!["*".into()],
            deny: vec!["shell*".into()],
        };
        assert!(t.allows("calc"));
        assert!(!t.allows("shell-exec"));
        assert!(!ToolPermissions::default().allows("calc"));
    }

    #[test]
    fn ipc_scopes() {
        assert!(IpcScope::All.allows_send(None, 7, "pong"));
        assert!(IpcScope::ParentOnly.allows_send(Some(7), 7, "pong"));
        assert!(!IpcScope::ParentOnly.allows_send(Some(8), 7, "pong"));
        assert!(IpcScope::Named(vec!["po*".into()]).allows_send(None, 7, "pong"));
        assert!(!IpcScope::None.allows_send(None, 7, "pong"));
        assert!(IpcScope::Topics(vec!["news.*".into()]).allows_topic("news.tech"));
        assert!(!IpcScope::Topics(vec!["news.*".into()]).allows_send(None, 7, "pong"));
    }

    #[test]
    fn serde_shape_is_stable() {
        // Chain events carry capabilities: this shape is a format.
        let c = Capabilities {
            ipc: IpcScope::Named(vec!["a".into()]),
            ..Capabilities::default()
        };
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"tools": {"allow": [], "deny": []}, "ipc": {"named": ["a"]},
                "sandbox": "strict", "chain_append": false, "spawn": false, "cron": false})
        );
        let back: Capabilities = serde_json::from_value(serde_json::json!({"ipc": "all"})).unwrap();
        assert!(back.ecc.is_empty());
        let with_ecc = Capabilities {
            ecc: EccCaps {
                ops: vec!["search".into()],
                namespaces: vec!["notes/*".into()],
            },
            ..Capabilities::default()
        };
        let j = serde_json::to_value(&with_ecc).unwrap();
        assert_eq!(
            j["ecc"],
            serde_json::json!({"ops": ["search"], "namespaces": ["notes/*"]})
        );
        assert_eq!(serde_json::from_value::<Capabilities>(j).unwrap(), with_ecc);
        assert_eq!(back.ipc, IpcScope::All);
        assert!(serde_json::from_value::<Capabilities>(serde_json::json!({"bogus": 1})).is_err());
    }

    #[test]
    fn within_checks_what_patterns_match_not_how_they_are_spelt() {
        let ceiling = Capabilities {
            tools: ToolPermissions {
                allow: vec!["c?".into()],
                deny: vec![],
            },
            ipc: IpcScope::Named(vec!["db".into(), "w-?".into()]),
            ..Capabilities::default()
        };
        let agent = Capabilities {
            tools: ToolPermissions {
                allow: vec!["cd".into(), "c*".into()],
                deny: vec![],
            },
            ipc: IpcScope::Named(vec!["w-1".into(), "w-*".into()]),
            cron: true,
            ..Capabilities::default()
        };
        let ex = agent.within(&ceiling).unwrap_err();
        let fields: Vec<&str> = ex.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["tools.allow[1]", "ipc.named[1]", "cron"]);
        assert_eq!(ex[0].witness.as_deref(), Some("c"));
        assert_eq!(
            ex[0].message,
            "\"c*\" matches tool \"c\", which the ceiling's tools.allow does not"
        );
        assert_eq!(ex[1].witness.as_deref(), Some("w-"));
        let wider = Capabilities {
            ipc: IpcScope::All,
            ..Capabilities::default()
        };
        assert_eq!(wider.within(&ceiling).unwrap_err()[0].field, "ipc");
        assert_eq!(Capabilities::default().within(&ceiling), Ok(()));
        assert_eq!(
            Capabilities::trusted().within(&Capabilities::trusted()),
            Ok(())
        );
    }

    #[test]
    fn ecc_ops_and_namespaces_are_patterns_within_the_ceiling() {
        let ecc = |ops: &[&str], ns: &[&str]| Capabilities {
            ecc: EccCaps {
                ops: ops.iter().map(|s| s.to_string()).collect(),
                namespaces: ns.iter().map(|s| s.to_string()).collect(),
            },
            ..Capabilities::default()
        };
        let ceiling = ecc(&["search", "insert", "stats"], &["notes/*"]);
        let agent = ecc(&["search", "*"], &["notes/a", "notes", "other/x"]);
        let ex = agent.within(&ceiling).unwrap_err();
        let fields: Vec<&str> = ex.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["ecc.ops[1]", "ecc.namespaces[1]", "ecc.namespaces[2]"]
        );
        assert_eq!(
            ex[2].message,
            "\"other/x\" matches namespace \"other/x\", which the ceiling's ecc.namespaces does not"
        );
        assert_eq!(ecc(&["search"], &["notes/a/*"]).within(&ceiling), Ok(()));
        let a = &agent.ecc;
        assert!(
            a.allows_op("link") && a.allows_namespace("notes/a") && !a.allows_namespace("notes/b")
        );
        assert!(!EccCaps::default().allows_op("search"));
        assert!(Capabilities::trusted()
            .ecc
            .allows_namespace("anything/at/all"));
        let [own, under] = app_namespaces("notes");
        assert!(name_matches(&own, "notes") && name_matches(&under, "notes/x/y"));
        assert!(!name_matches(&under, "notes2/x"));
    }
}
