#include "dataplane/parse/packet.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace wardgate::parse {
namespace {

// EtherTypes (IEEE 802.3, 802.1Q).
constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;        // 802.1Q C-tag
constexpr uint16_t kEtherTypeQinQ = 0x88a8;        // 802.1ad S-tag
constexpr uint16_t kEtherTypeQinQLegacy = 0x9100;  // pre-802.1ad vendor S-tag, outer only

constexpr size_t kEthHeaderLen = 14;
constexpr size_t kVlanTagLen = 4;
constexpr size_t kArpFixedLen = 8;       // htype, ptype, hlen, plen, op
constexpr size_t kArpEthIpv4Len = 28;    // RFC 826 with 6-byte MACs and 4-byte IPs
constexpr size_t kIpv4HeaderMin = 20;
constexpr size_t kIpv6HeaderLen = 40;
constexpr size_t kIpv6ExtMin = 8;        // every extension header is >= 8 bytes
constexpr size_t kTcpHeaderMin = 20;
constexpr size_t kUdpHeaderLen = 8;
constexpr size_t kIcmpHeaderLen = 4;     // type, code, checksum; the rest is message body

// IPv6 extension headers walked before the upper-layer header (RFC 8200 4, RFC 4302).
constexpr uint8_t kIpv6HopByHop = 0;
constexpr uint8_t kIpv6Routing = 43;
constexpr uint8_t kIpv6Fragment = 44;
constexpr uint8_t kIpv6Ah = 51;
constexpr uint8_t kIpv6DestOpts = 60;

// TCP option kinds (RFC 9293 3.2, RFC 7323, RFC 2018).
constexpr uint8_t kTcpOptEol = 0;
constexpr uint8_t kTcpOptNop = 1;
constexpr uint8_t kTcpOptMss = 2;
constexpr uint8_t kTcpOptWscale = 3;
constexpr uint8_t kTcpOptSackPermitted = 4;
constexpr uint8_t kTcpOptSack = 5;
constexpr uint8_t kTcpOptTimestamp = 8;

// RFC 7323 2.3: larger shifts are clamped by correct stacks and overflow old ones.
constexpr uint8_t kTcpMaxWscale = 14;

// RFC 7323 Appendix A layout NOP, NOP, TS(10): the whole option area of most data
// segments, so it gets a fast path (as in Linux tcp_parse_aligned_timestamp).
constexpr size_t kTcpAlignedTsLen = 12;
constexpr uint32_t kTcpAlignedTsPrefix = 0x0101080a;

// IPv4 option types that are a single octet (RFC 791 3.1).
constexpr uint8_t kIpv4OptEol = 0;
constexpr uint8_t kIpv4OptNop = 1;

// Offsets are uint16_t in PacketView, so frames are parsed only up to this size.
constexpr size_t kMaxFrameLen = 65535;

// Reset by copying a constant: `out = PacketView{}` builds a temporary on the stack
// (rep stos, then a byte store for tcp_wscale) and reloads it with wide loads: a
// store-forwarding stall that roughly doubled the cost of a TCP ACK.
constexpr PacketView kEmptyView{};

// Multi-byte fields: memcpy (no unaligned access UB), then to host order.
inline uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  return v;
}

inline uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  return v;
}

inline bool IsVlanTpid(uint16_t ether_type, int depth) {
  return ether_type == kEtherTypeVlan || ether_type == kEtherTypeQinQ ||
         (depth == 0 && ether_type == kEtherTypeQinQLegacy);
}

inline void SetPayload(PacketView& out, size_t begin, size_t end) {
  out.payload_offset = static_cast<uint16_t>(begin);
  out.payload_len = static_cast<uint16_t>(end - begin);
}

// Caller guarantees [0, len) is the option area. RFC 791 3.1: only EOL and NOP are
// single-octet; every other option is type, length (>= 2, counting both), data.
inline bool WalkIpv4Options(const uint8_t* opt, size_t len) {
  size_t i = 0;
  while (i < len) {
    const uint8_t type = opt[i];
    if (type == kIpv4OptEol) return true;
    if (type == kIpv4OptNop) {
      ++i;
      continue;
    }
    if (len - i < 2) return false;
    const uint8_t olen = opt[i + 1];
    if (olen < 2 || olen > len - i) return false;
    i += olen;
  }
  return true;
}

// RFC 9293 3.2: EOL and NOP are single octets; the rest are kind, length, data.
// Known kinds must have their fixed length, or middleboxes and endpoints disagree.
// Options that parse but crash old device stacks set tcp_options_suspicious (see
// PacketView); out.tcp_flags is already set. Duplicates are found from the view's own
// fields (MSS already non-zero, window scale no longer 0xff), not extra locals: more
// live values here cost ParseL4 callee-saved register spills on every TCP segment.
inline bool WalkTcpOptions(const uint8_t* opt, size_t len, PacketView& out) {
  size_t i = 0;
  while (i < len) {
    const uint8_t kind = opt[i];
    if (kind == kTcpOptEol) return true;
    if (kind == kTcpOptNop) {
      ++i;
      continue;
    }
    if (len - i < 2) return false;
    const uint8_t olen = opt[i + 1];
    if (olen < 2 || olen > len - i) return false;
    switch (kind) {
      case kTcpOptMss:
        if (olen != 4) return false;
      {
        const uint16_t mss = Load16(opt + i + 2);
        if (out.tcp_mss != 0 || (mss == 0 && (out.tcp_flags & kTcpSyn) != 0)) {
          out.tcp_options_suspicious = true;
        }
        out.tcp_mss = mss;
        break;
      }
      case kTcpOptWscale:  // raw shift count; RFC 7323 2.3 clamping is the consumer's job
        if (olen != 3) return false;
        if (out.tcp_wscale != 0xff || opt[i + 2] > kTcpMaxWscale) out.tcp_options_suspicious = true;
        out.tcp_wscale = opt[i + 2];
        break;
      case kTcpOptSackPermitted:
        if (olen != 2) return false;
        out.tcp_sack_permitted = true;
        break;
      case kTcpOptTimestamp:
        if (olen != 10) return false;
        out.tcp_has_timestamp = true;
        break;
      case kTcpOptSack:  // RFC 2018 3: 2 + 8 bytes per block, at least one block
        if (olen < 10 || (olen - 2) % 8 != 0) out.tcp_options_suspicious = true;
        break;
      default:
        break;
    }
    i += olen;
  }
  return true;
}

// [off, end) is the L4 region, bounded by the IP length (never Ethernet padding).
// `fragmented` is set for the first fragment of a fragmented datagram: the L4
// header is present but the datagram continues in later fragments.
inline ParseError ParseL4(const uint8_t* f, size_t off, size_t end, bool fragmented,
                          PacketView& out) {
  const uint8_t* l4 = f + off;
  const size_t avail = end - off;
  switch (out.ip_proto) {
    case kProtoTcp: {
      if (avail < kTcpHeaderMin) return ParseError::kTcpTruncated;
      out.src_port = Load16(l4);
      out.dst_port = Load16(l4 + 2);
      out.tcp_seq = Load32(l4 + 4);
      out.tcp_ack = Load32(l4 + 8);
      out.tcp_flags = l4[13];
      out.tcp_window = Load16(l4 + 14);
      out.tcp_urgent_ptr = Load16(l4 + 18);
      const size_t hlen = static_cast<size_t>(l4[12] >> 4) * 4;
      if (hlen < kTcpHeaderMin || hlen > avail) return ParseError::kTcpBadDataOffset;
      if (hlen == kTcpHeaderMin + kTcpAlignedTsLen &&
          Load32(l4 + kTcpHeaderMin) == kTcpAlignedTsPrefix) {
        out.tcp_has_timestamp = true;  // exactly what the walk would find
      } else if (hlen > kTcpHeaderMin &&
                 !WalkTcpOptions(l4 + kTcpHeaderMin, hlen - kTcpHeaderMin, out)) {
        return ParseError::kTcpBadOptions;
      }
      SetPayload(out, off + hlen, end);
      return ParseError::kNone;
    }
    case kProtoUdp: {
      if (avail < kUdpHeaderLen) return ParseError::kUdpTruncated;
      out.src_port = Load16(l4);
      out.dst_port = Load16(l4 + 2);
      size_t ulen = Load16(l4 + 4);
      if (ulen < kUdpHeaderLen) return ParseError::kUdpBadLength;
      if (ulen > avail) {
        // A first fragment carries only part of the datagram the UDP length covers.
        if (!fragmented) return ParseError::kUdpBadLength;
        ulen = avail;
      }
      SetPayload(out, off + kUdpHeaderLen, off + ulen);
      return ParseError::kNone;
    }
    case kProtoIcmp:
    case kProtoIcmpv6: {
      if (avail < kIcmpHeaderLen) {
        return out.ip_proto == kProtoIcmp ? ParseError::kIcmpTruncated
                                          : ParseError::kIcmpv6Truncated;
      }
      out.icmp_type = l4[0];
      out.icmp_code = l4[1];
      const bool echo = out.ip_proto == kProtoIcmp ? (l4[0] == 0 || l4[0] == 8) : (l4[0] == 128 || l4[0] == 129);
      if (echo && avail >= 8) {  // RFC 792 / RFC 4443 4.1: identifier, sequence number
        out.icmp_echo = true;
        out.icmp_id = static_cast<uint16_t>(l4[4] << 8 | l4[5]);
        out.icmp_seq = static_cast<uint16_t>(l4[6] << 8 | l4[7]);
      }
      // RFC 792 / RFC 4443 2.1: the 4-byte common header; id/seq etc. are message body.
      SetPayload(out, off + kIcmpHeaderLen, end);
      return ParseError::kNone;
    }
    default:
      // Unknown upper layer (ESP, GRE, SCTP, No Next Header 59, ...): not an error.
      SetPayload(out, off, end);
      return ParseError::kNone;
  }
}

inline ParseError ParseArp(const uint8_t* f, size_t off, size_t len, PacketView& out) {
  out.l3 = L3::kArp;
  out.l3_offset = static_cast<uint16_t>(off);
  const size_t avail = len - off;
  if (avail < kArpFixedLen) return ParseError::kArpTruncated;
  const uint8_t* arp = f + off;
  const uint16_t htype = Load16(arp);
  const uint16_t ptype = Load16(arp + 2);
  // Only Ethernet/IPv4 ARP (RFC 826) is interpreted; other hardware or protocol
  // types are passed with just the fixed header checked.
  if (htype != 1 || ptype != kEtherTypeIpv4) return ParseError::kNone;
  if (arp[4] != 6 || arp[5] != 4) return ParseError::kArpMalformed;
  if (avail < kArpEthIpv4Len) return ParseError::kArpTruncated;
  out.arp_op = Load16(arp + 6);
  // Sender and target protocol addresses, for ARP spoofing checks.
  std::memcpy(out.src_addr.data(), arp + 14, 4);
  std::memcpy(out.dst_addr.data(), arp + 24, 4);
  return ParseError::kNone;
}

inline ParseError ParseIpv4(const uint8_t* f, size_t off, size_t len, PacketView& out) {
  out.l3 = L3::kIpv4;
  out.l3_offset = static_cast<uint16_t>(off);
  const size_t avail = len - off;
  if (avail < kIpv4HeaderMin) return ParseError::kIpv4Truncated;
  const uint8_t* ip = f + off;
  if ((ip[0] >> 4) != 4) return ParseError::kIpv4BadVersion;
  const size_t hlen = static_cast<size_t>(ip[0] & 0x0f) * 4;
  if (hlen < kIpv4HeaderMin) return ParseError::kIpv4BadHeaderLength;
  if (hlen > avail) return ParseError::kIpv4Truncated;
  // Total length, not the frame, bounds the datagram: Ethernet pads short frames.
  const size_t total = Load16(ip + 2);
  if (total < hlen || total > avail) return ParseError::kIpv4BadTotalLength;
  out.ttl = ip[8];
  out.ip_proto = ip[9];
  std::memcpy(out.src_addr.data(), ip + 12, 4);
  std::memcpy(out.dst_addr.data(), ip + 16, 4);
  // RFC 791 3.1: flags (reserved, DF, MF) and 13-bit fragment offset.
  const uint16_t frag = Load16(ip + 6);
  const uint16_t frag_offset = frag & 0x1fff;
  if ((frag & 0x2000) != 0 || frag_offset != 0) {
    out.is_fragment = true;
    out.is_first_fragment = frag_offset == 0;
    out.frag_more = (frag & 0x2000) != 0;
    out.frag_offset = static_cast<uint16_t>(frag_offset << 3);  // <= 65528
    out.frag_len = static_cast<uint16_t>(total - hlen);
    out.frag_id = Load16(ip + 4);
  }
  if (hlen > kIpv4HeaderMin) {
    out.ipv4_has_options = true;
    if (!WalkIpv4Options(ip + kIpv4HeaderMin, hlen - kIpv4HeaderMin)) {
      return ParseError::kIpv4BadOptions;
    }
  }
  const size_t l4 = off + hlen;
  const size_t end = off + total;
  out.l4_offset = static_cast<uint16_t>(l4);
  if (frag_offset != 0) {
    // Later fragments carry no L4 header; everything after IP is payload.
    SetPayload(out, l4, end);
    return ParseError::kNone;
  }
  return ParseL4(f, l4, end, out.is_fragment, out);
}

inline ParseError ParseIpv6(const uint8_t* f, size_t off, size_t len, PacketView& out) {
  out.l3 = L3::kIpv6;
  out.l3_offset = static_cast<uint16_t>(off);
  const size_t avail = len - off;
  if (avail < kIpv6HeaderLen) return ParseError::kIpv6Truncated;
  const uint8_t* ip = f + off;
  if ((ip[0] >> 4) != 6) return ParseError::kIpv6BadVersion;
  // Payload length bounds the packet (Ethernet padding). Jumbograms (RFC 2675,
  // payload length 0) cannot occur on Ethernet and are not supported.
  const size_t payload = Load16(ip + 4);
  if (payload > avail - kIpv6HeaderLen) return ParseError::kIpv6BadPayloadLength;
  out.ttl = ip[7];
  std::memcpy(out.src_addr.data(), ip + 8, 16);
  std::memcpy(out.dst_addr.data(), ip + 24, 16);

  size_t cur = off + kIpv6HeaderLen;
  const size_t end = cur + payload;
  uint8_t next = ip[6];
  int ext_count = 0;
  // RFC 8200 4.1: walk the chain up to the upper-layer header, bounded in count.
  while (next == kIpv6HopByHop || next == kIpv6Routing || next == kIpv6Fragment ||
         next == kIpv6DestOpts || next == kIpv6Ah) {
    if (++ext_count > kMaxIpv6ExtHeaders) return ParseError::kIpv6ExtTooMany;
    if (end - cur < kIpv6ExtMin) return ParseError::kIpv6ExtTruncated;
    const uint8_t* ext = f + cur;
    size_t ext_len;
    if (next == kIpv6Fragment) {
      ext_len = 8;  // RFC 8200 4.5: fixed size
    } else if (next == kIpv6Ah) {
      ext_len = (static_cast<size_t>(ext[1]) + 2) * 4;  // RFC 4302 2.2: 32-bit words - 2
    } else {
      ext_len = (static_cast<size_t>(ext[1]) + 1) * 8;  // RFC 8200 4.3: 8-octet units - 1
    }
    if (ext_len > end - cur) return ParseError::kIpv6ExtTruncated;
    const uint8_t header = next;
    next = ext[0];
    cur += ext_len;
    if (header == kIpv6Fragment) {
      // RFC 8200 4.5: 13-bit offset in 8-octet units; a header with offset 0 and M 0
      // is an atomic fragment (RFC 6946) and still counts as a fragment.
      const uint16_t frag_field = Load16(ext + 2);
      const uint16_t frag_offset = frag_field >> 3;
      out.is_fragment = true;
      out.is_first_fragment = frag_offset == 0;
      out.frag_more = (frag_field & 1) != 0;
      out.frag_offset = static_cast<uint16_t>(frag_field & 0xfff8);  // offset * 8 bytes
      out.frag_len = static_cast<uint16_t>(end - cur);  // the fragmentable part
      out.frag_id = Load32(ext + 4);
      if (frag_offset != 0) {
        // Later fragments: the rest is fragment data, not headers.
        out.ip_proto = next;
        out.l4_offset = static_cast<uint16_t>(cur);
        SetPayload(out, cur, end);
        return ParseError::kNone;
      }
    }
  }
  out.ip_proto = next;
  out.l4_offset = static_cast<uint16_t>(cur);
  return ParseL4(f, cur, end, out.is_fragment, out);
}

constexpr std::string_view kParseErrorNames[] = {
    "none",
    "eth_truncated",
    "vlan_truncated",
    "vlan_too_many_tags",
    "arp_truncated",
    "arp_malformed",
    "ipv4_truncated",
    "ipv4_bad_version",
    "ipv4_bad_header_length",
    "ipv4_bad_total_length",
    "ipv4_bad_options",
    "ipv6_truncated",
    "ipv6_bad_version",
    "ipv6_bad_payload_length",
    "ipv6_ext_truncated",
    "ipv6_ext_too_many",
    "tcp_truncated",
    "tcp_bad_data_offset",
    "tcp_bad_options",
    "udp_truncated",
    "udp_bad_length",
    "icmp_truncated",
    "icmpv6_truncated",
};
static_assert(std::size(kParseErrorNames) == kParseErrorCount,
              "every ParseError needs a stable name");

}  // namespace

std::string_view ParseErrorName(ParseError e) {
  const auto i = static_cast<size_t>(e);
  return i < kParseErrorCount ? kParseErrorNames[i] : std::string_view("unknown");
}

ParseError ParsePacket(std::span<const uint8_t> frame, PacketView& out) {
  out = kEmptyView;
  const size_t len = std::min(frame.size(), kMaxFrameLen);
  out.frame_len = static_cast<uint16_t>(len);
  if (len < kEthHeaderLen) return ParseError::kEthTruncated;
  const uint8_t* f = frame.data();

  uint16_t ether_type = Load16(f + 12);
  size_t off = kEthHeaderLen;
  int tags = 0;
  while (IsVlanTpid(ether_type, tags)) {
    if (tags == kMaxVlanTags) return ParseError::kVlanTooManyTags;
    if (len - off < kVlanTagLen) return ParseError::kVlanTruncated;
    out.vlan_ids[tags] = Load16(f + off) & 0x0fff;  // TCI: PCP(3) DEI(1) VID(12)
    out.vlan_count = static_cast<uint8_t>(++tags);
    ether_type = Load16(f + off + 2);
    off += kVlanTagLen;
  }
  out.ether_type = ether_type;

  switch (ether_type) {
    case kEtherTypeIpv4:
      return ParseIpv4(f, off, len, out);
    case kEtherTypeIpv6:
      return ParseIpv6(f, off, len, out);
    case kEtherTypeArp:
      return ParseArp(f, off, len, out);
    default:
      // Unknown EtherType (or an 802.3 length field): stop at L2, not an error.
      out.l3 = L3::kOther;
      out.l3_offset = static_cast<uint16_t>(off);
      return ParseError::kNone;
  }
}

}  // namespace wardgate::parse
