#!/usr/bin/env bash
# Builds the browser bundle (Trunk: wasm + wasm-opt + Tailwind, precompressed) and the release server.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$root"

# The bundles are made from these inputs alone (sources, lockfile, toolchain, flags, the tools'
# versions, cargo's and Trunk's environment, and the build's own scripts). When none changed since the bundles in target/site were
# built, Trunk would make the same files again — ~35 s of wasm-bindgen, wasm-opt, Tailwind and
# compression after a change to the server only — so they are kept, if they are still the files
# that build made (nothing else wrote to target/site since).
bundle_inputs() {
  {
    find app frontend console style .cargo -path style/node_modules -prune -o -type f -print
    printf '%s\n' Cargo.toml Cargo.lock Trunk.toml rust-toolchain.toml scripts/env.sh scripts/build.sh \
      scripts/site-assets.sh scripts/prune-wasm-exports.py scripts/setup.sh
  } | LC_ALL=C sort | xargs -d '\n' sha256sum
  printf '%s\n' "${bundle_env[@]}" "$(trunk --version)" "$(brotli --version)"
  env | grep -E '^(CARGO|RUST|TRUNK)' | LC_ALL=C sort || true
}
bundle_outputs() {
  find target/site/pkg target/site/console -type f 2>/dev/null | LC_ALL=C sort | xargs -r -d '\n' sha256sum
}
stamp=target/site/.inputs
inputs=$(bundle_inputs | sha256sum | cut -d' ' -f1)

step "Browser bundles (trunk build --release: visitors' pages, then the moderator console)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs $(bundle_outputs | sha256sum | cut -d' ' -f1)" ]; then
  echo "  kept: no input changed since target/site was built ($inputs)"
else
  rm -f "$stamp"
  env "${bundle_env[@]}" trunk build --release --offline
  env "${bundle_env[@]}" trunk build --release --offline --config console/Trunk.toml
  echo "$inputs $(bundle_outputs | sha256sum | cut -d' ' -f1)" > "$stamp"
fi
ls -l target/site/pkg target/site/console | awk 'NF > 2 { print "  " $5 "\t" $9 } NF == 1 { print }'

step "Server (cargo build --release)"
cargo build --release --locked "${host_packages[@]}"
