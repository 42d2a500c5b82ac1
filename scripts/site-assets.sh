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
for file in "$out"/*.js "$out"/*.wasm "$out"/*.css "$out"/*.svg; do
  [ -f "$file" ] || continue
  brotli --force --best --output="$file.br" "$file"
  gzip --force --best --keep "$file"
done
