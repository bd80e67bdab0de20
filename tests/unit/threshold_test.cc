// Thresholding: the threshold/detection_filter option parser, threshold.config, and the
// runtime decisions against a fake clock. The expected numbers come from Suricata's
// behaviour (detect-engine-threshold.c) and from suricata-verify's threshold tests
// (detection_filter-rule-hostsrc, threshold-rule-flow, threshold-config-suppress-bysrc-ip,
// threshold-config-rate-filter-drop-hostsrc).
#include "rules/threshold.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace wardgate::rules {
namespace {

constexpr uint64_t kSec = 1'000'000'000;

// `seconds` on the fake clock; starts well after 0 so nothing sits on the epoch.
uint64_t At(double seconds) { return 1000 * kSec + static_cast<uint64_t>(seconds * 1e9); }

AlertSubject Subject(const char* src, const char* dst, uint64_t flow = 1) {
  AlertSubject s;
  s.v6 = std::string(src).find(':') != std::string::npos;
  EXPECT_EQ(inet_pton(s.v6 ? AF_INET6 : AF_INET, src, s.src.data()), 1) << src;
  EXPECT_EQ(inet_pton(s.v6 ? AF_INET6 : AF_INET, dst, s.dst.data()), 1) << dst;
  s.flow_id = flow;
  return s;
}

Rule MakeRule(uint32_t sid, Action action = Action::kAlert, uint32_t gid = 1) {
  Rule r;
  r.sid = sid;
  r.gid = gid;
  r.rev = 1;
  r.header.action = action;
  return r;
}

Rule WithThreshold(uint32_t sid, const std::string& value, Action action = Action::kAlert) {
  Rule r = MakeRule(sid, action);
  Threshold t;
  std::string error;
  EXPECT_TRUE(ParseThresholdOption(value, false, &t, &error)) << value << ": " << error;
  r.threshold = t;
  return r;
}

Rule WithDetectionFilter(uint32_t sid, const std::string& value) {
  Rule r = MakeRule(sid);
  Threshold t;
  std::string error;
  EXPECT_TRUE(ParseThresholdOption(value, true, &t, &error)) << value << ": " << error;
  r.detection_filter = t;
  return r;
}

ThresholdConfig Config(const std::string& text) {
  ThresholdConfig c;
  std::vector<std::string> errors;
  EXPECT_TRUE(ParseThresholdConfig(text, "threshold.config", &c, &errors));
  for (const auto& e : errors) ADD_FAILURE() << e;
  return c;
}

// Runs `n` hits one second apart from t0 and counts logged alerts and applied actions.
struct Tally {
  int logged = 0;
  int applied = 0;
};
Tally Hits(ThresholdEngine& engine, const Rule& rule, const AlertSubject& s, int n, double t0 = 0) {
  Tally t;
  for (int i = 0; i < n; ++i) {
    const ThresholdDecision d = engine.Check(rule, s, At(t0 + i));
    t.logged += d.log_alert;
    t.applied += d.apply_action;
  }
  return t;
}

// "L" logged (and applied), "a" applied without alert, "-" neither, one letter per hit.
std::string Trace(ThresholdEngine& engine, const Rule& rule, const AlertSubject& s,
                  const std::vector<double>& times) {
  std::string out;
  for (double t : times) {
    const ThresholdDecision d = engine.Check(rule, s, At(t));
    EXPECT_FALSE(d.log_alert && !d.apply_action);
    out += d.log_alert ? 'L' : d.apply_action ? 'a' : '-';
  }
  return out;
}

// ---------------------------------------------------------------------------------
// ParseThresholdOption

TEST(ThresholdOption, ParsesEveryTypeAndTrackInAnyOrder) {
  Threshold t;
  std::string error;
  ASSERT_TRUE(ParseThresholdOption("type limit, track by_src, count 1, seconds 60", false, &t, &error));
  EXPECT_EQ(t.type, Threshold::Type::kLimit);
  EXPECT_EQ(t.track, Threshold::Track::kBySrc);
  EXPECT_EQ(t.count, 1u);
  EXPECT_EQ(t.seconds, 60u);

  ASSERT_TRUE(ParseThresholdOption(" seconds 360,count 5 ,  track by_flow,type both ", false, &t, &error));
  EXPECT_EQ(t.type, Threshold::Type::kBoth);
  EXPECT_EQ(t.track, Threshold::Track::kByFlow);
  EXPECT_EQ(t.count, 5u);
  EXPECT_EQ(t.seconds, 360u);

  ASSERT_TRUE(ParseThresholdOption("TYPE Threshold, track BY_DST, count 4294967295, seconds 1", false, &t, &error));
  EXPECT_EQ(t.type, Threshold::Type::kThreshold);
  EXPECT_EQ(t.track, Threshold::Track::kByDst);
  EXPECT_EQ(t.count, 4294967295u);

  ASSERT_TRUE(ParseThresholdOption("type limit, track by_rule, count 2, seconds 3", false, &t, &error));
  EXPECT_EQ(t.track, Threshold::Track::kByRule);
  ASSERT_TRUE(ParseThresholdOption("type limit, track by_both, count 2, seconds 3", false, &t, &error));
  EXPECT_EQ(t.track, Threshold::Track::kByBoth);
}

TEST(ThresholdOption, ParsesDetectionFilter) {
  Threshold t;
  std::string error;
  ASSERT_TRUE(ParseThresholdOption("track by_dst, count 10, seconds 60", true, &t, &error));
  EXPECT_EQ(t.track, Threshold::Track::kByDst);
  EXPECT_EQ(t.count, 10u);
  EXPECT_EQ(t.seconds, 60u);
  ASSERT_TRUE(ParseThresholdOption("count 15,seconds 2,track by_src", true, &t, &error));
  EXPECT_EQ(t.track, Threshold::Track::kBySrc);
  EXPECT_EQ(t.count, 15u);
  EXPECT_EQ(t.seconds, 2u);
}

TEST(ThresholdOption, RefusesBadInputWithAClearMessage) {
  struct Case {
    const char* value;
    bool detection_filter;
    const char* error;
  };
  const Case cases[] = {
      {"track by_src, count 1, seconds 60", false, "missing 'type'"},
      {"type limit, count 1, seconds 60", false, "missing 'track'"},
      {"type limit, track by_src, seconds 60", false, "missing 'count'"},
      {"type limit, track by_src, count 1", false, "missing 'seconds'"},
      {"type limit, track by_x, count 1, seconds 60", false,
       "track: unknown track 'by_x' (by_src, by_dst, by_rule, by_both, by_flow)"},
      {"type sometimes, track by_src, count 1, seconds 60", false,
       "type: unknown type 'sometimes' (limit, threshold, both)"},
      {"type backoff, track by_flow, count 1, seconds 10", false, "type: 'backoff' is not supported"},
      {"type backoff, track by_flow, count 1, multiplier 10", false,
       "'multiplier' (type backoff) is not supported"},
      {"type limit, track by_src, count 1, count 2, seconds 60", false, "duplicate 'count'"},
      {"type limit, type both, track by_src, count 1, seconds 60", false, "duplicate 'type'"},
      {"type limit, track by_src, count 0, seconds 60", false,
       "count: '0' is not a number from 1 to 4294967295"},
      {"type limit, track by_src, count -1, seconds 60", false,
       "count: '-1' is not a number from 1 to 4294967295"},
      {"type limit, track by_src, count 4294967296, seconds 60", false,
       "count: '4294967296' is not a number from 1 to 4294967295"},
      {"type limit, track by_src, count 1 2, seconds 60", false,
       "count: '1 2' is not a number from 1 to 4294967295"},
      {"type limit, track by_src, count 1, seconds 0", false,
       "seconds: '0' is not a number from 1 to 4294967295"},
      {"type limit, track by_src, count 1, seconds 1m", false,
       "seconds: '1m' is not a number from 1 to 4294967295"},
      {"type limit, track by_src, count 1, seconds 60,", false, "empty field (stray ',')"},
      {"", false, "empty value"},
      {"type limit, track by_src, count, seconds 60", false, "'count' has no value (expected 'name value')"},
      {"type limit, track by_src, count 1, seconds 60, foo 1", false,
       "unknown option 'foo' (type, track, count, seconds)"},
      {"type limit, track by_src, count 1, seconds 60", true, "'type' is not allowed in detection_filter"},
      {"track by_src, count 1, seconds 60, unique_on dst_port", true, "'unique_on' is not supported"},
      {"track by_src, count 0, seconds 60", true, "count: '0' is not a number from 1 to 4294967295"},
      {"track by_src, count 1", true, "missing 'seconds'"},
      {"count 1, seconds 60", true, "missing 'track'"},
      {"track by_src, count 1, seconds 60, bogus 2", true, "unknown option 'bogus' (track, count, seconds)"},
  };
  for (const Case& c : cases) {
    Threshold t;
    t.count = 77;
    std::string error;
    EXPECT_FALSE(ParseThresholdOption(c.value, c.detection_filter, &t, &error)) << c.value;
    EXPECT_EQ(error, c.error) << c.value;
    EXPECT_EQ(t.count, 77u) << "output written on failure: " << c.value;
  }
}

// ---------------------------------------------------------------------------------
// threshold.config

TEST(ThresholdConfigParse, ReadsEveryDirective) {
  const std::string text =
      "# threshold.config\n"
      "\n"
      "suppress gen_id 1, sig_id 2002087, track by_src, ip 209.132.180.67\n"
      "suppress gen_id 1, sig_id 2003614, track by_either, ip [192.168.0.0/16, 10.0.0.0/8, 2001:db8::/32, !10.1.2.3]\r\n"
      "   # indented comment \\\n"
      "suppress gen_id 1, sig_id 7\n"
      "threshold gen_id 1, sig_id 100, type both, track by_dst, count 10, seconds 60  # trailing comment\n"
      "event_filter gen_id 1 \\\n"
      "  , sig_id 10, type limit, track by_src, \\\n"
      "  count 1, seconds 60\n"
      "rate_filter gen_id 1, sig_id 888, track by_src, count 10, seconds 60, new_action drop, timeout 300\n"
      "rate_filter sig_id 0, gen_id 0, timeout 0, new_action reject, seconds 1, count 1, track by_rule\n";
  ThresholdConfig c;
  std::vector<std::string> errors;
  ASSERT_TRUE(ParseThresholdConfig(text, "t.config", &c, &errors));
  ASSERT_TRUE(errors.empty());
  ASSERT_EQ(c.suppress.size(), 3u);
  EXPECT_EQ(c.suppress[0].sid, 2002087u);
  EXPECT_EQ(c.suppress[0].track, SuppressEntry::Track::kBySrc);
  EXPECT_FALSE(c.suppress[0].addresses.any);
  ASSERT_EQ(c.suppress[0].addresses.include.size(), 1u);
  EXPECT_EQ(c.suppress[0].addresses.include[0].prefix_len, 32);
  EXPECT_EQ(c.suppress[0].line, 3);
  EXPECT_EQ(c.suppress[0].file, "t.config");
  EXPECT_EQ(c.suppress[1].track, SuppressEntry::Track::kByEither);
  EXPECT_EQ(c.suppress[1].addresses.include.size(), 3u);
  EXPECT_EQ(c.suppress[1].addresses.exclude.size(), 1u);
  EXPECT_TRUE(c.suppress[1].addresses.include[2].v6);
  EXPECT_EQ(c.suppress[1].addresses.include[2].prefix_len, 32);
  EXPECT_EQ(c.suppress[2].track, SuppressEntry::Track::kRule);
  EXPECT_EQ(c.suppress[2].line, 6);

  ASSERT_EQ(c.event_filters.size(), 2u);
  EXPECT_EQ(c.event_filters[0].sid, 100u);
  EXPECT_EQ(c.event_filters[0].threshold.type, Threshold::Type::kBoth);
  EXPECT_EQ(c.event_filters[0].threshold.track, Threshold::Track::kByDst);
  EXPECT_EQ(c.event_filters[0].threshold.count, 10u);
  EXPECT_EQ(c.event_filters[0].line, 7);
  EXPECT_EQ(c.event_filters[1].sid, 10u);
  EXPECT_EQ(c.event_filters[1].threshold.type, Threshold::Type::kLimit);
  EXPECT_EQ(c.event_filters[1].threshold.seconds, 60u);
  EXPECT_EQ(c.event_filters[1].line, 8);  // a continued line is named by its first line

  ASSERT_EQ(c.rate_filters.size(), 2u);
  EXPECT_EQ(c.rate_filters[0].sid, 888u);
  EXPECT_EQ(c.rate_filters[0].track, Threshold::Track::kBySrc);
  EXPECT_EQ(c.rate_filters[0].count, 10u);
  EXPECT_EQ(c.rate_filters[0].seconds, 60u);
  EXPECT_EQ(c.rate_filters[0].new_action, Action::kDrop);
  EXPECT_EQ(c.rate_filters[0].timeout, 300u);
  EXPECT_EQ(c.rate_filters[1].gid, 0u);
  EXPECT_EQ(c.rate_filters[1].sid, 0u);
  EXPECT_EQ(c.rate_filters[1].track, Threshold::Track::kByRule);
  EXPECT_EQ(c.rate_filters[1].new_action, Action::kReject);
  EXPECT_EQ(c.rate_filters[1].timeout, 0u);
  EXPECT_EQ(c.rate_filters[1].line, 12);
}

TEST(ThresholdConfigParse, SuppressAddressForms) {
  const ThresholdConfig c = Config(
      "suppress gen_id 1, sig_id 1, track by_src, ip 10.1.2.3/8\n"
      "suppress gen_id 1, sig_id 1, track by_dst, ip 2001:db8::1\n"
      "suppress gen_id 1, sig_id 1, track by_dst, ip [!192.168.1.1]\n"
      "suppress gen_id 1, sig_id 1, track by_dst, ip any\n");
  ASSERT_EQ(c.suppress.size(), 4u);
  const Cidr& net = c.suppress[0].addresses.include.at(0);
  EXPECT_EQ(net.prefix_len, 8);
  EXPECT_EQ(net.addr[0], 10);
  EXPECT_EQ(net.addr[1], 0);  // host bits cleared
  EXPECT_EQ(c.suppress[1].addresses.include.at(0).prefix_len, 128);
  EXPECT_TRUE(c.suppress[2].addresses.any);  // everything but the exclusion
  EXPECT_EQ(c.suppress[2].addresses.exclude.size(), 1u);
  EXPECT_TRUE(c.suppress[3].addresses.any);
}

TEST(ThresholdConfigParse, EveryBadLineNamesFileLineAndProblem) {
  struct Case {
    const char* line;
    const char* error;
  };
  const Case cases[] = {
      {"supress gen_id 1, sig_id 2",
       "unknown directive 'supress' (suppress, threshold, event_filter, rate_filter)"},
      {"suppress gen_id 1", "suppress: missing 'sig_id'"},
      {"suppress sig_id 2", "suppress: missing 'gen_id'"},
      {"suppress", "suppress: empty value"},
      {"suppress gen_id 0, sig_id 5",
       "suppress: sig_id 5 with gen_id 0: give the rule's gen_id (1 for most rules)"},
      {"suppress gen_id 1, sig_id 2, track by_src", "suppress: 'track' needs 'ip'"},
      {"suppress gen_id 1, sig_id 2, ip 1.2.3.4", "suppress: 'ip' needs 'track'"},
      {"suppress gen_id 1, sig_id 2, track by_rule, ip 1.2.3.4",
       "suppress: track: unknown track 'by_rule' (by_src, by_dst, by_either)"},
      {"suppress gen_id 1, sig_id 2, track by_src, ip 1.2.3.256",
       "suppress: ip: '1.2.3.256' is not an IPv4/IPv6 address or CIDR"},
      {"suppress gen_id 1, sig_id 2, track by_src, ip 10.0.0.0/33",
       "suppress: ip: '10.0.0.0/33' is not an IPv4/IPv6 address or CIDR"},
      {"suppress gen_id 1, sig_id 2, track by_src, ip 2001:db8::/129",
       "suppress: ip: '2001:db8::/129' is not an IPv4/IPv6 address or CIDR"},
      {"suppress gen_id 1, sig_id 2, track by_src, ip $HOME_NET",
       "suppress: ip: address variables such as '$HOME_NET' are not supported in threshold.config; "
       "list the addresses"},
      {"suppress gen_id 1, sig_id 2, track by_src, ip [1.2.3.4, [5.6.7.8]]",
       "suppress: ip: nested lists are not supported: '[1.2.3.4, [5.6.7.8]]'"},
      {"suppress gen_id 1, sig_id 2, track by_src, ip [1.2.3.4,,5.6.7.8]",
       "suppress: ip: empty address in '[1.2.3.4,,5.6.7.8]'"},
      {"suppress gen_id 1, sig_id 2, track by_src, ip [1.2.3.4", "suppress: unbalanced '['"},
      {"suppress gen_id 1, sig_id 2, count 5",
       "suppress: unknown option 'count' (gen_id, sig_id, track, ip)"},
      {"suppress gen_id 1, gen_id 1, sig_id 2", "suppress: duplicate 'gen_id'"},
      {"threshold gen_id 1, sig_id 2, type limit, track by_src, count 1",
       "threshold: missing 'seconds'"},
      {"threshold gen_id x, sig_id 2, type limit, track by_src, count 1, seconds 1",
       "threshold: gen_id: 'x' is not a number from 0 to 4294967295"},
      {"threshold gen_id 1, sig_id 2, type limit, track by_src, count 0, seconds 60",
       "threshold: count: '0' is not a number from 1 to 4294967295"},
      {"threshold gen_id 1, sig_id 2, type limit, track by_either, count 1, seconds 60",
       "threshold: track: unknown track 'by_either' (by_src, by_dst, by_rule, by_both, by_flow)"},
      {"threshold gen_id 1, sig_id 2, type limit, track by_src, count 1, seconds 60, new_action drop",
       "threshold: unknown option 'new_action' (gen_id, sig_id, type, track, count, seconds)"},
      {"event_filter gen_id 1, sig_id 1000, type invalid, track by_src, count 100, seconds 60",
       "event_filter: type: unknown type 'invalid' (limit, threshold, both)"},
      {"rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 60, new_action block, timeout 10",
       "rate_filter: new_action: unknown action 'block' (alert, drop, pass, reject)"},
      {"rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 60, new_action sdrop, timeout 10",
       "rate_filter: new_action: 'sdrop' is not supported (Suricata parses but ignores it)"},
      {"rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 60, new_action drop",
       "rate_filter: missing 'timeout'"},
      {"rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 60, timeout 5",
       "rate_filter: missing 'new_action'"},
      {"rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 60, new_action drop, timeout -1",
       "rate_filter: timeout: '-1' is not a number from 0 to 4294967295"},
      {"rate_filter gen_id 1, sig_id 2, track by_src, count 0, seconds 60, new_action drop, timeout 1",
       "rate_filter: count: '0' is not a number from 1 to 4294967295"},
      {"rate_filter gen_id 1, sig_id 2, count 1, seconds 60, new_action drop, timeout 1",
       "rate_filter: missing 'track'"},
      {"rate_filter gen_id 1, sig_id 2, track by_src, count 1, seconds 60, new_action drop, timeout 1, type limit",
       "rate_filter: unknown option 'type' (gen_id, sig_id, track, count, seconds, new_action, timeout)"},
  };
  for (const Case& c : cases) {
    ThresholdConfig out;
    std::vector<std::string> errors;
    EXPECT_FALSE(ParseThresholdConfig(std::string("# header\n") + c.line + "\n", "t.config", &out, &errors))
        << c.line;
    ASSERT_EQ(errors.size(), 1u) << c.line;
    EXPECT_EQ(errors[0], std::string("t.config:2: ") + c.error);
    EXPECT_TRUE(out.empty()) << c.line;
  }
}

TEST(ThresholdConfigParse, AFileWithErrorsIsRefusedWhole) {
  ThresholdConfig out;
  std::vector<std::string> errors;
  const std::string text =
      "suppress gen_id 1, sig_id 1\n"
      "threshold gen_id 1, sig_id 2, type limit, track by_src, count 1, seconds 60\n"
      "threshold gen_id 1, sig_id 2, type both, track by_src, count 1, seconds 60\n"
      "rate_filter gen_id 1, sig_id 3, track by_src, \\\n"
      "   count 1, seconds 60, new_action drop, timeout 1\n"
      "rate_filter gen_id 1, sig_id 3, track by_dst, count 2, seconds 60, new_action drop, timeout 1\n"
      "bogus\n";
  EXPECT_FALSE(ParseThresholdConfig(text, "t.config", &out, &errors));
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0], "t.config:3: threshold: duplicate threshold for gen_id 1, sig_id 2 (first at t.config:2)");
  EXPECT_EQ(errors[1], "t.config:6: rate_filter: duplicate rate_filter for gen_id 1, sig_id 3 (first at t.config:4)");
  EXPECT_EQ(errors[2], "t.config:7: unknown directive 'bogus' (suppress, threshold, event_filter, rate_filter)");
  EXPECT_TRUE(out.empty());
}

TEST(ThresholdConfigParse, MergesFilesAndFindsDuplicatesAcrossThem) {
  ThresholdConfig out;
  std::vector<std::string> errors;
  ASSERT_TRUE(ParseThresholdConfig("threshold gen_id 1, sig_id 2, type limit, track by_src, count 1, seconds 60\n",
                                   "a.config", &out, &errors));
  ASSERT_TRUE(ParseThresholdConfig("suppress gen_id 1, sig_id 2\n", "b.config", &out, &errors));
  EXPECT_EQ(out.event_filters.size(), 1u);
  EXPECT_EQ(out.suppress.size(), 1u);
  EXPECT_FALSE(ParseThresholdConfig("suppress gen_id 1, sig_id 9\n"
                                    "event_filter gen_id 1, sig_id 2, type both, track by_dst, count 2, seconds 5\n",
                                    "c.config", &out, &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "c.config:2: event_filter: duplicate threshold for gen_id 1, sig_id 2 (first at a.config:1)");
  EXPECT_EQ(out.suppress.size(), 1u);  // c.config's good line was not taken either
}

TEST(ThresholdConfigParse, EmptyAndCommentOnlyFilesAreValid) {
  ThresholdConfig out;
  std::vector<std::string> errors;
  EXPECT_TRUE(ParseThresholdConfig("", "t", &out, &errors));
  EXPECT_TRUE(ParseThresholdConfig("# nothing\n\n   \n#x\\\n", "t", &out, &errors));
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(errors.empty());
}

TEST(ThresholdConfigParse, RefusesAnOverlongLine) {
  ThresholdConfig out;
  std::vector<std::string> errors;
  std::string text = "suppress gen_id 1, sig_id 2, track by_src, ip [";
  for (int i = 0; i < 8000; ++i) text += "10.0.0.1, ";
  text += "10.0.0.2]\n";
  EXPECT_FALSE(ParseThresholdConfig(text, "t", &out, &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "t:1: line longer than 65536 bytes");
}

// ---------------------------------------------------------------------------------
// Rule thresholds at run time

TEST(ThresholdEngine, LimitLogsTheFirstCountHitsPerWindowAndStillApplies) {
  ThresholdEngine engine({});
  const Rule rule = WithThreshold(1, "type limit, track by_src, count 2, seconds 60", Action::kDrop);
  const AlertSubject a = Subject("10.0.0.1", "10.0.0.9");
  const AlertSubject b = Subject("10.0.0.2", "10.0.0.9");
  // The window is [first, first + 60 s], both ends in it.
  EXPECT_EQ(Trace(engine, rule, a, {0, 1, 2, 60}), "LLaa");
  EXPECT_EQ(Trace(engine, rule, b, {60}), "L");  // another source, its own count
  EXPECT_EQ(Trace(engine, rule, a, {60.001, 61, 62, 100}), "LLaa");
}

TEST(ThresholdEngine, ThresholdLogsEveryCountthHitAndDoesNotApplyBelowIt) {
  ThresholdEngine engine({});
  const Rule rule = WithThreshold(1, "type threshold, track by_dst, count 3, seconds 10", Action::kDrop);
  const AlertSubject s = Subject("10.0.0.1", "10.0.0.9");
  // Suricata returns 0 for hits below the count: no alert and no drop.
  EXPECT_EQ(Trace(engine, rule, s, {0, 1, 2, 3, 4, 5, 6}), "--L--L-");
  // The window is not restarted by an alert: at 10 it still runs (count 2), after 10 a
  // new one starts with that hit as its first.
  EXPECT_EQ(Trace(engine, rule, s, {10, 10.5, 11, 12}), "---L");
  // by_dst: another source towards the same destination shares the count.
  EXPECT_EQ(Trace(engine, rule, Subject("10.0.0.7", "10.0.0.9"), {12.5, 13, 13.5}), "--L");
}

TEST(ThresholdEngine, ThresholdCountOneLogsEveryHitWithoutState) {
  ThresholdEngine engine({});
  const Rule rule = WithThreshold(1, "type threshold, track by_src, count 1, seconds 10");
  EXPECT_EQ(Hits(engine, rule, Subject("10.0.0.1", "10.0.0.2"), 5).logged, 5);
  EXPECT_EQ(engine.counters().entries, 0u);
}

TEST(ThresholdEngine, BothLogsOncePerWindowAfterCountHits) {
  ThresholdEngine engine({});
  const Rule rule = WithThreshold(1, "type both, track by_rule, count 3, seconds 60", Action::kDrop);
  // below the count: 0 (nothing); at it: 1 (alert); above it: 2 (drop, no alert)
  EXPECT_EQ(Trace(engine, rule, Subject("10.0.0.1", "10.0.0.2"), {0, 1, 2, 3}), "--La");
  EXPECT_EQ(Trace(engine, rule, Subject("10.0.0.3", "10.0.0.4"), {4, 60}), "aa");  // by_rule: any address
  EXPECT_EQ(Trace(engine, rule, Subject("10.0.0.1", "10.0.0.2"), {61, 62, 63, 64}), "--La");

  const Rule once = WithThreshold(2, "type both, track by_src, count 1, seconds 60");
  EXPECT_EQ(Trace(engine, once, Subject("10.0.0.1", "10.0.0.2"), {0, 1, 61}), "LaL");
}

TEST(ThresholdEngine, ByBothIsTheUnorderedAddressPair) {
  ThresholdEngine engine({});
  const Rule rule = WithThreshold(1, "type limit, track by_both, count 1, seconds 60");
  EXPECT_EQ(Trace(engine, rule, Subject("10.0.0.1", "10.0.0.2"), {0}), "L");
  EXPECT_EQ(Trace(engine, rule, Subject("10.0.0.2", "10.0.0.1"), {1}), "a");
  EXPECT_EQ(Trace(engine, rule, Subject("10.0.0.1", "10.0.0.3"), {2}), "L");
}

TEST(ThresholdEngine, IPv6AddressesAreTrackedApart) {
  ThresholdEngine engine({});
  const Rule rule = WithThreshold(1, "type limit, track by_src, count 1, seconds 60");
  EXPECT_EQ(Trace(engine, rule, Subject("2001:db8::1", "2001:db8::ff"), {0, 1}), "La");
  EXPECT_EQ(Trace(engine, rule, Subject("2001:db8::2", "2001:db8::ff"), {2}), "L");
  // The IPv4 address with the same leading bytes as a v6 one is another key.
  EXPECT_EQ(Trace(engine, rule, Subject("32.1.13.184", "10.0.0.1"), {3}), "L");
}

TEST(ThresholdEngine, TrackByFlowCountsPerFlow) {
  // suricata-verify threshold-rule-flow: eight echo requests on one flow.
  ThresholdEngine engine({});
  const AlertSubject flow = Subject("192.168.0.1", "192.168.0.2", 42);
  EXPECT_EQ(Hits(engine, WithThreshold(2, "type limit, track by_flow, count 1, seconds 3600"), flow, 8).logged, 1);
  EXPECT_EQ(Hits(engine, WithThreshold(3, "type limit, track by_flow, count 2, seconds 3600"), flow, 8).logged, 2);
  EXPECT_EQ(Hits(engine, WithThreshold(4, "type both, track by_flow, count 3, seconds 3600"), flow, 8).logged, 1);
  // Another flow between the same hosts starts its own count.
  const Rule limit1 = WithThreshold(2, "type limit, track by_flow, count 1, seconds 3600");
  EXPECT_EQ(Hits(engine, limit1, Subject("192.168.0.1", "192.168.0.2", 43), 3, 10).logged, 1);
  // Without a flow Suricata leaves the result at 0: no alert, no action.
  const ThresholdDecision d = engine.Check(limit1, Subject("192.168.0.1", "192.168.0.2", 0), At(20));
  EXPECT_FALSE(d.log_alert);
  EXPECT_FALSE(d.apply_action);
}

TEST(ThresholdEngine, DetectionFilterFiresOnEveryHitAfterTheFirstCount) {
  // suricata-verify detection_filter-rule-hostsrc: eight echo requests from one source.
  const AlertSubject s = Subject("192.168.0.1", "192.168.0.2");
  const std::pair<uint32_t, int> expected[] = {{1, 7}, {2, 6}, {4, 4}, {7, 1}, {8, 0}};
  for (const auto& [count, fired] : expected) {
    ThresholdEngine engine({});
    const Rule rule = WithDetectionFilter(
        2, "track by_src, count " + std::to_string(count) + ", seconds 3600");
    const Tally t = Hits(engine, rule, s, 8);
    EXPECT_EQ(t.logged, fired) << "count " << count;
    EXPECT_EQ(t.applied, fired) << "count " << count;  // below the count the rule does not match
  }
}

TEST(ThresholdEngine, DetectionFilterWindowExpires) {
  ThresholdEngine engine({});
  const Rule rule = WithDetectionFilter(1, "track by_src, count 2, seconds 10");
  const AlertSubject s = Subject("10.0.0.1", "10.0.0.2");
  EXPECT_EQ(Trace(engine, rule, s, {0, 1, 2, 10}), "--LL");
  EXPECT_EQ(Trace(engine, rule, s, {20, 21, 22}), "--L");
  EXPECT_EQ(Trace(engine, rule, Subject("10.0.0.3", "10.0.0.2"), {22}), "-");
}

// ---------------------------------------------------------------------------------
// Suppress

TEST(ThresholdEngine, SuppressedDropRuleStillDrops) {
  // suricata-verify threshold-config-suppress-bysrc-ip: a drop rule suppressed for one
  // source: every match drops (19 drop events), only the others alert (4).
  ThresholdEngine engine(Config("suppress gen_id 1, sig_id 1000001, track by_src, ip 145.254.160.237\n"));
  const Rule rule = MakeRule(1000001, Action::kDrop);
  const Tally from_suppressed = Hits(engine, rule, Subject("145.254.160.237", "65.208.228.223"), 15);
  const Tally from_server = Hits(engine, rule, Subject("65.208.228.223", "145.254.160.237"), 4, 20);
  EXPECT_EQ(from_suppressed.applied + from_server.applied, 19);
  EXPECT_EQ(from_suppressed.logged + from_server.logged, 4);
  EXPECT_EQ(engine.counters().suppressed, 15u);
  EXPECT_FALSE(engine.Applies(MakeRule(1000002)));
  EXPECT_TRUE(engine.Applies(rule));
}

TEST(ThresholdEngine, SuppressByDstCidrEitherListAndIPv6) {
  ThresholdEngine engine(Config(
      "suppress gen_id 1, sig_id 1, track by_dst, ip 10.20.0.0/16\n"
      "suppress gen_id 1, sig_id 2, track by_either, ip [192.0.2.7, 2001:db8:1::/48, 198.51.100.0/24, !198.51.100.9]\n"));
  const Rule r1 = MakeRule(1);
  EXPECT_FALSE(engine.Check(r1, Subject("1.1.1.1", "10.20.3.4"), At(0)).log_alert);
  EXPECT_TRUE(engine.Check(r1, Subject("10.20.3.4", "1.1.1.1"), At(0)).log_alert);  // by_dst only
  EXPECT_TRUE(engine.Check(r1, Subject("1.1.1.1", "10.21.0.1"), At(0)).log_alert);

  const Rule r2 = MakeRule(2);
  EXPECT_FALSE(engine.Check(r2, Subject("192.0.2.7", "1.1.1.1"), At(0)).log_alert);
  EXPECT_FALSE(engine.Check(r2, Subject("1.1.1.1", "192.0.2.7"), At(0)).log_alert);
  EXPECT_TRUE(engine.Check(r2, Subject("192.0.2.8", "1.1.1.1"), At(0)).log_alert);
  EXPECT_FALSE(engine.Check(r2, Subject("2001:db8:1:ffff::1", "2001:db8:9::1"), At(0)).log_alert);
  EXPECT_TRUE(engine.Check(r2, Subject("2001:db8:2::1", "2001:db8:9::1"), At(0)).log_alert);
  EXPECT_FALSE(engine.Check(r2, Subject("198.51.100.8", "1.1.1.1"), At(0)).log_alert);
  EXPECT_TRUE(engine.Check(r2, Subject("198.51.100.9", "1.1.1.1"), At(0)).log_alert);  // excluded
  // An IPv4 address is never in an IPv6 prefix with the same leading bytes.
  EXPECT_TRUE(engine.Check(r2, Subject("32.1.13.184", "1.1.1.1"), At(0)).log_alert);
  // Suppression never stops the action.
  EXPECT_TRUE(engine.Check(r2, Subject("192.0.2.7", "1.1.1.1"), At(0)).apply_action);
}

TEST(ThresholdEngine, SuppressWithoutTrackMakesTheRuleNoalertButThresholdsStillCount) {
  ThresholdEngine engine(Config("suppress gen_id 1, sig_id 5\n"));
  const Rule plain = MakeRule(5, Action::kDrop);
  const Tally t = Hits(engine, plain, Subject("10.0.0.1", "10.0.0.2"), 4);
  EXPECT_EQ(t.logged, 0);
  EXPECT_EQ(t.applied, 4);
  // With a threshold (count 2) the rule only matches every second hit, silently.
  const Rule counted = WithThreshold(5, "type threshold, track by_src, count 2, seconds 60", Action::kDrop);
  EXPECT_EQ(Trace(engine, counted, Subject("10.0.0.1", "10.0.0.2"), {0, 1, 2, 3}), "-a-a");
}

TEST(ThresholdEngine, SuppressSuricataUserGuideWildcardsAllMatch) {
  // "Each of the rules above will make sure 2002087 doesn't alert when the source of
  // the emails is 209.132.180.67" (global-thresholds.rst), with the rule's threshold.
  const Rule rule = WithThreshold(2002087, "type threshold, track by_src, count 10, seconds 60");
  for (const char* line : {"suppress gen_id 1, sig_id 2002087, track by_src, ip 209.132.180.67\n",
                           "suppress gen_id 0, sig_id 0, track by_src, ip 209.132.180.67\n",
                           "suppress gen_id 1, sig_id 0, track by_src, ip 209.132.180.67\n"}) {
    ThresholdEngine engine(Config(line));
    EXPECT_EQ(Hits(engine, rule, Subject("209.132.180.67", "10.0.0.25"), 30).logged, 0) << line;
    EXPECT_EQ(Hits(engine, rule, Subject("209.132.180.68", "10.0.0.25"), 30).logged, 3) << line;
  }
  // A gen-wide entry does not touch another generator.
  ThresholdEngine engine(Config("suppress gen_id 1, sig_id 0, track by_src, ip 209.132.180.67\n"));
  const Rule other = MakeRule(5, Action::kAlert, 3);
  EXPECT_FALSE(engine.Applies(other));
  EXPECT_TRUE(engine.Check(other, Subject("209.132.180.67", "10.0.0.25"), At(0)).log_alert);
  EXPECT_TRUE(engine.Applies(MakeRule(77)));
}

// ---------------------------------------------------------------------------------
// Precedence of threshold.config over rule options

TEST(ThresholdEngine, ExactConfigThresholdReplacesTheRuleOwn) {
  ThresholdEngine engine(Config(
      "threshold gen_id 1, sig_id 1, type limit, track by_src, count 3, seconds 60\n"
      "threshold gen_id 1, sig_id 2, type limit, track by_src, count 2, seconds 60\n"));
  const AlertSubject s = Subject("10.0.0.1", "10.0.0.2");
  EXPECT_EQ(Hits(engine, WithThreshold(1, "type limit, track by_src, count 1, seconds 60"), s, 10).logged, 3);
  // It replaces a detection_filter too (the rule would otherwise log 0 of 5).
  EXPECT_EQ(Hits(engine, WithDetectionFilter(2, "track by_src, count 5, seconds 60"), s, 5).logged, 2);
}

TEST(ThresholdEngine, WildcardThresholdsApplyOnlyToRulesWithoutTheirOwn) {
  const std::string gen = "threshold gen_id 1, sig_id 0, type limit, track by_rule, count 2, seconds 60\n";
  const std::string global = "threshold gen_id 0, sig_id 0, type limit, track by_rule, count 4, seconds 60\n";
  // The more specific entry wins whatever the file order.
  for (const std::string& text : {gen + global, global + gen}) {
    ThresholdEngine engine(Config(text));
    const AlertSubject s = Subject("10.0.0.1", "10.0.0.2");
    EXPECT_EQ(Hits(engine, MakeRule(10), s, 10).logged, 2);
    EXPECT_EQ(Hits(engine, MakeRule(11, Action::kAlert, 3), s, 10).logged, 4);
    EXPECT_EQ(Hits(engine, WithThreshold(12, "type limit, track by_rule, count 7, seconds 60"), s, 10).logged, 7);
    EXPECT_EQ(Hits(engine, WithDetectionFilter(13, "track by_rule, count 5, seconds 60"), s, 10).logged, 5);
  }
}

TEST(ThresholdEngine, RuleThresholdWinsOverRateFilterAndConfigThresholdOverBoth) {
  const ThresholdConfig config = Config(
      "rate_filter gen_id 1, sig_id 1, track by_rule, count 1, seconds 60, new_action drop, timeout 60\n"
      "rate_filter gen_id 1, sig_id 2, track by_rule, count 1, seconds 60, new_action drop, timeout 60\n"
      "threshold gen_id 1, sig_id 2, type limit, track by_rule, count 1, seconds 60\n");
  ThresholdEngine engine(config);
  const AlertSubject s = Subject("10.0.0.1", "10.0.0.2");
  const Rule own = WithThreshold(1, "type limit, track by_rule, count 5, seconds 60");
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(engine.Check(own, s, At(i)).new_action.has_value());
  EXPECT_EQ(Hits(engine, MakeRule(2), s, 10).logged, 1);
  EXPECT_EQ(engine.counters().rate_filtered, 0u);

  const std::vector<std::string> warnings = ThresholdConfigWarnings(config, {own, MakeRule(2)});
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0],
            "threshold.config:1: rate_filter gen_id 1, sig_id 1: never applies: the rule's own "
            "threshold/detection_filter takes precedence (as in Suricata)");
  EXPECT_EQ(warnings[1],
            "threshold.config:2: rate_filter gen_id 1, sig_id 2: never applies: the threshold at "
            "threshold.config:3 takes precedence");
}

TEST(ThresholdEngine, WarnsAboutEntriesForRulesThatAreNotLoaded) {
  const ThresholdConfig config = Config(
      "suppress gen_id 1, sig_id 99\n"
      "suppress gen_id 7, sig_id 0\n"
      "suppress gen_id 1, sig_id 1\n"
      "threshold gen_id 0, sig_id 0, type limit, track by_rule, count 1, seconds 60\n");
  const std::vector<std::string> warnings = ThresholdConfigWarnings(config, {MakeRule(1)});
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0], "threshold.config:1: suppress gen_id 1, sig_id 99: no such rule is loaded");
  EXPECT_EQ(warnings[1], "threshold.config:2: suppress gen_id 7, sig_id 0: no rule with this gen_id is loaded");
}

// ---------------------------------------------------------------------------------
// rate_filter

TEST(ThresholdEngine, RateFilterSwitchesTheActionAfterMoreThanCountHitsThenReverts) {
  ThresholdEngine engine(Config(
      "rate_filter gen_id 1, sig_id 888, track by_src, count 3, seconds 5, new_action drop, timeout 10\n"));
  const Rule rule = MakeRule(888);
  const AlertSubject s = Subject("10.0.0.1", "10.0.0.22");
  auto action_at = [&](double t) {
    const ThresholdDecision d = engine.Check(rule, s, At(t));
    EXPECT_TRUE(d.apply_action);
    EXPECT_TRUE(d.log_alert);
    return d.new_action;
  };
  EXPECT_FALSE(action_at(0));
  EXPECT_FALSE(action_at(1));
  EXPECT_FALSE(action_at(2));
  EXPECT_EQ(action_at(3), Action::kDrop);  // the 4th hit: more than 3 (`>`, not `>=`)
  // Another source is counted apart.
  EXPECT_FALSE(engine.Check(rule, Subject("10.0.0.2", "10.0.0.22"), At(3)).new_action);
  // In force while (now - start) <= timeout, in whole seconds.
  EXPECT_EQ(action_at(5), Action::kDrop);
  EXPECT_EQ(action_at(13.9), Action::kDrop);
  // The hit that ends it gets the rule's action and is not counted; then counting
  // starts again with a new window.
  EXPECT_FALSE(action_at(14));
  EXPECT_FALSE(action_at(15));
  EXPECT_FALSE(action_at(16));
  EXPECT_FALSE(action_at(17));
  EXPECT_EQ(action_at(18), Action::kDrop);
  EXPECT_EQ(engine.counters().rate_filtered, 4u);
}

TEST(ThresholdEngine, RateFilterInTheSameWindowReactivatesAtOnce) {
  // After the timeout, a window that is still open has its count over the limit already.
  ThresholdEngine engine(Config(
      "rate_filter gen_id 1, sig_id 9, track by_rule, count 1, seconds 100, new_action reject, timeout 2\n"));
  const Rule rule = MakeRule(9, Action::kDrop);
  const AlertSubject s = Subject("10.0.0.1", "10.0.0.2");
  std::string trace;
  for (double t : {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}) {
    const auto a = engine.Check(rule, s, At(t)).new_action;
    trace += a ? (*a == Action::kReject ? 'R' : '?') : '.';
  }
  // 0: first hit; 1: second (> 1): reject from 1 s; 2, 3: in force; 4: 4 - 1 > 2 ends
  // it; 5: still in the window, count over: reject again.
  EXPECT_EQ(trace, ".RRR.R");
}

TEST(ThresholdEngine, RateFilterSuricataVerifyDropHostsrc) {
  // threshold-config-rate-filter-drop-hostsrc: count 1 by_src, new_action drop: the
  // first alert from a source is allowed, the second blocked.
  ThresholdEngine engine(Config(
      "rate_filter gen_id 1, sig_id 1000001, track by_src, count 1, seconds 60, new_action drop, timeout 1000\n"));
  const Rule rule = MakeRule(1000001);
  const AlertSubject s = Subject("145.254.160.237", "65.208.228.223");
  EXPECT_FALSE(engine.Check(rule, s, At(0)).new_action);
  EXPECT_EQ(engine.Check(rule, s, At(0.5)).new_action, Action::kDrop);
  EXPECT_EQ(engine.Check(rule, s, At(900)).new_action, Action::kDrop);
}

TEST(ThresholdEngine, WildcardRateFilterAndPrecedenceAgainstWildcardThreshold) {
  ThresholdEngine engine(Config(
      "rate_filter gen_id 0, sig_id 0, track by_rule, count 1, seconds 60, new_action pass, timeout 60\n"
      "threshold gen_id 2, sig_id 0, type limit, track by_rule, count 1, seconds 60\n"
      "rate_filter gen_id 2, sig_id 0, track by_rule, count 1, seconds 60, new_action drop, timeout 60\n"));
  const AlertSubject s = Subject("10.0.0.1", "10.0.0.2");
  const Rule any = MakeRule(1, Action::kDrop);
  EXPECT_FALSE(engine.Check(any, s, At(0)).new_action);
  EXPECT_EQ(engine.Check(any, s, At(1)).new_action, Action::kPass);
  // gid 2: the gen-wide threshold wins over the gen-wide rate_filter and the global one.
  const Rule gen2 = MakeRule(1, Action::kAlert, 2);
  EXPECT_EQ(Trace(engine, gen2, s, {0, 1, 2}), "Laa");
  EXPECT_FALSE(engine.Check(gen2, s, At(3)).new_action);
}

// ---------------------------------------------------------------------------------
// Capacity

TEST(ThresholdEngine, FullTableReusesExpiredEntriesElseDecidesAsFirstHit) {
  ThresholdEngine engine({}, 2);
  const Rule rule = WithThreshold(1, "type limit, track by_src, count 1, seconds 60", Action::kDrop);
  const AlertSubject a = Subject("10.0.0.1", "10.9.9.9");
  const AlertSubject b = Subject("10.0.0.2", "10.9.9.9");
  const AlertSubject c = Subject("10.0.0.3", "10.9.9.9");
  EXPECT_EQ(Trace(engine, rule, a, {0}), "L");
  EXPECT_EQ(Trace(engine, rule, b, {1}), "L");
  // Full, nothing expired: c is decided as a first hit each time, and not stored.
  EXPECT_EQ(Trace(engine, rule, c, {2, 3}), "LL");
  EXPECT_EQ(engine.counters().table_full, 2u);
  EXPECT_EQ(engine.counters().entries, 2u);
  EXPECT_EQ(Trace(engine, rule, a, {4}), "a");  // a is still tracked
  // At 61.5 a's window (0..60) has passed, b's (1..61) too: both are reclaimed.
  EXPECT_EQ(Trace(engine, rule, c, {61.5, 62}), "La");
  EXPECT_EQ(engine.counters().entries, 1u);
  EXPECT_EQ(engine.counters().table_full, 2u);

  // Without state a detection_filter never reaches its count: no match.
  ThresholdEngine none({}, 0);
  const Rule df = WithDetectionFilter(2, "track by_src, count 1, seconds 60");
  EXPECT_EQ(Trace(none, df, a, {0, 1, 2}), "---");
  EXPECT_EQ(none.counters().table_full, 3u);
}

TEST(ThresholdEngine, ActiveRateFilterEntryIsNotReclaimedBeforeItsTimeout) {
  ThresholdEngine engine(Config(
      "rate_filter gen_id 1, sig_id 1, track by_src, count 1, seconds 1, new_action drop, timeout 100\n"), 1);
  const Rule rule = MakeRule(1);
  const AlertSubject a = Subject("10.0.0.1", "10.9.9.9");
  engine.Check(rule, a, At(0));
  EXPECT_EQ(engine.Check(rule, a, At(0.5)).new_action, Action::kDrop);
  // The window has passed but the timeout has not: another source finds no room.
  EXPECT_FALSE(engine.Check(rule, Subject("10.0.0.2", "10.9.9.9"), At(50)).new_action);
  EXPECT_EQ(engine.counters().table_full, 1u);
  EXPECT_EQ(engine.Check(rule, a, At(60)).new_action, Action::kDrop);
  // After it (100 s from 0.5, in whole seconds: from 101) the entry can go.
  engine.Check(rule, Subject("10.0.0.2", "10.9.9.9"), At(102));
  EXPECT_EQ(engine.counters().table_full, 1u);
  EXPECT_FALSE(engine.Check(rule, a, At(102.5)).new_action);  // a starts afresh, no room: first hit
  EXPECT_EQ(engine.counters().table_full, 2u);
}

// ---------------------------------------------------------------------------------
// Applies, counters, threads

TEST(ThresholdEngine, AppliesOnlyWhereSomethingCanChangeTheDecision) {
  ThresholdEngine empty({});
  EXPECT_FALSE(empty.Applies(MakeRule(1)));
  EXPECT_TRUE(empty.Applies(WithThreshold(1, "type limit, track by_src, count 1, seconds 1")));
  EXPECT_TRUE(empty.Applies(WithDetectionFilter(1, "track by_src, count 1, seconds 1")));
  const ThresholdDecision d = empty.Check(MakeRule(1), Subject("10.0.0.1", "10.0.0.2"), At(0));
  EXPECT_TRUE(d.apply_action);
  EXPECT_TRUE(d.log_alert);
  EXPECT_FALSE(d.new_action);

  ThresholdEngine exact(Config(
      "rate_filter gen_id 1, sig_id 5, track by_src, count 1, seconds 1, new_action drop, timeout 1\n"));
  EXPECT_TRUE(exact.Applies(MakeRule(5)));
  EXPECT_FALSE(exact.Applies(MakeRule(6)));
  EXPECT_FALSE(exact.Applies(MakeRule(5, Action::kAlert, 2)));

  ThresholdEngine global(Config("suppress gen_id 0, sig_id 0\n"));
  EXPECT_TRUE(global.Applies(MakeRule(123, Action::kAlert, 9)));
  EXPECT_FALSE(global.Check(MakeRule(123, Action::kAlert, 9), Subject("10.0.0.1", "10.0.0.2"), At(0)).log_alert);
}

TEST(ThresholdEngine, CountersAddUp) {
  ThresholdEngine engine(Config("suppress gen_id 1, sig_id 2, track by_src, ip 10.0.0.1\n"));
  const AlertSubject s = Subject("10.0.0.1", "10.0.0.2");
  Hits(engine, WithThreshold(1, "type limit, track by_src, count 2, seconds 60"), s, 5);  // 3 thresholded
  Hits(engine, MakeRule(2), s, 4);  // 4 suppressed
  const ThresholdCounters c = engine.counters();
  EXPECT_EQ(c.checks, 9u);
  EXPECT_EQ(c.thresholded, 3u);
  EXPECT_EQ(c.suppressed, 4u);
  EXPECT_EQ(c.rate_filtered, 0u);
  EXPECT_EQ(c.table_full, 0u);
  EXPECT_EQ(c.entries, 1u);
}

TEST(ThresholdEngine, ConcurrentChecksGiveExactTotals) {
  constexpr int kThreads = 8;
  constexpr int kHits = 1000;
  ThresholdEngine engine({}, 1024);
  const Rule limit = WithThreshold(1, "type limit, track by_rule, count 10, seconds 60");
  const Rule every7 = WithThreshold(2, "type threshold, track by_rule, count 7, seconds 60");
  const Rule df = WithDetectionFilter(3, "track by_src, count 100, seconds 60");
  const Rule per_src = WithThreshold(4, "type limit, track by_src, count 10, seconds 60");
  const AlertSubject sources[4] = {Subject("10.0.0.1", "10.0.0.9"), Subject("10.0.0.2", "10.0.0.9"),
                                   Subject("10.0.0.3", "10.0.0.9"), Subject("10.0.0.4", "10.0.0.9")};
  std::atomic<int> logged[4] = {0, 0, 0, 0};
  std::atomic<int> applied_df{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kHits; ++i) {
        const uint64_t now = At(0) + static_cast<uint64_t>(i) * 1000;  // all within the window
        logged[0] += engine.Check(limit, sources[0], now).log_alert;
        logged[1] += engine.Check(every7, sources[(t + i) % 4], now).log_alert;
        const ThresholdDecision d = engine.Check(df, sources[0], now);
        logged[2] += d.log_alert;
        applied_df += d.apply_action;
        logged[3] += engine.Check(per_src, sources[(t + i) % 4], now).log_alert;
      }
    });
  }
  for (auto& th : threads) th.join();
  const int total = kThreads * kHits;
  EXPECT_EQ(logged[0].load(), 10);
  EXPECT_EQ(logged[1].load(), total / 7);
  EXPECT_EQ(logged[2].load(), total - 100);
  EXPECT_EQ(applied_df.load(), total - 100);
  EXPECT_EQ(logged[3].load(), 40);
  const ThresholdCounters c = engine.counters();
  EXPECT_EQ(c.checks, static_cast<uint64_t>(4 * total));
  EXPECT_EQ(c.entries, 7u);  // limit, every7, df (one source), per_src (four sources)
  EXPECT_EQ(c.table_full, 0u);
}

}  // namespace
}  // namespace wardgate::rules
