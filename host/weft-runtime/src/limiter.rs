//! Per-store memory and table limits.
//!
//! Like wasmtime's `StoreLimits`, but it remembers the growth it refused so
//! that a guest which aborts after a failed allocation (Rust guests do) is
//! still reported as a memory limit, not as an anonymous trap.

use wasmtime::ResourceLimiter;

use crate::config::Limits;
use crate::error::GrowthDenied;

pub(crate) struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    instances: usize,
    tables: usize,
    memories: usize,
    /// Peak linear memory seen, for reports.
    pub peak_memory: usize,
    pub denied: Option<(&'static str, usize, usize)>,
}

impl Limiter {
    pub fn new(limits: &Limits) -> Self {
        Limiter {
            memory_bytes: limits.max_memory_bytes,
            table_elements: limits.max_table_elements,
            instances: limits.max_instances,
            tables: limits.max_tables,
            memories: limits.max_memories,
            peak_memory: 0,
            denied: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.denied = Some(("memory", desired, self.memory_bytes));
            // Trapping (rather than returning false) makes the failure
            // immediate and unambiguous for every guest language.
            return Err(wasmtime::Error::new(GrowthDenied {
                what: "memory",
                requested: desired,
                limit: self.memory_bytes,
            }));
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            self.denied = Some(("table", desired, self.table_elements));
            return Err(wasmtime::Error::new(GrowthDenied {
                what: "table",
                requested: desired,
                limit: self.table_elements,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }
    fn tables(&self) -> usize {
        self.tables
    }
    fn memories(&self) -> usize {
        self.memories
    }
}
