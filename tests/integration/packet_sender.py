"""Send one packet per command: run inside the client namespace, commands as JSON lines on stdin.

Started by test_simulator_vs_kernel.py as
``ip netns exec CLIENT python packet_sender.py``; standard library only. Each
command line is a JSON object

    {"proto": "tcp" | "udp" | "icmp" | "raw-tcp" | "raw", "src": ADDRESS, "dst": ADDRESS,
     "sport": PORT, "dport": PORT,                  # tcp, udp, raw-tcp
     "flags": ["SYN", "ACK", ...],                  # raw-tcp: a hand-made segment
     "icmp_type": N, "icmp_code": N,                # icmp (ICMPv6 for IPv6 addresses), then
     "icmp_id": N, "icmp_seq": N,                   # the header's second word as two halves
     "hop_limit": N,                                # icmp over IPv6
     "protocol": N,                                 # raw: IP protocol number
     "payload": N, "payload_hex": HEX}              # bytes after the header

and gets one JSON line back: {"ok": true} once the packet has left, or
{"ok": false, "error": "..."}.

TCP sends a bare SYN: a non-blocking connect() from the bound source, then
close() at once, so there is no retransmission and nothing else from this
side (the server has no listener; its RST finds no socket here).
"""

import errno
import json
import socket
import struct
import sys


def internet_checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def send_tcp_syn(family, command):
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((command["src"], command["sport"]))
        sock.setblocking(False)
        result = sock.connect_ex((command["dst"], command["dport"]))
        if result not in (0, errno.EINPROGRESS, errno.ECONNREFUSED):
            raise OSError(result, "connect: %s" % errno.errorcode.get(result, result))
    finally:
        sock.close()


def send_udp(family, command):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((command["src"], command["sport"]))
        sock.sendto(b"u" * command.get("payload", 8), (command["dst"], command["dport"]))
    finally:
        sock.close()


def payload_of(command):
    if "payload_hex" in command:
        return bytes.fromhex(command["payload_hex"])
    return b"p" * command.get("payload", 8)


def send_icmp(family, command):
    protocol = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    sock = socket.socket(family, socket.SOCK_RAW, protocol)
    try:
        sock.bind((command["src"], 0))
        if "hop_limit" in command:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, command["hop_limit"])
        payload = payload_of(command)
        header = struct.pack("!BBHHH", command["icmp_type"], command["icmp_code"], 0, command.get("icmp_id", 0), command.get("icmp_seq", 1))
        if family == socket.AF_INET:
            checksum = internet_checksum(header + payload)
            header = header[:2] + struct.pack("!H", checksum) + header[4:]
        # For ICMPv6 the kernel fills in the checksum (it needs the pseudo-header).
        sock.sendto(header + payload, (command["dst"], 0))
    finally:
        sock.close()


TCP_FLAG_BITS = {"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08, "ACK": 0x10, "URG": 0x20}


def send_raw_tcp(family, command):
    """A TCP segment with exactly the given flags, no options, checksum computed here."""
    flags = 0
    for name in command["flags"]:
        flags |= TCP_FLAG_BITS[name]
    acknowledgement = 1 if flags & TCP_FLAG_BITS["ACK"] else 0
    segment = struct.pack(
        "!HHIIBBHHH", command["sport"], command["dport"], 1000, acknowledgement, 5 << 4, flags, 64240, 0, 0
    )
    segment += payload_of(command) if command.get("payload") or command.get("payload_hex") else b""
    source = socket.inet_pton(family, command["src"])
    destination = socket.inet_pton(family, command["dst"])
    if family == socket.AF_INET:
        pseudo = source + destination + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment))
    else:
        pseudo = source + destination + struct.pack("!I3xB", len(segment), socket.IPPROTO_TCP)
    checksum = internet_checksum(pseudo + segment)
    segment = segment[:16] + struct.pack("!H", checksum) + segment[18:]
    sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_TCP)
    try:
        sock.bind((command["src"], 0))
        sock.sendto(segment, (command["dst"], 0))
    finally:
        sock.close()


def send_raw(family, command):
    sock = socket.socket(family, socket.SOCK_RAW, command["protocol"])
    try:
        sock.bind((command["src"], 0))
        sock.sendto(payload_of(command), (command["dst"], 0))
    finally:
        sock.close()


SENDERS = {"tcp": send_tcp_syn, "udp": send_udp, "icmp": send_icmp, "raw-tcp": send_raw_tcp, "raw": send_raw}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            command = json.loads(line)
            family = socket.AF_INET6 if ":" in command["src"] else socket.AF_INET
            SENDERS[command["proto"]](family, command)
            reply = {"ok": True}
        except Exception as exc:  # pylint: disable=broad-except
            reply = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
