// Local overrides: a rule author takes a published rule set as it is and tunes it in
// one YAML file (enable, disable, change the action), instead of editing the vendor's
// files, which the next update would overwrite. Read by wardgate-dp, `wardctl rules
// check` and the offline mode alike.
//
// Format (the whole file is refused if any part of it is wrong):
//
//   overrides:                          # a list; an empty file or `overrides: []` is a no-op
//     - sid: 2100498                    # selectors (at least one; all given must match)
//       action: drop                    # effects (at least one)
//       comment: "CAB-1142: block on the imaging VLAN"
//     - sid: "2010000-2010999"          # an inclusive range, as a string
//       disable: true
//     - sid: [2019401, "2100000-2100010"]
//       gid: 1
//       enable: true
//     - classtype: policy-violation
//       disable: true
//     - metadata: "wardgate_tier policy"
//       enable: true                    # enables rules published commented out
//     - file: "emerging-scan*.rules"
//       msg: "nmap"
//       action: alert
//     - all: true                       # every rule: e.g. an IPS that drops by default
//       action: drop
//
// Selectors. Each takes one value or a list (a list matches if any element matches);
// the selectors of one entry are ANDed.
//   sid        N, "N-M" (inclusive, lo <= hi), each in 1..4294967295. Matches any gid
//              unless `gid` is given too.
//   gid        N in 1..4294967295.
//   classtype  a classtype name, case-insensitive, exact.
//   metadata   "key value": a rule's metadata pair with that key and value
//              (case-insensitive, blanks around them ignored); "key" alone: any value.
//   msg        a case-insensitive substring of the rule's msg. Plain text, not a regex:
//              authors paste it from an alert, and msgs are full of `.`, `(`, `[`.
//   msg_regex  a PCRE2 pattern searched in the msg (case-sensitive unless `(?i)`).
//   file       a glob (fnmatch) on the rule file's base name, or on the whole path
//              when the pattern contains `/` (suricata-update's `group:`).
//   all        true: every rule; not combined with other selectors.
// Effects (both kinds allowed in one entry; enable and disable together are not):
//   enable: true    a matched rule in RuleSet::disabled moves to RuleSet::rules
//   disable: true   a matched rule in RuleSet::rules moves to RuleSet::disabled
//   action: alert|drop|reject|pass   sets Header::action (on disabled rules too, so a
//                   later enable brings the rule in with the chosen action)
// Other keys: `comment` (free text, kept for reports). Unknown and duplicate keys are
// errors (a typo must not silently select nothing).
//
// Selectors match enabled and disabled rules alike. Entries apply in file order, each
// to the state the earlier ones left, so a later entry wins over an earlier one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rules/rule.h"

namespace wardgate::rules {

struct SidRange {
  uint32_t lo = 0, hi = 0;  // inclusive
};

// One list entry after validation. Text selectors are stored lowercased where the
// match is case-insensitive. An empty vector means "selector not given".
struct OverrideEntry {
  std::string file;  // of the overrides file, for messages
  int line = 0;      // 1-based line of the entry
  // Selectors.
  bool all = false;
  std::vector<SidRange> sids;
  std::vector<uint32_t> gids;
  std::vector<std::string> classtypes;
  std::vector<std::pair<std::string, std::string>> metadata;  // key, value ("": any)
  std::vector<std::string> msgs;
  std::vector<std::string> msg_regexes;
  std::vector<std::string> rule_files;  // globs
  // Effects.
  std::optional<bool> enable;  // true: enable, false: disable
  std::optional<Action> action;
  std::string comment;
  std::string Where() const;  // "file:line"
};

struct Overrides {
  std::vector<OverrideEntry> entries;  // in file order
};

// Parses an overrides file. On any problem returns false, leaves *out empty and
// appends every problem found to *errors as "file:line: key: message" (line 1-based;
// key "yaml" for syntax errors, "entry" for an entry as a whole). Never throws.
bool ParseOverrides(const std::string& yaml_text, const std::string& file, Overrides* out,
                    std::vector<std::string>* errors);

struct OverrideReport {
  struct EntryResult {
    std::string where;          // "file:line" of the entry
    size_t matched = 0;         // rules selected (enabled and disabled)
    size_t enabled = 0;         // rules this entry moved into RuleSet::rules
    size_t disabled = 0;        // rules this entry moved into RuleSet::disabled
    size_t action_changed = 0;  // rules whose action this entry changed
  };
  std::vector<EntryResult> entries;  // one per Overrides entry, in order
  std::vector<size_t> unmatched;     // indices into entries that selected no rule
  // Net effect on the set, comparing the end state with the published one (an entry
  // undone by a later one counts nowhere).
  size_t enabled = 0;         // published disabled, now enabled
  size_t disabled = 0;        // published enabled, now disabled
  size_t action_changed = 0;  // rules (either list) whose action differs from published
  // "file:line: entry matched no rule" for each unmatched entry.
  std::vector<std::string> Warnings() const;
};

// Applies the entries in order to *set: moves rules between set->rules and
// set->disabled and changes Header::action. Both lists keep file order: rules that
// stay keep their relative order, rules that move in are merged by (file, line), the
// files ranked as they first appear in the two lists. `report` may be nullptr.
void ApplyOverrides(const Overrides& o, RuleSet* set, OverrideReport* report);

}  // namespace wardgate::rules
