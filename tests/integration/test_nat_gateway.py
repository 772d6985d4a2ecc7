"""NAT compiled from the policy, in a real kernel: three namespaces, client - gateway - backend, both families.

The gateway's ruleset is compiled from a policy with a port forward (8000 ->
backend:9000), a masquerade for the backend's network, a redirect (80 ->
8080) and one forward rule (backend -> client tcp/7000). Real TCP
connections show that the forward carries a connection end to end and the
backend sees the client's own address; that masquerade makes the backend's
outbound connection arrive from the gateway; that the redirect serves the
listener on 8080; and that nothing else passes the gateway.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Dict, Iterator, List, NamedTuple

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text, render_family
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace, add_addresses, veth_pair
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

CLIENT = {4: "192.0.2.10", 6: "2001:db8:a::10"}
GATEWAY_OUTSIDE = {4: "192.0.2.1", 6: "2001:db8:a::1"}
GATEWAY_INSIDE = {4: "10.1.0.1", 6: "fd00:b::1"}
BACKEND = {4: "10.1.0.2", 6: "fd00:b::2"}
PREFIX = {4: "/24", 6: "/64"}
# The redirect's listener takes whatever address the kernel redirects to.
ANY_ADDRESS = {4: "0.0.0.0", 6: "::"}

GATEWAY_POLICY = {
    "nat": [
        {"port_forward": {"in_interface": "fwg0", "proto": "tcp", "port": 8000, "to": [BACKEND[4], BACKEND[6]], "to_port": 9000}},
        {"masquerade": {"out_interface": "fwg0", "from": ["10.1.0.0/24", "fd00:b::/64"]}},
        {"redirect": {"proto": "tcp", "port": 80, "to_port": 8080}},
    ],
    "forward": [{"in_interface": "fwg1", "out_interface": "fwg0", "proto": "tcp", "port": 7000}],
}

# Accepts connections and tells each peer the address it came from.
PEER_SERVER = textwrap.dedent(
    """
    import socket, sys
    family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    server.bind((sys.argv[1], int(sys.argv[2])))
    server.listen(16)
    while True:
        connection, peer = server.accept()
        connection.sendall((sys.argv[3] + " saw " + peer[0]).encode())
        connection.close()
    """
)
# Connects and prints what the server says, or "no connection".
CONNECT = textwrap.dedent(
    """
    import socket, sys
    family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
    client = socket.socket(family, socket.SOCK_STREAM)
    client.settimeout(2)
    try:
        client.connect((sys.argv[1], int(sys.argv[2])))
        print(client.recv(200).decode())
    except OSError:
        print("no connection")
    """
)


class GatewayLab(NamedTuple):
    client: Namespace
    gateway: Namespace
    backend: Namespace


def gateway_ruleset():
    hostvars, groups = inventory(host_vars={"web1": {"fleetwall_host_rules": GATEWAY_POLICY}})
    return FleetCompiler(hostvars, groups).compile_host("web1")


@pytest.fixture
def lab(make_namespace) -> Iterator[GatewayLab]:
    client, gateway, backend = make_namespace(), make_namespace(), make_namespace()
    outside = veth_pair(client, "fwc0", gateway, "fwg0")
    inside = veth_pair(gateway, "fwg1", backend, "fwb0")
    for family in (4, 6):
        add_addresses(outside[0], [CLIENT[family] + PREFIX[family]])
        add_addresses(outside[1], [GATEWAY_OUTSIDE[family] + PREFIX[family]])
        add_addresses(inside[0], [GATEWAY_INSIDE[family] + PREFIX[family]])
        add_addresses(inside[1], [BACKEND[family] + PREFIX[family]])
        option = ["-6"] if family == 6 else []
        backend.run(["ip"] + option + ["route", "add", "default", "via", GATEWAY_INSIDE[family]])
        # Only for proving that nothing but the forward reaches the backend.
        network = "10.1.0.0/24" if family == 4 else "fd00:b::/64"
        client.run(["ip"] + option + ["route", "add", network, "via", GATEWAY_OUTSIDE[family]])
    gateway.sysctl("net.ipv4.ip_forward", "1")
    gateway.sysctl("net.ipv6.conf.all.forwarding", "1")
    ruleset = gateway_ruleset()
    for family in (4, 6):
        text = render_family(ruleset.family(family))
        gateway.restore(family, text)
        assert canonical_text(gateway.save(family)) == text
    servers: List[subprocess.Popen] = []
    try:
        for namespace, addresses, port, name in ((backend, BACKEND, 9000, "backend"), (gateway, ANY_ADDRESS, 8080, "gateway"),
                                                 (client, CLIENT, 7000, "client")):
            for family in (4, 6):
                argv = namespace.exec_argv([sys.executable, "-c", PEER_SERVER, addresses[family], str(port), name])
                servers.append(subprocess.Popen(argv))  # pylint: disable=consider-using-with
        yield GatewayLab(client, gateway, backend)
    finally:
        for server in servers:
            server.kill()
            server.wait()


def connect_when_listening(namespace: Namespace, address: str, port: int, attempts: int = 20) -> str:
    """Retry briefly while the listener starts; a dropped connection still ends as "no connection"."""
    answer = "no connection"
    for _attempt in range(attempts):
        answer = namespace.run([sys.executable, "-c", CONNECT, address, str(port)], timeout=20).stdout.strip()
        if answer != "no connection":
            return answer
    return answer


FAMILIES = [4, 6]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_port_forward_carries_a_connection_to_the_backend_which_sees_the_client(lab: GatewayLab, family: int) -> None:
    answer = connect_when_listening(lab.client, GATEWAY_OUTSIDE[family], 8000)
    assert answer == "backend saw %s" % CLIENT[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_masquerade_makes_the_backends_connection_arrive_from_the_gateway(lab: GatewayLab, family: int) -> None:
    answer = connect_when_listening(lab.backend, CLIENT[family], 7000)
    assert answer == "client saw %s" % GATEWAY_OUTSIDE[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_redirect_serves_the_listener_on_the_redirected_port(lab: GatewayLab, family: int) -> None:
    answer = connect_when_listening(lab.client, GATEWAY_OUTSIDE[family], 80)
    assert answer == "gateway saw %s" % CLIENT[family]


@pytest.mark.parametrize("family", FAMILIES)
def test_nothing_else_passes_the_gateway(lab: GatewayLab, family: int) -> None:
    # The forward works (so the listeners are up), then every other way in stays shut.
    assert connect_when_listening(lab.client, GATEWAY_OUTSIDE[family], 8000).startswith("backend saw")
    others: Dict[str, str] = {
        "backend directly": connect_when_listening(lab.client, BACKEND[family], 9000, attempts=1),
        "redirect target directly": connect_when_listening(lab.client, GATEWAY_OUTSIDE[family], 8080, attempts=1),
        "backend port on the gateway": connect_when_listening(lab.client, GATEWAY_OUTSIDE[family], 9000, attempts=1),
    }
    assert others == {name: "no connection" for name in others}


@pytest.mark.parametrize("family", FAMILIES)
def test_the_simulator_agrees_with_the_kernel_on_what_passes_the_gateway(lab: GatewayLab, family: int) -> None:
    from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, simulate

    ruleset = gateway_ruleset().family(family)
    assert connect_when_listening(lab.client, GATEWAY_OUTSIDE[family], 8000).startswith("backend saw")  # listeners are up
    probes = {"forward": (GATEWAY_OUTSIDE, 8000), "backend directly": (BACKEND, 9000), "redirect": (GATEWAY_OUTSIDE, 80),
              "redirect target directly": (GATEWAY_OUTSIDE, 8080), "backend port on the gateway": (GATEWAY_OUTSIDE, 9000)}
    kernel, simulator = {}, {}
    for name, (addresses, port) in probes.items():
        kernel[name] = connect_when_listening(lab.client, addresses[family], port, attempts=1) != "no connection"
        routed = addresses is BACKEND
        packet = Packet("FORWARD" if routed else "INPUT", CLIENT[family], addresses[family], "tcp", 40000, port,
                        in_interface="fwg0", out_interface="fwg1" if routed else None)
        simulator[name] = simulate(ruleset, packet).verdict == "ACCEPT"
    assert simulator == kernel
