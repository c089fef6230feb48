
build() {
  command -v node >/dev/null && command -v npm >/dev/null || die "node and npm not found (install node 20+)"
  # componentize-js 0.23.0 and what it pulls in, pinned by package-lock.json.
  if [[ ! -f node_modules/.package-lock.json ||
    -n "$(find package.json package-lock.json -newer node_modules/.package-lock.json)" ]]; then
    say "npm ci (componentize-js 0.23.0)"
    run npm-ci npm ci --no-audit --no-fund
  fi
  say "componentize-js src/app.js"
  # Optional engine features off: the guest uses no console, clock,
  # randomness or HTTP of WASI's, so the component imports none of them.
  run componentize node node_modules/@bytecodealliance/componentize-js/src/cli.js src/app.js \
    --wit wit --world-name "$WORLD" -d stdio random clocks http fetch-event -o "$OUT"
}
