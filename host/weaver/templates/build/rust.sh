
build() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    command -v rustup >/dev/null || die "the wasm32-wasip2 target is missing and rustup is not installed"
    say "rustup target add wasm32-wasip2"
    rustup target add wasm32-wasip2
  fi
  say "cargo build --release --target wasm32-wasip2"
  cargo build --release --target wasm32-wasip2
  cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/guest.wasm" "$OUT"
}
