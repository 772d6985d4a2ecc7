"""Whatever the policy accepts compiles without recursion errors and in about linear time (issue 10).

Each test asserts the result at an adversarial size, not the time it took:
benchmarks/compile.py and the hand timings in the changelog say how long.
"""

from __future__ import annotations

from typing import Any, Dict, List

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import HostRuleset
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler

from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

FLEET_SSH = {"service": "ssh", "from": ["office", "group:bastion"]}
OFFICE = ["203.0.113.0/24", "2001:db8:100::/48"]


def compiled(host: str = "web1", host_vars: Dict[str, Dict[str, Any]] = None, **kwargs: Any) -> HostRuleset:
    hostvars, groups = inventory(host_vars=host_vars, **kwargs)
    return FleetCompiler(hostvars, groups).compile_host(host)


def input_rules(ruleset: HostRuleset, family: int = 4) -> List[Any]:
    chains = {chain.name: chain for chain in ruleset.family(family).tables[0].chains}
    return [rule for rule in chains["INPUT"].rules if not (rule.comment or "").startswith("fleetwall baseline")]


def test_ten_thousand_rules_in_one_group_with_a_duplicate_at_the_end():
    rules = [{"proto": "tcp", "port": str(1 + index), "from": "10.%d.%d.0/24" % (index // 256, index % 256)} for index in range(10000)]
    rules.append(dict(rules[4321]))
    ruleset = compiled(policy={"all": {"inbound": [FLEET_SSH]}, "web": {"inbound": rules}})
    assert ruleset.warnings == (
        "fleetwall_policy.web.inbound[10000] is redundant: fleetwall_policy.web.inbound[4321] comes first and already "
        "accepts every packet it matches",
    )


def test_ten_thousand_host_rules_compile_to_one_iptables_rule_each():
    rules = [{"proto": "udp", "port": str(1 + index), "from": "192.0.2.%d" % (index % 256)} for index in range(10000)]
    ruleset = compiled(host_vars={"web1": {"fleetwall_host_rules": {"inbound": rules}}})
    assert len(input_rules(ruleset)) == 4 + 10000  # the fleet's ssh (office, bastion), ping and web rules, then these


def test_a_from_list_of_a_hundred_thousand_addresses_with_sets_off():
    blocklist = ["%d.%d.%d.1" % (11 + index // 65536, index // 256 % 256, index % 256) for index in range(100000)]
    ruleset = compiled(policy={"all": {"inbound": [FLEET_SSH]}, "web": {"inbound": [{"from": blocklist, "action": "drop"}]}},
                       host_vars={"web1": {"fleetwall_set_threshold": 0}})
    drops = [rule for rule in input_rules(ruleset) if rule.target == "DROP"]
    assert (len(drops), drops[0].source, drops[-1].source) == (100000, "11.0.0.1/32", "12.134.159.1/32")


def test_six_hundred_chained_address_sets():
    sets: Dict[str, Any] = {"s%d" % index: ["s%d" % (index + 1)] for index in range(600)}
    sets["office"] = OFFICE
    sets["s600"] = ["198.51.100.0/24"]
    ruleset = compiled(addresses=sets, policy={"all": {"inbound": [FLEET_SSH]}, "web": {"inbound": [{"service": "http", "from": "s0"}]}})
    assert input_rules(ruleset)[-1].source == "198.51.100.0/24"


def test_six_hundred_chained_sets_used_only_through_a_group_address_still_warn_per_family():
    sets: Dict[str, Any] = {"s%d" % index: ["s%d" % (index + 1)] for index in range(600)}
    sets["office"] = OFFICE
    sets["s600"] = ["group:db"]
    host_vars = {"db1": {"fleetwall_address_query": "ansible_host"}}
    ruleset = compiled(addresses=sets, host_vars=host_vars, policy={"web": {"inbound": [FLEET_SSH, {"service": "http", "from": "s0"}]}})
    assert "fleetwall_policy.web.inbound[1].from has no IPv6 address; the rule exists only in the IPv4 ruleset" in ruleset.warnings


def test_twenty_four_layers_of_sets_that_each_include_both_sets_of_the_next_layer():
    sets: Dict[str, Any] = {"office": OFFICE}
    for layer in range(24):
        sets["a%d" % layer] = ["a%d" % (layer + 1), "b%d" % (layer + 1)]
        sets["b%d" % layer] = ["a%d" % (layer + 1), "b%d" % (layer + 1)]
    sets["a24"], sets["b24"] = ["10.0.0.0/8"], ["192.168.0.0/16"]
    ruleset = compiled(addresses=sets, policy={"all": {"inbound": [FLEET_SSH]}, "web": {"inbound": [{"service": "http", "from": "a0"}]}})
    assert [rule.source for rule in input_rules(ruleset)[-2:]] == ["10.0.0.0/8", "192.168.0.0/16"]


def nested(value: Any, depth: int) -> Any:
    for _level in range(depth):
        value = [value]
    return value


def test_query_results_nested_a_thousand_and_three_thousand_deep():
    policy = {"db": {"inbound": [FLEET_SSH, {"service": "postgres", "from": "host:web1"}]}}
    for depth in (1000, 3000):
        host_vars = {"web1": {"fleetwall_address_query": "deep", "deep": nested("10.0.1.1", depth)}}
        assert input_rules(compiled("db1", host_vars=host_vars, policy=policy))[-1].source == "10.0.1.1/32"
