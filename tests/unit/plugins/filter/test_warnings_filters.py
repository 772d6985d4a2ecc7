"""What the compile filters show as Ansible warnings."""

from __future__ import annotations

from typing import List

import pytest

from ansible_collections.fleetwall.iptables.plugins.filter import compile_ruleset as filters

from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

UNUSED = "fleetwall: fleetwall_services.memcache is defined but no rule uses it"
REDUNDANT = (
    "fleetwall: fleetwall_policy.all.inbound[1] is redundant: fleetwall_policy.all.inbound[0] comes first and already "
    "accepts every packet it matches"
)
POLICY = {"all": {"inbound": [{"service": "ssh"}, {"service": "ssh", "from": "group:bastion"}]}}


@pytest.fixture
def shown(monkeypatch) -> List[str]:
    messages: List[str] = []
    monkeypatch.setattr(filters.display, "warning", messages.append)
    return messages


def test_compile_fleet_shows_each_warning_once_and_unused_definitions(shown):
    hostvars, groups = inventory(policy=POLICY, services={"memcache": "tcp/11211"}, addresses={})
    rulesets = filters.compile_fleet(hostvars, groups)
    assert shown == [REDUNDANT, UNUSED]
    assert all(ruleset["warnings"] == [REDUNDANT[len("fleetwall: "):]] for ruleset in rulesets.values())


def test_compile_fleet_of_every_host_named_explicitly_shows_unused_definitions(shown):
    hostvars, groups = inventory(services={"memcache": "tcp/11211"})
    filters.compile_fleet(hostvars, groups, sorted(hostvars))
    assert shown == [UNUSED]


def test_compile_fleet_of_part_of_the_inventory_claims_nothing_unused(shown):
    hostvars, groups = inventory(services={"memcache": "tcp/11211"})
    filters.compile_fleet(hostvars, groups, ["web1", "web2"])
    assert shown == []


def test_compile_ruleset_claims_nothing_unused(shown):
    hostvars, groups = inventory(policy=POLICY, services={"memcache": "tcp/11211"})
    filters.compile_ruleset(hostvars, groups, "web1")
    assert shown == [REDUNDANT]
