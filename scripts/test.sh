#!/usr/bin/env bash
# Runs every test: formatting, clippy (server; the benchmark; the Discord stand-in; app with ssr; app, frontend and
# console on wasm32), unit and integration tests, then Playwright end-to-end in headless Chromium
# against the release build (axe-core grading every page state), the Autobahn WebSocket cases, Lighthouse on three pages, and
# a short smoke run of the side-by-side benchmark. Installs
# whatever is missing first. Prints how long each step took.
set -euo pipefail
source "$(dirname "$0")/env.sh"
started=$SECONDS
timings=()
timed() {
  local name=$1 t0=$SECONDS
  shift
  step "$name"
  "$@"
  timings+=("$(printf '%5ss  %s' $((SECONDS - t0)) "$name")")
}

timed "setup" "$root/scripts/setup.sh" test
timed "rustfmt" cargo fmt --all --check
# One clippy and one test command for the host crates (see host_packages in env.sh): the same
# feature set as every release build, so nothing is compiled twice.
timed "clippy: server, benchmark, Discord stand-in, app with ssr" \
  cargo clippy --locked "${host_packages[@]}" --all-targets -- -D warnings
timed "one feature set for the release build and the tests" "$root/scripts/feature-sets.sh"
timed "clippy: app and frontend on wasm32" \
  cargo clippy --locked -p app -p frontend --features app/hydrate --target wasm32-unknown-unknown -- -D warnings
timed "clippy: moderator console on wasm32" \
  cargo clippy --locked -p console --target wasm32-unknown-unknown -- -D warnings
# Release mode: the tests then share their build with the binary the end-to-end tests run.
timed "unit and integration tests: app, server, benchmark generator, Discord stand-in" \
  cargo test --release --locked "${host_packages[@]}"
timed "Autobahn WebSocket cases: Burner's own socket layer" "$root/scripts/autobahn.sh"
timed "build: browser bundle and release server" "$root/scripts/build.sh"
timed "bundle size: within 5 KB of docs/BENCHMARKS.md" "$root/scripts/bundle-size.sh"
export BURNER_BIN="$CARGO_TARGET_DIR/release/burner" BURNER_SITE_DIR="$root/target/site"
timed "end-to-end: Playwright in Chromium (axe-core included)" bash -c 'cd end2end && node_modules/.bin/playwright test'
timed "Lighthouse: /, /r/lobby and /mod (mobile)" "$root/scripts/lighthouse.sh"
# Timings are not tests, but the benchmark must not rot: every peer builds, starts and delivers.
timed "benchmark smoke run: every server side by side" env SMOKE=1 "$root/scripts/bench.sh"
timed "benchmark smoke run: cluster mode (Burner, Socket.IO)" env SMOKE=1 CLUSTER=1 "$root/scripts/bench.sh"

step "all tests passed in $((SECONDS - started))s"
printf '%s\n' "${timings[@]}"
