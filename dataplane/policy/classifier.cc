#include "dataplane/policy/classifier.h"

#include "dataplane/config/segmentation.h"

#include <arpa/inet.h>
#include <rte_acl.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <numeric>
#include <string_view>

namespace wardgate::policy {
namespace {

// The keys rte_acl walks. Its layout rules (programmer's guide, "Rule definition"): the
// first field is one byte (the protocol, loaded with the trie's first transition); every
// later field lies in a group of 4 consecutive bytes (one input_index each), which the
// search consumes one 32-bit load at a time. Multi-byte values are big-endian in the key
// and host-order in the rules.
struct Key4 {
  uint8_t proto;
  uint8_t pad[3];
  uint8_t zones[4];  // src zone, dst zone
  uint8_t src[4];
  uint8_t dst[4];
  uint8_t ports[4];  // sport, dport
};
struct Key6 {
  uint8_t proto;
  uint8_t pad[3];
  uint8_t zones[4];
  uint8_t src[16];
  uint8_t dst[16];
  uint8_t ports[4];
};
static_assert(sizeof(Key4) == 20 && sizeof(Key6) == 44);

// Field order of both contexts: proto, zones, addresses (one 32-bit word per field:
// rte_acl fields are at most 8 bytes and its IPv6 users split addresses this way), ports.
enum : uint8_t { kFProto = 0, kFSrcZone, kFDstZone, kFAddr };
constexpr uint32_t kFields4 = 3 + 2 + 2;
constexpr uint32_t kFields6 = 3 + 8 + 2;

RTE_ACL_RULE_DEF(AclRule4, kFields4);
RTE_ACL_RULE_DEF(AclRule6, kFields6);
static_assert(sizeof(AclRule4) == RTE_ACL_RULE_SZ(kFields4) && sizeof(AclRule6) == RTE_ACL_RULE_SZ(kFields6));

template <uint32_t kWords, uint32_t kSrcOff, uint32_t kDstOff, uint32_t kPortOff>
constexpr std::array<rte_acl_field_def, 5 + 2 * kWords> FieldDefs() {
  std::array<rte_acl_field_def, 5 + 2 * kWords> d{};
  d[kFProto] = {RTE_ACL_FIELD_TYPE_BITMASK, 1, kFProto, 0, 0};
  // Both zones share one input group, as sport/dport do in DPDK's l3fwd ACL.
  d[kFSrcZone] = {RTE_ACL_FIELD_TYPE_RANGE, 2, kFSrcZone, 1, offsetof(Key4, zones)};
  d[kFDstZone] = {RTE_ACL_FIELD_TYPE_RANGE, 2, kFDstZone, 1, offsetof(Key4, zones) + 2};
  uint8_t f = kFAddr, input = 2;
  for (uint32_t w = 0; w < kWords; ++w, ++f, ++input)
    d[f] = {RTE_ACL_FIELD_TYPE_MASK, 4, f, input, kSrcOff + 4 * w};
  for (uint32_t w = 0; w < kWords; ++w, ++f, ++input)
    d[f] = {RTE_ACL_FIELD_TYPE_MASK, 4, f, input, kDstOff + 4 * w};
  d[f] = {RTE_ACL_FIELD_TYPE_RANGE, 2, f, input, kPortOff};
  ++f;
  d[f] = {RTE_ACL_FIELD_TYPE_RANGE, 2, f, input, kPortOff + 2};
  return d;
}
constexpr auto kDefs4 = FieldDefs<1, offsetof(Key4, src), offsetof(Key4, dst), offsetof(Key4, ports)>();
constexpr auto kDefs6 = FieldDefs<4, offsetof(Key6, src), offsetof(Key6, dst), offsetof(Key6, ports)>();
static_assert(kDefs4.size() == kFields4 && kDefs6.size() == kFields6);
static_assert(offsetof(Key4, zones) == offsetof(Key6, zones));

inline void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

template <typename Key>
inline void FillKey(Key& k, const FlowTuple& t) {
  k.proto = t.proto;
  k.pad[0] = k.pad[1] = k.pad[2] = 0;
  PutBe16(k.zones, t.src_zone);
  PutBe16(k.zones + 2, t.dst_zone);
  std::memcpy(k.src, t.src.data(), sizeof(k.src));
  std::memcpy(k.dst, t.dst.data(), sizeof(k.dst));
  PutBe16(k.ports, t.sport);
  PutBe16(k.ports + 2, t.dport);
}

uint8_t MaxLen(Family f) { return f == Family::kIpv4 ? 32 : f == Family::kIpv6 ? 128 : 0; }

// Checks what Build relies on: length within the family, no bits beyond it.
bool CheckPrefix(const Prefix& p, std::string* why) {
  if (p.family == Family::kAny) {
    if (p.len != 0 || p.addr != std::array<uint8_t, 16>{}) {
      *why = "\"any\" with an address or length";
      return false;
    }
    return true;
  }
  const uint8_t max = MaxLen(p.family);
  if (p.len > max) {
    *why = "prefix length " + std::to_string(p.len) + " exceeds " + std::to_string(max);
    return false;
  }
  for (uint32_t bit = p.len; bit < 128; ++bit) {
    if (p.addr[bit / 8] & (0x80u >> (bit % 8))) {
      *why = bit < max ? "host bits set beyond /" + std::to_string(p.len)
                       : std::string("IPv4 address with bytes beyond the first 4");
      return false;
    }
  }
  return true;
}

// The /len restricted to 32-bit word w of the address.
uint32_t WordLen(uint8_t len, uint32_t w) { return uint32_t(std::clamp(int(len) - int(32 * w), 0, 32)); }
uint32_t WordValue(const Prefix& p, uint32_t w) {
  return uint32_t(p.addr[4 * w]) << 24 | uint32_t(p.addr[4 * w + 1]) << 16 | uint32_t(p.addr[4 * w + 2]) << 8 |
         p.addr[4 * w + 3];
}

template <typename AclRule, uint32_t kWords>
void FillRule(AclRule& a, const PolicyRule& r, int32_t priority, uint32_t rank) {
  a.data.category_mask = 1;
  a.data.priority = priority;
  a.data.userdata = rank + 1;  // 0 is rte_acl's "no match"
  a.field[kFProto].value.u8 = r.proto;
  a.field[kFProto].mask_range.u8 = r.proto ? 0xff : 0;
  a.field[kFSrcZone].value.u16 = r.src_zone.lo;
  a.field[kFSrcZone].mask_range.u16 = r.src_zone.hi;
  a.field[kFDstZone].value.u16 = r.dst_zone.lo;
  a.field[kFDstZone].mask_range.u16 = r.dst_zone.hi;
  uint32_t f = kFAddr;
  for (const Prefix* p : {&r.src, &r.dst}) {
    for (uint32_t w = 0; w < kWords; ++w, ++f) {
      a.field[f].value.u32 = WordValue(*p, w);
      a.field[f].mask_range.u32 = WordLen(p->len, w);
    }
  }
  a.field[f].value.u16 = r.sport.lo;
  a.field[f].mask_range.u16 = r.sport.hi;
  a.field[f + 1].value.u16 = r.dport.lo;
  a.field[f + 1].mask_range.u16 = r.dport.hi;
}

// How wild each field of a rule is, in field order, like rte_acl's own measure: it sorts
// rules by it and gives runs of similar rules their own trie, so splitting a sorted list
// into halves keeps similar rules together here too.
std::array<uint32_t, 6> Wildness(const PolicyRule& r, uint32_t addr_bits) {
  auto wild = [&](const Prefix& p) { return p.family == Family::kAny ? addr_bits : addr_bits - p.len; };
  return {uint32_t(r.src_zone.hi - r.src_zone.lo), uint32_t(r.dst_zone.hi - r.dst_zone.lo), wild(r.src), wild(r.dst),
          uint32_t(r.sport.hi - r.sport.lo), uint32_t(r.dport.hi - r.dport.lo)};
}

struct AlgName {
  enum rte_acl_classify_alg alg;  // "enum": a function of the same name hides the type
  const char* name;
};
// Most to least preferred, as rte_acl's own default choice; the first the CPU (and the
// EAL's max SIMD width) allows is taken, so stats can say which one runs.
constexpr AlgName kAlgs[] = {
    {RTE_ACL_CLASSIFY_AVX512X32, "avx512x32"}, {RTE_ACL_CLASSIFY_AVX512X16, "avx512x16"},
    {RTE_ACL_CLASSIFY_AVX2, "avx2"},           {RTE_ACL_CLASSIFY_SSE, "sse"},
    {RTE_ACL_CLASSIFY_NEON, "neon"},           {RTE_ACL_CLASSIFY_ALTIVEC, "altivec"},
    {RTE_ACL_CLASSIFY_SCALAR, "scalar"},
};

// Context names are global in the EAL and rte_acl_create hands back an existing context
// of the same name instead of a new one, so every context gets a name never used before:
// several generations' classifiers are alive at once.
std::atomic<uint64_t> g_context_seq{0};

// Builds run one at a time: they are control-thread work anyway, and the ACL log level
// is lowered during a build (below), which must not race with another build.
std::mutex g_build_mutex;

// rte_acl logs "Exceeded max number of tries" at ERR when a rule set needs splitting,
// which Build handles; a real failure reaches the caller's error message instead.
class QuietAclLog {
 public:
  QuietAclLog() : level_(rte_log_get_level(RTE_LOGTYPE_ACL)) { rte_log_set_level(RTE_LOGTYPE_ACL, RTE_LOG_CRIT); }
  ~QuietAclLog() {
    if (level_ >= 0) rte_log_set_level(RTE_LOGTYPE_ACL, uint32_t(level_));
  }
  QuietAclLog(const QuietAclLog&) = delete;
  QuietAclLog& operator=(const QuietAclLog&) = delete;

 private:
  int level_;
};

// Where a family's contexts go: reserved to max_contexts up front, so adding one never
// allocates (and never throws with a context in hand).
struct Built {
  std::vector<rte_acl_ctx*>* ctxs;
  const char** alg;
};

template <typename AclRule, size_t kN>
rte_acl_ctx* MakeContext(char family, const std::array<rte_acl_field_def, kN>& defs, const AclRule* rules, uint32_t n,
                         const BuildOptions& opt, Built* built, int* rc, std::string* why) {
  char name[RTE_ACL_NAMESIZE];
  do {
    std::snprintf(name, sizeof(name), "wg_policy%c_%llu", family,
                  static_cast<unsigned long long>(g_context_seq.fetch_add(1, std::memory_order_relaxed)));
  } while (rte_acl_find_existing(name) != nullptr);  // a context some other code named so
  rte_acl_param param{};
  param.name = name;
  param.socket_id = opt.socket_id;
  param.rule_size = sizeof(AclRule);
  param.max_rule_num = n;
  rte_acl_ctx* ctx = rte_acl_create(&param);
  if (!ctx) {
    *rc = -rte_errno;
    *why = std::string("rte_acl_create: ") + rte_strerror(rte_errno);
    return nullptr;
  }
  *rc = rte_acl_add_rules(ctx, reinterpret_cast<const rte_acl_rule*>(rules), n);
  if (*rc == 0) {
    rte_acl_config cfg{};
    cfg.num_categories = 1;
    cfg.num_fields = uint32_t(kN);
    std::copy(defs.begin(), defs.end(), cfg.defs);
    cfg.max_size = opt.max_memory_bytes;
    *rc = rte_acl_build(ctx, &cfg);
    if (*rc == -ERANGE) {
      *why = "rte_acl_build: run-time tables larger than max_memory_bytes (" + std::to_string(opt.max_memory_bytes) +
             ")";
    } else if (*rc != 0) {
      *why = std::string("rte_acl_build: ") + rte_strerror(-*rc);
    }
  } else {
    *why = std::string("rte_acl_add_rules: ") + rte_strerror(-*rc);
  }
  if (*rc != 0) {
    rte_acl_free(ctx);
    return nullptr;
  }
  for (const AlgName& a : kAlgs) {
    if (rte_acl_set_ctx_classify(ctx, a.alg) == 0) {
      *built->alg = a.name;
      break;
    }
  }
  return ctx;
}

// One context for the rules if rte_acl can build it; otherwise (its -ENOMEM: more than
// 8 tries needed, or out of memory) each half on its own, recursively, up to
// opt.max_contexts contexts.
template <typename AclRule, size_t kN>
bool BuildSplit(char family, const std::array<rte_acl_field_def, kN>& defs, const AclRule* rules, uint32_t n,
                const BuildOptions& opt, Built* built, std::string* why) {
  if (built->ctxs->size() >= opt.max_contexts) {
    *why = "the rule set needs more than " + std::to_string(opt.max_contexts) +
           " rte_acl contexts (too many overlapping wildcards and ranges)";
    return false;
  }
  int rc = 0;
  if (rte_acl_ctx* ctx = MakeContext(family, defs, rules, n, opt, built, &rc, why)) {
    built->ctxs->push_back(ctx);
    return true;
  }
  if (rc != -ENOMEM || n < 2) return false;
  const uint32_t half = n / 2;
  return BuildSplit(family, defs, rules, half, opt, built, why) &&
         BuildSplit(family, defs, rules + half, n - half, opt, built, why);
}

// The rules of one family in rte_acl form, ranked, in wildness order, then built.
template <typename AclRule, uint32_t kWords, size_t kN>
bool BuildFamily(Family fam, const std::array<rte_acl_field_def, kN>& defs, const std::vector<PolicyRule>& rules,
                 const std::vector<uint32_t>& by_rank, const std::vector<Family>& family, const BuildOptions& opt,
                 Built built, uint32_t* count, std::string* why) {
  const Family other = fam == Family::kIpv4 ? Family::kIpv6 : Family::kIpv4;
  std::vector<uint32_t> ranks;
  for (uint32_t rank = 0; rank < by_rank.size(); ++rank)
    if (family[by_rank[rank]] != other) ranks.push_back(rank);
  *count = uint32_t(ranks.size());
  if (ranks.empty()) return true;  // no context: the family's tuples never match, without a call
  std::vector<std::array<uint32_t, 6>> wild(by_rank.size());
  for (uint32_t rank : ranks) wild[rank] = Wildness(rules[by_rank[rank]], kWords * 32);
  std::stable_sort(ranks.begin(), ranks.end(), [&](uint32_t a, uint32_t b) { return wild[a] > wild[b]; });
  std::vector<AclRule> acl(ranks.size());
  for (size_t j = 0; j < ranks.size(); ++j) {
    // rte_acl returns the highest priority among matches (ties undefined): rank 0 gets the
    // highest, so every priority is distinct and "lower wins, then earlier" holds exactly.
    const int32_t prio = int32_t(by_rank.size() - ranks[j]);  // 1..n, within RTE_ACL_MIN/MAX_PRIORITY
    FillRule<AclRule, kWords>(acl[j], rules[by_rank[ranks[j]]], prio, ranks[j]);
  }
  built.ctxs->reserve(std::min<size_t>(opt.max_contexts, acl.size()));  // a context holds at least one rule
  return BuildSplit(fam == Family::kIpv4 ? '4' : '6', defs, acl.data(), uint32_t(acl.size()), opt, &built, why);
}

uint64_t DpdkHeapBytes() {
  uint64_t total = 0;
  for (unsigned i = 0; i < rte_socket_count(); ++i) {
    rte_malloc_socket_stats s{};
    if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &s) == 0) total += s.heap_allocsz_bytes;
  }
  return total;
}

}  // namespace

const char* ActionName(Action a) {
  switch (a) {
    case Action::kAllow: return "allow";
    case Action::kDeny: return "deny";
    case Action::kAlert: return "alert";
  }
  return "?";
}

bool ParsePrefix(std::string_view text, Prefix* out, std::string* error) {
  if (text == "any") {
    *out = Prefix{};
    return true;
  }
  // One parser for the policy file and the classifier: the configuration's.
  config::Prefix cp;
  std::string why;
  if (!config::ParsePrefix(std::string(text), &cp, &why)) {
    if (error) *error = "bad address \"" + std::string(text) + "\": " + why;
    return false;
  }
  Prefix p;
  p.family = cp.v6 ? Family::kIpv6 : Family::kIpv4;
  p.len = cp.len;
  p.addr = cp.addr;
  *out = p;
  return true;
}

std::unique_ptr<PolicyClassifier> PolicyClassifier::Build(const std::vector<PolicyRule>& rules, std::string* error) {
  return Build(rules, BuildOptions{}, error);
}

std::unique_ptr<PolicyClassifier> PolicyClassifier::Build(const std::vector<PolicyRule>& rules,
                                                          const BuildOptions& options, std::string* error) {
  std::string why;
  auto fail = [&](const std::string& msg) -> std::unique_ptr<PolicyClassifier> {
    if (error) *error = msg;
    return nullptr;
  };
  try {
    const auto start = std::chrono::steady_clock::now();
    const uint64_t max_rules = std::min<uint64_t>(options.max_rules, RTE_ACL_MAX_PRIORITY);
    if (rules.size() > max_rules)
      return fail("too many policy rules: " + std::to_string(rules.size()) + " (at most " +
                  std::to_string(max_rules) + ")");

    std::vector<Family> family(rules.size());
    for (size_t i = 0; i < rules.size(); ++i) {
      const PolicyRule& r = rules[i];
      const std::string where = "policy rule " + std::to_string(i) + " (id " + std::to_string(r.id) + "): ";
      if (r.src_zone.lo > r.src_zone.hi) return fail(where + "source zone range is empty (lo > hi)");
      if (r.dst_zone.lo > r.dst_zone.hi) return fail(where + "destination zone range is empty (lo > hi)");
      if (r.sport.lo > r.sport.hi) return fail(where + "source port range is empty (lo > hi)");
      if (r.dport.lo > r.dport.hi) return fail(where + "destination port range is empty (lo > hi)");
      if (!CheckPrefix(r.src, &why)) return fail(where + "source " + why);
      if (!CheckPrefix(r.dst, &why)) return fail(where + "destination " + why);
      if (r.src.family != Family::kAny && r.dst.family != Family::kAny && r.src.family != r.dst.family)
        return fail(where + "source and destination are of different address families");
      family[i] = r.src.family != Family::kAny ? r.src.family : r.dst.family;
    }

    std::unique_ptr<PolicyClassifier> c(new PolicyClassifier());
    c->rules_ = rules;
    c->by_rank_.resize(rules.size());
    std::iota(c->by_rank_.begin(), c->by_rank_.end(), 0u);
    std::stable_sort(c->by_rank_.begin(), c->by_rank_.end(),
                     [&](uint32_t a, uint32_t b) { return rules[a].priority < rules[b].priority; });

    // Contexts go straight into c: on any failure its destructor frees what was built.
    std::lock_guard<std::mutex> lock(g_build_mutex);
    const uint64_t heap_before = DpdkHeapBytes();
    {
      QuietAclLog quiet;
      if (!BuildFamily<AclRule4, 1>(Family::kIpv4, kDefs4, rules, c->by_rank_, family, options,
                                    {&c->ctx4_, &c->stats_.algorithm}, &c->stats_.rules_ipv4, &why))
        return fail("IPv4 policy classifier: " + why);
      if (!BuildFamily<AclRule6, 4>(Family::kIpv6, kDefs6, rules, c->by_rank_, family, options,
                                    {&c->ctx6_, &c->stats_.algorithm}, &c->stats_.rules_ipv6, &why))
        return fail("IPv6 policy classifier: " + why);
    }
    const uint64_t heap_after = DpdkHeapBytes();

    c->stats_.rules = uint32_t(rules.size());
    c->stats_.contexts_ipv4 = uint32_t(c->ctx4_.size());
    c->stats_.contexts_ipv6 = uint32_t(c->ctx6_.size());
    c->stats_.memory_bytes = heap_after > heap_before ? heap_after - heap_before : 0;
    c->stats_.build_ns = uint64_t(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
    return c;
  } catch (const std::exception& e) {  // allocation failures of the vectors above
    return fail(std::string("policy classifier: ") + e.what());
  }
}

PolicyClassifier::~PolicyClassifier() {
  for (rte_acl_ctx* ctx : ctx4_) rte_acl_free(ctx);
  for (rte_acl_ctx* ctx : ctx6_) rte_acl_free(ctx);
}

namespace {

// r - 1 < best - 1 in unsigned arithmetic: 0 ("no match") ranks after every match.
inline bool Better(uint32_t r, uint32_t best) { return r - 1 < best - 1; }

// Best (lowest) rank + 1 over the family's contexts, 0 if none matches.
inline uint32_t BestOf(const std::vector<rte_acl_ctx*>& ctxs, const uint8_t* data) {
  uint32_t best = 0;
  for (const rte_acl_ctx* ctx : ctxs) {
    uint32_t r = 0;
    rte_acl_classify(ctx, &data, &r, 1, 1);
    if (Better(r, best)) best = r;
  }
  return best;
}

// results[j] = best rank + 1 of data[j] over the family's contexts (ctxs not empty).
inline void BestOfBurst(const std::vector<rte_acl_ctx*>& ctxs, const uint8_t** data, uint32_t n, uint32_t* results) {
  rte_acl_classify(ctxs[0], data, results, n, 1);
  uint32_t more[PolicyClassifier::kBurstChunk];
  for (size_t c = 1; c < ctxs.size(); ++c) {
    rte_acl_classify(ctxs[c], data, more, n, 1);
    for (uint32_t j = 0; j < n; ++j)
      if (Better(more[j], results[j])) results[j] = more[j];
  }
}

}  // namespace

std::optional<uint32_t> PolicyClassifier::Classify(const FlowTuple& t) const {
  uint32_t best = 0;
  if (t.v6) {
    Key6 k;
    FillKey(k, t);
    best = BestOf(ctx6_, &k.proto);
  } else {
    Key4 k;
    FillKey(k, t);
    best = BestOf(ctx4_, &k.proto);
  }
  if (best == 0) return std::nullopt;
  return by_rank_[best - 1];
}

void PolicyClassifier::ClassifyBurst(const FlowTuple* const* tuples, uint32_t n, int32_t* out) const {
  // Split each chunk by family, classify each family's keys together, then scatter the
  // results back to the tuples' positions.
  Key4 k4[kBurstChunk];
  Key6 k6[kBurstChunk];
  const uint8_t* d4[kBurstChunk];
  const uint8_t* d6[kBurstChunk];
  uint32_t r4[kBurstChunk];
  uint32_t r6[kBurstChunk];
  uint8_t at4[kBurstChunk];
  uint8_t at6[kBurstChunk];
  const bool any4 = !ctx4_.empty(), any6 = !ctx6_.empty();
  for (uint32_t base = 0; base < n; base += kBurstChunk) {
    const uint32_t m = std::min(kBurstChunk, n - base);
    uint32_t n4 = 0, n6 = 0;
    for (uint32_t i = 0; i < m; ++i) {
      const FlowTuple& t = *tuples[base + i];
      out[base + i] = -1;
      if (t.v6) {
        if (!any6) continue;
        FillKey(k6[n6], t);
        d6[n6] = &k6[n6].proto;
        at6[n6++] = uint8_t(i);
      } else {
        if (!any4) continue;
        FillKey(k4[n4], t);
        d4[n4] = &k4[n4].proto;
        at4[n4++] = uint8_t(i);
      }
    }
    if (n4) {
      BestOfBurst(ctx4_, d4, n4, r4);
      for (uint32_t j = 0; j < n4; ++j)
        if (r4[j]) out[base + at4[j]] = int32_t(by_rank_[r4[j] - 1]);
    }
    if (n6) {
      BestOfBurst(ctx6_, d6, n6, r6);
      for (uint32_t j = 0; j < n6; ++j)
        if (r6[j]) out[base + at6[j]] = int32_t(by_rank_[r6[j] - 1]);
    }
  }
}

}  // namespace wardgate::policy
