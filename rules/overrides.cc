// Local overrides (format and semantics in overrides.h).
//
// Parsing collects every problem of the file before refusing it, so an author fixes a
// file in one round. yaml-cpp throws on syntax errors and on some conversions: all of
// it is caught here and becomes an error line.
#include "rules/overrides.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fnmatch.h>
#include <pcre2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <exception>
#include <map>
#include <memory>
#include <set>
#include <string_view>

namespace wardgate::rules {
namespace {

constexpr uint32_t kMatchLimit = 100000;  // msg_regex: backtracking bound per msg

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

// Decimal in 1..2^32-1, nothing else (no sign, no hex: a sid is written as a number).
bool ParseId(std::string_view s, uint32_t* out) {
  s = Trim(s);
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v == 0 || v > 0xffffffffULL) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Owns a compiled PCRE2 pattern; nullptr code with `error` set if it does not compile.
struct Regex {
  pcre2_code* code = nullptr;
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  std::string error;
  explicit Regex(const std::string& pattern) {
    int err = 0;
    PCRE2_SIZE at = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &err, &at, nullptr);
    if (!code) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      error = std::string(reinterpret_cast<const char*>(buf)) + " at offset " + std::to_string(at);
      return;
    }
    md = pcre2_match_data_create_from_pattern(code, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    if (mctx) pcre2_set_match_limit(mctx, kMatchLimit);
  }
  ~Regex() {
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // A match error (limit hit, bad UTF) counts as no match: an override must not
  // select rules by accident.
  bool Search(const std::string& s) const {
    if (!code || !md) return false;
    return pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, md, mctx) >= 0;
  }
};

// ---------------------------------------------------------------------------------
// Parsing

class Parser {
 public:
  Parser(const std::string& file, std::vector<std::string>* errors) : file_(file), errors_(errors) {}

  void Error(int line, const std::string& key, const std::string& message) {
    errors_->push_back(file_ + ":" + std::to_string(line) + ": " + key + ": " + message);
    ++count_;
  }
  int count() const { return count_; }

  // 1-based line of a node; `fallback` when yaml-cpp has no position for it.
  static int Line(const YAML::Node& n, int fallback) {
    const YAML::Mark m = n.Mark();
    return m.line >= 0 ? m.line + 1 : fallback;
  }
  // A value's line; an empty value (`key:`) has its key's line, not the next token's.
  static int ValueLine(const YAML::Node& v, int key_line) { return v.IsNull() ? key_line : Line(v, key_line); }

  void Document(const YAML::Node& root, Overrides* out) {
    if (!root || root.IsNull()) return;  // empty file: nothing to override
    if (!root.IsMap()) {
      Error(Line(root, 1), "overrides", "the file must be a mapping with an `overrides` list");
      return;
    }
    YAML::Node list;
    std::set<std::string> seen;
    for (const auto& kv : root) {
      const int line = Line(kv.first, 1);
      if (!kv.first.IsScalar()) {
        Error(line, "(top level)", "keys must be plain names");
        continue;
      }
      const std::string key = kv.first.Scalar();
      // yaml-cpp keeps both of two equal keys and `node[key]` sees only the first.
      if (!seen.insert(key).second) {
        Error(line, key, "appears twice");
        continue;
      }
      if (key != "overrides") {
        Error(line, key, "unknown key (known: overrides)");
        continue;
      }
      list = kv.second;
    }
    if (!list || list.IsNull()) return;  // `overrides:` with nothing under it
    if (!list.IsSequence()) {
      Error(Line(list, 1), "overrides", "must be a list of entries");
      return;
    }
    for (const auto& item : list) {
      OverrideEntry e;
      if (Entry(item, &e)) out->entries.push_back(std::move(e));
    }
  }

 private:
  static bool IsTrue(const std::string& s) {
    const std::string l = Lower(s);
    return l == "true" || l == "yes" || l == "on";
  }
  static bool IsFalse(const std::string& s) {
    const std::string l = Lower(s);
    return l == "false" || l == "no" || l == "off";
  }

  // Calls f(element, line) for a scalar or for each element of a list of scalars.
  template <typename F>
  bool EachScalar(const YAML::Node& v, int line, const std::string& key, F f) {
    if (v.IsScalar()) {
      f(v.Scalar(), Line(v, line));
      return true;
    }
    if (v.IsSequence()) {
      if (v.size() == 0) {
        Error(ValueLine(v, line), key, "an empty list selects nothing");
        return false;
      }
      for (const auto& el : v) {
        if (!el.IsScalar()) {
          Error(Line(el, line), key, "list elements must be single values");
          continue;
        }
        f(el.Scalar(), Line(el, line));
      }
      return true;
    }
    Error(ValueLine(v, line), key, v.IsNull() ? "needs a value" : "must be a value or a list of values");
    return false;
  }

  void Sid(const std::string& text, int line, OverrideEntry* e) {
    const size_t dash = text.find('-');
    SidRange r;
    if (dash == std::string::npos) {
      if (!ParseId(text, &r.lo)) {
        Error(line, "sid", "'" + text + "' is not a sid (an integer in 1..4294967295, or \"N-M\")");
        return;
      }
      r.hi = r.lo;
    } else {
      const std::string_view t(text);
      if (!ParseId(t.substr(0, dash), &r.lo) || !ParseId(t.substr(dash + 1), &r.hi)) {
        Error(line, "sid", "'" + text + "' is not a sid range (\"N-M\", both in 1..4294967295)");
        return;
      }
      if (r.lo > r.hi) {
        Error(line, "sid", "range '" + text + "' has its low end above its high end");
        return;
      }
    }
    e->sids.push_back(r);
  }

  void NonEmpty(const std::string& text, int line, const std::string& key, std::vector<std::string>* out, bool lower) {
    const std::string_view t = Trim(text);
    if (t.empty()) {
      Error(line, key, "must not be empty");
      return;
    }
    out->push_back(lower ? Lower(t) : std::string(t));
  }

  bool Entry(const YAML::Node& item, OverrideEntry* e) {
    const int before = count_;
    e->file = file_;
    e->line = Line(item, 1);
    if (!item.IsMap()) {
      Error(e->line, "entry", "must be a mapping of selectors and effects (e.g. `sid: 1` and `disable: true`)");
      return false;
    }
    std::set<std::string> seen;
    bool has_disable = false, has_enable = false, has_action = false;
    int selectors = 0;
    for (const auto& kv : item) {
      const int line = Line(kv.first, e->line);
      if (!kv.first.IsScalar()) {
        Error(line, "entry", "keys must be plain names");
        continue;
      }
      const std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        Error(line, key, "appears twice in this entry");
        continue;
      }
      const YAML::Node& v = kv.second;
      if (key == "sid") {
        ++selectors;
        EachScalar(v, line, key, [&](const std::string& s, int l) { Sid(s, l, e); });
      } else if (key == "gid") {
        ++selectors;
        EachScalar(v, line, key, [&](const std::string& s, int l) {
          uint32_t g = 0;
          if (ParseId(s, &g)) {
            e->gids.push_back(g);
          } else {
            Error(l, key, "'" + s + "' is not a gid (an integer in 1..4294967295)");
          }
        });
      } else if (key == "classtype") {
        ++selectors;
        EachScalar(v, line, key, [&](const std::string& s, int l) { NonEmpty(s, l, key, &e->classtypes, true); });
      } else if (key == "msg") {
        ++selectors;
        EachScalar(v, line, key, [&](const std::string& s, int l) { NonEmpty(s, l, key, &e->msgs, true); });
      } else if (key == "msg_regex") {
        ++selectors;
        EachScalar(v, line, key, [&](const std::string& s, int l) {
          if (s.empty()) {
            Error(l, key, "must not be empty");
            return;
          }
          const Regex re(s);
          if (!re.code) {
            Error(l, key, "invalid regex '" + s + "': " + re.error);
            return;
          }
          e->msg_regexes.push_back(s);
        });
      } else if (key == "file") {
        ++selectors;
        EachScalar(v, line, key, [&](const std::string& s, int l) { NonEmpty(s, l, key, &e->rule_files, false); });
      } else if (key == "metadata") {
        ++selectors;
        EachScalar(v, line, key, [&](const std::string& s, int l) {
          const std::string_view t = Trim(s);
          if (t.empty()) {
            Error(l, key, "must not be empty (\"key value\" or \"key\")");
            return;
          }
          size_t sp = 0;
          while (sp < t.size() && !IsBlank(t[sp])) ++sp;
          e->metadata.emplace_back(Lower(t.substr(0, sp)), Lower(Trim(t.substr(sp))));
        });
      } else if (key == "all") {
        ++selectors;
        if (!v.IsScalar() || !IsTrue(v.Scalar())) {
          Error(ValueLine(v, line), key, "must be true (omit it to select by the other selectors)");
        } else {
          e->all = true;
        }
      } else if (key == "enable" || key == "disable") {
        (key == "enable" ? has_enable : has_disable) = true;
        if (v.IsScalar() && IsTrue(v.Scalar())) {
          e->enable = key == "enable";
        } else if (v.IsScalar() && IsFalse(v.Scalar())) {
          Error(ValueLine(v, line), key,
                "false does nothing: only `" + key + ": true` is meaningful (use `" +
                    (key == "enable" ? "disable" : "enable") + ": true` for the opposite)");
        } else {
          Error(ValueLine(v, line), key, "must be true");
        }
      } else if (key == "action") {
        has_action = true;
        const std::string a = v.IsScalar() ? Lower(Trim(v.Scalar())) : "";
        for (Action act : {Action::kAlert, Action::kDrop, Action::kReject, Action::kPass}) {
          if (a == ActionName(act)) e->action = act;
        }
        if (!e->action.has_value()) {
          Error(ValueLine(v, line), key,
                v.IsScalar() ? "unknown action '" + v.Scalar() + "' (known: alert, drop, reject, pass)"
                             : std::string("must be one of alert, drop, reject, pass"));
        }
      } else if (key == "comment") {
        if (v.IsScalar()) {
          e->comment = v.Scalar();
        } else {
          Error(ValueLine(v, line), key, "must be text");
        }
      } else {
        Error(line, key,
              "unknown key (selectors: sid, gid, classtype, metadata, msg, msg_regex, file, all; effects: "
              "enable, disable, action; also: comment)");
      }
    }
    if (has_enable && has_disable) Error(e->line, "entry", "enable and disable together: choose one");
    if (selectors == 0) {
      Error(e->line, "entry",
            "selects no rules: give at least one of sid, gid, classtype, metadata, msg, msg_regex, file, all");
    } else if (e->all && selectors > 1) {
      Error(e->line, "all", "cannot be combined with other selectors");
    }
    if (!has_enable && !has_disable && !has_action) {
      Error(e->line, "entry", "has no effect: give enable: true, disable: true or action");
    }
    return count_ == before;
  }

  std::string file_;
  std::vector<std::string>* errors_;
  int count_ = 0;
};

// ---------------------------------------------------------------------------------
// Applying

// What the selectors look at, prepared once per rule (lowercased where matching is).
struct RuleView {
  Rule* rule = nullptr;
  bool enabled = false;
  bool was_enabled = false;
  Action published_action = Action::kAlert;
  std::string msg_lower;
  std::string classtype_lower;
  std::string base;  // file base name
  std::vector<std::pair<std::string, std::string>> metadata_lower;
};

struct CompiledEntry {
  const OverrideEntry* e = nullptr;
  std::vector<std::unique_ptr<Regex>> regexes;
};

bool Matches(const CompiledEntry& ce, const RuleView& v) {
  const OverrideEntry& e = *ce.e;
  const Rule& r = *v.rule;
  if (e.all) return true;
  if (!e.sids.empty() &&
      std::none_of(e.sids.begin(), e.sids.end(), [&](const SidRange& s) { return r.sid >= s.lo && r.sid <= s.hi; })) {
    return false;
  }
  if (!e.gids.empty() && std::find(e.gids.begin(), e.gids.end(), r.gid) == e.gids.end()) return false;
  if (!e.classtypes.empty() &&
      std::find(e.classtypes.begin(), e.classtypes.end(), v.classtype_lower) == e.classtypes.end()) {
    return false;
  }
  if (!e.rule_files.empty() && std::none_of(e.rule_files.begin(), e.rule_files.end(), [&](const std::string& g) {
        const std::string& subject = g.find('/') != std::string::npos ? r.file : v.base;
        return fnmatch(g.c_str(), subject.c_str(), 0) == 0;
      })) {
    return false;
  }
  if (!e.metadata.empty() && std::none_of(e.metadata.begin(), e.metadata.end(), [&](const auto& want) {
        return std::any_of(v.metadata_lower.begin(), v.metadata_lower.end(), [&](const auto& have) {
          return have.first == want.first && (want.second.empty() || have.second == want.second);
        });
      })) {
    return false;
  }
  if (!e.msgs.empty() && std::none_of(e.msgs.begin(), e.msgs.end(), [&](const std::string& m) {
        return v.msg_lower.find(m) != std::string::npos;
      })) {
    return false;
  }
  if (!ce.regexes.empty() && std::none_of(ce.regexes.begin(), ce.regexes.end(),
                                          [&](const auto& re) { return re->Search(r.msg); })) {
    return false;
  }
  return true;
}

// File ranks for ordering: files in the order they first appear in `rules`, and a
// file seen only in `disabled` right after the file that precedes it there (both lists
// come from the same files read in the same order).
std::map<std::string, size_t> FileRanks(const std::vector<Rule>& rules, const std::vector<Rule>& disabled) {
  std::vector<std::string> order;
  for (const Rule& r : rules) {
    if (order.empty() || order.back() != r.file) {
      if (std::find(order.begin(), order.end(), r.file) == order.end()) order.push_back(r.file);
    }
  }
  size_t next = 0;  // insertion point after the last disabled-list file placed
  std::string last;
  bool have_last = false;
  for (const Rule& r : disabled) {
    if (have_last && r.file == last) continue;
    last = r.file;
    have_last = true;
    const auto it = std::find(order.begin(), order.end(), r.file);
    if (it != order.end()) {
      next = std::max(next, static_cast<size_t>(it - order.begin()) + 1);
    } else {
      order.insert(order.begin() + static_cast<std::ptrdiff_t>(next), r.file);
      ++next;
    }
  }
  std::map<std::string, size_t> ranks;
  for (size_t i = 0; i < order.size(); ++i) ranks.emplace(order[i], i);
  return ranks;
}

// Linear merge of two sequences, each kept in its own order; on equal keys `a` first.
std::vector<Rule> Merge(std::vector<Rule*>& a, std::vector<Rule*>& b, const std::map<std::string, size_t>& ranks) {
  auto key = [&](const Rule* r) { return std::make_pair(ranks.at(r->file), r->line); };
  std::vector<Rule> out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && !(key(b[j]) < key(a[i])))) {
      out.push_back(std::move(*a[i++]));
    } else {
      out.push_back(std::move(*b[j++]));
    }
  }
  return out;
}

}  // namespace

std::string OverrideEntry::Where() const { return file + ":" + std::to_string(line); }

std::vector<std::string> OverrideReport::Warnings() const {
  std::vector<std::string> out;
  for (size_t i : unmatched) out.push_back(entries[i].where + ": entry matched no rule");
  return out;
}

bool ParseOverrides(const std::string& yaml_text, const std::string& file, Overrides* out,
                    std::vector<std::string>* errors) {
  out->entries.clear();
  std::vector<std::string> scratch;
  if (!errors) errors = &scratch;
  Parser p(file, errors);
  try {
    const std::vector<YAML::Node> docs = YAML::LoadAll(yaml_text);
    if (docs.size() > 1) {
      p.Error(Parser::Line(docs[1], 1), "yaml", "more than one YAML document (`---`): write one list");
    } else if (!docs.empty()) {
      p.Document(docs[0], out);
    }
  } catch (const YAML::Exception& e) {
    p.Error(e.mark.line >= 0 ? e.mark.line + 1 : 1, "yaml", e.msg);
  } catch (const std::exception& e) {
    p.Error(1, "yaml", e.what());
  }
  if (p.count() > 0) {
    out->entries.clear();
    return false;
  }
  return true;
}

void ApplyOverrides(const Overrides& o, RuleSet* set, OverrideReport* report) {
  OverrideReport scratch;
  OverrideReport& rep = report ? *report : scratch;
  rep = OverrideReport{};
  bool need_msg = false, need_meta = false;
  std::vector<CompiledEntry> entries;
  entries.reserve(o.entries.size());
  for (const OverrideEntry& e : o.entries) {
    CompiledEntry& ce = entries.emplace_back();
    ce.e = &e;
    need_msg |= !e.msgs.empty();
    need_meta |= !e.metadata.empty();
    // Validated by ParseOverrides; one that still fails to compile selects nothing.
    for (const std::string& p : e.msg_regexes) ce.regexes.push_back(std::make_unique<Regex>(p));
    rep.entries.push_back({e.Where(), 0, 0, 0, 0});
  }

  std::vector<RuleView> views;
  views.reserve(set->rules.size() + set->disabled.size());
  auto add = [&](Rule& r, bool enabled) {
    RuleView& v = views.emplace_back();
    v.rule = &r;
    v.enabled = v.was_enabled = enabled;
    v.published_action = r.header.action;
    if (need_msg) v.msg_lower = Lower(r.msg);
    if (need_meta) {
      for (const auto& [k, val] : r.metadata) v.metadata_lower.emplace_back(Lower(Trim(k)), Lower(Trim(val)));
    }
    v.classtype_lower = Lower(r.classtype);
    v.base = Basename(r.file);
  };
  for (Rule& r : set->rules) add(r, true);
  for (Rule& r : set->disabled) add(r, false);

  for (size_t i = 0; i < entries.size(); ++i) {
    const OverrideEntry& e = *entries[i].e;
    OverrideReport::EntryResult& res = rep.entries[i];
    for (RuleView& v : views) {
      if (!Matches(entries[i], v)) continue;
      ++res.matched;
      if (e.enable.has_value() && v.enabled != *e.enable) {
        v.enabled = *e.enable;
        ++(v.enabled ? res.enabled : res.disabled);
      }
      if (e.action.has_value() && v.rule->header.action != *e.action) {
        v.rule->header.action = *e.action;
        ++res.action_changed;
      }
    }
    if (res.matched == 0) rep.unmatched.push_back(i);
  }

  bool moved = false;
  for (const RuleView& v : views) {
    if (v.enabled != v.was_enabled) {
      moved = true;
      ++(v.enabled ? rep.enabled : rep.disabled);
    }
    if (v.rule->header.action != v.published_action) ++rep.action_changed;
  }
  if (!moved) return;  // lists untouched, order trivially kept

  const auto ranks = FileRanks(set->rules, set->disabled);
  std::vector<Rule*> stay_on, come_on, stay_off, come_off;
  for (const RuleView& v : views) {
    if (v.was_enabled) {
      (v.enabled ? stay_on : come_off).push_back(v.rule);
    } else {
      (v.enabled ? come_on : stay_off).push_back(v.rule);
    }
  }
  std::vector<Rule> rules = Merge(stay_on, come_on, ranks);
  std::vector<Rule> disabled = Merge(stay_off, come_off, ranks);
  set->rules = std::move(rules);
  set->disabled = std::move(disabled);
}

}  // namespace wardgate::rules
