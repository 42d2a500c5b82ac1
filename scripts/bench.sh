#!/usr/bin/env bash
# `make bench`: Burner and its peers side by side (bench/, docs/BENCHMARKS.md). Installs the
# peers (npm: Bun, ws, Socket.IO; PyPI: Flask-SocketIO in a venv under the cache), builds the
# release binaries, runs the generator on core 1 against each server pinned to core 0, prints
# the table and writes it into docs/BENCHMARKS.md with the date and the machine.
# `make bench QUICK=1` is the short run (under 3 minutes); `ONLY=burner,bun` picks servers;
# `SMOKE=1` (from `make test`) only checks that every server builds, starts and delivers, side by
# side and in cluster mode, both at once.
# `CLUSTER=1` (`make bench-cluster`) measures cluster mode instead: the Redis hop, and two nodes
# with Redis against Socket.IO with its Redis adapter (installs redis-server if missing).
set -euo pipefail
source "$(dirname "$0")/env.sh"

step "peers"
command -v taskset >/dev/null || { echo "taskset (util-linux) is missing" >&2; exit 1; }
npm_stamp=bench/peers/node_modules/.burner-lock
if [ ! -f "$npm_stamp" ] || ! cmp -s bench/peers/package-lock.json "$npm_stamp"; then
  (cd bench/peers && npm install --no-save --no-audit --no-fund --loglevel=error)
  cp bench/peers/package-lock.json "$npm_stamp"
fi
venv="$BURNER_CACHE/bench-venv"
if [ ! -x "$venv/bin/python" ] || ! cmp -s bench/peers/requirements.txt "$venv/.burner-requirements"; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; else sudo apt-get install -y -qq python3-venv; fi
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r bench/peers/requirements.txt
  cp bench/peers/requirements.txt "$venv/.burner-requirements"
fi

if [ -n "${CLUSTER:-}${SMOKE:-}" ] && ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; else sudo apt-get install -y -qq redis-server; fi
fi

step "release binaries"
cargo build --release --locked "${host_packages[@]}"

bench() {
  BURNER_ROOT="$root" BENCH_TARGET="$CARGO_TARGET_DIR/release" BENCH_VENV="$venv" \
    taskset -c 1 "$CARGO_TARGET_DIR/release/burner-bench" "$@"
}

if [ -n "${SMOKE:-}" ]; then
  # Each smoke step offers 20 messages a second and passes on nothing lost, not on timings, so
  # the two runs share the cores: the cluster run's output follows the other's. Together they
  # took 91 s one after the other (docs/BENCHMARKS.md, "Test suite time").
  step "smoke runs: every server side by side, and cluster mode (Burner, Socket.IO), at once"
  cluster_log=$(mktemp)
  bench --smoke --cluster >"$cluster_log" 2>&1 &
  cluster=$!
  side_by_side=0
  bench --smoke ${ONLY:+--only "$ONLY"} || side_by_side=$?
  clustered=0
  wait "$cluster" || clustered=$?
  step "smoke run: cluster mode"
  cat "$cluster_log"
  rm -f "$cluster_log"
  [ "$side_by_side" = 0 ] || { echo "the smoke run side by side failed" >&2; exit 1; }
  [ "$clustered" = 0 ] || { echo "the smoke run in cluster mode failed" >&2; exit 1; }
  exit 0
fi

step "side by side"
args=()
[ -n "${QUICK:-}" ] && args+=(--quick)
[ -n "${ONLY:-}" ] && args+=(--only "$ONLY")
[ -n "${CLUSTER:-}" ] && args+=(--cluster)
out=$(mktemp)
bench "${args[@]}" --write "$out"

# The table goes between the markers in docs/BENCHMARKS.md, with when and where it was taken.
machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
{
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $machine, by \`make bench${CLUSTER:+-cluster}${QUICK:+ QUICK=1}\`."
  echo
  cat "$out"
} > "$out.section"
python3 - "$root/docs/BENCHMARKS.md" "$out.section" "make bench${CLUSTER:+-cluster}" <<'PY'
import sys
path, section, target = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3]
start, end = f"<!-- {target}: start -->", f"<!-- {target}: end -->"
text = open(path).read()
if start in text and end in text:
    text = text[: text.index(start) + len(start)] + "\n" + section + text[text.index(end):]
    open(path, "w").write(text)
    print(f"written to {path}")
PY
rm -f "$out" "$out.section"
