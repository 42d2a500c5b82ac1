#!/usr/bin/env bash
# Runs Burner as a cluster on this machine: a Redis, a Postgres, NODES `burner` processes
# (default 3) and haproxy (deploy/haproxy.cfg) in front of them on BURNER_ADDR (default
# 127.0.0.1:3000). Installs what is missing and builds first, unless BURNER_BIN names a built
# binary (the end-to-end tests do that). Everything runs from a scratch directory on free
# loopback ports and stops, and is removed, on Ctrl-C or SIGTERM. See docs/DEPLOY.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"
nodes=${NODES:-3}
listen=${BURNER_ADDR:-127.0.0.1:3000}
if [ -z "${BURNER_BIN:-}" ]; then
  "$root/scripts/setup.sh" cluster
  "$root/scripts/build.sh"
fi
binary=${BURNER_BIN:-$CARGO_TARGET_DIR/release/burner}
site=${BURNER_SITE_DIR:-$root/target/site}

scratch=$(mktemp -d /tmp/burner-cluster.XXXXXX)
chmod 755 "$scratch"
pids=()
pg_ctl=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/pg_ctl
pgdata=$scratch/postgres
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
stop_all() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -f "$pgdata/postmaster.pid" ] && as_postgres "$pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Waits (10 s at most) until something answers on 127.0.0.1:$1.
wait_for_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing answers on port $1 (see $scratch)" >&2
  return 1
}

step "Redis (in memory only) and Postgres"
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$scratch/redis.log" 2>&1 &
pids+=($!)
# Postgres refuses to run as root: its own user, its own scratch directory, trusted on loopback.
mkdir -p "$pgdata"
[ "$(id -u)" = 0 ] && chown postgres "$pgdata"
as_postgres "$(dirname "$pg_ctl")/initdb" -D "$pgdata" -A trust -U burner >/dev/null
pg_port=$(free_port)
as_postgres "$pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w \
  -o "-p $pg_port -k $pgdata -c listen_addresses=127.0.0.1" start >/dev/null
wait_for_port "$redis_port"
database="postgres://burner@127.0.0.1:$pg_port/postgres"

step "$nodes Burner nodes"
token=${BURNER_MOD_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}
backend=$scratch/nodes.cfg
# BALANCE: how haproxy spreads sockets (default: by the room a socket names, as in
# deploy/nodes.example.cfg; `leastconn` spreads every socket).
printf 'backend nodes\n    balance %s\n    hash-type consistent\n    option httpchk GET /healthz\n    default-server check inter 1s fall 2 rise 2\n' \
  "${BALANCE:-url_param room}" >"$backend"
for i in $(seq "$nodes"); do
  port=$(free_port)
  BURNER_ADDR="127.0.0.1:$port" BURNER_NODE_ID="node$i" BURNER_REDIS_URL="redis://127.0.0.1:$redis_port" \
    BURNER_DATABASE_URL="$database" BURNER_TRUSTED_PROXIES=127.0.0.1/32 BURNER_MOD_TOKEN="$token" \
    BURNER_DATA_DIR="$scratch/node$i" "$binary" --site-dir "$site" >"$scratch/node$i.log" 2>&1 &
  pids+=($!)
  echo "    server node$i 127.0.0.1:$port" >>"$backend"
  # One at a time: the first migrates the database and makes the shared secrets.
  wait_for_port "$port"
  echo "node$i on 127.0.0.1:$port"
done

step "haproxy on $listen"
BURNER_LB_BIND=$listen haproxy -f "$root/deploy/haproxy.cfg" -f "$backend" >"$scratch/haproxy.log" 2>&1 &
pids+=($!)
wait_for_port "${listen##*:}"
step "Burner (a cluster of $nodes) on http://$listen — moderator token: $token (Ctrl-C stops it)"
# Runs until Ctrl-C. A node that ends (killed, crashed) leaves the others carrying on, as in
# production; Redis or haproxy ending stops everything.
declare -A node_of
for i in $(seq "$nodes"); do node_of[${pids[$i]}]=node$i; done
while true; do
  ended=
  wait -n -p ended "${pids[@]}" || true
  [ -z "$ended" ] && continue
  if [ -n "${node_of[$ended]:-}" ]; then
    echo "${node_of[$ended]} ended; the other nodes carry on (its log: $scratch/${node_of[$ended]}.log)" >&2
    remaining=()
    for pid in "${pids[@]}"; do [ "$pid" != "$ended" ] && remaining+=("$pid"); done
    pids=("${remaining[@]}")
  else
    echo "Redis or haproxy ended; stopping the cluster" >&2
    exit 1
  fi
done
