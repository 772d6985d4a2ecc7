# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter render_ruleset; documented in render_ruleset.yml beside this file."""

from __future__ import annotations

from typing import Any, Dict, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import coexist_boot_text
from ansible_collections.fleetwall.iptables.plugins.module_utils.render import render_family
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.filter_errors import reports_policy_errors


@reports_policy_errors
def render_ruleset(ruleset: Mapping[str, Any], mode: str = "own") -> Dict[str, str]:
    if mode not in ("own", "coexist"):
        raise AnsibleFilterError("render_ruleset: mode must be 'own' or 'coexist', got %r" % (mode,))
    parsed = ruleset_from_dict(ruleset)  # validates, whatever the mode
    if mode == "own":
        return {"ipv4": render_family(parsed.ipv4), "ipv6": render_family(parsed.ipv6)}
    return {"ipv4": coexist_boot_text(parsed.ipv4), "ipv6": coexist_boot_text(parsed.ipv6)}


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        return {"render_ruleset": render_ruleset}
