#include "rules/ruleset.h"

#include <fstream>
#include <set>
#include <sstream>

#include "rules/files.h"

namespace wardgate::rules {
namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  *out = text.str();
  return true;
}

}  // namespace

LoadedRuleSet LoadRuleSet(const RuleSetSources& src) {
  LoadedRuleSet out;
  out.set = src.files.empty() ? ParseRules(src.text, src.text_name, src.options)
                              : ParseRuleFiles(src.files, src.options);
  for (const LoadError& e : out.set.errors) out.errors.push_back(e.ToString());

  // Overrides: every file is checked even when an earlier one fails.
  for (const std::string& path : src.override_files) {
    std::string text;
    if (!ReadFile(path, &text)) {
      out.errors.push_back(path + ": cannot read the overrides file");
      continue;
    }
    Overrides o;
    std::vector<std::string> errors;
    if (!ParseOverrides(text, path, &o, &errors)) {
      out.errors.insert(out.errors.end(), errors.begin(), errors.end());
      continue;
    }
    OverrideReport report;
    ApplyOverrides(o, &out.set, &report);
    for (auto& w : report.Warnings()) out.warnings.push_back(std::move(w));
    out.overrides.entries.insert(out.overrides.entries.end(), report.entries.begin(), report.entries.end());
    out.overrides.enabled += report.enabled;
    out.overrides.disabled += report.disabled;
    out.overrides.action_changed += report.action_changed;
  }
  // An enabled copy of a disabled rule may now clash with a rule already in force.
  std::set<std::pair<uint32_t, uint32_t>> seen;
  for (const Rule& r : out.set.rules) {
    if (!seen.insert({r.gid, r.sid}).second) {
      out.errors.push_back(r.file + ":" + std::to_string(r.line) + ": sid " + std::to_string(r.sid) +
                           ": sid: enabled by the overrides, but a rule with this sid is already in force");
    }
  }

  ThresholdConfig tconfig;
  if (!src.threshold_file.empty()) {
    std::string text;
    std::vector<std::string> errors;
    if (!ReadFile(src.threshold_file, &text)) {
      out.errors.push_back(src.threshold_file + ": cannot read the threshold file");
    } else if (!ParseThresholdConfig(text, src.threshold_file, &tconfig, &errors)) {
      out.errors.insert(out.errors.end(), errors.begin(), errors.end());
    } else {
      for (auto& w : ThresholdConfigWarnings(tconfig, out.set.rules)) out.warnings.push_back(std::move(w));
    }
  }
  if (!out.errors.empty() || !src.compile) return out;

  bool needs_thresholds = !tconfig.empty();
  for (const Rule& r : out.set.rules) needs_thresholds |= r.threshold || r.detection_filter;
  if (needs_thresholds) {
    try {
      out.thresholds = std::make_shared<ThresholdEngine>(std::move(tconfig), src.threshold_capacity);
    } catch (const std::bad_alloc&) {
      out.errors.push_back("threshold table: cannot allocate " + std::to_string(src.threshold_capacity) + " entries");
      return out;
    }
  }

  std::unique_ptr<DatabaseCache> cache;
  if (!src.cache_dir.empty()) {
    cache = std::make_unique<DatabaseCache>(src.cache_dir);
    if (!cache->ok()) out.cache_error = cache->error();
  }
  std::string error;
  CompileOptions options;
  options.cache = cache && cache->ok() ? cache.get() : nullptr;
  out.compiled = CompiledRules::Compile(out.set, &error, options);
  if (!out.compiled) out.errors.push_back(error);
  if (cache) out.cache = cache->stats();
  return out;
}

}  // namespace wardgate::rules
