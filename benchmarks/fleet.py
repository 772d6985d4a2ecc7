"""What Ansible costs per host on the namespace lab: facts, site.yml, render.yml and verify.yml at 6 and 100 hosts.

For each size the lab of scripts/lab.py is built (6: examples/lab; larger:
examples/lab's groups scaled up, `lab.py inventory SIZE`), every host is
probed from every other with no firewall (the kernel log must show no
neighbour table overflow), and then, from the bastion over SSH with
Ansible's default 5 forks, each step runs once and is timed: a facts-only
play, site.yml (first converge, then a no-op run that must change nothing),
render.yml and verify.yml (which must pass). The table gives the seconds,
the seconds per host at the largest size and each step's ratio to the
facts-only play. No timing asserts: it exits non-zero only if a step fails.
Needs root; tears the lab down after each size.

    .venv/bin/python benchmarks/fleet.py                 # 6 and 100 hosts (about half an hour)
    .venv/bin/python benchmarks/fleet.py --sizes 6       # the CI size, about 3 minutes
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent
LAB = [sys.executable, str(REPO / "scripts" / "lab.py")]
FACTS_PLAY = "- name: Gather facts only\n  hosts: all\n  gather_facts: true\n  tasks: []\n"
STEPS = (
    ("probe", "`lab.py probe`, no firewall (every host to every host)"),
    ("facts", "facts-only play"),
    ("site_first", "`site.yml` first converge"),
    ("site_noop", "`site.yml` no-op"),
    ("render", "`render.yml`"),
    ("verify", "`verify.yml`"),
)
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


@functools.lru_cache(maxsize=None)
def collections_path() -> str:
    """The collection as Ansible loads it: a copy of this checkout (scripts/collection-tree.sh), made once."""
    tree = subprocess.run([str(REPO / "scripts" / "collection-tree.sh")], capture_output=True, text=True, check=True).stdout.strip()
    return str(Path(tree).parents[2])


def lab(*arguments: str, log: Optional[Path] = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1")
    completed = subprocess.run(LAB + list(arguments), cwd=REPO, capture_output=True, text=True, env=environment, check=False)
    if log is not None:
        log.write_text(completed.stdout + completed.stderr)
    return completed


def timed(name: str, work: Path, *arguments: str) -> tuple:
    started = time.monotonic()
    completed = lab(*arguments, log=work / (name + ".log"))
    seconds = time.monotonic() - started
    print("fleet:   %s %.1f s" % (name, seconds), flush=True)
    if completed.returncode != 0:
        sys.exit("fleet: %s failed (exit %d); see %s" % (name, completed.returncode, work / (name + ".log")))
    return seconds, completed.stdout


def changed_hosts(output: str) -> int:
    return sum(1 for recap in RECAP.findall(output) if int(recap[1]))


def run_size(size: int, work: Path) -> Dict[str, object]:
    work.mkdir(parents=True, exist_ok=True)
    inventory = "examples/lab"
    if size != 6:
        inventory = str(work / "inventory")
        lab("inventory", str(size), inventory)
    (work / "facts.yml").write_text(FACTS_PLAY)
    load_before = os.getloadavg()
    seconds: Dict[str, float] = {}
    started = time.monotonic()
    up = lab("up", inventory, log=work / "up.log")
    if up.returncode != 0:
        sys.exit("fleet: lab.py up failed; see %s" % (work / "up.log"))
    seconds["up"] = time.monotonic() - started
    try:
        seconds["probe"] = timed("probe", work, "probe", inventory, "--json", str(work / "probe.json"))[0]
        probe = json.loads((work / "probe.json").read_text())
        seconds["facts"] = timed("facts", work, "playbook", inventory, str(work / "facts.yml"))[0]
        seconds["site_first"], first = timed("site_first", work, "playbook", inventory, "playbooks/site.yml")
        seconds["site_noop"], noop = timed("site_noop", work, "playbook", inventory, "playbooks/site.yml")
        seconds["render"] = timed("render", work, "playbook", inventory, "playbooks/render.yml",
                                  "-e", "fleetwall_render_dir=%s" % (work / "rendered"))[0]
        seconds["verify"] = timed("verify", work, "playbook", inventory, "playbooks/verify.yml",
                                  "-e", "fleetwall_verify_report=%s" % (work / "reachability.html"),
                                  "-e", "fleetwall_verify_json=%s" % (work / "verification.json"))[0]
    finally:
        lab("down")
    verification = json.loads((work / "verification.json").read_text())
    return {
        "hosts": size,
        "seconds": seconds,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "probe": probe,
        "first_changed_hosts": changed_hosts(first),
        "noop_changed_hosts": changed_hosts(noop),
        "verify_summary": verification["summary"],
        "verify_sampling": (verification.get("sampling") or {}).get("description", ""),
    }


def table(results: List[Dict[str, object]]) -> str:
    largest = results[-1]
    sizes = [int(result["hosts"]) for result in results]
    header = "| step | " + " | ".join("%d hosts" % size for size in sizes) + " | per host at %d | " % sizes[-1]
    header += " | ".join("x facts at %d" % size for size in sizes) + " |"
    lines = [header, "|---" * (2 + 2 * len(sizes)) + "|"]
    for key, label in STEPS:
        cells = ["%.1f s" % result["seconds"][key] for result in results]
        per_host = "%.2f s" % (largest["seconds"][key] / sizes[-1])
        ratios = ["%.2f" % (result["seconds"][key] / result["seconds"]["facts"]) for result in results]
        lines.append("| %s | %s | %s | %s |" % (label, " | ".join(cells), per_host, " | ".join(ratios)))
    return "\n".join(lines)


def notes(results: List[Dict[str, object]]) -> str:
    lines = []
    for result in results:
        probe, summary = result["probe"], result["verify_summary"]
        lines.append(
            "- %d hosts: lab up %.1f s; no-firewall probes %d, %d open, %d new neighbour table overflows; "
            "site.yml changed %d hosts, then %d; verify.yml %d checks, %d passed, %d mismatches, %d inconclusive (%s); "
            "load average %s before, %s after"
            % (result["hosts"], result["seconds"]["up"], probe["probes"], probe["states"]["open"], probe["neighbour_overflows"],
               result["first_changed_hosts"], result["noop_changed_hosts"], summary["checks"], summary["passed"],
               summary["mismatches"], summary["inconclusive"], result["verify_sampling"],
               "/".join("%.2f" % value for value in result["load_before"]),
               "/".join("%.2f" % value for value in result["load_after"]))
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="6,100", help="lab sizes, comma-separated (6 is examples/lab itself)")
    parser.add_argument("--work", type=Path, help="where logs, reports and rendered files go (default: a new temporary directory)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON there")
    arguments = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("fleet: the lab needs root")
    work = arguments.work or Path(tempfile.mkdtemp(prefix="fleetwall-fleet-"))
    results = []
    for size in (int(text) for text in arguments.sizes.split(",")):
        print("fleet: %d hosts (logs in %s)" % (size, work / str(size)), flush=True)
        results.append(run_size(size, work / str(size)))
    print(table(results))
    print(notes(results))
    if arguments.json:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n")
    failed = [r for r in results if r["noop_changed_hosts"] or r["verify_summary"]["mismatches"] or r["probe"]["states"]["open"] != r["probe"]["probes"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
