"""Address lists longer than fleetwall_set_threshold compile to one ipset set per family."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import AddressSet
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import HostRuleset, Rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, simulate
from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict, ruleset_to_dict
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.tests.unit.fleet import GROUPS, HOSTS, inventory

POSTGRES_FROM = {"db": {"inbound": [{"service": "postgres", "from": ["group:web", "!host:web1"]}]}}


def compile_host(host: str, threshold: Any = 1, policy: Optional[Dict[str, Any]] = None,
                 groups: Optional[Dict[str, List[str]]] = None, extra_hosts: Optional[Dict[str, Dict[str, Any]]] = None) -> HostRuleset:
    host_vars = {name: {"fleetwall_set_threshold": threshold} for name in (groups or GROUPS)["all"]}
    hostvars, groups_ = inventory(policy=policy, host_vars=host_vars, groups=groups)
    for name, variables in (extra_hosts or {}).items():
        hostvars[name].update(variables)
    return FleetCompiler(hostvars, groups_).compile_host(host)


def set_named(ruleset: HostRuleset, family: int, name: str) -> AddressSet:
    return {item.name: item for item in ruleset.family(family).sets}[name]


def input_rules(ruleset: HostRuleset, family: int, comment_start: str) -> List[Rule]:
    rules = ruleset.family(family).table("filter").chain("INPUT").rules
    return [rule for rule in rules if (rule.comment or "").startswith(comment_start)]


def test_without_the_threshold_variable_no_set_is_made() -> None:
    hostvars, groups = inventory()
    ruleset = FleetCompiler(hostvars, groups).compile_host("db1")
    assert (ruleset.ipv4.sets, ruleset.ipv6.sets, "ipsets" in ruleset_to_dict(ruleset)) == ((), (), False)


def test_a_group_reference_past_the_threshold_is_one_rule_matching_one_set() -> None:
    rules = input_rules(compile_host("db1"), 4, "fleetwall_policy.db.inbound[0]")
    assert [(rule.source, rule.source_set) for rule in rules] == [(None, "fw4-g:web")]


def test_the_set_holds_the_groups_addresses_of_its_family() -> None:
    assert set_named(compile_host("db1"), 6, "fw6-g:web").members == ("fd00::1:1", "fd00::1:2")


def test_a_reference_within_the_threshold_stays_one_rule_per_address() -> None:
    rules = input_rules(compile_host("db1", threshold=2), 4, "fleetwall_policy.db.inbound[0]")
    assert [rule.source for rule in rules] == ["10.0.1.1/32", "10.0.1.2/32"]


def test_an_exception_inside_the_list_is_left_out_of_the_set() -> None:
    groups = dict(GROUPS, all=GROUPS["all"] + ["web3"], web=["web1", "web2", "web3"])
    extra = {"web3": dict(HOSTS["web1"], ansible_host="10.0.1.9")}
    ruleset = compile_host("db1", policy=POSTGRES_FROM, groups=groups, extra_hosts=extra)
    assert ruleset.ipv4.sets[0].members == ("10.0.1.2", "10.0.1.9")


def test_a_list_of_exceptions_only_is_the_negated_set_of_what_it_excepts() -> None:
    policy = {"db": {"inbound": [{"service": "postgres", "from": "!host:web1"}]}}
    rules = input_rules(compile_host("db1", policy=policy), 4, "fleetwall_policy.db.inbound[0]")
    assert [(rule.source_set, rule.source_set_negated) for rule in rules] == [("fw4-h:web1", True)]


def test_exceptions_on_both_sides_stay_one_rule_per_family_instead_of_thousands() -> None:
    policy = {"db": {"inbound": [{"service": "postgres", "from": "!host:web1", "to": "!host:bastion"}]}}
    ruleset = compile_host("db1", policy=policy)
    counts = [len(input_rules(ruleset, family, "fleetwall_policy.db.inbound[0]")) for family in (4, 6)]
    assert counts == [1, 1]


def test_the_same_references_in_two_rules_share_one_set() -> None:
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}, {"service": "redis", "from": "group:web"}]}}
    assert [item.name for item in compile_host("db1", policy=policy).ipv4.sets] == ["fw4-g:web"]


def test_two_hosts_get_byte_identical_definitions_of_the_same_set() -> None:
    policy = {"all": {"inbound": [{"service": "ssh", "from": "group:web"}]}}
    first, second = (ruleset_to_dict(compile_host(host, policy=policy))["ipsets"] for host in ("db1", "bastion"))
    assert first == second


def test_a_membership_change_keeps_the_set_name_and_the_rules() -> None:
    groups = dict(GROUPS, all=GROUPS["all"] + ["web3"], web=["web1", "web2", "web3"])
    extra = {"web3": dict(HOSTS["web1"], ansible_host="10.0.1.9")}
    before, after = compile_host("db1"), compile_host("db1", groups=groups, extra_hosts=extra)
    members = [set_named(ruleset, 4, "fw4-g:web").members for ruleset in (before, after)]
    assert (ruleset_to_dict(before)["ipv4"], members[0] != members[1]) == (ruleset_to_dict(after)["ipv4"], True)


def test_a_compiled_ruleset_with_sets_travels_and_reads_back_equal() -> None:
    ruleset = compile_host("db1")
    assert ruleset_from_dict(ruleset_to_dict(ruleset)) == ruleset


def test_a_travelling_rule_naming_a_set_that_is_not_there_is_refused() -> None:
    data = ruleset_to_dict(compile_host("db1"))
    data["ipsets"] = ""
    with pytest.raises(ValueError, match="does not define"):
        ruleset_from_dict(data)


@pytest.mark.parametrize("source, verdict", [("10.0.1.2", "ACCEPT"), ("10.0.2.99", "DROP")], ids=["group member", "outsider"])
def test_the_simulator_decides_by_set_membership(source: str, verdict: str) -> None:
    packet = Packet("INPUT", source, "10.0.2.1", "tcp", 40000, 5432)
    assert simulate(compile_host("db1").ipv4, packet).verdict == verdict


@pytest.mark.parametrize("value", [-1, "many", True, 1.5], ids=["negative", "text", "boolean", "fraction"])
def test_a_threshold_that_is_not_a_whole_number_is_refused_naming_the_host(value: Any) -> None:
    with pytest.raises(PolicyError, match=r"hostvars\['db1'\]\.fleetwall_set_threshold: must be a whole number"):
        compile_host("db1", threshold=value)


def test_a_threshold_given_as_digits_on_the_command_line_is_a_number() -> None:
    assert compile_host("db1", threshold="1").ipv4.sets != ()


def test_a_thousand_host_group_costs_one_rule_per_family() -> None:
    web = ["web%d" % index for index in range(1000)]
    groups = {"all": ["db1"] + web, "web": web, "db": ["db1"]}
    extra = {host: {"ansible_host": "10.%d.%d.%d" % (20 + index // 4000, (index // 16) % 250, (index % 16) * 8 + 1)}
             for index, host in enumerate(web)}
    ruleset = compile_host("db1", threshold=16, policy={"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}},
                           groups=groups, extra_hosts=extra)
    assert (len(input_rules(ruleset, 4, "fleetwall_policy")), len(ruleset.ipv4.sets[0].members)) == (1, 1000)
