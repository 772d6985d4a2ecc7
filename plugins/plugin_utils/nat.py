# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT in the policy: masquerade, snat, port_forward and redirect entries, read and compiled.

Private to the fleetwall.iptables collection. A ``nat:`` list sits beside
``inbound``/``outbound``/``forward`` in a group's rules or a host's own rules;
each entry is a mapping with one key naming its kind. Compiling an entry
gives nat-table rules and, for port_forward and redirect, the filter rule
that lets the translated flow through (``--ctstate DNAT``), so the operator
writes one entry. Controller-side only (plugin_utils).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import ipaddress
from typing import Any, Callable, Collection, Dict, List, NamedTuple, Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import DOCKER_USER, NAT_BUILTIN_CHAINS, Chain, Rule, Table
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import Problems, PolicyError, item_path, type_name
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import PortRange, SpecError, parse_port
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import AddressRef, FamilyNetworks

NAT_KINDS = ("masquerade", "snat", "port_forward", "redirect")
NAT_KEYS = {
    "masquerade": ("out_interface", "from", "to", "comment"),
    "snat": ("to_source", "out_interface", "from", "to", "comment"),
    "port_forward": ("proto", "port", "to", "to_port", "in_interface", "destination", "from", "comment"),
    "redirect": ("proto", "port", "to_port", "in_interface", "local", "comment"),
}
REQUIRED_KEYS = {"masquerade": ("out_interface",), "snat": ("to_source",), "port_forward": ("proto", "port", "to"),
                 "redirect": ("proto", "port", "to_port")}
NAT_PROTOCOLS = ("tcp", "udp")


class NatEntry(NamedTuple):
    """One validated NAT entry, with the path it came from."""

    origin: str
    kind: str
    protocol: Optional[str] = None
    port: Optional[PortRange] = None
    to_port: Optional[int] = None
    sources: Optional[Tuple[AddressRef, ...]] = None
    destinations: Optional[Tuple[AddressRef, ...]] = None  # masquerade/snat: where to; port_forward: the address knocked on
    backend: Optional[Tuple[AddressRef, ...]] = None  # port_forward's to:
    to_source: Tuple[str, ...] = ()  # snat: an address per family
    in_interface: Optional[str] = None
    out_interface: Optional[str] = None
    local: bool = False
    comment: Optional[str] = None


class NatRules(NamedTuple):
    """What a host's NAT entries compile to in one family: nat chain -> rules, filter chain -> rules."""

    nat: Dict[str, List[Rule]]
    filter: Dict[str, List[Rule]]


def parse_nat_entries(raw, path, problems, read_addresses, read_interface, read_text):
    # type: (Any, str, Problems, Callable[[Any, str], Any], Callable[[Any, str], Optional[str]], Callable[[Any, str], Optional[str]]) -> Tuple[NatEntry, ...]
    """A ``nat:`` list -> entries; problems by path. The readers of addresses, interfaces and comments are the policy's."""
    if not isinstance(raw, (list, tuple)):
        problems.add(path, "must be a list of NAT entries (masquerade, snat, port_forward, redirect), got %s" % type_name(raw))
        return ()
    entries = []  # type: List[NatEntry]
    for index, item in enumerate(raw):
        entry_path = item_path(path, index)
        if not hasattr(item, "keys") or len(item) != 1 or list(item)[0] not in NAT_KINDS:
            problems.add(entry_path, "a NAT entry is a mapping with one key, one of %s" % ", ".join(NAT_KINDS))
            continue
        kind = list(item)[0]
        entry = _parse_entry(kind, item[kind], "%s.%s" % (entry_path, kind), problems, read_addresses, read_interface, read_text)
        if entry is not None:
            entries.append(entry._replace(origin=entry_path))
    return tuple(entries)


def _parse_entry(kind, data, path, problems, read_addresses, read_interface, read_text):
    # type: (str, Any, str, Problems, Callable[[Any, str], Any], Callable[[Any, str], Optional[str]], Callable[[Any, str], Optional[str]]) -> Optional[NatEntry]  # noqa: E501
    if not hasattr(data, "keys"):
        problems.add(path, "must be a mapping with %s, got %s" % (", ".join(NAT_KEYS[kind]), type_name(data)))
        return None
    start = len(problems.messages)
    for key in data:
        if key not in NAT_KEYS[kind]:
            problems.add("%s.%s" % (path, key), "unknown key '%s'; %s takes %s" % (key, kind, ", ".join(NAT_KEYS[kind])))
    for key in REQUIRED_KEYS[kind]:
        if key not in data:
            problems.add(path, "%s needs '%s'" % (kind, key))
    if len(problems.messages) != start:
        return None
    fields = {"origin": path, "kind": kind}  # type: Dict[str, Any]
    for key, field in (("from", "sources"), ("to", "backend" if kind == "port_forward" else "destinations"),
                       ("destination", "destinations")):
        if key in data:
            fields[field] = read_addresses(data[key], "%s.%s" % (path, key))
    for key in ("in_interface", "out_interface"):
        if key in data:
            fields[key] = read_interface(data[key], "%s.%s" % (path, key))
            if fields[key] and fields[key].startswith("!"):
                problems.add("%s.%s" % (path, key), "a NAT entry takes one interface, not an exception")
    if "comment" in data:
        fields["comment"] = read_text(data["comment"], path + ".comment")
    fields.update(_ports_of(kind, data, path, problems))
    if "to_source" in data:
        fields["to_source"] = _to_source(data["to_source"], path + ".to_source", problems)
    if "local" in data:
        if not isinstance(data["local"], bool):
            problems.add(path + ".local", "local must be true or false, got %r" % (data["local"],))
        fields["local"] = data["local"] is True
    unresolved = [key for key in ("sources", "destinations", "backend") if key in fields and fields[key] is None]
    if len(problems.messages) != start or unresolved:
        return None
    return NatEntry(**fields)


def _ports_of(kind, data, path, problems):
    # type: (str, Any, str, Problems) -> Dict[str, Any]
    fields = {}  # type: Dict[str, Any]
    if "proto" in data:
        if data["proto"] not in NAT_PROTOCOLS:
            problems.add(path + ".proto", "proto must be tcp or udp, got %r" % (data["proto"],))
        fields["protocol"] = data["proto"]
    if "port" in data:
        try:
            fields["port"] = parse_port(data["port"])
        except SpecError as exc:
            problems.add(path + ".port", str(exc))
    if "to_port" in data:
        try:
            to_port = parse_port(data["to_port"])
        except SpecError as exc:
            problems.add(path + ".to_port", str(exc))
        else:
            if to_port.low != to_port.high:
                problems.add(path + ".to_port", "to_port is one port, got a range")
            elif fields.get("port") is not None and fields["port"].low != fields["port"].high:
                problems.add(path + ".to_port", "a port range is forwarded to the same ports; leave to_port out")
            fields["to_port"] = to_port.low
    return fields


def _to_source(value, path, problems):
    # type: (Any, str, Problems) -> Tuple[str, ...]
    items = value if isinstance(value, (list, tuple)) else [value]
    addresses = []  # type: List[str]
    for index, item in enumerate(items):
        item_path_ = item_path(path, index) if isinstance(value, (list, tuple)) else path
        try:
            address = ipaddress.ip_address(str(item).strip())
        except ValueError:
            problems.add(item_path_, "to_source is an IPv4 or IPv6 address (one per family), got %r" % (item,))
            continue
        if any(ipaddress.ip_address(known).version == address.version for known in addresses):
            problems.add(item_path_, "to_source takes one address per family")
        addresses.append(str(address))
    return tuple(addresses)


# ---------------------------------------------------------------- compiling


def _comment(entry, label):
    # type: (NatEntry, Callable[[str], str]) -> str
    text = label(entry.origin)
    return text + ": " + entry.comment if entry.comment else text


def _cidrs(networks, family):
    # type: (Optional[FamilyNetworks], int) -> Tuple[Optional[str], ...]
    return (None,) if networks is None else networks.family(family)


def _single_address(networks, family, path):
    # type: (FamilyNetworks, int, str) -> Optional[str]
    """The one address a port forward goes to in a family; PolicyError when there are several."""
    cidrs = networks.family(family)
    if not cidrs:
        return None
    host_prefix = "/32" if family == 4 else "/128"
    if len(cidrs) > 1 or not cidrs[0].endswith(host_prefix):
        raise PolicyError(["%s: resolves to %s in IPv%d; a port forward goes to exactly one address per family"
                           % (path, ", ".join(cidrs), family)])
    return cidrs[0][: -len(host_prefix)]


def compile_nat(entries, family, resolve, label):
    # type: (Collection[NatEntry], int, Callable[[Any, str], FamilyNetworks], Callable[[str], str]) -> NatRules
    """One family's rules for a host's NAT entries."""
    rules = NatRules({}, {})
    for entry in entries:
        comment = _comment(entry, label)
        path = "%s.%s" % (entry.origin, entry.kind)
        sources = resolve(entry.sources, path + ".from") if entry.sources is not None else None
        destination_key = ".destination" if entry.kind == "port_forward" else ".to"
        destinations = resolve(entry.destinations, path + destination_key) if entry.destinations is not None else None
        if entry.kind in ("masquerade", "snat"):
            _source_nat(rules, entry, family, comment, sources, destinations)
        elif entry.kind == "port_forward":
            backend = _single_address(resolve(entry.backend, path + ".to"), family, path + ".to")
            if backend is not None:
                _port_forward(rules, entry, family, comment, sources, destinations, backend)
        else:
            _redirect(rules, entry, comment)
    return rules


def _source_nat(rules, entry, family, comment, sources, destinations):
    # type: (NatRules, NatEntry, int, str, Optional[FamilyNetworks], Optional[FamilyNetworks]) -> None
    to_source = [address for address in entry.to_source if ipaddress.ip_address(address).version == family]
    if entry.kind == "snat" and not to_source:
        return
    for source in _cidrs(sources, family):
        for destination in _cidrs(destinations, family):
            rules.nat.setdefault("POSTROUTING", []).append(Rule(
                target="SNAT" if entry.kind == "snat" else "MASQUERADE", source=source, destination=destination,
                out_interface=entry.out_interface, comment=comment, to_source=to_source[0] if to_source else None))


def _port_text(port):
    # type: (PortRange) -> str
    return str(port.low) if port.low == port.high else "%d:%d" % (port.low, port.high)


def _port_forward(rules, entry, family, comment, sources, destinations, backend):
    # type: (NatRules, NatEntry, int, str, Optional[FamilyNetworks], Optional[FamilyNetworks], str) -> None
    port = entry.port  # type: Any
    target_port = str(entry.to_port) if entry.to_port else None
    if port.low != port.high:
        target_port = "%d-%d" % (port.low, port.high)
    address = "[%s]" % backend if family == 6 and target_port else backend
    to_destination = "%s:%s" % (address, target_port) if target_port else address
    if not _cidrs(destinations, family):
        return  # the address knocked on has none in this family: nothing to forward, nothing to accept
    for source in _cidrs(sources, family):
        for destination in _cidrs(destinations, family):
            rules.nat.setdefault("PREROUTING", []).append(Rule(
                target="DNAT", source=source, destination=destination, in_interface=entry.in_interface,
                protocol=entry.protocol, destination_ports=(_port_text(port),), comment=comment,
                to_destination=to_destination))
        forwarded_port = str(entry.to_port) if entry.to_port else _port_text(port)
        rules.filter.setdefault("FORWARD", []).append(Rule(
            target="ACCEPT", source=source, destination=backend + ("/32" if family == 4 else "/128"),
            in_interface=entry.in_interface, protocol=entry.protocol, destination_ports=(forwarded_port,),
            ctstate=("DNAT",), comment=comment))


def _redirect(rules, entry, comment):
    # type: (NatRules, NatEntry, str) -> None
    port = _port_text(entry.port)  # type: ignore[arg-type]
    redirect = Rule(target="REDIRECT", in_interface=entry.in_interface, protocol=entry.protocol,
                    destination_ports=(port,), comment=comment, to_ports=str(entry.to_port))
    rules.nat.setdefault("PREROUTING", []).append(redirect)
    if entry.local:
        # Locally generated packets to one of the host's own addresses; not every packet to that port anywhere.
        rules.nat.setdefault("OUTPUT", []).append(redirect._replace(in_interface=None, destination_type="LOCAL"))
    rules.filter.setdefault("INPUT", []).append(Rule(
        target="ACCEPT", in_interface=entry.in_interface, protocol=entry.protocol,
        destination_ports=(str(entry.to_port),), ctstate=("DNAT",), comment=comment))


def compile_host_nat(entries, resolve, label):
    # type: (Collection[NatEntry], Callable[[Any, str], FamilyNetworks], Callable[[str], str]) -> Dict[int, NatRules]
    """Both families' rules for a host's NAT entries; PolicyError naming an entry that can apply in neither."""
    compiled = {family: compile_nat(entries, family, resolve, label) for family in (4, 6)}
    used = set()
    for rules in compiled.values():
        for chain_rules in list(rules.nat.values()) + list(rules.filter.values()):
            used.update(rule.comment for rule in chain_rules)
    never = [entry.origin for entry in entries if _comment(entry, label) not in used]
    if never:
        raise PolicyError(["%s: applies in neither IPv4 nor IPv6: its addresses (from, to, destination, to_source) "
                           "have no family in common, or resolve to no address" % origin for origin in never])
    return compiled


def nat_table(rules):
    # type: (NatRules) -> Table
    """The nat table of one family: its built-in chains, ACCEPT policies, the entries' rules."""
    return Table("nat", tuple(Chain(name, "ACCEPT", tuple(rules.nat.get(name, ()))) for name in NAT_BUILTIN_CHAINS))


def docker_user_chain(rules):
    # type: (Collection[Rule]) -> Chain
    """Docker's DOCKER-USER chain as fleetwall fills it: the published rules between two fixed ones.

    Every forwarded packet passes DOCKER-USER, the containers' own traffic and the answers too, so the
    chain decides only new connections Docker's DNAT brought in (published ports): what is established
    or related, and what no DNAT rewrote, returns to Docker's chains, which keep deciding as before."""
    established = Rule(target="RETURN", ctstate=("RELATED", "ESTABLISHED"), comment="fleetwall baseline: established")
    unpublished = Rule(target="DROP", ctstate=("DNAT",), comment="fleetwall: published ports no rule accepts")
    return Chain(DOCKER_USER, None, (established,) + tuple(rules) + (unpublished,))
