#include "dataplane/inspect/rules_loader.h"

#include "rules/files.h"

namespace wardgate::inspect {
namespace {

rules::LoadOptions Options(const config::RulesConfig& cfg) {
  rules::LoadOptions o;
  o.lenient = cfg.lenient;
  o.variables = cfg.variables;
  return o;
}

RulesLoad Finish(rules::RuleSet set, bool lenient) {
  RulesLoad out;
  out.rules_seen = set.rules_seen;
  out.skipped_by_keyword = set.skipped_by_keyword;
  for (const auto& e : set.errors) out.errors.push_back(e.ToString());
  // Lenient mode skips rules with unsupported keywords (counted, not errors); a rule
  // that is wrong refuses the whole set in either mode, so a typo never silently
  // disables a signature.
  (void)lenient;
  if (!out.errors.empty()) return out;
  out.rules_loaded = static_cast<int>(set.rules.size());
  std::string error;
  auto compiled = rules::CompiledRules::Compile(set, &error);
  if (!compiled) {
    out.errors.push_back(error);
    out.rules_loaded = 0;
    return out;
  }
  out.compiled = std::move(compiled);
  return out;
}

}  // namespace

RulesLoad LoadRuleFiles(const std::vector<std::string>& files, const config::RulesConfig& cfg) {
  return Finish(rules::ParseRuleFiles(files, Options(cfg)), cfg.lenient);
}

RulesLoad LoadRuleText(const std::string& text, const std::string& name, const config::RulesConfig& cfg) {
  return Finish(rules::ParseRules(text, name, Options(cfg)), cfg.lenient);
}

void AttachRules(generation::Generation& gen, std::shared_ptr<const rules::CompiledRules> compiled,
                 const std::string& version, uint32_t workers) {
  gen.scratch.clear();
  if (compiled) {
    for (uint32_t w = 0; w < workers; ++w) gen.scratch.push_back(compiled->NewScratch());
  }
  gen.rules = std::move(compiled);
  gen.rules_version = version;
}

}  // namespace wardgate::inspect
