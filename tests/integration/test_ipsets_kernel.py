"""ipset address sets against the real kernel: what module_utils/ipsets.py and set_plan.py
write is what `ipset save` reads back, a set-backed rule admits exactly the set's members,
an update swapped in under a live rule changes who gets in without cutting an open
connection, and the rollback puts the previous sets back from any step of a run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Dict, Iterator, List

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import AddressSet, address_set, canonical_text, parse_save
from ansible_collections.fleetwall.iptables.plugins.module_utils.set_plan import plan_sets
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import Chain, FamilyRuleset, Rule, Table
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, simulate
from ansible_collections.fleetwall.iptables.tests.integration.lab import SERVER_IF, Lab, Sender, build_lab, kernel_decision, load_address_sets
from ansible_collections.fleetwall.iptables.tests.integration.lab import install as install_rules
from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace

PORT = 8080
CLIENTS = {4: ["10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.9"], 6: ["fd00::1:1", "fd00::1:2", "fd00::1:3", "fd00::1:9"]}
SERVERS = {4: "10.2.0.1", 6: "fd00::2:1"}
SET_NAME = {4: "fw4-group:web", 6: "fw6-group:web"}
# Members: the first three clients' network; exception: the second client.
MEMBERS = {4: ["10.1.0.0/30"], 6: ["fd00::1:0/126"]}
EXCEPTIONS = {4: ["10.1.0.2/32"], 6: ["fd00::1:2/128"]}

ECHO_SERVER = textwrap.dedent(
    """
    import socket, sys, threading
    family = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((sys.argv[2], int(sys.argv[3])))
    server.listen(64)
    def echo(connection):
        while True:
            data = connection.recv(64)
            if not data:
                return
            connection.sendall(data)
    while True:
        connection = server.accept()[0]
        threading.Thread(target=echo, args=(connection,), daemon=True).start()
    """
)
# Connects from a source address, then answers each "ping" on stdin with "echo ok" or "echo failed".
HELD_CLIENT = textwrap.dedent(
    """
    import socket, sys
    family = socket.AF_INET6 if sys.argv[1] == "6" else socket.AF_INET
    client = socket.socket(family, socket.SOCK_STREAM)
    client.settimeout(1.5)
    client.bind((sys.argv[2], 0))
    try:
        client.connect((sys.argv[3], int(sys.argv[4])))
    except OSError as exc:
        print("refused %s" % exc, flush=True)
        sys.exit(0)
    print("connected", flush=True)
    for line in sys.stdin:
        try:
            client.sendall(b"x")
            print("echo ok" if client.recv(64) == b"x" else "echo failed", flush=True)
        except OSError:
            print("echo failed", flush=True)
    """
)


def server_rules(family: int) -> str:
    return (
        "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A INPUT -p tcp -m set --match-set %s src -m tcp --dport %d -j ACCEPT\nCOMMIT\n" % (SET_NAME[family], PORT)
    )


def web_set(family: int, members: List[str], exceptions: List[str]) -> AddressSet:
    return address_set(SET_NAME[family], family, members, exceptions)


def ipset(namespace: Namespace, argv: List[str], stdin: str = "") -> str:
    return namespace.iptables_command(["ipset"] + argv, stdin=stdin or None).stdout


def serve_echo_lab(make_namespace) -> Iterator[Lab]:
    """The two-namespace lab with an echo server on PORT at both SERVERS addresses (for `yield from` in fixtures)."""
    client, server = make_namespace(), make_namespace()
    built = build_lab(client, server, CLIENTS[4] + CLIENTS[6], [SERVERS[4], SERVERS[6]])
    listeners = []
    for family in (4, 6):
        argv = built.server.exec_argv([sys.executable, "-c", ECHO_SERVER, str(family), SERVERS[family], str(PORT)])
        listeners.append(subprocess.Popen(argv))  # pylint: disable=consider-using-with
    try:
        yield built
    finally:
        for listener in listeners:
            listener.kill()
            listener.wait()


@pytest.fixture
def lab(make_namespace) -> Iterator[Lab]:
    yield from serve_echo_lab(make_namespace)


def install(lab_: Lab, family: int, address_set_: AddressSet) -> None:
    load_address_sets(lab_.server, [address_set_])
    lab_.server.restore(family, server_rules(family))


def connects(lab_: Lab, family: int, source: str) -> bool:
    argv = [sys.executable, "-c", HELD_CLIENT, str(family), source, SERVERS[family], str(PORT)]
    result = lab_.client.run(argv, stdin="", check=False, timeout=20)
    return result.stdout.startswith("connected")


class HeldConnection:
    def __init__(self, lab_: Lab, family: int, source: str) -> None:
        argv = lab_.client.exec_argv([sys.executable, "-c", HELD_CLIENT, str(family), source, SERVERS[family], str(PORT)])
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.first_line = self.process.stdout.readline().strip()

    def echo(self) -> str:
        self.process.stdin.write("ping\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.mark.parametrize("family", [4, 6])
def test_sets_written_by_restore_script_read_back_as_the_same_canonical_text(namespace: Namespace, family: int) -> None:
    wanted = web_set(family, MEMBERS[family] + ["10.9.0.0/16" if family == 4 else "fd09::/32"], EXCEPTIONS[family])
    load_address_sets(namespace, [wanted])
    assert canonical_text(parse_save(ipset(namespace, ["save"])).values()) == canonical_text([wanted])


def test_a_hundred_thousand_address_blocklist_loads_into_one_set(namespace: Namespace) -> None:
    blocklist = ["10.%d.%d.%d/32" % (index >> 16, (index >> 8) & 255, index & 255) for index in range(100_000)]
    load_address_sets(namespace, [address_set("fw4-blocklist", 4, blocklist)])
    assert "Number of entries: 100000" in ipset(namespace, ["list", "-terse", "fw4-blocklist"])


@pytest.mark.parametrize("family", [4, 6])
def test_a_set_backed_rule_admits_members_but_not_the_exception_or_outsiders(lab: Lab, family: int) -> None:
    install(lab, family, web_set(family, MEMBERS[family], EXCEPTIONS[family]))
    admitted = {source: connects(lab, family, source) for source in CLIENTS[family]}
    assert admitted == dict(zip(CLIENTS[family], [True, False, True, False]))


@pytest.mark.parametrize("family", [4, 6])
def test_a_swapped_in_update_changes_who_gets_in_and_keeps_an_open_connection(lab: Lab, family: int) -> None:
    install(lab, family, web_set(family, MEMBERS[family], EXCEPTIONS[family]))
    held = HeldConnection(lab, family, CLIENTS[family][0])
    try:
        assert held.first_line == "connected"
        # The first client leaves the set, the outsider joins it: one swap under the live rule.
        load_address_sets(lab.server, [web_set(family, [CLIENTS[family][2], CLIENTS[family][3]], [])])
        observed: Dict[str, object] = {
            "open connection": held.echo(),
            "new from old member": connects(lab, family, CLIENTS[family][0]),
            "new from new member": connects(lab, family, CLIENTS[family][3]),
        }
    finally:
        held.close()
    assert observed == {"open connection": "echo ok", "new from old member": False, "new from new member": True}


def test_a_set_a_rule_still_uses_is_not_destroyed_by_an_update(lab: Lab) -> None:
    install(lab, 4, web_set(4, MEMBERS[4], EXCEPTIONS[4]))
    load_address_sets(lab.server, [web_set(4, ["10.1.0.9/32"], [])])
    assert sorted(parse_save(ipset(lab.server, ["save"]))) == [SET_NAME[4]]


def test_a_stale_set_is_destroyed_once_no_rule_uses_it(namespace: Namespace) -> None:
    load_address_sets(namespace, [web_set(4, MEMBERS[4], []), address_set("fw4-old", 4, ["10.8.0.0/16"])])
    ipset(namespace, ["create", "f2b-sshd", "hash:ip"])
    plan = plan_sets([web_set(4, MEMBERS[4], [])], ipset(namespace, ["save"]))
    ipset(namespace, ["-exist", "restore"], plan.cleanup)
    assert sorted(ipset(namespace, ["list", "-name"]).split()) == sorted(["f2b-sshd", SET_NAME[4]])


@pytest.mark.parametrize("steps_done", [0, 1, 2, 3], ids=["nothing", "prepared", "updated", "cleaned up"])
def test_the_rollback_restores_the_previous_sets_from_any_step_of_a_run(namespace: Namespace, steps_done: int) -> None:
    previous = [web_set(4, MEMBERS[4], EXCEPTIONS[4]), address_set("fw4-old", 4, ["10.8.0.0/16"])]
    load_address_sets(namespace, previous)
    saved_before = ipset(namespace, ["save"])
    plan = plan_sets([web_set(4, ["10.1.0.9/32"], []), address_set("fw4-new", 4, ["10.7.0.0/16"])], saved_before)
    for text in (plan.prepare, plan.update, plan.cleanup)[:steps_done]:
        ipset(namespace, ["-exist", "restore"], text)
    ipset(namespace, ["-exist", "restore"], plan.rollback)
    ipset(namespace, ["-exist", "restore"], plan.rollback_cleanup)
    assert canonical_text(parse_save(ipset(namespace, ["save"])).values()) == canonical_text(parse_save(saved_before).values())


# ------------------------------------------------------ the simulator against the kernel

SIM_SERVER = {4: "10.9.0.1", 6: "fd00:9::1"}
# A member, an address inside a nomatch exception, a more specific member inside that
# exception (the most specific entry decides), and an outsider.
SIM_CLIENTS = {4: ["10.9.1.5", "10.9.1.65", "10.9.1.70", "10.9.2.1"], 6: ["fd00:9:1::5", "fd00:9:1::41", "fd00:9:1::46", "fd00:9:2::1"]}
SIM_SET = {
    4: address_set("fw4-sim", 4, ["10.9.1.0/24", "10.9.1.128/28", "10.9.1.70/32"], ["10.9.1.64/26"]),
    6: address_set("fw6-sim", 6, ["fd00:9:1::/64", "fd00:9:1::46/128"], ["fd00:9:1::40/122"]),
}


def sim_ruleset(family: int) -> FamilyRuleset:
    name = SIM_SET[family].name
    reject = "icmp-port-unreachable" if family == 4 else "icmp6-port-unreachable"
    rules = (
        Rule("ACCEPT", protocol="udp", destination_ports=("5000",), source_set=name),
        Rule("REJECT", protocol="udp", destination_ports=("5001",), source_set=name, source_set_negated=True, reject_with=reject),
        Rule("ACCEPT", protocol="udp", destination_ports=("5002",), destination_set=name, destination_set_negated=True),
    )
    chains = (Chain("INPUT", "DROP", rules), Chain("FORWARD", "DROP", ()), Chain("OUTPUT", "ACCEPT", ()))
    return FamilyRuleset(family, (Table("filter", chains),), (SIM_SET[family],))


@pytest.mark.parametrize("family", [4, 6])
def test_the_simulator_decides_set_backed_rules_as_the_kernel_does(make_namespace, family: int) -> None:
    client, server = make_namespace(), make_namespace()
    sim_lab = build_lab(client, server, SIM_CLIENTS[family], [SIM_SERVER[family]])
    ruleset = sim_ruleset(family)
    load_address_sets(sim_lab.server, list(ruleset.sets))
    install_rules(sim_lab, ruleset)
    sender = Sender(sim_lab.client)
    disagreements = []
    try:
        for source in SIM_CLIENTS[family]:
            for dport in (5000, 5001, 5002):
                command = {"proto": "udp", "src": source, "dst": SIM_SERVER[family], "sport": 41000 + dport % 100, "dport": dport, "payload": 8}
                kernel = kernel_decision(sim_lab, sender, ruleset, command)
                packet = Packet(chain="INPUT", source=source, destination=SIM_SERVER[family], protocol="udp",
                                source_port=command["sport"], destination_port=dport, in_interface=SERVER_IF)
                simulated = simulate(ruleset, packet)
                if (simulated.verdict, simulated.rule_index) != (kernel.verdict, kernel.rule_index):
                    disagreements.append((source, dport, simulated.verdict, simulated.rule_index, kernel.verdict, kernel.rule_index))
    finally:
        sender.close()
    assert disagreements == []
