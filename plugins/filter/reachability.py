# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters reachability_model, compare_reachability and explain; documented in the .yml files beside this one."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.explain import explain as explain_flow
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.reachability import build_model, compare
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.filter_errors import check_inventory, reports_policy_errors

display = Display()


@reports_policy_errors
def reachability_model(
    hostvars: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    hosts: Sequence[str] = (),
    hosts_per_group: int = 2,
    sources_per_group: int = 0,
) -> Dict[str, Any]:
    check_inventory("reachability_model", hostvars, groups, hosts)
    for name, value, meaning in (("hosts_per_group", hosts_per_group, "every host"), ("sources_per_group", sources_per_group, "every pair")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AnsibleFilterError("reachability_model: %s must be a whole number, 0 for %s, got %r" % (name, meaning, value))
    model = build_model(hostvars, groups, list(hosts) or None, hosts_per_group, sources_per_group)
    for warning in model["warnings"]:
        display.warning("fleetwall: %s" % warning)
    return model


@reports_policy_errors
def compare_reachability(model: Mapping[str, Any], observations: Any, generated: Optional[str] = None) -> Dict[str, Any]:
    return compare(model, observations, generated)


@reports_policy_errors
def explain(hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]], query: Any, family: Optional[int] = None) -> Dict[str, Any]:
    check_inventory("explain", hostvars, groups)
    return explain_flow(hostvars, groups, query, family)


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        return {"reachability_model": reachability_model, "compare_reachability": compare_reachability, "explain": explain}
