#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# The work happens in plugins/action/verify_reachability.py, on the controller; this file documents it.

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: verify_reachability
short_description: Judge what the probes observed against the policy, and write the reachability report
version_added: "0.1.0"
author: fleetwall contributors (@fleetwall)
description:
  - Works out, from the compiled rulesets of O(hosts), what every sampled host must and must not reach (the
    model of P(fleetwall.iptables.reachability_model#filter), with the same O(hosts_per_group) and
    O(sources_per_group), so its check ids are those the probes were sent for), joins it with what
    M(fleetwall.iptables.probe) observed (P(fleetwall.iptables.compare_reachability#filter)), writes the HTML
    report (P(fleetwall.iptables.reachability_report#filter)) and, if asked, the verification as JSON, and
    returns only the summary.
  - One task instead of a model, a verification and a report passed from task to task in variables (at a hundred
    hosts those are tens of megabytes, and Ansible templating them, returning them as task results and converting
    them to JSON took 90 s where this task takes 9 s).
  - A mismatch does not fail this task. It returns RV(mismatched) and RV(mismatches) for the play to act on, after
    the report is written.
options:
  hosts:
    description: The hosts to verify, as for P(fleetwall.iptables.reachability_model#filter) (usually
      C(ansible_play_hosts_all)).
    type: list
    elements: str
    required: true
  hosts_per_group:
    description: Hosts per group that take part, first by name; V(0) for every host.
    type: int
    default: 2
  sources_per_group:
    description: Hosts of each group that probe each destination; V(0) for every pair.
    type: int
    default: 0
  observations:
    description:
      - What the probes observed, as P(fleetwall.iptables.compare_reachability#filter) takes it - one registered
        M(fleetwall.iptables.probe) result per host (an empty one for a host that probed nothing), or plain lists of
        probe results.
      - A check whose probe has no result is an error row ("no probe result from HOST").
    type: list
    elements: raw
    default: []
  report:
    description: Where to write the self-contained HTML report on the controller; not written when left out.
    type: path
  json:
    description: Where to write the verification as JSON on the controller; not written when left out.
    type: path
  title:
    description: The report's title.
    type: str
    default: fleetwall reachability
  generated:
    description: When the verification was made, as the report shows it (for example C(2026-12-06 14:00:00 UTC)).
    type: str
    default: ""
attributes:
  action:
    description: Runs as an action plugin, entirely on the controller; it never connects to a host.
    support: full
  check_mode:
    description: Can run in check mode and return the changed status prediction without modifying the target.
    support: full
    details: Judges and returns the summary; writes no file.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
seealso:
  - module: fleetwall.iptables.probe
  - plugin: fleetwall.iptables.reachability_model
    plugin_type: filter
  - plugin: fleetwall.iptables.compare_reachability
    plugin_type: filter
  - plugin: fleetwall.iptables.reachability_report
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Judge the probes and write the report
  fleetwall.iptables.verify_reachability:
    hosts: "{{ ansible_play_hosts_all }}"
    sources_per_group: 2
    observations: "{{ ansible_play_hosts_all | map('extract', hostvars) | map(attribute='probed', default={}) | list }}"
    report: /tmp/fleetwall-reachability.html
  register: verification
  run_once: true

- name: Fail on any mismatch
  ansible.builtin.fail:
    msg: "{{ verification.mismatches | join(' | ') }}"
  when: verification.mismatched
  run_once: true
"""

RETURN = r"""
summary:
  description: How many checks there were, and how many of them passed, mismatched, were inconclusive or not probed.
  returned: always
  type: dict
  sample: {checks: 120, passed: 118, mismatches: 0, inconclusive: 2, not_probed: 0}
sampling:
  description: What was sampled (the hosts and pairs checked), with a C(description) to show.
  returned: always
  type: dict
  sample: {hosts: 6, sampled_hosts: 6, hosts_per_group: 0, sources_per_group: 0, host_pairs: 30, all_host_pairs: 30,
           description: "all 6 hosts take part; every host pair is checked (30)"}
mismatches:
  description: One line per mismatch, naming the pair, the service, what was expected and what was observed.
  returned: always
  type: list
  elements: str
  sample: ["web2 -> db1 postgres (tcp/5432, IPv4): expected reachable, observed filtered (no answer); the policy decides at db1 INPUT rule 4"]
mismatched:
  description: Whether any check mismatched.
  returned: always
  type: bool
  sample: false
written:
  description: The files written (none in check mode).
  returned: always
  type: list
  elements: path
  sample: [/tmp/fleetwall-reachability.html]
"""
