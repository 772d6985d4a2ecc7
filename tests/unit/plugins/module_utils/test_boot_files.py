"""Boot files: what each layout writes, from the texts verified live, and what is kept of the sets file."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Dict, Optional

from ansible_collections.fleetwall.iptables.plugins.module_utils.boot_files import (
    boot_diff_entries,
    boot_rules_text,
    boot_sets_text,
    plan_boot_files,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.boot_writer import persist_phase, write_pending
from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import address_set, create_line

OWN_V4 = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n"
OWN_V6 = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
VERIFIED = {"ipv4": OWN_V4, "ipv6": OWN_V6}
COEXIST_PROJECTION = (
    "*filter\n:FWL-INPUT - [0:0]\n-A INPUT -m comment --comment fleetwall -j FWL-INPUT\n"
    "-A FWL-INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A FWL-INPUT -j DROP\nCOMMIT\n"
)
SETS = "create fw4-group:web hash:net family inet maxelem 65536\nadd fw4-group:web 10.0.0.0/24\n"
SETS_FILE = "create fw4-group:web hash:net family inet hashsize 64 maxelem 65536\nadd fw4-group:web 10.0.0.0/24\n"
FAIL2BAN = "create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600\n"


def files_on_disk(contents: Dict[str, str]):
    def read(path: str) -> Optional[str]:
        return contents.get(path)
    return read


def test_a_rules_file_in_mode_own_is_the_verified_text_byte_for_byte():
    assert boot_rules_text(OWN_V4, "own") is OWN_V4


def test_a_rules_file_in_coexist_mode_declares_the_builtin_chains_accept_and_holds_only_fleetwall_rules():
    assert boot_rules_text(COEXIST_PROJECTION, "coexist").splitlines()[:5] == [
        "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":FWL-INPUT - [0:0]"]


def test_the_debian_layout_writes_rules_v4_and_v6_under_the_root_with_mode_0640():
    files = plan_boot_files("Debian", "/lab/h1", VERIFIED, "", "own", files_on_disk({}))
    assert [(item.path, item.mode) for item in files] == [
        ("/lab/h1/etc/iptables/rules.v4", 0o640), ("/lab/h1/etc/iptables/rules.v6", 0o640)]


def test_the_redhat_layout_writes_the_sysconfig_files_and_the_ipset_file_with_mode_0600():
    files = plan_boot_files("RedHat", "/", VERIFIED, SETS, "own", files_on_disk({}))
    assert [(item.path, item.mode) for item in files] == [
        ("/etc/sysconfig/iptables", 0o600), ("/etc/sysconfig/ip6tables", 0o600), ("/etc/sysconfig/ipset", 0o600)]


def test_a_ruleset_with_sets_writes_them_to_the_ipsets_file_that_netfilter_persistent_loads_first():
    files = plan_boot_files("Debian", "/", VERIFIED, SETS, "own", files_on_disk({}))
    assert (files[-1].path, files[-1].text) == ("/etc/iptables/ipsets", SETS_FILE)


def test_the_sets_file_creates_each_set_with_the_hashsize_the_module_creates_it_with():
    members = "".join("add fw4-big 10.0.%d.%d\n" % (index // 256, index % 256) for index in range(1000))
    text = boot_sets_text(None, "create fw4-big hash:net family inet maxelem 65536\n" + members)
    assert text.splitlines()[0] == create_line(address_set("fw4-big", 4, [line.split()[2] for line in members.splitlines()]))


def test_other_softwares_sets_in_the_sets_file_are_kept_ahead_of_fleetwalls():
    old = "create fw4-group:old hash:net family inet maxelem 65536\nadd fw4-group:old 10.9.0.0/16\n"
    assert boot_sets_text(FAIL2BAN + old, SETS) == FAIL2BAN + SETS_FILE


def test_a_ruleset_without_sets_leaves_a_sets_file_without_fleetwall_sets_alone():
    files = plan_boot_files("Debian", "/", VERIFIED, "", "own", files_on_disk({"/etc/iptables/ipsets": FAIL2BAN}))
    assert [item.path for item in files] == ["/etc/iptables/rules.v4", "/etc/iptables/rules.v6"]


def test_a_ruleset_without_sets_any_more_removes_fleetwalls_sets_from_the_sets_file():
    files = plan_boot_files("Debian", "/", VERIFIED, "", "own", files_on_disk({"/etc/iptables/ipsets": FAIL2BAN + SETS}))
    assert files[-1].text == FAIL2BAN


def test_files_that_already_hold_the_texts_are_unchanged_and_give_no_diff():
    on_disk = {"/etc/iptables/rules.v4": OWN_V4, "/etc/iptables/rules.v6": OWN_V6}
    files = plan_boot_files("Debian", "/", VERIFIED, "", "own", files_on_disk(on_disk))
    assert ([item.changed for item in files], boot_diff_entries(files)) == ([False, False], [])


def test_the_diff_names_each_changed_file_with_its_text_now_and_its_new_text():
    files = plan_boot_files("Debian", "/", VERIFIED, "", "own", files_on_disk({"/etc/iptables/rules.v4": OWN_V6}))
    assert boot_diff_entries(files) == [
        {"before": OWN_V6, "after": OWN_V4, "before_header": "/etc/iptables/rules.v4",
         "after_header": "/etc/iptables/rules.v4"},
        {"before": "", "after": OWN_V6, "before_header": "/etc/iptables/rules.v6",
         "after_header": "/etc/iptables/rules.v6"},
    ]


# ------------------------------------------------------------- the I/O edge, in a directory of the test


class FakeModule(SimpleNamespace):
    def selinux_enabled(self) -> bool:
        return False


def module(tmp_path, check_mode=False, diff=False) -> FakeModule:
    params = {"persist": {"os_family": "Debian", "root": str(tmp_path)}, "mode": "own", "backup_dir": str(tmp_path / "b")}
    return FakeModule(params=params, check_mode=check_mode, _diff=diff)


def test_the_persist_phase_writes_the_files_with_their_mode_and_reports_them_written(tmp_path):
    outcome = persist_phase(module(tmp_path), VERIFIED, SETS, None)
    written = tmp_path / "etc/iptables/ipsets"
    assert (outcome["changed"], written.read_text(), oct(written.stat().st_mode & 0o777)) == (True, SETS_FILE, "0o640")


def test_a_second_persist_phase_changes_nothing(tmp_path):
    persist_phase(module(tmp_path), VERIFIED, SETS, None)
    outcome = persist_phase(module(tmp_path), VERIFIED, SETS, None)
    assert (outcome["changed"], set(outcome["boot_files"].values())) == (False, {"unchanged"})


def test_the_persist_phase_leaves_no_temporary_file_behind(tmp_path):
    persist_phase(module(tmp_path), VERIFIED, "", None)
    assert sorted(os.listdir(tmp_path / "etc/iptables")) == ["rules.v4", "rules.v6"]


def test_check_mode_reports_the_files_it_would_write_and_writes_none(tmp_path):
    outcome = persist_phase(module(tmp_path, check_mode=True, diff=True), VERIFIED, "", None)
    assert (outcome["changed"], len(outcome["diff"]), (tmp_path / "etc").exists()) == (True, 2, False)


def test_with_a_watchdog_the_files_wait_for_the_confirmation(tmp_path):
    (tmp_path / "b").mkdir()
    outcome = persist_phase(module(tmp_path), VERIFIED, "", {"token": "T1"})
    pending = json.loads((tmp_path / "b/T1.boot.json").read_text())
    assert (set(outcome["boot_files"].values()), len(pending), (tmp_path / "etc").exists()) == ({"pending"}, 2, False)


def test_the_confirmation_writes_the_files_its_run_left(tmp_path):
    (tmp_path / "b").mkdir()
    persist_phase(module(tmp_path), VERIFIED, "", {"token": "T1"})
    written = write_pending(module(tmp_path), str(tmp_path / "b"), ["T1"])
    assert ((tmp_path / "etc/iptables/rules.v4").read_text(), (tmp_path / "b/T1.boot.json").exists(), len(written)) == (
        OWN_V4, False, 2)
