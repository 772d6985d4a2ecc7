# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans: a compiled fleet as a directory of files that a person reviews and the firewall role applies exactly.

Private to the fleetwall.iptables collection; controller only. A plan holds,
per host, ``HOST.v4`` and ``HOST.v6`` (iptables-restore text), ``HOST.ipsets``
when its rules match ipset sets and ``HOST.warnings`` when its compile warned,
plus ``manifest.json``: the policy's hash, the inventory's host list, every
file's SHA-256 and the collection version. Nothing in it depends on time or
on inventory order, so the same policy and inventory always give the same
bytes and plans diff cleanly in git. The manifest is what ties a review to an
apply: a file whose bytes no longer match it is refused.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import tempfile
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import type_name
from ansible_collections.fleetwall.iptables.plugins.plugin_utils.compiler import FLEET_VARIABLES

MANIFEST = "manifest.json"
PLAN_FORMAT = 1
# File suffix -> key of the compiled ruleset (module_utils/transport.py) it holds.
RULE_FILES = (("v4", "ipv4"), ("v6", "ipv6"), ("ipsets", "ipsets"))
WARNINGS_FILE = "warnings"
SUFFIXES = tuple(suffix for suffix, _key in RULE_FILES) + (WARNINGS_FILE,)


class PlanError(ValueError):
    """A plan that cannot be written, read or trusted; the message names the file and the entry."""


class PlanWrite(NamedTuple):
    written: List[str]  # file names whose bytes change, manifest last
    removed: List[str]  # file names of the old plan that the new one no longer has
    before: Dict[str, str]  # file name -> its old text, for diff mode


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def policy_sha256(fleet_variables: Mapping[str, Any]) -> str:
    """The hash of the fleet-wide policy variables, independent of key order."""
    try:
        canonical = json.dumps(fleet_variables, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise PlanError("the fleet policy variables cannot be hashed: %s" % exc) from None
    return sha256_text(canonical)


def fleet_policy_sha256(hostvars: Mapping[str, Mapping[str, Any]], inventory: Sequence[str]) -> str:
    """The policy hash of an inventory: its fleet variables as the first host by name sees them (the compiler
    warns about hosts that see others)."""
    if not inventory:
        raise PlanError("groups['all']: the inventory has no host")
    first = min(inventory)
    if first not in hostvars:
        raise PlanError("inventory: host '%s' is not an inventory host" % first)
    host_vars = hostvars[first]
    return policy_sha256({name: host_vars.get(name) for name in FLEET_VARIABLES})


def collection_version() -> str:
    """This collection's version: MANIFEST.json once built and installed, galaxy.yml in a source checkout."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = _read_text(os.path.join(root, "MANIFEST.json"))
    if text is not None:
        return str(json.loads(text)["collection_info"]["version"])
    for line in (_read_text(os.path.join(root, "galaxy.yml")) or "").splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    return "unknown"


def check_file_safe_host_name(host: Any, path: str) -> str:
    """A host name that is safe as a file name inside the plan directory."""
    if not isinstance(host, str) or not host:
        raise PlanError("%s: must be a host name, got %s" % (path, type_name(host)))
    if "/" in host or "\\" in host or "\0" in host or host.startswith("."):
        raise PlanError("%s: host name %r cannot be a file name in a plan" % (path, host))
    return host


def host_files(host: str, ruleset: Mapping[str, Any]) -> Dict[str, str]:
    """Suffix -> text of one host's plan files, from its compiled ruleset."""
    if not isinstance(ruleset, Mapping):
        raise PlanError("fleet['%s']: must be a compiled ruleset, got %s" % (host, type_name(ruleset)))
    files = {}
    for suffix, key in RULE_FILES:
        text = ruleset.get(key)
        if text is None and key == "ipsets":
            continue
        if not isinstance(text, str):
            raise PlanError("fleet['%s'].%s: must be text, got %s" % (host, key, type_name(text)))
        files[suffix] = text
    warnings = ruleset.get("warnings") or []
    if not isinstance(warnings, (list, tuple)):
        raise PlanError("fleet['%s'].warnings: must be a list, got %s" % (host, type_name(warnings)))
    if warnings:
        files[WARNINGS_FILE] = "".join("%s\n" % warning for warning in warnings)
    return files


def build_plan(
    fleet: Mapping[str, Mapping[str, Any]], inventory: Iterable[str], policy_hash: str, collection_version: str
) -> Dict[str, str]:
    """File name -> text of a whole plan, ``manifest.json`` included."""
    files = {}  # type: Dict[str, str]
    hosts = {}  # type: Dict[str, Dict[str, str]]
    for host in sorted(fleet):
        check_file_safe_host_name(host, "fleet")
        texts = host_files(host, fleet[host])
        hosts[host] = {suffix: sha256_text(text) for suffix, text in texts.items()}
        files.update(("%s.%s" % (host, suffix), text) for suffix, text in texts.items())
    manifest = {
        "collection": "fleetwall.iptables",
        "collection_version": collection_version,
        "format": PLAN_FORMAT,
        "hosts": hosts,
        "inventory": sorted(set(str(host) for host in inventory)),
        "policy_sha256": policy_hash,
    }
    files[MANIFEST] = manifest_text(manifest)
    return files


def manifest_text(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError("%s: cannot be read: %s" % (path, exc)) from None


def _old_manifest_files(directory: str) -> List[str]:
    """The file names an existing plan in ``directory`` lists, so that a new plan removes those it drops."""
    try:
        manifest = read_manifest(directory)
    except PlanError:
        return []
    return ["%s.%s" % (host, suffix) for host, files in manifest["hosts"].items() for suffix in files]


def plan_changes(directory: str, files: Mapping[str, str], keep_before: bool = False) -> PlanWrite:
    """What writing ``files`` into ``directory`` would change, without changing it; with ``keep_before``, the old
    text of each file that changes (for diff mode: a large plan's old texts are large)."""
    written, before = [], {}
    for name in sorted(files, key=lambda name: (name == MANIFEST, name)):
        old = _read_text(os.path.join(directory, name))
        if old != files[name]:
            written.append(name)
            if keep_before:
                before[name] = old or ""
    hosts = set(name.rsplit(".", 1)[0] for name in files if name != MANIFEST)
    candidates = set(_old_manifest_files(directory))
    candidates.update("%s.%s" % (host, suffix) for host in hosts for suffix in SUFFIXES)
    removed = sorted(name for name in candidates - set(files) if os.path.lexists(os.path.join(directory, name)))
    for name in removed if keep_before else ():
        before[name] = _read_text(os.path.join(directory, name)) or ""
    return PlanWrite(written, removed, before)


def _replace_file(directory: str, name: str, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=".%s." % name, dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, os.path.join(directory, name))
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_plan(directory: str, files: Mapping[str, str], changes: PlanWrite) -> None:
    """Each changed file through a temporary file and a rename, ``manifest.json`` last: a run cut short leaves
    files that the old manifest's hashes no longer match, which the apply side refuses, never a mixed plan
    that it would trust."""
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        for name in changes.removed:
            os.unlink(os.path.join(directory, name))
        for name in changes.written:
            _replace_file(directory, name, files[name])
    except OSError as exc:
        raise PlanError("%s: cannot write the plan: %s" % (directory, exc)) from None


def _check_manifest(manifest: Any, path: str) -> Dict[str, Any]:
    if not isinstance(manifest, dict):
        raise PlanError("%s: must be a JSON object, got %s" % (path, type_name(manifest)))
    if manifest.get("format") != PLAN_FORMAT:
        raise PlanError("%s: format: this collection reads plan format %d, got %r" % (path, PLAN_FORMAT, manifest.get("format")))
    for key, kind in (("hosts", dict), ("inventory", list), ("policy_sha256", str), ("collection_version", str)):
        if not isinstance(manifest.get(key), kind):
            raise PlanError("%s: %s: must be %s, got %s" % (path, key, type_name(kind()), type_name(manifest.get(key))))
    for host, hashes in manifest["hosts"].items():
        check_file_safe_host_name(host, "%s: hosts" % path)
        if not isinstance(hashes, dict) or not {"v4", "v6"} <= set(hashes) or not set(hashes) <= set(SUFFIXES):
            raise PlanError("%s: hosts.%s: must map v4, v6 and optionally ipsets and warnings to SHA-256 hashes" % (path, host))
    return manifest


def read_manifest(directory: str) -> Dict[str, Any]:
    path = os.path.join(directory, MANIFEST)
    text = _read_text(path)
    if text is None:
        raise PlanError("%s: no plan here (no %s); render one with fleetwall.iptables.render" % (directory, MANIFEST))
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        raise PlanError("%s: not JSON: %s" % (path, exc)) from None
    return _check_manifest(manifest, path)


def read_host(directory: str, host: str, hashes: Mapping[str, str]) -> Dict[str, Any]:
    """One host's planned ruleset (the compiled ruleset form), each file checked against its manifest hash."""
    texts = {}
    for suffix, expected in sorted(hashes.items()):
        path = os.path.join(directory, "%s.%s" % (host, suffix))
        text = _read_text(path)
        if text is None:
            raise PlanError("%s: missing, but %s lists it; render the plan again" % (path, MANIFEST))
        if sha256_text(text) != expected:
            raise PlanError(
                "%s: its SHA-256 is not the one %s records: the file changed after the plan was rendered "
                "(render again and review, never edit a plan by hand)" % (path, MANIFEST)
            )
        texts[suffix] = text
    ruleset = {key: texts[suffix] for suffix, key in RULE_FILES if suffix in texts}  # type: Dict[str, Any]
    ruleset["host"] = host
    ruleset["warnings"] = texts.get(WARNINGS_FILE, "").splitlines()
    return ruleset


def read_plan(directory: str, hosts: Optional[Sequence[str]] = None) -> Tuple[Dict[str, Any], Dict[str, Dict[str, Any]]]:
    """The manifest and the verified planned rulesets of ``hosts`` (default: every host of the plan); PlanError,
    before reading any host's files, when some of them have no entry in the plan."""
    manifest = read_manifest(directory)
    if hosts is None:
        hosts = list(manifest["hosts"])
    missing = sorted(set(hosts) - set(manifest["hosts"]))
    if missing:
        raise PlanError(
            "%s: the plan has no entry for %d host(s) of this play: %s; render a plan that covers them"
            % (directory, len(missing), ", ".join(missing))
        )
    rulesets = {host: read_host(directory, host, manifest["hosts"][host]) for host in sorted(set(hosts))}
    return manifest, rulesets


def _rule_lines(text: str) -> List[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def ruleset_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> Dict[str, List[str]]:
    """Per family (and ``ipsets``), the lines that go (``- ``) and come (``+ ``); families that stay are left out."""
    changes = {}
    for _suffix, key in RULE_FILES:
        before, after = _rule_lines(old.get(key) or ""), _rule_lines(new.get(key) or "")
        if before == after:
            continue
        lines = difflib.ndiff(before, after)
        changes[key] = [line for line in lines if line.startswith(("- ", "+ "))]
    return changes


def plan_diff(old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]]) -> Dict[str, Dict[str, List[str]]]:
    """Host -> family -> changed rule lines, for the hosts whose rules differ between two sets of rulesets (a
    host in only one of them differs from an empty ruleset). Warnings are not rules and do not count."""
    empty = {}  # type: Dict[str, Any]
    diff = {}
    for host in sorted(set(old) | set(new)):
        changes = ruleset_changes(old.get(host, empty), new.get(host, empty))
        if changes:
            diff[host] = changes
    return diff


def format_plan_diff(diff: Mapping[str, Mapping[str, Sequence[str]]]) -> str:
    """The diff as text a reviewer reads: one block per host, one line per rule."""
    if not diff:
        return "no host's rules differ\n"
    blocks = []
    for host in sorted(diff):
        lines = ["%s:" % host]
        for key in sorted(diff[host]):
            lines.append("  %s:" % key)
            lines.extend("    %s" % line for line in diff[host][key])
        blocks.append("\n".join(lines))
    return "%d host(s) differ\n%s\n" % (len(diff), "\n".join(blocks))
