// The quarantine registry and the applied-state snapshot: parsers (what an operator
// gets back for each mistake), the registry's bookkeeping on a fake clock, and the
// snapshot's round trip, atomicity and refusals.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "dataplane/quarantine/registry.h"
#include "dataplane/quarantine/snapshot.h"

namespace wardgate::quarantine {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSec = 1000000000ull;
constexpr uint64_t kT0 = 1714564800ull * kSec;  // 2024-05-01T12:00:00Z

Selector Sel(const std::string& text) {
  Selector s;
  std::string why;
  EXPECT_TRUE(ParseSelector(text, &s, &why)) << text << ": " << why;
  return s;
}

// ParseSelector's error for `text` (and that it is refused).
std::string SelectorError(const std::string& text) {
  Selector s;
  std::string why;
  EXPECT_FALSE(ParseSelector(text, &s, &why)) << text << " accepted as " << s.Text();
  return why;
}

std::string DurationError(const std::string& text) {
  uint64_t ns = 12345;
  std::string why;
  EXPECT_FALSE(ParseDuration(text, &ns, &why)) << text << " accepted as " << ns;
  EXPECT_EQ(ns, 12345u) << "output written on failure";
  return why;
}

uint64_t Duration(const std::string& text) {
  uint64_t ns = 12345;
  std::string why;
  EXPECT_TRUE(ParseDuration(text, &ns, &why)) << text << ": " << why;
  return ns;
}

// ---------------------------------------------------------------- levels

TEST(QuarantineLevel, NamesAndParse) {
  EXPECT_STREQ(LevelName(Level::kIsolate), "isolate");
  EXPECT_STREQ(LevelName(Level::kContain), "contain");
  Level l = Level::kContain;
  std::string why;
  ASSERT_TRUE(ParseLevel("isolate", &l, &why));
  EXPECT_EQ(l, Level::kIsolate);
  ASSERT_TRUE(ParseLevel("contain", &l, &why));
  EXPECT_EQ(l, Level::kContain);
}

TEST(QuarantineLevel, RefusesOthersNamingThem) {
  for (const char* bad : {"quarantine", "Isolate", "CONTAIN", "", "isolate "}) {
    SCOPED_TRACE(bad);
    Level l = Level::kContain;
    std::string why;
    EXPECT_FALSE(ParseLevel(bad, &l, &why));
    EXPECT_EQ(l, Level::kContain);
    EXPECT_NE(why.find(std::string("'") + bad + "'"), std::string::npos) << why;
    EXPECT_NE(why.find("isolate or contain"), std::string::npos) << why;
  }
}

// ---------------------------------------------------------------- durations

TEST(QuarantineDuration, Accepts) {
  EXPECT_EQ(Duration(""), 0u);
  EXPECT_EQ(Duration("0"), 0u);
  EXPECT_EQ(Duration("0s"), 0u);
  EXPECT_EQ(Duration("90s"), 90 * kSec);
  EXPECT_EQ(Duration("15m"), 15 * 60 * kSec);
  EXPECT_EQ(Duration("2h"), 2 * 3600 * kSec);
  EXPECT_EQ(Duration("1d"), 86400 * kSec);
  EXPECT_EQ(Duration("1h30m"), 5400 * kSec);
  EXPECT_EQ(Duration("1d2h3m4s5ms"), ((86400 + 7200 + 180 + 4) * 1000 + 5) * 1000000ull);
  EXPECT_EQ(Duration("500ms"), 500000000u);
  EXPECT_EQ(Duration("36500d"), kMaxDurationNs);
}

TEST(QuarantineDuration, BareNumberAsksForAUnit) {
  const std::string why = DurationError("30");
  EXPECT_NE(why.find("'30'"), std::string::npos) << why;
  EXPECT_NE(why.find("seconds or minutes"), std::string::npos) << why;
  EXPECT_NE(why.find("30s"), std::string::npos) << why;
}

TEST(QuarantineDuration, RefusesWithReasons) {
  EXPECT_NE(DurationError("5x").find("unknown unit 'x'"), std::string::npos);
  EXPECT_NE(DurationError("5mo").find("unknown unit 'mo'"), std::string::npos);
  EXPECT_NE(DurationError("-5m").find("negative"), std::string::npos);
  EXPECT_NE(DurationError("+5m").find("sign"), std::string::npos);
  EXPECT_NE(DurationError("99999999999999h").find("too long"), std::string::npos);
  EXPECT_NE(DurationError("99999999999999999999999s").find("too long"), std::string::npos);
  EXPECT_NE(DurationError("36500d1ns").find("too long"), std::string::npos);
  EXPECT_NE(DurationError("1.5h").find("whole numbers"), std::string::npos);
  EXPECT_NE(DurationError("1h30").find("no unit"), std::string::npos);
  EXPECT_NE(DurationError("30m1h").find("largest to the smallest"), std::string::npos);
  EXPECT_NE(DurationError("1h1h").find("largest to the smallest"), std::string::npos);
  EXPECT_NE(DurationError("15m ").find("unexpected ' '"), std::string::npos);
  EXPECT_NE(DurationError("15M").find("unexpected 'M'"), std::string::npos);
  EXPECT_NE(DurationError("h").find("start with a number"), std::string::npos);
  EXPECT_NE(DurationError(" 5m").find("start with a number"), std::string::npos);
  // Every message names the text it refused.
  EXPECT_NE(DurationError("5x").find("'5x'"), std::string::npos);
}

TEST(QuarantineDuration, TextIsCanonicalAndReadsBack) {
  EXPECT_EQ(DurationText(0), "0");
  EXPECT_EQ(DurationText(90 * kSec), "1m30s");
  EXPECT_EQ(DurationText(5400 * kSec), "1h30m");
  EXPECT_EQ(DurationText(86400 * kSec), "1d");
  EXPECT_EQ(DurationText(500000000), "500ms");
  EXPECT_EQ(DurationText(1500), "1us500ns");
  for (const uint64_t ns : std::initializer_list<uint64_t>{1, 90 * kSec, 86400 * kSec + 1, 123456789012345ull, kMaxDurationNs}) {
    EXPECT_EQ(Duration(DurationText(ns)), ns) << DurationText(ns);
  }
}

// ---------------------------------------------------------------- selectors

TEST(QuarantineSelector, Mac) {
  for (const char* text : {"02:77:00:00:00:11", "02-77-00-00-00-11", "02:77:00:00:00:11", "02:77:00:00:00:11"}) {
    const Selector s = Sel(text);
    EXPECT_EQ(s.kind, Selector::Kind::kMac);
    EXPECT_EQ(s.Text(), "02:77:00:00:00:11");
    EXPECT_EQ(s.mac[5], 0x11);
  }
  const Selector upper = Sel("AA:BB:CC:0d:0E:ff");
  EXPECT_EQ(upper.Text(), "aa:bb:cc:0d:0e:ff");
  EXPECT_EQ(upper, Sel("aa-bb-cc-0d-0e-ff"));
  EXPECT_FALSE(upper == Sel("aa:bb:cc:0d:0e:fe"));
}

TEST(QuarantineSelector, Ip) {
  const Selector v4 = Sel("10.77.0.11");
  EXPECT_EQ(v4.kind, Selector::Kind::kIp);
  EXPECT_FALSE(v4.ip.v6);
  EXPECT_EQ(v4.ip.len, 32);
  EXPECT_EQ(v4.Text(), "10.77.0.11");
  const Selector v6 = Sel("FD77:0:0::11");
  EXPECT_EQ(v6.kind, Selector::Kind::kIp);
  EXPECT_TRUE(v6.ip.v6);
  EXPECT_EQ(v6.ip.len, 128);
  EXPECT_EQ(v6.Text(), "fd77::11");
  EXPECT_EQ(v6, Sel("fd77::11"));
  EXPECT_FALSE(v4 == Sel("10.77.0.12"));
  // Eight groups of two hex digits is an IPv6 address, not a long MAC.
  EXPECT_EQ(Sel("02:77:00:00:00:11:22:33").kind, Selector::Kind::kIp);
}

TEST(QuarantineSelector, Id) {
  const Selector a = Sel("id:17");
  EXPECT_EQ(a.kind, Selector::Kind::kId);
  EXPECT_EQ(a.id, 17u);
  EXPECT_EQ(a.Text(), "id:17");
  EXPECT_EQ(Sel("17"), a);
  EXPECT_EQ(Sel("18446744073709551615").id, 18446744073709551615ull);
}

TEST(QuarantineSelector, RefusesNamingTheText) {
  std::string why = SelectorError("zz:77:00:00:00:11");
  EXPECT_NE(why.find("'zz:77:00:00:00:11' is not a MAC, an IP address or a device id"), std::string::npos) << why;
  why = SelectorError("02:77:00:00:00");
  EXPECT_NE(why.find("'02:77:00:00:00'"), std::string::npos) << why;
  EXPECT_NE(why.find("5 bytes"), std::string::npos) << why;
  why = SelectorError("02:77:00:00:00:11:22");
  EXPECT_NE(why.find("7 bytes"), std::string::npos) << why;
  why = SelectorError("02:77-00:00:00:11");  // mixed separators
  EXPECT_NE(why.find("'02:77-00:00:00:11' is not a MAC"), std::string::npos) << why;
  why = SelectorError("10.0.0.0/8");
  EXPECT_NE(why.find("'10.0.0.0/8' is a prefix"), std::string::npos) << why;
  why = SelectorError("10.77.0.11/32");
  EXPECT_NE(why.find("is a prefix"), std::string::npos) << why;
  why = SelectorError("10.77.0.256");
  EXPECT_NE(why.find("'10.77.0.256' is not a MAC, an IP address or a device id"), std::string::npos) << why;
  why = SelectorError("pump-3");
  EXPECT_NE(why.find("'pump-3'"), std::string::npos) << why;
  why = SelectorError("id:");
  EXPECT_NE(why.find("'id:' is not a device id"), std::string::npos) << why;
  why = SelectorError("id:abc");
  EXPECT_NE(why.find("'id:abc' is not a device id"), std::string::npos) << why;
  why = SelectorError("id:-3");
  EXPECT_NE(why.find("not a device id"), std::string::npos) << why;
  why = SelectorError("18446744073709551616");
  EXPECT_NE(why.find("too large"), std::string::npos) << why;
  why = SelectorError("id:0");
  EXPECT_NE(why.find("start at 1"), std::string::npos) << why;
  why = SelectorError("");
  EXPECT_NE(why.find("no device"), std::string::npos) << why;
  why = SelectorError(" 10.77.0.11");
  EXPECT_NE(why.find("' 10.77.0.11'"), std::string::npos) << why;
}

// ---------------------------------------------------------------- registry

TEST(QuarantineRegistry, AddCreatesThenUpdatesInPlace) {
  Registry r;
  const Selector pump = Sel("02:77:00:00:00:11");
  const auto a = r.Add(pump, Level::kIsolate, "beaconing", "wardctl", kT0, 0);
  ASSERT_TRUE(a.ok()) << a.error;
  EXPECT_TRUE(a.created);
  EXPECT_TRUE(a.changed);
  EXPECT_EQ(a.entry.device, pump);
  EXPECT_EQ(a.entry.since_ns, kT0);
  EXPECT_EQ(a.entry.expires_ns, 0u);
  EXPECT_EQ(a.entry.seq, r.seq());
  EXPECT_EQ(r.size(), 1u);

  // Same again, later: nothing changes, not even since_ns or seq.
  const uint64_t seq = r.seq();
  const auto b = r.Add(pump, Level::kIsolate, "beaconing", "wardctl", kT0 + 60 * kSec, 0);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b.created);
  EXPECT_FALSE(b.changed);
  EXPECT_EQ(b.entry.since_ns, kT0);
  EXPECT_EQ(r.seq(), seq);
  EXPECT_EQ(r.size(), 1u);

  // A different level, reason, actor and a TTL: updated in place, since_ns kept.
  const auto c = r.Add(pump, Level::kContain, "life-critical", "rule:sid 2100042", kT0 + 120 * kSec, 600 * kSec);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c.created);
  EXPECT_TRUE(c.changed);
  EXPECT_GT(r.seq(), seq);
  const Entry* e = r.Find(pump);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->level, Level::kContain);
  EXPECT_EQ(e->reason, "life-critical");
  EXPECT_EQ(e->actor, "rule:sid 2100042");
  EXPECT_EQ(e->since_ns, kT0);
  EXPECT_EQ(e->expires_ns, kT0 + 720 * kSec);
  EXPECT_EQ(e->seq, r.seq());
  EXPECT_EQ(r.NextExpiry(), kT0 + 720 * kSec);

  // Quarantined again without a TTL: the TTL goes.
  const auto d = r.Add(pump, Level::kContain, "life-critical", "rule:sid 2100042", kT0 + 180 * kSec, 0);
  EXPECT_TRUE(d.changed);
  EXPECT_EQ(r.Find(pump)->expires_ns, 0u);
  EXPECT_EQ(r.NextExpiry(), std::nullopt);
  EXPECT_TRUE(r.Expire(kT0 + 10000 * kSec).empty());
  EXPECT_EQ(r.size(), 1u);
}

TEST(QuarantineRegistry, MacAndIpAreDistinctDevicesAndIdsAreRefused) {
  Registry r;
  ASSERT_TRUE(r.Add(Sel("02:77:00:00:00:11"), Level::kIsolate, "", "wardctl", kT0, 0).ok());
  ASSERT_TRUE(r.Add(Sel("10.77.0.11"), Level::kIsolate, "", "wardctl", kT0, 0).ok());
  ASSERT_TRUE(r.Add(Sel("fd77::11"), Level::kContain, "", "wardctl", kT0, 0).ok());
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(r.Find(Sel("fd77:0::11"))->level, Level::kContain);
  EXPECT_EQ(r.Find(Sel("10.77.0.12")), nullptr);

  const uint64_t seq = r.seq();
  const auto id = r.Add(Sel("id:17"), Level::kIsolate, "", "wardctl", kT0, 0);
  EXPECT_FALSE(id.ok());
  EXPECT_NE(id.error.find("id:17"), std::string::npos) << id.error;
  EXPECT_NE(id.error.find("MAC"), std::string::npos) << id.error;
  Selector net = Selector::Ip(config::Prefix{});
  ASSERT_TRUE(config::ParsePrefix("10.77.0.0/24", &net.ip));
  const auto prefix = r.Add(net, Level::kIsolate, "", "wardctl", kT0, 0);
  EXPECT_FALSE(prefix.ok());
  EXPECT_NE(prefix.error.find("10.77.0.0/24"), std::string::npos) << prefix.error;
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(r.seq(), seq);
  EXPECT_EQ(r.Find(Sel("id:17")), nullptr);
  EXPECT_EQ(r.Remove(Sel("id:17")), std::nullopt);
}

TEST(QuarantineRegistry, RemoveAndRemoveUnknown) {
  Registry r;
  const Selector pump = Sel("02:77:00:00:00:11");
  ASSERT_TRUE(r.Add(pump, Level::kIsolate, "why", "wardctl", kT0, 60 * kSec).ok());
  const uint64_t seq = r.seq();
  EXPECT_EQ(r.Remove(Sel("02:77:00:00:00:12")), std::nullopt);
  EXPECT_EQ(r.seq(), seq) << "removing an unknown device is no change";
  const auto removed = r.Remove(Sel("02-77-00-00-00-11"));
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->reason, "why");
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.Find(pump), nullptr);
  EXPECT_GT(r.seq(), seq);
  EXPECT_EQ(r.NextExpiry(), std::nullopt) << "the removed entry's TTL must not linger";
  EXPECT_TRUE(r.Expire(kT0 + 3600 * kSec).empty());
  EXPECT_EQ(r.Remove(pump), std::nullopt) << "second release";
}

TEST(QuarantineRegistry, ExpiryOnAFakeClock) {
  Registry r;
  const Selector a = Sel("02:77:00:00:00:0a"), b = Sel("02:77:00:00:00:0b"), c = Sel("10.77.0.12");
  ASSERT_TRUE(r.Add(a, Level::kIsolate, "", "wardctl", kT0, 60 * kSec).ok());       // expires kT0+60s
  ASSERT_TRUE(r.Add(b, Level::kContain, "", "wardctl", kT0 + kSec, 30 * kSec).ok());  // expires kT0+31s
  ASSERT_TRUE(r.Add(c, Level::kIsolate, "", "wardctl", kT0, 0).ok());                // never
  EXPECT_EQ(r.NextExpiry(), kT0 + 31 * kSec);

  uint64_t seq = r.seq();
  EXPECT_TRUE(r.Expire(kT0 + 31 * kSec - 1).empty()) << "one nanosecond before";
  EXPECT_EQ(r.seq(), seq);
  EXPECT_EQ(r.size(), 3u);

  auto gone = r.Expire(kT0 + 31 * kSec);  // exactly at the expiry instant
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].device, b);
  EXPECT_GT(r.seq(), seq);
  EXPECT_EQ(r.Find(b), nullptr);
  EXPECT_EQ(r.NextExpiry(), kT0 + 60 * kSec);

  seq = r.seq();
  EXPECT_TRUE(r.Expire(kT0 + 59 * kSec).empty());
  EXPECT_EQ(r.seq(), seq);
  gone = r.Expire(kT0 + 3600 * kSec);  // well after
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].device, a);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_NE(r.Find(c), nullptr) << "no TTL, never expires";
  EXPECT_EQ(r.NextExpiry(), std::nullopt);
}

TEST(QuarantineRegistry, ExpireReturnsAllDueInExpiryOrder) {
  Registry r;
  for (int i = 0; i < 10; ++i) {
    const Selector s = Sel("02:77:00:00:00:" + std::string(1, char('0' + i)) + "0");
    ASSERT_TRUE(r.Add(s, Level::kIsolate, "", "x", kT0, uint64_t(10 - i) * kSec).ok());
  }
  const auto gone = r.Expire(kT0 + 5 * kSec);
  ASSERT_EQ(gone.size(), 5u);
  for (size_t i = 1; i < gone.size(); ++i) EXPECT_LE(gone[i - 1].expires_ns, gone[i].expires_ns);
  EXPECT_EQ(gone[0].device.Text(), "02:77:00:00:00:90");
  EXPECT_EQ(r.size(), 5u);
  EXPECT_EQ(r.NextExpiry(), kT0 + 6 * kSec);
}

TEST(QuarantineRegistry, TtlSaturatesInsteadOfWrapping) {
  Registry r;
  const auto a = r.Add(Sel("10.77.0.11"), Level::kIsolate, "", "x", UINT64_MAX - 5, 100);
  ASSERT_TRUE(a.ok()) << a.error;
  EXPECT_EQ(a.entry.expires_ns, UINT64_MAX);
  EXPECT_TRUE(r.Expire(UINT64_MAX - 1).empty());
}

TEST(QuarantineRegistry, ListIsOrderedBySinceThenText) {
  Registry r;
  ASSERT_TRUE(r.Add(Sel("10.77.0.12"), Level::kIsolate, "", "x", kT0 + 2, 0).ok());
  ASSERT_TRUE(r.Add(Sel("02:77:00:00:00:22"), Level::kIsolate, "", "x", kT0 + 1, 0).ok());
  ASSERT_TRUE(r.Add(Sel("02:77:00:00:00:11"), Level::kIsolate, "", "x", kT0 + 1, 0).ok());
  ASSERT_TRUE(r.Add(Sel("10.77.0.1"), Level::kIsolate, "", "x", kT0, 0).ok());
  // An update keeps the original position (since_ns does not move).
  ASSERT_TRUE(r.Add(Sel("10.77.0.1"), Level::kContain, "", "x", kT0 + 9, 0).changed);
  std::vector<std::string> order;
  for (const auto& e : r.List()) order.push_back(e.device.Text());
  EXPECT_EQ(order, (std::vector<std::string>{"10.77.0.1", "02:77:00:00:00:11", "02:77:00:00:00:22", "10.77.0.12"}));
}

TEST(QuarantineRegistry, SeqIncreasesOnlyOnChanges) {
  Registry r;
  EXPECT_EQ(r.seq(), 0u);
  const Selector s = Sel("02:77:00:00:00:11");
  r.Add(s, Level::kIsolate, "a", "x", kT0, 0);
  const uint64_t s1 = r.seq();
  EXPECT_GT(s1, 0u);
  r.Add(s, Level::kIsolate, "a", "x", kT0 + 1, 0);  // same
  EXPECT_EQ(r.seq(), s1);
  r.Add(s, Level::kIsolate, "b", "x", kT0 + 2, 0);  // new reason
  const uint64_t s2 = r.seq();
  EXPECT_GT(s2, s1);
  r.Add(s, Level::kIsolate, "b", "y", kT0 + 3, 0);  // new actor
  const uint64_t s3 = r.seq();
  EXPECT_GT(s3, s2);
  r.Find(s);
  r.List();
  r.NextExpiry();
  r.Expire(kT0 + 1000 * kSec);  // nothing due
  r.Remove(Sel("02:77:00:00:00:99"));
  EXPECT_EQ(r.seq(), s3);
  r.Remove(s);
  EXPECT_GT(r.seq(), s3);
}

TEST(QuarantineRegistry, CapacityRefusesNewDevicesButAllowsUpdates) {
  Registry r;
  EXPECT_EQ(r.capacity(), Registry::kMaxEntries);
  Selector s = Sel("02:00:00:00:00:00");
  for (uint32_t i = 0; i < Registry::kMaxEntries; ++i) {
    s.mac[3] = uint8_t(i >> 16);
    s.mac[4] = uint8_t(i >> 8);
    s.mac[5] = uint8_t(i);
    ASSERT_TRUE(r.Add(s, Level::kIsolate, "", "x", kT0, 0).ok()) << i;
  }
  EXPECT_EQ(r.size(), 65536u);
  const uint64_t seq = r.seq();
  const auto full = r.Add(Sel("10.77.0.11"), Level::kIsolate, "", "x", kT0, 0);
  EXPECT_FALSE(full.ok());
  EXPECT_NE(full.error.find("full"), std::string::npos) << full.error;
  EXPECT_NE(full.error.find("10.77.0.11"), std::string::npos) << full.error;
  EXPECT_EQ(r.size(), 65536u);
  EXPECT_EQ(r.seq(), seq);
  EXPECT_EQ(r.Find(Sel("10.77.0.11")), nullptr);
  // An existing device can still be changed, and a release makes room.
  EXPECT_TRUE(r.Add(s, Level::kContain, "", "x", kT0, 0).changed);
  ASSERT_TRUE(r.Remove(s).has_value());
  EXPECT_TRUE(r.Add(Sel("10.77.0.11"), Level::kIsolate, "", "x", kT0, 0).created);

  Registry small(2);
  EXPECT_TRUE(small.Add(Sel("10.0.0.1"), Level::kIsolate, "", "x", kT0, 0).ok());
  EXPECT_TRUE(small.Add(Sel("10.0.0.2"), Level::kIsolate, "", "x", kT0, 0).ok());
  EXPECT_FALSE(small.Add(Sel("10.0.0.3"), Level::kIsolate, "", "x", kT0, 0).ok());
  EXPECT_EQ(Registry(1000000).capacity(), Registry::kMaxEntries);
}

TEST(QuarantineRegistry, RestoreReplacesEverything) {
  Registry r;
  ASSERT_TRUE(r.Add(Sel("10.0.0.1"), Level::kIsolate, "old", "x", kT0, 0).ok());
  const uint64_t before = r.seq();
  Entry a;
  a.device = Sel("02:77:00:00:00:11");
  a.level = Level::kContain;
  a.reason = "restored";
  a.since_ns = kT0 - 100;
  a.expires_ns = kT0 + 50;
  Entry b = a;
  b.device = Sel("fd77::11");
  b.expires_ns = 0;
  Entry bad = a;
  bad.device = Sel("id:4");
  Entry dup = a;
  dup.level = Level::kIsolate;  // later entry for the same device wins
  EXPECT_EQ(r.Restore({a, b, bad, dup}), 2u);
  EXPECT_GT(r.seq(), before);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.Find(Sel("10.0.0.1")), nullptr);
  ASSERT_NE(r.Find(a.device), nullptr);
  EXPECT_EQ(r.Find(a.device)->level, Level::kIsolate);
  EXPECT_EQ(r.Find(a.device)->since_ns, kT0 - 100);
  EXPECT_EQ(r.NextExpiry(), kT0 + 50);
  EXPECT_EQ(r.Expire(kT0 + 50).size(), 1u);
  EXPECT_EQ(r.size(), 1u);

  Registry small(1);
  EXPECT_EQ(small.Restore({a, b}), 1u);
  EXPECT_EQ(small.size(), 1u);
}

// ---------------------------------------------------------------- snapshot

class QuarantineSnapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wardgate-quarantine-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }

  static AppliedState Sample() {
    AppliedState s;
    s.rules_version = "rules-2024.05.01-3";
    s.policy_version = "policy-17";
    s.saved_ns = kT0 + 123456789;
    s.boot_id = "5c1f7a0e-0000-4000-8000-000000000001";
    Entry a;
    a.device = Sel("02:77:00:00:00:11");
    a.level = Level::kIsolate;
    a.reason = "new listening service tcp/8080 \"quoted\"";
    a.actor = "rule:sid 2100042";
    a.since_ns = kT0;
    a.expires_ns = kT0 + 3600 * kSec;
    Entry b;
    b.device = Sel("fd77::11");
    b.level = Level::kContain;
    b.reason = "life-critical: contained";
    b.actor = "wardctl";
    b.since_ns = kT0 + 1;
    Entry c;
    c.device = Sel("10.77.0.99");  // quarantined before it was ever seen
    c.level = Level::kIsolate;
    c.actor = "wardctl";
    c.since_ns = kT0 + 2;
    s.quarantines = {a, b, c};
    return s;
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static void Write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }
  // LoadSnapshot's error for `text` (and that it is refused without touching *out).
  std::string LoadError(const std::string& text) {
    const std::string path = dir_ + "/bad.json";
    Write(path, text);
    AppliedState out;
    out.boot_id = "untouched";
    std::string why;
    EXPECT_FALSE(LoadSnapshot(path, &out, &why)) << text;
    EXPECT_EQ(out.boot_id, "untouched") << "half-loaded";
    EXPECT_TRUE(out.quarantines.empty()) << "half-loaded";
    EXPECT_NE(why.find(path), std::string::npos) << why;
    return why;
  }
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
};

TEST_F(QuarantineSnapshot, RoundTrip) {
  const std::string path = dir_ + "/state.json";
  const AppliedState s = Sample();
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, s, &why)) << why;
  AppliedState back;
  ASSERT_TRUE(LoadSnapshot(path, &back, &why)) << why;
  EXPECT_EQ(back, s);
  // Nothing left beside it, and private.
  EXPECT_EQ(Files(), std::vector<std::string>{"state.json"});
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // Restoring it into a registry gives the same list back.
  Registry r;
  EXPECT_EQ(r.Restore(back.quarantines), 0u);
  auto listed = r.List();
  ASSERT_EQ(listed.size(), 3u);
  for (size_t i = 0; i < listed.size(); ++i) {
    listed[i].seq = 0;
    EXPECT_EQ(listed[i], s.quarantines[i]);
  }
}

TEST_F(QuarantineSnapshot, FileIsReadableByPeople) {
  const std::string path = dir_ + "/state.json";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, Sample(), &why)) << why;
  const std::string text = Read(path);
  EXPECT_EQ(text.rfind("{\n  \"format\": \"wardgate-applied-state/1\",\n", 0), 0u) << text;
  EXPECT_NE(text.find("\"saved\": \"2024-05-01T12:00:00.123Z\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"saved_ns\": 1714564800123456789"), std::string::npos) << text;
  EXPECT_NE(text.find("\"device\": \"02:77:00:00:00:11\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"level\": \"contain\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"expires\": \"2024-05-01T13:00:00.000Z\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"rules_version\": \"rules-2024.05.01-3\""), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST_F(QuarantineSnapshot, MissingFileIsAnEmptyFirstStart) {
  AppliedState out = Sample();
  std::string why;
  ASSERT_TRUE(LoadSnapshot(dir_ + "/nothing-here.json", &out, &why)) << why;
  EXPECT_EQ(out, AppliedState{});
}

TEST_F(QuarantineSnapshot, CreatesMissingDirectoriesPrivately) {
  const std::string path = dir_ + "/var/lib/wardgate/state.json";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, Sample(), &why)) << why;
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/var/lib/wardgate").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  AppliedState back;
  ASSERT_TRUE(LoadSnapshot(path, &back, &why)) << why;
  EXPECT_EQ(back.quarantines.size(), 3u);
}

TEST_F(QuarantineSnapshot, SaveReplacesTheOldFile) {
  const std::string path = dir_ + "/state.json";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, Sample(), &why)) << why;
  AppliedState next = Sample();
  next.quarantines.pop_back();
  next.policy_version = "policy-18";
  ASSERT_TRUE(SaveSnapshot(path, next, &why)) << why;
  AppliedState back;
  ASSERT_TRUE(LoadSnapshot(path, &back, &why)) << why;
  EXPECT_EQ(back, next);
  EXPECT_EQ(Files(), std::vector<std::string>{"state.json"});
}

TEST_F(QuarantineSnapshot, FailedWriteLeavesTheOldFileIntact) {
  // Running as root, directory permissions stop nothing: a file-size limit makes the
  // write itself fail (EFBIG) instead.
  const std::string path = dir_ + "/state.json";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, Sample(), &why)) << why;
  const std::string old = Read(path);
  AppliedState big = Sample();
  big.quarantines[0].reason = std::string(1 << 20, 'x');

  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const bool ok = SaveSnapshot(path, big, &why);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_FALSE(ok);
  EXPECT_NE(why.find(path), std::string::npos) << why;
  EXPECT_NE(why.find("writing"), std::string::npos) << why;
  EXPECT_EQ(Read(path), old);
  EXPECT_EQ(Files(), std::vector<std::string>{"state.json"}) << "temporary file left behind";
}

TEST_F(QuarantineSnapshot, UnwritableDirectoryLeavesTheOldFileIntact) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions (see FailedWriteLeavesTheOldFileIntact)";
  const std::string path = dir_ + "/state.json";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, Sample(), &why)) << why;
  const std::string old = Read(path);
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
  AppliedState next = Sample();
  next.quarantines.clear();
  EXPECT_FALSE(SaveSnapshot(path, next, &why));
  EXPECT_NE(why.find("temporary file"), std::string::npos) << why;
  fs::permissions(dir_, fs::perms::owner_all);
  EXPECT_EQ(Read(path), old);
}

TEST_F(QuarantineSnapshot, PathIsADirectory) {
  const std::string path = dir_ + "/state.json";
  fs::create_directory(path);
  Write(path + "/keep", "precious");
  std::string why;
  EXPECT_FALSE(SaveSnapshot(path, Sample(), &why));
  EXPECT_NE(why.find("renaming"), std::string::npos) << why;
  EXPECT_EQ(Read(path + "/keep"), "precious");
  EXPECT_EQ(Files(), std::vector<std::string>{"state.json"}) << "temporary file left behind";
  AppliedState out;
  EXPECT_FALSE(LoadSnapshot(path, &out, &why));
  EXPECT_NE(why.find("is a directory"), std::string::npos) << why;
}

TEST_F(QuarantineSnapshot, ParentIsAFile) {
  Write(dir_ + "/file", "x");
  std::string why;
  EXPECT_FALSE(SaveSnapshot(dir_ + "/file/state.json", Sample(), &why));
  EXPECT_NE(why.find("not a directory"), std::string::npos) << why;
  EXPECT_EQ(Read(dir_ + "/file"), "x");
}

TEST_F(QuarantineSnapshot, RefusesToSaveWhatCouldNotBeLoaded) {
  const std::string path = dir_ + "/state.json";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, Sample(), &why)) << why;
  const std::string old = Read(path);

  AppliedState id = Sample();
  id.quarantines[1].device = Sel("id:17");
  EXPECT_FALSE(SaveSnapshot(path, id, &why));
  EXPECT_NE(why.find("quarantines[1]"), std::string::npos) << why;
  EXPECT_NE(why.find("id:17"), std::string::npos) << why;

  AppliedState backwards = Sample();
  backwards.quarantines[0].expires_ns = backwards.quarantines[0].since_ns - 1;
  EXPECT_FALSE(SaveSnapshot(path, backwards, &why));
  EXPECT_NE(why.find("expires before"), std::string::npos) << why;

  AppliedState twice = Sample();
  twice.quarantines.push_back(twice.quarantines[0]);
  EXPECT_FALSE(SaveSnapshot(path, twice, &why));
  EXPECT_NE(why.find("listed twice"), std::string::npos) << why;

  EXPECT_EQ(Read(path), old);
}

TEST_F(QuarantineSnapshot, InvalidUtf8InAReasonIsSavedNotFatal) {
  const std::string path = dir_ + "/state.json";
  AppliedState s = Sample();
  s.quarantines[0].reason = "payload \xff\xfe bytes";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, s, &why)) << why;
  AppliedState back;
  ASSERT_TRUE(LoadSnapshot(path, &back, &why)) << why;
  EXPECT_EQ(back.quarantines.size(), 3u);
  EXPECT_EQ(back.quarantines[0].reason.rfind("payload ", 0), 0u);
}

TEST_F(QuarantineSnapshot, CorruptAndTruncatedFilesAreRefused) {
  const std::string path = dir_ + "/good.json";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, Sample(), &why)) << why;
  const std::string good = Read(path);

  EXPECT_NE(LoadError("").find("empty"), std::string::npos);
  EXPECT_NE(LoadError(good.substr(0, good.size() / 2)).find("not valid JSON"), std::string::npos);
  EXPECT_NE(LoadError("garbage\n").find("not valid JSON"), std::string::npos);
  EXPECT_NE(LoadError("[1,2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(LoadError("{\"quarantines\":[]}").find("no \"format\""), std::string::npos);
  std::string w = LoadError("{\"format\":\"wardgate-applied-state/2\",\"quarantines\":[]}");
  EXPECT_NE(w.find("wardgate-applied-state/2"), std::string::npos) << w;
  EXPECT_NE(w.find("is not \"wardgate-applied-state/1\""), std::string::npos) << w;
  EXPECT_NE(LoadError("{\"format\":\"wardgate-applied-state/1\"}").find("quarantines: missing"), std::string::npos);
  EXPECT_NE(LoadError("{\"format\":\"wardgate-applied-state/1\",\"quarantines\":{}}").find("quarantines: must be a list"),
            std::string::npos);
  EXPECT_NE(LoadError("{\"format\":\"wardgate-applied-state/1\",\"saved_ns\":-1,\"quarantines\":[]}").find("saved_ns"),
            std::string::npos);
  EXPECT_NE(LoadError("{\"format\":\"wardgate-applied-state/1\",\"rules_version\":7,\"quarantines\":[]}")
                .find("rules_version: must be a string"),
            std::string::npos);
  // Found by tests/fuzz/quarantine_fuzz: a number too large for JSON's parser threw an
  // exception other than parse_error, which ended the process.
  EXPECT_NE(LoadError("{\"format\":\"wardgate-applied-state/1\",\"saved_ns\":17959e99999999999999,\"quarantines\":[]}")
                .find("not valid JSON"),
            std::string::npos);
}

TEST_F(QuarantineSnapshot, BadEntriesAreRefusedNamingThem) {
  auto file = [](const std::string& entry) {
    return std::string("{\"format\":\"wardgate-applied-state/1\",\"quarantines\":[") +
           "{\"device\":\"02:77:00:00:00:01\",\"level\":\"isolate\",\"since_ns\":5}," + entry + "]}";
  };
  std::string w = LoadError(file(R"({"device":"02:77:00:00:00","level":"isolate","since_ns":1})"));
  EXPECT_NE(w.find("quarantines[1].device"), std::string::npos) << w;
  EXPECT_NE(w.find("'02:77:00:00:00'"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"zz:77:00:00:00:11","level":"isolate","since_ns":1})"));
  EXPECT_NE(w.find("'zz:77:00:00:00:11' is not a MAC"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"10.0.0.0/8","level":"isolate","since_ns":1})"));
  EXPECT_NE(w.find("is a prefix"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"id:17","level":"isolate","since_ns":1})"));
  EXPECT_NE(w.find("quarantines[1]: device id:17"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"10.77.0.11","level":"quarantine","since_ns":1})"));
  EXPECT_NE(w.find("quarantines[1].level"), std::string::npos) << w;
  EXPECT_NE(w.find("'quarantine'"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"10.77.0.11","level":"isolate","since_ns":100,"expires_ns":99})"));
  EXPECT_NE(w.find("quarantines[1]: expires before"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"10.77.0.11","level":"isolate"})"));
  EXPECT_NE(w.find("quarantines[1].since_ns: missing"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"10.77.0.11","level":"isolate","since_ns":"yesterday"})"));
  EXPECT_NE(w.find("quarantines[1].since_ns: must be a whole number"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"10.77.0.11","level":"isolate","since_ns":1.5})"));
  EXPECT_NE(w.find("quarantines[1].since_ns"), std::string::npos) << w;
  w = LoadError(file(R"({"level":"isolate","since_ns":1})"));
  EXPECT_NE(w.find("quarantines[1].device: missing"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"02-77-00-00-00-01","level":"contain","since_ns":1})"));
  EXPECT_NE(w.find("02:77:00:00:00:01 listed twice"), std::string::npos) << w;
  w = LoadError(file(R"("02:77:00:00:00:02")"));
  EXPECT_NE(w.find("quarantines[1]: must be an object"), std::string::npos) << w;
  w = LoadError(file(R"({"device":"10.77.0.11","level":"isolate","since_ns":1,"reason":["x"]})"));
  EXPECT_NE(w.find("quarantines[1].reason: must be a string"), std::string::npos) << w;
}

TEST_F(QuarantineSnapshot, UnknownFieldsAndMissingOptionalOnesAreFine) {
  const std::string path = dir_ + "/state.json";
  Write(path, R"({"format":"wardgate-applied-state/1","note":"hand-made",
    "quarantines":[{"device":"10.77.0.11","level":"contain","since_ns":7,"since":"whenever"}]})");
  AppliedState out;
  std::string why;
  ASSERT_TRUE(LoadSnapshot(path, &out, &why)) << why;
  ASSERT_EQ(out.quarantines.size(), 1u);
  EXPECT_EQ(out.quarantines[0].device, Sel("10.77.0.11"));
  EXPECT_EQ(out.quarantines[0].level, Level::kContain);
  EXPECT_EQ(out.quarantines[0].since_ns, 7u);
  EXPECT_EQ(out.quarantines[0].expires_ns, 0u);
  EXPECT_EQ(out.rules_version, "");
}

TEST_F(QuarantineSnapshot, UnreadableFileIsRefused) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads any file";
  const std::string path = dir_ + "/state.json";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, Sample(), &why)) << why;
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  AppliedState out;
  EXPECT_FALSE(LoadSnapshot(path, &out, &why));
  EXPECT_NE(why.find("cannot open"), std::string::npos) << why;
}

TEST_F(QuarantineSnapshot, FullRegistryRoundTrips) {
  Registry r;
  Selector s = Sel("02:00:00:00:00:00");
  for (uint32_t i = 0; i < Registry::kMaxEntries; ++i) {
    s.mac[4] = uint8_t(i >> 8);
    s.mac[5] = uint8_t(i);
    ASSERT_TRUE(r.Add(s, Level::kIsolate, "bulk", "rule:sid 1", kT0 + i, i % 2 ? 3600 * kSec : 0).ok());
  }
  AppliedState st;
  st.quarantines = r.List();
  for (auto& e : st.quarantines) e.seq = 0;
  const std::string path = dir_ + "/state.json";
  std::string why;
  ASSERT_TRUE(SaveSnapshot(path, st, &why)) << why;
  AppliedState back;
  ASSERT_TRUE(LoadSnapshot(path, &back, &why)) << why;
  EXPECT_EQ(back, st);

  st.quarantines.push_back(st.quarantines[0]);
  st.quarantines.back().device = Sel("10.0.0.1");
  EXPECT_FALSE(SaveSnapshot(path, st, &why));
  EXPECT_NE(why.find("more than the 65536"), std::string::npos) << why;
}

TEST(QuarantineTime, Rfc3339) {
  EXPECT_EQ(Rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(Rfc3339(kT0 + 999999999), "2024-05-01T12:00:00.999Z");
}

}  // namespace
}  // namespace wardgate::quarantine
