// Device table costs: Observe() per frame for known devices (the per-packet cost every
// bridged frame pays), Find() (the worker's per-flow lookup), and Snapshot() of a full
// table (the control thread's copy, per inventory update).
//
//   build/bench/device_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Frames cycle through the devices in a fixed shuffled order, so the larger tables pay
// the cache misses of a real mix (4096 devices: 3.3 MiB of records, beyond L2).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "dataplane/device/device_table.h"
#include "dataplane/parse/packet.h"

namespace wardgate::device {
namespace {

constexpr uint32_t kCapacity = 4096;

Mac DeviceMac(uint32_t n) { return {0x02, 0x77, 0x00, uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)}; }

// A 128-byte IPv4/UDP frame between device n (10.77.x.y) and a hospital host.
std::vector<uint8_t> Frame(uint32_t n, bool from_device) {
  std::vector<uint8_t> f(128, 0);
  const Mac dev = DeviceMac(n), host = {0x02, 0x48, 0, 0, 0, 1};
  std::memcpy(&f[0], (from_device ? host : dev).data(), 6);
  std::memcpy(&f[6], (from_device ? dev : host).data(), 6);
  f[12] = 0x08;
  f[13] = 0x00;
  uint8_t* ip = &f[14];
  ip[0] = 0x45;
  ip[3] = 128 - 14;
  ip[8] = 64;
  ip[9] = 17;
  const uint8_t dev_ip[4] = {10, 77, uint8_t(n >> 8), uint8_t(n)}, host_ip[4] = {10, 48, 0, 9};
  std::memcpy(ip + 12, from_device ? dev_ip : host_ip, 4);
  std::memcpy(ip + 16, from_device ? host_ip : dev_ip, 4);
  uint8_t* udp = ip + 20;
  udp[0] = 0x9c;  // 40000 -> 2575
  udp[1] = 0x40;
  udp[2] = 0x0a;
  udp[3] = 0x0f;
  udp[5] = 128 - 14 - 20;
  return f;
}

struct Traffic {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<parse::PacketView> views;
  std::vector<bool> from_device;
};

// Both directions of every device, shuffled; the table has learned them all.
Traffic Learned(DeviceTable& t, uint32_t devices) {
  Traffic tr;
  for (uint32_t n = 0; n < devices; ++n)
    for (bool from : {true, false}) {
      tr.frames.push_back(Frame(n, from));
      tr.from_device.push_back(from);
    }
  std::vector<size_t> order(tr.frames.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(1));
  Traffic shuffled;
  for (size_t i : order) {
    shuffled.frames.push_back(tr.frames[i]);
    shuffled.from_device.push_back(tr.from_device[i]);
    parse::PacketView v;
    parse::ParsePacket(shuffled.frames.back(), v);
    shuffled.views.push_back(v);
    t.Observe(v, shuffled.frames.back().data(), 128, shuffled.from_device.back(), 1, 1);
  }
  return shuffled;
}

void BM_ObserveKnown(benchmark::State& st) {
  DeviceTable t(kCapacity, 0x5eed);
  const Traffic tr = Learned(t, uint32_t(st.range(0)));
  size_t i = 0;
  uint64_t now = 2;
  for (auto _ : st) {
    benchmark::DoNotOptimize(t.Observe(tr.views[i], tr.frames[i].data(), 128, tr.from_device[i], 1, now));
    if (++i == tr.frames.size()) i = 0, ++now;
  }
  if (t.counters().learned != uint64_t(st.range(0)) || t.counters().ip_learned != uint64_t(st.range(0)))
    st.SkipWithError("observing known devices learned something");
}
BENCHMARK(BM_ObserveKnown)->Arg(1)->Arg(100)->Arg(4096);

void BM_Find(benchmark::State& st) {
  DeviceTable t(kCapacity, 0x5eed);
  const uint32_t devices = uint32_t(st.range(0));
  Learned(t, devices);
  std::vector<Mac> macs;
  for (uint32_t n = 0; n < devices; ++n) macs.push_back(DeviceMac(n));
  std::shuffle(macs.begin(), macs.end(), std::mt19937(2));
  size_t i = 0;
  for (auto _ : st) {
    benchmark::DoNotOptimize(t.Find(macs[i]));
    if (++i == macs.size()) i = 0;
  }
}
BENCHMARK(BM_Find)->Arg(100)->Arg(4096);

// A full table of realistic records: 1 address, 4 services, 8 peers per device.
void BM_Snapshot(benchmark::State& st) {
  DeviceTable t(kCapacity, 0x5eed);
  Learned(t, kCapacity);
  for (uint32_t s = 0; s < kCapacity; ++s) {
    for (uint16_t p : {2575, 104, 443, 161}) t.NoteService(s, 6, p);
    for (uint8_t k = 0; k < 8; ++k) t.NotePeer(s, {10, 48, 0, k}, false);
    t.NoteApp(s, kAppHl7);
  }
  std::vector<DeviceRecord> out;
  for (auto _ : st) {
    t.Snapshot(&out);
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["devices"] = double(out.size());
  st.counters["sizeof_DeviceRecord"] = sizeof(DeviceRecord);
}
BENCHMARK(BM_Snapshot)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace wardgate::device

BENCHMARK_MAIN();
