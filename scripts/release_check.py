"""Checks of release artefacts for scripts/release-check.sh; each prints what is wrong and exits 1."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict, List

import yaml

EE_PYTHON = {"jmespath", "netaddr"}
TARGET_PACKAGES = re.compile(r"^(iptables|ip6tables|ipset|iproute|nftables|netfilter)", re.IGNORECASE)


def new_items(release: Dict) -> List[str]:
    """Names of the modules, plugins and roles a release adds."""
    groups = [release.get("modules", [])] + list(release.get("plugins", {}).values())
    groups += list(release.get("objects", {}).values())
    return [item["name"] for group in groups for item in group]


def changelog_problems(rst: str, changes: Dict) -> List[str]:
    """A release summary; each new plugin and role listed once, under New, and not announced again as a change."""
    release = next(iter(changes["releases"].values()))
    problems = [] if release.get("changes", {}).get("release_summary") else ["no release summary"]
    names = new_items(release)
    problems += ["%s is not listed as new" % role for role in ("fleetwall_firewall", "fleetwall_persistence")
                 if role not in names]
    changes_part, new_part = (rst.split("\nNew ", 1) + [""])[:2]
    for name in names:
        listed = len(re.findall(r"(?m)^- %s - " % re.escape(name), new_part))
        announced = re.findall(r"(?m)^- %s(?: \w+)? - new " % re.escape(name), changes_part)
        if listed != 1 or announced:
            problems.append("%s is listed %d time(s) as new and announced %d time(s) among the changes"
                            % (name, listed, len(announced)))
    return problems


def execution_environment_problems(context: Path, introspected: Dict) -> List[str]:
    """The context installs this collection; the collection asks the image for controller-side things only."""
    problems = []
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    if "fleetwall.iptables" not in [item["name"] for item in galaxy.get("collections", [])]:
        problems.append("the build context does not install fleetwall.iptables")
    python = {re.split(r"[<>=!~ ;\[]", line, maxsplit=1)[0].lower() for line in introspected.get("python", [])}
    if python != EE_PYTHON:
        problems.append("Python requirements are %s, expected %s" % (sorted(python), sorted(EE_PYTHON)))
    problems += ["target-host package in the image: %s" % line
                 for line in introspected.get("system", []) if TARGET_PACKAGES.match(line)]
    return problems


def main(argv: List[str]) -> int:
    if argv[1] == "changelog":
        problems = changelog_problems(Path(argv[2]).read_text(), yaml.safe_load(Path(argv[3]).read_text()))
    else:
        problems = execution_environment_problems(Path(argv[2]), yaml.safe_load(Path(argv[3]).read_text()))
    for problem in problems:
        print("release-check: %s" % problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
