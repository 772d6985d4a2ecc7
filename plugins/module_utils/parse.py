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
import shlex
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import (
    Chain,
    FamilyRuleset,
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
    "conntrack": {"--ctstate": "ctstate"},
    "limit": {"--limit": "limit"},
    "comment": {"--comment": "comment"},
}
_TARGET_OPTIONS = {"--reject-with": "reject_with", "--log-prefix": "log_prefix", "--log-level": "log_level"}


class RulesetTextError(ValueError):
    pass


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
    elif name == "hop_limit":
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


def _checked_rule(fields, line):
    # type: (Dict[str, Any], str) -> Rule
    if "target" not in fields:
        raise RulesetTextError("no target (-j) in %r" % line)
    for name in ("source", "destination"):
        if name in fields:
            try:
                ipaddress.ip_network(fields[name])
            except ValueError:
                raise RulesetTextError("not a CIDR: %r in %r" % (fields[name], line))
    return Rule(**fields)


def parse_rule(line):
    # type: (str) -> Tuple[str, Rule]
    """'-A CHAIN ...' as render_rule writes it -> (chain, Rule)."""
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise RulesetTextError("cannot split %r: %s" % (line, exc))
    if len(tokens) < 2 or tokens[0] != "-A":
        raise RulesetTextError("not a rule: %r" % line)
    fields = {}  # type: Dict[str, Any]
    match = None  # type: Optional[str]
    index = 2
    negate = False
    while index < len(tokens):
        token = tokens[index]
        if token == "!":
            negate = True
            index += 1
            continue
        if index + 1 >= len(tokens):
            raise RulesetTextError("%r lacks a value in %r" % (token, line))
        value = tokens[index + 1]
        if token in ("-s", "-d"):
            fields["source" if token == "-s" else "destination"] = value
        elif token in ("-i", "-o"):
            name = "in_interface" if token == "-i" else "out_interface"
            fields[name] = value
            fields[name + "_negated"] = negate
        elif token == "-p":
            fields["protocol"] = value
        elif token == "-m":
            match = value
        elif token == "-j":
            fields["target"] = value
            match = None
        elif match is None and token in _TARGET_OPTIONS:
            fields[_TARGET_OPTIONS[token]] = int(value) if token == "--log-level" else value
        elif match == "set" and token == "--match-set":
            index += _store_set_match(fields, tokens, index, negate, line)
        elif match is not None and token in _MATCH_OPTIONS.get(match, {}):
            index += _store_match_option(fields, _MATCH_OPTIONS[match][token], tokens, index, negate, line)
        else:
            raise RulesetTextError("unexpected %r in %r" % (token, line))
        negate = False
        index += 2
    return tokens[1], _checked_rule(fields, line)


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
