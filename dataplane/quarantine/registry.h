// The quarantine registry (the devices, zones and quarantine issue): which devices are
// quarantined, at which level, why, by whom and until when. It lives on the control
// thread; the dataplane turns its contents into the quarantine set of a new generation
// on every change, and writes them to the applied-state snapshot (snapshot.h) so that a
// restart never releases a quarantined device.
//
// Two levels (config::QuarantineLevel):
//   isolate  the device may only reach the remediation allow-list (and DHCP/DNS);
//   contain  established flows and explicitly allowed clinical peers go on, every new
//            flow is dropped. Life-critical devices default to contain: cutting an
//            infusion pump off its drug library server mid-therapy is itself a hazard.
//
// Plain C++, no DPDK: testable alone (tests/unit/quarantine_test.cc).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/config/segmentation.h"

namespace wardgate::quarantine {

using Level = config::QuarantineLevel;  // kIsolate, kContain

const char* LevelName(Level level);  // "isolate" / "contain"
// "isolate" or "contain" (case-sensitive, as in the configuration); false with a
// message naming the bad value otherwise.
bool ParseLevel(std::string_view text, Level* out, std::string* why);

// The longest time-to-live accepted: 100 years (a TTL longer than that is a typo, and
// keeps now + ttl far from overflowing). No TTL at all is "0" or "".
inline constexpr uint64_t kMaxDurationNs = 36500ull * 86400 * 1000000000;

// A time-to-live as an operator writes it: one or more <whole number><unit>, units
// from the largest to the smallest, each once: "90s", "15m", "2h", "1d", "1h30m",
// "500ms" (units d, h, m, s, ms, us, ns). "0" or "" mean none (*ns = 0). Refused, with
// a message naming the problem: a bare number ("30": seconds or minutes?), a sign,
// decimals, an unknown unit, trailing junk, more than kMaxDurationNs.
bool ParseDuration(std::string_view text, uint64_t* ns, std::string* why);
// The canonical text, which ParseDuration reads back: 5400 s -> "1h30m", 90 s ->
// "1m30s", 0 -> "0".
std::string DurationText(uint64_t ns);

// How an operator named a device.
struct Selector {
  enum class Kind : uint8_t { kMac, kIp, kId } kind = Kind::kMac;
  std::array<uint8_t, 6> mac{};
  config::Prefix ip;  // a host (len 32 or 128)
  uint64_t id = 0;    // inventory id, >= 1

  // Canonical: "02:77:00:00:00:11", "10.77.0.11", "fd77::11", "id:17".
  std::string Text() const;
  // Same device name (only the field of `kind` counts).
  bool operator==(const Selector& o) const;

  static Selector Mac(const std::array<uint8_t, 6>& mac);
  static Selector Ip(const config::Prefix& host);  // host: len 32 (IPv4) or 128 (IPv6)
  static Selector Id(uint64_t id);
};

// "02:77:00:00:00:11" or "02-77-00-00-00-11" (any case) -> kMac; an IPv4 or IPv6
// address without a prefix length -> kIp; "id:17" or "17" -> kId. Anything else: false
// with a message naming the text ("'xx' is not a MAC, an IP address or a device id").
bool ParseSelector(std::string_view text, Selector* out, std::string* why);

struct Entry {
  Selector device;  // as enforced: kMac or kIp (the caller resolves kId to the device's MAC before Add)
  Level level = Level::kIsolate;
  std::string reason, actor;  // why, and who ("wardctl", "rule:sid 2100042", "restored")
  uint64_t since_ns = 0;      // wall clock, when first applied
  uint64_t expires_ns = 0;    // wall clock; 0: no TTL
  uint64_t seq = 0;           // the registry's change counter when this entry last changed
  bool operator==(const Entry&) const = default;
};

// Why an entry cannot be enforced as it is (a kId device, an IP that is not a host,
// an expiry before its start), or "" if it can. The snapshot uses the same check.
std::string EntryProblem(const Entry& e);

// The quarantined devices. Control thread only: not thread-safe (the caller holds its
// mutex). Bounded: at most `capacity` entries (kMaxEntries at most).
class Registry {
 public:
  static constexpr size_t kMaxEntries = 65536;

  explicit Registry(size_t capacity = kMaxEntries);

  struct AddResult {
    Entry entry;           // the entry as it now stands (unset if refused)
    bool changed = false;  // anything differs from before (seq advanced)
    bool created = false;  // the device was not quarantined before
    std::string error;     // non-empty: refused, nothing changed (kId device, not a host, registry full)
    bool ok() const { return error.empty(); }
  };
  // Quarantines `device` (kMac or kIp), or updates its quarantine in place: the same
  // device quarantined again keeps since_ns and takes the new level, reason, actor and
  // expiry (ttl_ns 0: none, which also clears an earlier TTL). Idempotent: the same
  // call twice changes nothing the second time (unless a TTL moves the expiry).
  AddResult Add(const Selector& device, Level level, std::string reason, std::string actor, uint64_t now_ns,
                uint64_t ttl_ns);
  // Releases `device`; nullopt if it was not quarantined.
  std::optional<Entry> Remove(const Selector& device);
  // Removes and returns the entries whose TTL has passed (expires_ns <= now_ns), in
  // expiry order.
  std::vector<Entry> Expire(uint64_t now_ns);
  // The earliest expiry of any entry, nullopt if none has a TTL.
  std::optional<uint64_t> NextExpiry() const;
  // Every entry, by since_ns, then device text.
  std::vector<Entry> List() const;
  // The entry of `device` (kMac or kIp), nullptr if not quarantined. The pointer is
  // valid until the next change.
  const Entry* Find(const Selector& device) const;
  // Increases on every change (Add that changed something, Remove, Expire that removed
  // something, Restore), never otherwise.
  uint64_t seq() const { return seq_; }
  // Replaces every entry (at start, from the snapshot), keeping their since_ns and
  // expiry; entries already past their TTL go at the next Expire. Entries with an
  // EntryProblem are skipped, a device listed twice keeps its last entry, and entries
  // beyond the capacity are dropped; returns how many entries were skipped or dropped
  // (LoadSnapshot refuses such files, so 0 from a loaded snapshot).
  size_t Restore(std::vector<Entry> entries);
  size_t size() const { return entries_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  void Erase(std::map<std::string, Entry>::iterator it);

  size_t capacity_;
  uint64_t seq_ = 0;
  std::map<std::string, Entry> entries_;                   // by Selector::Text()
  std::set<std::pair<uint64_t, std::string>> expiries_;  // (expires_ns, key) of entries with a TTL
};

}  // namespace wardgate::quarantine
