#!/usr/bin/python3
"""Writes the seed corpus for parse_fuzz into tests/fuzz/corpus/parse/.

One raw Ethernet frame (no FCS) per file, covering every layer ParsePacket walks.
Deterministic: rerunning rewrites identical files. Run with the system python,
which has scapy:  /usr/bin/python3 tests/fuzz/make_parse_corpus.py
"""

import os
import sys

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.ipsec import AH
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

MAC_A = "02:00:00:00:00:01"
MAC_B = "02:00:00:00:00:02"
V4_A, V4_B = "192.168.1.10", "10.20.30.40"
V6_A, V6_B = "2001:db8::1", "2001:db8::2"


def eth(**kw):
    return Ether(src=MAC_A, dst=MAC_B, **kw)


def pad60(frame):
    """NICs pad short frames to 60 bytes; padding must not become payload."""
    raw = bytes(frame)
    return raw + b"\x00" * max(0, 60 - len(raw))


SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (0x01020304, 0)),
            ("NOP", None), ("WScale", 7)]

FRAMES = {
    "ipv4_tcp_ack_padded": pad60(
        eth() / IP(src=V4_A, dst=V4_B, id=1) / TCP(sport=49152, dport=443, flags="A",
                                                   seq=1000, ack=2000)),
    "ipv4_tcp_syn_options": eth() / IP(src=V4_A, dst=V4_B, id=2) / TCP(
        sport=49153, dport=443, flags="S", seq=1, options=SYN_OPTS),
    "ipv4_tcp_data_timestamps": eth() / IP(src=V4_B, dst=V4_A, id=3) / TCP(
        sport=443, dport=49152, flags="PA", seq=5000, ack=7000,
        options=[("NOP", None), ("NOP", None), ("Timestamp", (7, 9))]) / Raw(b"x" * 512),
    "ipv4_udp_dns": eth() / IP(src=V4_A, dst=V4_B, id=4) / UDP(sport=33000, dport=53) / DNS(
        id=0x1234, rd=1, qd=DNSQR(qname="pacs.hospital.example")),
    "ipv4_icmp_echo": eth() / IP(src=V4_A, dst=V4_B, id=5) / ICMP(type=8, id=1, seq=1) / Raw(
        b"ping" * 8),
    "ipv4_options_udp": eth() / IP(src=V4_A, dst=V4_B, id=6, options=b"\x01\x94\x04\x00\x00"
                                   b"\x00\x00\x00") / UDP(sport=1000, dport=2000) / Raw(b"opt"),
    "ipv4_first_fragment": eth() / IP(src=V4_A, dst=V4_B, id=7, flags="MF", frag=0, proto=17)
    / Raw(bytes(UDP(sport=5000, dport=5001, len=3008, chksum=0)) + b"a" * 64),
    "ipv4_later_fragment": pad60(
        eth() / IP(src=V4_A, dst=V4_B, id=7, flags=0, frag=9, proto=17) / Raw(b"tail")),
    "vlan_ipv4_tcp": eth() / Dot1Q(vlan=100, prio=5) / IP(src=V4_A, dst=V4_B, id=8) / TCP(
        sport=104, dport=11112, flags="PA") / Raw(b"DICM"),
    "qinq_ipv4_udp": eth() / Dot1AD(vlan=200) / Dot1Q(vlan=300) / IP(
        src=V4_A, dst=V4_B, id=9) / UDP(sport=5353, dport=5353) / Raw(b"q" * 20),
    "qinq_9100_ipv4_tcp": eth(type=0x9100) / Dot1Q(vlan=7) / Dot1Q(vlan=8) / IP(
        src=V4_A, dst=V4_B, id=10) / TCP(sport=1, dport=2, flags="R"),
    "arp_request": pad60(eth() / ARP(op=1, hwsrc=MAC_A, psrc=V4_A, pdst=V4_B)),
    "vlan_arp_reply": pad60(eth() / Dot1Q(vlan=10) / ARP(op=2, hwsrc=MAC_B, psrc=V4_B,
                                                          hwdst=MAC_A, pdst=V4_A)),
    "ipv6_tcp_syn": eth() / IPv6(src=V6_A, dst=V6_B) / TCP(sport=49152, dport=443, flags="S",
                                                           options=SYN_OPTS),
    "ipv6_udp": eth() / IPv6(src=V6_A, dst=V6_B) / UDP(sport=546, dport=547) / Raw(b"d" * 30),
    "ipv6_icmpv6_echo": eth() / IPv6(src=V6_A, dst=V6_B) / ICMPv6EchoRequest(id=1, seq=2,
                                                                           data=b"hi"),
    "ipv6_icmpv6_ns": eth() / IPv6(src="::", dst="ff02::1:ff00:2", hlim=255) / ICMPv6ND_NS(
        tgt=V6_B),
    "ipv6_hbh_frag_tcp": eth() / IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrHopByHop()
    / IPv6ExtHdrFragment(id=0xcafe, offset=0, m=1, nh=6)
    / Raw(bytes(TCP(sport=49152, dport=443, flags="SA", options=[("MSS", 1440)])) + b"f" * 32),
    "ipv6_later_fragment": eth() / IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrFragment(
        id=0xcafe, offset=181, m=0, nh=6) / Raw(b"z" * 24),
    # Stack hygiene seeds. URGENT/11-class SYN: URG with urgent pointer 0, window scale
    # 15, MSS twice (the first 0), a SACK option without blocks: every field parses,
    # tcp_options_suspicious is set.
    "ipv4_tcp_syn_bad_options": eth() / IP(src=V4_A, dst=V4_B, id=11) / TCP(
        sport=49154, dport=104, flags="SU", seq=1, urgptr=0,
        options=[("MSS", 0), ("WScale", 15), ("MSS", 1460), ("NOP", None), ("NOP", None),
                 (5, b"")]),
    # Teardrop's second fragment: its data starts at byte 24, inside a 36-byte first
    # fragment of the same id, and it ends the datagram before the first one does.
    "ipv4_fragment_teardrop": pad60(
        eth() / IP(src=V4_A, dst=V4_B, id=0x0bad, flags=0, frag=3, proto=17) / Raw(b"T" * 4)),
    "ipv6_ext_chain_ah_udp": eth() / IPv6(src=V6_A, dst=V6_B) / IPv6ExtHdrRouting()
    / IPv6ExtHdrDestOpt()
    # scapy leaves AH nh/payloadlen unset: (4 + 2) * 4 = 24 bytes (RFC 4302 2.2).
    / AH(nh=17, payloadlen=4, spi=0x100, seq=1, icv=b"\x00" * 12)
    / UDP(sport=10, dport=20)
    / Raw(b"ah"),
}


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "parse")
    os.makedirs(out_dir, exist_ok=True)
    for name, frame in sorted(FRAMES.items()):
        raw = frame if isinstance(frame, bytes) else bytes(frame)
        with open(os.path.join(out_dir, name + ".bin"), "wb") as f:
            f.write(raw)
        print(f"{name}.bin {len(raw)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
