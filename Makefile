# The two commands (see README): `make run` serves Burner, `make test` runs every test.
.PHONY: run test

run:
	@scripts/run.sh

test:
	@scripts/test.sh
