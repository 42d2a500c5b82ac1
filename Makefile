# The two commands (see README): `make run` serves Burner, `make test` runs every test.
# `make cluster` runs several nodes behind haproxy, with Redis and Postgres (NODES=3).
# `make bench` measures Burner side by side with its peers (QUICK=1 for a short run).
.PHONY: run test bench cluster

run:
	@scripts/run.sh

test:
	@scripts/test.sh

bench:
	@scripts/bench.sh

cluster:
	@scripts/cluster.sh
