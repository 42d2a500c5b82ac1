#!/usr/bin/env bash
# Builds the browser bundle (Trunk: wasm + wasm-opt + Tailwind, precompressed) and the release server.
set -euo pipefail
source "$(dirname "$0")/env.sh"

step "Browser bundles (trunk build --release: visitors' pages, then the moderator console)"
env "${bundle_env[@]}" trunk build --release --offline
env "${bundle_env[@]}" trunk build --release --offline --config console/Trunk.toml
ls -l target/site/pkg target/site/console | awk 'NF > 2 { print "  " $5 "\t" $9 } NF == 1 { print }'

step "Server (cargo build --release)"
cargo build --release --locked "${host_packages[@]}"
