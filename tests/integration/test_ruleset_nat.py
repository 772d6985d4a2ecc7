"""The ruleset module with a nat table, against real iptables: converge, re-converge, drift, check mode, removal,
and other software's nat chains (Docker-style, made in the namespace) left byte-identical or refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import table_text
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace
from ansible_collections.fleetwall.iptables.tests.integration.test_ruleset_module import ModuleRunner, compiled, rendered

NAT = {
    "nat": [
        {"port_forward": {"in_interface": "eth0", "proto": "tcp", "port": 443, "to": "host:web1", "to_port": 8443}},
        {"masquerade": {"out_interface": "eth0", "from": ["10.0.0.0/8", "fd00::/16"]}},
        {"redirect": {"proto": "tcp", "port": 80, "to_port": 8080, "local": True}},
    ]
}
DOCKER_NAT = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
"""


def with_nat(**kwargs: Any) -> Dict[str, Any]:
    return compiled(host_vars={"db1": {"fleetwall_host_rules": NAT}}, **kwargs)


def nat_table(namespace: Namespace, family: int) -> str:
    return table_text(canonical_text(namespace.save(family)), "nat")


@pytest.fixture
def host(namespace: Namespace, tmp_path: Path) -> ModuleRunner:
    return ModuleRunner(namespace, tmp_path)


def test_converge_applies_the_nat_table_of_both_families_exactly_as_rendered(host):
    ruleset = with_nat()
    result = host.run({"ruleset": ruleset})
    live = [canonical_text(host.namespace.save(family)) for family in (4, 6)]
    assert (result["changed"], live) == (True, [rendered(ruleset, 4), rendered(ruleset, 6)])


def test_second_converge_with_nat_changes_nothing_and_leaves_the_kernel_byte_identical(host):
    ruleset = with_nat()
    host.run({"ruleset": ruleset})
    before = [canonical_text(host.namespace.save(family)) for family in (4, 6)]
    result = host.run({"ruleset": ruleset})
    assert (result["changed"], [canonical_text(host.namespace.save(family)) for family in (4, 6)]) == (False, before)


def test_a_nat_rule_added_by_hand_is_reported_and_removed(host):
    ruleset = with_nat()
    host.run({"ruleset": ruleset})
    host.namespace.iptables_command(["iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "22", "-j", "REDIRECT",
                                     "--to-ports", "2222"])
    result = host.run({"ruleset": ruleset})
    assert (result["changed"], canonical_text(host.namespace.save(4))) == (True, rendered(ruleset, 4))


def test_check_mode_reports_the_nat_table_and_creates_nothing(host):
    result = host.run({"ruleset": with_nat()}, check_mode=True)
    assert (result["changed"], "*nat" in result["diff"][0]["after"], nat_table(host.namespace, 4)) == (True, True, "")


def test_removing_the_last_nat_entry_empties_the_nat_table(host):
    host.run({"ruleset": with_nat()})
    result = host.run({"ruleset": compiled()})
    assert (result["changed"], nat_table(host.namespace, 4).count("\n-A")) == (True, 0)


def test_a_host_without_nat_leaves_a_docker_nat_table_byte_identical(host):
    host.namespace.restore(4, DOCKER_NAT)
    first = host.run({"ruleset": compiled()})
    second = host.run({"ruleset": compiled()})
    assert (first["changed"], second["changed"], nat_table(host.namespace, 4)) == (True, False, canonical_text(DOCKER_NAT))


def test_nat_entries_in_mode_own_next_to_docker_nat_chains_are_refused_and_docker_keeps_its_table(host):
    host.namespace.restore(4, DOCKER_NAT)
    result = host.run({"ruleset": with_nat()})
    assert (result.get("failed"), nat_table(host.namespace, 4)) == (True, canonical_text(DOCKER_NAT))


def test_nat_entries_in_coexist_mode_leave_docker_nat_chains_byte_identical_and_converge(host):
    host.namespace.restore(4, DOCKER_NAT)
    first = host.run({"ruleset": with_nat(), "mode": "coexist"})
    second = host.run({"ruleset": with_nat(), "mode": "coexist"})
    docker_part = "".join(line + "\n" for line in nat_table(host.namespace, 4).splitlines() if "FWL-" not in line)
    assert (first["changed"], second["changed"], docker_part) == (True, False, canonical_text(DOCKER_NAT))


def test_a_port_forward_in_coexist_mode_sits_in_fleetwalls_prerouting_chain(host):
    host.namespace.restore(4, DOCKER_NAT)
    host.run({"ruleset": with_nat(), "mode": "coexist"})
    assert "-A FWL-PREROUTING -i eth0 -p tcp -m tcp --dport 443" in nat_table(host.namespace, 4)
