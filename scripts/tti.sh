#!/usr/bin/env bash
# Time to interactive in headless Chromium (cold cache, median of 20 visits): `/`, `/r/lobby`
# with 50 messages, and a minimal one-socket page as the floor (end2end/tools/tti.mjs). A
# measurement, not a test. WRITE=1 records it in docs/BENCHMARKS.md. Expects scripts/build.sh
# to have run.
set -euo pipefail
source "$(dirname "$0")/env.sh"
export BURNER_BIN="${BURNER_BIN:-$CARGO_TARGET_DIR/release/burner}" BURNER_SITE_DIR="${BURNER_SITE_DIR:-$root/target/site}"
args=()
[ "${WRITE:-0}" = 1 ] && args=(--write "$root/docs/BENCHMARKS.md")
cd "$root/end2end"
node --experimental-websocket tools/tti.mjs "${args[@]}"
