# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flows through a gateway: the port forwards of a compiled ruleset, as the reachability model follows them.

Private to the fleetwall.iptables collection. A packet to a port a host
forwards (a nat PREROUTING DNAT rule, from a port_forward entry) is judged by
the gateway's FORWARD chain and then by the backend's INPUT chain; the
reachability model and explain name the forward and the backend. Works on
the compiled IR only, so group and host NAT entries are followed alike.
Controller-side only (plugin_utils).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import FamilyRuleset, Rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import PortRange, ServiceEntry
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, port_in, translating_rule


class Forward(NamedTuple):
    """A packet a gateway's port forward sends on, as the backend receives it."""

    gateway: str
    rule: str  # the DNAT rule as iptables-save prints it
    comment: Optional[str]
    packet: Packet  # destination and port rewritten, on the backend's INPUT chain

    @property
    def backend_label(self):
        # type: () -> str
        port = "" if self.packet.destination_port is None else " %s/%d" % (self.packet.protocol, self.packet.destination_port)
        return self.packet.destination + port


def _translations(family_ruleset):
    # type: (FamilyRuleset) -> List[Rule]
    nat = [table for table in family_ruleset.tables if table.name == "nat"]
    if not nat:
        return []
    return [rule for rule in nat[0].chain("PREROUTING").rules if rule.target in ("DNAT", "REDIRECT")]


def arrival_interface(family_ruleset, protocol, port):
    # type: (FamilyRuleset, Optional[str], Optional[int]) -> Optional[str]
    """The interface the host's port forward or redirect of this protocol and port listens on, if it names one.

    A model does not know which interface a packet comes in on; for a forwarded port it takes it to
    arrive where the forward expects it, so the forward is followed rather than passed over."""
    for rule in _translations(family_ruleset):
        if rule.protocol == protocol and port is not None and port_in(port, rule.destination_ports):
            return rule.in_interface
    return None


def follow(gateway, family_ruleset, packet):
    # type: (str, FamilyRuleset, Packet) -> Optional[Forward]
    """Where the gateway's port forward sends a packet arriving for it; None when no DNAT rewrites it."""
    translated, rule = translating_rule(family_ruleset, packet)
    if rule is None or rule.target != "DNAT":
        return None
    return Forward(gateway, render_rule("PREROUTING", rule), rule.comment, translated._replace(chain="INPUT"))


def forwarded_services(family_ruleset):
    # type: (FamilyRuleset) -> List[Tuple[str, Tuple[ServiceEntry, ...]]]
    """The ports the host forwards, as services named PROTOCOL/PORT (tcp/443), in the order of its rules."""
    services = {}  # type: Dict[str, Tuple[ServiceEntry, ...]]
    for rule in _translations(family_ruleset):
        if rule.target != "DNAT" or rule.protocol is None or not rule.destination_ports:
            continue
        bounds = rule.destination_ports[0].split(":")
        ports = PortRange(int(bounds[0]), int(bounds[-1]))
        services.setdefault("%s/%s" % (rule.protocol, ports.render()), (ServiceEntry(rule.protocol, (ports,)),))
    return list(services.items())


def forward_to_dict(forward, backend, verdict):
    # type: (Forward, str, Optional[Dict[str, Any]]) -> Dict[str, Any]
    """The forward a flow takes, for explain: the gateway, its rule and entry, the backend and its verdict."""
    return {
        "gateway": forward.gateway,
        "rule": forward.rule,
        "comment": forward.comment,
        "backend": backend,
        "backend_address": forward.packet.destination,
        "backend_port": forward.packet.destination_port,
        "backend_ingress": verdict,
    }
