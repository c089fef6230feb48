
# Debian 12 (bookworm) packages; the package names pin LLVM 14.
APT_PINS=(
  clang-14=1:14.0.6-12
  lld-14=1:14.0.6-12
  libclang-rt-14-dev-wasm32=1:14.0.6-12
  wasi-libc=0.0~git20220510.9886d3d-2
)
ADAPTER_VERSION=48.0.8 # wasi-preview1-component-adapter-provider = Weft's wasmtime

ensure_apt() {
  local missing=() pin
  for pin in "${APT_PINS[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "${pin%%=*}" 2>/dev/null)" == "install ok installed" ]] ||
      missing+=("$pin")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "no apt-get: install clang 14, lld 14 and wasi-libc (wasm32-wasi) yourself"
  say "apt-get install ${missing[*]}"
  run apt-update sudo_cmd apt-get update
  if ! sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}" >target/logs/apt-install.log 2>&1; then
    # A Debian point release can replace a pinned version; the names still pin LLVM 14.
    say "pinned versions unavailable, installing ${missing[*]%%=*}"
    run apt-install sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y \
      --no-install-recommends "${missing[@]%%=*}"
  fi
}

# Sets ADAPTER to the WASI preview1 reactor adapter for Weft's wasmtime, taken
# from the crate that ships it (cargo downloads it once).
ensure_adapter() {
  local dir="$TOOLS/adapter-$ADAPTER_VERSION"
  mkdir -p "$dir/src"
  : >"$dir/src/lib.rs"
  cat >"$dir/Cargo.toml" <<TOML
[package]
name = "weft-adapter-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
wasi-preview1-component-adapter-provider = "=$ADAPTER_VERSION"
TOML
  cargo metadata --format-version 1 --manifest-path "$dir/Cargo.toml" >"$dir/metadata.json" \
    2>target/logs/adapter.log || { tail -n 20 target/logs/adapter.log >&2; die "cargo could not fetch the adapter"; }
  ADAPTER="$(python3 -c '
import json, os, sys
for p in json.load(open(sys.argv[1]))["packages"]:
    if p["name"] == "wasi-preview1-component-adapter-provider":
        print(os.path.join(os.path.dirname(p["manifest_path"]), "artefacts", "wasi_snapshot_preview1.reactor.wasm"))' \
    "$dir/metadata.json")"
  [[ -f "$ADAPTER" ]] || die "adapter not found at $ADAPTER"
}

build() {
  mkdir -p target/logs
  ensure_apt
  cargo_tool wit-bindgen wit-bindgen-cli 0.63.0 --no-default-features --features c
  cargo_tool wasm-tools wasm-tools 1.262.0 --no-default-features --features component
  ensure_adapter
  local gen=target/c/gen
  rm -rf "$gen"
  mkdir -p "$gen"
  say "wit-bindgen c, clang-14, wasm-tools component new"
  run c-bindgen wit-bindgen c wit --world "$WORLD" --out-dir "$gen"
  # Warnings are errors in your source, not in the generated bindings.
  run c-compile clang-14 --target=wasm32-wasi -O2 -Wall -Wextra -Werror -I "$gen" \
    -c src/app.c -o target/c/app.o
  run c-link clang-14 --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-debug \
    -I "$gen" target/c/app.o "$gen/$WORLD.c" "$gen/${WORLD}_component_type.o" -o target/c/core.wasm
  run c-component wasm-tools component new target/c/core.wasm \
    --adapt "wasi_snapshot_preview1=$ADAPTER" -o "$OUT"
}
