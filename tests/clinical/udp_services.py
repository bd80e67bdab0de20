#!/usr/bin/python3
"""udp_services.py: small DNS and NTP peers for the benign-traffic test (run inside
the test's network namespaces only).

  udp_services.py dns-server ADDR ANSWER   answers A queries for any name with ANSWER
                                            (AAAA and others: NOERROR, no answer), RFC 1035
  udp_services.py ntp-server ADDR          NTPv4 server (mode 4 replies), RFC 5905
  udp_services.py ntp-client SERVER N      N NTPv4 client exchanges; prints the offsets,
                                            exits 1 if a reply is missing or malformed

Servers run until SIGTERM or 60 s without a request. The DNS messages are parsed and
built with scapy's DNS layer (Debian's scapy imports only with /usr/bin/python3)."""

import signal
import socket
import struct
import sys
import time

NTP_EPOCH = 2208988800  # seconds from 1900 to 1970


def ntp_ts(t: float) -> bytes:
    sec = int(t) + NTP_EPOCH
    frac = int((t - int(t)) * (1 << 32)) & 0xFFFFFFFF
    return struct.pack(">II", sec, frac)


def ntp_time(b: bytes) -> float:
    sec, frac = struct.unpack(">II", b)
    return sec - NTP_EPOCH + frac / (1 << 32)


def serve(addr: str, port: int, handle) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    s.settimeout(60)
    print(f"udp_services: listening on {addr}:{port}", flush=True)
    while True:
        try:
            data, peer = s.recvfrom(4096)
        except socket.timeout:
            return 0
        reply = handle(data)
        if reply:
            s.sendto(reply, peer)


def dns_server(addr: str, answer: str) -> int:
    from scapy.layers.dns import DNS, DNSRR

    def handle(data):
        q = DNS(data)
        if q.qr != 0 or not q.qd:
            return None
        qd = q.qd[0] if hasattr(q.qd, "__getitem__") else q.qd
        an = None
        if qd.qtype == 1:  # A
            an = DNSRR(rrname=qd.qname, type="A", rclass="IN", ttl=300, rdata=answer)
        r = DNS(id=q.id, qr=1, opcode=0, aa=1, rd=q.rd, ra=1, rcode=0, qd=q.qd, an=an)
        print(f"udp_services: dns {qd.qname.decode(errors='replace')} type {qd.qtype}", flush=True)
        return bytes(r)

    return serve(addr, 53, handle)


def ntp_server(addr: str) -> int:
    def handle(data):
        if len(data) < 48:
            return None
        recv = time.time()
        li_vn_mode = data[0]
        version = (li_vn_mode >> 3) & 7
        if li_vn_mode & 7 != 3:
            return None
        head = struct.pack(">BBbbII", (0 << 6) | (version << 3) | 4, 2, 6, -20, 0x00000100, 0x00000200)
        reply = head + b"LOCL" + ntp_ts(recv - 30) + data[40:48] + ntp_ts(recv) + ntp_ts(time.time())
        return reply

    return serve(addr, 123, handle)


def ntp_client(server: str, count: int) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    for i in range(count):
        t1 = time.time()
        req = struct.pack(">BBbb", (0 << 6) | (4 << 3) | 3, 0, 6, -20) + bytes(36) + ntp_ts(t1)
        s.sendto(req, (server, 123))
        data, _ = s.recvfrom(512)
        t4 = time.time()
        if len(data) < 48 or data[0] & 7 != 4 or data[24:32] != req[40:48]:
            print(f"udp_services: bad NTP reply {data[:8].hex()}")
            return 1
        t2, t3 = ntp_time(data[32:40]), ntp_time(data[40:48])
        offset = ((t2 - t1) + (t3 - t4)) / 2
        print(f"udp_services: ntp exchange {i + 1}: offset {offset * 1000:.3f} ms, stratum {data[1]}")
        time.sleep(0.2)
    return 0


def main() -> int:
    cmd = sys.argv[1]
    if cmd == "dns-server":
        return dns_server(sys.argv[2], sys.argv[3])
    if cmd == "ntp-server":
        return ntp_server(sys.argv[2])
    if cmd == "ntp-client":
        return ntp_client(sys.argv[2], int(sys.argv[3]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
