# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Intermediate representation of a compiled ruleset.

Private to the fleetwall.iptables collection. Plain immutable tuples, no I/O:
the compiler produces them, the renderer and the simulator consume them, and
they travel between Ansible tasks as plain dictionaries (``to_dict`` /
``from_dict``). Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import ipaddress
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

BUILTIN_CHAINS = ("INPUT", "FORWARD", "OUTPUT")
TERMINAL_TARGETS = ("ACCEPT", "DROP", "REJECT")
CTSTATE_ORDER = ("INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED")


class Rule(NamedTuple):
    """One iptables rule. Field order mirrors the order iptables-save prints."""

    target: str
    source: Optional[str] = None
    destination: Optional[str] = None
    in_interface: Optional[str] = None
    in_interface_negated: bool = False
    out_interface: Optional[str] = None
    out_interface_negated: bool = False
    protocol: Optional[str] = None
    source_ports: Tuple[str, ...] = ()
    destination_ports: Tuple[str, ...] = ()
    tcp_flags: Optional[str] = None
    tcp_flags_negated: bool = False
    icmp_type: Optional[str] = None
    hop_limit: Optional[int] = None
    ctstate: Tuple[str, ...] = ()
    limit: Optional[str] = None
    comment: Optional[str] = None
    reject_with: Optional[str] = None
    log_prefix: Optional[str] = None
    log_level: Optional[int] = None


class Chain(NamedTuple):
    name: str
    policy: Optional[str]
    rules: Tuple[Rule, ...]


class Table(NamedTuple):
    name: str
    chains: Tuple[Chain, ...]

    def chain(self, name):
        # type: (str) -> Chain
        for chain in self.chains:
            if chain.name == name:
                return chain
        raise KeyError(name)


class FamilyRuleset(NamedTuple):
    family: int
    tables: Tuple[Table, ...]

    def table(self, name):
        # type: (str) -> Table
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


class HostRuleset(NamedTuple):
    host: str
    ipv4: FamilyRuleset
    ipv6: FamilyRuleset
    warnings: Tuple[str, ...] = ()

    def family(self, family):
        # type: (int) -> FamilyRuleset
        if family == 4:
            return self.ipv4
        if family == 6:
            return self.ipv6
        raise ValueError("family must be 4 or 6, not %r" % (family,))


_RULE_DEFAULTS = dict(zip(Rule._fields, (None,) + tuple(Rule._field_defaults[f] for f in Rule._fields[1:])))


def rule_to_dict(rule):
    # type: (Rule) -> Dict[str, Any]
    """Only the fields that differ from their defaults: compact in Ansible facts."""
    result = {}  # type: Dict[str, Any]
    for name, value in zip(Rule._fields, rule):
        if name == "target" or value != _RULE_DEFAULTS[name]:
            result[name] = list(value) if isinstance(value, tuple) else value
    return result


def _field_type(name):
    # type: (str) -> type
    default = _RULE_DEFAULTS[name]
    if isinstance(default, (bool, tuple)):
        return type(default)
    return int if name in ("hop_limit", "log_level") else str


_RULE_TYPES = dict((name, _field_type(name)) for name in Rule._fields)


def rule_from_dict(data, path="rule"):
    # type: (Mapping[str, Any], str) -> Rule
    """Inverse of rule_to_dict; ValueError naming the field on anything malformed."""
    if not isinstance(data, Mapping):
        raise ValueError("%s: must be a mapping, got %s" % (path, type(data).__name__))
    unknown = set(data) - set(Rule._fields)
    if unknown:
        raise ValueError("%s: unknown rule field(s): %s" % (path, ", ".join(sorted(unknown))))
    if not isinstance(data.get("target"), str) or not data["target"]:
        raise ValueError("%s.target: required, a chain or target name" % path)
    values = {}  # type: Dict[str, Any]
    for name, value in data.items():
        expected = _RULE_TYPES[name]
        if value is None and _RULE_DEFAULTS[name] is None:
            continue
        if expected is tuple:
            if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
                raise ValueError("%s.%s: must be a list of strings" % (path, name))
            value = tuple(value)
        elif expected is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("%s.%s: must be an integer" % (path, name))
        elif not isinstance(value, expected):
            raise ValueError("%s.%s: must be a %s" % (path, name, "boolean" if expected is bool else "string"))
        values[name] = value
    for name in ("source", "destination"):
        if values.get(name) is not None:
            try:
                ipaddress.ip_network(values[name])
            except ValueError:
                raise ValueError("%s.%s: not a CIDR: %r" % (path, name, values[name]))
    return Rule(**values)


def ruleset_to_dict(ruleset):
    # type: (HostRuleset) -> Dict[str, Any]
    return {
        "host": ruleset.host,
        "ipv4": family_to_dict(ruleset.ipv4),
        "ipv6": family_to_dict(ruleset.ipv6),
        "warnings": list(ruleset.warnings),
    }


def family_to_dict(family_ruleset):
    # type: (FamilyRuleset) -> Dict[str, Any]
    return {
        "family": family_ruleset.family,
        "tables": [
            {
                "name": table.name,
                "chains": [
                    {
                        "name": chain.name,
                        "policy": chain.policy,
                        "rules": [rule_to_dict(rule) for rule in chain.rules],
                    }
                    for chain in table.chains
                ],
            }
            for table in family_ruleset.tables
        ],
    }


def family_from_dict(data, path="ruleset"):
    # type: (Mapping[str, Any], str) -> FamilyRuleset
    if not isinstance(data, Mapping):
        raise ValueError("%s: must be a mapping, got %s" % (path, type(data).__name__))
    family = data.get("family")
    if family not in (4, 6) or isinstance(family, bool):
        raise ValueError("%s.family: must be 4 or 6, got %r" % (path, family))
    tables_data = data.get("tables")
    if not isinstance(tables_data, (list, tuple)):
        raise ValueError("%s.tables: must be a list of tables" % path)
    tables = []  # type: List[Table]
    for table_index, table in enumerate(tables_data):
        table_path = "%s.tables[%d]" % (path, table_index)
        if not isinstance(table, Mapping) or not isinstance(table.get("name"), str):
            raise ValueError("%s: must be a mapping with a name" % table_path)
        if not isinstance(table.get("chains"), (list, tuple)):
            raise ValueError("%s.chains: must be a list of chains" % table_path)
        chains = []  # type: List[Chain]
        for chain_index, chain in enumerate(table["chains"]):
            chain_path = "%s.chains[%d]" % (table_path, chain_index)
            if not isinstance(chain, Mapping) or not isinstance(chain.get("name"), str) or not chain["name"]:
                raise ValueError("%s: must be a mapping with a name" % chain_path)
            policy = chain.get("policy")
            if policy not in (None, "ACCEPT", "DROP"):
                raise ValueError("%s.policy: must be ACCEPT, DROP or null, got %r" % (chain_path, policy))
            rules = chain.get("rules", ())
            if not isinstance(rules, (list, tuple)):
                raise ValueError("%s.rules: must be a list of rules" % chain_path)
            chains.append(
                Chain(
                    name=chain["name"],
                    policy=policy,
                    rules=tuple(
                        rule_from_dict(rule, "%s.rules[%d]" % (chain_path, index)) for index, rule in enumerate(rules)
                    ),
                )
            )
        tables.append(Table(name=table["name"], chains=tuple(chains)))
    return FamilyRuleset(family=family, tables=tuple(tables))


def ruleset_from_dict(data):
    # type: (Any) -> HostRuleset
    """Inverse of ruleset_to_dict; ValueError naming the field on anything malformed."""
    if not isinstance(data, Mapping):
        raise ValueError("a compiled ruleset must be a mapping, got %s" % type(data).__name__)
    missing = [key for key in ("host", "ipv4", "ipv6") if key not in data]
    if missing:
        raise ValueError(
            "not a compiled fleetwall ruleset (missing %s); pass the output of "
            "fleetwall.iptables.compile_ruleset" % ", ".join(missing)
        )
    warnings = data.get("warnings", ())
    if not isinstance(warnings, (list, tuple)):
        raise ValueError("ruleset.warnings: must be a list")
    return HostRuleset(
        host=str(data["host"]),
        ipv4=family_from_dict(data["ipv4"], "ruleset.ipv4"),
        ipv6=family_from_dict(data["ipv6"], "ruleset.ipv6"),
        warnings=tuple(str(warning) for warning in warnings),
    )
