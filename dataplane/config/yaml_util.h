// YAML reading helpers for the configuration loaders (config.cc, segmentation.cc):
// every problem becomes a ConfigError naming the key path.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <set>
#include <string>

#include "dataplane/config/config.h"

namespace wardgate::config::yaml {

inline std::string Join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

// Refuses keys this version does not know, so a typo is reported, not ignored.
inline void CheckKeys(const YAML::Node& node, const std::string& path,
               const std::set<std::string>& allowed) {
  if (!node.IsMap()) throw ConfigError(path.empty() ? "(top level)" : path, "must be a mapping");
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) throw ConfigError(path.empty() ? "(top level)" : path, "keys must be plain names");
    const auto key = kv.first.Scalar();
    // YAML keeps only one of two equal keys: say so rather than silently lose one.
    if (!seen.insert(key).second) throw ConfigError(Join(path, key), "appears twice");
    if (!allowed.count(key)) {
      std::string known;
      for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
      throw ConfigError(Join(path, key), "unknown key (known: " + known + ")");
    }
  }
}

template <typename T>
T Uint(const YAML::Node& node, const std::string& path, uint64_t min, uint64_t max) {
  if (!node.IsScalar()) throw ConfigError(path, "must be a number");
  const auto& text = node.Scalar();
  uint64_t value = 0;
  size_t used = 0;
  try {
    if (!text.empty() && text[0] == '-') throw std::invalid_argument("negative");
    value = std::stoull(text, &used, 0);
  } catch (const std::exception&) {
    throw ConfigError(path, "'" + text + "' is not a non-negative integer");
  }
  if (used != text.size()) throw ConfigError(path, "'" + text + "' is not a non-negative integer");
  if (value < min || value > max) {
    throw ConfigError(path, "must be between " + std::to_string(min) + " and " +
                                std::to_string(max) + ", got " + text);
  }
  return static_cast<T>(value);
}

inline std::string String(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) throw ConfigError(path, "must be a string");
  return node.Scalar();
}

inline bool Bool(const YAML::Node& node, const std::string& path) {
  const auto text = String(node, path);
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  throw ConfigError(path, "must be true or false, got '" + text + "'");
}


}  // namespace wardgate::config::yaml
