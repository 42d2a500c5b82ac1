#!/usr/bin/env bash
# The visitors' bundle may not grow unnoticed: its brotli size (wasm + JS glue, as browsers
# download it) against the figures recorded in docs/BENCHMARKS.md. More than 5 KB over them
# fails: cut the growth, or record the new figures there (and say why they are worth it).
# Run after scripts/build.sh.
set -euo pipefail
source "$(dirname "$0")/env.sh"
allowed=5000
table=docs/BENCHMARKS.md

# The brotli column of a file's row in the bundle table ("| `frontend_bg.wasm` | … | 180 987 B | …").
recorded() {
  awk -F'|' -v file="\`$1\`" '$2 ~ file { gsub(/[^0-9]/, "", $4); print $4; exit }' "$table"
}
built() {
  local path=target/site/pkg/$1.br
  [ -f "$path" ] || { echo "no $path: run scripts/build.sh first" >&2; exit 1; }
  stat -c %s "$path"
}

total_recorded=0
total_built=0
for file in frontend_bg.wasm frontend.js; do
  was=$(recorded "$file")
  [ -n "$was" ] || { echo "$table has no brotli figure for $file" >&2; exit 1; }
  now=$(built "$file")
  printf '  %-18s recorded %7d B, built %7d B brotli (%+d)\n' "$file" "$was" "$now" $((now - was))
  total_recorded=$((total_recorded + was))
  total_built=$((total_built + now))
done
growth=$((total_built - total_recorded))
printf '  %-18s recorded %7d B, built %7d B brotli (%+d)\n' total "$total_recorded" "$total_built" "$growth"
if [ "$growth" -gt "$allowed" ] && [ "${PANIC_MESSAGES:-0}" = 1 ]; then
  echo "  (PANIC_MESSAGES=1: the bundles were built with panic messages and Debug output; not checked)"
elif [ "$growth" -gt "$allowed" ]; then
  echo "The visitors' bundle grew by $growth B brotli (more than $allowed B over $table)." >&2
  echo "Cut the growth, or record the new sizes in the bundle table of $table with the reason." >&2
  exit 1
fi
if [ "$growth" -lt "-$allowed" ]; then
  echo "  smaller than recorded by more than $allowed B: record the new sizes in $table"
fi
