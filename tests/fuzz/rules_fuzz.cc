// libFuzzer target for ParseRules: arbitrary text must never crash, hang, throw, or
// hit UB, and the result must be consistent: every rule seen is loaded, refused or
// skipped exactly once, and every loaded rule is well formed.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <string>
#include <vector>

#include "rules/matcher.h"
#include "rules/rule.h"

namespace {

using wardgate::rules::Detect;
using wardgate::rules::LoadError;
using wardgate::rules::LoadOptions;
using wardgate::rules::ParseRules;
using wardgate::rules::Rule;
using wardgate::rules::RuleSet;

// Not assert(): it must fire in NDEBUG builds too.
#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

void CheckRule(const Rule& r) {
  FUZZ_CHECK(r.sid != 0);
  FUZZ_CHECK(r.line >= 1);
  FUZZ_CHECK(r.priority >= 1 && r.priority <= 255);
  const std::array<uint8_t, 16> zero{};
  (void)r.header.src.Matches(zero, false);
  (void)r.header.dst.Matches(zero, true);
  (void)r.header.src_ports.Matches(80);
  for (const auto& c : r.header.src.include) FUZZ_CHECK(c.prefix_len <= (c.v6 ? 128 : 32));
  for (const auto& p : r.header.dst_ports.include) FUZZ_CHECK(p.lo <= p.hi);
  bool fast_pattern = false;
  for (const Detect& d : r.detects) {
    if (d.kind != Detect::Kind::kContent) continue;
    const auto& c = d.content;
    FUZZ_CHECK(!c.bytes.empty());
    FUZZ_CHECK(!c.depth || *c.depth >= static_cast<int32_t>(c.bytes.size()));
    FUZZ_CHECK(!c.within || *c.within >= static_cast<int32_t>(c.bytes.size()));
    FUZZ_CHECK(!(c.Relative() && (c.depth || c.offset)));
    FUZZ_CHECK(!(c.startswith && (c.Relative() || c.depth || c.offset)));
    FUZZ_CHECK(!(fast_pattern && c.fast_pattern));
    fast_pattern |= c.fast_pattern;
  }
}

// The loaded rules, compiled, matched against the input itself as a packet payload
// and as a stream window: the detection chain (byte_* reads, variables, relative
// positions) must stay inside the buffer whatever the rule and the data.
void CompileAndMatch(const RuleSet& rs, const std::string& text) {
  if (rs.rules.empty() || rs.rules.size() > 8) return;  // a Hyperscan compile per input: keep it small
  std::string error;
  auto compiled = wardgate::rules::CompiledRules::Compile(rs, &error);
  if (!compiled) {
    FUZZ_CHECK(!error.empty());
    return;
  }
  auto scratch = compiled->NewScratch();
  FUZZ_CHECK(scratch != nullptr);
  wardgate::rules::InspectContext ctx;
  ctx.ip_proto = 6;
  ctx.dsize = static_cast<uint16_t>(std::min<size_t>(text.size(), 65535));
  wardgate::rules::Buffer buf;
  buf.data = reinterpret_cast<const uint8_t*>(text.data());
  buf.len = text.size();
  std::vector<uint32_t> fired;
  compiled->Match(*scratch, ctx, buf, fired);
  buf.is_stream = true;
  buf.stream_offset = 1000;
  buf.new_from = text.size() / 2;
  compiled->Match(*scratch, ctx, buf, fired);
  for (uint32_t r : fired) FUZZ_CHECK(r < compiled->rules().size());
}

void ParseAndCheck(const std::string& text, const LoadOptions& o) {
  const RuleSet rs = ParseRules(text, "fuzz.rules", o);  // a throw would abort the fuzzer
  CompileAndMatch(rs, text);
  int skipped = 0;
  for (const auto& [keyword, n] : rs.skipped_by_keyword) {
    FUZZ_CHECK(o.lenient && n > 0 && !keyword.empty());
    skipped += n;
  }
  FUZZ_CHECK(static_cast<size_t>(rs.rules_seen) ==
             rs.rules.size() + rs.errors.size() + static_cast<size_t>(skipped));
  for (const Rule& r : rs.rules) CheckRule(r);
  for (const LoadError& e : rs.errors) {
    FUZZ_CHECK(!e.keyword.empty() && !e.message.empty() && e.line >= 1);
    (void)e.ToString();
  }
}

}  // namespace

// Every input is plain rule text (the seeds are ordinary .rules files), parsed twice:
// strict with the default variables, and lenient with variables of its own.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  LoadOptions strict;
  ParseAndCheck(text, strict);
  LoadOptions lenient;
  lenient.lenient = true;
  lenient.variables = {{"HOME_NET", "[10.0.0.0/8,!10.1.0.0/16,2001:db8::/32]"},
                       {"LOOP", "[$LOOP2]"},
                       {"LOOP2", "$LOOP"},
                       {"WEB_PORTS", "[80,443,8000:8100,!8080]"}};
  ParseAndCheck(text, lenient);
  return 0;
}
