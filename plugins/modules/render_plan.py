#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# The work happens in plugins/action/render_plan.py, on the controller; this file documents it.

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: render_plan
short_description: Write a compiled fleet as a plan directory for review, and for applying exactly what was reviewed
version_added: "0.1.0"
author: fleetwall contributors (@fleetwall)
description:
  - Compiles the rulesets of O(hosts) and writes, in one task on the controller, every host's files into the
    directory O(dest),
    and a C(manifest.json) that records each file's SHA-256, the policy's hash, the inventory's host list and
    the collection version. This is a plan, the input of the P(fleetwall.iptables.fleetwall_firewall#role) role's
    C(fleetwall_firewall_plan).
  - Per host, C(HOST.v4) and C(HOST.v6) (C(iptables-restore) input, exactly what C(iptables-save) prints back),
    C(HOST.ipsets) when its rules match ipset sets, and C(HOST.warnings) (one compile warning a line) when its
    compile warned. Files of an earlier plan that this one no longer has (a warnings file of a host that stopped
    warning, the files of a host that left the plan) are removed.
  - No timestamps and sorted keys, so the same policy and inventory always give the same bytes; the task reports
    C(changed) only when some file's bytes change.
  - Each changed file is written to a temporary file in O(dest) and renamed over the old one, C(manifest.json)
    last; a run cut short leaves files that the old manifest does not match, which an apply refuses.
  - The manifest's inventory is C(groups['all']), with which an apply detects a run that sees only part of the
    inventory (a slice).
  - The policy hash is the SHA-256 of the canonical JSON of C(fleetwall_services), C(fleetwall_addresses) and
    C(fleetwall_policy) as the first inventory host by name sees them.
options:
  dest:
    description: The plan directory, created when missing. Anything in it that is not part of a plan is left alone.
    type: path
    required: true
  hosts:
    description:
      - The hosts to compile and write, as for P(fleetwall.iptables.compile_fleet#filter). Empty or left out means
        every host in C(groups['all']).
      - The hosts are compiled from C(hostvars) and C(groups), as the filter would, with its warnings; a policy error
        for any host fails the task, naming its path, before any file is written.
      - A host name that cannot be a file name (one with a C(/), or starting with a dot) fails the task, naming it.
    type: list
    elements: str
attributes:
  action:
    description: Runs as an action plugin, entirely on the controller; it never connects to a host.
    support: full
  check_mode:
    description: Can run in check mode and return the changed status prediction without modifying the target.
    support: full
    details: Reports which files would be written or removed; writes nothing.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when in diff mode.
    support: full
    details: One diff per file written or removed.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
seealso:
  - module: fleetwall.iptables.ruleset
  - plugin: fleetwall.iptables.compile_fleet
    plugin_type: filter
  - plugin: fleetwall.iptables.plan_diff
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Render the plan of the whole inventory
  fleetwall.iptables.render_plan:
    dest: "{{ playbook_dir }}/plan"
  delegate_to: localhost
  run_once: true

- name: Render the plan of the web tier only
  fleetwall.iptables.render_plan:
    dest: "{{ playbook_dir }}/plan-web"
    hosts: "{{ groups['web'] }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
dest:
  description: The plan directory, as an absolute path.
  returned: always
  type: str
  sample: /srv/firewall/plan
hosts:
  description: How many hosts the plan holds.
  returned: always
  type: int
  sample: 2
written:
  description: The files written (or, in check mode, that would be), C(manifest.json) last.
  returned: always
  type: list
  elements: str
  sample: [web1.v4, manifest.json]
removed:
  description: Files of an earlier plan that this one no longer has, removed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [db1.warnings]
policy_sha256:
  description: The SHA-256 of the fleet's policy variables, as recorded in the manifest.
  returned: always
  type: str
  sample: 3f0a6c1d2b8e4f5a6978d0c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5968778695a4b
manifest_sha256:
  description: The SHA-256 of C(manifest.json); it identifies the whole plan, for a review note or an approval.
  returned: always
  type: str
  sample: 9b1c2d3e4f5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4
"""
