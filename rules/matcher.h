// The signature matcher: rules compiled to Hyperscan prefilter databases, and the
// verification of a rule's full detection chain after a prefilter hit.
//
// Threads: Compile() runs on the control thread (or in wardctl); the result is
// immutable and shared by all workers as part of a generation. Each worker owns one
// MatchScratch per CompiledRules (Snort 3's habit: the scratch belongs to the same
// generation as its database). Match() never allocates after the scratch is built,
// never throws, and only queues candidates in the Hyperscan callback; rules are
// verified after the scan.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rules/rule.h"

namespace wardgate::rules {

// A flow's flowbits, kept by the flow's owner (the worker); the matcher reads and
// writes them while verifying rules on that flow. Bits are numbered by
// FlowbitRegistry (stable for the life of the process, across rule reloads).
class FlowBits {
 public:
  virtual bool IsSet(uint32_t bit) const = 0;
  virtual void Set(uint32_t bit) = 0;    // may be refused for lack of storage (the owner counts it)
  virtual void Unset(uint32_t bit) = 0;

 protected:
  ~FlowBits() = default;
};

// Flowbit names -> bit numbers, process-wide and append-only, so a flow's bits keep
// their meaning when a new rule set is loaded. Thread-safe (used when compiling).
class FlowbitRegistry {
 public:
  static constexpr uint32_t kMaxBits = 512;  // FlowBits storage per flow: 64 bytes
  // The bit of `name`, assigned on first use; -1 when all kMaxBits are taken.
  static int Bit(const std::string& name);
  static size_t size();
};

// What the matcher knows about the data being inspected.
struct InspectContext {
  uint8_t ip_proto = 0;       // 6 TCP, 17 UDP, 1/58 ICMP, other
  bool v6 = false;
  std::array<uint8_t, 16> src_addr{};  // of this packet (network order, IPv4 in first 4)
  std::array<uint8_t, 16> dst_addr{};
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  bool to_server = true;      // direction relative to the flow's initiator
  bool established = false;   // TCP: handshake seen (or picked up midstream); UDP: reply seen
  bool stateless = false;     // no flow context (offline, table full)
  uint16_t dsize = 0;         // payload bytes of this packet
  uint8_t ttl = 0;            // IPv4 TTL / IPv6 hop limit
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0, icmp_code = 0;
  bool icmp_echo = false;     // an echo request/reply: icmp_id/icmp_seq are valid
  uint16_t icmp_id = 0, icmp_seq = 0;
  FlowBits* flowbits = nullptr;  // null: no flow (isset false, set ignored)
};

// The buffer to inspect. For a packet payload: the payload, stream_offset 0,
// new_from 0. For a TCP stream: a window of the reassembled, in-order stream; data[0]
// is at absolute stream offset `stream_offset`; bytes before `new_from` were already
// inspected (a rule fires only if its match ends at or after new_from), so content
// spanning segment boundaries matches once, and retransmitted data is not re-scanned.
struct Buffer {
  const uint8_t* data = nullptr;
  size_t len = 0;
  uint64_t stream_offset = 0;
  size_t new_from = 0;
  bool is_stream = false;     // rules for tcp-pkt skip stream buffers, tcp-stream packets
  // A TCP packet's payload whose bytes the stream stage inspects (or inspected): rules
  // with a payload chain for `tcp`/`ip` are skipped here (they match on the stream,
  // once); tcp-pkt rules and rules without payload detection still apply.
  bool stream_covered = false;
};

class CompiledRules;
class DatabaseCache;

struct CompileOptions {
  // Compiled Hyperscan databases are looked up here (keyed by their exact compile
  // inputs) and stored after a compile; null: always compile.
  DatabaseCache* cache = nullptr;
};

// What one scratch's Match() calls did (per worker; read on the worker or racily for
// stats). Verification budget: a rule's detection chain may take at most
// CompiledRules::kMaxVerifySteps content searches / pcre runs per buffer (Suricata's
// inspection recursion limit); a rule abandoned at the limit does not fire.
struct MatchCounters {
  uint64_t scans = 0;             // Match() calls
  uint64_t candidates = 0;        // rules verified (prefilter hits + always-candidates)
  uint64_t fired = 0;             // rules appended to `fired`
  uint64_t step_limit_hits = 0;   // verifications abandoned at kMaxVerifySteps
  uint64_t pcre_errors = 0;       // pcre2_match errors (match/depth limit, JIT stack): no match
  uint64_t hs_errors = 0;         // hs_scan failures (the scan's candidates are still verified)
  uint64_t wrong_scratch = 0;     // Match() with a scratch of another CompiledRules: nothing fired
};

// Per-worker scratch of one CompiledRules: Hyperscan scratch and candidate queue.
class MatchScratch {
 public:
  ~MatchScratch();
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;

  const MatchCounters& counters() const;

 private:
  friend class CompiledRules;
  MatchScratch() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct CompileStats {
  size_t rules = 0;
  size_t prefilter_patterns = 0;   // rules with a pattern in Hyperscan (once, however many groups)
  size_t pcre_prefilters = 0;      // of those, rules whose pattern is their pcre (no usable literal)
  size_t address_indexed = 0;      // rules without one, checked only for packets to/from their addresses
  size_t port_indexed = 0;         // ... or only for packets to their destination ports
  size_t always_candidates = 0;    // rules with none of these (checked every time)
  size_t databases = 0;            // distinct Hyperscan databases (group heads with equal literal sets share)
  size_t database_bytes = 0;
  size_t databases_from_cache = 0;  // of `databases`, loaded from the disk cache
  double compile_ms = 0;
};

class CompiledRules {
 public:
  // Compiles a parsed rule set. Returns nullptr and sets *error on failure (e.g. a
  // pcre that PCRE2 refuses: "file:line: sid N: pcre: message").
  static std::unique_ptr<CompiledRules> Compile(const RuleSet& set, std::string* error,
                                                const CompileOptions& options = {});
  ~CompiledRules();

  // A scratch for one worker; call on the control thread when publishing.
  std::unique_ptr<MatchScratch> NewScratch() const;

  // Appends to `fired` the indices (into rules()) of every rule whose header,
  // flow, dsize, packet checks, flowbit checks and full detection chain match, each
  // at most once per call, in evaluation order: rules that set flowbits first,
  // then those that set and check, then those that only check, then the rest
  // (Suricata's signature order), each group in file order. A rule that fires
  // applies its flowbits set/unset/toggle at once, so later rules see them.
  void Match(MatchScratch& scratch, const InspectContext& ctx, const Buffer& buf,
             std::vector<uint32_t>& fired) const;

  // Rules that have no payload detection (header/flow/dsize only): evaluated once
  // per packet with an empty buffer by the same Match() call (buf.len may be 0).

  const std::vector<Rule>& rules() const;
  const CompileStats& stats() const;

  // The index into rules()[rule].detects of the pattern given to Hyperscan for that
  // rule (fast_pattern, else the longest non-negated content, first on ties; without
  // one, the first pcre if Hyperscan can prefilter for it), or -1 for an
  // always-candidate rule. For wardctl explanations and tests.
  int prefilter_detect(uint32_t rule) const;

  static constexpr int kMaxVerifySteps = 1000;
  // Port-less literals are copied into each port group's database (one scan per
  // packet instead of two) while a group head has at most this many: beyond it the
  // copies cost more compile time (~0.3 s per 1k literals) than the second scan saves.
  static constexpr size_t kMaxFoldedLiterals = 256;

 private:
  CompiledRules();
  bool BuildDatabases(std::string* error, DatabaseCache* cache);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wardgate::rules
