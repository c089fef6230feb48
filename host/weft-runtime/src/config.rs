//! The knobs: per-instance [`Limits`] and engine-wide [`RuntimeConfig`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What one guest instance may consume. Every store the runtime creates is
/// bound by one of these; there is no unlimited mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Fuel budget for one call (roughly one unit per wasm instruction).
    /// Exhausting it raises [`crate::RunError::OutOfFuel`].
    pub fuel: u64,
    /// Wall-clock deadline for one call, checked wherever the guest yields
    /// (see [`Preemption`]) and by a host timer around host calls.
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    /// Upper bound on each linear memory, in bytes.
    pub max_memory_bytes: usize,
    /// Upper bound on the elements of each table.
    pub max_table_elements: usize,
    /// Core instances, tables and memories a store may create. Bounded so a
    /// hostile component cannot exhaust the instance pool.
    pub max_instances: usize,
    /// See `max_instances`.
    pub max_tables: usize,
    /// See `max_instances`.
    pub max_memories: usize,
    /// Bytes captured from each of stdout and stderr. Writing more raises
    /// [`crate::RunError::OutputLimit`].
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 2_000_000_000,
            timeout: Duration::from_secs(10),
            max_memory_bytes: 256 << 20,
            max_table_elements: 200_000,
            max_instances: 64,
            max_tables: 64,
            max_memories: 64,
            max_output_bytes: 1 << 20,
        }
    }
}

/// Engine-wide settings, fixed when the [`crate::Runtime`] is built.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled artifacts are kept. `None` keeps them in memory only.
    /// Created with mode 0700 if missing; an existing dir must be a real
    /// directory owned by the current user with no group or other access,
    /// or [`crate::Runtime::new`] fails (see [`crate::CacheError`]).
    pub cache_dir: Option<PathBuf>,
    /// Pooling allocator sizing.
    pub pool: PoolConfig,
    /// Where a running guest's wall-clock deadline is checked.
    pub preemption: Preemption,
    /// A busy guest yields to other tokio tasks after this much fuel, so one
    /// guest cannot hold a worker thread. In [`Preemption::Yields`] mode it
    /// is also how late a deadline may be noticed.
    pub fuel_yield_interval: u64,
    /// Wasm stack per call; overflowing it raises `StackOverflow`.
    pub max_wasm_stack: usize,
    /// Guests' file operations run on the calling thread rather than on
    /// tokio's blocking pool. Right for one guest in its own process
    /// (`weaver tool run FILE`: ripgrep over 90 MB spends a third of its
    /// time handing 64 KiB reads to the pool and back); wrong for a kernel,
    /// where a slow disk would stall every guest sharing the thread.
    pub blocking_fs: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            pool: PoolConfig::default(),
            preemption: Preemption::Yields,
            fuel_yield_interval: 100_000,
            max_wasm_stack: 1 << 20,
            blocking_fs: false,
        }
    }
}

/// How a guest that runs past its deadline is stopped. Both stop every
/// guest; they differ in what the compiled code pays and in how late the
/// stop can come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preemption {
    /// At the guest's fuel yields: every `fuel_yield_interval` units of fuel
    /// a busy guest hands its thread back to the scheduler, which drops the
    /// call once its deadline has passed. Fuel is counted anyway, so this
    /// adds nothing to the compiled code; a deadline is noticed within one
    /// fuel slice (about 0.1 ms at the default 100,000) plus the timer's
    /// millisecond.
    Yields,
    /// Also an epoch check at every function entry and loop header, ticked by
    /// a thread every `tick`: a deadline is noticed within a tick even inside
    /// one slice, at a cost on loop-heavy code (ripgrep over 90 MB: 3–7%
    /// more time than `Yields`; docs/kernel.md has the figures).
    Epochs {
        /// How often the epoch advances; the resolution of every deadline.
        tick: Duration,
    },
}

/// Sizing of the pooling instance allocator. Slots are reserved up front
/// (virtual memory only), which is what makes instantiation cheap.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Live component instances (stores) at once.
    pub total_component_instances: u32,
    /// Live core instances, memories and tables at once, across all stores.
    pub total_core_instances: u32,
    /// See `total_core_instances`.
    pub total_memories: u32,
    /// See `total_core_instances`.
    pub total_tables: u32,
    /// Async fiber stacks; one per in-flight call.
    pub total_stacks: u32,
    /// Largest linear memory any instance may have. [`Limits::max_memory_bytes`]
    /// is clamped to this.
    pub max_memory_bytes: usize,
    /// Largest table any instance may have.
    pub table_elements: usize,
    /// Per-component shape limits; big language runtimes (CPython,
    /// SpiderMonkey) need generous values.
    pub max_core_instances_per_component: u32,
    /// See `max_core_instances_per_component`.
    pub max_memories_per_component: u32,
    /// See `max_core_instances_per_component`.
    pub max_tables_per_component: u32,
    /// Bytes of host-side state per component instance (a pool slot's size).
    pub max_component_instance_size: usize,
    /// Bytes of host-side state per core instance (a pool slot's size).
    pub max_core_instance_size: usize,
    /// Bytes of each freed linear memory (and table) reset in place instead
    /// of being handed back to the OS. Re-instantiating then costs no
    /// `madvise`, no TLB shootdown and no page faults; on Linux ≥ 6.7 only
    /// the pages a guest actually dirtied are reset (`PAGEMAP_SCAN`). The
    /// price is up to this much resident memory per warm slot; 0 turns it off.
    pub keep_resident_bytes: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            total_component_instances: 1_000,
            total_core_instances: 4_000,
            total_memories: 2_000,
            total_tables: 4_000,
            total_stacks: 1_000,
            max_memory_bytes: 1 << 30,
            table_elements: 200_000,
            max_core_instances_per_component: 64,
            max_memories_per_component: 16,
            max_tables_per_component: 32,
            max_component_instance_size: 1 << 20,
            max_core_instance_size: 1 << 20,
            keep_resident_bytes: 1 << 20,
        }
    }
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
