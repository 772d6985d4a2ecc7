"""Docker-published ports filtered through DOCKER-USER, in a real kernel, with the ruleset module in coexist mode.

A client namespace (two source addresses), a Docker-style host namespace and
a "container" namespace behind it on a docker0 veth. The host carries the
chains Docker makes (filter: DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-1/2
and FORWARD's jumps; nat: DOCKER with the DNAT of published port 8080 to the
container's port 80). The policy publishes the container's port 80 to one
source only (a forward rule with published: true). Real TCP connections show
that the allowed source reaches the container and the other one is dropped,
while every line of Docker's chains stays byte-identical across converge and
re-converge (DOCKER-USER gains fleetwall's jump, first, and nothing else).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator, List, NamedTuple

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace, add_addresses, veth_pair
from ansible_collections.fleetwall.iptables.tests.integration.test_nat_gateway import PEER_SERVER
from ansible_collections.fleetwall.iptables.tests.integration.test_ruleset_module import ModuleRunner, compiled

ALLOWED_CLIENT = "192.0.2.10"
OTHER_CLIENT = "192.0.2.20"
HOST_OUTSIDE = "192.0.2.1"
DOCKER_BRIDGE = "172.17.0.1"
CONTAINER = "172.17.0.2"
PUBLISHED_PORT = 8080
CONTAINER_PORT = 80

DOCKER_RULES = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
COMMIT
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
# The host's policy: SSH aside, the container's port 80 published to one address; forward accept, as the
# coexist documentation advises on a Docker host, so that Docker's FORWARD rules keep deciding the rest.
HOST_VARS = {
    "db1": {
        "fleetwall_default_policy": {"forward": "accept"},
        "fleetwall_host_rules": {"forward": [
            {"published": True, "proto": "tcp", "port": CONTAINER_PORT, "from": ALLOWED_CLIENT + "/32", "comment": "shop"},
        ]},
    }
}
# Connects from a given source address and prints what the server says, or "no connection".
CONNECT_FROM = textwrap.dedent(
    """
    import socket, sys
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(2)
    client.bind((sys.argv[1], 0))
    try:
        client.connect((sys.argv[2], int(sys.argv[3])))
        print(client.recv(200).decode())
    except OSError:
        print("no connection")
    """
)


class DockerLab(NamedTuple):
    client: Namespace
    host: ModuleRunner


def docker_part(namespace: Namespace) -> str:
    """Everything in the live tables that is not fleetwall's (its FWL- chains and the jumps to them)."""
    return "".join(line + "\n" for line in canonical_text(namespace.save(4)).splitlines() if "FWL-" not in line)


def connect(client: Namespace, source: str, attempts: int) -> str:
    answer = "no connection"
    for _attempt in range(attempts):
        answer = client.run([sys.executable, "-c", CONNECT_FROM, source, HOST_OUTSIDE, str(PUBLISHED_PORT)], timeout=20).stdout.strip()
        if answer != "no connection":
            break
    return answer


@pytest.fixture(name="lab")
def fixture_lab(make_namespace, tmp_path: Path) -> Iterator[DockerLab]:
    client, host, container = make_namespace(), make_namespace(), make_namespace()
    outside = veth_pair(client, "fwc0", host, "fwh0")
    bridge = veth_pair(host, "docker0", container, "eth0")
    add_addresses(outside[0], [ALLOWED_CLIENT + "/24", OTHER_CLIENT + "/24"])
    add_addresses(outside[1], [HOST_OUTSIDE + "/24"])
    add_addresses(bridge[0], [DOCKER_BRIDGE + "/16"])
    add_addresses(bridge[1], [CONTAINER + "/16"])
    container.run(["ip", "route", "add", "default", "via", DOCKER_BRIDGE])
    host.sysctl("net.ipv4.ip_forward", "1")
    host.restore(4, DOCKER_RULES)
    servers: List[subprocess.Popen] = []
    argv = container.exec_argv([sys.executable, "-c", PEER_SERVER, CONTAINER, str(CONTAINER_PORT), "container"])
    servers.append(subprocess.Popen(argv))  # pylint: disable=consider-using-with
    try:
        yield DockerLab(client, ModuleRunner(host, tmp_path))
    finally:
        for server in servers:
            server.kill()
            server.wait()


def converge(lab: DockerLab) -> dict:
    result = lab.host.run({"ruleset": compiled(host_vars=HOST_VARS), "mode": "coexist"})
    assert "failed" not in result, result
    return result


def test_without_fleetwall_both_sources_reach_the_published_port(lab: DockerLab) -> None:
    answers = [connect(lab.client, source, attempts=20) for source in (ALLOWED_CLIENT, OTHER_CLIENT)]
    assert answers == ["container saw %s" % ALLOWED_CLIENT, "container saw %s" % OTHER_CLIENT]


def test_the_published_rule_lets_its_source_reach_the_container(lab: DockerLab) -> None:
    converge(lab)
    assert connect(lab.client, ALLOWED_CLIENT, attempts=20) == "container saw %s" % ALLOWED_CLIENT


def test_another_source_is_dropped_before_dockers_accept(lab: DockerLab) -> None:
    converge(lab)
    connect(lab.client, ALLOWED_CLIENT, attempts=20)  # the lab is up: the drop below is fleetwall's
    assert connect(lab.client, OTHER_CLIENT, attempts=1) == "no connection"


def test_dockers_chains_stay_byte_identical_across_converge_and_reconverge(lab: DockerLab) -> None:
    before = docker_part(lab.host.namespace)
    changes = [converge(lab)["changed"], converge(lab)["changed"]]
    assert (changes, docker_part(lab.host.namespace)) == ([True, False], before)


def test_fleetwalls_jump_comes_first_in_docker_user(lab: DockerLab) -> None:
    converge(lab)
    rules = [line for line in canonical_text(lab.host.namespace.save(4)).splitlines() if line.startswith("-A DOCKER-USER ")]
    assert rules == ["-A DOCKER-USER -m comment --comment fleetwall -j FWL-DOCKER-USER", "-A DOCKER-USER -j RETURN"]
