# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lockout guard: would a new ruleset cut the controller's SSH conversation?

Private to the fleetwall.iptables collection. Pure logic, no I/O: the ruleset
module hands in SSH_CONNECTION and the text of ``ip -o addr show``.

SSH needs more than its first packet. The guard simulates, in the family the
connection uses, every leg of the conversation against the new ruleset:

* the SYN of a new connection, in (INPUT, state NEW): the next login, and the
  watchdog's confirmation, which the action plugin sends over a new connection;
* the server's SYN-ACK, out (OUTPUT, ESTABLISHED, from the server's port);
* the controller's traffic on an established connection, in;
* the server's traffic on an established connection, out: the open session
  carries the module's own answer over this leg.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import FamilyRuleset

if TYPE_CHECKING:  # a run that changes nothing checks nothing: the simulator is imported when a check runs
    from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, Verdict


class SshConnection(NamedTuple):
    """SSH_CONNECTION as the target host sees it."""

    client: str
    client_port: int
    server: str
    port: int

    @property
    def family(self):
        # type: () -> int
        return 6 if ":" in self.client else 4


class Leg(NamedTuple):
    name: str  # what the message calls it
    packet: "Packet"


class LegResult(NamedTuple):
    leg: Leg
    verdict: "Verdict"

    @property
    def decided_by(self):
        # type: () -> str
        return self.verdict.rule or "the %s policy of %s" % (self.verdict.verdict, self.verdict.chain)


class LockoutRefusal(Exception):
    """The new ruleset would cut the controller off; str() is the message for the user."""

    def __init__(self, message, result):
        # type: (str, Dict[str, Any]) -> None
        super(LockoutRefusal, self).__init__(message)
        self.result = result


def parse_ssh_connection(value):
    # type: (str) -> SshConnection
    """'client_ip client_port server_ip server_port' -> SshConnection; ValueError when malformed.

    An IPv4 client of a dual-stack sshd shows up as an IPv4-mapped IPv6
    address; the kernel filters its packets as IPv4.
    """
    parts = value.split()
    if len(parts) != 4 or not parts[1].isdigit() or not parts[3].isdigit():
        raise ValueError("ssh_connection must be 'client_ip client_port server_ip server_port', got %r" % value)
    client, client_port, server, port = parts
    if client.startswith("::ffff:") and "." in client:
        client, server = client[len("::ffff:"):], server.replace("::ffff:", "")
    return SshConnection(client, int(client_port), server, int(port))


def interface_of(address, ip_addr_text):
    # type: (str, str) -> Optional[str]
    """The interface that holds `address`, from `ip -o addr show`; None when none does."""
    found = None
    for line in ip_addr_text.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3].split("/")[0] == address:
            found = fields[1]
    return found


def conversation(connection, interface):
    # type: (SshConnection, Optional[str]) -> Tuple[Leg, ...]
    """The packets an SSH conversation needs the host to let through, in the order they travel."""
    from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet

    inbound = dict(
        chain="INPUT", source=connection.client, destination=connection.server, protocol="tcp",
        source_port=connection.client_port, destination_port=connection.port, in_interface=interface,
    )
    outbound = dict(
        chain="OUTPUT", source=connection.server, destination=connection.client, protocol="tcp",
        source_port=connection.port, destination_port=connection.client_port, out_interface=interface,
    )
    return (
        Leg("a new SSH connection", Packet(state="NEW", tcp_flags=frozenset(("SYN",)), **inbound)),
        Leg("the SSH server's SYN-ACK", Packet(state="ESTABLISHED", tcp_flags=frozenset(("SYN", "ACK")), **outbound)),
        Leg("the controller's traffic on an established SSH connection",
            Packet(state="ESTABLISHED", tcp_flags=frozenset(("ACK",)), **inbound)),
        Leg("the SSH server's replies on an established SSH connection",
            Packet(state="ESTABLISHED", tcp_flags=frozenset(("PSH", "ACK")), **outbound)),
    )


def walk_conversation(family_ruleset, legs):
    # type: (FamilyRuleset, Tuple[Leg, ...]) -> List[LegResult]
    from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import simulate

    return [LegResult(leg, simulate(family_ruleset, leg.packet)) for leg in legs]


def first_cut(results, mode):
    # type: (List[LegResult], str) -> Optional[LegResult]
    """The first leg the ruleset does not accept.

    In coexist mode, a packet that no fleetwall rule decides falls through to
    the rules of other tools and the built-in policy, which fleetwall does
    not own: only a fleetwall rule can cut the conversation there.
    """
    for result in results:
        if result.verdict.verdict == "ACCEPT":
            continue
        if mode == "coexist" and result.verdict.rule is None:
            continue
        return result
    return None


def refusal_message(connection, cut):
    # type: (SshConnection, LegResult) -> str
    packet = cut.leg.packet
    if cut.leg.name == "a new SSH connection":
        what = "a new SSH connection from %s to %s port %d" % (connection.client, connection.server, connection.port)
    else:
        what = "%s (%s, %s port %d to %s port %d), so the SSH conversation with %s would break" % (
            cut.leg.name, packet.chain, packet.source, packet.source_port, packet.destination,
            packet.destination_port, connection.client,
        )
    if packet.chain == "INPUT":
        fix = "Allow SSH from the controller in the policy"
    else:
        fix = "Let the SSH server's replies out (fleetwall_baseline's established rule does, or an outbound rule)"
    return (
        "refusing to apply: the new IPv%d ruleset would not accept %s (decided by: %s). %s, or set "
        "allow_lockout: true if you have another way in" % (connection.family, what, cut.decided_by, fix)
    )


def check_lockout(family_ruleset, connection, interface, mode, allow_lockout):
    # type: (FamilyRuleset, SshConnection, Optional[str], str, bool) -> Dict[str, Any]
    """The lockout_check result; LockoutRefusal when a leg is cut and allow_lockout is off."""
    results = walk_conversation(family_ruleset, conversation(connection, interface))
    cut = first_cut(results, mode)
    shown = cut or results[0]
    outcome = {
        "checked": True,
        "client": connection.client,
        "server": connection.server,
        "port": connection.port,
        "verdict": shown.verdict.verdict,
        "rule": shown.verdict.rule,
        "legs": [
            {"leg": result.leg.name, "chain": result.leg.packet.chain, "verdict": result.verdict.verdict,
             "rule": result.verdict.rule}
            for result in results
        ],
    }  # type: Dict[str, Any]
    if cut is not None:
        outcome["cut"] = cut.leg.name
        if not allow_lockout:
            raise LockoutRefusal(refusal_message(connection, cut), outcome)
    return outcome


def not_checked(reason):
    # type: (str) -> Dict[str, Any]
    return {"checked": False, "reason": reason}
