"""Properties of the compiler over random valid fleets (the Hypothesis strategy of tests/integration/policies.py).

Derandomized, so CI sees the same fleets every run; FLEETWALL_PROPERTY_EXAMPLES
(default 100) sets how many, e.g. 5000 for a long run.
"""

from __future__ import annotations

import os
import random
import re
from typing import Any, Dict, List, Tuple

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import AddressResolver, HostAddresses
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.analysis import CoverIndex, rule_covers, shadow_warnings
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler, _expand
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy import DIRECTIONS, parse_fleet_policy

from ansible_collections.fleetwall.iptables.tests.integration.policies import describe, fleet_kwargs, fleets
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

EXAMPLES = int(os.environ.get("FLEETWALL_PROPERTY_EXAMPLES", "100"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
POLICY_COMMENT = re.compile(
    r"^(?:fleetwall_policy\.(?P<group>[^.]+)|fleetwall_host_rules)\.(?P<direction>inbound|outbound|forward)\[(?P<index>\d+)\]"
)
UNIVERSAL_KEYS = ("from", "to", "interface", "in_interface", "out_interface")


def compile_all(hostvars: Dict[str, Any], groups: Dict[str, List[str]]) -> Dict[str, Tuple[str, str, Tuple[str, ...]]]:
    """Every host's rendered IPv4 and IPv6 text and its warnings; PolicyError as a result too."""
    compiler = FleetCompiler(hostvars, groups)
    result: Dict[str, Any] = {}
    for host in sorted(groups["all"]):
        try:
            ruleset = compiler.compile_host(host)
        except PolicyError as exc:
            result[host] = ("refused", str(exc))
            continue
        result[host] = (render_family(ruleset.ipv4), render_family(ruleset.ipv6), ruleset.warnings)
    return result


def shuffled(value: Any, rng: random.Random) -> Any:
    """Every mapping, however deep, in another key order; lists keep theirs (rule order means something)."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [shuffled(item, rng) for item in value]
    return value


def shuffled_inventory(hostvars: Dict[str, Any], groups: Dict[str, List[str]], rng: random.Random) -> Tuple[Dict[str, Any], Dict[str, List[str]]]:
    """Host and group order, group members, and every mapping's key order changed; rule lists keep their order."""
    new_groups = {name: rng.sample(members, len(members)) for name, members in rng.sample(list(groups.items()), len(groups))}
    new_hostvars = {host: shuffled(variables, rng) for host, variables in rng.sample(list(hostvars.items()), len(hostvars))}
    return new_hostvars, new_groups


@PROPERTY
@given(example=fleets(), seed=st.integers(0, 2**32 - 1))
def test_compiling_twice_and_in_any_inventory_order_gives_the_same_bytes_and_warnings(example, seed):
    kwargs = fleet_kwargs(example)
    note(describe(kwargs))
    hostvars, groups = inventory(**kwargs)
    first = compile_all(hostvars, groups)
    assert compile_all(hostvars, groups) == first
    assert compile_all(*shuffled_inventory(hostvars, groups, random.Random(seed))) == first


def raw_rule(kwargs: Dict[str, Any], host: str, comment: str) -> Dict[str, Any]:
    match = POLICY_COMMENT.match(comment)
    assert match, comment
    if match.group("group"):
        lists = kwargs["policy"][match.group("group")]
    else:
        lists = kwargs["host_vars"][host]["fleetwall_host_rules"]
    return lists[match.group("direction")][int(match.group("index"))]


def matches_every_packet(rule: Any) -> bool:
    return (
        (rule.source or "/0").endswith("/0")
        and (rule.destination or "/0").endswith("/0")
        and rule.in_interface in (None, "+") and not rule.in_interface_negated
        and rule.out_interface in (None, "+") and not rule.out_interface_negated
        and rule.protocol is None and not rule.ctstate and rule.hop_limit is None and rule.limit is None
    )


@PROPERTY
@given(example=fleets())
def test_a_rule_matching_every_packet_comes_only_from_a_policy_rule_that_said_so(example):
    kwargs = fleet_kwargs(example)
    note(describe(kwargs))
    hostvars, groups = inventory(**kwargs)
    compiler = FleetCompiler(hostvars, groups)
    for host in sorted(groups["all"]):
        ruleset = compiler.compile_host(host)
        for family in (ruleset.ipv4, ruleset.ipv6):
            for chain in family.tables[0].chains:
                for rule in chain.rules:
                    if matches_every_packet(rule) and not rule.comment.startswith("fleetwall default"):
                        raw = raw_rule(kwargs, host, rule.comment)
                        assert any(key in raw for key in UNIVERSAL_KEYS), (host, rule.comment, raw)


def pairwise_shadow_warnings(received: List[Any]) -> Tuple[str, ...]:
    """The check as it was before the index: every rule against every earlier one of its chain."""
    warnings: List[str] = []
    for direction in DIRECTIONS:
        chain = [(rule, expansion) for rule, expansion in received if rule.direction == direction and (expansion[0] or expansion[1])]
        for position, (later, later_expansion) in enumerate(chain):
            for earlier, earlier_expansion in chain[:position]:
                if rule_covers(earlier, earlier_expansion, later, later_expansion, {}):
                    # The message for this pair, as the compiler words it.
                    warnings.extend(shadow_warnings([(earlier, earlier_expansion), (later, later_expansion)], {}, {}))
                    break
    return tuple(warnings)


@PROPERTY
@given(example=fleets(), duplicates=st.lists(st.integers(0, 50), max_size=6))
def test_the_indexed_shadow_check_finds_what_comparing_every_pair_finds(example, duplicates):
    kwargs = fleet_kwargs(example)
    note(describe(kwargs))
    hostvars, groups = inventory(**kwargs)
    first = hostvars[groups["all"][0]]
    policy = parse_fleet_policy(
        first.get("fleetwall_services"), first.get("fleetwall_addresses"), first.get("fleetwall_policy"), groups, set(groups["all"])
    )
    resolver = AddressResolver(policy.address_sets, groups, HostAddresses(hostvars))
    rules = [rule for group in sorted(policy.group_rules) for rule in policy.group_rules[group]]
    # Repeat some rules later in the chain, so that shadowed ones are common.
    rules += [rules[index % len(rules)]._replace(origin="copy%d" % number) for number, index in enumerate(duplicates) if rules]
    try:
        received = [(rule, _expand(rule, resolver.resolve)) for rule in rules]
    except PolicyError:
        return  # a host without an address: refused, nothing to compare
    assert shadow_warnings(received, {}, {}) == pairwise_shadow_warnings(received)
    assert not missed_by_a_dimension(received)


def missed_by_a_dimension(received: List[Any]) -> List[Tuple[str, str, str]]:
    """(earlier, later, dimension) for each covering pair one index dimension alone would not find."""
    missed = []
    for position, (later, later_expansion) in enumerate(received):
        for earlier, earlier_expansion in received[:position]:
            if later.direction != earlier.direction or not (later_expansion[0] or later_expansion[1]):
                continue
            if not rule_covers(earlier, earlier_expansion, later, later_expansion, {}):
                continue
            index = CoverIndex()
            index.add(0, earlier, earlier_expansion)
            for dimension in CoverIndex.DIMENSIONS:
                found = index.candidates(later, later_expansion, (dimension,))
                if found is not None and 0 not in found:
                    missed.append((earlier.origin, later.origin, dimension))
    return missed
