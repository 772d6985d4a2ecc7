"""Warnings for policies that are accepted but may not mean what was written (issue 11).

Each names the rule (or host) and says what the compiler made of it.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import pytest

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler

from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

# Group 'all' of the shared inventory admits SSH from office and bastion, so no SSH warning appears
# unless a test takes that rule away.
FLEET_SSH = {"service": "ssh", "from": ["office", "group:bastion"]}


def warnings_of(host: str = "web1", **kwargs: Any) -> Tuple[str, ...]:
    hostvars, groups = inventory(**kwargs)
    return FleetCompiler(hostvars, groups).compile_host(host).warnings


def with_web_rules(*rules: Dict[str, Any], direction: str = "inbound") -> Dict[str, Any]:
    return {"policy": {"all": {"inbound": [FLEET_SSH]}, "web": {direction: list(rules)}}}


# ---------------------------------------------------------------- YAML 1.1 number traps


@pytest.mark.parametrize(
    "port, warning",
    [
        (1221, "port 1221 may be YAML's base-60 reading of the unquoted range 20:21; write a range quoted, as '20-21', "
               "or quote the port ('1221') if 1221 is meant"),
        (1283, "port 1283 may be YAML's base-60 reading of the unquoted range 21:23; write a range quoted, as '21-23', "
               "or quote the port ('1283') if 1283 is meant"),
        (18, "port 18 may be YAML's octal reading of the unquoted 022; write '22' (quoted, without the leading 0) if "
             "port 22 is meant, or quote the port ('18') if 18 is meant"),
        (291, "port 291 may be YAML's octal reading of the unquoted 0443; write '443' (quoted, without the leading 0) "
              "if port 443 is meant, or quote the port ('291') if 291 is meant"),
    ],
)
def test_integer_port_that_yaml_may_have_read_from_something_else_is_a_warning(port, warning):
    assert warnings_of(**with_web_rules({"proto": "tcp", "port": port})) == (
        "fleetwall_policy.web.inbound[0].port: " + warning,
    )


@pytest.mark.parametrize("port", [21, 22, 80, 443, 1000, 1200, 8080, 3000, 65535, "1221", "20-21", "18"])
def test_ports_of_services_round_numbers_and_quoted_ports_are_not_suspected(port):
    assert warnings_of(**with_web_rules({"proto": "tcp", "port": port})) == ()


def test_a_port_trap_in_a_port_list_names_the_item():
    assert warnings_of(**with_web_rules({"proto": "udp", "port": [53, 1221]})) == (
        "fleetwall_policy.web.inbound[0].port[1]: port 1221 may be YAML's base-60 reading of the unquoted range 20:21; "
        "write a range quoted, as '20-21', or quote the port ('1221') if 1221 is meant",
    )


def test_a_port_trap_in_a_service_definition_is_a_fleet_warning_on_every_host():
    kwargs = with_web_rules({"service": "ftp"})
    kwargs["services"] = {"ftp": {"proto": "tcp", "port": 1221}}
    expected = (
        "fleetwall_services.ftp.port: port 1221 may be YAML's base-60 reading of the unquoted range 20:21; write a "
        "range quoted, as '20-21', or quote the port ('1221') if 1221 is meant"
    )
    assert expected in warnings_of("db1", **kwargs)


# ---------------------------------------------------------------- rules that can never match


def test_negated_any_interface_never_matches():
    assert warnings_of(**with_web_rules({"service": "http", "interface": "!+"})) == (
        "fleetwall_policy.web.inbound[0].interface: '!+' matches no interface (every interface matches '+'), so the "
        "rule never matches",
    )


@pytest.mark.parametrize(
    "address, network, ipv4",
    [("::ffff:10.0.0.1", "::ffff:10.0.0.1/128", "10.0.0.1/32"), ("::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104", "10.0.0.0/8")],
)
def test_ipv4_mapped_ipv6_address_never_matches(address, network, ipv4):
    assert warnings_of(**with_web_rules({"service": "http", "from": address})) == (
        "fleetwall_policy.web.inbound[0].from: %s is IPv4-mapped IPv6, which no packet on the wire carries, so it "
        "never matches; IPv4 traffic is matched by %s" % (network, ipv4),
    )


def test_inbound_rule_whose_to_names_only_another_host_never_matches_there():
    assert warnings_of(**with_web_rules({"service": "http", "to": "host:db1"})) == (
        "fleetwall_policy.web.inbound[0].to names only other hosts (host:db1): on host 'web1' every inbound packet is "
        "addressed to 'web1', so the rule never matches",
    )


def test_outbound_rule_whose_from_names_only_another_group_never_matches_there():
    assert warnings_of(**with_web_rules({"service": "postgres", "from": "group:db"}, direction="outbound")) == (
        "fleetwall_policy.web.outbound[0].from names only other hosts (group:db): on host 'web1' every outbound "
        "packet is sent from 'web1', so the rule never matches",
    )


@pytest.mark.parametrize("to", ["host:web1", "group:web", ["host:db1", "host:web1"], ["host:db1", "10.0.1.1"]])
def test_to_naming_this_host_or_an_address_is_no_warning(to):
    assert warnings_of(**with_web_rules({"service": "http", "to": to})) == ()


# ---------------------------------------------------------------- one rule, very many iptables rules


def test_exceptions_on_both_sides_warn_how_big_the_rule_got_with_sets_off():
    kwargs = dict(with_web_rules({"service": "http", "from": "!host:web2", "to": "!host:db1"}, direction="outbound"),
                  host_vars={"web1": {"fleetwall_set_threshold": 0}})
    assert warnings_of(**kwargs) == (
        "fleetwall_policy.web.outbound[0] expands into 17,408 iptables rules (more than 1,000: one per combination of "
        "from: 160 networks x to: 160 networks x protocol match); narrow it or split it",
    )


def test_a_rule_just_under_the_bound_is_no_warning():
    sources = ["10.%d.%d.0/24" % (index // 256, index % 256) for index in range(1000)]
    assert warnings_of(**with_web_rules({"service": "http", "from": sources})) == ()


# ---------------------------------------------------------------- SSH


def test_restrictive_host_without_any_ssh_rule_is_named():
    assert warnings_of(policy={"web": {"inbound": [{"service": "https"}]}}) == (
        "host 'web1': no inbound rule accepts SSH (tcp/22, the port Ansible connects to) and the inbound default is "
        "drop, so Ansible cannot connect once this ruleset is applied",
    )


def test_ssh_on_the_port_in_ansible_port_counts():
    kwargs: Dict[str, Any] = {"policy": {"web": {"inbound": [{"proto": "tcp", "port": 2222}]}}}
    assert warnings_of(host_vars={"web1": {"ansible_port": 2222}}, **kwargs) == ()
    assert warnings_of(**kwargs)[-1].startswith("host 'web1': no inbound rule accepts SSH (tcp/22,")


@pytest.mark.parametrize(
    "host_vars",
    [
        {"fleetwall_default_policy": {"inbound": "accept"}},
        {"ansible_connection": "local"},
        {"ansible_connection": "community.docker.docker"},
    ],
)
def test_no_ssh_warning_for_an_open_host_or_one_not_reached_over_ssh(host_vars):
    assert warnings_of(policy={"web": {"inbound": [{"service": "https"}]}}, host_vars={"web1": host_vars}) == ()


def test_a_dropping_ssh_rule_does_not_count():
    policy = {"web": {"inbound": [{"service": "ssh", "action": "drop"}]}}
    assert warnings_of(policy=policy)[-1].startswith("host 'web1': no inbound rule accepts SSH")


def test_ssh_redefined_away_from_the_connection_port():
    assert warnings_of(services={"ssh": "tcp/2222"})[0] == (
        "fleetwall_services.ssh: redefined without tcp/22, the port Ansible connects to host 'web1' on (ansible_port); "
        "rules with service ssh do not admit that connection"
    )


def test_ssh_redefined_to_the_connection_port_is_no_warning():
    assert warnings_of(services={"ssh": "tcp/2222"}, host_vars={"web1": {"ansible_port": "2222"}}) == ()


def test_an_ipv4_mapped_address_in_an_address_set_is_a_fleet_warning():
    kwargs = with_web_rules({"service": "http", "from": "partners"})
    kwargs["addresses"] = {"office": ["203.0.113.0/24"], "partners": ["198.51.100.0/24", "::ffff:198.51.100.7"]}
    assert warnings_of("db1", **kwargs) == (
        "fleetwall_addresses.partners[1]: ::ffff:198.51.100.7/128 is IPv4-mapped IPv6, which no packet on the wire "
        "carries, so it never matches; IPv4 traffic is matched by 198.51.100.7/32",
    )
