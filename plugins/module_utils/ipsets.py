# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ipset address sets: their names, their sizes, the canonical text both sides of a
comparison are reduced to, and the ``ipset restore`` scripts that create, update and
destroy them.

Private to the fleetwall.iptables collection. Pure functions, no I/O: the controller
renders sets with it and the ``ruleset`` module compares and applies them on the
target host, so it must stay compatible with Python 3.6 and the standard library.

Two facts about ipset shape this file. ``ipset save`` lists members in hash order and
adds per-boot noise (``initval``, ``bucketsize``, a ``hashsize`` the kernel grows by
itself), so a comparison sorts members and keeps only what fleetwall decides: type,
family, ``maxelem`` and the members. And ``ipset swap`` exchanges two sets of the same
type and family atomically, which is how a set that rules already reference is
updated without a moment in which it is missing or half filled (set_plan.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import ipaddress
import re
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

SET_TYPE = "hash:net"
NAME_PREFIX = "fw"
# ipset names hold at most 31 characters; fleetwall's stay at 26 so that the
# temporary twin used for an atomic update (NAME + TEMPORARY_SUFFIX) fits too.
MAX_NAME_LENGTH = 26
TEMPORARY_SUFFIX = "-new"
DEFAULT_MAXELEM = 65536
MIN_HASHSIZE = 64
# hash:net keeps up to `bucketsize` (12 by default) entries per bucket before it
# grows the table; a load of about 4 per bucket leaves room without a resize.
ENTRIES_PER_BUCKET = 4
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_.:+-]")
# group:web and host:db1 are g:web and h:db1 in set names: ipset allows 31 characters.
_ABBREVIATED = re.compile(r"^(!?)(group|host):")
_FAMILIES = {4: "inet", 6: "inet6"}
_FAMILY_NUMBERS = {"inet": 4, "inet6": 6}


class AddressSet(NamedTuple):
    """One ``hash:net`` set as fleetwall owns it."""

    name: str
    family: int  # 4 or 6
    members: Tuple[str, ...]  # canonical member text, sorted by address
    exceptions: Tuple[str, ...] = ()  # ``nomatch`` members, sorted by address
    maxelem: int = DEFAULT_MAXELEM
    hashsize: int = MIN_HASHSIZE


class SetTextError(ValueError):
    """``ipset save`` text that fleetwall cannot read."""


def _next_power_of_two(number):
    # type: (int) -> int
    power = 1
    while power < number:
        power *= 2
    return power


def sizing(count):
    # type: (int) -> Tuple[int, int]
    """The ``hashsize`` and ``maxelem`` for a set of ``count`` entries.

    ``maxelem`` keeps ipset's default of 65,536 unless the set is larger, then
    doubles up from it, so a 100,000-address blocklist loads; ``hashsize`` is sized
    for the membership so that loading does not resize the table step by step.
    """
    maxelem = max(DEFAULT_MAXELEM, _next_power_of_two(count))
    hashsize = max(MIN_HASHSIZE, _next_power_of_two(-(-count // ENTRIES_PER_BUCKET)))
    return hashsize, maxelem


def set_name(family, references):
    # type: (int, Sequence[str]) -> str
    """The set's name: deterministic, derived from what the policy refers to, never
    from the membership, so a member change stays a set update and no rule changes.

    ``fw4-g:web`` for ``group:web`` (``h:`` for ``host:``) when the references fit;
    otherwise a readable head and a hash of the references, e.g.
    ``fw6-office+g:bastion+g:m-3f9a1c``.
    """
    if family not in _FAMILIES:
        raise ValueError("family must be 4 or 6, got %r" % (family,))
    if not references:
        raise ValueError("an address set needs at least one reference")
    prefix = "%s%d-" % (NAME_PREFIX, family)
    joined = "+".join(references)
    short = "+".join(_ABBREVIATED.sub(lambda match: match.group(1) + match.group(2)[0] + ":", reference) for reference in references)
    readable = _NAME_SAFE.sub("_", short)
    if readable == short and len(prefix) + len(readable) <= MAX_NAME_LENGTH:
        return prefix + readable
    digest = hashlib.sha256(joined.encode("utf-8")).hexdigest()[:6]
    head = readable[: MAX_NAME_LENGTH - len(prefix) - len(digest) - 1]
    return "%s%s-%s" % (prefix, head, digest)


def canonical_member(text, family):
    # type: (str, int) -> str
    """A member as ``ipset save`` prints it: a host without prefix length, a network
    with it, addresses in their compressed form."""
    network = ipaddress.ip_network(text, strict=True)
    if network.version != family:
        raise ValueError("%s is not an IPv%d network" % (text, family))
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _member_key(text):
    # type: (str) -> Tuple[int, int]
    network = ipaddress.ip_network(text)
    return int(network.network_address), network.prefixlen


def _sorted_members(members, family):
    # type: (Iterable[str], int) -> Tuple[str, ...]
    canonical = set(canonical_member(member, family) for member in members)
    return tuple(sorted(canonical, key=_member_key))


def _trusted_members(cidrs, family):
    # type: (Sequence[str], int) -> Tuple[str, ...]
    """Members from CIDRs that are canonical, sorted and disjoint already (the
    compiler's merged networks): only the host prefix length is dropped."""
    host_suffix = "/32" if family == 4 else "/128"
    return tuple(cidr[: -len(host_suffix)] if cidr.endswith(host_suffix) else cidr for cidr in cidrs)


def address_set(name, family, members, exceptions=(), merged=False):
    # type: (str, int, Iterable[str], Iterable[str], bool) -> AddressSet
    """An AddressSet with canonical, sorted members and sizes fitted to them.
    ``merged=True`` trusts members that are canonical, sorted, disjoint CIDRs."""
    if merged:
        canonical_members = _trusted_members(list(members), family)
    else:
        canonical_members = _sorted_members(members, family)
    canonical_exceptions = _sorted_members(exceptions, family)
    hashsize, maxelem = sizing(len(canonical_members) + len(canonical_exceptions))
    return AddressSet(name, family, canonical_members, canonical_exceptions, maxelem, hashsize)


def create_line(address_set_, name=None):
    # type: (AddressSet, Optional[str]) -> str
    return "create %s %s family %s hashsize %d maxelem %d" % (
        name or address_set_.name,
        SET_TYPE,
        _FAMILIES[address_set_.family],
        address_set_.hashsize,
        address_set_.maxelem,
    )


def member_lines(address_set_, name=None):
    # type: (AddressSet, Optional[str]) -> List[str]
    target = name or address_set_.name
    lines = ["add %s %s" % (target, member) for member in address_set_.members]
    lines.extend("add %s %s nomatch" % (target, member) for member in address_set_.exceptions)
    return lines


def canonical_text(sets):
    # type: (Iterable[AddressSet]) -> str
    """What a comparison sees of some sets: sorted by name, without ``hashsize``
    (the kernel grows it by itself) and without the per-boot noise of ``ipset save``.
    Two equal texts mean the kernel's sets already are what the policy says."""
    lines = []  # type: List[str]
    for address_set_ in sorted(sets, key=lambda item: item.name):
        lines.append(
            "create %s %s family %s maxelem %d"
            % (address_set_.name, SET_TYPE, _FAMILIES[address_set_.family], address_set_.maxelem)
        )
        lines.extend(member_lines(address_set_))
    return "".join(line + "\n" for line in lines)


def _parse_create(fields, number):
    # type: (List[str], int) -> Tuple[str, int, int]
    if len(fields) < 3 or fields[2] != SET_TYPE:
        raise SetTextError("line %d: fleetwall sets are %s, got %r" % (number, SET_TYPE, " ".join(fields)))
    options = fields[3:]
    family, maxelem = 4, DEFAULT_MAXELEM
    for index, option in enumerate(options[:-1]):
        if option == "family":
            family = _FAMILY_NUMBERS.get(options[index + 1], 0)
        elif option == "maxelem":
            maxelem = int(options[index + 1])
    if family not in _FAMILIES:
        raise SetTextError("line %d: unknown family in %r" % (number, " ".join(fields)))
    return fields[1], family, maxelem


def is_fleetwall_set(name):
    # type: (str) -> bool
    """Whether set_name() could have made this name (other software's sets never are)."""
    return name.startswith(("%s4-" % NAME_PREFIX, "%s6-" % NAME_PREFIX))


def parse_save(text, owned=is_fleetwall_set):
    # type: (str, Callable[[str], bool]) -> Dict[str, AddressSet]
    """The sets in ``ipset save`` text whose names ``owned`` accepts (fleetwall's by
    default); every other set, fail2ban's for instance, is not looked at."""
    headers = {}  # type: Dict[str, Tuple[int, int]]
    members = {}  # type: Dict[str, List[str]]
    exceptions = {}  # type: Dict[str, List[str]]
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if len(fields) < 2 or not owned(fields[1]):
            continue
        if fields[0] == "create":
            name, family, maxelem = _parse_create(fields, number)
            headers[name] = (family, maxelem)
            members[name], exceptions[name] = [], []
        elif fields[0] == "add" and fields[1] in headers and len(fields) >= 3:
            target = exceptions if fields[3:4] == ["nomatch"] else members
            target[fields[1]].append(fields[2])
        else:
            raise SetTextError("line %d: cannot read %r" % (number, line))
    sets = {}
    for name, (family, maxelem) in headers.items():
        found = address_set(name, family, members[name], exceptions[name])
        sets[name] = found._replace(maxelem=maxelem)
    return sets


def member_changes(before, after):
    # type: (Optional[AddressSet], Optional[AddressSet]) -> Dict[str, List[str]]
    """Members (exceptions as ``MEMBER nomatch``) that an update adds and removes."""

    def entries(address_set_):
        # type: (Optional[AddressSet]) -> List[str]
        if address_set_ is None:
            return []
        return list(address_set_.members) + ["%s nomatch" % item for item in address_set_.exceptions]

    old, new = entries(before), entries(after)
    old_set, new_set = set(old), set(new)
    return {"added": [item for item in new if item not in old_set], "removed": [item for item in old if item not in new_set]}


class SetIndex:
    """Membership of a ``hash:net`` set as the kernel decides it: the most specific
    entry that contains the address wins, so an address inside a ``nomatch`` entry
    is not a member even though a wider member network contains it."""

    def __init__(self, address_set_):
        # type: (AddressSet) -> None
        self.family = address_set_.family
        self._bits = 32 if address_set_.family == 4 else 128
        by_length = {}  # type: Dict[int, Dict[int, bool]]
        for entries, is_member in ((address_set_.exceptions, False), (address_set_.members, True)):
            for entry in entries:
                network = ipaddress.ip_network(entry)
                shift = self._bits - network.prefixlen
                by_length.setdefault(network.prefixlen, {})[int(network.network_address) >> shift] = is_member
        self._lengths = sorted(by_length.items(), reverse=True)

    def __contains__(self, address):
        # type: (object) -> bool
        if getattr(address, "version", None) != self.family:
            return False
        number = int(address)  # type: ignore[call-overload]
        for length, entries in self._lengths:
            found = entries.get(number >> (self._bits - length))
            if found is not None:
                return found
        return False
