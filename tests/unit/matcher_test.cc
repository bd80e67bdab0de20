// The matcher against real Hyperscan and PCRE2: content modifiers alone and chained
// (Suricata's documentation examples), negation, pcre flags, isdataat, dsize, flow,
// header addresses/ports, prefilter choice, stream windows, multi-rule sets, errors.
//
// Rules are built from Suricata option text by a small test-only reader (MakeRule),
// so the tables read like the rules they stand for; it is not the product parser.
#include "rules/matcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

// Counts operator new on threads that ask for it: Match() must not allocate. (The
// replacement pairs malloc/free itself; GCC cannot see that through inlining.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
thread_local bool g_count_allocs = false;
thread_local size_t g_allocs = 0;
}  // namespace

// Not under ASan, which owns the allocator (and libhs uses other operator new forms).
// GCC says __SANITIZE_ADDRESS__, clang __has_feature(address_sanitizer).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WARDGATE_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WARDGATE_UNDER_ASAN 1
#endif
#ifndef WARDGATE_UNDER_ASAN
#define WARDGATE_COUNT_ALLOCS 1
void* operator new(size_t n) {
  if (g_count_allocs) ++g_allocs;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#endif

namespace wardgate::rules {
namespace {

using namespace std::string_literals;

// ---------------------------------------------------------------------------------
// A test-only reader of Suricata rule options (no `;` inside strings).

std::string Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

// "ab|0d 0a|c" -> bytes
std::string DecodeContent(std::string_view q) {
  std::string out;
  bool hex = false;
  for (size_t i = 0; i < q.size(); ++i) {
    if (q[i] == '|') {
      hex = !hex;
    } else if (hex) {
      if (q[i] == ' ') continue;
      out.push_back(static_cast<char>(std::stoi(std::string(q.substr(i, 2)), nullptr, 16)));
      ++i;
    } else {
      out.push_back(q[i]);
    }
  }
  return out;
}

Rule MakeRule(uint32_t sid, std::string_view options, Protocol proto = Protocol::kTcp) {
  Rule r;
  r.sid = sid;
  r.header.protocol = proto;
  r.file = "test.rules";
  r.line = static_cast<int>(sid);
  auto last_content = [&r]() -> Content& {
    for (auto it = r.detects.rbegin(); it != r.detects.rend(); ++it) {
      if (it->kind == Detect::Kind::kContent) return it->content;
    }
    ADD_FAILURE() << "modifier without content";
    static Content dummy;
    return dummy;
  };
  size_t pos = 0;
  while (pos < options.size()) {
    size_t end = options.find(';', pos);
    if (end == std::string_view::npos) end = options.size();
    const std::string opt = Trim(options.substr(pos, end - pos));
    pos = end + 1;
    if (opt.empty()) continue;
    const size_t colon = opt.find(':');
    const std::string key = opt.substr(0, colon);
    std::string val = colon == std::string::npos ? "" : Trim(opt.substr(colon + 1));
    if (key == "content") {
      Detect d;
      d.kind = Detect::Kind::kContent;
      if (val[0] == '!') {
        d.content.negated = true;
        val.erase(0, 1);
      }
      d.content.bytes = DecodeContent(std::string_view(val).substr(1, val.size() - 2));
      r.detects.push_back(d);
    } else if (key == "nocase") {
      last_content().nocase = true;
    } else if (key == "startswith") {
      last_content().startswith = true;
    } else if (key == "endswith") {
      last_content().endswith = true;
    } else if (key == "fast_pattern") {
      last_content().fast_pattern = true;
    } else if (key == "offset") {
      last_content().offset = std::stoi(val);
    } else if (key == "depth") {
      last_content().depth = std::stoi(val);
    } else if (key == "distance") {
      last_content().distance = std::stoi(val);
    } else if (key == "within") {
      last_content().within = std::stoi(val);
    } else if (key == "pcre") {
      Detect d;
      d.kind = Detect::Kind::kPcre;
      if (val[0] == '!') {
        d.pcre.negated = true;
        val.erase(0, 1);
      }
      val = val.substr(1, val.size() - 2);  // quotes
      const size_t slash = val.rfind('/');
      d.pcre.pattern = val.substr(1, slash - 1);
      d.pcre.flags = val.substr(slash + 1);
      d.pcre.relative = d.pcre.flags.find('R') != std::string::npos;
      r.detects.push_back(d);
    } else if (key == "isdataat") {
      Detect d;
      d.kind = Detect::Kind::kIsDataAt;
      if (val[0] == '!') {
        d.isdataat.negated = true;
        val.erase(0, 1);
      }
      d.isdataat.position = std::stoi(val);
      d.isdataat.relative = val.find(",relative") != std::string::npos;
      r.detects.push_back(d);
    } else if (key == "dsize") {
      Dsize ds;
      if (val.find("<>") != std::string::npos) {
        ds.op = Dsize::Op::kRange;
        ds.lo = static_cast<uint16_t>(std::stoi(val));
        ds.hi = static_cast<uint16_t>(std::stoi(val.substr(val.find("<>") + 2)));
      } else if (val[0] == '<') {
        ds.op = Dsize::Op::kLt;
        ds.lo = static_cast<uint16_t>(std::stoi(val.substr(1)));
      } else if (val[0] == '>') {
        ds.op = Dsize::Op::kGt;
        ds.lo = static_cast<uint16_t>(std::stoi(val.substr(1)));
      } else if (val[0] == '!') {
        ds.op = Dsize::Op::kNe;
        ds.lo = static_cast<uint16_t>(std::stoi(val.substr(1)));
      } else {
        ds.lo = static_cast<uint16_t>(std::stoi(val));
      }
      r.dsize = ds;
    } else if (key == "flow") {
      FlowOption f;
      size_t p = 0;
      while (p <= val.size()) {
        size_t e = val.find(',', p);
        if (e == std::string::npos) e = val.size();
        const std::string o = Trim(std::string_view(val).substr(p, e - p));
        p = e + 1;
        if (o == "to_server" || o == "from_client") f.to_server = true;
        else if (o == "to_client" || o == "from_server") f.to_client = true;
        else if (o == "established") f.established = true;
        else if (o == "not_established") f.not_established = true;
        else if (o == "stateless") f.stateless = true;
        else if (o == "only_stream") f.only_stream = true;
        else if (o == "no_stream") f.no_stream = true;
        else ADD_FAILURE() << "flow option " << o;
      }
      r.flow = f;
    } else {
      ADD_FAILURE() << "unknown test option " << key;
    }
  }
  return r;
}

Cidr V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t len) {
  Cidr x;
  x.addr = {a, b, c, d};
  x.prefix_len = len;
  return x;
}

InspectContext TcpCtx(size_t dsize = 0) {
  InspectContext ctx;
  ctx.ip_proto = 6;
  ctx.src_addr = {10, 0, 0, 1};
  ctx.dst_addr = {10, 0, 0, 2};
  ctx.src_port = 40000;
  ctx.dst_port = 80;
  ctx.to_server = true;
  ctx.established = true;
  ctx.dsize = static_cast<uint16_t>(dsize);
  return ctx;
}

// Views: a string literal stays valid; a std::string must outlive the Buffer.
Buffer Packet(std::string_view s) {
  Buffer b;
  b.data = reinterpret_cast<const uint8_t*>(s.data());
  b.len = s.size();
  return b;
}

Buffer Stream(std::string_view window, uint64_t stream_offset, size_t new_from) {
  Buffer b = Packet(window);
  b.stream_offset = stream_offset;
  b.new_from = new_from;
  b.is_stream = true;
  return b;
}

// A compiled set with its scratch.
struct Engine {
  std::unique_ptr<CompiledRules> rules;
  std::unique_ptr<MatchScratch> scratch;

  explicit Engine(std::vector<Rule> rs) {
    RuleSet set;
    set.rules = std::move(rs);
    std::string error;
    rules = CompiledRules::Compile(set, &error);
    EXPECT_TRUE(rules) << error;
    if (rules) scratch = rules->NewScratch();
    EXPECT_TRUE(scratch);
  }
  std::vector<uint32_t> Match(const InspectContext& ctx, const Buffer& buf) {
    std::vector<uint32_t> fired;
    if (rules && scratch) rules->Match(*scratch, ctx, buf, fired);
    return fired;
  }
  std::vector<uint32_t> MatchPacket(const std::string& payload) {
    return Match(TcpCtx(payload.size()), Packet(payload));
  }
};

bool FiresOn(std::string_view options, const std::string& payload) {
  Engine e({MakeRule(1, options)});
  return !e.MatchPacket(payload).empty();
}

// ---------------------------------------------------------------------------------
// Detection chains on packet payloads.

struct ChainCase {
  const char* name;
  const char* options;
  std::string payload;
  bool fires;
};

std::ostream& operator<<(std::ostream& os, const ChainCase& c) { return os << c.name; }

std::string CaseName(const ::testing::TestParamInfo<ChainCase>& p) { return p.param.name; }

class ChainTest : public ::testing::TestWithParam<ChainCase> {};

TEST_P(ChainTest, Fires) {
  const ChainCase& c = GetParam();
  EXPECT_EQ(FiresOn(c.options, c.payload), c.fires)
      << c.options << " on \"" << c.payload << "\"";
}

const ChainCase kContentCases[] = {
    {"plain", R"(content:"abc")", "xxabcxx", true},
    {"plain_absent", R"(content:"abc")", "xxabxcx", false},
    {"hex", R"(content:"|61 62|c|00|")", "zabc\0z"s, true},
    {"binary_nul", R"(content:"|00 01 02|")", "\x05\x00\x01\x02"s, true},
    {"case_sensitive", R"(content:"ABC")", "xaBcx", false},
    {"nocase", R"(content:"ABC"; nocase)", "xaBcx", true},
    // Suricata docs: offset / depth (depth counts from offset).
    {"offset_hit", R"(content:"def"; offset:3)", "abcdefghi", true},
    {"offset_miss", R"(content:"def"; offset:4)", "abcdefghi", false},
    {"depth_hit", R"(content:"abc"; depth:3)", "abcdef", true},
    {"depth_miss", R"(content:"def"; depth:5)", "abcdef", false},
    {"depth_exact", R"(content:"def"; depth:6)", "abcdef", true},
    {"offset_depth_hit", R"(content:"def"; offset:3; depth:3)", "abcdefghi", true},
    {"offset_depth_miss", R"(content:"efg"; offset:3; depth:3)", "abcdefghi", false},
    {"offset_second_occurrence", R"(content:"ab"; offset:1)", "abxab", true},
    // distance / within, relative to the previous match end.
    {"distance0", R"(content:"abc"; content:"def"; distance:0)", "abcdef", true},
    {"distance1_miss", R"(content:"abc"; content:"def"; distance:1)", "abcdef", false},
    {"distance1_hit", R"(content:"abc"; content:"def"; distance:1)", "abcxdef", true},
    {"distance_negative", R"(content:"def"; content:"bcd"; distance:-5)", "abcdef", true},
    {"distance_negative_miss", R"(content:"def"; content:"abc"; distance:-5)", "abcdef", false},
    {"within_hit", R"(content:"abc"; content:"def"; within:3)", "abcdef", true},
    {"within_miss", R"(content:"abc"; content:"def"; within:3)", "abcxdef", false},
    {"within4", R"(content:"abc"; content:"def"; within:4)", "abcxdef", true},
    {"distance_within_hit", R"(content:"abc"; content:"def"; distance:1; within:3)", "abcxdef", true},
    {"distance_within_miss", R"(content:"abc"; content:"def"; distance:1; within:3)", "abcxxdef", false},
    {"relative_order", R"(content:"def"; content:"abc"; distance:0)", "abcdef", false},
    {"three_chain", R"(content:"GET"; depth:3; content:"/admin"; distance:1; within:6; content:"HTTP/1."; distance:0)",
     "GET /admin HTTP/1.1\r\n", true},
    {"three_chain_miss", R"(content:"GET"; depth:3; content:"/admin"; distance:1; within:6; content:"HTTP/1."; distance:0)",
     "GET /x/admin HTTP/1.1\r\n", false},
    {"nocase_relative", R"(content:"user"; nocase; content:"ROOT"; nocase; distance:1; within:4)", "USER root", true},
    // startswith / endswith
    {"startswith_hit", R"(content:"GET"; startswith)", "GET / HTTP/1.0", true},
    {"startswith_miss", R"(content:"GET"; startswith)", " GET / HTTP/1.0", false},
    {"endswith_hit", R"(content:"xyz"; endswith)", "abcxyz", true},
    {"endswith_miss", R"(content:"xyz"; endswith)", "xyzabc", false},
    {"endswith_twice", R"(content:"xyz"; endswith)", "xyzxyz", true},
    {"startswith_endswith", R"(content:"abc"; startswith; endswith)", "abc", true},
    {"startswith_endswith_longer", R"(content:"abc"; startswith; endswith)", "abcabc", false},
    // negation
    {"negated_absent", R"(content:!"evil")", "good", true},
    {"negated_present", R"(content:!"evil")", "so evil", false},
    {"negated_relative_hit", R"(content:"a"; content:!"b"; distance:0; within:1)", "ac", true},
    {"negated_relative_miss", R"(content:"a"; content:!"b"; distance:0; within:1)", "ab", false},
    {"negated_depth", R"(content:"GET"; content:!"POST"; depth:4)", "GET POST", true},
    {"negated_depth_miss", R"(content:"GET"; content:!"POST"; depth:4)", "POST GET", false},
    {"negated_nocase", R"(content:"a"; content:!"EVIL"; nocase)", "a evil", false},
    {"negated_endswith_elsewhere", R"(content:"a"; content:!"z"; endswith)", "azb", true},
    {"negated_endswith_at_end", R"(content:"a"; content:!"z"; endswith)", "abz", false},
    // Backtracking: the first "a" is not followed by "b"; the second is.
    {"backtrack", R"(content:"a"; content:"b"; distance:0; within:1)", "axxab", true},
    {"backtrack_none", R"(content:"a"; content:"b"; distance:0; within:1)", "axxaxb", false},
    {"backtrack_three", R"(content:"k="; content:"v"; distance:0; within:1; content:"|3b|"; distance:0; within:1)",
     "k=x k=vx k=v;", true},
    // Suricata: a distance-only next step does not make the previous content retry,
    // so a negated distance-only content is checked after the first occurrence only.
    {"no_retry_distance_only", R"(content:"a"; content:!"b"; distance:0)", "abxa", false},
    // isdataat (Suricata: relative N = N more bytes; absolute N = byte N exists)
    {"isdataat_rel_hit", R"(content:"abc"; isdataat:2,relative)", "abcde", true},
    {"isdataat_rel_miss", R"(content:"abc"; isdataat:2,relative)", "abcd", false},
    {"isdataat_rel_neg_hit", R"(content:"abc"; isdataat:!1,relative)", "xabc", true},
    {"isdataat_rel_neg_miss", R"(content:"abc"; isdataat:!1,relative)", "abcd", false},
    {"isdataat_abs_hit", R"(content:"a"; isdataat:5)", "abcdef", true},
    {"isdataat_abs_miss", R"(content:"a"; isdataat:6)", "abcdef", false},
    {"isdataat_abs_neg", R"(content:"a"; isdataat:!6)", "abcdef", true},
    {"isdataat_only", R"(isdataat:10)", "0123456789A", true},
    {"isdataat_backtrack", R"(content:"a"; isdataat:!2,relative)", "axxxa", true},
};
INSTANTIATE_TEST_SUITE_P(Content, ChainTest, ::testing::ValuesIn(kContentCases),
                         CaseName);

const ChainCase kPcreCases[] = {
    {"plain", R"(pcre:"/a.c/")", "xabcx", true},
    {"plain_miss", R"(pcre:"/a.c/")", "xacx", false},
    {"i", R"(pcre:"/ABC/i")", "xabcx", true},
    {"no_i", R"(pcre:"/ABC/")", "xabcx", false},
    {"caret", R"(pcre:"/^b/")", "ab", false},
    {"m", R"(pcre:"/^b/m")", "a\nb", true},
    {"s", R"(pcre:"/a.b/s")", "a\nb", true},
    {"no_s", R"(pcre:"/a.b/")", "a\nb", false},
    {"x", R"(pcre:"/a b c/x")", "abc", true},
    {"A_miss", R"(pcre:"/bc/A")", "abc", false},
    {"A_hit", R"(pcre:"/bc/A")", "bcd", true},
    {"dollar_newline", R"(pcre:"/abc$/")", "abc\n", true},
    {"E", R"(pcre:"/abc$/E")", "abc\n", false},
    // Greedy ends at the last b; G (ungreedy) at the first, where "2" follows.
    {"greedy", R"(pcre:"/a.+b/"; content:"2"; distance:0; within:1)", "a1b2b", false},
    {"G", R"(pcre:"/a.+b/G"; content:"2"; distance:0; within:1)", "a1b2b", true},
    {"R_hit", R"(content:"abc"; pcre:"/^def/R")", "abcdef", true},
    {"R_miss", R"(content:"abc"; pcre:"/^def/R")", "abcxdef", false},
    {"R_backtracks_content", R"(content:"abc"; pcre:"/^def/R")", "abcxabcdef", true},
    {"R_then_content", R"(pcre:"/id=\d+/"; content:"&"; distance:0; within:1)", "id=12x id=34&", true},
    {"B_O_ignored", R"(pcre:"/abc/BO")", "abc", true},
    {"negated", R"(pcre:!"/evil/")", "good", true},
    {"negated_miss", R"(pcre:!"/evil/")", "evil", false},
    {"negated_R", R"(content:"a"; pcre:!"/^b/R")", "ac", true},
    {"negated_R_miss", R"(content:"a"; pcre:!"/^b/R")", "ab", false},
    {"binary", R"(pcre:"/\x00\xff+\x01/")", "z\x00\xff\xff\x01"s, true},
    {"hl7_field", R"(content:"PID|7c|"; pcre:"/^(?:[^|]*\|){2}[0-9]{6,}/R")", "MSH|x\rPID|1||123456^^^H", true},
};
INSTANTIATE_TEST_SUITE_P(Pcre, ChainTest, ::testing::ValuesIn(kPcreCases),
                         CaseName);

TEST(MatcherTest, PcreMatchLimitIsNoMatch) {
  // Catastrophic backtracking: PCRE2 stops at the match limit (Suricata's 3500);
  // the rule does not fire, the error is counted, and a negated pcre does not fire
  // either (Suricata treats a pcre error as no match in both cases). A pcre-only rule
  // is prefiltered by Hyperscan's automaton, which does not backtrack: PCRE2 never
  // runs on this payload for it.
  Engine e({MakeRule(1, R"(content:"a"; pcre:"/^(a+)+$/")"), MakeRule(2, R"(content:"a"; pcre:!"/^(a+)+$/")"),
            MakeRule(3, R"(pcre:"/^(a+)+$/")")});
  ASSERT_EQ(e.rules->prefilter_detect(2), 0);
  const std::string evil = std::string(40, 'a') + "b";
  EXPECT_TRUE(e.MatchPacket(evil).empty());
  EXPECT_EQ(e.scratch->counters().pcre_errors, 2u);
  EXPECT_EQ(e.MatchPacket("aaaa"), (std::vector<uint32_t>{0, 2}));
}

TEST(MatcherTest, BacktrackingIsBounded) {
  Engine e({MakeRule(1, R"(content:"a"; content:"b"; distance:0; within:1)")});
  const std::string many_a(5000, 'a');
  EXPECT_TRUE(e.MatchPacket(many_a).empty());
  EXPECT_EQ(e.scratch->counters().step_limit_hits, 1u);
  // The limit is per rule per buffer: a match within it still fires.
  EXPECT_EQ(e.MatchPacket(std::string(100, 'a') + "b"), std::vector<uint32_t>{0});
  EXPECT_EQ(e.scratch->counters().step_limit_hits, 1u);
}

// ---------------------------------------------------------------------------------
// dsize, flow, protocol, header.

TEST(MatcherTest, Dsize) {
  struct Case {
    const char* opt;
    uint16_t dsize;
    bool fires;
  } cases[] = {
      {"dsize:10", 10, true},  {"dsize:10", 11, false},   {"dsize:<10", 9, true},
      {"dsize:<10", 10, false}, {"dsize:>10", 11, true},   {"dsize:>10", 10, false},
      {"dsize:5<>10", 6, true}, {"dsize:5<>10", 5, false}, {"dsize:5<>10", 10, false},
      {"dsize:!0", 1, true},    {"dsize:!0", 0, false},    {"dsize:0", 0, true},
  };
  for (const auto& c : cases) {
    Engine e({MakeRule(1, c.opt)});
    const std::string payload(c.dsize, 'x');
    InspectContext ctx = TcpCtx(c.dsize);
    EXPECT_EQ(!e.Match(ctx, Packet(payload)).empty(), c.fires) << c.opt << " dsize " << c.dsize;
  }
  // With content, and never on stream buffers (as Suricata).
  Engine e({MakeRule(1, R"(content:"x"; dsize:>2)")});
  EXPECT_EQ(e.MatchPacket("xxx"), std::vector<uint32_t>{0});
  EXPECT_TRUE(e.MatchPacket("xx").empty());
  EXPECT_TRUE(e.Match(TcpCtx(3), Stream("xxx", 0, 0)).empty());
}

TEST(MatcherTest, HeaderOnlyRuleFiresOnEmptyPayloadOncePerPacket) {
  Engine e({MakeRule(1, "", Protocol::kTcp), MakeRule(2, R"(content:!"x")", Protocol::kTcp)});
  EXPECT_EQ(e.Match(TcpCtx(0), Packet("")), std::vector<uint32_t>{0});  // negated needs payload
  EXPECT_EQ(e.MatchPacket("abc"), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(e.Match(TcpCtx(3), Stream("abc", 0, 0)), std::vector<uint32_t>{1});
}

TEST(MatcherTest, FlowOptions) {
  struct Case {
    const char* opt;
    bool to_server, established, stream;
    bool fires;
  } cases[] = {
      {"flow:to_server", true, true, false, true},
      {"flow:to_server", false, true, false, false},
      {"flow:from_server", false, true, false, true},
      {"flow:to_client", true, true, false, false},
      {"flow:established", true, true, false, true},
      {"flow:established", true, false, false, false},
      {"flow:not_established", true, false, false, true},
      {"flow:not_established", true, true, false, false},
      {"flow:established,to_server", true, true, false, true},
      {"flow:established,to_server", false, true, false, false},
      {"flow:stateless", false, false, false, true},
      {"flow:only_stream", true, true, false, false},
      {"flow:only_stream", true, true, true, true},
      {"flow:no_stream", true, true, false, true},
      {"flow:no_stream", true, true, true, false},
  };
  for (const auto& c : cases) {
    Engine e({MakeRule(1, std::string(R"(content:"abc"; )") + c.opt)});
    InspectContext ctx = TcpCtx(3);
    ctx.to_server = c.to_server;
    ctx.established = c.established;
    const Buffer buf = c.stream ? Stream("abc", 0, 0) : Packet("abc");
    EXPECT_EQ(!e.Match(ctx, buf).empty(), c.fires)
        << c.opt << " to_server=" << c.to_server << " established=" << c.established
        << " stream=" << c.stream;
  }
}

TEST(MatcherTest, Protocols) {
  struct Case {
    Protocol proto;
    uint8_t ip_proto;
    bool stream;
    bool fires;
  } cases[] = {
      {Protocol::kIp, 6, false, true},         {Protocol::kIp, 17, false, true},
      {Protocol::kIp, 47, false, true},        {Protocol::kIp, 6, true, true},
      {Protocol::kTcp, 6, false, true},        {Protocol::kTcp, 6, true, true},
      {Protocol::kTcp, 17, false, false},      {Protocol::kTcpPkt, 6, false, true},
      {Protocol::kTcpPkt, 6, true, false},     {Protocol::kTcpStream, 6, false, false},
      {Protocol::kTcpStream, 6, true, true},   {Protocol::kUdp, 17, false, true},
      {Protocol::kUdp, 6, false, false},       {Protocol::kIcmp, 1, false, true},
      {Protocol::kIcmp, 58, false, true},      {Protocol::kIcmp, 17, false, false},
  };
  for (const auto& c : cases) {
    Engine e({MakeRule(1, R"(content:"abc")", c.proto)});
    InspectContext ctx = TcpCtx(3);
    ctx.ip_proto = c.ip_proto;
    const Buffer buf = c.stream ? Stream("abc", 0, 0) : Packet("abc");
    EXPECT_EQ(!e.Match(ctx, buf).empty(), c.fires)
        << "protocol " << int(c.proto) << " ip_proto " << int(c.ip_proto) << " stream " << c.stream;
  }
}

TEST(MatcherTest, HeaderAddressesAndPorts) {
  // alert tcp 10.0.0.0/24 any -> 10.0.0.2 80
  auto make = [](bool bidirectional) {
    Rule r = MakeRule(1, R"(content:"abc")");
    r.header.src.any = false;
    r.header.src.include = {V4(10, 0, 0, 0, 24)};
    r.header.dst.any = false;
    r.header.dst.include = {V4(10, 0, 0, 2, 32)};
    r.header.dst_ports.any = false;
    r.header.dst_ports.include = {{80, 80}};
    r.header.bidirectional = bidirectional;
    return r;
  };
  InspectContext fwd = TcpCtx(3);  // 10.0.0.1:40000 -> 10.0.0.2:80
  InspectContext rev = fwd;
  std::swap(rev.src_addr, rev.dst_addr);
  std::swap(rev.src_port, rev.dst_port);
  InspectContext other_port = fwd;
  other_port.dst_port = 443;
  InspectContext other_net = fwd;
  other_net.src_addr = {10, 0, 1, 1};
  InspectContext v6 = fwd;
  v6.v6 = true;

  Engine oneway({make(false)});
  EXPECT_EQ(oneway.Match(fwd, Packet("abc")).size(), 1u);
  EXPECT_TRUE(oneway.Match(rev, Packet("abc")).empty());
  EXPECT_TRUE(oneway.Match(other_port, Packet("abc")).empty());
  EXPECT_TRUE(oneway.Match(other_net, Packet("abc")).empty());
  EXPECT_TRUE(oneway.Match(v6, Packet("abc")).empty());

  Engine both({make(true)});
  EXPECT_EQ(both.Match(fwd, Packet("abc")).size(), 1u);
  EXPECT_EQ(both.Match(rev, Packet("abc")).size(), 1u);
  EXPECT_TRUE(both.Match(other_port, Packet("abc")).empty());

  // Exclusions: [10.0.0.0/8, !10.0.0.1] any -> any ![22]
  Rule ex = MakeRule(2, R"(content:"abc")");
  ex.header.src.any = false;
  ex.header.src.include = {V4(10, 0, 0, 0, 8)};
  ex.header.src.exclude = {V4(10, 0, 0, 1, 32)};
  ex.header.dst_ports.exclude = {{22, 22}};
  Engine excl({ex});
  EXPECT_TRUE(excl.Match(fwd, Packet("abc")).empty());
  EXPECT_EQ(excl.Match(other_net, Packet("abc")).size(), 1u);
  InspectContext ssh = other_net;
  ssh.dst_port = 22;
  EXPECT_TRUE(excl.Match(ssh, Packet("abc")).empty());
}

// ---------------------------------------------------------------------------------
// Prefilter choice and always-candidates.

TEST(MatcherTest, FastPatternChoice) {
  RuleSet set;
  set.rules = {
      MakeRule(1, R"(content:"ab"; content:"abcdef")"),                // longest
      MakeRule(2, R"(content:"ab"; fast_pattern; content:"abcdef")"),  // explicit
      MakeRule(3, R"(content:"abc"; content:"xyz")"),                  // tie: first
      MakeRule(4, R"(content:!"longest_but_negated"; content:"ab")"),
      MakeRule(5, R"(pcre:"/abc/")"),
      MakeRule(6, R"(content:!"x")"),
      MakeRule(7, "dsize:>3"),
      MakeRule(8, R"(content:"ab"; pcre:"/abcdefgh/")"),
      MakeRule(9, R"(content:!"negatedfast"; fast_pattern; content:"zz"; content:"y")"),
      MakeRule(10, R"(pcre:"/a*c?/")"),
      MakeRule(11, R"(pcre:"/abc/R")"),
      MakeRule(12, R"(pcre:"/a b c/x")"),
  };
  std::string error;
  auto c = CompiledRules::Compile(set, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->prefilter_detect(0), 1);
  EXPECT_EQ(c->prefilter_detect(1), 0);
  EXPECT_EQ(c->prefilter_detect(2), 0);
  EXPECT_EQ(c->prefilter_detect(3), 1);
  EXPECT_EQ(c->prefilter_detect(4), 0);  // pcre only: Hyperscan prefilters for the pcre
  EXPECT_EQ(c->prefilter_detect(5), -1);
  EXPECT_EQ(c->prefilter_detect(6), -1);
  EXPECT_EQ(c->prefilter_detect(7), 0);
  EXPECT_EQ(c->prefilter_detect(8), 1);  // a negated fast_pattern cannot prefilter
  EXPECT_EQ(c->prefilter_detect(9), -1);   // /a*c?/ matches empty data: no prefilter
  EXPECT_EQ(c->prefilter_detect(10), -1);  // /R: relative to a match that is not there yet
  EXPECT_EQ(c->prefilter_detect(11), -1);  // /x: no Hyperscan flag for it
  EXPECT_EQ(c->stats().rules, 12u);
  EXPECT_EQ(c->stats().prefilter_patterns, 7u);
  EXPECT_EQ(c->stats().pcre_prefilters, 1u);
  EXPECT_EQ(c->stats().always_candidates, 5u);
  EXPECT_GT(c->stats().database_bytes, 0u);
  EXPECT_GE(c->stats().compile_ms, 0.0);

  // The fast_pattern literal only selects candidates: the whole chain still decides.
  Engine e(set.rules);
  EXPECT_EQ(e.MatchPacket("xabcdefx"), (std::vector<uint32_t>{0, 1, 3, 4, 6, 9, 10, 11}));
  EXPECT_EQ(e.MatchPacket("ab"), (std::vector<uint32_t>{3, 5, 9}));
}

TEST(MatcherTest, NocaseLiteralPrefilter) {
  Engine e({MakeRule(1, R"(content:"SELECT"; nocase; content:"from"; nocase; distance:1)")});
  EXPECT_EQ(e.MatchPacket("x=1 union select a FROM b").size(), 1u);
  EXPECT_TRUE(e.MatchPacket("x=1 union selec a FROM b").empty());
}

// ---------------------------------------------------------------------------------
// Multi-rule sets.

TEST(MatcherTest, SeveralRulesFireAscendingAndOnce) {
  Engine e({
      MakeRule(1, R"(content:"zzz")"),                 // matched last by Hyperscan
      MakeRule(2, R"(content:"aaa")"),                 // matched first, many times
      MakeRule(3, R"(pcre:"/a{3}.*z{3}/")"),           // always candidate
      MakeRule(4, R"(content:"nothere")"),
      MakeRule(5, R"(content:"AAA"; nocase; content:"zzz"; distance:0)"),
      MakeRule(6, "", Protocol::kUdp),                 // other protocol
  });
  const std::string payload = "aaa aaa aaa ... zzz aaa";
  EXPECT_EQ(e.MatchPacket(payload), (std::vector<uint32_t>{0, 1, 2, 4}));
  // Appends to what the caller has.
  std::vector<uint32_t> fired = {99};
  e.rules->Match(*e.scratch, TcpCtx(payload.size()), Packet(payload), fired);
  EXPECT_EQ(fired, (std::vector<uint32_t>{99, 0, 1, 2, 4}));
  EXPECT_EQ(e.MatchPacket("nothing"), std::vector<uint32_t>{});
  EXPECT_GE(e.scratch->counters().fired, 8u);
}

TEST(MatcherTest, MatchDoesNotAllocate) {
#ifndef WARDGATE_COUNT_ALLOCS
  GTEST_SKIP() << "operator new is ASan's";
#endif
  Engine e({MakeRule(1, R"(content:"aaa")"), MakeRule(2, R"(pcre:"/a+b/")"),
            MakeRule(3, R"(content:"a"; content:"b"; distance:0; within:1)"), MakeRule(4, "")});
  std::vector<uint32_t> fired;
  fired.reserve(16);
  const std::string payload = "aaaa xab aaab";
  g_allocs = 0;
  g_count_allocs = true;
  static void* volatile sink;
  sink = ::operator new(16);  // the counter itself works
  ::operator delete(sink);
  EXPECT_EQ(g_allocs, 1u);
  g_allocs = 0;
  for (int i = 0; i < 100; ++i) {
    fired.clear();
    e.rules->Match(*e.scratch, TcpCtx(payload.size()), Packet(payload), fired);
  }
  g_count_allocs = false;
  EXPECT_EQ(g_allocs, 0u);
  EXPECT_EQ(fired, (std::vector<uint32_t>{0, 1, 2, 3}));
}

TEST(MatcherTest, SharedAcrossThreads) {
  std::vector<Rule> rules;
  for (int i = 0; i < 50; ++i) {
    rules.push_back(MakeRule(100 + i, "content:\"key" + std::to_string(i) + "=\"; pcre:\"/^\\d+/R\""));
  }
  RuleSet set;
  set.rules = rules;
  std::string error;
  auto compiled = CompiledRules::Compile(set, &error);
  ASSERT_TRUE(compiled) << error;
  std::atomic<int> mismatches{0};
  auto worker = [&](int seed) {
    auto scratch = compiled->NewScratch();
    std::vector<uint32_t> fired;
    for (int n = 0; n < 2000; ++n) {
      const int k = (n * 7 + seed) % 50;
      const std::string payload = "x key" + std::to_string(k) + "=123 key" +
                                  std::to_string((k + 1) % 50) + "=z";
      fired.clear();
      compiled->Match(*scratch, TcpCtx(payload.size()), Packet(payload), fired);
      if (fired != std::vector<uint32_t>{static_cast<uint32_t>(k)}) ++mismatches;
    }
  };
  std::thread a(worker, 1), b(worker, 2);
  a.join();
  b.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(MatcherTest, WrongScratchFiresNothing) {
  Engine a({MakeRule(1, R"(content:"abc")")});
  Engine b({MakeRule(1, R"(content:"abc")")});
  std::vector<uint32_t> fired;
  a.rules->Match(*b.scratch, TcpCtx(3), Packet("abc"), fired);
  EXPECT_TRUE(fired.empty());
  EXPECT_EQ(b.scratch->counters().wrong_scratch, 1u);
}

TEST(MatcherTest, EmptyRuleSet) {
  Engine e({});
  EXPECT_TRUE(e.MatchPacket("abc").empty());
  EXPECT_EQ(e.rules->stats().rules, 0u);
  EXPECT_EQ(e.rules->stats().database_bytes, 0u);
}

TEST(MatcherTest, HundredsOfSyntheticRules) {
  std::vector<Rule> rules;
  for (int i = 0; i < 600; ++i) {
    char lit[32];
    std::snprintf(lit, sizeof(lit), "sig%04d", i);
    std::string opts = std::string("content:\"") + lit + "\"";
    switch (i % 4) {
      case 1: opts += "; nocase"; break;
      case 2: opts += "; content:\"|3a|\"; distance:0; within:1"; break;
      case 3: opts += "; pcre:\"/^:\\d{2}/R\""; break;
      default: break;
    }
    const Protocol proto = i % 5 == 0 ? Protocol::kIp : Protocol::kTcp;
    rules.push_back(MakeRule(1000 + i, opts, proto));
  }
  for (int i = 0; i < 20; ++i) {
    rules.push_back(MakeRule(5000 + i, "pcre:\"/never\\d{" + std::to_string(i + 1) + "}x/\""));
  }
  Engine e(rules);
  ASSERT_TRUE(e.rules);
  EXPECT_EQ(e.rules->stats().rules, 620u);
  EXPECT_EQ(e.rules->stats().prefilter_patterns, 620u);
  EXPECT_EQ(e.rules->stats().pcre_prefilters, 20u);
  EXPECT_EQ(e.rules->stats().always_candidates, 0u);
  // sig0001 nocase; sig0002 needs ":" right after; sig0003 needs ":NN"; 0100 plain.
  EXPECT_EQ(e.MatchPacket("SIG0001 sig0002: sig0003:42 sig0007 sig0100 sig0006"),
            (std::vector<uint32_t>{1, 2, 3, 100}));
  InspectContext udp = TcpCtx();
  udp.ip_proto = 17;
  const std::string p = "sig0100 sig0101";  // only ip rules (i % 5 == 0) on UDP
  EXPECT_EQ(e.Match(udp, Packet(p)), std::vector<uint32_t>{100});
}

// Randomized: in a set, each rule fires exactly when it fires alone (the shared
// prefilter and candidate queue lose nothing and add nothing), on packets and on
// stream windows; under ASan this also exercises the window arithmetic.
TEST(MatcherTest, RandomRulesFireInASetAsAlone) {
  std::mt19937 rng(12345);
  auto pick = [&rng](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto word = [&](int max_len) {
    std::string w;
    for (int i = 0, n = 1 + pick(max_len); i < n; ++i) w.push_back("abcAB"[pick(5)]);
    return w;
  };
  std::vector<Rule> rules;
  for (int r = 0; r < 60; ++r) {
    std::string opts;
    for (int st = 0, steps = 1 + pick(3); st < steps; ++st) {
      const int kind = pick(10);
      if (kind < 7) {
        opts += std::string("content:") + (pick(5) == 0 ? "!" : "") + "\"" + word(3) + "\"; ";
        if (pick(4) == 0) opts += "nocase; ";
        const int m = pick(8);
        if (m == 0) opts += "offset:" + std::to_string(pick(6)) + "; depth:" + std::to_string(3 + pick(8)) + "; ";
        if (m == 1 && st > 0) opts += "distance:" + std::to_string(pick(7) - 3) + "; ";
        if (m == 2 && st > 0) opts += "distance:0; within:" + std::to_string(3 + pick(4)) + "; ";
        if (m == 3 && st > 0) opts += "within:" + std::to_string(3 + pick(6)) + "; ";
        if (m == 4) opts += "startswith; ";
        if (m == 5) opts += "endswith; ";
      } else if (kind < 9) {
        static const char* kPcre[] = {"/a.b/", "/^ab/R", "/b+c/i", "/[ab]{2}$/", "/c/R"};
        opts += std::string("pcre:") + (pick(5) == 0 ? "!" : "") + "\"" + kPcre[pick(5)] + "\"; ";
      } else {
        opts += std::string("isdataat:") + (pick(3) == 0 ? "!" : "") + std::to_string(pick(6)) +
                (pick(2) ? ",relative" : "") + "; ";
      }
    }
    rules.push_back(MakeRule(static_cast<uint32_t>(r + 1), opts));
  }
  Engine all(rules);
  std::vector<std::unique_ptr<Engine>> alone;
  for (const Rule& r : rules) alone.push_back(std::make_unique<Engine>(std::vector<Rule>{r}));
  int fired_total = 0;
  for (int n = 0; n < 400; ++n) {
    std::string payload;
    for (int i = 0, len = pick(24); i < len; ++i) payload.push_back("abcAB"[pick(5)]);
    Buffer buf = Packet(payload);
    if (n % 2) {  // a stream window
      buf.is_stream = true;
      buf.stream_offset = static_cast<uint64_t>(pick(3) == 0 ? 0 : pick(8));
      buf.new_from = payload.empty() ? 0 : static_cast<size_t>(pick(static_cast<int>(payload.size())));
    }
    const InspectContext ctx = TcpCtx(payload.size());
    std::vector<uint32_t> expected;
    for (uint32_t r = 0; r < rules.size(); ++r) {
      if (!alone[r]->Match(ctx, buf).empty()) expected.push_back(r);
    }
    ASSERT_EQ(all.Match(ctx, buf), expected) << "payload \"" << payload << "\" stream " << buf.is_stream;
    fired_total += static_cast<int>(expected.size());
  }
  EXPECT_GT(fired_total, 100);  // the generator makes rules that do fire
}

// ---------------------------------------------------------------------------------
// Stream buffers.

TEST(MatcherStreamTest, ContentSplitAcrossSegmentsFiresOnce) {
  Engine e({MakeRule(1, R"(content:"EVILPATTERN")", Protocol::kTcpStream)});
  const InspectContext ctx = TcpCtx();
  const std::string stream = "hello there EVILPATTERN and more bytes after it";
  const size_t cut = stream.find("PATTERN");  // segment 1 ends inside the content
  const size_t seg2_end = cut + 20;
  // Call 1: the first segment, all new.
  std::string w1 = stream.substr(0, cut);
  EXPECT_TRUE(e.Match(ctx, Stream(w1, 0, 0)).empty());
  // Call 2: the window keeps the last 10 old bytes, then the new segment.
  const size_t w2_start = cut - 10;
  std::string w2 = stream.substr(w2_start, seg2_end - w2_start);
  EXPECT_EQ(e.Match(ctx, Stream(w2, w2_start, cut - w2_start)), std::vector<uint32_t>{0});
  // Call 3: the window slides on; the content is all old data now.
  const size_t w3_start = cut - 8;
  std::string w3 = stream.substr(w3_start);
  EXPECT_TRUE(e.Match(ctx, Stream(w3, w3_start, seg2_end - w3_start)).empty());
}

TEST(MatcherStreamTest, MatchEndingExactlyAtNewFromIsOld) {
  Engine e({MakeRule(1, R"(content:"abc")")});
  const InspectContext ctx = TcpCtx();
  EXPECT_TRUE(e.Match(ctx, Stream("xxabcyy", 0, 5)).empty());          // ends at 5: old
  EXPECT_EQ(e.Match(ctx, Stream("xxabcyy", 0, 4)).size(), 1u);        // last byte new
  EXPECT_EQ(e.Match(ctx, Stream("abc...abc", 0, 5)).size(), 1u);      // second copy new
}

TEST(MatcherStreamTest, AbsoluteOffsetsCountFromStreamStart) {
  const InspectContext ctx = TcpCtx();
  // depth lies before the window: cannot match, even though the bytes are there.
  Engine hl7({MakeRule(1, R"(content:"MSH|7c|"; depth:4)")});
  EXPECT_TRUE(hl7.Match(ctx, Stream("MSH|^~\\&|", 100, 0)).empty());
  EXPECT_EQ(hl7.Match(ctx, Stream("MSH|^~\\&|", 0, 0)).size(), 1u);
  // offset 10 depth 1: stream byte 10 is window byte 2 when the window starts at 8.
  Engine at10({MakeRule(2, R"(content:"X"; offset:10; depth:1)")});
  EXPECT_EQ(at10.Match(ctx, Stream("abXd", 8, 0)).size(), 1u);
  EXPECT_TRUE(at10.Match(ctx, Stream("abcX", 8, 0)).empty());
  // depth straddling the window start: the part inside the window still counts.
  Engine straddle({MakeRule(3, R"(content:"AB"; depth:12)")});
  EXPECT_EQ(straddle.Match(ctx, Stream("xAByyy", 9, 0)).size(), 1u);   // stream 10..11
  EXPECT_TRUE(straddle.Match(ctx, Stream("xxAByy", 9, 0)).empty());    // stream 11..12
  // startswith means stream byte 0.
  Engine start({MakeRule(4, R"(content:"GET"; startswith)")});
  EXPECT_TRUE(start.Match(ctx, Stream("GET /", 50, 0)).empty());
  EXPECT_EQ(start.Match(ctx, Stream("GET /", 0, 0)).size(), 1u);
  // absolute isdataat: stream byte 20 exists when the window reaches it.
  Engine data({MakeRule(5, R"(content:"a"; isdataat:20)")});
  EXPECT_EQ(data.Match(ctx, Stream("a12345", 15, 0)).size(), 1u);   // bytes 15..20
  EXPECT_TRUE(data.Match(ctx, Stream("a1234", 15, 0)).empty());     // bytes 15..19
}

TEST(MatcherStreamTest, RelativeChainAcrossOldAndNewData) {
  Engine e({MakeRule(1, R"(content:"USER"; content:"root"; distance:1; within:5)")});
  const InspectContext ctx = TcpCtx();
  // USER in old data, root in new: fires (the last step ends in new data).
  EXPECT_EQ(e.Match(ctx, Stream("USER root\r\n", 0, 6)).size(), 1u);
  // Both in old data: does not fire again.
  EXPECT_TRUE(e.Match(ctx, Stream("USER root\r\nPASS x", 0, 11)).empty());
  // An old complete match, then a new one.
  EXPECT_EQ(e.Match(ctx, Stream("USER root\r\nUSER root\r\n", 0, 11)).size(), 1u);
}

TEST(MatcherStreamTest, PcreLastStepMustEndInNewData) {
  Engine e({MakeRule(1, R"(pcre:"/EVIL\d+/")")});
  const InspectContext ctx = TcpCtx();
  EXPECT_TRUE(e.Match(ctx, Stream("EVIL12 xxxx", 0, 6)).empty());
  EXPECT_EQ(e.Match(ctx, Stream("EVIL12 EVIL3", 0, 6)).size(), 1u);
  EXPECT_EQ(e.Match(ctx, Stream("EVIL12", 0, 5)).size(), 1u);  // last digit new
}

// ---------------------------------------------------------------------------------
// Compile errors.

TEST(MatcherErrorTest, PcreRejectedByPcre2) {
  RuleSet set;
  set.rules = {MakeRule(7, R"(content:"x")"), MakeRule(42, R"(content:"a"; pcre:"/(unclosed/")")};
  std::string error;
  EXPECT_EQ(CompiledRules::Compile(set, &error), nullptr);
  EXPECT_EQ(error.rfind("test.rules:42: sid 42: pcre: ", 0), 0u) << error;
  EXPECT_NE(error.find("missing closing parenthesis"), std::string::npos) << error;
}

TEST(MatcherErrorTest, PcreHttpModifier) {
  for (char m : std::string("UIPQHDMCKSYVWZ")) {
    RuleSet set;
    set.rules = {MakeRule(3, std::string(R"(pcre:"/abc/i)") + m + "\"")};
    std::string error;
    EXPECT_EQ(CompiledRules::Compile(set, &error), nullptr) << m;
    EXPECT_EQ(error, std::string("test.rules:3: sid 3: pcre: HTTP buffer modifier ") + m +
                         " not supported");
  }
  RuleSet set;
  set.rules = {MakeRule(4, R"(pcre:"/abc/q")")};
  std::string error;
  EXPECT_EQ(CompiledRules::Compile(set, &error), nullptr);
  EXPECT_EQ(error, "test.rules:4: sid 4: pcre: unknown modifier q");
}

TEST(MatcherErrorTest, EmptyContent) {
  Rule r = MakeRule(9, R"(content:"x")");
  r.detects[0].content.bytes.clear();
  RuleSet set;
  set.rules = {r};
  std::string error;
  EXPECT_EQ(CompiledRules::Compile(set, &error), nullptr);
  EXPECT_EQ(error, "test.rules:9: sid 9: content: empty pattern");
}

}  // namespace
}  // namespace wardgate::rules

namespace wardgate::rules {
namespace {

// A packet whose bytes the stream stage inspects: tcp/ip payload rules are left to the
// stream (one alert, not two); tcp-pkt rules and header-only rules still apply; with
// no tcp-pkt payload rule in the set, the packet is not scanned at all.
TEST(MatcherTest, StreamCoveredPacketsLeavePayloadRulesToTheStream) {
  const std::string payload = "xxEVILxx";
  Buffer covered = Packet(payload);
  covered.stream_covered = true;
  {
    Engine e({MakeRule(1, R"(content:"EVIL";)"), MakeRule(2, R"(content:"EVIL";)", Protocol::kTcpPkt),
              MakeRule(3, R"(content:"EVIL";)", Protocol::kIp), MakeRule(4, "", Protocol::kTcp)});
    EXPECT_EQ(e.Match(TcpCtx(payload.size()), covered), (std::vector<uint32_t>{1, 3}))
        << "indices: the tcp-pkt rule and the header-only rule";
    EXPECT_EQ(e.MatchPacket(payload), (std::vector<uint32_t>{0, 1, 2, 3})) << "not covered: all";
  }
  {
    Engine e({MakeRule(1, R"(content:"EVIL";)"), MakeRule(4, "", Protocol::kTcp)});
    EXPECT_EQ(e.Match(TcpCtx(payload.size()), covered), (std::vector<uint32_t>{1}));
  }
}

}  // namespace
}  // namespace wardgate::rules

namespace wardgate::rules {
namespace {

Rule PortRule(uint32_t sid, const std::string& dst_ports, const std::string& lit, bool both = false) {
  RuleSet set = ParseRules("alert tcp any any " + std::string(both ? "<>" : "->") + " any " + dst_ports +
                               " (content:\"" + lit + "\"; sid:" + std::to_string(sid) + ";)",
                           "t.rules", LoadOptions{});
  EXPECT_EQ(set.rules.size(), 1u) << (set.errors.empty() ? "" : set.errors[0].ToString());
  return set.rules.empty() ? Rule{} : set.rules[0];
}

// Port groups: rules naming their destination ports sit in per-port databases; a
// packet is scanned against the port-less rules and its own port's rules (one folded
// database, or two scans when the port-less set is too large to fold), so every rule
// still fires exactly where its header allows, on packets and on streams.
class PortGroupsTest : public ::testing::TestWithParam<size_t> {};

TEST_P(PortGroupsTest, FireOnlyForTheirPorts) {
  // 1:1024 is too wide to key (kMaxKeyedPorts): it stays with the port-less rules.
  // Filler rules make 2575, 104 and 11112 busy enough (kMinRulesPerPort) to get their
  // own databases.
  std::vector<Rule> rules = {PortRule(1, "2575", "HL7X"), PortRule(2, "[104,11112]", "DICM"),
                             PortRule(3, "any", "HL7X"), PortRule(4, "1:1024", "DICM"),
                             PortRule(5, "2575", "HL7X", true), PortRule(6, "!2575", "HL7X")};
  for (uint32_t i = 0; i < 20; ++i) {
    rules.push_back(PortRule(100 + i, "2575", "fill-a" + std::to_string(i)));
    rules.push_back(PortRule(200 + i, "[104,11112]", "fill-b" + std::to_string(i)));
  }
  for (uint32_t i = 0; i < GetParam(); ++i) rules.push_back(PortRule(1000 + i, "any", "portless" + std::to_string(i)));
  Engine e(rules);
  auto fired = [&](uint16_t dport, const std::string& payload, bool stream = false) {
    InspectContext ctx = TcpCtx(payload.size());
    ctx.dst_port = dport;
    Buffer b = stream ? Stream(payload, 0, 0) : Packet(payload);
    std::vector<uint32_t> sids;
    for (uint32_t idx : e.Match(ctx, b)) sids.push_back(e.rules->rules()[idx].sid);
    return sids;
  };
  EXPECT_EQ(fired(2575, "..HL7X.."), (std::vector<uint32_t>{1, 3, 5}));
  EXPECT_EQ(fired(2575, "..HL7X..", true), (std::vector<uint32_t>{1, 3, 5})) << "stream buffers too";
  EXPECT_EQ(fired(80, "..HL7X.."), (std::vector<uint32_t>{3, 6}));
  EXPECT_EQ(fired(104, "DICM"), (std::vector<uint32_t>{2, 4}));
  EXPECT_EQ(fired(11112, "DICM"), (std::vector<uint32_t>{2}));
  EXPECT_EQ(fired(1000, "DICM"), (std::vector<uint32_t>{4}));
  EXPECT_EQ(fired(5000, "DICM"), (std::vector<uint32_t>{}));
  if (GetParam() > 0) {
    EXPECT_EQ(fired(2575, "portless7 HL7X"), (std::vector<uint32_t>{1, 3, 5, 1007}));
    EXPECT_EQ(fired(104, "portless0"), (std::vector<uint32_t>{1000}));
  }
  // The prefilter itself is keyed: a port-104 literal is no candidate on port 2575.
  const uint64_t before = e.scratch->counters().candidates;
  EXPECT_EQ(fired(2575, "fill-b3"), (std::vector<uint32_t>{}));
  EXPECT_EQ(e.scratch->counters().candidates, before);
}

// 0: the port-less literals fold into each port's database; above the limit: two scans.
INSTANTIATE_TEST_SUITE_P(FoldedAndNot, PortGroupsTest,
                         ::testing::Values(size_t{0}, size_t{8}, CompiledRules::kMaxFoldedLiterals + 1));

// Group heads per direction: a flow:to_client rule's literal is not even a candidate
// on a to_server packet (and the reverse), while direction-less rules are in both.
TEST(MatcherTest, DirectionHeadsKeepEachDirectionsRules) {
  const std::vector<Rule> rules = {MakeRule(1, "flow:to_server; content:\"USER\";"),
                                   MakeRule(2, "flow:to_client; content:\"230 \";"),
                                   MakeRule(3, "content:\"both\";")};
  Engine e(rules);
  auto run = [&](bool to_server, const std::string& payload) {
    InspectContext ctx = TcpCtx(payload.size());
    ctx.to_server = to_server;
    std::vector<uint32_t> sids;
    for (uint32_t idx : e.Match(ctx, Packet(payload))) sids.push_back(e.rules->rules()[idx].sid);
    return sids;
  };
  EXPECT_EQ(run(true, "USER 230 both"), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(run(false, "USER 230 both"), (std::vector<uint32_t>{2, 3}));
  const uint64_t before = e.scratch->counters().candidates;
  EXPECT_TRUE(run(true, "230 ok").empty());
  EXPECT_TRUE(run(false, "USER x").empty());
  EXPECT_EQ(e.scratch->counters().candidates, before) << "the other direction's literals were scanned for";
}

}  // namespace
}  // namespace wardgate::rules
