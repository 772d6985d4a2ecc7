# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: plan
version_added: "0.1.0"
author: fleetwall maintainers (@fleetwall)
short_description: Read a rendered plan's rulesets, each file checked against the plan's manifest
description:
  - Reads the plan directory that P(fleetwall.iptables.render_plan#module) wrote and returns the planned rulesets of
    O(hosts), in the form P(fleetwall.iptables.compile_fleet#filter) returns, so the
    P(fleetwall.iptables.ruleset#module) module applies exactly the planned bytes.
  - Fails, naming the file, when a file's SHA-256 is not the one C(manifest.json) records (a plan edited after it
    was rendered), and, naming the hosts, when some host of O(hosts) has no entry in the plan. Either way nothing of
    the plan is returned.
  - Also compares the plan with the current inventory, so a caller can tell a stale plan or a partial inventory
    (a slice) - whether the policy's hash still matches, and which hosts the plan's inventory and the current one
    do not share.
options:
  _terms:
    description: The plan directory (one).
    type: path
    required: true
  hosts:
    description:
      - The hosts whose planned rulesets to return; usually C(ansible_play_hosts_all).
      - Left out, every host of the plan.
    type: list
    elements: str
notes:
  - The policy's hash is that of C(fleetwall_services), C(fleetwall_addresses) and C(fleetwall_policy) as the first
    host of the current inventory (by name) sees them, as when the plan was rendered.
seealso:
  - module: fleetwall.iptables.render_plan
  - plugin: fleetwall.iptables.plan_diff
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Load the planned rulesets of every host of the play
  ansible.builtin.set_fact:
    planned: "{{ lookup('fleetwall.iptables.plan', 'plan', hosts=ansible_play_hosts_all) }}"
  run_once: true
"""

RETURN = r"""
_raw:
  description: One item, the plan as this run sees it.
  type: list
  elements: dict
  contains:
    rulesets:
      description: Host name to planned ruleset (C(host), C(ipv4), C(ipv6), C(warnings), and C(ipsets) when it has sets).
      type: dict
    manifest:
      description: The plan's C(manifest.json).
      type: dict
    policy_changed:
      description: Whether the current policy's hash differs from the one the plan recorded.
      type: bool
    inventory_missing:
      description: Hosts of the plan's inventory that the current inventory lacks (a slice, or removed hosts).
      type: list
      elements: str
    inventory_added:
      description: Hosts of the current inventory that the plan's inventory lacks.
      type: list
      elements: str
"""

from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.plan import PlanError, fleet_policy_sha256, read_plan


class LookupModule(LookupBase):
    def run(self, terms: List[Any], variables: Optional[Dict[str, Any]] = None, **kwargs: Any) -> List[Dict[str, Any]]:
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1 or not isinstance(terms[0], str):
            raise AnsibleLookupError("fleetwall.iptables.plan: give exactly one plan directory, got %r" % (terms,))
        variables = variables or {}
        inventory = sorted(variables["groups"].get("all", ()))
        try:
            manifest, rulesets = read_plan(terms[0], self.get_option("hosts"))
            policy_hash = fleet_policy_sha256(variables["hostvars"], inventory)
        except PlanError as exc:
            raise AnsibleLookupError(str(exc)) from None
        return [
            {
                "rulesets": rulesets,
                "manifest": manifest,
                "policy_changed": policy_hash != manifest["policy_sha256"],
                "inventory_missing": sorted(set(manifest["inventory"]) - set(inventory)),
                "inventory_added": sorted(set(inventory) - set(manifest["inventory"])),
            }
        ]
