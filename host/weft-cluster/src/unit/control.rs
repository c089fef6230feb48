//! `weaver cluster ...`: the unit's control requests and command line.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{FromArgMatches, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use weft_kernel::control::cli::{cell, table};
use weft_kernel::control::{kind, to_value, ControlCx, ControlError, ControlReply};

use super::actions::{Drain, Ping, TrustAdd, TrustRm};
use super::Inner;
use crate::ClusterError;

/// Every control op of the unit.
pub const OPS: &[&str] = &[
    "status",
    "nodes",
    "trust-ls",
    "trust-add",
    "trust-rm",
    "drain",
    "ping",
];

/// The cluster unit's control requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// This node and the cluster in short.
    Status,
    /// Every node.
    Nodes,
    /// The trust store.
    TrustLs,
    /// Trust a node's static key.
    TrustAdd {
        /// 64 hex characters.
        key: String,
        /// A label (the node's name).
        #[serde(default)]
        label: String,
    },
    /// Stop trusting a key.
    TrustRm {
        /// 64 hex characters.
        key: String,
    },
    /// Mark a node as taking no new work.
    Drain {
        /// The node.
        node: String,
    },
    /// Mesh round trips to a node.
    Ping {
        /// The node.
        node: String,
        /// How many.
        count: usize,
        /// Bytes per ping.
        size: usize,
    },
}

fn cluster_err(e: ClusterError) -> ControlError {
    match e {
        ClusterError::NotClustered => ControlError::new(kind::NOT_FOUND, e.to_string()),
        other => ControlError::kernel(other.to_string()),
    }
}

/// Serve one request.
pub(crate) async fn serve(inner: Arc<Inner>, cx: ControlCx<'_>) -> ControlReply {
    let req = cx.parse::<Request>("cluster")?;
    if matches!(req, Request::Status | Request::Nodes | Request::TrustLs) {
        cx.query("cluster.read").await?;
    }
    let node = inner.node().map_err(cluster_err)?.clone();
    match req {
        Request::Status => {
            let nodes = node.store.nodes().await.map_err(cluster_err)?;
            let me = nodes.iter().find(|v| v.record.name == node.name());
            Ok(json!({
                "node": node.name(),
                "state": me.map(|v| v.state()),
                "endpoints": node.store.endpoints(),
                "mesh": node.section.mesh,
                "key": node.public_key().to_hex(),
                "require_pq": node.section.require_pq,
                "lease_ttl_secs": node.section.lease_ttl_secs,
                "nodes": nodes.len(),
                "active": nodes.iter().filter(|v| v.state() == crate::model::NodeState::Active).count(),
                "problem": node.problem.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            }))
        }
        Request::Nodes => {
            let nodes = node.store.nodes().await.map_err(cluster_err)?;
            let trust = node.store.trust().await.map_err(cluster_err)?;
            Ok(Value::Array(
                nodes
                    .iter()
                    .map(|v| {
                        let r = &v.record;
                        json!({
                            "name": r.name, "state": v.state(), "mesh": r.mesh, "key": r.key,
                            "trusted": trust.contains_key(&r.key), "platform": r.platform,
                            "cpus": r.capacity.cpus, "memory_mib": r.capacity.memory_mib,
                            "draining": r.draining,
                        })
                    })
                    .collect(),
            ))
        }
        Request::TrustLs => to_value(node.store.trust().await.map_err(cluster_err)?),
        Request::TrustAdd { key, label } => {
            Ok(cx.kernel.act(cx.who, TrustAdd { node, key, label }).await?)
        }
        Request::TrustRm { key } => Ok(cx.kernel.act(cx.who, TrustRm { node, key }).await?),
        Request::Drain { node: target } => {
            Ok(cx.kernel.act(cx.who, Drain { node, target }).await?)
        }
        Request::Ping {
            node: target,
            count,
            size,
        } => {
            let r = cx
                .kernel
                .act(
                    cx.who,
                    Ping {
                        node,
                        target,
                        count,
                        size,
                    },
                )
                .await?;
            let median = r.rtt_us.get(r.rtt_us.len() / 2).copied();
            let p99 = r.rtt_us.get(r.rtt_us.len() * 99 / 100).copied();
            Ok(
                json!({ "pq": r.pq, "handshake_us": r.handshake_us, "count": r.rtt_us.len(),
                       "median_us": median, "p99_us": p99 }),
            )
        }
    }
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// This node and the cluster in short.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Every node: state, mesh address, key, trust, platform, capacity.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// The cluster trust store (static mesh keys admitted at the handshake).
    #[command(subcommand)]
    Trust(TrustCmd),
    /// Mark NODE as taking no new work (gated, recorded).
    Drain { node: String },
    /// Open a mesh session to NODE and time COUNT round trips.
    Ping {
        node: String,
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TrustCmd {
    /// Trust a node's static mesh key (64 hex characters; gated, recorded).
    Add {
        key: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Stop trusting a key (gated, recorded).
    Rm { key: String },
    /// List the trusted keys.
    Ls {
        #[arg(long)]
        json: bool,
    },
}

/// `weaver cluster`.
pub fn cli() -> weft_kernel::control::cli::CliCommand {
    weft_kernel::control::cli::CliCommand {
        command: || {
            ClusterCmd::augment_subcommands(
                clap::Command::new("cluster")
                    .about("The cluster this node is in: nodes, trust store, drain, mesh ping")
                    .subcommand_required(true),
            )
        },
        run: |cx, m| Box::pin(run(cx.state, m)),
    }
}

async fn run(state: &Path, m: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let cmd = ClusterCmd::from_arg_matches(m)?;
    let (req, json_out) = match cmd {
        ClusterCmd::Status { json } => (Request::Status, json),
        ClusterCmd::Nodes { json } => (Request::Nodes, json),
        ClusterCmd::Trust(TrustCmd::Add { key, label }) => {
            (Request::TrustAdd { key, label }, false)
        }
        ClusterCmd::Trust(TrustCmd::Rm { key }) => (Request::TrustRm { key }, false),
        ClusterCmd::Trust(TrustCmd::Ls { json }) => (Request::TrustLs, json),
        ClusterCmd::Drain { node } => (Request::Drain { node }, false),
        ClusterCmd::Ping {
            node,
            count,
            size,
            json,
        } => (Request::Ping { node, count, size }, json),
    };
    let v = weft_kernel::ask!(state, "cluster", &req);
    if json_out {
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    match req {
        Request::Status => {
            for k in [
                "node",
                "state",
                "endpoints",
                "mesh",
                "key",
                "require_pq",
                "nodes",
                "active",
                "problem",
            ] {
                println!("{k:<11} {}", cell(&v[k]));
            }
        }
        Request::Nodes => {
            let rows: Vec<Vec<String>> = weft_kernel::control::cli::items(&v)
                .iter()
                .map(|n| {
                    [
                        "name", "state", "mesh", "trusted", "draining", "platform", "cpus", "key",
                    ]
                    .iter()
                    .map(|k| cell(&n[*k]))
                    .collect()
                })
                .collect();
            table(
                &[
                    "NAME", "STATE", "MESH", "TRUSTED", "DRAINING", "PLATFORM", "CPUS", "KEY",
                ],
                &rows,
            );
        }
        Request::TrustLs => {
            let rows: Vec<Vec<String>> = v
                .as_object()
                .map(|o| {
                    o.values()
                        .map(|e| vec![cell(&e["key"]), cell(&e["label"])])
                        .collect()
                })
                .unwrap_or_default();
            table(&["KEY", "LABEL"], &rows);
        }
        Request::TrustAdd { .. } => println!("trusted {} ({})", cell(&v["key"]), cell(&v["label"])),
        Request::TrustRm { .. } => println!("removed {}", cell(&v["removed"])),
        Request::Drain { node } => println!("drained {node}"),
        Request::Ping { node, .. } => println!(
            "{node}: {} round trips, median {} µs, p99 {} µs; handshake {} µs ({})",
            cell(&v["count"]),
            cell(&v["median_us"]),
            cell(&v["p99_us"]),
            cell(&v["handshake_us"]),
            if v["pq"] == true {
                "hybrid"
            } else {
                "classical"
            }
        ),
    }
    Ok(ExitCode::SUCCESS)
}
