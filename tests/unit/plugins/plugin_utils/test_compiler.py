"""What the compiler makes of a policy, checked on the rendered text."""

from __future__ import annotations

from typing import Tuple

import random

import pytest

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict, ruleset_to_dict
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family

from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory


def without_ssh_warning(warnings: Tuple[str, ...]) -> Tuple[str, ...]:
    """The warnings apart from 'no inbound rule accepts SSH': these tests give hosts no SSH rule on purpose
    (test_meaning_warnings.py pins that warning)."""
    return tuple(warning for warning in warnings if "no inbound rule accepts SSH" not in warning)


def rendered(host: str, **kwargs) -> tuple[str, str]:
    hostvars, groups = inventory(**kwargs)
    ruleset = FleetCompiler(hostvars, groups).compile_host(host)
    return render_family(ruleset.ipv4), render_family(ruleset.ipv6)


def user_rules(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("-A") and "fleetwall baseline" not in line]


def test_group_source_becomes_one_rule_per_host_address_in_each_family():
    ipv4, ipv6 = rendered("db1")
    assert [line for line in user_rules(ipv4) if "5432" in line] == [
        '-A INPUT -s 10.0.1.1/32 -p tcp -m tcp --dport 5432 -m comment --comment "fleetwall_policy.db.inbound[0]: app tier" -j ACCEPT',
        '-A INPUT -s 10.0.1.2/32 -p tcp -m tcp --dport 5432 -m comment --comment "fleetwall_policy.db.inbound[0]: app tier" -j ACCEPT',
    ]
    assert [line.split()[3] for line in user_rules(ipv6) if "5432" in line] == ["fd00::1:1/128", "fd00::1:2/128"]


def test_host_outside_a_group_gets_none_of_its_rules():
    ipv4 = rendered("web1")[0]
    assert "5432" not in ipv4


def test_services_of_one_protocol_share_a_multiport_rule():
    ipv4 = rendered("web1")[0]
    assert '-A INPUT -p tcp -m multiport --dports 80,443 -m comment --comment "fleetwall_policy.web.inbound[0]" -j ACCEPT' in ipv4


def test_rule_without_address_applies_to_both_families():
    ipv4, ipv6 = rendered("web1")
    assert any("--dports 80,443" in line for line in user_rules(ipv4))
    assert any("--dports 80,443" in line for line in user_rules(ipv6))


def test_inbound_rule_with_only_ipv6_sources_adds_no_ipv4_rule():
    policy = {"web": {"inbound": [{"service": "http", "from": "2001:db8::/32"}]}}
    ipv4, ipv6 = rendered("web1", policy=policy)
    assert user_rules(ipv4) == []
    assert user_rules(ipv6) == [
        '-A INPUT -s 2001:db8::/32 -p tcp -m tcp --dport 80 -m comment --comment "fleetwall_policy.web.inbound[0]" -j ACCEPT'
    ]


def test_ping_service_is_icmp_echo_in_ipv4_and_icmpv6_echo_in_ipv6():
    ipv4, ipv6 = rendered("web1")
    assert "-p icmp -m icmp --icmp-type 8 " in ipv4
    assert "-p ipv6-icmp -m icmp6 --icmpv6-type 128 " in ipv6


def test_exception_is_cut_out_of_the_source_range():
    policy = {"web": {"inbound": [{"service": "http", "from": ["10.0.0.0/8", "!10.0.0.0/9"]}]}}
    ipv4, ipv6 = rendered("web1", policy=policy)
    assert [line.split()[3] for line in user_rules(ipv4)] == ["10.128.0.0/9"]
    assert user_rules(ipv6) == []


def test_only_exceptions_means_everything_else():
    policy = {"web": {"inbound": [{"service": "http", "from": ["!0.0.0.0/1"]}]}}
    ipv4, ipv6 = rendered("web1", policy=policy)
    assert [line.split()[3] for line in user_rules(ipv4)] == ["128.0.0.0/1"]
    assert [line.split()[2] for line in user_rules(ipv6)] == ["-p"]  # ::/0 is printed as no -s at all


def test_default_policies_and_reject_tail():
    host_vars = {"web1": {"fleetwall_default_policy": {"inbound": "reject", "outbound": "drop", "forward": "accept"}}}
    ipv4, ipv6 = rendered("web1", host_vars=host_vars)
    assert ":INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT DROP [0:0]" in ipv4
    assert [line for line in ipv4.splitlines() if line.startswith("-A INPUT")][-1].endswith(
        "-j REJECT --reject-with icmp-port-unreachable"
    )
    assert [line for line in ipv6.splitlines() if line.startswith("-A INPUT")][-1].endswith(
        "-j REJECT --reject-with icmp6-port-unreachable"
    )


def test_restrictive_outbound_gets_loopback_established_and_neighbour_discovery():
    host_vars = {"web1": {"fleetwall_default_policy": {"outbound": "drop"}}}
    ipv6 = rendered("web1", host_vars=host_vars)[1]
    output = [line for line in ipv6.splitlines() if line.startswith("-A OUTPUT")]
    assert output[0].startswith("-A OUTPUT -o lo ")
    assert sum("--icmpv6-type 13" in line for line in output) == 4
    assert any("--ctstate RELATED,ESTABLISHED" in line for line in output)


def test_baseline_can_be_turned_off():
    ipv6 = rendered("web1", host_vars={"web1": {"fleetwall_baseline": False}})[1]
    assert "fleetwall baseline" not in ipv6


def test_tcp_flag_sanity_is_opt_in():
    ipv4 = rendered("web1")[0]
    assert "--tcp-flags" not in ipv4
    ipv4 = rendered("web1", host_vars={"web1": {"fleetwall_baseline": {"tcp_flag_sanity": True}}})[0]
    assert "! --tcp-flags FIN,SYN,RST,ACK SYN -m conntrack --ctstate NEW" in ipv4


def test_adjacent_ports_merge_and_more_than_fifteen_split_across_multiport_rules():
    ports = list(range(1000, 1020))
    policy = {"web": {"inbound": [{"proto": "tcp", "port": ports}]}}
    ipv4 = rendered("web1", policy=policy)[0]
    assert [line.split("--dport ")[1].split()[0] for line in user_rules(ipv4)] == ["1000:1019"]
    policy = {"web": {"inbound": [{"proto": "tcp", "port": list(range(1000, 1040, 2))}]}}
    ipv4 = rendered("web1", policy=policy)[0]
    chunks = [line.split("--dports ")[1].split()[0].split(",") for line in user_rules(ipv4)]
    assert [len(chunk) for chunk in chunks] == [15, 5]


def test_priority_orders_rules_across_groups():
    policy = {
        "all": {"inbound": [{"from": "198.51.100.0/24", "action": "drop", "priority": 10}]},
        "web": {"inbound": [{"service": "http"}]},
    }
    ipv4 = rendered("web1", policy=policy)[0]
    rules = user_rules(ipv4)
    assert "-j DROP" in rules[0] and "--dport 80" in rules[1]


def test_host_rules_follow_group_rules_and_carry_their_own_comment():
    host_vars = {"web1": {"fleetwall_host_rules": {"inbound": [{"proto": "udp", "port": 9999}]}}}
    ipv4 = rendered("web1", host_vars=host_vars)[0]
    assert user_rules(ipv4)[-1] == (
        '-A INPUT -p udp -m udp --dport 9999 -m comment --comment "fleetwall_host_rules.inbound[0]" -j ACCEPT'
    )


def test_log_adds_a_log_rule_in_front_of_the_verdict():
    policy = {"web": {"inbound": [{"service": "http", "action": "drop", "log": "web-drop "}]}}
    ipv4 = rendered("web1", policy=policy)[0]
    rules = user_rules(ipv4)
    assert rules[0].endswith('-j LOG --log-prefix "web-drop "') and rules[1].endswith("-j DROP")


def test_warning_when_a_group_has_no_hosts():
    groups = {"all": ["web1"], "ungrouped": [], "web": ["web1"], "empty": []}
    policy = {"web": {"inbound": [{"service": "http", "from": "group:empty"}]}}
    hostvars, groups = inventory(policy=policy, groups=groups)
    ruleset = FleetCompiler(hostvars, groups).compile_host("web1")
    assert without_ssh_warning(ruleset.warnings) == ("fleetwall_policy.web.inbound[0].from matches no address; the rule is left out",)


def test_output_does_not_depend_on_inventory_order():
    hostvars, groups = inventory()
    expected = {host: FleetCompiler(hostvars, groups).compile_host(host) for host in groups["all"]}
    rng = random.Random(7)
    for attempt in range(20):  # pylint: disable=unused-variable
        shuffled_groups = {name: rng.sample(hosts, len(hosts)) for name, hosts in rng.sample(list(groups.items()), len(groups))}
        shuffled_hostvars = dict(rng.sample(list(hostvars.items()), len(hostvars)))
        compiler = FleetCompiler(shuffled_hostvars, shuffled_groups)
        for host, ruleset in expected.items():
            assert compiler.compile_host(host) == ruleset


def test_ruleset_survives_the_trip_through_plain_data():
    hostvars, groups = inventory()
    ruleset = FleetCompiler(hostvars, groups).compile_host("db1")
    assert ruleset_from_dict(ruleset_to_dict(ruleset)) == ruleset


@pytest.mark.parametrize("query, expected", [
    ("fleetwall_lab_ip", ["192.0.2.10/32"]),
    ("[fleetwall_lab_ip, 'fd00::99']", ["192.0.2.10/32"]),
])
def test_address_query_is_configurable(query, expected):
    host_vars = {"web1": {"fleetwall_address_query": query, "fleetwall_lab_ip": "192.0.2.10"}}
    policy = {"db": {"inbound": [{"service": "postgres", "from": "host:web1"}]}}
    ipv4 = rendered("db1", policy=policy, host_vars=host_vars)[0]
    assert [line.split()[3] for line in user_rules(ipv4)] == expected


def test_protocol_shorthand_works_as_a_service_in_a_rule():
    policy = {"web": {"inbound": [{"service": ["http", "tcp/8080-8081"]}]}}
    ipv4 = rendered("web1", policy=policy)[0]
    assert "-p tcp -m multiport --dports 80,8080:8081 " in ipv4


def test_warning_when_addresses_and_protocols_share_no_family():
    policy = {"web": {"inbound": [{"service": "http", "from": "10.0.0.0/8", "to": "fd00::/8"}]}}
    hostvars, groups = inventory(policy=policy)
    ruleset = FleetCompiler(hostvars, groups).compile_host("web1")
    assert without_ssh_warning(ruleset.warnings) == (
        "fleetwall_policy.web.inbound[0] produces no rule: its addresses and protocols have no address family "
        "in common; the rule is left out",
    )


def test_warning_when_hosts_see_different_fleet_policies():
    hostvars, groups = inventory()
    hostvars["web2"]["fleetwall_policy"] = {"web": {"inbound": [{"service": "https"}]}}
    compiler = FleetCompiler(hostvars, groups)
    compiler.compile_host("web1")
    assert without_ssh_warning(compiler.compile_host("web2").warnings) == (
        "host 'web2' sees different fleetwall_services / fleetwall_addresses / fleetwall_policy than host 'web1'; "
        "define them once for the fleet (group_vars/all)",
    )


def test_generated_log_prefix_names_the_group_and_shortens_only_the_direction():
    groups = {"all": ["web1"], "ungrouped": [], "inbound_web": ["web1"]}
    policy = {"inbound_web": {"inbound": [{"service": "http", "action": "drop", "log": True}]}}
    ipv4 = rendered("web1", policy=policy, groups=groups)[0]
    assert '--log-prefix "fw DROP inbound_web.in[0] "' in ipv4


def test_icmp_type_255_is_refused_because_iptables_reads_it_as_any():
    from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError

    hostvars, groups = inventory(policy={"web": {"inbound": [{"proto": "icmp", "icmp_type": 255}]}})
    with pytest.raises(PolicyError) as error:
        FleetCompiler(hostvars, groups).compile_host("web1")
    assert error.value.problems == [
        "fleetwall_policy.web.inbound[0].icmp_type: ICMP type 255 means every ICMP type to iptables; "
        "write icmp_type: any (or leave it out)"
    ]
