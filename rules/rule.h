// The rule language's data model: a Suricata-dialect signature after parsing and
// validation, as plain structs. Produced by rules/parser (ParseRules), consumed by the
// matcher compiler (rules/matcher) in both wardgate-dp and wardctl. No DPDK here.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace wardgate::rules {

enum class Action : uint8_t { kAlert, kDrop, kReject, kPass };
// tcp-pkt: packet payload only; tcp-stream: reassembled stream only; tcp: both
// (Suricata inspects the stream, and packets not covered by it).
enum class Protocol : uint8_t { kIp, kTcp, kUdp, kIcmp, kTcpPkt, kTcpStream };

// One IPv4 or IPv6 prefix. Addresses are 16 bytes in network order, IPv4 in the
// first 4 bytes (as in parse::PacketView).
struct Cidr {
  bool v6 = false;
  std::array<uint8_t, 16> addr{};
  uint8_t prefix_len = 0;  // 0..32 or 0..128
};

// An address field after variable expansion: matches if (any or in include) and not
// in exclude. `[10.0.0.0/8, !10.1.0.0/16]`, `!$HOME_NET`, `any`.
struct AddressSet {
  bool any = true;
  std::vector<Cidr> include;
  std::vector<Cidr> exclude;
  bool Matches(const std::array<uint8_t, 16>& addr, bool v6) const;
};

struct PortRange {
  uint16_t lo = 0, hi = 65535;
};
// `any`, `80`, `[80,443]`, `1024:`, `!22`, `[1:1023,!80]`.
struct PortSet {
  bool any = true;
  std::vector<PortRange> include;
  std::vector<PortRange> exclude;
  bool Matches(uint16_t port) const;
};

struct Header {
  Action action = Action::kAlert;
  Protocol protocol = Protocol::kIp;
  AddressSet src;
  PortSet src_ports;
  bool bidirectional = false;  // `<>`: also matches with src/dst swapped
  AddressSet dst;
  PortSet dst_ports;
};

// One `content` with its modifiers, in Suricata's semantics. Offsets are bytes;
// `depth`/`offset` are absolute from the buffer start, `distance`/`within` relative
// to the end of the previous match in the chain.
struct Content {
  std::string bytes;  // decoded (|hex| and escapes resolved)
  bool negated = false;
  bool nocase = false;
  std::optional<int32_t> offset, depth, distance, within;
  bool startswith = false;    // anchored at 0 (Suricata: offset 0, depth = len)
  bool endswith = false;      // must end at the buffer's end
  bool fast_pattern = false;  // explicitly chosen as the prefilter literal
  bool Relative() const { return distance.has_value() || within.has_value(); }
};

// `pcre:"/.../flags"` with PCRE2 semantics. Modifier letters kept as given
// (i s m x A E G R U B O etc.); `relative` is /R.
struct Pcre {
  std::string pattern;
  std::string flags;
  bool negated = false;
  bool relative = false;
};

// `isdataat:[!]N[,relative]`
struct IsDataAt {
  int32_t position = 0;
  bool relative = false;
  bool negated = false;
};

// A number read from the buffer by byte_test/byte_jump/byte_extract: `bytes` bytes
// (1..10 as text with `string`, 1, 2, 3, 4 or 8 binary) at `offset` (from the buffer
// start, or from the previous match end with `relative`).
struct ByteRead {
  uint8_t bytes = 1;
  int32_t offset = 0;
  int8_t offset_var = -1;  // byte_extract variable index for the offset, -1: the number
  bool relative = false;
  bool little_endian = false;
  enum class Base : uint8_t { kBinary, kDec, kHex, kOct } base = Base::kBinary;  // `string,<base>`
  uint64_t bitmask = 0;    // `bitmask 0x..`: AND, then shift right by its trailing zeros; 0: none
};

// `byte_test:bytes,[!]op,value,offset[,relative][,endian][,string,base][,dce][,bitmask m]`
struct ByteTest {
  ByteRead read;
  enum class Op : uint8_t { kLt, kGt, kLe, kGe, kEq, kAnd, kOr } op = Op::kEq;  // kAnd '&', kOr '^'
  bool negated = false;
  uint64_t value = 0;
  int8_t value_var = -1;   // byte_extract variable for the value, -1: `value`
};

// `byte_jump:bytes,offset[,relative][,multiplier m][,endian][,string,base][,align]
//  [,from_beginning|from_end][,post_offset n][,bitmask m]`: moves the match position.
struct ByteJump {
  ByteRead read;
  uint32_t multiplier = 1;
  bool align = false;            // round up to a multiple of 4
  bool from_beginning = false;   // jump from the buffer start (else from after the bytes read)
  bool from_end = false;         // jump from the buffer end
  int32_t post_offset = 0;
};

// `byte_extract:bytes,offset,name[,relative][,multiplier m][,endian][,string,base]
//  [,align a][,bitmask m]`: stores the number in a rule-local variable usable as
// content offset/depth/distance/within and as byte_test value / byte_jump offset.
struct ByteExtract {
  ByteRead read;
  uint8_t var = 0;              // index into Rule::byte_vars
  uint32_t multiplier = 1;
  uint8_t align = 0;            // 0, 2 or 4
};

// One step of the payload detection chain, in rule order (relative modifiers refer
// to the step before).
struct Detect {
  enum class Kind : uint8_t { kContent, kPcre, kIsDataAt, kByteTest, kByteJump, kByteExtract } kind = Kind::kContent;
  Content content;
  Pcre pcre;
  IsDataAt isdataat;
  ByteTest byte_test;
  ByteJump byte_jump;
  ByteExtract byte_extract;
  // content only: byte_extract variables given instead of numbers (-1: the number)
  int8_t offset_var = -1, depth_var = -1, distance_var = -1, within_var = -1;
};

// `dsize:N`, `dsize:<N`, `dsize:>N`, `dsize:N<>M`, `dsize:!N`.
struct Dsize {
  enum class Op : uint8_t { kEq, kLt, kGt, kRange, kNe } op = Op::kEq;
  uint16_t lo = 0, hi = 0;  // kRange: lo < dsize < hi (Suricata: exclusive)
};

// A number comparison: `N`, `<N`, `>N`, `<=N`, `>=N`, `!N`, `N-M` / `N<>M` (exclusive
// range, Suricata's), for itype, icode, ttl, bsize.
struct NumberMatch {
  enum class Op : uint8_t { kEq, kLt, kGt, kLe, kGe, kNe, kRange } op = Op::kEq;
  uint32_t lo = 0, hi = 0;
  bool Matches(uint32_t v) const;
};

// `flags:[modifier]FLAGS[,IGNORED]` on the TCP flags byte (F S R P A U C E; 0 none):
// exact by default; `+` all of them set (others may be), `*` any of them, `!` none.
struct TcpFlagsMatch {
  enum class Mode : uint8_t { kExact, kAll, kAny, kNot } mode = Mode::kExact;
  uint8_t flags = 0;
  uint8_t ignore = 0;  // bits masked off before comparing
  bool Matches(uint8_t tcp_flags) const;
};

// `flowbits:` one operation; `names` with `|` (any) or `&` (all) when several.
struct Flowbits {
  enum class Op : uint8_t { kSet, kIsSet, kIsNotSet, kUnset, kToggle } op = Op::kSet;
  std::vector<std::string> names;
  bool any = false;  // `a|b`: isset true if any is set, isnotset true if any is not set
};

// `threshold:` and `detection_filter:` (which has no type: it behaves as "fire on
// every hit after the first `count` in `seconds`").
struct Threshold {
  enum class Type : uint8_t { kLimit, kThreshold, kBoth } type = Type::kThreshold;
  enum class Track : uint8_t { kBySrc, kByDst, kByRule, kByBoth, kByFlow } track = Track::kBySrc;
  uint32_t count = 1;
  uint32_t seconds = 60;
};

// `flow:` options.
struct FlowOption {
  bool to_server = false;     // also from_client
  bool to_client = false;     // also from_server
  bool established = false;
  bool not_established = false;
  bool stateless = false;
  bool only_stream = false;
  bool no_stream = false;
};

struct Reference {
  std::string system, id;
};

struct Rule {
  Header header;
  uint32_t sid = 0;
  uint32_t gid = 1;
  uint32_t rev = 0;
  std::string msg;
  std::string classtype;
  std::string category;  // the classtype's description (EVE alert.category), "" if none
  int priority = 3;  // from `priority`, else the classtype's, else 3
  std::vector<Reference> references;
  std::vector<std::pair<std::string, std::string>> metadata;  // key, value
  std::vector<Detect> detects;  // payload chain, in order
  std::optional<Dsize> dsize;
  std::optional<FlowOption> flow;
  // Header-like packet checks.
  std::optional<NumberMatch> itype, icode, ttl, bsize;
  std::optional<uint16_t> icmp_id, icmp_seq;
  std::optional<TcpFlagsMatch> tcp_flags;
  std::optional<NumberMatch> ip_proto;  // `ip_proto:[!<>]N|name` (kEq, kNe, kLt, kGt)
  bool sameip = false;
  // State across packets.
  std::vector<Flowbits> flowbits;       // in rule order; checks run before the chain, set/unset/toggle after a match
  bool noalert = false;                 // flowbits:noalert: the rule's actions apply, no alert is logged
  std::optional<Threshold> threshold;
  std::optional<Threshold> detection_filter;
  std::vector<std::string> byte_vars;   // byte_extract names, by ByteExtract::var
  // wardgate's `quarantine:isolate|contain;`: when the rule fires, the control thread
  // quarantines the device end of the packet (the device class may cap the level).
  enum class Quarantine : uint8_t { kNone = 0, kIsolate, kContain } quarantine = Quarantine::kNone;
  // Where the rule was written, for messages.
  std::string file;
  int line = 0;
};

// A problem with one rule: "file:line: sid N: keyword: message".
struct LoadError {
  std::string file;
  int line = 0;
  uint32_t sid = 0;      // 0 when not known yet
  std::string keyword;   // the option or header field at fault
  std::string message;
  std::string ToString() const;
};

struct LoadOptions {
  // Unsupported keywords: error by default; lenient skips such rules and counts them.
  bool lenient = false;
  // Address and port variables, without the `$`: HOME_NET -> "[10.0.0.0/8,...]".
  // Defaults as in Suricata when absent: HOME_NET the private ranges, EXTERNAL_NET
  // !$HOME_NET, *_SERVERS $HOME_NET, ports `any` (HTTP_PORTS 80).
  std::map<std::string, std::string> variables;
  // Classtypes: name -> (description, priority); defaults to Suricata's
  // classification.config table when empty.
  std::map<std::string, std::pair<std::string, int>> classtypes;
};

struct RuleSet {
  std::vector<Rule> rules;
  // Rules commented out in the file (`# alert ...` that parses): published but
  // disabled, as suricata-update treats them; local overrides may enable them.
  std::vector<Rule> disabled;
  int disabled_unparsed = 0;                      // commented-out rule lines that do not parse (ignored)
  std::vector<LoadError> errors;                  // rules refused (and why)
  std::map<std::string, int> skipped_by_keyword;  // lenient mode: unsupported keyword -> rules skipped
  int rules_seen = 0;                             // rule lines read (not comments/blank)
};

// Parses rule text (one rule per line, `\` continuations, `#` comments). Never
// throws on bad input: every problem becomes a LoadError naming file, line, sid and
// keyword. A rule with any error is not in `rules`.
RuleSet ParseRules(const std::string& text, const std::string& file, const LoadOptions& options);

// Suricata's default action order: pass, drop, reject, alert (lower applies first).
int ActionOrder(Action a);
const char* ActionName(Action a);  // "alert", "drop", "reject", "pass"

}  // namespace wardgate::rules
