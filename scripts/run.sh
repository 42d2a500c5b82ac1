#!/usr/bin/env bash
# Installs what is missing, builds, and serves Burner (BURNER_ADDR, default 127.0.0.1:3000).
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$root/scripts/setup.sh" run
"$root/scripts/build.sh"
step "Burner on http://${BURNER_ADDR:-127.0.0.1:3000} (Ctrl-C stops it)"
exec "$CARGO_TARGET_DIR/release/burner" --site-dir "$root/target/site"
