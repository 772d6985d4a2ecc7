# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback watchdog: its files, and the detached process that puts the previous rulesets back.

Private to the fleetwall.iptables collection. One run of the ruleset module
that changes something has a token (time stamp and random suffix) and, in
``backup_dir``:

* ``TOKEN.v4`` / ``TOKEN.v6``: the previous rules (mode 0600), and
  ``TOKEN.vN.rollback``: the restore input that puts them back;
* ``TOKEN.sets`` when the run touches fleetwall's ipset sets: the previous
  sets (mode 0600), ``TOKEN.sets.rollback`` (``ipset -exist restore`` input
  that puts them back, run before the families' restores) and
  ``TOKEN.sets.cleanup`` (destroys the sets the previous state did not
  have, run after them, once no previous rule can name them);
* ``watchdog-TOKEN.pending`` while the new rulesets wait for a confirmation
  (a confirmation deletes it);
* ``watchdog-TOKEN.rolling-back`` while the guardian restores the previous
  rulesets: it claims the pending file by renaming it, so a confirmation and a
  rollback can never both win (whichever removes ``.pending`` first decides);
* ``watchdog-TOKEN.rolled-back`` once the guardian restored the previous
  rulesets (JSON: reason, time, failed restores), written before the
  ``.rolling-back`` claim goes away.

The module starts the guardian before it changes anything and talks to it
over a pipe:

* the pipe closes without a word (the module was killed mid-apply): restore
  the previous rulesets of both families at once;
* ``aborted``: the module restored them itself; exit;
* ``committed``: the new rulesets are in place; with a rollback timeout, wait
  for the play to confirm (it deletes the pending file) and restore the
  previous rulesets if it does not in time.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import glob
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List, NamedTuple, Sequence, Tuple, Union

GUARDIAN_SOURCE = r'''
import json, os, subprocess, sys, time

config = json.loads(sys.argv[1])


def claim_pending():
    try:
        os.rename(config["pending"], config["rolling_back"])
        return True
    except OSError:
        return False


def restore_previous(reason):
    failures = []
    for step in config["rollback"]:
        with open(step["input"]) as handle:
            if subprocess.call(step["argv"], stdin=handle) != 0:
                failures.append(" ".join(step["argv"]))
    with open(config["rolled_back"] + ".tmp", "w") as handle:
        handle.write(json.dumps({"reason": reason, "time": time.time(), "failures": failures}))
    os.rename(config["rolled_back"] + ".tmp", config["rolled_back"])
    if os.path.exists(config["rolling_back"]):
        os.unlink(config["rolling_back"])


word = sys.stdin.readline().strip()
if not word:
    claim_pending()
    restore_previous("the ruleset module stopped before it finished applying")
elif word == "committed" and config["timeout"] > 0:
    deadline = time.time() + config["timeout"]
    while time.time() < deadline and os.path.exists(config["pending"]):
        time.sleep(0.2)
    if claim_pending():
        restore_previous("not confirmed within %d seconds" % config["timeout"])
'''


class RollbackStep(NamedTuple):
    """One family's way back: the restore command and the file it reads."""

    argv: List[str]
    input: str


class WatchdogRolledBack(Exception):
    """A confirmation came after the guardian restored the previous rulesets; str() says so."""


class Watchdog:
    """The files one run shares with its guardian, in the backup directory."""

    def __init__(self, directory, token):
        # type: (str, str) -> None
        self.directory = directory
        self.token = token

    @classmethod
    def create(cls, directory):
        # type: (str) -> Watchdog
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        return cls(directory, "%s-%s" % (time.strftime("%Y%m%dT%H%M%S"), os.urandom(3).hex()))

    @property
    def pending(self):
        # type: () -> str
        return os.path.join(self.directory, "watchdog-%s.pending" % self.token)

    @property
    def rolling_back(self):
        # type: () -> str
        return os.path.join(self.directory, "watchdog-%s.rolling-back" % self.token)

    @property
    def rolled_back(self):
        # type: () -> str
        return os.path.join(self.directory, "watchdog-%s.rolled-back" % self.token)

    def backup_path(self, family):
        # type: (Union[int, str]) -> str
        """TOKEN.v4, TOKEN.v6, or TOKEN.sets for ``backup_path("sets")``."""
        suffix = "v%d" % family if isinstance(family, int) else family
        return os.path.join(self.directory, "%s.%s" % (self.token, suffix))

    def backup(self, family, previous, rollback_text, restore_argv):
        # type: (int, str, str, List[str]) -> RollbackStep
        """Keep a family's previous rules (private to root) and the input that restores them."""
        path = self.backup_path(family)
        _write(path, previous)
        os.chmod(path, 0o600)
        _write(path + ".rollback", rollback_text)
        return RollbackStep(list(restore_argv), path + ".rollback")

    def backup_sets(self, previous, rollback_text, cleanup_text, restore_argv):
        # type: (str, str, str, List[str]) -> Tuple[RollbackStep, RollbackStep]
        """Keep the previous sets; (the step that puts them back, the step that
        destroys the new ones), to run before and after the families' steps."""
        path = self.backup_path("sets")
        _write(path, previous)
        os.chmod(path, 0o600)
        _write(path + ".rollback", rollback_text)
        _write(path + ".cleanup", cleanup_text)
        return RollbackStep(list(restore_argv), path + ".rollback"), RollbackStep(list(restore_argv), path + ".cleanup")

    def wait_for_confirmation(self, timeout):
        # type: (int) -> None
        _write(self.pending, str(timeout))

    def stand_down(self):
        # type: () -> None
        """Nothing is left to confirm: the run finished without a timeout, or put everything back itself."""
        if os.path.exists(self.pending):
            os.unlink(self.pending)

    def guardian_config(self, steps, timeout):
        # type: (Sequence[RollbackStep], int) -> Dict[str, Any]
        return {
            "rollback": [{"argv": step.argv, "input": step.input} for step in steps],
            "pending": self.pending,
            "rolling_back": self.rolling_back,
            "rolled_back": self.rolled_back,
            "timeout": timeout,
        }


def _write(path, text):
    # type: (str, str) -> None
    with open(path, "w") as handle:
        handle.write(text)


class Guardian:
    """The detached guardian process, and the one word the module sends it."""

    def __init__(self, process):
        # type: (Any) -> None
        self.process = process

    @property
    def pid(self):
        # type: () -> int
        return self.process.pid

    @classmethod
    def start(cls, config):
        # type: (Dict[str, Any]) -> Guardian
        # AnsibleModule.run_command waits for its process; the guardian must outlive the module.
        process = subprocess.Popen(  # pylint: disable=ansible-bad-function
            [sys.executable, "-c", GUARDIAN_SOURCE, json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
        return cls(process)

    def tell(self, word):
        # type: (str) -> None
        """'committed' or 'aborted'; a guardian that is already gone needs no word."""
        try:
            self.process.stdin.write((word + "\n").encode())
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass


def prune_backups(directory, keep):
    # type: (str, int) -> None
    """Keep the newest `keep` backups per family and of the sets (tokens sort by time)."""
    for suffix in ("v4", "v6", "sets"):
        backups = sorted(glob.glob(os.path.join(directory, "*.%s" % suffix)))
        for path in backups[:-keep] if keep > 0 else backups:
            os.unlink(path)
            for companion in (path + ".rollback", path + ".cleanup"):
                if os.path.exists(companion):
                    os.unlink(companion)


def confirm_watchdogs(directory, check_mode, settle_seconds=30.0):
    # type: (str, bool, float) -> List[str]
    """Confirm every waiting watchdog; the confirmed tokens.

    Confirming is removing the pending file; the guardian claims it by
    renaming it before it rolls back, so exactly one of the two wins.
    WatchdogRolledBack when the guardian won, or when none waits and the last
    one already restored the previous rulesets: the new rulesets were not
    kept, and the play must know.
    """
    pending = sorted(glob.glob(os.path.join(directory, "watchdog-*.pending")))
    confirmed = []  # type: List[str]
    for path in pending:
        if check_mode or _remove_if_present(path):
            confirmed.append(_token(path))
        else:
            raise _rolled_back(directory, _token(path), settle_seconds)
    if not pending:
        claims = sorted(glob.glob(os.path.join(directory, "watchdog-*.rolling-back")))
        finished = sorted(glob.glob(os.path.join(directory, "watchdog-*.rolled-back")))
        if claims or finished:
            raise _rolled_back(directory, _token((claims or finished)[-1]), settle_seconds)
    return confirmed


def _token(path):
    # type: (str) -> str
    return os.path.basename(path)[len("watchdog-"):].rsplit(".", 1)[0]


def _remove_if_present(path):
    # type: (str) -> bool
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _rolled_back(directory, token, settle_seconds):
    # type: (str, str, float) -> WatchdogRolledBack
    """The guardian's word on `token`, waiting while it is still restoring."""
    watchdog = Watchdog(directory, token)
    deadline = time.time() + settle_seconds
    while not os.path.exists(watchdog.rolled_back) and time.time() < deadline:
        time.sleep(0.1)
    reason = "still restoring them after %g seconds" % settle_seconds
    if os.path.exists(watchdog.rolled_back):
        with open(watchdog.rolled_back) as handle:
            reason = json.load(handle).get("reason")
    return WatchdogRolledBack(
        "the watchdog already restored the previous rulesets (%s); the new rulesets were not kept" % reason
    )
