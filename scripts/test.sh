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
timed "clippy: server (ssr)" cargo clippy --locked -p server --all-targets -- -D warnings
timed "clippy: benchmark generator and peer" cargo clippy --locked -p bench --all-targets -- -D warnings
timed "clippy: Discord stand-in" cargo clippy --locked -p discord-standin --all-targets -- -D warnings
timed "clippy: app with ssr" cargo clippy --locked -p app --features ssr --all-targets -- -D warnings
timed "clippy: app and frontend on wasm32" \
  cargo clippy --locked -p app -p frontend --features app/hydrate --target wasm32-unknown-unknown -- -D warnings
timed "clippy: moderator console on wasm32" \
  cargo clippy --locked -p console --target wasm32-unknown-unknown -- -D warnings
# Release mode: the tests then share their build with the binary the end-to-end tests run.
timed "unit tests: app (rules, protocol, text)" cargo test --release --locked -p app --features ssr
timed "unit and integration tests: server" cargo test --release --locked -p server
timed "Autobahn WebSocket cases: Burner's own socket layer" "$root/scripts/autobahn.sh"
timed "unit tests: benchmark generator" cargo test --release --locked -p bench
timed "tests: Discord stand-in" cargo test --release --locked -p discord-standin
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
