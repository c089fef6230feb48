//! [`Extensions`]: state an embedder's host interfaces attach to one store,
//! and [`ToolImports`]: the interfaces it adds to every tool's linker.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::Linker;

use crate::sandbox::StoreData;
use crate::RunError;

/// A map from type to value, read by host functions: an agent's or a tool
/// run's state for the interfaces subsystems link (`wasi:http`, `ecc`).
/// A tool's store holds only this, so the runtime needs to know none of them.
#[derive(Default)]
pub struct Extensions {
    map: HashMap<TypeId, Box<dyn Any + Send>>,
}

impl Extensions {
    /// Attach `value` (replacing any earlier value of its type).
    pub fn insert<T: Any + Send>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// The value of type `T`, attaching its default first if none was.
    pub fn get_or_default<T: Any + Send + Default>(&mut self) -> &mut T {
        let b = self
            .map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        match b.downcast_mut::<T>() {
            Some(v) => v,
            // The map is keyed by the type id: the box holds a `T`.
            None => unreachable!("extension of the wrong type"),
        }
    }

    /// The value of type `T`, if one was attached.
    pub fn get_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.map
            .get_mut(&TypeId::of::<T>())
            .and_then(|b| b.downcast_mut())
    }
}

/// The linker of tools and WASI commands (components; preview1 modules get
/// WASI preview1 only).
pub type ToolLinker = Linker<StoreData<Extensions>>;

/// Adds host interfaces to a [`ToolLinker`].
pub type LinkTools = Arc<dyn Fn(&mut ToolLinker) -> Result<(), RunError> + Send + Sync>;

/// The interfaces added to tools' linkers, by who added them.
#[derive(Default)]
pub(crate) struct ToolImports {
    pub list: Vec<(&'static str, LinkTools)>,
}

impl ToolImports {
    /// Add or replace `name`'s interfaces.
    pub fn set(&mut self, name: &'static str, link: LinkTools) {
        self.list.retain(|(n, _)| *n != name);
        self.list.push((name, link));
    }

    /// Run every adder on `linker`.
    pub fn apply(&self, linker: &mut ToolLinker) -> Result<(), RunError> {
        for (_, link) in &self.list {
            link(linker)?;
        }
        Ok(())
    }
}
