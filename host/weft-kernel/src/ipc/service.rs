//! The service registry: named endpoints that messages can be addressed to.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;

use crate::error::{KernelError, KernelResult};
use crate::ipc::Payload;
use crate::process::Pid;
use crate::subsystem::BoxFuture;

/// Where a service's requests go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceEndpoint {
    /// An agent's inbox: `Service` and `ServiceMethod` messages route there.
    AgentInbox(Pid),
    /// A service outside Weft, reached by URL; messages cannot be sent to it.
    External {
        /// Where it is.
        url: String,
    },
    /// A container run by the containers subsystem; messages to it are
    /// served by its [`SystemService::call`].
    Container {
        /// The container's id.
        id: String,
    },
}

/// How much of a service's traffic the chain witnesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLevel {
    /// Every call is recorded.
    #[default]
    Full,
    /// Only gate decisions are recorded.
    GateOnly,
}

/// A native service the host runs itself (start, stop, health).
pub trait SystemService: Send + Sync {
    /// Called when the service is registered; an error refuses the registration.
    fn start(&self) -> Result<(), String> {
        Ok(())
    }
    /// Called when it is unregistered.
    fn stop(&self) -> Result<(), String> {
        Ok(())
    }
    /// `Ok` when healthy, else why not (`weaver health`).
    fn health_check(&self) -> Result<(), String>;

    /// Whether `Service` and `ServiceMethod` messages to it are served by
    /// [`SystemService::call`].
    fn takes_calls(&self) -> bool {
        false
    }

    /// Serve one message (after the gate permitted the send and the chain
    /// recorded it): its reply, or why there is none.
    fn call(&self, req: ServiceRequest) -> BoxFuture<'static, Result<Payload, String>> {
        let name = req.service;
        Box::pin(async move { Err(format!("service `{name}` takes no messages")) })
    }
}

/// A message to a service the host serves itself.
#[derive(Debug)]
pub struct ServiceRequest {
    /// The service's name.
    pub service: String,
    /// The method of a `ServiceMethod` message.
    pub method: Option<String>,
    /// The body.
    pub payload: Payload,
    /// Who sent it (its gate name: an agent, `app:<name>`, `operator`).
    pub sender: String,
    /// The message's id (as recorded on the chain).
    pub message_id: u64,
    /// How long the service may take.
    pub timeout: Duration,
}

/// A registered service.
#[derive(Clone, Serialize)]
pub struct ServiceEntry {
    /// Its unique name.
    pub name: String,
    /// The principal that registered it (only it may unregister it).
    pub owner: String,
    /// The agent that serves it, for an `AgentInbox` endpoint.
    pub owner_pid: Option<Pid>,
    /// Where messages to it go.
    pub endpoint: ServiceEndpoint,
    /// How much of its traffic is recorded.
    pub audit_level: AuditLevel,
    /// The chain event that registered it.
    pub chain_seq: u64,
    /// The host's implementation, for a native service.
    #[serde(skip)]
    pub native: Option<Arc<dyn SystemService>>,
}

/// Every registered service, by name.
#[derive(Default)]
pub struct ServiceRegistry {
    services: DashMap<String, ServiceEntry>,
}

impl ServiceRegistry {
    /// Adds a service; its name must be free.
    pub fn register(&self, entry: ServiceEntry) -> KernelResult<()> {
        match self.services.entry(entry.name.clone()) {
            dashmap::Entry::Occupied(_) => Err(KernelError::Invalid(format!(
                "service `{}` is already registered",
                entry.name
            ))),
            dashmap::Entry::Vacant(v) => {
                v.insert(entry);
                Ok(())
            }
        }
    }

    /// Removes a service; returns it if it was registered.
    pub fn unregister(&self, name: &str) -> Option<ServiceEntry> {
        self.services.remove(name).map(|(_, e)| e)
    }

    /// Remove every service owned by a stopped agent.
    pub fn unregister_owner(&self, pid: Pid) -> Vec<String> {
        let names: Vec<String> = self
            .services
            .iter()
            .filter(|e| e.owner_pid == Some(pid))
            .map(|e| e.key().clone())
            .collect();
        for n in &names {
            self.services.remove(n);
        }
        names
    }

    /// The service called `name`.
    pub fn get(&self, name: &str) -> Option<ServiceEntry> {
        self.services.get(name).map(|e| e.clone())
    }

    /// Every service, sorted by name.
    pub fn list(&self) -> Vec<ServiceEntry> {
        let mut v: Vec<ServiceEntry> = self.services.iter().map(|e| e.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Health of every native service: name -> error, if any.
    pub fn health_check_all(&self) -> Vec<(String, Result<(), String>)> {
        self.list()
            .into_iter()
            .filter_map(|e| e.native.map(|n| (e.name, n.health_check())))
            .collect()
    }
}
