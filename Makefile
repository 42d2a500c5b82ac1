# The two commands (see README): `make run` serves Burner, `make test` runs every test.
# `make bench` measures Burner side by side with its peers (QUICK=1 for a short run).
.PHONY: run test bench

run:
	@scripts/run.sh

test:
	@scripts/test.sh

bench:
	@scripts/bench.sh
