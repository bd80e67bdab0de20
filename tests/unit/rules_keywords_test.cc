// The rule-set keywords (issue 4) end to end through the parser and the matcher:
// byte_test / byte_jump / byte_extract (and their variables in content positions),
// the packet keywords (itype icode icmp_id icmp_seq ttl flags ip_proto sameip bsize),
// flowbits with Suricata's evaluation order, and commented-out (disabled) rules.
#include <gtest/gtest.h>

#include <bitset>
#include <string>
#include <vector>

#include "rules/matcher.h"
#include "rules/rule.h"

namespace wardgate::rules {
namespace {

using namespace std::string_literals;

RuleSet Parse(const std::string& text) { return ParseRules(text, "k.rules", LoadOptions{}); }

std::string Errors(const RuleSet& rs) {
  std::string s;
  for (const LoadError& e : rs.errors) s += e.ToString() + "\n";
  return s;
}

// The one error a rule text produces ("" if it loads).
std::string ErrorOf(const std::string& rule) {
  const RuleSet rs = Parse(rule + "\n");
  return rs.errors.empty() ? "" : rs.errors[0].keyword + ": " + rs.errors[0].message;
}

Rule One(const std::string& options, const std::string& proto = "tcp") {
  const RuleSet rs = Parse("alert " + proto + " any any -> any any (" + options + " sid:1;)\n");
  EXPECT_TRUE(rs.errors.empty()) << options << "\n" << Errors(rs);
  EXPECT_EQ(rs.rules.size(), 1u);
  return rs.rules.empty() ? Rule{} : rs.rules[0];
}

// Flow bits for tests: a plain bitset.
class TestBits final : public FlowBits {
 public:
  virtual ~TestBits() = default;
  bool IsSet(uint32_t bit) const override { return bits_.test(bit); }
  void Set(uint32_t bit) override { bits_.set(bit); }
  void Unset(uint32_t bit) override { bits_.reset(bit); }

 private:
  std::bitset<FlowbitRegistry::kMaxBits> bits_;
};

struct Engine {
  std::unique_ptr<CompiledRules> rules;
  std::unique_ptr<MatchScratch> scratch;
  explicit Engine(const std::string& text) {
    const RuleSet rs = Parse(text);
    EXPECT_TRUE(rs.errors.empty()) << Errors(rs);
    std::string error;
    rules = CompiledRules::Compile(rs, &error);
    EXPECT_TRUE(rules) << error;
    if (rules) scratch = rules->NewScratch();
  }
  // sids that fired, in evaluation order
  std::vector<uint32_t> Sids(const InspectContext& ctx, const Buffer& buf) {
    std::vector<uint32_t> fired, sids;
    if (rules && scratch) rules->Match(*scratch, ctx, buf, fired);
    for (uint32_t i : fired) sids.push_back(rules->rules()[i].sid);
    return sids;
  }
};

InspectContext Tcp(size_t dsize) {
  InspectContext ctx;
  ctx.ip_proto = 6;
  ctx.src_addr = {10, 0, 0, 1};
  ctx.dst_addr = {10, 0, 0, 2};
  ctx.src_port = 40000;
  ctx.dst_port = 80;
  ctx.established = true;
  ctx.stateless = false;
  ctx.dsize = static_cast<uint16_t>(dsize);
  ctx.tcp_flags = 0x18;  // PA
  ctx.ttl = 64;
  return ctx;
}

Buffer Pkt(const std::string& s) {
  Buffer b;
  b.data = reinterpret_cast<const uint8_t*>(s.data());
  b.len = s.size();
  return b;
}

bool Fires(const std::string& options, const std::string& payload) {
  Engine e("alert tcp any any -> any any (" + options + " sid:1;)\n");
  return !e.Sids(Tcp(payload.size()), Pkt(payload)).empty();
}

// ------------------------------------------------------------------ byte keywords

struct ByteCase {
  const char* name;
  const char* options;
  std::string payload;
  bool fires;
};
std::ostream& operator<<(std::ostream& os, const ByteCase& c) { return os << c.name; }
class ByteTest_ : public ::testing::TestWithParam<ByteCase> {};
TEST_P(ByteTest_, FiresAsSuricata) {
  const ByteCase& c = GetParam();
  EXPECT_EQ(Fires(c.options, c.payload), c.fires) << c.options;
}

const ByteCase kByteCases[] = {
    // byte_test: binary big/little endian, every operator, negation, bitmask
    {"be_eq", "byte_test:2,=,258,0;", "\x01\x02zz"s, true},
    {"be_eq_miss", "byte_test:2,=,258,1;", "\x01\x02zz"s, false},
    {"le_eq", "byte_test:2,=,513,0,little;", "\x01\x02zz"s, true},
    {"lt", "byte_test:1,<,10,0;", "\x09"s, true},
    {"lt_miss", "byte_test:1,<,10,0;", "\x0a"s, false},
    {"gt", "byte_test:1,>,10,0;", "\x0b"s, true},
    {"le", "byte_test:1,<=,10,0;", "\x0a"s, true},
    {"ge", "byte_test:1,>=,10,0;", "\x0a"s, true},
    {"and", "byte_test:1,&,0x80,0;", "\x81"s, true},
    {"and_miss", "byte_test:1,&,0x80,0;", "\x7f"s, false},
    {"xor", "byte_test:1,^,0x0f,0;", "\x0f"s, false},
    {"negated", "byte_test:1,!=,5,0;", "\x06"s, true},
    {"negated_miss", "byte_test:1,!=,5,0;", "\x05"s, false},
    {"four_bytes", "byte_test:4,>,65535,0;", "\x00\x01\x00\x00"s, true},
    {"eight_bytes", "byte_test:8,=,1,0;", "\x00\x00\x00\x00\x00\x00\x00\x01"s, true},
    {"bitmask", "byte_test:2,=,3,0,bitmask 0x0f00;", "\x03\xffz"s, true},
    {"out_of_buffer", "byte_test:4,>,0,2;", "abcd"s, false},
    // text numbers
    {"string_dec", "byte_test:3,=,123,0,string,dec;", "123xyz"s, true},
    {"string_dec_prefix", "byte_test:4,=,12,0,string,dec;", "12ab"s, true},
    {"string_hex", "byte_test:2,=,255,0,string,hex;", "ffzz"s, true},
    {"string_oct", "byte_test:3,=,8,0,string,oct;", "010z"s, true},
    {"string_not_a_number", "byte_test:3,>,0,0,string,dec;", "abc"s, false},
    // relative to a content
    {"relative", "content:\"LEN=\"; byte_test:2,=,42,0,relative,string,dec;", "xxLEN=42"s, true},
    {"relative_offset", "content:\"LEN\"; byte_test:2,=,42,1,relative,string,dec;", "LEN=42"s, true},
    {"relative_retries_content", "content:\"L\"; byte_test:1,=,7,0,relative,string,dec;", "L1 L7"s, true},
    // byte_jump: from after the bytes read, then a relative content
    {"jump", "byte_jump:1,0; content:\"X\"; within:1;", "\x02" "abX"s, true},
    {"jump_miss", "byte_jump:1,0; content:\"X\"; within:1;", "\x01" "abX"s, false},
    {"jump_string", "content:\"len:\"; byte_jump:2,0,relative,string,dec; content:\"END\"; within:3;", "len:03abcEND"s, true},
    {"jump_multiplier", "byte_jump:1,0,multiplier 2; content:\"X\"; within:1;", "\x02" "abcdX"s, true},
    {"jump_align", "byte_jump:1,0,align; content:\"X\"; within:1;", "\x01" "abcdX"s, true},
    {"jump_align_miss", "byte_jump:1,0,align; content:\"X\"; within:1;", "\x01" "abXcd"s, false},
    {"jump_post_offset", "byte_jump:1,0,post_offset -1; content:\"X\"; within:1;", "\x02" "aXb"s, true},
    {"jump_from_beginning", "byte_jump:1,0,from_beginning; content:\"X\"; within:1;", "\x03" "abXz"s, true},
    {"jump_from_end", "byte_jump:1,0,from_end,post_offset -3; content:\"end\"; within:3;", "\x00" "xxend"s, true},
    {"jump_past_end", "byte_jump:1,0; content:\"X\";", "\x09" "abX"s, false},
    // byte_extract: a variable for content positions and for byte_test / byte_jump
    {"extract_depth", "byte_extract:1,0,n; content:\"AB\"; offset:1; depth:n;", "\x03" "xAB"s, true},
    {"extract_depth_miss", "byte_extract:1,0,n; content:\"AB\"; offset:1; depth:n;", "\x02" "xAB"s, false},
    {"extract_distance", "byte_extract:1,0,skip; content:\"Z\"; distance:skip; within:1;", "\x02" "abZ"s, true},
    {"extract_distance_miss", "byte_extract:1,0,skip; content:\"Z\"; distance:skip; within:1;", "\x01" "abZ"s, false},
    {"extract_offset", "byte_extract:1,0,o; content:\"Q\"; offset:o; depth:1;", "\x02" "aQ"s, true},
    {"extract_within", "content:\"K\"; byte_extract:1,0,w,relative; content:\"V\"; within:w;", "K\x03" "abV"s, true},
    {"extract_test_value", "byte_extract:1,0,want; byte_test:1,=,want,1;", "\x07\x07"s, true},
    {"extract_test_value_miss", "byte_extract:1,0,want; byte_test:1,=,want,1;", "\x07\x08"s, false},
    {"extract_multiplier", "byte_extract:1,0,n,multiplier 2; content:\"E\"; distance:n; within:1;", "\x02" "abcdE"s, true},
    {"extract_align", "byte_extract:1,0,n,align 4; content:\"E\"; distance:n; within:1;", "\x01" "abcdE"s, true},
    {"extract_string", "byte_extract:2,0,n,string,dec; content:\"E\"; distance:n; within:1;", "03abcE"s, true},
};
INSTANTIATE_TEST_SUITE_P(Bytes, ByteTest_, ::testing::ValuesIn(kByteCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(RulesKeywordsParse, ByteKeywordErrors) {
  const std::string h = "alert tcp any any -> any any (";
  EXPECT_NE(ErrorOf(h + "byte_test:2,~,1,0; sid:1;)").find("unknown operator"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_test:9,=,1,0; sid:1;)").find("needs 'string'"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_test:11,=,1,0,string,dec; sid:1;)").find("byte_test"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_test:2,=,1; sid:1;)").find("at least 4"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_test:2,=,nope,0; sid:1;)").find("unknown variable"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_test:2,=,1,0,hex; sid:1;)").find("needs 'string'"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_test:2,=,1,0,relative; sid:1;)").find("relative needs"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_jump:2,0,from_beginning,from_end; sid:1;)").find("together"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_extract:1,0,x; byte_extract:1,1,x; sid:1;)").find("defined twice"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_extract:1,0,x,align 3; sid:1;)").find("align"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "content:\"a\"; depth:undefined_var; sid:1;)").find("unknown variable"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "byte_test:2,=,1,0,bogus; sid:1;)").find("unknown option"), std::string::npos);
  const RuleSet dce = ParseRules(h + "byte_test:2,=,1,0,dce; sid:1;)\n", "k.rules", LoadOptions{.lenient = true});
  EXPECT_EQ(dce.skipped_by_keyword.at("byte_test:dce"), 1);
}

// ------------------------------------------------------------------ packet keywords

TEST(RulesKeywords, IcmpTypeCodeIdSeq) {
  Engine e(
      "alert icmp any any -> any any (itype:8; sid:1;)\n"
      "alert icmp any any -> any any (itype:>164; sid:2;)\n"
      "alert icmp any any -> any any (itype:8; icode:0; icmp_id:77; icmp_seq:3; sid:3;)\n"
      "alert icmp any any -> any any (icode:1<>4; sid:4;)\n"
      "alert ip any any -> any any (itype:3; sid:5;)\n");
  InspectContext c;
  c.ip_proto = 1;
  c.icmp_type = 8;
  c.icmp_echo = true;
  c.icmp_id = 77;
  c.icmp_seq = 3;
  EXPECT_EQ(e.Sids(c, Pkt("")), (std::vector<uint32_t>{1, 3}));
  c.icmp_seq = 4;
  EXPECT_EQ(e.Sids(c, Pkt("")), (std::vector<uint32_t>{1}));
  c.icmp_type = 165;
  c.icmp_echo = false;
  EXPECT_EQ(e.Sids(c, Pkt("")), (std::vector<uint32_t>{2}));
  c.icmp_type = 3;
  c.icmp_code = 3;
  EXPECT_EQ(e.Sids(c, Pkt("")), (std::vector<uint32_t>{4, 5}));
  InspectContext tcp = Tcp(0);
  EXPECT_TRUE(e.Sids(tcp, Pkt("")).empty()) << "ICMP keywords never match other protocols";
}

TEST(RulesKeywords, TtlFlagsIpProtoSameip) {
  Engine e(
      "alert ip any any -> any any (ttl:<5; sid:1;)\n"
      "alert ip any any -> any any (ttl:64; sid:2;)\n"
      "alert tcp any any -> any any (flags:S; sid:3;)\n"
      "alert tcp any any -> any any (flags:S,12; sid:4;)\n"
      "alert tcp any any -> any any (flags:+A; sid:5;)\n"
      "alert tcp any any -> any any (flags:*FR; sid:6;)\n"
      "alert tcp any any -> any any (flags:!A; sid:7;)\n"
      "alert tcp any any -> any any (flags:0; sid:8;)\n"
      "alert ip any any -> any any (ip_proto:4; sid:9;)\n"
      "alert ip any any -> any any (ip_proto:!6; sid:10;)\n"
      "alert ip any any -> any any (ip_proto:ipip; sid:11;)\n"
      "alert ip any any -> any any (sameip; sid:12;)\n");
  InspectContext c = Tcp(0);
  c.tcp_flags = 0x02;  // SYN
  EXPECT_EQ(e.Sids(c, Pkt("")), (std::vector<uint32_t>{2, 3, 4, 7}));
  c.tcp_flags = 0xC2;  // SYN + CWR + ECE: flags:S exact fails, S,12 ignores them
  EXPECT_EQ(e.Sids(c, Pkt("")), (std::vector<uint32_t>{2, 4, 7}));
  c.tcp_flags = 0x14;  // RST ACK
  c.ttl = 3;
  EXPECT_EQ(e.Sids(c, Pkt("")), (std::vector<uint32_t>{1, 5, 6}));
  c.tcp_flags = 0;
  EXPECT_EQ(e.Sids(c, Pkt("")), (std::vector<uint32_t>{1, 7, 8}));
  InspectContext ipip;
  ipip.ip_proto = 4;
  ipip.ttl = 64;
  ipip.src_addr = ipip.dst_addr = {10, 0, 0, 9};
  EXPECT_EQ(e.Sids(ipip, Pkt("")), (std::vector<uint32_t>{2, 9, 10, 11, 12}));
}

TEST(RulesKeywords, Bsize) {
  Engine e("alert tcp any any -> any any (content:\"ab\"; bsize:<5; sid:1;)\n"
           "alert tcp any any -> any any (content:\"ab\"; bsize:3<>6; sid:2;)\n");
  EXPECT_EQ(e.Sids(Tcp(4), Pkt("abcd")), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(e.Sids(Tcp(6), Pkt("abcdef")), (std::vector<uint32_t>{}));
  EXPECT_EQ(e.Sids(Tcp(3), Pkt("abc")), (std::vector<uint32_t>{1}));
}

TEST(RulesKeywordsParse, PacketKeywordForms) {
  EXPECT_EQ(One("itype:8;", "icmp").itype->op, NumberMatch::Op::kEq);
  EXPECT_EQ(One("itype:<=9;", "icmp").itype->op, NumberMatch::Op::kLe);
  EXPECT_EQ(One("ttl:10-20;", "ip").ttl->op, NumberMatch::Op::kRange);
  EXPECT_EQ(One("ttl:!64;", "ip").ttl->op, NumberMatch::Op::kNe);
  const Rule f = One("flags:*SA,CE;");
  EXPECT_EQ(f.tcp_flags->mode, TcpFlagsMatch::Mode::kAny);
  EXPECT_EQ(f.tcp_flags->flags, 0x12);
  EXPECT_EQ(f.tcp_flags->ignore, 0xC0);
  EXPECT_EQ(One("ip_proto:gre;", "ip").ip_proto->lo, 47u);
  EXPECT_TRUE(One("sameip;", "ip").sameip);
  const std::string h = "alert ip any any -> any any (";
  EXPECT_NE(ErrorOf(h + "itype:256; sid:1;)").find("itype"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "itype:<0; sid:1;)").find("never matches"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "ttl:5<>6; sid:1;)").find("empty"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "itype:8; itype:9; sid:1;)").find("duplicated"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "flags:SX; sid:1;)").find("unknown TCP flag"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "flags:S,S; sid:1;)").find("both tested and ignored"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "flags:0S; sid:1;)").find("can't be combined"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "flags:+*S; sid:1;)").find("one modifier"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "ip_proto:bogus; sid:1;)").find("unknown protocol"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "sameip:1; sid:1;)").find("takes no value"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "icmp_id:70000; sid:1;)").find("icmp_id"), std::string::npos);
}

// ------------------------------------------------------------------ flowbits

TEST(RulesKeywords, FlowbitsAcrossPacketsOfAFlow) {
  Engine e(
      "alert tcp any any -> any any (content:\"USER\"; flowbits:set,login; flowbits:noalert; sid:1;)\n"
      "alert tcp any any -> any any (content:\"PASS\"; flowbits:isset,login; sid:2;)\n"
      "alert tcp any any -> any any (content:\"QUIT\"; flowbits:unset,login; sid:3;)\n"
      "alert tcp any any -> any any (content:\"PASS\"; flowbits:isnotset,login; sid:4;)\n");
  ASSERT_TRUE(e.rules);
  EXPECT_TRUE(e.rules->rules()[0].noalert);
  TestBits bits;
  InspectContext c = Tcp(9);
  c.flowbits = &bits;
  EXPECT_EQ(e.Sids(c, Pkt("PASS x")), (std::vector<uint32_t>{4}));
  EXPECT_EQ(e.Sids(c, Pkt("USER bob")), (std::vector<uint32_t>{1}));
  EXPECT_EQ(e.Sids(c, Pkt("PASS x")), (std::vector<uint32_t>{2}));
  EXPECT_EQ(e.Sids(c, Pkt("QUIT")), (std::vector<uint32_t>{3}));
  EXPECT_EQ(e.Sids(c, Pkt("PASS x")), (std::vector<uint32_t>{4}));
  TestBits other;  // another flow: its own bits
  c.flowbits = &other;
  EXPECT_EQ(e.Sids(c, Pkt("PASS x")), (std::vector<uint32_t>{4}));
  c.flowbits = nullptr;  // no flow: nothing is set, nothing can be set
  EXPECT_EQ(e.Sids(c, Pkt("USER PASS")), (std::vector<uint32_t>{1, 4}));
}

TEST(RulesKeywords, FlowbitSettersRunBeforeCheckersInOnePacket) {
  // The checker comes first in the file; Suricata orders setters first, so the bit
  // set by sid 2 on this very packet is visible to sid 1.
  Engine e(
      "alert tcp any any -> any any (content:\"B\"; flowbits:isset,seen; sid:1;)\n"
      "alert tcp any any -> any any (content:\"A\"; flowbits:set,seen; sid:2;)\n"
      "alert tcp any any -> any any (content:\"C\"; flowbits:isnotset,seen; flowbits:set,other; sid:3;)\n"
      "alert tcp any any -> any any (content:\"A\"; sid:4;)\n");
  TestBits bits;
  InspectContext c = Tcp(3);
  c.flowbits = &bits;
  EXPECT_EQ(e.Sids(c, Pkt("ABC")), (std::vector<uint32_t>{2, 1, 4}));
}

TEST(RulesKeywords, FlowbitsOrAndToggle) {
  Engine e(
      "alert tcp any any -> any any (content:\"1\"; flowbits:set,a; sid:1;)\n"
      "alert tcp any any -> any any (content:\"2\"; flowbits:set,b; sid:2;)\n"
      "alert tcp any any -> any any (content:\"t\"; flowbits:toggle,a; sid:3;)\n"
      "alert tcp any any -> any any (content:\"?\"; flowbits:isset,a|b; sid:10;)\n"
      "alert tcp any any -> any any (content:\"?\"; flowbits:isset,a&b; sid:11;)\n"
      "alert tcp any any -> any any (content:\"?\"; flowbits:isnotset,a|b; sid:12;)\n"
      "alert tcp any any -> any any (content:\"?\"; flowbits:isnotset,a&b; sid:13;)\n");
  TestBits bits;
  InspectContext c = Tcp(1);
  c.flowbits = &bits;
  EXPECT_EQ(e.Sids(c, Pkt("?")), (std::vector<uint32_t>{12, 13}));
  e.Sids(c, Pkt("1"));
  EXPECT_EQ(e.Sids(c, Pkt("?")), (std::vector<uint32_t>{10, 12}));
  e.Sids(c, Pkt("2"));
  EXPECT_EQ(e.Sids(c, Pkt("?")), (std::vector<uint32_t>{10, 11}));
  e.Sids(c, Pkt("t"));  // a off
  EXPECT_EQ(e.Sids(c, Pkt("?")), (std::vector<uint32_t>{10, 12}));
  e.Sids(c, Pkt("t"));  // a on again
  EXPECT_EQ(e.Sids(c, Pkt("?")), (std::vector<uint32_t>{10, 11}));
}

// wardgate's own option: the control thread quarantines the device the rule matched.
TEST(RulesKeywordsParse, QuarantineOption) {
  EXPECT_EQ(One("quarantine:isolate;").quarantine, Rule::Quarantine::kIsolate);
  EXPECT_EQ(One("quarantine:Contain;").quarantine, Rule::Quarantine::kContain);
  EXPECT_EQ(One("content:\"x\";").quarantine, Rule::Quarantine::kNone);
  const std::string h = "alert tcp any any -> any any (";
  EXPECT_NE(ErrorOf(h + "quarantine:lockdown; sid:1;)").find("isolate or contain"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "quarantine:isolate; quarantine:contain; sid:1;)").find("quarantine"), std::string::npos);
}

TEST(RulesKeywordsParse, FlowbitsForms) {
  const Rule r = One("flowbits:isset,a|b.c-d_e; flowbits:set,x&y; flowbits:noalert;");
  ASSERT_EQ(r.flowbits.size(), 2u);
  EXPECT_TRUE(r.flowbits[0].any);
  EXPECT_EQ(r.flowbits[0].names, (std::vector<std::string>{"a", "b.c-d_e"}));
  EXPECT_FALSE(r.flowbits[1].any);
  EXPECT_EQ(r.flowbits[1].names.size(), 2u);
  EXPECT_TRUE(r.noalert);
  const std::string h = "alert tcp any any -> any any (";
  EXPECT_NE(ErrorOf(h + "flowbits:frob,a; sid:1;)").find("unknown operation"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "flowbits:set; sid:1;)").find("needs one name"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "flowbits:set,a|b; sid:1;)").find("only for isset"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "flowbits:isset,a|b&c; sid:1;)").find("can't mix"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "flowbits:set,a b; sid:1;)").find("invalid character"), std::string::npos);
  EXPECT_NE(ErrorOf(h + "flowbits:noalert,x; sid:1;)").find("takes no name"), std::string::npos);
}

TEST(RulesKeywords, FlowbitNumbersAreStableAcrossCompiles) {
  const int a = FlowbitRegistry::Bit("stable.a");
  Engine e1("alert tcp any any -> any any (content:\"x\"; flowbits:set,stable.b; sid:1;)\n");
  Engine e2("alert tcp any any -> any any (content:\"x\"; flowbits:isset,stable.b; sid:1;)\n");
  EXPECT_EQ(FlowbitRegistry::Bit("stable.a"), a);
  TestBits bits;
  InspectContext c = Tcp(1);
  c.flowbits = &bits;
  e1.Sids(c, Pkt("x"));
  EXPECT_EQ(e2.Sids(c, Pkt("x")), (std::vector<uint32_t>{1})) << "a bit set under one rule set is seen by the next";
}

// ------------------------------------------------------------------ rules without a literal

// Rules with no prefilter pattern are found by their narrowest key (a short address
// list, else destination ports, else a wide address list) instead of being checked
// on every packet: they fire exactly where their headers allow, and are not even
// candidates elsewhere.
TEST(RulesKeywords, RulesWithoutALiteralAreKeyedByAddressOrPort) {
  Engine e(
      "alert ip [198.51.100.7,203.0.113.0/24,2001:db8::1] any -> $HOME_NET any (sid:1;)\n"
      "alert ip $HOME_NET any -> [198.51.100.9] any (sid:2;)\n"
      "alert tcp $HOME_NET any -> any 445 (flags:S; sid:3;)\n"
      "alert ip [198.51.100.50] any <> $HOME_NET any (sid:4;)\n"
      "alert tcp any any -> any any (flags:F; sid:5;)\n");
  ASSERT_TRUE(e.rules);
  EXPECT_EQ(e.rules->stats().address_indexed, 3u);
  EXPECT_EQ(e.rules->stats().port_indexed, 1u);
  EXPECT_EQ(e.rules->stats().always_candidates, 1u);
  auto run = [&](std::array<uint8_t, 16> src, std::array<uint8_t, 16> dst, uint16_t dport, uint8_t flags,
                 bool v6 = false) {
    InspectContext c = Tcp(0);
    c.src_addr = src;
    c.dst_addr = dst;
    c.v6 = v6;
    c.dst_port = dport;
    c.tcp_flags = flags;
    return e.Sids(c, Pkt(""));
  };
  const std::array<uint8_t, 16> home{10, 0, 0, 5}, listed{198, 51, 100, 7}, in24{203, 0, 113, 99},
      other{198, 51, 100, 8}, out2{198, 51, 100, 9}, both{198, 51, 100, 50};
  EXPECT_EQ(run(listed, home, 80, 0x10), (std::vector<uint32_t>{1}));
  EXPECT_EQ(run(in24, home, 80, 0x10), (std::vector<uint32_t>{1}));
  EXPECT_EQ(run(home, out2, 80, 0x10), (std::vector<uint32_t>{2}));
  EXPECT_EQ(run(home, other, 445, 0x02), (std::vector<uint32_t>{3}));
  EXPECT_EQ(run(both, home, 80, 0x10), (std::vector<uint32_t>{4}));
  EXPECT_EQ(run(home, both, 80, 0x10), (std::vector<uint32_t>{4})) << "<> matches the swapped direction";
  std::array<uint8_t, 16> v6src{0x20, 0x01, 0x0d, 0xb8};
  v6src[15] = 1;
  std::array<uint8_t, 16> v6home{0xfd, 0x77};
  EXPECT_TRUE(run(v6src, v6home, 80, 0x10, true).empty()) << "fd77:: is not in the default $HOME_NET";
  // Only sid 5 (no key at all) is a candidate for an unrelated packet.
  const uint64_t before = e.scratch->counters().candidates;
  EXPECT_TRUE(run(home, other, 80, 0x10).empty());
  EXPECT_EQ(e.scratch->counters().candidates - before, 1u);
}

// ------------------------------------------------------------------ disabled rules

TEST(RulesKeywordsParse, CommentedOutRulesAreDisabledRules) {
  const RuleSet rs = Parse(
      "# A comment about the rules below\n"
      "alert tcp any any -> any any (content:\"a\"; sid:1;)\n"
      "# alert tcp any any -> any any (content:\"b\"; sid:2;)\n"
      "#drop udp any any -> any any (content:\"c\"; sid:3;)\n"
      "# alert tcp any any -> any any (unknown_keyword; sid:4;)\n"
      "#alert tcp any any -> any any (content:\"dup\"; sid:1;)\n"
      "#  alerting is described in the docs (not a rule)\n");
  EXPECT_TRUE(rs.errors.empty()) << Errors(rs);
  ASSERT_EQ(rs.rules.size(), 1u);
  ASSERT_EQ(rs.disabled.size(), 3u);
  EXPECT_EQ(rs.disabled[0].sid, 2u);
  EXPECT_EQ(rs.disabled[0].line, 3);
  EXPECT_EQ(rs.disabled[1].header.action, Action::kDrop);
  EXPECT_EQ(rs.disabled[2].sid, 1u) << "a disabled copy of a live sid is kept, not an error";
  EXPECT_EQ(rs.disabled_unparsed, 1);
  EXPECT_EQ(rs.rules_seen, 1);
}

}  // namespace
}  // namespace wardgate::rules
