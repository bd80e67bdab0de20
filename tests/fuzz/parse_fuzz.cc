// libFuzzer target for ParsePacket: arbitrary bytes must never read out of bounds
// (ASan), hit UB (UBSan), or produce a view whose offsets point outside the frame.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "dataplane/parse/packet.h"

namespace {

using wardgate::parse::kMaxIpv6ExtHeaders;
using wardgate::parse::kMaxVlanTags;
using wardgate::parse::kProtoTcp;
using wardgate::parse::kProtoUdp;
using wardgate::parse::L3;
using wardgate::parse::PacketView;
using wardgate::parse::ParseError;

// Not assert(): it must fire in NDEBUG builds too.
#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

bool SameView(const PacketView& a, const PacketView& b) {
  return a.frame_len == b.frame_len && a.ether_type == b.ether_type &&
         a.vlan_count == b.vlan_count && a.vlan_ids == b.vlan_ids && a.l3 == b.l3 &&
         a.l3_offset == b.l3_offset && a.l4_offset == b.l4_offset && a.ip_proto == b.ip_proto &&
         a.ttl == b.ttl && a.ipv4_has_options == b.ipv4_has_options &&
         a.is_fragment == b.is_fragment && a.is_first_fragment == b.is_first_fragment &&
         a.src_addr == b.src_addr && a.dst_addr == b.dst_addr && a.arp_op == b.arp_op &&
         a.src_port == b.src_port && a.dst_port == b.dst_port && a.tcp_flags == b.tcp_flags &&
         a.tcp_seq == b.tcp_seq && a.tcp_ack == b.tcp_ack && a.tcp_window == b.tcp_window &&
         a.tcp_mss == b.tcp_mss && a.tcp_wscale == b.tcp_wscale &&
         a.tcp_sack_permitted == b.tcp_sack_permitted &&
         a.tcp_has_timestamp == b.tcp_has_timestamp && a.icmp_type == b.icmp_type &&
         a.icmp_code == b.icmp_code && a.payload_offset == b.payload_offset &&
         a.payload_len == b.payload_len && a.frag_offset == b.frag_offset && a.frag_more == b.frag_more &&
         a.frag_id == b.frag_id && a.frag_len == b.frag_len && a.tcp_options_suspicious == b.tcp_options_suspicious &&
         a.tcp_urgent_ptr == b.tcp_urgent_ptr;
}

void CheckInvariants(const uint8_t* data, size_t size, ParseError err, const PacketView& v) {
  const size_t frame_len = size < 65535 ? size : 65535;
  FUZZ_CHECK(v.frame_len == frame_len);
  FUZZ_CHECK(static_cast<size_t>(err) < wardgate::parse::kParseErrorCount);
  FUZZ_CHECK(wardgate::parse::ParseErrorName(err) != "unknown");

  // Hold on every result, including partial views after an error.
  FUZZ_CHECK(v.vlan_count <= kMaxVlanTags);
  for (int i = 0; i < kMaxVlanTags; ++i) {
    FUZZ_CHECK(v.vlan_ids[i] <= 0x0fff);
    if (i >= v.vlan_count) FUZZ_CHECK(v.vlan_ids[i] == 0);
  }
  FUZZ_CHECK(v.l3_offset <= v.frame_len);
  FUZZ_CHECK(v.l4_offset <= v.frame_len);
  FUZZ_CHECK(size_t{v.payload_offset} + v.payload_len <= v.frame_len);
  FUZZ_CHECK(!v.is_first_fragment || v.is_fragment);
  if (v.l3 != L3::kNone) FUZZ_CHECK(v.l3_offset == 14 + 4 * size_t{v.vlan_count});

  if (err != ParseError::kNone) {
    // Payload is only set once the whole frame parsed.
    FUZZ_CHECK(v.payload_offset == 0 && v.payload_len == 0);
    return;
  }

  FUZZ_CHECK(frame_len >= 14);
  FUZZ_CHECK(v.l3 != L3::kNone);
  switch (v.l3) {
    case L3::kIpv4:
    case L3::kIpv6: {
      const size_t min_l3 = v.l3 == L3::kIpv4 ? 20 : 40;
      FUZZ_CHECK(v.l4_offset >= v.l3_offset + min_l3);
      if (v.l3 == L3::kIpv6) {
        FUZZ_CHECK(v.l4_offset <= v.l3_offset + 40 + 8 * 255 * kMaxIpv6ExtHeaders);
      } else {
        FUZZ_CHECK(v.l4_offset <= v.l3_offset + 60);
        FUZZ_CHECK(v.ipv4_has_options == (v.l4_offset > v.l3_offset + 20));
      }
      FUZZ_CHECK(v.payload_offset >= v.l4_offset);
      const bool has_l4 = !v.is_fragment || v.is_first_fragment;
      if (!has_l4) {
        // Later fragments: no L4 fields, payload starts right after IP.
        FUZZ_CHECK(v.payload_offset == v.l4_offset);
        FUZZ_CHECK(v.src_port == 0 && v.dst_port == 0 && v.tcp_flags == 0);
      } else if (v.ip_proto == kProtoTcp) {
        const size_t doff = static_cast<size_t>(data[v.l4_offset + 12] >> 4) * 4;
        FUZZ_CHECK(v.payload_offset == v.l4_offset + doff);
        FUZZ_CHECK(doff >= 20);
      } else if (v.ip_proto == kProtoUdp) {
        FUZZ_CHECK(v.payload_offset == v.l4_offset + 8);
      }
      break;
    }
    case L3::kArp:
      FUZZ_CHECK(frame_len >= v.l3_offset + size_t{8});
      if (v.arp_op != 0) FUZZ_CHECK(frame_len >= v.l3_offset + size_t{28});
      FUZZ_CHECK(v.payload_len == 0 && v.l4_offset == 0);
      break;
    case L3::kOther:
      FUZZ_CHECK(v.payload_len == 0 && v.l4_offset == 0);
      break;
    case L3::kNone:
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PacketView v;
  const ParseError err = wardgate::parse::ParsePacket({data, size}, v);
  CheckInvariants(data, size, err, v);

  // Deterministic, and independent of what the view held before.
  PacketView dirty;
  std::memset(static_cast<void*>(&dirty), 0xa5, sizeof(dirty));
  FUZZ_CHECK(wardgate::parse::ParsePacket({data, size}, dirty) == err);
  FUZZ_CHECK(SameView(v, dirty));

  // A successful parse is bounded by the IP/ARP lengths, so one more trailing byte
  // (from an unaligned copy) changes nothing but frame_len.
  if (err == ParseError::kNone && size < 65535) {
    auto copy = std::make_unique<uint8_t[]>(size + 2);
    std::memcpy(copy.get() + 1, data, size);
    copy[size + 1] = 0xff;
    PacketView longer;
    FUZZ_CHECK(wardgate::parse::ParsePacket({copy.get() + 1, size + 1}, longer) == err);
    FUZZ_CHECK(longer.frame_len == size + 1);
    longer.frame_len = v.frame_len;
    FUZZ_CHECK(SameView(v, longer));
  }
  return 0;
}
