# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter plan_diff; documented in plan_diff.yml beside this file."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Union

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import type_name
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.plan import format_plan_diff, plan_diff as diff_rulesets

OUTPUTS = ("data", "text")


def _check_rulesets(name: str, rulesets: Any) -> None:
    if not isinstance(rulesets, Mapping):
        raise AnsibleFilterError("plan_diff: %s must map host names to rulesets, got %s" % (name, type_name(rulesets)))
    for host, ruleset in rulesets.items():
        if not isinstance(ruleset, Mapping):
            raise AnsibleFilterError("plan_diff: %s['%s'] must be a compiled ruleset, got %s" % (name, host, type_name(ruleset)))


def plan_diff(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]], output: str = "data") -> Union[Dict[str, Any], str]:
    if output not in OUTPUTS:
        raise AnsibleFilterError("plan_diff: output must be 'data' or 'text', got %r" % (output,))
    _check_rulesets("the input", old)
    _check_rulesets("the other rulesets", new)
    diff = diff_rulesets(old, new)
    return diff if output == "data" else format_plan_diff(diff)


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        return {"plan_diff": plan_diff}
