#!/usr/bin/python3
"""Writes a capture with every frame kind the bridge must carry unchanged, plus a
few malformed ones: tests/offline/make_mix.py OUT.pcap"""
import sys

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest, IPv6,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, Raw, wrpcap, fragment)

DEV, EHR, BCAST = "02:77:00:00:00:11", "02:77:00:00:00:21", "ff:ff:ff:ff:ff:ff"


def frames():
    eth = Ether(src=DEV, dst=EHR)
    hl7 = b"\x0bMSH|^~\\&|PUMP|WARD3|EHR|HOSP|20261130||ADT^A01|MSG0001|P|2.5\r\x1c\x0d"
    yield Ether(src=DEV, dst=BCAST) / ARP(psrc="10.77.0.11", pdst="10.77.0.21")
    yield eth / IP(src="10.77.0.11", dst="10.77.0.21") / TCP(sport=40000, dport=2575, flags="S",
                                                             options=[("MSS", 1460), ("SAckOK", b""),
                                                                      ("Timestamp", (1, 0)), ("WScale", 7)])
    yield eth / IP(src="10.77.0.11", dst="10.77.0.21") / TCP(sport=40000, dport=2575, flags="PA") / Raw(hl7)
    yield eth / IP(src="10.77.0.11", dst="10.77.0.21", options=[b"\x94\x04\x00\x00"]) / UDP(sport=123, dport=123) / Raw(b"x" * 48)
    yield eth / IP(src="10.77.0.11", dst="10.77.0.21") / ICMP() / Raw(b"ping")
    yield Ether(src=DEV, dst=EHR) / Dot1Q(vlan=100) / IP(src="10.77.100.11", dst="10.77.100.21") / ICMP()
    yield Ether(src=DEV, dst=EHR) / Dot1AD(vlan=200) / Dot1Q(vlan=100) / IP(src="10.77.100.11", dst="10.77.100.21") / UDP() / Raw(b"q")
    yield Ether(src=DEV, dst="33:33:00:00:00:01") / IPv6(src="fd77::11", dst="ff02::1") / ICMPv6EchoRequest()
    yield eth / IPv6(src="fd77::11", dst="fd77::21") / IPv6ExtHdrHopByHop() / TCP(sport=104, dport=11112, flags="S")
    yield eth / IPv6(src="fd77::11", dst="fd77::21") / IPv6ExtHdrFragment(offset=0, m=1, id=7) / UDP(sport=1, dport=2) / Raw(b"a" * 32)
    for frag in fragment(IP(src="10.77.0.11", dst="10.77.0.21") / UDP(sport=5, dport=6) / Raw(b"z" * 3000), fragsize=1400):
        yield eth / frag
    yield eth / IP(src="10.77.0.11", dst="10.77.0.21") / TCP(sport=1, dport=80, flags="PA") / Raw(b"D" * 1460)
    yield Ether(src=DEV, dst=EHR, type=0x88b5) / Raw(b"local experimental ethertype")
    # Malformed: the bridge forwards them (policy comes later) and counts them by reason.
    yield Ether(bytes(eth / IP(src="10.77.0.11", dst="10.77.0.21") / TCP())[:30])     # ipv4_truncated
    bad_ihl = bytearray(bytes(eth / IP(src="10.77.0.11", dst="10.77.0.21") / UDP()))
    bad_ihl[14] = 0x43
    yield Ether(bytes(bad_ihl))                                                         # ipv4_bad_header_length
    bad_udp = bytearray(bytes(eth / IP(src="10.77.0.11", dst="10.77.0.21") / UDP() / Raw(b"12345678")))
    bad_udp[14 + 20 + 4:14 + 20 + 6] = (4).to_bytes(2, "big")
    yield Ether(bytes(bad_udp))                                                         # udp_bad_length


if __name__ == "__main__":
    wrpcap(sys.argv[1], list(frames()))
