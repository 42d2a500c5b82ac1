#!/usr/bin/env bash
# Runs every test: formatting, clippy (inside the builds: server, the benchmark, the Discord stand-in and app with
# ssr in the tests' build; app, frontend and console on wasm32 in the bundles'), unit and integration tests, then Playwright end-to-end in headless Chromium
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
timed "one feature set for the release build and the tests" "$root/scripts/feature-sets.sh"
# Clippy runs inside the builds (RUSTC_WORKSPACE_WRAPPER in env.sh): this one lints the host
# crates with every target (library, binaries, tests, examples), the bundles' build below lints
# app, frontend and console on wasm32. One test command for the host crates (host_packages in
# env.sh), in release mode: the same feature set and profile as every release build, so the
# tests share their build with the binary the end-to-end tests run.
# Twelve tests at a time, not one per core: most integration tests spend their time waiting
# (rate-limit windows, timers, reconnects, a 10-second flood), so two at a time on two cores
# left the cores idle: 44 → 18 s for the tests below, 41 → 16 s for the one-core pass
# (docs/BENCHMARKS.md, "Test suite time").
export RUST_TEST_THREADS=12
timed "clippy and unit and integration tests: app, server, benchmark generator, Discord stand-in" \
  cargo test --release --locked "${host_packages[@]}"
# Burner given one core runs tokio's single-threaded runtime, where a drainer writes the sockets'
# frames instead of each socket's task (server/src/outbox.rs): the server's integration tests
# once more, on that runtime (the same packages as above, so nothing is built again).
timed "integration tests on the one-core runtime (the drainer's writes)" \
  env BURNER_TEST_ONE_CORE=1 cargo test --release --locked "${host_packages[@]}" --test integration
timed "Autobahn WebSocket cases: Burner's own socket layer" "$root/scripts/autobahn.sh"
timed "build (clippy on wasm32): browser bundles and release server" "$root/scripts/build.sh"
timed "bundle size: within 5 KB of docs/BENCHMARKS.md" "$root/scripts/bundle-size.sh"
export BURNER_BIN="$CARGO_TARGET_DIR/release/burner" BURNER_SITE_DIR="$root/target/site"
timed "end-to-end: Playwright in Chromium (axe-core included)" bash -c 'cd end2end && node_modules/.bin/playwright test'
timed "Lighthouse: /, /r/lobby and /mod (mobile)" "$root/scripts/lighthouse.sh"
# Timings are not tests, but the benchmark must not rot: every peer builds, starts and delivers.
timed "benchmark smoke runs: every server side by side, and cluster mode (Burner, Socket.IO)" \
  env SMOKE=1 "$root/scripts/bench.sh"

step "all tests passed in $((SECONDS - started))s"
printf '%s\n' "${timings[@]}"
