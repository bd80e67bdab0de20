// Loading a rule set the way every tool does it (wardgate-dp at start and on
// LoadRules, the offline mode, `wardctl rules check`): parse the rule files (or
// text), apply the local overrides, read the threshold file, compile (with the disk
// cache of Hyperscan databases). Everything that goes wrong is collected as one list
// of "file:line: ..." errors; a set with errors is refused as a whole.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rules/db_cache.h"
#include "rules/matcher.h"
#include "rules/overrides.h"
#include "rules/rule.h"
#include "rules/threshold.h"

namespace wardgate::rules {

struct RuleSetSources {
  std::vector<std::string> files;      // rule files, in order
  std::string text, text_name;         // or rule text (LoadRules): used when files is empty
  LoadOptions options;                 // lenient, variables
  std::vector<std::string> override_files;  // YAML overrides, applied in order
  std::string threshold_file;          // Suricata threshold.config ("" none)
  size_t threshold_capacity = ThresholdEngine::kDefaultCapacity;
  std::string cache_dir;               // compiled databases ("" no cache)
  bool compile = true;                 // false: stop after overrides (nothing compiled)
};

struct LoadedRuleSet {
  RuleSet set;                         // after overrides
  OverrideReport overrides;
  std::vector<std::string> errors;     // refused when not empty
  std::vector<std::string> warnings;   // overrides that matched nothing, threshold entries for absent rules
  std::shared_ptr<const CompiledRules> compiled;
  std::shared_ptr<ThresholdEngine> thresholds;  // null when no rule or entry needs one
  DatabaseCache::Stats cache;          // this load's cache use
  std::string cache_error;             // the cache directory was unusable (the set still compiles)
  bool ok() const { return errors.empty() && (compiled || set.rules.empty()); }
};

LoadedRuleSet LoadRuleSet(const RuleSetSources& sources);

}  // namespace wardgate::rules
