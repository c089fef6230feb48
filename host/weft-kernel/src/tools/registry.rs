//! Tools registered with the kernel, callable by agents through the gate.

use dashmap::DashMap;
use serde::Serialize;
use weft_runtime::{Grants, Limits, LoadedComponent};

/// A registered tool: a tool-world component (or WASI command) plus the
/// limits and grants it runs with.
#[derive(Clone)]
pub struct ToolEntry {
    pub name: String,
    pub component: LoadedComponent,
    pub limits: Limits,
    pub grants: Grants,
    pub description: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolListing {
    pub name: String,
    pub kind: String,
    pub digest: String,
    pub description: String,
}

#[derive(Default)]
pub struct ToolRegistry {
    tools: DashMap<String, ToolEntry>,
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
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}
