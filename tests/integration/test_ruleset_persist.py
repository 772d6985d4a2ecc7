"""The ruleset module's persist phase, against real iptables and ipset in network namespaces.

The module runs as in test_ruleset_module.py; the boot files go under a
directory of the test (O(persist.root)), because the namespaces share this
machine's /etc. The boot files must hold exactly what the kernel holds
after the run, and loading them into a fresh namespace (what a reboot does)
must bring back the same rules and sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from ansible_collections.fleetwall.iptables.tests.integration.netns import Namespace
from ansible_collections.fleetwall.iptables.tests.integration.test_ipsets_kernel import ipset
from ansible_collections.fleetwall.iptables.tests.integration.test_ruleset_module import (
    ModuleRunner,
    compiled,
    filter_table,
)
from ansible_collections.fleetwall.iptables.tests.integration.test_ruleset_sets import compiled as compiled_with_sets
from ansible_collections.fleetwall.iptables.tests.integration.test_ruleset_sets import live_sets


@pytest.fixture
def host(namespace: Namespace, tmp_path: Path) -> ModuleRunner:
    return ModuleRunner(namespace, tmp_path)


def persisted(host: ModuleRunner, ruleset: Dict[str, Any], os_family: str = "Debian", **extra: Any) -> Dict[str, Any]:
    return dict({"ruleset": ruleset, "persist": {"os_family": os_family, "root": str(host.workdir / "root")}}, **extra)


def boot(host: ModuleRunner, path: str) -> Path:
    return host.workdir / "root" / path


def test_apply_and_persist_writes_the_very_rules_now_live_in_both_families(host):
    host.run(persisted(host, compiled()))
    files = (boot(host, "etc/iptables/rules.v4").read_text(), boot(host, "etc/iptables/rules.v6").read_text())
    assert files == (filter_table(host.namespace, 4), filter_table(host.namespace, 6))


def test_a_second_run_with_persist_changes_nothing(host):
    host.run(persisted(host, compiled()))
    result = host.run(persisted(host, compiled()))
    assert (result["changed"], set(result["boot_files"].values())) == (False, {"unchanged"})


def test_a_boot_file_edited_by_hand_is_written_again_and_reported_as_the_only_change(host):
    host.run(persisted(host, compiled()))
    boot(host, "etc/iptables/rules.v6").write_text("*filter\nCOMMIT\n")
    result = host.run(persisted(host, compiled()))
    assert (result["changed"], result["rules"]["ipv6"], result["boot_files"][str(boot(host, "etc/iptables/rules.v6"))]) == (
        True, {"added": 0, "removed": 0}, "written")


def test_check_mode_with_persist_writes_no_boot_file(host):
    result = host.run(persisted(host, compiled()), check_mode=True)
    assert (result["changed"], boot(host, "etc").exists()) == (True, False)


def test_persist_without_apply_writes_the_files_and_leaves_the_kernel_alone(host):
    result = host.run(persisted(host, compiled(), apply=False))
    assert (result["changed"], "--dport 5432" in boot(host, "etc/iptables/rules.v4").read_text(),
            filter_table(host.namespace, 4)) == (True, True, "")


def test_with_a_rollback_timeout_the_files_are_written_only_at_confirmation(host):
    result = host.run(persisted(host, compiled(), rollback_timeout=60))
    before_confirmation = boot(host, "etc/iptables/rules.v4").exists()
    confirmation = host.run({"confirm": True})
    assert (result["boot_files"][str(boot(host, "etc/iptables/rules.v4"))], before_confirmation,
            boot(host, "etc/iptables/rules.v4").read_text()) == ("pending", False, filter_table(host.namespace, 4))
    assert len(confirmation["boot_files"]) == 2


def test_the_redhat_layout_writes_the_sysconfig_files_with_mode_0600(host):
    host.run(persisted(host, compiled(), os_family="RedHat"))
    written = boot(host, "etc/sysconfig/iptables")
    assert (written.read_text(), oct(written.stat().st_mode & 0o777)) == (filter_table(host.namespace, 4), "0o600")


def test_sets_are_persisted_in_the_ipsets_file_and_a_fresh_host_loads_it_before_the_rules(host, make_namespace):
    ruleset = compiled_with_sets()
    host.run(persisted(host, ruleset))
    rebooted = make_namespace()
    # What netfilter-persistent does at boot: 10-ipset, then 15-ip4tables and 25-ip6tables.
    ipset(rebooted, ["restore", "-exist"], boot(host, "etc/iptables/ipsets").read_text())
    for family, name in ((4, "rules.v4"), (6, "rules.v6")):
        rebooted.restore(family, boot(host, "etc/iptables/" + name).read_text())
    assert (live_sets(ModuleRunner(rebooted, host.workdir)), filter_table(rebooted, 4), filter_table(rebooted, 6)) == (
        live_sets(host), filter_table(host.namespace, 4), filter_table(host.namespace, 6))


def test_coexist_mode_persists_only_fleetwall_chains_with_accept_builtin_chains(host):
    host.run(persisted(host, compiled(), mode="coexist"))
    text = boot(host, "etc/iptables/rules.v4").read_text()
    assert text.splitlines()[1:4] == [":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
