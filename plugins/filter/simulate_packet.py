# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter simulate_packet; documented in simulate_packet.yml beside this file."""

from __future__ import annotations

from typing import Any, Dict, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import simulate, verdict_to_dict
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.packets import packet_from_dict
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.filter_errors import reports_policy_errors


@reports_policy_errors
def simulate_packet(ruleset: Mapping[str, Any], packet: Mapping[str, Any]) -> Dict[str, Any]:
    if not isinstance(packet, Mapping):
        raise AnsibleFilterError("simulate_packet: the packet must be a mapping, e.g. {source: ..., destination: ...}")
    parsed_packet = packet_from_dict(packet)
    parsed = ruleset_from_dict(ruleset)
    return verdict_to_dict(simulate(parsed.family(parsed_packet.family), parsed_packet))


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        return {"simulate_packet": simulate_packet}
