# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Explain one flow: can A reach B on a service, and which rule of the policy decides?

Private to the fleetwall.iptables collection. Judges the flow with the
reachability model's own judge (reachability.judge_flow), so explain and the
model never disagree; through a gateway's port forward it names the forward
and the backend. Controller-side only (plugin_utils).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError, Problems, did_you_mean
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import ServiceEntry
from ansible_collections.fleetwall.iptables.plugins.module_utils.verification import ADDRESSES, BLOCKED, REACHABLE
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import AddressRef
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.forwarding import forward_to_dict
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.policy import parse_services
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.reachability import (
    Check,
    Endpoint,
    Fleet,
    check_row,
    judge_flow,
    probe_spec,
    verdict_dict,
)

try:
    import netaddr
except ImportError:  # require_libraries() says what to install
    netaddr = None

_QUERY = re.compile(r"^\s*(?P<source>\S+)\s*->\s*(?P<destination>\S+)\s+(?P<service>\S+)\s*$")


def _endpoint_for(fleet, text, what):
    # type: (Fleet, str, str) -> Endpoint
    if text in fleet.all_hosts:
        return fleet.host_endpoint(text)
    if text in fleet.policy.address_sets:
        networks = fleet.resolver.resolve((AddressRef("set", text),), "query." + what)
        addresses = {}  # type: Dict[int, str]
        for family, cidrs in ((4, networks.ipv4), (6, networks.ipv6)):
            if cidrs:
                network = netaddr.IPNetwork(cidrs[0])
                addresses[family] = str(network.network + 1 if network.size > 2 else network.network)
        return Endpoint(text, ADDRESSES, (), addresses, None)
    try:
        address = netaddr.IPAddress(text)
    except (netaddr.AddrFormatError, ValueError):
        raise PolicyError([
            "query.%s: '%s' is neither an inventory host, an address set nor an IP address%s"
            % (what, text, did_you_mean(text, fleet.all_hosts + sorted(fleet.policy.address_sets)))
        ])
    return fleet.endpoint_at(str(address), address.version)


def _entries_for(fleet, text):
    # type: (Fleet, str) -> Tuple[ServiceEntry, ...]
    if text in fleet.policy.services:
        return fleet.policy.services[text]
    problems = Problems()
    parsed = parse_services({"query": [text]}, problems)
    if problems.messages or "query" not in parsed:
        raise PolicyError([
            "query.service: '%s' is neither a service of the policy nor PROTOCOL[/PORT] such as tcp/5432%s"
            % (text, did_you_mean(text, sorted(fleet.policy.services)))
        ])
    return parsed["query"]


def _explanation(check, service):
    # type: (Check, str) -> Dict[str, Any]
    """One family's answer to explain: the verdict at each end and what decided."""
    row = check_row(check)
    reachable = check.expected == REACHABLE
    stopped_at = check.egress if check.egress and check.egress.verdict != "ACCEPT" else check.backend_ingress or check.ingress
    verdict = "ACCEPT" if reachable else stopped_at.verdict
    forward = None
    if check.forward is not None and check.backend is not None:
        forward = forward_to_dict(check.forward, check.backend.name, verdict_dict(check.backend.name, check.backend_ingress))
    return {
        "family": check.family,
        "source_address": row.source_address,
        "destination_address": row.destination_address,
        "packet": check.spec.label,
        "verdict": verdict,
        "reachable": reachable,
        "egress": row.egress,
        "ingress": row.ingress,
        "forward": forward,
        "decided_by": check.decided_by,
        "explanation": "%s -> %s %s (%s, IPv%d): %s; %s" % (
            row.source, row.destination, service, check.spec.label, check.family,
            REACHABLE if reachable else "%s (%s)" % (BLOCKED, verdict), check.decided_by),
    }


def explain(hostvars, groups, query, family=None):
    # type: (Mapping[str, Mapping[str, Any]], Mapping[str, Sequence[str]], Any, Optional[int]) -> Dict[str, Any]
    """'web1 -> db1 postgres': the verdict at each end, per family, and the policy entry that decides it."""
    if isinstance(query, Mapping):
        unknown = sorted(str(key) for key in query if key not in ("from", "to", "service"))
        if unknown or not all(key in query for key in ("from", "to", "service")):
            raise PolicyError(["query: a mapping needs exactly from, to and service, e.g. {from: web1, to: db1, service: postgres}"])
        parts = {"source": str(query["from"]), "destination": str(query["to"]), "service": str(query["service"])}
    elif isinstance(query, str) and _QUERY.match(query):
        match = _QUERY.match(query)
        parts = {key: match.group(key) for key in ("source", "destination", "service")}
    else:
        raise PolicyError(["query: write 'SOURCE -> DESTINATION SERVICE', e.g. 'web1 -> db1 postgres', got %r" % (query,)])
    if family not in (None, 4, 6):
        raise PolicyError(["family: must be 4 or 6, got %r" % (family,)])
    fleet = Fleet(hostvars, groups)
    source = _endpoint_for(fleet, parts["source"], "from")
    destination = _endpoint_for(fleet, parts["destination"], "to")
    if source.ruleset is None and destination.ruleset is None:
        raise PolicyError(["query: neither %s nor %s is an inventory host; there is no ruleset to ask" % (source.name, destination.name)])
    entries = _entries_for(fleet, parts["service"])
    results = []  # type: List[Dict[str, Any]]
    for each_family in (4, 6):
        if family not in (None, each_family):
            continue
        if each_family not in source.addresses or each_family not in destination.addresses:
            continue
        spec = probe_spec(entries, each_family)
        if spec is None:
            continue
        check = judge_flow(source, destination, each_family, spec, "explain", parts["service"], fleet.endpoint_at)
        results.append(_explanation(check, parts["service"]))
    if not results:
        raise PolicyError([
            "query: %s and %s share no address family in which %s exists" % (source.name, destination.name, parts["service"])
        ])
    return {
        "query": "%s -> %s %s" % (source.name, destination.name, parts["service"]),
        "reachable": all(result["reachable"] for result in results),
        "results": results,
    }
