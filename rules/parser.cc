// The Suricata-dialect rule parser: rule text -> RuleSet (data model in rule.h).
//
// Each logical rule (physical lines joined by trailing `\`) is parsed on its own. A
// problem is raised as an internal Problem and caught per rule, so ParseRules never
// throws. Parsing stops at the first problem of a rule, in rule order: header fields
// left to right, then options left to right, then the checks on the whole rule.
//
// Lenient mode: a rule whose first problem is an unsupported keyword (or an
// app-layer protocol, counted as "protocol:<name>", or an unsupported flow option,
// "flow:<option>") is skipped and counted once, under that first unsupported item,
// in skipped_by_keyword; it is not an error. Every other problem is an error in both
// modes.
//
// Keywords named by LoadError: "rule" (structure: parentheses, length, option
// syntax), "action", "protocol", "src", "src_port", "direction", "dst", "dst_port",
// "variable" (undefined, cyclic or malformed $VAR), then the option keyword at fault.
//
// What the Rule structs mean (Suricata's semantics, which the matcher implements):
// - Content values are kept as written. `depth` counts from `offset`: a match lies in
//   [offset, offset + depth). `within` counts from the relative start: a match starts
//   at or after prev_end + distance (clamped at 0) and ends at or before
//   prev_end + distance + within. prev_end is the end of the most recent content or
//   pcre match in the chain; an isdataat step does not move it.
// - A relative first step (distance >= 0) is anchored as Suricata does it: distance
//   becomes offset, within becomes depth. A first step with a negative distance stays
//   relative (prev_end = 0).
// - `isdataat:!1,relative` right after a content becomes endswith on that content.
// - startswith is only the flag (no depth/offset is filled in); nocase keeps the bytes
//   as written. fast_pattern:only and fast_pattern:N,M both set just fast_pattern.
// - pcre patterns keep their escapes (\; \" are literals to PCRE2); flags are kept as
//   written, including Suricata's HTTP-buffer letters (U I P Q H D M C K S Y V W Z).
// - Address lists follow Suricata's parity rule: elements under an odd number of `!`
//   go to exclude, the others to include (empty include = any). Ranges a-b become
//   prefixes.
// - icmpv4 and icmpv6 both become kIcmp.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <set>
#include <string_view>
#include <utility>

#include "rules/rule.h"
#include "rules/text.h"
#include "rules/threshold.h"

namespace wardgate::rules {
namespace {

constexpr size_t kMaxRuleBytes = 64 * 1024;  // one logical rule, continuations joined
constexpr int kMaxNesting = 32;              // brackets, `!` and $VAR references together
constexpr size_t kMaxListElements = 65536;   // address/port elements after expansion
constexpr int64_t kMaxOffset = 65535;        // depth, offset, isdataat (Suricata: uint16)
constexpr int64_t kMaxRelative = 1024 * 1024;  // |distance|, within (Suricata's limit)
constexpr size_t kMaxByteVars = 8;             // byte_extract variables per rule

// A problem with the rule being parsed. Thrown inside, caught per rule.
struct Problem {
  std::string keyword;
  std::string message;
  bool unsupported = false;  // lenient mode skips the rule and counts skip_key
  std::string skip_key;
};

[[noreturn]] void Fail(std::string keyword, std::string message) {
  throw Problem{std::move(keyword), std::move(message), false, {}};
}

[[noreturn]] void Unsupported(std::string keyword, std::string skip_key, std::string message) {
  throw Problem{std::move(keyword), std::move(message), true, std::move(skip_key)};
}

using text::IsAlpha;
using text::IsBlank;
using text::IsDigit;
using text::Lower;
using text::Quote;
using text::ToLower;
using text::Trim;

// Decimal integer in [lo, hi]; a leading '-' only when lo < 0. Nothing else allowed
// but surrounding blanks.
bool ParseInt(std::string_view s, int64_t lo, int64_t hi, int64_t* out) {
  s = Trim(s);
  bool neg = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    neg = s.front() == '-';
    if (neg && lo >= 0) return false;
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 12) return false;
  int64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    v = v * 10 + (c - '0');
  }
  if (neg) v = -v;
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

int64_t IntOrFail(std::string_view s, int64_t lo, int64_t hi, const char* keyword) {
  int64_t v = 0;
  if (!ParseInt(s, lo, hi, &v)) {
    Fail(keyword, "invalid value " + Quote(Trim(s)) + " (expected an integer in [" +
                      std::to_string(lo) + ", " + std::to_string(hi) + "])");
  }
  return v;
}

// Splits `s` at commas outside brackets.
std::vector<std::string_view> SplitTopLevel(std::string_view s) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') {
      ++depth;
    } else if (s[i] == ']') {
      --depth;
    } else if (s[i] == ',' && depth == 0) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(s.substr(start));
  return out;
}

// Index of the ']' closing the '[' at s[0], or npos.
size_t MatchingBracket(std::string_view s) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') {
      ++depth;
    } else if (s[i] == ']') {
      if (--depth == 0) return i;
    }
  }
  return std::string_view::npos;
}

bool ValidVarName(std::string_view n) {
  if (n.empty() || n.size() > 128) return false;
  for (char c : n) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------
// Defaults

const std::map<std::string, std::string>& DefaultVariables() {
  static const std::map<std::string, std::string> vars = [] {
    std::map<std::string, std::string> v;
    v["HOME_NET"] = "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]";
    v["EXTERNAL_NET"] = "!$HOME_NET";
    for (const char* name :
         {"HTTP_SERVERS", "SMTP_SERVERS", "SQL_SERVERS", "DNS_SERVERS", "TELNET_SERVERS",
          "AIM_SERVERS", "DC_SERVERS", "DNP3_SERVER", "DNP3_CLIENT", "MODBUS_CLIENT",
          "MODBUS_SERVER", "ENIP_CLIENT", "ENIP_SERVER"}) {
      v[name] = "$HOME_NET";
    }
    v["HTTP_PORTS"] = "80";
    v["SHELLCODE_PORTS"] = "!80";
    v["ORACLE_PORTS"] = "1521";
    v["SSH_PORTS"] = "22";
    v["DNP3_PORTS"] = "20000";
    v["MODBUS_PORTS"] = "502";
    v["FILE_DATA_PORTS"] = "[$HTTP_PORTS,110,143]";
    v["FTP_PORTS"] = "21";
    v["GENEVE_PORTS"] = "6081";
    v["VXLAN_PORTS"] = "4789";
    v["TEREDO_PORTS"] = "3544";
    return v;
  }();
  return vars;
}

// Suricata's classification.config.
const std::map<std::string, std::pair<std::string, int>>& DefaultClasstypes() {
  static const std::map<std::string, std::pair<std::string, int>> table = {
      {"not-suspicious", {"Not Suspicious Traffic", 3}},
      {"unknown", {"Unknown Traffic", 3}},
      {"bad-unknown", {"Potentially Bad Traffic", 2}},
      {"attempted-recon", {"Attempted Information Leak", 2}},
      {"successful-recon-limited", {"Information Leak", 2}},
      {"successful-recon-largescale", {"Large Scale Information Leak", 2}},
      {"attempted-dos", {"Attempted Denial of Service", 2}},
      {"successful-dos", {"Denial of Service", 2}},
      {"attempted-user", {"Attempted User Privilege Gain", 1}},
      {"unsuccessful-user", {"Unsuccessful User Privilege Gain", 1}},
      {"successful-user", {"Successful User Privilege Gain", 1}},
      {"attempted-admin", {"Attempted Administrator Privilege Gain", 1}},
      {"successful-admin", {"Successful Administrator Privilege Gain", 1}},
      {"rpc-portmap-decode", {"Decode of an RPC Query", 2}},
      {"shellcode-detect", {"Executable code was detected", 1}},
      {"string-detect", {"A suspicious string was detected", 3}},
      {"suspicious-filename-detect", {"A suspicious filename was detected", 2}},
      {"suspicious-login", {"An attempted login using a suspicious username was detected", 2}},
      {"system-call-detect", {"A system call was detected", 2}},
      {"tcp-connection", {"A TCP connection was detected", 4}},
      {"trojan-activity", {"A Network Trojan was detected", 1}},
      {"unusual-client-port-connection", {"A client was using an unusual port", 2}},
      {"network-scan", {"Detection of a Network Scan", 3}},
      {"denial-of-service", {"Detection of a Denial of Service Attack", 2}},
      {"non-standard-protocol", {"Detection of a non-standard protocol or event", 2}},
      {"protocol-command-decode", {"Generic Protocol Command Decode", 3}},
      {"web-application-activity", {"access to a potentially vulnerable web application", 2}},
      {"web-application-attack", {"Web Application Attack", 1}},
      {"misc-activity", {"Misc activity", 3}},
      {"misc-attack", {"Misc Attack", 2}},
      {"icmp-event", {"Generic ICMP event", 3}},
      {"inappropriate-content", {"Inappropriate Content was Detected", 1}},
      {"policy-violation", {"Potential Corporate Privacy Violation", 1}},
      {"default-login-attempt", {"Attempt to login by a default username and password", 2}},
      {"targeted-activity", {"Targeted Malicious Activity was Detected", 1}},
      {"exploit-kit", {"Exploit Kit Activity Detected", 1}},
      {"external-ip-check", {"Device Retrieving External IP Address Detected", 2}},
      {"domain-c2", {"Domain Observed Used for C2 Detected", 1}},
      {"pup-activity", {"Possibly Unwanted Program Detected", 2}},
      {"credential-theft", {"Successful Credential Theft Detected", 1}},
      {"social-engineering", {"Possible Social Engineering Attempted", 2}},
      {"coin-mining", {"Crypto Currency Mining Activity Detected", 2}},
      {"command-and-control", {"Malware Command and Control Activity Detected", 1}},
  };
  return table;
}

// Suricata protocols (app-layer and others) that this engine does not inspect.
bool KnownUnsupportedProtocol(const std::string& p) {
  static const std::set<std::string> names = {
      "http", "http1", "http2", "dns", "tls", "ssl", "smb", "ftp", "ftp-data", "ssh",
      "smtp", "imap", "pop3", "dcerpc", "dhcp", "nfs", "ntp", "tftp", "krb5", "ike",
      "ikev2", "snmp", "sip", "rfb", "mqtt", "rdp", "quic", "bittorrent-dht", "telnet",
      "pgsql", "websocket", "ldap", "doh2", "mdns", "modbus", "dnp3", "enip", "cip",
      "irc", "jabber", "msn", "template", "sctp", "pkthdr", "ipv4", "ip4", "ipv6", "ip6",
      "ether", "arp", "udp-pkt", "dnstcp", "dnsudp", "pop", "nntp", "llmnr", "netbios",
      "n2n", "failed", "frame",
  };
  return names.count(p) != 0;
}

// ---------------------------------------------------------------------------------
// Addresses

bool CidrContains(const Cidr& c, const std::array<uint8_t, 16>& a, bool v6) {
  if (c.v6 != v6) return false;
  const int bytes = c.prefix_len / 8;
  const int bits = c.prefix_len % 8;
  if (std::memcmp(c.addr.data(), a.data(), static_cast<size_t>(bytes)) != 0) return false;
  if (bits == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (c.addr[bytes] & mask) == (a[bytes] & mask);
}

// `outer` contains every address of `inner`.
bool CidrCovers(const Cidr& outer, const Cidr& inner) {
  return outer.v6 == inner.v6 && outer.prefix_len <= inner.prefix_len &&
         CidrContains(outer, inner.addr, inner.v6);
}

using U128 = unsigned __int128;

U128 AddrToInt(const std::array<uint8_t, 16>& a, bool v6) {
  U128 v = 0;
  for (int i = 0; i < (v6 ? 16 : 4); ++i) v = (v << 8) | a[static_cast<size_t>(i)];
  return v;
}

Cidr IntToCidr(U128 v, bool v6, int prefix) {
  Cidr c;
  c.v6 = v6;
  c.prefix_len = static_cast<uint8_t>(prefix);
  const int n = v6 ? 16 : 4;
  for (int i = n - 1; i >= 0; --i) {
    c.addr[static_cast<size_t>(i)] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  return c;
}

// The fewest prefixes covering [lo, hi].
void RangeToCidrs(U128 lo, U128 hi, bool v6, std::vector<Cidr>* out) {
  const int width = v6 ? 128 : 32;
  for (;;) {
    int k = 0;  // block of 2^k addresses starting at lo
    while (k < width) {
      const int next = k + 1;
      const U128 span_minus_1 = next >= 128 ? ~U128{0} : ((U128{1} << next) - 1);
      if ((lo & span_minus_1) != 0 || hi - lo < span_minus_1) break;
      k = next;
    }
    out->push_back(IntToCidr(lo, v6, width - k));
    const U128 size_minus_1 = k >= 128 ? ~U128{0} : ((U128{1} << k) - 1);
    if (hi - lo == size_minus_1) return;
    lo += size_minus_1 + 1;
  }
}

bool ParseIp(std::string_view s, bool v6, std::array<uint8_t, 16>* out) {
  if (s.empty() || s.size() > 64) return false;
  const std::string z(s);
  out->fill(0);
  return inet_pton(v6 ? AF_INET6 : AF_INET, z.c_str(), out->data()) == 1;
}

// A contiguous IPv4 netmask (255.255.255.0) as a prefix length, or -1.
int MaskToPrefix(const std::array<uint8_t, 16>& m) {
  const uint32_t v = static_cast<uint32_t>(AddrToInt(m, false));
  int prefix = 0;
  while (prefix < 32 && (v & (0x80000000u >> prefix)) != 0) ++prefix;
  const uint32_t expect = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return v == expect ? prefix : -1;
}

// One address literal: a.b.c.d, a.b.c.d/n, a.b.c.d/m.m.m.m, v6, v6/n, lo-hi.
// Empty on failure.
std::vector<Cidr> ParseAddressLiteral(std::string_view s) {
  std::vector<Cidr> out;
  const bool v6 = s.find(':') != std::string_view::npos;
  if (const size_t dash = s.find('-'); dash != std::string_view::npos) {
    std::array<uint8_t, 16> a{}, b{};
    if (!ParseIp(Trim(s.substr(0, dash)), v6, &a) || !ParseIp(Trim(s.substr(dash + 1)), v6, &b)) {
      return out;
    }
    const U128 lo = AddrToInt(a, v6), hi = AddrToInt(b, v6);
    if (lo > hi) return out;
    RangeToCidrs(lo, hi, v6, &out);
    return out;
  }
  Cidr c;
  c.v6 = v6;
  const size_t slash = s.find('/');
  if (!ParseIp(s.substr(0, slash), v6, &c.addr)) return out;
  int prefix = v6 ? 128 : 32;
  if (slash != std::string_view::npos) {
    const std::string_view p = s.substr(slash + 1);
    int64_t n = 0;
    if (!v6 && p.find('.') != std::string_view::npos) {
      std::array<uint8_t, 16> m{};
      if (!ParseIp(p, false, &m) || (prefix = MaskToPrefix(m)) < 0) return out;
    } else if (!p.empty() && std::all_of(p.begin(), p.end(), IsDigit) &&
               ParseInt(p, 0, v6 ? 128 : 32, &n)) {
      prefix = static_cast<int>(n);
    } else {
      return out;
    }
  }
  c.prefix_len = static_cast<uint8_t>(prefix);
  for (int i = 0; i < 16; ++i) {  // clear host bits, as Suricata does
    const int keep = std::clamp(prefix - i * 8, 0, 8);
    c.addr[static_cast<size_t>(i)] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  out.push_back(c);
  return out;
}

// Shared by address and port expansion: where we are, for messages and limits.
struct ExpandContext {
  const std::map<std::string, std::string>* vars = nullptr;
  const char* field = "";           // "src", "dst_port", ...
  std::vector<std::string> stack;   // variables being expanded (cycle detection)
  size_t elements = 0;

  [[noreturn]] void Error(const std::string& message) const {
    if (stack.empty()) Fail(field, message);
    Fail("variable", "$" + stack.back() + " (in " + field + "): " + message);
  }
  void Count() {
    if (++elements > kMaxListElements) Error("more than 65536 elements after expansion");
  }
  // Resolves $NAME and pushes it; the caller pops.
  std::string_view Enter(std::string_view name) {
    if (!ValidVarName(name)) Error("invalid variable name " + Quote(name));
    const std::string n(name);
    const auto it = vars->find(n);
    if (it == vars->end()) Fail("variable", "undefined variable $" + n + " (in " + field + ")");
    if (std::find(stack.begin(), stack.end(), n) != stack.end()) {
      std::string path;
      for (const std::string& s : stack) path += "$" + s + " -> ";
      Fail("variable", "variable cycle: " + path + "$" + n);
    }
    stack.push_back(n);
    return it->second;
  }
};

struct AddressAcc {
  bool any = false;
  std::vector<Cidr> include, exclude;
};

void ExpandAddress(std::string_view s, bool neg, int depth, ExpandContext& ctx, AddressAcc& acc) {
  s = Trim(s);
  if (depth > kMaxNesting) ctx.Error("nesting deeper than 32");
  if (s.empty()) ctx.Error("empty address");
  ctx.Count();
  if (s.front() == '!') {
    ExpandAddress(s.substr(1), !neg, depth + 1, ctx, acc);
  } else if (s.front() == '[') {
    const size_t close = MatchingBracket(s);
    if (close == std::string_view::npos) ctx.Error("unbalanced '[' in " + Quote(s));
    if (close != s.size() - 1) ctx.Error("unexpected text after ']' in " + Quote(s));
    for (std::string_view e : SplitTopLevel(s.substr(1, close - 1))) {
      ExpandAddress(e, neg, depth + 1, ctx, acc);
    }
  } else if (s.front() == '$') {
    const std::string_view value = ctx.Enter(s.substr(1));
    ExpandAddress(value, neg, depth + 1, ctx, acc);
    ctx.stack.pop_back();
  } else if (Lower(s) == "any") {
    if (neg) ctx.Error("'!any' matches nothing");
    acc.any = true;
  } else {
    const std::vector<Cidr> cidrs = ParseAddressLiteral(s);
    if (cidrs.empty()) ctx.Error("invalid address " + Quote(s));
    for (const Cidr& c : cidrs) {
      ctx.Count();
      (neg ? acc.exclude : acc.include).push_back(c);
    }
  }
}

AddressSet ParseAddressField(std::string_view s, const char* field,
                             const std::map<std::string, std::string>& vars) {
  ExpandContext ctx;
  ctx.vars = &vars;
  ctx.field = field;
  AddressAcc acc;
  ExpandAddress(s, false, 0, ctx, acc);
  AddressSet set;
  set.any = acc.any || acc.include.empty();
  if (!set.any) set.include = std::move(acc.include);
  set.exclude = std::move(acc.exclude);
  if (set.any) {
    bool v4_all = false, v6_all = false;
    for (const Cidr& c : set.exclude) {
      if (c.prefix_len == 0) (c.v6 ? v6_all : v4_all) = true;
    }
    if (v4_all && v6_all) Fail(field, "the complete address space is negated");
  } else {
    const bool empty = std::all_of(set.include.begin(), set.include.end(), [&](const Cidr& in) {
      return std::any_of(set.exclude.begin(), set.exclude.end(),
                         [&](const Cidr& ex) { return CidrCovers(ex, in); });
    });
    if (empty) Fail(field, "no addresses left after applying the negations");
  }
  return set;
}

// ---------------------------------------------------------------------------------
// Ports

struct PortAcc {
  bool any = false;
  std::vector<PortRange> include, exclude;
};

uint16_t ParsePortNumber(std::string_view s, ExpandContext& ctx, std::string_view whole) {
  s = Trim(s);
  int64_t v = 0;
  if (s.empty() || !std::all_of(s.begin(), s.end(), IsDigit) || !ParseInt(s, 0, 65535, &v)) {
    ctx.Error("invalid port " + Quote(whole));
  }
  return static_cast<uint16_t>(v);
}

void ExpandPort(std::string_view s, bool neg, int depth, ExpandContext& ctx, PortAcc& acc) {
  s = Trim(s);
  if (depth > kMaxNesting) ctx.Error("nesting deeper than 32");
  if (s.empty()) ctx.Error("empty port");
  ctx.Count();
  if (s.front() == '!') {
    ExpandPort(s.substr(1), !neg, depth + 1, ctx, acc);
  } else if (s.front() == '[') {
    const size_t close = MatchingBracket(s);
    if (close == std::string_view::npos) ctx.Error("unbalanced '[' in " + Quote(s));
    if (close != s.size() - 1) ctx.Error("unexpected text after ']' in " + Quote(s));
    for (std::string_view e : SplitTopLevel(s.substr(1, close - 1))) {
      ExpandPort(e, neg, depth + 1, ctx, acc);
    }
  } else if (s.front() == '$') {
    const std::string_view value = ctx.Enter(s.substr(1));
    ExpandPort(value, neg, depth + 1, ctx, acc);
    ctx.stack.pop_back();
  } else if (Lower(s) == "any") {
    if (neg) ctx.Error("'!any' matches nothing");
    acc.any = true;
  } else {
    PortRange r;
    const size_t colon = s.find(':');
    if (colon == std::string_view::npos) {
      r.lo = r.hi = ParsePortNumber(s, ctx, s);
    } else {
      const std::string_view a = Trim(s.substr(0, colon)), b = Trim(s.substr(colon + 1));
      if (a.empty() && b.empty()) ctx.Error("invalid port range " + Quote(s));
      r.lo = a.empty() ? 0 : ParsePortNumber(a, ctx, s);
      r.hi = b.empty() ? 65535 : ParsePortNumber(b, ctx, s);
      if (r.lo > r.hi) ctx.Error("port range " + Quote(s) + " has its low end above its high end");
    }
    (neg ? acc.exclude : acc.include).push_back(r);
  }
}

// True if every port of `in` is in some range of `ex`.
bool PortsCovered(const std::vector<PortRange>& in, std::vector<PortRange> ex) {
  std::sort(ex.begin(), ex.end(), [](const PortRange& a, const PortRange& b) { return a.lo < b.lo; });
  for (const PortRange& r : in) {
    uint32_t next = r.lo;  // first port of r not yet known to be covered
    for (const PortRange& e : ex) {
      if (e.lo > next) break;
      if (e.hi >= next) next = uint32_t{e.hi} + 1;
      if (next > r.hi) break;
    }
    if (next <= r.hi) return false;
  }
  return true;
}

PortSet ParsePortField(std::string_view s, const char* field,
                       const std::map<std::string, std::string>& vars) {
  ExpandContext ctx;
  ctx.vars = &vars;
  ctx.field = field;
  PortAcc acc;
  ExpandPort(s, false, 0, ctx, acc);
  PortSet set;
  set.any = acc.any || acc.include.empty();
  if (!set.any) set.include = std::move(acc.include);
  set.exclude = std::move(acc.exclude);
  if (set.any) {
    if (PortsCovered({PortRange{0, 65535}}, set.exclude)) Fail(field, "the complete port space is negated");
  } else if (PortsCovered(set.include, set.exclude)) {
    Fail(field, "no ports left after applying the negations");
  }
  return set;
}

// ---------------------------------------------------------------------------------
// Lines and tokens

struct LogicalRule {
  int line = 0;
  std::string text;
  bool too_long = false;
  bool commented = false;  // `# alert ...`: a disabled rule, if it parses
};

// A comment line that looks like a rule (`#alert tcp ...`, `# drop ...`): published
// rule sets disable rules this way (suricata-update's convention).
bool LooksLikeRule(std::string_view t) {
  for (std::string_view a : {"alert ", "drop ", "reject ", "rejectsrc ", "rejectdst ", "rejectboth ", "pass "}) {
    if (t.substr(0, a.size()) == a) return t.find('(') != std::string_view::npos;
  }
  return false;
}

std::vector<LogicalRule> SplitRules(const std::string& text) {
  std::vector<LogicalRule> out;
  LogicalRule cur;
  bool continuing = false;
  int lineno = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!continuing) {
      const std::string_view t = Trim(line);
      if (t.empty()) continue;
      cur = LogicalRule{};
      cur.line = lineno;
      if (t.front() == '#') {
        const std::string_view rest = Trim(t.substr(1));
        if (!LooksLikeRule(rest)) continue;
        cur.commented = true;
        line = rest;
      }
    }
    std::string_view body = line;
    while (!body.empty() && IsBlank(body.back())) body.remove_suffix(1);
    continuing = !body.empty() && body.back() == '\\';
    if (continuing) body.remove_suffix(1);
    if (!cur.too_long) {
      if (cur.text.size() + body.size() > kMaxRuleBytes) {
        cur.too_long = true;
        cur.text.clear();
        cur.text.shrink_to_fit();
      } else {
        cur.text.append(body);
      }
    }
    if (!continuing) out.push_back(std::move(cur));
  }
  if (continuing) out.push_back(std::move(cur));  // continuation at end of text
  return out;
}

// The next header field: up to a blank outside brackets, or a '(' outside brackets.
bool NextHeaderField(std::string_view s, size_t* pos, std::string_view* out) {
  while (*pos < s.size() && IsBlank(s[*pos])) ++*pos;
  const size_t start = *pos;
  int depth = 0;
  while (*pos < s.size()) {
    const char c = s[*pos];
    if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    } else if (depth <= 0 && (IsBlank(c) || c == '(')) {
      break;
    }
    ++*pos;
  }
  *out = s.substr(start, *pos - start);
  return !out->empty();
}

// A rule split into its seven header fields and the text between the parentheses.
struct RuleText {
  std::string_view fields[7];
  std::string_view options;
};

RuleText SplitRuleText(std::string_view text) {
  RuleText rt;
  size_t pos = 0;
  static const char* const kNames[7] = {"action", "protocol", "src", "src_port",
                                        "direction", "dst", "dst_port"};
  for (int i = 0; i < 7; ++i) {
    if (!NextHeaderField(text, &pos, &rt.fields[i])) {
      Fail("rule", std::string("incomplete rule header: missing ") + kNames[i]);
    }
  }
  while (pos < text.size() && IsBlank(text[pos])) ++pos;
  if (pos >= text.size()) Fail("rule", "no rule options");
  if (text[pos] != '(') Fail("rule", "expected '(' after the header, found " + Quote(text.substr(pos)));
  const std::string_view rest = Trim(text.substr(pos + 1));
  if (rest.empty() || rest.back() != ')') Fail("rule", "rule does not end with ')'");
  rt.options = rest.substr(0, rest.size() - 1);
  return rt;
}

struct Option {
  std::string name;  // lower case
  std::string_view value;
  bool has_value = false;
};

bool ValidKeywordName(std::string_view n) {
  if (n.size() > 64) return false;
  for (char c : n) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// Splits `name[:value];` options. A value starting with `"` (after an optional `!`)
// runs to the first unescaped `"` followed by optional blanks and `;`, so quoted
// values may hold `;`; any other value runs to the first unescaped `;`. Escapes are
// left in the value for the keyword to decode.
std::vector<Option> SplitOptions(std::string_view s) {
  std::vector<Option> out;
  size_t pos = 0;
  for (;;) {
    while (pos < s.size() && IsBlank(s[pos])) ++pos;
    if (pos >= s.size()) break;
    const size_t start = pos;
    while (pos < s.size() && s[pos] != ':' && s[pos] != ';') ++pos;
    const std::string_view raw_name = Trim(s.substr(start, pos - start));
    if (raw_name.empty()) Fail("rule", "empty option (stray ';' or ':')");
    if (!ValidKeywordName(raw_name)) {
      Fail("rule", "invalid option " + Quote(raw_name) + (pos >= s.size() ? " (missing ';'?)" : ""));
    }
    Option opt;
    opt.name = Lower(raw_name);
    if (pos >= s.size()) Fail(opt.name, "missing ';' after the last option");
    if (s[pos] == ';') {
      ++pos;
      out.push_back(std::move(opt));
      continue;
    }
    ++pos;  // ':'
    const size_t vstart = pos;
    size_t i = vstart;
    while (i < s.size() && IsBlank(s[i])) ++i;
    if (i < s.size() && s[i] == '!') {
      ++i;
      while (i < s.size() && IsBlank(s[i])) ++i;
    }
    size_t vend = std::string_view::npos;
    if (i < s.size() && s[i] == '"') {
      for (size_t j = i + 1; j < s.size(); ++j) {
        if (s[j] == '\\') {
          ++j;
        } else if (s[j] == '"') {
          size_t k = j + 1;
          while (k < s.size() && IsBlank(s[k])) ++k;
          if (k < s.size() && s[k] == ';') {
            vend = k;
            break;
          }
        }
      }
      if (vend == std::string_view::npos) Fail(opt.name, "unterminated quoted value or missing ';'");
    } else {
      for (size_t j = i; j < s.size(); ++j) {
        if (s[j] == '\\') {
          ++j;
        } else if (s[j] == ';') {
          vend = j;
          break;
        }
      }
      if (vend == std::string_view::npos) Fail(opt.name, "missing ';' after the value");
    }
    opt.value = s.substr(vstart, vend - vstart);
    opt.has_value = true;
    pos = vend + 1;
    out.push_back(std::move(opt));
  }
  return out;
}

// Best effort for error messages when the rule does not split: `sid:N;` anywhere.
// Linear: each candidate is checked in constant time.
uint32_t ScanSid(std::string_view s) {
  for (size_t p = s.find("sid"); p != std::string_view::npos; p = s.find("sid", p + 1)) {
    if (p > 0 && !IsBlank(s[p - 1]) && s[p - 1] != ';' && s[p - 1] != '(') continue;
    size_t i = p + 3;
    while (i < s.size() && i < p + 16 && IsBlank(s[i])) ++i;
    if (i >= s.size() || s[i] != ':') continue;
    ++i;
    while (i < s.size() && i < p + 32 && IsBlank(s[i])) ++i;
    uint64_t v = 0;
    size_t digits = 0;
    while (i < s.size() && IsDigit(s[i]) && digits < 11) {
      v = v * 10 + static_cast<uint64_t>(s[i] - '0');
      ++i;
      ++digits;
    }
    while (i < s.size() && i < p + 64 && IsBlank(s[i])) ++i;
    if (digits > 0 && v > 0 && v <= 0xffffffffULL && i < s.size() && s[i] == ';') {
      return static_cast<uint32_t>(v);
    }
  }
  return 0;
}

// The text between the quotes of a `"..."` value (blanks around allowed).
std::string_view Unquote(std::string_view v, const char* keyword) {
  v = Trim(v);
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') {
    Fail(keyword, "value must be double quoted");
  }
  return v.substr(1, v.size() - 2);
}

// msg and similar: every `\x` becomes `x` (Suricata, after Snort).
std::string UnescapeText(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  return out;
}

// content: text with |hex| blocks; escapes \" \; \: \\ only.
std::string DecodeContent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool hex = false;
  int nibbles = 0;
  uint8_t byte = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '|') {
      if (hex && nibbles != 0) Fail("content", "incomplete hex byte in " + Quote(s));
      hex = !hex;
    } else if (hex) {
      int v = -1;
      if (IsDigit(c)) {
        v = c - '0';
      } else if (ToLower(c) >= 'a' && ToLower(c) <= 'f') {
        v = ToLower(c) - 'a' + 10;
      } else if (c != ' ' && c != ',' && c != '\t') {
        Fail("content", "invalid hex character " + Quote(std::string_view(&s[i], 1)) + " in " + Quote(s));
      }
      if (v >= 0) {
        byte = static_cast<uint8_t>((byte << 4) | v);
        if (++nibbles == 2) {
          out += static_cast<char>(byte);
          nibbles = 0;
          byte = 0;
        }
      }
    } else if (c == '\\') {
      if (i + 1 >= s.size()) Fail("content", "dangling '\\' at the end of " + Quote(s));
      const char e = s[++i];
      if (e != '"' && e != ';' && e != ':' && e != '\\') {
        Fail("content", "invalid escape '\\" + std::string(1, e) + "' (only \\\" \\; \\: \\\\)");
      }
      out += e;
    } else if (c == '"') {
      Fail("content", "unescaped '\"' inside content");
    } else {
      out += c;
    }
  }
  if (hex) Fail("content", "unterminated |hex| block in " + Quote(s));
  return out;
}

// ---------------------------------------------------------------------------------
// One rule

struct ParseContext {
  const std::map<std::string, std::string>* vars = nullptr;
  const std::map<std::string, std::pair<std::string, int>>* classtypes = nullptr;
};

struct ContentState {  // what Suricata tracks per content beyond rule.h
  bool fast_pattern_only = false;
};

class RuleBuilder {
 public:
  RuleBuilder(const ParseContext& ctx, Rule* rule) : ctx_(ctx), r_(*rule) {}

  void Header(const std::string_view (&f)[7]) {
    const std::string action(f[0]);
    if (action == "alert") {
      r_.header.action = Action::kAlert;
    } else if (action == "drop") {
      r_.header.action = Action::kDrop;
    } else if (action == "reject" || action == "rejectsrc" || action == "rejectdst" ||
               action == "rejectboth") {
      r_.header.action = Action::kReject;
    } else if (action == "pass") {
      r_.header.action = Action::kPass;
    } else {
      Fail("action", "unknown action " + Quote(action));
    }

    const std::string proto = Lower(f[1]);
    if (proto == "tcp") {
      r_.header.protocol = Protocol::kTcp;
    } else if (proto == "udp") {
      r_.header.protocol = Protocol::kUdp;
    } else if (proto == "icmp" || proto == "icmpv4" || proto == "icmpv6") {
      r_.header.protocol = Protocol::kIcmp;
    } else if (proto == "ip") {
      r_.header.protocol = Protocol::kIp;
    } else if (proto == "tcp-pkt") {
      r_.header.protocol = Protocol::kTcpPkt;
    } else if (proto == "tcp-stream") {
      r_.header.protocol = Protocol::kTcpStream;
    } else if (KnownUnsupportedProtocol(proto) || proto.find(':') != std::string::npos) {
      // `http1:request_line` and other Suricata 8 hooks included.
      Unsupported("protocol", "protocol:" + proto, "unsupported protocol " + Quote(proto));
    } else {
      Fail("protocol", "unknown protocol " + Quote(f[1]));
    }

    r_.header.src = ParseAddressField(f[2], "src", *ctx_.vars);
    r_.header.src_ports = ParsePortField(f[3], "src_port", *ctx_.vars);
    if (f[4] == "->") {
      r_.header.bidirectional = false;
    } else if (f[4] == "<>") {
      r_.header.bidirectional = true;
    } else {
      Fail("direction", "invalid direction " + Quote(f[4]) + " (expected '->' or '<>')");
    }
    r_.header.dst = ParseAddressField(f[5], "dst", *ctx_.vars);
    r_.header.dst_ports = ParsePortField(f[6], "dst_port", *ctx_.vars);
  }

  void Options(const std::vector<Option>& opts) {
    for (const Option& o : opts) Apply(o);
    Finish();
  }

 private:
  void NoValue(const Option& o) {
    if (o.has_value && !Trim(o.value).empty()) Fail(o.name, "takes no value");
  }
  std::string_view NeedValue(const Option& o) {
    const std::string_view v = Trim(o.value);
    if (!o.has_value || v.empty()) Fail(o.name, "needs a value");
    return v;
  }
  void Once(const Option& o) {
    if (!seen_.insert(o.name).second) Fail(o.name, "duplicated '" + o.name + "' keyword");
  }

  // The most recent content, for modifiers.
  Content& LastContent(const Option& o) {
    if (last_content_ < 0) Fail(o.name, "needs a preceding content");
    return r_.detects[static_cast<size_t>(last_content_)].content;
  }
  // The step before detects[index] that sets the cursor (content, pcre, byte_*), or -1.
  int PreviousMatch(int index) const {
    for (int i = index - 1; i >= 0; --i) {
      if (r_.detects[static_cast<size_t>(i)].kind != Detect::Kind::kIsDataAt) return i;
    }
    return -1;
  }

  void CheckAbsolute(const Option& o, const Content& c) {
    if (c.Relative()) {
      Fail(o.name, "can't mix a relative keyword (distance/within) with depth/offset on one content");
    }
    if (c.startswith) Fail(o.name, "can't mix startswith with depth/offset on one content");
    CheckModifiable(o, c);
  }
  void CheckRelative(const Option& o, const Content& c) {
    if (c.depth || c.offset) {
      Fail(o.name, "can't mix a relative keyword (distance/within) with depth/offset on one content");
    }
    if (c.startswith) Fail(o.name, "can't mix startswith with distance/within on one content");
    CheckModifiable(o, c);
    const int prev = PreviousMatch(last_content_);
    if (prev >= 0 && r_.detects[static_cast<size_t>(prev)].kind == Detect::Kind::kContent &&
        content_state_[static_cast<size_t>(prev)].fast_pattern_only) {
      Fail(o.name, "the previous content has fast_pattern:only; no relative keyword may refer to it");
    }
  }
  void CheckModifiable(const Option& o, const Content& c) {
    if (c.negated && c.fast_pattern) {
      Fail(o.name, "can't set a position on a negated content that has fast_pattern");
    }
    if (content_state_[static_cast<size_t>(last_content_)].fast_pattern_only) {
      Fail(o.name, "can't set a position on a content with fast_pattern:only");
    }
  }

  void Apply(const Option& o) {
    const std::string& k = o.name;
    if (k == "msg") {
      Once(o);
      r_.msg = UnescapeText(Unquote(NeedValue(o), "msg"));
    } else if (k == "sid") {
      Once(o);
      r_.sid = static_cast<uint32_t>(IntOrFail(NeedValue(o), 1, 0xffffffffLL, "sid"));
    } else if (k == "rev") {
      Once(o);
      r_.rev = static_cast<uint32_t>(IntOrFail(NeedValue(o), 0, 0xffffffffLL, "rev"));
    } else if (k == "gid") {
      Once(o);
      r_.gid = static_cast<uint32_t>(IntOrFail(NeedValue(o), 0, 0xffffffffLL, "gid"));
    } else if (k == "priority") {
      Once(o);
      priority_ = static_cast<int>(IntOrFail(NeedValue(o), 1, 255, "priority"));
    } else if (k == "classtype") {
      Once(o);
      const std::string name = Lower(NeedValue(o));
      const auto it = ctx_.classtypes->find(name);
      if (it == ctx_.classtypes->end()) Fail("classtype", "unknown classtype " + Quote(name));
      r_.classtype = name;
      r_.category = it->second.first;  // EVE alert.category is the description
      class_priority_ = it->second.second;
    } else if (k == "reference") {
      const std::string_view v = NeedValue(o);
      const size_t comma = v.find(',');
      if (comma == std::string_view::npos) Fail("reference", "expected 'system,id'");
      Reference ref{std::string(Trim(v.substr(0, comma))), std::string(Trim(v.substr(comma + 1)))};
      if (ref.system.empty() || ref.id.empty()) Fail("reference", "expected 'system,id'");
      if (ref.id.size() >= 2 && ref.id.front() == '"' && ref.id.back() == '"') {
        ref.id = ref.id.substr(1, ref.id.size() - 2);
      }
      r_.references.push_back(std::move(ref));
    } else if (k == "metadata") {
      for (std::string_view item : SplitTopLevel(NeedValue(o))) {
        item = Trim(item);
        if (item.empty()) continue;
        size_t sp = 0;
        while (sp < item.size() && !IsBlank(item[sp])) ++sp;
        r_.metadata.emplace_back(std::string(item.substr(0, sp)),
                                 std::string(Trim(item.substr(sp))));
      }
    } else if (k == "quarantine") {
      Once(o);
      const std::string v = Lower(NeedValue(o));
      if (v == "isolate") r_.quarantine = Rule::Quarantine::kIsolate;
      else if (v == "contain") r_.quarantine = Rule::Quarantine::kContain;
      else Fail("quarantine", "expected isolate or contain, got " + Quote(v));
    } else if (k == "target") {
      const std::string v = Lower(NeedValue(o));
      if (v != "src_ip" && v != "dest_ip") Fail("target", "expected src_ip or dest_ip");
    } else if (k == "content") {
      AddContent(o);
    } else if (k == "nocase") {
      NoValue(o);
      Content& c = LastContent(o);
      if (c.nocase) Fail("nocase", "can't use multiple nocase modifiers with the same content");
      c.nocase = true;
    } else if (k == "rawbytes") {
      NoValue(o);
      (void)LastContent(o);  // no-op on packet/stream payload, but needs a content
    } else if (k == "depth") {
      Content& c = LastContent(o);
      if (c.depth) Fail("depth", "can't use multiple depths for the same content");
      CheckAbsolute(o, c);
      if (Variable(o, &r_.detects[static_cast<size_t>(last_content_)].depth_var)) {
        c.depth = static_cast<int32_t>(c.bytes.size());  // placeholder: the value comes at match time
        return;
      }
      const int64_t v = IntOrFail(NeedValue(o), 0, kMaxOffset, "depth");
      if (v < static_cast<int64_t>(c.bytes.size())) {
        Fail("depth", "depth " + std::to_string(v) + " smaller than content of length " +
                          std::to_string(c.bytes.size()));
      }
      c.depth = static_cast<int32_t>(v);
    } else if (k == "offset") {
      Content& c = LastContent(o);
      if (c.offset) Fail("offset", "can't use multiple offsets for the same content");
      CheckAbsolute(o, c);
      if (Variable(o, &r_.detects[static_cast<size_t>(last_content_)].offset_var)) {
        c.offset = 0;
        return;
      }
      c.offset = static_cast<int32_t>(IntOrFail(NeedValue(o), 0, kMaxOffset, "offset"));
    } else if (k == "distance") {
      Content& c = LastContent(o);
      if (c.distance) Fail("distance", "can't use multiple distances for the same content");
      CheckRelative(o, c);
      if (Variable(o, &r_.detects[static_cast<size_t>(last_content_)].distance_var)) {
        c.distance = 0;
        return;
      }
      c.distance = static_cast<int32_t>(IntOrFail(NeedValue(o), -kMaxRelative, kMaxRelative, "distance"));
    } else if (k == "within") {
      Content& c = LastContent(o);
      if (c.within) Fail("within", "can't use multiple withins for the same content");
      CheckRelative(o, c);
      if (Variable(o, &r_.detects[static_cast<size_t>(last_content_)].within_var)) {
        c.within = static_cast<int32_t>(c.bytes.size());
        return;
      }
      const int64_t v = IntOrFail(NeedValue(o), -kMaxRelative, kMaxRelative, "within");
      if (v < static_cast<int64_t>(c.bytes.size())) {
        Fail("within", "within " + std::to_string(v) + " smaller than content of length " +
                           std::to_string(c.bytes.size()));
      }
      c.within = static_cast<int32_t>(v);
    } else if (k == "startswith") {
      NoValue(o);
      Content& c = LastContent(o);
      if (c.startswith) Fail("startswith", "duplicated startswith on one content");
      if (c.depth || c.offset || c.Relative()) {
        Fail("startswith", "can't mix startswith with depth, offset, distance or within");
      }
      CheckModifiable(o, c);
      c.startswith = true;
    } else if (k == "endswith") {
      NoValue(o);
      LastContent(o).endswith = true;  // repeating it is harmless (Suricata too)
    } else if (k == "fast_pattern") {
      FastPattern(o);
    } else if (k == "isdataat") {
      IsDataAtOption(o);
    } else if (k == "pcre") {
      PcreOption(o);
    } else if (k == "dsize") {
      DsizeOption(o);
    } else if (k == "flow") {
      FlowOptionParse(o);
    } else if (k == "flowbits") {
      FlowbitsOption(o);
    } else if (k == "itype" || k == "icode" || k == "ttl" || k == "bsize") {
      Once(o);
      const int64_t max = k == "bsize" ? 0xffffffffLL : 255;
      const NumberMatch m = ParseNumberMatch(NeedValue(o), max, k.c_str());
      (k == "itype" ? r_.itype : k == "icode" ? r_.icode : k == "ttl" ? r_.ttl : r_.bsize) = m;
    } else if (k == "icmp_id" || k == "icmp_seq") {
      Once(o);
      const auto v = static_cast<uint16_t>(IntOrFail(NeedValue(o), 0, 65535, k.c_str()));
      (k == "icmp_id" ? r_.icmp_id : r_.icmp_seq) = v;
    } else if (k == "flags") {
      Once(o);
      TcpFlagsOption(o);
    } else if (k == "ip_proto") {
      Once(o);
      IpProtoOption(o);
    } else if (k == "sameip") {
      NoValue(o);
      r_.sameip = true;
    } else if (k == "byte_test" || k == "byte_jump" || k == "byte_extract") {
      ByteOption(o);
    } else if (k == "threshold" || k == "detection_filter") {
      Once(o);
      if (r_.threshold || r_.detection_filter) Fail(k, "a rule may have a threshold or a detection_filter, not both");
      Threshold t;
      std::string error;
      if (!ParseThresholdOption(NeedValue(o), k == "detection_filter", &t, &error)) Fail(k, error);
      (k == "threshold" ? r_.threshold : r_.detection_filter) = t;
    } else {
      Unsupported(k, k, "unsupported keyword");
    }
  }

  void AddContent(const Option& o) {
    std::string_view v = NeedValue(o);
    Detect d;
    d.kind = Detect::Kind::kContent;
    if (v.front() == '!') {
      d.content.negated = true;
      v = Trim(v.substr(1));
    }
    d.content.bytes = DecodeContent(Unquote(v, "content"));
    if (d.content.bytes.empty()) Fail("content", "empty content");
    r_.detects.push_back(std::move(d));
    content_state_.emplace_back();
    last_content_ = static_cast<int>(r_.detects.size()) - 1;
  }

  void FastPattern(const Option& o) {
    Content& c = LastContent(o);
    ContentState& st = content_state_[static_cast<size_t>(last_content_)];
    if (c.fast_pattern) Fail("fast_pattern", "can't use multiple fast_pattern options for the same content");
    if (fast_pattern_seen_) Fail("fast_pattern", "fast_pattern can be used on only one content in a rule");
    const bool positioned = c.depth || c.offset || c.Relative();
    if (c.negated && positioned) {
      Fail("fast_pattern", "can't be used on a negated content with position modifiers");
    }
    const std::string_view v = o.has_value ? Trim(o.value) : std::string_view{};
    if (v.empty()) {
      // plain fast_pattern
    } else if (Lower(v) == "only") {
      if (c.negated || positioned) {
        Fail("fast_pattern", "fast_pattern:only can't be used on a negated content or with "
                             "depth/offset/distance/within");
      }
      st.fast_pattern_only = true;
    } else {
      const size_t comma = v.find(',');
      int64_t off = 0, len = 0;
      if (comma == std::string_view::npos || !ParseInt(v.substr(0, comma), 0, 65535, &off) ||
          !ParseInt(v.substr(comma + 1), 1, 65535, &len)) {
        Fail("fast_pattern", "expected 'only' or 'offset,length', got " + Quote(v));
      }
      if (off + len > static_cast<int64_t>(c.bytes.size())) {
        Fail("fast_pattern", "offset + length (" + std::to_string(off + len) +
                                 ") exceeds the content length (" + std::to_string(c.bytes.size()) + ")");
      }
    }
    c.fast_pattern = true;
    fast_pattern_seen_ = true;
  }

  void IsDataAtOption(const Option& o) {
    std::string_view v = NeedValue(o);
    IsDataAt at;
    if (v.front() == '!') {
      at.negated = true;
      v = Trim(v.substr(1));
    }
    const std::vector<std::string_view> parts = SplitTopLevel(v);
    at.position = static_cast<int32_t>(IntOrFail(parts[0], 0, kMaxOffset, "isdataat"));
    bool rawbytes = false;
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string p = Lower(Trim(parts[i]));
      if (p == "relative" && !at.relative && !rawbytes) {
        at.relative = true;
      } else if (p == "rawbytes" && !rawbytes) {
        rawbytes = true;
      } else {
        Fail("isdataat", "expected [!]N[,relative][,rawbytes], got " + Quote(o.value));
      }
    }
    // Suricata: `isdataat:!1,relative` right after a content means "the content ends
    // the buffer" and becomes endswith on that content.
    if (at.negated && at.relative && at.position == 1 && !r_.detects.empty() &&
        r_.detects.back().kind == Detect::Kind::kContent) {
      r_.detects.back().content.endswith = true;
      return;
    }
    Detect d;
    d.kind = Detect::Kind::kIsDataAt;
    d.isdataat = at;
    r_.detects.push_back(std::move(d));
    content_state_.emplace_back();
  }

  void PcreOption(const Option& o) {
    std::string_view v = NeedValue(o);
    Pcre p;
    if (v.front() == '!') {
      p.negated = true;
      v = Trim(v.substr(1));
    }
    const std::string_view re = Trim(Unquote(v, "pcre"));
    const size_t last = re.rfind('/');
    if (re.empty() || re.front() != '/' || last == 0 || last == std::string_view::npos) {
      Fail("pcre", "expected \"/regex/flags\"");
    }
    p.pattern = std::string(re.substr(1, last - 1));
    const std::string_view flags = Trim(re.substr(last + 1));
    static constexpr std::string_view kFlags = "ismxAEGRUBOPQHDMCKSYVWZI";
    for (char f : flags) {
      if (kFlags.find(f) == std::string_view::npos) {
        Fail("pcre", "unknown regex modifier " + Quote(std::string_view(&f, 1)));
      }
    }
    // Suricata's buffer modifiers (U uri, H header, P body, C cookie, M method, S stat
    // code, Y stat msg, B..., I/D raw uri/header, V user agent, W host, Z raw host,
    // Q file data) point pcre at HTTP buffers, which come with the app-layer parsers.
    static constexpr std::string_view kHttpBuffers = "UHPCMSYIDVWZQK";
    for (char f : flags) {
      if (kHttpBuffers.find(f) != std::string_view::npos) {
        Unsupported("pcre", "pcre:" + std::string(1, f),
                    "pcre modifier " + Quote(std::string_view(&f, 1)) + " selects an HTTP buffer (not supported yet)");
      }
    }
    p.flags = std::string(flags);
    p.relative = p.flags.find('R') != std::string::npos;
    if (p.relative && PreviousMatch(static_cast<int>(r_.detects.size())) < 0) {
      Fail("pcre", "pcre with /R (relative) needs a preceding content or pcre");
    }
    Detect d;
    d.kind = Detect::Kind::kPcre;
    d.pcre = std::move(p);
    r_.detects.push_back(std::move(d));
    content_state_.emplace_back();
  }

  void DsizeOption(const Option& o) {
    Once(o);
    std::string_view v = NeedValue(o);
    Dsize d;
    auto num = [&](std::string_view s) {
      return static_cast<uint16_t>(IntOrFail(s, 0, 65535, "dsize"));
    };
    if (const size_t rg = v.find("<>"); rg != std::string_view::npos) {
      d.op = Dsize::Op::kRange;
      d.lo = num(v.substr(0, rg));
      d.hi = num(v.substr(rg + 2));
      if (d.hi <= d.lo + 1) {
        Fail("dsize", "range " + Quote(v) + " is empty (bounds are exclusive: need lo < hi - 1)");
      }
    } else if (v.rfind(">=", 0) == 0 || v.rfind("<=", 0) == 0) {
      const uint16_t n = num(v.substr(2));
      if (v[0] == '>') {
        if (n == 0) Fail("dsize", "'>=0' always matches; write no dsize");
        d.op = Dsize::Op::kGt;
        d.lo = static_cast<uint16_t>(n - 1);
      } else {
        if (n == 65535) Fail("dsize", "'<=65535' always matches; write no dsize");
        d.op = Dsize::Op::kLt;
        d.lo = static_cast<uint16_t>(n + 1);
      }
    } else if (v.front() == '<' || v.front() == '>') {
      d.op = v.front() == '<' ? Dsize::Op::kLt : Dsize::Op::kGt;
      d.lo = num(v.substr(1));
      if ((d.op == Dsize::Op::kLt && d.lo == 0) || (d.op == Dsize::Op::kGt && d.lo == 65535)) {
        Fail("dsize", Quote(v) + " never matches");
      }
    } else if (v.front() == '!') {
      d.op = Dsize::Op::kNe;
      d.lo = num(v.substr(v.size() > 1 && v[1] == '=' ? 2 : 1));
    } else {
      d.op = Dsize::Op::kEq;
      d.lo = num(v.front() == '=' ? v.substr(1) : v);
    }
    r_.dsize = d;
  }

  // A byte_extract variable named by an option value: true and *index set when the
  // value is a name (not a number); an unknown name is an error.
  bool Variable(const Option& o, int8_t* index) {
    const std::string_view v = NeedValue(o);
    if (IsDigit(v.front()) || v.front() == '-' || v.front() == '+') return false;
    *index = VariableIndex(v, o.name.c_str());
    return true;
  }
  int8_t VariableIndex(std::string_view name, const char* keyword) {
    for (size_t i = 0; i < r_.byte_vars.size(); ++i) {
      if (r_.byte_vars[i] == name) return static_cast<int8_t>(i);
    }
    Fail(keyword, "unknown variable " + Quote(name) + " (no byte_extract before it defines it)");
  }

  // `N`, `<N`, `>N`, `<=N`, `>=N`, `!N`, `=N`, `N<>M` and `N-M` (exclusive ranges,
  // as Suricata's integer keywords).
  static NumberMatch ParseNumberMatch(std::string_view v, int64_t max, const char* kw) {
    v = Trim(v);
    NumberMatch m;
    auto num = [&](std::string_view t) { return static_cast<uint32_t>(IntOrFail(t, 0, max, kw)); };
    size_t range = v.find("<>");
    size_t sep = 2;
    if (range == std::string_view::npos && v.size() > 1) {
      range = v.find('-', 1);
      sep = 1;
    }
    if (v.substr(0, 2) == "<=" || v.substr(0, 2) == ">=") {
      m.op = v[0] == '<' ? NumberMatch::Op::kLe : NumberMatch::Op::kGe;
      m.lo = num(v.substr(2));
    } else if (!v.empty() && (v[0] == '<' || v[0] == '>' || v[0] == '!' || v[0] == '=')) {
      m.op = v[0] == '<' ? NumberMatch::Op::kLt : v[0] == '>' ? NumberMatch::Op::kGt
           : v[0] == '!' ? NumberMatch::Op::kNe : NumberMatch::Op::kEq;
      m.lo = num(v.substr(1));
    } else if (range != std::string_view::npos) {
      m.op = NumberMatch::Op::kRange;
      m.lo = num(v.substr(0, range));
      m.hi = num(v.substr(range + sep));
      if (int64_t(m.hi) <= int64_t(m.lo) + 1) {
        Fail(kw, "range " + Quote(v) + " is empty (bounds are exclusive: need lo < hi - 1)");
      }
    } else {
      m.lo = num(v);
    }
    if ((m.op == NumberMatch::Op::kLt && m.lo == 0) || (m.op == NumberMatch::Op::kGt && m.lo >= max)) {
      Fail(kw, Quote(v) + " never matches");
    }
    return m;
  }

  // `flags:[!+*]FSRPAUCE0[,ignored]`; 1 and 2 are Snort's names for C (CWR) and E (ECE).
  void TcpFlagsOption(const Option& o) {
    const std::vector<std::string_view> parts = SplitTopLevel(NeedValue(o));
    if (parts.size() > 2) Fail("flags", "expected FLAGS[,IGNORED]");
    auto bits = [](std::string_view t, TcpFlagsMatch* m, bool ignore_part) {
      uint8_t out = 0;
      bool zero = false;
      for (char c : Trim(t)) {
        switch (c) {
          case 'F': case 'f': out |= 0x01; break;
          case 'S': case 's': out |= 0x02; break;
          case 'R': case 'r': out |= 0x04; break;
          case 'P': case 'p': out |= 0x08; break;
          case 'A': case 'a': out |= 0x10; break;
          case 'U': case 'u': out |= 0x20; break;
          case 'E': case 'e': case '2': out |= 0x40; break;
          case 'C': case 'c': case '1': out |= 0x80; break;
          case '0': zero = true; break;
          case '!': case '+': case '*': {
            if (ignore_part || m->mode != TcpFlagsMatch::Mode::kExact) {
              Fail("flags", "one modifier (!, + or *) at most, on the flags");
            }
            m->mode = c == '!' ? TcpFlagsMatch::Mode::kNot
                    : c == '+' ? TcpFlagsMatch::Mode::kAll : TcpFlagsMatch::Mode::kAny;
            break;
          }
          default: Fail("flags", "unknown TCP flag " + Quote(std::string_view(&c, 1)));
        }
      }
      if (zero && out) Fail("flags", "0 (no flags) can't be combined with flags");
      if (!zero && !out && !ignore_part) Fail("flags", "no flags given");
      return out;
    };
    TcpFlagsMatch m;
    m.flags = bits(parts[0], &m, false);
    if (parts.size() == 2) m.ignore = bits(parts[1], &m, true);
    if (m.flags & m.ignore) Fail("flags", "a flag can't be both tested and ignored");
    r_.tcp_flags = m;
  }

  // `ip_proto:[!<>]N` or a protocol name.
  void IpProtoOption(const Option& o) {
    std::string_view v = NeedValue(o);
    NumberMatch m;
    if (v[0] == '!' || v[0] == '<' || v[0] == '>') {
      m.op = v[0] == '!' ? NumberMatch::Op::kNe : v[0] == '<' ? NumberMatch::Op::kLt : NumberMatch::Op::kGt;
      v = Trim(v.substr(1));
    }
    static const std::map<std::string, uint32_t> kNames = {
        {"hopopt", 0}, {"icmp", 1}, {"igmp", 2}, {"ipip", 4}, {"ipencap", 4}, {"ipv4", 4}, {"tcp", 6},
        {"udp", 17}, {"ipv6", 41}, {"ipv6-route", 43}, {"ipv6-frag", 44}, {"rsvp", 46}, {"gre", 47},
        {"esp", 50}, {"ah", 51}, {"ipv6-icmp", 58}, {"icmpv6", 58}, {"ipv6-nonxt", 59}, {"ipv6-opts", 60},
        {"eigrp", 88}, {"ospf", 89}, {"pim", 103}, {"vrrp", 112}, {"l2tp", 115}, {"sctp", 132}};
    if (!v.empty() && IsDigit(v[0])) {
      m.lo = static_cast<uint32_t>(IntOrFail(v, 0, 255, "ip_proto"));
    } else if (const auto it = kNames.find(Lower(v)); it != kNames.end()) {
      m.lo = it->second;
    } else {
      Fail("ip_proto", "unknown protocol " + Quote(v));
    }
    if ((m.op == NumberMatch::Op::kLt && m.lo == 0) || (m.op == NumberMatch::Op::kGt && m.lo == 255)) {
      Fail("ip_proto", Quote(o.value) + " never matches");
    }
    r_.ip_proto = m;
  }

  // `flowbits:noalert`, `flowbits:OP,NAME`, NAME may be `a|b` (isset/isnotset: any)
  // or `a&b` (all).
  void FlowbitsOption(const Option& o) {
    const std::string_view v = NeedValue(o);
    const std::vector<std::string_view> parts = SplitTopLevel(v);
    const std::string op = Lower(Trim(parts[0]));
    if (op == "noalert") {
      if (parts.size() != 1) Fail("flowbits", "noalert takes no name");
      r_.noalert = true;
      return;
    }
    Flowbits fb;
    if (op == "set") fb.op = Flowbits::Op::kSet;
    else if (op == "isset") fb.op = Flowbits::Op::kIsSet;
    else if (op == "isnotset") fb.op = Flowbits::Op::kIsNotSet;
    else if (op == "unset") fb.op = Flowbits::Op::kUnset;
    else if (op == "toggle") fb.op = Flowbits::Op::kToggle;
    else Fail("flowbits", "unknown operation " + Quote(parts[0]) + " (set, isset, isnotset, unset, toggle, noalert)");
    if (parts.size() != 2 || Trim(parts[1]).empty()) Fail("flowbits", op + " needs one name (or names joined by | or &)");
    const std::string_view names = Trim(parts[1]);
    const bool has_or = names.find('|') != std::string_view::npos;
    const bool has_and = names.find('&') != std::string_view::npos;
    if (has_or && has_and) Fail("flowbits", "can't mix | and & in one flowbits");
    if (has_or && fb.op != Flowbits::Op::kIsSet && fb.op != Flowbits::Op::kIsNotSet) {
      Fail("flowbits", "| (any of) is only for isset and isnotset");
    }
    fb.any = has_or;
    size_t start = 0;
    while (start <= names.size()) {
      size_t end = names.find(has_or ? '|' : '&', start);
      if (end == std::string_view::npos) end = names.size();
      const std::string_view n = Trim(names.substr(start, end - start));
      if (n.empty() || n.size() > 256) Fail("flowbits", "empty or too long flowbit name in " + Quote(names));
      for (char c : n) {
        if (!IsAlpha(c) && !IsDigit(c) && c != '_' && c != '.' && c != '-') {
          Fail("flowbits", "invalid character in flowbit name " + Quote(n));
        }
      }
      fb.names.emplace_back(n);
      start = end + 1;
    }
    r_.flowbits.push_back(std::move(fb));
  }

  // byte_test / byte_jump / byte_extract: comma-separated, positional first, then
  // flags and `name value` pairs (Suricata's syntax).
  void ByteOption(const Option& o) {
    const std::string& k = o.name;
    const char* kw = k.c_str();
    std::vector<std::string> parts;
    for (std::string_view p : SplitTopLevel(NeedValue(o))) parts.emplace_back(Trim(p));
    const size_t positional = k == "byte_test" ? 4 : k == "byte_jump" ? 2 : 3;
    if (parts.size() < positional) Fail(k, "expected at least " + std::to_string(positional) + " comma-separated values");
    Detect d;
    ByteRead read;
    bool string_seen = false;
    const int64_t nbytes = IntOrFail(parts[0], 1, 10, kw);
    read.bytes = static_cast<uint8_t>(nbytes);
    auto offset_of = [&](const std::string& t) {
      if (!t.empty() && !IsDigit(t[0]) && t[0] != '-' && t[0] != '+') {
        read.offset_var = VariableIndex(t, kw);
      } else {
        read.offset = static_cast<int32_t>(IntOrFail(t, -kMaxOffset, kMaxOffset, kw));
      }
    };
    ByteTest bt;
    ByteJump bj;
    ByteExtract be;
    if (k == "byte_test") {
      std::string_view op = parts[1];
      if (!op.empty() && op[0] == '!') {
        bt.negated = true;
        op = Trim(op.substr(1));
      }
      if (op == "<") bt.op = ByteTest::Op::kLt;
      else if (op == ">") bt.op = ByteTest::Op::kGt;
      else if (op == "<=") bt.op = ByteTest::Op::kLe;
      else if (op == ">=") bt.op = ByteTest::Op::kGe;
      else if (op == "=") bt.op = ByteTest::Op::kEq;
      else if (op == "&") bt.op = ByteTest::Op::kAnd;
      else if (op == "^") bt.op = ByteTest::Op::kOr;
      else Fail(k, "unknown operator " + Quote(parts[1]) + " (< > <= >= = & ^, optionally with !)");
      const std::string& val = parts[2];
      if (!val.empty() && !IsDigit(val[0])) {
        bt.value_var = VariableIndex(val, kw);
      } else {
        uint64_t x = 0;
        if (!ParseUnsigned(val, &x)) Fail(k, "invalid test value " + Quote(val));
        bt.value = x;
      }
      offset_of(parts[3]);
    } else {
      offset_of(parts[1]);
    }
    if (k == "byte_extract") {
      const std::string& name = parts[2];
      if (name.empty() || !(IsAlpha(name[0]) || name[0] == '_')) Fail(k, "invalid variable name " + Quote(name));
      for (const auto& existing : r_.byte_vars) {
        if (existing == name) Fail(k, "variable " + Quote(name) + " defined twice");
      }
      if (r_.byte_vars.size() >= kMaxByteVars) Fail(k, "too many byte_extract variables in one rule");
      be.var = static_cast<uint8_t>(r_.byte_vars.size());
      r_.byte_vars.push_back(name);
    }
    for (size_t i = positional; i < parts.size(); ++i) {
      const std::string& p = parts[i];
      const size_t sp = p.find_first_of(" \t");
      const std::string name = Lower(p.substr(0, sp));
      const std::string arg = sp == std::string::npos ? "" : std::string(Trim(std::string_view(p).substr(sp)));
      auto need_arg = [&]() -> const std::string& {
        if (arg.empty()) Fail(k, Quote(name) + " needs a value");
        return arg;
      };
      if (name == "relative") read.relative = true;
      else if (name == "big") read.little_endian = false;
      else if (name == "little") read.little_endian = true;
      else if (name == "string") {
        string_seen = true;
        if (read.base == ByteRead::Base::kBinary) read.base = ByteRead::Base::kDec;
      } else if (name == "dec" || name == "hex" || name == "oct") {
        if (!string_seen) Fail(k, Quote(name) + " needs 'string' before it");
        read.base = name == "dec" ? ByteRead::Base::kDec : name == "hex" ? ByteRead::Base::kHex : ByteRead::Base::kOct;
      } else if (name == "bitmask") {
        uint64_t mask = 0;
        if (!ParseUnsigned(need_arg(), &mask) || mask == 0) Fail(k, "invalid bitmask " + Quote(arg));
        read.bitmask = mask;
      } else if (name == "dce") {
        Unsupported(k, k + ":dce", "dce needs the DCERPC parser (not supported)");
      } else if (name == "multiplier" && k != "byte_test") {
        const auto m = static_cast<uint32_t>(IntOrFail(need_arg(), 1, 65535, kw));
        (k == "byte_jump" ? bj.multiplier : be.multiplier) = m;
      } else if (name == "align" && k == "byte_jump") {
        bj.align = true;
      } else if (name == "align" && k == "byte_extract") {
        const int64_t a = IntOrFail(need_arg(), 2, 4, kw);
        if (a == 3) Fail(k, "align must be 2 or 4");
        be.align = static_cast<uint8_t>(a);
      } else if (name == "from_beginning" && k == "byte_jump") {
        bj.from_beginning = true;
      } else if (name == "from_end" && k == "byte_jump") {
        bj.from_end = true;
      } else if (name == "post_offset" && k == "byte_jump") {
        bj.post_offset = static_cast<int32_t>(IntOrFail(need_arg(), -kMaxOffset, kMaxOffset, kw));
      } else {
        Fail(k, "unknown option " + Quote(p));
      }
    }
    if (bj.from_beginning && bj.from_end) Fail(k, "from_beginning and from_end together");
    if (read.base == ByteRead::Base::kBinary && read.bytes > 8) Fail(k, "more than 8 bytes needs 'string'");
    if (read.relative && PreviousMatch(static_cast<int>(r_.detects.size())) < 0) {
      Fail(k, "relative needs a preceding content, pcre or byte_jump/byte_extract");
    }
    if (k == "byte_test") {
      d.kind = Detect::Kind::kByteTest;
      bt.read = read;
      d.byte_test = bt;
    } else if (k == "byte_jump") {
      d.kind = Detect::Kind::kByteJump;
      bj.read = read;
      d.byte_jump = bj;
    } else {
      d.kind = Detect::Kind::kByteExtract;
      be.read = read;
      d.byte_extract = be;
    }
    r_.detects.push_back(std::move(d));
    content_state_.emplace_back();
  }
  static bool ParseUnsigned(std::string_view t, uint64_t* out) {
    t = Trim(t);
    int base = 10;
    if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
      base = 16;
      t.remove_prefix(2);
    }
    if (t.empty() || t.size() > 20) return false;
    uint64_t v = 0;
    for (char c : t) {
      int digit;
      if (IsDigit(c)) digit = c - '0';
      else if (base == 16 && c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      else if (base == 16 && c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      else return false;
      if (v > (UINT64_MAX - uint64_t(digit)) / uint64_t(base)) return false;
      v = v * uint64_t(base) + uint64_t(digit);
    }
    *out = v;
    return true;
  }

  void FlowOptionParse(const Option& o) {
    if (r_.flow) Fail("flow", "a rule may have only one flow option");
    FlowOption f;
    for (std::string_view item : SplitTopLevel(NeedValue(o))) {
      const std::string v = Lower(Trim(item));
      auto set = [&](bool* flag, bool conflict, const char* what) {
        if (*flag) Fail("flow", "duplicated flow option " + Quote(v));
        if (conflict) Fail("flow", "flow option " + Quote(v) + " conflicts with " + what);
        *flag = true;
      };
      if (v == "to_server" || v == "from_client") {
        set(&f.to_server, f.to_client, "to_client/from_server");
      } else if (v == "to_client" || v == "from_server") {
        set(&f.to_client, f.to_server, "to_server/from_client");
      } else if (v == "established") {
        set(&f.established, f.not_established || f.stateless, "not_established/stateless");
      } else if (v == "not_established") {
        set(&f.not_established, f.established || f.stateless, "established/stateless");
      } else if (v == "stateless") {
        set(&f.stateless, f.established || f.not_established, "established/not_established");
      } else if (v == "only_stream") {
        set(&f.only_stream, f.no_stream, "no_stream");
      } else if (v == "no_stream") {
        set(&f.no_stream, f.only_stream, "only_stream");
      } else if (v == "only_frag" || v == "no_frag") {
        Unsupported("flow", "flow:" + v, "unsupported flow option " + Quote(v));
      } else {
        Fail("flow", "invalid flow option " + Quote(v));
      }
    }
    r_.flow = f;
  }

  void Finish() {
    if (r_.sid == 0) Fail("sid", "missing sid");
    // Suricata: a relative first content (nothing before it in the chain) is anchored at
    // the buffer start: distance becomes offset, within becomes depth.
    if (!r_.detects.empty() && r_.detects[0].kind == Detect::Kind::kContent) {
      Content& c = r_.detects[0].content;
      if (c.Relative() && c.distance.value_or(0) >= 0 && c.within.value_or(0) <= kMaxOffset &&
          c.distance.value_or(0) <= kMaxOffset) {
        if (c.distance.value_or(0) > 0) c.offset = c.distance;
        if (c.within) c.depth = c.within;
        c.distance.reset();
        c.within.reset();
      }
    }
    r_.priority = priority_ ? priority_ : (class_priority_ ? class_priority_ : 3);
    CheckReachable();
  }

  // Suricata refuses a rule whose content chain cannot fit in the payload its dsize
  // allows ("signature can't match"): the least end the chain can have, walking the
  // non-negated contents with their offsets and distances, must not pass dsize's max.
  void CheckReachable() {
    if (!r_.dsize) return;
    int64_t max_size = 65535;
    switch (r_.dsize->op) {
      case Dsize::Op::kEq: max_size = r_.dsize->lo; break;
      case Dsize::Op::kLt: max_size = int64_t(r_.dsize->lo) - 1; break;
      case Dsize::Op::kRange: max_size = int64_t(r_.dsize->hi) - 1; break;
      case Dsize::Op::kGt:
      case Dsize::Op::kNe: return;
    }
    int64_t end = 0;   // least end of the previous match
    int64_t need = 0;  // least buffer length the whole chain needs
    for (const Detect& d : r_.detects) {
      if (d.kind != Detect::Kind::kContent || d.content.negated) continue;
      const Content& c = d.content;
      const int64_t len = static_cast<int64_t>(c.bytes.size());
      int64_t start = c.Relative() ? end + c.distance.value_or(0) : c.offset.value_or(0);
      if (start < 0) start = 0;  // a match cannot start before the buffer
      end = start + len;
      need = std::max(need, end);
    }
    if (need > max_size) {
      Fail("dsize", "signature can't match: the contents need at least " + std::to_string(need) +
                        " bytes but dsize allows " + std::to_string(max_size));
    }
  }

  const ParseContext& ctx_;
  Rule& r_;
  std::set<std::string> seen_;
  std::vector<ContentState> content_state_;  // parallel to r_.detects
  int last_content_ = -1;
  bool fast_pattern_seen_ = false;
  int priority_ = 0;
  int class_priority_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------

bool AddressSet::Matches(const std::array<uint8_t, 16>& addr, bool v6) const {
  if (!any) {
    bool in = false;
    for (const Cidr& c : include) {
      if (CidrContains(c, addr, v6)) {
        in = true;
        break;
      }
    }
    if (!in) return false;
  }
  for (const Cidr& c : exclude) {
    if (CidrContains(c, addr, v6)) return false;
  }
  return true;
}

bool NumberMatch::Matches(uint32_t v) const {
  switch (op) {
    case Op::kEq: return v == lo;
    case Op::kLt: return v < lo;
    case Op::kGt: return v > lo;
    case Op::kLe: return v <= lo;
    case Op::kGe: return v >= lo;
    case Op::kNe: return v != lo;
    case Op::kRange: return v > lo && v < hi;
  }
  return false;
}

bool TcpFlagsMatch::Matches(uint8_t tcp_flags) const {
  const uint8_t f = static_cast<uint8_t>(tcp_flags & ~ignore);
  switch (mode) {
    case Mode::kExact: return f == flags;
    case Mode::kAll: return (f & flags) == flags;
    case Mode::kAny: return (f & flags) != 0;
    case Mode::kNot: return (f & flags) == 0;
  }
  return false;
}

bool PortSet::Matches(uint16_t port) const {
  if (!any) {
    bool in = false;
    for (const PortRange& r : include) {
      if (port >= r.lo && port <= r.hi) {
        in = true;
        break;
      }
    }
    if (!in) return false;
  }
  for (const PortRange& r : exclude) {
    if (port >= r.lo && port <= r.hi) return false;
  }
  return true;
}

std::string LoadError::ToString() const {
  return file + ":" + std::to_string(line) + ": sid " + (sid ? std::to_string(sid) : "?") + ": " +
         keyword + ": " + message;
}

int ActionOrder(Action a) {
  switch (a) {
    case Action::kPass: return 0;
    case Action::kDrop: return 1;
    case Action::kReject: return 2;
    case Action::kAlert: return 3;
  }
  return 3;
}

const char* ActionName(Action a) {
  switch (a) {
    case Action::kAlert: return "alert";
    case Action::kDrop: return "drop";
    case Action::kReject: return "reject";
    case Action::kPass: return "pass";
  }
  return "alert";
}

RuleSet ParseRules(const std::string& text, const std::string& file, const LoadOptions& options) {
  RuleSet out;
  try {
    std::map<std::string, std::string> vars = DefaultVariables();
    for (const auto& [name, value] : options.variables) {
      std::string n = name;
      if (!n.empty() && n.front() == '$') n.erase(0, 1);
      vars[n] = value;
    }
    ParseContext ctx;
    ctx.vars = &vars;
    ctx.classtypes = options.classtypes.empty() ? &DefaultClasstypes() : &options.classtypes;

    std::map<std::pair<uint32_t, uint32_t>, int> first_line;  // (gid, sid) -> line
    for (LogicalRule& lr : SplitRules(text)) {
      if (!lr.commented) ++out.rules_seen;
      uint32_t sid = 0;
      try {
        if (lr.too_long) Fail("rule", "rule longer than " + std::to_string(kMaxRuleBytes) + " bytes");
        Rule rule;
        rule.file = file;
        rule.line = lr.line;
        RuleBuilder builder(ctx, &rule);
        RuleText rt;
        std::vector<Option> opts;
        try {
          rt = SplitRuleText(lr.text);
          opts = SplitOptions(rt.options);
        } catch (const Problem&) {
          sid = ScanSid(lr.text);
          throw;
        }
        // The sid first, so that every later error can name it.
        for (const Option& o : opts) {
          int64_t v = 0;
          if (o.name == "sid" && o.has_value && ParseInt(o.value, 1, 0xffffffffLL, &v)) {
            sid = static_cast<uint32_t>(v);
            break;
          }
        }
        builder.Header(rt.fields);
        builder.Options(opts);
        const auto key = std::make_pair(rule.gid, rule.sid);
        if (lr.commented) {  // a disabled copy does not clash with the rule in force
          out.disabled.push_back(std::move(rule));
          continue;
        }
        if (const auto it = first_line.find(key); it != first_line.end()) {
          Fail("sid", "duplicate sid " + std::to_string(rule.sid) + " (gid " + std::to_string(rule.gid) +
                          "), first at " + file + ":" + std::to_string(it->second));
        }
        first_line.emplace(key, rule.line);
        out.rules.push_back(std::move(rule));
      } catch (const Problem& p) {
        if (lr.commented) {
          // A commented-out line that does not parse is just a comment (it may be
          // prose, or a rule for keywords this build lacks): never an error.
          ++out.disabled_unparsed;
        } else if (p.unsupported && options.lenient) {
          ++out.skipped_by_keyword[p.skip_key];
        } else {
          out.errors.push_back(LoadError{file, lr.line, sid, p.keyword, p.message});
        }
      } catch (const std::exception& e) {
        if (!lr.commented) {
          out.errors.push_back(LoadError{file, lr.line, sid, "rule", std::string("internal error: ") + e.what()});
        }
      }
    }
  } catch (const std::exception& e) {
    out.errors.push_back(LoadError{file, 0, 0, "rule", std::string("internal error: ") + e.what()});
  } catch (...) {
    out.errors.push_back(LoadError{file, 0, 0, "rule", "internal error"});
  }
  return out;
}

}  // namespace wardgate::rules
