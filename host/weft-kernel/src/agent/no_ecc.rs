//! `weft:kernel/ecc` for a kernel booted without the `ecc` unit: every
//! call fails with a typed error saying so. The agent world imports
//! `ecc`, and some guests (componentize-py's) import every interface of
//! their world whether they call it or not, so the interface must be
//! linked for them to instantiate at all.

use wasmtime::component::HasData;

use super::bindings::weft::kernel::ecc::{
    self, CrossRef, Direction, Edge, EdgeKind, Entry, Error, Hit, Hlc, Impulse, IndexConfig,
    IndexStats, Key, Node, NodeRef, Visit,
};
use super::AgentLinker;
use crate::error::{KernelError, KernelResult};

/// The host side of the fallback: it holds nothing.
pub(crate) struct NoEcc;

impl HasData for NoEcc {
    type Data<'a> = NoEcc;
}

fn off<T>() -> Result<T, Error> {
    Err(Error::Failed(
        "ECC is not available: this kernel was booted without the `ecc` unit".into(),
    ))
}

/// Link the fallback.
pub(crate) fn link(linker: &mut AgentLinker) -> KernelResult<()> {
    ecc::add_to_linker::<_, NoEcc>(linker, |_| NoEcc)
        .map_err(|e| KernelError::Failed(format!("cannot link the ecc fallback: {e:#}")))
}

impl ecc::Host for NoEcc {
    async fn create_index(&mut self, _ns: String, _config: IndexConfig) -> Result<(), Error> {
        off()
    }
    async fn drop_index(&mut self, _ns: String) -> Result<u64, Error> {
        off()
    }
    async fn insert(&mut self, _ns: String, _entries: Vec<Entry>) -> Result<u64, Error> {
        off()
    }
    async fn delete(&mut self, _ns: String, _keys: Vec<Key>) -> Result<u64, Error> {
        off()
    }
    async fn search(
        &mut self,
        _ns: String,
        _query: Vec<f32>,
        _k: u32,
        _ef: u32,
    ) -> Result<Vec<Hit>, Error> {
        off()
    }
    async fn search_batch(
        &mut self,
        _ns: String,
        _queries: Vec<Vec<f32>>,
        _k: u32,
        _ef: u32,
    ) -> Result<Vec<Vec<Hit>>, Error> {
        off()
    }
    async fn get(&mut self, _ns: String, _key: Key) -> Result<Option<Vec<f32>>, Error> {
        off()
    }
    async fn stats(&mut self, _ns: String) -> Result<IndexStats, Error> {
        off()
    }
    async fn add_node(&mut self, _ns: String, _node: Node) -> Result<bool, Error> {
        off()
    }
    async fn remove_node(&mut self, _ns: String, _key: Key) -> Result<u32, Error> {
        off()
    }
    async fn link(
        &mut self,
        _ns: String,
        _from: Key,
        _to: Key,
        _kind: EdgeKind,
        _weight: f32,
    ) -> Result<bool, Error> {
        off()
    }
    async fn unlink(
        &mut self,
        _ns: String,
        _from: Key,
        _to: Key,
        _kind: Option<EdgeKind>,
    ) -> Result<u32, Error> {
        off()
    }
    async fn edges(&mut self, _ns: String, _key: Key, _dir: Direction) -> Result<Vec<Edge>, Error> {
        off()
    }
    async fn traverse(
        &mut self,
        _ns: String,
        _start: Key,
        _dir: Direction,
        _max_depth: u32,
    ) -> Result<Vec<Visit>, Error> {
        off()
    }
    async fn find_path(
        &mut self,
        _ns: String,
        _from: Key,
        _to: Key,
        _max_depth: u32,
    ) -> Result<Option<Vec<Key>>, Error> {
        off()
    }
    async fn add_ref(&mut self, _ns: String, _r: CrossRef) -> Result<bool, Error> {
        off()
    }
    async fn remove_ref(&mut self, _ns: String, _r: CrossRef) -> Result<(), Error> {
        off()
    }
    async fn refs_from(&mut self, _ns: String, _node: NodeRef) -> Result<Vec<CrossRef>, Error> {
        off()
    }
    async fn refs_to(&mut self, _ns: String, _node: NodeRef) -> Result<Vec<CrossRef>, Error> {
        off()
    }
    async fn node_id(&mut self, _ns: String, _node: NodeRef) -> Result<Vec<u8>, Error> {
        off()
    }
    async fn emit(
        &mut self,
        _ns: String,
        _topic: String,
        _source: Option<NodeRef>,
        _payload: Vec<u8>,
    ) -> Result<Hlc, Error> {
        off()
    }
    async fn receive(
        &mut self,
        _ns: String,
        _ts: Hlc,
        _topic: String,
        _source: Option<NodeRef>,
        _payload: Vec<u8>,
    ) -> Result<Hlc, Error> {
        off()
    }
    async fn drain(&mut self, _ns: String) -> Result<Vec<Impulse>, Error> {
        off()
    }
    async fn pending(&mut self, _ns: String) -> Result<u64, Error> {
        off()
    }
    async fn clock_now(&mut self) -> Result<Hlc, Error> {
        off()
    }
    async fn clock_merge(&mut self, _remote: Hlc) -> Result<Hlc, Error> {
        off()
    }
}
