#!/usr/bin/python3
"""mllp_listener.py - a small HL7 v2 listener over MLLP, for end-to-end tests.

Listens on TCP (default 0.0.0.0:2575). For every MLLP frame (0x0B <message> 0x1C 0x0D)
it receives, it
  * appends the message bytes exactly as received (without the MLLP framing) to
    --out FILE, followed by one 0x1C byte as a separator (so a test can compare them
    byte for byte: the file holds `<message>\\x1c` per message),
  * parses the message with python3-hl7 and answers an ACK (MSA|AA|<MSH-10 control id>);
    a message that does not parse gets MSA|AE (or a minimal NAK when even MSH is bad).

Serves connections one after another (each with a socket timeout), until SIGTERM/
SIGINT, or until --count messages were received. Prints one line per message on stdout.

Debian's python3-hl7 imports only with /usr/bin/python3, hence the shebang.

Usage: mllp_listener.py [--host ADDR] [--port 2575] --out FILE [--count N] [--timeout S]
"""

import argparse
import datetime
import os
import signal
import socket
import sys

import hl7

SB = b"\x0b"
EB = b"\x1c"
CR = b"\x0d"


def build_ack(raw: bytes) -> tuple[bytes, str]:
    """Return (ack bytes, control id) for one received message."""
    text = raw.decode("utf-8", errors="replace")
    try:
        msg = hl7.parse(text)
        control_id = str(msg.segment("MSH")(10))
        ack = msg.create_ack(ack_code="AA", message_id="ACK" + control_id)
        # create_ack copies MSH-10 of the source into MSA-2.
        return str(ack).encode("utf-8"), control_id
    except Exception as exc:  # not HL7: answer a reject, keep serving
        now = datetime.datetime.now().strftime("%Y%m%d%H%M%S")
        nak = (
            f"MSH|^~\\&|MLLP_LISTENER||||{now}||ACK|NAK{now}|P|2.5\r"
            f"MSA|AE||{type(exc).__name__}: {exc}"
        )
        return nak.encode("utf-8"), ""


def serve_connection(conn: socket.socket, out, state, args) -> None:
    buf = b""
    conn.settimeout(args.timeout)
    while True:
        try:
            data = conn.recv(65536)
        except socket.timeout:
            print("mllp_listener: connection idle, closing", flush=True)
            return
        if not data:
            return
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
            out.write(message + EB)
            out.flush()
            os.fsync(out.fileno())
            ack, control_id = build_ack(message)
            conn.sendall(SB + ack + EB + CR)
            state["count"] += 1
            print(
                f"mllp_listener: message {state['count']} ({len(message)} bytes), "
                f"control id {control_id or '?'}: ACK sent",
                flush=True,
            )
            if args.count and state["count"] >= args.count:
                return


def main() -> int:
    parser = argparse.ArgumentParser(description="HL7 v2 MLLP listener that ACKs every message")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=2575)
    parser.add_argument("--out", required=True, help="file the received messages are appended to")
    parser.add_argument("--count", type=int, default=0, help="exit after N messages (0: never)")
    parser.add_argument("--timeout", type=float, default=10.0, help="idle timeout of a connection (s)")
    args = parser.parse_args()

    def stop(signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.host, args.port))
    srv.listen(8)
    print(f"mllp_listener: listening on {args.host}:{args.port}", flush=True)
    state = {"count": 0}
    with open(args.out, "ab") as out:
        while True:
            conn, peer = srv.accept()
            with conn:
                try:
                    serve_connection(conn, out, state, args)
                except OSError as exc:
                    print(f"mllp_listener: connection from {peer[0]}: {exc}", flush=True)
            if args.count and state["count"] >= args.count:
                return 0


if __name__ == "__main__":
    sys.exit(main())
