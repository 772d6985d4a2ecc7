"""Make ``ansible_collections.fleetwall.iptables`` importable when pytest runs
from the repository root (ansible-test units sets this up by itself)."""

import os
import sys

try:
    import ansible_collections.fleetwall.iptables  # noqa: F401  pylint: disable=unused-import
except ImportError:
    ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    SHIM = os.path.join(ROOT, ".build", "pytest", "ansible_collections", "fleetwall")
    os.makedirs(SHIM, exist_ok=True)
    LINK = os.path.join(SHIM, "iptables")
    if not os.path.islink(LINK):
        os.symlink(ROOT, LINK)
    sys.path.insert(0, os.path.join(ROOT, ".build", "pytest"))
    for name in [module for module in sys.modules if module.startswith("ansible_collections")]:
        del sys.modules[name]
