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

step() { printf '\n==> %s\n' "$*"; }
