# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which hosts, and which host pairs, the reachability model checks.

Private to the fleetwall.iptables collection; controller-side only. A fleet of
N hosts has N x (N - 1) host pairs: every one of them is checked in a small
fleet, and in a large one either fewer hosts take part (``hosts_per_group``)
or each destination is probed from a few hosts of each group
(``sources_per_group``). ``sampling_note`` says which, in numbers and in one
sentence, for the verification and its report.
"""

from __future__ import annotations

import re
from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Set, Tuple

IMPLICIT_GROUPS = ("all", "ungrouped")


def natural_key(name: str) -> Tuple[Any, ...]:
    """web2 before web10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _named_groups(groups: Mapping[str, Collection[str]]) -> List[str]:
    return sorted(group for group in groups if group not in IMPLICIT_GROUPS)


def sample_hosts(groups: Mapping[str, Collection[str]], hosts: Sequence[str], hosts_per_group: int) -> List[str]:
    """The first hosts of each group, by name: every group is represented, the matrix stays small. 0: every host."""
    if hosts_per_group <= 0:
        return list(hosts)
    wanted = set(hosts)
    chosen: Set[str] = set()
    named = _named_groups(groups)
    for group in named or ["all"]:
        members = sorted(host for host in groups[group] if host in wanted)
        chosen.update(members[:hosts_per_group])
    ungrouped = [host for host in hosts if not any(host in groups[group] for group in named)]
    chosen.update(ungrouped[:hosts_per_group])
    return sorted(chosen)


def source_buckets(groups: Mapping[str, Collection[str]], chosen: Sequence[str]) -> List[List[str]]:
    """The chosen hosts by named group, then those in none, each in natural order (a host may be in several)."""
    wanted = set(chosen)
    buckets = [sorted((host for host in groups[group] if host in wanted), key=natural_key) for group in _named_groups(groups)]
    grouped = {host for bucket in buckets for host in bucket}
    buckets.append(sorted((host for host in chosen if host not in grouped), key=natural_key))
    return [bucket for bucket in buckets if bucket]


def sample_sources(groups: Mapping[str, Collection[str]], chosen: Sequence[str], sources_per_group: int) -> Optional[Dict[str, Set[str]]]:
    """Per destination, the hosts that probe it: `sources_per_group` of each group; None (every host) for 0.

    Each destination takes the next members of each group in turn, where
    the previous destination stopped, so every member probes about as many
    destinations as the others and every host is both probed and probing; the
    same inventory always gives the same pairs.
    """
    if sources_per_group <= 0:
        return None
    buckets = source_buckets(groups, chosen)
    cursors = [0] * len(buckets)
    senders: Dict[str, Set[str]] = {}
    for destination in chosen:
        mine: Set[str] = set()
        for index, bucket in enumerate(buckets):
            wanted = min(sources_per_group, len([host for host in bucket if host != destination]))
            taken = 0
            while taken < wanted:
                host = bucket[cursors[index] % len(bucket)]
                cursors[index] += 1
                if host != destination:
                    mine.add(host)
                    taken += 1
        senders[destination] = mine
    return senders


def sampling_note(hosts: int, chosen: Sequence[str], hosts_per_group: int, sources_per_group: int, pairs: int) -> Dict[str, Any]:
    """What the model checks of the fleet: the numbers, and one sentence for the report."""
    every_pair = len(chosen) * (len(chosen) - 1)
    if len(chosen) < hosts:
        text = "%d of %d hosts take part (the first %d of each group by name)" % (len(chosen), hosts, hosts_per_group)
    else:
        text = "all %d hosts take part" % hosts
    if pairs < every_pair:
        text += "; each is probed from %d host(s) of each group, the next ones in turn for each destination: %d of %d host pairs" % (
            sources_per_group, pairs, every_pair)
    else:
        text += "; every host pair is checked (%d)" % pairs
    return {
        "hosts": hosts,
        "sampled_hosts": len(chosen),
        "hosts_per_group": hosts_per_group,
        "sources_per_group": sources_per_group,
        "host_pairs": pairs,
        "all_host_pairs": every_pair,
        "description": text,
    }
