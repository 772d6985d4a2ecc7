"""playbooks/verify.yml on a lab with a gateway (examples/lab-gateway): a port forward, verified with real packets.

scripts/lab.py builds bastion1, client1, client2 and gw1 behind its router
namespace, and app1 on a private network that only gw1 reaches (gw1's eth1;
Ansible gets to app1 through gw1's sshd). site.yml rolls the policy out over
SSH: gw1 forwards https from the clients group to app1:8443 and masquerades
app1's egress, with IPv4 and IPv6 forwarding switched on by the firewall
role. verify.yml, on every host but the one behind the gateway, must report
the forwarded service reachable from client1 through gw1 in both families and
blocked from everyone else. The backend's own address is out of the
clients' reach, and its egress reaches them from gw1's address. Once a hand
change on gw1 breaks the forward (its FORWARD accept in IPv4, its DNAT rule
in IPv6), verify.yml must fail naming the forward and nothing else.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = [sys.executable, str(REPO / "scripts" / "lab.py")]
INVENTORY = "examples/lab-gateway"
COLLECTIONS_ROOT = REPO / ".build" / "pytest"  # holds ansible_collections/fleetwall/iptables -> the checkout
# The backend is verified through the forwards that lead to it: the model has no routes, so the flows that
# would start or end on the private network are left out of the play.
OUTSIDE_THE_GATEWAY = "fleetwall_target_hosts=all:!backend"
FORWARD = {
    4: "via gw1 port_forward -> app1 10.10.0.2 tcp/8443 (fleetwall_policy.gateway.nat[0])",
    6: "via gw1 port_forward -> app1 fd00:10::2 tcp/8443 (fleetwall_policy.gateway.nat[0])",
}


def lab(*arguments: str, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_ROOT), ANSIBLE_NOCOLOR="1")
    return subprocess.run(LAB + list(arguments), cwd=REPO, capture_output=True, text=True, env=environment, timeout=timeout, check=False)


def verify(tmp_path: Path, name: str) -> tuple:
    report, data = tmp_path / ("%s.html" % name), tmp_path / ("%s.json" % name)
    completed = lab("playbook", INVENTORY, "playbooks/verify.yml", "-e", OUTSIDE_THE_GATEWAY,
                    "-e", "fleetwall_verify_report=%s" % report, "-e", "fleetwall_verify_json=%s" % data)
    verification = json.loads(data.read_text()) if data.exists() else None
    return completed, verification


def forwarded_rows(verification: Dict[str, Any], source: str) -> List[Dict[str, Any]]:
    return sorted((row for row in verification["rows"]
                   if (row["source"], row["destination"], row["service"]) == (source, "gw1", "tcp/443")),
                  key=lambda row: row["family"])


def rule_spec(host: str, family: int, table: str, chain: str, marker: str) -> List[str]:
    """The one rule of `chain` holding `marker`, as `iptables -S` prints it, without its leading '-A CHAIN'."""
    listing = lab("iptables", host, *(["-6"] if family == 6 else []), "-t", table, "-S", chain).stdout.splitlines()
    found = [line for line in listing if marker in line]
    assert len(found) == 1, listing
    return shlex.split(found[0])[2:]


def connect(host: str, address: str, port: int) -> str:
    """A TCP connection from a lab host: 'open', or 'unreachable' (refused, dropped or no route)."""
    attempt = ("import socket, sys\ntry:\n    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
               "    print('open')\nexcept OSError:\n    print('unreachable')\n")
    completed = subprocess.run(["ip", "netns", "exec", "fwlab-" + host, sys.executable, "-c", attempt, address, str(port)],
                               capture_output=True, text=True, timeout=30, check=False)
    return completed.stdout.strip() or completed.stderr


@pytest.fixture(scope="module", name="lab_up")
def fixture_lab_up(privileged: None) -> Iterator[None]:
    up = lab("up", INVENTORY)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        rollout = lab("playbook", INVENTORY, "playbooks/site.yml")
        assert rollout.returncode == 0, rollout.stdout[-4000:] + rollout.stderr[-2000:]
        yield
    finally:
        lab("down")


@pytest.fixture(scope="module", name="correct")
def fixture_correct(lab_up: None, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """verify.yml on the lab as site.yml left it."""
    return verify(tmp_path_factory.mktemp("verify"), "correct")


def test_a_correct_rollout_verifies(correct: tuple) -> None:
    completed, verification = correct
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert verification["summary"]["mismatches"] == 0 and verification["summary"]["passed"] == verification["summary"]["checks"]


def test_the_forwarded_service_is_reachable_from_the_allowed_client_through_the_gateway(correct: tuple) -> None:
    rows = forwarded_rows(correct[1], "client1")
    assert [(row["family"], row["observed"], row["status"]) for row in rows] == [(4, "open", "pass"), (6, "open", "pass")]
    assert [row["decided_by"].split("; ")[0] for row in rows] == [FORWARD[4], FORWARD[6]]


def test_the_forward_stays_closed_to_the_hosts_it_does_not_name(correct: tuple) -> None:
    verification = correct[1]
    observed = {(row["source"], row["family"], row["expected"], row["observed"], row["status"])
                for source in ("client2", "bastion1") for row in forwarded_rows(verification, source)}
    assert observed == {(source, family, "blocked", "filtered", "pass") for source in ("client2", "bastion1") for family in (4, 6)}


def test_the_backend_is_reached_only_through_the_gateway(lab_up: None) -> None:
    # client1 may use the forward, but the backend's own address is on a network only gw1 routes to.
    assert connect("client1", "10.10.0.2", 8443) == "unreachable"


def test_the_backends_egress_leaves_masqueraded_as_the_gateway(lab_up: None) -> None:
    # client1 drops https (its policy lets in SSH from the bastion only); a counting rule shows who the SYNs came from.
    seen = {}
    for family, (gateway, client) in {4: ("10.0.7.71", "10.0.6.61"), 6: ("fd00::7:71", "fd00::6:61")}.items():
        option = ["-6"] if family == 6 else []
        counting = ["-s", gateway, "-p", "tcp", "--dport", "443"]
        assert lab("iptables", "client1", *option, "-I", "INPUT", "1", *counting).returncode == 0
        try:
            connect("app1", client, 443)
            listing = lab("iptables", "client1", *option, "-L", "INPUT", "1", "-v", "-x", "-n").stdout
        finally:
            lab("iptables", "client1", *option, "-D", "INPUT", *counting)
        seen[family] = int(listing.split()[0]) > 0
    assert seen == {4: True, 6: True}


def test_a_hand_change_that_breaks_the_forward_fails_verification_naming_it(lab_up: None, tmp_path: Path) -> None:
    accept = rule_spec("gw1", 4, "filter", "FORWARD", "--ctstate DNAT")
    dnat = rule_spec("gw1", 6, "nat", "PREROUTING", "-j DNAT")
    assert lab("iptables", "gw1", "-D", "FORWARD", *accept).returncode == 0
    assert lab("iptables", "gw1", "-6", "-t", "nat", "-D", "PREROUTING", *dnat).returncode == 0
    try:
        completed, verification = verify(tmp_path, "broken")
    finally:
        lab("iptables", "gw1", "-A", "FORWARD", *accept)
        lab("iptables", "gw1", "-6", "-t", "nat", "-I", "PREROUTING", "1", *dnat)
    assert completed.returncode != 0
    output = completed.stdout + completed.stderr
    # The IPv4 line exactly as docs/verify.md ("Through a gateway") shows it.
    assert ("client1 -> gw1 tcp/443 (tcp/443, IPv4): expected reachable, observed filtered (no answer within 1.0 s); "
            "the policy decides at " + FORWARD[4] + "; app1 INPUT rule 8: fleetwall_policy.backend.inbound[1]: "
            "shop, through the port forward of gw1") in output
    assert ("client1 -> gw1 tcp/443 (tcp/443, IPv6): expected reachable, observed filtered (no answer within 1.0 s); "
            "the policy decides at " + FORWARD[6]) in output
    mismatched = sorted((row["source"], row["destination"], row["service"], row["family"])
                        for row in verification["rows"] if row["status"] == "mismatch")
    assert mismatched == [("client1", "gw1", "tcp/443", 4), ("client1", "gw1", "tcp/443", 6)]
