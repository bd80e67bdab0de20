// Zone-policy classifier: the compiled form of the policy rules, asked once per new
// flow (DESIGN.md: the verdict is then cached on the flow, so established flows never
// come here). Built on DPDK rte_acl: a multi-bit trie walked one input byte per step,
// whose cost grows with the key length and the number of tries, not with the number of
// rules. rte_acl splits a rule set into at most 8 tries per context; a set too diverse
// for that (many overlapping wildcards and ranges) is split here over several contexts,
// all classified and the best match kept (stats().contexts_* says how many).
//
// Threads:
//   Build() and the destructor: the control thread (any thread after rte_eal_init; the
//     build allocates from the DPDK heap). Build is slow (milliseconds for 100 rules,
//     seconds for 10k): never on a worker. Builds in one process run one at a time.
//   Classify(), ClassifyBurst(), rule(), stats(): any number of threads at once. A
//     built rte_acl context is read-only; classification keeps its state on the caller's
//     stack. The classifier belongs to a configuration generation, so workers reach it
//     through the RCU-protected generation pointer and it outlives every reader.
// No exceptions leave this API; Build reports every problem as a message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct rte_acl_ctx;

namespace wardgate::policy {

enum class Action : uint8_t { kAllow = 0, kDeny, kAlert };  // kAlert: allow and report

// Inclusive zone id range. Zone ids are assigned by zone resolution; the full range
// means "any zone", which is also where a device of no known zone falls.
struct ZoneRange {
  uint16_t lo = 0;
  uint16_t hi = 0xffff;
  static constexpr ZoneRange Only(uint16_t zone) { return {zone, zone}; }
  friend bool operator==(const ZoneRange&, const ZoneRange&) = default;
};
inline constexpr ZoneRange kAnyZone{0, 0xffff};

// Inclusive port range, host order. Protocols without ports (ICMP, ICMPv6, ...) present
// ports 0 to the classifier, so only rules whose ranges contain 0 match them: a rule
// with a port condition never matches ICMP by accident.
struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 0xffff;
  static constexpr PortRange Only(uint16_t port) { return {port, port}; }
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

enum class Family : uint8_t { kAny = 0, kIpv4, kIpv6 };

// An address prefix. kAny matches every address of both families; an IPv4 /0 matches
// every IPv4 address and no IPv6 one. Host bits beyond `len` must be zero (Build
// refuses "10.1.2.3/8": the author meant either the host or the network, we cannot tell).
struct Prefix {
  Family family = Family::kAny;
  uint8_t len = 0;                 // 0..32 (IPv4), 0..128 (IPv6); 0 for kAny
  std::array<uint8_t, 16> addr{};  // network order; IPv4 in the first 4 bytes, rest zero
};

// Parses "any", "10.0.0.0/8", "10.1.2.3" (/32), "fd00::/8", "fe80::1" (/128). The
// policy file loader's way in; Build checks the same constraints again.
bool ParsePrefix(std::string_view text, Prefix* out, std::string* error);

struct PolicyRule {
  uint32_t id = 0;           // the author's rule id, reported with the verdict; may repeat
                             // (one written rule may expand into several, e.g. per family)
  ZoneRange src_zone = kAnyZone;
  ZoneRange dst_zone = kAnyZone;
  uint8_t proto = 0;         // IP protocol number; 0 = any
  Prefix src;                // src and dst: at most one family between them
  Prefix dst;
  PortRange sport;
  PortRange dport;
  Action action = Action::kDeny;
  uint32_t priority = 0;     // lower wins; equal priorities: the earlier rule wins, so all-zero
                             // priorities give first match in file order
};

// What a new flow presents: its first packet's direction (client -> server) and the zones
// resolved for both ends.
struct FlowTuple {
  std::array<uint8_t, 16> src{};  // network order; IPv4 in the first 4 bytes
  std::array<uint8_t, 16> dst{};
  uint16_t src_zone = 0;
  uint16_t dst_zone = 0;
  uint16_t sport = 0;  // host order; 0 for protocols without ports
  uint16_t dport = 0;
  uint8_t proto = 0;
  bool v6 = false;
};

struct BuildOptions {
  uint32_t max_rules = 65536;     // refuse larger rule sets (build time and memory grow fast)
  uint32_t max_contexts = 16;     // per family; each one more trie walk per classification
  size_t max_memory_bytes = 0;    // rte_acl_config.max_size per context: 0 = no limit
  int socket_id = -1;             // NUMA socket of the tables; -1 = SOCKET_ID_ANY
};

struct ClassifierStats {
  uint32_t rules = 0;       // rules given to Build
  uint32_t rules_ipv4 = 0;  // rules in the IPv4 contexts (family-agnostic rules are in both)
  uint32_t rules_ipv6 = 0;
  uint32_t contexts_ipv4 = 0;  // rte_acl contexts a tuple of the family goes through
  uint32_t contexts_ipv6 = 0;
  uint64_t build_ns = 0;    // wall time of Build
  // Growth of the DPDK heap over the build, i.e. contexts, rule copies and run-time
  // tries (rte_acl has no size query). Exact unless another thread allocates from the
  // DPDK heap during the build.
  uint64_t memory_bytes = 0;
  const char* algorithm = "none";  // rte_acl classify method picked for this CPU
};

class PolicyClassifier {
 public:
  // The rules' indexes in `rules` are what Classify returns. nullptr and *error (if
  // given) set on a bad rule or a DPDK failure; nothing is half-built.
  static std::unique_ptr<PolicyClassifier> Build(const std::vector<PolicyRule>& rules, std::string* error);
  static std::unique_ptr<PolicyClassifier> Build(const std::vector<PolicyRule>& rules, const BuildOptions& options,
                                                 std::string* error);
  ~PolicyClassifier();
  PolicyClassifier(const PolicyClassifier&) = delete;
  PolicyClassifier& operator=(const PolicyClassifier&) = delete;

  // Index of the winning rule (lowest priority value, then earliest), or nullopt: no
  // rule matches and the caller applies the zone's default action.
  std::optional<uint32_t> Classify(const FlowTuple& t) const;
  // The same for a burst of new flows: out[i] = rule index or -1. Cheaper per tuple than
  // Classify: rte_acl walks several tuples interleaved, overlapping their cache misses.
  // No allocation, any n.
  void ClassifyBurst(const FlowTuple* const* tuples, uint32_t n, int32_t* out) const;

  const PolicyRule& rule(uint32_t index) const { return rules_[index]; }
  uint32_t size() const { return uint32_t(rules_.size()); }
  const ClassifierStats& stats() const { return stats_; }

  static constexpr uint32_t kBurstChunk = 64;  // tuples per rte_acl_classify call

 private:
  PolicyClassifier() = default;

  std::vector<PolicyRule> rules_;
  // rte_acl returns a rule's rank (+1) in the evaluation order: priority, then position.
  std::vector<uint32_t> by_rank_;   // rank -> index in rules_
  std::vector<rte_acl_ctx*> ctx4_;  // empty when no rule applies to the family
  std::vector<rte_acl_ctx*> ctx6_;
  ClassifierStats stats_;
};

const char* ActionName(Action a);

}  // namespace wardgate::policy
