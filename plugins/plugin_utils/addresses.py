# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Address references and their resolution to per-family CIDR lists.

Private to the fleetwall.iptables collection. Address math is netaddr's;
host addresses come from a JMESPath query over each host's variables. Both
libraries are controller-side requirements, imported behind a guard so a
missing one gives a clear message only when it is needed. Controller-side only (plugin_utils): the
filters import it; nothing on a target host does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
import socket
import traceback
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError, type_name
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import SpecError

try:
    import netaddr
except ImportError:  # pragma: no cover - exercised only without netaddr
    netaddr = None
    NETADDR_IMPORT_ERROR = traceback.format_exc()  # type: Optional[str]
else:
    NETADDR_IMPORT_ERROR = None

try:
    import jmespath
except ImportError:  # pragma: no cover - exercised only without jmespath
    jmespath = None
    JMESPATH_IMPORT_ERROR = traceback.format_exc()  # type: Optional[str]
else:
    JMESPATH_IMPORT_ERROR = None

# Explicit addresses win; otherwise the connection address and the default
# IPv4 and IPv6 addresses from gathered facts.
DEFAULT_ADDRESS_QUERY = (
    "fleetwall_host_addresses || [ansible_host || inventory_hostname, "
    "ansible_default_ipv4.address, ansible_default_ipv6.address]"
)


class MissingLibraryError(RuntimeError):
    pass


def require_libraries():
    # type: () -> None
    if netaddr is None:
        raise MissingLibraryError(
            "fleetwall.iptables needs the Python library netaddr on the controller: pip install netaddr"
        )
    if jmespath is None:
        raise MissingLibraryError(
            "fleetwall.iptables needs the Python library jmespath on the controller: pip install jmespath"
        )


class AddressRef(NamedTuple):
    """A validated item of a from/to list or an address set."""

    kind: str  # "network", "set", "group", "host" or "any"
    value: str  # canonical CIDR for "network"; a name otherwise
    negated: bool = False

    def label(self):
        # type: () -> str
        text = {"group": "group:", "host": "host:"}.get(self.kind, "") + self.value
        return ("!" if self.negated else "") + text


def parse_network(text):
    # type: (str) -> str
    """A literal address or CIDR -> canonical CIDR; SpecError if malformed."""
    require_libraries()
    if "%" in text:
        raise SpecError(
            "%r has a zone index (%%%s); iptables matches addresses without one: "
            "leave it out and match the link with an interface" % (text, text.split("%", 1)[1].split("/", 1)[0])
        )
    address_text, slash, prefix_text = text.partition("/")
    try:
        address = netaddr.IPAddress(address_text)  # rejects shorthand such as "10/8"
        if slash and not re.match(r"^[0-9]+$", prefix_text):
            raise ValueError(text)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise SpecError("invalid IP address or CIDR %r" % (text,))
    width = 32 if address.version == 4 else 128
    if slash and int(prefix_text) > width:
        raise SpecError(
            "prefix length /%s in %r is too long for IPv%d (at most /%d)" % (prefix_text, text, address.version, width)
        )
    network = netaddr.IPNetwork("%s/%s" % (address, prefix_text if slash else width))
    if network.ip != network.network:
        raise SpecError(
            "%s has host bits set; did you mean %s?" % (text, network.cidr)
        )
    return str(network.cidr)


def included_sets_in_order(sets, roots, on_loop=None):
    # type: (Mapping[str, Sequence[AddressRef]], Sequence[str], Optional[Callable[[List[str]], None]]) -> List[str]
    """The address sets ``roots`` include (themselves too), each after every set it includes.

    Depth first without recursion (chains of sets may be thousands long), each
    set visited once (so sets that include each other layer after layer cost
    linear time). ``on_loop`` receives each loop found, e.g. [a, b, a]; a set
    that is not defined includes nothing.
    """
    order = []  # type: List[str]
    state = {}  # type: Dict[str, bool]  # False: being visited; True: done
    for root in roots:
        if root in state or root not in sets:
            continue
        state[root] = False
        stack = [(root, _included_sets(sets, root))]
        while stack:
            name, children = stack[-1]
            for child in children:
                if state.get(child) is False:
                    if on_loop is not None:
                        trail = [entry[0] for entry in stack]
                        on_loop(trail[trail.index(child):] + [child])
                elif child not in state and child in sets:
                    state[child] = False
                    stack.append((child, _included_sets(sets, child)))
                    break
            else:
                stack.pop()
                state[name] = True
                order.append(name)
    return order


def _included_sets(sets, name):
    # type: (Mapping[str, Sequence[AddressRef]], str) -> Iterator[str]
    return iter([ref.value for ref in sets.get(name, ()) if ref.kind == "set"])


def ipv4_mapped_warning(cidr):
    # type: (str) -> Optional[str]
    """Why a canonical CIDR of IPv4-mapped IPv6 addresses (::ffff:0:0/96) never matches, or None.

    Such addresses stand for IPv4 peers inside one host's sockets; packets
    between hosts carry the IPv4 address in an IPv4 header instead."""
    if not cidr.startswith("::ffff:"):
        return None
    network = netaddr.IPNetwork(cidr)
    if network.prefixlen < 96 or network not in netaddr.IPNetwork("::ffff:0:0/96"):
        return None
    ipv4 = netaddr.IPNetwork("%s/%d" % (netaddr.IPAddress(network.first & 0xFFFFFFFF, 4), network.prefixlen - 96))
    return (
        "%s is IPv4-mapped IPv6, which no packet on the wire carries, so it never matches; "
        "IPv4 traffic is matched by %s" % (cidr, ipv4.cidr)
    )


class FamilyNetworks(NamedTuple):
    """Resolved addresses: canonical CIDRs per family, merged and sorted."""

    ipv4: Tuple[str, ...]
    ipv6: Tuple[str, ...]

    def family(self, family):
        # type: (int) -> Tuple[str, ...]
        return self.ipv4 if family == 4 else self.ipv6


def network_intervals(cidrs):
    # type: (Sequence[str]) -> Tuple[Tuple[int, int], ...]
    """Canonical CIDRs (as FamilyNetworks holds them) -> sorted, merged (first, last) address ranges as integers.

    Parsed with the socket module: netaddr takes several times longer, and
    these are CIDRs netaddr has written already."""
    ranges = []  # type: List[Tuple[int, int]]
    for cidr in cidrs:
        address, _slash, prefix = cidr.partition("/")
        if ":" in address:
            first, width = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big"), 128
        else:
            first, width = int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big"), 32
        ranges.append((first, first + (1 << (width - int(prefix or width))) - 1))
    merged = []  # type: List[Tuple[int, int]]
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)


def intervals_contain(outer, inner):
    # type: (Sequence[Tuple[int, int]], Sequence[Tuple[int, int]]) -> bool
    """Whether the merged ranges ``outer`` (from network_intervals) hold every address of ``inner``."""
    position = 0
    for first, last in inner:
        while position < len(outer) and outer[position][1] < first:
            position += 1
        if position == len(outer) or outer[position][0] > first or outer[position][1] < last:
            return False
    return True


def _as_strings(value):
    # type: (Any) -> List[Any]
    """A query result, nested lists flattened (without recursion: results may nest thousands deep)."""
    result = []  # type: List[Any]
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, (list, tuple)):
            pending.extend(reversed(item))
        elif item is not None:
            result.append(item)
    return result


def _check_explicit_addresses(host, value):
    # type: (str, Any) -> None
    """fleetwall_host_addresses is the operator's word: a typo in it is an error, not skipped."""
    if value is None:
        return
    path = "hostvars['%s'].fleetwall_host_addresses" % host
    if isinstance(value, str):
        items = [(path, value)]
    elif isinstance(value, (list, tuple)):
        items = [("%s[%d]" % (path, index), item) for index, item in enumerate(value)]
    else:
        raise PolicyError(["%s: must be an IP address or a list of them, got %s" % (path, type_name(value))])
    problems = []  # type: List[str]
    for item_path, item in items:
        try:
            if not isinstance(item, str):
                raise TypeError(item)
            netaddr.IPAddress(item.strip())
        except (netaddr.AddrFormatError, ValueError, TypeError):
            problems.append("%s: invalid IP address %r" % (item_path, item))
    if problems:
        raise PolicyError(problems)


class HostAddresses:
    """Finds each host's IP addresses once, with a JMESPath query over its vars."""

    def __init__(self, hostvars):
        # type: (Mapping[str, Mapping[str, Any]]) -> None
        require_libraries()
        self._hostvars = hostvars
        self._cache = {}  # type: Dict[str, List[Any]]
        self._queries = {}  # type: Dict[str, Any]

    def _compiled(self, query, host):
        # type: (Any, str) -> Any
        if not isinstance(query, str) or not query.strip():
            raise PolicyError(["hostvars['%s'].fleetwall_address_query: must be a JMESPath expression string" % host])
        compiled = self._queries.get(query)
        if compiled is None:
            try:
                compiled = jmespath.compile(query)
            except jmespath.exceptions.ParseError as exc:
                raise PolicyError(
                    ["hostvars['%s'].fleetwall_address_query: invalid JMESPath expression: %s" % (host, exc)]
                )
            except RecursionError:
                raise PolicyError(
                    ["hostvars['%s'].fleetwall_address_query: the expression nests too deeply to parse" % host]
                )
            self._queries[query] = compiled
        return compiled

    def of(self, host, needed_by):
        # type: (str, str) -> List[Any]
        """netaddr.IPAddress objects of a host; PolicyError if it has none."""
        cached = self._cache.get(host)
        if cached is not None:
            return cached
        if host not in self._hostvars:
            raise PolicyError(["%s: host '%s' is in the groups but not in hostvars" % (needed_by, host)])
        host_vars = self._hostvars[host]
        _check_explicit_addresses(host, host_vars.get("fleetwall_host_addresses"))
        query = host_vars.get("fleetwall_address_query") or DEFAULT_ADDRESS_QUERY
        try:
            found = _as_strings(self._compiled(query, host).search(host_vars))
        except jmespath.exceptions.JMESPathError as exc:
            raise PolicyError(["hostvars['%s'].fleetwall_address_query: the query fails on this host: %s" % (host, exc)])
        except RecursionError:
            raise PolicyError(
                ["hostvars['%s'].fleetwall_address_query: the query nests too deeply to evaluate on this host" % host]
            )
        addresses = []
        for value in found:
            try:
                address = netaddr.IPAddress(str(value).strip())
            except (netaddr.AddrFormatError, ValueError, TypeError):
                continue  # e.g. ansible_host is a DNS name: fine if facts give an address
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise PolicyError(
                [
                    "%s: host '%s' has no IP address: fleetwall_address_query found %s. Set "
                    "fleetwall_host_addresses for it, gather its facts, or give it an IP ansible_host"
                    % (needed_by, host, ", ".join(repr(str(value)) for value in found) or "nothing")
                ]
            )
        self._cache[host] = addresses
        return addresses

    def found_family(self, family):
        # type: (int) -> bool
        """Whether a host looked up so far has an address of this family (4 or 6)."""
        return any(address.version == family for addresses in self._cache.values() for address in addresses)


class AddressResolver:
    """Resolves from/to lists to merged per-family CIDRs, caching every set and group."""

    def __init__(self, address_sets, groups, host_addresses):
        # type: (Mapping[str, Sequence[AddressRef]], Mapping[str, Sequence[str]], HostAddresses) -> None
        require_libraries()
        self._sets = address_sets
        self._groups = groups
        self._hosts = host_addresses
        self._cache = {}  # type: Dict[Tuple[str, str], Any]

    def _ipset(self, ref, path):
        # type: (AddressRef, str) -> Any
        key = (ref.kind, ref.value)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if ref.kind == "network":
            result = netaddr.IPSet([ref.value])
        elif ref.kind == "any":
            result = netaddr.IPSet(["0.0.0.0/0", "::/0"])
        elif ref.kind == "host":
            result = netaddr.IPSet(self._hosts.of(ref.value, path))
        elif ref.kind == "group":
            members = []  # type: List[Any]
            for host in self._groups.get(ref.value, ()):
                members.extend(self._hosts.of(host, "%s (group '%s')" % (path, ref.value)))
            result = netaddr.IPSet(members)
        else:
            # Included sets first, so that a long chain of sets is resolved without recursion.
            for name in included_sets_in_order(self._sets, [ref.value]):
                if ("set", name) not in self._cache:
                    self._cache[("set", name)] = self._combine(self._sets[name], "fleetwall_addresses.%s" % name)
            return self._cache[key]
        self._cache[key] = result
        return result

    def _combine(self, refs, path):
        # type: (Sequence[AddressRef], str) -> Any
        """One IPSet built from every CIDR at once: adding items one by one costs quadratic time on long lists."""
        parts = ([], [])  # type: Tuple[List[Any], List[Any]]
        for ref in refs:
            part = parts[ref.negated]
            if ref.kind == "network":
                part.append(ref.value)
            else:
                part.extend(self._ipset(ref, path).iter_cidrs())
        included = netaddr.IPSet(parts[0])
        return included - netaddr.IPSet(parts[1]) if parts[1] else included

    def resolve(self, refs, path):
        # type: (Sequence[AddressRef], str) -> FamilyNetworks
        if len(refs) == 1 and not refs[0].negated:
            ipset = self._ipset(refs[0], path)
        else:
            ipset = self._combine(refs, path)
        ipv4 = []  # type: List[str]
        ipv6 = []  # type: List[str]
        for cidr in ipset.iter_cidrs():
            (ipv4 if cidr.version == 4 else ipv6).append(str(cidr))
        return FamilyNetworks(tuple(ipv4), tuple(ipv6))


ResolveFunction = Callable[[Sequence[AddressRef], str], FamilyNetworks]
