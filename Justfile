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
    mkdir -p apps/webhook/components
    cp {{guests}}/fetcher.wasm {{guests}}/hello_http.wasm apps/webhook/components/
    mkdir -p apps/polyglot/components
    cp {{guests}}/probe.wasm {{guests}}/wc.wasm components/dist/agent-py.wasm components/dist/wordcount-c.wasm components/dist/wordcount-py.wasm components/dist/wordcount-js.wasm apps/polyglot/components/

# The C, Python and JavaScript versions of the `wordcount` tool, into components/dist/
# (installs their pinned toolchains when missing; skips outputs that are up to date).
polyglot *LANGS:
    bash components/polyglot/build.sh {{LANGS}}

# Build the host and the weaver CLI (the subsystem components are built into it).
build: components protoc
    cargo build -p weaver --locked

# protoc, which the etcd client's build script needs (the cluster unit); installed once.
protoc:
    #!/usr/bin/env bash
    set -euo pipefail
    # etcd-client's build also reads google/protobuf/descriptor.proto (libprotobuf-dev).
    command -v protoc >/dev/null && [ -f /usr/include/google/protobuf/descriptor.proto ] && exit 0
    SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev

# The official WebAssembly/wasi-testsuite (its prebuilt wasm32-wasip1 programs, vendored in
# tests/wasi-testsuite/) run as core modules by `weaver tool run`; every test must pass.
test-wasi: build
    cargo test --locked -p weft-e2e --test wasi_testsuite -- --nocapture

# Every `weaver new` template, 4 languages x agent, tool, service: generated into a temp dir,
# built by its own build.sh (which installs a missing toolchain at the pinned versions), installed
# into a fresh kernel, started and talked to; prints each build's time. `just test` runs four.
test-templates: build
    WEFT_TEMPLATES=all cargo test --locked -p weft-e2e --test templates -- --nocapture

# A release tarball, target/dist/weaver-VERSION-TARGET.tar.gz: the weaver binary (with its
# subsystem components and the WIT built in), README, LICENSE, the getting-started guide,
# shell completions and man pages. It runs from any directory, with nothing else installed.
dist: components
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release --locked -p weaver
    w=target/release/weaver
    version=$($w --version | awk '{print $2}')
    name="weaver-$version-$(rustc -vV | sed -n 's/^host: //p')"
    out="target/dist/$name"
    rm -rf "$out" "$out.tar.gz"
    mkdir -p "$out/completions" "$out/man"
    cp "$w" README.md LICENSE docs/getting-started.md "$out/"
    $w completions bash > "$out/completions/weaver.bash"
    $w completions zsh > "$out/completions/_weaver"
    $w completions fish > "$out/completions/weaver.fish"
    $w man "$out/man"
    tar -C target/dist -czf "$out.tar.gz" "$name"
    echo "wrote $out.tar.gz ($(du -h "$out.tar.gz" | cut -f1))"

# The Debian packages the tests need for the real services they start:
# a Docker engine and a static busybox (the container tests build their own
# image), iproute2 (a private bridge per engine), etcd (the cluster tests
# start their own members). Installed once, as root.
test-deps:
    #!/usr/bin/env bash
    set -euo pipefail
    need=()
    command -v dockerd >/dev/null && command -v docker >/dev/null || need+=(docker.io)
    dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
    command -v ip >/dev/null || need+=(iproute2)
    # Cluster tests start their own etcd members; etcd-client's build needs protoc.
    command -v etcd >/dev/null || need+=(etcd-server)
    command -v etcdctl >/dev/null || need+=(etcd-client)
    command -v protoc >/dev/null || need+=(protobuf-compiler)
    # ...and protobuf's own .proto files (google/protobuf/descriptor.proto).
    [ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
    # The dashboard's tests drive Debian's Chromium through chromedriver.
    command -v chromium >/dev/null || need+=(chromium)
    command -v chromedriver >/dev/null || need+=(chromium-driver)
    if [ ${#need[@]} -gt 0 ]; then
        SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)
        echo "installing ${need[*]} (the tests start their own Docker engine)"
        "${SUDO[@]}" apt-get update -qq
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    fi

# Run every test: guests first, then the host workspace, then guest unit tests.
test: build test-deps
    if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace --locked --no-fail-fast; else cargo test --workspace --locked --no-fail-fast; fi
    cd components && cargo test --workspace --locked

# Coverage-guided fuzzing (cargo-fuzz + libFuzzer, nightly): every target in fuzz/ for
# SECONDS each, starting from the committed seeds in fuzz/corpus/<target>/. What it learns
# stays in fuzz/target/corpus/ (not committed); a crash is saved in fuzz/artifacts/<target>/
# and the recipe fails at the end, naming it. Installs nightly and cargo-fuzz when missing;
# `just test` needs neither (it replays fuzz/corpus/ on stable). See docs/reliability.md.
fuzz SECONDS="600" *TARGETS:
    #!/usr/bin/env bash
    set -euo pipefail
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
    cd fuzz
    cargo +nightly fuzz build
    targets="{{TARGETS}}"; [ -n "$targets" ] || targets=$(cargo +nightly fuzz list)
    failed=()
    printf '| target | seconds | execs | execs/s | corpus (new) | peak RSS MiB |\n|---|---|---|---|---|---|\n' > target/fuzz-summary.md
    for t in $targets; do
        echo "== fuzz $t for {{SECONDS}} s"
        mkdir -p target/corpus/$t
        dict=(); [ -f dict/$t.dict ] && dict=(-dict=dict/$t.dict)
        if ! cargo +nightly fuzz run $t target/corpus/$t corpus/$t -- -max_total_time={{SECONDS}} \
            -timeout=60 -print_final_stats=1 "${dict[@]}" > target/fuzz-$t.log 2>&1; then
            failed+=("$t")
            grep -E 'ERROR|SUMMARY|panicked|Test unit written' target/fuzz-$t.log | head -20 || true
        fi
        s() { sed -n "s/^stat::$1: *//p" target/fuzz-$t.log | tail -1; }
        printf '| %s | %s | %s | %s | %s (%s) | %s |\n' "$t" "{{SECONDS}}" "$(s number_of_executed_units)" \
            "$(s average_exec_per_sec)" "$(ls target/corpus/$t | wc -l)" "$(s new_units_added)" "$(s peak_rss_mb)" \
            | tee -a target/fuzz-summary.md
    done
    echo; cat target/fuzz-summary.md; echo "(fuzz/target/fuzz-summary.md, logs in fuzz/target/fuzz-TARGET.log)"
    if [ ${#failed[@]} -gt 0 ]; then
        echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/; commit each as fuzz/corpus/TARGET/regress-NAME)" >&2
        exit 1
    fi

# Load and soak at full size, printing their figures (docs/reliability.md): 1,000
# concurrent control clients, 10,000 senders at one full inbox, looping and hostile guests,
# 1,000,000 governed calls with resident memory sampled. `just test` runs them smaller.
load: build
    WEFT_LOAD=full cargo test --locked -p weft-e2e --test load --test soak -- --nocapture --test-threads 1

# Chaos: kill -9 the kernel at RUNS random points of the app lifecycle (seeded; set
# WEFT_CHAOS_SEED to replay one), checking the state after every reboot.
chaos RUNS="100": build
    WEFT_CHAOS_RUNS={{RUNS}} cargo test --locked -p weft-e2e --test chaos -- --nocapture

# Benchmarks: each prints a markdown table with its goals (release builds).
bench: components
    cargo bench --locked -p weft-runtime --bench runtime
    cargo bench --locked -p weft-chain --bench chain
    cargo bench --locked -p weft-gate --bench gate
    cargo bench --locked -p weft-kernel --bench kernel
    cargo bench --locked -p weft-subsystems --bench subsystems
    cargo bench --locked -p weft-mesh --bench mesh
    cargo bench --locked -p weft-net --bench net
    # One core, as its goals are stated (docs/ecc.md, "Bench"); several minutes.
    cargo bench --locked -p weft-ecc --bench ecc --no-run
    taskset -c 0 cargo bench --locked -p weft-ecc --bench ecc

# What preemption costs on a real program: ripgrep 15 (built for wasm32-wasip2 into
# target/bench-tools) counting a regex over a generated 90 MB corpus, in one process: raw
# wasmtime, + fuel, + epochs, Weft's runtime in each `preemption` mode; then as processes,
# `weaver tool run` against `wasmtime run` 48.0.8 (installed there too; its first build takes
# a while). Medians and ratios.
bench-preemption: build
    #!/usr/bin/env bash
    set -euo pipefail
    tools=$PWD/target/bench-tools
    mkdir -p "$tools"
    [ -f "$tools/bin/rg.wasm" ] || cargo install ripgrep --version '=15.1.0' --locked --target wasm32-wasip2 --root "$tools"
    corpus="$tools/corpus"
    helper=host/weft-runtime/benches/preemption.py
    [ -f "$corpus/words.txt" ] || { mkdir -p "$corpus"; python3 $helper corpus "$corpus"; }
    args=(-c '[a-z]+ab\b' /data/words.txt)
    cargo bench --locked -p weft-runtime --bench preemption -- "$tools/bin/rg.wasm" "$corpus" "${args[@]}"
    [ -x "$tools/bin/wasmtime" ] || cargo install wasmtime-cli --version '=48.0.8' --locked --root "$tools"
    cargo build --release --locked -p weaver
    echo "as processes, median of 5 (after one warm-up each):"
    "$tools/bin/wasmtime" compile "$tools/bin/rg.wasm" -o "$tools/bin/rg.cwasm"
    base=$(python3 $helper time "$tools/bin/wasmtime" run --dir "$corpus::/data" "$tools/bin/rg.wasm" "${args[@]}")
    pre=$(python3 $helper time "$tools/bin/wasmtime" run --allow-precompiled --dir "$corpus::/data" "$tools/bin/rg.cwasm" "${args[@]}")
    ours=$(python3 $helper time target/release/weaver tool run --file "$tools/bin/rg.wasm" --dir "$corpus::/data:ro" --fuel 100000000000 --timeout-ms 600000 -- "${args[@]}")
    python3 -c "b, p, o = $base, $pre, $ours; print(f'  wasmtime run                 {b*1e3:8.1f} ms'); print(f'  wasmtime run, precompiled    {p*1e3:8.1f} ms'); print(f'  weaver tool run (its cache)  {o*1e3:8.1f} ms  {o/b:.2f}x wasmtime run (goal <= 1.1x), {o/p:.2f}x precompiled')"

# The container benchmark needs a Docker engine (started privately, as in the tests).
bench-containers: test-deps
    cargo bench --locked -p weft-containers --bench containers

# Formatting and clippy, host and guests, warnings are errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cd components && cargo fmt --all --check
    cd components && cargo clippy --workspace --target wasm32-wasip2 --locked -- -D warnings

# The main job: run tools with `weaver tool run`, then boot a kernel (with the governance, cron,
# health and apps components), install and start apps/hello, talk to it, show the chain, stop.
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
    w=./target/debug/weaver
    tmp=$(mktemp -d); state="$tmp/state"
    cleanup() { [ -S "$state/control.sock" ] && $w --state "$state" kernel stop >/dev/null 2>&1 || true; rm -rf "$tmp"; }
    trap cleanup EXIT
    say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
    say weaver run --state "$state" '&'
    $w run --state "$state" > "$tmp/kernel.log" 2>&1 &
    for _ in $(seq 300); do $w --state "$state" kernel status >/dev/null 2>&1 && break; sleep 0.1; done
    $w --state "$state" kernel status
    python3 -c 'import secrets; print(secrets.token_hex(32))' > "$tmp/dev.key"
    say weaver app pack apps/hello --key dev.key -o hello.weftapp
    out=$($w app pack apps/hello --key "$tmp/dev.key" -o "$tmp/hello.weftapp"); echo "$out"
    key=$(echo "$out" | sed -n 's/.*signed by \([0-9a-f]*\).*/\1/p')
    say weaver trust add dev "$key"
    $w --state "$state" trust add dev "$key"
    say weaver app install hello.weftapp
    $w --state "$state" app install "$tmp/hello.weftapp"
    say weaver app start hello
    $w --state "$state" app start hello
    say weaver ps
    $w --state "$state" ps
    say weaver agent send hello.greeter "hello, weft"
    $w --state "$state" agent send hello.greeter "hello, weft"
    say weaver tool run calc -- '{"expr": "2 * (x + 1) ^ 2", "vars": {"x": 3}}'
    $w --state "$state" tool run calc -- '{"expr": "2 * (x + 1) ^ 2", "vars": {"x": 3}}'
    say weaver chain tail -n 12
    $w --state "$state" chain tail -n 12
    say weaver kernel stop
    $w --state "$state" kernel stop
    pub=$(sed -n 's/.*public key \([0-9a-f]*\).*/\1/p' "$tmp/kernel.log" | head -1)
    say weaver chain verify state/chain --key "$pub"
    $w chain verify "$state/chain" --key "$pub"
