// The immutable configuration generation and its RCU publication.
//
// Threads: workers call Current()/Quiescent() once per burst; the control thread
// (main lcore) calls Publish(). A published generation is never modified; the old
// one is freed only after every registered worker has passed a quiescent state, so
// when Publish() returns every worker runs the new generation (DESIGN.md).
#pragma once

#include <rte_rcu_qsbr.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dataplane/segment/segmentation.h"
#include "rules/matcher.h"
#include "rules/threshold.h"

namespace wardgate::generation {

inline constexpr uint16_t kMaxPorts = RTE_MAX_ETHPORTS;
inline constexpr uint16_t kNoPeer = 0xffff;

inline constexpr uint8_t kHygieneIpOptions = 0x01;
inline constexpr uint8_t kHygieneTunnels = 0x02;
inline constexpr uint8_t kHygieneIcmpProbes = 0x04;
inline constexpr uint8_t kHygieneTcpOptions = 0x08;
inline constexpr uint8_t kHygieneFragments = 0x10;

struct Generation {
  uint64_t id = 0;                   // set by Publish(), increasing from 1
  // Bridge table: frames received on port p leave on peer[p] (kNoPeer: dropped).
  std::array<uint16_t, kMaxPorts> peer;
  uint32_t max_frame_len = 1522;     // longer frames are dropped and counted
  // Stack hygiene: frames leaving through a port that faces the clinical devices
  // (toward_devices) are dropped when they carry what device stacks choke on.
  std::array<bool, kMaxPorts> toward_devices{};
  uint8_t hygiene = 0;               // kHygiene* bits
  // Pair index of each port (segment::kNoPair: in no pair), for zones defined by pair.
  std::array<int16_t, kMaxPorts> pair_of_port;

  // Zones, zone policy and remediation (null: no segmentation, offline mode), and the
  // quarantines in force (null or empty: none). Both rebuilt by the control thread;
  // a quarantine change publishes a new generation sharing the same segmentation.
  std::shared_ptr<const segment::Segmentation> segmentation;
  std::shared_ptr<const segment::QuarantineSet> quarantines;
  std::string policy_version;

  // Signatures: compiled once on the control thread, shared read-only by workers;
  // nullptr when no rule set is loaded (the bridge only forwards).
  std::shared_ptr<const rules::CompiledRules> rules;
  std::string rules_version;
  // One Hyperscan/PCRE2 scratch per worker id, built with `rules` (Snort 3's habit:
  // the scratch belongs to the database). Worker w alone uses (*scratch)[w]; the
  // generation is otherwise immutable. Generations with the same rules (a quarantine
  // change) share the scratches: worker w runs one generation at a time, so its
  // scratch is never used twice at once.
  using Scratches = std::vector<std::unique_ptr<rules::MatchScratch>>;
  std::shared_ptr<Scratches> scratch;
  // Thresholds, suppressions and rate filters of this rule set (thread-safe; null
  // when none applies), and which action decides among rules that fired on one
  // packet: lower rank first, indexed by rules::Action (Suricata's default order).
  std::shared_ptr<rules::ThresholdEngine> thresholds;
  std::array<uint8_t, 4> action_rank = DefaultActionRank();

  static std::array<uint8_t, 4> DefaultActionRank() {
    std::array<uint8_t, 4> r{};
    for (auto a : {rules::Action::kAlert, rules::Action::kDrop, rules::Action::kReject, rules::Action::kPass}) {
      r[static_cast<size_t>(a)] = static_cast<uint8_t>(rules::ActionOrder(a));
    }
    return r;
  }

  Generation() {
    peer.fill(kNoPeer);
    pair_of_port.fill(segment::kNoPair);
  }

  // A new generation with everything of `cur` (rules, scratches, segmentation,
  // quarantines): what a quarantine or rule change starts from.
  static std::unique_ptr<Generation> SameTopology(const Generation& cur);
};

class GenerationStore {
 public:
  // max_readers: worker thread ids 0..max_readers-1.
  explicit GenerationStore(uint32_t max_readers);
  ~GenerationStore();
  GenerationStore(const GenerationStore&) = delete;
  GenerationStore& operator=(const GenerationStore&) = delete;

  // --- worker side (reader id = worker id) ---
  void ReaderOnline(uint32_t reader);   // call once before the first Current()
  void ReaderOffline(uint32_t reader);  // call before the worker exits or blocks long
  const Generation* Current() const { return current_.load(std::memory_order_acquire); }
  void Quiescent(uint32_t reader) { rte_rcu_qsbr_quiescent(qsbr_, reader); }

  // --- control thread ---
  // Installs `next` (id assigned here), waits until every online reader has moved
  // past the old generation, frees it, returns the new id. Serialised internally.
  // With `retired`, the old generation is handed back instead of freed, so the caller
  // can first drain events that still point into it (rules), then drop it.
  uint64_t Publish(std::unique_ptr<Generation> next,
                   std::unique_ptr<const Generation>* retired = nullptr);
  uint64_t CurrentId() const { return Current() ? Current()->id : 0; }

 private:
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::atomic<const Generation*> current_{nullptr};  // read: workers; written: Publish()
  std::mutex publish_mutex_;                          // one publisher at a time
  uint64_t next_id_ = 1;
};

}  // namespace wardgate::generation
