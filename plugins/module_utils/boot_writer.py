# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ruleset module's persist phase: read the boot files, write those that differ.

Private to the fleetwall.iptables collection. The I/O edge of boot_files.py:
every write is a temporary file in the same directory, flushed to disk, then
renamed over the old file, so a crash or a power cut leaves the old file or
the new one. With a rollback watchdog waiting for confirmation, the files
are not written yet: the run leaves them in the backup directory
(``TOKEN.boot.json``) and the confirmation writes them, so a ruleset the
watchdog takes back never reaches the boot files.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import glob
import json
import os
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.fleetwall.iptables.plugins.module_utils.boot_files import (
    BootFile,
    boot_diff_entries,
    boot_paths,
    plan_boot_files,
)

from ansible_collections.fleetwall.iptables.plugins.module_utils.settled import (
    FACT_NAME,
    STAMP_NAME,
    fact_script,
    stamp_text,
)

PENDING_SUFFIX = ".boot.json"


def read_text(path):
    # type: (str) -> Optional[str]
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        if os.path.exists(path):
            raise
        return None


def write_atomically(module, path, text, mode):
    # type: (Any, str, str, int) -> None
    """Replace `path` by a file holding `text`, mode `mode`, owned by root, with the path's SELinux context."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            if os.geteuid() == 0:
                os.fchown(stream.fileno(), 0, 0)
            os.fsync(stream.fileno())
        if module.selinux_enabled():
            module.set_context_if_different(temporary, module.selinux_default_context(path), False)
        os.rename(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def pending_path(backup_dir, token):
    # type: (str, str) -> str
    return os.path.join(backup_dir, token + PENDING_SUFFIX)


def defer(backup_dir, token, files):
    # type: (str, str, Sequence[BootFile]) -> None
    """Leave the files for the confirmation of watchdog `token`; earlier runs' leftovers go."""
    for stale in glob.glob(os.path.join(backup_dir, "*" + PENDING_SUFFIX)):
        os.unlink(stale)
    with open(pending_path(backup_dir, token), "w") as handle:
        json.dump([{"path": item.path, "text": item.text, "mode": item.mode} for item in files], handle)
    os.chmod(pending_path(backup_dir, token), 0o600)


def persist_phase(module, verified, fleetwall_sets, watchdog):
    # type: (Any, Mapping[str, str], str, Optional[Mapping[str, Any]]) -> Dict[str, Any]
    """Plan the boot files, then write those that differ (or leave them for the watchdog's confirmation).

    Returns ``changed``, ``boot_files`` (path -> unchanged, written or
    pending) and, in diff mode, ``diff`` entries."""
    params = module.params
    persist = params["persist"]
    files = plan_boot_files(persist["os_family"], persist["root"], verified, fleetwall_sets, params["mode"], read_text)
    changing = [item for item in files if item.changed]
    state = "written"
    if changing and not module.check_mode:
        if watchdog:
            defer(params["backup_dir"], watchdog["token"], changing)
            state = "pending"
        else:
            for item in changing:
                write_atomically(module, item.path, item.text, item.mode)
    outcome = {
        "changed": bool(changing),
        "boot_files": dict((item.path, state if item.changed else "unchanged") for item in files),
    }  # type: Dict[str, Any]
    if module._diff:
        outcome["diff"] = boot_diff_entries(files)
    return outcome


def write_pending(module, backup_dir, tokens):
    # type: (Any, str, Sequence[str]) -> List[str]
    """At confirmation: write the boot files the confirmed runs left; the paths written."""
    written = []  # type: List[str]
    for token in tokens:
        path = pending_path(backup_dir, token)
        if not os.path.exists(path):
            continue
        with open(path) as handle:
            files = json.load(handle)
        for item in files:
            if read_text(item["path"]) != item["text"]:
                write_atomically(module, item["path"], item["text"], item["mode"])
                written.append(item["path"])
        os.unlink(path)
    return written


def record_settled(module, settle, persist, backup_dir):
    # type: (Any, Mapping[str, str], Mapping[str, str], str) -> Dict[str, Any]
    """After a run that converged the host: the custom fact (when it differs), then the stamp of what it
    observes now. Returns ``changed`` (the fact script was written) and ``settled`` (the stamp's inputs)."""
    stamp_path = os.path.join(backup_dir, STAMP_NAME)
    fact_path = os.path.join(settle["fact_path"], FACT_NAME + ".fact")
    script = fact_script(stamp_path, boot_paths(persist["os_family"], persist["root"]))
    changed = read_text(fact_path) != script
    if changed:
        write_atomically(module, fact_path, script, 0o755)
    returncode, out, err = module.run_command(["/bin/sh", fact_path])
    try:
        current = json.loads(out)["current"] if returncode == 0 else None
    except (ValueError, KeyError, TypeError):
        current = None
    if not isinstance(current, dict):
        module.fail_json(msg="the settled fact %s printed no digests (rc %d): %s" % (fact_path, returncode, (err or out)[:400]))
    stamp = stamp_text(settle["inputs"], current) + "\n"
    if read_text(stamp_path) != stamp:
        write_atomically(module, stamp_path, stamp, 0o600)
    return {"changed": changed, "settled": settle["inputs"]}
