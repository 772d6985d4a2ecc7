# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn fleetwall's own errors into AnsibleFilterError: a message, no traceback.

Private to the fleetwall.iptables collection.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from ansible.errors import AnsibleFilterError

from ansible_collections.fleetwall.iptables.plugins.plugin_utils.addresses import MissingLibraryError
from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import PolicyError


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
