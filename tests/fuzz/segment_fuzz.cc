// libFuzzer target for the per-packet segmentation code that reads frame bytes beyond
// the parser: device learning (ARP, DHCP options, neighbour advertisements), the
// fragment guard, the TCP-option hygiene check and application recognition. Every
// input is seen from both sides of the bridge. Must never read out of bounds.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dataplane/device/device_table.h"
#include "dataplane/hygiene/fragment_guard.h"
#include "dataplane/hygiene/tcp_options.h"
#include "dataplane/parse/packet.h"
#include "dataplane/segment/segmentation.h"

#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wardgate;
  static device::DeviceTable devices(64);  // small: the fuzzer also fills it up
  static hygiene::FragmentGuard fragments(hygiene::FragmentGuardConfig{.capacity = 64});
  static uint64_t now = 1;
  // An exact-size copy, so ASan sees any read past the frame.
  std::vector<uint8_t> frame(data, data + size);
  parse::PacketView v;
  const auto err = parse::ParsePacket(std::span<const uint8_t>(frame.data(), frame.size()), v);
  now += 1000000;
  (void)hygiene::BadTcpOptions(err, v);
  if (err == parse::ParseError::kNone) {
    for (bool from_device : {true, false}) {
      const uint32_t slot = devices.Observe(v, frame.data(), uint32_t(frame.size()), from_device, 0, now);
      FUZZ_CHECK(slot == device::kNoDevice || slot < devices.capacity());
      if (slot != device::kNoDevice) {
        devices.NotePeer(slot, v.dst_addr, v.l3 == parse::L3::kIpv6);
        devices.NoteService(slot, v.ip_proto, v.src_port);
      }
    }
    if (v.is_fragment) (void)fragments.Check(v, now);
    if (v.payload_offset <= frame.size()) {
      const size_t len = std::min<size_t>(v.payload_len, frame.size() - v.payload_offset);
      (void)segment::DetectApp(frame.data() + v.payload_offset, len);
    }
  }
  std::vector<device::DeviceRecord> snap;
  devices.Snapshot(&snap);
  FUZZ_CHECK(snap.size() <= devices.capacity());
  return 0;
}
