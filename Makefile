# fleetwall.iptables — developer entry points. Run as root on Debian/Ubuntu:
# the integration tests create network namespaces and run iptables in them.
SHELL := /bin/bash
VENV := .venv
PYTEST := $(VENV)/bin/python -m pytest
LAB ?= 6

.PHONY: help bootstrap demo test sanity units integration benchmark docs release-check clean

help:
	@echo "make demo   - build a lab of network-namespace hosts and show what the example policy lets through"
	@echo "              (make demo LAB=100: the same on the example's groups scaled up to 100 hosts)"
	@echo "make test   - run every test: sanity, units, integration (real iptables in namespaces)"
	@echo "make units | sanity | integration | benchmark | docs | release-check"

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	@LAB=$(LAB) scripts/demo.sh

test: bootstrap
	@scripts/run-tests.sh

sanity: bootstrap
	@scripts/ansible-test.sh sanity

units: bootstrap
	@$(PYTEST) tests/unit -q

integration: bootstrap
	@$(PYTEST) tests/integration -q

benchmark: bootstrap
	@$(VENV)/bin/python benchmarks/compile.py

docs: bootstrap
	@scripts/docs-site.sh

release-check: bootstrap
	@scripts/release-check.sh

clean:
	rm -rf .build .pytest_cache .hypothesis tests/output
