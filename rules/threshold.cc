// Thresholding in Suricata's semantics. The behaviour follows Suricata's sources (OISF
// suricata master, 2026): src/detect-threshold.c and src/detect-detection-filter.c (the
// rule options), src/util-threshold-config.c (threshold.config), src/detect-engine-
// threshold.c (ThresholdSetup / ThresholdCheckUpdate: the counting), and
// src/detect-engine-alert.c (PacketAlertHandle / PacketAlertFinalize: what a result
// means for the packet). Where this code differs, the comment says so and why.
//
// Suricata's per-hit result codes, and how they map to ThresholdDecision
// (PacketAlertFinalize: `res > 0` applies the actions, `res == 0 || res == 2` removes
// the alert):
//   1  apply the action, log the alert        -> {apply_action, log_alert}
//   2  apply the action, no alert             -> {apply_action, !log_alert}
//   0  neither (as if the rule had not matched) -> {!apply_action, !log_alert}
// So a suppressed or over-limit `drop` rule still drops (suricata-verify
// threshold-config-suppress-bysrc-ip: 19 drops, 4 alerts), while a `threshold` below its
// count or a `detection_filter` below its count does not drop. (The user guide says
// drop applies "to each packet"; the code returns 0 for those, and we follow the code.)
#include "rules/threshold.h"

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <random>
#include <set>
#include <unordered_map>
#include <utility>

#include "rules/text.h"

namespace wardgate::rules {
namespace {

constexpr size_t kMaxConfigLine = 64 * 1024;  // one logical threshold.config line
constexpr uint64_t kNsPerSec = 1'000'000'000;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();

using text::IsBlank;
using text::Lower;
using text::Quote;
using text::ToLower;
using text::Trim;

// Decimal digits only (no sign), value in [lo, hi].
bool ParseU32(std::string_view s, uint32_t lo, uint32_t hi, uint32_t* out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v < lo || v > hi) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool NumberField(std::string_view key, std::string_view value, uint32_t lo, uint32_t* out,
                 std::string* error) {
  if (ParseU32(value, lo, kU32Max, out)) return true;
  *error = std::string(key) + ": " + Quote(value) + " is not a number from " + std::to_string(lo) +
           " to " + std::to_string(kU32Max);
  return false;
}

// `name value` pairs separated by commas; commas inside [...] belong to the value.
struct Field {
  std::string key;  // lower case
  std::string_view value;
};

bool SplitFields(std::string_view text, std::vector<Field>* out, std::string* error) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '[') {
      ++depth;
    } else if (text[i] == ']') {
      if (--depth < 0) {
        *error = "unbalanced ']'";
        return false;
      }
    } else if (text[i] == ',' && depth == 0) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (depth != 0) {
    *error = "unbalanced '['";
    return false;
  }
  parts.push_back(text.substr(start));
  if (parts.size() == 1 && Trim(parts[0]).empty()) {
    *error = "empty value";
    return false;
  }
  for (std::string_view p : parts) {
    p = Trim(p);
    if (p.empty()) {
      *error = "empty field (stray ',')";
      return false;
    }
    size_t sp = 0;
    while (sp < p.size() && !IsBlank(p[sp])) ++sp;
    Field f{Lower(p.substr(0, sp)), Trim(p.substr(sp))};
    if (f.value.empty()) {
      *error = "'" + f.key + "' has no value (expected 'name value')";
      return false;
    }
    for (const Field& seen : *out) {
      if (seen.key == f.key) {
        *error = "duplicate '" + f.key + "'";
        return false;
      }
    }
    out->push_back(std::move(f));
  }
  return true;
}

const Field* FindField(const std::vector<Field>& fields, std::string_view key) {
  for (const Field& f : fields) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

bool ParseType(std::string_view value, Threshold::Type* out, std::string* error) {
  const std::string v = Lower(value);
  if (v == "limit") {
    *out = Threshold::Type::kLimit;
  } else if (v == "threshold") {
    *out = Threshold::Type::kThreshold;
  } else if (v == "both") {
    *out = Threshold::Type::kBoth;
  } else if (v == "backoff") {
    *error = "type: 'backoff' is not supported";
    return false;
  } else {
    *error = "type: unknown type " + Quote(value) + " (limit, threshold, both)";
    return false;
  }
  return true;
}

bool ParseTrack(std::string_view value, Threshold::Track* out, std::string* error) {
  const std::string v = Lower(value);
  if (v == "by_src") {
    *out = Threshold::Track::kBySrc;
  } else if (v == "by_dst") {
    *out = Threshold::Track::kByDst;
  } else if (v == "by_rule") {
    *out = Threshold::Track::kByRule;
  } else if (v == "by_both") {
    *out = Threshold::Track::kByBoth;
  } else if (v == "by_flow") {
    *out = Threshold::Track::kByFlow;
  } else {
    *error = "track: unknown track " + Quote(value) + " (by_src, by_dst, by_rule, by_both, by_flow)";
    return false;
  }
  return true;
}

// type/track/count/seconds from already split fields; `with_type` for threshold,
// without for detection_filter. Other keys are the caller's.
bool ThresholdFromFields(const std::vector<Field>& fields, bool with_type, Threshold* out,
                         std::string* error) {
  Threshold t;
  if (with_type) {
    const Field* f = FindField(fields, "type");
    if (f == nullptr) {
      *error = "missing 'type'";
      return false;
    }
    if (!ParseType(f->value, &t.type, error)) return false;
  }
  const Field* track = FindField(fields, "track");
  if (track == nullptr) {
    *error = "missing 'track'";
    return false;
  }
  if (!ParseTrack(track->value, &t.track, error)) return false;
  // Suricata refuses count 0 and seconds 0 in detection_filter and count 0 in
  // threshold.config; its threshold keyword takes them but they mean nothing useful
  // (limit 0 still logs the first hit), so 0 is refused everywhere here.
  for (const char* key : {"count", "seconds"}) {
    const Field* f = FindField(fields, key);
    if (f == nullptr) {
      *error = std::string("missing '") + key + "'";
      return false;
    }
    if (!NumberField(key, f->value, 1, key[0] == 'c' ? &t.count : &t.seconds, error)) return false;
  }
  *out = t;
  return true;
}

bool ParseThresholdOptionImpl(std::string_view value, bool detection_filter, Threshold* out,
                              std::string* error) {
  std::vector<Field> fields;
  if (!SplitFields(value, &fields, error)) return false;
  for (const Field& f : fields) {
    if (f.key == "track" || f.key == "count" || f.key == "seconds") continue;
    if (f.key == "type" && !detection_filter) continue;
    if (f.key == "type") {
      *error = "'type' is not allowed in detection_filter";
    } else if (f.key == "multiplier") {
      *error = "'multiplier' (type backoff) is not supported";
    } else if (f.key == "unique_on" && detection_filter) {
      *error = "'unique_on' is not supported";
    } else {
      *error = "unknown option " + Quote(f.key) +
               (detection_filter ? " (track, count, seconds)" : " (type, track, count, seconds)");
    }
    return false;
  }
  // detection_filter: Suricata's regex takes by_src, by_dst and by_flow only, its user
  // guide all five tracks; the engine handles all five, so all are accepted.
  return ThresholdFromFields(fields, !detection_filter, out, error);
}

// ---------------------------------------------------------------------------------
// threshold.config

// One element: a.b.c.d, a.b.c.d/n, v6, v6/n; host bits cleared as Suricata does.
bool ParseCidr(std::string_view s, Cidr* out) {
  const bool v6 = s.find(':') != std::string_view::npos;
  const size_t slash = s.find('/');
  const std::string_view ip = s.substr(0, slash);
  if (ip.empty() || ip.size() > 45) return false;
  const std::string z(ip);
  Cidr c;
  c.v6 = v6;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, z.c_str(), c.addr.data()) != 1) return false;
  uint32_t prefix = v6 ? 128 : 32;
  if (slash != std::string_view::npos && !ParseU32(s.substr(slash + 1), 0, v6 ? 128 : 32, &prefix)) {
    return false;
  }
  c.prefix_len = static_cast<uint8_t>(prefix);
  for (size_t i = 0; i < 16; ++i) {
    const int keep = std::clamp(static_cast<int>(prefix) - static_cast<int>(i) * 8, 0, 8);
    c.addr[i] &= static_cast<uint8_t>(keep == 0 ? 0 : 0xff << (8 - keep));
  }
  *out = c;
  return true;
}

// `ip` of a suppress: an address, a CIDR, `any`, or [a, b/n, !c, ...].
bool ParseSuppressAddresses(std::string_view value, AddressSet* out, std::string* error) {
  std::string_view v = Trim(value);
  std::vector<std::string_view> elements;
  if (!v.empty() && v.front() == '[') {
    if (v.back() != ']') {
      *error = "ip: unbalanced '[' in " + Quote(value);
      return false;
    }
    std::string_view inner = v.substr(1, v.size() - 2);
    size_t start = 0;
    for (size_t i = 0; i <= inner.size(); ++i) {
      if (i == inner.size() || inner[i] == ',') {
        elements.push_back(Trim(inner.substr(start, i - start)));
        start = i + 1;
      } else if (inner[i] == '[' || inner[i] == ']') {
        *error = "ip: nested lists are not supported: " + Quote(value);
        return false;
      }
    }
  } else {
    elements.push_back(v);
  }
  AddressSet set;
  set.any = false;
  bool any = false;
  for (std::string_view e : elements) {
    bool negated = false;
    if (!e.empty() && e.front() == '!') {
      negated = true;
      e = Trim(e.substr(1));
    }
    if (e.empty()) {
      *error = "ip: empty address in " + Quote(value);
      return false;
    }
    if (e.front() == '$') {
      *error = "ip: address variables such as " + Quote(e) +
               " are not supported in threshold.config; list the addresses";
      return false;
    }
    if (Lower(e) == "any" && !negated) {
      any = true;
      continue;
    }
    Cidr c;
    if (!ParseCidr(e, &c)) {
      *error = "ip: " + Quote(e) + " is not an IPv4/IPv6 address or CIDR";
      return false;
    }
    (negated ? set.exclude : set.include).push_back(c);
  }
  // Only exclusions (or `any`): everything but them, as an address field reads.
  set.any = any || set.include.empty();
  if (set.any) set.include.clear();
  *out = std::move(set);
  return true;
}

bool ParseAction(std::string_view value, Action* out, std::string* error) {
  const std::string v = Lower(value);
  if (v == "alert") {
    *out = Action::kAlert;
  } else if (v == "drop") {
    *out = Action::kDrop;
  } else if (v == "pass") {
    *out = Action::kPass;
  } else if (v == "reject") {
    *out = Action::kReject;
  } else if (v == "log" || v == "sdrop") {
    *error = "new_action: " + Quote(value) + " is not supported (Suricata parses but ignores it)";
    return false;
  } else {
    *error = "new_action: unknown action " + Quote(value) + " (alert, drop, pass, reject)";
    return false;
  }
  return true;
}

bool CheckKeys(const std::vector<Field>& fields, std::initializer_list<std::string_view> allowed,
               const char* expected, std::string* error) {
  for (const Field& f : fields) {
    if (std::find(allowed.begin(), allowed.end(), f.key) == allowed.end()) {
      *error = "unknown option " + Quote(f.key) + " (" + expected + ")";
      return false;
    }
  }
  return true;
}

std::string Where(const std::string& file, int line) { return file + ":" + std::to_string(line); }

std::string Ids(uint32_t gid, uint32_t sid) {
  return "gen_id " + std::to_string(gid) + ", sig_id " + std::to_string(sid);
}

// One logical line into `add`. `existing` and `add` are searched for duplicates.
bool ParseConfigLine(std::string_view line, const std::string& file, int lineno,
                     const ThresholdConfig& existing, ThresholdConfig* add, std::string* error) {
  size_t sp = 0;
  while (sp < line.size() && !IsBlank(line[sp])) ++sp;
  const std::string directive = Lower(line.substr(0, sp));
  const bool suppress = directive == "suppress";
  const bool rate = directive == "rate_filter";
  const bool event = directive == "threshold" || directive == "event_filter";
  if (!suppress && !rate && !event) {
    *error = "unknown directive " + Quote(line.substr(0, sp)) +
             " (suppress, threshold, event_filter, rate_filter)";
    return false;
  }
  std::string msg;
  auto fail = [&](const std::string& m) {
    *error = directive + ": " + m;
    return false;
  };
  std::vector<Field> fields;
  if (!SplitFields(line.substr(sp), &fields, &msg)) return fail(msg);
  const bool keys_ok =
      suppress ? CheckKeys(fields, {"gen_id", "sig_id", "track", "ip"}, "gen_id, sig_id, track, ip", &msg)
      : event  ? CheckKeys(fields, {"gen_id", "sig_id", "type", "track", "count", "seconds"},
                           "gen_id, sig_id, type, track, count, seconds", &msg)
               : CheckKeys(fields,
                           {"gen_id", "sig_id", "track", "count", "seconds", "new_action", "timeout"},
                           "gen_id, sig_id, track, count, seconds, new_action, timeout", &msg);
  if (!keys_ok) return fail(msg);

  uint32_t ids[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    const char* key = i == 0 ? "gen_id" : "sig_id";
    const Field* f = FindField(fields, key);
    if (f == nullptr) return fail(std::string("missing '") + key + "'");
    if (!NumberField(key, f->value, 0, &ids[i], &msg)) return fail(msg);
  }
  const uint32_t gid = ids[0], sid = ids[1];
  // util-threshold-config.c: "Can't use a event config that has sid > 0 and gid == 0".
  if (gid == 0 && sid != 0) {
    return fail("sig_id " + std::to_string(sid) +
                " with gen_id 0: give the rule's gen_id (1 for most rules)");
  }

  if (suppress) {
    SuppressEntry e;
    e.gid = gid;
    e.sid = sid;
    e.file = file;
    e.line = lineno;
    const Field* track = FindField(fields, "track");
    const Field* ip = FindField(fields, "ip");
    if (track != nullptr && ip == nullptr) return fail("'track' needs 'ip'");
    if (ip != nullptr && track == nullptr) return fail("'ip' needs 'track'");
    if (track != nullptr) {
      const std::string t = Lower(track->value);
      if (t == "by_src") {
        e.track = SuppressEntry::Track::kBySrc;
      } else if (t == "by_dst") {
        e.track = SuppressEntry::Track::kByDst;
      } else if (t == "by_either") {
        e.track = SuppressEntry::Track::kByEither;
      } else {
        return fail("track: unknown track " + Quote(track->value) + " (by_src, by_dst, by_either)");
      }
      if (!ParseSuppressAddresses(ip->value, &e.addresses, &msg)) return fail(msg);
    }
    add->suppress.push_back(std::move(e));
    return true;
  }

  // Suricata resolves two filters of one kind for one (gid, sid) by file order, and
  // differently for exact ids (the last wins) and wildcards (the first wins); a
  // duplicate is refused here instead of guessing which the operator meant.
  // Where an entry of the same kind for (gid, sid) was written, or "".
  auto duplicate_at = [&](const auto& a, const auto& b) {
    for (const auto* list : {&a, &b}) {
      for (const auto& x : *list) {
        if (x.gid == gid && x.sid == sid) return Where(x.file, x.line);
      }
    }
    return std::string();
  };

  if (event) {
    EventFilterEntry e;
    e.gid = gid;
    e.sid = sid;
    e.file = file;
    e.line = lineno;
    if (!ThresholdFromFields(fields, true, &e.threshold, &msg)) return fail(msg);
    if (const std::string at = duplicate_at(existing.event_filters, add->event_filters);
        !at.empty()) {
      return fail("duplicate threshold for " + Ids(gid, sid) + " (first at " + at + ")");
    }
    add->event_filters.push_back(std::move(e));
    return true;
  }

  RateFilterEntry e;
  e.gid = gid;
  e.sid = sid;
  e.file = file;
  e.line = lineno;
  const Field* track = FindField(fields, "track");
  if (track == nullptr) return fail("missing 'track'");
  if (!ParseTrack(track->value, &e.track, &msg)) return fail(msg);
  const Field* count = FindField(fields, "count");
  if (count == nullptr) return fail("missing 'count'");
  // util-threshold-config.c: "rate filter count should be > 0".
  if (!NumberField("count", count->value, 1, &e.count, &msg)) return fail(msg);
  const Field* seconds = FindField(fields, "seconds");
  if (seconds == nullptr) return fail("missing 'seconds'");
  if (!NumberField("seconds", seconds->value, 1, &e.seconds, &msg)) return fail(msg);
  const Field* action = FindField(fields, "new_action");
  if (action == nullptr) return fail("missing 'new_action'");
  if (!ParseAction(action->value, &e.new_action, &msg)) return fail(msg);
  const Field* timeout = FindField(fields, "timeout");
  if (timeout == nullptr) return fail("missing 'timeout'");
  if (!NumberField("timeout", timeout->value, 0, &e.timeout, &msg)) return fail(msg);
  if (const std::string at = duplicate_at(existing.rate_filters, add->rate_filters); !at.empty()) {
    return fail("duplicate rate_filter for " + Ids(gid, sid) + " (first at " + at + ")");
  }
  add->rate_filters.push_back(std::move(e));
  return true;
}

bool ParseThresholdConfigImpl(const std::string& text, const std::string& file, ThresholdConfig* out,
                              std::vector<std::string>* errors) {
  ThresholdConfig add;
  std::vector<std::string> errs;
  std::string logical;
  int first_line = 0;
  bool continuing = false;
  int lineno = 0;
  size_t pos = 0;
  auto finish = [&]() {
    std::string_view l = logical;
    // A `#` starts a comment anywhere (Suricata only takes whole-line comments; no field
    // value contains a '#').
    if (const size_t hash = l.find('#'); hash != std::string_view::npos) l = l.substr(0, hash);
    l = Trim(l);
    if (l.empty()) return;
    std::string msg;
    if (logical.size() > kMaxConfigLine) {
      msg = "line longer than " + std::to_string(kMaxConfigLine) + " bytes";
    } else if (ParseConfigLine(l, file, first_line, *out, &add, &msg)) {
      return;
    }
    errs.push_back(Where(file, first_line) + ": " + msg);
  };
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view physical(text.data() + pos, end - pos);
    pos = end + 1;
    ++lineno;
    if (!continuing) {
      // A comment line never continues (Suricata checks for comments first).
      const std::string_view t = Trim(physical);
      if (t.empty() || t.front() == '#') {
        if (end == text.size()) break;
        continue;
      }
      logical.clear();
      first_line = lineno;
    }
    std::string_view body = physical;
    while (!body.empty() && IsBlank(body.back())) body.remove_suffix(1);
    continuing = !body.empty() && body.back() == '\\';
    if (continuing) body.remove_suffix(1);
    if (logical.size() <= kMaxConfigLine) {
      logical.append(body);
      logical.push_back(' ');
    }
    if (!continuing) finish();
    if (end == text.size()) break;
  }
  if (continuing) finish();  // a `\` on the last line: take what there is
  if (!errs.empty()) {
    errors->insert(errors->end(), errs.begin(), errs.end());
    return false;
  }
  for (auto& e : add.suppress) out->suppress.push_back(std::move(e));
  for (auto& e : add.event_filters) out->event_filters.push_back(std::move(e));
  for (auto& e : add.rate_filters) out->rate_filters.push_back(std::move(e));
  return true;
}

uint64_t PackIds(uint32_t gid, uint32_t sid) { return (uint64_t{gid} << 32) | sid; }

// ---------------------------------------------------------------------------------
// Runtime

uint64_t SatAdd(uint64_t a, uint64_t b) { return a > kU64Max - b ? kU64Max : a + b; }
uint64_t SecondsToNs(uint64_t s) { return s > kU64Max / kNsPerSec ? kU64Max : s * kNsPerSec; }

// Sweeps of a full table run at most this often (caller's clock), so a flood of new
// keys against a full table costs O(1) per hit, not a table scan each.
constexpr uint64_t kMinSweepIntervalNs = 100'000'000;

enum class Kind : uint8_t { kLimit, kThreshold, kBoth, kDetection, kRate };

// One threshold-like filter as applied to a rule (Suricata's DetectThresholdData).
struct Filter {
  Kind kind = Kind::kThreshold;
  Threshold::Track track = Threshold::Track::kBySrc;
  uint8_t slot = 0;  // which of the rule's filters: separate state per slot
  uint32_t count = 1;
  uint32_t seconds = 60;
  uint32_t timeout = 0;
  Action new_action = Action::kAlert;
};

Filter FromThreshold(const Threshold& t, bool detection, uint8_t slot) {
  Filter f;
  f.kind = detection                               ? Kind::kDetection
           : t.type == Threshold::Type::kLimit     ? Kind::kLimit
           : t.type == Threshold::Type::kBoth      ? Kind::kBoth
                                                   : Kind::kThreshold;
  f.track = t.track;
  f.slot = slot;
  f.count = t.count;
  f.seconds = t.seconds;
  return f;
}

Filter FromRate(const RateFilterEntry& r) {
  Filter f;
  f.kind = Kind::kRate;
  f.track = r.track;
  f.count = r.count;
  f.seconds = r.seconds;
  f.timeout = r.timeout;
  f.new_action = r.new_action;
  return f;
}

struct Key {
  uint32_t gid = 0, sid = 0, rev = 0;
  uint8_t slot = 0, track = 0, v6 = 0;
  std::array<uint8_t, 16> a{}, b{};
  uint64_t flow = 0;
  bool operator==(const Key&) const = default;
};

// Suricata's ThresholdEntry: the window start, the count, the rate_filter timeout.
struct State {
  uint64_t tv1_ns = 0;           // window start
  uint64_t timeout_start_ns = 0; // rate_filter: when the new action took effect
  uint32_t count = 0;
  uint32_t seconds = 0;
  uint32_t timeout = 0;
  bool timeout_active = false;
};

// The first time at which the entry is equivalent to no entry, so may be reclaimed:
// the window has passed (ThresholdEntryExpire: ts > tv1 + seconds) and, for a
// rate_filter, its timeout too. (Suricata's hash expiry ignores the timeout and may
// cut an active rate_filter short; we keep it.) An entry reclaimed after its timeout
// counts the next hit as a first hit, where Suricata would spend that hit clearing
// the timeout; this only happens under table pressure.
uint64_t ReusableAt(const State& s) {
  uint64_t at = SatAdd(SatAdd(s.tv1_ns, SecondsToNs(s.seconds)), 1);
  if (s.timeout_active) {
    const uint64_t start_s = s.timeout_start_ns / kNsPerSec;
    at = std::max(at, SecondsToNs(SatAdd(SatAdd(start_s, s.timeout), 1)));
  }
  return at;
}

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 32;
  return h;
}

uint64_t HashKey(const Key& k, uint64_t seed) {
  uint64_t h = seed;
  h = Mix(h, (uint64_t{k.gid} << 32) | k.sid);
  h = Mix(h, (uint64_t{k.rev} << 32) | (uint64_t{k.slot} << 16) | (uint64_t{k.track} << 8) | k.v6);
  for (const auto* arr : {&k.a, &k.b}) {
    uint64_t w[2];
    std::memcpy(w, arr->data(), 16);
    h = Mix(h, w[0]);
    h = Mix(h, w[1]);
  }
  h = Mix(h, k.flow);
  h ^= h >> 29;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 32;
  return h;
}

// ThresholdSetup (detect-engine-threshold.c): the first hit of a key.
int Setup(const Filter& f, State* s, uint64_t now) {
  *s = State{};
  s->tv1_ns = now;
  s->count = 1;
  s->seconds = f.seconds;
  s->timeout = f.timeout;
  switch (f.kind) {
    case Kind::kLimit:
    case Kind::kRate:
      return 1;
    case Kind::kThreshold:
    case Kind::kBoth:
      return f.count == 1 ? 1 : 0;
    case Kind::kDetection:
      return 0;
  }
  return 0;
}

// ThresholdCheckUpdate (detect-engine-threshold.c): a later hit of a key. The window
// is [tv1, tv1 + seconds], both ends included (SCTIME_CMP_LTE).
int Update(const Filter& f, State* s, uint64_t now, bool* rate_active) {
  const bool in_window = now <= SatAdd(s->tv1_ns, SecondsToNs(f.seconds));
  switch (f.kind) {
    case Kind::kLimit:  // the first `count` hits of each window log
      if (in_window) {
        if (s->count < kU32Max) ++s->count;
        return s->count <= f.count ? 1 : 2;
      }
      s->tv1_ns = now;
      s->count = 1;
      return 1;
    case Kind::kThreshold:  // every count-th hit of the window logs; the window is not restarted
      if (in_window) {
        ++s->count;
        if (s->count >= f.count) {
          s->count = 0;
          return 1;
        }
        return 0;
      }
      s->tv1_ns = now;
      s->count = 1;
      return 0;
    case Kind::kBoth:  // the count-th hit logs, later ones in the window are silent
      if (in_window) {
        if (s->count < kU32Max) ++s->count;
        if (s->count == f.count) return 1;
        return s->count > f.count ? 2 : 0;
      }
      s->tv1_ns = now;
      s->count = 1;
      return s->count == f.count ? 1 : 0;
    case Kind::kDetection:  // every hit after the first `count` in the window
      if (in_window) {
        if (s->count < kU32Max) ++s->count;
        return s->count > f.count ? 1 : 0;
      }
      s->tv1_ns = now;
      s->count = 1;
      return 0;
    case Kind::kRate:
      // TYPE_RATE: once more than `count` hits fall in a window, the new action holds
      // until (now_s - start_s) > timeout, in whole seconds as Suricata compares
      // them; the hit that ends it gets the rule's own action and is not counted.
      if (s->timeout_active) {
        const int64_t elapsed = static_cast<int64_t>(now / kNsPerSec) -
                                static_cast<int64_t>(s->timeout_start_ns / kNsPerSec);
        if (elapsed > static_cast<int64_t>(f.timeout)) {
          s->timeout_active = false;
        } else {
          *rate_active = true;
        }
      } else if (in_window) {
        if (s->count < kU32Max) ++s->count;
        if (s->count > f.count) {
          s->timeout_active = true;
          s->timeout_start_ns = now;
          *rate_active = true;
        }
      } else {
        s->tv1_ns = now;
        s->count = 1;
      }
      return 1;
  }
  return 0;
}

bool SuppressMatches(const SuppressEntry& e, const AlertSubject& s) {
  switch (e.track) {
    case SuppressEntry::Track::kRule:
      return true;
    case SuppressEntry::Track::kBySrc:
      return e.addresses.Matches(s.src, s.v6);
    case SuppressEntry::Track::kByDst:
      return e.addresses.Matches(s.dst, s.v6);
    case SuppressEntry::Track::kByEither:
      return e.addresses.Matches(s.src, s.v6) || e.addresses.Matches(s.dst, s.v6);
  }
  return false;
}

constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();

}  // namespace

bool ParseThresholdOption(std::string_view value, bool detection_filter, Threshold* out,
                          std::string* error) {
  try {
    return ParseThresholdOptionImpl(value, detection_filter, out, error);
  } catch (const std::bad_alloc&) {
    *error = "out of memory";
    return false;
  }
}

bool ParseThresholdConfig(const std::string& text, const std::string& file, ThresholdConfig* out,
                          std::vector<std::string>* errors) {
  try {
    return ParseThresholdConfigImpl(text, file, out, errors);
  } catch (const std::bad_alloc&) {
    errors->push_back(file + ": out of memory");
    return false;
  }
}

std::vector<std::string> ThresholdConfigWarnings(const ThresholdConfig& config,
                                                 const std::vector<Rule>& rules) {
  std::map<uint64_t, const Rule*> by_ids;
  std::set<uint32_t> gids;
  for (const Rule& r : rules) {
    by_ids.emplace(PackIds(r.gid, r.sid), &r);
    gids.insert(r.gid);
  }
  std::vector<std::string> out;
  auto check_known = [&](const auto& e, const char* directive) {
    if (e.sid != 0 && by_ids.count(PackIds(e.gid, e.sid)) == 0) {
      out.push_back(Where(e.file, e.line) + ": " + directive + " " + Ids(e.gid, e.sid) +
                    ": no such rule is loaded");
    } else if (e.sid == 0 && e.gid != 0 && gids.count(e.gid) == 0) {
      out.push_back(Where(e.file, e.line) + ": " + directive + " " + Ids(e.gid, e.sid) +
                    ": no rule with this gen_id is loaded");
    }
  };
  for (const auto& e : config.suppress) check_known(e, "suppress");
  for (const auto& e : config.event_filters) check_known(e, "threshold");
  for (const RateFilterEntry& e : config.rate_filters) {
    check_known(e, "rate_filter");
    const std::string what = Where(e.file, e.line) + ": rate_filter " + Ids(e.gid, e.sid) + ": ";
    const EventFilterEntry* same = nullptr;
    for (const auto& t : config.event_filters) {
      if (t.gid == e.gid && t.sid == e.sid) {
        same = &t;
        break;
      }
    }
    if (same != nullptr) {
      out.push_back(what + "never applies: the threshold at " + Where(same->file, same->line) +
                    " takes precedence");
      continue;
    }
    auto it = by_ids.find(PackIds(e.gid, e.sid));
    if (e.sid != 0 && it != by_ids.end() &&
        (it->second->threshold.has_value() || it->second->detection_filter.has_value())) {
      out.push_back(what +
                    "never applies: the rule's own threshold/detection_filter takes precedence "
                    "(as in Suricata)");
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------

struct ThresholdEngine::Impl {
  // Config entries that name one (gid, sid), one gid, or every rule.
  struct Entries {
    std::vector<const SuppressEntry*> suppress;
    const EventFilterEntry* event_filter = nullptr;  // the first in config order
    const RateFilterEntry* rate_filter = nullptr;
  };
  struct Node {
    Key key;
    State state;
    uint64_t hash = 0;
    uint32_t next = kNil;
    bool used = false;
  };

  ThresholdConfig config;
  std::unordered_map<uint64_t, Entries> exact;  // PackIds(gid, sid)
  std::unordered_map<uint32_t, Entries> by_gid;
  Entries global;
  bool has_global = false;

  // Written by any worker, read by counters(): relaxed atomics, exact totals.
  std::atomic<uint64_t> checks{0}, suppressed{0}, thresholded{0}, rate_filtered{0}, table_full{0};

  // The tracking table: chained hash over a preallocated node pool. Guarded by mu.
  mutable std::mutex mu;
  std::vector<Node> nodes;
  std::vector<uint32_t> buckets;
  std::vector<uint32_t> free_nodes;
  uint64_t bucket_mask = 0;
  uint64_t seed = 0;
  uint64_t next_sweep_ns = kU64Max;  // lower bound of every entry's ReusableAt
  uint64_t last_sweep_ns = 0;
  bool swept = false;

  Entries& At(uint32_t gid, uint32_t sid) {
    if (gid == 0 && sid == 0) {
      has_global = true;
      return global;
    }
    if (sid == 0) return by_gid[gid];
    return exact[PackIds(gid, sid)];
  }

  void Index() {
    for (const auto& e : config.suppress) At(e.gid, e.sid).suppress.push_back(&e);
    for (const auto& e : config.event_filters) {
      Entries& x = At(e.gid, e.sid);
      if (x.event_filter == nullptr) x.event_filter = &e;
    }
    for (const auto& e : config.rate_filters) {
      Entries& x = At(e.gid, e.sid);
      if (x.rate_filter == nullptr) x.rate_filter = &e;
    }
  }

  uint32_t Find(const Key& k, uint64_t h) const {
    for (uint32_t i = buckets[h & bucket_mask]; i != kNil; i = nodes[i].next) {
      if (nodes[i].hash == h && nodes[i].key == k) return i;
    }
    return kNil;
  }

  void Remove(uint32_t i) {
    uint32_t* link = &buckets[nodes[i].hash & bucket_mask];
    while (*link != i) link = &nodes[*link].next;
    *link = nodes[i].next;
    nodes[i].used = false;
    nodes[i].next = kNil;
    free_nodes.push_back(i);
  }

  // Reclaims every entry that is as good as absent at `now`.
  void Sweep(uint64_t now) {
    uint64_t next = kU64Max;
    for (uint32_t i = 0; i < nodes.size(); ++i) {
      if (!nodes[i].used) continue;
      const uint64_t at = ReusableAt(nodes[i].state);
      if (now >= at) {
        Remove(i);
      } else {
        next = std::min(next, at);
      }
    }
    next_sweep_ns = next;
    last_sweep_ns = now;
    swept = true;
  }

  uint32_t Insert(const Key& k, uint64_t h, uint64_t now) {
    if (free_nodes.empty() && now >= next_sweep_ns &&
        (!swept || now >= SatAdd(last_sweep_ns, kMinSweepIntervalNs) || now < last_sweep_ns)) {
      Sweep(now);
    }
    if (free_nodes.empty()) return kNil;
    const uint32_t i = free_nodes.back();
    free_nodes.pop_back();
    Node& n = nodes[i];
    n.key = k;
    n.hash = h;
    n.used = true;
    n.next = buckets[h & bucket_mask];
    buckets[h & bucket_mask] = i;
    return i;
  }

  // One filter for one hit; Suricata's result code (0, 1, 2). Takes the lock.
  int Evaluate(const Filter& f, const Rule& rule, const AlertSubject& s, uint64_t now,
               bool* rate_active) {
    // ThresholdGetFromHash: "fast track for count 1 threshold", no state.
    if (f.kind == Kind::kThreshold && f.count == 1) return 1;
    Key k;
    k.gid = rule.gid;
    k.sid = rule.sid;
    k.rev = rule.rev;
    k.slot = f.slot;
    k.track = static_cast<uint8_t>(f.track);
    switch (f.track) {
      case Threshold::Track::kBySrc:
        k.a = s.src;
        k.v6 = s.v6;
        break;
      case Threshold::Track::kByDst:
        k.a = s.dst;
        k.v6 = s.v6;
        break;
      case Threshold::Track::kByBoth: {
        // The pair in either direction is one key: lower address first.
        const bool src_first = std::memcmp(s.src.data(), s.dst.data(), 16) < 0;
        k.a = src_first ? s.src : s.dst;
        k.b = src_first ? s.dst : s.src;
        k.v6 = s.v6;
        break;
      }
      case Threshold::Track::kByRule:
        break;
      case Threshold::Track::kByFlow:
        // PacketAlertThreshold: TRACK_FLOW without a flow leaves ret 0.
        if (s.flow_id == 0) return 0;
        k.flow = s.flow_id;
        break;
    }
    const uint64_t h = HashKey(k, seed);
    std::lock_guard<std::mutex> lock(mu);
    uint32_t i = Find(k, h);
    if (i == kNil) {
      i = Insert(k, h, now);
      if (i == kNil) {
        table_full.fetch_add(1, std::memory_order_relaxed);
        State scratch;
        return Setup(f, &scratch, now);
      }
      const int ret = Setup(f, &nodes[i].state, now);
      next_sweep_ns = std::min(next_sweep_ns, ReusableAt(nodes[i].state));
      return ret;
    }
    const int ret = Update(f, &nodes[i].state, now, rate_active);
    // An update can bring ReusableAt forward (a rate timeout ending).
    next_sweep_ns = std::min(next_sweep_ns, ReusableAt(nodes[i].state));
    return ret;
  }
};

ThresholdEngine::ThresholdEngine(ThresholdConfig config, size_t capacity)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.config = std::move(config);
  m.Index();
  capacity = std::min(capacity, kMaxCapacity);
  m.nodes.resize(capacity);
  m.free_nodes.reserve(capacity);
  for (size_t i = capacity; i > 0; --i) m.free_nodes.push_back(static_cast<uint32_t>(i - 1));
  size_t nb = 16;
  while (nb < capacity) nb <<= 1;
  m.buckets.assign(nb, kNil);
  m.bucket_mask = nb - 1;
  // A secret seed keeps attacker-chosen addresses from piling into one chain.
  try {
    std::random_device rd;
    m.seed = (uint64_t{rd()} << 32) ^ rd();
  } catch (...) {
    m.seed = reinterpret_cast<uintptr_t>(this) * 0x9e3779b97f4a7c15ULL;
  }
}

ThresholdEngine::~ThresholdEngine() = default;

bool ThresholdEngine::Applies(const Rule& rule) const {
  const Impl& m = *impl_;
  return rule.threshold.has_value() || rule.detection_filter.has_value() || m.has_global ||
         (!m.by_gid.empty() && m.by_gid.count(rule.gid) != 0) ||
         (!m.exact.empty() && m.exact.count(PackIds(rule.gid, rule.sid)) != 0);
}

ThresholdDecision ThresholdEngine::Check(const Rule& rule, const AlertSubject& subject,
                                         uint64_t now_ns) {
  Impl& m = *impl_;
  m.checks.fetch_add(1, std::memory_order_relaxed);
  const Impl::Entries* exact = nullptr;
  const Impl::Entries* gen = nullptr;
  if (!m.exact.empty()) {
    auto it = m.exact.find(PackIds(rule.gid, rule.sid));
    if (it != m.exact.end()) exact = &it->second;
  }
  if (!m.by_gid.empty()) {
    auto it = m.by_gid.find(rule.gid);
    if (it != m.by_gid.end()) gen = &it->second;
  }
  const Impl::Entries* global = m.has_global ? &m.global : nullptr;

  // PacketAlertHandle: suppressions first; a matching one returns 2 before any
  // threshold is counted. A suppress without track/ip makes the rule noalert
  // (SetupSuppressRule: s->action &= ~ACTION_ALERT): its thresholds still count.
  bool noalert = false;
  for (const Impl::Entries* level : {exact, gen, global}) {
    if (level == nullptr) continue;
    for (const SuppressEntry* e : level->suppress) {
      if (e->track == SuppressEntry::Track::kRule) {
        noalert = true;
      } else if (SuppressMatches(*e, subject)) {
        m.suppressed.fetch_add(1, std::memory_order_relaxed);
        return ThresholdDecision{true, false, std::nullopt};
      }
    }
  }

  // The threshold list (SetupThresholdRule): an exact threshold replaces the rule's
  // own threshold/detection_filter; a rule's own one makes Suricata skip rate_filters
  // and wildcard thresholds ("the signature event var is given precedence"). Between
  // wildcard entries Suricata keeps whichever comes first in the file; here the more
  // specific wins, and a threshold wins over a rate_filter of the same level, as it
  // does for exact ids.
  Filter filters[2];
  int n = 0;
  if (exact != nullptr && exact->event_filter != nullptr) {
    filters[n++] = FromThreshold(exact->event_filter->threshold, false, 0);
  } else if (rule.threshold.has_value() || rule.detection_filter.has_value()) {
    // Suricata refuses both in one rule; should a rule carry both, both apply in turn.
    if (rule.threshold.has_value()) filters[n++] = FromThreshold(*rule.threshold, false, 0);
    if (rule.detection_filter.has_value()) {
      filters[n++] = FromThreshold(*rule.detection_filter, true, 1);
    }
  } else if (exact != nullptr && exact->rate_filter != nullptr) {
    filters[n++] = FromRate(*exact->rate_filter);
  } else if (gen != nullptr && gen->event_filter != nullptr) {
    filters[n++] = FromThreshold(gen->event_filter->threshold, false, 0);
  } else if (gen != nullptr && gen->rate_filter != nullptr) {
    filters[n++] = FromRate(*gen->rate_filter);
  } else if (global != nullptr && global->event_filter != nullptr) {
    filters[n++] = FromThreshold(global->event_filter->threshold, false, 0);
  } else if (global != nullptr && global->rate_filter != nullptr) {
    filters[n++] = FromRate(*global->rate_filter);
  }

  ThresholdDecision d;
  for (int i = 0; i < n; ++i) {
    bool rate_active = false;
    const int ret = m.Evaluate(filters[i], rule, subject, now_ns, &rate_active);
    if (ret == 0 || ret == 2) {
      m.thresholded.fetch_add(1, std::memory_order_relaxed);
      return ThresholdDecision{ret == 2, false, std::nullopt};
    }
    if (rate_active) {
      m.rate_filtered.fetch_add(1, std::memory_order_relaxed);
      d.new_action = filters[i].new_action;
    }
  }
  if (noalert) {
    m.suppressed.fetch_add(1, std::memory_order_relaxed);
    d.log_alert = false;
  }
  return d;
}

ThresholdCounters ThresholdEngine::counters() const {
  const Impl& m = *impl_;
  ThresholdCounters c;
  c.checks = m.checks.load(std::memory_order_relaxed);
  c.suppressed = m.suppressed.load(std::memory_order_relaxed);
  c.thresholded = m.thresholded.load(std::memory_order_relaxed);
  c.rate_filtered = m.rate_filtered.load(std::memory_order_relaxed);
  c.table_full = m.table_full.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(m.mu);
  c.entries = m.nodes.size() - m.free_nodes.size();
  return c;
}

}  // namespace wardgate::rules
