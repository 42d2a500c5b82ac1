#!/usr/bin/env bash
# Fails when the tests' dev-dependencies would compile a dependency with other features than the
# release build does: then `cargo test` and `cargo build` of the same packages each compile their
# own copy of it and of everything above it (docs/BENCHMARKS.md, "Test suite time"). The cure is
# to turn the listed features on in the release build too (see the end of server/Cargo.toml's
# [dependencies]).
set -euo pipefail
source "$(dirname "$0")/env.sh"

features() {
  cargo tree --locked "${host_packages[@]}" -e "$1" -f '{p} [{f}]' --prefix none | sed 's/ (\*)$//' | sort -u
}
release=$(features normal,build)
tests=$(features normal,build,dev)
# The tests add crates of their own; every crate of the release build must appear in theirs with
# the same feature sets and no other (a crate can show once per feature set it is compiled with).
shared=$(awk 'FNR == NR { keys[$1 " " $2]; next } ($1 " " $2) in keys' <(echo "$release") <(echo "$tests"))
if [ "$shared" != "$release" ]; then
  echo "the tests would compile these with other features than the release build (< release, > tests):" >&2
  diff <(echo "$release") <(echo "$shared") | grep '^[<>]' | sed 's/^/  /' >&2
  exit 1
fi
echo "one feature set for the release build and the tests"
