#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: probe
short_description: Probe addresses over TCP, UDP and ICMP echo and report what the network answered
version_added: "0.1.0"
author: fleetwall contributors (@fleetwall)
description:
  - From the host it runs on, sends one probe to each of a list of targets (an address, a protocol and, for TCP
    and UDP, a port) and classifies each by what came back, so a playbook can compare what really gets through
    with what the firewall policy says.
  - Changes nothing, and always reports C(changed=false).
  - Probes run concurrently (O(parallel) at a time); each waits at most O(timeout) for an answer. Then, with
    O(retry_silent) (the default), every target that got no answer is probed once more, paced so that the
    destination's ICMP error rate limit cannot have silenced the answer (see O(retry_silent)).
  - B(TCP) - a connect with O(timeout). V(open) when the handshake completes (the connection is closed at once);
    V(closed) when the connection is refused, by a TCP reset or an ICMP port unreachable; V(rejected) on any other
    ICMP error (administratively prohibited, host or network unreachable, ...); V(filtered) when nothing came
    back in time.
  - B(UDP) - a connected socket sends one small datagram (16 bytes of text) and waits for a reply.
    V(open) when any data comes back; V(closed) on an ICMP port unreachable; V(rejected) on any other ICMP error;
    V(open|filtered) when nothing came back in time.
  - B(ICMP) - one echo request (ICMP type 8 for IPv4, ICMPv6 type 128 for IPv6) over a raw socket, which needs
    root. V(open) on the matching echo reply; V(rejected) on an ICMP error that quotes this echo request;
    V(filtered) when nothing came back in time. Replies and errors are matched by the echo's identifier and
    sequence number, so concurrent probes, other runs and unrelated ICMP traffic do not confuse each other.
  - A probe that this host's own C(OUTPUT) rules drop is V(filtered), with a RV(results[].detail)
    that says so; one that this host's own C(OUTPUT) rules reject is V(rejected), with a detail saying the ICMP
    error came from this host itself.
  - Any other failure (no raw sockets for ICMP, an unexpected socket error, an ICMP "packet too big") is
    V(error), with the reason in the detail. A probe in state V(error) does not fail the task.
options:
  targets:
    description:
      - What to probe, in order; the results come back in the same order.
      - "The task fails, before anything is sent, when an item is invalid; the message names every bad item, for
        example C(targets[3].port: must be 1-65535 for tcp, got 0)."
    type: list
    elements: dict
    required: true
    suboptions:
      address:
        description:
          - An IPv4 or IPv6 address literal (no host names). An IPv6 link-local address may carry a zone, as in
            C(fe80::1%eth0).
        type: str
        required: true
      protocol:
        description:
          - How to probe. V(icmp) sends an ICMP echo request to an IPv4 address and an ICMPv6 echo request to an
            IPv6 address.
        type: str
        required: true
        choices: [tcp, udp, icmp]
      port:
        description:
          - The destination port, 1-65535. Required for V(tcp) and V(udp); must be absent or null for V(icmp).
        type: int
      id:
        description:
          - An opaque label returned unchanged in the item's result, to tell the results apart (for example the
            policy rule the probe checks). A number is returned as a string.
        type: str
  timeout:
    description:
      - Seconds to wait for an answer to each probe, more than 0 and at most 3600.
    type: float
    default: 1.0
  parallel:
    description:
      - How many probes are in flight at once, 1 to 1024.
    type: int
    default: 64
  retry_silent:
    description:
      - Probe once more every target that got no answer in time (V(filtered) or V(open|filtered) from silence;
        not a probe that this host's own output rules dropped), before reporting silence.
      - "Why: Linux rate-limits the ICMP errors it sends to each peer: a token bucket that refills one token
        every C(net.ipv4.icmp_ratelimit) (IPv6: C(net.ipv6.icmp.ratelimit)) milliseconds, 1000 by default, and
        holds at most six. The port unreachable of a closed UDP port, and the ICMP error of an iptables C(REJECT)
        (C(icmp-port-unreachable), C(icmp-admin-prohibited), ...), are subject to it; a TCP reset is not. So
        probing many closed or rejected ports of one host at once gets about six answers and silence for the rest,
        which would be reported V(filtered) or V(open|filtered) instead of V(closed) or V(rejected)."
      - How the re-probes are paced, per destination address, destinations in parallel. A re-probe goes out only
        when the destination has sent this host no ICMP error for O(retry_interval), so that it has a token in
        store. Silence spends no token, so after a re-probe that has had no answer for about two round-trip times,
        the next one follows at once; after an ICMP error, the next waits O(retry_interval). An ICMP error from a
        router or firewall on the way (not from the destination) holds back the re-probes to every destination
        of that family, since its one rate limit serves them all. A re-probe whose silence could still be due to
        the rate limit (an earlier probe's ICMP error came back after it was sent) is probed again, alone.
        The kernel sends a TCP probe's SYN again after 1 s (then 2 s, 3 s, ...); when that happened just before
        the probe gave up, an answer may have come that nobody saw, so after such probes the re-probes wait
        O(retry_interval) more.
      - "Cost, measured with the defaults against one host: 20 TCP ports rejected with ICMP take about 15 s
        instead of 1 s (six answers at once, then one every O(retry_interval): about (N - 5) x
        O(retry_interval) for N ports); 20 dropped TCP ports about 5 s (1 s, 1 s more for the SYNs sent again,
        20 re-probes 0.1 s apart, then O(timeout)). A lone target adds about O(timeout) + O(retry_interval)
        when it meets silence, nothing when it gets an answer."
      - "What the module cannot know: two addresses of one host share its rate limit, but are paced separately;
        and a host whose rate limit is longer than O(retry_interval) needs a longer O(retry_interval)."
      - With V(false), each target is probed once, and the results can depend on the rate limit as described.
    type: bool
    default: true
  retry_interval:
    description:
      - Seconds a destination must have sent this host no ICMP error before a target of it that got no answer is
        probed again, more than 0 and at most 60. At least the destination's ICMP rate limit (1 s on Linux by
        default). Only with O(retry_silent).
    type: float
    default: 1.0
attributes:
  check_mode:
    description: Can run in check mode and return the changed status prediction without modifying the target.
    support: full
    details: Probing changes nothing, so check mode probes exactly as a normal run does.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
requirements:
  - Linux (the error classification relies on Linux socket semantics, C(IP_RECVERR) and raw sockets).
  - root (or C(CAP_NET_RAW)) for V(icmp) targets and for telling a TCP SYN dropped by this host's own
    C(OUTPUT) rules from one dropped further away.
notes:
  - B(What each state means.) V(open) - the service answered (TCP handshake, UDP reply, ICMP echo reply).
    V(closed) - the probe reached the host and nothing listens there; the firewalls on the way let it through,
    B(or) one of them rejected it with C(--reject-with tcp-reset) or with an ICMP port unreachable (the default of
    iptables' C(REJECT) for IPv4, C(icmp6-port-unreachable) for IPv6), which looks exactly the same.
    V(rejected) - something answered with another ICMP error, typically a C(REJECT) with
    C(icmp-admin-prohibited), C(icmp-host-prohibited), C(icmp-net-unreachable), C(icmp6-adm-prohibited), ...,
    or a router with no route. V(filtered) - no answer at all within O(timeout) (a C(DROP) somewhere, a host that
    is down, or an answer that was too slow), or this host's own output rules dropped the probe (the detail says
    which). V(open|filtered) - UDP only, no answer within O(timeout). V(error) - the probe could not be made.
  - B(What cannot be told apart.) A UDP service that does not answer an unexpected datagram (most do not) is
    V(open|filtered), exactly like a port whose packets are dropped. A C(REJECT --reject-with tcp-reset), or with
    a port unreachable, is V(closed), like a port the firewall lets through to no listener. Dropped on the way
    there and dropped on the way back look the same. A C(REJECT) in this host's own output rules with
    C(tcp-reset) looks like a closed port.
  - Linux on the far side rate-limits the ICMP errors it sends (by default one per second per peer, after a
    burst of six; sysctls C(net.ipv4.icmp_ratelimit) and C(net.ipv6.icmp.ratelimit)). O(retry_silent) makes
    sure that this does not turn a V(closed) or V(rejected) port into V(filtered) or V(open|filtered), at the
    cost of time, which RV(results[].attempts) shows.
  - Linux does not tell connect() that its own C(OUTPUT) chain dropped the SYN (it just tries again). So after a
    TCP probe timed out, the module sends one more SYN to the same address and port, from a fresh port, over a
    raw socket, where such a drop makes sending fail at once; that is how the detail can say the drop happened
    on this host. When nothing here drops it, that SYN leaves the host with a wrong TCP checksum, on purpose; the
    destination's TCP and its C(REJECT) rules drop it without an answer, so it opens no connection and spends
    none of the destination's ICMP rate limit.
  - TCP and UDP probes leave from the address and ports the kernel picks by routing, as any client's would.
  - In check mode the module probes just the same, since probing changes nothing.
seealso:
  - module: fleetwall.iptables.ruleset
  - plugin: fleetwall.iptables.simulate_packet
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Check what gets from this host to the database servers
  fleetwall.iptables.probe:
    targets:
      - {address: 10.0.2.1, protocol: tcp, port: 5432, id: postgres-v4}
      - {address: "fd00::2:1", protocol: tcp, port: 5432, id: postgres-v6}
      - {address: 10.0.2.1, protocol: tcp, port: 22, id: ssh}
      - {address: 10.0.2.1, protocol: udp, port: 53, id: dns}
      - {address: 10.0.2.1, protocol: icmp, id: ping}
    timeout: 2
  become: true  # ICMP echo needs a raw socket
  register: probe

- name: Fail if postgres is not reachable
  ansible.builtin.assert:
    that: probe.results | selectattr('id', 'equalto', 'postgres-v4') | map(attribute='state') | first == 'open'

- name: List every probe that got through
  ansible.builtin.debug:
    msg: "{{ probe.results | selectattr('state', 'in', ['open', 'closed']) | map(attribute='id') | list }}"
"""

RETURN = r"""
results:
  description: One result per target, in the order of O(targets).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The target's O(targets[].id), unchanged; null when it had none.
      type: str
      sample: postgres-v4
    address:
      description: The target's address, as given.
      type: str
      sample: 10.0.2.1
    protocol:
      description: The target's protocol.
      type: str
      sample: tcp
    port:
      description: The target's port; null for V(icmp).
      type: int
      sample: 5432
    family:
      description: The address family, V(4) or V(6).
      type: int
      sample: 4
    state:
      description:
        - What the network answered (see the notes).
      type: str
      choices: [open, closed, rejected, filtered, open|filtered, error]
      sample: rejected
    detail:
      description: A short explanation of the state.
      type: str
      sample: ICMP destination unreachable code 13 (administratively prohibited) from 10.0.2.1
    elapsed_ms:
      description: How long the probe that decided the state took (the last attempt), in milliseconds.
      type: float
      sample: 0.4
    attempts:
      description:
        - How many times the target was probed. V(1) when the first probe got an answer (or O(retry_silent) is
          off); V(2) when the first met silence and was probed again; V(3) or more when a re-probe's silence could
          still have been the destination's ICMP rate limit.
      type: int
      sample: 1
summary:
  description: How many results are in each state; every state is present, with 0 when none is.
  returned: always
  type: dict
  sample: {"open": 3, "closed": 0, "rejected": 1, "filtered": 1, "open|filtered": 0, "error": 0}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetwall.iptables.plugins.module_utils.probe_targets import (
    DEFAULT_RETRY_INTERVAL,
    option_problems,
    validate_targets,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.probing import run_probes
from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import PROBE_PROTOCOLS, state_counts

TARGET_OPTIONS = dict(
    address=dict(type="str", required=True),
    protocol=dict(type="str", required=True, choices=list(PROBE_PROTOCOLS)),
    port=dict(type="int"),
    id=dict(type="str"),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type="list", elements="dict", required=True, options=TARGET_OPTIONS),
            timeout=dict(type="float", default=1.0),
            parallel=dict(type="int", default=64),
            retry_silent=dict(type="bool", default=True),
            retry_interval=dict(type="float", default=DEFAULT_RETRY_INTERVAL),
        ),
        supports_check_mode=True,
    )
    params = module.params
    # What the argument spec cannot say: address literals, ports that fit the protocol, the options' ranges.
    problems = option_problems(params["timeout"], params["parallel"], params["retry_interval"])
    targets, target_problems = validate_targets(params["targets"])
    problems.extend(target_problems)
    if problems:
        if len(problems) == 1:
            message = problems[0]
        else:
            message = "%d problems: %s" % (len(problems), "; ".join(problems))
        module.fail_json(msg=message, changed=False, problems=problems)
    results = run_probes(targets, params["timeout"], params["parallel"], params["retry_silent"], params["retry_interval"])
    module.exit_json(changed=False, results=results, summary=state_counts(results))


if __name__ == "__main__":
    main()
