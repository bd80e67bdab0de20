// Thresholding, in Suricata's semantics: the `threshold:` and `detection_filter:` rule
// options, threshold.config files (suppress, threshold/event_filter, rate_filter), and
// the runtime that decides, for each rule hit, whether the alert is logged and whether
// the rule's action (drop, reject, pass) applies. The Suricata sources each decision
// follows are cited in threshold.cc.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/rule.h"

namespace wardgate::rules {

// The value of a `threshold:` option (`type limit|threshold|both, track
// by_src|by_dst|by_rule|by_both|by_flow, count N, seconds N`, any order, all four once)
// or, with detection_filter, of a `detection_filter:` option (`track ..., count N,
// seconds N`, no type). count and seconds are 1..4294967295. On failure returns false,
// leaves *out alone and sets *error ("missing 'count'", "track: unknown track 'x' ...").
// Never throws.
bool ParseThresholdOption(std::string_view value, bool detection_filter, Threshold* out,
                          std::string* error);

// threshold.config entries. gen_id 0 with sig_id 0 applies to every rule; gen_id G with
// sig_id 0 to every rule of generator G. file/line say where the entry was written.
struct SuppressEntry {
  // kRule: no `track`/`ip`: the rule never logs an alert (its action still applies).
  enum class Track : uint8_t { kRule, kBySrc, kByDst, kByEither } track = Track::kRule;
  uint32_t gid = 0, sid = 0;
  AddressSet addresses;  // the `ip` value (any = false)
  std::string file;
  int line = 0;
};

// `threshold ...` and `event_filter ...` (the same thing).
struct EventFilterEntry {
  uint32_t gid = 0, sid = 0;
  Threshold threshold;
  std::string file;
  int line = 0;
};

struct RateFilterEntry {
  uint32_t gid = 0, sid = 0;
  Threshold::Track track = Threshold::Track::kBySrc;
  uint32_t count = 1;
  uint32_t seconds = 60;
  Action new_action = Action::kAlert;
  uint32_t timeout = 0;  // seconds the new action stays in force
  std::string file;
  int line = 0;
};

struct ThresholdConfig {
  std::vector<SuppressEntry> suppress;
  std::vector<EventFilterEntry> event_filters;
  std::vector<RateFilterEntry> rate_filters;
  bool empty() const { return suppress.empty() && event_filters.empty() && rate_filters.empty(); }
};

// Parses threshold.config text: one directive per line (`\` continues a line), `#`
// comments, blank lines; the fields after the directive in any order. Every bad line
// adds "file:line: message" to *errors. Returns true and appends the entries to *out
// only when the whole text is valid (entries already in *out count for duplicates, so
// several files can be merged); otherwise *out is left alone. Never throws.
bool ParseThresholdConfig(const std::string& text, const std::string& file, ThresholdConfig* out,
                          std::vector<std::string>* errors);

// What a valid config does not do with these rules, as "file:line: message": entries
// naming a rule that is not loaded, and rate_filters that never apply because a
// threshold takes precedence (see ThresholdEngine). For operators; not errors.
std::vector<std::string> ThresholdConfigWarnings(const ThresholdConfig& config,
                                                 const std::vector<Rule>& rules);

// The packet a rule hit on. Addresses as in Cidr (16 bytes, IPv4 in the first 4).
struct AlertSubject {
  std::array<uint8_t, 16> src{}, dst{};
  bool v6 = false;
  uint64_t flow_id = 0;  // 0: no flow
};

// What to do with one rule hit. apply_action false: the hit is as if the rule had not
// matched (no drop/reject/pass, no alert). log_alert false with apply_action true: the
// action applies but no alert is logged. new_action: a rate_filter replaced the rule's
// action for this hit. The caller still honours the rule's own noalert.
struct ThresholdDecision {
  bool apply_action = true;
  bool log_alert = true;
  std::optional<Action> new_action;
};

struct ThresholdCounters {
  uint64_t checks = 0;         // Check calls
  uint64_t suppressed = 0;     // alerts removed by a suppress entry
  uint64_t thresholded = 0;    // alerts removed by threshold/event_filter/detection_filter
  uint64_t rate_filtered = 0;  // hits whose action a rate_filter replaced
  uint64_t table_full = 0;     // hits decided without state: no free or expired entry
  uint64_t entries = 0;        // tracking entries in use now
};

// The runtime state of thresholds for one config generation. Thread-safe: workers call
// Check concurrently (one mutex around the tracking table); Applies and the config are
// immutable after construction and read lock-free.
//
// Per rule, at most one rate or threshold filter applies (besides suppress entries),
// chosen by precedence: an exact (gid, sid) threshold/event_filter, else the rule's own
// threshold/detection_filter, else an exact rate_filter, else the gen-wide (gid, 0)
// threshold/event_filter, gen-wide rate_filter, global (0, 0) threshold/event_filter,
// global rate_filter. Every matching suppress entry (exact, gen-wide, global) applies.
//
// The table holds `capacity` entries (about 100 bytes each), allocated at construction
// (the only allocation: Check never allocates). When it is full, a new
// key first reclaims entries whose window (and rate_filter timeout) has passed; if
// none has, table_full is counted and the hit is decided as the first hit of its key
// (nothing is stored).
class ThresholdEngine {
 public:
  static constexpr size_t kDefaultCapacity = 65536;
  static constexpr size_t kMaxCapacity = size_t{1} << 28;  // larger requests are clamped

  explicit ThresholdEngine(ThresholdConfig config, size_t capacity = kDefaultCapacity);
  ~ThresholdEngine();
  ThresholdEngine(const ThresholdEngine&) = delete;
  ThresholdEngine& operator=(const ThresholdEngine&) = delete;

  // True if Check can return anything but the default decision for this rule: it has a
  // threshold or detection_filter, or a config entry names its (gid, sid), its gid, or
  // all rules. Lock-free; callers skip Check when false.
  bool Applies(const Rule& rule) const;

  // One hit of `rule` on `subject` at `now_ns` (the caller's monotonic clock).
  ThresholdDecision Check(const Rule& rule, const AlertSubject& subject, uint64_t now_ns);

  ThresholdCounters counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wardgate::rules
