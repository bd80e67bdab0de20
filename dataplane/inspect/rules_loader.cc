#include "dataplane/inspect/rules_loader.h"


namespace wardgate::inspect {
namespace {

RulesLoad Load(rules::RuleSetSources src, const config::RulesConfig& cfg) {
  src.options.lenient = cfg.lenient;
  src.options.variables = cfg.variables;
  src.override_files = cfg.overrides;
  src.threshold_file = cfg.threshold_file;
  src.threshold_capacity = cfg.threshold_capacity;
  src.cache_dir = cfg.cache_dir;
  rules::LoadedRuleSet loaded = rules::LoadRuleSet(src);
  RulesLoad out;
  out.rules_seen = loaded.set.rules_seen;
  out.skipped_by_keyword = loaded.set.skipped_by_keyword;
  out.errors = std::move(loaded.errors);
  out.warnings = std::move(loaded.warnings);
  if (!loaded.cache_error.empty()) out.warnings.push_back("rule cache " + cfg.cache_dir + ": " + loaded.cache_error);
  out.cache = loaded.cache;
  // Lenient mode skips rules with unsupported keywords (counted, not errors); a rule
  // that is wrong refuses the whole set in either mode, so a typo never silently
  // disables a signature.
  if (!out.errors.empty() || !loaded.compiled) return out;
  out.rules_loaded = static_cast<int>(loaded.set.rules.size());
  out.compiled = std::move(loaded.compiled);
  out.thresholds = std::move(loaded.thresholds);
  for (size_t i = 0; i < cfg.action_order.size() && i < 4; ++i) {
    const std::string& a = cfg.action_order[i];
    const rules::Action action = a == "pass" ? rules::Action::kPass : a == "drop" ? rules::Action::kDrop
                                 : a == "reject" ? rules::Action::kReject : rules::Action::kAlert;
    out.action_rank[static_cast<size_t>(action)] = static_cast<uint8_t>(i);
  }
  return out;
}

}  // namespace

RulesLoad LoadRuleFiles(const std::vector<std::string>& files, const config::RulesConfig& cfg) {
  rules::RuleSetSources src;
  src.files = files;
  return Load(std::move(src), cfg);
}

RulesLoad LoadRuleText(const std::string& text, const std::string& name, const config::RulesConfig& cfg) {
  rules::RuleSetSources src;
  src.text = text;
  src.text_name = name;
  return Load(std::move(src), cfg);
}

void AttachRules(generation::Generation& gen, const RulesLoad& loaded, const std::string& version, uint32_t workers) {
  gen.scratch = std::make_shared<generation::Generation::Scratches>();
  if (loaded.compiled) {
    for (uint32_t w = 0; w < workers; ++w) gen.scratch->push_back(loaded.compiled->NewScratch());
  }
  gen.rules = loaded.compiled;
  gen.thresholds = loaded.thresholds;
  gen.action_rank = loaded.action_rank;
  gen.rules_version = version;
}

}  // namespace wardgate::inspect
