"""The lockout guard: every leg of the controller's SSH conversation, simulated against the new ruleset."""

from __future__ import annotations

from typing import Sequence

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Chain, FamilyRuleset, Rule, Table
from ansible_collections.fleetwall.iptables.plugins.module_utils.lockout import (
    LockoutRefusal,
    SshConnection,
    check_lockout,
    conversation,
    interface_of,
    parse_ssh_connection,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict, ruleset_to_dict
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

CONTROLLER = SshConnection("10.0.0.2", 50000, "10.0.2.1", 22)
STRANGER = SshConnection("10.0.0.9", 50000, "10.0.2.1", 22)
IP_ADDR = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.0.2.1/24 brd 10.0.2.255 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet6 fd00::2:1/64 scope global \\       valid_lft forever preferred_lft forever
"""
SSH_IN = Rule(target="ACCEPT", protocol="tcp", destination_ports=("22",))
ESTABLISHED = Rule(target="ACCEPT", ctstate=("RELATED", "ESTABLISHED"))
# Non-SYN TCP segments of port 22: everything but the handshake's first packet in each direction.
NOT_SYN = dict(protocol="tcp", tcp_flags="SYN NONE", target="DROP")


def family_ruleset(input_rules: Sequence[Rule], output_rules: Sequence[Rule] = (), output_policy: str = "ACCEPT",
                   family: int = 4) -> FamilyRuleset:
    return FamilyRuleset(family, (Table("filter", (
        Chain("INPUT", "DROP", tuple(input_rules)),
        Chain("FORWARD", "DROP", ()),
        Chain("OUTPUT", output_policy, tuple(output_rules)),
    )),))


def compiled_db1(**kwargs):
    hostvars, groups = inventory(**kwargs)
    return ruleset_from_dict(ruleset_to_dict(FleetCompiler(hostvars, groups).compile_host("db1")))


def refusal(ruleset: FamilyRuleset, connection: SshConnection = CONTROLLER, mode: str = "own") -> LockoutRefusal:
    with pytest.raises(LockoutRefusal) as caught:
        check_lockout(ruleset, connection, "eth0", mode, allow_lockout=False)
    return caught.value


def test_the_fleets_ruleset_keeps_every_leg_of_the_controllers_conversation():
    result = check_lockout(compiled_db1().ipv4, CONTROLLER, "eth0", "own", allow_lockout=False)
    assert [leg["verdict"] for leg in result["legs"]] == ["ACCEPT"] * 4


def test_the_result_shows_the_rule_that_accepts_the_new_connection():
    result = check_lockout(compiled_db1().ipv4, CONTROLLER, "eth0", "own", allow_lockout=False)
    assert result["rule"] == ('-A INPUT -s 10.0.0.2/32 -p tcp -m tcp --dport 22 -m comment '
                              '--comment "fleetwall_policy.all.inbound[0]" -j ACCEPT')


def test_a_dropped_syn_is_refused_with_the_deciding_policy():
    policy = {"db": {"inbound": [{"service": "postgres", "from": "group:web"}]}}
    assert str(refusal(compiled_db1(policy=policy).ipv4, STRANGER)) == (
        "refusing to apply: the new IPv4 ruleset would not accept a new SSH connection from 10.0.0.9 to 10.0.2.1 "
        "port 22 (decided by: the DROP policy of INPUT). Allow SSH from the controller in the policy, or set "
        "allow_lockout: true if you have another way in"
    )


def test_an_outbound_drop_default_without_the_baseline_is_refused_at_the_syn_ack():
    ruleset = compiled_db1(host_vars={"db1": {"fleetwall_baseline": False,
                                              "fleetwall_default_policy": {"outbound": "drop"}}}).ipv4
    assert str(refusal(ruleset)) == (
        "refusing to apply: the new IPv4 ruleset would not accept the SSH server's SYN-ACK (OUTPUT, 10.0.2.1 port "
        "22 to 10.0.0.2 port 50000), so the SSH conversation with 10.0.0.2 would break (decided by: the DROP "
        "policy of OUTPUT). Let the SSH server's replies out (fleetwall_baseline's established rule does, or an "
        "outbound rule), or set allow_lockout: true if you have another way in"
    )


def test_an_outbound_drop_default_with_the_baseline_keeps_the_conversation():
    ruleset = compiled_db1(host_vars={"db1": {"fleetwall_default_policy": {"outbound": "drop"}}}).ipv4
    result = check_lockout(ruleset, CONTROLLER, "eth0", "own", allow_lockout=False)
    assert "cut" not in result


def test_an_outbound_reject_of_the_servers_port_is_refused_at_the_syn_ack_naming_the_rule():
    reject = Rule(target="REJECT", protocol="tcp", source_ports=("22",), reject_with="tcp-reset")
    error = refusal(family_ruleset([SSH_IN], [reject]))
    assert (error.result["cut"], error.result["rule"]) == (
        "the SSH server's SYN-ACK", "-A OUTPUT -p tcp -m tcp --sport 22 -j REJECT --reject-with tcp-reset")


def test_dropping_the_controllers_established_traffic_is_refused_on_that_leg():
    ruleset = family_ruleset([Rule(destination_ports=("22",), **NOT_SYN), SSH_IN])
    assert refusal(ruleset).result["cut"] == "the controller's traffic on an established SSH connection"


def test_dropping_the_servers_established_replies_is_refused_on_that_leg():
    ruleset = family_ruleset([SSH_IN], [Rule(source_ports=("22",), **NOT_SYN)])
    assert refusal(ruleset).result["cut"] == "the SSH server's replies on an established SSH connection"


def test_the_established_legs_are_simulated_as_established_packets():
    established_only = family_ruleset([Rule(target="ACCEPT", protocol="tcp", destination_ports=("22",), ctstate=("NEW",)),
                                       ESTABLISHED], [ESTABLISHED], output_policy="DROP")
    result = check_lockout(established_only, CONTROLLER, "eth0", "own", allow_lockout=False)
    assert [leg["rule"] for leg in result["legs"]][1:] == [
        "-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]


def test_allow_lockout_reports_the_cut_leg_instead_of_refusing():
    ruleset = family_ruleset([SSH_IN], output_policy="DROP")
    result = check_lockout(ruleset, CONTROLLER, "eth0", "own", allow_lockout=True)
    assert (result["cut"], result["verdict"]) == ("the SSH server's SYN-ACK", "DROP")


def test_coexist_mode_leaves_undecided_packets_to_the_rules_it_does_not_own():
    ruleset = family_ruleset([SSH_IN], output_policy="DROP")
    assert "cut" not in check_lockout(ruleset, CONTROLLER, "eth0", "coexist", allow_lockout=False)


def test_coexist_mode_refuses_when_a_fleetwall_rule_cuts_a_leg():
    ruleset = family_ruleset([SSH_IN], [Rule(target="DROP", protocol="tcp", source_ports=("22",))])
    assert refusal(ruleset, mode="coexist").result["cut"] == "the SSH server's SYN-ACK"


def test_an_ipv6_connection_is_checked_against_the_ipv6_ruleset():
    connection = SshConnection("fd00::9", 50000, "fd00::2:1", 22)
    error = refusal(family_ruleset([SSH_IN], output_policy="DROP", family=6), connection)
    assert str(error).startswith("refusing to apply: the new IPv6 ruleset would not accept the SSH server's SYN-ACK "
                                 "(OUTPUT, fd00::2:1 port 22 to fd00::9 port 50000)")


def test_the_syn_ack_leaves_from_the_servers_port_on_the_servers_interface():
    packet = conversation(CONTROLLER, "eth0")[1].packet
    assert (packet.chain, packet.source_port, packet.destination_port, packet.out_interface, packet.state,
            packet.tcp_flags) == ("OUTPUT", 22, 50000, "eth0", "ESTABLISHED", frozenset(("SYN", "ACK")))


def test_ssh_connection_is_read_as_client_port_server_port():
    assert parse_ssh_connection("10.0.0.2 50000 10.0.2.1 22") == CONTROLLER


def test_an_ipv4_mapped_client_of_a_dual_stack_sshd_is_checked_as_ipv4():
    assert parse_ssh_connection("::ffff:10.0.0.2 50000 ::ffff:10.0.2.1 22") == CONTROLLER


def test_a_malformed_ssh_connection_is_refused_with_the_expected_form():
    with pytest.raises(ValueError, match="ssh_connection must be 'client_ip client_port server_ip server_port', got '10.0.0.2 22'"):
        parse_ssh_connection("10.0.0.2 22")


def test_the_interface_holding_the_server_address_is_found_in_ip_addr_output():
    assert (interface_of("10.0.2.1", IP_ADDR), interface_of("fd00::2:1", IP_ADDR), interface_of("10.9.9.9", IP_ADDR)) == (
        "eth0", "eth0", None)
