//! Generated host bindings of the three subsystem worlds.

#[allow(missing_docs)]
pub mod governance {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "governance",
        imports: { default: async },
        exports: { default: async },
    });
}

#[allow(missing_docs)]
pub mod cron {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "cron",
        imports: { default: async },
        exports: { default: async },
    });
}

#[allow(missing_docs)]
pub mod health {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "health",
        imports: { default: async },
        exports: { default: async },
    });
}
