// The signature matcher: Hyperscan prefilter + Suricata-semantics verification.
//
// Compile
//   Each rule gets at most one prefilter literal: the first non-negated content marked
//   fast_pattern, else the longest non-negated content (first on ties), as Suricata
//   picks it. The literal goes to Hyperscan (hs_compile_lit_multi, so any byte works)
//   with pattern id = rule index, HS_FLAG_SINGLEMATCH, and HS_FLAG_CASELESS for nocase.
//   A rule without one whose first pcre is plain (not negated, not /R, /A or /x, not
//   matching empty data) gives Hyperscan that pcre in HS_FLAG_PREFILTER mode: an
//   automaton that matches a superset of the pcre, without backtracking; PCRE2 then
//   confirms the match with its exact semantics. A database with such a pcre is
//   compiled as regexes (hs_compile_multi, its literals as \xNN escapes). The rest
//   (negated content / isdataat / dsize / header only, or a pcre Hyperscan cannot
//   take) are "always candidates" of every group they belong to, counted in stats().
//
//   Groups, one block-mode database and one always-candidate list each, chosen per
//   Match() call from the buffer kind and ctx.ip_proto (Suricata's per-protocol
//   signature group heads, split by buffer kind):
//     packet tcp  (6):    ip, tcp, tcp-pkt      minus flow:only_stream
//     packet udp  (17):   ip, udp               minus flow:only_stream
//     packet icmp (1/58): ip, icmp              minus flow:only_stream
//     packet other:       ip                    minus flow:only_stream
//     stream:             ip, tcp, tcp-stream   minus dsize, flow:no_stream, and rules
//                                               without payload detection
//   Each group splits into two heads by direction (flow:to_server rules only in the
//   to_server head, flow:to_client only in the to_client one), and in the tcp, udp
//   and stream groups, rules naming a few busy destination ports (PortKeyed,
//   kMinRulesPerPort) go to per-port databases. A head's port-less literals are
//   folded into each of its port databases while they number at most
//   kMaxFoldedLiterals, so one Match() runs one hs_scan; above that, a packet to a
//   keyed port runs two (port-less, then its port's). An ip rule's literal is in
//   every group; heads with the same literal set share one database (typically
//   stream = packet tcp, the two directions of a group without flow:to_* rules, and
//   udp = icmp = other when only ip rules have literals there).
//
// Match
//   hs_scan queues rule indices (deduplicated by a per-scratch epoch array); then the
//   always-candidates are queued, the queue sorted, and each candidate verified:
//   protocol, addresses/ports (both ways for `<>`), flow, dsize, detection chain.
//
// Detection chain (Suricata's DetectEngineContentInspection, same return codes:
// 1 match, 0 no match, -1 give up)
//   content: window [offset, offset+depth) (depth counts from offset, as Suricata
//   stores it), or relative to the end of the previous content/pcre match:
//   [prev+distance, prev+distance+within). A relative step with no previous match is
//   relative to the buffer start (for streams: the stream start). Found -> the next
//   step runs with prev = match end; if the rest fails, the content is searched again
//   from its match start + 1 only when a later step with `within` (or a relative pcre
//   or isdataat) refers to it (Suricata's WITHIN_NEXT / RELATIVE_NEXT); otherwise the
//   rule gives up. Total steps per rule per buffer are capped at kMaxVerifySteps (the
//   rule then does not fire and step_limit_hits counts it).
//   Streams: offsets are absolute from the stream start (data[0] is at
//   stream_offset); bytes before the window are unknown, so a content whose window
//   ends before data[0] cannot match. The LAST positive step (non-negated content or
//   pcre) must end after new_from (its last byte is new data), so a match is reported
//   once: on the first window that contains all of it. Chains without a positive step
//   (only negated content / isdataat) are evaluated on every stream window.
#include "rules/matcher.h"

#include "rules/address_index.h"
#include "rules/db_cache.h"

#include <hs.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <bit>
#include <map>
#include <mutex>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace wardgate::rules {
namespace {

// Suricata's defaults (detect.pcre.match-limit / match-limit-recursion).
constexpr uint32_t kPcreMatchLimit = 3500;
constexpr uint32_t kPcreDepthLimit = 1500;

enum Group : int { kGroupTcp, kGroupUdp, kGroupIcmp, kGroupOther, kGroupStream, kNumGroups };

constexpr std::array<uint8_t, 256> MakeFold() {
  std::array<uint8_t, 256> t{};
  for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>(i >= 'A' && i <= 'Z' ? i + 32 : i);
  return t;
}
constexpr std::array<uint8_t, 256> kFold = MakeFold();

// How common a byte is in payloads (higher: more common), coarsely: the verifier
// memchr()s for a content's rarest byte and compares around it.
constexpr std::array<uint8_t, 256> MakeCommonness() {
  std::array<uint8_t, 256> t{};
  for (int i = 0; i < 256; ++i) {
    uint8_t v = 60;                              // high bytes
    if (i < 0x20) v = 90;                        // control bytes
    if (i >= 0x21 && i < 0x7f) v = 80;           // punctuation
    if (i >= 'A' && i <= 'Z') v = 110;
    if (i >= 'a' && i <= 'z') v = 150;
    if (i >= '0' && i <= '9') v = 170;
    t[i] = v;
  }
  for (char c : std::string_view("etaoinsrhl")) t[static_cast<uint8_t>(c)] = 210;
  for (char c : std::string_view("ETAOINSR")) t[static_cast<uint8_t>(c)] = 130;
  for (char c : std::string_view("/.=,:-_&\"|^;")) t[static_cast<uint8_t>(c)] = 130;
  t['\r'] = t['\n'] = t[0xff] = 160;
  t[' '] = 250;
  t[0] = 255;
  return t;
}
constexpr std::array<uint8_t, 256> kCommonness = MakeCommonness();

bool IsAsciiLetter(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// One step of a rule's detection chain, with the compile-time facts Match needs.
struct Step {
  Detect::Kind kind = Detect::Kind::kContent;
  bool negated = false;
  bool relative = false;  // depends on the previous match end
  // Suricata's WITHIN_NEXT (content) / RELATIVE_NEXT (pcre): a later relative step
  // refers to this one, so another occurrence is worth trying when the rest fails.
  bool retry = false;
  bool last_positive = false;  // the chain's last non-negated content/pcre
  // content
  std::string bytes;  // lowered when nocase
  bool nocase = false;
  int anchor = -1;  // index of the rarest byte memchr() can look for (-1: none, nocase letters)
  bool startswith = false, endswith = false;
  bool has_offset = false, has_depth = false, has_distance = false, has_within = false;
  int64_t offset = 0, depth = 0, distance = 0, within = 0;
  // pcre
  pcre2_code* code = nullptr;
  bool anchored = false;
  // isdataat
  int64_t position = 0;
  // byte_test / byte_jump / byte_extract
  ByteTest byte_test;
  ByteJump byte_jump;
  ByteExtract byte_extract;
  // content: byte_extract variables standing for offset/depth/distance/within (-1: none)
  int8_t offset_var = -1, depth_var = -1, distance_var = -1, within_var = -1;
};

// One compiled flowbits operation: bit numbers from FlowbitRegistry.
struct BitOp {
  Flowbits::Op op = Flowbits::Op::kSet;
  std::vector<uint16_t> bits;
  bool any = false;
};

struct CompiledRule {
  std::vector<Step> steps;
  int prefilter = -1;        // index into rule.detects of the literal or pcre Hyperscan scans for, -1: none
  bool prefilter_is_pcre = false;
  unsigned pcre_hs_flags = 0;  // Hyperscan flags for that pcre
  bool header_any = false;   // addresses and ports all `any`: skip the header check
  bool packet_checks = false;  // itype/icode/icmp_id/icmp_seq/ttl/flags/ip_proto/sameip
  std::vector<BitOp> bit_checks;   // isset / isnotset: must hold before the chain runs
  std::vector<BitOp> bit_actions;  // set / unset / toggle: applied when the rule fires
  uint64_t order = 0;  // evaluation order: flowbit rank << 32 | rule index
  // No prefilter pattern: found by its source or destination address list, or by
  // its destination ports, rather than checked on every packet.
  enum class AddrKey : uint8_t { kNone, kSrc, kDst, kPort } addr_key = AddrKey::kNone;
};

struct GroupDb {
  hs_database_t* db = nullptr;   // owned by CompiledRules::Impl::databases (may be shared)
  std::vector<uint32_t> ids;     // the rules whose literals db holds, ascending
  std::vector<uint32_t> always;  // always-candidate rule indices, ascending
};

// Signature group heads, per protocol group and direction (Suricata's habit): a rule
// with flow:to_server is never scanned for on a to_client packet, and vice versa.
// Within one, the literals of rules that name their destination ports go into one
// database per set of rules sharing a port. When the port-less literals are few
// enough, they are folded into every port's database too, so a packet to a keyed port
// runs one scan; otherwise it scans the port-less database and its port's.
struct DirectionHeads {
  GroupDb base;                  // port-less rules (and their always-candidates)
  // Rules without a prefilter pattern but with a narrow address list: candidates only
  // for packets whose source (by_src) or destination (by_dst) address is in it.
  AddressIndex by_src, by_dst;
  // ... or naming a few destination ports: (port, rule), sorted, for the others.
  std::vector<std::pair<uint16_t, uint32_t>> always_by_port;
  std::vector<GroupDb> by_port;  // indexed like GroupHeads::port_index - 1
  bool folded = false;           // by_port databases include base's literals
};

struct GroupHeads {
  std::vector<uint16_t> port_index;  // dst port -> index into by_port + 1; 0: none (empty: no port rules)
  std::array<DirectionHeads, 2> dir;  // [0] to_client, [1] to_server
};

// An address list this narrow keys a rule without a prefilter pattern better than its
// ports do (IP-reputation lists); wider ones (e.g. $HOME_NET) only if it has no ports.
constexpr double kNarrowAddresses = 65536;

// A rule is keyed by destination port when it names a small, plain set of them (no
// `<>`, no exclusions); everything else stays in the protocol group's own database.
constexpr uint32_t kMaxKeyedPorts = 16;
// A port earns its own database only with this many rules: each database costs a
// Hyperscan compile (milliseconds).
constexpr size_t kMinRulesPerPort = 16;
// The per-scan candidate queue the Hyperscan callback writes into.
struct CandidateQueue {
  std::vector<uint32_t> cands;  // reserved to the rule count
  std::vector<uint32_t> mark;   // mark[rule] == epoch: queued in this call
  uint32_t epoch = 0;

  void Begin() {
    cands.clear();
    if (++epoch == 0) {  // wrapped: old marks could collide
      std::fill(mark.begin(), mark.end(), 0);
      epoch = 1;
    }
  }
  void Add(uint32_t rule) {
    if (mark[rule] == epoch) return;
    mark[rule] = epoch;
    cands.push_back(rule);
  }
};

int OnHsMatch(unsigned int id, unsigned long long /*from*/, unsigned long long /*to*/,
              unsigned int /*flags*/, void* context) {
  static_cast<CandidateQueue*>(context)->Add(id);
  return 0;
}

std::string Where(const Rule& r, const char* keyword) {
  return r.file + ":" + std::to_string(r.line) + ": sid " + std::to_string(r.sid) + ": " +
         keyword + ": ";
}

bool IsHttpBufferModifier(char c) {
  return std::string_view("UIPQHDMCKSYVWZ").find(c) != std::string_view::npos;  // K: Snort's raw cookie
}

// PCRE2 options for Suricata's modifier letters; false with *error on a bad letter.
bool PcreOptions(const Rule& rule, const Pcre& p, uint32_t* options, bool* relative,
                 std::string* error) {
  *options = PCRE2_NEVER_UTF;  // payloads are bytes: (*UTF) would make matching fail
  *relative = p.relative;
  for (char c : p.flags) {
    switch (c) {
      case 'i': *options |= PCRE2_CASELESS; break;
      case 's': *options |= PCRE2_DOTALL; break;
      case 'm': *options |= PCRE2_MULTILINE; break;
      case 'x': *options |= PCRE2_EXTENDED; break;
      case 'A': *options |= PCRE2_ANCHORED; break;
      case 'E': *options |= PCRE2_DOLLAR_ENDONLY; break;
      case 'G': *options |= PCRE2_UNGREEDY; break;
      case 'R': *relative = true; break;
      case 'B': break;  // Snort's rawbytes: the payload is raw already (Suricata accepts it)
      case 'O': break;  // match-limit override: the limits stay
      default:
        if (IsHttpBufferModifier(c)) {
          *error = Where(rule, "pcre") + "HTTP buffer modifier " + c + " not supported";
        } else {
          *error = Where(rule, "pcre") + "unknown modifier " + c;
        }
        return false;
    }
  }
  return true;
}

bool AddressAny(const AddressSet& a) { return a.any && a.include.empty() && a.exclude.empty(); }
bool PortsAny(const PortSet& p) { return p.any && p.include.empty() && p.exclude.empty(); }

bool InGroup(const Rule& r, int g) {
  const Protocol pr = r.header.protocol;
  if (g == kGroupStream) {
    if (pr != Protocol::kIp && pr != Protocol::kTcp && pr != Protocol::kTcpStream) return false;
    if (r.dsize || r.bsize || r.detects.empty()) return false;
    return !(r.flow && r.flow->no_stream);
  }
  if (r.flow && r.flow->only_stream) return false;
  switch (g) {
    case kGroupTcp:
      return pr == Protocol::kIp || pr == Protocol::kTcp || pr == Protocol::kTcpPkt;
    case kGroupUdp: return pr == Protocol::kIp || pr == Protocol::kUdp;
    case kGroupIcmp: return pr == Protocol::kIp || pr == Protocol::kIcmp;
    default: return pr == Protocol::kIp;
  }
}

bool PortKeyed(const Rule& r);

// Whether a rule can match in a direction (FlowMatches' to_server/to_client test).
bool InDirection(const Rule& r, bool to_server) {
  if (!r.flow) return true;
  return to_server ? !r.flow->to_client : !r.flow->to_server;
}

int SelectGroup(const InspectContext& ctx, const Buffer& buf) {
  if (buf.is_stream) return kGroupStream;
  switch (ctx.ip_proto) {
    case 6: return kGroupTcp;
    case 17: return kGroupUdp;
    case 1:
    case 58: return kGroupIcmp;
    default: return kGroupOther;
  }
}

bool ProtocolMatches(Protocol p, const InspectContext& ctx, bool stream) {
  switch (p) {
    case Protocol::kIp: return true;
    case Protocol::kTcp: return ctx.ip_proto == 6;
    case Protocol::kTcpPkt: return ctx.ip_proto == 6 && !stream;
    case Protocol::kTcpStream: return ctx.ip_proto == 6 && stream;
    case Protocol::kUdp: return ctx.ip_proto == 17 && !stream;
    case Protocol::kIcmp: return (ctx.ip_proto == 1 || ctx.ip_proto == 58) && !stream;
  }
  return false;
}

bool HeaderMatches(const Header& h, const InspectContext& ctx) {
  if (h.src.Matches(ctx.src_addr, ctx.v6) && h.src_ports.Matches(ctx.src_port) &&
      h.dst.Matches(ctx.dst_addr, ctx.v6) && h.dst_ports.Matches(ctx.dst_port)) {
    return true;
  }
  return h.bidirectional && h.src.Matches(ctx.dst_addr, ctx.v6) &&
         h.src_ports.Matches(ctx.dst_port) && h.dst.Matches(ctx.src_addr, ctx.v6) &&
         h.dst_ports.Matches(ctx.src_port);
}

bool FlowMatches(const FlowOption& f, const InspectContext& ctx, bool stream) {
  if (f.to_server && !ctx.to_server) return false;
  if (f.to_client && ctx.to_server) return false;
  if (f.established && !ctx.established) return false;
  if (f.not_established && ctx.established) return false;
  if (f.only_stream && !stream) return false;
  if (f.no_stream && stream) return false;
  return true;  // stateless: any state
}

bool DsizeMatches(const Dsize& d, uint16_t n) {
  switch (d.op) {
    case Dsize::Op::kEq: return n == d.lo;
    case Dsize::Op::kLt: return n < d.lo;
    case Dsize::Op::kGt: return n > d.lo;
    case Dsize::Op::kRange: return n > d.lo && n < d.hi;
    case Dsize::Op::kNe: return n != d.lo;
  }
  return false;
}

bool EqualAt(const uint8_t* d, const uint8_t* pat, int64_t n, bool nocase) {
  if (!nocase) return std::memcmp(d, pat, static_cast<size_t>(n)) == 0;
  for (int64_t k = 0; k < n; ++k) {
    if (kFold[d[k]] != pat[k]) return false;
  }
  return true;
}

// First occurrence of the step's content starting in [from, hi - len], or -1.
// memchr() for the content's rarest byte, then compare (glibc's memmem costs more
// to set up than these short searches take).
int64_t FindContent(const Step& st, const uint8_t* data, int64_t from, int64_t hi) {
  const int64_t n = static_cast<int64_t>(st.bytes.size());
  const int64_t last = hi - n;  // last possible start
  if (last < from) return -1;
  const auto* pat = reinterpret_cast<const uint8_t*>(st.bytes.data());
  if (st.anchor >= 0) {
    const int64_t k = st.anchor;
    const int c = pat[k];
    for (int64_t pos = from; pos <= last;) {
      const void* p = std::memchr(data + pos + k, c, static_cast<size_t>(last - pos + 1));
      if (!p) return -1;
      const int64_t start = static_cast<const uint8_t*>(p) - data - k;
      if (EqualAt(data + start, pat, n, st.nocase)) return start;
      pos = start + 1;
    }
    return -1;
  }
  for (int64_t i = from; i <= last; ++i) {
    if (kFold[data[i]] == pat[0] && EqualAt(data + i, pat, n, true)) return i;
  }
  return -1;
}

}  // namespace

// ---------------------------------------------------------------------------------

struct CompiledRules::Impl {
  std::vector<Rule> rules;
  std::vector<CompiledRule> compiled;
  std::array<GroupHeads, kNumGroups> heads;
  std::vector<hs_database_t*> databases;  // distinct databases (groups with equal literal sets share)
  CompileStats stats;
  uint32_t max_ovector = 1;
  bool any_pcre = false;
  bool any_flowbits = false;  // candidates are sorted by CompiledRule::order
  // Some tcp-pkt rule inspects payload: only then must a stream-covered packet buffer
  // be scanned at all (otherwise its bytes are matched on the stream alone).
  bool tcp_pkt_payload_rules = false;

  ~Impl() {
    for (hs_database_t* db : databases) hs_free_database(db);
    for (auto& c : compiled) {
      for (auto& s : c.steps) pcre2_code_free(s.code);
    }
  }
};

namespace {

// A worker's mutable matching state (MatchScratch::Impl).
struct ScratchState {
  const void* owner = nullptr;  // the CompiledRules::Impl this scratch belongs to
  hs_scratch_t* hs = nullptr;
  CandidateQueue queue;
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchCounters counters;

  ScratchState() = default;
  ScratchState(const ScratchState&) = delete;
  ScratchState& operator=(const ScratchState&) = delete;
  ~ScratchState() {
    hs_free_scratch(hs);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(jit_stack);
  }
};

// One verification of one rule's detection chain on one buffer.
class Chain {
 public:
  Chain(const CompiledRule& cr, const Buffer& buf, ScratchState& s)
      : steps_(cr.steps),
        data_(buf.data),
        len_(static_cast<int64_t>(buf.len)),
        base_(static_cast<int64_t>(buf.stream_offset)),
        new_from_(buf.is_stream ? static_cast<int64_t>(buf.new_from) : 0),
        s_(s) {}

  // Relative steps before any match are relative to the buffer (stream) start.
  bool Matches() { return Run(0, -base_) == 1; }
  bool limit_hit() const { return limit_hit_; }

 private:
  bool Spend() {
    if (++steps_taken_ > CompiledRules::kMaxVerifySteps) {
      limit_hit_ = true;
      return false;
    }
    return true;
  }

  // The window [lo, hi) (buffer coordinates) the content must lie in, given the
  // previous match end `prev`; false when it cannot hold the content.
  int64_t Var(int8_t var, int64_t fixed) const { return var >= 0 ? static_cast<int64_t>(vars_[var]) : fixed; }

  bool Window(const Step& st, int64_t prev, int64_t* lo, int64_t* hi) const {
    const int64_t n = static_cast<int64_t>(st.bytes.size());
    const int64_t offset = Var(st.offset_var, st.offset), depth = Var(st.depth_var, st.depth);
    const int64_t distance = Var(st.distance_var, st.distance), within = Var(st.within_var, st.within);
    int64_t l = 0, h = len_;
    if (st.relative) {
      const int64_t start = prev + (st.has_distance ? distance : 0);
      l = std::max<int64_t>(0, start);
      if (st.has_within) h = std::min(h, start + within);
    }
    if (st.has_offset) l = std::max(l, offset - base_);
    if (st.has_depth) h = std::min(h, (st.has_offset ? offset : 0) + depth - base_);
    if (st.startswith) h = std::min(h, n - base_);  // the match starts at stream byte 0
    if (st.endswith) {
      if (h < len_) return false;
      l = std::max(l, len_ - n);
    }
    *lo = l;
    *hi = h;
    return h - l >= n;
  }

  int Run(size_t i, int64_t prev) {
    if (!Spend()) return -1;
    if (i == steps_.size()) return 1;
    const Step& st = steps_[i];
    switch (st.kind) {
      case Detect::Kind::kContent: return RunContent(i, st, prev);
      case Detect::Kind::kPcre: return RunPcre(i, st, prev);
      case Detect::Kind::kIsDataAt: return RunIsDataAt(i, st, prev);
      case Detect::Kind::kByteTest: return RunByteTest(i, st, prev);
      case Detect::Kind::kByteJump: return RunByteJump(i, st, prev);
      case Detect::Kind::kByteExtract: return RunByteExtract(i, st, prev);
    }
    return 0;
  }

  // The number a byte_* step reads, and where its bytes end (buffer coordinates). It
  // reads after the previous match when relative, else from the buffer (stream) start.
  // False when the bytes are not all in the buffer, or (string) do not start with a
  // digit of the base.
  bool Read(const ByteRead& r, int64_t prev, uint64_t* value, int64_t* end) const {
    const int64_t off = Var(r.offset_var, r.offset);
    const int64_t pos = r.relative ? prev + off : off - base_;
    if (pos < 0 || pos + r.bytes > len_) return false;
    const uint8_t* p = data_ + pos;
    uint64_t v = 0;
    int64_t used = r.bytes;
    if (r.base == ByteRead::Base::kBinary) {
      for (int k = 0; k < r.bytes; ++k) {
        v = r.little_endian ? v | (uint64_t(p[k]) << (8 * k)) : (v << 8) | p[k];
      }
    } else {
      // Suricata converts the bytes as text like strtoull: leading digits of the base.
      const unsigned base = r.base == ByteRead::Base::kHex ? 16 : r.base == ByteRead::Base::kOct ? 8 : 10;
      used = 0;
      for (; used < r.bytes; ++used) {
        const uint8_t c = p[used];
        unsigned digit;
        if (c >= '0' && c <= '9') digit = c - '0';
        else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        else break;
        if (digit >= base) break;
        if (v > (UINT64_MAX - digit) / base) return false;
        v = v * base + digit;
      }
      if (used == 0) return false;
    }
    if (r.bitmask) {
      v &= r.bitmask;
      v >>= std::countr_zero(r.bitmask);
    }
    *value = v;
    *end = pos + used;
    return true;
  }

  int RunByteTest(size_t i, const Step& st, int64_t prev) {
    const ByteTest& t = st.byte_test;
    uint64_t v = 0;
    int64_t end = 0;
    const int fail = t.read.relative ? 0 : -1;
    if (!Read(t.read, prev, &v, &end)) return fail;
    const uint64_t want = t.value_var >= 0 ? vars_[t.value_var] : t.value;
    bool ok = false;
    switch (t.op) {
      case ByteTest::Op::kLt: ok = v < want; break;
      case ByteTest::Op::kGt: ok = v > want; break;
      case ByteTest::Op::kLe: ok = v <= want; break;
      case ByteTest::Op::kGe: ok = v >= want; break;
      case ByteTest::Op::kEq: ok = v == want; break;
      case ByteTest::Op::kAnd: ok = (v & want) != 0; break;
      case ByteTest::Op::kOr: ok = (v ^ want) != 0; break;
    }
    if (t.negated) ok = !ok;
    return ok ? Run(i + 1, prev) : fail;  // byte_test does not move the cursor
  }

  int RunByteJump(size_t i, const Step& st, int64_t prev) {
    const ByteJump& j = st.byte_jump;
    uint64_t v = 0;
    int64_t end = 0;
    const int fail = j.read.relative ? 0 : -1;
    if (!Read(j.read, prev, &v, &end)) return fail;
    if (v > (uint64_t(1) << 40)) return fail;  // no buffer is that long
    int64_t jump = static_cast<int64_t>(v) * j.multiplier;
    if (j.align && jump % 4 != 0) jump += 4 - jump % 4;
    jump += j.post_offset;
    // Suricata's DetectBytejumpDoMatch: from the buffer (stream) start, its end, or
    // the end of the bytes read; the target must lie inside the buffer.
    const int64_t target = j.from_beginning ? jump - base_ : j.from_end ? len_ + jump : end + jump;
    if (target < 0 || target >= len_) return fail;
    return Run(i + 1, target);
  }

  int RunByteExtract(size_t i, const Step& st, int64_t prev) {
    const ByteExtract& x = st.byte_extract;
    uint64_t v = 0;
    int64_t end = 0;
    const int fail = x.read.relative ? 0 : -1;
    if (!Read(x.read, prev, &v, &end)) return fail;
    if (v > (uint64_t(1) << 40)) return fail;
    v *= x.multiplier;
    if (x.align && v % x.align != 0) v += x.align - v % x.align;
    vars_[x.var] = v;
    return Run(i + 1, end);  // the cursor moves past the bytes read
  }

  int RunContent(size_t i, const Step& st, int64_t prev) {
    const int64_t n = static_cast<int64_t>(st.bytes.size());
    int64_t lo = 0, hi = 0;
    const bool fits = Window(st, prev, &lo, &hi);
    if (st.negated) {
      if (fits && FindContent(st, data_, lo, hi) >= 0) return st.relative ? 0 : -1;
      return Run(i + 1, prev);
    }
    // Only matches whose last byte is new data count for the last positive step.
    if (st.last_positive && new_from_ > 0) lo = std::max(lo, new_from_ - n + 1);
    if (!fits) return st.relative ? 0 : -1;
    int64_t from = lo;
    while (true) {
      const int64_t pos = FindContent(st, data_, from, hi);
      // Not found: an absolute content can never match, whatever came before.
      if (pos < 0) return st.relative ? 0 : -1;
      const int r = Run(i + 1, pos + n);
      if (r != 0) return r;
      if (!st.retry) return -1;  // nothing after depends on where this matched
      if (!Spend()) return -1;
      from = pos + 1;
    }
  }

  int RunPcre(size_t i, const Step& st, int64_t prev) {
    const int64_t base = st.relative ? std::clamp<int64_t>(prev, 0, len_) : 0;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(data_ + base);
    const auto subject_len = static_cast<PCRE2_SIZE>(len_ - base);
    PCRE2_SIZE start = 0;
    while (true) {
      const int rc = pcre2_match(st.code, subject, subject_len, start, 0, s_.md, s_.mctx);
      if (rc == PCRE2_ERROR_NOMATCH) return st.negated ? Run(i + 1, prev) : 0;
      if (rc < 0) {  // match/depth limit, JIT stack: treated as no match, as Suricata does
        ++s_.counters.pcre_errors;
        return 0;
      }
      if (st.negated) return 0;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s_.md);
      const int64_t end = base + static_cast<int64_t>(ov[1]);
      const PCRE2_SIZE next_start = ov[0] + 1;
      const bool old = st.last_positive && new_from_ > 0 && end <= new_from_;
      if (!old) {
        const int r = Run(i + 1, end);
        if (r != 0 || !st.retry) return r;
      }
      // An anchored pattern only matches at its start: no other occurrence to try.
      if (st.anchored || next_start > subject_len) return 0;
      if (!Spend()) return -1;
      start = next_start;
    }
  }

  int RunIsDataAt(size_t i, const Step& st, int64_t prev) {
    if (st.relative) {
      // Suricata: data iff prev + N <= len (N more bytes after the previous match).
      const bool data = prev + st.position <= len_;
      if (!data) return st.negated ? Run(i + 1, prev) : -1;
      return st.negated ? 0 : Run(i + 1, prev);
    }
    // Absolute: byte N exists (stream: absolute from the stream start).
    const bool data = st.position < base_ + len_;
    if (data) return st.negated ? -1 : Run(i + 1, prev);
    return st.negated ? Run(i + 1, prev) : -1;
  }

  const std::vector<Step>& steps_;
  const uint8_t* data_;
  int64_t len_;
  int64_t base_;      // stream offset of data_[0]
  int64_t new_from_;  // 0 for packets
  ScratchState& s_;
  int steps_taken_ = 0;
  bool limit_hit_ = false;
  std::array<uint64_t, 8> vars_{};  // byte_extract values (Rule::byte_vars), set in chain order
};

// Hyperscan flags to prefilter for a pcre (a superset of its matches, confirmed by
// PCRE2 afterwards); false when it cannot: negated, relative (/R: where it applies
// depends on the previous match), anchored (/A) or extended (/x) forms, patterns
// Hyperscan cannot parse even approximately, and patterns that match empty data.
// /G (ungreedy) and /E (dollar end-only) do not change whether a pattern matches
// somewhere, so they are fine.
bool PcrePrefilterFlags(const Pcre& p, unsigned* flags) {
  if (p.negated || p.relative || p.pattern.find('\0') != std::string::npos) return false;
  unsigned f = HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH;
  for (char c : p.flags) {
    switch (c) {
      case 'i': f |= HS_FLAG_CASELESS; break;
      case 's': f |= HS_FLAG_DOTALL; break;
      case 'm': f |= HS_FLAG_MULTILINE; break;
      case 'G': case 'E': case 'B': case 'O': break;
      default: return false;  // R, A, x
    }
  }
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_expression_info(p.pattern.c_str(), f, &info, &err) != HS_SUCCESS) {
    hs_free_compile_error(err);
    return false;
  }
  const bool empty = info->min_width == 0;
  std::free(info);  // allocated with Hyperscan's default allocator (malloc)
  if (empty) return false;
  *flags = f;
  return true;
}

// Compiles one rule's chain; false with *error (file:line: sid N: keyword: message).
bool CompileChain(const Rule& rule, CompiledRule* out, uint32_t* max_ovector, std::string* error) {
  out->steps.resize(rule.detects.size());
  int prev_pm = -1;  // last content or pcre step (negated included), as Suricata tracks it
  int last_positive = -1;
  for (size_t i = 0; i < rule.detects.size(); ++i) {
    const Detect& d = rule.detects[i];
    Step& st = out->steps[i];
    st.kind = d.kind;
    bool within = false;
    switch (d.kind) {
      case Detect::Kind::kContent: {
        const Content& c = d.content;
        if (c.bytes.empty()) {
          *error = Where(rule, "content") + "empty pattern";
          return false;
        }
        st.negated = c.negated;
        st.nocase = c.nocase;
        st.bytes = c.bytes;
        if (c.nocase) {
          for (char& ch : st.bytes) ch = static_cast<char>(kFold[static_cast<uint8_t>(ch)]);
        }
        for (size_t k = 0; k < st.bytes.size(); ++k) {
          const auto b = static_cast<uint8_t>(st.bytes[k]);
          if (c.nocase && IsAsciiLetter(b)) continue;
          if (st.anchor < 0 ||
              kCommonness[b] < kCommonness[static_cast<uint8_t>(st.bytes[st.anchor])]) {
            st.anchor = static_cast<int>(k);
          }
        }
        st.startswith = c.startswith;
        st.endswith = c.endswith;
        st.has_offset = c.offset.has_value();
        st.offset = c.offset.value_or(0);
        st.has_depth = c.depth.has_value();
        st.depth = c.depth.value_or(0);
        st.has_distance = c.distance.has_value();
        st.distance = c.distance.value_or(0);
        st.has_within = c.within.has_value();
        st.within = c.within.value_or(0);
        st.relative = c.Relative();
        st.offset_var = d.offset_var;
        st.depth_var = d.depth_var;
        st.distance_var = d.distance_var;
        st.within_var = d.within_var;
        within = st.has_within;
        break;
      }
      case Detect::Kind::kPcre: {
        uint32_t options = 0;
        bool relative = false;
        if (!PcreOptions(rule, d.pcre, &options, &relative, error)) return false;
        int errcode = 0;
        PCRE2_SIZE erroffset = 0;
        st.code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(d.pcre.pattern.data()),
                                d.pcre.pattern.size(), options, &errcode, &erroffset, nullptr);
        if (!st.code) {
          PCRE2_UCHAR msg[256];
          pcre2_get_error_message(errcode, msg, sizeof(msg));
          *error = Where(rule, "pcre") + "/" + d.pcre.pattern + "/: " +
                   reinterpret_cast<const char*>(msg) + " at offset " + std::to_string(erroffset);
          return false;
        }
        pcre2_jit_compile(st.code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter
        uint32_t captures = 0;
        pcre2_pattern_info(st.code, PCRE2_INFO_CAPTURECOUNT, &captures);
        *max_ovector = std::max(*max_ovector, captures + 1);
        st.negated = d.pcre.negated;
        st.relative = relative;
        st.anchored = (options & PCRE2_ANCHORED) != 0;
        break;
      }
      case Detect::Kind::kByteTest:
        st.byte_test = d.byte_test;
        st.relative = d.byte_test.read.relative;
        break;
      case Detect::Kind::kByteJump:
        st.byte_jump = d.byte_jump;
        st.relative = d.byte_jump.read.relative;
        break;
      case Detect::Kind::kByteExtract:
        st.byte_extract = d.byte_extract;
        st.relative = d.byte_extract.read.relative;
        break;
      case Detect::Kind::kIsDataAt:
        st.negated = d.isdataat.negated;
        st.relative = d.isdataat.relative;
        st.position = d.isdataat.position;
        break;
    }
    // Suricata's *_NEXT flags: a relative keyword marks the content/pcre before it.
    if (st.relative && prev_pm >= 0) {
      Step& prev = out->steps[prev_pm];
      if (prev.kind == Detect::Kind::kPcre || d.kind != Detect::Kind::kContent || within) {
        prev.retry = true;
      }
    }
    if (d.kind == Detect::Kind::kContent || d.kind == Detect::Kind::kPcre) {
      prev_pm = static_cast<int>(i);
      if (!st.negated) last_positive = static_cast<int>(i);
    }
  }
  if (last_positive >= 0) out->steps[last_positive].last_positive = true;

  // The prefilter literal: fast_pattern, else the longest non-negated content.
  int best = -1;
  for (size_t i = 0; i < rule.detects.size(); ++i) {
    const Detect& d = rule.detects[i];
    if (d.kind == Detect::Kind::kContent && !d.content.negated && d.content.fast_pattern) {
      best = static_cast<int>(i);
      break;
    }
  }
  if (best < 0) {
    for (size_t i = 0; i < rule.detects.size(); ++i) {
      const Detect& d = rule.detects[i];
      if (d.kind != Detect::Kind::kContent || d.content.negated) continue;
      if (best < 0 || d.content.bytes.size() > rule.detects[best].content.bytes.size()) {
        best = static_cast<int>(i);
      }
    }
  }
  out->prefilter = best;
  // No literal: a plain pcre Hyperscan can approximate becomes the prefilter.
  for (size_t i = 0; best < 0 && i < rule.detects.size(); ++i) {
    const Detect& d = rule.detects[i];
    if (d.kind != Detect::Kind::kPcre) continue;
    unsigned flags = 0;
    if (PcrePrefilterFlags(d.pcre, &flags)) {
      out->prefilter = static_cast<int>(i);
      out->prefilter_is_pcre = true;
      out->pcre_hs_flags = flags;
    }
    break;  // only the first pcre: later ones may be relative to it
  }
  const Header& h = rule.header;
  out->header_any = AddressAny(h.src) && AddressAny(h.dst) && PortsAny(h.src_ports) &&
                    PortsAny(h.dst_ports);
  out->packet_checks = rule.itype || rule.icode || rule.icmp_id || rule.icmp_seq || rule.ttl || rule.tcp_flags ||
                       rule.ip_proto || rule.sameip;
  for (const Flowbits& fb : rule.flowbits) {
    BitOp op;
    op.op = fb.op;
    op.any = fb.any;
    for (const std::string& name : fb.names) {
      const int bit = FlowbitRegistry::Bit(name);
      if (bit < 0) {
        *error = Where(rule, "flowbits") + "more than " + std::to_string(FlowbitRegistry::kMaxBits) +
                 " flowbit names in use";
        return false;
      }
      op.bits.push_back(static_cast<uint16_t>(bit));
    }
    const bool check = fb.op == Flowbits::Op::kIsSet || fb.op == Flowbits::Op::kIsNotSet;
    (check ? out->bit_checks : out->bit_actions).push_back(std::move(op));
  }
  return true;
}

// Header-like packet keywords.
bool PacketChecksMatch(const Rule& r, const InspectContext& ctx) {
  const bool icmp = ctx.ip_proto == 1 || ctx.ip_proto == 58;
  if ((r.itype || r.icode || r.icmp_id || r.icmp_seq) && !icmp) return false;
  if (r.itype && !r.itype->Matches(ctx.icmp_type)) return false;
  if (r.icode && !r.icode->Matches(ctx.icmp_code)) return false;
  if ((r.icmp_id || r.icmp_seq) && !ctx.icmp_echo) return false;
  if (r.icmp_id && *r.icmp_id != ctx.icmp_id) return false;
  if (r.icmp_seq && *r.icmp_seq != ctx.icmp_seq) return false;
  if (r.ttl && !r.ttl->Matches(ctx.ttl)) return false;
  if (r.tcp_flags && (ctx.ip_proto != 6 || !r.tcp_flags->Matches(ctx.tcp_flags))) return false;
  if (r.ip_proto && !r.ip_proto->Matches(ctx.ip_proto)) return false;
  if (r.sameip && (ctx.src_addr != ctx.dst_addr)) return false;
  return true;
}

bool BitSet(const InspectContext& ctx, uint16_t bit) { return ctx.flowbits && ctx.flowbits->IsSet(bit); }

bool BitChecksHold(const CompiledRule& cr, const InspectContext& ctx) {
  for (const BitOp& op : cr.bit_checks) {
    const bool want = op.op == Flowbits::Op::kIsSet;
    bool ok = !op.any;  // all: true until one fails; any: false until one holds
    for (uint16_t bit : op.bits) {
      const bool holds = BitSet(ctx, bit) == want;
      if (op.any && holds) {
        ok = true;
        break;
      }
      if (!op.any && !holds) {
        ok = false;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

void ApplyBitActions(const CompiledRule& cr, const InspectContext& ctx) {
  if (!ctx.flowbits) return;
  for (const BitOp& op : cr.bit_actions) {
    for (uint16_t bit : op.bits) {
      const bool set = op.op == Flowbits::Op::kSet || (op.op == Flowbits::Op::kToggle && !ctx.flowbits->IsSet(bit));
      if (set) {
        ctx.flowbits->Set(bit);
      } else {
        ctx.flowbits->Unset(bit);
      }
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------

struct MatchScratch::Impl : ScratchState {};

MatchScratch::~MatchScratch() = default;

const MatchCounters& MatchScratch::counters() const { return impl_->counters; }

CompiledRules::CompiledRules() : impl_(std::make_unique<Impl>()) {}
CompiledRules::~CompiledRules() = default;

const std::vector<Rule>& CompiledRules::rules() const { return impl_->rules; }
const CompileStats& CompiledRules::stats() const { return impl_->stats; }

int CompiledRules::prefilter_detect(uint32_t rule) const {
  return rule < impl_->compiled.size() ? impl_->compiled[rule].prefilter : -1;
}

std::unique_ptr<CompiledRules> CompiledRules::Compile(const RuleSet& set, std::string* error,
                                                      const CompileOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string scratch_error;
  if (!error) error = &scratch_error;
  if (set.rules.size() >= UINT32_MAX) {
    *error = "too many rules";
    return nullptr;
  }
  std::unique_ptr<CompiledRules> out(new CompiledRules());
  Impl& im = *out->impl_;
  im.rules = set.rules;
  im.compiled.resize(im.rules.size());

  for (size_t r = 0; r < im.rules.size(); ++r) {
    if (!CompileChain(im.rules[r], &im.compiled[r], &im.max_ovector, error)) return nullptr;
    for (const Detect& d : im.rules[r].detects) im.any_pcre |= d.kind == Detect::Kind::kPcre;
    im.tcp_pkt_payload_rules |=
        im.rules[r].header.protocol == Protocol::kTcpPkt && !im.compiled[r].steps.empty();
    // Suricata's flowbits signature order: setters, then set-and-check, then checkers.
    CompiledRule& cr = im.compiled[r];
    if (cr.prefilter < 0) {
      // The narrowest key: a short address list (IP reputation), else a few
      // destination ports, else any address list (e.g. $HOME_NET), else none.
      const Header& h = im.rules[r].header;
      const bool src = AddressIndex::Indexable(h.src), dst = AddressIndex::Indexable(h.dst);
      const double width = std::min(src ? AddressIndex::Width(h.src) : 1e300, dst ? AddressIndex::Width(h.dst) : 1e300);
      const auto by_address = src && AddressIndex::Width(h.src) <= width ? CompiledRule::AddrKey::kSrc
                              : dst                                     ? CompiledRule::AddrKey::kDst
                                                                        : CompiledRule::AddrKey::kNone;
      if (width <= kNarrowAddresses) {
        cr.addr_key = by_address;
      } else if (PortKeyed(im.rules[r])) {
        cr.addr_key = CompiledRule::AddrKey::kPort;
      } else {
        cr.addr_key = by_address;
      }
    }
    const bool sets = !cr.bit_actions.empty(), checks = !cr.bit_checks.empty();
    const uint64_t rank = sets && !checks ? 0 : sets ? 1 : checks ? 2 : 3;
    cr.order = rank << 32 | r;
    im.any_flowbits |= sets || checks;
  }
  if (!out->BuildDatabases(error, options.cache)) return nullptr;

  im.stats.rules = im.rules.size();
  for (const CompiledRule& cr : im.compiled) {
    if (cr.prefilter >= 0) {
      ++im.stats.prefilter_patterns;
    } else if (cr.addr_key == CompiledRule::AddrKey::kPort) {
      ++im.stats.port_indexed;
    } else if (cr.addr_key != CompiledRule::AddrKey::kNone) {
      ++im.stats.address_indexed;
    } else {
      ++im.stats.always_candidates;
    }
    im.stats.pcre_prefilters += cr.prefilter_is_pcre;
  }
  im.stats.compile_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

// Builds the group databases; false with *error if Hyperscan refuses.
namespace {

bool PortKeyed(const Rule& r) {
  const PortSet& p = r.header.dst_ports;
  if (r.header.bidirectional || p.any || p.include.empty() || !p.exclude.empty()) return false;
  uint32_t n = 0;
  for (const PortRange& pr : p.include) n += uint32_t(pr.hi) - pr.lo + 1;
  return n <= kMaxKeyedPorts;
}

// Compiles `group.ids`' prefilter patterns into group.db; false with *error on
// failure. Literals only: hs_compile_lit_multi (any byte, fast to compile). With
// pcre prefilters: one regex database, the literals written as \xNN escapes.
bool CompilePatterns(const std::vector<Rule>& rules, const std::vector<CompiledRule>& compiled, GroupDb& group,
                     DatabaseCache* cache, bool* from_cache, std::string* error) {
  bool regex = false;
  for (uint32_t r : group.ids) regex |= compiled[r].prefilter_is_pcre;
  std::vector<std::string> escaped;  // regex mode: owns the patterns exprs point to
  if (regex) escaped.reserve(group.ids.size());
  std::vector<const char*> exprs;
  std::vector<size_t> lens;
  std::vector<unsigned> flags;
  for (uint32_t r : group.ids) {
    const CompiledRule& cr = compiled[r];
    const Detect& d = rules[r].detects[cr.prefilter];
    if (cr.prefilter_is_pcre) {
      exprs.push_back(d.pcre.pattern.c_str());
      flags.push_back(cr.pcre_hs_flags);
      continue;
    }
    const Content& c = d.content;
    const unsigned f = HS_FLAG_SINGLEMATCH | (c.nocase ? HS_FLAG_CASELESS : 0u);
    if (regex) {
      std::string& e = escaped.emplace_back();
      static const char kHex[] = "0123456789abcdef";
      for (unsigned char ch : c.bytes) e += {'\\', 'x', kHex[ch >> 4], kHex[ch & 15]};
      exprs.push_back(e.c_str());
    } else {
      exprs.push_back(c.bytes.data());
      lens.push_back(c.bytes.size());
    }
    flags.push_back(f);
  }
  const std::vector<unsigned> ids(group.ids.begin(), group.ids.end());
  std::string key;
  if (cache && cache->ok()) {
    std::vector<std::string> patterns;
    patterns.reserve(exprs.size());
    for (size_t i = 0; i < exprs.size(); ++i) {
      patterns.emplace_back(exprs[i], regex ? std::strlen(exprs[i]) : lens[i]);
    }
    key = DatabaseCache::Key(!regex, HS_MODE_BLOCK, patterns, flags, ids);
    if (!key.empty()) {
      if (hs_database_t* db = cache->Load(key)) {
        group.db = db;
        *from_cache = true;
        return true;
      }
    }
  }
  hs_compile_error_t* cerr = nullptr;
  const auto n = static_cast<unsigned>(exprs.size());
  const hs_error_t rc =
      regex ? hs_compile_multi(exprs.data(), flags.data(), ids.data(), n, HS_MODE_BLOCK, nullptr, &group.db, &cerr)
            : hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(), n, HS_MODE_BLOCK, nullptr,
                                   &group.db, &cerr);
  if (rc == HS_SUCCESS) {
    if (!key.empty()) cache->Store(key, group.db);  // a failed store only costs a compile next time
    return true;
  }
  group.db = nullptr;
  const std::string msg = cerr && cerr->message ? cerr->message : "compile failed";
  const int at = cerr ? cerr->expression : -1;
  hs_free_compile_error(cerr);
  if (at >= 0 && static_cast<size_t>(at) < ids.size()) {
    const uint32_t r = ids[at];
    *error = Where(rules[r], compiled[r].prefilter_is_pcre ? "pcre" : "content") + "hyperscan: " + msg;
  } else {
    *error = "hyperscan: " + msg;
  }
  return false;
}

}  // namespace

bool CompiledRules::BuildDatabases(std::string* error, DatabaseCache* cache) {
  Impl& im = *impl_;
  // Equal rule lists compile once (the tcp packet and stream groups mostly agree, and
  // so do the two directions of a group without flow:to_* rules).
  std::map<std::vector<uint32_t>, hs_database_t*> compiled_dbs;
  auto build = [&](GroupDb& g) {
    if (g.ids.empty()) return true;
    if (const auto it = compiled_dbs.find(g.ids); it != compiled_dbs.end()) {
      g.db = it->second;
      return true;
    }
    bool from_cache = false;
    if (!CompilePatterns(im.rules, im.compiled, g, cache, &from_cache, error)) return false;
    im.stats.databases_from_cache += from_cache;
    compiled_dbs.emplace(g.ids, g.db);
    im.databases.push_back(g.db);
    ++im.stats.databases;
    size_t bytes = 0;
    if (hs_database_size(g.db, &bytes) == HS_SUCCESS) im.stats.database_bytes += bytes;
    return true;
  };
  for (int g = 0; g < kNumGroups; ++g) {
    GroupHeads& heads = im.heads[g];
    // Port-keyed rules (tcp, udp and stream groups) go to their ports' databases.
    const bool keyed_group = g == kGroupTcp || g == kGroupUdp || g == kGroupStream;
    // Rules per port first, so only ports with enough rules get a database.
    std::map<uint16_t, size_t> per_port;
    auto keyable = [&](size_t r) {
      return keyed_group && im.compiled[r].prefilter >= 0 && !im.compiled[r].prefilter_is_pcre && InGroup(im.rules[r], g) && PortKeyed(im.rules[r]);
    };
    for (size_t r = 0; r < im.rules.size(); ++r) {
      if (!keyable(r)) continue;
      for (const PortRange& pr : im.rules[r].header.dst_ports.include) {
        for (uint32_t port = pr.lo; port <= pr.hi; ++port) ++per_port[uint16_t(port)];
      }
    }
    auto busy_ports_only = [&](const Rule& rule) {
      for (const PortRange& pr : rule.header.dst_ports.include) {
        for (uint32_t port = pr.lo; port <= pr.hi; ++port) {
          if (per_port[uint16_t(port)] < kMinRulesPerPort) return false;
        }
      }
      return true;
    };
    // Port -> its keyed rules (both directions); ports with equal lists share an index.
    std::map<uint16_t, std::vector<uint32_t>> port_rules;
    std::array<std::vector<uint32_t>, 2> portless;
    for (size_t r = 0; r < im.rules.size(); ++r) {
      const Rule& rule = im.rules[r];
      if (!InGroup(rule, g)) continue;
      const uint32_t idx = static_cast<uint32_t>(r);
      if (keyable(r) && busy_ports_only(rule)) {
        for (const PortRange& pr : rule.header.dst_ports.include) {
          for (uint32_t port = pr.lo; port <= pr.hi; ++port) port_rules[uint16_t(port)].push_back(idx);
        }
        continue;
      }
      for (int d = 0; d < 2; ++d) {
        if (!InDirection(rule, d == 1)) continue;
        DirectionHeads& dh = heads.dir[d];
        const CompiledRule& cr = im.compiled[r];
        if (cr.prefilter >= 0) {
          portless[d].push_back(idx);
        } else if (cr.addr_key == CompiledRule::AddrKey::kNone) {
          dh.base.always.push_back(idx);
        } else if (cr.addr_key == CompiledRule::AddrKey::kPort) {
          for (const PortRange& pr : rule.header.dst_ports.include) {
            for (uint32_t port = pr.lo; port <= pr.hi; ++port) dh.always_by_port.emplace_back(uint16_t(port), idx);
          }
        } else {
          // `<>` rules match with the addresses swapped too: look both packet addresses up.
          const bool by_src = cr.addr_key == CompiledRule::AddrKey::kSrc;
          const AddressSet& side = by_src ? rule.header.src : rule.header.dst;
          if (by_src || rule.header.bidirectional) dh.by_src.Add(side, idx);
          if (!by_src || rule.header.bidirectional) dh.by_dst.Add(side, idx);
        }
      }
    }
    std::map<std::vector<uint32_t>, uint16_t> by_rules;
    std::vector<const std::vector<uint32_t>*> port_sets;  // by_port index - 1 -> rules (keys of by_rules)
    if (!port_rules.empty()) {
      heads.port_index.assign(65536, 0);
      for (const auto& [port, ids] : port_rules) {
        auto [it, inserted] = by_rules.emplace(ids, uint16_t(port_sets.size() + 1));
        if (inserted) port_sets.push_back(&it->first);
        heads.port_index[port] = it->second;
      }
    }
    for (int d = 0; d < 2; ++d) {
      DirectionHeads& dh = heads.dir[d];
      dh.by_src.Build();
      dh.by_dst.Build();
      std::sort(dh.always_by_port.begin(), dh.always_by_port.end());
      dh.base.ids = portless[d];
      if (!build(dh.base)) return false;
      dh.folded = portless[d].size() <= CompiledRules::kMaxFoldedLiterals;
      for (const std::vector<uint32_t>* set : port_sets) {
        GroupDb db;
        for (uint32_t r : *set) {
          if (InDirection(im.rules[r], d == 1)) db.ids.push_back(r);
        }
        if (dh.folded && !db.ids.empty()) {
          std::vector<uint32_t> merged;
          std::merge(db.ids.begin(), db.ids.end(), portless[d].begin(), portless[d].end(),
                     std::back_inserter(merged));
          db.ids = std::move(merged);
        }
        // A folded port whose rules are all of the other direction scans base instead.
        if (dh.folded && db.ids.empty()) db.ids = portless[d];
        if (!build(db)) return false;
        dh.by_port.push_back(std::move(db));
      }
    }
  }
  return true;
}

int FlowbitRegistry::Bit(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, int> bits;
  std::lock_guard<std::mutex> lock(mu);
  if (const auto it = bits.find(name); it != bits.end()) return it->second;
  if (bits.size() >= kMaxBits) return -1;
  const int bit = static_cast<int>(bits.size());
  bits.emplace(name, bit);
  return bit;
}

std::unique_ptr<MatchScratch> CompiledRules::NewScratch() const {
  std::unique_ptr<MatchScratch> scratch(new MatchScratch());
  scratch->impl_ = std::make_unique<MatchScratch::Impl>();
  MatchScratch::Impl& s = *scratch->impl_;
  s.owner = impl_.get();
  for (hs_database_t* db : impl_->databases) {
    if (hs_alloc_scratch(db, &s.hs) != HS_SUCCESS) return nullptr;
  }
  const size_t n = impl_->rules.size();
  s.queue.cands.reserve(n);
  s.queue.mark.assign(n, 0);
  if (impl_->any_pcre) {
    s.md = pcre2_match_data_create(impl_->max_ovector, nullptr);
    s.mctx = pcre2_match_context_create(nullptr);
    s.jit_stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, nullptr);
    if (!s.md || !s.mctx || !s.jit_stack) return nullptr;
    pcre2_set_match_limit(s.mctx, kPcreMatchLimit);
    pcre2_set_depth_limit(s.mctx, kPcreDepthLimit);
    pcre2_jit_stack_assign(s.mctx, nullptr, s.jit_stack);
    // Warm up: the interpreter (if JIT is unavailable) allocates its frame vector in
    // the match data on first use; do that here rather than in Match().
    for (const auto& c : impl_->compiled) {
      for (const auto& st : c.steps) {
        if (st.code) {
          static const uint8_t kEmpty = 0;
          pcre2_match(st.code, &kEmpty, 0, 0, 0, s.md, s.mctx);
        }
      }
    }
  }
  return scratch;
}

void CompiledRules::Match(MatchScratch& scratch, const InspectContext& ctx, const Buffer& buf,
                          std::vector<uint32_t>& fired) const {
  MatchScratch::Impl& s = *scratch.impl_;
  ++s.counters.scans;
  if (s.owner != impl_.get()) {
    ++s.counters.wrong_scratch;
    return;
  }
  const Impl& im = *impl_;
  const GroupHeads& heads = im.heads[SelectGroup(ctx, buf)];
  const DirectionHeads& dh = heads.dir[ctx.to_server ? 1 : 0];
  const uint16_t port = heads.port_index.empty() ? 0 : heads.port_index[ctx.dst_port];
  const GroupDb* port_db = port ? &dh.by_port[port - 1] : nullptr;
  const GroupDb* scans[2] = {port_db && dh.folded ? port_db : &dh.base, port_db && !dh.folded ? port_db : nullptr};
  const bool empty = buf.len == 0 || buf.data == nullptr;

  s.queue.Begin();
  // A stream-covered packet: skip the scan unless a tcp-pkt rule could use it (its
  // bytes were, or will be, scanned once on the stream).
  const bool scan_payload = !empty && !(buf.stream_covered && !im.tcp_pkt_payload_rules);
  // Hyperscan takes an unsigned length; payloads and stream windows are far smaller.
  const auto len = static_cast<unsigned>(std::min<size_t>(buf.len, UINT_MAX));
  for (const GroupDb* db : scans) {
    if (!db || !db->db || !scan_payload) continue;
    if (hs_scan(db->db, reinterpret_cast<const char*>(buf.data), len, 0, s.hs, OnHsMatch, &s.queue) !=
        HS_SUCCESS) {
      ++s.counters.hs_errors;
    }
  }
  auto add_always = [&](uint32_t r) {
    if (empty && !im.compiled[r].steps.empty()) return;  // payload rules need a payload
    s.queue.Add(r);
  };
  for (uint32_t r : dh.base.always) add_always(r);
  if (!dh.by_src.empty()) dh.by_src.ForEach(ctx.src_addr, ctx.v6, add_always);
  if (!dh.by_dst.empty()) dh.by_dst.ForEach(ctx.dst_addr, ctx.v6, add_always);
  if (!dh.always_by_port.empty()) {
    auto it = std::lower_bound(dh.always_by_port.begin(), dh.always_by_port.end(),
                               std::make_pair(ctx.dst_port, uint32_t(0)));
    for (; it != dh.always_by_port.end() && it->first == ctx.dst_port; ++it) add_always(it->second);
  }
  if (im.any_flowbits) {
    std::sort(s.queue.cands.begin(), s.queue.cands.end(),
              [&im](uint32_t a, uint32_t b) { return im.compiled[a].order < im.compiled[b].order; });
  } else {
    std::sort(s.queue.cands.begin(), s.queue.cands.end());
  }
  s.counters.candidates += s.queue.cands.size();

  for (uint32_t r : s.queue.cands) {
    const Rule& rule = im.rules[r];
    const CompiledRule& cr = im.compiled[r];
    if (!ProtocolMatches(rule.header.protocol, ctx, buf.is_stream)) continue;
    // A packet whose bytes the stream inspects: tcp/ip payload rules match there, once.
    if (buf.stream_covered && !cr.steps.empty() && rule.header.protocol != Protocol::kTcpPkt) continue;
    // Cheap checks first: address lists can be long.
    if (cr.packet_checks && !PacketChecksMatch(rule, ctx)) continue;
    if (rule.flow && !FlowMatches(*rule.flow, ctx, buf.is_stream)) continue;
    if (rule.dsize && (buf.is_stream || !DsizeMatches(*rule.dsize, ctx.dsize))) continue;
    if (rule.bsize && (buf.is_stream || !rule.bsize->Matches(static_cast<uint32_t>(buf.len)))) continue;
    if (!cr.header_any && !HeaderMatches(rule.header, ctx)) continue;
    if (!cr.bit_checks.empty() && !BitChecksHold(cr, ctx)) continue;
    if (cr.steps.empty()) {
      if (buf.is_stream) continue;  // header-only rules: once per packet
    } else {
      if (empty) continue;
      Chain chain(cr, buf, s);
      const bool ok = chain.Matches();
      if (chain.limit_hit()) ++s.counters.step_limit_hits;
      if (!ok) continue;
    }
    fired.push_back(r);
    ++s.counters.fired;
    if (!cr.bit_actions.empty()) ApplyBitActions(cr, ctx);
  }
}

}  // namespace wardgate::rules
