# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filters' input checks, and fleetwall's own errors turned into AnsibleFilterError: a message, no traceback.

Private to the fleetwall.iptables collection.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import MissingLibraryError
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError, type_name

# A filter's hosts argument left out.
NO_HOSTS = ()


def check_inventory(name: str, hostvars: Any, groups: Any, hosts: Any = NO_HOSTS) -> None:
    """The inventory arguments of filter ``name`` as Ansible passes them, else an AnsibleFilterError naming the argument."""
    problem = _inventory_problem(hostvars, groups) or _hosts_problem(hosts)
    if problem is not None:
        raise AnsibleFilterError("%s: %s" % (name, problem))


def check_host_name(name: str, host: Any) -> None:
    if not isinstance(host, str):
        raise AnsibleFilterError("%s: host must be an inventory host name, got %s" % (name, type_name(host)))


def _inventory_problem(hostvars: Any, groups: Any) -> Optional[str]:
    if not hasattr(hostvars, "keys") or not hasattr(hostvars, "__getitem__"):
        return "the input must be hostvars (a mapping of host to variables), got %s" % type_name(hostvars)
    if not isinstance(groups, Mapping):
        return "the groups argument must be the 'groups' mapping, got %s" % type_name(groups)
    for group, members in groups.items():
        if not isinstance(members, (list, tuple)) or not all(isinstance(member, str) for member in members):
            return "groups['%s'] must be a list of host names, got %s" % (group, _list_type_name(members))
    return None


def _hosts_problem(hosts: Any) -> Optional[str]:
    if not isinstance(hosts, (list, tuple)) or not all(isinstance(host, str) for host in hosts):
        return "hosts must be a list of inventory host names, got %s" % _list_type_name(hosts)
    return None


def _list_type_name(value: Any) -> str:
    """'integer', or for a list whose items are not all strings, 'a list holding integer'."""
    if isinstance(value, (list, tuple)):
        odd = next(item for item in value if not isinstance(item, str))
        return "a list holding %s" % type_name(odd)
    return type_name(value)


def reports_policy_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (PolicyError, MissingLibraryError) as exc:
            raise AnsibleFilterError(str(exc)) from None
        except ValueError as exc:
            raise AnsibleFilterError("%s: %s" % (function.__name__, exc)) from None

    return wrapper
