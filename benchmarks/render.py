# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: playbooks/render.yml, a real ansible-playbook run, writing a whole fleet's plan.

What is measured, per inventory size (1,000 and 10,000 hosts by default), on
the synthetic fleet of benchmarks/compile.py (same seed, same policy, no ipset
sets), written as a YAML inventory with the policy in ``all.vars``:

* first render: ``ansible-playbook -i INVENTORY playbooks/render.yml`` into an
  empty plan directory, wall-clock time of the whole process (Ansible start,
  inventory parsing, compile, the render_plan task writing every file);
* no-op render: the same command again, which must report ``changed=0`` and
  leave every byte as it was (checked: the manifest's SHA-256 before and after);
* files: the plan's files, ``manifest.json`` included, and their size. With
  linear rules a ``group:`` reference becomes one rule per member, so the
  plan grows with the square of the fleet (4,279 rules per host on average at
  10,000 hosts, gigabytes in all); every size is also rendered with
  ``fleetwall_set_threshold`` (``--set-threshold``, default 16), where long
  address lists become ipset sets, as a fleet of that size would use.

With ``--old-sizes``, also the render.yml before plans (one ``copy`` task
execution per file), taken from git (``--old-revision``), for comparison; it
costs about 0.7 s a file, so keep those sizes small. Without it the table
shows the issue's figure for the old playbook (180.2 s at 100 hosts).

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/render.py                  # 1,000 and 10,000 hosts
    .venv/bin/python benchmarks/render.py --sizes 100      # smoke run, as CI does

The script reports and never fails on a missed target: it exits 0 unless a
render fails or a no-op render changes something.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SIZES = (1000, 10000)
TARGETS = {1000: 10.0, 10000: 60.0}  # issue 16: seconds for a real ansible-playbook render
OLD_FIGURE = "180.2 s at 100 hosts (issue 16, per-file copy loop, about 0.7 s a file)"
OLD_RENDER_REVISION = "5183ff0"  # the last render.yml with one copy task execution per file


def load_compile_benchmark() -> Any:
    spec = importlib.util.spec_from_file_location("fleetwall_compile_benchmark", os.path.join(ROOT, "benchmarks", "compile.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.import_collection()  # also creates .build/pytest, the collections path ansible-playbook uses here
    return module


def write_inventory(path: str, size: int, seed: int, set_threshold: int = 0) -> None:
    """The synthetic fleet as an Ansible inventory: fleet variables once in all.vars, hosts under their groups."""
    hostvars, groups = load_compile_benchmark().make_inventory(size, seed)
    fleet_names = ("fleetwall_services", "fleetwall_addresses", "fleetwall_policy")
    first = hostvars[groups["all"][0]]
    children: Dict[str, Any] = {}
    for group, members in sorted(groups.items()):
        if group in ("all", "ungrouped"):
            continue
        children[group] = {"hosts": {host: None for host in members}}  # an empty group still exists for the policy
    host_vars = {
        host: {key: value for key, value in variables.items() if key not in fleet_names and key != "inventory_hostname"}
        for host, variables in hostvars.items()
    }
    # Host variables once, in the first group that lists the host; Ansible merges them per host.
    for members in children.values():
        for host in members["hosts"]:
            if host_vars.get(host) is not None:
                members["hosts"][host] = host_vars.pop(host)
    fleet_vars = {name: first[name] for name in fleet_names}
    if set_threshold:
        fleet_vars["fleetwall_set_threshold"] = set_threshold
    inventory = {"all": {"vars": fleet_vars, "children": children}}
    with open(path, "w") as handle:
        json.dump(inventory, handle)  # JSON is YAML: the yaml inventory plugin reads it, fast


def run_render(playbook: str, inventory: str, plan: str, workdir: str) -> Dict[str, Any]:
    environment = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "pytest"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOME=os.path.join(workdir, "ansible-home"),
        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "ansible-local"),
        ANSIBLE_INVENTORY_ENABLED="ansible.builtin.yaml",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        PWD=workdir,
    )
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, playbook,
               "-e", "fleetwall_render_dir=%s" % plan]
    start = time.monotonic()
    completed = subprocess.run(command, cwd=workdir, env=environment, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if completed.returncode != 0:
        raise SystemExit("render failed (%s):\n%s%s" % (" ".join(command), completed.stdout[-4000:], completed.stderr[-4000:]))
    return {"seconds": seconds, "changed": "changed=0" not in completed.stdout}


def manifest_sha256(plan: str) -> str:
    with open(os.path.join(plan, "manifest.json"), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def old_playbook(workdir: str, revision: str) -> str:
    text = subprocess.run(["git", "-C", ROOT, "show", "%s:playbooks/render.yml" % revision], capture_output=True,
                          text=True, check=True).stdout
    path = os.path.join(workdir, "render-old.yml")
    with open(path, "w") as handle:
        handle.write(text)
    return path


def plan_mib(plan: str) -> float:
    return sum(os.path.getsize(os.path.join(plan, name)) for name in os.listdir(plan)) / 1048576.0


def measure(size: int, seed: int, old_revision: Optional[str], set_threshold: int = 0) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fleetwall-render-") as workdir:
        inventory = os.path.join(workdir, "inventory.yml")
        write_inventory(inventory, size, seed, set_threshold)
        plan = os.path.join(workdir, "plan")
        playbook = os.path.join(ROOT, "playbooks", "render.yml")
        first = run_render(playbook, inventory, plan, workdir)
        before = manifest_sha256(plan)
        again = run_render(playbook, inventory, plan, workdir)
        if again["changed"] or manifest_sha256(plan) != before:
            raise SystemExit("a no-op render of %d hosts changed the plan" % size)
        row = {"hosts": size, "set_threshold": set_threshold, "files": len(os.listdir(plan)), "mib": plan_mib(plan),
               "first_s": first["seconds"], "noop_s": again["seconds"]}
        if old_revision:
            row["old_s"] = run_render(old_playbook(workdir, old_revision), inventory, os.path.join(workdir, "old"), workdir)["seconds"]
        return row


def print_table(rows: List[Dict[str, Any]]) -> None:
    header = ["hosts", "set threshold", "files", "plan MiB", "first render s", "no-op render s", "ms/host", "target s", "met", "old per-file render s"]
    lines = [header]
    for row in rows:
        target = TARGETS.get(row["hosts"])
        worst = max(row["first_s"], row["noop_s"])
        lines.append([
            "%d" % row["hosts"], "%d" % row["set_threshold"], "%d" % row["files"], "%.0f" % row["mib"],
            "%.1f" % row["first_s"], "%.1f" % row["noop_s"],
            "%.2f" % (1000.0 * worst / row["hosts"]), "%.0f" % target if target else "-",
            ("yes" if worst <= target else "NO") if target else "-", "%.1f" % row["old_s"] if "old_s" in row else "-",
        ])
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths)))
    if not any("old_s" in row for row in rows):
        print("old per-file render.yml: %s" % OLD_FIGURE)


def parse_sizes(text: str) -> List[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated whole numbers, got %r" % text) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("expected positive sizes, got %r" % text)
    return sizes


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES),
                        help="comma-separated inventory sizes (default: %s)" % ",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--seed", type=int, default=20240611, help="random seed of the synthetic inventory")
    parser.add_argument("--set-threshold", type=int, default=16, metavar="N",
                        help="also render every size with fleetwall_set_threshold N (ipset sets; default: 16; 0: linear rules only)")
    parser.add_argument("--old-sizes", type=parse_sizes, default=[],
                        help="also time the per-file render.yml at these sizes (slow: about 0.7 s a file)")
    parser.add_argument("--old-revision", default=OLD_RENDER_REVISION, help="git revision of the per-file render.yml")
    args = parser.parse_args(argv)
    print("fleetwall render benchmark: real ansible-playbook playbooks/render.yml, %d CPU(s), load %.2f, seed %d"
          % (os.cpu_count() or 0, os.getloadavg()[0], args.seed), flush=True)
    rows = []
    thresholds = [0] + ([args.set_threshold] if args.set_threshold else [])
    for size in sorted(set(args.sizes) | set(args.old_sizes)):
        for threshold in thresholds:
            print("  rendering %d hosts, set threshold %d ..." % (size, threshold), file=sys.stderr, flush=True)
            old = args.old_revision if size in args.old_sizes and not threshold else None
            rows.append(measure(size, args.seed, old, threshold))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
