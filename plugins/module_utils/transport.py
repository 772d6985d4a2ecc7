# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A compiled ruleset as plain data, the form it takes between Ansible tasks.

Private to the fleetwall.iptables collection. Each family travels as its
rendered iptables-restore text: two strings per host, which Ansible carries
and templates cheaply even for thousands of hosts with thousands of rules,
and which a person can read in a debug message. parse.py reads them back
into the IR where the rules themselves are needed (the simulator). Module
code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

from typing import Any, Dict, Mapping, Optional

from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import SetTextError, canonical_text, parse_save
from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import FamilyRuleset, HostRuleset
from ansible_collections.fleetwall.iptables.plugins.module_utils.parse import RulesetTextError, parse_family
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import RenderCache, render_family


def ruleset_to_dict(ruleset, cache=None):
    # type: (HostRuleset, Optional[RenderCache]) -> Dict[str, Any]
    """The host, each family's iptables-restore text, and, when rules match ipset
    sets, the sets of both families as ``ipsets`` (module_utils/ipsets.py's
    canonical text: ``create`` and ``add`` lines)."""
    data = {
        "host": ruleset.host,
        "ipv4": render_family(ruleset.ipv4, cache),
        "ipv6": render_family(ruleset.ipv6, cache),
        "warnings": list(ruleset.warnings),
    }  # type: Dict[str, Any]
    if ruleset.ipv4.sets or ruleset.ipv6.sets:
        sets = sorted(ruleset.ipv4.sets + ruleset.ipv6.sets, key=lambda item: item.name)
        data["ipsets"] = "".join(cache.set_text(item) for item in sets) if cache else canonical_text(sets)
    return data


def _with_sets(families, text):
    # type: (Dict[str, FamilyRuleset], Any) -> Dict[str, FamilyRuleset]
    if not isinstance(text, str):
        raise ValueError("ruleset.ipsets: must be ipset text, got %s" % type(text).__name__)
    try:
        sets = parse_save(text, owned=lambda name: True)
    except (SetTextError, ValueError) as exc:
        raise ValueError("ruleset.ipsets: %s" % exc)
    found = {}
    for key, family_ruleset in families.items():
        own = tuple(sorted((item for item in sets.values() if item.family == family_ruleset.family), key=lambda item: item.name))
        found[key] = family_ruleset._replace(sets=own)
    return found


def _check_set_references(key, family_ruleset):
    # type: (str, FamilyRuleset) -> None
    defined = set(item.name for item in family_ruleset.sets)
    for table in family_ruleset.tables:
        for chain in table.chains:
            for rule in chain.rules:
                for name in (rule.source_set, rule.destination_set):
                    if name and name not in defined:
                        raise ValueError("ruleset.%s: a rule matches the ipset set %s, which ruleset.ipsets does not define" % (key, name))


def ruleset_from_dict(data):
    # type: (Any) -> HostRuleset
    """Inverse of ruleset_to_dict; ValueError naming what is malformed."""
    if not isinstance(data, Mapping):
        raise ValueError("a compiled ruleset must be a mapping, got %s" % type(data).__name__)
    missing = [key for key in ("host", "ipv4", "ipv6") if key not in data]
    if missing:
        raise ValueError(
            "not a compiled fleetwall ruleset (missing %s); pass the output of "
            "fleetwall.iptables.compile_ruleset" % ", ".join(missing)
        )
    families = {}
    for key, family in (("ipv4", 4), ("ipv6", 6)):
        text = data[key]
        if not isinstance(text, str):
            raise ValueError("ruleset.%s: must be iptables-restore text, got %s" % (key, type(text).__name__))
        try:
            families[key] = parse_family(text, family)
        except RulesetTextError as exc:
            raise ValueError("ruleset.%s: %s" % (key, exc))
    if "ipsets" in data:
        families = _with_sets(families, data["ipsets"])
    for key, family_ruleset in families.items():
        _check_set_references(key, family_ruleset)
    warnings = data.get("warnings", ())
    if not isinstance(warnings, (list, tuple)):
        raise ValueError("ruleset.warnings: must be a list")
    return HostRuleset(
        host=str(data["host"]),
        ipv4=families["ipv4"],
        ipv6=families["ipv6"],
        warnings=tuple(str(warning) for warning in warnings),
    )
