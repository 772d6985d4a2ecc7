# -*- coding: utf-8 -*-
# Copyright: fleetwall contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A packet as a playbook writes it, for the simulator.

Private to the fleetwall.iptables collection; the simulate_packet filter reads
its packet argument with it. Protocols, ports and ICMP types are read by the
parsers of module_utils/services, as in the policy; the fields that only a
packet has (addresses, conntrack state, TCP flags, ...) here. Controller-side
only (plugin_utils).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Dict, Mapping, Optional

from ansible_collections.fleetwall.iptables.plugins.module_utils.problems import type_name
from ansible_collections.fleetwall.iptables.plugins.module_utils.services import (
    SpecError,
    parse_icmp_type,
    parse_port,
    parse_protocol,
)
from ansible_collections.fleetwall.iptables.plugins.module_utils.simulate import CHAIN_OF_DIRECTION, CTSTATES, TCP_FLAGS, Packet

FIELDS = (
    "direction", "chain", "source", "destination", "protocol", "source_port", "port",
    "destination_port", "icmp_type", "icmp_code", "in_interface", "out_interface",
    "state", "tcp_flags", "hop_limit", "over_limits",
)
PORT_FIELDS = (("port", "destination_port"), ("destination_port", "destination_port"), ("source_port", "source_port"))


def packet_from_dict(data: Mapping[str, Any]) -> Packet:
    """A packet as a playbook writes it; ValueError naming the bad field."""
    unknown = sorted(str(key) for key in data if key not in FIELDS)
    if unknown:
        raise ValueError("packet: unknown field(s) %s; allowed: %s" % (", ".join(unknown), ", ".join(FIELDS)))
    values: Dict[str, Any] = {"chain": _chain(data)}
    values.update(_addresses(data))
    family = ipaddress.ip_address(values["source"]).version
    try:
        values.update(_service_fields(data, family))
    except SpecError as exc:
        raise ValueError(str(exc)) from None
    for key in ("icmp_code", "hop_limit"):
        if key in data:
            values[key] = _byte(data[key], key)
    for key in ("in_interface", "out_interface"):
        if data.get(key) is not None:
            values[key] = str(data[key])
    if "state" in data:
        values["state"] = _state(data["state"])
    if "over_limits" in data:
        if not isinstance(data["over_limits"], bool):
            raise ValueError("packet.over_limits: must be true or false, got %r" % (data["over_limits"],))
        values["over_limits"] = data["over_limits"]
    if "tcp_flags" in data:
        values["tcp_flags"] = _tcp_flags(data["tcp_flags"])
    elif values.get("state", "NEW") != "NEW":
        values["tcp_flags"] = frozenset(("ACK",))
    return Packet(**values)


def _chain(data: Mapping[str, Any]) -> str:
    if "chain" in data:
        chain = str(data["chain"]).upper()
        if chain not in CHAIN_OF_DIRECTION.values():
            raise ValueError("packet.chain: must be INPUT, OUTPUT or FORWARD, got %r" % (data["chain"],))
        return chain
    direction = data.get("direction", "inbound")
    if direction not in CHAIN_OF_DIRECTION:
        raise ValueError("packet.direction: must be inbound, outbound or forward, got %r" % (direction,))
    return CHAIN_OF_DIRECTION[direction]


def _addresses(data: Mapping[str, Any]) -> Dict[str, str]:
    addresses = {}
    for key in ("source", "destination"):
        if key not in data:
            raise ValueError("packet.%s: required" % key)
        try:
            addresses[key] = str(ipaddress.ip_address(str(data[key])))
        except ValueError:
            raise ValueError("packet.%s: not an IP address: %r" % (key, data[key])) from None
    if ipaddress.ip_address(addresses["source"]).version != ipaddress.ip_address(addresses["destination"]).version:
        raise ValueError("packet: source and destination are of different address families")
    return addresses


def _service_fields(data: Mapping[str, Any], family: int) -> Dict[str, Any]:
    """protocol, ports and ICMP type and code, by the parsers the policy's services use; SpecError naming the field."""
    values: Dict[str, Any] = {}
    protocol: Optional[str] = None
    if data.get("protocol") is not None:
        try:
            protocol = parse_protocol(data["protocol"])
        except SpecError as exc:
            raise SpecError("packet.protocol: %s" % exc) from None
        if protocol == "icmp" and family == 6:
            protocol = "ipv6-icmp"  # "icmp" to an IPv6 address means ICMPv6, as the probe module reads it
        values["protocol"] = protocol
    for key, field in PORT_FIELDS:
        if data.get(key) is not None:
            values[field] = _port(data[key], key)
    if "icmp_type" in data:
        icmp_protocol = protocol if protocol in ("icmp", "ipv6-icmp") else ("icmp" if family == 4 else "ipv6-icmp")
        try:
            canonical = parse_icmp_type(icmp_protocol, data["icmp_type"])
        except SpecError as exc:
            raise SpecError("packet.icmp_type: %s" % exc) from None
        numbers = [int(part) for part in (canonical or "").split("/") if part]
        if numbers:
            values["icmp_type"] = numbers[0]
        if len(numbers) > 1:
            values["icmp_code"] = numbers[1]
    return values


def _port(value: Any, key: str) -> int:
    try:
        ports = parse_port(value)
    except SpecError as exc:
        raise SpecError("packet.%s: %s" % (key, exc)) from None
    if ports.low != ports.high:
        raise SpecError("packet.%s: a packet has one port, got the range %r" % (key, value))
    return ports.low


def _byte(value: Any, key: str) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or str(value).isdigit()) or not 0 <= int(value) <= 255:
        raise ValueError("packet.%s: must be a number from 0 to 255, got %r" % (key, value))
    return int(value)


def _state(value: Any) -> str:
    state = str(value).upper()
    if state not in CTSTATES:
        raise ValueError("packet.state: must be one of %s, got %r" % (", ".join(CTSTATES), value))
    return state


def _tcp_flags(value: Any) -> frozenset:
    if not isinstance(value, (str, list, tuple)):
        raise ValueError("packet.tcp_flags: must be a list of flags or a comma-separated string, got %s" % type_name(value))
    items = value.split(",") if isinstance(value, str) else list(value)
    flags = frozenset(str(flag).strip().upper() for flag in items if str(flag).strip())
    unknown = sorted(flags - set(TCP_FLAGS))
    if unknown:
        raise ValueError("packet.tcp_flags: unknown flag(s) %s" % ", ".join(unknown))
    return flags
