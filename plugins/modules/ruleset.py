#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: ruleset
short_description: Converge a host's iptables and ip6tables rulesets to a compiled fleetwall ruleset
version_added: "0.1.0"
author: fleetwall maintainers (@fleetwall)
description:
  - Takes the output of the P(fleetwall.iptables.compile_ruleset#filter) filter and makes the host's live
    IPv4 and IPv6 rulesets equal to it.
  - Reads the live state with C(iptables-save) and C(ip6tables-save) and compares it in canonical form, so the
    task reports C(changed) only on a real difference, and a second run changes nothing.
  - Validates both families with C(iptables-restore --test) before touching anything, then applies each family
    with one C(iptables-restore). If the second family fails, the first is put back. A detached guardian process
    restores the previous rulesets of both families if the module is killed between the two.
  - Refuses, before changing anything, a ruleset that would cut the controller's SSH conversation, its new
    connections or the replies of the SSH server (O(lockout_check)), a whole-table takeover of a table that
    holds Docker, Kubernetes or fail2ban chains (see O(mode)), and a host whose rules live in the other iptables
    backend (nf_tables or legacy).
  - With O(rollback_timeout), the previous rulesets come back by themselves unless a later task confirms the new
    ones with O(confirm) over a fresh connection.
  - When the compiled ruleset matches ipset sets (its C(ipsets) text, see C(fleetwall_set_threshold)), the sets are
    part of the ruleset. Members are compared in canonical form (C(ipset save), sorted, without per-boot noise),
    so a set counts as C(changed) only on a real difference. New sets are created before the rules are validated
    (C(iptables-restore --test) refuses a rule naming a missing set); changed sets are rebuilt as a temporary twin
    and swapped in atomically (C(ipset swap)); sets no rule uses any more are destroyed after the rules are
    restored. The backup, the guardian and the re-read after applying cover the sets too; a failure or a killed
    module puts back the previous sets, then the previous rules, then destroys the sets only the new rules used.
  - Only fleetwall's own sets (names C(fw4-*) and C(fw6-*)) are ever read, changed or destroyed; other software's
    sets (fail2ban's, for instance) are left as they are, in both modes. A ruleset with sets on a host without the
    C(ipset) command is refused before anything changes; without sets, C(ipset) is not needed.
options:
  ruleset:
    description:
      - The compiled ruleset for this host, from the P(fleetwall.iptables.compile_ruleset#filter) filter.
      - Required unless O(confirm=true).
    type: dict
  apply:
    description:
      - V(false) only writes the boot files of O(persist) for O(ruleset), without reading or changing the live
        rulesets (for a ruleset applied by other means, or the P(fleetwall.iptables.fleetwall_persistence#role) role
        on its own). Requires O(persist).
    type: bool
    default: true
  persist:
    description:
      - Write the host's boot-time files, so that a reboot brings back what this run made live. After applying, the
        files get the very texts the module has just verified live (in O(mode=coexist), fleetwall's chains and
        jumps with C(ACCEPT) built-in chains, so no other tool's runtime rules are frozen into them); on a run that
        changes nothing, the live texts that equal the policy.
      - Debian family (iptables-persistent, ipset-persistent) C(/etc/iptables/rules.v4), C(rules.v6) and, when the
        ruleset has sets, C(ipsets), mode C(0640); netfilter-persistent's C(10-ipset) plugin loads the sets before
        its C(15-ip4tables) and C(25-ip6tables) plugins load the rules. RHEL family (iptables-services,
        ipset-service) C(/etc/sysconfig/iptables), C(ip6tables) and C(ipset), mode C(0600); C(ipset.service) starts
        before C(iptables.service) and C(ip6tables.service).
      - The sets file keeps other software's sets that are in it; fleetwall's sets follow them. It is written when
        the ruleset has sets, or when it still holds fleetwall sets that no rule uses any more.
      - Each file is written only when its text differs, as a temporary file in the same directory that is flushed
        to disk and renamed over the old one, owned by root, with the path's default SELinux context where SELinux
        is enabled.
      - With O(rollback_timeout), the files are written when the new rulesets are confirmed (O(confirm)), not
        before, so rulesets the watchdog takes back never reach them.
      - Installing the boot services and enabling them is the job of the
        P(fleetwall.iptables.fleetwall_persistence#role) role.
    type: dict
    suboptions:
      os_family:
        description: The layout of the boot files, as C(ansible_facts.os_family) names it.
        type: str
        required: true
        choices: [Debian, RedHat]
      root:
        description: A prefix for the files' paths; C(/) on real hosts (tests point it into a directory of theirs).
        type: path
        default: /
  mode:
    description:
      - V(own) makes the whole C(filter) table fleetwall's, built-in chain policies included. It refuses when the
        table holds chains it does not define, unless O(takeover=true).
      - V(coexist) manages only fleetwall's own chains (C(FWL-INPUT), C(FWL-FORWARD), C(FWL-OUTPUT)) and one jump at
        the top of each built-in chain, applied with C(--noflush); every other chain and rule, and the built-in
        policies, are left as they are. A V(drop) or V(reject) default policy becomes the last rule of
        fleetwall's chain; an V(accept) default lets packets fall through to the other tools' rules.
      - In V(coexist) mode, rules for Docker-published ports (C(published) forward rules) go to C(FWL-DOCKER-USER),
        reached by one jump inserted at the top of Docker's C(DOCKER-USER) chain, which is created when Docker has
        not made it yet and never flushed; the C(nat) table, when the ruleset has one, is managed the same way
        through fleetwall's own C(FWL-) chains.
    type: str
    choices: [own, coexist]
    default: own
  takeover:
    description:
      - In O(mode=own), replace the C(filter) table even when it holds chains of other software (Docker,
        Kubernetes, fail2ban, ...). Those chains and their rules are removed.
    type: bool
    default: false
  lockout_check:
    description:
      - When the play reaches the host over SSH, simulate the SSH conversation between the controller's address and
        the SSH server's address and port (as the host sees them in C(SSH_CONNECTION)) against the new ruleset, in
        the family the connection uses, and refuse to apply it if any leg would not be accepted.
      - The legs are the SYN of a new connection (C(INPUT), state C(NEW)), the server's SYN-ACK (C(OUTPUT), state
        C(ESTABLISHED), from the server's port), and established traffic in both directions. A new connection is
        what the next login and the confirmation of O(rollback_timeout) need; the open session needs the
        established legs.
    type: bool
    default: true
  allow_lockout:
    description:
      - Apply even when O(lockout_check) finds that the controller would be cut off.
    type: bool
    default: false
  ssh_connection:
    description:
      - The C(SSH_CONNECTION) value (C(client_ip client_port server_ip server_port)) to check for lockout.
      - The action plugin of this module fills it in from the connection itself, because C(become) hides the
        variable from the module. Set it only to check a different path.
    type: str
  rollback_timeout:
    description:
      - Seconds within which a later task must confirm the new rulesets with O(confirm=true); otherwise a detached
        watchdog on the host restores the previous rulesets of both families. V(0) disables the watchdog.
    type: int
    default: 0
  confirm:
    description:
      - Confirm rulesets applied with O(rollback_timeout). The action plugin opens a new connection first, so a
        confirmation proves that the new rulesets still let the controller in.
      - Fails if the watchdog has already restored the previous rulesets.
      - Writes the boot files that the confirmed run left for the confirmation (see O(persist)).
    type: bool
    default: false
  backup_dir:
    description:
      - Directory on the host for backups of the previous rulesets and the watchdog's state.
    type: path
    default: /var/lib/fleetwall
  backup_keep:
    description:
      - How many backups per family to keep in O(backup_dir).
    type: int
    default: 10
  settle:
    description:
      - After a run that applied and persisted (or a confirmation that did), leave what lets the next run skip this
        module when nothing changed. A custom fact C(fleetwall.fact) in O(settle.fact_path), a shell script that fact
        gathering runs (C(ansible_local.fleetwall); the C(min) subset includes local facts), prints digests of the
        host's state now (both families' saved rulesets without counters, the other backend's, the ipset sets,
        the boot files of O(persist), the boot packages and units) and the stamp C(settled.json) in O(backup_dir),
        which holds O(settle.inputs) and the digests seen right after this run.
      - The P(fleetwall.iptables.fleetwall_firewall#role) role sets it (C(fleetwall_firewall_skip_settled)). On its next
        run it skips this module when the gathered fact's stamp holds the same O(settle.inputs) and every digest the
        fact prints now equals the one in the stamp.
      - Requires O(persist). Nothing is recorded in check mode, nor by a run that leaves a watchdog to confirm (the
        confirmation records it).
    type: dict
    suboptions:
      inputs:
        description:
          - The digest of everything the caller asked of this run (for instance C(to_json(sort_keys=true)) and
            C(hash('sha256')) of the arguments and settings that decide it), kept in the stamp as it is.
        type: str
        required: true
      fact_path:
        description:
          - Ansible's custom fact directory on the host (the C(fact_path) of fact gathering).
        type: path
        default: /etc/ansible/facts.d
attributes:
  action:
    description: Has a corresponding action plugin, which reads C(SSH_CONNECTION) and resets the connection.
    support: full
  check_mode:
    description: Can run in check mode and return the changed status prediction without modifying the target.
    support: full
    details:
      - Reads the live state, reports what would change (rules, sets and boot files) and runs the lockout check;
        changes nothing.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when in diff mode.
    support: full
    details:
      - A unified diff per family between the live rules and the policy's, and, when fleetwall's ipset sets exist
        or the ruleset has sets, one between the live sets and the policy's in canonical C(ipset save) form.
      - With O(persist), one per boot file that changes, its text now against its new text.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
requirements:
  - iptables (nf_tables or legacy backend) with iptables-save, iptables-restore, ip6tables-save, ip6tables-restore
  - ipset, only when the compiled ruleset matches ipset sets
notes:
  - The watchdog is a detached process started from the module. It survives the end of the SSH session, but not a
    reboot. O(persist) writes the boot files; the P(fleetwall.iptables.fleetwall_persistence#role) role installs and
    enables the services that load them.
  - Only the C(filter) table is managed. Other tables (C(nat), C(mangle), ...) are never changed.
seealso:
  - plugin: fleetwall.iptables.compile_ruleset
    plugin_type: filter
  - name: community.general.iptables_state
    description: Saves and restores the rules of one address family from a file (not a dependency of this collection).
    link: https://docs.ansible.com/ansible/latest/collections/community/general/iptables_state_module.html
"""

EXAMPLES = r"""
- name: Compile this host's rulesets
  ansible.builtin.set_fact:
    fleetwall_ruleset: "{{ hostvars | fleetwall.iptables.compile_ruleset(groups, inventory_hostname) }}"

- name: Apply them; roll back by themselves unless confirmed within 60 seconds
  fleetwall.iptables.ruleset:
    ruleset: "{{ fleetwall_ruleset }}"
    rollback_timeout: 60

- name: Confirm over a new connection that Ansible can still get in
  fleetwall.iptables.ruleset:
    confirm: true

- name: Apply, and write the Debian boot files (rules.v4, rules.v6, ipsets) from what is verified live
  fleetwall.iptables.ruleset:
    ruleset: "{{ fleetwall_ruleset }}"
    persist:
      os_family: "{{ ansible_facts['os_family'] }}"

- name: Only write the boot files, without touching the live rulesets
  fleetwall.iptables.ruleset:
    ruleset: "{{ fleetwall_ruleset }}"
    apply: false
    persist:
      os_family: Debian

- name: On a Docker host, manage only fleetwall's chains
  fleetwall.iptables.ruleset:
    ruleset: "{{ fleetwall_ruleset }}"
    mode: coexist
"""

RETURN = r"""
backend:
  description: The iptables backend the host uses.
  returned: always, except with O(confirm) or O(apply=false)
  type: str
  sample: nf_tables
rules:
  description: Rules added and removed, per family.
  returned: always, except with O(confirm) or O(apply=false)
  type: dict
  sample: {"ipv4": {"added": 3, "removed": 1}, "ipv6": {"added": 0, "removed": 0}}
mode:
  description: The O(mode) the run used.
  returned: always, except with O(confirm)
  type: str
  sample: own
sets:
  description:
    - fleetwall's ipset sets that change, by name, with the members added and removed (an exception as
      C(MEMBER nomatch)). A new set lists all its members as added, a set no rule uses any more all its members as
      removed. Empty when no set changes.
  returned: always, except with O(confirm) or O(apply=false)
  type: dict
  sample: {"fw4-group:web": {"added": ["192.0.2.17", "198.51.100.0/24"], "removed": ["192.0.2.9"]}}
backup:
  description:
    - Paths of the backups of the previous rulesets, per family, and of fleetwall's previous ipset sets
      (C(ipset), when the run touches sets); empty when nothing changed.
  returned: always, except with O(confirm) or O(apply=false)
  type: dict
  sample: {"ipv4": "/var/lib/fleetwall/20261122T001500-3f2a.v4", "ipv6": "/var/lib/fleetwall/20261122T001500-3f2a.v6",
           "ipset": "/var/lib/fleetwall/20261122T001500-3f2a.sets"}
lockout_check:
  description:
    - What the lockout check did. V(checked=false) comes with a C(reason).
    - C(verdict) and C(rule) are those of the first leg that is not accepted (named in C(cut)), or of the new
      connection's SYN when every leg is; C(legs) lists each leg with its verdict and deciding rule (null for a
      chain policy).
  returned: always, except with O(confirm) or O(apply=false)
  type: dict
  sample:
    checked: true
    client: 10.0.0.1
    server: 10.0.0.5
    port: 22
    verdict: ACCEPT
    rule: -A INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 22 -m comment --comment "fleetwall_policy.all.inbound[0]" -j ACCEPT
    legs:
      - {leg: a new SSH connection, chain: INPUT, verdict: ACCEPT,
         rule: '-A INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 22 -m comment --comment "fleetwall_policy.all.inbound[0]" -j ACCEPT'}
      - {leg: "the SSH server's SYN-ACK", chain: OUTPUT, verdict: ACCEPT, rule: null}
      - {leg: "the controller's traffic on an established SSH connection", chain: INPUT, verdict: ACCEPT,
         rule: '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "fleetwall baseline: established" -j ACCEPT'}
      - {leg: "the SSH server's replies on an established SSH connection", chain: OUTPUT, verdict: ACCEPT, rule: null}
watchdog:
  description: The rollback watchdog, when O(rollback_timeout) is set and something changed.
  returned: when a watchdog was started
  type: dict
  sample: {"token": "20261122T001500-3f2a", "timeout": 60, "pid": 4242}
boot_files:
  description:
    - With O(persist), each boot file and what the run did to it - V(unchanged), V(written) (in check mode, would be
      written) or V(pending) (written when the watchdog of O(rollback_timeout) is confirmed).
    - With O(confirm), the boot files the confirmation wrote.
  returned: with O(persist) or O(confirm)
  type: dict
  sample: {"/etc/iptables/rules.v4": "written", "/etc/iptables/rules.v6": "unchanged", "/etc/iptables/ipsets": "written"}
settled:
  description: The O(settle.inputs) the stamp now holds.
  returned: when O(settle) recorded a stamp
  type: str
  sample: 5f0c3b8e2a41d7c9e0f6a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6
confirmed:
  description: Tokens of the watchdogs that were confirmed.
  returned: with O(confirm)
  type: list
  elements: str
  sample: ["20261122T001500-3f2a"]
"""

import os

from ansible_collections.fleetwall.iptables.plugins.module_utils.host_reads import EarlyReads, find_tool

# Reading the host (backend check, both saves, ipset save) takes about as long as the imports
# below: start it first. Not when the file is only imported (documentation, sanity tests).
EARLY_READS = EarlyReads.begin() if __name__ == "__main__" else None

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetwall.iptables.plugins.module_utils.apply_plan import (
    FAMILIES,
    PlanRefusal,
    diff_entries,
    plan_family,
    rule_changes,
    unchanged_plans,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.apply_run import ApplyFailed, ApplySettings, apply_plans
from ansible_collections.fleetwall.iptables.plugins.module_utils.host_tools import HostTools, run
from ansible_collections.fleetwall.iptables.plugins.module_utils.ipsets import SetTextError, canonical_text
from ansible_collections.fleetwall.iptables.plugins.module_utils.live_state import render_desired
from ansible_collections.fleetwall.iptables.plugins.module_utils.lockout import (
    LockoutRefusal,
    check_lockout,
    interface_of,
    not_checked,
    parse_ssh_connection,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.set_plan import (
    NO_SETS,
    plan_sets,
    set_changes,
    set_diff_entry,
    sets_unchanged,
)

# A run that changes nothing needs neither the parser, the simulator, the guardian nor the boot files:
# those are imported where they are used (transport, boot_writer, guardian here; the simulator by lockout),
# since on a target every file a module imports is compiled from source on every run.

ARGUMENT_SPEC = dict(
    ruleset=dict(type="dict"),
    apply=dict(type="bool", default=True),
    persist=dict(
        type="dict",
        options=dict(
            os_family=dict(type="str", required=True, choices=["Debian", "RedHat"]),
            root=dict(type="path", default="/"),
        ),
    ),
    mode=dict(type="str", choices=["own", "coexist"], default="own"),
    takeover=dict(type="bool", default=False),
    lockout_check=dict(type="bool", default=True),
    allow_lockout=dict(type="bool", default=False),
    ssh_connection=dict(type="str"),
    rollback_timeout=dict(type="int", default=0),
    confirm=dict(type="bool", default=False),
    backup_dir=dict(type="path", default="/var/lib/fleetwall"),
    backup_keep=dict(type="int", default=10),
    settle=dict(
        type="dict",
        options=dict(inputs=dict(type="str", required=True), fact_path=dict(type="path", default="/etc/ansible/facts.d")),
    ),
)


def confirm(module):
    from ansible_collections.fleetwall.iptables.plugins.module_utils.boot_writer import write_pending
    from ansible_collections.fleetwall.iptables.plugins.module_utils.guardian import WatchdogRolledBack, confirm_watchdogs

    if EARLY_READS is not None:
        EARLY_READS.cancel()  # confirming reads no rules
    backup_dir = module.params["backup_dir"]
    try:
        tokens = confirm_watchdogs(backup_dir, module.check_mode)
    except WatchdogRolledBack as exc:
        module.fail_json(msg=str(exc), changed=False)
    written = [] if module.check_mode else write_pending(module, backup_dir, tokens)
    result = dict(changed=bool(tokens), confirmed=tokens, boot_files=dict((path, "written") for path in written))
    settle(module, result)
    module.exit_json(**result)


def settle(module, result):
    """Record the settled stamp when this run converged the host (see the settle option)."""
    params = module.params
    if not params["settle"] or not params["persist"] or module.check_mode or result.get("watchdog"):
        return
    from ansible_collections.fleetwall.iptables.plugins.module_utils.boot_writer import record_settled

    recorded = record_settled(module, params["settle"], params["persist"], params["backup_dir"])
    result["changed"] = result["changed"] or recorded["changed"]
    result["settled"] = recorded["settled"]


def persist(module, result, verified, ruleset):
    """The persist phase after a verified apply (or a plan that changes nothing): merge it into the result.

    `verified`: the family key -> the text now live; `ruleset`: the parsed ruleset, None when the
    plan found the live state equal to the received texts without parsing them."""
    if not module.params["persist"]:
        return
    from ansible_collections.fleetwall.iptables.plugins.module_utils.boot_writer import persist_phase

    if ruleset is None:
        sets_text = module.params["ruleset"].get("ipsets") or ""  # equal to the live sets (sets_unchanged)
    else:
        sets_text = canonical_text(ruleset.ipv4.sets + ruleset.ipv6.sets)
    outcome = persist_phase(module, verified, sets_text, result.get("watchdog"))
    # Popped before it is or-ed: a short-circuited pop would leave it in outcome, and the update below would then
    # report a run that changed the live rules but not the boot files as unchanged.
    files_changed = outcome.pop("changed")
    result["changed"] = result["changed"] or files_changed
    result["diff"] = result.get("diff", []) + outcome.pop("diff", [])
    result.update(outcome)


def persist_only(module):
    """apply=false: write the boot files of the compiled ruleset; the live state is not read."""
    if EARLY_READS is not None:
        EARLY_READS.cancel()
    from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict

    try:
        ruleset = ruleset_from_dict(module.params["ruleset"])
    except ValueError as exc:
        module.fail_json(msg="ruleset: %s" % exc, changed=False)
    mode = module.params["mode"]
    result = dict(changed=False, mode=mode)
    persist(module, result, dict((spec.key, render_desired(ruleset.family(spec.family), mode)) for spec in FAMILIES),
            ruleset)
    module.exit_json(**result)


def plan(params, host, tools=None):
    """(family plans, set plan, parsed ruleset or None when nothing changes and nothing was parsed).

    With `tools`, the received texts are tested (restore --test) while they are parsed: in mode: own
    they are the restore input, unless fleetwall would render them otherwise."""
    received = params["ruleset"]
    if params["mode"] == "own" and sets_unchanged(received.get("ipsets"), host.ipset_saved):
        plans = unchanged_plans(received, host.saves)
        if plans is not None:
            return plans, NO_SETS, None
    if tools is not None and params["mode"] == "own":
        texts = [(spec.command, received.get(spec.key)) for spec in FAMILIES]
        tools.test_ahead([(command, text, False) for command, text in texts if isinstance(text, str)])
    from ansible_collections.fleetwall.iptables.plugins.module_utils.transport import ruleset_from_dict

    try:
        ruleset = ruleset_from_dict(received)
    except ValueError as exc:
        raise PlanRefusal("ruleset: %s" % exc)
    plans = [
        plan_family(spec, ruleset.family(spec.family), host.saves[spec.key], params["mode"], params["takeover"])
        for spec in FAMILIES
    ]
    return plans, plan_ipsets(ruleset, host), ruleset


def plan_ipsets(ruleset, host):
    """The set plan; PlanRefusal when the ruleset has sets and the host cannot hold them."""
    desired = ruleset.ipv4.sets + ruleset.ipv6.sets
    if desired and host.ipset_saved is None:
        raise PlanRefusal(
            "the ruleset matches ipset sets (%s) but %s; install ipset on this host, nothing was changed"
            % (", ".join(sorted(item.name for item in desired)), host.ipset_problem)
        )
    try:
        return plan_sets(desired, host.ipset_saved or "")
    except SetTextError as exc:
        raise PlanRefusal("cannot read ipset save's output: %s" % exc)


def report(module, plans, sets, host):
    """The result before applying: what changes, per family and per set, and the diff."""
    changed = any(family_plan.changed for family_plan in plans) or sets.changed
    result = dict(changed=changed, backend=host.backend, mode=module.params["mode"], rules=rule_changes(plans),
                  sets=set_changes(sets), backup={})
    if module._diff:
        result["diff"] = diff_entries(plans) + ([set_diff_entry(sets)] if sets.needed else [])
    return result


def lockout_check(module, ruleset, changed):
    params = module.params
    if not changed:
        return not_checked("nothing changes")
    if not params["lockout_check"]:
        return not_checked("lockout_check is off")
    value = params["ssh_connection"] or os.environ.get("SSH_CONNECTION")
    if not value:
        return not_checked("not connected over SSH")
    try:
        connection = parse_ssh_connection(value)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    ip_command = module.get_bin_path("ip")
    addresses = run([ip_command, "-o", "addr", "show"]) if ip_command else None
    interface = interface_of(connection.server, addresses.stdout) if addresses and addresses.returncode == 0 else None
    return check_lockout(
        ruleset.family(connection.family), connection, interface, params["mode"], params["allow_lockout"]
    )


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("confirm", False, ("ruleset",)), ("apply", False, ("persist",))],
        required_by={"settle": ("persist",)},
        supports_check_mode=True,
    )
    params = module.params
    if params["confirm"]:
        confirm(module)
    if not params["apply"]:
        persist_only(module)
    if params["rollback_timeout"] < 0:
        module.fail_json(msg="rollback_timeout must be 0 (off) or a number of seconds")
    try:
        tools = HostTools(find_tool)
        host = tools.read_host(EARLY_READS)
        plans, sets, ruleset = plan(params, host, None if module.check_mode else tools)
        result = report(module, plans, sets, host)
        changed = result["changed"]
        result["lockout_check"] = lockout_check(module, ruleset, changed)
        if changed and not module.check_mode:
            settings = ApplySettings(params["mode"], params["backup_dir"], params["backup_keep"], params["rollback_timeout"])
            result.update(apply_plans(plans, tools, settings, sets))
        persist(module, result, dict((plan.spec.key, plan.after) for plan in plans), ruleset)
        settle(module, result)
    except (PlanRefusal, ApplyFailed) as exc:
        module.fail_json(msg=str(exc), changed=False)
    except LockoutRefusal as exc:
        module.fail_json(msg=str(exc), lockout_check=exc.result, changed=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
