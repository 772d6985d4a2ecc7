# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Packet rates as the limit and hashlimit matches store and print them.

Private to the fleetwall.iptables collection. iptables turns "60/min" into a
period between packets (in 1/10,000 s for limit, 1/1,000,000 s for
hashlimit) and iptables-save prints that period back in the largest unit it
fits evenly, so "60/min" comes back as "1/sec". The compiler writes the
printed form, so that the rendered text is what iptables-save prints and
"changed" stays a string compare. Module code: keep it compatible with
Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import Tuple

# The match modules' scales: the period is stored in these fractions of a second.
LIMIT_SCALE = 10000
HASHLIMIT_SCALE = 1000000
UNIT_SECONDS = (("day", 24 * 60 * 60), ("hour", 60 * 60), ("min", 60), ("sec", 1))
DEFAULT_BURST = 5
# hashlimit refuses a burst above this; limit takes more, but no policy needs more.
MAX_BURST = 10000
# The kernel refuses a period whose credits overflow 32 bits (limit: avg * burst;
# hashlimit: the period itself), so the slowest rate a rule may ask for is bounded.
_PERIOD_LIMIT = {LIMIT_SCALE: 0xFFFFFFFF, HASHLIMIT_SCALE: 0xFFFFFFFF}
_RATE = re.compile(r"^([1-9][0-9]{0,6})/(s|sec|second|m|min|minute|h|hour|d|day)$")
_UNIT_OF = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def period(text, scale):
    # type: (str, int) -> int
    """'3/min' -> the period between packets in 1/scale seconds, as iptables computes it; ValueError if unusable."""
    match = _RATE.match(text.strip().lower()) if isinstance(text, str) else None
    if not match:
        raise ValueError("a rate is COUNT/UNIT with a unit of sec, min, hour or day (e.g. 3/min), got %r" % (text,))
    count, seconds = int(match.group(1)), _UNIT_OF[match.group(2)]
    result = scale * seconds // count
    if result == 0:
        raise ValueError("%r is faster than iptables can count: at most %d/sec" % (text, scale))
    return result


def print_rate(period_value, scale):
    # type: (int, int) -> str
    """The period as iptables-save prints it: the largest unit the rate fits into evenly enough."""
    units = [(name, seconds * scale) for name, seconds in UNIT_SECONDS]
    index = 1
    while index < len(units):
        mult = units[index][1]
        if period_value > mult or mult // period_value < mult % period_value:
            break
        index += 1
    name, mult = units[index - 1]
    return "%d/%s" % (mult // period_value, name)


def canonical_rate(text, scale, burst=DEFAULT_BURST):
    # type: (str, int, int) -> Tuple[str, int]
    """(the rate as iptables-save prints it, its period); ValueError for a rate the kernel refuses."""
    value = period(text, scale)
    credits = value * burst if scale == LIMIT_SCALE else value
    if credits > _PERIOD_LIMIT[scale]:
        raise ValueError(
            "%r%s is slower than the kernel can count; ask for a faster rate%s"
            % (text, " with burst %d" % burst if scale == LIMIT_SCALE else "", " or a smaller burst" if scale == LIMIT_SCALE else "")
        )
    printed = print_rate(value, scale)
    # What is printed must read back as itself: iptables parses the rendered text again.
    while print_rate(period(printed, scale), scale) != printed:
        printed = print_rate(period(printed, scale), scale)
    return printed, period(printed, scale)
