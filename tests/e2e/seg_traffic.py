#!/usr/bin/python3
"""seg_traffic.py - small traffic endpoints for tests/e2e/segmentation_e2e.sh.

Subcommands (all print one line per event on stdout, flushed):

  mllp-server --port P --log FILE
      Threaded HL7 v2 listener over MLLP: serves many connections at once. For every
      message it appends "<arrival time> <connection no> <MSH-10>" to FILE and answers
      an ACK (MSA|AA|<MSH-10>). The arrival time is the kernel's receive timestamp of
      the data (SO_TIMESTAMPNS, wall clock), or time.time() when the kernel gives none,
      so a busy scheduler cannot make data that arrived earlier look late.

  mllp-stream --host H --port P --prefix X --log FILE [--interval 0.02] [--duration 60]
      One TCP connection; sends an MLLP-framed ADT^A01 with control id X-<n> every
      interval until the duration ends or SIGTERM. FILE gets "sent <time> <id>" and
      "ack <time> <id>" lines (ACKs are read by a second thread).

  tcp-server --port P
      Threaded TCP server: answers every chunk it reads with "OK " + chunk.

  tcp-client HOST PORT [--timeout 2] [--message TEXT]
      Connects, sends, waits for a reply. Exit 0 and "REPLY ..." on a reply; exit 1 and
      TIMEOUT / REFUSED / RESET / CLOSED / ERROR otherwise.

  http-server --port P --dir D
      socketserver.ThreadingTCPServer with SimpleHTTPRequestHandler serving D
      (python3 -m http.server hangs in the namespaces).

  dns-server --port 53
      Answers every UDP datagram that looks like a DNS query with a response (QR set,
      one A record 10.77.0.99 for the asked name).

  dns-query HOST [--port 53] [--name pump.ward] [--timeout 2]
      Sends one DNS A query; exit 0 and "ANSWER" when a response with the same id comes
      back, exit 1 and TIMEOUT / UNREACHABLE otherwise.

Only /usr/bin/python3 and the standard library.
"""

import argparse
import datetime
import http.server
import os
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
import time

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS


def say(*parts):
    print(*parts, flush=True)


def on_term(_signum, _frame):
    raise SystemExit(0)


# ---------------------------------------------------------------- HL7 / MLLP

def hl7_message(control_id: str) -> bytes:
    now = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    segs = [
        f"MSH|^~\\&|PUMP|ICU|EHR|HOSP|{now}||ADT^A01|{control_id}|P|2.5",
        "PID|1||4711^^^HOSP^MR||DOE^JANE",
        f"NTE|1||segmentation e2e stream {control_id}",
    ]
    return SB + "\r".join(segs).encode() + EB + CR


def hl7_ack(message: bytes) -> tuple[bytes, str]:
    control_id = ""
    try:
        msh = message.split(b"\r", 1)[0].decode(errors="replace")
        fields = msh.split("|")
        control_id = fields[9] if len(fields) > 9 else ""
    except Exception:  # noqa: BLE001 - any garbage gets a reject
        pass
    now = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
    code = "AA" if control_id else "AE"
    ack = f"MSH|^~\\&|EHR|HOSP|PUMP|ICU|{now}||ACK^A01|ACK{control_id}|P|2.5\rMSA|{code}|{control_id}"
    return SB + ack.encode() + EB + CR, control_id


def recv_stamped(conn: socket.socket) -> tuple[bytes, float]:
    """recv with the kernel's receive timestamp (wall clock) when it gives one."""
    data, anc, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(16))
    stamp = None
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == SCM_TIMESTAMPNS and len(cdata) >= 16:
            sec, nsec = struct.unpack("qq", cdata[:16])
            if sec:
                stamp = sec + nsec / 1e9
    return data, stamp if stamp is not None else time.time()


def mllp_server(args) -> int:
    log = open(args.log, "a", buffering=1)
    lock = threading.Lock()
    counter = {"conn": 0}

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            with lock:
                counter["conn"] += 1
                conn_no = counter["conn"]
            conn = self.request
            try:
                conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                pass
            conn.settimeout(args.timeout)
            say(f"mllp-server: connection {conn_no} from {self.client_address[0]}")
            buf = b""
            while True:
                try:
                    data, stamp = recv_stamped(conn)
                except (socket.timeout, OSError):
                    break
                if not data:
                    break
                buf += data
                while True:
                    start = buf.find(SB)
                    if start < 0:
                        buf = b""
                        break
                    end = buf.find(EB + CR, start + 1)
                    if end < 0:
                        buf = buf[start:]
                        break
                    message = buf[start + 1:end]
                    buf = buf[end + 2:]
                    ack, control_id = hl7_ack(message)
                    with lock:
                        log.write(f"{stamp:.6f} {conn_no} {control_id or '?'}\n")
                    try:
                        conn.sendall(ack)
                    except OSError:
                        return
            say(f"mllp-server: connection {conn_no} closed")

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server(("0.0.0.0", args.port), Handler) as srv:
        say(f"mllp-server: listening on {args.port}")
        srv.serve_forever()
    return 0


def mllp_stream(args) -> int:
    log = open(args.log, "a", buffering=1)
    lock = threading.Lock()

    def note(kind, ident):
        with lock:
            log.write(f"{kind} {time.time():.6f} {ident}\n")

    try:
        s = socket.create_connection((args.host, args.port), timeout=3)
    except OSError as exc:
        note("error", type(exc).__name__)
        say(f"mllp-stream: connect failed: {exc}")
        return 1
    s.settimeout(None)
    note("connected", "-")

    def reader():
        buf = b""
        while True:
            try:
                data = s.recv(65536)
            except OSError:
                return
            if not data:
                note("closed", "-")
                return
            buf += data
            while True:
                start = buf.find(SB)
                end = buf.find(EB + CR, start + 1) if start >= 0 else -1
                if start < 0 or end < 0:
                    break
                msg = buf[start + 1:end].decode(errors="replace")
                buf = buf[end + 2:]
                for seg in msg.split("\r"):
                    if seg.startswith("MSA|"):
                        f = seg.split("|")
                        note("ack", f[2] if len(f) > 2 else "?")

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + args.duration
    n = 0
    # Sends that block (the peer is cut off and the send buffer fills) end the stream
    # at the deadline: a timeout on every send.
    s.settimeout(1.0)
    while time.monotonic() < deadline:
        n += 1
        ident = f"{args.prefix}-{n}"
        try:
            s.sendall(hl7_message(ident))
        except socket.timeout:
            note("stalled", ident)
            continue
        except OSError as exc:
            note("error", type(exc).__name__)
            return 1
        note("sent", ident)
        time.sleep(args.interval)
    return 0


# ---------------------------------------------------------------- plain TCP

def tcp_server(args) -> int:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            conn = self.request
            conn.settimeout(10)
            say(f"tcp-server {args.port}: connection from {self.client_address[0]}")
            try:
                while True:
                    data = conn.recv(4096)
                    if not data:
                        return
                    conn.sendall(b"OK " + data)
            except OSError:
                return

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server(("0.0.0.0", args.port), Handler) as srv:
        say(f"tcp-server: listening on {args.port}")
        srv.serve_forever()
    return 0


def tcp_client(args) -> int:
    try:
        s = socket.create_connection((args.host, args.port), timeout=args.timeout)
    except socket.timeout:
        say("TIMEOUT (connect)")
        return 1
    except ConnectionRefusedError:
        say("REFUSED")
        return 1
    except OSError as exc:
        say(f"ERROR {exc}")
        return 1
    try:
        s.sendall(args.message.encode())
        data = s.recv(4096)
    except socket.timeout:
        say("TIMEOUT (reply)")
        return 1
    except ConnectionResetError:
        say("RESET")
        return 1
    except OSError as exc:
        say(f"ERROR {exc}")
        return 1
    if not data:
        say("CLOSED")
        return 1
    say("REPLY", data.decode(errors="replace"))
    return 0


def http_server(args) -> int:
    os.chdir(args.dir)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    with Server(("0.0.0.0", args.port), http.server.SimpleHTTPRequestHandler) as srv:
        say(f"http-server: listening on {args.port}")
        srv.serve_forever()
    return 0


# ---------------------------------------------------------------- DNS

def dns_server(args) -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", args.port))
    say(f"dns-server: listening on udp {args.port}")
    while True:
        data, peer = s.recvfrom(512)
        if len(data) < 12:
            continue
        ident, _flags, qd = struct.unpack("!HHH", data[:6])
        if qd != 1:
            continue
        question = data[12:]
        header = struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0)
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("10.77.0.99")
        s.sendto(header + question + answer, peer)
        say(f"dns-server: answered {peer[0]}")


def dns_query(args) -> int:
    ident = random.randrange(1, 65535)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in args.name.split(".")) + b"\x00"
    query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(args.timeout)
    s.connect((args.host, args.port))
    s.send(query)
    try:
        data = s.recv(512)
    except socket.timeout:
        say("TIMEOUT")
        return 1
    except ConnectionRefusedError:
        say("UNREACHABLE")
        return 1
    if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == ident and data[2] & 0x80:
        say("ANSWER")
        return 0
    say("BAD ANSWER")
    return 1


def main() -> int:
    signal.signal(signal.SIGTERM, on_term)
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    a = sub.add_parser("mllp-server")
    a.add_argument("--port", type=int, default=2575)
    a.add_argument("--log", required=True)
    a.add_argument("--timeout", type=float, default=120)
    a.set_defaults(fn=mllp_server)

    a = sub.add_parser("mllp-stream")
    a.add_argument("--host", required=True)
    a.add_argument("--port", type=int, default=2575)
    a.add_argument("--prefix", required=True)
    a.add_argument("--log", required=True)
    a.add_argument("--interval", type=float, default=0.02)
    a.add_argument("--duration", type=float, default=60)
    a.set_defaults(fn=mllp_stream)

    a = sub.add_parser("tcp-server")
    a.add_argument("--port", type=int, required=True)
    a.set_defaults(fn=tcp_server)

    a = sub.add_parser("tcp-client")
    a.add_argument("host")
    a.add_argument("port", type=int)
    a.add_argument("--timeout", type=float, default=2)
    a.add_argument("--message", default="hello")
    a.set_defaults(fn=tcp_client)

    a = sub.add_parser("http-server")
    a.add_argument("--port", type=int, default=80)
    a.add_argument("--dir", required=True)
    a.set_defaults(fn=http_server)

    a = sub.add_parser("dns-server")
    a.add_argument("--port", type=int, default=53)
    a.set_defaults(fn=dns_server)

    a = sub.add_parser("dns-query")
    a.add_argument("host")
    a.add_argument("--port", type=int, default=53)
    a.add_argument("--name", default="pump.ward")
    a.add_argument("--timeout", type=float, default=2)
    a.set_defaults(fn=dns_query)

    args = p.parse_args()
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
