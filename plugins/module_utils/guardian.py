# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The detached process that puts the previous rulesets back.

Private to the fleetwall.iptables collection. The ruleset module starts it
before it changes anything and talks to it over a pipe:

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

GUARDIAN_SOURCE = r'''
import json, os, subprocess, sys, time

config = json.loads(sys.argv[1])


def restore_previous(reason):
    failures = []
    for step in config["rollback"]:
        with open(step["input"]) as handle:
            if subprocess.call(step["argv"], stdin=handle) != 0:
                failures.append(" ".join(step["argv"]))
    with open(config["rolled_back"], "w") as handle:
        handle.write(json.dumps({"reason": reason, "time": time.time(), "failures": failures}))
    if os.path.exists(config["pending"]):
        os.unlink(config["pending"])


word = sys.stdin.readline().strip()
if not word:
    restore_previous("the ruleset module stopped before it finished applying")
elif word == "committed" and config["timeout"] > 0:
    deadline = time.time() + config["timeout"]
    while time.time() < deadline:
        if not os.path.exists(config["pending"]):
            sys.exit(0)
        time.sleep(0.2)
    if os.path.exists(config["pending"]):
        restore_previous("not confirmed within %d seconds" % config["timeout"])
'''
