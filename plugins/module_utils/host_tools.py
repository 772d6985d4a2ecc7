# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's iptables tools and ipset, as the apply sequence (apply_run.Tools) uses them.

Private to the fleetwall.iptables collection. The tools that only read run at
the same time: the other backend's save tools and both families' saves
(nothing depends on another's output) and ``ipset save``, which takes about half the wall
time of running them one after the other. The module starts those reads
before its imports (host_reads.EarlyReads) and hands them in here.

Module code: keep it compatible with Python 3.6.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import atexit
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ansible_collections.fleetwall.iptables.plugins.module_utils.apply_plan import FAMILIES, other_backend_refusal
from ansible_collections.fleetwall.iptables.plugins.module_utils.apply_run import ApplyFailed, Tools
from ansible_collections.fleetwall.iptables.plugins.module_utils.host_reads import (  # noqa: F401, run is re-exported
    Completed,
    EarlyReads,
    Started,
    read_host_tools,
    run,
    run_together,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import has_rules

if TYPE_CHECKING:  # imported when a run changes something (start_guardian)
    from ansible_collections.fleetwall.iptables.plugins.module_utils.guardian import Guardian


class HostState(NamedTuple):
    backend: str  # nf_tables or legacy
    saves: Dict[str, str]  # family key (ipv4, ipv6) -> its save tool's output
    # `ipset save`'s output; None without an ipset binary, or when it could not read the sets
    ipset_saved: Optional[str] = None
    ipset_problem: str = ""  # why ipset_saved is None


class HostTools(Tools):
    """iptables-save, iptables-restore and their IPv6 twins, found on the module's search path."""

    def __init__(self, find):
        # type: (Callable[[str], Optional[str]]) -> None
        """`find` is AnsibleModule.get_bin_path; ApplyFailed naming a missing tool."""
        self.find = find
        self.paths = {}  # type: Dict[str, str]
        self._tested_ahead = []  # type: List[Tuple[Tuple[str, str, bool], Started]]
        # Optional: a host without ipset keeps working as long as its ruleset has no sets.
        self.ipset = find("ipset")
        for spec in FAMILIES:
            for suffix in ("-save", "-restore"):
                name = spec.command + suffix
                path = find(name)
                if path is None:
                    raise ApplyFailed("%s was not found; install iptables on this host" % name)
                self.paths[name] = path

    def read_host(self, early=None):
        # type: (Optional[EarlyReads]) -> HostState
        """The backend and both families' saves; ApplyFailed when rules hide in the other backend.

        `early`: the same reads, started before the module's imports; used
        when they ran the tools this object found.
        """
        saves = [self.paths[spec.command + "-save"] for spec in FAMILIES]
        if early is not None and early.matches(saves, self.ipset):
            reads = early.wait()
        else:
            reads = read_host_tools(saves, self.ipset, self.find)
        if reads.backend is None:
            text = (reads.version.stdout or reads.version.stderr).strip()
            raise ApplyFailed("could not tell the iptables backend from: %s" % text)
        backend, other = reads.backend
        for command, result in reads.others:
            if result.returncode == 0 and has_rules(result.stdout):
                raise ApplyFailed(other_backend_refusal(command, backend, other))
        texts = {}  # type: Dict[str, str]
        for spec, result in zip(FAMILIES, reads.saves):
            texts[spec.key] = self._checked(spec.command, result)
        if reads.ipset is None:
            return HostState(backend, texts, None, "ipset was not found")
        if reads.ipset.returncode != 0:
            return HostState(backend, texts, None, "ipset save failed: %s" % reads.ipset.message)
        return HostState(backend, texts, reads.ipset.stdout)

    @staticmethod
    def _checked(command, result):
        # type: (str, Completed) -> str
        if result.returncode != 0:
            raise ApplyFailed("%s-save failed: %s" % (command, result.message))
        return result.stdout

    def save(self, command):
        # type: (str) -> str
        return self._checked(command, run([self.paths[command + "-save"]]))

    def restore(self, command, text, test=False, noflush=False):
        # type: (str, str, bool, bool) -> Tuple[int, str]
        argv = self.restore_argv(command, noflush) + (["--test"] if test else [])
        result = run(argv, data=text)
        return result.returncode, result.message

    def save_each(self, commands):
        # type: (Sequence[str]) -> List[str]
        results = run_together([[self.paths[command + "-save"]] for command in commands])
        return [self._checked(command, result) for command, result in zip(commands, results)]

    def test_each(self, inputs):
        # type: (Sequence[Tuple[str, str, bool]]) -> List[Tuple[int, str]]
        # --test changes nothing, so the families are checked at the same time.
        known = dict((item, started.finish()) for item, started in self._tested_ahead)
        missing = [item for item in inputs if item not in known]
        known.update(zip(missing, run_together([self._test_argv(item) for item in missing], [item[1] for item in missing])))
        return [(known[item].returncode, known[item].message) for item in inputs]

    def test_ahead(self, inputs):
        # type: (Sequence[Tuple[str, str, bool]]) -> None
        """Start restore --test of each (command, text, noflush) while the module plans; test_each() takes
        the outcome of an input tested ahead, until ipset changes a set."""
        self._drop_tests_ahead()
        self._tested_ahead = [(item, Started(self._test_argv(item), item[1])) for item in inputs]
        atexit.register(self._drop_tests_ahead)  # a refusal ends the run before test_each()

    def _drop_tests_ahead(self):
        # type: () -> None
        for item, started in self._tested_ahead:
            started.cancel()
        self._tested_ahead = []

    def _test_argv(self, item):
        # type: (Tuple[str, str, bool]) -> List[str]
        command, text, noflush = item
        return self.restore_argv(command, noflush) + ["--test"]

    def restore_argv(self, command, noflush):
        # type: (str, bool) -> List[str]
        return [self.paths[command + "-restore"]] + (["--noflush"] if noflush else [])

    def ipset_save(self):
        # type: () -> str
        result = run([self._ipset_path(), "save"])
        if result.returncode != 0:
            raise ApplyFailed("ipset save failed: %s" % result.message)
        return result.stdout

    def ipset_restore(self, text):
        # type: (str) -> Tuple[int, str]
        # restore --test refuses a rule whose set is missing: a test run before the sets changed may not hold.
        self._drop_tests_ahead()
        result = run(self.ipset_restore_argv(), data=text)
        return result.returncode, result.message

    def ipset_restore_argv(self):
        # type: () -> List[str]
        return [self._ipset_path(), "-exist", "restore"]

    def _ipset_path(self):
        # type: () -> str
        if not self.ipset:
            raise ApplyFailed("ipset was not found; install ipset on this host")
        return self.ipset

    def start_guardian(self, config):
        # type: (Dict[str, Any]) -> Guardian
        from ansible_collections.fleetwall.iptables.plugins.module_utils.guardian import Guardian

        return Guardian.start(config)
