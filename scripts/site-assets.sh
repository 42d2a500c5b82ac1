#!/bin/sh
# Trunk post-build hook: the stylesheet and icon next to the wasm bundle (not for the console's
# bundle: `--compress-only`), then a brotli and a gzip copy of every asset so the server sends
# them compressed without compressing per request.
set -eu
root=$(cd "$TRUNK_SOURCE_DIR/.." && pwd)
out=$TRUNK_STAGING_DIR
if [ "${1:-}" != "--compress-only" ]; then
  "$root/style/node_modules/.bin/tailwindcss" -i "$root/style/main.css" -o "$out/burner.css" --minify 2>/dev/null
  cp "$root/style/favicon.svg" "$out/favicon.svg"
fi
# Trunk's own index.html is not used: the server renders every page.
rm -f "$out/index.html"
# wasm-bindgen exports every `#[wasm_bindgen]` class of every crate linked in, called or not.
# Leptos always links its server-function client, and with it wasm-streams' three stream adapters
# (`IntoUnderlyingSource`, `…Sink`, `…ByteSource`), which a bundle that calls no server function
# never uses. Their exports dropped, a second wasm-opt pass removes what only they reached:
# −1.9 KB brotli (docs/BENCHMARKS.md, "Browser bundle"). Their JavaScript classes stay; they
# touch the module only when called.
for wasm in "$out"/*_bg.wasm; do
  python3 "$root/scripts/prune-wasm-exports.py" "$wasm" intounderlying
  "$root/style/node_modules/.bin/wasm-opt" -Oz "$wasm" -o "$wasm"
done
for file in "$out"/*.js "$out"/*.wasm "$out"/*.css "$out"/*.svg; do
  [ -f "$file" ] || continue
  brotli --force --best --output="$file.br" "$file"
  gzip --force --best --keep "$file"
done
