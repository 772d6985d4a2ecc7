"""The simulator follows a gateway's NAT as the kernel does: random port forwards, random connections.

Four namespaces: a client with addresses in two networks per family, a
gateway, and two backends behind it that answer every connection with their
name, the port it reached and the address it came from. Each round compiles
a random gateway policy (port forwards of single ports and of a range, with
or without to_port, from, in_interface, to either backend; every other
round a masquerade on the inside interface; sometimes a forward rule that drops a
network's connections to a backend port), restores it, and opens random TCP
connections from random client addresses to forwarded and unforwarded ports
of the gateway. For each one the simulator's answer, simulate() on the
gateway (translated through nat PREROUTING) and, when it accepts a
translated packet, the backend and port translate() names and the source
address POSTROUTING leaves it, must be what the kernel delivered: that
backend's answer from that port seeing that address, or no connection.

FLEETWALL_GATEWAY_ROUNDS (default 3), FLEETWALL_GATEWAY_CONNECTIONS (default
24 per family and round) and FLEETWALL_GATEWAY_SEED set the size and seed.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from typing import Any, Dict, Iterator, List, NamedTuple, Tuple

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import FamilyRuleset
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text, render_family
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, rule_matches, simulate, translate
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace, add_addresses, veth_pair
from ansible_collections.fleetwall.iptables.tests.unit.fleet import inventory

ROUNDS = int(os.environ.get("FLEETWALL_GATEWAY_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("FLEETWALL_GATEWAY_CONNECTIONS", "24"))
SEED = int(os.environ.get("FLEETWALL_GATEWAY_SEED", "20261206"))

OUTSIDE_IF, INSIDE_IF = "fwgout0", "fwgin0"
GATEWAY_OUTSIDE = {4: "192.0.2.1", 6: "2001:db8:a::1"}
GATEWAY_INSIDE = {4: "10.9.0.1", 6: "fd00:9::1"}
BACKENDS = {"b1": {4: "10.9.0.11", 6: "fd00:9::11"}, "b2": {4: "10.9.0.12", 6: "fd00:9::12"}}
CLIENT_NETWORKS = {4: ("192.0.2.0/26", "192.0.2.64/26"), 6: ("2001:db8:a::/112", "2001:db8:a::1:0/112")}
CLIENTS = {4: ("192.0.2.10", "192.0.2.20", "192.0.2.70", "192.0.2.80"),
           6: ("2001:db8:a::10", "2001:db8:a::20", "2001:db8:a::1:10", "2001:db8:a::1:20")}
PREFIX = {4: "/24", 6: "/64"}
GATEWAY_PORTS = (8001, 8002, 8003, 8004, 8005, 8006, 8007, 8008)
RANGE = (9000, 9003)
BACKEND_PORTS = (80, 443, 5432) + tuple(range(RANGE[0], RANGE[1] + 1)) + GATEWAY_PORTS
UNFORWARDED = (22, 80, 8009, 9500)
NO_CONNECTION = "no connection"

# Listens on every port given, both families, and answers "NAME:PORT saw PEER".
BACKEND_SERVER = textwrap.dedent(
    """
    import selectors, socket, sys
    name, addresses, ports = sys.argv[1], sys.argv[2].split(","), [int(port) for port in sys.argv[3].split(",")]
    selector = selectors.DefaultSelector()
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for port in ports:
            server = socket.socket(family, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((address, port))
            server.listen(64)
            selector.register(server, selectors.EVENT_READ, port)
    print("ready", flush=True)
    while True:
        for key, _events in selector.select():
            connection, peer = key.fileobj.accept()
            connection.sendall(("%s:%d saw %s" % (name, key.data, peer[0])).encode())
            connection.close()
    """
)
# Opens every connection asked for (JSON [[source, destination, port], ...]) at once; prints the answers as JSON.
CONNECT_ALL = textwrap.dedent(
    """
    import json, socket, sys, threading
    wanted = json.loads(sys.stdin.read())
    answers = [None] * len(wanted)
    def attempt(index, source, destination, port):
        family = socket.AF_INET6 if ":" in destination else socket.AF_INET
        client = socket.socket(family, socket.SOCK_STREAM)
        client.settimeout(3)
        try:
            client.bind((source, 0))
            client.connect((destination, port))
            answers[index] = client.recv(200).decode()
        except OSError:
            answers[index] = "no connection"
        finally:
            client.close()
    threads = [threading.Thread(target=attempt, args=[index] + item) for index, item in enumerate(wanted)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(answers))
    """
)


class GatewayLab(NamedTuple):
    client: Namespace
    gateway: Namespace


@pytest.fixture(name="lab", scope="module")
def fixture_lab(privileged: None) -> Iterator[GatewayLab]:
    namespaces: List[Namespace] = []
    servers: List[subprocess.Popen] = []
    try:
        client, gateway, backend1, backend2 = [Namespace.create() for _name in range(4)]
        namespaces += [client, gateway, backend1, backend2]
        outside = veth_pair(client, "fwc0", gateway, OUTSIDE_IF)
        gateway.run(["ip", "link", "add", "fwgbr0", "type", "bridge"])
        gateway.run(["ip", "link", "set", "fwgbr0", "up"])
        for family in (4, 6):
            add_addresses(outside[0], [address + PREFIX[family] for address in CLIENTS[family]])
            add_addresses(outside[1], [GATEWAY_OUTSIDE[family] + PREFIX[family]])
        inside = []
        for index, (name, backend) in enumerate((("b1", backend1), ("b2", backend2))):
            link = veth_pair(gateway, "fwgb%d" % index, backend, "eth0")
            gateway.run(["ip", "link", "set", link[0].name, "master", "fwgbr0"])
            for family in (4, 6):
                add_addresses(link[1], [BACKENDS[name][family] + PREFIX[family]])
                option = ["-6"] if family == 6 else []
                backend.run(["ip"] + option + ["route", "add", "default", "via", GATEWAY_INSIDE[family]])
            inside.append(link)
        gateway.run(["ip", "link", "set", "fwgbr0", "name", INSIDE_IF])
        for family in (4, 6):
            gateway.run(["ip", "address", "add", GATEWAY_INSIDE[family] + PREFIX[family], "dev", INSIDE_IF] + (["nodad"] if family == 6 else []))
        gateway.sysctl("net.ipv4.ip_forward", "1")
        gateway.sysctl("net.ipv6.conf.all.forwarding", "1")
        for name, backend in (("b1", backend1), ("b2", backend2)):
            addresses = ",".join(BACKENDS[name][family] for family in (4, 6))
            argv = backend.exec_argv([sys.executable, "-u", "-c", BACKEND_SERVER, name, addresses, ",".join(map(str, BACKEND_PORTS))])
            server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # pylint: disable=consider-using-with
            servers.append(server)
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield GatewayLab(client, gateway)
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for namespace in reversed(namespaces):
            namespace.delete()


def random_policy(rng: random.Random, masquerade: bool) -> Dict[str, Any]:
    """A gateway's own rules: port forwards, a masquerade if asked, perhaps a forward drop rule."""
    entries: List[Dict[str, Any]] = []
    for port in rng.sample(GATEWAY_PORTS, rng.randint(3, 6)):
        backend = rng.choice(sorted(BACKENDS))
        entry: Dict[str, Any] = {"proto": "tcp", "port": port, "to": [BACKENDS[backend][4], BACKENDS[backend][6]]}
        if rng.random() < 0.7:
            entry["to_port"] = rng.choice(BACKEND_PORTS[:3])
        if rng.random() < 0.4:
            entry["from"] = [rng.choice(CLIENT_NETWORKS[4]), rng.choice(CLIENT_NETWORKS[6])]
        if rng.random() < 0.5:
            entry["in_interface"] = OUTSIDE_IF
        entries.append({"port_forward": entry})
    backend = rng.choice(sorted(BACKENDS))
    entries.append({"port_forward": {"proto": "tcp", "port": "%d-%d" % RANGE, "to": [BACKENDS[backend][4], BACKENDS[backend][6]]}})
    if masquerade:
        entries.append({"masquerade": {"out_interface": INSIDE_IF}})
    rules: Dict[str, Any] = {"nat": entries}
    if rng.random() < 0.6:
        rules["forward"] = [{"in_interface": OUTSIDE_IF, "proto": "tcp", "port": rng.choice(BACKEND_PORTS[:3]), "action": "drop",
                             "from": [rng.choice(CLIENT_NETWORKS[4]), rng.choice(CLIENT_NETWORKS[6])]}]
    return rules


def compile_gateway(rules: Dict[str, Any]) -> Dict[int, FamilyRuleset]:
    hostvars, groups = inventory(host_vars={"bastion": {"fleetwall_host_rules": rules}})
    ruleset = FleetCompiler(hostvars, groups).compile_host("bastion")
    return {4: ruleset.ipv4, 6: ruleset.ipv6}


def backend_at(address: str) -> str:
    return next(name for name, addresses in BACKENDS.items() if address in addresses.values())


def seen_source(ruleset: FamilyRuleset, packet: Packet) -> str:
    """The source the backend sees: the gateway's inside address when a POSTROUTING masquerade matches."""
    leaving = packet._replace(in_interface=None, out_interface=INSIDE_IF)
    for rule in ruleset.table("nat").chain("POSTROUTING").rules:
        if rule.target == "MASQUERADE" and rule_matches(rule, leaving):
            return GATEWAY_INSIDE[ruleset.family]
    return packet.source


def simulated_answer(ruleset: FamilyRuleset, source: str, port: int) -> str:
    """What the simulator says the client gets: a backend's answer, or no connection."""
    packet = Packet(chain="INPUT", source=source, destination=GATEWAY_OUTSIDE[ruleset.family], protocol="tcp",
                    source_port=40000, destination_port=port, in_interface=OUTSIDE_IF)
    verdict = simulate(ruleset, packet)
    translated, rule = translate(ruleset, packet)
    if verdict.verdict != "ACCEPT" or rule is None or translated.chain != "FORWARD":
        return NO_CONNECTION
    return "%s:%d saw %s" % (backend_at(translated.destination), translated.destination_port, seen_source(ruleset, translated))


def kernel_answers(lab: GatewayLab, wanted: List[Tuple[str, str, int]]) -> List[str]:
    completed = lab.client.run([sys.executable, "-c", CONNECT_ALL], stdin=json.dumps([list(item) for item in wanted]), timeout=60)
    return json.loads(completed.stdout)


class Mismatch(NamedTuple):
    round: int
    family: int
    source: str
    port: int
    simulated: str
    kernel: str


def run_round(lab: GatewayLab, rng: random.Random, number: int) -> Tuple[List[Mismatch], int]:
    rulesets = compile_gateway(random_policy(rng, masquerade=number % 2 == 1))  # rounds with and without
    mismatches: List[Mismatch] = []
    delivered = 0
    for family in (4, 6):
        text = render_family(rulesets[family])
        lab.gateway.restore(family, text)
        assert canonical_text(lab.gateway.save(family)) == text
        ports = [rng.choice(GATEWAY_PORTS + UNFORWARDED + tuple(range(RANGE[0], RANGE[1] + 1))) for _index in range(CONNECTIONS)]
        wanted = [(rng.choice(CLIENTS[family]), GATEWAY_OUTSIDE[family], port) for port in ports]
        answers = kernel_answers(lab, wanted)
        for (source, _destination, port), answer in zip(wanted, answers):
            expected = simulated_answer(rulesets[family], source, port)
            delivered += answer != NO_CONNECTION
            if answer != expected:
                mismatches.append(Mismatch(number, family, source, port, expected, answer))
    return mismatches, delivered


def test_the_simulator_names_the_backend_the_kernel_delivers_each_connection_to(lab: GatewayLab) -> None:
    rng = random.Random(SEED)
    mismatches: List[Mismatch] = []
    delivered = 0
    for number in range(ROUNDS):
        found, reached = run_round(lab, rng, number)
        mismatches += found
        delivered += reached
    # Both outcomes must occur, or the comparison proved little.
    assert 0 < delivered < ROUNDS * 2 * CONNECTIONS
    assert mismatches == []


def test_a_random_gateway_policy_is_reproducible_from_its_seed() -> None:
    assert random_policy(random.Random(SEED), True) == random_policy(random.Random(SEED), True)
