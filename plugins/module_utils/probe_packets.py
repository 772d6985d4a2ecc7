# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ICMP and TCP packets as the probes build and read them, and ICMP errors as the kernel reports them.

Private to the fleetwall.iptables collection. Pure byte-level encoding and
decoding: echo requests, the ICMP messages a raw socket reads, the extended
errors of IP_RECVERR / IPV6_RECVERR, and TCP checksums. Standard library
only. Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import collections
import socket
import struct
from typing import Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_targets import same_address

# Linux constants the socket module does not export everywhere.
IP_RECVERR = 11
IPV6_RECVERR = 25
MSG_ERRQUEUE = 0x2000
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3

ICMP_ECHO_REQUEST = {4: 8, 6: 128}
ICMP_ECHO_REPLY = {4: 0, 6: 129}
# ICMP errors that quote the packet that caused them.
ICMP_ERROR_TYPES = {4: (3, 4, 11, 12), 6: (1, 2, 3, 4)}
PORT_UNREACHABLE = {4: (3, 3), 6: (1, 4)}
TOO_BIG = {4: (3, 4), 6: (2, None)}

ICMP_TYPE_NAMES = {
    4: {0: "echo reply", 3: "destination unreachable", 4: "source quench", 5: "redirect", 8: "echo request",
        11: "time exceeded", 12: "parameter problem"},
    6: {1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 4: "parameter problem",
        128: "echo request", 129: "echo reply"},
}
ICMP_CODE_NAMES = {
    (4, 3): {
        0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
        4: "fragmentation needed", 5: "source route failed", 6: "destination network unknown",
        7: "destination host unknown", 8: "source host isolated", 9: "network administratively prohibited",
        10: "host administratively prohibited", 11: "network unreachable for TOS", 12: "host unreachable for TOS",
        13: "administratively prohibited", 14: "host precedence violation", 15: "precedence cutoff in effect",
    },
    (4, 11): {0: "TTL exceeded in transit", 1: "fragment reassembly time exceeded"},
    (6, 1): {
        0: "no route to destination", 1: "administratively prohibited", 2: "beyond scope of source address",
        3: "address unreachable", 4: "port unreachable", 5: "source address failed ingress/egress policy",
        6: "reject route to destination", 7: "error in source routing header",
    },
    (6, 3): {0: "hop limit exceeded in transit", 1: "fragment reassembly time exceeded"},
}

# An ICMP error as the kernel reported it on a socket's error queue (or as read from a raw socket).
IcmpError = collections.namedtuple("IcmpError", "family errno type code sender")


def internet_checksum(data):
    # type: (bytes) -> int
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def build_echo_request(family, ident, sequence, payload):
    # type: (int, int, int, bytes) -> bytes
    """An ICMP (IPv4) or ICMPv6 echo request; the kernel fills in the ICMPv6 checksum."""
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST[family], 0, 0, ident, sequence)
    if family == 6:
        return header + payload
    checksum = internet_checksum(header + payload)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST[family], 0, checksum, ident, sequence) + payload


def _skip_ipv6_extensions(data, offset, next_header):
    # type: (bytes, int, int) -> Tuple[int, int]
    """Past hop-by-hop, routing, destination-options and fragment headers: (offset, upper protocol)."""
    while next_header in (0, 43, 44, 60) and len(data) >= offset + 8:
        if next_header == 44:
            length = 8
        else:
            length = (data[offset + 1] + 1) * 8
        next_header = data[offset]
        offset += length
    return offset, next_header


def parse_icmp(family, data, ident, sequence, target, token=b""):
    # type: (int, bytes, int, int, str, bytes) -> Optional[Tuple[str, int, int]]
    """What a packet read from a raw ICMP socket says about our echo request.

    IPv4 raw sockets deliver the IP header, IPv6 ones start at the ICMPv6
    header. Returns ("reply", type, code) for the echo reply to our request
    (identifier, sequence and, when it comes back whole, the payload token
    match), ("error", type, code) for an ICMP error quoting our request to
    target, None for anything else.
    """
    if family == 4:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        data = data[(data[0] & 0x0F) * 4:]
    if len(data) < 8:
        return None
    icmp_type, code = data[0], data[1]
    if icmp_type == ICMP_ECHO_REPLY[family]:
        got_ident, got_sequence = struct.unpack("!HH", data[4:8])
        if (got_ident, got_sequence) != (ident, sequence):
            return None
        if token and data[8:8 + len(token)] != token:
            return None
        return "reply", icmp_type, code
    if icmp_type not in ICMP_ERROR_TYPES[family]:
        return None
    inner = data[8:]
    if family == 4:
        if len(inner) < 20 or inner[0] >> 4 != 4 or inner[9] != 1:
            return None
        destination = socket.inet_ntop(socket.AF_INET, inner[16:20])
        quoted = inner[(inner[0] & 0x0F) * 4:]
    else:
        if len(inner) < 40 or inner[0] >> 4 != 6:
            return None
        destination = socket.inet_ntop(socket.AF_INET6, inner[24:40])
        offset, upper = _skip_ipv6_extensions(inner, 40, inner[6])
        if upper != 58:
            return None
        quoted = inner[offset:]
    if len(quoted) < 8 or quoted[0] != ICMP_ECHO_REQUEST[family]:
        return None
    if struct.unpack("!HH", quoted[4:8]) != (ident, sequence) or not same_address(destination, target):
        return None
    return "error", icmp_type, code


def describe_icmp(family, icmp_type, code):
    # type: (int, int, int) -> str
    """'ICMP destination unreachable code 13 (administratively prohibited)'."""
    prefix = "ICMP" if family == 4 else "ICMPv6"
    name = ICMP_TYPE_NAMES[family].get(icmp_type)
    if name is None:
        return "%s type %d code %d" % (prefix, icmp_type, code)
    meaning = ICMP_CODE_NAMES.get((family, icmp_type), {}).get(code)
    if meaning:
        return "%s %s code %d (%s)" % (prefix, name, code, meaning)
    return "%s %s code %d" % (prefix, name, code)


def parse_extended_error(level, kind, data):
    # type: (int, int, bytes) -> Optional[IcmpError]
    """The ICMP error in an IP_RECVERR / IPV6_RECVERR control message, or None.

    struct sock_extended_err (errno, origin, type, code, pad, info, data),
    then the offender's sockaddr_in or sockaddr_in6.
    """
    if (level, kind) not in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)) or len(data) < 16:
        return None
    number, origin, icmp_type, code = struct.unpack("=IBBB", data[:7])
    if origin not in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
        return None
    family = 4 if origin == SO_EE_ORIGIN_ICMP else 6
    offender = data[16:]
    sender = None
    if len(offender) >= 8 and struct.unpack("=H", offender[:2])[0] == socket.AF_INET:
        sender = socket.inet_ntop(socket.AF_INET, offender[4:8])
    elif len(offender) >= 24 and struct.unpack("=H", offender[:2])[0] == socket.AF_INET6:
        sender = socket.inet_ntop(socket.AF_INET6, offender[8:24])
    return IcmpError(family, number, icmp_type, code, sender)


def tcp_checksum(family, source, destination, segment):
    # type: (int, str, str, bytes) -> int
    """The TCP checksum of a segment (checksum field zero) between two addresses, over the IPv4 or IPv6 pseudo-header."""
    if family == 4:
        pseudo = socket.inet_aton(source) + socket.inet_aton(destination) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment))
    else:
        pseudo = (
            socket.inet_pton(socket.AF_INET6, source.split("%")[0])
            + socket.inet_pton(socket.AF_INET6, destination.split("%")[0])
            + struct.pack("!IxxxB", len(segment), socket.IPPROTO_TCP)
        )
    return internet_checksum(pseudo + segment)


def wrong_checksum(checksum):
    # type: (int) -> int
    """A checksum that never verifies where `checksum` would (one's complement: 0 and 0xFFFF are the same)."""
    return checksum ^ 0x5A5A
