// EVE records: Suricata's field names and formats, and the event ring's drop-not-block.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "dataplane/events/alert.h"
#include "dataplane/events/event_ring.h"

namespace wardgate::events {
namespace {

AlertRecord Sample(const rules::Rule& rule) {
  AlertRecord r;
  r.ts_ns = 1764483200123456789ull;  // 2025-11-30T06:13:20.123456
  r.flow_id = 42;
  r.rule = &rule;
  r.ip_proto = 6;
  r.src_addr = {10, 77, 0, 11};
  r.dst_addr = {10, 77, 0, 21};
  r.src_port = 40000;
  r.dst_port = 2575;
  const std::string payload = "GOOD\x01";
  std::copy(payload.begin(), payload.end(), r.payload.begin());
  r.payload_len = uint16_t(payload.size());
  r.packet = {1, 2, 3};
  r.packet_len = 3;
  return r;
}

TEST(Eve, AlertHasSuricataFields) {
  rules::Rule rule;
  rule.sid = 9000001;
  rule.gid = 1;
  rule.rev = 2;
  rule.msg = "HL7 \"test\"";
  rule.category = "Potentially Bad Traffic";
  rule.priority = 2;
  const auto j = nlohmann::json::parse(AlertJson(Sample(rule), true, true));
  EXPECT_EQ(j["timestamp"], "2025-11-30T06:13:20.123456+0000");
  EXPECT_EQ(j["event_type"], "alert");
  EXPECT_EQ(j["flow_id"], 42);
  EXPECT_EQ(j["src_ip"], "10.77.0.11");
  EXPECT_EQ(j["src_port"], 40000);
  EXPECT_EQ(j["dest_ip"], "10.77.0.21");
  EXPECT_EQ(j["dest_port"], 2575);
  EXPECT_EQ(j["proto"], "TCP");
  EXPECT_EQ(j["pkt_src"], "wire/pcap");
  EXPECT_EQ(j["alert"]["action"], "allowed");
  EXPECT_EQ(j["alert"]["gid"], 1);
  EXPECT_EQ(j["alert"]["signature_id"], 9000001);
  EXPECT_EQ(j["alert"]["rev"], 2);
  EXPECT_EQ(j["alert"]["signature"], "HL7 \"test\"");
  EXPECT_EQ(j["alert"]["category"], "Potentially Bad Traffic");
  EXPECT_EQ(j["alert"]["severity"], 2);
  EXPECT_EQ(j["payload"], "R09PRAE=");
  EXPECT_EQ(j["payload_printable"], "GOOD.");
  EXPECT_EQ(j["packet"], "AQID");
}

TEST(Eve, BlockedAlertAndDropRecord) {
  rules::Rule rule;
  rule.sid = 7;
  auto r = Sample(rule);
  r.blocked = true;
  r.v6 = true;
  r.src_addr = {0xfd, 0x77};
  r.src_addr[15] = 0x11;
  EXPECT_EQ(nlohmann::json::parse(AlertJson(r, false, false))["alert"]["action"], "blocked");
  const auto d = nlohmann::json::parse(DropJson(r));
  EXPECT_EQ(d["event_type"], "drop");
  EXPECT_EQ(d["src_ip"], "fd77::11");
  EXPECT_FALSE(d.contains("payload"));
}

// Less important events (policy records) leave room for the ones that must get through.
TEST(EventRing, KeepFreeLeavesRoomForOthers) {
  EventRing<int> ring(8);
  EXPECT_EQ(ring.capacity(), 8u);
  int pushed = 0;
  while (int* slot = ring.Reserve(2)) {
    *slot = pushed++;
    ring.Commit();
  }
  EXPECT_EQ(pushed, 6) << "stops with 2 slots free";
  EXPECT_EQ(ring.lost(), 1u);
  ASSERT_NE(ring.Reserve(), nullptr) << "an ordinary event still gets a slot";
  ring.Commit();
  ASSERT_NE(ring.Reserve(), nullptr);
  ring.Commit();
  EXPECT_EQ(ring.Reserve(), nullptr) << "now full";
}

TEST(EventRing, FullRingDropsAndCountsNeverBlocks) {
  EventRing<int> ring(4);
  for (int i = 0; i < 4; ++i) {
    int* slot = ring.Reserve();
    ASSERT_NE(slot, nullptr);
    *slot = i;
    ring.Commit();
  }
  EXPECT_EQ(ring.Reserve(), nullptr);
  EXPECT_EQ(ring.lost(), 1u);
  for (int i = 0; i < 4; ++i) {
    ASSERT_NE(ring.Peek(), nullptr);
    EXPECT_EQ(*ring.Peek(), i);
    ring.Release();
  }
  EXPECT_EQ(ring.Peek(), nullptr);
  EXPECT_NE(ring.Reserve(), nullptr);
}

}  // namespace
}  // namespace wardgate::events
