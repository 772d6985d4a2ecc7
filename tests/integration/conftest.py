"""Fixtures for the integration tests: real iptables in throw-away network namespaces.

Every test here is marked ``integration``. Those that need namespaces (all but
a few pure regression tests) need root and iproute2/iptables: without them they
FAIL, saying why, so a CI job that lost its privileges cannot pass quietly.
FLEETWALL_SKIP_INTEGRATION=1 skips them instead, with that reason shown.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest
from hypothesis import HealthCheck, settings

from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace, environment_problem

HERE = os.path.dirname(os.path.abspath(__file__))

settings.register_profile(
    "fleetwall-integration",
    # Reproducible in CI: the same examples on every run, nothing replayed from a local database.
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("FLEETWALL_HYPOTHESIS_EXAMPLES", "150")),
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        # The namespace fixture is shared by every example on purpose.
        HealthCheck.function_scoped_fixture,
    ],
    print_blob=False,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: real iptables in network namespaces (needs root)")


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def privileged() -> None:
    """Skip on FLEETWALL_SKIP_INTEGRATION=1; otherwise fail loudly without root or tools."""
    if os.environ.get("FLEETWALL_SKIP_INTEGRATION") == "1":
        pytest.skip("FLEETWALL_SKIP_INTEGRATION=1: integration tests (real iptables in network namespaces) skipped")
    problem = environment_problem()
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def make_namespace(privileged: None) -> Iterator:
    """Factory of fresh namespaces, every one deleted at teardown even if the test failed."""
    created = []

    def make() -> Namespace:
        namespace = Namespace.create()
        created.append(namespace)
        return namespace

    try:
        yield make
    finally:
        for namespace in reversed(created):
            namespace.delete()


@pytest.fixture
def namespace(make_namespace) -> Namespace:
    return make_namespace()
