#include "dataplane/inspect/reject.h"

#include <algorithm>
#include <cstring>

namespace wardgate::inspect {
namespace {

void Put16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, uint16_t(v >> 16));
  Put16(p + 2, uint16_t(v));
}

// RFC 1071 one's-complement sum, continued from `sum`.
uint32_t Sum(const uint8_t* p, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += uint32_t(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += uint32_t(p[len - 1] << 8);
  return sum;
}
uint16_t Fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

// The IPv4/IPv6 pseudo-header sum for an upper-layer checksum (RFC 793, RFC 8200 8.1).
uint32_t PseudoSum(bool v6, const uint8_t* src, const uint8_t* dst, uint8_t proto, uint32_t len) {
  uint32_t sum = Sum(src, v6 ? 16 : 4);
  sum = Sum(dst, v6 ? 16 : 4, sum);
  return sum + proto + (len >> 16) + (len & 0xffff);
}

// Writes Ethernet (+VLAN tags copied from the original) and an IP header for a
// packet of `l4_len` bytes of protocol `proto` from src to dst. Returns the offset of
// the L4 header, or 0 when `out` is too small.
size_t WriteHeaders(std::span<const uint8_t> frame, const parse::PacketView& v, bool swap_l2,
                    const uint8_t* src_ip, const uint8_t* dst_ip, uint8_t proto, size_t l4_len,
                    std::span<uint8_t> out) {
  const bool v6 = v.l3 == parse::L3::kIpv6;
  const size_t l2 = v.l3_offset;  // Ethernet + VLAN tags + EtherType
  const size_t ip_len = v6 ? 40 : 20;
  if (l2 + ip_len + l4_len > out.size() || l2 > frame.size() || l2 < 14) return 0;
  uint8_t* o = out.data();
  std::memcpy(o, frame.data(), l2);
  if (swap_l2) {
    std::memcpy(o, frame.data() + 6, 6);
    std::memcpy(o + 6, frame.data(), 6);
  }
  uint8_t* ip = o + l2;
  if (v6) {
    Put32(ip, 0x60000000);
    Put16(ip + 4, uint16_t(l4_len));
    ip[6] = proto;
    ip[7] = 64;
    std::memcpy(ip + 8, src_ip, 16);
    std::memcpy(ip + 24, dst_ip, 16);
  } else {
    ip[0] = 0x45;
    ip[1] = 0;
    Put16(ip + 2, uint16_t(20 + l4_len));
    Put32(ip + 4, 0x00004000);  // id 0, DF
    ip[8] = 64;
    ip[9] = proto;
    Put16(ip + 10, 0);
    std::memcpy(ip + 12, src_ip, 4);
    std::memcpy(ip + 16, dst_ip, 4);
    Put16(ip + 10, Fold(Sum(ip, 20)));
  }
  return l2 + ip_len;
}

}  // namespace

size_t BuildTcpReset(std::span<const uint8_t> frame, const parse::PacketView& v, bool to_sender,
                     std::span<uint8_t> out) {
  if (v.ip_proto != parse::kProtoTcp || (v.l3 != parse::L3::kIpv4 && v.l3 != parse::L3::kIpv6)) return 0;
  if (v.tcp_flags & parse::kTcpRst) return 0;  // never answer a RST with a RST
  const bool v6 = v.l3 == parse::L3::kIpv6;
  const uint8_t* src = to_sender ? v.dst_addr.data() : v.src_addr.data();
  const uint8_t* dst = to_sender ? v.src_addr.data() : v.dst_addr.data();
  const size_t l4 = WriteHeaders(frame, v, to_sender, src, dst, parse::kProtoTcp, 20, out);
  if (!l4) return 0;
  // The segment's sequence space: SYN and FIN count one each (RFC 9293 3.4).
  const uint32_t seg_len = v.payload_len + ((v.tcp_flags & parse::kTcpSyn) ? 1 : 0) +
                           ((v.tcp_flags & parse::kTcpFin) ? 1 : 0);
  uint8_t* t = out.data() + l4;
  Put16(t, to_sender ? v.dst_port : v.src_port);
  Put16(t + 2, to_sender ? v.src_port : v.dst_port);
  uint32_t seq, ack;
  uint8_t flags = parse::kTcpRst;
  if (to_sender) {
    // RFC 9293 3.10.7.1: answer with seq = the segment's ACK (or 0 with an ACK of the
    // segment when it carried none).
    if (v.tcp_flags & parse::kTcpAck) {
      seq = v.tcp_ack;
      ack = 0;
    } else {
      seq = 0;
      ack = v.tcp_seq + seg_len;
      flags |= parse::kTcpAck;
    }
  } else {
    seq = v.tcp_seq;
    ack = v.tcp_ack;
    if (v.tcp_flags & parse::kTcpAck) flags |= parse::kTcpAck;
  }
  Put32(t + 4, seq);
  Put32(t + 8, ack);
  t[12] = 0x50;
  t[13] = flags;
  Put16(t + 14, 0);
  Put16(t + 16, 0);
  Put16(t + 18, 0);
  Put16(t + 16, Fold(Sum(t, 20, PseudoSum(v6, src, dst, parse::kProtoTcp, 20))));
  return l4 + 20;
}

size_t BuildPortUnreachable(std::span<const uint8_t> frame, const parse::PacketView& v,
                            std::span<uint8_t> out) {
  if (v.ip_proto != parse::kProtoUdp || (v.l3 != parse::L3::kIpv4 && v.l3 != parse::L3::kIpv6)) return 0;
  const bool v6 = v.l3 == parse::L3::kIpv6;
  // Quote the offending IP header and up to 64 bytes after it (RFC 792: header + 8;
  // RFC 4443 2.4: as much as fits; 64 keeps the reply small).
  const size_t ip_hdr = v.l4_offset - v.l3_offset;
  const size_t quote = std::min<size_t>(frame.size() - v.l3_offset, ip_hdr + 64);
  const size_t l4_len = 8 + quote;
  const uint8_t proto = v6 ? parse::kProtoIcmpv6 : parse::kProtoIcmp;
  const size_t l4 = WriteHeaders(frame, v, true, v.dst_addr.data(), v.src_addr.data(), proto, l4_len, out);
  if (!l4) return 0;
  uint8_t* icmp = out.data() + l4;
  icmp[0] = v6 ? 1 : 3;  // destination unreachable
  icmp[1] = v6 ? 4 : 3;  // port unreachable
  Put16(icmp + 2, 0);
  Put32(icmp + 4, 0);
  std::memcpy(icmp + 8, frame.data() + v.l3_offset, quote);
  const uint32_t base = v6 ? PseudoSum(true, v.dst_addr.data(), v.src_addr.data(), proto, uint32_t(l4_len)) : 0;
  Put16(icmp + 2, Fold(Sum(icmp, l4_len, base)));
  return l4 + l4_len;
}

}  // namespace wardgate::inspect
