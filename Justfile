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
    cargo bench --locked -p weft-subsystems --bench subsystems

# Formatting and clippy, host and guests, warnings are errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cd components && cargo fmt --all --check
    cd components && cargo clippy --workspace --target wasm32-wasip2 --locked -- -D warnings

# The main job: run tools through `weaver tool run`, then boot a kernel (with the governance,
# cron and health components) that spawns an agent and registers a tool, and verify its chain.
run: build _tools-demo _kernel-demo

_tools-demo:
    @echo '$ weaver tool run calc.wasm -- '"'"'{"expr": "2 * (x + 1) ^ 2", "vars": {"x": 3}}'"'"
    ./target/debug/weaver tool run {{guests}}/calc.wasm -- '{"expr": "2 * (x + 1) ^ 2", "vars": {"x": 3}}'
    @echo '$ weaver tool run calc.wasm --json -- ...'
    ./target/debug/weaver tool run {{guests}}/calc.wasm --json -- '{"expr": "sqrt(2) * max(1, 2, 3)"}'
    @echo '$ printf "hello weft\nsecond line\n" | weaver tool run wc.wasm --json'
    printf 'hello weft\nsecond line\n' | ./target/debug/weaver tool run {{guests}}/wc.wasm --json

_kernel-demo:
    #!/usr/bin/env bash
    set -euo pipefail
    state=$(mktemp -d)
    trap 'rm -rf "$state"' EXIT
    echo "\$ weaver run --once --state $state --spawn echo=probe.wasm --tool calc=calc.wasm"
    ./target/debug/weaver run --once --state "$state" --spawn echo={{guests}}/probe.wasm --tool calc={{guests}}/calc.wasm 2>&1 | tee "$state/run.log"
    key=$(sed -n 's/.*public key \([0-9a-f]*\).*/\1/p' "$state/run.log" | head -1)
    echo "\$ weaver chain tail $state --key $key -n 8"
    ./target/debug/weaver chain tail "$state" --key "$key" -n 8
    echo "\$ weaver chain verify $state --key $key"
    ./target/debug/weaver chain verify "$state" --key "$key"
