# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read rendered iptables-restore text back into the IR.

Private to the fleetwall.iptables collection. The inverse of render.py for
the rules fleetwall itself writes: parse_family(render_family(x)) == x. A
compiled ruleset travels between tasks as its rendered text (two strings
per host, cheap for Ansible to carry at fleet scale); the ruleset module and
the simulate filter read it back with this. Module code: keep it compatible
with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import ipaddress
import re
import shlex
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import (
    Chain,
    ConnLimit,
    FamilyRuleset,
    HashLimit,
    Rule,
    Table,
)

# Options of each match module, and the Rule field each one fills.
_MATCH_OPTIONS = {
    "tcp": {"--sport": "source_ports", "--dport": "destination_ports", "--tcp-flags": "tcp_flags"},
    "udp": {"--sport": "source_ports", "--dport": "destination_ports"},
    "sctp": {"--sport": "source_ports", "--dport": "destination_ports"},
    "multiport": {"--dports": "destination_ports", "--sports": "source_ports"},
    "icmp": {"--icmp-type": "icmp_type"},
    "icmp6": {"--icmpv6-type": "icmp_type"},
    "hl": {"--hl-eq": "hop_limit"},
    "addrtype": {"--dst-type": "destination_type"},
    "conntrack": {"--ctstate": "ctstate"},
    "limit": {"--limit": "limit", "--limit-burst": "limit_burst"},
    "comment": {"--comment": "comment"},
}
# Options outside any match that take their value as it is, and the Rule field each fills.
_RULE_OPTIONS = {"-s": "source", "-d": "destination", "-p": "protocol"}
# The options of the rate matches as render writes them, and the HashLimit / ConnLimit field each fills.
_RATE_OPTIONS = {
    "hashlimit": {
        "--hashlimit-upto": "rate",
        "--hashlimit-above": "rate",
        "--hashlimit-burst": "burst",
        "--hashlimit-mode": "mode",
        "--hashlimit-name": "name",
    },
    "connlimit": {"--connlimit-upto": "count", "--connlimit-above": "count", "--connlimit-mask": "mask"},
}
_TARGET_OPTIONS = {
    "--reject-with": "reject_with",
    "--log-prefix": "log_prefix",
    "--log-level": "log_level",
    "--to-destination": "to_destination",
    "--to-source": "to_source",
    "--to-ports": "to_ports",
}


class RulesetTextError(ValueError):
    pass


def split_rule(line):
    # type: (str) -> List[str]
    """shlex.split(line), without shlex's cost for the lines render writes.

    shlex reads character by character, which is most of the time it takes
    to read a ruleset of thousands of rules. Most rules hold no quote at
    all, and the rest only whole-word double-quoted strings without escapes
    (comments): split those at spaces and leave anything else to shlex.
    """
    plain = "'" not in line and "\\" not in line and "\t" not in line
    if plain and '"' not in line:
        return _words(line)
    if plain:
        parts = line.split('"')
        if len(parts) % 2 == 1 and _quotes_hold_whole_words(parts):
            tokens = _words(parts[0])
            for index in range(1, len(parts), 2):
                tokens.append(parts[index])
                tokens.extend(_words(parts[index + 1]))
            return tokens
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise RulesetTextError("cannot split %r: %s" % (line, exc))


def _quotes_hold_whole_words(parts):
    # type: (List[str]) -> bool
    """Whether each quoted part of line.split('"') stands as a word of its own: a space (or the line's
    start or end) on both sides, so that shlex would read it as one token."""
    last = len(parts) - 2
    for index in range(1, len(parts), 2):
        if not (parts[index - 1].endswith(" ") or index == 1 and not parts[0]):
            return False
        if not (parts[index + 1].startswith(" ") or index == last and not parts[-1]):
            return False
    return True


def _words(text):
    # type: (str) -> List[str]
    # Not str.split(): shlex separates words at spaces and tabs only, not at every Unicode space.
    return list(filter(None, text.split(" ")))


def _store_match_option(fields, name, tokens, index, negate, line):
    # type: (Dict[str, Any], str, List[str], int, bool, str) -> int
    """Fill the Rule field a match option names; return how many extra tokens it took."""
    value = tokens[index + 1]
    if name == "tcp_flags":
        if index + 2 >= len(tokens):
            raise RulesetTextError("--tcp-flags needs a mask and a comparison in %r" % line)
        fields["tcp_flags"] = "%s %s" % (value, tokens[index + 2])
        fields["tcp_flags_negated"] = negate
        return 1
    if name in ("source_ports", "destination_ports"):
        fields[name] = fields.get(name, ()) + tuple(value.split(","))
    elif name == "ctstate":
        fields[name] = tuple(value.split(","))
    elif name in ("hop_limit", "limit_burst"):
        fields[name] = int(value)
    else:
        fields[name] = value
    return 0


def _store_set_match(fields, tokens, index, negate, line):
    # type: (Dict[str, Any], List[str], int, bool, str) -> int
    direction = tokens[index + 2] if index + 2 < len(tokens) else None
    if direction not in ("src", "dst"):
        raise RulesetTextError("--match-set needs a set name and src or dst in %r" % line)
    prefix = "source_set" if direction == "src" else "destination_set"
    fields[prefix] = tokens[index + 1]
    fields[prefix + "_negated"] = negate
    return 1


def _store_rate_option(rates, match, token, value):
    # type: (Dict[str, Dict[str, Any]], str, str, str) -> None
    options = rates.setdefault(match, {})
    key = _RATE_OPTIONS[match][token]
    options[key] = value if key in ("rate", "mode", "name") else int(value)
    if key in ("rate", "count"):
        options["above"] = token.endswith("-above")


def _rate_fields(rates, line):
    # type: (Dict[str, Dict[str, Any]], str) -> Dict[str, Any]
    """The hashlimit and connlimit options of a rule -> its hashlimit and connlimit fields."""
    fields = {}  # type: Dict[str, Any]
    hashlimit = rates.get("hashlimit")
    if hashlimit is not None:
        if sorted(hashlimit) != ["above", "burst", "mode", "name", "rate"] or hashlimit["mode"] != "srcip":
            raise RulesetTextError("a hashlimit match needs a rate, a burst, --hashlimit-mode srcip and a name in %r" % line)
        fields["hashlimit"] = HashLimit(hashlimit["rate"], hashlimit["burst"], hashlimit["name"], hashlimit["above"])
    connlimit = rates.get("connlimit")
    if connlimit is not None:
        if sorted(connlimit) != ["above", "count", "mask", "saddr"]:
            raise RulesetTextError("a connlimit match needs a count, a mask and --connlimit-saddr in %r" % line)
        fields["connlimit"] = ConnLimit(connlimit["count"], connlimit["mask"], connlimit["above"])
    return fields


def _checked_rule(fields, line):
    # type: (Dict[str, Any], str) -> Rule
    if "target" not in fields:
        raise RulesetTextError("no target (-j) in %r" % line)
    for name in ("source", "destination"):
        if name in fields and not is_network(fields[name]):
            raise RulesetTextError("not a CIDR: %r in %r" % (fields[name], line))
    return Rule(**fields)


def parse_rule(line):
    # type: (str) -> Tuple[str, Rule]
    """'-A CHAIN ...' as render_rule writes it -> (chain, Rule)."""
    tokens = split_rule(line)
    count = len(tokens)
    if count < 2 or tokens[0] != "-A":
        raise RulesetTextError("not a rule: %r" % line)
    fields = {}  # type: Dict[str, Any]
    rates = {}  # type: Dict[str, Dict[str, Any]]
    match = None  # type: Optional[str]
    options = {}  # type: Dict[str, str]  # the options of the current match
    index = 2
    negate = False
    while index < count:
        token = tokens[index]
        if token == "!" or (match == "connlimit" and token == "--connlimit-saddr"):
            if token != "!":
                rates.setdefault(match, {})["saddr"] = True
            negate = token == "!"
            index += 1
            continue
        if index + 1 >= count:
            raise RulesetTextError("%r lacks a value in %r" % (token, line))
        value = tokens[index + 1]
        if token in _RULE_OPTIONS:
            fields[_RULE_OPTIONS[token]] = value
        elif token == "-m":
            match, options = value, _MATCH_OPTIONS.get(value, {})
        elif token == "-j":
            fields["target"] = value
            match, options = None, {}
        elif token in ("-i", "-o"):
            name = "in_interface" if token == "-i" else "out_interface"
            fields[name] = value
            fields[name + "_negated"] = negate
        elif match is None and token in _TARGET_OPTIONS:
            fields[_TARGET_OPTIONS[token]] = int(value) if token == "--log-level" else value
        elif match in _RATE_OPTIONS and token in _RATE_OPTIONS[match] and not negate:
            _store_rate_option(rates, match, token, value)
        elif match == "set" and token == "--match-set":
            index += _store_set_match(fields, tokens, index, negate, line)
        elif token in options:
            index += _store_match_option(fields, options[token], tokens, index, negate, line)
        else:
            raise RulesetTextError("unexpected %r in %r" % (token, line))
        negate = False
        index += 2
    if rates:
        fields.update(_rate_fields(rates, line))
    return tokens[1], _checked_rule(fields, line)


_IPV4_CIDR = re.compile(r"^(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})/([0-9]{1,2})$")


def is_network(text):
    # type: (str) -> bool
    """Whether ipaddress.ip_network(text) accepts it (strict: no host bits).

    The IPv4 CIDRs iptables-save prints are checked with integer arithmetic:
    constructing an IPv4Network for each of thousands of rules is a large
    part of reading a ruleset. Anything else is left to ipaddress.
    """
    match = _IPV4_CIDR.match(text)
    if match:
        first, second, third, fourth, prefix = map(int, match.groups())
        if prefix <= 32 and max(first, second, third, fourth) <= 255:
            address = (first << 24) | (second << 16) | (third << 8) | fourth
            return address & ((1 << (32 - prefix)) - 1) == 0
    try:
        ipaddress.ip_network(text)
    except ValueError:
        return False
    return True


def parse_family(text, family):
    # type: (str, int) -> FamilyRuleset
    """A rendered family text -> FamilyRuleset; RulesetTextError naming the line."""
    tables = []  # type: List[Table]
    name = None  # type: Optional[str]
    chains = []  # type: List[Tuple[str, Optional[str]]]
    rules = {}  # type: Dict[str, List[Rule]]
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("*"):
                if name is not None:
                    raise RulesetTextError("table %s lacks COMMIT" % name)
                name, chains, rules = line[1:], [], {}
            elif name is None:
                raise RulesetTextError("%r outside a table" % line)
            elif line.startswith(":"):
                parts = line[1:].split()
                if len(parts) < 2 or parts[1] not in ("ACCEPT", "DROP", "-"):
                    raise RulesetTextError("bad chain line %r" % line)
                chains.append((parts[0], None if parts[1] == "-" else parts[1]))
                rules[parts[0]] = []
            elif line == "COMMIT":
                tables.append(Table(name, tuple(Chain(chain, policy, tuple(rules[chain])) for chain, policy in chains)))
                name = None
            else:
                chain, rule = parse_rule(line)
                if chain not in rules:
                    raise RulesetTextError("rule for undeclared chain %s" % chain)
                rules[chain].append(rule)
        except (RulesetTextError, ValueError) as exc:
            raise RulesetTextError("line %d: %s" % (number, exc))
    if name is not None:
        raise RulesetTextError("table %s lacks COMMIT" % name)
    return FamilyRuleset(family, tuple(tables))
