#include "dataplane/control/controller.h"

#include "dataplane/inspect/rules_loader.h"

namespace wardgate::control {

Controller::Controller(generation::GenerationStore& store,
                       std::vector<events::EventRing<events::AlertRecord>*> rings, events::EveSink& sink,
                       config::RulesConfig rules_cfg, uint32_t workers)
    : store_(store), rings_(std::move(rings)), sink_(sink), rules_cfg_(std::move(rules_cfg)), workers_(workers) {}

void Controller::DrainLocked() {
  for (auto* ring : rings_) sink_.Drain(*ring);
  sink_.Flush();
}

void Controller::Drain() {
  std::lock_guard lock(mu_);
  DrainLocked();
}

ApiServer::LoadRulesResult Controller::LoadRules(const std::string& source, const std::string& source_name,
                                                 const std::string& version, bool lenient) {
  ApiServer::LoadRulesResult result;
  config::RulesConfig cfg = rules_cfg_;
  cfg.lenient = lenient;
  auto loaded = inspect::LoadRuleText(source, source_name.empty() ? "api" : source_name, cfg);
  result.errors = loaded.errors;
  result.skipped_by_keyword = loaded.skipped_by_keyword;
  if (!loaded.compiled) return result;  // refused: the running set stays
  result.compile_ms = loaded.compiled->stats().compile_ms;

  std::lock_guard lock(mu_);
  auto gen = std::make_unique<generation::Generation>();
  const auto* cur = store_.Current();
  gen->peer = cur->peer;
  gen->toward_devices = cur->toward_devices;
  gen->hygiene = cur->hygiene;
  gen->max_frame_len = cur->max_frame_len;
  inspect::AttachRules(*gen, loaded, version, workers_);
  std::unique_ptr<const generation::Generation> retired;
  result.generation_id = store_.Publish(std::move(gen), &retired);
  // Every worker has left the old generation: its events are all in the rings now.
  DrainLocked();
  retired.reset();
  result.accepted = true;
  result.rules_loaded = static_cast<uint32_t>(loaded.rules_loaded);
  return result;
}

}  // namespace wardgate::control
