// Offline mode: the worker pipeline over a capture file instead of ports, for rule
// authors and comparisons with other engines. Frames are read with libpcap into
// mbufs, run through the same ProcessBurst() as the live workers, and the forwarded
// ones written to an output capture with their original timestamps.
// Threads: main lcore only; EAL must be initialised (for the mempool).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "dataplane/config/config.h"

namespace wardgate::offline {

struct OfflineOptions {
  std::string pcap_in;
  std::string pcap_out;             // empty: forwarded frames are counted, not written
  std::vector<std::string> rules;   // rule files (added to the config's rules.files)
  std::string eve;                  // EVE JSON output (else the config's eve.file)
  bool simulate_ips = false;        // apply drop/reject verdicts as inline mode would
};

// Runs the capture through the pipeline; prints the final counters as one JSON
// object on stdout. Returns the process exit code: 0 done, 1 I/O error or a rule set
// that does not load (its errors printed as file:line: sid N: keyword: message).
int RunOffline(const config::Config& cfg, const OfflineOptions& opts, const std::atomic<bool>& stop);

}  // namespace wardgate::offline
