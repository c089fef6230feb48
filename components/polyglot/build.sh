#!/usr/bin/env bash
# Build the polyglot versions of the `wordcount` tool (the Rust one is a
# member of the components workspace), and a Python agent, into
# components/dist/:
#   wordcount-c.wasm    C, wit-bindgen c + clang + wasm-tools component new
#   wordcount-py.wasm   Python, componentize-py
#   wordcount-js.wasm   JavaScript, componentize-js (StarlingMonkey)
#   agent-py.wasm       Python agent (`agent` world), componentize-py
#
# Usage: components/polyglot/build.sh [c] [py] [py-agent] [js]
#   (default: all; `py` builds both Python outputs, `py-agent` only the agent)
#
# Installs every tool it needs that is missing, at pinned versions, and only
# when missing; skips an output that is newer than its sources, the WIT and
# this script. Works from any cwd. Generated files go to
# components/target/polyglot/ (gitignored), never into the source tree.
# Set POLYGLOT_FORCE=1 to rebuild everything.
set -euo pipefail

# ---------------------------------------------------------------- pins
WIT_BINDGEN_VERSION=0.63.0      # wit-bindgen-cli, same as the Rust guests' crate
WASM_TOOLS_VERSION=1.262.0      # same wit-component (0.262) as wit-bindgen-cli 0.63
ADAPTER_VERSION=48.0.8          # wasi-preview1-component-adapter-provider = host wasmtime
COMPONENTIZE_PY_VERSION=0.25.1  # bundles its own CPython
# componentize-js 0.23.0 (and what it pulls in) is pinned by js/package-lock.json.
# Debian 12 (bookworm) packages for C; the package names pin LLVM 14.
APT_PINS=(
  clang-14=1:14.0.6-12
  lld-14=1:14.0.6-12
  libclang-rt-14-dev-wasm32=1:14.0.6-12
  wasi-libc=0.0~git20220510.9886d3d-2
)
CLANG=clang-14

# ---------------------------------------------------------------- paths
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPONENTS="$(cd "$HERE/.." && pwd)"
ROOT="$(cd "$COMPONENTS/.." && pwd)"
WIT="$ROOT/wit"
WORLD=tool        # the tools' world; the Python agent uses `agent`
DIST="$COMPONENTS/dist"
BUILD="$COMPONENTS/target/polyglot"
LOGS="$BUILD/logs"
SCRIPT="$HERE/build.sh"

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1

say() { printf '[polyglot] %s\n' "$*"; }
die() { printf '[polyglot] error: %s\n' "$*" >&2; exit 1; }

# run LOGNAME CMD...: run quietly into $LOGS/LOGNAME.log; on failure show its tail.
run() {
  local log="$LOGS/$1.log"
  shift
  if ! "$@" >"$log" 2>&1; then
    printf '[polyglot] error: command failed: %s\n[polyglot] last lines of %s:\n' "$*" "$log" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

# timed WHAT LOGNAME CMD...: run, then print how long it took.
timed() {
  local what="$1" start=$SECONDS
  shift
  run "$@"
  say "$what: done in $((SECONDS - start)) s"
}

# fresh OUT INPUT...: true if OUT exists and is newer than every INPUT
# (files or directories, searched recursively).
fresh() {
  local out="$1"
  shift
  [[ "${POLYGLOT_FORCE:-0}" != 1 && -f "$out" ]] || return 1
  [[ -z "$(find "$@" -newer "$out" -print -quit)" ]]
}

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot apt-get install"
  SUDO=(sudo)
fi

# ---------------------------------------------------------------- installs
APT_UPDATED=0
ensure_apt() {
  local missing=() pin name
  for pin in "${APT_PINS[@]}"; do
    name="${pin%%=*}"
    if [[ "$(dpkg-query -W -f='${Status}' "$name" 2>/dev/null)" != "install ok installed" ]]; then
      missing+=("$pin")
    fi
  done
  if ((${#missing[@]} == 0)); then
    say "apt: ${APT_PINS[*]%%=*} present ($($CLANG --version | head -n1))"
    return
  fi
  say "apt: installing ${missing[*]}"
  local start=$SECONDS
  if ((APT_UPDATED == 0)); then
    run apt-update "${SUDO[@]}" apt-get update
    APT_UPDATED=1
  fi
  if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}" >"$LOGS/apt-install.log" 2>&1; then
    # A Debian point release can replace a pinned version; the package
    # names still pin LLVM 14, so take what the archive has and say so.
    say "apt: pinned versions unavailable, installing ${missing[*]%%=*} unpinned"
    run apt-install "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
      --no-install-recommends "${missing[@]%%=*}"
  fi
  say "apt: installed in $((SECONDS - start)) s ($($CLANG --version | head -n1))"
}

# cargo_tool BIN CRATE VERSION [cargo install args...]
cargo_tool() {
  local bin="$1" crate="$2" version="$3"
  shift 3
  if [[ "$("$bin" --version 2>/dev/null)" == *" $version"* ]]; then
    say "$bin $version present"
    return
  fi
  command -v cargo >/dev/null || die "cargo not found (install rustup stable)"
  say "$bin: cargo install --locked $crate@$version (takes minutes)"
  timed "$bin $version install" "install-$crate" cargo install --locked "$@" "$crate@$version"
}

ensure_wit_bindgen() {
  cargo_tool wit-bindgen wit-bindgen-cli "$WIT_BINDGEN_VERSION" --no-default-features --features c
}

ensure_wasm_tools() {
  cargo_tool wasm-tools wasm-tools "$WASM_TOOLS_VERSION" --no-default-features --features component
}

# Sets ADAPTER to the WASI preview1 reactor adapter matching the host's
# wasmtime, taken from the crate that ships it (downloaded by cargo once).
ensure_adapter() {
  local dir="$BUILD/adapter"
  mkdir -p "$dir/src"
  : >"$dir/src/lib.rs"
  cat >"$dir/Cargo.toml.new" <<EOF
[package]
name = "polyglot-adapter-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
wasi-preview1-component-adapter-provider = "=$ADAPTER_VERSION"
EOF
  if ! cmp -s "$dir/Cargo.toml.new" "$dir/Cargo.toml"; then mv "$dir/Cargo.toml.new" "$dir/Cargo.toml"; fi
  rm -f "$dir/Cargo.toml.new"
  local start=$SECONDS manifest
  if ! cargo metadata --format-version 1 --manifest-path "$dir/Cargo.toml" \
    >"$dir/metadata.json" 2>"$LOGS/adapter-metadata.log"; then
    tail -n 30 "$LOGS/adapter-metadata.log" >&2
    die "cargo could not fetch wasi-preview1-component-adapter-provider $ADAPTER_VERSION"
  fi
  manifest="$(python3 -c '
import json, sys
for p in json.load(open(sys.argv[1]))["packages"]:
    if p["name"] == "wasi-preview1-component-adapter-provider":
        print(p["manifest_path"])' "$dir/metadata.json")"
  ADAPTER="$(dirname "$manifest")/artefacts/wasi_snapshot_preview1.reactor.wasm"
  [[ -f "$ADAPTER" ]] || die "adapter not found at $ADAPTER"
  say "adapter: wasi-preview1-component-adapter-provider $ADAPTER_VERSION ($((SECONDS - start)) s)"
}

CPY=()
# Sets CPY to a command that runs componentize-py $COMPONENTIZE_PY_VERSION:
# the one on PATH if it is that version, else a private pip install (a
# --target dir also works where PEP 668 forbids installing into the system).
ensure_componentize_py() {
  ((${#CPY[@]} == 0)) || return 0 # already found by an earlier step
  if [[ "$(componentize-py --version 2>/dev/null)" == "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
    CPY=(componentize-py)
    say "componentize-py $COMPONENTIZE_PY_VERSION present"
    return
  fi
  local dir="$BUILD/tools/componentize-py-$COMPONENTIZE_PY_VERSION"
  CPY=(env "PYTHONPATH=$dir" python3 -c
    'import sys; sys.argv[0] = "componentize-py"; from componentize_py import script; sys.exit(script())')
  if [[ -d "$dir/componentize_py-$COMPONENTIZE_PY_VERSION.dist-info" ]]; then
    say "componentize-py $COMPONENTIZE_PY_VERSION present (in $dir)"
    return
  fi
  command -v python3 >/dev/null || die "python3 not found"
  say "componentize-py: pip install componentize-py==$COMPONENTIZE_PY_VERSION"
  rm -rf "$dir"
  timed "componentize-py $COMPONENTIZE_PY_VERSION install" install-componentize-py \
    python3 -m pip install --disable-pip-version-check --no-input --target "$dir" \
    "componentize-py==$COMPONENTIZE_PY_VERSION"
}

ensure_node_modules() {
  local js="$HERE/js"
  command -v npm >/dev/null || die "npm not found (install node 20+)"
  if [[ -f "$js/node_modules/.package-lock.json" &&
    -z "$(find "$js/package.json" "$js/package-lock.json" -newer "$js/node_modules/.package-lock.json")" ]]; then
    say "js: node_modules up to date"
    return
  fi
  say "js: npm ci (componentize-js pinned by package-lock.json)"
  timed "npm ci" npm-ci npm ci --prefix "$js" --no-audit --no-fund
}

# ---------------------------------------------------------------- builds
WIT_FILES=("$WIT")

build_c() {
  local out="$DIST/wordcount-c.wasm" src="$HERE/c/wordcount.c"
  if fresh "$out" "$src" "${WIT_FILES[@]}" "$SCRIPT"; then
    say "c: $out is up to date"
    return
  fi
  ensure_apt
  ensure_wit_bindgen
  ensure_wasm_tools
  ensure_adapter
  local gen="$BUILD/c/gen" start=$SECONDS
  rm -rf "$gen"
  mkdir -p "$gen"
  run c-bindgen wit-bindgen c "$WIT" --world "$WORLD" --out-dir "$gen"
  # Warnings are errors in our source, not in the generated bindings.
  run c-compile "$CLANG" --target=wasm32-wasi -O2 -Wall -Wextra -Werror -I "$gen" \
    -c "$src" -o "$BUILD/c/wordcount.o"
  run c-link "$CLANG" --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-debug \
    -I "$gen" "$BUILD/c/wordcount.o" "$gen/$WORLD.c" "$gen/${WORLD}_component_type.o" \
    -o "$BUILD/c/wordcount-core.wasm"
  run c-component wasm-tools component new "$BUILD/c/wordcount-core.wasm" \
    --adapt "wasi_snapshot_preview1=$ADAPTER" -o "$BUILD/c/wordcount-c.wasm"
  mv "$BUILD/c/wordcount-c.wasm" "$out"
  say "c: built $out ($(stat -c %s "$out") bytes) in $((SECONDS - start)) s"
}

build_py() {
  local out="$DIST/wordcount-py.wasm" src="$HERE/python"
  if fresh "$out" "$src/app.py" "${WIT_FILES[@]}" "$SCRIPT"; then
    say "py: $out is up to date"
    return
  fi
  ensure_componentize_py
  local start=$SECONDS
  mkdir -p "$BUILD/python"
  # The bindings componentize-py builds against, for editors and type checkers.
  rm -rf "$BUILD/python/bindings"
  run py-bindings "${CPY[@]}" -d "$WIT" -w "$WORLD" bindings "$BUILD/python/bindings"
  run py-componentize "${CPY[@]}" -d "$WIT" -w "$WORLD" componentize app -p "$src" \
    -o "$BUILD/python/wordcount-py.wasm"
  mv "$BUILD/python/wordcount-py.wasm" "$out"
  say "py: built $out ($(stat -c %s "$out") bytes) in $((SECONDS - start)) s"
}

build_py_agent() {
  local out="$DIST/agent-py.wasm" src="$HERE/python-agent" world=agent
  if fresh "$out" "$src/app.py" "${WIT_FILES[@]}" "$SCRIPT"; then
    say "py-agent: $out is up to date"
    return
  fi
  ensure_componentize_py
  local start=$SECONDS
  mkdir -p "$BUILD/python-agent"
  # The bindings componentize-py builds against, for editors and type checkers.
  rm -rf "$BUILD/python-agent/bindings"
  run py-agent-bindings "${CPY[@]}" -d "$WIT" -w "$world" bindings "$BUILD/python-agent/bindings"
  run py-agent-componentize "${CPY[@]}" -d "$WIT" -w "$world" componentize app -p "$src" \
    -o "$BUILD/python-agent/agent-py.wasm"
  mv "$BUILD/python-agent/agent-py.wasm" "$out"
  say "py-agent: built $out ($(stat -c %s "$out") bytes) in $((SECONDS - start)) s"
}

build_js() {
  local out="$DIST/wordcount-js.wasm" js="$HERE/js"
  if fresh "$out" "$js/wordcount.js" "$js/package.json" "$js/package-lock.json" \
    "${WIT_FILES[@]}" "$SCRIPT"; then
    say "js: $out is up to date"
    return
  fi
  ensure_node_modules
  local start=$SECONDS
  mkdir -p "$BUILD/js"
  # Every optional engine feature off: the tool uses no console, clock,
  # randomness or HTTP, so the component imports no WASI interface at all.
  run js-componentize node "$js/node_modules/@bytecodealliance/componentize-js/src/cli.js" \
    "$js/wordcount.js" --wit "$WIT" --world-name "$WORLD" \
    -d stdio random clocks http fetch-event \
    -o "$BUILD/js/wordcount-js.wasm"
  mv "$BUILD/js/wordcount-js.wasm" "$out"
  say "js: built $out ($(stat -c %s "$out") bytes) in $((SECONDS - start)) s"
}

# ---------------------------------------------------------------- main
main() {
  local langs=("$@") lang steps=() step
  ((${#langs[@]})) || langs=(c py js)
  for lang in "${langs[@]}"; do
    case "$lang" in
      c | js) steps+=("build_$lang") ;;
      py) steps+=(build_py build_py_agent) ;;
      py-agent) steps+=(build_py_agent) ;;
      *) die "unknown language '$lang' (want c, py, py-agent or js)" ;;
    esac
  done
  mkdir -p "$DIST" "$BUILD" "$LOGS"
  local start=$SECONDS
  # Each step once, in order, however often it was asked for (`py py-agent`).
  local done_steps=" "
  for step in "${steps[@]}"; do
    [[ "$done_steps" == *" $step "* ]] && continue
    done_steps+="$step "
    "$step"
  done
  say "done in $((SECONDS - start)) s (outputs in $DIST)"
}

main "$@"
