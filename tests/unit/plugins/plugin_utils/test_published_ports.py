"""Docker-published ports: forward rules with published: true compile into DOCKER-USER, hooked in coexist mode."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import (
    coexist_boot_text,
    coexist_restore_script,
    render_desired,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, simulate
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

PUBLISHED_WEB = {"published": True, "proto": "tcp", "port": 80, "from": "office", "comment": "shop container"}
DOCKER_FILTER = (
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n:DOCKER-USER - [0:0]\n"
    "-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n"
)


def compiled(forward: List[Dict[str, Any]], nat: Any = None):
    rules: Dict[str, Any] = {"forward": forward}
    if nat:
        rules["nat"] = nat
    hostvars, groups = inventory(host_vars={"web1": {"fleetwall_host_rules": rules}})
    return FleetCompiler(hostvars, groups).compile_host("web1")


def chain_lines(text: str, chain: str) -> List[str]:
    return [line for line in text.splitlines() if line.startswith("-A %s " % chain) or line.startswith("-I %s " % chain)]


def test_a_published_rule_goes_into_docker_user_between_established_and_the_final_drop():
    assert chain_lines(render_family(compiled([PUBLISHED_WEB]).ipv4), "DOCKER-USER") == [
        '-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "fleetwall baseline: established" -j RETURN',
        '-A DOCKER-USER -s 203.0.113.0/24 -p tcp -m tcp --dport 80 -m comment --comment "fleetwall_host_rules.forward[0]: shop '
        'container" -j ACCEPT',
        '-A DOCKER-USER -m conntrack --ctstate DNAT -m comment --comment "fleetwall: published ports no rule accepts" -j DROP',
    ]


def test_a_forward_rule_without_published_stays_in_forward_and_makes_no_docker_user_chain():
    text = render_family(compiled([{"proto": "tcp", "port": 80}]).ipv4)
    assert (":DOCKER-USER" in text, len(chain_lines(text, "FORWARD"))) == (False, 2)


def test_published_ports_get_the_final_drop_in_a_family_the_rules_do_not_name():
    assert chain_lines(render_family(compiled([PUBLISHED_WEB | {"from": "203.0.113.0/24"}]).ipv6), "DOCKER-USER")[-1].endswith(
        '"fleetwall: published ports no rule accepts" -j DROP')


def test_published_must_be_true_or_false():
    with pytest.raises(PolicyError) as exc:
        compiled([PUBLISHED_WEB | {"published": "yes"}])
    assert exc.value.problems == ["hostvars['web1'].fleetwall_host_rules.forward[0].published: published must be true or false, got 'yes'"]


def test_published_is_a_key_of_forward_rules_only():
    hostvars, groups = inventory(host_vars={"web1": {"fleetwall_host_rules": {"inbound": [PUBLISHED_WEB]}}})
    with pytest.raises(PolicyError) as exc:
        FleetCompiler(hostvars, groups).compile_host("web1")
    assert exc.value.problems[0].startswith("hostvars['web1'].fleetwall_host_rules.inbound[0].published: unknown key 'published'")


def test_a_new_connection_dockers_dnat_brought_from_an_allowed_source_is_accepted():
    packet = Packet(chain="DOCKER-USER", source="203.0.113.9", destination="172.17.0.2", protocol="tcp",
                    source_port=40000, destination_port=80, translated=True)
    assert simulate(compiled([PUBLISHED_WEB]).ipv4, packet).verdict == "ACCEPT"


def test_a_new_connection_dockers_dnat_brought_from_another_source_is_dropped():
    packet = Packet(chain="DOCKER-USER", source="198.51.100.9", destination="172.17.0.2", protocol="tcp",
                    source_port=40000, destination_port=80, translated=True)
    assert simulate(compiled([PUBLISHED_WEB]).ipv4, packet).rule_index == 2


def test_in_coexist_mode_docker_user_jumps_to_fleetwalls_own_chain():
    desired = render_desired(compiled([PUBLISHED_WEB]).ipv4, "coexist")
    assert chain_lines(desired, "DOCKER-USER") == ["-A DOCKER-USER -m comment --comment fleetwall -j FWL-DOCKER-USER"]


def test_the_jump_from_docker_user_goes_before_dockers_own_return():
    desired = render_desired(compiled([PUBLISHED_WEB]).ipv4, "coexist")
    assert chain_lines(coexist_restore_script(desired, DOCKER_FILTER), "DOCKER-USER") == [
        "-I DOCKER-USER 1 -m comment --comment fleetwall -j FWL-DOCKER-USER"]


def test_an_existing_docker_user_chain_is_not_declared_again_which_would_flush_it():
    desired = render_desired(compiled([PUBLISHED_WEB]).ipv4, "coexist")
    assert ":DOCKER-USER - [0:0]" not in coexist_restore_script(desired, DOCKER_FILTER)


def test_a_missing_docker_user_chain_is_created_for_the_jump():
    desired = render_desired(compiled([PUBLISHED_WEB]).ipv4, "coexist")
    assert ":DOCKER-USER - [0:0]" in coexist_restore_script(desired, "")


def test_a_coexist_boot_file_declares_docker_user_for_its_jump():
    assert ":DOCKER-USER - [0:0]\n" in coexist_boot_text(compiled([PUBLISHED_WEB]).ipv4)


def test_a_coexist_boot_file_carries_the_nat_table_with_its_built_in_chains():
    text = coexist_boot_text(compiled([], nat=[{"masquerade": {"out_interface": "eth0"}}]).ipv4)
    nat = text[text.index("*nat\n"):]
    assert nat.startswith("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")


def test_a_published_rule_does_not_shadow_a_forward_rule_of_the_forward_chain():
    ruleset = compiled([{"published": True, "proto": "tcp", "port": 80}, {"proto": "tcp", "port": 80, "action": "drop"}])
    assert [warning for warning in ruleset.warnings if "never matches" in warning] == []


def test_a_published_rule_is_shadowed_by_an_earlier_published_rule():
    later = {"published": True, "proto": "tcp", "port": 80, "from": "office", "action": "drop"}
    ruleset = compiled([{"published": True, "proto": "tcp", "port": 80}, later])
    assert [warning.split(" never")[0] for warning in ruleset.warnings if "never matches" in warning] == [
        "hostvars['web1'].fleetwall_host_rules.forward[1]"]
