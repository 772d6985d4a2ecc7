"""A small inventory shared by the unit tests: hostvars and groups as Ansible passes them."""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Tuple

POLICY: Dict[str, Any] = {
    "all": {"inbound": [{"service": "ssh", "from": ["office", "group:bastion"]}, {"service": "ping"}]},
    "web": {"inbound": [{"service": ["http", "https"]}]},
    "db": {"inbound": [{"service": "postgres", "from": "group:web", "comment": "app tier"}]},
}
ADDRESSES: Dict[str, Any] = {"office": ["203.0.113.0/24", "2001:db8:100::/48"]}
HOSTS: Dict[str, Dict[str, Any]] = {
    "bastion": {"ansible_host": "10.0.0.2", "ansible_default_ipv6": {"address": "fd00::2"}},
    "web1": {"ansible_host": "10.0.1.1", "ansible_default_ipv6": {"address": "fd00::1:1"}},
    "web2": {"ansible_host": "10.0.1.2", "ansible_default_ipv6": {"address": "fd00::1:2"}},
    "db1": {"ansible_host": "10.0.2.1", "ansible_default_ipv6": {"address": "fd00::2:1"}},
}
GROUPS: Dict[str, List[str]] = {
    "all": ["bastion", "web1", "web2", "db1"],
    "ungrouped": [],
    "bastion": ["bastion"],
    "web": ["web1", "web2"],
    "db": ["db1"],
}


def inventory(
    policy: Optional[Dict[str, Any]] = None,
    addresses: Optional[Dict[str, Any]] = None,
    services: Optional[Dict[str, Any]] = None,
    host_vars: Optional[Dict[str, Dict[str, Any]]] = None,
    groups: Optional[Dict[str, List[str]]] = None,
) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    """(hostvars, groups) with the fleet variables on every host, as group_vars/all gives them."""
    fleet_vars: Dict[str, Any] = {
        "fleetwall_policy": copy.deepcopy(POLICY if policy is None else policy),
        "fleetwall_addresses": copy.deepcopy(ADDRESSES if addresses is None else addresses),
    }
    if services is not None:
        fleet_vars["fleetwall_services"] = services
    groups = copy.deepcopy(GROUPS if groups is None else groups)
    hostvars: Dict[str, Dict[str, Any]] = {}
    for host in groups["all"]:
        hostvars[host] = dict(fleet_vars, inventory_hostname=host, **copy.deepcopy(HOSTS.get(host, {})))
        hostvars[host].update((host_vars or {}).get(host, {}))
    return hostvars, groups
