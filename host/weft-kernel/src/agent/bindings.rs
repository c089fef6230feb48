//! Host bindings of the `weft:kernel` agent world.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "agent",
    imports: { default: async },
    exports: { default: async },
});
