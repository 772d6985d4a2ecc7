"""Rate limits per rule: limit, per-source hashlimit, connlimit and log limits, from policy to simulator."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.parse import parse_family, parse_rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError
from ansible_collections.fleetwall.iptables.plugins.module_utils.rates import HASHLIMIT_SCALE, LIMIT_SCALE, canonical_rate
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family, render_rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import simulate
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.packets import packet_from_dict
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

SSH_FROM_OUTSIDE = {"source": "198.51.100.7", "destination": "10.0.2.1", "protocol": "tcp", "port": 22}


def compiled(rules: List[Dict[str, Any]], host: str = "db1", **kwargs: Any):
    hostvars, groups = inventory(policy={"db": {"inbound": rules}}, **kwargs)
    return FleetCompiler(hostvars, groups).compile_host(host)


def policy_rule_lines(rules: List[Dict[str, Any]], family: int = 4) -> List[str]:
    text = render_family(compiled(rules).family(family))
    return [line for line in text.splitlines() if "fleetwall_policy.db" in line]


def problems_of(rule: Dict[str, Any]) -> List[str]:
    with pytest.raises(PolicyError) as exc:
        compiled([rule])
    return exc.value.problems


def verdict_of(rules: List[Dict[str, Any]], packet: Dict[str, Any]):
    parsed = packet_from_dict(packet)
    return simulate(compiled(rules).family(parsed.family), parsed)


# ---------------------------------------------------------------- rates as iptables-save prints them


@pytest.mark.parametrize(
    "written, printed",
    [("60/min", "1/sec"), ("90/min", "90/min"), ("3/min", "3/min"), ("1/s", "1/sec"), ("24/day", "1/hour"), ("7/MINUTE", "7/min")],
)
def test_a_limit_rate_is_kept_as_iptables_save_prints_it(written, printed):
    assert canonical_rate(written, LIMIT_SCALE)[0] == printed


def test_a_hashlimit_rate_that_prints_in_another_unit_reads_back_as_itself():
    printed = canonical_rate("100000/min", HASHLIMIT_SCALE)[0]
    assert canonical_rate(printed, HASHLIMIT_SCALE)[0] == printed


def test_a_limit_slower_than_the_kernel_counts_with_its_burst_is_refused():
    with pytest.raises(ValueError, match="slower than the kernel can count"):
        canonical_rate("1/day", LIMIT_SCALE, 5)


# ---------------------------------------------------------------- compiled rules


def test_a_per_rule_limit_on_an_accept_rule_renders_a_limit_match():
    lines = policy_rule_lines([{"service": "http", "limit": "100/sec"}])
    assert lines == [
        '-A INPUT -p tcp -m tcp --dport 80 -m limit --limit 100/sec -m comment --comment "fleetwall_policy.db.inbound[0]" -j ACCEPT'
    ]


def test_a_limit_burst_other_than_five_is_rendered_and_five_is_left_out():
    lines = policy_rule_lines([{"service": "http", "limit": {"rate": "1/sec", "burst": 10}}, {"service": "https", "limit": {"rate": "1/sec", "burst": 5}}])
    assert ["--limit-burst 10" in line for line in lines] == [True, False]


def test_a_per_source_limit_on_a_drop_rule_drops_what_exceeds_the_rate():
    line = policy_rule_lines([{"service": "ssh", "action": "drop", "limit": {"rate": "3/min", "per": "source"}}])[0]
    assert "-m hashlimit --hashlimit-above 3/min --hashlimit-burst 5 --hashlimit-mode srcip --hashlimit-name fw-" in line


def test_max_connections_counts_one_address_per_source_in_each_family():
    rules = [{"service": "ssh", "max_connections": 3}]
    masks = [policy_rule_lines(rules, family)[0].split("--connlimit-mask ")[1].split()[0] for family in (4, 6)]
    assert masks == ["32", "128"]


def test_every_expansion_of_one_rule_shares_its_per_source_buckets():
    rules = [{"service": "ssh", "from": ["192.0.2.0/24", "198.51.100.0/24"], "limit": {"rate": "3/min", "per": "source"}}]
    names = set(line.split("--hashlimit-name ")[1].split()[0] for line in policy_rule_lines(rules))
    assert len(names) == 1


def test_a_changed_per_source_limit_gets_buckets_of_a_new_name():
    first = policy_rule_lines([{"service": "ssh", "limit": {"rate": "3/min", "per": "source"}}])[0]
    second = policy_rule_lines([{"service": "ssh", "limit": {"rate": "4/min", "per": "source"}}])[0]
    assert first.split("--hashlimit-name ")[1].split()[0] != second.split("--hashlimit-name ")[1].split()[0]


def test_a_log_limit_caps_the_log_rule_only():
    lines = policy_rule_lines([{"service": "ssh", "action": "drop", "log": {"limit": "5/min"}}])
    assert ["-m limit --limit 5/min" in line for line in lines] == [True, False]


def test_the_log_rule_of_a_per_source_limit_counts_in_buckets_of_its_own():
    lines = policy_rule_lines([{"service": "ssh", "action": "drop", "limit": {"rate": "3/min", "per": "source"}, "log": True}])
    names = [line.split("--hashlimit-name ")[1].split()[0] for line in lines]
    assert names[0] == "fwlog-" + names[1][len("fw-"):]


def test_a_policy_without_limits_renders_no_rate_match():
    text = render_family(compiled([{"service": "ssh", "log": True}]).ipv4)
    assert "hashlimit" not in text and "connlimit" not in text and "-m limit" not in text


def test_a_rate_limited_rule_shadows_no_later_rule():
    ruleset = compiled([{"service": "ssh", "limit": "3/min"}, {"service": "ssh"}])
    assert not any("redundant" in warning or "never matches" in warning for warning in ruleset.warnings)


# ---------------------------------------------------------------- text round trip


@pytest.mark.parametrize(
    "line",
    [
        "-A INPUT -p tcp -m tcp --dport 22 -m limit --limit 3/min --limit-burst 10 -j ACCEPT",
        "-A INPUT -p tcp -m tcp --dport 22 -m hashlimit --hashlimit-above 3/min --hashlimit-burst 5 --hashlimit-mode srcip "
        "--hashlimit-name fw-0123456789ab -j DROP",
        "-A INPUT -p tcp -m tcp --dport 22 -m connlimit --connlimit-upto 3 --connlimit-mask 128 --connlimit-saddr -j ACCEPT",
    ],
)
def test_a_rate_match_reads_back_into_the_rule_render_wrote(line):
    chain, rule = parse_rule(line)
    assert render_rule(chain, rule) == line


def test_a_compiled_ruleset_with_every_rate_match_parses_back_to_itself():
    rules = [
        {"service": "ssh", "limit": {"rate": "1/sec", "burst": 10, "per": "source"}, "max_connections": 4, "log": {"limit": "5/min"}},
        {"service": "http", "limit": "100/sec"},
    ]
    ruleset = compiled(rules).ipv6
    assert parse_family(render_family(ruleset), 6) == ruleset


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "rule, problem",
    [
        ({"service": "ssh", "limit": "3/fortnight"}, "fleetwall_policy.db.inbound[0].limit: a rate is COUNT/UNIT with a unit of sec, "
         "min, hour or day (e.g. 3/min), got '3/fortnight'"),
        ({"service": "ssh", "limit": {"rate": "3/min", "burst": 0}}, "fleetwall_policy.db.inbound[0].limit.burst: burst must be a "
         "whole number of packets from 1 to 10000, got 0"),
        ({"service": "ssh", "limit": {"rate": "3/min", "per": "host"}}, "fleetwall_policy.db.inbound[0].limit.per: per must be 'rule' "
         "(one limit for every packet the rule matches) or 'source' (a limit for each source address), got 'host'"),
        ({"service": "ssh", "limit": {"burst": 3}}, "fleetwall_policy.db.inbound[0].limit: a limit needs 'rate', e.g. rate: 3/min"),
        ({"service": "ssh", "limit": "1/day"}, "fleetwall_policy.db.inbound[0].limit: '1/day' with burst 5 is slower than the kernel "
         "can count; ask for a faster rate or a smaller burst"),
        ({"service": "ssh", "max_connections": True}, "fleetwall_policy.db.inbound[0].max_connections: max_connections must be a whole "
         "number of connections per source from 1 to 1000000, got True"),
        ({"service": "ssh", "log": {"limit": {"rate": "1/sec", "per": "source"}}}, "fleetwall_policy.db.inbound[0].log.limit.per: "
         "unknown key 'per'; allowed: rate, burst"),
        ({"service": "ssh", "limit": "3/min", "log": {"limit": "1/min"}}, "fleetwall_policy.db.inbound[0].log.limit: the rule's own "
         "limit (per rule) already caps what it logs; leave this out"),
    ],
    ids=["unit", "burst", "per", "no-rate", "too-slow", "connections-bool", "log-per-source", "log-limit-beside-limit"],
)
def test_a_bad_rate_limit_is_refused_with_its_path(rule, problem):
    assert problems_of(rule) == [problem]


def test_a_drop_rule_with_a_per_rule_limit_is_refused_because_iptables_cannot_select_the_excess():
    problem = problems_of({"service": "ssh", "action": "drop", "limit": "3/min"})[0]
    assert problem.startswith("fleetwall_policy.db.inbound[0].limit: a drop rule's limit needs per: source")


# ---------------------------------------------------------------- simulator


def test_the_simulator_takes_a_packet_within_the_limits_and_says_the_verdict_depends_on_them():
    result = verdict_of([{"service": "ssh", "limit": {"rate": "3/min", "per": "source"}}], SSH_FROM_OUTSIDE)
    assert (result.verdict, len(result.rate_dependent)) == ("ACCEPT", 1)


def test_a_packet_over_the_limits_falls_past_a_limited_accept_rule():
    packet = dict(SSH_FROM_OUTSIDE, over_limits=True)
    assert verdict_of([{"service": "ssh", "limit": {"rate": "3/min", "per": "source"}}], packet).verdict == "DROP"


def test_a_packet_over_the_limits_is_dropped_by_a_limited_drop_rule():
    rules = [{"service": "ssh", "action": "drop", "max_connections": 3}, {"service": "ssh"}]
    result = verdict_of(rules, dict(SSH_FROM_OUTSIDE, over_limits=True))
    assert (result.verdict, result.comment) == ("DROP", "fleetwall_policy.db.inbound[0]")


def test_a_verdict_no_limited_rule_took_part_in_depends_on_no_rate():
    assert verdict_of([{"service": "ssh", "log": {"limit": "1/min"}}], SSH_FROM_OUTSIDE).rate_dependent == ()
