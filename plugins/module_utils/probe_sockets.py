# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probing one target with TCP, UDP or ICMP echo, and classifying what came back.

Private to the fleetwall.iptables collection; the probes of the probe module.
Linux socket semantics throughout: errors come back as errno values and, with
IP_RECVERR / IPV6_RECVERR on, as the ICMP message itself on the socket's error
queue, which tells who sent it and which type and code it had. Standard
library only. Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import collections
import errno
import os
import random
import select
import socket
import struct
import time
from typing import Any, List, Optional

from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_packets import (
    ICMP6_FILTER,
    ICMP_ECHO_REPLY,
    ICMP_ERROR_TYPES,
    ICMP_FILTER,
    IP_RECVERR,
    IPV6_RECVERR,
    MSG_ERRQUEUE,
    PORT_UNREACHABLE,
    SOL_RAW,
    TOO_BIG,
    IcmpError,
    build_echo_request,
    describe_icmp,
    parse_extended_error,
    parse_icmp,
    tcp_checksum,
    wrong_checksum,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_targets import Target, same_address
from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import CLOSED, ERROR, FILTERED, OPEN, OPEN_FILTERED, REJECTED

UDP_PAYLOAD = b"fleetwall probe\n"

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

# silent: the state comes from hearing nothing before the timeout (which an ICMP rate limit can also cause).
# icmp_from: the sender of the ICMP error the state comes from, when another host sent one.
Outcome = collections.namedtuple("Outcome", "state detail silent icmp_from")
Outcome.__new__.__defaults__ = (False, None)  # Python 3.6 has no namedtuple(defaults=...)


class ProbeSetupError(Exception):
    """A probe could not even start (no raw sockets, ...): state error."""


# ---------------------------------------------------------------- classification


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


def classify_local_errno(number):
    # type: (int) -> Outcome
    """classify_errno for an error this host's own connect or send returned, where an unreachable
    network or host means this host has no route there."""
    outcome = classify_errno(number)
    if outcome.state == REJECTED and number in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return Outcome(REJECTED, "%s: no route from this host" % errno_text(number))
    return outcome


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


def _probe_socket(target, kind):
    # type: (Target, int) -> socket.socket
    """A non-blocking socket of the target's family that queues the ICMP errors about what it sends."""
    sock = socket.socket(_family_constant(target.family), kind)
    try:
        _enable_recverr(sock, target.family)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _enable_recverr(sock, family):
    # type: (socket.socket, int) -> None
    if family == 6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)


def _reported_failure(sock, target, source):
    # type: (socket.socket, Target, Optional[str]) -> Optional[Outcome]
    """What a probe's socket reports after an event: an ICMP error about the probe before a socket error
    (both are read, which clears them); None when it reports neither."""
    icmp = read_error_queue(sock)
    failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if icmp is not None:
        return classify_icmp_error(icmp, target.address, source)
    if failure:
        return classify_errno(failure)
    return None


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
    sock = _probe_socket(target, socket.SOCK_STREAM)
    try:
        deadline = time.monotonic() + timeout
        result = sock.connect_ex(target.sockaddr)
        mark_sent(marks)
        if result == 0:
            return Outcome(OPEN, "connected (TCP handshake completed)")
        if result not in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
            if result == errno.EPERM:
                return Outcome(FILTERED, own_output_drop_text("connect failed with EPERM"))
            return classify_local_errno(result)
        poller = select.poll()
        poller.register(sock, select.POLLOUT | select.POLLERR)
        while True:
            events = _wait(poller, deadline)
            if events is None:
                break
            reported = _reported_failure(sock, target, _source_of(sock))
            if reported is not None:
                return reported
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
    sock = _probe_socket(target, socket.SOCK_DGRAM)
    try:
        deadline = time.monotonic() + timeout
        try:
            sock.connect(target.sockaddr)
        except OSError as exc:
            return classify_local_errno(exc.errno)
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
            reported = _reported_failure(sock, target, source)
            if reported is not None:
                return reported
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
            return classify_local_errno(exc.errno)
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
