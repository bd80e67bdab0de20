// The control thread's duties that touch the workers' shared state: draining the
// event rings into the EVE sink, replacing the rule set, and the quarantines, each by
// publishing a new generation (DESIGN.md "Generations"). One mutex orders them, so
// events that point into a generation's rules are always written before that
// generation is freed, and the registry, the published quarantine set and the
// snapshot file always agree.
// Threads: the control thread (Drain, Tick) and gRPC threads (LoadRules, Quarantine,
// Release, lists); never workers.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/control/api_server.h"
#include "dataplane/control/segmentation_ops.h"
#include "dataplane/device/device_table.h"
#include "dataplane/device/inventory.h"
#include "dataplane/events/alert.h"
#include "dataplane/events/eve_sink.h"
#include "dataplane/events/event_ring.h"
#include "dataplane/generation/generation.h"
#include "dataplane/quarantine/registry.h"
#include "dataplane/quarantine/snapshot.h"

namespace wardgate::control {

class Controller final : public SegmentationOps {
 public:
  using Clock = std::function<uint64_t()>;  // wall clock, ns since the epoch

  Controller(generation::GenerationStore& store, std::vector<events::EventRing<events::AlertRecord>*> rings,
             events::EveSink& sink, config::RulesConfig rules_cfg, uint32_t workers);

  // Segmentation: the configuration (default levels, class limits, static devices),
  // the workers' device tables, the snapshot file and the boot id written into it.
  void SetSegmentation(const config::SegmentationConfig& seg, std::vector<const device::DeviceTable*> tables,
                       std::string boot_id, std::vector<std::string> pair_names = {});
  void SetClock(Clock clock) { clock_ = std::move(clock); }

  // At start, before the first generation is published: the quarantines of the last
  // run from the snapshot. Returns false with *why when the file is unreadable (the
  // caller decides); entries are then the registry's. Fills `set` for the generation.
  bool Restore(std::string* why);
  std::shared_ptr<const segment::QuarantineSet> QuarantineSetNow() const;
  // The snapshot could not be read at start: an EVE event and the status say so (the
  // quarantines it held are not enforced until re-applied).
  void ReportUnreadableSnapshot(const std::string& why, const std::string& kept_as);
  std::string snapshot_error() {
    std::lock_guard lock(mu_);
    return snapshot_error_;
  }
  size_t quarantine_count();

  // Writes every queued event (EVE file, WatchEvents), then applies the quarantines
  // that rules asked for (`quarantine:` option).
  void Drain();
  // Expires quarantines whose time to live passed and merges the device inventory
  // (IP conflicts become events). Call often (the control loop does, every ms).
  void Tick();

  // Compiles `source` (outside the lock) and, if it loads, publishes it with the
  // current bridge table; returns when every worker inspects with it.
  ApiServer::LoadRulesResult LoadRules(const std::string& source, const std::string& source_name,
                                       const std::string& version, bool lenient);

  // SegmentationOps (the internal API).
  QuarantineOutcome Quarantine(const QuarantineCommand& cmd) override;
  QuarantineOutcome Release(const std::string& device, const std::string& reason, const std::string& actor) override;
  std::vector<QuarantineView> Quarantines() override;
  std::vector<DeviceView> Devices() override;
  QuarantineOutcome SetDevice(const DeviceRecordCommand& cmd) override;

  std::mutex& mutex() { return mu_; }

 private:
  // A quarantine a rule asked for, collected while draining.
  struct RuleRequest {
    device::Mac mac;
    rules::Rule::Quarantine level;
    uint32_t sid;
    std::string msg;
    uint64_t match_ts_ns;
  };

  void DrainLocked();
  void ApplyRuleRequestsLocked();
  // Publishes the registry's quarantines in a new generation and writes the snapshot;
  // returns the generation id. Holds mu_.
  // enforced_ns: when every worker enforced it (before the snapshot's write).
  uint64_t PublishQuarantinesLocked(uint64_t* enforced_ns = nullptr);
  void SaveSnapshotLocked();
  void EmitQuarantineEvent(const char* action, const quarantine::Entry& e, const std::string& extra_key = "",
                           uint64_t extra_value = 0);
  QuarantineView ViewOf(const quarantine::Entry& e) const;
  // The device a selector names, by MAC or IP; kId is resolved to the device's MAC.
  bool Resolve(const std::string& text, quarantine::Selector* out, QuarantineOutcome* err) const;
  std::optional<device::DeviceInfo> DeviceOf(const quarantine::Selector& s) const;
  config::Criticality CriticalityOf(const quarantine::Selector& s) const;
  // The zone of an inventory device as the workers resolve it (by its first address).
  std::string ZoneOf(const device::DeviceInfo& d) const;
  std::vector<DeviceView> DevicesLocked();
  uint64_t Now() const { return clock_(); }
  static std::string Utf8(const std::string& in);

  generation::GenerationStore& store_;
  std::vector<events::EventRing<events::AlertRecord>*> rings_;
  events::EveSink& sink_;
  config::RulesConfig rules_cfg_;
  uint32_t workers_;
  std::mutex mu_;

  config::SegmentationConfig seg_cfg_;
  std::vector<const device::DeviceTable*> tables_;
  device::Inventory inventory_;
  quarantine::Registry registry_;
  std::string boot_id_;
  std::vector<std::string> pair_names_;  // the configured pairs, for rebuilding the segmentation
  std::string snapshot_error_;
  std::vector<RuleRequest> rule_requests_;
  std::vector<RuleRequest> rule_refusals_;  // matches on frames toward a device: reported, not applied
  uint64_t last_inventory_ns_ = 0;
  Clock clock_;
};

}  // namespace wardgate::control
