# Sourced by the other scripts: where things live. Build outputs and tools stay outside the
# clone (BURNER_CACHE, default ~/.cache/burner) so a fresh clone on a warm machine rebuilds little.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export BURNER_CACHE=${BURNER_CACHE:-$HOME/.cache/burner}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$BURNER_CACHE/target}
export PATH="$root/style/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
export RUSTUP_TOOLCHAIN=$toolchain

# Every cargo command on the host crates names the same packages, so cargo unifies their
# dependencies' features the same way each time and compiles each dependency once, not once per
# command (a `cargo test -p discord-standin` alone rebuilt serde, axum, tokio-util… for its own
# feature set; `cargo build -p server` after `cargo test -p server` rebuilt the server).
host_packages=(-p app -p server -p bench -p discord-standin)

# Clippy lints Burner's own crates inside every build, as `cargo clippy` does inside a check:
# cargo runs the workspace's members (not the dependencies) through clippy-driver, which
# compiles them and lints them with the same lints. So the tests' release build, the bundles'
# wasm builds and `make run` are also the lint, and no check build of every dependency is made
# for clippy alone (8 min 40 s of a new machine's 38). Warnings are errors; the same
# arguments everywhere, so one build serves every script (the arguments are part of what cargo
# fingerprints).
# Not overridable: an empty wrapper would turn the lints off in `make test` without a word.
export RUSTC_WORKSPACE_WRAPPER=clippy-driver
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

# Burner's own crates compile incrementally in release builds too (the dependencies never do):
# after a one-line change to the server, the tests' build took 2 min 50 s, now 16 s. Fan-out
# cost measured the same either way (docs/BENCHMARKS.md, "Test suite time"). Not for the
# bundles (`bundle_env`: fat LTO, one codegen unit) nor for the tools setup.sh compiles.
export CARGO_INCREMENTAL=1

# The browser bundles' builds (Trunk's cargo, wasm32 only) compile the standard library with
# them, with what a bundle has no use for left out: a panic stops the program without formatting
# a message (`panic=immediate-abort`), `{:?}` prints nothing, no source locations, the standard
# library's size-optimised algorithms. 191 → 172 KB brotli (docs/BENCHMARKS.md, "Browser
# bundle"). These are unstable compiler options, allowed on this pinned toolchain by
# RUSTC_BOOTSTRAP and given only to these builds (the host crates never see them).
# `PANIC_MESSAGES=1` builds the bundles without them, for a panic's message in the console
# (~19 KB larger: the size check in `make test` then only reports), and with `--cfg
# panic_messages`, which installs the hook that writes the message there (a bundle whose panics
# stop at once never runs it: 0.4 KB left out).
bundle_env=(CARGO_INCREMENTAL=0)
if [ "${PANIC_MESSAGES:-0}" = 1 ]; then
  bundle_env+=("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS=--cfg panic_messages")
else
  bundle_env+=(RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort CARGO_UNSTABLE_BUILD_STD_FEATURES=optimize_for_size
    "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS=-Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none")
fi

step() { printf '\n==> %s\n' "$*"; }
