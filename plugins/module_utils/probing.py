# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probing many targets at once, and probing again what met silence, paced for ICMP rate limits.

Private to the fleetwall.iptables collection; the engine of the probe module:
it runs the probes of probe_sockets in parallel and re-probes every silent
target once its destination can answer again. Standard library only. Module
code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import collections
import random
import resource
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_sockets import probe
from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_targets import DEFAULT_RETRY_INTERVAL, Target, address_key

FILES_PER_PROBE = 3  # a TCP probe's socket, and the port holder and raw socket of its SYN check

# One probe of one target: its outcome, which attempt it was, and (time.monotonic()) when it started, when its
# packet had certainly been handed to the kernel, and when it ended.
Attempt = collections.namedtuple("Attempt", "target number outcome sent left ended")


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

MAX_ATTEMPTS = 4  # the parallel pass, a paced re-probe, and up to two careful ones (see SilenceRetrier)
DEFAULT_ANSWER_WAIT = 0.1  # seconds to wait for an answer before the next re-probe to the same destination
MIN_ANSWER_WAIT = 0.02
# Linux sends a connect()'s SYN again after 1 s (then 2, 3, 4 s with net.ipv4.tcp_syn_linear_timeouts, or 3, 7,
# ... s). A SYN sent just before a TCP probe gives up can still be answered, after the socket is closed: an
# ICMP error spent that nobody sees.
SYN_RETRANSMIT_AFTER = 0.95
ICMP_IDENT_STEP = 7919  # a re-probe's echo identifier differs from the earlier attempts'


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
