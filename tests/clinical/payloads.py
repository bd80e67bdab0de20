"""Protocol payloads for the clinical rule-set tests, built from the specifications
(not captured): HL7 v2 / MLLP, DICOM upper layer (PS3.8 9.3) and DIMSE (PS3.7), RFB
(RFC 6143), SMB1 (MS-CIFS), X.224 / RDP (MS-RDPBCGR), SNMP (RFC 1157 BER), TFTP
(RFC 1350), PE and ELF headers. Imported by make_cases.py."""

import base64
import struct

# ---------------------------------------------------------------- HL7 v2 over MLLP

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def mllp(message: str) -> bytes:
    """MLLP frame: 0x0B <message> 0x1C 0x0D; segments end with CR."""
    return SB + message.encode() + EB + CR


def hl7(msh_type: str, control_id: str, *segments: str, security: str = "", version: str = "2.5") -> str:
    """An HL7 v2 message; MSH-8 (security) is empty unless given."""
    msh = f"MSH|^~\\&|PUMP|ICU|EHR|HOSP|20251130120000|{security}|{msh_type}|{control_id}|P|{version}"
    return "\r".join([msh, *segments]) + "\r"


def hl7_ack(control_id: str) -> bytes:
    return mllp(hl7("ACK^A01", "ACK" + control_id, f"MSA|AA|{control_id}"))


ADT_SEGMENTS = ("EVN|A01|20251130120000", "PID|1||4711^^^HOSP^MR||DOE^JANE||19700101|F",
                "PV1|1|I|ICU^01^01||||1234^WELBY^MARCUS")
ORU_SEGMENTS = ("PID|1||4711^^^HOSP^MR||DOE^JANE||19700101|F", "OBR|1||ORD1|8867-4^Heart rate^LN",
                "OBX|1|NM|8867-4^Heart rate^LN||72|/min|60-100|N|||F",
                "OBX|2|NM|2708-6^SpO2^LN||97|%|94-100|N|||F")

# ---------------------------------------------------------------- DICOM upper layer

APP_CONTEXT = b"1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"


def _item(item_type: int, value: bytes) -> bytes:
    return bytes([item_type, 0]) + struct.pack(">H", len(value)) + value


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return bytes([pdu_type, 0]) + struct.pack(">I", len(body)) + body


def _ae(title: str) -> bytes:
    return title.encode().ljust(16, b" ")


def _user_info(impl_uid: str, impl_version: str, max_len: int, identity: bytes = b"") -> bytes:
    return _item(0x50, _item(0x51, struct.pack(">I", max_len)) + _item(0x52, impl_uid.encode())
                 + _item(0x55, impl_version.encode()) + identity)


def user_identity(kind: int, primary: bytes, secondary: bytes = b"", response: int = 0) -> bytes:
    """User Identity Negotiation sub-item of an A-ASSOCIATE-RQ (PS3.7 D.3.3.7.1)."""
    value = bytes([kind, response]) + struct.pack(">H", len(primary)) + primary
    value += struct.pack(">H", len(secondary)) + secondary
    return _item(0x58, value)


def associate_rq(called: str, calling: str, contexts=((1, VERIFICATION, (IMPLICIT_LE,)),),
                 impl_uid="1.2.276.0.7230010.3.0.3.6.7", impl_version="OFFIS_DCMTK_367",
                 max_len=16384, identity: bytes = b"") -> bytes:
    body = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32)
    body += _item(0x10, APP_CONTEXT)
    for pc_id, abstract, transfers in contexts:
        value = bytes([pc_id, 0, 0, 0]) + _item(0x30, abstract.encode())
        value += b"".join(_item(0x40, t.encode()) for t in transfers)
        body += _item(0x20, value)
    body += _user_info(impl_uid, impl_version, max_len, identity)
    return _pdu(0x01, body)


def associate_ac(called: str, calling: str, contexts=((1, IMPLICIT_LE),)) -> bytes:
    body = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32)
    body += _item(0x10, APP_CONTEXT)
    for pc_id, transfer in contexts:
        body += _item(0x21, bytes([pc_id, 0, 0, 0]) + _item(0x40, transfer.encode()))
    body += _user_info("1.2.826.0.1.3680043.9.7433.1.1", "WARDPACS_1", 16384)
    return _pdu(0x02, body)


def associate_rj(result=1, source=1, reason=7) -> bytes:
    """A-ASSOCIATE-RJ (PS3.8 9.3.4); default: permanent, service user, called AE title not recognised."""
    return _pdu(0x03, bytes([0, result, source, reason]))


RELEASE_RQ = _pdu(0x05, bytes(4))
RELEASE_RP = _pdu(0x06, bytes(4))


def _even(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value


def _elem(group: int, element: int, value: bytes) -> bytes:
    """Implicit VR little endian data element."""
    return struct.pack("<HHI", group, element, len(value)) + value


def _uid(uid: str) -> bytes:
    return _even(uid.encode(), b"\x00")


def _us(v: int) -> bytes:
    return struct.pack("<H", v)


def _command(*elements: bytes) -> bytes:
    body = b"".join(elements)
    return _elem(0x0000, 0x0000, struct.pack("<I", len(body))) + body


def p_data(pc_id: int, header: int, data: bytes) -> bytes:
    """P-DATA-TF with one PDV; header 0x03: command, last fragment; 0x02: data set, last."""
    return _pdu(0x04, struct.pack(">I", len(data) + 2) + bytes([pc_id, header]) + data)


def echo_rq(msg_id=1) -> bytes:
    return p_data(1, 0x03, _command(_elem(0, 0x0002, _uid(VERIFICATION)), _elem(0, 0x0100, _us(0x0030)),
                                    _elem(0, 0x0110, _us(msg_id)), _elem(0, 0x0800, _us(0x0101))))


def echo_rsp(msg_id=1) -> bytes:
    return p_data(1, 0x03, _command(_elem(0, 0x0002, _uid(VERIFICATION)), _elem(0, 0x0100, _us(0x8030)),
                                    _elem(0, 0x0120, _us(msg_id)), _elem(0, 0x0800, _us(0x0101)),
                                    _elem(0, 0x0900, _us(0))))


def find_rq_all_patients(pc_id=1) -> list:
    """C-FIND-RQ at PATIENT level with PatientName '*': command PDV, then data set PDV."""
    cmd = p_data(pc_id, 0x03, _command(_elem(0, 0x0002, _uid(PATIENT_ROOT_FIND)), _elem(0, 0x0100, _us(0x0020)),
                                       _elem(0, 0x0110, _us(7)), _elem(0, 0x0700, _us(0)),
                                       _elem(0, 0x0800, _us(0x0102))))
    ds = (_elem(0x0008, 0x0052, b"PATIENT ") + _elem(0x0010, 0x0010, b"* ") + _elem(0x0010, 0x0020, b"")
          + _elem(0x0010, 0x0030, b""))
    return [cmd, p_data(pc_id, 0x02, ds)]


def find_rsp_done(pc_id=1) -> bytes:
    return p_data(pc_id, 0x03, _command(_elem(0, 0x0002, _uid(PATIENT_ROOT_FIND)), _elem(0, 0x0100, _us(0x8020)),
                                        _elem(0, 0x0120, _us(7)), _elem(0, 0x0800, _us(0x0101)),
                                        _elem(0, 0x0900, _us(0))))


def _explicit(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH", group, element) + vr + b"\x00\x00" + struct.pack("<I", len(value)) + value
    return struct.pack("<HH", group, element) + vr + struct.pack("<H", len(value)) + value


def dicom_file(preamble: bytes, tail_pad_to: int = 0, tail_marker: bytes = b"", marker_at: int = 0) -> bytes:
    """A DICOM Part 10 file: 128-byte preamble, "DICM", file meta group, a small data
    set; optionally `tail_marker` placed at byte `marker_at` (inside a private element)."""
    meta_body = (_explicit(2, 0x0001, b"OB", b"\x00\x01") + _explicit(2, 0x0002, b"UI", _uid(SC_IMAGE))
                 + _explicit(2, 0x0003, b"UI", _uid("1.2.826.0.1.3680043.9.7433.2.1"))
                 + _explicit(2, 0x0010, b"UI", _uid(EXPLICIT_LE)))
    meta = _explicit(2, 0x0000, b"UL", struct.pack("<I", len(meta_body))) + meta_body
    data = (_explicit(0x0008, 0x0016, b"UI", _uid(SC_IMAGE)) + _explicit(0x0010, 0x0010, b"PN", b"DOE^JANE")
            + _explicit(0x0010, 0x0020, b"LO", b"4711"))
    out = preamble.ljust(128, b"\x00")[:128] + b"DICM" + meta + data
    if tail_marker:
        # private creator + private OB element whose value holds the marker at marker_at
        out += _explicit(0x0009, 0x0010, b"LO", b"WARDTEST")
        header_len = 12
        fill = marker_at - len(out) - header_len
        assert fill >= 0
        value = bytes(fill) + tail_marker + bytes(64)
        out += _explicit(0x0009, 0x1000, b"OB", _even(value, b"\x00"))
    return out


# ---------------------------------------------------------------- executables

def pe_file(e_lfanew=0x80, size=1024) -> bytes:
    """A minimal i386 PE image header: DOS header with e_lfanew, stub, PE\\0\\0, COFF header."""
    dos = bytearray(64)
    dos[0:2] = b"MZ"
    dos[2:4] = struct.pack("<H", 0x90)
    dos[0x3C:0x40] = struct.pack("<I", e_lfanew)
    stub = b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21\xb8\x01\x4c\xcd\x21This program cannot be run in DOS mode.\r\r\n$"
    out = bytearray(bytes(dos) + stub)
    out = out.ljust(e_lfanew, b"\x00")
    coff = struct.pack("<HHIIIHH", 0x014C, 1, 0x5F000000, 0, 0, 0xE0, 0x0102)
    out += b"PE\x00\x00" + coff + b"\x0b\x01" + bytes(0xDE)
    return bytes(out.ljust(size, b"\x00"))


def elf_file(size=512) -> bytes:
    """A minimal ELF64 little-endian executable header (x86-64)."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    hdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    return hdr.ljust(size, b"\x00")


def pe_dicom_polyglot() -> bytes:
    """CVE-2019-11687: a PE whose DOS header sits in the DICOM preamble, its PE header
    (e_lfanew = 0x800) inside a private data element."""
    dos = bytearray(128)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x800)
    coff = struct.pack("<HHIIIHH", 0x014C, 1, 0x5F000000, 0, 0, 0xE0, 0x0102)
    return dicom_file(bytes(dos), tail_marker=b"PE\x00\x00" + coff, marker_at=0x800)


def elf_dicom_polyglot() -> bytes:
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    hdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 0x400, 0, 0, 64, 56, 1, 64, 0, 0)
    return dicom_file(hdr)


def http_response(body: bytes, ctype="application/octet-stream") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nServer: ward-test\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def http_get(path: str, host: str, auth: str = "") -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ward-test/1.0\r\nAccept: */*\r\n"
    if auth:
        head += "Authorization: Basic " + base64.b64encode(auth.encode()).decode() + "\r\n"
    return (head + "\r\n").encode()


def http_post(path: str, host: str, body: bytes, ctype="application/dicom") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

# ---------------------------------------------------------------- SMB1 / SMB2, RDP, RFB

def netbios(msg: bytes) -> bytes:
    return b"\x00" + len(msg).to_bytes(3, "big") + msg


def smb1_header(cmd: int, flags=0x18, mid=0, tid=0, uid=0) -> bytes:
    return (b"\xffSMB" + bytes([cmd]) + bytes(4) + bytes([flags]) + struct.pack("<H", 0xC807)
            + bytes(2) + bytes(8) + bytes(2) + struct.pack("<HHHH", tid, 0xFEFF, uid, mid))


def smb1_negotiate_rq(dialects=(b"NT LM 0.12",)) -> bytes:
    data = b"".join(b"\x02" + d + b"\x00" for d in dialects)
    return netbios(smb1_header(0x72) + b"\x00" + struct.pack("<H", len(data)) + data)


def smb1_negotiate_rsp() -> bytes:
    words = struct.pack("<HBHHIIIIQhB", 0, 0x03, 50, 1, 16644, 65536, 0, 0x8000E3FD, 0, 0, 8)
    data = bytes(8)
    return netbios(smb1_header(0x72, flags=0x98) + b"\x11" + words + struct.pack("<H", len(data)) + data)


def smb2_negotiate_rsp() -> bytes:
    hdr = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, bytes(16))
    body = struct.pack("<HHHH16sIIII", 65, 1, 0x0210, 0, bytes(16), 7, 65536, 65536, 65536) + bytes(24)
    return netbios(hdr + body)


def smb1_trans2_session_setup() -> bytes:
    """Trans2 with subcommand SESSION_SETUP (0x000e): 15 words, one setup word."""
    params = bytes(12)
    words = struct.pack("<HHHHBBHIHHHHHBB", len(params), 0, 1, 0, 0, 0, 0, 0x00010000, 0,
                        len(params), 66, 0, 78, 1, 0) + struct.pack("<H", 0x000E)
    data = b"\x00" + params
    return netbios(smb1_header(0x32, mid=0x41, tid=0x0800, uid=0x0800) + b"\x0f" + words
                   + struct.pack("<H", len(data)) + data)


def rdp_connection_request(user="nurse") -> bytes:
    cookie = f"Cookie: mstshash={user}\r\n".encode()
    neg = struct.pack("<BBHI", 1, 0, 8, 3)
    x224 = b"\xe0" + bytes(4) + b"\x00" + cookie + neg
    tpdu = bytes([len(x224)]) + x224
    return b"\x03\x00" + struct.pack(">H", len(tpdu) + 4) + tpdu


def rdp_connection_confirm() -> bytes:
    neg = struct.pack("<BBHI", 2, 0, 8, 1)
    x224 = b"\xd0" + bytes(2) + b"\x12\x34" + b"\x00" + neg
    tpdu = bytes([len(x224)]) + x224
    return b"\x03\x00" + struct.pack(">H", len(tpdu) + 4) + tpdu


def rfb_server_init(name=b"ward-monitor") -> bytes:
    pixfmt = struct.pack(">BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)
    return struct.pack(">HH", 800, 600) + pixfmt + struct.pack(">I", len(name)) + name


# ---------------------------------------------------------------- TFTP, WS-Discovery

def tftp_rq(opcode: int, filename: str, mode="octet") -> bytes:
    return struct.pack(">H", opcode) + filename.encode() + b"\x00" + mode.encode() + b"\x00"


def tftp_data(block: int, data: bytes) -> bytes:
    return struct.pack(">HH", 3, block) + data


def tftp_ack(block: int) -> bytes:
    return struct.pack(">HH", 4, block)


WSD_PROBE = (
    '<?xml version="1.0" encoding="UTF-8"?><s12:Envelope xmlns:s12="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsd="http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01">'
    '<s12:Header><wsa:Action>http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01/Probe</wsa:Action>'
    '<wsa:MessageID>urn:uuid:0a6dc791-2be6-4991-9af1-454778a1917a</wsa:MessageID>'
    '<wsa:To>urn:docs-oasis-open-org:ws-dd:ns:discovery:2009:01</wsa:To></s12:Header>'
    '<s12:Body><wsd:Probe><wsd:Types xmlns:mdpws="http://standards.ieee.org/downloads/11073/11073-20702-2016">'
    'mdpws:MedicalDevice</wsd:Types></wsd:Probe></s12:Body></s12:Envelope>').encode()
