#!/usr/bin/env bash
# Installs whatever Burner needs and is missing; skips what is already there at the right
# version. `setup.sh run` for serving, `setup.sh cluster` adds Redis, Postgres and haproxy,
# `setup.sh test` what the tests need (those, Chromium, the end-to-end npm packages). Safe to run again and again.
set -euo pipefail
source "$(dirname "$0")/env.sh"
purpose=${1:-run}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

step "Rust $toolchain with the wasm target and the standard library's source"
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  rustup toolchain install "$toolchain" --profile minimal -c clippy -c rustfmt -c rust-src -t wasm32-unknown-unknown
fi
rustup component add --toolchain "$toolchain" clippy rustfmt rust-src >/dev/null 2>&1
rustup target list --installed --toolchain "$toolchain" | grep -qx wasm32-unknown-unknown \
  || rustup target add --toolchain "$toolchain" wasm32-unknown-unknown
# The bundles compile the standard library themselves (`bundle_env` in env.sh): fetch its
# dependencies now, so that their builds can stay offline.
env RUSTC_BOOTSTRAP=1 cargo fetch --manifest-path "$(rustc --print sysroot)/lib/rustlib/src/rust/library/Cargo.toml" --quiet

step "Debian packages"
packages=(brotli)
# The tests start their own Postgres, redis-server and haproxy (cluster mode, the Postgres store).
[ "$purpose" = test ] && packages+=(chromium postgresql redis-server haproxy)
# `make cluster`: Redis, Postgres and the load balancer.
[ "$purpose" = cluster ] && packages+=(postgresql redis-server haproxy)
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "all present: ${packages[*]}"
fi

# Build tools are compiled without optimisation: their own release profile (Trunk's: fat LTO,
# one codegen unit) took 9 min 53 s for Trunk and 2 min 19 s for wasm-bindgen on a new machine;
# unoptimised, 4 min and 1 min 5 s. A bundle build is then as fast (17-19 s either way: it is
# wasm-opt and Tailwind), of which wasm-bindgen takes 1.2 s instead of 0.3.
# Trunk also leaves out its update check (nothing to reach from here). Burner's lints (the
# clippy-driver wrapper in env.sh) are for Burner's crates, not for the tools'.
quick_tools=(env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS CARGO_INCREMENTAL=0 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_OPT_LEVEL=0)

step "Trunk"
trunk_version=0.22.1
if ! trunk --version 2>/dev/null | grep -q " $trunk_version\$"; then
  echo "compiling Trunk $trunk_version from crates.io (about 4 minutes, once per machine)"
  "${quick_tools[@]}" cargo install trunk --version "$trunk_version" --locked --no-default-features --features rustls
else
  echo "trunk $trunk_version present"
fi

step "wasm-bindgen CLI at Cargo.lock's version"
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
grep -q "^wasm_bindgen = \"$bindgen_version\"" Trunk.toml \
  || { echo "Trunk.toml pins another wasm-bindgen than Cargo.lock ($bindgen_version): update [tools] wasm_bindgen" >&2; exit 1; }
if ! wasm-bindgen --version 2>/dev/null | grep -q " $bindgen_version\$"; then
  # Not --locked: one of its locked dependencies is missing from the registry this machine reaches.
  "${quick_tools[@]}" cargo install wasm-bindgen-cli --version "$bindgen_version" --force
else
  echo "wasm-bindgen $bindgen_version present"
fi

# Installs a folder's npm packages from its lockfile, unless that exact lockfile is installed.
npm_install() {
  local dir=$1 stamp
  stamp="$dir/node_modules/.burner-lock"
  if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
    echo "$dir: packages present"
    return
  fi
  # `install --no-save` follows the lockfile like `ci` does, but also accepts lockfiles written
  # with omit-lockfile-registry-resolved (this machine's npm setting), which `ci` refuses.
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-save --no-audit --no-fund --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
}

step "npm packages (Tailwind CSS, wasm-opt$([ "$purpose" = test ] && echo ', Playwright'))"
npm_install style
[ "$purpose" = test ] && npm_install end2end
exit 0
