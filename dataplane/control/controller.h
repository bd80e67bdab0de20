// The control thread's duties that touch the workers' shared state: draining the
// event rings into the EVE sink, and replacing the rule set by publishing a new
// generation (DESIGN.md "Generations"). One mutex orders them, so events that point
// into a generation's rules are always written before that generation is freed.
// Threads: the control thread (Drain) and gRPC threads (LoadRules); never workers.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/control/api_server.h"
#include "dataplane/events/alert.h"
#include "dataplane/events/eve_sink.h"
#include "dataplane/events/event_ring.h"
#include "dataplane/generation/generation.h"

namespace wardgate::control {

class Controller {
 public:
  Controller(generation::GenerationStore& store, std::vector<events::EventRing<events::AlertRecord>*> rings,
             events::EveSink& sink, config::RulesConfig rules_cfg, uint32_t workers);

  // Writes every queued event (EVE file, WatchEvents).
  void Drain();

  // Compiles `source` (outside the lock) and, if it loads, publishes it with the
  // current bridge table; returns when every worker inspects with it.
  ApiServer::LoadRulesResult LoadRules(const std::string& source, const std::string& source_name,
                                       const std::string& version, bool lenient);

  std::mutex& mutex() { return mu_; }

 private:
  void DrainLocked();

  generation::GenerationStore& store_;
  std::vector<events::EventRing<events::AlertRecord>*> rings_;
  events::EveSink& sink_;
  config::RulesConfig rules_cfg_;
  uint32_t workers_;
  std::mutex mu_;
};

}  // namespace wardgate::control
