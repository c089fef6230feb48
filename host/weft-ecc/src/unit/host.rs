//! The host side of `weft:kernel/ecc` for agents. Each function resolves
//! its arguments (a bad name or key is `invalid` before anything else),
//! passes the chokepoint as the calling agent ([`super::actions`]), then
//! reads under the state's read lock or records and applies its op.

use std::sync::Arc;

use wasmtime::component::HasData;
use weft_kernel::agent::bindings::weft::kernel::ecc::{self as w, Error};
use weft_kernel::agent::{AgentCtx, AgentLinker};
use weft_kernel::{KernelError, KernelResult};
use weft_runtime::StoreData;

use super::actions::{BuildOp, EccAccess, EccMutate};
use super::convert as c;
use super::{AgentEcc, Inner};
use crate::{CrossRef, Ecc, EccError, EccOp, HlcTimestamp, Namespace, OpOutcome, UniversalNodeId};

/// An agent's view for its `ecc` calls.
pub(crate) struct EccHost<'a> {
    ctx: &'a mut AgentCtx,
}

struct EccData;

impl HasData for EccData {
    type Data<'a> = EccHost<'a>;
}

fn host(s: &mut StoreData<AgentCtx>) -> EccHost<'_> {
    EccHost { ctx: &mut s.data }
}

/// Link `weft:kernel/ecc` into the agent world.
pub(crate) fn link(linker: &mut AgentLinker) -> KernelResult<()> {
    w::add_to_linker::<_, EccData>(linker, host)
        .map_err(|e| KernelError::Failed(format!("cannot link weft:kernel/ecc: {e:#}")))
}

fn unexpected(o: OpOutcome) -> Error {
    Error::Failed(format!("unexpected outcome {o:?}"))
}

impl EccHost<'_> {
    fn inner(&mut self) -> Result<Arc<Inner>, Error> {
        self.ctx
            .extensions
            .get_mut::<AgentEcc>()
            .map(|a| a.0.clone())
            .ok_or_else(|| Error::Failed("this agent was started without the ecc unit".into()))
    }

    /// Check and gate a read of `op` on `ns`.
    async fn access(
        &mut self,
        op: &'static str,
        ns: &str,
    ) -> Result<(Arc<Inner>, Namespace), Error> {
        let namespace = c::ns(ns)?;
        let inner = self.inner()?;
        self.ctx
            .act(EccAccess {
                op,
                ns: Some(ns.to_string()),
                inner: inner.clone(),
            })
            .await
            .map_err(c::kernel_error)?;
        Ok((inner, namespace))
    }

    /// Check and gate `op`, then build, record and apply it.
    async fn mutate(
        &mut self,
        op: &'static str,
        ns: Option<&Namespace>,
        build: BuildOp,
    ) -> Result<OpOutcome, Error> {
        let inner = self.inner()?;
        self.ctx
            .act(EccMutate {
                op,
                ns: ns.map(|n| n.as_str().to_string()),
                build,
                inner,
            })
            .await
            .map_err(c::kernel_error)?
            .map_err(c::ecc_error)
    }

    /// The timestamp of the message being handled, to merge into the clock
    /// before a clock event (a receive in HLC terms).
    fn message_ts(&self) -> Option<HlcTimestamp> {
        self.ctx
            .handling()
            .map(|h| HlcTimestamp::new(h.timestamp_ns, 0))
    }
}

/// Merge a received message's stamp (in memory: the op built next carries
/// a later stamp, which is what persists it). One too far ahead is
/// ignored here; it is not ours to refuse.
fn merge(ecc: &mut Ecc, ts: Option<HlcTimestamp>) {
    if let Some(ts) = ts {
        let _ = ecc.prepare_merge(ts);
    }
}

fn ready(op: EccOp) -> BuildOp {
    Box::new(move |_| Ok(op))
}

impl w::Host for EccHost<'_> {
    async fn create_index(&mut self, ns: String, config: w::IndexConfig) -> Result<(), Error> {
        let ns = c::ns(&ns)?;
        let config = c::index_config(config);
        let op = EccOp::CreateIndex {
            ns: ns.clone(),
            config,
        };
        match self.mutate("create_index", Some(&ns), ready(op)).await? {
            OpOutcome::IndexCreated => Ok(()),
            o => Err(unexpected(o)),
        }
    }

    async fn drop_index(&mut self, ns: String) -> Result<u64, Error> {
        let ns = c::ns(&ns)?;
        let op = EccOp::DropIndex { ns: ns.clone() };
        match self.mutate("drop_index", Some(&ns), ready(op)).await? {
            OpOutcome::IndexDropped { entries, .. } => Ok(entries as u64),
            o => Err(unexpected(o)),
        }
    }

    async fn insert(&mut self, ns: String, entries: Vec<w::Entry>) -> Result<u64, Error> {
        let ns = c::ns(&ns)?;
        let entries = c::entries(entries)?;
        let op = EccOp::Insert {
            ns: ns.clone(),
            entries,
        };
        match self.mutate("insert", Some(&ns), ready(op)).await? {
            OpOutcome::Inserted { entries, .. } => {
                Ok(entries.iter().filter(|e| e.replaced).count() as u64)
            }
            o => Err(unexpected(o)),
        }
    }

    async fn delete(&mut self, ns: String, keys: Vec<w::Key>) -> Result<u64, Error> {
        let ns = c::ns(&ns)?;
        let keys = keys
            .into_iter()
            .map(c::key)
            .collect::<Result<Vec<_>, _>>()?;
        let op = EccOp::Delete {
            ns: ns.clone(),
            keys,
        };
        match self.mutate("delete", Some(&ns), ready(op)).await? {
            OpOutcome::Deleted { deleted, .. } => Ok(deleted as u64),
            o => Err(unexpected(o)),
        }
    }

    async fn search(
        &mut self,
        ns: String,
        query: Vec<f32>,
        k: u32,
        ef: u32,
    ) -> Result<Vec<w::Hit>, Error> {
        let (inner, ns) = self.access("search", &ns).await?;
        let hits = inner
            .read()
            .search(&ns, &query, k as usize, ef.max(k) as usize)
            .map_err(c::ecc_error)?;
        Ok(c::hits(hits))
    }

    async fn search_batch(
        &mut self,
        ns: String,
        queries: Vec<Vec<f32>>,
        k: u32,
        ef: u32,
    ) -> Result<Vec<Vec<w::Hit>>, Error> {
        let (inner, ns) = self.access("search", &ns).await?;
        let ecc = inner.read();
        queries
            .iter()
            .map(|q| {
                ecc.search(&ns, q, k as usize, ef.max(k) as usize)
                    .map(c::hits)
                    .map_err(c::ecc_error)
            })
            .collect()
    }

    async fn get(&mut self, ns: String, key: w::Key) -> Result<Option<Vec<f32>>, Error> {
        let key = c::key(key)?;
        let (inner, ns) = self.access("get", &ns).await?;
        let ecc = inner.read();
        let index = ecc
            .index(&ns)
            .ok_or_else(|| c::ecc_error(EccError::NoIndex { ns: ns.clone() }))?;
        Ok(index.get(&key).map(<[f32]>::to_vec))
    }

    async fn stats(&mut self, ns: String) -> Result<w::IndexStats, Error> {
        let (inner, ns) = self.access("stats", &ns).await?;
        let stats = inner.read().index_stats(&ns).map_err(c::ecc_error)?;
        Ok(c::stats_out(stats))
    }

    async fn add_node(&mut self, ns: String, node: w::Node) -> Result<bool, Error> {
        let ns = c::ns(&ns)?;
        let node = c::node(node)?;
        let op = EccOp::AddNode {
            ns: ns.clone(),
            node,
        };
        match self.mutate("add_node", Some(&ns), ready(op)).await? {
            OpOutcome::NodeAdded { created } => Ok(created),
            o => Err(unexpected(o)),
        }
    }

    async fn remove_node(&mut self, ns: String, key: w::Key) -> Result<u32, Error> {
        let ns = c::ns(&ns)?;
        let key = c::key(key)?;
        let op = EccOp::RemoveNode {
            ns: ns.clone(),
            key,
        };
        match self.mutate("remove_node", Some(&ns), ready(op)).await? {
            OpOutcome::NodeRemoved { edges_removed, .. } => {
                Ok(u32::try_from(edges_removed).unwrap_or(u32::MAX))
            }
            o => Err(unexpected(o)),
        }
    }

    async fn link(
        &mut self,
        ns: String,
        from: w::Key,
        to: w::Key,
        kind: w::EdgeKind,
        weight: f32,
    ) -> Result<bool, Error> {
        let ns = c::ns(&ns)?;
        let op = EccOp::Link {
            ns: ns.clone(),
            from: c::key(from)?,
            to: c::key(to)?,
            kind: c::edge_kind(kind),
            weight,
        };
        match self.mutate("link", Some(&ns), ready(op)).await? {
            OpOutcome::Linked { created } => Ok(created),
            o => Err(unexpected(o)),
        }
    }

    async fn unlink(
        &mut self,
        ns: String,
        from: w::Key,
        to: w::Key,
        kind: Option<w::EdgeKind>,
    ) -> Result<u32, Error> {
        let ns = c::ns(&ns)?;
        let op = EccOp::Unlink {
            ns: ns.clone(),
            from: c::key(from)?,
            to: c::key(to)?,
            kind: kind.map(c::edge_kind),
        };
        match self.mutate("unlink", Some(&ns), ready(op)).await? {
            OpOutcome::Unlinked { removed } => Ok(u32::try_from(removed).unwrap_or(u32::MAX)),
            o => Err(unexpected(o)),
        }
    }

    async fn edges(
        &mut self,
        ns: String,
        key: w::Key,
        dir: w::Direction,
    ) -> Result<Vec<w::Edge>, Error> {
        let key = c::key(key)?;
        let (inner, ns) = self.access("graph", &ns).await?;
        let ecc = inner.read();
        let graph = graph_of(&ecc, &ns, &key)?;
        let edges = match c::direction(dir) {
            crate::Direction::Forward => graph.edges_from(&key),
            crate::Direction::Reverse => graph.edges_to(&key),
        }
        .map_err(c::ecc_error)?;
        Ok(c::edges_out(edges))
    }

    async fn traverse(
        &mut self,
        ns: String,
        start: w::Key,
        dir: w::Direction,
        max_depth: u32,
    ) -> Result<Vec<w::Visit>, Error> {
        let start = c::key(start)?;
        let (inner, ns) = self.access("graph", &ns).await?;
        let ecc = inner.read();
        let graph = graph_of(&ecc, &ns, &start)?;
        let visits = graph
            .traverse(&start, c::direction(dir), max_depth as usize)
            .map_err(c::ecc_error)?;
        Ok(c::visits_out(visits))
    }

    async fn find_path(
        &mut self,
        ns: String,
        from: w::Key,
        to: w::Key,
        max_depth: u32,
    ) -> Result<Option<Vec<w::Key>>, Error> {
        let (from, to) = (c::key(from)?, c::key(to)?);
        let (inner, ns) = self.access("graph", &ns).await?;
        let ecc = inner.read();
        let graph = graph_of(&ecc, &ns, &from)?;
        let path = graph
            .find_path(&from, &to, max_depth as usize)
            .map_err(c::ecc_error)?;
        Ok(path.map(|p| p.into_iter().map(c::key_out).collect()))
    }

    async fn add_ref(&mut self, ns: String, r: w::CrossRef) -> Result<bool, Error> {
        let ns = c::ns(&ns)?;
        let cross_ref = c::cross_ref(r)?;
        let op = EccOp::AddRef {
            ns: ns.clone(),
            cross_ref,
        };
        match self.mutate("add_ref", Some(&ns), ready(op)).await? {
            OpOutcome::RefAdded { created } => Ok(created),
            o => Err(unexpected(o)),
        }
    }

    async fn remove_ref(&mut self, ns: String, r: w::CrossRef) -> Result<(), Error> {
        let ns = c::ns(&ns)?;
        let cross_ref = c::cross_ref(r)?;
        let op = EccOp::RemoveRef {
            ns: ns.clone(),
            cross_ref,
        };
        match self.mutate("remove_ref", Some(&ns), ready(op)).await? {
            OpOutcome::RefRemoved => Ok(()),
            o => Err(unexpected(o)),
        }
    }

    async fn refs_from(&mut self, ns: String, node: w::NodeRef) -> Result<Vec<w::CrossRef>, Error> {
        let node = c::node_ref(node)?;
        let (inner, ns) = self.access("refs", &ns).await?;
        let refs: Vec<CrossRef> = inner
            .read()
            .crossrefs(&ns)
            .map(|s| s.forward(&node))
            .unwrap_or_default();
        Ok(c::cross_refs_out(refs))
    }

    async fn refs_to(&mut self, ns: String, node: w::NodeRef) -> Result<Vec<w::CrossRef>, Error> {
        let node = c::node_ref(node)?;
        let (inner, ns) = self.access("refs", &ns).await?;
        let refs: Vec<CrossRef> = inner
            .read()
            .crossrefs(&ns)
            .map(|s| s.reverse(&node))
            .unwrap_or_default();
        Ok(c::cross_refs_out(refs))
    }

    async fn node_id(&mut self, ns: String, node: w::NodeRef) -> Result<Vec<u8>, Error> {
        let node = c::node_ref(node)?;
        node.validate().map_err(c::ecc_error)?;
        let (_, ns) = self.access("refs", &ns).await?;
        Ok(UniversalNodeId::of(&ns, &node).0.to_vec())
    }

    async fn emit(
        &mut self,
        ns: String,
        topic: String,
        source: Option<w::NodeRef>,
        payload: Vec<u8>,
    ) -> Result<w::Hlc, Error> {
        let ns = c::ns(&ns)?;
        let source = source.map(c::node_ref).transpose()?;
        let seen = self.message_ts();
        let n = ns.clone();
        let build: BuildOp = Box::new(move |ecc| {
            merge(ecc, seen);
            ecc.prepare_emit(&n, &topic, source, payload)
        });
        match self.mutate("emit", Some(&ns), build).await? {
            OpOutcome::Queued { ts, .. } => Ok(c::hlc_out(ts)),
            o => Err(unexpected(o)),
        }
    }

    async fn receive(
        &mut self,
        ns: String,
        ts: w::Hlc,
        topic: String,
        source: Option<w::NodeRef>,
        payload: Vec<u8>,
    ) -> Result<w::Hlc, Error> {
        let ns = c::ns(&ns)?;
        let source = source.map(c::node_ref).transpose()?;
        let remote = c::hlc(ts);
        let seen = self.message_ts();
        let n = ns.clone();
        let build: BuildOp = Box::new(move |ecc| {
            merge(ecc, seen);
            ecc.prepare_receive(&n, remote, &topic, source, payload)
        });
        match self.mutate("emit", Some(&ns), build).await? {
            OpOutcome::Queued { ts, .. } => Ok(c::hlc_out(ts)),
            o => Err(unexpected(o)),
        }
    }

    async fn drain(&mut self, ns: String) -> Result<Vec<w::Impulse>, Error> {
        let ns = c::ns(&ns)?;
        let n = ns.clone();
        let build: BuildOp = Box::new(move |ecc| {
            Ok(EccOp::Drain {
                upto: ecc.clock().peek_now(),
                ns: n,
            })
        });
        match self.mutate("drain", Some(&ns), build).await? {
            OpOutcome::Drained { impulses } => Ok(c::impulses_out(impulses)),
            o => Err(unexpected(o)),
        }
    }

    async fn pending(&mut self, ns: String) -> Result<u64, Error> {
        let (inner, ns) = self.access("pending", &ns).await?;
        let n = inner.read().pending(&ns);
        Ok(n as u64)
    }

    async fn clock_now(&mut self) -> Result<w::Hlc, Error> {
        let seen = self.message_ts();
        let build: BuildOp = Box::new(move |ecc| {
            merge(ecc, seen);
            Ok(ecc.prepare_tick())
        });
        match self.mutate("clock", None, build).await? {
            OpOutcome::ClockRaised { now } => Ok(c::hlc_out(now)),
            o => Err(unexpected(o)),
        }
    }

    async fn clock_merge(&mut self, remote: w::Hlc) -> Result<w::Hlc, Error> {
        let remote = c::hlc(remote);
        let seen = self.message_ts();
        let build: BuildOp = Box::new(move |ecc| {
            merge(ecc, seen);
            ecc.prepare_merge(remote)
        });
        match self.mutate("clock", None, build).await? {
            OpOutcome::ClockRaised { now } => Ok(c::hlc_out(now)),
            o => Err(unexpected(o)),
        }
    }
}

/// The graph of `ns`, or `not-found` naming `key` when it has none.
fn graph_of<'e>(
    ecc: &'e Ecc,
    ns: &Namespace,
    key: &crate::Key,
) -> Result<&'e crate::CausalGraph, Error> {
    ecc.graph(ns).ok_or_else(|| {
        c::ecc_error(EccError::NodeNotFound {
            ns: ns.clone(),
            key: key.clone(),
        })
    })
}
