// Pure Ethernet/IP/L4 header parser: no DPDK, no allocation, no exceptions.
// Workers call ParsePacket() once per frame; tests and fuzzers call it on spans.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace wardgate::parse {

// Why a frame could not be parsed completely. Every value is a named drop/count
// reason in the dataplane counters, so keep names stable (they appear in JSON).
enum class ParseError : uint8_t {
  kNone = 0,
  kEthTruncated,           // shorter than an Ethernet header
  kVlanTruncated,          // 802.1Q/802.1ad tag cut short
  kVlanTooManyTags,        // more than kMaxVlanTags stacked tags
  kArpTruncated,
  kArpMalformed,           // Ethernet/IPv4 ARP with inconsistent hlen/plen
  kIpv4Truncated,          // fewer than 20 bytes, or header longer than the frame
  kIpv4BadVersion,
  kIpv4BadHeaderLength,    // IHL < 5
  kIpv4BadTotalLength,     // total length < header length or > bytes present
  kIpv4BadOptions,         // option length runs past the header or is < 2
  kIpv6Truncated,
  kIpv6BadVersion,
  kIpv6BadPayloadLength,   // payload length > bytes present
  kIpv6ExtTruncated,       // extension header runs past the packet
  kIpv6ExtTooMany,         // more than kMaxIpv6ExtHeaders extension headers
  kTcpTruncated,
  kTcpBadDataOffset,       // data offset < 5 or past the segment
  kTcpBadOptions,          // option length runs past the header or is < 2
  kUdpTruncated,
  kUdpBadLength,           // UDP length < 8 or > bytes present
  kIcmpTruncated,
  kIcmpv6Truncated,
  kCount
};

inline constexpr size_t kParseErrorCount = static_cast<size_t>(ParseError::kCount);
inline constexpr int kMaxVlanTags = 2;         // QinQ: outer 802.1ad + inner 802.1Q
inline constexpr int kMaxIpv6ExtHeaders = 8;   // bound work per packet (RFC 8200 4.1 order)

// Stable snake_case name of an error, e.g. "ipv4_truncated"; "none" for kNone.
std::string_view ParseErrorName(ParseError e);

enum class L3 : uint8_t { kNone = 0, kArp, kIpv4, kIpv6, kOther };

// IP protocol numbers used by the pipeline (IANA).
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoIcmpv6 = 58;

// TCP flag bits (RFC 9293 3.1).
inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08,
                         kTcpAck = 0x10, kTcpUrg = 0x20, kTcpEce = 0x40, kTcpCwr = 0x80;

// A parsed view of a frame. Offsets are from the first byte of the frame; fields of
// layers that were not reached keep their zero value. Addresses are in network byte
// order as on the wire (IPv4 in the first 4 bytes); numeric fields are host order.
struct PacketView {
  uint16_t frame_len = 0;
  // L2
  uint16_t ether_type = 0;       // innermost EtherType after VLAN tags
  uint8_t vlan_count = 0;
  std::array<uint16_t, kMaxVlanTags> vlan_ids{};  // outermost first, 12-bit VID
  // L3
  L3 l3 = L3::kNone;
  uint16_t l3_offset = 0;
  uint16_t l4_offset = 0;        // first byte after IP header + extension headers
  uint8_t ip_proto = 0;          // upper-layer protocol (after IPv6 extension headers)
  uint8_t ttl = 0;               // IPv4 TTL or IPv6 hop limit
  bool ipv4_has_options = false;
  bool is_fragment = false;      // IPv4 MF/offset or IPv6 Fragment header present
  bool is_first_fragment = false;  // offset 0: L4 header present
  // Fragments only (all zero otherwise): what reassembly keys and places the data by.
  bool frag_more = false;        // IPv4 MF / IPv6 M flag: more fragments follow
  uint16_t frag_offset = 0;      // fragment offset in bytes (13-bit field * 8)
  uint16_t frag_len = 0;         // fragment data bytes: IPv4 total length - header length;
                                 // IPv6 payload bytes after the Fragment header (the
                                 // fragmentable part, incl. any extension headers after it)
  uint32_t frag_id = 0;          // IPv4 16-bit identification, IPv6 32-bit identification
  std::array<uint8_t, 16> src_addr{};
  std::array<uint8_t, 16> dst_addr{};
  // ARP (Ethernet/IPv4)
  uint16_t arp_op = 0;
  // L4
  uint16_t src_port = 0;         // TCP/UDP; ICMP: 0
  uint16_t dst_port = 0;
  uint8_t tcp_flags = 0;
  uint32_t tcp_seq = 0;
  uint32_t tcp_ack = 0;
  uint16_t tcp_window = 0;
  uint16_t tcp_mss = 0;          // from options, 0 if absent
  uint8_t tcp_wscale = 0xff;     // 0xff if absent
  bool tcp_sack_permitted = false;
  bool tcp_has_timestamp = false;
  // Options that parse but are known stack-crash triggers or nonsense (URGENT/11 class):
  // window scale shift > 14, MSS 0 on a SYN, SACK length not 2 + 8n (n >= 1), a second
  // window scale, a second MSS after a non-zero one. Wrong lengths of MSS/WS/SACK-permitted/timestamp are parse
  // errors (kTcpBadOptions), not this flag. hygiene::BadTcpOptions() combines both.
  bool tcp_options_suspicious = false;
  uint16_t tcp_urgent_ptr = 0;   // raw urgent pointer (meaningful with kTcpUrg)
  uint8_t icmp_type = 0;         // ICMP or ICMPv6
  uint8_t icmp_code = 0;
  bool icmp_echo = false;        // echo request/reply (ICMP 8/0, ICMPv6 128/129): id and seq below
  uint16_t icmp_id = 0;
  uint16_t icmp_seq = 0;
  // Payload after the L4 header (or after L3 for other protocols / later fragments).
  uint16_t payload_offset = 0;
  uint16_t payload_len = 0;
};

// Parses Ethernet, up to two VLAN tags, ARP, IPv4 (options, fragments), IPv6
// (extension headers, fragments), TCP (options), UDP, ICMP and ICMPv6.
// Returns kNone on success; on error, `out` holds what was parsed before the fault.
// Unknown EtherTypes / IP protocols are not errors: parsing stops at that layer.
ParseError ParsePacket(std::span<const uint8_t> frame, PacketView& out);

}  // namespace wardgate::parse
