// Rule files or text -> a compiled rule set for a generation (control thread).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dataplane/config/config.h"
#include "dataplane/generation/generation.h"
#include "rules/matcher.h"
#include "rules/ruleset.h"
#include "rules/rule.h"

namespace wardgate::inspect {

struct RulesLoad {
  std::shared_ptr<const rules::CompiledRules> compiled;  // null when refused
  std::shared_ptr<rules::ThresholdEngine> thresholds;    // null when no threshold applies
  std::array<uint8_t, 4> action_rank = generation::Generation::DefaultActionRank();
  std::vector<std::string> warnings;  // overrides that matched nothing, threshold entries for absent rules
  rules::DatabaseCache::Stats cache;  // compiled databases reused from / stored to the disk cache
  std::vector<std::string> errors;  // "file:line: sid N: keyword: message", or compile errors
  int rules_loaded = 0;
  int rules_seen = 0;
  std::map<std::string, int> skipped_by_keyword;  // lenient mode
};

// Strict unless cfg.lenient: any rule error refuses the whole set.
RulesLoad LoadRuleFiles(const std::vector<std::string>& files, const config::RulesConfig& cfg);
RulesLoad LoadRuleText(const std::string& text, const std::string& name, const config::RulesConfig& cfg);

// Puts the loaded set into `gen` with one fresh scratch per worker.
void AttachRules(generation::Generation& gen, const RulesLoad& loaded, const std::string& version, uint32_t workers);

}  // namespace wardgate::inspect
