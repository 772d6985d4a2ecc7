"""The probe module's pure helpers: target validation, errno and ICMP classification, ICMP packets."""

from __future__ import annotations

import errno
import random
import socket
import struct
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest
import yaml

from ansible_collections.fleetwall.iptables.plugins.module_utils import probing
from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_packets import (
    IcmpError,
    build_echo_request,
    describe_icmp,
    internet_checksum,
    parse_extended_error,
    parse_icmp,
    tcp_checksum,
    wrong_checksum,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_sockets import (
    Outcome,
    classify_errno,
    classify_icmp_error,
    classify_local_errno,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_targets import option_problems, validate_targets
from ansible_collections.fleetwall.iptables.plugins.modules import probe as probe_module

IDENT, SEQUENCE, TOKEN = 0x1234, 7, b"tokentok"


# ---------------------------------------------------------------- validation


def test_valid_targets_are_normalised_in_order():
    targets, problems = validate_targets(
        [
            {"address": "10.0.0.1", "protocol": "tcp", "port": 22, "id": "ssh"},
            {"address": "fd00::1", "protocol": "icmp", "port": None},
            {"address": "fd00::1", "protocol": "udp", "port": 53, "id": 7},
        ]
    )
    assert problems == []
    assert [(t.index, t.label, t.protocol, t.port, t.family) for t in targets] == [
        (0, "ssh", "tcp", 22, 4),
        (1, None, "icmp", None, 6),
        (2, "7", "udp", 53, 6),
    ]
    assert targets[0].sockaddr == ("10.0.0.1", 22)


@pytest.mark.parametrize(
    "item, problem",
    [
        ({"address": "10.0.0.256", "protocol": "tcp", "port": 1}, "targets[0].address: '10.0.0.256' is not an IPv4 or IPv6 address"),
        ({"address": None, "protocol": "tcp", "port": 1}, "targets[0].address: must be an IPv4 or IPv6 address, got null"),
        ({"address": "10.0.0.1%eth0", "protocol": "icmp"}, "targets[0].address: '10.0.0.1%eth0': only an IPv6 address can carry a %zone"),
        ({"address": "10.0.0.1", "protocol": "tcp"}, "targets[0].port: is required for tcp"),
        ({"address": "10.0.0.1", "protocol": "tcp", "port": 65536}, "targets[0].port: must be 1-65535 for tcp, got 65536"),
        ({"address": "10.0.0.1", "protocol": "udp", "port": True}, "targets[0].port: must be 1-65535 for udp, got True"),
        ({"address": "10.0.0.1", "protocol": "icmp", "port": 0}, "targets[0].port: must not be set for icmp (got 0)"),
    ],
)
def test_what_the_argument_spec_cannot_say_is_checked_naming_the_item(item, problem):
    targets, problems = validate_targets([item])
    assert (targets, problems) == ([], [problem])


def test_the_options_ranges_are_checked_each_named():
    assert option_problems(0.0, 2000, 1.0) == [
        "timeout: must be more than 0 and at most 3600 seconds, got 0.0",
        "parallel: must be 1-1024, got 2000",
    ]


def test_the_argument_spec_declares_every_documented_target_suboption():
    documented = yaml.safe_load(probe_module.DOCUMENTATION)["options"]["targets"]["suboptions"]
    declared = probe_module.TARGET_OPTIONS
    assert {name: (option["type"], option.get("required", False), option.get("choices")) for name, option in documented.items()} == {
        name: (option["type"], option.get("required", False), option.get("choices")) for name, option in declared.items()
    }


# ---------------------------------------------------------------- classification


@pytest.mark.parametrize(
    "number, state",
    [
        (errno.ECONNREFUSED, "closed"),
        (errno.EHOSTUNREACH, "rejected"),
        (errno.ENETUNREACH, "rejected"),
        (errno.EACCES, "rejected"),
        (errno.EHOSTDOWN, "rejected"),
        (errno.EPERM, "filtered"),
        (errno.ETIMEDOUT, "filtered"),
        (errno.EINVAL, "error"),
    ],
)
def test_errno_classification(number, state):
    assert classify_errno(number).state == state


def test_own_output_drop_says_so():
    assert "own output rules" in classify_errno(errno.EPERM).detail


@pytest.mark.parametrize("number", [errno.ENETUNREACH, errno.EHOSTUNREACH])
def test_an_unreachable_error_from_this_hosts_own_connect_says_it_has_no_route(number):
    assert classify_local_errno(number).detail.endswith(": no route from this host")


def test_any_other_error_from_this_hosts_own_connect_is_classified_by_errno_alone():
    assert classify_local_errno(errno.ECONNREFUSED) == classify_errno(errno.ECONNREFUSED)


@pytest.mark.parametrize(
    "error, protocol, state, detail",
    [
        (IcmpError(4, 111, 3, 3, "10.0.0.2"), "udp", "closed", "ICMP destination unreachable code 3 (port unreachable) from 10.0.0.2"),
        (IcmpError(4, 111, 3, 3, "10.0.0.2"), "icmp", "rejected", "ICMP destination unreachable code 3 (port unreachable) from 10.0.0.2"),
        (IcmpError(4, 113, 3, 13, "10.0.0.2"), "tcp", "rejected", "ICMP destination unreachable code 13 (administratively prohibited) from 10.0.0.2"),
        (IcmpError(4, 113, 11, 0, "192.0.2.1"), "tcp", "rejected", "ICMP time exceeded code 0 (TTL exceeded in transit) from 192.0.2.1"),
        (IcmpError(6, 13, 1, 1, "fd00::2"), "tcp", "rejected", "ICMPv6 destination unreachable code 1 (administratively prohibited) from fd00::2"),
        (IcmpError(6, 111, 1, 4, "fd00::2"), "tcp", "closed", "ICMPv6 destination unreachable code 4 (port unreachable) from fd00::2"),
        (IcmpError(6, 90, 2, 0, "fd00::9"), "udp", "error", "ICMPv6 packet too big code 0 from fd00::9"),
    ],
)
def test_icmp_error_classification(error, protocol, state, detail):
    outcome = classify_icmp_error(error, "10.0.0.2" if error.family == 4 else "fd00::2", "10.0.0.1", protocol)
    assert (outcome.state, outcome.detail) == (state, detail)
    assert outcome.icmp_from == error.sender and not outcome.silent  # an ICMP error another host spent on us


def test_an_icmp_error_from_this_host_itself_is_its_own_output_rules():
    outcome = classify_icmp_error(IcmpError(4, 111, 3, 3, "10.0.0.1"), "10.0.0.2", "10.0.0.1", "udp")
    assert outcome.state == "rejected" and "sent by this host itself (10.0.0.1)" in outcome.detail


def test_port_unreachable_from_this_host_about_itself_is_closed():
    assert classify_icmp_error(IcmpError(4, 111, 3, 3, "127.0.0.1"), "127.0.0.1", "127.0.0.1", "udp").state == "closed"


def test_unknown_icmp_types_and_codes_are_still_described():
    assert describe_icmp(4, 3, 99) == "ICMP destination unreachable code 99"
    assert describe_icmp(6, 200, 1) == "ICMPv6 type 200 code 1"


# ---------------------------------------------------------------- IP_RECVERR


def test_extended_error_ipv4_from_the_kernel():
    # As read from a UDP socket after an ICMP port unreachable from 10.9.0.2 (Linux 6.x, x86-64).
    data = b"o\x00\x00\x00\x02\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\n\t\x00\x02" + b"\x00" * 8
    assert parse_extended_error(socket.IPPROTO_IP, 11, data) == IcmpError(4, errno.ECONNREFUSED, 3, 3, "10.9.0.2")


def test_extended_error_ipv6_from_the_kernel():
    data = (
        b"\r\x00\x00\x00\x03\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\n\x00\x00\x00\x00\x00\x00\x00"
        b"\xfd\t\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00"
    )
    assert parse_extended_error(socket.IPPROTO_IPV6, 25, data) == IcmpError(6, errno.EACCES, 1, 1, "fd09::2")


def test_extended_error_from_a_local_origin_is_not_an_icmp_error():
    data = struct.pack("=IBBBBII", errno.EMSGSIZE, 1, 0, 0, 0, 1500, 0) + b"\x00" * 16
    assert parse_extended_error(socket.IPPROTO_IP, 11, data) is None


# ---------------------------------------------------------------- ICMP packets


def ipv4(source, destination, payload, protocol=1):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, protocol, 0,
                         socket.inet_aton(source), socket.inet_aton(destination))
    return header + payload


def ipv6(source, destination, payload, next_header=58):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64,
                       socket.inet_pton(socket.AF_INET6, source), socket.inet_pton(socket.AF_INET6, destination)) + payload


def echo(family, icmp_type, ident=IDENT, sequence=SEQUENCE, payload=TOKEN + b"fleetwall probe"):
    return struct.pack("!BBHHH", icmp_type, 0, 0, ident, sequence) + payload


def test_ipv4_echo_request_has_a_valid_checksum():
    packet = build_echo_request(4, IDENT, SEQUENCE, b"abc")
    assert packet[0] == 8 and struct.unpack("!HH", packet[4:8]) == (IDENT, SEQUENCE)
    assert internet_checksum(packet) == 0


def test_ipv6_echo_request_leaves_the_checksum_to_the_kernel():
    packet = build_echo_request(6, IDENT, SEQUENCE, b"abc")
    assert packet[:8] == struct.pack("!BBHHH", 128, 0, 0, IDENT, SEQUENCE) and packet[8:] == b"abc"


def test_ipv4_echo_reply_matches_by_identifier_sequence_and_token():
    reply = ipv4("10.0.0.2", "10.0.0.1", echo(4, 0))
    assert parse_icmp(4, reply, IDENT, SEQUENCE, "10.0.0.2", TOKEN) == ("reply", 0, 0)
    assert parse_icmp(4, reply, IDENT, SEQUENCE + 1, "10.0.0.2", TOKEN) is None
    assert parse_icmp(4, reply, IDENT + 1, SEQUENCE, "10.0.0.2", TOKEN) is None
    assert parse_icmp(4, reply, IDENT, SEQUENCE, "10.0.0.2", b"othertok") is None


def test_ipv4_error_quoting_our_echo_is_recognised():
    quoted = ipv4("10.0.0.1", "10.0.0.2", echo(4, 8)[:8])
    error = ipv4("192.0.2.1", "10.0.0.1", struct.pack("!BBHI", 3, 13, 0, 0) + quoted)
    assert parse_icmp(4, error, IDENT, SEQUENCE, "10.0.0.2", TOKEN) == ("error", 3, 13)
    assert parse_icmp(4, error, IDENT, SEQUENCE, "10.0.0.3", TOKEN) is None  # about another destination
    assert parse_icmp(4, error, IDENT, SEQUENCE + 1, "10.0.0.2", TOKEN) is None


def test_ipv4_error_about_something_else_is_ignored():
    udp = ipv4("10.0.0.1", "10.0.0.2", struct.pack("!HHHH", 5000, 53, 8, 0), protocol=17)
    error = ipv4("10.0.0.2", "10.0.0.1", struct.pack("!BBHI", 3, 3, 0, 0) + udp)
    assert parse_icmp(4, error, IDENT, SEQUENCE, "10.0.0.2", TOKEN) is None
    assert parse_icmp(4, ipv4("10.0.0.2", "10.0.0.1", echo(4, 8)), IDENT, SEQUENCE, "10.0.0.2", TOKEN) is None
    assert parse_icmp(4, b"\x45\x00", IDENT, SEQUENCE, "10.0.0.2", TOKEN) is None


def test_ipv6_reply_and_error_start_at_the_icmpv6_header():
    assert parse_icmp(6, echo(6, 129), IDENT, SEQUENCE, "fd00::2", TOKEN) == ("reply", 129, 0)
    quoted = ipv6("fd00::1", "fd00::2", echo(6, 128))
    error = struct.pack("!BBHI", 1, 1, 0, 0) + quoted
    assert parse_icmp(6, error, IDENT, SEQUENCE, "fd00:0::2", TOKEN) == ("error", 1, 1)
    assert parse_icmp(6, error, IDENT, SEQUENCE, "fd00::3", TOKEN) is None


def test_ipv6_error_quoting_extension_headers_is_recognised():
    destination_options = struct.pack("!BB6s", 58, 0, b"\x00" * 6)
    quoted = ipv6("fd00::1", "fd00::2", destination_options + echo(6, 128), next_header=60)
    error = struct.pack("!BBHI", 1, 4, 0, 0) + quoted
    assert parse_icmp(6, error, IDENT, SEQUENCE, "fd00::2", TOKEN) == ("error", 1, 4)


# ---------------------------------------------------------------- the SYN check's wrong checksum


@pytest.mark.parametrize("family, source, destination", [(4, "10.0.0.1", "10.0.0.2"), (6, "fd00::1", "fd00::2")])
def test_tcp_checksum_verifies_and_the_wrong_one_never_does(family, source, destination):
    segment = struct.pack("!HHIIBBHHH", 40000, 443, 12345, 0, 5 << 4, 0x02, 64240, 0, 0)
    checksum = tcp_checksum(family, source, destination, segment)
    with_checksum = segment[:16] + struct.pack("!H", checksum) + segment[18:]
    assert tcp_checksum(family, source, destination, with_checksum) == 0  # what a receiver computes: valid
    wrong = segment[:16] + struct.pack("!H", wrong_checksum(checksum)) + segment[18:]
    assert tcp_checksum(family, source, destination, wrong) not in (0, 0xFFFF)  # neither zero of one's complement


# ---------------------------------------------------------------- re-probing silence, against simulated rate limits


class RateLimitedNetwork:
    """Destinations behind Linux's per-peer ICMP token bucket, in real time (probe() stands in for the network).

    rules: (address, port) -> ("reject", sender) or "drop". A rejected probe gets its ICMP error from
    `sender` after `rtt` if the sender's bucket has a token, else silence until the timeout, like a drop.
    Each bucket starts empty, as if a run just before had spent it. With resend_at, a silenced probe sends
    again then (as the kernel does a TCP SYN after 1 s), and that one is answered only after the probe gave up.
    With jitter, each probe's packet leaves up to that many seconds after the probe started, so probes started
    together leave in any order, as real threads' do.
    """

    def __init__(self, rules: Dict[Tuple[str, int], object], interval: float, rtt: float, burst: int = 6,
                 resend_at: Optional[float] = None, jitter: float = 0.0) -> None:
        self.rules = rules
        self.resend_at = resend_at
        self.jitter = jitter
        self.random = random.Random(4)
        self.interval = interval
        self.rtt = rtt
        self.burst = burst
        self.lock = threading.Lock()
        self.buckets: Dict[str, List[float]] = {}  # sender: [tokens in seconds, when last refilled]
        self.sends: List[Tuple[float, str, int]] = []

    def allow(self, sender: str) -> bool:
        with self.lock:
            now = time.monotonic()
            bucket = self.buckets.setdefault(sender, [0.0, now])
            bucket[0] = min(bucket[0] + now - bucket[1], self.burst * self.interval)
            bucket[1] = now
            if bucket[0] >= self.interval:
                bucket[0] -= self.interval
                return True
            return False

    def probe(self, target, timeout: float, ident: int, sequence: int, marks: List[float]) -> Outcome:  # pylint: disable=unused-argument
        if self.jitter:
            with self.lock:
                delay = self.random.uniform(0, self.jitter)
            time.sleep(delay)
        self.sends.append((time.monotonic(), target.address, target.port))
        rule = self.rules[(target.address, target.port)]
        answered = rule != "drop" and self.allow(rule[1])
        marks.append(time.monotonic())  # the packet has reached its destination's bucket
        if answered:
            time.sleep(self.rtt)
            return Outcome("rejected", "ICMP error from %s" % rule[1], False, rule[1])
        if rule != "drop" and self.resend_at is not None and self.resend_at < timeout:
            time.sleep(self.resend_at)
            self.allow(rule[1])  # a token spent on an answer nobody sees
            time.sleep(timeout - self.resend_at)
            return Outcome("filtered", "no answer within %s s" % timeout, True)
        time.sleep(timeout)
        return Outcome("filtered", "no answer within %s s" % timeout, True)


def simulate(monkeypatch, rules, retry_silent, interval=0.1, rtt=0.01, timeout=0.3, resend_at=None, jitter=0.0):
    """The results of probing every (address, port) of `rules` over a RateLimitedNetwork, and that network."""
    network = RateLimitedNetwork(rules, interval, rtt, resend_at=resend_at, jitter=jitter)
    monkeypatch.setattr(probing, "probe", network.probe)
    targets, problems = validate_targets([{"address": address, "protocol": "tcp", "port": port} for address, port in rules])
    assert not problems
    return probing.run_probes(targets, timeout, 64, retry_silent, interval), network


def wrong_answers(rules, results):
    expected = {key: "filtered" if rule == "drop" else "rejected" for key, rule in rules.items()}
    return [
        "%s/%s: %s after %d attempt(s), expected %s" % (r["address"], r["port"], r["state"], r["attempts"], expected[(r["address"], r["port"])])
        for r in results
        if r["state"] != expected[(r["address"], r["port"])]
    ]


def mixed_host(address, sender, count):
    """Every third port dropped, the others rejected by `sender`."""
    return {(address, 1000 + port): "drop" if port % 3 == 2 else ("reject", sender) for port in range(count)}


def test_the_simulated_rate_limit_silences_answers_without_retries(monkeypatch):
    rules = mixed_host("10.0.0.2", "10.0.0.2", 12)
    results = simulate(monkeypatch, rules, retry_silent=False)[0]
    assert wrong_answers(rules, results)  # the bucket starts empty: every reject comes back silent
    assert {r["attempts"] for r in results} == {1}


def test_answers_slower_than_the_first_guess_still_come_out_right(monkeypatch):
    # Nothing answers in the parallel pass, so the first re-probes follow each other 0.1 s apart (the default
    # guess), but answers take 0.15 s and a token takes 0.3 s: the second re-probe, sent before the first one's
    # answer came, meets an empty bucket; its silence is judged inconclusive and it is probed again, alone.
    rules = mixed_host("10.0.0.2", "10.0.0.2", 12)
    results = simulate(monkeypatch, rules, retry_silent=True, rtt=0.15, interval=0.3)[0]
    assert not wrong_answers(rules, results), wrong_answers(rules, results)
    assert 3 in [r["attempts"] for r in results]
    assert max(r["attempts"] for r in results) <= probing.MAX_ATTEMPTS
    assert not any("attempts, each maybe" in r["detail"] for r in results)


def test_a_router_rejecting_for_several_destinations_paces_them_together(monkeypatch):
    rules: Dict[Tuple[str, int], object] = {}
    rules.update(mixed_host("10.0.1.1", "10.0.9.9", 6))  # two hosts behind one router, which rejects for both
    rules.update(mixed_host("10.0.1.2", "10.0.9.9", 6))
    rules.update(mixed_host("10.0.0.3", "10.0.0.3", 6))  # a host that rejects for itself
    rules.update({("10.0.0.4", 1000 + port): "drop" for port in range(6)})
    rules.update({("fd00::5", 1000 + port): ("reject", "fd00::5") for port in range(6)})
    # Re-probes to the two hosts behind the router go out together, and either may get the router's one token.
    results = simulate(monkeypatch, rules, retry_silent=True, interval=0.3, jitter=0.02)[0]
    assert not wrong_answers(rules, results), wrong_answers(rules, results)
    without = simulate(monkeypatch, rules, retry_silent=False)[0]
    assert wrong_answers(rules, without)


def test_every_silence_is_probed_once_more_a_fraction_of_a_second_apart(monkeypatch):
    rules: Dict[Tuple[str, int], object] = {("10.0.0.4", 1000 + port): "drop" for port in range(10)}
    rules[("10.0.0.2", 80)] = ("reject", "10.0.0.2")
    results, network = simulate(monkeypatch, rules, retry_silent=True)
    assert not wrong_answers(rules, results), wrong_answers(rules, results)
    assert [r["attempts"] for r in results] == [2] * 10 + [2]  # the bucket starts empty: the reject too
    # Silence spends no token: the dropping host's ten re-probes go out 0.1 s apart, not one a retry_interval.
    sends = sorted(sent for sent, address, port in network.sends if address == "10.0.0.4")
    assert len(sends) == 20 and sends[-1] - sends[10] < 1.5, sends
    results = simulate(monkeypatch, {("10.0.0.2", 80): ("reject", "10.0.0.2")}, retry_silent=False)[0]
    assert [r["attempts"] for r in results] == [1]


def test_a_tcp_probe_that_lived_to_send_its_syn_again_may_have_spent_a_token_unseen(monkeypatch):
    # TCP probes of 1 s: each silenced one sends its SYN again at 0.98 s, answered after it gave up. Those
    # answers empty the bucket just as the parallel pass ends; re-probes sent at once would meet silence.
    rules = {("10.0.0.2", 1000 + port): ("reject", "10.0.0.2") for port in range(8)}
    results = simulate(monkeypatch, rules, retry_silent=True, interval=0.3, timeout=1.0, resend_at=0.98)[0]
    assert not wrong_answers(rules, results), wrong_answers(rules, results)
