#!/usr/bin/python3
"""compare_pcaps.py A.pcap B.pcap: exit 0 if both hold the same frames, byte for byte,
with the same timestamps, in the same order; otherwise say where they differ."""
import sys

from scapy.utils import RawPcapReader


def micros(meta):
    """Timestamp in microseconds, from a pcap or a pcapng record."""
    if hasattr(meta, "sec"):
        return meta.sec * 1_000_000 + meta.usec
    ticks = (meta.tshigh << 32) | meta.tslow
    return ticks * 1_000_000 // meta.tsresol


def read(path):
    return [(bytes(data), micros(meta)) for data, meta in RawPcapReader(path)]


a, b = read(sys.argv[1]), read(sys.argv[2])
if len(a) != len(b):
    sys.exit(f"{sys.argv[1]}: {len(a)} frames, {sys.argv[2]}: {len(b)} frames")
for i, (x, y) in enumerate(zip(a, b)):
    if x[0] != y[0]:
        sys.exit(f"frame {i + 1}: bytes differ ({len(x[0])} vs {len(y[0])} bytes)")
    if x[1] != y[1]:
        sys.exit(f"frame {i + 1}: timestamp {x[1]} us vs {y[1]} us")
print(f"{len(a)} frames identical")
