# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters compile_ruleset and compile_fleet; documented in the .yml files beside this one."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Sequence, Tuple

from ansible.utils.display import Display

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FLEET_VARIABLES, FleetCompiler
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import RenderCache
from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_to_dict
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.filter_errors import (
    check_host_name,
    check_inventory,
    reports_policy_errors,
)

display = Display()


def _compiler(hostvars: Any, groups: Mapping[str, Sequence[str]]) -> FleetCompiler:
    """A compiler that recognises group_vars/all by the identity of its raw values."""
    raw_get = getattr(hostvars, "raw_get", None)
    if raw_get is None:
        return FleetCompiler(hostvars, groups)

    def raw_fleet_variables(host: str) -> Tuple[Any, ...]:
        raw = raw_get(host)
        return tuple(raw.get(name) for name in FLEET_VARIABLES)

    return FleetCompiler(hostvars, groups, raw_fleet_variables)


def _warn(rulesets: Sequence[Dict[str, Any]], fleet_warnings: Sequence[str] = ()) -> None:
    """Each distinct warning once: group rules' warnings name no host, so a fleet's collapse into one."""
    seen = set()
    for warnings in [ruleset["warnings"] for ruleset in rulesets] + [fleet_warnings]:
        for warning in warnings:
            if warning not in seen:
                seen.add(warning)
                display.warning("fleetwall: %s" % warning)


@reports_policy_errors
def compile_ruleset(hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]], host: str) -> Dict[str, Any]:
    check_inventory("compile_ruleset", hostvars, groups)
    check_host_name("compile_ruleset", host)
    ruleset = ruleset_to_dict(_compiler(hostvars, groups).compile_host(host))
    _warn([ruleset])
    return ruleset


@reports_policy_errors
def compile_fleet(
    hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]], hosts: Sequence[str] = ()
) -> Dict[str, Dict[str, Any]]:
    check_inventory("compile_fleet", hostvars, groups, hosts)
    names = sorted(hosts) if hosts else sorted(groups.get("all", ()))
    compiler = _compiler(hostvars, groups)
    compiled = compiler.compile_hosts(names)
    cache = RenderCache()  # group rules are shared objects: render each once for the fleet
    rulesets = {host: ruleset_to_dict(compiled[host], cache) for host in names}
    # "Defined but unused" needs every host's fleetwall_host_rules: only when the whole inventory was compiled
    # (a batch of a serial play has not seen the others, and reading them all again per batch costs too much).
    inventory = set(str(host) for host in groups.get("all", ()))
    fleet_warnings = compiler.unused_definition_warnings(names) if inventory <= set(names) else ()
    _warn(list(rulesets.values()), fleet_warnings)
    return rulesets


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        return {"compile_ruleset": compile_ruleset, "compile_fleet": compile_fleet}
