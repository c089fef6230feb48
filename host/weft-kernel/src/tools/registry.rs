//! The tool registry: name -> component, limits and grants.

use dashmap::DashMap;
use serde::Serialize;
use weft_model::net::NetCaps;
use weft_runtime::{Grants, Limits, LoadedComponent};

use crate::act::Principal;

/// A registered tool: a tool-world component (or WASI command) plus the
/// limits and grants it runs with.
#[derive(Clone)]
pub struct ToolEntry {
    /// Its unique name (`[a-z0-9-]` by convention).
    pub name: String,
    /// A tool-world component or a WASI command.
    pub component: LoadedComponent,
    /// Fuel, deadline and memory of each run.
    pub limits: Limits,
    /// WASI resources each run gets.
    pub grants: Grants,
    /// Where its runs may make HTTP requests (`[[tools]] network`), as
    /// its registrar; nothing by default.
    pub network: NetCaps,
    /// What `weaver tool ls` shows.
    pub description: String,
    /// The principal that registered it (set by [`super::RegisterTool`]).
    pub owner: String,
    /// That principal, what the tool's host calls act as.
    pub(crate) registrar: Option<Principal>,
}

/// A tool as `weaver tool ls` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ToolListing {
    /// Its name.
    pub name: String,
    /// `tool`, `command` or `other`.
    pub kind: String,
    /// BLAKE3 of its component.
    pub digest: String,
    /// Its description.
    pub description: String,
    /// Who registered it.
    pub owner: String,
    /// Where its runs may make HTTP requests.
    pub outbound: Vec<String>,
}

/// The registered tools.
#[derive(Default)]
pub(crate) struct ToolRegistry {
    tools: DashMap<String, ToolEntry>,
}

impl ToolEntry {
    /// Tool `name` running `component` with default limits, no grants and
    /// no description.
    pub fn new(name: impl Into<String>, component: LoadedComponent) -> Self {
        ToolEntry {
            name: name.into(),
            component,
            limits: Limits::default(),
            grants: Grants::default(),
            network: NetCaps::default(),
            description: String::new(),
            owner: String::new(),
            registrar: None,
        }
    }
}

impl ToolRegistry {
    pub fn insert(&self, entry: ToolEntry) -> Option<ToolEntry> {
        self.tools.insert(entry.name.clone(), entry)
    }

    pub fn remove(&self, name: &str) -> Option<ToolEntry> {
        self.tools.remove(name).map(|(_, e)| e)
    }

    pub fn get(&self, name: &str) -> Option<ToolEntry> {
        self.tools.get(name).map(|e| e.clone())
    }

    pub fn list(&self) -> Vec<ToolListing> {
        let mut v: Vec<ToolListing> = self
            .tools
            .iter()
            .map(|e| ToolListing {
                name: e.name.clone(),
                kind: format!("{:?}", e.component.kind).to_lowercase(),
                digest: e.component.digest.to_hex(),
                description: e.description.clone(),
                owner: e.owner.clone(),
                outbound: e.network.outbound.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}
