#!/usr/bin/env bash
# Lighthouse (mobile preset) on `/`, `/r/lobby` with 50 messages and `/mod`, against the release
# build: fails below Accessibility 100 and 95 in Performance, Best Practices and SEO. Slower than
# the other tests, so on its own; `make test` calls it. WRITE=1 records the scores in
# docs/BENCHMARKS.md. Expects scripts/build.sh to have run (make test does that first).
set -euo pipefail
source "$(dirname "$0")/env.sh"
export BURNER_BIN="${BURNER_BIN:-$CARGO_TARGET_DIR/release/burner}" BURNER_SITE_DIR="${BURNER_SITE_DIR:-$root/target/site}"
export CHROME_PATH="${CHROME_PATH:-/usr/bin/chromium}"
args=()
[ "${WRITE:-0}" = 1 ] && args=(--write "$root/docs/BENCHMARKS.md")
cd "$root/end2end"
node --experimental-websocket tools/lighthouse.mjs "${args[@]}"
