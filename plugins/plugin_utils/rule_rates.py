# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rate matches a policy rule's iptables rules get: limit, hashlimit, connlimit, and its LOG rule's.

Private to the fleetwall.iptables collection. Controller-side only (plugin_utils): the compiler uses it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
from typing import Any, Dict, Optional

from ansible_collections.fleetwall.iptables.plugins.module_utils.ir import ConnLimit, HashLimit, Rule
from ansible_collections.fleetwall.iptables.plugins.module_utils.rates import DEFAULT_BURST
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy import PolicyRule
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy_values import RateLimit


def hashlimit_name(rule):
    # type: (PolicyRule) -> str
    """The kernel's name for a rule's per-source buckets: one per policy rule (its expansions share them), and a
    new one whenever the limit changes, since rules of one name share one table whatever their rates."""
    limit = rule.rate_limit
    digest = hashlib.sha1(("%s %s %s %s" % (rule.origin, limit, rule.action, rule.direction)).encode("utf-8")).hexdigest()
    return "fw-" + digest[:12]


def rate_fields(rule, family):
    # type: (PolicyRule, int) -> Dict[str, Any]
    """The rate matches of a rule's iptables rules: within the limits for accept, beyond them for drop and reject."""
    fields = {}  # type: Dict[str, Any]
    above = rule.action != "accept"
    limit = rule.rate_limit
    if limit is not None and limit.per_source:
        fields["hashlimit"] = HashLimit(limit.rate, limit.burst, hashlimit_name(rule), above)
    elif limit is not None:
        fields["limit"] = limit.rate
        fields["limit_burst"] = limit.burst if limit.burst != DEFAULT_BURST else None
    if rule.max_connections is not None:
        fields["connlimit"] = ConnLimit(rule.max_connections, 32 if family == 4 else 128, above)
    return fields


def log_rule(base, prefix, limit):
    # type: (Rule, str, Optional[RateLimit]) -> Rule
    """The LOG rule ahead of a rule: the same matches, so it logs what the rule decides, and the log's own limit.

    Its per-source limit counts in buckets of its own (a name of its own): it sees the very packets the
    rule sees, so it decides alike without spending the rule's tokens."""
    fields = {"target": "LOG", "reject_with": None, "log_prefix": prefix}  # type: Dict[str, Any]
    if base.hashlimit is not None:
        fields["hashlimit"] = base.hashlimit._replace(name="fwlog-" + base.hashlimit.name[len("fw-"):])
    if limit is not None:
        fields["limit"] = limit.rate
        fields["limit_burst"] = limit.burst if limit.burst != DEFAULT_BURST else None
    return base._replace(**fields)
