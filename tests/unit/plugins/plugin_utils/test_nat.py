"""NAT entries: masquerade, snat, port_forward and redirect, from policy to the nat table and the apply plan."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.apply_plan import FAMILIES, PlanRefusal, plan_family
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import live_projection, owns_nat
from ansible_collections.fleetwall.iptables.plugins.module_utils.parse import parse_family
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

DOCKER_NAT = (
    "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n"
    "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n"
    "-A DOCKER -i docker0 -j RETURN\nCOMMIT\n"
)


def compiled(entries: List[Dict[str, Any]], host: str = "web1"):
    hostvars, groups = inventory(host_vars={host: {"fleetwall_host_rules": {"nat": entries}}})
    return FleetCompiler(hostvars, groups).compile_host(host)


def lines(entries: List[Dict[str, Any]], family: int = 4, table: str = "nat") -> List[str]:
    text = render_family(compiled(entries).family(family))
    section = text.partition("*nat\n")[2 if table == "nat" else 0]
    return [line for line in section.splitlines() if "fleetwall_host_rules.nat" in line]


def problems_of(entries: List[Dict[str, Any]]) -> List[str]:
    with pytest.raises(PolicyError) as exc:
        compiled(entries)
    return exc.value.problems


FORWARD_HTTPS = {"port_forward": {"in_interface": "eth0", "proto": "tcp", "port": 443, "to": "host:db1", "to_port": 8443}}


def test_a_host_without_nat_entries_gets_no_nat_table():
    hostvars, groups = inventory()
    ruleset = FleetCompiler(hostvars, groups).compile_host("web1")
    assert [table.name for table in ruleset.ipv4.tables + ruleset.ipv6.tables] == ["filter", "filter"]


def test_a_port_forward_translates_the_destination_in_prerouting():
    assert lines([FORWARD_HTTPS]) == [
        '-A PREROUTING -i eth0 -p tcp -m tcp --dport 443 -m comment --comment "fleetwall_host_rules.nat[0]" '
        "-j DNAT --to-destination 10.0.2.1:8443"
    ]


def test_a_port_forward_accepts_only_the_translated_flow_in_forward():
    assert lines([FORWARD_HTTPS], table="filter") == [
        '-A FORWARD -d 10.0.2.1/32 -i eth0 -p tcp -m tcp --dport 8443 -m conntrack --ctstate DNAT -m comment '
        '--comment "fleetwall_host_rules.nat[0]" -j ACCEPT'
    ]


def test_an_ipv6_port_forward_brackets_the_backend_address_before_its_port():
    assert lines([FORWARD_HTTPS], family=6)[0].endswith("-j DNAT --to-destination [fd00::2:1]:8443")


def test_a_port_forward_to_an_ipv4_address_leaves_the_ipv6_nat_table_empty():
    entry = {"port_forward": {"proto": "udp", "port": 5000, "to": "10.0.2.30"}}
    assert (len(lines([entry])), lines([entry], family=6)) == (1, [])


def test_masquerade_rewrites_what_leaves_its_interface():
    entry = {"masquerade": {"out_interface": "eth0", "from": "10.0.2.0/24"}}
    assert lines([entry]) == [
        '-A POSTROUTING -s 10.0.2.0/24 -o eth0 -m comment --comment "fleetwall_host_rules.nat[0]" -j MASQUERADE'
    ]


def test_snat_uses_the_to_source_of_each_family():
    entry = {"snat": {"out_interface": "eth1", "to_source": ["203.0.113.5", "2001:db8::5"]}}
    assert [lines([entry], family)[0].split("--to-source ")[1] for family in (4, 6)] == ["203.0.113.5", "2001:db8::5"]


def test_a_redirect_for_local_traffic_also_rewrites_output_to_local_addresses_only():
    entry = {"redirect": {"proto": "tcp", "port": 80, "to_port": 8080, "local": True}}
    assert [line.split(" -m comment")[0] for line in lines([entry])] == [
        "-A PREROUTING -p tcp -m tcp --dport 80",
        "-A OUTPUT -p tcp -m tcp --dport 80 -m addrtype --dst-type LOCAL",
    ]


def test_a_redirect_accepts_the_redirected_port_only_for_redirected_packets():
    entry = {"redirect": {"proto": "tcp", "port": 80, "to_port": 8080}}
    assert "--dport 8080 -m conntrack --ctstate DNAT" in lines([entry], table="filter")[0]


def test_a_compiled_nat_table_parses_back_to_itself():
    entries = [FORWARD_HTTPS, {"masquerade": {"out_interface": "eth0"}}, {"redirect": {"proto": "tcp", "port": 80, "to_port": 8080, "local": True}}]
    ruleset = compiled(entries).ipv6
    assert parse_family(render_family(ruleset), 6) == ruleset


@pytest.mark.parametrize(
    "entries, problem",
    [
        ([{"forward_port": {}}], "hostvars['web1'].fleetwall_host_rules.nat[0]: a NAT entry is a mapping with one key, one of "
         "masquerade, snat, port_forward, redirect"),
        ([{"masquerade": {}}], "hostvars['web1'].fleetwall_host_rules.nat[0].masquerade: masquerade needs 'out_interface'"),
        ([{"masquerade": {"out_interface": "eth0/1"}}], "hostvars['web1'].fleetwall_host_rules.nat[0].masquerade.out_interface: "
         "invalid interface name 'eth0/1': at most 15 characters in all: letters, digits or _.@-, optionally ending in '+' "
         "(prefix match), optionally preceded by '!' (negation)"),
        ([{"port_forward": {"proto": "icmp", "port": 1, "to": "10.0.0.1"}}], "hostvars['web1'].fleetwall_host_rules.nat[0]"
         ".port_forward.proto: proto must be tcp or udp, got 'icmp'"),
        ([{"port_forward": {"proto": "tcp", "port": 80, "to": "10.0.0.0/24"}}], "hostvars['web1'].fleetwall_host_rules.nat[0]"
         ".port_forward.to: resolves to 10.0.0.0/24 in IPv4; a port forward goes to exactly one address per family"),
        ([{"snat": {"to_source": "203.0.113.5", "from": "fd00::/64"}}], "hostvars['web1'].fleetwall_host_rules.nat[0]: applies "
         "in neither IPv4 nor IPv6: its addresses (from, to, destination, to_source) have no family in common, or resolve "
         "to no address"),
        ([{"redirect": {"proto": "tcp", "port": 80, "to_port": 8080, "locale": True}}], "hostvars['web1'].fleetwall_host_rules"
         ".nat[0].redirect.locale: unknown key 'locale'; redirect takes proto, port, to_port, in_interface, local, comment"),
        ([{"port_forward": {"proto": "tcp", "port": "80-90", "to": "10.0.0.1", "to_port": 8080}}], "hostvars['web1']"
         ".fleetwall_host_rules.nat[0].port_forward.to_port: a port range is forwarded to the same ports; leave to_port out"),
    ],
    ids=["kind", "required", "interface", "proto", "several-backends", "no-family", "unknown-key", "range-to-port"],
)
def test_a_bad_nat_entry_is_refused_with_its_path(entries, problem):
    assert problems_of(entries) == [problem]


# ---------------------------------------------------------------- apply plan (mode: own)

FILTER_ONLY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"


def test_a_docker_nat_table_is_not_fleetwalls_until_the_policy_has_nat():
    assert (owns_nat(FILTER_ONLY + DOCKER_NAT), live_projection(FILTER_ONLY + DOCKER_NAT, "own")) == (False, FILTER_ONLY)


def test_a_nat_table_with_a_compiled_entry_is_compared_whole():
    live = render_family(compiled([FORWARD_HTTPS]).ipv4)
    assert live_projection(live, "own") == live


def test_applying_nat_over_a_live_table_without_it_rolls_back_to_an_empty_nat_table():
    plan = plan_family(FAMILIES[0], compiled([FORWARD_HTTPS]).ipv4, FILTER_ONLY, "own", False)
    assert plan.rollback_text.endswith(":POSTROUTING ACCEPT [0:0]\nCOMMIT\n") and "*nat" in plan.apply_text


def test_removing_the_last_nat_entry_empties_the_nat_table_fleetwall_owned():
    live = render_family(compiled([FORWARD_HTTPS]).ipv4)
    hostvars, groups = inventory()
    plan = plan_family(FAMILIES[0], FleetCompiler(hostvars, groups).compile_host("web1").ipv4, live, "own", False)
    assert plan.apply_text.endswith("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n")


def test_nat_in_mode_own_refuses_to_remove_dockers_nat_chains():
    with pytest.raises(PlanRefusal, match="nat table holds chains fleetwall does not manage"):
        plan_family(FAMILIES[0], compiled([FORWARD_HTTPS]).ipv4, FILTER_ONLY + DOCKER_NAT, "own", False)


def test_nat_in_coexist_mode_goes_into_fleetwalls_own_nat_chains_with_jumps_from_the_builtins():
    plan = plan_family(FAMILIES[0], compiled([FORWARD_HTTPS]).ipv4, FILTER_ONLY + DOCKER_NAT, "coexist", False)
    nat_part = plan.apply_text[plan.apply_text.index("*nat"):]
    assert "-A PREROUTING -m comment --comment fleetwall -j FWL-PREROUTING" in nat_part and "DOCKER" not in nat_part


def test_coexist_mode_without_nat_entries_leaves_a_docker_nat_table_out_of_the_plan():
    hostvars, groups = inventory()
    ruleset = FleetCompiler(hostvars, groups).compile_host("web1").ipv4
    plan = plan_family(FAMILIES[0], ruleset, FILTER_ONLY + DOCKER_NAT, "coexist", False)
    assert "*nat" not in plan.apply_text + plan.before + plan.after


def test_coexist_mode_removes_its_nat_chains_when_the_last_entry_goes():
    applied = plan_family(FAMILIES[0], compiled([FORWARD_HTTPS]).ipv4, FILTER_ONLY + DOCKER_NAT, "coexist", False)
    live = DOCKER_NAT.replace("COMMIT", applied.after.split("*nat\n")[1].split("COMMIT")[0].replace(":FWL", ":FWL") + "COMMIT")
    hostvars, groups = inventory()
    plan = plan_family(FAMILIES[0], FleetCompiler(hostvars, groups).compile_host("web1").ipv4, FILTER_ONLY + live, "coexist", False)
    assert "-X FWL-PREROUTING" in plan.apply_text


# ---------------------------------------------------------------- simulator


def simulated(entries: List[Dict[str, Any]], packet: Dict[str, Any]):
    from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import simulate
    from ansible_collections.fleetwall.iptables.plugins.plugin_utils.packets import packet_from_dict

    parsed = packet_from_dict(packet)
    return simulate(compiled(entries).family(parsed.family), parsed)


HTTPS_TO_GATEWAY = {"source": "198.51.100.7", "destination": "10.0.1.1", "protocol": "tcp", "port": 443, "in_interface": "eth0"}


def test_the_simulator_follows_a_port_forward_to_the_backend_and_its_forward_accept():
    result = simulated([FORWARD_HTTPS], HTTPS_TO_GATEWAY)
    assert (result.verdict, result.chain, result.comment, "DNAT --to-destination 10.0.2.1:8443" in result.translated_by) == (
        "ACCEPT", "FORWARD", "fleetwall_host_rules.nat[0]", True)


def test_the_simulator_drops_a_direct_packet_to_the_backend_port_that_no_forward_rewrote():
    packet = dict(HTTPS_TO_GATEWAY, direction="forward", destination="10.0.2.1", port=8443)
    assert (simulated([FORWARD_HTTPS], packet).verdict, simulated([FORWARD_HTTPS], packet).translated_by) == ("DROP", None)


def test_the_simulator_takes_a_redirected_packet_to_the_new_port_on_the_host():
    result = simulated([{"redirect": {"proto": "tcp", "port": 80, "to_port": 8080}}], dict(HTTPS_TO_GATEWAY, port=80))
    assert (result.verdict, result.chain, "--dport 8080" in result.rule) == ("ACCEPT", "INPUT", True)


def test_a_port_forward_range_keeps_the_port_the_packet_came_to():
    entry = {"port_forward": {"proto": "udp", "port": "5000-5010", "to": "10.0.2.30"}}
    result = simulated([entry], dict(HTTPS_TO_GATEWAY, protocol="udp", port=5005))
    assert (result.verdict, result.chain) == ("ACCEPT", "FORWARD")


def test_a_forward_that_would_rewrite_a_packet_to_itself_translates_nothing():
    entry = {"port_forward": {"proto": "tcp", "port": 443, "to": "10.0.2.1"}}
    packet = dict(HTTPS_TO_GATEWAY, direction="forward", destination="10.0.2.1")
    assert (simulated([entry], packet).translated_by, simulated([entry], packet).verdict) == (None, "DROP")


def test_a_port_forward_knocked_on_at_an_ipv4_address_only_opens_no_ipv6_forward():
    entry = {"port_forward": {"proto": "tcp", "port": 443, "to": "host:db1", "destination": "192.0.2.1"}}
    assert (len(lines([entry], family=4, table="filter")), lines([entry], family=6, table="filter")) == (1, [])


# ---------------------------------------------------------------- unused definitions

PARTNERS = {"office": ["203.0.113.0/24"], "partners": ["192.0.2.0/24"]}
UNUSED_PARTNERS = "fleetwall_addresses.partners is defined but no rule or address set uses it"


def unused_with(policy: Any = None, host_vars: Any = None):
    hostvars, groups = inventory(policy=policy, addresses=PARTNERS, host_vars=host_vars)
    return FleetCompiler(hostvars, groups).unused_definition_warnings()


def test_an_address_set_used_only_by_a_hosts_nat_entry_is_not_unused():
    entry = {"port_forward": {"proto": "tcp", "port": 8443, "to": "host:web1", "from": "partners"}}
    assert UNUSED_PARTNERS not in unused_with(host_vars={"bastion": {"fleetwall_host_rules": {"nat": [entry]}}})


def test_an_address_set_used_only_by_a_groups_nat_entry_is_not_unused():
    policy = {"bastion": {"nat": [{"masquerade": {"out_interface": "eth0", "from": "partners"}}]}}
    assert UNUSED_PARTNERS not in unused_with(policy=policy)


def test_an_address_set_a_port_forward_forwards_to_is_not_unused():
    entry = {"port_forward": {"proto": "tcp", "port": 8443, "to": "partners_backend"}}
    hostvars, groups = inventory(addresses=dict(PARTNERS, partners_backend=["192.0.2.7"]),
                                 host_vars={"bastion": {"fleetwall_host_rules": {"nat": [entry]}}})
    compiler = FleetCompiler(hostvars, groups)
    compiler.compile_host("bastion")
    assert "fleetwall_addresses.partners_backend is defined but no rule or address set uses it" not in compiler.unused_definition_warnings()


def test_an_address_set_nothing_uses_is_still_unused():
    assert UNUSED_PARTNERS in unused_with()
