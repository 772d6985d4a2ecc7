# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter reachability_report; documented in reachability_report.yml beside this file."""

from __future__ import annotations

from typing import Any, Dict, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.filter_errors import reports_policy_errors
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.report import render_report


@reports_policy_errors
def reachability_report(verification: Mapping[str, Any], title: str = "fleetwall reachability") -> str:
    if not isinstance(title, str) or not title:
        raise AnsibleFilterError("reachability_report: title: must be a non-empty string, got %r" % (title,))
    # A bad field raises a ValueError naming it, which reports_policy_errors
    # turns into "reachability_report: verification.rows[3].status: ...".
    return render_report(verification, title=title)


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        return {"reachability_report": reachability_report}
