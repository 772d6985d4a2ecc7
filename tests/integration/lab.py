"""A client and a server namespace on one veth pair, and how to tell which rule decided a packet.

The client owns the given source addresses, the server the destinations; all
are on-link (IPv4 /8, IPv6 /32), and both sides have permanent neighbour
entries for each other, so no ARP or neighbour discovery ever crosses the
link. A packet's deciding rule is read from the server's counters: the
terminal INPUT rule (ACCEPT, DROP, REJECT) whose packet counter went up, or
the INPUT policy.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import AddressSet
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import TERMINAL_TARGETS, FamilyRuleset, HostRuleset
from ansible_collections.fleetwall.iptables.plugins.module_utils.set_plan import plan_sets
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import canonical_text, render_family, render_rule
from ansible_collections.fleetwall.iptables.tests.integration.netns import (
    Link,
    Namespace,
    add_addresses,
    add_permanent_neighbours,
    veth_pair,
)

SENDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "packet_sender.py")
SERVER_IF = "fwsrv0"
CLIENT_IF = "fwcli0"
SETTLE_TIMEOUT = 3.0


class Lab(NamedTuple):
    client: Namespace
    server: Namespace
    client_link: Link
    server_link: Link
    client_addresses: Tuple[str, ...]
    server_addresses: Tuple[str, ...]


def _with_prefix(address: str) -> str:
    return address + ("/32" if ":" in address else "/8")


def build_lab(client: Namespace, server: Namespace, client_addresses: Sequence[str], server_addresses: Sequence[str]) -> Lab:
    client_link, server_link = veth_pair(client, CLIENT_IF, server, SERVER_IF)
    add_addresses(client_link, [_with_prefix(address) for address in client_addresses])
    add_addresses(server_link, [_with_prefix(address) for address in server_addresses])
    add_permanent_neighbours(client_link, server_addresses, server_link.mac)
    add_permanent_neighbours(server_link, client_addresses, client_link.mac)
    return Lab(client, server, client_link, server_link, tuple(client_addresses), tuple(server_addresses))


def load_sets(namespace: Namespace, ruleset: HostRuleset | FamilyRuleset) -> str:
    """load_address_sets for the sets of a ruleset (of both families for a HostRuleset; for a FamilyRuleset the
    returned input destroys the other family's sets too)."""
    wanted = list(ruleset.sets) if isinstance(ruleset, FamilyRuleset) else list(ruleset.ipv4.sets) + list(ruleset.ipv6.sets)
    return load_address_sets(namespace, wanted)


def load_address_sets(namespace: Namespace, wanted: Sequence[AddressSet]) -> str:
    """The ruleset module's first set phase: new and changed sets, which must exist before the rules that match
    them are restored; returns the input that destroys the sets no rule uses any more, for after the rules."""
    sets = plan_sets(list(wanted), namespace.iptables_command(["ipset", "save"]).stdout)
    if sets.prepare + sets.update:
        namespace.iptables_command(["ipset", "-exist", "restore"], stdin=sets.prepare + sets.update)
    return sets.cleanup


def drop_unused_sets(namespace: Namespace, cleanup: str) -> None:
    if cleanup:
        namespace.iptables_command(["ipset", "restore"], stdin=cleanup)


def install(lab: Lab, family_ruleset: FamilyRuleset) -> None:
    """Restore the ruleset (its sets first) on the server and check that the kernel holds exactly it."""
    load_sets(lab.server, family_ruleset)
    text = render_family(family_ruleset)
    lab.server.restore(family_ruleset.family, text)
    saved = canonical_text(lab.server.save(family_ruleset.family))
    assert saved == text, "the ruleset did not round-trip (see test_round_trip.py):\n%s" % saved
    # The default, made explicit: a bare ACK picks up a connection as NEW
    # (the knob exists once the ruleset has brought conntrack in).
    if any(rule.ctstate for table in family_ruleset.tables for chain in table.chains for rule in chain.rules):
        lab.server.sysctl("net.netfilter.nf_conntrack_tcp_loose", "1")


class Sender:
    """packet_sender.py running inside the client namespace; one command, one packet."""

    def __init__(self, client: Namespace) -> None:
        self.process = subprocess.Popen(
            client.exec_argv([sys.executable, "-u", SENDER]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def send(self, command: Dict[str, Any], timeout: float = 10.0) -> None:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        ready = select.select([self.process.stdout], [], [], timeout)[0]
        line = self.process.stdout.readline() if ready else ""
        if not line:
            stderr = self.process.stderr.read() if self.process.poll() is not None and self.process.stderr else ""
            raise RuntimeError("packet sender gave no answer to %s; stderr: %s" % (command, stderr))
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError("packet sender failed on %s: %s" % (command, reply["error"]))

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------- counters

_COUNTED_RULE = re.compile(r"^\[(\d+):(\d+)\] -A (\S+) ")
_CHAIN = re.compile(r"^:(\S+) (\S+) \[(\d+):(\d+)\]$")


class Counters(NamedTuple):
    policy: Tuple[int, int]  # INPUT policy [packets, bytes]
    rules: Tuple[Tuple[int, int], ...]  # INPUT rules, in order


class Decision(NamedTuple):
    verdict: str
    rule_index: Optional[int]  # None: the chain policy
    bytes: int


def read_counters(namespace: Namespace, family: int) -> Counters:
    policy = None
    rules: List[Tuple[int, int]] = []
    in_filter = False
    for line in namespace.save(family, counters=True).splitlines():
        if line.startswith("*"):
            in_filter = line == "*filter"
            continue
        if not in_filter:
            continue
        chain = _CHAIN.match(line)
        if chain and chain.group(1) == "INPUT":
            policy = (int(chain.group(3)), int(chain.group(4)))
        rule = _COUNTED_RULE.match(line)
        if rule and rule.group(3) == "INPUT":
            rules.append((int(rule.group(1)), int(rule.group(2))))
    assert policy is not None, "no INPUT chain in the saved filter table"
    return Counters(policy, tuple(rules))


def decisions(ruleset: FamilyRuleset, before: Counters, after: Counters) -> List[Decision]:
    """Every terminal INPUT rule, or the policy, whose packet counter went up (once per packet)."""
    chain = ruleset.table("filter").chain("INPUT")
    assert len(after.rules) == len(chain.rules), "the server's INPUT chain is not the installed ruleset"
    found: List[Decision] = []
    for index, rule in enumerate(chain.rules):
        if rule.target not in TERMINAL_TARGETS:
            continue
        packets = after.rules[index][0] - before.rules[index][0]
        if packets:
            found += [Decision(rule.target, index, after.rules[index][1] - before.rules[index][1])] * packets
    packets = after.policy[0] - before.policy[0]
    if packets:
        found += [Decision(chain.policy or "ACCEPT", None, after.policy[1] - before.policy[1])] * packets
    return found


def wait_for_decision(lab: Lab, ruleset: FamilyRuleset, before: Counters) -> Tuple[Counters, List[Decision]]:
    """Poll the counters until some packet was decided (or SETTLE_TIMEOUT passed)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        after = read_counters(lab.server, ruleset.family)
        found = decisions(ruleset, before, after)
        if found or time.monotonic() > deadline:
            return after, found
        time.sleep(0.002)


def wait_until_quiet(lab: Lab, family: int, quiet: float = 0.3, timeout: float = 10.0) -> Counters:
    """Counters that have not moved for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    current = read_counters(lab.server, family)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = read_counters(lab.server, family)
        if again == current:
            return current
        current = again
    raise AssertionError("the server's IPv%d counters keep moving with no test traffic" % family)


def kernel_decision(lab: Lab, sender: Sender, ruleset: FamilyRuleset, command: Dict[str, Any]) -> Decision:
    """Send one packet on a quiet link and return the one decision the kernel took."""
    before = wait_until_quiet(lab, ruleset.family, quiet=0.1)
    sender.send(command)
    found = wait_for_decision(lab, ruleset, before)[1]
    assert len(found) == 1, "expected exactly one decided packet for %s, counted %s" % (command, found)
    return found[0]


def describe_decision(ruleset: FamilyRuleset, verdict: str, index: Optional[int]) -> str:
    if index is None:
        return "%s by the INPUT policy" % verdict
    rule = ruleset.table("filter").chain("INPUT").rules[index]
    return "%s by INPUT rule %d: %s" % (verdict, index, render_rule("INPUT", rule))
