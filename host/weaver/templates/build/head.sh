#!/usr/bin/env bash
# Build `{{name}}` ({{lang}} {{kind}}) into out/{{name}}.wasm, check weftapp.toml
# and pack the bundle {{name}}.weftapp. Written by `weaver new`.
#
# Usage: ./build.sh [--key FILE]
#   --key FILE   sign the bundle with FILE (made by `weaver key new -o FILE`);
#                without it the bundle is unsigned, which only a `dev`
#                environment installs (weftapp.toml asks for `dev`).
#
# Installs what it needs that is missing, once, at the versions Weft's own
# guests are built with: {{needs}}.
# Tools that are not a project's own go to $WEFT_TOOLS_DIR
# (default ~/.cache/weft/tools). `weaver` must be on PATH (or set WEAVER).
set -euo pipefail

NAME={{name}}
WORLD={{world}}
OUT=out/$NAME.wasm
TOOLS="${WEFT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/weft/tools}"
WEAVER="${WEAVER:-weaver}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1

say() { printf '[build] %s\n' "$*"; }
die() { printf '[build] error: %s\n' "$*" >&2; exit 1; }

KEY=""
while (($#)); do
  case "$1" in
    --key) KEY="${2:-}"; [[ -n "$KEY" ]] || die "--key needs a key file"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (./build.sh [--key FILE])" ;;
  esac
done
command -v "$WEAVER" >/dev/null || die "weaver not found: put it on PATH or set WEAVER=/path/to/weaver"
# Paths given relative to where this was run from, before moving into the project.
[[ "$WEAVER" != */* ]] || WEAVER="$(realpath -- "$WEAVER")"
if [[ -n "$KEY" ]]; then
  [[ -f "$KEY" ]] || die "no key file $KEY (make one with: weaver key new -o $KEY)"
  KEY="$(realpath -- "$KEY")"
fi
cd "$(dirname "${BASH_SOURCE[0]}")"

# run LOG CMD...: run quietly into target/logs/LOG.log; on failure show its tail.
run() {
  local log="target/logs/$1.log"
  shift
  mkdir -p target/logs
  if ! "$@" >"$log" 2>&1; then
    printf '[build] error: command failed: %s\n[build] last lines of %s:\n' "$*" "$log" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

# A root shell, or sudo, for apt-get.
sudo_cmd() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; else
    command -v sudo >/dev/null || die "not root and no sudo: cannot run $*"
    sudo "$@"
  fi
}

# cargo_tool BIN CRATE VERSION [cargo install args...]: `cargo install` once.
cargo_tool() {
  local bin="$1" crate="$2" version="$3"
  shift 3
  if [[ "$("$bin" --version 2>/dev/null)" == *" $version"* ]]; then return; fi
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  say "installing $crate $version with cargo install (takes minutes, once)"
  run "install-$crate" cargo install --locked "$@" "$crate@$version"
}
