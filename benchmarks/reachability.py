# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: build the reachability model of a fleet, as verify.yml's first task does.

Uses the seeded synthetic fleet of benchmarks/compile.py (20 groups, 50 custom
services, thousands of rules per host). For each inventory size, one
``build_model(hostvars, groups, hosts_per_group=N)`` is timed: compiling the
sampled hosts, then judging every source x destination x service x family by
the simulator on both ends and on the reply path. There is no alternative
to run side by side: no other Ansible firewall tool predicts reachability.
What matters is the cost per check, which the table reports.

    .venv/bin/python benchmarks/reachability.py [--sizes 100,1000] [--hosts-per-group 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load_compile_benchmark():
    spec = importlib.util.spec_from_file_location("fleetwall_compile_benchmark", os.path.join(HERE, "compile.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--sizes", default="100,1000", help="inventory sizes, comma-separated (default 100,1000)")
    parser.add_argument("--hosts-per-group", type=int, default=1, help="hosts of each group that take part (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    fleet = load_compile_benchmark()
    fleet.import_collection()
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.fleetwall.iptables.plugins.plugin_utils.reachability import build_model

    print("| hosts | sampled | services | checks | probes | seconds | ms per check |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in (int(text) for text in args.sizes.split(",")):
        hostvars, groups = fleet.make_inventory(size, args.seed)
        start = time.perf_counter()
        model = build_model(hostvars, groups, hosts_per_group=args.hosts_per_group)
        seconds = time.perf_counter() - start
        checks = len(model["checks"])
        probes = sum(len(targets) for targets in model["probes"].values())
        print("| %d | %d | %d | %d | %d | %.1f | %.2f |" % (
            size, len(model["hosts"]), len(model["services"]), checks, probes, seconds, 1000.0 * seconds / max(checks, 1)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
