"""explain and the reachability model through a gateway: a port forward is followed to its backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.explain import explain
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.reachability import build_model
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

SHOP = {"port_forward": {"in_interface": "eth0", "proto": "tcp", "port": 443, "to": "host:web1", "comment": "shop"}}
ADMIN_SSH = {"port_forward": {"proto": "tcp", "port": 2222, "to": "host:db1", "to_port": 22, "from": "office"}}
ADMIN_DB = {"port_forward": {"proto": "tcp", "port": 6432, "to": "host:db1", "to_port": 5432}}


def gateway_inventory(entries: List[Dict[str, Any]]):
    return inventory(host_vars={"bastion": {"fleetwall_host_rules": {"nat": entries}}})


@pytest.fixture(name="model", scope="module")
def fixture_model() -> Dict[str, Any]:
    return build_model(*gateway_inventory([SHOP, ADMIN_SSH, ADMIN_DB]))


def row(model: Dict[str, Any], source: str, service: str, family: int = 4) -> Dict[str, Any]:
    found = [check for check in model["checks"]
             if (check["source"], check["destination"], check["service"], check["family"]) == (source, "bastion", service, family)]
    assert len(found) == 1
    return found[0]


def test_explain_names_the_port_forward_and_the_backend():
    answer = explain(*gateway_inventory([SHOP]), "office -> bastion https", 4)
    assert answer["results"][0]["explanation"] == (
        "office -> bastion https (tcp/443, IPv4): reachable; via bastion port_forward -> web1 10.0.1.1 tcp/443 "
        "(hostvars['bastion'].fleetwall_host_rules.nat[0]); web1 INPUT rule 8: fleetwall_policy.web.inbound[0]"
    )


def test_explain_returns_the_forward_with_the_backends_verdict():
    forward = explain(*gateway_inventory([SHOP]), "office -> bastion https", 6)["results"][0]["forward"]
    assert (forward["backend"], forward["backend_address"], forward["backend_port"], forward["backend_ingress"]["verdict"]) == (
        "web1", "fd00::1:1", 443, "ACCEPT")


def test_a_forward_to_a_port_the_backend_does_not_open_is_blocked_at_the_backend():
    result = explain(*gateway_inventory([ADMIN_DB]), "office -> bastion tcp/6432", 4)["results"][0]
    assert result["decided_by"] == (
        "via bastion port_forward -> db1 10.0.2.1 tcp/5432 (hostvars['bastion'].fleetwall_host_rules.nat[0]); "
        "db1 INPUT: chain policy DROP"
    )


def test_explain_without_a_forward_has_no_forward():
    assert explain(*gateway_inventory([SHOP]), "web1 -> db1 postgres", 4)["results"][0]["forward"] is None


def test_the_model_expects_a_forwarded_service_reachable_through_the_gateway(model: Dict[str, Any]):
    check = row(model, "anywhere", "https")
    assert (check["expected"], check["decided_by"].split(";")[0]) == (
        "reachable", "via bastion port_forward -> web1 10.0.1.1 tcp/443 (hostvars['bastion'].fleetwall_host_rules.nat[0])")


def test_the_model_tries_a_forwarded_port_no_service_names_at_the_gateway_only(model: Dict[str, Any]):
    destinations = {check["destination"] for check in model["checks"] if check["service"] == "tcp/2222"}
    assert ("tcp/2222" in model["services"], destinations) == (True, {"bastion"})


def test_a_forward_limited_to_some_sources_is_reachable_from_them(model: Dict[str, Any]):
    assert row(model, "office", "tcp/2222")["expected"] == "reachable"


def test_a_forward_limited_to_some_sources_is_blocked_from_the_others(model: Dict[str, Any]):
    assert row(model, "anywhere", "tcp/2222")["decided_by"] == "bastion INPUT: chain policy DROP"


def test_a_forward_the_backend_refuses_is_expected_blocked_by_the_backend(model: Dict[str, Any]):
    assert row(model, "anywhere", "tcp/6432", 6)["decided_by"].endswith("; db1 INPUT: chain policy DROP")


def test_the_sources_a_port_forward_names_become_external_sources():
    model = build_model(*inventory(addresses={"partners": ["192.0.2.0/24"], "office": ["203.0.113.0/24"]},
                                   host_vars={"bastion": {"fleetwall_host_rules": {"nat": [
                                       {"port_forward": {"proto": "tcp", "port": 8443, "to": "host:web1", "to_port": 443,
                                                         "from": "partners"}}]}}}))
    assert "partners" in model["sources"]


def test_a_forwarded_reply_the_gateway_does_not_let_back_blocks_the_flow():
    hostvars, groups = gateway_inventory([SHOP])
    hostvars["bastion"]["fleetwall_baseline"] = {"established": False}
    check = row(build_model(hostvars, groups), "office", "https")
    assert check["decided_by"].endswith("; bastion FORWARD: chain policy DROP (the reply)")


def test_the_gateway_lab_expects_its_forward_reachable_from_the_clients_group_only():
    # examples/lab-gateway as verify.yml sees it there: every host but the one behind the gateway in the play.
    loader = DataLoader()
    lab = InventoryManager(loader=loader, sources=[str(Path(__file__).resolve().parents[4] / "examples" / "lab-gateway")])
    variables = VariableManager(loader=loader, inventory=lab)
    hostvars = {host.name: variables.get_vars(host=host, include_hostvars=False) for host in lab.get_hosts()}
    model = build_model(hostvars, lab.get_groups_dict(), ["bastion1", "client1", "client2", "gw1"], 0, 0)
    reachable = sorted((check["source"], check["family"], check["decided_by"].split(";")[0]) for check in model["checks"]
                       if (check["destination"], check["service"], check["expected"]) == ("gw1", "tcp/443", "reachable"))
    assert reachable == [
        ("client1", 4, "via gw1 port_forward -> app1 10.10.0.2 tcp/8443 (fleetwall_policy.gateway.nat[0])"),
        ("client1", 6, "via gw1 port_forward -> app1 fd00:10::2 tcp/8443 (fleetwall_policy.gateway.nat[0])"),
    ]
