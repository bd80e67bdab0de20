#!/usr/bin/python3
"""make_cases.py OUT.pcap OUT.json: one capture with a case per rule of
rules/clinical.rules (and near misses that must stay silent), each case in its own
flows with its own addresses; OUT.json lists per case its addresses and the sids
expected to fire on it when every rule (threat and policy) is enabled.

TCP sessions are complete (handshake, data both ways with correct seq/ack, FIN), so
stream reassembly sees them as a real client and server would produce them.
Devices live in 10.77.0.0/16 (inside the default HOME_NET); the outside uses the
documentation ranges 198.51.100.0/24 and 203.0.113.0/24, and 202.114.4.0/24 for the
Contec CMS8000 backdoor network. Debian's scapy imports only with /usr/bin/python3."""

import json
import sys

from scapy.all import ICMP, IP, TCP, UDP, Ether, ICMPv6EchoRequest, IPv6, Raw, wrpcap
from scapy.asn1.asn1 import ASN1_OID
from scapy.layers.snmp import SNMP, SNMPget, SNMPset, SNMPvarbind
from scapy.asn1.asn1 import ASN1_STRING

import payloads as P

T0 = 1764504000.0  # 2025-11-30 12:00:00 UTC
MAC_A, MAC_B = "02:77:00:00:00:0a", "02:77:00:00:00:0b"


class Capture:
    def __init__(self):
        self.frames = []
        self.t = T0
        self.cases = []
        self._dev = 10
        self._out = 10
        self._peer = 10

    def emit(self, pkt, gap=0.0005):
        pkt.time = self.t
        self.t += gap
        self.frames.append(pkt)

    # Addresses unique to one case: the sids on flows touching them belong to it.
    def device(self):
        n = self._dev
        self._dev += 1
        return f"10.77.{n // 250}.{n % 250 + 1}"

    def outside(self):
        n = self._out
        self._out += 1
        return f"198.51.100.{n}" if n < 250 else f"203.0.113.{n - 240}"

    def peer(self):  # an inside peer (EHR, PACS, workstation)
        n = self._peer
        self._peer += 1
        return f"10.78.{n // 250}.{n % 250 + 1}"

    def case(self, name, expect, owned, counts=None):
        """counts: {sid: n} for rules whose threshold bounds how often they fire."""
        self.cases.append({"name": name, "expect": sorted(expect), "owned": sorted(set(owned)),
                           "counts": {str(k): v for k, v in (counts or {}).items()}})
        self.t += 1.0


def eth():
    return Ether(src=MAC_A, dst=MAC_B)


def tcp_session(cap, cli, cport, srv, sport, exchanges, close=True):
    """exchanges: [(dir, bytes[, segment size])], dir 'c' (client to server) or 's'."""
    cseq, sseq = 0x10000000 + cport * 7, 0x20000000 + sport * 13
    win = 65535
    cap.emit(eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="S", seq=cseq, window=win,
                                                 options=[("MSS", 1460)]))
    cseq += 1
    cap.emit(eth() / IP(src=srv, dst=cli) / TCP(sport=sport, dport=cport, flags="SA", seq=sseq, ack=cseq,
                                                 window=win, options=[("MSS", 1460)]))
    sseq += 1
    cap.emit(eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="A", seq=cseq, ack=sseq, window=win))
    for ex in exchanges:
        d, data = ex[0], ex[1]
        seg = ex[2] if len(ex) > 2 else 1400
        for i in range(0, len(data), seg):
            chunk = data[i:i + seg]
            if d == "c":
                cap.emit(eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="PA", seq=cseq,
                                                             ack=sseq, window=win) / Raw(chunk))
                cseq += len(chunk)
                cap.emit(eth() / IP(src=srv, dst=cli) / TCP(sport=sport, dport=cport, flags="A", seq=sseq,
                                                             ack=cseq, window=win))
            else:
                cap.emit(eth() / IP(src=srv, dst=cli) / TCP(sport=sport, dport=cport, flags="PA", seq=sseq,
                                                             ack=cseq, window=win) / Raw(chunk))
                sseq += len(chunk)
                cap.emit(eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="A", seq=cseq,
                                                             ack=sseq, window=win))
    if close:
        cap.emit(eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="FA", seq=cseq, ack=sseq, window=win))
        cseq += 1
        cap.emit(eth() / IP(src=srv, dst=cli) / TCP(sport=sport, dport=cport, flags="FA", seq=sseq, ack=cseq, window=win))
        sseq += 1
        cap.emit(eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="A", seq=cseq, ack=sseq, window=win))


def udp(cap, src, sport, dst, dport, data):
    cap.emit(eth() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(data))


# ---------------------------------------------------------------- sessions

IAC_SERVER = b"\xff\xfd\x18\xff\xfb\x01\xff\xfb\x03"     # DO TTYPE, WILL ECHO, WILL SGA
IAC_CLIENT = b"\xff\xfb\x18\xff\xfd\x01\xff\xfd\x03"     # WILL TTYPE, DO ECHO, DO SGA


def telnet_login(user, password, prompt=b"$ ", char_mode=False):
    user_b, pw_b = user.encode(), password.encode()
    ex = [("s", IAC_SERVER), ("c", IAC_CLIENT), ("s", b"\r\nward-device login: ")]
    if char_mode:  # one segment per key, the server echoes each
        for ch in user_b:
            ex += [("c", bytes([ch])), ("s", bytes([ch]))]
        ex += [("c", b"\r\n"), ("s", b"\r\n")]
    else:
        ex += [("c", user_b + b"\r\n"), ("s", user_b + b"\r\n")]
    ex += [("s", b"Password: "), ("c", pw_b + b"\r\n"),
           ("s", b"\r\nLast login: Sun Nov 30 11:02:13 on ttyS0\r\n" + prompt),
           ("c", b"exit\r\n"), ("s", b"exit\r\nlogout\r\n")]
    return ex


def ftp_control(user, password, banner=b"220 ward-device FTP server ready\r\n", accepted=True):
    ex = [("s", banner), ("c", f"USER {user}\r\n".encode()), ("s", b"331 Please specify the password.\r\n"),
          ("c", f"PASS {password}\r\n".encode())]
    ex.append(("s", b"230 Login successful.\r\n" if accepted else b"530 Login incorrect.\r\n"))
    ex += [("c", b"SYST\r\n"), ("s", b"215 UNIX Type: L8\r\n"), ("c", b"QUIT\r\n"), ("s", b"221 Goodbye.\r\n")]
    return ex


def dicom_echo_session(called="PACS", calling="MODALITY1", **rq):
    return [("c", P.associate_rq(called, calling, **rq)), ("s", P.associate_ac(called, calling)),
            ("c", P.echo_rq()), ("s", P.echo_rsp()), ("c", P.RELEASE_RQ), ("s", P.RELEASE_RP)]


def hl7_session(*messages):
    ex = []
    for msg in messages:
        control_id = msg.split("\r")[0].split("|")[9]
        ex += [("c", P.mllp(msg)), ("s", P.hl7_ack(control_id))]
    return ex


def http_session(request, response):
    return [("c", request), ("s", response)]


def snmp_packet(community, version=1, set_request=False):
    oid = ASN1_OID("1.3.6.1.2.1.1.5.0")
    if set_request:
        pdu = SNMPset(id=0x4711, varbindlist=[SNMPvarbind(oid=oid, value=ASN1_STRING(b"pwned"))])
    else:
        pdu = SNMPget(id=0x4711, varbindlist=[SNMPvarbind(oid=oid)])
    return bytes(SNMP(version=version, community=community, PDU=pdu))


# ---------------------------------------------------------------- the cases

def build(cap):
    c = cap

    # --- credentials in the clear (91000xx) and the Telnet/FTP policy rules
    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40001, dev, 23, telnet_login("nurse", "Winter2025"))
    c.case("telnet login exchange (nurse)", {9100001, 9100500}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40002, dev, 23, telnet_login("root", "#bigguy", prompt=b"[root@ct ~]# ", char_mode=True))
    c.case("telnet GE CT root:#bigguy, typed key by key", {9100001, 9100020, 9100500}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40003, dev, 23, telnet_login("ctuser", "4$apps"))
    c.case("telnet GE CT ctuser:4$apps", {9100001, 9100021, 9100500}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40004, dev, 23, [("s", IAC_SERVER), ("c", IAC_CLIENT),
                                         ("s", b"\r\nLifeCare PCA CE 1.0\r\n# "), ("c", b"cat /etc/version\r\n"),
                                         ("s", b"cat /etc/version\r\nPCA3 412\r\n# "), ("c", b"exit\r\n")])
    c.case("telnet root shell without password (Hospira LifeCare PCA)", {9100022, 9100500}, [dev, out])

    dev = c.device()
    c.emit(eth() / IP(src="10.78.200.1", dst=dev) / TCP(sport=40005, dport=23, flags="S", seq=1))
    c.emit(eth() / IP(src=dev, dst="10.78.200.1") / TCP(sport=23, dport=40005, flags="RA", seq=0, ack=2))
    c.case("telnet SYN refused", {9100500}, [dev])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40010, dev, 21, ftp_control("biomed", "Infusion!2025"))
    c.case("ftp login toward a device", {9100002, 9100501}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40011, out, 21, ftp_control("anonymous", "NcFTP@"))
    c.case("ftp anonymous login from a device to an outside server (near miss)", {9100501}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40012, dev, 21, ftp_control("anonymous", "guest@example.org",
                                                     banner=b"220 Medfusion 4000 FTP\r\n"))
    c.case("ftp anonymous login accepted by a device (Medfusion 4000)", {9100011, 9100501}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40013, dev, 21, ftp_control("ftp", "x@y", accepted=False))
    c.case("ftp anonymous login refused by a device (near miss)", {9100501}, [dev, out])

    for user, pw, sid, name in (("root", "#bigguy", 9100030, "GE CT root:#bigguy"),
                                ("ctuser", "4$apps", 9100031, "GE CT ctuser:4$apps"),
                                ("tracerlab", "tracerlab", 9100032, "GE TRACERlab tracerlab:tracerlab"),
                                ("admin", "tracerlab", 9100032, "GE TRACERlab admin:tracerlab"),
                                ("Admin", "admin", 9100033, "GE FASTlab Admin:admin")):
        dev, out = c.device(), c.outside()
        tcp_session(c, out, 40020 + len(c.cases), dev, 21, ftp_control(user, pw))
        c.case(f"ftp default credential {name}", {9100002, sid, 9100501}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40030, dev, 21, ftp_control("root", "#bigguy2"))
    c.case("ftp root with another password (near miss of the GE default)", {9100002, 9100501}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40040, dev, 80, http_session(P.http_get("/config", dev, auth="biomed:S3cure!"),
                                                     P.http_response(b"<html>ok</html>", "text/html")))
    c.case("http basic toward a device", {9100003}, [dev, out])

    for cred, sid, name in (("admin:PASS", 9100040, "Lantronix EDS-MD"), ("admin:password", 9100041, "Nuance Dragon"),
                            ("Advanced:advanced", 9100042, "Barco QAWeb"),
                            ("administrator:superuser", 9100043, "BK Medical bk3000"),
                            ("admin:abc123", 9100044, "ClinicPro"), ("Admin:admin", 9100045, "GE FASTlab"),
                            ("tracerlab:tracerlab", 9100046, "GE TRACERlab"), ("admin:tracerlab", 9100046, "GE TRACERlab admin"),
                            ("1234:1234", 9100047, "Astute 140"), ("root:#bigguy", 9100048, "GE CT root"),
                            ("ctuser:4$apps", 9100048, "GE CT ctuser")):
        dev, out = c.device(), c.outside()
        tcp_session(c, out, 40050 + len(c.cases), dev, 80,
                    http_session(P.http_get("/", dev, auth=cred), P.http_response(b"<html>ok</html>", "text/html")))
        c.case(f"http basic default credential {cred} ({name})", {9100003, sid}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40070, dev, 80, http_session(P.http_get("/", dev, auth="admin:abc1234"),
                                                     P.http_response(b"<html>ok</html>", "text/html")))
    c.case("http basic admin:abc1234 (near miss of admin:abc123)", {9100003}, [dev, out])

    dev, out = c.device(), c.outside()
    udp(c, out, 40080, dev, 161, snmp_packet("public", version=1))
    c.case("snmp v2c get with community public", {9100004}, [dev, out])

    dev, out = c.device(), c.outside()
    udp(c, out, 40081, dev, 161, snmp_packet("private", version=0, set_request=True))
    c.case("snmp v1 set with community private", {9100005}, [dev, out])

    dev, out = c.device(), c.outside()
    udp(c, dev, 40082, out, 162, snmp_packet("public", version=0))
    c.case("snmp v1 trap-port message with community public from a device", {9100004}, [dev, out])

    dev, out = c.device(), c.outside()
    udp(c, out, 40083, dev, 161, snmp_packet("wardnet-ro", version=1))
    c.case("snmp v2c with a site community (near miss)", set(), [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40090, dev, 5900, [("s", b"RFB 003.003\n"), ("c", b"RFB 003.003\n"), ("s", b"\x00\x00\x00\x01"),
                                           ("c", b"\x01"), ("s", P.rfb_server_init())])
    c.case("vnc rfb 3.3 security none", {9100006, 9100503}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40091, dev, 5900, [("s", b"RFB 003.008\n"), ("c", b"RFB 003.008\n"), ("s", b"\x01\x01"),
                                           ("c", b"\x01"), ("s", b"\x00\x00\x00\x00"), ("c", b"\x01"),
                                           ("s", P.rfb_server_init())])
    c.case("vnc rfb 3.8 security none", {9100007, 9100503}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40092, dev, 5900, [("s", b"RFB 003.008\n"), ("c", b"RFB 003.008\n"), ("s", b"\x01\x02"),
                                           ("c", b"\x02"), ("s", bytes(range(16))), ("c", bytes(range(16, 32))),
                                           ("s", b"\x00\x00\x00\x00"), ("c", b"\x01"), ("s", P.rfb_server_init())])
    c.case("vnc rfb 3.8 with VNC authentication (near miss)", {9100503}, [dev, out])

    # --- HL7 (91001xx)
    dev, peer = c.device(), c.peer()
    tcp_session(c, dev, 40100, peer, 2575, hl7_session(P.hl7("ADT^A01", "MSG00001", *P.ADT_SEGMENTS),
                                                       P.hl7("ORU^R01", "MSG00002", *P.ORU_SEGMENTS)))
    c.case("hl7 ADT and ORU in the clear", {9100100}, [dev, peer])

    dev, peer = c.device(), c.peer()
    tcp_session(c, dev, 40101, peer, 6661, hl7_session(P.hl7("ORU^R01", "MSG00003", *P.ORU_SEGMENTS,
                                                             security="pump01:Passw0rd")))
    c.case("hl7 with MSH-8 security set", {9100100, 9100101}, [dev, peer])

    dev, peer = c.device(), c.peer()
    tcp_session(c, dev, 40102, peer, 2575, hl7_session(
        P.hl7("ADT^A04", "MSG00004", "UAC|KERB^Kerberos Service Ticket^HL70615|^^application^octet-stream^Base64^"
              "YIIBbTCCAWmgAwIBBaEDAgEOogcDBQAgAAAAo4IBZDCCAWBhggFcMIIBWKADAgEF", *P.ADT_SEGMENTS, version="2.8")))
    c.case("hl7 with a UAC segment", {9100100, 9100102}, [dev, peer])

    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40103, out, 2575, hl7_session(P.hl7("ORU^R01", "MSG00005", *P.ORU_SEGMENTS)))
    c.case("hl7 toward an external address", {9100100, 9100103}, [dev, out])

    dev, peer = c.device(), c.peer()
    tcp_session(c, dev, 40104, peer, 2575, [("c", P.mllp(P.hl7("ADT^A01", "MSG00006", *P.ADT_SEGMENTS))[:60], 30),
                                            ("c", P.mllp(P.hl7("ADT^A01", "MSG00006", *P.ADT_SEGMENTS))[60:], 7),
                                            ("s", P.hl7_ack("MSG00006"))])
    c.case("hl7 ADT split into small segments", {9100100}, [dev, peer])

    # --- DICOM (91002xx)
    dev, peer = c.device(), c.peer()
    tcp_session(c, peer, 40200, dev, 104, dicom_echo_session())
    c.case("dicom C-ECHO (near miss)", set(), [dev, peer])

    dev, peer = c.device(), c.peer()
    tcp_session(c, peer, 40201, dev, 11112, dicom_echo_session(identity=P.user_identity(2, b"radiographer", b"Sup3rSecret")))
    c.case("dicom user identity username+passcode", {9100200}, [dev, peer])

    dev, peer = c.device(), c.peer()
    jwt = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtb2RhbGl0eTEifQ.c2lnbmF0dXJl"
    tcp_session(c, peer, 40202, dev, 11112, dicom_echo_session(identity=P.user_identity(5, jwt)))
    c.case("dicom user identity JWT", {9100201}, [dev, peer])

    dev, peer = c.device(), c.peer()
    tcp_session(c, peer, 40203, dev, 11112, dicom_echo_session(identity=P.user_identity(1, b"radiographer")))
    c.case("dicom user identity username only", {9100202}, [dev, peer])

    dev, peer = c.device(), c.peer()
    tcp_session(c, peer, 40204, dev, 104, dicom_echo_session(
        called="ANY-SCP", calling="ECHOSCU", impl_uid="1.2.276.0.7230010.3.0.3.6.2", impl_version="OFFIS_DCMTK_362"))
    tcp_session(c, peer, 40206, dev, 104, [("c", P.associate_rq("GUESS1", "ECHOSCU", impl_uid="1.2.276.0.7230010.3.0.3.6.2",
                                                                impl_version="OFFIS_DCMTK_362")), ("s", P.associate_rj())])
    c.case("dicom associations by nmap dicom-ping and a dicom-brute guess", {9100203, 9100205}, [dev, peer],
           counts={9100203: 1})

    dev, peer = c.device(), c.peer()
    tcp_session(c, peer, 40205, dev, 104, dicom_echo_session(called="ANY-SCP", calling="ECHOSCU"))
    c.case("dicom echoscu 3.6.7 defaults (ANY-SCP)", {9100205}, [dev, peer])

    dev, peer = c.device(), c.peer()
    for i, guess in enumerate(("PACS", "ORTHANC", "DCM4CHEE", "STORESCP", "CONQUESTSRV1", "OSIRIX")):
        tcp_session(c, peer, 40210 + i, dev, 104, [("c", P.associate_rq(guess, "SCANNER")), ("s", P.associate_rj())])
    c.case("dicom six association rejects toward one source", {9100204}, [dev, peer], counts={9100204: 1})

    dev, peer = c.device(), c.peer()
    tcp_session(c, peer, 40220, dev, 104, [("c", P.associate_rq("WRONGAE", "MODALITY2")), ("s", P.associate_rj())])
    c.case("dicom one association reject (near miss)", set(), [dev, peer])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40221, dev, 104, dicom_echo_session())
    c.case("dicom association from an external address", {9100206}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40222, out, 104, dicom_echo_session())
    c.case("dicom association toward an external address", {9100207}, [dev, out])

    dev, peer = c.device(), c.peer()
    find = P.find_rq_all_patients()
    tcp_session(c, peer, 40223, dev, 104, [("c", P.associate_rq("PACS", "VIEWER1", contexts=((1, P.PATIENT_ROOT_FIND,
                                                                                             (P.IMPLICIT_LE,)),))),
                                           ("s", P.associate_ac("PACS", "VIEWER1")), ("c", find[0]), ("c", find[1]),
                                           ("s", P.find_rsp_done()), ("c", P.RELEASE_RQ), ("s", P.RELEASE_RP)])
    c.case("dicom C-FIND for every patient", {9100208}, [dev, peer])

    # --- executables toward devices (91003xx)
    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40300, out, 80, http_session(P.http_get("/update/pump-fw.exe", out), P.http_response(P.pe_file())))
    c.case("http download of a PE by a device", {9100300}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40301, out, 8080, http_session(P.http_get("/x", out), P.http_response(P.elf_file())))
    c.case("http download of an ELF by a device", {9100301}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40302, out, 80, http_session(P.http_get("/logo.png", out), P.http_response(P.PNG_1X1, "image/png")))
    c.case("http download of a PNG (near miss)", set(), [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 20, dev, 40303, [("c", P.pe_file(size=3000))])
    c.case("ftp active data connection carrying a PE", {9100302}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40304, out, 50000, [("s", P.elf_file(size=2000))])
    c.case("ftp passive data connection carrying an ELF", {9100303}, [dev, out])

    dev, out = c.device(), c.outside()
    udp(c, dev, 40305, out, 69, P.tftp_rq(1, "update.exe"))
    udp(c, out, 50001, dev, 40305, P.tftp_data(1, P.pe_file(size=512)))
    udp(c, dev, 40305, out, 50001, P.tftp_ack(1))
    c.case("tftp read of a PE by a device", {9100304}, [dev, out])

    dev, out = c.device(), c.outside()
    udp(c, out, 40306, dev, 69, P.tftp_rq(2, "firmware.bin"))
    udp(c, dev, 50002, out, 40306, P.tftp_ack(0))
    udp(c, out, 40306, dev, 50002, P.tftp_data(1, P.elf_file(size=512)))
    c.case("tftp write of an ELF to a device", {9100305, 9100506}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40307, out, 80, http_session(P.http_get("/studies/1.dcm", out),
                                                     P.http_response(P.pe_dicom_polyglot(), "application/dicom")))
    c.case("http download of a PE/DICOM polyglot", {9100306}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40308, out, 80, http_session(P.http_post("/stow", out, P.elf_dicom_polyglot()),
                                                     P.http_response(b"", "text/plain")))
    c.case("http upload of an ELF/DICOM polyglot", {9100307}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, dev, 40309, out, 80, http_session(P.http_get("/studies/2.dcm", out),
                                                     P.http_response(P.dicom_file(b""), "application/dicom")))
    c.case("http download of a plain DICOM file (near miss)", set(), [dev, out])

    # --- advisories (91004xx)
    dev = c.device()
    c.emit(eth() / IP(src=dev, dst="202.114.4.119") / TCP(sport=40400, dport=2049, flags="S", seq=1))
    c.emit(eth() / IP(src=dev, dst="202.114.4.119") / TCP(sport=40400, dport=2049, flags="S", seq=1), gap=1.0)
    c.case("contec monitor tries NFS at 202.114.4.119 twice", {9100400}, [dev], counts={9100400: 1})

    dev = c.device()
    tcp_session(c, dev, 40401, "202.114.4.120", 515, [("c", b"\x02lp\n" + b"PID|1||4711^^^HOSP^MR||DOE^JANE\r" * 8, 100)])
    c.case("contec monitor uploads to 202.114.4.120:515", {9100400, 9100401, 9100402}, [dev],
           counts={9100400: 1, 9100401: 1, 9100402: 1})

    dev = c.device()
    c.emit(eth() / IP(src="202.114.4.7", dst=dev) / ICMP(type=8, id=9, seq=1))
    c.case("contec network pings a device", {9100401}, [dev])

    dev, out = c.device(), c.outside()
    c.emit(eth() / IP(src=out, dst=dev) / ICMP(type=165, code=0) / Raw(b"\x00" * 8))
    c.case("icmp type 165 toward a device", {9100410}, [dev, out])

    dev, out = c.device(), c.outside()
    c.emit(eth() / IP(src=dev, dst=out) / ICMP(type=166, code=0) / Raw(b"\x00" * 8))
    c.case("icmp type 166 from a device", {9100411}, [dev, out])

    dev, out = c.device(), c.outside()
    c.emit(eth() / IP(src=out, dst=dev) / ICMP(type=8, id=1, seq=1) / Raw(b"ping"))
    c.emit(eth() / IP(src=dev, dst=out) / ICMP(type=0, id=1, seq=1) / Raw(b"ping"))
    c.case("icmp echo (near miss)", set(), [dev, out])

    dev, out = c.device(), c.outside()
    c.emit(eth() / IP(src=out, dst=dev) / IP(src="192.0.2.10", dst=dev) / ICMP(type=8) / Raw(b"tunnelled"))
    c.case("ip-in-ip toward a device", {9100412}, [dev, out])

    dev, out = c.device(), c.outside()
    c.emit(eth() / IP(src=out, dst=dev) / IPv6(src="2001:db8::1", dst="2001:db8::77") / ICMPv6EchoRequest())
    c.case("ipv6-in-ipv4 toward a device", {9100413}, [dev, out])

    dev, out = c.device(), c.outside()
    tcp_session(c, out, 40410, dev, 445, [("c", P.smb1_negotiate_rq()), ("s", P.smb1_negotiate_rsp()),
                                          ("c", P.smb1_trans2_session_setup())])
    c.case("smbv1 trans2 session_setup (doublepulsar check)", {9100414, 9100502}, [dev, out])

    # --- policy (91005xx)
    dev, peer = c.device(), c.peer()
    tcp_session(c, peer, 40500, dev, 445, [("c", P.smb1_negotiate_rq()), ("s", P.smb1_negotiate_rsp())])
    c.case("smbv1 negotiated", {9100502}, [dev, peer])

    dev, peer = c.device(), c.peer()
    tcp_session(c, peer, 40501, dev, 445, [("c", P.smb1_negotiate_rq((b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???"))),
                                           ("s", P.smb2_negotiate_rsp())])
    c.case("smb multi-protocol negotiate answered in SMB2 (near miss)", set(), [dev, peer])

    dev, peer = c.device(), c.peer()
    tcp_session(c, peer, 40502, dev, 3389, [("c", P.rdp_connection_request()), ("s", P.rdp_connection_confirm())])
    c.case("rdp connection request", {9100504}, [dev, peer])

    dev = c.device()
    udp(c, dev, 40503, "239.255.255.250", 3702, P.WSD_PROBE)
    udp(c, dev, 40503, "239.255.255.250", 3702, P.WSD_PROBE)
    c.case("ws-discovery 1.1 probe twice (IEEE 11073 SDC)", {9100505}, [dev], counts={9100505: 1})


def main():
    cap = Capture()
    build(cap)
    wrpcap(sys.argv[1], cap.frames)
    with open(sys.argv[2], "w") as f:
        json.dump({"cases": cap.cases}, f, indent=1)
    print(f"make_cases: {len(cap.cases)} cases, {len(cap.frames)} frames")


if __name__ == "__main__":
    main()
