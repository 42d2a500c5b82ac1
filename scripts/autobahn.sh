#!/usr/bin/env bash
# The Autobahn WebSocket test cases (PyPI `kosoku`, in a venv under the cache) against Burner's
# own WebSocket layer: `server/examples/autobahn_echo.rs` echoes on a free loopback port. Fails
# on any case that is not OK, NON-STRICT or INFORMATIONAL, and lists those that are not OK.
# Sections 12 and 13 (permessage-deflate) are left out: Burner does not offer compression.
# Part of `make test`; reports go to $BURNER_CACHE/autobahn-reports.
set -euo pipefail
source "$(dirname "$0")/env.sh"

venv="$BURNER_CACHE/autobahn-venv"
if [ ! -x "$venv/bin/kosoku" ] || ! cmp -s scripts/autobahn-requirements.txt "$venv/.burner-requirements"; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; else sudo apt-get install -y -qq python3-venv; fi
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r scripts/autobahn-requirements.txt
  cp scripts/autobahn-requirements.txt "$venv/.burner-requirements"
fi

cargo build --release --locked "${host_packages[@]}" --example autobahn_echo
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CARGO_TARGET_DIR/release/examples/autobahn_echo" "127.0.0.1:$port" &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

reports="$BURNER_CACHE/autobahn-reports"
rm -rf "$reports"
status=0
(cd "$BURNER_CACHE" && "$venv/bin/kosoku" "127.0.0.1:$port" -x '12.*' -x '13.*' -o "$reports" >"$reports.log" 2>&1) || status=$?
tail -1 "$reports.log"
python3 - "$reports" <<'PY'
import collections, glob, json, sys
counts, notable = collections.Counter(), []
for path in glob.glob(f"{sys.argv[1]}/*_case_*.json"):
    case = json.load(open(path))
    verdict = (case["behavior"], case["behaviorClose"])
    counts[verdict] += 1
    if verdict != ("OK", "OK"):
        notable.append((tuple(int(p) for p in case["id"].split(".")), case["id"], *verdict))
print("Autobahn cases:", ", ".join(f"{n} {b}/{c}" for (b, c), n in counts.most_common()))
for _, case, behavior, close in sorted(notable):
    print(f"  {case}: {behavior}, close {close}")
bad = [n for n in notable if not {n[2], n[3]} <= {"OK", "NON-STRICT", "INFORMATIONAL"}]
if bad or not counts:
    sys.exit(f"{len(bad)} cases failed (see {sys.argv[1]}/index.html)")
PY
exit $status
