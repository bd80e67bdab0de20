// What the dataplane reports about itself: plain structs gathered by the control
// thread from per-worker counters and ethdev statistics (no lock on the hot path),
// turned into protobuf at the API edge (api_server.cc) or JSON (final counters).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <mutex>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/events/alert.h"
#include "dataplane/events/event_ring.h"
#include "dataplane/generation/generation.h"
#include "dataplane/port/port.h"
#include "dataplane/worker/counters.h"
#include "dataplane/worker/worker.h"

namespace wardgate::control {

struct PortStatus {
  port::PortInfo info;
  bool link_up = false;
  uint32_t link_speed_mbps = 0;
  uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
  uint64_t rx_missed = 0, rx_nombuf = 0, rx_errors = 0, tx_errors = 0, tx_full = 0;
};

struct WorkerStatus {
  uint32_t worker_id = 0;
  uint32_t lcore = 0;
  std::vector<std::string> rx_queues;
  uint64_t rx_packets = 0, tx_packets = 0, busy_polls = 0, idle_polls = 0, sleeps = 0;
  uint64_t tx_full = 0, malformed = 0;
};

using ReasonCounts = std::vector<std::pair<std::string, uint64_t>>;

struct Status {
  std::string version;
  std::string boot_id;
  uint64_t uptime_ms = 0;
  uint64_t generation_id = 0;
  std::vector<PortStatus> ports;
  std::vector<WorkerStatus> workers;
  ReasonCounts malformed;  // by parse error, summed over workers
  ReasonCounts drops;      // by drop reason, summed over workers
  std::string rules_version;
  uint32_t rules_loaded = 0;
  uint64_t alerts = 0;       // alert records workers produced
  uint64_t events_lost = 0;  // dropped on a full event ring
  ReasonCounts flows;        // flow and stream counters, summed over workers
  ReasonCounts segmentation; // policy decisions, devices, quarantines
  std::string policy_version;
  std::string snapshot_path, snapshot_error;
};

// The running dataplane, as the control thread sees it. Owned by main().
struct Dataplane {
  config::Config config;
  std::string boot_id;
  std::chrono::steady_clock::time_point started;
  std::vector<port::PortInfo> ports;
  std::vector<worker::WorkerContext> workers;  // counters and lcores below, by index
  std::vector<uint32_t> worker_lcores;
  generation::GenerationStore* store = nullptr;
  bool query_ethdev = true;  // false in offline mode (no ethdevs)
  // One event ring per worker (index = worker id); the control thread drains them.
  std::vector<events::EventRing<events::AlertRecord>*> rings;
  // Held by whoever publishes a generation or reads the current one from outside
  // the workers (status, reload), so a generation is never read while being freed.
  std::mutex* control_mu = nullptr;
  // Adds what the controller knows (quarantines, snapshot); called without control_mu.
  std::function<void(Status&)> add_segmentation;
};

// Sums counters. Any thread may call it while workers run.
Status CollectStatus(const Dataplane& dp);

// Sums a set of workers' counters per reason (used by CollectStatus and offline mode).
ReasonCounts SumMalformed(const std::vector<const worker::WorkerCounters*>& counters);
ReasonCounts SumDrops(const std::vector<const worker::WorkerCounters*>& counters);

nlohmann::json ToJson(const Status& s);

// A random 128-bit id in hex, fresh for each process start.
std::string NewBootId();

}  // namespace wardgate::control
