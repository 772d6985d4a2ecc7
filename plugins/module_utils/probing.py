# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probing addresses with TCP, UDP and ICMP echo, and classifying what came back.

Private to the fleetwall.iptables collection; the engine of the probe module.
Linux socket semantics throughout: errors come back as errno values and, with
IP_RECVERR / IPV6_RECVERR on, as the ICMP message itself on the socket's error
queue, which tells who sent it and which type and code it had. Standard
library only. Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import collections
import errno
import ipaddress
import os
import random
import resource
import select
import socket
import struct
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import did_you_mean, type_name

OPEN = "open"
CLOSED = "closed"
FILTERED = "filtered"
REJECTED = "rejected"
OPEN_FILTERED = "open|filtered"
ERROR = "error"
STATES = (OPEN, CLOSED, FILTERED, REJECTED, OPEN_FILTERED, ERROR)

PROTOCOLS = ("tcp", "udp", "icmp")
TARGET_KEYS = ("address", "protocol", "port", "id")
MAX_PARALLEL = 1024
MAX_TIMEOUT = 3600.0
FILES_PER_PROBE = 3  # a TCP probe's socket, and the port holder and raw socket of its SYN check

UDP_PAYLOAD = b"fleetwall probe\n"

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

CLOSED_ERRNOS = frozenset([errno.ECONNREFUSED])
REJECTED_ERRNOS = frozenset(
    number
    for number in (
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EACCES,
        errno.EHOSTDOWN,
        getattr(errno, "ENONET", None),
        errno.ENOPROTOOPT,
        errno.EPROTO,
    )
    if number is not None
)

Target = collections.namedtuple("Target", "index label address protocol port family sockaddr")
# An ICMP error as the kernel reported it on a socket's error queue (or as read from a raw socket).
IcmpError = collections.namedtuple("IcmpError", "family errno type code sender")
# silent: the state comes from hearing nothing before the timeout (which an ICMP rate limit can also cause).
# icmp_from: the sender of the ICMP error the state comes from, when another host sent one.
Outcome = collections.namedtuple("Outcome", "state detail silent icmp_from")
Outcome.__new__.__defaults__ = (False, None)  # Python 3.6 has no namedtuple(defaults=...)
# One probe of one target: its outcome, which attempt it was, and (time.monotonic()) when it started, when its
# packet had certainly been handed to the kernel, and when it ended.
Attempt = collections.namedtuple("Attempt", "target number outcome sent left ended")


class ProbeSetupError(Exception):
    """A probe could not even start (no raw sockets, ...): state error."""


# ---------------------------------------------------------------- validation


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
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= 65535:
        return None, "must be 1-65535 for %s, got %r" % (protocol, value)
    return number, None


def validate_targets(targets):
    # type: (Any) -> Tuple[List[Target], List[str]]
    """The targets as Target tuples, and every problem found, each named by its item."""
    problems = []  # type: List[str]
    valid = []  # type: List[Target]
    if not isinstance(targets, (list, tuple)):
        return [], ["targets: must be a list, got %s" % type_name(targets)]
    for index, item in enumerate(targets):
        path = "targets[%d]" % index
        if not isinstance(item, Mapping):
            problems.append("%s: must be a mapping with address, protocol and port, got %s" % (path, type_name(item)))
            continue
        before = len(problems)
        for key in sorted(str(key) for key in item if key not in TARGET_KEYS):
            problems.append("%s: unknown key %r%s; allowed: %s" % (path, key, did_you_mean(key, TARGET_KEYS), ", ".join(TARGET_KEYS)))
        family, problem = _address_problem(item.get("address"))
        if problem:
            problems.append("%s.address: %s" % (path, problem))
        protocol = item.get("protocol")
        if isinstance(protocol, str) and protocol.lower() in PROTOCOLS:
            protocol = protocol.lower()
            port, problem = _port(item.get("port"), protocol)
            if problem:
                problems.append("%s.port: %s" % (path, problem))
        else:
            port = None
            shown = "missing" if protocol is None else "%r" % (protocol,)
            problems.append("%s.protocol: must be one of %s, got %s" % (path, ", ".join(PROTOCOLS), shown))
        label = item.get("id")
        if label is not None and not isinstance(label, str):
            if isinstance(label, (int, float)) and not isinstance(label, bool):
                label = str(label)
            else:
                problems.append("%s.id: must be a string, got %s" % (path, type_name(label)))
        if len(problems) > before or family is None:
            continue
        try:
            sockaddr = _sockaddr(family, item["address"], port or 0)
        except (socket.gaierror, OSError, UnicodeError) as exc:
            problems.append("%s.address: %r cannot be used: %s" % (path, item["address"], exc))
            continue
        valid.append(Target(index, label, item["address"], protocol, port, family, sockaddr))
    return valid, problems


# ---------------------------------------------------------------- ICMP packets


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


# ---------------------------------------------------------------- classification


def same_address(left, right):
    # type: (Optional[str], Optional[str]) -> bool
    if not left or not right:
        return False
    try:
        return ipaddress.ip_address(left.split("%")[0]) == ipaddress.ip_address(right.split("%")[0])
    except ValueError:
        return False


def errno_text(number):
    # type: (int) -> str
    name = errno.errorcode.get(number, str(number))
    return "%s (%s)" % (os.strerror(number).lower(), name)


def classify_errno(number):
    # type: (int) -> Outcome
    """The state an error from connect/send/recv stands for, by errno alone."""
    if number in CLOSED_ERRNOS:
        return Outcome(CLOSED, "connection refused")
    if number in REJECTED_ERRNOS:
        return Outcome(REJECTED, errno_text(number))
    if number == errno.EPERM:
        return Outcome(FILTERED, own_output_drop_text())
    if number == errno.ETIMEDOUT:
        return Outcome(FILTERED, "no answer (%s)" % errno_text(number), True)
    return Outcome(ERROR, errno_text(number))


def own_output_drop_text(how="sending failed with EPERM"):
    # type: (str) -> str
    return "dropped by this host's own output rules (%s)" % how


def classify_icmp_error(error, target, source, protocol="tcp"):
    # type: (IcmpError, str, Optional[str], str) -> Outcome
    """The state an ICMP error about our probe stands for.

    For TCP and UDP, port unreachable from anyone but this host itself means
    the probe got there and nothing listens: closed. Any other destination
    unreachable, time exceeded or parameter problem, and any error about an
    ICMP echo request, means something on the way refused it: rejected. An error this host sent itself about a probe to another address
    is its own output rules' REJECT (or a next hop that did not answer).
    """
    text = describe_icmp(error.family, error.type, error.code)
    own = same_address(error.sender, source) and not same_address(error.sender, target)
    if own:
        return Outcome(
            REJECTED,
            "%s sent by this host itself (%s): its own output rules rejected the probe, or it could not reach "
            "the next hop" % (text, error.sender),
        )
    sender = " from %s" % error.sender if error.sender else ""
    too_big_type, too_big_code = TOO_BIG[error.family]
    if error.type == too_big_type and too_big_code in (None, error.code):
        return Outcome(ERROR, "%s%s" % (text, sender), False, error.sender)
    if protocol != "icmp" and (error.type, error.code) == PORT_UNREACHABLE[error.family]:
        return Outcome(CLOSED, "%s%s" % (text, sender), False, error.sender)
    return Outcome(REJECTED, "%s%s" % (text, sender), False, error.sender)


def no_answer_text(timeout):
    # type: (float) -> str
    return "no answer within %s s" % (timeout,)


# ---------------------------------------------------------------- sockets


def _family_constant(family):
    # type: (int) -> int
    return socket.AF_INET6 if family == 6 else socket.AF_INET


def _enable_recverr(sock, family):
    # type: (socket.socket, int) -> None
    if family == 6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)


def read_error_queue(sock):
    # type: (socket.socket) -> Optional[IcmpError]
    """The first ICMP error waiting on the socket's error queue (non-blocking), or None."""
    found = None
    for _attempt in range(8):
        try:
            ancillary = sock.recvmsg(512, 1024, MSG_ERRQUEUE | socket.MSG_DONTWAIT)[1]
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        for level, kind, data in ancillary:
            error = parse_extended_error(level, kind, data)
            if error is not None and found is None:
                found = error
    return found


def _source_of(sock):
    # type: (socket.socket) -> Optional[str]
    try:
        return sock.getsockname()[0]
    except OSError:
        return None


def _wait(poller, deadline):
    # type: (Any, float) -> Optional[int]
    """Events of the one registered socket, or None once the deadline has passed."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        events = poller.poll(max(1, int(remaining * 1000 + 0.999)))
        if events:
            mask = 0
            for event in events:
                mask |= event[1]
            return mask


def route_source(target):
    # type: (Target) -> Optional[str]
    """The source address this host would use towards the target (a UDP connect sends nothing)."""
    sock = socket.socket(_family_constant(target.family), socket.SOCK_DGRAM)
    try:
        if target.family == 6:
            sock.connect((target.sockaddr[0], 9, 0, target.sockaddr[3]))
        else:
            sock.connect((target.sockaddr[0], 9))
        return _source_of(sock)
    except OSError:
        return None
    finally:
        sock.close()


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


def syn_dropped_by_own_output(target, source):
    # type: (Target, Optional[str]) -> Optional[bool]
    """After a TCP connect timed out: would this host's own output rules drop a SYN to the target?

    Linux does not report a SYN dropped by the OUTPUT chain to connect(): the
    SYN is quietly retried. So one SYN like the one connect() sent (from a
    fresh port of the same source address) goes out over a raw socket, where
    a drop in OUTPUT makes sendto() fail with EPERM. True: dropped; False: it
    left this host; None: cannot tell (no raw sockets).

    The SYN carries a wrong TCP checksum: this host's rules see it like any
    other, but the destination's TCP, and its REJECT rules (which check the
    checksum first), drop it without a word. So it never opens a connection
    and never uses up the destination's ICMP error rate limit, which the
    re-probes of silent targets count on.
    """
    if not source:
        return None
    af = _family_constant(target.family)
    holder = socket.socket(af, socket.SOCK_STREAM)  # keeps the source port ours while the SYN is out
    try:
        holder.bind((source, 0) if target.family == 4 else (source, 0, 0, target.sockaddr[3]))
        source_port = holder.getsockname()[1]
        try:
            raw = socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_TCP)
        except OSError:
            return None
        try:
            sequence = random.getrandbits(32)
            segment = struct.pack("!HHIIBBHHH", source_port, target.port, sequence, 0, 5 << 4, 0x02, 64240, 0, 0)
            checksum = wrong_checksum(tcp_checksum(target.family, source, target.sockaddr[0], segment))
            segment = segment[:16] + struct.pack("!H", checksum) + segment[18:]
            if target.family == 4:
                raw.bind((source, 0))
                destination = (target.sockaddr[0], 0)  # type: tuple
            else:
                raw.bind((source, 0, 0, target.sockaddr[3]))
                destination = (target.sockaddr[0], 0, 0, target.sockaddr[3])
            try:
                raw.sendto(segment, destination)
            except OSError as exc:
                if exc.errno == errno.EPERM:
                    return True
                return None
            return False
        finally:
            raw.close()
    except OSError:
        return None
    finally:
        holder.close()


# ---------------------------------------------------------------- probes


def mark_sent(marks):
    # type: (Optional[List[float]]) -> None
    """Note when the probe's packet was handed to the kernel (the scheduling of re-probes needs it)."""
    if marks is not None:
        marks.append(time.monotonic())


def probe_tcp(target, timeout, marks=None):
    # type: (Target, float, Optional[List[float]]) -> Outcome
    sock = socket.socket(_family_constant(target.family), socket.SOCK_STREAM)
    try:
        _enable_recverr(sock, target.family)
        sock.setblocking(False)
        deadline = time.monotonic() + timeout
        result = sock.connect_ex(target.sockaddr)
        mark_sent(marks)
        if result == 0:
            return Outcome(OPEN, "connected (TCP handshake completed)")
        if result not in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
            if result == errno.EPERM:
                return Outcome(FILTERED, own_output_drop_text("connect failed with EPERM"))
            outcome = classify_errno(result)
            if outcome.state == REJECTED and result in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                return Outcome(REJECTED, "%s: no route from this host" % errno_text(result))
            return outcome
        poller = select.poll()
        poller.register(sock, select.POLLOUT | select.POLLERR)
        while True:
            events = _wait(poller, deadline)
            if events is None:
                break
            source = _source_of(sock)
            icmp = read_error_queue(sock)
            failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if icmp is not None:
                return classify_icmp_error(icmp, target.address, source)
            if failure:
                return classify_errno(failure)
            if events & select.POLLOUT:
                return Outcome(OPEN, "connected (TCP handshake completed)")
        source = _source_of(sock)
        icmp = read_error_queue(sock)
        if icmp is not None:
            return classify_icmp_error(icmp, target.address, source)
        if syn_dropped_by_own_output(target, source):
            return Outcome(FILTERED, own_output_drop_text("a SYN sent over a raw socket after the timeout failed with EPERM"))
        return Outcome(FILTERED, no_answer_text(timeout), True)
    finally:
        sock.close()


def _own_reject_or_drop(sock_error_reader, target, source, deadline):
    # type: (Any, Target, Optional[str], float) -> Outcome
    """Sending failed with EPERM: this host's OUTPUT chain dropped the probe, or rejected it.

    A REJECT there also makes the send fail with EPERM, after queueing its
    ICMP error to this host: look for it briefly.
    """
    grace = min(deadline, time.monotonic() + 0.05)
    while True:
        error = sock_error_reader()
        if error is not None:
            return classify_icmp_error(error, target.address, source, target.protocol)
        if time.monotonic() >= grace:
            return Outcome(FILTERED, own_output_drop_text())
        time.sleep(0.005)


def probe_udp(target, timeout, marks=None):
    # type: (Target, float, Optional[List[float]]) -> Outcome
    sock = socket.socket(_family_constant(target.family), socket.SOCK_DGRAM)
    try:
        _enable_recverr(sock, target.family)
        sock.setblocking(False)
        deadline = time.monotonic() + timeout
        try:
            sock.connect(target.sockaddr)
        except OSError as exc:
            outcome = classify_errno(exc.errno)
            if outcome.state == REJECTED and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                return Outcome(REJECTED, "%s: no route from this host" % errno_text(exc.errno))
            return outcome
        source = _source_of(sock)
        try:
            sock.send(UDP_PAYLOAD)
            mark_sent(marks)
        except OSError as exc:
            if exc.errno == errno.EPERM:
                return _own_reject_or_drop(lambda: read_error_queue(sock), target, source, deadline)
            return classify_errno(exc.errno)
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR)
        while True:
            events = _wait(poller, deadline)
            if events is None:
                return Outcome(
                    OPEN_FILTERED,
                    "%s: an open port that ignores this datagram looks the same as one whose packets are dropped"
                    % no_answer_text(timeout),
                    True,
                )
            icmp = read_error_queue(sock)
            failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if icmp is not None:
                return classify_icmp_error(icmp, target.address, source)
            if failure:
                return classify_errno(failure)
            try:
                reply = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                return classify_errno(exc.errno)
            return Outcome(OPEN, "reply of %d byte%s" % (len(reply), "" if len(reply) == 1 else "s"))
    finally:
        sock.close()


def _icmp_socket(family):
    # type: (int) -> socket.socket
    try:
        if family == 4:
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        else:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    except PermissionError:
        raise ProbeSetupError(
            "ICMP echo needs a raw socket, which needs root (CAP_NET_RAW): run the task as root (become: true)"
        )
    try:
        if family == 4:
            wanted = [ICMP_ECHO_REPLY[4]] + list(ICMP_ERROR_TYPES[4])
            blocked = 0xFFFFFFFF & ~sum(1 << icmp_type for icmp_type in wanted)
            sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("=I", blocked))
        else:
            words = [0xFFFFFFFF] * 8
            for icmp_type in [ICMP_ECHO_REPLY[6]] + list(ICMP_ERROR_TYPES[6]):
                words[icmp_type >> 5] &= ~(1 << (icmp_type & 31)) & 0xFFFFFFFF
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *words))
    except OSError:
        pass  # only an optimisation: every packet is matched anyway
    sock.setblocking(False)
    return sock


def probe_icmp(target, timeout, ident, sequence, marks=None):
    # type: (Target, float, int, int, Optional[List[float]]) -> Outcome
    sock = _icmp_socket(target.family)
    try:
        deadline = time.monotonic() + timeout
        token = os.urandom(8)
        packet = build_echo_request(target.family, ident, sequence, token + b"fleetwall probe")
        source = route_source(target)
        destination = (target.sockaddr[0], 0) if target.family == 4 else (target.sockaddr[0], 0, 0, target.sockaddr[3])
        replies = []  # type: List[str]

        def pending():
            # type: () -> Optional[IcmpError]
            """Read what is waiting; the first ICMP error about our echo, else None (replies are kept)."""
            while True:
                try:
                    data, sender = sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    return None
                found = parse_icmp(target.family, data, ident, sequence, target.address, token)
                if found is None:
                    continue
                if found[0] == "reply":
                    replies.append(sender[0])
                    continue
                return IcmpError(target.family, 0, found[1], found[2], sender[0])

        try:
            sock.sendto(packet, destination)
            mark_sent(marks)
        except OSError as exc:
            if exc.errno == errno.EPERM:
                return _own_reject_or_drop(pending, target, source, deadline)
            outcome = classify_errno(exc.errno)
            if outcome.state == REJECTED and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                return Outcome(REJECTED, "%s: no route from this host" % errno_text(exc.errno))
            return outcome
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while True:
            error = pending()
            if replies:
                return Outcome(OPEN, "echo reply from %s" % replies[0])
            if error is not None:
                return classify_icmp_error(error, target.address, source, "icmp")
            if _wait(poller, deadline) is None:
                return Outcome(FILTERED, no_answer_text(timeout), True)
    finally:
        sock.close()


def probe(target, timeout, ident, sequence, marks=None):
    # type: (Target, float, int, int, Optional[List[float]]) -> Outcome
    """Probe one target. `marks`, when given, gets the time the packet went to the kernel appended."""
    try:
        if target.protocol == "tcp":
            return probe_tcp(target, timeout, marks)
        if target.protocol == "udp":
            return probe_udp(target, timeout, marks)
        return probe_icmp(target, timeout, ident, sequence, marks)
    except ProbeSetupError as exc:
        return Outcome(ERROR, str(exc))
    except OSError as exc:
        return Outcome(ERROR, "%s: %s" % (type(exc).__name__, errno_text(exc.errno) if exc.errno else exc))
    except Exception as exc:  # pylint: disable=broad-except
        return Outcome(ERROR, "%s: %s" % (type(exc).__name__, exc))


def _result(attempt):
    # type: (Attempt) -> Dict[str, Any]
    target, outcome = attempt.target, attempt.outcome
    return {
        "id": target.label,
        "address": target.address,
        "protocol": target.protocol,
        "port": target.port,
        "family": target.family,
        "state": outcome.state,
        "detail": outcome.detail,
        "elapsed_ms": round((attempt.ended - attempt.sent) * 1000.0, 1),
        "attempts": attempt.number,
    }


def _allow_open_files(wanted):
    # type: (int) -> None
    """Raise the soft limit on open files towards `wanted`, as far as the hard limit allows."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
    except (ValueError, OSError):
        pass  # the probes that find no free descriptor end in state error, saying so


# ---------------------------------------------------------------- re-probing what met silence

# Linux sends ICMP errors (port unreachable, and a REJECT's administratively prohibited, ...) to one peer
# from a token bucket: one token every net.ipv4.icmp_ratelimit / net.ipv6.icmp.ratelimit (1000 ms by
# default), at most 6 in store. Probing many closed or rejected ports of one host at once therefore gets
# about 6 answers and silence for the rest. Silence costs the bucket nothing, and neither does a TCP
# reset. So a target that met silence is probed again once its destination has had `interval` without
# sending us an ICMP error: a token is then certainly in store, and an answer cannot be rate-limited away.

DEFAULT_RETRY_INTERVAL = 1.0
MAX_RETRY_INTERVAL = 60.0
MAX_ATTEMPTS = 4  # the parallel pass, a paced re-probe, and up to two careful ones (see SilenceRetrier)
DEFAULT_ANSWER_WAIT = 0.1  # seconds to wait for an answer before the next re-probe to the same destination
MIN_ANSWER_WAIT = 0.02
# Linux sends a connect()'s SYN again after 1 s (then 2, 3, 4 s with net.ipv4.tcp_syn_linear_timeouts, or 3, 7,
# ... s). A SYN sent just before a TCP probe gives up can still be answered, after the socket is closed: an
# ICMP error spent that nobody sees.
SYN_RETRANSMIT_AFTER = 0.95
ICMP_IDENT_STEP = 7919  # a re-probe's echo identifier differs from the earlier attempts'


def address_key(address):
    # type: (str) -> str
    """One spelling per address (no zone), to group and compare by."""
    literal = address.split("%")[0]
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        return literal


class SilenceRetrier:
    """Probes again, paced per destination, every target whose answer was silence.

    An ICMP error is a spend: from its sender's bucket for us. The sender is
    the destination itself, or a router or firewall on the way ("a third
    party"), whose one bucket then serves every destination behind it; so a
    third party's ICMP error counts against every destination of its family.
    So does a spend that may have happened unseen: a TCP probe that met
    silence, unexplained, for long enough that the kernel sent its SYN again.

    A re-probe goes to a destination only when no ICMP error that counts
    against it came back in the last `interval` (or could still be on its
    way: another re-probe to it was sent less than an answer's time ago). A
    re-probe that again meets silence is the answer only if no spend counting
    against its destination was answered within `interval` before it was
    sent, by a probe that may have been sent before it; otherwise the target
    is probed once more, carefully: with nothing else in flight at all.
    """

    def __init__(self, timeout, parallel, interval, started):
        # type: (float, int, float, float) -> None
        self.timeout = timeout
        self.parallel = parallel
        self.interval = interval
        # A run just before this one may have spent every destination's tokens.
        self.not_before = started + interval
        # (destination, sender or None when unknown, sent, answered)
        self.spends = []  # type: List[Tuple[str, Optional[str], float, float]]
        self.last_own_spend = {}  # type: Dict[str, float]  # sender: when its latest ICMP error about itself came
        self.last_shared_spend = {}  # type: Dict[int, float]  # family: when the latest error a router (or ?) sent came
        self.latency = {}  # type: Dict[str, float]  # destination: longest time an answer took

    def spend(self, attempt, sender, answered):
        # type: (Attempt, Optional[str], float) -> None
        destination = address_key(attempt.target.sockaddr[0])
        self.spends.append((destination, sender, attempt.sent, answered))
        if sender == destination:
            self.last_own_spend[sender] = max(self.last_own_spend.get(sender, answered), answered)
        else:
            family = attempt.target.family
            self.last_shared_spend[family] = max(self.last_shared_spend.get(family, answered), answered)

    def note_answer(self, attempt):
        # type: (Attempt) -> None
        """Remember what an answer tells: how long answers take, and the ICMP error spent, if any."""
        destination = address_key(attempt.target.sockaddr[0])
        self.latency[destination] = max(self.latency.get(destination, 0.0), attempt.ended - attempt.sent)
        if attempt.outcome.icmp_from:
            self.spend(attempt, address_key(attempt.outcome.icmp_from), attempt.ended)

    def note_silence(self, attempt, conclusive):
        # type: (Attempt, bool) -> None
        """A silence that proves nothing, of a TCP probe that lived to send its SYN again, may hide a spend."""
        if not conclusive and attempt.target.protocol == "tcp" and attempt.ended - attempt.sent >= SYN_RETRANSMIT_AFTER:
            # The retransmitted SYN left before the probe ended; its answer comes within about a round trip.
            self.spend(attempt, None, attempt.ended + self.answer_wait(address_key(attempt.target.sockaddr[0])))

    def forget_before(self, earliest):
        # type: (float) -> None
        """Drop the spends that cannot matter to a silence of a probe sent at `earliest` or later."""
        self.spends = [spend for spend in self.spends if spend[3] > earliest - self.interval]

    def counts_against(self, spend, destination):
        # type: (Tuple[str, Optional[str], float, float], str) -> bool
        """Whether a spend came out of the bucket that answers for `destination` (as far as can be told)."""
        if spend[1] == destination:
            return True
        shared = spend[1] is None or spend[1] != spend[0]
        return shared and (":" in spend[0]) == (":" in destination)

    def ready_at(self, destination, family):
        # type: (str, int) -> float
        """When the bucket answering for `destination` has certainly refilled a token."""
        ready = self.not_before
        for answered in (self.last_own_spend.get(destination), self.last_shared_spend.get(family)):
            if answered is not None:
                ready = max(ready, answered + self.interval)
        return ready

    def answer_wait(self, destination):
        # type: (str) -> float
        """How long a re-probe may be out, unanswered, before the next goes to the same destination."""
        seen = self.latency.get(destination)
        if seen is None and self.latency:
            seen = max(self.latency.values())
        seconds = DEFAULT_ANSWER_WAIT if seen is None else max(MIN_ANSWER_WAIT, 2 * seen + 0.01)
        return min(seconds, self.timeout)

    def conclusive(self, attempt):
        # type: (Attempt) -> bool
        """Did this silence meet a destination with a token in store?"""
        if attempt.sent < self.not_before:
            return False
        destination = address_key(attempt.target.sockaddr[0])
        for spend in self.spends:
            # Its probe may have got there first (threads start their sends in no fixed order), and its answer
            # came less than `interval` before this one was sent.
            if spend[2] < attempt.left and spend[3] > attempt.sent - self.interval and self.counts_against(spend, destination):
                return False
        return True

    def run(self, pool, probe_again, attempts):
        # type: (ThreadPoolExecutor, Any, Sequence[Attempt]) -> List[Attempt]
        """The attempts that decide each target: `attempts` with every silence probed again.

        probe_again(attempt) probes attempt.target once more, as attempt number attempt.number + 1.
        """
        final = list(attempts)
        for attempt in final:
            if not attempt.outcome.silent:
                self.note_answer(attempt)
        queues = collections.OrderedDict()  # type: Dict[str, Any]  # destination: deque of (position, careful)
        for position, attempt in enumerate(final):
            if attempt.outcome.silent:
                self.note_silence(attempt, False)
                queues.setdefault(address_key(attempt.target.sockaddr[0]), collections.deque()).append((position, False))
        in_flight = {}  # type: Dict[Any, Tuple[int, str, float, bool]]  # future: (position, destination, submitted, careful)
        while queues or in_flight:
            now = time.monotonic()
            wake = now + self.interval
            last_submitted = {}  # type: Dict[str, float]
            for position, destination, submitted, careful in in_flight.values():
                last_submitted[destination] = max(last_submitted.get(destination, submitted), submitted)
            # A careful re-probe, after a silence that proved nothing, goes alone: nothing else in flight.
            exclusive = any(entry[3] for entry in in_flight.values()) or any(queue[0][1] for queue in queues.values())
            for destination in list(queues):
                queue = queues[destination]
                while queue and len(in_flight) < self.parallel:
                    position, careful = queue[0]
                    if exclusive and (in_flight or not careful):
                        break
                    ready = self.ready_at(destination, final[position].target.family)
                    if destination in last_submitted:
                        ready = max(ready, last_submitted[destination] + self.answer_wait(destination))
                    if ready > now:
                        wake = min(wake, ready)
                        break
                    queue.popleft()
                    submitted = time.monotonic()
                    in_flight[pool.submit(probe_again, final[position])] = (position, destination, submitted, careful)
                    last_submitted[destination] = submitted
                if not queue:
                    del queues[destination]
            if not in_flight:
                time.sleep(max(0.0, wake - time.monotonic()))
                continue
            done = wait(list(in_flight), timeout=max(0.0, wake - time.monotonic()), return_when=FIRST_COMPLETED)[0]
            finished = [(in_flight.pop(future), future.result()) for future in done]
            for (position, destination, submitted, careful), attempt in finished:
                final[position] = attempt
                if not attempt.outcome.silent:
                    self.note_answer(attempt)
            # Only now, with every answer that came back noted, can a silence be judged; the earliest first,
            # since a silence that proves nothing may hide a spend that the later ones have to count.
            silences = [entry for entry in finished if entry[1].outcome.silent]
            self.forget_before(min([entry[1].sent for entry in silences] + [entry[2] for entry in in_flight.values()] + [now]))
            for (position, destination, submitted, careful), attempt in sorted(silences, key=lambda entry: entry[1].sent):
                conclusive = self.conclusive(attempt)
                self.note_silence(attempt, conclusive)
                if conclusive:
                    continue
                if attempt.number < MAX_ATTEMPTS:
                    queues.setdefault(destination, collections.deque()).appendleft((position, True))
                else:
                    detail = "%s (after %d attempts, each maybe too soon after another ICMP error from the same sender)" % (
                        attempt.outcome.detail,
                        attempt.number,
                    )
                    final[position] = attempt._replace(outcome=attempt.outcome._replace(detail=detail))
        return final


def run_probes(targets, timeout, parallel, retry_silent=False, retry_interval=DEFAULT_RETRY_INTERVAL):
    # type: (Sequence[Target], float, int, bool, float) -> List[Dict[str, Any]]
    """Probe every target, at most `parallel` at a time; results in the targets' order.

    With retry_silent, every target that met silence is probed again, paced
    per destination by retry_interval (see SilenceRetrier).
    """
    if not targets:
        return []
    workers = max(1, min(parallel, len(targets)))
    _allow_open_files(workers * FILES_PER_PROBE + 64)
    base = random.getrandbits(16)
    started = time.monotonic()

    def one(target, number=1):
        # type: (Target, int) -> Attempt
        # ICMP echo identifier and sequence: unique per target and attempt within a run, random between runs.
        ident = (base + (target.index >> 16) + ICMP_IDENT_STEP * (number - 1)) & 0xFFFF
        marks = []  # type: List[float]
        sent = time.monotonic()
        outcome = probe(target, timeout, ident, target.index & 0xFFFF, marks)
        ended = time.monotonic()
        return Attempt(target, number, outcome, sent, marks[0] if marks else ended, ended)

    def again(attempt):
        # type: (Attempt) -> Attempt
        return one(attempt.target, attempt.number + 1)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        attempts = list(pool.map(one, targets))
        if retry_silent:
            attempts = SilenceRetrier(timeout, parallel, retry_interval, started).run(pool, again, attempts)
    return [_result(attempt) for attempt in attempts]


def summarize(results):
    # type: (Sequence[Mapping[str, Any]]) -> Dict[str, int]
    counts = dict((state, 0) for state in STATES)
    for result in results:
        counts[result["state"]] = counts.get(result["state"], 0) + 1
    return counts
