#!/usr/bin/env bash
# Builds the browser bundle (Trunk: wasm + wasm-opt + Tailwind, precompressed) and the release server.
set -euo pipefail
source "$(dirname "$0")/env.sh"

step "Browser bundle (trunk build --release)"
trunk build --release --offline
ls -l target/site/pkg | awk 'NR > 1 { print "  " $5 "\t" $9 }'

step "Server (cargo build --release)"
cargo build --release --locked -p server
