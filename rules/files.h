// Reading rule files from disk into one RuleSet (for wardgate-dp and wardctl).
#pragma once

#include <string>
#include <vector>

#include "rules/rule.h"

namespace wardgate::rules {

// Parses every file in order into one set. A file that cannot be read becomes a
// LoadError with keyword "file". Duplicate sids across files are errors too.
RuleSet ParseRuleFiles(const std::vector<std::string>& paths, const LoadOptions& options);

}  // namespace wardgate::rules
