# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the fleet must let through, host to host, according to the policy.

Private to the fleetwall.iptables collection. Pure logic on the compiled
rulesets: the reachability model (every source x destination x service the
policy mentions, judged by the simulator on both ends: egress on the source,
ingress on the destination), the explanation of one flow, and the judgement
of what a probe really observed against what the model expects. Controller-side only (plugin_utils): the
filters import it; nothing on a target host does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import AddressRef, require_libraries
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.forwarding import (
    Forward,
    arrival_interface,
    follow,
    forwarded_services,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import FamilyRuleset, HostRuleset, Rule
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.nat import NatEntry
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy import HostSettings, PolicyRule, parse_host_settings
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.sampling import sample_hosts, sample_sources, sampling_note
from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_packets import ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, PORT_UNREACHABLE
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError, did_you_mean
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import ServiceEntry
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import Packet, Verdict, simulate
from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import (
    ADDRESSES,
    ANYWHERE,
    BLOCKED,
    CLOSED,
    ERROR,
    FILTERED,
    HOST,
    OPEN,
    OPEN_FILTERED,
    REACHABLE,
    REJECTED,
    STATES,
    Row,
    Verification,
    judge,
    row_from_dict,
    row_to_dict,
    verification_summary,
    verification_to_dict,
)

try:
    import netaddr
except ImportError:  # require_libraries() says what to install
    netaddr = None

# What a probe observes, per answer the far end sends (see the probe module),
# and which kind of reply packet carries that answer back. A TCP RST or an
# ICMP port unreachable proves the firewall let the packet in even when
# nothing listens; silence is all a probe sees when a packet or its answer is
# dropped.
ALLOWED_ANSWERS = {
    "tcp": ((OPEN, "established"), (CLOSED, "established")),
    "udp": ((OPEN, "established"), (CLOSED, "related")),
    "icmp": ((OPEN, "established"),),
}
SILENCE = {"tcp": FILTERED, "udp": OPEN_FILTERED, "icmp": FILTERED}
# A packet the sending host's own OUTPUT chain refuses fails at the socket.
OWN_OUTPUT_OBSERVATIONS = (CLOSED, REJECTED, FILTERED)
EPHEMERAL_PORT = 40000
ANY_PORT = 9  # stands for "every port" (discard: rarely a real service)
# Documentation prefixes (RFC 5737, RFC 3849) stand for "some address on the internet".
ANYWHERE_ADDRESSES = {4: "198.51.100.77", 6: "2001:db8:ffff::77"}
ICMP_PROTOCOL = {4: "icmp", 6: "ipv6-icmp"}
ECHO_REQUEST = {family: (ICMP_PROTOCOL[family], ICMP_ECHO_REQUEST[family]) for family in (4, 6)}
_REJECT_WITH = re.compile(r"--reject-with (\S+)")
_PORT_REJECTS = ("icmp-port-unreachable", "icmp6-port-unreachable")


class ProbeSpec(NamedTuple):
    """How one service is tried in one family: the packet and, if possible, the probe."""

    protocol: str  # the packet's protocol as iptables-save names it
    port: Optional[int]
    icmp_type: Optional[int]
    probe: Optional[str]  # tcp, udp or icmp; None when the probe module cannot send it
    label: str  # "tcp/5432", "icmp echo-request"
    not_probed_reason: Optional[str] = None


class Endpoint(NamedTuple):
    name: str
    kind: str  # host, addresses or anywhere
    groups: Tuple[str, ...]
    addresses: Dict[int, str]  # one address per family
    ruleset: Optional[HostRuleset]


class Check(NamedTuple):
    identifier: str
    source: Endpoint
    destination: Endpoint
    family: int
    service: str
    spec: ProbeSpec
    egress: Optional[Verdict]
    ingress: Optional[Verdict]
    expected: str  # reachable or blocked
    consistent: Tuple[str, ...]  # observations that agree with the expectation
    ambiguous: Tuple[str, ...]  # ... of which these would also fit the opposite
    decided_by: str
    forward: Optional[Forward] = None  # the gateway's port forward the flow takes, if any
    backend: Optional[Endpoint] = None  # ... and where it leads
    backend_ingress: Optional[Verdict] = None  # the verdict deciding the way in past the gateway


def probe_spec(entries, family):
    # type: (Sequence[ServiceEntry], int) -> Optional[ProbeSpec]
    """The packet that stands for a service in a family; None if the service has none there."""
    relevant = [entry for entry in entries if entry.family in (None, family)]
    if not entries:
        protocol, icmp_type = ECHO_REQUEST[family]
        return ProbeSpec(protocol, None, icmp_type, "icmp", "any protocol (tried with ping)")
    if not relevant:
        return None
    for wanted in ("tcp", "udp"):
        for entry in relevant:
            if entry.protocol == wanted:
                port = entry.ports[0].low if entry.ports else ANY_PORT
                if entry.source_ports:
                    return ProbeSpec(wanted, port, None, None, "%s/%d" % (wanted, port),
                                     "the service needs source port %s, which the probe does not set" % entry.source_ports[0].render())
                return ProbeSpec(wanted, port, None, wanted, "%s/%d" % (wanted, port))
    echo_protocol, echo_type = ECHO_REQUEST[family]
    for entry in relevant:
        if entry.protocol == echo_protocol and entry.icmp_type in (None, str(echo_type)):
            return ProbeSpec(echo_protocol, None, echo_type, "icmp", "%s echo-request" % ("icmp" if family == 4 else "icmpv6"))
    entry = relevant[0]
    icmp_type = int(entry.icmp_type.split("/")[0]) if entry.icmp_type else None
    label = entry.protocol + ("/" + entry.icmp_type if entry.icmp_type else "")
    return ProbeSpec(entry.protocol, None, icmp_type, None, label, "the probe sends only TCP, UDP and ICMP echo requests")


def packet_for(spec, chain, source, destination):
    # type: (ProbeSpec, str, str, str) -> Packet
    ports = {} if spec.port is None else {"source_port": EPHEMERAL_PORT, "destination_port": spec.port}
    return Packet(chain=chain, source=source, destination=destination, protocol=spec.protocol,
                  icmp_type=spec.icmp_type, **ports)


def _reject_with(verdict):
    # type: (Verdict) -> str
    match = _REJECT_WITH.search(verdict.rule or "")
    return match.group(1) if match else "icmp-port-unreachable"


def _answers(verdict, probe):
    # type: (Verdict, str) -> Tuple[Tuple[str, str], ...]
    """(observation, reply kind) for each answer the far end may send after deciding ``verdict``."""
    if verdict.verdict == "ACCEPT":
        return ALLOWED_ANSWERS[probe]
    if verdict.verdict == "DROP":
        return ()
    reject_with = _reject_with(verdict)
    if reject_with == "tcp-reset" and probe == "tcp":
        return ((CLOSED, "reset"),)
    if reject_with in _PORT_REJECTS and probe in ("tcp", "udp"):
        return ((CLOSED, "related"),)
    return ((REJECTED, "related"),)


class _Flow:
    """One flow between two endpoints, with the fate of each kind of reply worked out once.

    Through a gateway's port forward (``forward``), the answer leaves the backend, crosses the gateway's
    FORWARD chain and reaches the source from the gateway's address."""

    __slots__ = ("source", "destination", "family", "spec", "stopped", "forward", "backend")

    def __init__(self, source, destination, family, spec):
        # type: (Endpoint, Endpoint, int, ProbeSpec) -> None
        self.source = source
        self.destination = destination
        self.family = family
        self.spec = spec
        self.stopped = {}  # type: Dict[str, Optional[Tuple[str, Verdict]]]
        self.forward = None  # type: Optional[Forward]
        self.backend = None  # type: Optional[Endpoint]

    def packet(self, chain):
        # type: (str) -> Packet
        return packet_for(self.spec, chain, self.source.addresses[self.family], self.destination.addresses[self.family])

    def reply(self, kind, sender=None, port=None):
        # type: (str, Optional[str], Optional[int]) -> Packet
        """The answer of ``kind`` (established, reset or related), from the destination (or ``sender`` and its
        ``port``) back to the source."""
        ends = {"source": sender or self.destination.addresses[self.family], "destination": self.source.addresses[self.family]}
        if kind == "related":
            icmp_type, icmp_code = PORT_UNREACHABLE[self.family]
            return Packet(chain="OUTPUT", protocol=ICMP_PROTOCOL[self.family], icmp_type=icmp_type, icmp_code=icmp_code,
                          state="RELATED", tcp_flags=frozenset(), **ends)
        if self.spec.port is None:
            return Packet(chain="OUTPUT", protocol=self.spec.protocol, icmp_type=ICMP_ECHO_REPLY[self.family] if self.spec.icmp_type is not None else None,
                          state="ESTABLISHED", tcp_flags=frozenset(), **ends)
        flags = frozenset(("RST", "ACK") if kind == "reset" else ("SYN", "ACK"))
        return Packet(chain="OUTPUT", protocol=self.spec.protocol, source_port=port or self.spec.port, destination_port=EPHEMERAL_PORT,
                      state="ESTABLISHED", tcp_flags=flags, **ends)

    def reply_stopped_by(self, kind):
        # type: (str) -> Optional[Tuple[str, Verdict]]
        """The first end whose rules stop that answer: the destination's OUTPUT (or the backend's OUTPUT and the
        gateway's FORWARD), then the source's INPUT."""
        if kind not in self.stopped:
            self.stopped[kind] = self._first_to_stop(kind)
        return self.stopped[kind]

    def _first_to_stop(self, kind):
        # type: (str) -> Optional[Tuple[str, Verdict]]
        packet = self.reply(kind)
        hops = [(self.destination, "OUTPUT", packet)]  # type: List[Tuple[Optional[Endpoint], str, Packet]]
        if self.forward is not None:
            inner = self.reply(kind, self.forward.packet.destination, self.forward.packet.destination_port)
            hops = [(self.backend, "OUTPUT", inner), (self.destination, "FORWARD", inner._replace(translated=True))]
        hops.append((self.source, "INPUT", packet))
        for endpoint, chain, hop_packet in hops:
            if endpoint is None or endpoint.ruleset is None:
                continue
            verdict = simulate(endpoint.ruleset.family(self.family), hop_packet._replace(chain=chain))
            if verdict.verdict != "ACCEPT":
                return endpoint.name, verdict
        return None

    def observations(self, verdict, probe):
        # type: (Verdict, str) -> Tuple[str, ...]
        """What a probe sees when the destination's INPUT chain decides ``verdict``."""
        seen = [observation for observation, kind in _answers(verdict, probe) if self.reply_stopped_by(kind) is None]
        if not seen or probe == "udp":  # a UDP listener may also stay silent
            seen.append(SILENCE[probe])
        return tuple(sorted(set(seen), key=STATES.index))


def _default_verdict(ruleset, chain_name):
    # type: (FamilyRuleset, str) -> Verdict
    """What the chain does with a packet no policy rule matches: its final reject, or its policy."""
    chain = ruleset.table("filter").chain(chain_name)
    for index in range(len(chain.rules) - 1, -1, -1):
        rule = chain.rules[index]
        if rule.target == "LOG":
            continue
        bare = rule._replace(comment=None, reject_with=None, log_prefix=None, log_level=None, limit=None)
        if rule.target in ("DROP", "REJECT") and bare == Rule(target=rule.target):
            text = "-j %s" % rule.target + (" --reject-with %s" % rule.reject_with if rule.reject_with else "")
            return Verdict(rule.target, chain_name, index, text, rule.comment)
        break
    return Verdict(chain.policy or "ACCEPT", chain_name, None, None, None)


def describe_verdict(host, verdict):
    # type: (str, Verdict) -> str
    """'db1 INPUT: fleetwall_policy.db.inbound[0]: app tier' or 'db1 INPUT: chain policy DROP'."""
    if verdict.rule_index is None:
        return "%s %s: chain policy %s" % (host, verdict.chain, verdict.verdict)
    label = verdict.comment or verdict.rule
    if verdict.comment and verdict.comment.startswith("fleetwall_host_rules."):
        label = "hostvars['%s'].%s" % (host, verdict.comment)
    return "%s %s rule %d: %s" % (host, verdict.chain, verdict.rule_index + 1, label)


def policy_entry(host, comment):
    # type: (str, Optional[str]) -> Optional[str]
    """The policy path a rule comment names, with the host put back into host-rule paths."""
    if not comment:
        return None
    entry = comment.split(": ", 1)[0] if comment.startswith(("fleetwall_policy.", "fleetwall_host_rules.")) else comment
    if entry.startswith("fleetwall_host_rules."):
        return "hostvars['%s'].%s" % (host, entry)
    return entry


class Fleet:
    """The compiled rulesets and addresses of an inventory, and its policy as the compiler parsed it."""

    def __init__(self, hostvars, groups, hosts=None):
        # type: (Mapping[str, Mapping[str, Any]], Mapping[str, Sequence[str]], Optional[Sequence[str]]) -> None
        require_libraries()
        self.compiler = FleetCompiler(hostvars, groups)
        inventory = self.compiler.parsed_fleet()
        self.groups = inventory.groups
        self.all_hosts = sorted(inventory.hosts)
        self.hosts = sorted(str(host) for host in hosts) if hosts else list(self.all_hosts)
        for host in self.hosts:
            if host not in inventory.hosts:
                raise PolicyError(["hosts: unknown host '%s'%s" % (host, did_you_mean(host, self.all_hosts))])
        parsed = self.compiler.parsed_fleet(self.hosts[0])
        self.policy = parsed.policy
        self.resolver = parsed.resolver
        self.addresses = parsed.host_addresses
        self.hostvars = hostvars
        self._rulesets = {}  # type: Dict[str, HostRuleset]

    def ruleset(self, host):
        # type: (str) -> HostRuleset
        if host not in self._rulesets:
            self._rulesets[host] = self.compiler.compile_host(host)
        return self._rulesets[host]

    def groups_of(self, host):
        # type: (str) -> Tuple[str, ...]
        return tuple(self.compiler.groups_of(host))

    def owner_of(self, address):
        # type: (Any) -> Optional[str]
        """The inventory host that has this address, if any."""
        owners = [host for host in self.all_hosts if address in self.addresses.of(host, "hostvars['%s']" % host)]
        return owners[0] if owners else None

    def endpoint_at(self, text, family):
        # type: (str, int) -> Endpoint
        """The inventory host at an address (judged by its ruleset), or the bare address."""
        address = netaddr.IPAddress(text)
        owner = self.owner_of(address)
        if owner is None:
            return Endpoint(str(address), ADDRESSES, (), {family: str(address)}, None)
        return self.host_endpoint(owner)._replace(addresses={family: str(address)})

    def nat_entries(self, host):
        # type: (str) -> List[NatEntry]
        entries = [entry for group in self.groups_of(host) for entry in self.policy.group_nat.get(group, ())]
        return entries + list(self._settings(host).host_nat)

    def host_endpoint(self, host):
        # type: (str) -> Endpoint
        addresses = {}  # type: Dict[int, str]
        for address in self.addresses.of(host, "hostvars['%s']" % host):
            addresses.setdefault(address.version, str(address))
        return Endpoint(host, HOST, self.groups_of(host), addresses, self.ruleset(host))

    def _settings(self, host):
        # type: (str) -> HostSettings
        host_vars = self.hostvars[host]
        return parse_host_settings(
            host, host_vars.get("fleetwall_default_policy"), host_vars.get("fleetwall_baseline"),
            host_vars.get("fleetwall_host_rules"), self.policy, self.groups, set(self.all_hosts),
        )

    def host_rules(self, host):
        # type: (str) -> Tuple[PolicyRule, ...]
        return self._settings(host).host_rules

    def all_rules(self, hosts):
        # type: (Iterable[str]) -> List[PolicyRule]
        rules = []  # type: List[PolicyRule]
        for group in sorted(self.policy.group_rules):
            rules.extend(self.policy.group_rules[group])
        for host in hosts:
            rules.extend(self.host_rules(host))
        return rules


def _external_networks(fleet, refs, label, found):
    # type: (Fleet, Sequence[AddressRef], Optional[str], Dict[str, Any]) -> None
    """Literal networks in from-lists, labelled by the innermost address set that names them."""
    for ref in refs:
        if ref.negated:
            continue
        if ref.kind == "network":
            name = label or ref.value
            found[name] = found.get(name, netaddr.IPSet()) | netaddr.IPSet([ref.value])
        elif ref.kind == "set":
            _external_networks(fleet, fleet.policy.address_sets[ref.value], ref.value, found)


def external_sources(fleet, rules, forwards=()):
    # type: (Fleet, Iterable[PolicyRule], Iterable[NatEntry]) -> List[Endpoint]
    """Address sets outside the inventory (office, partners) and 'anywhere', as the inbound rules and the
    port forwards name them."""
    found = {}  # type: Dict[str, Any]
    anywhere = False
    source_lists = [rule.sources for rule in rules if rule.direction == "inbound"]
    source_lists.extend(entry.sources for entry in forwards if entry.kind == "port_forward")
    for sources in source_lists:
        if sources is None:
            anywhere = True
        else:
            _external_networks(fleet, sources, None, found)
    fleet_addresses = netaddr.IPSet()
    for host in fleet.all_hosts:
        fleet_addresses |= netaddr.IPSet(fleet.addresses.of(host, "hostvars['%s']" % host))
    endpoints = []  # type: List[Endpoint]
    seen = set()  # type: set
    for name in sorted(found):
        addresses = {}  # type: Dict[int, str]
        for cidr in (found[name] - fleet_addresses).iter_cidrs():
            if cidr.version in addresses:
                continue
            first = cidr.network + 1 if cidr.size > 2 else cidr.network
            addresses[cidr.version] = str(first)
        key = tuple(sorted(addresses.items()))
        if addresses and key not in seen:
            seen.add(key)
            endpoints.append(Endpoint(name, ADDRESSES, (), addresses, None))
    if anywhere:
        endpoints.append(Endpoint(ANYWHERE, ANYWHERE, (), dict(ANYWHERE_ADDRESSES), None))
    return endpoints


def _shorthand(entry):
    # type: (ServiceEntry) -> str
    detail = ",".join(port.render() for port in entry.ports) or entry.icmp_type
    return entry.protocol + ("/" + detail if detail else "")


def _service_order(rules, catalog):
    # type: (Iterable[PolicyRule], Mapping[str, Tuple[ServiceEntry, ...]]) -> List[Tuple[str, Tuple[ServiceEntry, ...]]]
    """Every service a rule names, in the order the policy first names it; 'any' for rules without one."""
    services = []  # type: List[Tuple[str, Tuple[ServiceEntry, ...]]]
    seen = set()  # type: set
    for rule in rules:
        if rule.direction == "forward":
            continue
        named = []  # type: List[Tuple[str, Tuple[ServiceEntry, ...]]]
        for name in rule.services:
            if name in catalog:
                named.append((name, catalog[name]))
            else:  # a shorthand such as tcp/8080 written in the rule itself
                own = tuple(entry for entry in rule.entries if _shorthand(entry) == name)
                named.append((name, own or rule.entries))
        if not rule.services:
            named = [(_shorthand(entry), (entry,)) for entry in rule.entries] or [("any", ())]
        for name, entries in named:
            if name not in seen:
                seen.add(name)
                services.append((name, entries))
    return services


def _arrive(flow, locate):
    # type: (_Flow, Callable[[str, int], Endpoint]) -> Tuple[Verdict, Tuple[str, Verdict]]
    """The destination's verdict on the packet, and the end that decides its way in: the destination, or,
    past a port forward the gateway lets through, the backend (``locate`` finds it by address)."""
    ruleset = flow.destination.ruleset.family(flow.family)  # type: ignore[union-attr]
    packet = flow.packet("INPUT")._replace(in_interface=arrival_interface(ruleset, flow.spec.protocol, flow.spec.port))
    ingress = simulate(ruleset, packet)
    far_end = (flow.destination.name, ingress)
    flow.forward = follow(flow.destination.name, ruleset, packet) if ingress.translated_by else None
    if flow.forward is not None:
        flow.backend = locate(flow.forward.packet.destination, flow.family)
        if ingress.verdict == "ACCEPT" and flow.backend.ruleset is not None:
            far_end = (flow.backend.name, simulate(flow.backend.ruleset.family(flow.family), flow.forward.packet))
    return ingress, far_end


def _via(flow):
    # type: (_Flow) -> str
    """'via gw1 port_forward -> web1 10.0.1.1 tcp/8443 (hostvars['gw1'].fleetwall_host_rules.nat[0]): ', or ''."""
    if flow.forward is None or flow.backend is None:
        return ""
    backend = flow.forward.backend_label
    if flow.backend.name != flow.forward.packet.destination:
        backend = "%s %s" % (flow.backend.name, backend)
    entry = policy_entry(flow.destination.name, flow.forward.comment) or flow.forward.rule
    return "via %s port_forward -> %s (%s); " % (flow.destination.name, backend, entry)


def judge_flow(source, destination, family, spec, identifier, service, locate):
    # type: (Endpoint, Endpoint, int, ProbeSpec, str, str, Callable[[str, int], Endpoint]) -> Check
    """The simulator's verdict at both ends of one flow (through a port forward, at the gateway and the
    backend) and on its way back, and what a probe should observe."""
    flow = _Flow(source, destination, family, spec)
    probe = spec.probe or "tcp"
    egress = None
    if source.ruleset is not None:
        egress = simulate(source.ruleset.family(family), flow.packet("OUTPUT"))
    ingress = far_end = None
    if destination.ruleset is not None:
        ingress, far_end = _arrive(flow, locate)
    accepted = Verdict("ACCEPT", "INPUT", None, None, None)
    if egress is not None and egress.verdict != "ACCEPT":
        expected, consistent = BLOCKED, OWN_OUTPUT_OBSERVATIONS
        decided_by = describe_verdict(source.name, egress)
    elif far_end is not None and far_end[1].verdict != "ACCEPT":
        expected, consistent = BLOCKED, flow.observations(far_end[1], probe)
        decided_by = _via(flow) + describe_verdict(*far_end)
    else:
        stopped = flow.reply_stopped_by("established")
        consistent = flow.observations(far_end[1] if far_end else accepted, probe)
        if stopped is not None:
            expected = BLOCKED
            decided_by = _via(flow) + describe_verdict(stopped[0], stopped[1]) + " (the reply)"
        else:
            expected = REACHABLE
            decided_by = _via(flow) + describe_verdict(*far_end) if far_end else "no fleetwall ruleset at the destination"
    opposite = set()  # type: set
    if expected == REACHABLE:
        if destination.ruleset is not None:
            chain = "INPUT" if flow.forward is None else "FORWARD"
            opposite.update(flow.observations(_default_verdict(destination.ruleset.family(family), chain), probe))
        if source.ruleset is not None and _default_verdict(source.ruleset.family(family), "OUTPUT").verdict != "ACCEPT":
            opposite.update(OWN_OUTPUT_OBSERVATIONS)
    else:
        opposite.update(flow.observations(accepted, probe))
    ambiguous = tuple(observation for observation in consistent if observation in opposite)
    return Check(identifier, source, destination, family, service, spec, egress, ingress, expected,
                 tuple(consistent), ambiguous, decided_by, flow.forward, flow.backend,
                 far_end[1] if far_end is not None and far_end[1] is not ingress else None)


def _forwarded_only(destination, services):
    # type: (Endpoint, List[Tuple[str, Tuple[ServiceEntry, ...]]]) -> List[Tuple[str, Tuple[ServiceEntry, ...]]]
    """The ports a gateway forwards that no service of the policy already tries (https covers tcp/443)."""
    if destination.ruleset is None:
        return []
    tried = {spec.label for _name, entries in services for spec in (probe_spec(entries, 4), probe_spec(entries, 6)) if spec}
    forwarded = forwarded_services(destination.ruleset.ipv4) + forwarded_services(destination.ruleset.ipv6)
    found = []  # type: List[Tuple[str, Tuple[ServiceEntry, ...]]]
    for name, entries in forwarded:
        if name not in tried and name not in [known for known, _entries in found]:
            found.append((name, entries))
    return found


def build_model(hostvars, groups, hosts=None, hosts_per_group=2, sources_per_group=0):
    # type: (Mapping[str, Mapping[str, Any]], Mapping[str, Sequence[str]], Optional[Sequence[str]], int, int) -> Dict[str, Any]
    """Every sampled source x destination x service the policy mentions, with its expected outcome.

    Services are those any accept rule names (inbound or outbound), tried
    against every sampled destination, so what the policy does not allow is
    checked too (web1 -> db1 ssh, bastion1 -> db1 postgres). With
    sources_per_group, each destination is probed from that many hosts of
    each group (see sample_sources), not from every host.
    """
    fleet = Fleet(hostvars, groups, hosts)
    chosen = sample_hosts(fleet.groups, fleet.hosts, hosts_per_group)
    rules = fleet.all_rules(chosen)
    services = _service_order(rules, fleet.policy.services)
    host_endpoints = [fleet.host_endpoint(host) for host in chosen]
    external = external_sources(fleet, rules, [entry for host in chosen for entry in fleet.nat_entries(host)])
    senders = sample_sources(fleet.groups, chosen, sources_per_group)
    checks = []  # type: List[Check]
    pairs = 0
    every_service = list(services)
    for destination in host_endpoints:
        sources = [source for source in host_endpoints
                   if source.name != destination.name and (senders is None or source.name in senders[destination.name])]
        pairs += len(sources)
        forwarded = _forwarded_only(destination, services)
        every_service.extend(service for service in forwarded if service not in every_service)
        for service, entries in services + forwarded:
            for source in sources + external:
                for family in (4, 6):
                    if family not in source.addresses or family not in destination.addresses:
                        continue
                    spec = probe_spec(entries, family)
                    if spec is None:
                        continue
                    checks.append(judge_flow(source, destination, family, spec, "c%d" % len(checks), service, fleet.endpoint_at))
    model = model_to_dict(fleet, chosen, every_service, host_endpoints + external, checks)
    model["sampling"] = sampling_note(len(fleet.hosts), chosen, hosts_per_group, sources_per_group, pairs)
    return model


def verdict_dict(host, verdict):
    # type: (str, Optional[Verdict]) -> Optional[Dict[str, Any]]
    if verdict is None:
        return None
    return {
        "host": host,
        "chain": verdict.chain,
        "verdict": verdict.verdict,
        "rule_number": None if verdict.rule_index is None else verdict.rule_index + 1,
        "rule": verdict.rule,
        "policy_entry": policy_entry(host, verdict.comment),
        "comment": verdict.comment,
    }


def check_row(check):
    # type: (Check) -> Row
    """A judged flow as a row of the verification model, before anything is observed."""
    probe_from = None
    reason = check.spec.not_probed_reason
    if check.source.kind != HOST:
        reason = "no inventory host sends from %s" % check.source.name
    elif reason is None:
        probe_from = check.source.name
    return Row(
        id=check.identifier,
        source=check.source.name,
        source_kind=check.source.kind,
        source_groups=check.source.groups,
        source_address=check.source.addresses[check.family],
        destination=check.destination.name,
        destination_kind=check.destination.kind,
        destination_groups=check.destination.groups,
        destination_address=check.destination.addresses[check.family],
        family=check.family,
        service=check.service,
        protocol=check.spec.probe,
        port=check.spec.port,
        packet=check.spec.label,
        expected=check.expected,
        consistent=check.consistent,
        ambiguous=check.ambiguous,
        decided_by=check.decided_by,
        egress=verdict_dict(check.source.name, check.egress),
        ingress=verdict_dict(check.destination.name, check.ingress),
        probe_from=probe_from,
        not_probed_reason=None if probe_from else reason,
    )


def model_to_dict(fleet, chosen, services, sources, checks):
    # type: (Fleet, List[str], List[Tuple[str, Tuple[ServiceEntry, ...]]], List[Endpoint], List[Check]) -> Dict[str, Any]
    rows = [check_row(check) for check in checks]
    probes = {}  # type: Dict[str, List[Dict[str, Any]]]
    for row in rows:
        if row.probe_from:
            target = {"id": row.id, "address": row.destination_address, "protocol": row.protocol}
            if row.protocol != "icmp":
                target["port"] = row.port
            probes.setdefault(row.probe_from, []).append(target)
    group_names = sorted({group for host in chosen for group in fleet.groups_of(host)})
    warnings = []  # type: List[str]
    for host in chosen:
        warnings.extend(warning for warning in fleet.ruleset(host).warnings if warning not in warnings)
    # The model sees the whole inventory, so it can tell what no rule uses, which a batch of site.yml cannot.
    warnings.extend(fleet.compiler.unused_definition_warnings(fleet.all_hosts))
    return {
        "warnings": warnings,
        "hosts": chosen,
        "groups": group_names,
        "services": [name for name, entries in services],
        "sources": [source.name for source in sources],
        "checks": [row_to_dict(row) for row in rows],
        "probes": probes,
    }


def _observation_index(observations):
    # type: (Any) -> Dict[str, Mapping[str, Any]]
    """Probe results by check id, from registered probe results (one per host) or plain result lists."""
    index = {}  # type: Dict[str, Mapping[str, Any]]
    if isinstance(observations, Mapping):
        observations = [observations]
    for position, item in enumerate(observations or ()):
        if isinstance(item, Mapping) and "results" not in item and "id" in item:
            results = [item]
        elif isinstance(item, Mapping):
            results = item.get("results") or []
        elif isinstance(item, (list, tuple)):
            results = list(item)
        else:
            raise ValueError("observations[%d]: must be a registered probe result or a list of probe results" % position)
        for result in results:
            if not isinstance(result, Mapping) or "id" not in result or "state" not in result:
                raise ValueError("observations[%d]: a probe result needs 'id' and 'state'" % position)
            index[str(result["id"])] = result
    return index


def _model_rows(model):
    # type: (Any) -> Tuple[Tuple[str, ...], Tuple[str, ...], List[Row]]
    """The groups, services and checks of a model, validated."""
    if not isinstance(model, Mapping) or "checks" not in model or not isinstance(model["checks"], (list, tuple)):
        raise ValueError("the first argument must be the output of fleetwall.iptables.reachability_model")
    groups = tuple(str(group) for group in model.get("groups", ()))
    services = tuple(str(service) for service in model.get("services", ()))
    rows = [row_from_dict(check, "model.checks[%d]" % index, groups, services) for index, check in enumerate(model["checks"])]
    return groups, services, rows


def compare(model, observations, generated=None):
    # type: (Mapping[str, Any], Any, Optional[str]) -> Dict[str, Any]
    """The model's checks joined with what the probes observed: the verification."""
    groups, services, checks = _model_rows(model)
    index = _observation_index(observations)
    rows = []  # type: List[Row]
    for check in checks:
        result = index.get(check.id) if check.id is not None else None
        observed = None
        detail = check.not_probed_reason or ""
        if result is not None:
            observed = str(result["state"])
            detail = str(result.get("detail") or "")
        elif check.probe_from:
            detail = "no probe result from %s (host unreachable or skipped)" % check.probe_from
            observed = ERROR
        rows.append(check._replace(observed=observed, detail=detail, status=judge(check, observed)))
    summary = verification_summary(row.status for row in rows)
    return verification_to_dict(Verification(generated or "", summary, groups, services, tuple(rows), model.get("sampling")))
