# Weft task runner. `just` lists the recipes.
set shell := ["bash", "-euo", "pipefail", "-c"]

guests := "components/target/wasm32-wasip2/release"

default:
    @just --list

# Build every guest component (installs the wasm32-wasip2 target if missing).
components:
    rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
    cd components && cargo build --target wasm32-wasip2 --release --locked
    bash components/polyglot/build.sh
    # Guests that apps/hello names, copied into its bundle dir (see apps/hello/README.md).
    mkdir -p apps/hello/components
    cp {{guests}}/probe.wasm {{guests}}/calc.wasm apps/hello/components/

# The C, Python and JavaScript versions of the `wordcount` tool, into components/dist/
# (installs their pinned toolchains when missing; skips outputs that are up to date).
polyglot *LANGS:
    bash components/polyglot/build.sh {{LANGS}}

# Build the host and the weaver CLI.
build: components
    cargo build -p weaver --locked

# Run every test: guests first, then the host workspace, then guest unit tests.
test: build
    if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace --locked --no-fail-fast; else cargo test --workspace --locked --no-fail-fast; fi
    cd components && cargo test --workspace --locked

# Benchmarks: each prints a markdown table with its goals (release builds).
bench: components
    cargo bench --locked -p weft-runtime --bench runtime
    cargo bench --locked -p weft-chain --bench chain
    cargo bench --locked -p weft-gate --bench gate
    cargo bench --locked -p weft-kernel --bench kernel

# Formatting and clippy, host and guests, warnings are errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cd components && cargo fmt --all --check
    cd components && cargo clippy --workspace --target wasm32-wasip2 --locked -- -D warnings

# The main job: run an example tool through `weaver tool run` and show its result and fuel.
run: build
    @echo '$ weaver tool run calc.wasm -- '"'"'{"expr": "2 * (x + 1) ^ 2", "vars": {"x": 3}}'"'"
    ./target/debug/weaver tool run {{guests}}/calc.wasm -- '{"expr": "2 * (x + 1) ^ 2", "vars": {"x": 3}}'
    @echo '$ weaver tool run calc.wasm --json -- ...'
    ./target/debug/weaver tool run {{guests}}/calc.wasm --json -- '{"expr": "sqrt(2) * max(1, 2, 3)"}'
    @echo '$ printf "hello weft\nsecond line\n" | weaver tool run wc.wasm --json'
    printf 'hello weft\nsecond line\n' | ./target/debug/weaver tool run {{guests}}/wc.wasm --json
