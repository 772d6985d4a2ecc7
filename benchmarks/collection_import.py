# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the benchmarks share: making this working tree importable as the collection."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS_ROOT = ROOT / ".build" / "pytest"


def import_collection() -> None:
    """Make ansible_collections.fleetwall.iptables importable, as tests/conftest.py does."""
    shim = COLLECTIONS_ROOT / "ansible_collections" / "fleetwall"
    link = shim / "iptables"
    if not link.is_symlink():
        shim.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT)
    if str(COLLECTIONS_ROOT) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS_ROOT))
