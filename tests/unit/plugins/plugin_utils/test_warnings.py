"""Compile-time warnings: shadowed and redundant rules, unused definitions, a family left empty."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler

from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory


def without_ssh_warning(warnings: Tuple[str, ...]) -> Tuple[str, ...]:
    """The warnings apart from 'no inbound rule accepts SSH': these tests give hosts no SSH rule on purpose
    (test_meaning_warnings.py pins that warning)."""
    return tuple(warning for warning in warnings if "no inbound rule accepts SSH" not in warning)


# The shared inventory (fleet.py): bastion 10.0.0.2, web1/web2 10.0.1.1-2, db1 10.0.2.1,
# each with an IPv6 address fd00::...; groups bastion, web, db.
ANY_SSH = {"service": "ssh", "from": ["10.0.0.0/8", "fd00::/8"]}


def warnings_of(host: str = "web1", **kwargs: Any) -> Tuple[str, ...]:
    hostvars, groups = inventory(**kwargs)
    return without_ssh_warning(FleetCompiler(hostvars, groups).compile_host(host).warnings)


def web_inbound(*rules: Dict[str, Any], **kwargs: Any) -> Tuple[str, ...]:
    """The warnings web1 gets when group web has these inbound rules (and nothing else is in the policy)."""
    return warnings_of("web1", policy={"web": {"inbound": list(rules)}}, **kwargs)


def redundant(later: int, earlier: int, verb: str = "accepts", group: str = "web", direction: str = "inbound") -> str:
    return "fleetwall_policy.%s.%s[%d] is redundant: fleetwall_policy.%s.%s[%d] comes first and already %s every packet it matches" % (
        group, direction, later, group, direction, earlier, verb,
    )


def unused(hostvars: Dict[str, Dict[str, Any]], groups: Dict[str, List[str]], hosts: Optional[List[str]] = None) -> Tuple[str, ...]:
    compiler = FleetCompiler(hostvars, groups)
    compiler.compile_hosts(sorted(hostvars))
    return compiler.unused_definition_warnings(hosts)


# ---------------------------------------------------------------- shadowed and redundant rules


def test_earlier_rule_with_the_same_action_makes_a_later_one_redundant():
    assert web_inbound({"service": "ssh"}, {"service": "ssh", "from": "10.0.0.0/8"}) == (redundant(1, 0),)


def test_earlier_rule_with_another_action_means_the_later_one_never_matches():
    assert web_inbound({"from": "203.0.113.0/24", "action": "drop"}, {"service": "https", "from": "203.0.113.128/25"}) == (
        "fleetwall_policy.web.inbound[1] never matches: fleetwall_policy.web.inbound[0] comes first and already drops "
        "every packet it would accept",
    )


def test_reject_verbs():
    assert web_inbound({"service": "ssh", "action": "reject"}, {"service": "ssh", "action": "drop"}) == (
        "fleetwall_policy.web.inbound[1] never matches: fleetwall_policy.web.inbound[0] comes first and already rejects "
        "every packet it would drop",
    )
    assert web_inbound({"service": "ssh", "action": "reject"}, {"service": "ssh", "action": "reject"}) == (redundant(1, 0, "rejects"),)


def test_partly_covering_earlier_rule_is_no_warning():
    assert web_inbound({"service": "ssh", "from": "10.0.0.0/9"}, {"service": "ssh", "from": "10.0.0.0/8"}) == ()
    assert web_inbound({"service": "http"}, {"service": ["http", "https"]}) == ()


def test_only_single_rules_are_compared_not_unions_of_earlier_rules():
    earlier = [{"service": "ssh", "from": "10.0.0.0/9"}, {"service": "ssh", "from": "10.128.0.0/9"}]
    assert web_inbound(*earlier, {"service": "ssh", "from": "10.0.0.0/8"}) == ()


def test_a_later_rule_covering_an_earlier_one_is_no_warning():
    assert web_inbound({"service": "ssh", "from": "10.0.0.0/9"}, {"service": "ssh"}) == ()


def test_the_first_covering_rule_is_named_once():
    assert web_inbound({"service": "ssh"}, {"service": "ssh"}, {"service": "ssh"}) == (redundant(1, 0), redundant(2, 0))


@pytest.mark.parametrize(
    "earlier, later, covered",
    [
        ({"proto": "tcp", "port": "1000-2000"}, {"proto": "tcp", "port": [1000, "1500-2000"]}, True),
        ({"proto": "tcp", "port": "1000-2000"}, {"proto": "tcp", "port": "1999-2001"}, False),
        ({"proto": "tcp", "port": "1-65535"}, {"proto": "tcp"}, True),
        ({"proto": "tcp"}, {"service": "ssh"}, True),
        ({"proto": "tcp", "port": 22}, {"proto": "tcp"}, False),
        ({"proto": "udp"}, {"service": "ssh"}, False),
        # Ports add up over the entries of one rule.
        ({"service": ["http", "https"]}, {"proto": "tcp", "port": [80, 443]}, True),
        # Source ports: absent covers every one; otherwise a superset is needed.
        ({"proto": "tcp", "port": 53}, {"proto": "tcp", "port": 53, "source_port": 53}, True),
        ({"proto": "tcp", "port": 53, "source_port": "1-1024"}, {"proto": "tcp", "port": 53, "source_port": 53}, True),
        ({"proto": "tcp", "port": 53, "source_port": 53}, {"proto": "tcp", "port": 53}, False),
        # No protocol is every protocol, and is covered only by no protocol.
        ({"from": "any"}, {"service": ["dns", "ping"]}, True),
        ({"service": "ssh"}, {"from": "any"}, False),
        ({"proto": "tcp"}, {"from": "any"}, False),
        # ICMP: no type covers every type; a type covers its codes.
        ({"proto": "icmp"}, {"proto": "icmp", "icmp_type": "echo-request"}, True),
        ({"proto": "icmp", "icmp_type": "destination-unreachable"}, {"proto": "icmp", "icmp_type": "port-unreachable"}, True),
        ({"proto": "icmp", "icmp_type": "port-unreachable"}, {"proto": "icmp", "icmp_type": "destination-unreachable"}, False),
        ({"proto": "icmp", "icmp_type": "echo-reply"}, {"proto": "icmp"}, False),
        ({"proto": "icmp", "icmp_type": "echo-request"}, {"service": "ping"}, False),  # ping is ICMPv6 too
        ({"service": "ping"}, {"proto": "icmp", "icmp_type": "echo-request"}, True),
        ({"proto": "icmpv6"}, {"proto": "icmp"}, False),
        # CIDR containment.
        ({"from": ["10.0.0.0/8", "fd00::/8"]}, {"from": ["10.1.2.0/24", "10.200.0.0/16", "fd00:1::/32"]}, True),
        ({"from": ["10.0.0.0/9", "10.128.0.0/9", "fd00::/8"]}, {"from": ["10.0.0.0/8", "fd00::/16"]}, True),
        ({"from": ["10.0.0.0/8", "fd00::/8"]}, {"from": ["10.0.0.0/7", "fd00::/16"]}, False),
        ({"from": ["10.0.0.0/8", "fd00::/8"]}, {"from": ["10.0.0.0/8", "fd01::/16"]}, True),
        ({"from": ["10.0.0.0/8", "fd00::/8"]}, {"from": ["10.0.0.0/8", "2001:db8::/32"]}, False),
        ({"from": "any"}, {"from": "10.0.0.0/8"}, True),
        ({"from": "any"}, {"from": "any"}, True),
        ({"from": ["0.0.0.0/1", "128.0.0.0/1", "::/0"]}, {"from": "any"}, True),
        ({"from": "10.0.0.0/8"}, {"from": "any"}, False),
        ({"from": ["10.0.0.0/8", "fd00::/8"]}, {"from": ["group:web"]}, True),
        ({"from": "group:web"}, {"from": "host:web2"}, True),
        ({"from": "host:web2"}, {"from": "group:web"}, False),
        ({"to": "10.0.1.0/24"}, {"to": "10.0.1.0/25"}, True),
        ({"to": "10.0.1.0/25"}, {"to": "10.0.1.0/24"}, False),
        ({"from": "10.0.0.0/8"}, {"to": "10.0.0.0/8"}, False),
        # Families: the earlier rule must cover every family the later one has rules in.
        ({"from": "10.0.0.0/8"}, {"from": "10.1.0.0/16"}, True),
        ({"from": "10.0.0.0/8"}, {"from": ["10.1.0.0/16", "fd00::/16"]}, False),
        ({"from": "fd00::/8"}, {"from": "10.1.0.0/16"}, False),
        ({"proto": "icmp"}, {"service": "icmp", "from": "10.0.0.0/8"}, True),
        ({"from": "10.0.0.0/8"}, {"service": "icmp"}, False),
        ({"from": "fd00::/8"}, {"service": "icmpv6"}, False),
        ({"from": "10.0.0.0/8", "service": "ping"}, {"service": "icmp", "from": "10.0.0.0/8"}, False),
        # Interfaces: none is any; a wildcard covers its prefix; a negation only itself.
        ({"interface": "eth+"}, {"interface": "eth0"}, True),
        ({"interface": "eth+"}, {"interface": "eth1+"}, True),
        ({"interface": "+"}, {"interface": "wg0"}, True),
        ({"interface": "eth0"}, {"interface": "eth0"}, True),
        ({"interface": "eth0"}, {"interface": "eth1"}, False),
        ({"interface": "eth0"}, {"interface": "eth+"}, False),
        ({"interface": "eth0"}, {"from": "any"}, False),
        ({"from": "any"}, {"interface": "!lo"}, True),
        ({"interface": "!lo"}, {"interface": "!lo"}, True),
        ({"interface": "!lo"}, {"interface": "eth0"}, False),
        ({"interface": "eth+"}, {"interface": "!eth0"}, False),
        ({"interface": "!eth+"}, {"interface": "!eth0"}, False),
        # Log flags, comments and reject answers do not matter.
        ({"log": True, "comment": "x", "from": "any"}, {"proto": "tcp"}, True),
        ({"action": "reject", "reject_with": "tcp-reset", "proto": "tcp"}, {"action": "reject", "service": "ssh"}, True),
    ],
)
def test_containment(earlier, later, covered):
    warnings = web_inbound(earlier, later)
    assert bool(warnings) == covered, warnings
    if covered:
        assert warnings[0].startswith("fleetwall_policy.web.inbound[1] ")


def test_forward_interfaces_both_count():
    rules = [
        {"service": "ssh", "in_interface": "wg0", "out_interface": "eth+"},
        {"service": "ssh", "in_interface": "wg0", "out_interface": "eth1"},
        {"service": "ssh", "in_interface": "wg1", "out_interface": "eth1"},
    ]
    assert warnings_of("web1", policy={"web": {"forward": rules}}) == (redundant(1, 0, direction="forward"),)


def test_rules_of_different_directions_are_never_compared():
    policy = {"web": {"inbound": [{"service": "ssh"}], "outbound": [{"service": "ssh"}], "forward": [{"service": "ssh"}]}}
    assert warnings_of("web1", policy=policy) == ()


def test_priority_decides_which_rule_comes_first():
    # Written second, but priority 100 puts it first: now the ssh rule is the one that never matches.
    assert web_inbound({"service": "ssh", "from": "10.0.0.0/8"}, {"from": ["10.0.0.0/8"], "action": "drop", "priority": 100}) == (
        "fleetwall_policy.web.inbound[0] never matches: fleetwall_policy.web.inbound[1] comes first and already drops "
        "every packet it would accept",
    )
    # A higher number comes later: no warning for the earlier-written, narrower rule.
    assert web_inbound({"service": "ssh", "from": "10.0.0.0/8"}, {"from": "10.0.0.0/8", "action": "drop", "priority": 900}) == ()


def test_group_rules_across_groups():
    policy = {"all": {"inbound": [ANY_SSH]}, "web": {"inbound": [{"service": "ssh", "from": "group:bastion"}]}}
    expected = (
        "fleetwall_policy.web.inbound[0] is redundant: fleetwall_policy.all.inbound[0] comes first and already accepts "
        "every packet it matches",
    )
    assert warnings_of("web1", policy=policy) == expected
    assert warnings_of("db1", policy=policy) == ()


def test_host_rules_are_compared_with_group_rules():
    host_vars = {"web1": {"fleetwall_host_rules": {"inbound": [{"service": "ssh", "from": "host:bastion", "action": "drop"}]}}}
    policy = {"all": {"inbound": [ANY_SSH]}}
    assert warnings_of("web1", policy=policy, host_vars=host_vars) == (
        "hostvars['web1'].fleetwall_host_rules.inbound[0] never matches: fleetwall_policy.all.inbound[0] comes first "
        "and already accepts every packet it would drop",
    )
    # The other way round: a host rule that comes first (priority) makes a group rule redundant on this host only.
    host_vars = {"web1": {"fleetwall_host_rules": {"inbound": [dict(ANY_SSH, priority=10)]}}}
    policy = {"all": {"inbound": [{"service": "ssh", "from": "group:bastion"}]}}
    hostvars, groups = inventory(policy=policy, host_vars=host_vars)
    compiler = FleetCompiler(hostvars, groups)
    assert without_ssh_warning(compiler.compile_host("web1").warnings) == (
        "fleetwall_policy.all.inbound[0] is redundant: hostvars['web1'].fleetwall_host_rules.inbound[0] comes first "
        "and already accepts every packet it matches",
    )
    assert without_ssh_warning(compiler.compile_host("web2").warnings) == ()


def test_host_rules_of_one_host_do_not_leak_into_another_with_the_same_groups():
    policy = {"web": {"inbound": [{"service": "https"}]}}
    host_vars = {
        "web1": {"fleetwall_host_rules": {"inbound": [{"service": "https", "from": "10.0.0.0/8"}]}},
        "web2": {"fleetwall_host_rules": {"inbound": [{"service": "ssh"}]}},
    }
    hostvars, groups = inventory(policy=policy, host_vars=host_vars)
    compiler = FleetCompiler(hostvars, groups)
    assert without_ssh_warning(compiler.compile_host("web1").warnings) == (
        "hostvars['web1'].fleetwall_host_rules.inbound[0] is redundant: fleetwall_policy.web.inbound[0] comes first "
        "and already accepts every packet it matches",
    )
    assert without_ssh_warning(compiler.compile_host("web2").warnings) == ()


def test_cached_results_stay_per_group_combination():
    # web hosts receive all + web, db hosts all + db: the same 'all' rule, different results.
    groups = {"all": ["bastion", "web1", "web2", "db1"], "ungrouped": [], "bastion": ["bastion"], "web": ["web1", "web2"], "db": ["db1"]}
    policy = {
        "all": {"inbound": [{"service": "https", "from": ["10.0.0.0/8", "fd00::/8"]}]},
        "web": {"inbound": [{"service": "https", "from": "group:bastion"}]},
        "db": {"inbound": [{"service": "https", "from": "203.0.113.0/24"}]},
    }
    hostvars, groups = inventory(policy=policy, groups=groups)
    compiler = FleetCompiler(hostvars, groups)
    results = {host: without_ssh_warning(compiler.compile_host(host).warnings) for host in ("web1", "db1", "web2", "bastion")}
    web_warning = (
        "fleetwall_policy.web.inbound[0] is redundant: fleetwall_policy.all.inbound[0] comes first and already accepts "
        "every packet it matches",
    )
    assert results == {"web1": web_warning, "web2": web_warning, "db1": (), "bastion": ()}
    # The same answers from a fresh compiler in another order.
    fresh = FleetCompiler(hostvars, groups)
    assert {host: without_ssh_warning(fresh.compile_host(host).warnings) for host in ("bastion", "db1", "web2", "web1")} == results


def test_a_rule_left_out_shadows_nothing():
    groups = {"all": ["web1"], "ungrouped": [], "web": ["web1"], "empty": []}
    policy = {"web": {"inbound": [{"from": "group:empty", "action": "drop"}, {"service": "ssh"}]}}
    assert warnings_of("web1", policy=policy, groups=groups) == (
        "fleetwall_policy.web.inbound[0].from matches no address; the rule is left out",
    )


def test_shadow_warnings_name_no_host_so_a_fleet_shows_one():
    policy = {"all": {"inbound": [{"service": "ssh"}, {"service": "ssh", "from": "group:bastion"}]}}
    hostvars, groups = inventory(policy=policy)
    rulesets = FleetCompiler(hostvars, groups).compile_hosts(sorted(hostvars))
    assert {without_ssh_warning(ruleset.warnings) for ruleset in rulesets.values()} == {(redundant(1, 0, group="all"),)}


# ---------------------------------------------------------------- defined but never used


def test_unused_service_and_address_set():
    hostvars, groups = inventory(
        services={"memcache": "tcp/11211", "app": "tcp/8000"},
        addresses={"office": ["203.0.113.0/24"], "vpn": ["10.8.0.0/16"]},
        policy={"web": {"inbound": [{"service": "app", "from": "office"}]}},
    )
    assert unused(hostvars, groups) == (
        "fleetwall_services.memcache is defined but no rule uses it",
        "fleetwall_addresses.vpn is defined but no rule or address set uses it",
    )


def test_everything_used_gives_no_warning():
    hostvars, groups = inventory()
    assert unused(hostvars, groups) == ()


def test_builtin_services_never_count_as_unused_even_when_redefined():
    hostvars, groups = inventory(services={"ssh": "tcp/2222"}, policy={"web": {"inbound": [{"service": "https"}]}}, addresses={})
    assert unused(hostvars, groups) == ()


def test_use_in_host_rules_only_counts():
    host_vars = {"db1": {"fleetwall_host_rules": {"outbound": [{"services": ["memcache"], "to": ["!vpn", "10.0.0.0/8"]}]}}}
    hostvars, groups = inventory(
        services={"memcache": "tcp/11211"}, addresses={"vpn": ["10.8.0.0/16"]}, policy={}, host_vars=host_vars
    )
    assert unused(hostvars, groups) == ()
    # Not with the other hosts only: the host that uses them must be among those looked at.
    compiler = FleetCompiler(hostvars, groups)
    assert compiler.unused_definition_warnings(["web1", "web2"]) == (
        "fleetwall_services.memcache is defined but no rule uses it",
        "fleetwall_addresses.vpn is defined but no rule or address set uses it",
    )
    # Hosts not compiled yet are read for the purpose.
    assert FleetCompiler(hostvars, groups).unused_definition_warnings() == ()


def test_a_host_rule_with_a_problem_still_counts_as_a_use():
    host_vars = {"db1": {"fleetwall_host_rules": {"inbound": [{"service": "memcache", "from": "set:vpn", "port": 1}]}}}
    hostvars, groups = inventory(services={"memcache": "tcp/11211"}, addresses={"vpn": ["10.8.0.0/16"]}, policy={}, host_vars=host_vars)
    assert FleetCompiler(hostvars, groups).unused_definition_warnings() == ()


def test_nested_address_set_is_used_by_the_set_that_includes_it():
    addresses = {"office": ["203.0.113.0/24"], "guests": ["203.0.113.128/25"], "staff": ["office", "!guests"], "old": ["staff"]}
    hostvars, groups = inventory(addresses=addresses, policy={"web": {"inbound": [{"service": "ssh", "from": "staff"}]}})
    # office and guests are used by staff, staff by a rule; old by nothing (a set that uses others still counts as unused).
    assert unused(hostvars, groups) == ("fleetwall_addresses.old is defined but no rule or address set uses it",)


def test_unused_is_not_a_per_host_warning():
    hostvars, groups = inventory(services={"memcache": "tcp/11211"})
    rulesets = FleetCompiler(hostvars, groups).compile_hosts(sorted(hostvars))
    assert all(without_ssh_warning(ruleset.warnings) == () for ruleset in rulesets.values())


# ---------------------------------------------------------------- a family left empty


def ipv4_only(*hosts: str) -> Dict[str, Dict[str, Any]]:
    """These hosts' addresses as if their IPv6 address were unknown (no facts gathered, say)."""
    return {host: {"fleetwall_address_query": "ansible_host"} for host in hosts}


def test_group_with_ipv4_addresses_only_in_a_dual_stack_fleet():
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}
    assert warnings_of("db1", policy=policy, host_vars=ipv4_only("web1", "web2")) == (
        "fleetwall_policy.db.inbound[0].from has no IPv6 address; the rule exists only in the IPv4 ruleset",
    )


def test_through_an_address_set_and_in_to():
    policy = {"web": {"outbound": [{"service": "postgres", "to": "databases"}]}}
    assert warnings_of("web1", policy=policy, addresses={"databases": ["group:db"]}, host_vars=ipv4_only("db1")) == (
        "fleetwall_policy.web.outbound[0].to has no IPv6 address; the rule exists only in the IPv4 ruleset",
    )


def test_ipv6_only_group():
    host_vars = {host: {"fleetwall_address_query": "ansible_default_ipv6.address"} for host in ("web1", "web2")}
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}
    assert warnings_of("db1", policy=policy, host_vars=host_vars) == (
        "fleetwall_policy.db.inbound[0].from has no IPv4 address; the rule exists only in the IPv6 ruleset",
    )


def test_group_with_one_dual_stack_host_is_fine():
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}
    assert warnings_of("db1", policy=policy, host_vars=ipv4_only("web1")) == ()


def test_single_stack_fleet_gives_no_family_warning():
    every_host = ipv4_only("bastion", "web1", "web2", "db1")
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}
    assert warnings_of("db1", policy=policy, host_vars=every_host) == ()


def test_literal_networks_of_one_family_are_deliberate():
    policy = {"web": {"inbound": [{"service": "https", "from": "198.51.100.0/24"}, {"service": "http", "from": "office"}]}}
    assert warnings_of("web1", policy=policy, addresses={"office": ["203.0.113.0/24"]}) == ()


def test_a_deliberate_family_in_the_other_field_is_no_warning():
    policy = {"web": {"forward": [{"service": "https", "from": "group:db", "to": "198.51.100.0/24"}]}}
    assert warnings_of("web1", policy=policy, host_vars=ipv4_only("db1")) == ()


def test_family_specific_services_do_not_warn_for_the_other_family():
    for rule in ({"service": "icmp", "from": "group:web"}, {"proto": "icmp", "icmp_type": "echo-request", "from": "group:web"}):
        policy = {"db": {"inbound": [rule]}}
        assert warnings_of("db1", policy=policy, host_vars=ipv4_only("web1", "web2")) == ()
    policy = {"db": {"inbound": [{"service": "ping", "from": "group:web"}]}}
    assert warnings_of("db1", policy=policy, host_vars=ipv4_only("web1", "web2")) == (
        "fleetwall_policy.db.inbound[0].from has no IPv6 address; the rule exists only in the IPv4 ruleset",
    )


def test_exceptions_of_hosts_do_not_count():
    policy = {"db": {"inbound": [{"service": "postgres", "from": ["10.0.0.0/8", "!group:web"]}]}}
    assert warnings_of("db1", policy=policy) == ()


def test_rule_in_no_family_keeps_its_own_warning_only():
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web", "to": "fd00::/8"}]}}
    assert warnings_of("db1", policy=policy, host_vars=ipv4_only("web1", "web2")) == (
        "fleetwall_policy.db.inbound[0] produces no rule: its addresses and protocols have no address family in "
        "common; the rule is left out",
    )


def test_hosts_without_any_address_do_not_break_the_fleet_check():
    groups = {"all": ["bastion", "web1", "web2", "db1", "nameless"], "ungrouped": ["nameless"], "bastion": ["bastion"], "web": ["web1", "web2"], "db": ["db1"]}
    host_vars = dict(ipv4_only("web1", "web2"), nameless={"ansible_host": "nameless.example.com"})
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}
    assert warnings_of("db1", policy=policy, host_vars=host_vars, groups=groups) == (
        "fleetwall_policy.db.inbound[0].from has no IPv6 address; the rule exists only in the IPv4 ruleset",
    )
