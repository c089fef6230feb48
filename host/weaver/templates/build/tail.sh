
start=$SECONDS
mkdir -p out target/logs
build
say "built $OUT ($(wc -c <"$OUT") bytes) in $((SECONDS - start)) s"
sign=()
[[ -z "$KEY" ]] || sign=(--key "$KEY")
"$WEAVER" app pack . "${sign[@]}" -o "$NAME.weftapp"
# The manifest (with file:line:col errors) and the archive's digests.
"$WEAVER" app check "$NAME.weftapp"
