# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Collecting validation problems, each named by where it is.

Private to the fleetwall.iptables collection. Module code: keep it
compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import difflib
from typing import Iterable, List, Optional


class PolicyError(ValueError):
    """Bad input. The message lists every problem found, each with its path."""

    def __init__(self, problems):
        # type: (Iterable[str]) -> None
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = "%d problems in the fleetwall policy:\n%s" % (
                len(self.problems),
                "\n".join("- " + problem for problem in self.problems),
            )
        super(PolicyError, self).__init__(message)


class Problems:
    """Accumulates problems so one run reports all of them, not just the first."""

    def __init__(self):
        # type: () -> None
        self.messages = []  # type: List[str]

    def add(self, path, message):
        # type: (str, str) -> None
        self.messages.append("%s: %s" % (path, message))

    def raise_if_any(self):
        # type: () -> None
        if self.messages:
            raise PolicyError(self.messages)


def _swapped_neighbours(word, choice):
    # type: (str, str) -> bool
    """True if choice is word with two adjacent characters swapped ('wbe', 'web')."""
    if len(word) != len(choice) or word == choice:
        return False
    differ = [index for index, (left, right) in enumerate(zip(word, choice)) if left != right]
    return (
        len(differ) == 2
        and differ[1] == differ[0] + 1
        and word[differ[0]] == choice[differ[1]]
        and word[differ[1]] == choice[differ[0]]
    )


def did_you_mean(word, choices):
    # type: (str, Iterable[str]) -> str
    """' (did you mean 'x'?)' for a close match, else ''."""
    names = sorted(set(str(choice) for choice in choices))
    matches = difflib.get_close_matches(word, names, n=1, cutoff=0.75)
    if not matches:
        # difflib scores a swap in a short name low ('wbe' -> 'web' is 0.67).
        matches = [name for name in names if len(word) >= 3 and _swapped_neighbours(word, name)][:1]
    return " (did you mean '%s'?)" % matches[0] if matches else ""


def type_name(value):
    # type: (object) -> str
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict) or hasattr(value, "keys"):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def item_path(path, index):
    # type: (str, Optional[int]) -> str
    return path if index is None else "%s[%d]" % (path, index)
