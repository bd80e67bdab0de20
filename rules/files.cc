#include "rules/files.h"

#include <fstream>
#include <set>
#include <sstream>

namespace wardgate::rules {

RuleSet ParseRuleFiles(const std::vector<std::string>& paths, const LoadOptions& options) {
  RuleSet all;
  std::set<std::pair<uint32_t, uint32_t>> seen;  // (gid, sid)
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      all.errors.push_back({path, 0, 0, "file", "cannot read the rule file"});
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    RuleSet one = ParseRules(text.str(), path, options);
    all.rules_seen += one.rules_seen;
    for (auto& e : one.errors) all.errors.push_back(std::move(e));
    for (const auto& [k, n] : one.skipped_by_keyword) all.skipped_by_keyword[k] += n;
    all.disabled_unparsed += one.disabled_unparsed;
    for (auto& r : one.disabled) all.disabled.push_back(std::move(r));
    for (auto& r : one.rules) {
      if (!seen.insert({r.gid, r.sid}).second) {
        all.errors.push_back({r.file, r.line, r.sid, "sid", "duplicate sid (also in an earlier file)"});
        continue;
      }
      all.rules.push_back(std::move(r));
    }
  }
  return all;
}

}  // namespace wardgate::rules
