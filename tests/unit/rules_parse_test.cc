// The Suricata-dialect rule parser: every keyword and modifier, Suricata's load-time
// checks, the error each mistake produces (keyword, line, sid), lenient counting,
// variables, address and port sets, and all of ET Open.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rules/rule.h"

#ifndef WARDGATE_SOURCE_ROOT
// Fallback when the build does not define it: this file is tests/unit/ under the root.
#define WARDGATE_SOURCE_ROOT WARDGATE_FALLBACK_ROOT()
namespace {
std::string WARDGATE_FALLBACK_ROOT() {
  std::string f = __FILE__;
  const std::string tail = "/tests/unit/rules_parse_test.cc";
  if (f.size() > tail.size() && f.compare(f.size() - tail.size(), tail.size(), tail) == 0) {
    return f.substr(0, f.size() - tail.size());
  }
  return ".";
}
}  // namespace
#endif

namespace wardgate::rules {
namespace {

constexpr const char* kHeader = "alert tcp any any -> any any ";

RuleSet Parse(const std::string& text, bool lenient = false,
              std::map<std::string, std::string> vars = {}) {
  LoadOptions o;
  o.lenient = lenient;
  o.variables = std::move(vars);
  return ParseRules(text, "test.rules", o);
}

std::string Describe(const RuleSet& rs) {
  std::string s;
  for (const LoadError& e : rs.errors) s += "  " + e.ToString() + "\n";
  return s;
}

// Parses `opts` (the text between the parentheses) under a tcp any/any header and
// expects exactly one rule.
Rule One(const std::string& opts, const std::string& header = kHeader,
         std::map<std::string, std::string> vars = {}) {
  const RuleSet rs = Parse(header + "(" + opts + ")\n", false, std::move(vars));
  EXPECT_EQ(rs.errors.size(), 0u) << opts << "\n" << Describe(rs);
  EXPECT_EQ(rs.rules.size(), 1u) << opts;
  return rs.rules.empty() ? Rule{} : rs.rules[0];
}

// Parses one whole rule line expecting exactly one error and no rule.
LoadError Err(const std::string& rule, std::map<std::string, std::string> vars = {}) {
  const RuleSet rs = Parse(rule + "\n", false, std::move(vars));
  EXPECT_EQ(rs.rules.size(), 0u) << rule;
  EXPECT_EQ(rs.errors.size(), 1u) << rule << "\n" << Describe(rs);
  return rs.errors.empty() ? LoadError{} : rs.errors[0];
}

std::array<uint8_t, 16> Ip(const char* text, bool* v6 = nullptr) {
  std::array<uint8_t, 16> a{};
  const bool is6 = std::string(text).find(':') != std::string::npos;
  EXPECT_EQ(inet_pton(is6 ? AF_INET6 : AF_INET, text, a.data()), 1) << text;
  if (v6) *v6 = is6;
  return a;
}

bool AddrMatches(const AddressSet& set, const char* text) {
  bool v6 = false;
  const auto a = Ip(text, &v6);
  return set.Matches(a, v6);
}

// ---------------------------------------------------------------------------------
// Errors: one table, each case naming the keyword at fault.

struct ErrorCase {
  std::string rule;     // a whole rule line
  std::string keyword;  // expected LoadError::keyword
  std::string message;  // expected substring of LoadError::message
  uint32_t sid = 7;     // expected LoadError::sid (0: unknown)
};

std::string R(const std::string& opts) { return std::string(kHeader) + "(" + opts + ")"; }

TEST(RulesParseErrors, EachMistakeNamesItsKeyword) {
  const std::vector<ErrorCase> cases = {
      // Structure.
      {"alert tcp any any -> any any", "rule", "no rule options", 0},
      {"alert tcp any any -> any", "rule", "missing dst_port", 0},
      {"alert tcp any any -> any any msg", "rule", "expected '('", 0},
      {"alert tcp any any -> any any (sid:7;", "rule", "does not end with ')'", 7},
      {R("msg:\"x\"; sid:7"), "sid", "missing ';'", 0},
      {R("msg:\"x\";; sid:7;"), "rule", "empty option", 7},
      {R("msg:\"x\"; sid:7; content:\"abc;"), "content", "unterminated", 7},
      {R("sid:7; bad name:1;"), "rule", "invalid option", 7},
      // Header fields.
      {"alarm tcp any any -> any any (sid:7;)", "action", "unknown action", 7},
      {"sdrop tcp any any -> any any (sid:7;)", "action", "unknown action", 7},
      {"alert xyz any any -> any any (sid:7;)", "protocol", "unknown protocol", 7},
      {"alert http any any -> any any (sid:7;)", "protocol", "unsupported protocol 'http'", 7},
      {"alert tcp 1.2.3 any -> any any (sid:7;)", "src", "invalid address", 7},
      {"alert tcp 1.2.3.4/33 any -> any any (sid:7;)", "src", "invalid address", 7},
      {"alert tcp 1.2.3.256 any -> any any (sid:7;)", "src", "invalid address", 7},
      {"alert tcp 1.2.3.4/255.0.255.0 any -> any any (sid:7;)", "src", "invalid address", 7},
      {"alert tcp 10.0.0.5-10.0.0.1 any -> any any (sid:7;)", "src", "invalid address", 7},
      {"alert tcp [1.2.3.4 any -> any any (sid:7;)", "rule", "", 7},
      {"alert tcp [1.2.3.4]x any -> any any (sid:7;)", "src", "after ']'", 7},
      {"alert tcp [] any -> any any (sid:7;)", "src", "empty address", 7},
      {"alert tcp [1.2.3.4,] any -> any any (sid:7;)", "src", "empty address", 7},
      {"alert tcp any 70000 -> any any (sid:7;)", "src_port", "invalid port", 7},
      {"alert tcp any 10:5 -> any any (sid:7;)", "src_port", "low end above", 7},
      {"alert tcp any : -> any any (sid:7;)", "src_port", "invalid port range", 7},
      {"alert tcp any http -> any any (sid:7;)", "src_port", "invalid port", 7},
      {"alert tcp any any <- any any (sid:7;)", "direction", "invalid direction", 7},
      {"alert tcp any any => any any (sid:7;)", "direction", "invalid direction", 7},
      {"alert tcp any any -> !any any (sid:7;)", "dst", "'!any'", 7},
      {"alert tcp any any -> [10.0.0.0/8,!10.0.0.0/7] any (sid:7;)", "dst", "no addresses left", 7},
      {"alert tcp any any -> ![0.0.0.0/0,::/0] any (sid:7;)", "dst", "complete address space", 7},
      {"alert tcp any any -> ![1.1.1.0/24,!1.1.1.7] any (sid:7;)", "dst", "no addresses left", 7},
      {"alert tcp any any -> any [80,!80] (sid:7;)", "dst_port", "no ports left", 7},
      {"alert tcp any any -> any [1:100,!1:50,!51:100] (sid:7;)", "dst_port", "no ports left", 7},
      {"alert tcp any any -> any !0: (sid:7;)", "dst_port", "complete port space", 7},
      {"alert tcp any any -> any !any (sid:7;)", "dst_port", "'!any'", 7},
      {"alert tcp $NOPE any -> any any (sid:7;)", "variable", "undefined variable $NOPE", 7},
      {"alert tcp any $NOPE_PORTS -> any any (sid:7;)", "variable", "undefined variable", 7},
      // sid, rev, gid, msg, classtype, priority, reference, target.
      {R("msg:\"no sid\";"), "sid", "missing sid", 0},
      {R("sid:0;"), "sid", "invalid value", 0},
      {R("sid:abc;"), "sid", "invalid value", 0},
      {R("sid:4294967296;"), "sid", "invalid value", 0},
      {R("sid:7; sid:7;"), "sid", "duplicated", 7},
      {R("sid:7; rev:x;"), "rev", "invalid value", 7},
      {R("sid:7; gid:-1;"), "gid", "invalid value", 7},
      {R("sid:7; msg:hello;"), "msg", "double quoted", 7},
      {R("sid:7; msg:\"a\"; msg:\"b\";"), "msg", "duplicated", 7},
      {R("sid:7; classtype:no-such-class;"), "classtype", "unknown classtype", 7},
      {R("sid:7; classtype:trojan-activity; classtype:misc-attack;"), "classtype", "duplicated", 7},
      {R("sid:7; priority:0;"), "priority", "invalid value", 7},
      {R("sid:7; priority:high;"), "priority", "invalid value", 7},
      {R("sid:7; reference:nocomma;"), "reference", "system,id", 7},
      {R("sid:7; reference:url,;"), "reference", "system,id", 7},
      {R("sid:7; target:both;"), "target", "src_ip or dest_ip", 7},
      {R("sid:7; msg;"), "msg", "needs a value", 7},
      // content.
      {R("sid:7; content:\"\";"), "content", "empty content", 7},
      {R("sid:7; content:abc;"), "content", "double quoted", 7},
      {R("sid:7; content:\"|4|\";"), "content", "incomplete hex", 7},
      {R("sid:7; content:\"|4G|\";"), "content", "invalid hex", 7},
      {R("sid:7; content:\"|41\";"), "content", "unterminated", 7},
      {R("sid:7; content:\"a\\x\";"), "content", "invalid escape", 7},
      {R("sid:7; content:\"a\"b\";"), "content", "unescaped", 7},
      // Modifiers without a content, or repeated.
      {R("sid:7; nocase;"), "nocase", "preceding content", 7},
      {R("sid:7; depth:4;"), "depth", "preceding content", 7},
      {R("sid:7; offset:4;"), "offset", "preceding content", 7},
      {R("sid:7; distance:4;"), "distance", "preceding content", 7},
      {R("sid:7; within:4;"), "within", "preceding content", 7},
      {R("sid:7; startswith;"), "startswith", "preceding content", 7},
      {R("sid:7; endswith;"), "endswith", "preceding content", 7},
      {R("sid:7; fast_pattern;"), "fast_pattern", "preceding content", 7},
      {R("sid:7; rawbytes;"), "rawbytes", "preceding content", 7},
      {R("sid:7; pcre:\"/x/\"; depth:4;"), "depth", "preceding content", 7},
      {R("sid:7; content:\"a\"; nocase; nocase;"), "nocase", "multiple nocase", 7},
      {R("sid:7; content:\"a\"; nocase:1;"), "nocase", "takes no value", 7},
      {R("sid:7; content:\"a\"; depth:4; depth:5;"), "depth", "multiple depths", 7},
      {R("sid:7; content:\"a\"; offset:4; offset:5;"), "offset", "multiple offsets", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; distance:1; distance:2;"), "distance", "multiple", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; within:2; within:3;"), "within", "multiple", 7},
      {R("sid:7; content:\"a\"; startswith; startswith;"), "startswith", "duplicated", 7},
      // Values.
      {R("sid:7; content:\"abcd\"; depth:3;"), "depth", "smaller than content of length 4", 7},
      {R("sid:7; content:\"a\"; depth:-1;"), "depth", "invalid value", 7},
      {R("sid:7; content:\"a\"; depth:70000;"), "depth", "invalid value", 7},
      {R("sid:7; content:\"a\"; depth:abc;"), "depth", "unknown variable 'abc'", 7},
      {R("sid:7; content:\"a\"; offset:-1;"), "offset", "invalid value", 7},
      {R("sid:7; content:\"a\"; content:\"bcd\"; within:2;"), "within", "smaller than content", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; within:-5;"), "within", "smaller than content", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; distance:x;"), "distance", "unknown variable 'x'", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; distance:2000000;"), "distance", "invalid value", 7},
      // Absolute and relative on one content; startswith.
      {R("sid:7; content:\"a\"; content:\"b\"; distance:1; depth:4;"), "depth", "can't mix", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; within:4; offset:1;"), "offset", "can't mix", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; depth:4; distance:1;"), "distance", "can't mix", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; offset:1; within:4;"), "within", "can't mix", 7},
      {R("sid:7; content:\"a\"; startswith; depth:4;"), "depth", "startswith", 7},
      {R("sid:7; content:\"a\"; startswith; offset:1;"), "offset", "startswith", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; startswith; distance:1;"), "distance", "startswith", 7},
      {R("sid:7; content:\"a\"; depth:4; startswith;"), "startswith", "can't mix", 7},
      {R("sid:7; content:\"a\"; content:\"b\"; within:4; startswith;"), "startswith", "can't mix", 7},
      // fast_pattern.
      {R("sid:7; content:\"a\"; fast_pattern; fast_pattern;"), "fast_pattern", "multiple fast_pattern", 7},
      {R("sid:7; content:\"a\"; fast_pattern; content:\"b\"; fast_pattern;"), "fast_pattern", "only one content", 7},
      {R("sid:7; content:\"a\"; fast_pattern:only; content:\"b\"; fast_pattern;"), "fast_pattern", "only one content", 7},
      {R("sid:7; content:!\"a\"; fast_pattern:only;"), "fast_pattern", "negated", 7},
      {R("sid:7; content:\"abc\"; depth:5; fast_pattern:only;"), "fast_pattern", "fast_pattern:only", 7},
      {R("sid:7; content:\"abc\"; fast_pattern:only; depth:5;"), "depth", "fast_pattern:only", 7},
      {R("sid:7; content:\"x\"; content:!\"abc\"; depth:5; fast_pattern;"), "fast_pattern", "negated", 7},
      {R("sid:7; content:!\"abc\"; fast_pattern; depth:5;"), "depth", "negated", 7},
      {R("sid:7; content:\"abc\"; fast_pattern:2,2;"), "fast_pattern", "exceeds the content length", 7},
      {R("sid:7; content:\"abc\"; fast_pattern:sometimes;"), "fast_pattern", "expected 'only'", 7},
      {R("sid:7; content:\"a\"; fast_pattern:only; content:\"b\"; distance:1;"), "distance", "fast_pattern:only", 7},
      // isdataat.
      {R("sid:7; isdataat:abc;"), "isdataat", "invalid value", 7},
      {R("sid:7; isdataat:5,backwards;"), "isdataat", "expected", 7},
      {R("sid:7; isdataat:5,rawbytes,relative;"), "isdataat", "expected", 7},
      {R("sid:7; isdataat:-1;"), "isdataat", "invalid value", 7},
      // pcre.
      {R("sid:7; pcre:/x/i;"), "pcre", "double quoted", 7},
      {R("sid:7; pcre:\"x\";"), "pcre", "/regex/flags", 7},
      {R("sid:7; pcre:\"/x\";"), "pcre", "/regex/flags", 7},
      {R("sid:7; pcre:\"/x/i9\";"), "pcre", "unknown regex modifier '9'", 7},
      {R("sid:7; pcre:\"/x/iL\";"), "pcre", "unknown regex modifier 'L'", 7},
      {R("sid:7; pcre:\"/x/R\";"), "pcre", "preceding content or pcre", 7},
      {R("sid:7; isdataat:1; pcre:\"/x/R\";"), "pcre", "preceding content or pcre", 7},
      // dsize.
      {R("sid:7; dsize:20<>10;"), "dsize", "empty", 7},
      {R("sid:7; dsize:5<>6;"), "dsize", "empty", 7},
      {R("sid:7; dsize:abc;"), "dsize", "invalid value", 7},
      {R("sid:7; dsize:70000;"), "dsize", "invalid value", 7},
      {R("sid:7; dsize:<0;"), "dsize", "never matches", 7},
      {R("sid:7; dsize:>65535;"), "dsize", "never matches", 7},
      {R("sid:7; dsize:>=0;"), "dsize", "always matches", 7},
      {R("sid:7; dsize:1; dsize:2;"), "dsize", "duplicated", 7},
      // flow.
      {R("sid:7; flow:to_server,to_client;"), "flow", "conflicts", 7},
      {R("sid:7; flow:from_server,from_client;"), "flow", "conflicts", 7},
      {R("sid:7; flow:established,not_established;"), "flow", "conflicts", 7},
      {R("sid:7; flow:stateless,established;"), "flow", "conflicts", 7},
      {R("sid:7; flow:only_stream,no_stream;"), "flow", "conflicts", 7},
      {R("sid:7; flow:to_server,from_client;"), "flow", "duplicated", 7},
      {R("sid:7; flow:sideways;"), "flow", "invalid flow option", 7},
      {R("sid:7; flow:established,;"), "flow", "invalid flow option", 7},
      {R("sid:7; flow:established; flow:to_server;"), "flow", "only one flow", 7},
      {R("sid:7; flow:established,only_frag;"), "flow", "unsupported flow option", 7},
      // Unsupported keywords (strict mode).
      {R("sid:7; stream_size:server,>,1;"), "stream_size", "unsupported keyword", 7},
      {R("sid:7; xbits:set,x,track ip_src;"), "xbits", "unsupported keyword", 7},
      {R("sid:7; noalert;"), "noalert", "unsupported keyword", 7},
      {R("sid:7; tag:session,10,packets;"), "tag", "unsupported keyword", 7},
      {R("sid:7; threshold:type limit, track by_src, count 1;"), "threshold", "seconds", 7},
      {R("sid:7; threshold:type limit, track by_src, count 1, seconds 1; detection_filter:track by_src, count 1, seconds 1;"), "detection_filter", "not both", 7},
      {R("sid:7; content:\"a\"; byte_test:1,>,2,0,relative,dce;"), "byte_test", "dce needs the DCERPC parser", 7},
      {R("sid:7; content:\"a\"; http_uri;"), "http_uri", "unsupported keyword", 7},
      {R("sid:7; http.uri; content:\"a\";"), "http.uri", "unsupported keyword", 7},
      {R("sid:7; dns.query; content:\"a\";"), "dns.query", "unsupported keyword", 7},
      {R("sid:7; tls.sni; content:\"a\";"), "tls.sni", "unsupported keyword", 7},
      {R("sid:7; file_data; content:\"a\";"), "file_data", "unsupported keyword", 7},
      {R("sid:7; app-layer-event:http.bad;"), "app-layer-event", "unsupported keyword", 7},
      {R("sid:7; Stream_Size:both,>,1;"), "stream_size", "unsupported keyword", 7},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.rule);
    const LoadError e = Err(c.rule);
    EXPECT_EQ(e.keyword, c.keyword) << e.ToString();
    EXPECT_NE(e.message.find(c.message), std::string::npos) << e.ToString();
    EXPECT_EQ(e.sid, c.sid) << e.ToString();
    EXPECT_EQ(e.line, 1);
    EXPECT_EQ(e.file, "test.rules");
  }
}

TEST(RulesParseErrors, ToStringFormat) {
  LoadError e{"f.rules", 3, 7, "depth", "depth 2 smaller than content of length 4"};
  EXPECT_EQ(e.ToString(), "f.rules:3: sid 7: depth: depth 2 smaller than content of length 4");
  e.sid = 0;
  EXPECT_EQ(e.ToString(), "f.rules:3: sid ?: depth: depth 2 smaller than content of length 4");
  const LoadError real = Err(R("content:\"abcd\"; depth:2; sid:9;"));
  EXPECT_EQ(real.ToString(), "test.rules:1: sid 9: depth: depth 2 smaller than content of length 4");
}

TEST(RulesParseErrors, SidAppearsEvenWhenItComesLast) {
  // The sid is known before the header is checked, and even when the options do
  // not split.
  EXPECT_EQ(Err("alert tcp bogus any -> any any (msg:\"x\"; sid:42;)").sid, 42u);
  EXPECT_EQ(Err("alert tcp any any -> any any (msg:\"x\"; sid:42; rev:1").sid, 42u);
  EXPECT_EQ(Err("alert tcp any any -> any any (msg:\"x; sid:42;)").sid, 42u);
}

TEST(RulesParseErrors, LinesCommentsAndContinuations) {
  const std::string text =
      "# a comment\n"                                                         // 1
      "\n"                                                                    // 2
      "alert tcp any any -> any any (msg:\"good\"; sid:1;)\n"                 // 3
      "   # indented comment \\\n"                                           // 4: never continues
      "alert tcp any any -> any any (msg:\"continued\"; \\\n"                 // 5
      "    content:\"abcd\"; \\\n"                                            // 6
      "    depth:2; sid:2;)\n"                                                // 7
      "alert tcp any any -> any any (msg:\"after\"; sid:3;)\r\n"              // 8 (CRLF)
      "\t\n"                                                                  // 9
      "alert tcp any any -> any any (msg:\"x\"; \\\n"                         // 10
      "  sid:4; bogus;)\n"                                                    // 11
      "alert tcp any any -> any any (sid:5;)";                               // 12, no newline
  const RuleSet rs = Parse(text);
  EXPECT_EQ(rs.rules_seen, 5);
  ASSERT_EQ(rs.rules.size(), 3u) << Describe(rs);
  EXPECT_EQ(rs.rules[0].line, 3);
  EXPECT_EQ(rs.rules[1].line, 8);
  EXPECT_EQ(rs.rules[1].msg, "after");
  EXPECT_EQ(rs.rules[2].line, 12);
  ASSERT_EQ(rs.errors.size(), 2u) << Describe(rs);
  EXPECT_EQ(rs.errors[0].line, 5);
  EXPECT_EQ(rs.errors[0].sid, 2u);
  EXPECT_EQ(rs.errors[0].keyword, "depth");
  EXPECT_EQ(rs.errors[1].line, 10);
  EXPECT_EQ(rs.errors[1].sid, 4u);
  EXPECT_EQ(rs.errors[1].keyword, "bogus");
}

TEST(RulesParseErrors, ContinuationJoinsWithoutTheBackslash) {
  const RuleSet rs = Parse("alert tcp any any -> any any (content:\"ab\\\n"
                           "cd\"; sid:1;)\n");
  ASSERT_EQ(rs.rules.size(), 1u) << Describe(rs);
  EXPECT_EQ(rs.rules[0].detects[0].content.bytes, "abcd");
  // A continuation on the last line still yields the rule.
  const RuleSet tail = Parse("alert tcp any any -> any any (sid:1;) \\");
  EXPECT_EQ(tail.rules.size(), 1u) << Describe(tail);
}

TEST(RulesParseErrors, DuplicateSid) {
  const RuleSet rs = Parse(
      "alert tcp any any -> any any (sid:10;)\n"
      "alert tcp any any -> any any (sid:11;)\n"
      "alert tcp any any -> any any (sid:10; rev:2;)\n"
      "alert tcp any any -> any any (sid:10; gid:3;)\n");
  ASSERT_EQ(rs.rules.size(), 3u);
  EXPECT_EQ(rs.rules[2].gid, 3u);
  ASSERT_EQ(rs.errors.size(), 1u);
  EXPECT_EQ(rs.errors[0].line, 3);
  EXPECT_EQ(rs.errors[0].keyword, "sid");
  EXPECT_EQ(rs.errors[0].sid, 10u);
  EXPECT_NE(rs.errors[0].message.find("first at test.rules:1"), std::string::npos);
  // A refused rule does not claim its sid.
  const RuleSet rs2 = Parse("alert tcp any any -> any any (sid:10; bogus;)\n"
                            "alert tcp any any -> any any (sid:10;)\n");
  EXPECT_EQ(rs2.rules.size(), 1u);
  EXPECT_EQ(rs2.errors.size(), 1u);
  // Separate calls do not share sids.
  EXPECT_EQ(Parse("alert tcp any any -> any any (sid:10;)").rules.size(), 1u);
}

TEST(RulesParseErrors, LongLinesAndDeepNesting) {
  std::string huge = "alert tcp any any -> any any (msg:\"" + std::string(70000, 'a') + "\"; sid:1;)\n";
  const RuleSet rs = Parse("# x\n" + huge + "alert tcp any any -> any any (sid:2;)\n");
  ASSERT_EQ(rs.errors.size(), 1u);
  EXPECT_EQ(rs.errors[0].keyword, "rule");
  EXPECT_EQ(rs.errors[0].line, 2);
  EXPECT_NE(rs.errors[0].message.find("longer than"), std::string::npos);
  ASSERT_EQ(rs.rules.size(), 1u);
  EXPECT_EQ(rs.rules[0].line, 3);

  const std::string deep = std::string(40, '[') + "1.2.3.4" + std::string(40, ']');
  EXPECT_EQ(Err("alert tcp " + deep + " any -> any any (sid:7;)").keyword, "src");
  const std::string nots = std::string(40, '!') + "1.2.3.4";
  EXPECT_NE(Err("alert tcp " + nots + " any -> any any (sid:7;)").message.find("nesting"),
            std::string::npos);
  const std::string deep_ports = std::string(40, '[') + "80" + std::string(40, ']');
  EXPECT_EQ(Err("alert tcp any any -> any " + deep_ports + " (sid:7;)").keyword, "dst_port");
  // Within the limit is fine.
  const std::string ok = std::string(10, '[') + "1.2.3.4" + std::string(10, ']');
  EXPECT_EQ(Parse("alert tcp " + ok + " any -> any any (sid:7;)").rules.size(), 1u);
}

TEST(RulesParseErrors, PathologicalInputsStayFast) {
  const std::vector<std::string> inputs = {
      "alert tcp any any -> any any (" + std::string(60000, '"') + ")",
      "alert tcp any any -> any any (" + [] {
        std::string s;
        while (s.size() < 60000) s += "sid:";
        return s;
      }() + ")",
      "alert tcp any any -> any any (content:\"" + std::string(60000, '\\') + ")",
      "alert tcp " + std::string(30000, '[') + " any -> any any (sid:1;)",
      "alert tcp [" + [] {
        std::string s;
        while (s.size() < 60000) s += "1.2.3.4,";
        return s;
      }() + "1.2.3.4] any -> any any (sid:1;)",
      std::string(200000, '\\'),
      std::string(100000, '\n'),
      "alert tcp any any -> any any (" + [] {
        std::string s;
        while (s.size() < 60000) s += "content:\"a\"; ";
        return s;
      }() + "sid:1;)",
  };
  for (const std::string& in : inputs) {
    const auto t0 = std::chrono::steady_clock::now();
    const RuleSet rs = Parse(in);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(ms, 2000) << in.substr(0, 60);
  }
}

TEST(RulesParseErrors, ExponentialVariablesAreCapped) {
  std::map<std::string, std::string> vars;
  // 16^8 elements at a nesting depth of 16.
  for (int i = 0; i < 8; ++i) {
    std::string v = "[";
    for (int j = 0; j < 16; ++j) v += (j ? ",$V" : "$V") + std::to_string(i + 1);
    vars["V" + std::to_string(i)] = v + "]";
  }
  vars["V8"] = "1.2.3.4";
  const LoadError e = Err("alert tcp $V0 any -> any any (sid:7;)", vars);
  EXPECT_EQ(e.keyword, "variable");
  EXPECT_NE(e.message.find("65536"), std::string::npos) << e.message;
}

// ---------------------------------------------------------------------------------
// Lenient mode

TEST(RulesParseLenient, SkipsUnsupportedAndCountsByFirstUnsupportedItem) {
  const std::string text =
      "alert http any any -> any any (msg:\"h\"; sid:1;)\n"
      "alert dns any any -> any any (sid:2;)\n"
      "alert http any any -> any any (sid:3; stream_size:both,>,1;)\n"
      "alert tcp any any -> any any (sid:4; stream_size:both,>,1;)\n"
      "alert tcp any any -> any any (sid:5; stream_size:both,>,1; xbits:set,x,track ip_src;)\n"
      "alert tcp any any -> any any (sid:6; tag:session,10,packets;)\n"
      "alert tcp any any -> any any (sid:7; content:\"a\"; http_uri;)\n"
      "alert tcp any any -> any any (sid:8; flow:established,no_frag;)\n"
      "alert tcp any any -> any any (sid:9; content:\"abcd\"; depth:2;)\n"  // a real error
      "alert tcp any any -> any any (sid:10; content:\"abcd\"; depth:2; stream_size:both,>,1;)\n"
      "alert tcp any any -> any any (sid:11; stream_size:both,>,1; content:\"abcd\"; depth:2;)\n"
      "alert tls any any -> any any (sid:12;)\n"
      "alert tcp any any -> any any (sid:13; content:\"ok\";)\n";
  const RuleSet lenient = Parse(text, true);
  EXPECT_EQ(lenient.rules_seen, 13);
  ASSERT_EQ(lenient.rules.size(), 1u);
  EXPECT_EQ(lenient.rules[0].sid, 13u);
  const std::map<std::string, int> expected = {
      {"protocol:http", 2}, {"protocol:dns", 1}, {"protocol:tls", 1}, {"stream_size", 3},
      {"tag", 1},     {"http_uri", 1},     {"flow:no_frag", 1}};
  EXPECT_EQ(lenient.skipped_by_keyword, expected);
  ASSERT_EQ(lenient.errors.size(), 2u) << Describe(lenient);
  EXPECT_EQ(lenient.errors[0].sid, 9u);
  EXPECT_EQ(lenient.errors[0].keyword, "depth");
  EXPECT_EQ(lenient.errors[1].sid, 10u);  // the error comes before its stream_size

  const RuleSet strict = Parse(text, false);
  EXPECT_EQ(strict.rules.size(), 1u);
  EXPECT_TRUE(strict.skipped_by_keyword.empty());
  ASSERT_EQ(strict.errors.size(), 12u);
  EXPECT_EQ(strict.errors[0].keyword, "protocol");
  EXPECT_EQ(strict.errors[0].message, "unsupported protocol 'http'");
  EXPECT_EQ(strict.errors[3].keyword, "stream_size");
  EXPECT_EQ(strict.errors[3].message, "unsupported keyword");
  EXPECT_EQ(strict.errors[7].keyword, "flow");
}

TEST(RulesParseLenient, HardErrorsAreNotSkipped) {
  const RuleSet rs = Parse("alert tcp any any -> any any (sid:1; classtype:nope;)\n"
                           "alert foo any any -> any any (sid:2;)\n"
                           "alert tcp $UNDEFINED any -> any any (sid:3;)\n",
                           true);
  EXPECT_TRUE(rs.skipped_by_keyword.empty());
  ASSERT_EQ(rs.errors.size(), 3u);
  EXPECT_EQ(rs.errors[0].keyword, "classtype");
  EXPECT_EQ(rs.errors[1].keyword, "protocol");
  EXPECT_EQ(rs.errors[2].keyword, "variable");
}

// ---------------------------------------------------------------------------------
// Header

TEST(RulesParseHeader, Actions) {
  const std::vector<std::pair<std::string, Action>> cases = {
      {"alert", Action::kAlert},       {"drop", Action::kDrop},
      {"reject", Action::kReject},     {"rejectsrc", Action::kReject},
      {"rejectdst", Action::kReject},  {"rejectboth", Action::kReject},
      {"pass", Action::kPass},
  };
  for (const auto& [word, action] : cases) {
    const Rule r = One("sid:1;", word + " tcp any any -> any any ");
    EXPECT_EQ(r.header.action, action) << word;
  }
  EXPECT_STREQ(ActionName(Action::kAlert), "alert");
  EXPECT_STREQ(ActionName(Action::kDrop), "drop");
  EXPECT_STREQ(ActionName(Action::kReject), "reject");
  EXPECT_STREQ(ActionName(Action::kPass), "pass");
  // Suricata's order: pass, drop, reject, alert.
  EXPECT_LT(ActionOrder(Action::kPass), ActionOrder(Action::kDrop));
  EXPECT_LT(ActionOrder(Action::kDrop), ActionOrder(Action::kReject));
  EXPECT_LT(ActionOrder(Action::kReject), ActionOrder(Action::kAlert));
}

TEST(RulesParseHeader, Protocols) {
  const std::vector<std::pair<std::string, Protocol>> cases = {
      {"tcp", Protocol::kTcp},        {"TCP", Protocol::kTcp},         {"udp", Protocol::kUdp},
      {"icmp", Protocol::kIcmp},      {"icmpv4", Protocol::kIcmp},     {"icmpv6", Protocol::kIcmp},
      {"ip", Protocol::kIp},          {"tcp-pkt", Protocol::kTcpPkt},  {"tcp-stream", Protocol::kTcpStream},
  };
  for (const auto& [word, proto] : cases) {
    const Rule r = One("sid:1;", "alert " + word + " any any -> any any ");
    EXPECT_EQ(r.header.protocol, proto) << word;
  }
  for (const char* p : {"http", "dns", "tls", "smb", "ftp", "smtp", "ssh", "dcerpc", "http2", "sctp"}) {
    const RuleSet rs = Parse(std::string("alert ") + p + " any any -> any any (sid:1;)", true);
    EXPECT_EQ(rs.skipped_by_keyword.at(std::string("protocol:") + p), 1) << p;
  }
}

TEST(RulesParseHeader, DirectionAndWhitespace) {
  Rule r = One("sid:1;", "alert tcp any any <> any any ");
  EXPECT_TRUE(r.header.bidirectional);
  r = One("sid:1;", "alert tcp any any -> any any ");
  EXPECT_FALSE(r.header.bidirectional);
  // Lists with blanks, tabs between fields, no blank before '(', blanks in options.
  r = One(" msg : \"x\" ; SID : 5 ; ",
          "alert\ttcp  [10.0.0.0/8, 192.168.0.0/16]   [80, 443] ->\t$HOME_NET any");
  EXPECT_EQ(r.sid, 5u);
  EXPECT_EQ(r.msg, "x");
  EXPECT_EQ(r.header.src.include.size(), 2u);
  EXPECT_EQ(r.header.src_ports.include.size(), 2u);
  EXPECT_EQ(r.file, "test.rules");
  EXPECT_EQ(r.line, 1);
}

struct AddrCase {
  std::string field;
  std::vector<std::string> match;
  std::vector<std::string> no_match;
};

TEST(RulesParseHeader, AddressesMatchV4AndV6) {
  const std::vector<AddrCase> cases = {
      {"any", {"1.2.3.4", "::1", "0.0.0.0"}, {}},
      {"10.0.0.0/8", {"10.0.0.0", "10.255.255.255"}, {"11.0.0.1", "9.255.255.255", "::a00:1"}},
      {"1.2.3.4", {"1.2.3.4"}, {"1.2.3.5", "::ffff:1.2.3.4"}},
      {"1.2.3.99/24", {"1.2.3.0", "1.2.3.255"}, {"1.2.4.0"}},
      {"1.2.3.0/255.255.255.0", {"1.2.3.7"}, {"1.2.4.7"}},
      {"0.0.0.0/0", {"8.8.8.8"}, {"2001:db8::1"}},
      {"[10.0.0.0/8,!10.1.0.0/16]", {"10.2.0.1", "10.0.0.1"}, {"10.1.0.1", "11.0.0.1"}},
      {"[10.0.0.0/8, ![10.1.0.0/16, 10.2.0.0/16]]", {"10.3.0.1"}, {"10.1.2.3", "10.2.3.4"}},
      {"[!1.1.1.1]", {"1.1.1.2", "::1"}, {"1.1.1.1"}},
      // Suricata's parity rule: elements under an odd number of `!` are excluded, the
      // others included; not the set complement (3.3.3.3 is not matched).
      {"![1.1.1.0/24,!2.2.2.0/24]", {"2.2.2.5"}, {"1.1.1.5", "3.3.3.3"}},
      {"[any,!10.0.0.0/8]", {"11.0.0.1", "::1"}, {"10.9.9.9"}},
      {"[[10.0.0.0/8,[192.168.0.0/16]],!10.9.9.9]", {"10.9.9.8", "192.168.1.1"}, {"10.9.9.9", "172.16.0.1"}},
      {"$HOME_NET", {"192.168.1.1", "10.1.1.1", "172.31.255.255"}, {"172.32.0.0", "8.8.8.8", "fe80::1"}},
      {"!$HOME_NET", {"8.8.8.8", "2001:db8::1"}, {"192.168.1.1", "10.0.0.1", "172.16.0.1"}},
      {"$EXTERNAL_NET", {"8.8.8.8", "2001:db8::1"}, {"192.168.1.1"}},
      {"!$EXTERNAL_NET", {"192.168.1.1"}, {"8.8.8.8"}},  // double negation: positive again
      {"$HTTP_SERVERS", {"10.0.0.80"}, {"8.8.8.8"}},
      {"2001:db8::/32", {"2001:db8::1", "2001:db8:ffff::"}, {"2001:db9::", "10.0.0.1"}},
      {"[2001:db8::/32,!2001:db8:dead::/48]", {"2001:db8:beef::1"}, {"2001:db8:dead::1"}},
      {"::1", {"::1"}, {"::2", "0.0.0.1"}},
      {"[fe80::/10,10.0.0.0/8]", {"fe80::1", "10.0.0.1"}, {"fec0::1", "11.0.0.1"}},
      {"10.0.0.1-10.0.0.6", {"10.0.0.1", "10.0.0.4", "10.0.0.6"}, {"10.0.0.0", "10.0.0.7"}},
      {"2001:db8::ff-2001:db8::101", {"2001:db8::ff", "2001:db8::100", "2001:db8::101"}, {"2001:db8::fe", "2001:db8::102"}},
  };
  for (const AddrCase& c : cases) {
    SCOPED_TRACE(c.field);
    const Rule r = One("sid:1;", "alert ip " + c.field + " any -> " + c.field + " any ");
    for (const std::string& a : c.match) {
      EXPECT_TRUE(AddrMatches(r.header.src, a.c_str())) << a;
      EXPECT_TRUE(AddrMatches(r.header.dst, a.c_str())) << a;
    }
    for (const std::string& a : c.no_match) {
      EXPECT_FALSE(AddrMatches(r.header.src, a.c_str())) << a;
    }
  }
}

TEST(RulesParseHeader, AddressSetShape) {
  Rule r = One("sid:1;", "alert ip 1.2.3.99/24 any -> any any ");
  ASSERT_EQ(r.header.src.include.size(), 1u);
  const Cidr& c = r.header.src.include[0];
  EXPECT_FALSE(c.v6);
  EXPECT_EQ(c.prefix_len, 24);
  EXPECT_EQ(c.addr[0], 1);
  EXPECT_EQ(c.addr[3], 0);  // host bits cleared
  EXPECT_FALSE(r.header.src.any);
  EXPECT_TRUE(r.header.dst.any);
  EXPECT_TRUE(r.header.dst.include.empty());

  r = One("sid:1;", "alert ip !$HOME_NET any -> [1.1.1.1,any] any ");
  EXPECT_TRUE(r.header.src.any);
  EXPECT_EQ(r.header.src.exclude.size(), 3u);
  EXPECT_TRUE(r.header.dst.any);  // `any` in a list swallows the rest
  EXPECT_TRUE(r.header.dst.include.empty());

  r = One("sid:1;", "alert ip 10.0.0.1-10.0.0.6 any -> 2001:db8::/33 any ");
  EXPECT_EQ(r.header.src.include.size(), 4u);  // .1/32 .2/31 .4/31 .6/32
  ASSERT_EQ(r.header.dst.include.size(), 1u);
  EXPECT_TRUE(r.header.dst.include[0].v6);
  EXPECT_EQ(r.header.dst.include[0].prefix_len, 33);

  r = One("sid:1;", "alert ip 0.0.0.0-255.255.255.255 any -> ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff any ");
  ASSERT_EQ(r.header.src.include.size(), 1u);
  EXPECT_EQ(r.header.src.include[0].prefix_len, 0);
  ASSERT_EQ(r.header.dst.include.size(), 1u);
  EXPECT_EQ(r.header.dst.include[0].prefix_len, 0);
}

TEST(RulesParseHeader, AddressSetMatchesByHand) {
  AddressSet s;
  EXPECT_TRUE(s.Matches(Ip("1.2.3.4"), false));
  EXPECT_TRUE(s.Matches(Ip("::1"), true));
  Cidr v4;
  v4.addr = Ip("192.168.0.0");
  v4.prefix_len = 16;
  Cidr v6;
  v6.v6 = true;
  v6.addr = Ip("2001:db8::");
  v6.prefix_len = 29;  // not on a byte boundary
  s.any = false;
  s.include = {v4, v6};
  EXPECT_TRUE(s.Matches(Ip("192.168.200.1"), false));
  EXPECT_FALSE(s.Matches(Ip("192.169.0.1"), false));
  EXPECT_TRUE(s.Matches(Ip("2001:dbf:ffff::1"), true));   // db8..dbf share 29 bits
  EXPECT_FALSE(s.Matches(Ip("2001:dc0::1"), true));
  // The family matters: the same 4 bytes as v6 are not the v4 prefix.
  std::array<uint8_t, 16> a = Ip("192.168.1.1");
  EXPECT_FALSE(s.Matches(a, true));
  Cidr host;
  host.addr = Ip("192.168.1.1");
  host.prefix_len = 32;
  s.exclude = {host};
  EXPECT_FALSE(s.Matches(Ip("192.168.1.1"), false));
  EXPECT_TRUE(s.Matches(Ip("192.168.1.2"), false));
  Cidr all6;
  all6.v6 = true;
  all6.prefix_len = 0;
  s.exclude = {all6};
  EXPECT_FALSE(s.Matches(Ip("2001:db8::1"), true));
  EXPECT_TRUE(s.Matches(Ip("192.168.1.1"), false));
}

struct PortCase {
  std::string field;
  std::vector<int> match;
  std::vector<int> no_match;
};

TEST(RulesParseHeader, Ports) {
  const std::vector<PortCase> cases = {
      {"any", {0, 1, 80, 65535}, {}},
      {"80", {80}, {79, 81, 0}},
      {"0", {0}, {1}},
      {"[80,443]", {80, 443}, {81, 442}},
      {"1024:", {1024, 65535}, {1023, 0}},
      {":1023", {0, 1023}, {1024}},
      {"1:1023", {1, 1023}, {0, 1024}},
      {"!22", {21, 23, 0, 65535}, {22}},
      {"[1:1023,!80]", {1, 79, 81, 1023}, {80, 0, 1024}},
      {"[!80,!443]", {81, 8080}, {80, 443}},
      {"![80,!81]", {81}, {80, 82}},  // parity: 81 positive, 80 negative
      {"[80:90, !85, [8080, 8443]]", {80, 84, 86, 8443}, {85, 91, 8081}},
      {"$HTTP_PORTS", {80}, {8080}},
      {"$SHELLCODE_PORTS", {81, 22}, {80}},
      {"!$SHELLCODE_PORTS", {80}, {81}},
      {"$FILE_DATA_PORTS", {80, 110, 143}, {25}},
      {"$ORACLE_PORTS", {1521}, {1522}},
      {"$SSH_PORTS", {22}, {23}},
      {"$DNP3_PORTS", {20000}, {}},
      {"$MODBUS_PORTS", {502}, {}},
      {"$FTP_PORTS", {21}, {}},
      {"$GENEVE_PORTS", {6081}, {}},
      {"$VXLAN_PORTS", {4789}, {}},
      {"$TEREDO_PORTS", {3544}, {}},
  };
  for (const PortCase& c : cases) {
    SCOPED_TRACE(c.field);
    const Rule r = One("sid:1;", "alert tcp any " + c.field + " -> any " + c.field + " ");
    for (int p : c.match) {
      EXPECT_TRUE(r.header.src_ports.Matches(static_cast<uint16_t>(p))) << p;
      EXPECT_TRUE(r.header.dst_ports.Matches(static_cast<uint16_t>(p))) << p;
    }
    for (int p : c.no_match) EXPECT_FALSE(r.header.src_ports.Matches(static_cast<uint16_t>(p))) << p;
  }
  const Rule r = One("sid:1;", "alert tcp any [1:1023,!80] -> any any ");
  EXPECT_FALSE(r.header.src_ports.any);
  ASSERT_EQ(r.header.src_ports.include.size(), 1u);
  EXPECT_EQ(r.header.src_ports.include[0].lo, 1);
  EXPECT_EQ(r.header.src_ports.include[0].hi, 1023);
  ASSERT_EQ(r.header.src_ports.exclude.size(), 1u);
  EXPECT_EQ(r.header.src_ports.exclude[0].lo, 80);
  EXPECT_TRUE(r.header.dst_ports.any);
}

TEST(RulesParseHeader, Variables) {
  std::map<std::string, std::string> vars = {
      {"HOME_NET", "[10.10.0.0/16]"},
      {"$CLINIC", "[$HOME_NET, 172.20.0.0/16]"},  // a leading $ in the name is accepted
      {"PACS", "$CLINIC"},
      {"HTTP_PORTS", "[80,8080]"},
      {"A", "$B"},
      {"B", "[1.1.1.1,$A]"},
      {"BAD", "[1.2.3.4, 999.1.1.1]"},
      {"SELF", "$SELF"},
  };
  Rule r = One("sid:1;", "alert tcp $PACS any -> $EXTERNAL_NET $HTTP_PORTS ", vars);
  EXPECT_TRUE(AddrMatches(r.header.src, "10.10.1.1"));
  EXPECT_TRUE(AddrMatches(r.header.src, "172.20.1.1"));
  EXPECT_FALSE(AddrMatches(r.header.src, "192.168.1.1"));  // the default HOME_NET is replaced
  EXPECT_TRUE(AddrMatches(r.header.dst, "192.168.1.1"));   // EXTERNAL_NET follows HOME_NET
  EXPECT_FALSE(AddrMatches(r.header.dst, "10.10.9.9"));
  EXPECT_TRUE(r.header.dst_ports.Matches(8080));
  EXPECT_FALSE(r.header.dst_ports.Matches(443));

  LoadError e = Err("alert tcp $A any -> any any (sid:7;)", vars);
  EXPECT_EQ(e.keyword, "variable");
  EXPECT_NE(e.message.find("cycle: $A -> $B -> $A"), std::string::npos) << e.message;
  e = Err("alert tcp $SELF any -> any any (sid:7;)", vars);
  EXPECT_EQ(e.keyword, "variable");
  EXPECT_NE(e.message.find("cycle"), std::string::npos);
  e = Err("alert tcp any any -> $BAD any (sid:7;)", vars);
  EXPECT_EQ(e.keyword, "variable");
  EXPECT_NE(e.message.find("$BAD (in dst)"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("999.1.1.1"), std::string::npos) << e.message;
  e = Err("alert tcp any $UNKNOWN_PORTS -> any any (sid:7;)", vars);
  EXPECT_EQ(e.keyword, "variable");
  EXPECT_NE(e.message.find("undefined variable $UNKNOWN_PORTS (in src_port)"), std::string::npos);
  e = Err("alert tcp $ any -> any any (sid:7;)", vars);
  EXPECT_EQ(e.keyword, "src");
  // A variable used as the wrong kind fails where it is used.
  e = Err("alert tcp any $HOME_NET -> any any (sid:7;)", vars);
  EXPECT_EQ(e.keyword, "variable");
  EXPECT_NE(e.message.find("invalid port"), std::string::npos);
  // HOME_NET `any` makes the default EXTERNAL_NET `!any`, which Suricata refuses too.
  e = Err("alert tcp $EXTERNAL_NET any -> any any (sid:7;)", {{"HOME_NET", "any"}});
  EXPECT_EQ(e.keyword, "variable");
  EXPECT_EQ(One("sid:1;", "alert tcp $EXTERNAL_NET any -> any any ",
                {{"HOME_NET", "any"}, {"EXTERNAL_NET", "any"}}).header.src.any, true);
}

// ---------------------------------------------------------------------------------
// Options

TEST(RulesParseOptions, MetaKeywords) {
  Rule r = One("msg:\"a\\;b \\\"c\\\" d\\\\e\\:f\"; sid:123; rev:4; gid:2; classtype:Trojan-Activity; "
               "reference:url,example.com/a,b; reference: cve , 2021-44228 ; "
               "metadata:created_at 2020_01_01, former_category MALWARE,signature_severity Major, flag; "
               "target:dest_ip;");
  EXPECT_EQ(r.msg, "a;b \"c\" d\\e:f");
  EXPECT_EQ(r.sid, 123u);
  EXPECT_EQ(r.rev, 4u);
  EXPECT_EQ(r.gid, 2u);
  EXPECT_EQ(r.classtype, "trojan-activity");
  EXPECT_EQ(r.priority, 1);
  ASSERT_EQ(r.references.size(), 2u);
  EXPECT_EQ(r.references[0].system, "url");
  EXPECT_EQ(r.references[0].id, "example.com/a,b");
  EXPECT_EQ(r.references[1].system, "cve");
  EXPECT_EQ(r.references[1].id, "2021-44228");
  const std::vector<std::pair<std::string, std::string>> md = {
      {"created_at", "2020_01_01"}, {"former_category", "MALWARE"}, {"signature_severity", "Major"}, {"flag", ""}};
  EXPECT_EQ(r.metadata, md);
  EXPECT_TRUE(r.detects.empty());
  EXPECT_FALSE(r.dsize);
  EXPECT_FALSE(r.flow);

  r = One("sid:1;");  // no msg, no classtype
  EXPECT_EQ(r.msg, "");
  EXPECT_EQ(r.priority, 3);
  EXPECT_EQ(r.gid, 1u);
  EXPECT_EQ(r.rev, 0u);
  EXPECT_EQ(One("sid:1; msg:\"semi;colon\";").msg, "semi;colon");
}

TEST(RulesParseOptions, Priority) {
  const std::vector<std::pair<std::string, int>> cases = {
      {"sid:1;", 3},
      {"sid:1; classtype:attempted-admin;", 1},
      {"sid:1; classtype:bad-unknown;", 2},
      {"sid:1; classtype:tcp-connection;", 4},
      {"sid:1; classtype:not-suspicious;", 3},
      {"sid:1; priority:5;", 5},
      {"sid:1; priority:4; classtype:attempted-admin;", 4},  // explicit wins, in any order
      {"sid:1; classtype:attempted-admin; priority:4;", 4},
  };
  for (const auto& [opts, prio] : cases) EXPECT_EQ(One(opts).priority, prio) << opts;
}

TEST(RulesParseOptions, ClasstypeTable) {
  const std::vector<std::pair<std::string, int>> table = {
      {"not-suspicious", 3}, {"unknown", 3}, {"bad-unknown", 2}, {"attempted-recon", 2},
      {"successful-recon-limited", 2}, {"successful-recon-largescale", 2}, {"attempted-dos", 2},
      {"successful-dos", 2}, {"attempted-user", 1}, {"unsuccessful-user", 1}, {"successful-user", 1},
      {"attempted-admin", 1}, {"successful-admin", 1}, {"rpc-portmap-decode", 2},
      {"shellcode-detect", 1}, {"string-detect", 3}, {"suspicious-filename-detect", 2},
      {"suspicious-login", 2}, {"system-call-detect", 2}, {"tcp-connection", 4},
      {"trojan-activity", 1}, {"unusual-client-port-connection", 2}, {"network-scan", 3},
      {"denial-of-service", 2}, {"non-standard-protocol", 2}, {"protocol-command-decode", 3},
      {"web-application-activity", 2}, {"web-application-attack", 1}, {"misc-activity", 3},
      {"misc-attack", 2}, {"icmp-event", 3}, {"inappropriate-content", 1}, {"policy-violation", 1},
      {"default-login-attempt", 2}, {"targeted-activity", 1}, {"exploit-kit", 1},
      {"external-ip-check", 2}, {"domain-c2", 1}, {"pup-activity", 2}, {"credential-theft", 1},
      {"social-engineering", 2}, {"coin-mining", 2}, {"command-and-control", 1},
  };
  for (const auto& [name, prio] : table) {
    const Rule r = One("sid:1; classtype:" + name + ";");
    EXPECT_EQ(r.classtype, name);
    EXPECT_EQ(r.priority, prio) << name;
  }
  // A custom table replaces the default.
  LoadOptions o;
  o.classtypes = {{"phi-leak", {"Protected health information leaving", 1}}};
  RuleSet rs = ParseRules("alert tcp any any -> any any (sid:1; classtype:phi-leak;)\n"
                          "alert tcp any any -> any any (sid:2; classtype:trojan-activity;)\n",
                          "c.rules", o);
  ASSERT_EQ(rs.rules.size(), 1u);
  EXPECT_EQ(rs.rules[0].priority, 1);
  ASSERT_EQ(rs.errors.size(), 1u);
  EXPECT_EQ(rs.errors[0].keyword, "classtype");
}

struct ContentCase {
  std::string value;  // what follows `content:`
  std::string bytes;
  bool negated = false;
};

TEST(RulesParseOptions, ContentDecoding) {
  const std::vector<ContentCase> cases = {
      {R"("|0D 0A|GET|20|")", "\r\nGET "},
      {R"("a\;b")", "a;b"},
      {R"("\"q\"")", "\"q\""},
      {R"("a;b")", "a;b"},  // a semicolon inside quotes
      {R"("a\\b")", "a\\b"},
      {R"("\:")", ":"},
      {R"("|41 42,43|")", "ABC"},
      {R"("|414243|")", "ABC"},
      {R"("|4a 4B|")", "JK"},
      {R"("a|3b|b")", "a;b"},
      {R"("|00 ff|x|7C|")", std::string("\0\xff", 2) + "x|"},
      {R"(  "spaced"  )", "spaced"},
      {R"(!"neg")", "neg", true},
      {R"(! "neg")", "neg", true},
      {R"("a|22|b")", "a\"b"},
      {R"("x\"; sid:99; content:\"y")", "x\"; sid:99; content:\"y"},
  };
  for (const ContentCase& c : cases) {
    SCOPED_TRACE(c.value);
    const Rule r = One("content:" + c.value + "; sid:1;");
    ASSERT_EQ(r.detects.size(), 1u);
    EXPECT_EQ(r.detects[0].kind, Detect::Kind::kContent);
    EXPECT_EQ(r.detects[0].content.bytes, c.bytes);
    EXPECT_EQ(r.detects[0].content.negated, c.negated);
  }
}

TEST(RulesParseOptions, ContentModifiers) {
  Rule r = One("content:\"abc\"; nocase; offset:2; depth:10; fast_pattern; rawbytes; "
               "content:\"de\"; distance:-3; within:7; endswith; "
               "content:\"f\"; startswith; "
               "content:!\"g\"; "
               "sid:1;");
  ASSERT_EQ(r.detects.size(), 4u);
  const Content& a = r.detects[0].content;
  EXPECT_TRUE(a.nocase);
  EXPECT_EQ(a.offset, 2);
  EXPECT_EQ(a.depth, 10);  // as written: counted from the offset (Suricata)
  EXPECT_TRUE(a.fast_pattern);
  EXPECT_FALSE(a.Relative());
  const Content& b = r.detects[1].content;
  EXPECT_EQ(b.distance, -3);
  EXPECT_EQ(b.within, 7);
  EXPECT_TRUE(b.Relative());
  EXPECT_TRUE(b.endswith);
  EXPECT_FALSE(b.fast_pattern);
  EXPECT_FALSE(b.nocase);
  const Content& c = r.detects[2].content;
  EXPECT_TRUE(c.startswith);
  EXPECT_FALSE(c.depth);  // the flag only; the matcher anchors it
  EXPECT_FALSE(c.offset);
  const Content& d = r.detects[3].content;
  EXPECT_TRUE(d.negated);
  EXPECT_FALSE(d.offset || d.depth || d.distance || d.within || d.nocase || d.startswith || d.endswith);

  // Modifiers go to the most recent content, across a pcre and an isdataat.
  r = One("content:\"abc\"; pcre:\"/x/\"; isdataat:3; nocase; depth:5; sid:1;");
  ASSERT_EQ(r.detects.size(), 3u);
  EXPECT_TRUE(r.detects[0].content.nocase);
  EXPECT_EQ(r.detects[0].content.depth, 5);

  // fast_pattern forms.
  r = One("content:\"abcd\"; fast_pattern:only; sid:1;");
  EXPECT_TRUE(r.detects[0].content.fast_pattern);
  r = One("content:\"abcd\"; fast_pattern:1,3; sid:1;");
  EXPECT_TRUE(r.detects[0].content.fast_pattern);
  r = One("content:\"a\"; content:\"bcd\"; fast_pattern; content:\"e\"; sid:1;");
  EXPECT_FALSE(r.detects[0].content.fast_pattern);
  EXPECT_TRUE(r.detects[1].content.fast_pattern);
  EXPECT_FALSE(r.detects[2].content.fast_pattern);
  // fast_pattern on a negated content without positions is allowed.
  EXPECT_TRUE(One("content:!\"abc\"; fast_pattern; sid:1;").detects[0].content.fast_pattern);
  // depth equal to the content length is the smallest allowed; within too.
  r = One("content:\"abcd\"; depth:4; content:\"ef\"; within:2; sid:1;");
  EXPECT_EQ(r.detects[0].content.depth, 4);
  EXPECT_EQ(r.detects[1].content.within, 2);
  // endswith twice is harmless, as in Suricata.
  EXPECT_TRUE(One("content:\"a\"; endswith; endswith; sid:1;").detects[0].content.endswith);
  // Hex content lengths count decoded bytes.
  EXPECT_EQ(One("content:\"|00 01 02 03|\"; depth:4; sid:1;").detects[0].content.depth, 4);
}

TEST(RulesParseOptions, FirstRelativeContentBecomesAbsolute) {
  struct Case {
    std::string opts;
    std::optional<int32_t> offset, depth, distance, within;
  };
  const std::vector<Case> cases = {
      {"content:\"ab\"; distance:3; within:5;", 3, 5, std::nullopt, std::nullopt},
      {"content:\"ab\"; within:5;", std::nullopt, 5, std::nullopt, std::nullopt},
      {"content:\"ab\"; distance:4;", 4, std::nullopt, std::nullopt, std::nullopt},
      {"content:\"ab\"; distance:0;", std::nullopt, std::nullopt, std::nullopt, std::nullopt},
      {"content:\"ab\"; distance:0; within:2;", std::nullopt, 2, std::nullopt, std::nullopt},
      // A negative distance has nothing to be relative to: left as written.
      {"content:\"ab\"; distance:-1; within:4;", std::nullopt, std::nullopt, -1, 4},
      // Beyond 65535 it cannot become an offset: left as written.
      {"content:\"ab\"; distance:70000;", std::nullopt, std::nullopt, 70000, std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.opts);
    const Rule r = One(c.opts + " sid:1;");
    const Content& x = r.detects[0].content;
    EXPECT_EQ(x.offset, c.offset);
    EXPECT_EQ(x.depth, c.depth);
    EXPECT_EQ(x.distance, c.distance);
    EXPECT_EQ(x.within, c.within);
  }
  // Only the first step of the chain converts; later ones stay relative.
  Rule r = One("content:\"a\"; within:4; content:\"b\"; distance:1; within:3; sid:1;");
  EXPECT_EQ(r.detects[0].content.depth, 4);
  EXPECT_FALSE(r.detects[0].content.Relative());
  EXPECT_EQ(r.detects[1].content.distance, 1);
  EXPECT_EQ(r.detects[1].content.within, 3);
  // Not first in the chain: after a pcre or an isdataat it stays relative.
  r = One("pcre:\"/a/\"; content:\"b\"; distance:1; sid:1;");
  EXPECT_EQ(r.detects[1].content.distance, 1);
  r = One("isdataat:10; content:\"b\"; within:5; sid:1;");
  EXPECT_EQ(r.detects[1].content.within, 5);
  EXPECT_FALSE(r.detects[1].content.depth);
  // A conversion does not clash with the depth/offset rules afterwards.
  r = One("content:\"ab\"; distance:2; content:\"c\"; depth:9; sid:1;");
  EXPECT_EQ(r.detects[0].content.offset, 2);
  EXPECT_EQ(r.detects[1].content.depth, 9);
}

TEST(RulesParseOptions, IsDataAt) {
  Rule r = One("content:\"a\"; isdataat:5; isdataat:!10,relative; isdataat: 3 , relative , rawbytes; sid:1;");
  ASSERT_EQ(r.detects.size(), 4u);
  EXPECT_EQ(r.detects[1].kind, Detect::Kind::kIsDataAt);
  EXPECT_EQ(r.detects[1].isdataat.position, 5);
  EXPECT_FALSE(r.detects[1].isdataat.relative);
  EXPECT_FALSE(r.detects[1].isdataat.negated);
  EXPECT_EQ(r.detects[2].isdataat.position, 10);
  EXPECT_TRUE(r.detects[2].isdataat.relative);
  EXPECT_TRUE(r.detects[2].isdataat.negated);
  EXPECT_EQ(r.detects[3].isdataat.position, 3);
  EXPECT_TRUE(r.detects[3].isdataat.relative);
  // Suricata: `isdataat:!1,relative` right after a content is endswith on it.
  r = One("content:\"abc\"; isdataat:!1,relative; sid:1;");
  ASSERT_EQ(r.detects.size(), 1u);
  EXPECT_TRUE(r.detects[0].content.endswith);
  // ... but not after a pcre, nor as the first step.
  r = One("content:\"a\"; pcre:\"/b/R\"; isdataat:!1,relative; sid:1;");
  ASSERT_EQ(r.detects.size(), 3u);
  EXPECT_FALSE(r.detects[0].content.endswith);
  r = One("isdataat:!1,relative; sid:1;");
  ASSERT_EQ(r.detects.size(), 1u);
  EXPECT_EQ(r.detects[0].kind, Detect::Kind::kIsDataAt);
  // isdataat alone and relative without a previous match are allowed (Suricata too).
  EXPECT_EQ(One("isdataat:1,relative; sid:1;").detects.size(), 1u);
  EXPECT_EQ(One("isdataat:1,rawbytes; sid:1;").detects[0].isdataat.relative, false);
}

// pcre modifiers that select HTTP buffers need the app-layer parsers: refused in strict
// mode, skipped and counted per modifier in lenient mode, never loaded wrongly.
TEST(RulesParseOptions, PcreHttpBufferModifiersAreUnsupported) {
  for (const char* f : {"U", "H", "P", "C", "M", "S", "Y", "I", "D", "V", "W", "Z", "Q", "K"}) {
    SCOPED_TRACE(f);
    const std::string text = std::string("alert tcp any any -> any any (content:\"k\"; pcre:\"/x/i") + f +
                             "\"; sid:1;)";
    LoadOptions strict;
    const RuleSet s1 = ParseRules(text, "t.rules", strict);
    EXPECT_TRUE(s1.rules.empty());
    ASSERT_EQ(s1.errors.size(), 1u);
    EXPECT_EQ(s1.errors[0].keyword, "pcre");
    LoadOptions lenient;
    lenient.lenient = true;
    const RuleSet s2 = ParseRules(text, "t.rules", lenient);
    EXPECT_TRUE(s2.rules.empty());
    EXPECT_TRUE(s2.errors.empty());
    EXPECT_EQ(s2.skipped_by_keyword.at(std::string("pcre:") + f), 1);
  }
}

TEST(RulesParseOptions, Pcre) {
  struct Case {
    std::string value;
    std::string pattern, flags;
    bool negated, relative;
  };
  const std::vector<Case> cases = {
      {R"("/^GET\s/i")", R"(^GET\s)", "i", false, false},
      {R"(!"/a\/b/smR")", R"(a\/b)", "smR", true, true},
      {R"("/a\;b\"c/")", R"(a\;b\"c)", "", false, false},  // escapes kept for PCRE2
      {R"("/a/b/i")", "a/b", "i", false, false},
      {R"("/a;b/")", "a;b", "", false, false},
      {R"("/x/AEGBO")", "x", "AEGBO", false, false},
      {R"("//")", "", "", false, false},
      {R"( ! "/x/ R" )", "x", "R", true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    const Rule r = One("content:\"k\"; pcre:" + c.value + "; sid:1;");
    ASSERT_EQ(r.detects.size(), 2u);
    const Detect& d = r.detects[1];
    EXPECT_EQ(d.kind, Detect::Kind::kPcre);
    EXPECT_EQ(d.pcre.pattern, c.pattern);
    EXPECT_EQ(d.pcre.flags, c.flags);
    EXPECT_EQ(d.pcre.negated, c.negated);
    EXPECT_EQ(d.pcre.relative, c.relative);
  }
  // A relative pcre after another pcre is fine.
  EXPECT_EQ(One("pcre:\"/a/\"; pcre:\"/b/R\"; sid:1;").detects.size(), 2u);
}

TEST(RulesParseOptions, Dsize) {
  struct Case {
    std::string value;
    Dsize::Op op;
    uint16_t lo, hi;
  };
  const std::vector<Case> cases = {
      {"10", Dsize::Op::kEq, 10, 0},     {" 300 ", Dsize::Op::kEq, 300, 0},
      {"=7", Dsize::Op::kEq, 7, 0},      {"0", Dsize::Op::kEq, 0, 0},
      {"<10", Dsize::Op::kLt, 10, 0},    {">10", Dsize::Op::kGt, 10, 0},
      {"> 10", Dsize::Op::kGt, 10, 0},   {"10<>20", Dsize::Op::kRange, 10, 20},
      {"10 <> 20", Dsize::Op::kRange, 10, 20}, {"0<>2", Dsize::Op::kRange, 0, 2},
      {"!10", Dsize::Op::kNe, 10, 0},    {"!=10", Dsize::Op::kNe, 10, 0},
      {">=10", Dsize::Op::kGt, 9, 0},    {"<=10", Dsize::Op::kLt, 11, 0},
      {"65535", Dsize::Op::kEq, 65535, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    const Rule r = One("dsize:" + c.value + "; sid:1;");
    ASSERT_TRUE(r.dsize);
    EXPECT_EQ(r.dsize->op, c.op);
    EXPECT_EQ(r.dsize->lo, c.lo);
    if (c.op == Dsize::Op::kRange) {
      EXPECT_EQ(r.dsize->hi, c.hi);
    }
  }
}

TEST(RulesParseOptions, Flow) {
  struct Case {
    std::string value;
    FlowOption want;
  };
  auto F = [](bool ts, bool tc, bool est, bool nest, bool sl, bool os, bool ns) {
    FlowOption f;
    f.to_server = ts;
    f.to_client = tc;
    f.established = est;
    f.not_established = nest;
    f.stateless = sl;
    f.only_stream = os;
    f.no_stream = ns;
    return f;
  };
  const std::vector<Case> cases = {
      {"to_server", F(1, 0, 0, 0, 0, 0, 0)},
      {"from_client", F(1, 0, 0, 0, 0, 0, 0)},
      {"to_client", F(0, 1, 0, 0, 0, 0, 0)},
      {"from_server", F(0, 1, 0, 0, 0, 0, 0)},
      {"established", F(0, 0, 1, 0, 0, 0, 0)},
      {"not_established", F(0, 0, 0, 1, 0, 0, 0)},
      {"stateless", F(0, 0, 0, 0, 1, 0, 0)},
      {"only_stream", F(0, 0, 0, 0, 0, 1, 0)},
      {"no_stream", F(0, 0, 0, 0, 0, 0, 1)},
      {"established,to_server", F(1, 0, 1, 0, 0, 0, 0)},
      {"to_client, established", F(0, 1, 1, 0, 0, 0, 0)},
      {"Established,To_Server,only_stream", F(1, 0, 1, 0, 0, 1, 0)},
      {"stateless,to_server,no_stream", F(1, 0, 0, 0, 1, 0, 1)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    const Rule r = One("flow:" + c.value + "; sid:1;");
    ASSERT_TRUE(r.flow);
    EXPECT_EQ(r.flow->to_server, c.want.to_server);
    EXPECT_EQ(r.flow->to_client, c.want.to_client);
    EXPECT_EQ(r.flow->established, c.want.established);
    EXPECT_EQ(r.flow->not_established, c.want.not_established);
    EXPECT_EQ(r.flow->stateless, c.want.stateless);
    EXPECT_EQ(r.flow->only_stream, c.want.only_stream);
    EXPECT_EQ(r.flow->no_stream, c.want.no_stream);
  }
}

TEST(RulesParseOptions, KeywordsAreCaseInsensitive) {
  const Rule r = One("MSG:\"x\"; Content:\"a\"; NOCASE; Depth:3; SID:1; Flow:TO_SERVER;");
  EXPECT_EQ(r.msg, "x");
  EXPECT_TRUE(r.detects[0].content.nocase);
  EXPECT_EQ(r.detects[0].content.depth, 3);
  EXPECT_TRUE(r.flow->to_server);
}

TEST(RulesParseOptions, RealisticRule) {
  const Rule r = One(
      "msg:\"ET EXPLOIT Possible HL7 overflow\"; flow:established,to_server; dsize:>512; "
      "content:\"MSH|7C 5E 7E 5C 26 7C|\"; startswith; fast_pattern; "
      "content:\"PID|7C|\"; distance:0; within:2048; nocase; "
      "pcre:\"/^PID\\|[^\\r]{400}/Rsi\"; isdataat:!1,relative; "
      "reference:url,hl7.org; classtype:attempted-admin; sid:2000001; rev:3; "
      "metadata:affected_product HL7, created_at 2024_01_01;",
      "drop tcp $EXTERNAL_NET any -> $HOME_NET [2575,6661] ");
  EXPECT_EQ(r.header.action, Action::kDrop);
  EXPECT_EQ(r.sid, 2000001u);
  EXPECT_EQ(r.priority, 1);
  ASSERT_EQ(r.detects.size(), 4u);
  EXPECT_EQ(r.detects[0].content.bytes, "MSH|^~\\&|");
  EXPECT_TRUE(r.detects[0].content.startswith);
  EXPECT_TRUE(r.detects[0].content.fast_pattern);
  EXPECT_EQ(r.detects[1].content.distance, 0);
  EXPECT_EQ(r.detects[1].content.within, 2048);
  EXPECT_EQ(r.detects[2].pcre.pattern, "^PID\\|[^\\r]{400}");
  EXPECT_TRUE(r.detects[2].pcre.relative);
  EXPECT_EQ(r.detects[3].kind, Detect::Kind::kIsDataAt);  // after a pcre: stays isdataat
  EXPECT_TRUE(r.header.dst_ports.Matches(2575));
  EXPECT_FALSE(r.header.dst_ports.Matches(2576));
  EXPECT_EQ(r.dsize->op, Dsize::Op::kGt);
  EXPECT_EQ(r.dsize->lo, 512);
}

TEST(RulesParseRobustness, GarbageNeverThrows) {
  const std::vector<std::string> inputs = {
      "", "\n\n\n", "#", "(", ")", "()", "alert", "alert tcp", "alert tcp any any -> any any ()",
      "alert tcp any any -> any any (;)", "alert tcp any any -> any any (:;)",
      "alert tcp any any -> any any (sid:1;) trailing", std::string("alert\0tcp", 9),
      "alert tcp any any -> any any (content:\"\\", "alert tcp [[[[ any -> any any (sid:1;)",
      "alert tcp ]]]] any -> any any (sid:1;)", "alert tcp any any -> any any (sid:1;;;;)",
      "\xff\xfe\xfd alert", "alert tcp any any -> any any (content:\"|\"; sid:1;)",
      "alert tcp any any -> any any (pcre:\"/\"; sid:1;)",
      "alert tcp any any -> any any (pcre:\"\"; sid:1;)",
      "alert tcp any any -> any any (content:!; sid:1;)",
      "alert tcp any any -> any any (content:!\"\"; sid:1;)",
      "alert tcp any any -> any any (isdataat:!; sid:1;)",
      "alert tcp any any -> any any (dsize:<>; sid:1;)",
      "alert tcp any any -> any any (dsize:!; sid:1;)",
      "alert tcp any any -> any any (flow:,; sid:1;)",
      "alert tcp any any -> any any (fast_pattern:,; sid:1;)",
      "alert tcp any any -> any any (metadata:,,,; sid:1;)",
      "alert tcp 1.2.3.4- any -> any any (sid:1;)",
      "alert tcp -1.2.3.4 any -> any any (sid:1;)",
      "alert tcp ::/129 any -> any any (sid:1;)",
      "alert tcp 1.2.3.4/ any -> any any (sid:1;)",
      "alert tcp any :: -> any any (sid:1;)",
  };
  for (const std::string& in : inputs) {
    for (bool lenient : {false, true}) {
      RuleSet rs;
      EXPECT_NO_THROW(rs = Parse(in, lenient)) << in;
      for (const Rule& r : rs.rules) EXPECT_NE(r.sid, 0u);
    }
  }
}

// ---------------------------------------------------------------------------------
// ET Open, all of it, lenient.

TEST(RulesParseEtOpen, AllFilesLoadLeniently) {
  const std::filesystem::path dir = std::filesystem::path(WARDGATE_SOURCE_ROOT) / ".." / "shared" / "data" / "et-open";
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << "no ET Open rules at " << dir;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".rules") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  LoadOptions o;
  o.lenient = true;
  int seen = 0;
  size_t loaded = 0, errors = 0;
  std::map<std::string, int> skipped;
  std::vector<std::string> first_errors;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const RuleSet rs = ParseRules(ss.str(), f.filename().string(), o);
    seen += rs.rules_seen;
    loaded += rs.rules.size();
    errors += rs.errors.size();
    for (const auto& [k, n] : rs.skipped_by_keyword) skipped[k] += n;
    for (const LoadError& e : rs.errors) {
      if (first_errors.size() < 20) first_errors.push_back(e.ToString());
    }
    for (const Rule& r : rs.rules) {
      EXPECT_NE(r.sid, 0u);
      EXPECT_EQ(r.file, f.filename().string());
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  int skipped_total = 0;
  std::vector<std::pair<int, std::string>> top;
  for (const auto& [k, n] : skipped) {
    top.emplace_back(n, k);
    skipped_total += n;
  }
  std::sort(top.rbegin(), top.rend());
  std::cout << "ET Open: " << files.size() << " files, " << seen << " rules seen, " << loaded
            << " loaded, " << skipped_total << " skipped, " << errors << " errors, " << ms << " ms\n";
  for (size_t i = 0; i < top.size() && i < 20; ++i) {
    std::cout << "  skipped " << top[i].second << ": " << top[i].first << "\n";
  }
  for (const std::string& e : first_errors) std::cout << "  error " << e << "\n";
  EXPECT_GT(loaded, 0u);
  EXPECT_EQ(static_cast<size_t>(seen), loaded + static_cast<size_t>(skipped_total) + errors);
}

}  // namespace
}  // namespace wardgate::rules

namespace wardgate::rules {
namespace {

// Suricata's "signature can't match": a content chain longer than dsize allows.
TEST(RulesParseLoadTime, DsizeSmallerThanContentChainIsRefused) {
  struct Case {
    const char* opts;
    bool ok;
  };
  for (const Case& c : {Case{"dsize:10; content:\"boom\"; content:\"loom\"; distance:10;", false},
                        Case{"dsize:6; content:\"boom\"; content:\"loom\"; distance:3;", false},
                        Case{"dsize:6; content:\"boom\"; content:\"loom\"; distance:2;", false},
                        Case{"dsize:10; content:\"boom\"; content:\"loom\"; distance:-10;", true},
                        Case{"dsize:10; content:\"boom\"; content:\"loom\"; distance:-15;", true},
                        Case{"dsize:<5; content:\"abcde\";", false},
                        Case{"dsize:<6; content:\"abcde\";", true},
                        Case{"dsize:>3; content:\"abcdefgh\";", true},
                        Case{"dsize:8; content:\"ab\"; offset:6;", true},
                        Case{"dsize:8; content:\"ab\"; offset:7;", false}}) {
    SCOPED_TRACE(c.opts);
    LoadOptions o;
    const auto rs = ParseRules(std::string("alert udp any any -> any any (") + c.opts + " sid:1;)", "t.rules", o);
    EXPECT_EQ(rs.rules.size(), c.ok ? 1u : 0u);
    if (!c.ok) {
      ASSERT_EQ(rs.errors.size(), 1u);
      EXPECT_EQ(rs.errors[0].keyword, "dsize");
      EXPECT_NE(rs.errors[0].message.find("can't match"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace wardgate::rules
