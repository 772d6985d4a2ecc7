"""The watchdog's files, confirmation, pruning, and the guardian process itself."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.fleetwall.iptables.plugins.module_utils.guardian import (
    Guardian,
    Watchdog,
    WatchdogRolledBack,
    confirm_watchdogs,
    prune_backups,
)


def wait_until(condition, timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def test_confirming_deletes_every_pending_file_and_names_its_token(tmp_path):
    (tmp_path / "watchdog-20261122T001500-3f2a.pending").write_text("60")
    assert (confirm_watchdogs(str(tmp_path), check_mode=False), list(tmp_path.iterdir())) == (["20261122T001500-3f2a"], [])


def test_confirming_in_check_mode_keeps_the_pending_file(tmp_path):
    (tmp_path / "watchdog-20261122T001500-3f2a.pending").write_text("60")
    confirm_watchdogs(str(tmp_path), check_mode=True)
    assert (tmp_path / "watchdog-20261122T001500-3f2a.pending").exists()


def test_a_confirmation_after_the_rollback_says_the_new_rulesets_were_not_kept(tmp_path):
    (tmp_path / "watchdog-20261122T001500-3f2a.rolled-back").write_text(json.dumps({"reason": "not confirmed within 60 seconds"}))
    with pytest.raises(WatchdogRolledBack, match=r"^the watchdog already restored the previous rulesets \(not confirmed "
                                                 r"within 60 seconds\); the new rulesets were not kept$"):
        confirm_watchdogs(str(tmp_path), check_mode=False)


def test_nothing_to_confirm_confirms_nothing(tmp_path):
    assert confirm_watchdogs(str(tmp_path), check_mode=False) == []


def test_pruning_keeps_the_newest_backups_of_each_family_with_their_rollback_input(tmp_path):
    for stamp in ("20260101T000000-a", "20260102T000000-b", "20260103T000000-c"):
        for suffix in (".v4", ".v4.rollback", ".v6"):
            (tmp_path / (stamp + suffix)).write_text("")
    prune_backups(str(tmp_path), 1)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "20260103T000000-c.v4", "20260103T000000-c.v4.rollback", "20260103T000000-c.v6"]


def test_pruning_keeps_the_newest_set_backups_with_their_rollback_and_cleanup_inputs(tmp_path):
    for stamp in ("20260101T000000-a", "20260102T000000-b"):
        for suffix in (".sets", ".sets.rollback", ".sets.cleanup"):
            (tmp_path / (stamp + suffix)).write_text("")
    prune_backups(str(tmp_path), 1)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "20260102T000000-b.sets", "20260102T000000-b.sets.cleanup", "20260102T000000-b.sets.rollback"]


def test_the_set_backup_gives_a_step_before_and_a_step_after_the_families(tmp_path):
    watchdog = Watchdog(str(tmp_path), "20260101T000000-a")
    first, last = watchdog.backup_sets("create fw4-a hash:net family inet maxelem 65536\n", "ROLLBACK\n", "CLEANUP\n",
                                       ["/usr/sbin/ipset", "-exist", "restore"])
    assert (Path(first.input).read_text(), Path(last.input).read_text(), first.argv) == (
        "ROLLBACK\n", "CLEANUP\n", ["/usr/sbin/ipset", "-exist", "restore"])


def test_a_new_watchdog_makes_its_directory_private_to_root(tmp_path):
    watchdog = Watchdog.create(str(tmp_path / "fleetwall"))
    assert (oct((tmp_path / "fleetwall").stat().st_mode & 0o777), Path(watchdog.pending).parent) == (
        "0o700", tmp_path / "fleetwall")


def test_a_confirmation_while_the_guardian_is_restoring_waits_for_it_and_says_the_rulesets_were_not_kept(tmp_path):
    watchdog = Watchdog(str(tmp_path), "20261122T001500-3f2a")
    Path(watchdog.rolling_back).write_text("60")

    def finish() -> None:
        # As the guardian writes it: whole, then renamed into place (a reader never sees it half written).
        Path(watchdog.rolled_back + ".tmp").write_text(json.dumps({"reason": "late"}))
        os.rename(watchdog.rolled_back + ".tmp", watchdog.rolled_back)

    finisher = threading.Timer(0.3, finish)
    finisher.start()
    with pytest.raises(WatchdogRolledBack, match=r"\(late\); the new rulesets were not kept$"):
        confirm_watchdogs(str(tmp_path), check_mode=False, settle_seconds=10)


def test_a_confirmation_gives_up_waiting_for_a_guardian_that_never_finishes_restoring(tmp_path):
    Path(Watchdog(str(tmp_path), "20261122T001500-3f2a").rolling_back).write_text("60")
    with pytest.raises(WatchdogRolledBack, match=r"\(still restoring them after 0.2 seconds\)"):
        confirm_watchdogs(str(tmp_path), check_mode=False, settle_seconds=0.2)


def start_guardian_that_records(tmp_path: Path, timeout: int, restore_seconds: float = 0) -> tuple:
    """A real guardian whose 'restore' writes its input to a file, so its decisions can be seen."""
    watchdog = Watchdog.create(str(tmp_path))
    restored = tmp_path / "restored"
    recorder = [sys.executable, "-c", "import sys, time; time.sleep(%r); open(%r, 'a').write(sys.stdin.read())"
                % (restore_seconds, str(restored))]
    step = watchdog.backup(4, "previous rules\n", "rollback input\n", recorder)
    watchdog.wait_for_confirmation(timeout)
    return Guardian.start(watchdog.guardian_config([step], timeout)), watchdog, restored


def test_the_guardian_restores_when_the_module_goes_without_a_word(tmp_path):
    guardian, watchdog, restored = start_guardian_that_records(tmp_path, 0)
    guardian.process.stdin.close()
    assert wait_until(lambda: Path(watchdog.rolled_back).exists(), timeout=10, interval=0.05)
    assert (restored.read_text(), json.loads(Path(watchdog.rolled_back).read_text())["reason"]) == (
        "rollback input\n", "the ruleset module stopped before it finished applying")


def test_the_guardian_restores_when_no_confirmation_comes_in_time(tmp_path):
    guardian, watchdog, restored = start_guardian_that_records(tmp_path, 1)
    guardian.tell("committed")
    # The guardian claims the pending file before it restores and writes the rolled-back file after: wait for both.
    assert wait_until(lambda: Path(watchdog.rolled_back).exists() and not Path(watchdog.pending).exists(),
                      timeout=10, interval=0.05)
    assert restored.read_text() == "rollback input\n"


def test_a_confirmation_that_loses_the_race_to_the_guardian_reports_the_rollback(tmp_path):
    guardian, watchdog, restored = start_guardian_that_records(tmp_path, 1, restore_seconds=1)
    guardian.tell("committed")
    assert wait_until(lambda: Path(watchdog.rolling_back).exists(), timeout=10, interval=0.01)
    with pytest.raises(WatchdogRolledBack, match=r"\(not confirmed within 1 seconds\)"):
        confirm_watchdogs(str(tmp_path), check_mode=False)
    assert restored.read_text() == "rollback input\n"


def test_a_confirmed_guardian_leaves_without_restoring(tmp_path):
    guardian, watchdog, restored = start_guardian_that_records(tmp_path, 30)
    guardian.tell("committed")
    confirm_watchdogs(str(tmp_path), check_mode=False)
    guardian.process.wait(timeout=10)
    assert (restored.exists(), Path(watchdog.rolled_back).exists()) == (False, False)


def test_an_aborted_guardian_leaves_without_restoring(tmp_path):
    guardian, watchdog, restored = start_guardian_that_records(tmp_path, 30)
    guardian.tell("aborted")
    guardian.process.wait(timeout=10)
    assert restored.exists() is False
