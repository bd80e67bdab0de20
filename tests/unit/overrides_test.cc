// Local overrides: the YAML format (every selector and effect, every refusal with its
// file:line and key) and ApplyOverrides on a rule set (moves between enabled and
// disabled, actions, file order kept, per-entry and net counts).
//
// Rules are built as structs (sid, gid, classtype, metadata, msg, file, line) rather
// than parsed: overrides only look at those fields.
#include "rules/overrides.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wardgate::rules {
namespace {

struct R {
  uint32_t sid;
  std::string file = "a.rules";
  int line = 0;
  std::string classtype = "misc-activity";
  std::vector<std::pair<std::string, std::string>> metadata = {};
  std::string msg = "";
  uint32_t gid = 1;
  Action action = Action::kAlert;
};

Rule Make(const R& r) {
  Rule out;
  out.sid = r.sid;
  out.gid = r.gid;
  out.file = r.file;
  out.line = r.line ? r.line : static_cast<int>(r.sid);
  out.classtype = r.classtype;
  out.metadata = r.metadata;
  out.msg = r.msg.empty() ? "rule " + std::to_string(r.sid) : r.msg;
  out.header.action = r.action;
  return out;
}

RuleSet Set(const std::vector<R>& enabled, const std::vector<R>& disabled) {
  RuleSet s;
  for (const R& r : enabled) s.rules.push_back(Make(r));
  for (const R& r : disabled) s.disabled.push_back(Make(r));
  return s;
}

std::vector<uint32_t> Sids(const std::vector<Rule>& rules) {
  std::vector<uint32_t> out;
  for (const Rule& r : rules) out.push_back(r.sid);
  return out;
}

const Rule* Find(const RuleSet& s, uint32_t sid) {
  for (const auto* list : {&s.rules, &s.disabled}) {
    for (const Rule& r : *list) {
      if (r.sid == sid) return &r;
    }
  }
  return nullptr;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "  " + x + "\n";
  return s;
}

Overrides MustParse(const std::string& yaml) {
  Overrides o;
  std::vector<std::string> errors;
  EXPECT_TRUE(ParseOverrides(yaml, "local.yaml", &o, &errors)) << yaml << "\n" << Join(errors);
  EXPECT_TRUE(errors.empty()) << Join(errors);
  return o;
}

// Expects the file refused, with exactly one error, equal to `want`.
void ExpectError(const std::string& yaml, const std::string& want) {
  Overrides o;
  o.entries.emplace_back();  // must be cleared on failure
  std::vector<std::string> errors;
  EXPECT_FALSE(ParseOverrides(yaml, "local.yaml", &o, &errors)) << yaml;
  EXPECT_TRUE(o.entries.empty()) << yaml;
  ASSERT_EQ(errors.size(), 1u) << yaml << "\n" << Join(errors);
  EXPECT_EQ(errors[0], want) << yaml;
}

// Expects refusal with one error that starts with `prefix` ("file:line: key: ").
void ExpectErrorPrefix(const std::string& yaml, const std::string& prefix) {
  Overrides o;
  std::vector<std::string> errors;
  EXPECT_FALSE(ParseOverrides(yaml, "local.yaml", &o, &errors)) << yaml;
  EXPECT_TRUE(o.entries.empty());
  ASSERT_EQ(errors.size(), 1u) << yaml << "\n" << Join(errors);
  EXPECT_EQ(errors[0].rfind(prefix, 0), 0u) << "got: " << errors[0] << "\nwant prefix: " << prefix;
}

OverrideReport Apply(const std::string& yaml, RuleSet* set) {
  OverrideReport rep;
  ApplyOverrides(MustParse(yaml), set, &rep);
  return rep;
}

// ---------------------------------------------------------------------------------
// Parsing

TEST(OverridesParse, EmptyFilesAreValidNoOps) {
  for (const std::string yaml : {"", "\n\n", "# only a comment\n", "overrides:\n", "overrides: []\n", "---\n",
                                 "overrides: ~\n"}) {
    Overrides o;
    std::vector<std::string> errors;
    EXPECT_TRUE(ParseOverrides(yaml, "local.yaml", &o, &errors)) << "'" << yaml << "'\n" << Join(errors);
    EXPECT_TRUE(o.entries.empty());
    RuleSet s = Set({{1}, {3}}, {{2}});
    OverrideReport rep;
    ApplyOverrides(o, &s, &rep);
    EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{1, 3}));
    EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{2}));
    EXPECT_EQ(rep.enabled + rep.disabled + rep.action_changed, 0u);
    EXPECT_TRUE(rep.entries.empty());
  }
}

TEST(OverridesParse, EveryKeyParses) {
  const Overrides o = MustParse(R"(overrides:
  - sid: 2100498
    action: drop
    comment: "CAB-1142: block on the imaging VLAN"
  - sid: "2010000-2010999"
    disable: true
  - sid: [2019401, "2100000 - 2100010", 7]
    gid: [1, 3]
    enable: yes
  - classtype: Policy-Violation
    disable: true
  - metadata: "wardgate_tier  Policy "
    enable: true
  - file: "emerging-scan*.rules"
    msg: "NMAP"
    msg_regex: '^ET SCAN \w+'
    action: REJECT
  - all: true
    action: pass
  - metadata: [deprecated, "former_category MALWARE"]
    enable: true
    action: alert
)");
  ASSERT_EQ(o.entries.size(), 8u);
  const auto& e = o.entries;
  EXPECT_EQ(e[0].line, 2);
  EXPECT_EQ(e[0].Where(), "local.yaml:2");
  ASSERT_EQ(e[0].sids.size(), 1u);
  EXPECT_EQ(e[0].sids[0].lo, 2100498u);
  EXPECT_EQ(e[0].sids[0].hi, 2100498u);
  EXPECT_EQ(e[0].action, Action::kDrop);
  EXPECT_FALSE(e[0].enable.has_value());
  EXPECT_EQ(e[0].comment, "CAB-1142: block on the imaging VLAN");
  EXPECT_EQ(e[1].sids[0].lo, 2010000u);
  EXPECT_EQ(e[1].sids[0].hi, 2010999u);
  EXPECT_EQ(e[1].enable, false);
  EXPECT_FALSE(e[1].action.has_value());
  ASSERT_EQ(e[2].sids.size(), 3u);
  EXPECT_EQ(e[2].sids[1].lo, 2100000u);
  EXPECT_EQ(e[2].sids[1].hi, 2100010u);
  EXPECT_EQ(e[2].sids[2].lo, 7u);
  EXPECT_EQ(e[2].gids, (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(e[2].enable, true);
  EXPECT_EQ(e[3].classtypes, (std::vector<std::string>{"policy-violation"}));
  ASSERT_EQ(e[4].metadata.size(), 1u);
  EXPECT_EQ(e[4].metadata[0].first, "wardgate_tier");
  EXPECT_EQ(e[4].metadata[0].second, "policy");
  EXPECT_EQ(e[5].rule_files, (std::vector<std::string>{"emerging-scan*.rules"}));
  EXPECT_EQ(e[5].msgs, (std::vector<std::string>{"nmap"}));
  EXPECT_EQ(e[5].msg_regexes, (std::vector<std::string>{"^ET SCAN \\w+"}));
  EXPECT_EQ(e[5].action, Action::kReject);
  EXPECT_TRUE(e[6].all);
  EXPECT_EQ(e[6].action, Action::kPass);
  ASSERT_EQ(e[7].metadata.size(), 2u);
  EXPECT_EQ(e[7].metadata[0].first, "deprecated");
  EXPECT_EQ(e[7].metadata[0].second, "");
  EXPECT_EQ(e[7].metadata[1].second, "malware");
  EXPECT_EQ(e[7].enable, true);
  EXPECT_EQ(e[7].action, Action::kAlert);
}

TEST(OverridesParse, SidExtremes) {
  const Overrides o = MustParse(
      "overrides:\n  - sid: 4294967295\n    disable: true\n  - sid: \"1-4294967295\"\n    disable: true\n"
      "  - sid: 00042\n    disable: true\n");
  ASSERT_EQ(o.entries.size(), 3u);
  EXPECT_EQ(o.entries[0].sids[0].lo, 4294967295u);
  EXPECT_EQ(o.entries[1].sids[0].lo, 1u);
  EXPECT_EQ(o.entries[1].sids[0].hi, 4294967295u);
  EXPECT_EQ(o.entries[2].sids[0].lo, 42u);
}

TEST(OverridesParse, BadSidsAreRefusedWithTheirLine) {
  const char* bad[] = {"0",   "-5",   "5-3", "abc", "4294967296", "99999999999", "1.5", "0x10", "5-",
                       "\"-\"", "1-2-3", "0-5", "+5",  "\"\"",       "1-4294967296"};
  for (const char* s : bad) {
    ExpectErrorPrefix(std::string("overrides:\n  - disable: true\n    sid: ") + s + "\n", "local.yaml:3: sid: ");
  }
  ExpectError("overrides:\n  - sid: \"9-2\"\n    disable: true\n",
              "local.yaml:2: sid: range '9-2' has its low end above its high end");
  // In a list: the line of the element at fault.
  ExpectErrorPrefix("overrides:\n  - sid:\n      - 5\n      - 0\n    disable: true\n", "local.yaml:4: sid: ");
  ExpectErrorPrefix("overrides:\n  - sid: []\n    disable: true\n", "local.yaml:2: sid: an empty list");
  ExpectErrorPrefix("overrides:\n  - sid: [[1, 2]]\n    disable: true\n", "local.yaml:2: sid: list elements");
  ExpectErrorPrefix("overrides:\n  - sid: {a: 1}\n    disable: true\n", "local.yaml:2: sid: must be");
  ExpectErrorPrefix("overrides:\n  - sid:\n    disable: true\n", "local.yaml:2: sid: needs a value");
  ExpectErrorPrefix("overrides:\n  - gid: 0\n    disable: true\n", "local.yaml:2: gid: '0' is not a gid");
}

TEST(OverridesParse, KeysAreChecked) {
  ExpectErrorPrefix("overrides:\n  - sid: 1\n    disabel: true\n    action: drop\n",
                    "local.yaml:3: disabel: unknown key");
  ExpectError("overrides:\n  - sid: 1\n    action: drop\n    sid: 2\n",
              "local.yaml:4: sid: appears twice in this entry");
  ExpectError("overrides:\n  - sid: 1\n    action: drop\noverrides: []\n", "local.yaml:4: overrides: appears twice");
  ExpectError("override:\n  - sid: 1\n    action: drop\n", "local.yaml:1: override: unknown key (known: overrides)");
  ExpectErrorPrefix("- sid: 1\n  action: drop\n", "local.yaml:1: overrides: the file must be a mapping");
  ExpectErrorPrefix("overrides:\n  sid: 1\n", "local.yaml:2: overrides: must be a list");
  ExpectErrorPrefix("overrides:\n  - 5\n", "local.yaml:2: entry: must be a mapping");
  ExpectErrorPrefix("overrides:\n  - sid: 1\n    comment: [a]\n    action: drop\n", "local.yaml:3: comment: must be");
}

TEST(OverridesParse, EffectsAreChecked) {
  ExpectError("overrides:\n  - sid: 1\n    action: dorp\n",
              "local.yaml:3: action: unknown action 'dorp' (known: alert, drop, reject, pass)");
  const std::string one_of = "local.yaml:3: action: must be one of alert, drop, reject, pass";
  ExpectError("overrides:\n  - sid: 1\n    action: [drop]\n", one_of);
  ExpectError("overrides:\n  - sid: 1\n    action:\n", one_of);
  ExpectError("overrides:\n  - sid: 1\n    enable: true\n    disable: true\n",
              "local.yaml:2: entry: enable and disable together: choose one");
  ExpectErrorPrefix("overrides:\n  - sid: 1\n", "local.yaml:2: entry: has no effect");
  ExpectErrorPrefix("overrides:\n  - sid: 1\n    comment: just a note\n", "local.yaml:2: entry: has no effect");
  ExpectErrorPrefix("overrides:\n  - action: drop\n", "local.yaml:2: entry: selects no rules");
  ExpectErrorPrefix("overrides:\n  - action: drop\n    comment: all of them?\n",
                    "local.yaml:2: entry: selects no rules");
  // `enable: false` would read as "disable" to some and as "leave alone" to others.
  ExpectErrorPrefix("overrides:\n  - sid: 1\n    enable: false\n", "local.yaml:3: enable: false does nothing");
  ExpectErrorPrefix("overrides:\n  - sid: 1\n    disable: maybe\n", "local.yaml:3: disable: must be true");
  ExpectErrorPrefix("overrides:\n  - all: true\n    sid: 1\n    action: drop\n",
                    "local.yaml:2: all: cannot be combined");
  ExpectErrorPrefix("overrides:\n  - all: false\n    action: drop\n", "local.yaml:2: all: must be true");
  ExpectErrorPrefix("overrides:\n  - classtype: \"\"\n    action: drop\n",
                    "local.yaml:2: classtype: must not be empty");
  ExpectErrorPrefix("overrides:\n  - metadata: \" \"\n    action: drop\n", "local.yaml:2: metadata: must not be empty");
  ExpectErrorPrefix("overrides:\n  - msg: \"\"\n    action: drop\n", "local.yaml:2: msg: must not be empty");
  ExpectErrorPrefix("overrides:\n  - msg_regex: \"a(b\"\n    action: drop\n",
                    "local.yaml:2: msg_regex: invalid regex 'a(b': ");
}

TEST(OverridesParse, YamlSyntaxErrorsNameTheLine) {
  ExpectErrorPrefix("overrides:\n  - sid: 1\n    action: [drop\n", "local.yaml:4: yaml: ");
  ExpectErrorPrefix("overrides:\n  - sid: 1\n  action: \"drop\n", "local.yaml:3: yaml: ");
  ExpectErrorPrefix("overrides:\n  - sid: 1\n\taction: drop\n", "local.yaml:3: yaml: ");
  ExpectErrorPrefix("overrides: []\n---\noverrides: []\n", "local.yaml:3: yaml: more than one YAML document");
}

TEST(OverridesParse, EveryErrorOfTheFileIsReported) {
  Overrides o;
  std::vector<std::string> errors;
  EXPECT_FALSE(ParseOverrides(R"(overrides:
  - sid: 5
    action: drop
  - sid: 0
    action: drop
  - classtype: x
    bogus: 1
    disable: true
  - sid: 7
    enable: true
)",
                              "dir/local.yaml", &o, &errors));
  EXPECT_TRUE(o.entries.empty()) << "a file with any error is refused whole";
  ASSERT_EQ(errors.size(), 2u) << Join(errors);
  EXPECT_EQ(errors[0].rfind("dir/local.yaml:4: sid: ", 0), 0u) << errors[0];
  EXPECT_EQ(errors[1].rfind("dir/local.yaml:7: bogus: unknown key", 0), 0u) << errors[1];
  // A null error list is allowed.
  EXPECT_FALSE(ParseOverrides("overrides: 5\n", "x", &o, nullptr));
}

// ---------------------------------------------------------------------------------
// Applying

TEST(OverridesApply, DisableByClasstypeKeepsOrder) {
  RuleSet s = Set({{1, "a.rules", 1, "policy-violation"}, {2}, {3, "a.rules", 3, "policy-violation"}, {5}},
                  {{4, "a.rules", 4, "policy-violation"}});
  const OverrideReport rep = Apply("overrides:\n  - classtype: POLICY-violation\n    disable: true\n", &s);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{2, 5}));
  EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{1, 3, 4}));
  ASSERT_EQ(rep.entries.size(), 1u);
  EXPECT_EQ(rep.entries[0].matched, 3u) << "the already-disabled rule is selected too";
  EXPECT_EQ(rep.entries[0].disabled, 2u);
  EXPECT_EQ(rep.entries[0].enabled, 0u);
  EXPECT_EQ(rep.disabled, 2u);
  EXPECT_EQ(rep.enabled, 0u);
  EXPECT_TRUE(rep.unmatched.empty());
}

TEST(OverridesApply, EnableByMetadataMergesByLine) {
  RuleSet s = Set({{10}, {30}, {50}},
                  {{20, "a.rules", 20, "misc-activity", {{"wardgate_tier", "policy"}}},
                   {40, "a.rules", 40, "misc-activity", {{"wardgate_tier", "clinical"}}},
                   {60, "a.rules", 60, "misc-activity",
                    {{"signature_severity", "Major"}, {"WARDGATE_TIER", "Policy"}}}});
  const OverrideReport rep = Apply("overrides:\n  - metadata: \"wardgate_tier policy\"\n    enable: true\n", &s);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{10, 20, 30, 50, 60}));
  EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{40}));
  EXPECT_EQ(rep.entries[0].matched, 2u);
  EXPECT_EQ(rep.enabled, 2u);
}

TEST(OverridesApply, MetadataKeyAloneAndValueMismatch) {
  RuleSet s = Set({{1, "a.rules", 1, "x", {{"deprecated", "2024"}}}, {2, "a.rules", 2, "x", {{"tier", "a"}}}}, {});
  Apply("overrides:\n  - metadata: deprecated\n    disable: true\n  - metadata: tier b\n    action: drop\n", &s);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{2}));
  EXPECT_EQ(Find(s, 2)->header.action, Action::kAlert) << "value b must not match a";
}

TEST(OverridesApply, EnablingAnEnabledRuleIsANoOp) {
  RuleSet s = Set({{1}, {2}}, {{3}});
  const OverrideReport rep = Apply("overrides:\n  - sid: 2\n    enable: true\n", &s);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{3}));
  EXPECT_EQ(rep.entries[0].matched, 1u);
  EXPECT_EQ(rep.entries[0].enabled, 0u);
  EXPECT_EQ(rep.enabled, 0u);
  EXPECT_TRUE(rep.unmatched.empty());
}

TEST(OverridesApply, LaterEntriesWin) {
  RuleSet s = Set({{1}, {2}, {3}}, {{4}});
  const OverrideReport rep = Apply(R"(overrides:
  - sid: 2
    disable: true
  - sid: 2
    enable: true
  - sid: 4
    enable: true
  - sid: 4
    disable: true
  - sid: 3
    action: drop
  - sid: "1-3"
    action: alert
)",
                                   &s);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{4}));
  ASSERT_EQ(rep.entries.size(), 6u);
  EXPECT_EQ(rep.entries[0].disabled, 1u);
  EXPECT_EQ(rep.entries[1].enabled, 1u);
  EXPECT_EQ(rep.entries[2].enabled, 1u);
  EXPECT_EQ(rep.entries[3].disabled, 1u);
  EXPECT_EQ(rep.entries[4].action_changed, 1u);
  EXPECT_EQ(rep.entries[5].matched, 3u);
  EXPECT_EQ(rep.entries[5].action_changed, 1u);
  EXPECT_EQ(Find(s, 3)->header.action, Action::kAlert);
  // Net: nothing changed.
  EXPECT_EQ(rep.enabled, 0u);
  EXPECT_EQ(rep.disabled, 0u);
  EXPECT_EQ(rep.action_changed, 0u);
}

TEST(OverridesApply, SidRangesAreInclusive) {
  RuleSet s = Set({{9}, {10}, {15}, {20}, {21}}, {{12}, {25}});
  const OverrideReport rep = Apply("overrides:\n  - sid: \"10-20\"\n    action: drop\n", &s);
  EXPECT_EQ(rep.entries[0].matched, 4u);
  for (uint32_t sid : {10u, 12u, 15u, 20u}) EXPECT_EQ(Find(s, sid)->header.action, Action::kDrop) << sid;
  for (uint32_t sid : {9u, 21u, 25u}) EXPECT_EQ(Find(s, sid)->header.action, Action::kAlert) << sid;
  EXPECT_EQ(rep.action_changed, 4u);
  EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{12, 25})) << "an action alone moves nothing";
}

TEST(OverridesApply, SelectorOverBothListsWithActionAndEnable) {
  RuleSet s = Set({{1, "a.rules", 1, "trojan-activity"}, {2}}, {{3, "a.rules", 3, "trojan-activity"}, {4}});
  const OverrideReport rep =
      Apply("overrides:\n  - classtype: trojan-activity\n    enable: true\n    action: drop\n", &s);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{4}));
  EXPECT_EQ(Find(s, 1)->header.action, Action::kDrop);
  EXPECT_EQ(Find(s, 3)->header.action, Action::kDrop);
  EXPECT_EQ(Find(s, 2)->header.action, Action::kAlert);
  EXPECT_EQ(rep.entries[0].matched, 2u);
  EXPECT_EQ(rep.entries[0].enabled, 1u);
  EXPECT_EQ(rep.entries[0].action_changed, 2u);
}

TEST(OverridesApply, ActionOnADisabledRuleSticksWhenEnabledLater) {
  RuleSet s = Set({{1}}, {{2}});
  const OverrideReport rep =
      Apply("overrides:\n  - sid: 2\n    action: reject\n  - sid: 2\n    enable: true\n", &s);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Find(s, 2)->header.action, Action::kReject);
  EXPECT_EQ(rep.action_changed, 1u);
  EXPECT_EQ(rep.enabled, 1u);
}

TEST(OverridesApply, HugeSidsAndGids) {
  RuleSet s = Set({{4294967295u, "a.rules", 1}, {4294967294u, "a.rules", 2, "x", {}, "", 4294967295u}}, {});
  const OverrideReport rep = Apply(R"(overrides:
  - sid: 4294967295
    action: drop
  - sid: "4294967290-4294967295"
    gid: 4294967295
    disable: true
)",
                                   &s);
  EXPECT_EQ(Find(s, 4294967295u)->header.action, Action::kDrop);
  EXPECT_EQ(rep.entries[1].matched, 1u);
  EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{4294967294u}));
}

TEST(OverridesApply, GidNarrowsASid) {
  RuleSet s = Set({{5, "a.rules", 1, "x", {}, "", 1}, {5, "b.rules", 1, "x", {}, "", 3}}, {});
  Apply("overrides:\n  - sid: 5\n    gid: 3\n    action: drop\n", &s);
  EXPECT_EQ(s.rules[0].header.action, Action::kAlert);
  EXPECT_EQ(s.rules[1].header.action, Action::kDrop);
  Apply("overrides:\n  - sid: 5\n    action: pass\n", &s);
  EXPECT_EQ(s.rules[0].header.action, Action::kPass) << "a sid alone matches every gid";
  EXPECT_EQ(s.rules[1].header.action, Action::kPass);
}

TEST(OverridesApply, MsgSubstringIsLiteralAndCaseInsensitive) {
  RuleSet s = Set({{1, "a.rules", 1, "x", {}, "ET SCAN Nmap Scripting Engine User-Agent (Nmap)"},
                   {2, "a.rules", 2, "x", {}, "ET SCAN NmapXScripting"},
                   {3, "a.rules", 3, "x", {}, "GPL ICMP PING"}},
                  {});
  const OverrideReport rep = Apply(R"y(overrides:
  - msg: "nmap scripting"
    action: drop
  - msg: "(nmap)"
    action: reject
  - msg_regex: '^GPL\s+ICMP'
    action: pass
  - msg_regex: 'gpl icmp'
    action: drop
)y",
                                   &s);
  EXPECT_EQ(rep.entries[0].matched, 1u) << "'nmap scripting' must not match 'NmapXScripting'";
  EXPECT_EQ(Find(s, 1)->header.action, Action::kReject);
  EXPECT_EQ(Find(s, 2)->header.action, Action::kAlert);
  EXPECT_EQ(Find(s, 3)->header.action, Action::kPass);
  EXPECT_EQ(rep.entries[3].matched, 0u) << "msg_regex is case-sensitive";
  EXPECT_EQ(rep.unmatched, (std::vector<size_t>{3}));
}

TEST(OverridesApply, FileGlobOnBaseNameOrPath) {
  RuleSet s = Set({{1, "/var/lib/rules/emerging-scan.rules", 1}, {2, "/var/lib/rules/emerging-dos.rules", 1},
                   {3, "/etc/wardgate/emerging-scan.rules", 1}},
                  {});
  OverrideReport rep = Apply("overrides:\n  - file: \"emerging-scan*\"\n    action: drop\n", &s);
  EXPECT_EQ(rep.entries[0].matched, 2u);
  EXPECT_EQ(Find(s, 2)->header.action, Action::kAlert);
  rep = Apply("overrides:\n  - file: \"/var/lib/*/*.rules\"\n    action: reject\n", &s);
  EXPECT_EQ(rep.entries[0].matched, 2u);
  EXPECT_EQ(Find(s, 3)->header.action, Action::kDrop);
  EXPECT_EQ(Find(s, 1)->header.action, Action::kReject);
}

TEST(OverridesApply, SelectorsAreAnded) {
  RuleSet s = Set({{100, "a.rules", 1, "policy-violation"}, {101, "a.rules", 2, "policy-violation"},
                   {200, "a.rules", 3, "policy-violation"}},
                  {});
  const OverrideReport rep =
      Apply("overrides:\n  - sid: \"100-199\"\n    classtype: policy-violation\n    disable: true\n", &s);
  EXPECT_EQ(rep.entries[0].matched, 2u);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{200}));
}

TEST(OverridesApply, AllSelectsEveryRule) {
  RuleSet s = Set({{1}, {2, "a.rules", 2, "x", {}, "", 1, Action::kPass}}, {{3}});
  const OverrideReport rep = Apply("overrides:\n  - all: true\n    action: drop\n  - sid: 2\n    action: pass\n", &s);
  EXPECT_EQ(rep.entries[0].matched, 3u);
  EXPECT_EQ(Find(s, 1)->header.action, Action::kDrop);
  EXPECT_EQ(Find(s, 3)->header.action, Action::kDrop);
  EXPECT_EQ(Find(s, 2)->header.action, Action::kPass);
  EXPECT_EQ(rep.action_changed, 2u) << "sid 2 ends as published";
}

TEST(OverridesApply, UnmatchedEntriesAreWarnings) {
  RuleSet s = Set({{1}}, {});
  const OverrideReport rep = Apply(
      "overrides:\n  - sid: 1\n    action: drop\n  - sid: 999\n    disable: true\n  - classtype: nope\n    "
      "action: drop\n",
      &s);
  EXPECT_EQ(rep.unmatched, (std::vector<size_t>{1, 2}));
  EXPECT_EQ(rep.Warnings(), (std::vector<std::string>{"local.yaml:4: entry matched no rule",
                                                      "local.yaml:6: entry matched no rule"}));
}

TEST(OverridesApply, OrderAcrossFiles) {
  // Files a, c, b in load order; c has only disabled rules.
  RuleSet s = Set({{1, "a.rules", 1}, {3, "a.rules", 5}, {20, "b.rules", 2}},
                  {{2, "a.rules", 3}, {10, "c.rules", 1}, {21, "b.rules", 1}, {22, "b.rules", 9}});
  OverrideReport rep = Apply("overrides:\n  - all: true\n    enable: true\n", &s);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{1, 2, 3, 10, 21, 20, 22}));
  EXPECT_TRUE(s.disabled.empty());
  EXPECT_EQ(rep.enabled, 4u);
  // And back: the disabled list is in file order too.
  rep = Apply("overrides:\n  - sid: [3, 21, 10, 1]\n    disable: true\n", &s);
  EXPECT_EQ(Sids(s.rules), (std::vector<uint32_t>{2, 20, 22}));
  EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{1, 3, 10, 21}));
}

TEST(OverridesApply, RulesKeepTheirContent) {
  RuleSet s = Set({{1}}, {{2, "a.rules", 2, "x", {{"k", "v"}}, "the msg"}});
  s.disabled[0].references.push_back({"url", "example.org"});
  Apply("overrides:\n  - sid: 2\n    enable: true\n", &s);
  ASSERT_EQ(s.rules.size(), 2u);
  EXPECT_EQ(s.rules[1].msg, "the msg");
  ASSERT_EQ(s.rules[1].references.size(), 1u);
  EXPECT_EQ(s.rules[1].references[0].id, "example.org");
  EXPECT_EQ(s.rules[1].metadata[0].second, "v");
}

TEST(OverridesApply, NullReportIsAllowed) {
  RuleSet s = Set({{1}}, {});
  ApplyOverrides(MustParse("overrides:\n  - sid: 1\n    disable: true\n"), &s, nullptr);
  EXPECT_TRUE(s.rules.empty());
  EXPECT_EQ(Sids(s.disabled), (std::vector<uint32_t>{1}));
}

}  // namespace
}  // namespace wardgate::rules
