// Zone-policy classifier (rte_acl): build time and memory for 100, 1k and 10k rules, and
// the cost of classifying a new flow, one at a time and in bursts of 32, IPv4 and IPv6.
//
//   build/bench/policy_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// The rule sets look like a hospital's zone policy grown large: per-device and
// per-subnet rules between 32 zones, mostly TCP/UDP to one service port or a small range,
// a few broad rules. Half the tuples come from a rule (a hit, often of an earlier
// overlapping rule), half are random (mostly the default: no match). Only new flows pay
// this cost; established flows use the verdict cached on the flow.
#include <benchmark/benchmark.h>
#include <rte_eal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "dataplane/policy/classifier.h"

namespace {

using namespace wardgate::policy;
using Rng = std::mt19937_64;

uint32_t U(Rng& g, uint32_t lo, uint32_t hi) { return std::uniform_int_distribution<uint32_t>(lo, hi)(g); }

constexpr uint16_t kPorts[] = {22, 23, 53, 80, 104, 443, 2575, 3389, 4242, 5900, 8080, 11112};

// Addresses of a /16 (IPv4 10.<subnet>.x.x) or /48 (IPv6 fd00:0:<subnet>::/64s).
std::array<uint8_t, 16> Address(Rng& g, bool v6) {
  std::array<uint8_t, 16> a{};
  if (!v6) {
    a = {10, uint8_t(U(g, 0, 63)), uint8_t(U(g, 0, 255)), uint8_t(U(g, 1, 254))};
  } else {
    a[0] = 0xfd;
    a[5] = uint8_t(U(g, 0, 63));
    a[7] = uint8_t(U(g, 0, 255));
    for (int i = 8; i < 16; ++i) a[i] = uint8_t(U(g, 0, 255));
  }
  return a;
}

Prefix PrefixOf(Rng& g, bool v6) {
  Prefix p;
  const uint32_t k = U(g, 0, 9);
  if (k == 0) return p;  // any
  p.family = v6 ? Family::kIpv6 : Family::kIpv4;
  if (k <= 6) p.len = v6 ? 128 : 32;       // a device or server: 60%
  else if (k <= 8) p.len = v6 ? 64 : 24;  // a subnet: 20%
  else p.len = v6 ? 48 : 16;              // a site: 10% (and 10% any)
  p.addr = Address(g, v6);
  for (uint32_t bit = p.len; bit < 128; ++bit) p.addr[bit / 8] &= uint8_t(~(0x80u >> (bit % 8)));
  return p;
}

std::vector<PolicyRule> Rules(uint32_t n, bool v6, uint64_t seed) {
  Rng g(seed);
  std::vector<PolicyRule> rules;
  for (uint32_t i = 0; i < n; ++i) {
    PolicyRule r;
    r.id = i + 1;
    if (U(g, 0, 3)) r.src_zone = ZoneRange::Only(uint16_t(U(g, 0, 31)));
    if (U(g, 0, 3)) r.dst_zone = ZoneRange::Only(uint16_t(U(g, 0, 31)));
    r.proto = U(g, 0, 9) < 7 ? 6 : U(g, 0, 2) ? 17 : 0;
    r.src = PrefixOf(g, v6);
    r.dst = PrefixOf(g, v6);
    if (r.src.family == Family::kAny && r.dst.family == Family::kAny) r.dst = PrefixOf(g, v6);
    if (r.src.family == Family::kAny && r.dst.family == Family::kAny) {  // keep the rule in this family
      r.dst.family = v6 ? Family::kIpv6 : Family::kIpv4;
    }
    if (r.proto) {
      const uint32_t k = U(g, 0, 9);
      if (k < 7) {
        r.dport = PortRange::Only(kPorts[U(g, 0, std::size(kPorts) - 1)]);
      } else if (k < 9) {
        const uint16_t lo = uint16_t(U(g, 1024, 30000));
        r.dport = {lo, uint16_t(lo + U(g, 0, 1000))};
      }  // else any port
    }
    r.action = U(g, 0, 4) ? Action::kAllow : Action::kDeny;
    rules.push_back(r);
  }
  return rules;
}

std::vector<FlowTuple> Tuples(const std::vector<PolicyRule>& rules, bool v6, uint32_t n, uint64_t seed) {
  Rng g(seed);
  std::vector<FlowTuple> out;
  for (uint32_t i = 0; i < n; ++i) {
    FlowTuple t;
    t.v6 = v6;
    if (i % 2 == 0) {  // inside a rule
      const PolicyRule& r = rules[U(g, 0, uint32_t(rules.size() - 1))];
      auto in = [&](const Prefix& p) {
        auto a = Address(g, v6);
        for (uint32_t bit = 0; bit < p.len; ++bit) {
          const uint8_t m = uint8_t(0x80u >> (bit % 8));
          a[bit / 8] = uint8_t((a[bit / 8] & ~m) | (p.addr[bit / 8] & m));
        }
        return a;
      };
      t.src = in(r.src);
      t.dst = in(r.dst);
      t.src_zone = uint16_t(U(g, r.src_zone.lo, std::min<uint32_t>(r.src_zone.hi, 31)));
      t.dst_zone = uint16_t(U(g, r.dst_zone.lo, std::min<uint32_t>(r.dst_zone.hi, 31)));
      t.proto = r.proto ? r.proto : 6;
      t.dport = uint16_t(U(g, r.dport.lo, r.dport.hi));
    } else {
      t.src = Address(g, v6);
      t.dst = Address(g, v6);
      t.src_zone = uint16_t(U(g, 0, 31));
      t.dst_zone = uint16_t(U(g, 0, 31));
      t.proto = U(g, 0, 3) ? 6 : 17;
      t.dport = kPorts[U(g, 0, std::size(kPorts) - 1)];
    }
    t.sport = uint16_t(U(g, 32768, 60999));
    out.push_back(t);
  }
  return out;
}

constexpr uint32_t kTuples = 4096;  // more than L1 holds, as first packets of new flows are

struct Fixture {
  std::unique_ptr<PolicyClassifier> c;
  std::vector<FlowTuple> tuples;
  std::vector<const FlowTuple*> ptrs;
};

// Arguments: rules, family (4 or 6), rte_acl memory cap in MiB (0: none, DPDK's default,
// which splits tries early and so favours memory; a cap lets it build bigger, fewer
// tries: faster classification for more memory).
BuildOptions Options(const benchmark::State& st) {
  BuildOptions o;
  o.max_memory_bytes = size_t(st.range(2)) << 20;
  return o;
}

// Classifiers are built once per arguments and reused by every repetition.
Fixture& Get(const benchmark::State& st) {
  static std::map<std::tuple<int64_t, int64_t, int64_t>, Fixture> cache;
  const uint32_t n = uint32_t(st.range(0));
  const bool v6 = st.range(1) == 6;
  Fixture& f = cache[{st.range(0), st.range(1), st.range(2)}];
  if (!f.c) {
    const auto rules = Rules(n, v6, 42 + n);
    std::string error;
    f.c = PolicyClassifier::Build(rules, Options(st), &error);
    if (!f.c) {
      std::fprintf(stderr, "build failed: %s\n", error.c_str());
      std::abort();
    }
    f.tuples = Tuples(rules, v6, kTuples, 7 + n);
    for (const auto& t : f.tuples) f.ptrs.push_back(&t);
  }
  return f;
}

void Label(benchmark::State& st, const Fixture& f) {
  st.counters["rules"] = f.c->size();
  st.counters["MiB"] = double(f.c->stats().memory_bytes) / (1 << 20);
  st.counters["contexts"] = st.range(1) == 6 ? f.c->stats().contexts_ipv6 : f.c->stats().contexts_ipv4;
  uint32_t hits = 0;
  for (const auto& t : f.tuples) hits += f.c->Classify(t).has_value();
  st.counters["hit_pct"] = 100.0 * hits / f.tuples.size();
  st.SetLabel(std::string(f.c->stats().algorithm) + (st.range(1) == 6 ? " ipv6" : " ipv4"));
}

void BM_PolicyBuild(benchmark::State& st) {
  const bool v6 = st.range(1) == 6;
  const auto rules = Rules(uint32_t(st.range(0)), v6, 42 + uint64_t(st.range(0)));
  ClassifierStats stats;
  for (auto _ : st) {
    std::string error;
    auto c = PolicyClassifier::Build(rules, Options(st), &error);
    if (!c) {
      st.SkipWithError(error.c_str());
      break;
    }
    stats = c->stats();
    benchmark::DoNotOptimize(c);
  }
  st.counters["MiB"] = double(stats.memory_bytes) / (1 << 20);
  st.counters["contexts"] = v6 ? stats.contexts_ipv6 : stats.contexts_ipv4;
  st.SetLabel(v6 ? "ipv6" : "ipv4");
}

void Sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rules", "ip", "cap_MiB"});
  b->ArgsProduct({{100, 1000, 10000}, {4, 6}, {0}});
  b->Args({10000, 4, 256})->Args({10000, 6, 256});
}
BENCHMARK(BM_PolicyBuild)->Apply(Sizes)->Unit(benchmark::kMillisecond);

// One new flow at a time: what a burst with a single new flow pays.
void BM_PolicyClassifyOne(benchmark::State& st) {
  Fixture& f = Get(st);
  uint32_t i = 0;
  for (auto _ : st) {
    benchmark::DoNotOptimize(f.c->Classify(f.tuples[i]));
    i = (i + 1) & (kTuples - 1);
  }
  st.SetItemsProcessed(int64_t(st.iterations()));
  Label(st, f);
}
BENCHMARK(BM_PolicyClassifyOne)->Apply(Sizes);

// 32 new flows in one call (a burst of first packets, e.g. a scan or a reconnect storm).
void BM_PolicyClassifyBurst32(benchmark::State& st) {
  Fixture& f = Get(st);
  int32_t out[32];
  uint32_t i = 0;
  for (auto _ : st) {
    f.c->ClassifyBurst(&f.ptrs[i], 32, out);
    benchmark::DoNotOptimize(out);
    i = (i + 32) & (kTuples - 1);
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * 32);
  // Seconds per tuple, which Google Benchmark prints as time ("85.2ns").
  st.counters["per_tuple"] =
      benchmark::Counter(double(st.iterations()) * 32, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  Label(st, f);
}
BENCHMARK(BM_PolicyClassifyBurst32)->Apply(Sizes);

}  // namespace

int main(int argc, char** argv) {
  const std::string prefix = "wg-policy-bench-" + std::to_string(getpid());
  const char* eal_argv[] = {"policy_bench", "-l", "0", "--no-huge", "-m", "512", "--no-shconf", "--no-pci",
                            "--file-prefix", prefix.c_str(), "--log-level", "lib.eal:error"};
  if (rte_eal_init(int(std::size(eal_argv)), const_cast<char**>(eal_argv)) < 0) return 1;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  rte_eal_cleanup();
  return 0;
}
