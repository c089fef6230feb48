
COMPONENTIZE_PY_VERSION=0.25.1 # bundles its own CPython

build() {
  local dir="$TOOLS/componentize-py-$COMPONENTIZE_PY_VERSION"
  local cpy=(componentize-py)
  if [[ "$(componentize-py --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
    # A private install (a --target dir works where PEP 668 forbids the system one).
    cpy=(env "PYTHONPATH=$dir" python3 -c
      'import sys; sys.argv[0] = "componentize-py"; from componentize_py import script; sys.exit(script())')
    if [[ ! -d "$dir/componentize_py-$COMPONENTIZE_PY_VERSION.dist-info" ]]; then
      command -v python3 >/dev/null || die "python3 not found"
      say "pip install componentize-py==$COMPONENTIZE_PY_VERSION (into $dir, once)"
      rm -rf "$dir"
      run install-componentize-py python3 -m pip install --disable-pip-version-check --no-input \
        --target "$dir" "componentize-py==$COMPONENTIZE_PY_VERSION"
    fi
  fi
  say "componentize-py -d wit -w $WORLD componentize app"
  run componentize "${cpy[@]}" -d wit -w "$WORLD" componentize app -p src -o "$OUT"
}
