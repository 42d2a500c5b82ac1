# The two commands (see README): `make run` serves Burner, `make test` runs every test.
# `make cluster` runs several nodes behind haproxy, with Redis and Postgres (NODES=3).
# `make bench` measures Burner side by side with its peers (QUICK=1 for a short run);
# `make bench-cluster` measures cluster mode (the Redis hop; two nodes against Socket.IO's).
# `make bench-discord` measures the Discord bridge against the local Discord stand-in.
.PHONY: run test bench bench-cluster bench-discord cluster

run:
	@scripts/run.sh

test:
	@scripts/test.sh

bench:
	@scripts/bench.sh

bench-cluster:
	@CLUSTER=1 scripts/bench.sh

bench-discord:
	@bash -c 'source scripts/env.sh && cargo run --release --locked -p server --example discord_bridge'

cluster:
	@scripts/cluster.sh
