# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the probe module is asked to probe: its targets and limits, validated, and addresses compared.

Private to the fleetwall.iptables collection. The argument spec of the probe
module checks the types, keys and choices of each target; what a spec cannot
say (an address literal, a port that fits the protocol) is checked here, each
problem named by its item. Standard library only. Module code: keep it
compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import collections
import ipaddress
import socket
from typing import Any, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import type_name

MAX_PARALLEL = 1024
MAX_TIMEOUT = 3600.0
DEFAULT_RETRY_INTERVAL = 1.0
MAX_RETRY_INTERVAL = 60.0

Target = collections.namedtuple("Target", "index label address protocol port family sockaddr")


def _address_problem(address):
    # type: (Any) -> Tuple[Optional[int], Optional[str]]
    """(family, None) for an IPv4 or IPv6 literal, else (None, why)."""
    if not isinstance(address, str) or not address:
        return None, "must be an IPv4 or IPv6 address, got %s" % type_name(address)
    literal, zone = address, None
    if "%" in address:
        literal, zone = address.split("%", 1)
    try:
        parsed = ipaddress.ip_address(literal)
    except ValueError:
        return None, "%r is not an IPv4 or IPv6 address" % address
    if zone is not None and (parsed.version != 6 or not zone):
        return None, "%r: only an IPv6 address can carry a %%zone" % address
    return parsed.version, None


def _sockaddr(family, address, port):
    # type: (int, str, int) -> tuple
    found = socket.getaddrinfo(address, port, socket.AF_INET6 if family == 6 else socket.AF_INET, 0, 0, socket.AI_NUMERICHOST)
    return found[0][4]


def _port(value, protocol):
    # type: (Any, str) -> Tuple[Optional[int], Optional[str]]
    if protocol == "icmp":
        if value is None:
            return None, None
        return None, "must not be set for icmp (got %r)" % (value,)
    if value is None:
        return None, "is required for %s" % protocol
    # The argument spec made it an integer; a boolean passes for one there.
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return None, "must be 1-65535 for %s, got %r" % (protocol, value)
    return value, None


def validate_targets(targets):
    # type: (Sequence[Mapping[str, Any]]) -> Tuple[List[Target], List[str]]
    """The targets (as the argument spec checked them) as Target tuples, and every problem found, each named by its item."""
    problems = []  # type: List[str]
    valid = []  # type: List[Target]
    for index, item in enumerate(targets):
        path = "targets[%d]" % index
        before = len(problems)
        family, problem = _address_problem(item.get("address"))
        if problem:
            problems.append("%s.address: %s" % (path, problem))
        protocol = item.get("protocol")
        port, problem = _port(item.get("port"), protocol)
        if problem:
            problems.append("%s.port: %s" % (path, problem))
        if len(problems) > before or family is None:
            continue
        try:
            sockaddr = _sockaddr(family, item["address"], port or 0)
        except (socket.gaierror, OSError, UnicodeError) as exc:
            problems.append("%s.address: %r cannot be used: %s" % (path, item["address"], exc))
            continue
        label = item.get("id")
        valid.append(Target(index, None if label is None else str(label), item["address"], protocol, port, family, sockaddr))
    return valid, problems


def option_problems(timeout, parallel, retry_interval):
    # type: (float, int, float) -> List[str]
    """What is wrong with the probe module's other options (their types the argument spec checked)."""
    problems = []  # type: List[str]
    if not 0 < timeout <= MAX_TIMEOUT:
        problems.append("timeout: must be more than 0 and at most %d seconds, got %s" % (MAX_TIMEOUT, timeout))
    if not 1 <= parallel <= MAX_PARALLEL:
        problems.append("parallel: must be 1-%d, got %d" % (MAX_PARALLEL, parallel))
    if not 0 < retry_interval <= MAX_RETRY_INTERVAL:
        problems.append("retry_interval: must be more than 0 and at most %d seconds, got %s" % (MAX_RETRY_INTERVAL, retry_interval))
    return problems


def same_address(left, right):
    # type: (Optional[str], Optional[str]) -> bool
    if not left or not right:
        return False
    try:
        return ipaddress.ip_address(left.split("%")[0]) == ipaddress.ip_address(right.split("%")[0])
    except ValueError:
        return False


def address_key(address):
    # type: (str) -> str
    """One spelling per address (no zone), to group and compare by."""
    literal = address.split("%")[0]
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        return literal
