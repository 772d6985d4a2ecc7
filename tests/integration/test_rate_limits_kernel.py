"""Per-rule rate limits in a real kernel: a per-source limit stops one noisy source and no other.

A client namespace with two source addresses per family sends bare SYNs to a
server whose ruleset fleetwall compiled from a policy with a per-source limit
(accept 5 at once, then 1 a minute) and a connection limit. What passes is
counted on the server's accept rule; the bounds leave room for a token or two
refilled on a slow machine, and nothing is timed.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import FamilyRuleset
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.tests.integration.lab import (
    Lab,
    Sender,
    build_lab,
    install,
    wait_until_quiet,
)
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

NOISY = {4: "10.9.0.10", 6: "fd00:9::10"}
QUIET = {4: "10.9.0.11", 6: "fd00:9::11"}
SERVER = {4: "10.9.0.1", 6: "fd00:9::1"}
PORT = 5000
BURST = 5
FLOOD = 30


def compiled(rule: dict) -> dict:
    hostvars, groups = inventory(host_vars={"web1": {"fleetwall_host_rules": {"inbound": [rule]}, "fleetwall_baseline": False}})
    ruleset = FleetCompiler(hostvars, groups).compile_host("web1")
    return {4: ruleset.ipv4, 6: ruleset.ipv6}


@pytest.fixture
def lab(make_namespace) -> Iterator[Lab]:
    client, server = make_namespace(), make_namespace()
    yield build_lab(client, server, [NOISY[4], QUIET[4], NOISY[6], QUIET[6]], [SERVER[4], SERVER[6]])


def accepted_by_policy_rule(lab_: Lab, ruleset: FamilyRuleset) -> int:
    """Packets counted by the rule the policy's one inbound rule became (the last ACCEPT of INPUT)."""
    rules = ruleset.table("filter").chain("INPUT").rules
    index = max(position for position, rule in enumerate(rules) if rule.target == "ACCEPT")
    return wait_until_quiet(lab_, ruleset.family).rules[index][0]


def send_syns(sender: Sender, family: int, source: str, count: int, first_port: int) -> None:
    for offset in range(count):
        sender.send({"proto": "tcp", "src": source, "dst": SERVER[family], "sport": first_port + offset, "dport": PORT})


@pytest.mark.parametrize("family", [4, 6])
def test_a_burst_beyond_a_per_source_limit_is_dropped_while_another_source_gets_through(lab: Lab, family: int) -> None:
    ruleset = compiled({"proto": "tcp", "port": PORT, "limit": {"rate": "1/min", "burst": BURST, "per": "source"}})[family]
    install(lab, ruleset)
    sender = Sender(lab.client)
    try:
        send_syns(sender, family, NOISY[family], FLOOD, 20000)
        noisy = accepted_by_policy_rule(lab, ruleset)
        send_syns(sender, family, QUIET[family], 3, 30000)
        both = accepted_by_policy_rule(lab, ruleset)
    finally:
        sender.close()
    assert (BURST <= noisy <= BURST + 2, both - noisy) == (True, 3), "noisy source: %d of %d accepted" % (noisy, FLOOD)


@pytest.mark.parametrize("family", [4, 6])
def test_the_simulator_says_the_limited_verdict_depends_on_the_rate(family: int) -> None:
    from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, simulate

    ruleset = compiled({"proto": "tcp", "port": PORT, "limit": {"rate": "1/min", "burst": BURST, "per": "source"}})[family]
    packet = Packet("INPUT", NOISY[family], SERVER[family], "tcp", 20000, PORT)
    verdicts = [simulate(ruleset, packet._replace(over_limits=over)) for over in (False, True)]
    assert [(verdict.verdict, len(verdict.rate_dependent)) for verdict in verdicts] == [("ACCEPT", 1), ("DROP", 1)]
